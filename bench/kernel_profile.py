"""bench/kernel_profile.py — where the time of a lathe-generated entry goes, kernel by kernel.

usage: kernel_profile.py GENERATED.c PERF.DATA [--top N]

PERF.DATA is a `perf record` of bench/drive.c built with -g against GENERATED.c (bench/
profile.sh does both). Every sample's source line is charged to the kernel whose comment
(`/* %N = op ...` or `/* fused kernel: ...`) precedes that line in GENERATED.c; the output is
the kernels sorted by their share of the samples, with the comment's first line (op, shape
and the .lathe source location). Lines of the shared helpers above the first entry (the GEMM
and convolution packing routines, the micro-kernel: called by several kernels, and inlined
into them) are charged to the helper by name; samples outside GENERATED.c (libm's expf and
tanhf, libc's memcpy, the driver) to their symbol. Measurement only: it prints, it judges nothing.
"""

import argparse
import collections
import os
import re
import subprocess
import sys

KERNEL = re.compile(r"^\s*/\* (%\d+ = |fused kernel)")
HELPER = re.compile(r"^[A-Za-z_].*\b(lathe_\w+)\(")


def kernel_starts(c_path):
    """(line number, title) of every kernel comment in the generated C, in order."""
    starts = []
    with open(c_path, encoding="utf-8") as f:
        lines = f.readlines()
    for i, line in enumerate(lines, 1):
        if KERNEL.match(line):
            title = line.strip().removeprefix("/*").removesuffix("*/").strip()
            if title.startswith("fused kernel") and i < len(lines):
                title += " — " + lines[i].strip().lstrip("*").strip()
            starts.append((i, title))
    return starts


def helper_starts(c_path, first_kernel):
    """(line number, name) of the helper functions defined above the first kernel."""
    helpers = []
    with open(c_path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if i >= first_kernel:
                break
            m = HELPER.match(line)
            if m:
                helpers.append((i, m.group(1)))
    return helpers


def perf_lines(data_path):
    """(share in percent, symbol, srcline) triples from perf report."""
    out = subprocess.run(["perf", "report", "-i", data_path, "--sort", "sym,srcline", "--stdio",
                          "-t", "|"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if len(parts) == 3 and parts[0].endswith("%") and not line.lstrip().startswith("#"):
            yield float(parts[0][:-1]), parts[1].removeprefix("[.]").strip(), parts[2]


def last_before(starts, line_no):
    """The (line, title) of the last start at or before line_no, or None."""
    found = None
    for start in starts:
        if start[0] > line_no:
            break
        found = start
    return found


def owner(kernels, helpers, line_no):
    kernel = last_before(kernels, line_no)
    if kernel:
        return f"{kernel[0]}: {kernel[1]}"
    helper = last_before(helpers, line_no)
    if helper:
        return f"{helper[0]}: helper {helper[1]} (shared by the kernels that call it)"
    return f"{line_no}: (outside any kernel)"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("c_file")
    p.add_argument("perf_data")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    kernels = kernel_starts(args.c_file)
    helpers = helper_starts(args.c_file, kernels[0][0] if kernels else 1 << 30)
    base = os.path.basename(args.c_file)
    shares = collections.Counter()
    for share, symbol, srcline in perf_lines(args.perf_data):
        name, _, number = srcline.rpartition(":")
        if os.path.basename(name) == base and number.isdigit():
            shares[f"{base}:{owner(kernels, helpers, int(number))}"] += share
        else:
            shares[f"{symbol} (outside the model)"] += share
    if not shares:
        sys.exit("kernel_profile: no samples")
    for key, share in shares.most_common(args.top):
        print(f"{share:6.2f}%  {key}")


if __name__ == "__main__":
    main()
