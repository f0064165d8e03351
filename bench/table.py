"""bench/table.py — formats bench/run.sh's measurements as a markdown table plus notes.

Input: a TSV file of `row <TAB> field <TAB> value` lines, rows in the order they were run.
Fields: lathe_seconds / peer_seconds (median seconds per call, or wall seconds for the epoch),
lathe_error / peer_error (why a measurement is missing), peer_name, flops (per call),
lathe_o2_seconds (the train step built with portable flags, cc -O2 without -march),
lathe_errno_seconds (built without -fno-math-errno);
row "peak": gflops_start / gflops_end (the best vector width), gflops_x<lanes>_start /
gflops_x<lanes>_end (each width), detail_start / detail_end (all widths, for the notes),
code_lanes (the vector width of lathe's generated code: the table uses that width's peak, the
higher of the run's two measurements, or the best width when code_lanes is 0 or missing);
the epoch row: lathe_accuracy /
peer_accuracy (percent), lathe_compile_seconds, peer_loop_seconds, lathe_cpu_seconds /
peer_cpu_seconds (user + sys time of the whole command); the threads row:
torch_threads_seconds (PyTorch on 2 threads); row "run" (not a table
row): loadavg_start / loadavg_end.

The speed ratio is peer time / lathe time: above 1 lathe is faster, below 1 it is slower.
GFLOP/s count the matmul and convolution flops only (2 per multiply-add); % of FMA peak
compares them with the measured single-core peak of the first row. Nothing here judges a number: it only prints.
"""

import sys


def read_rows(path):
    rows = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) == 3:
                rows.setdefault(parts[0], {})[parts[1]] = parts[2]
    return rows


def number(row, key):
    try:
        value = float(row.get(key, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def duration(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds * 1e6:.3g} µs"


def cell(text):
    return str(text).replace("|", "\\|")


def time_cell(row, side):
    seconds = number(row, side + "_seconds")
    if seconds is not None:
        return duration(seconds)
    return "n/a (" + row.get(side + "_error", "not measured") + ")"


def measured_peak(row):
    """The FMA peak "% of FMA peak" divides by, and what it is: the higher of the start and end
    measurements at the vector width of lathe's generated code (code_lanes), or of the best
    width when that width is unknown or scalar. Returns (GFLOP/s or None, description)."""
    lanes = row.get("code_lanes", "")
    if lanes.isdigit() and int(lanes) > 0:
        values = [number(row, f"gflops_x{lanes}_{when}") for when in ("start", "end")]
        values = [v for v in values if v]
        if values:
            return max(values), f"{int(lanes) * 32}-bit FMA ({lanes} floats, the generated code's)"
    values = [v for v in (number(row, "gflops_start"), number(row, "gflops_end")) if v]
    return (max(values) if values else None), "best vector width"


def format_row(name, row, peak):
    if name == "peak":
        gflops, what = measured_peak(row)
        peer = f"{gflops:.1f} GFLOP/s" if gflops else time_cell(row, "peer")
        return ["single-core f32 FMA peak", "—", peer, f"bench/peak.c, {what}",
                "—", "—", "100" if gflops else "—"]
    lathe, peer = number(row, "lathe_seconds"), number(row, "peer_seconds")
    flops = number(row, "flops")
    ratio = f"{peer / lathe:.2f}x" if lathe and peer else "—"
    gflops = flops / lathe * 1e-9 if flops and lathe else None
    return [name, time_cell(row, "lathe"), time_cell(row, "peer"), row.get("peer_name", "—"),
            ratio, f"{gflops:.2f}" if gflops else "—",
            f"{100 * gflops / peak:.1f}" if gflops and peak else "—"]


def notes(rows, peak):
    out = []
    run = rows.get("run", {})
    if run:
        out.append(f"load average (1, 5, 15 min) at start: {run.get('loadavg_start', '?')}, "
                   f"at end: {run.get('loadavg_end', '?')}")
        if run.get("target", "native") != "native":
            out.append(f"lathe's code compiled for --target {run['target']} (its C built with "
                       f"that -march); OpenBLAS and PyTorch held to the same instructions where "
                       f"they have a switch (bench/run.sh --help)")
        if "ort_isa" in run:
            out.append(f"ONNX Runtime rows: {run['ort_isa']} (ONNX Runtime picks its kernels "
                       f"by CPUID and has no switch to restrict them)")
    for when in ("start", "end"):
        if "detail_" + when in rows.get("peak", {}):
            out.append(f"FMA peak by vector width at the {when} of the run (GFLOP/s): "
                       f"{rows['peak']['detail_' + when]}")
    for name, row in rows.items():
        if name == "run":
            continue
        peer, flops = number(row, "peer_seconds"), number(row, "flops")
        if name != "peak" and peer and flops:
            gflops = flops / peer * 1e-9
            share = f", {100 * gflops / peak:.1f}% of FMA peak" if peak else ""
            peer_name = row.get("peer_name", "peer")
            out.append(f"{name}: {peer_name} runs at {gflops:.2f} GFLOP/s{share}")
        o2 = number(row, "lathe_o2_seconds")
        if o2:
            out.append(f"{name}: the same lathe code built with portable flags, cc -O2 (no -march), "
                       f"takes {duration(o2)}")
        errno = number(row, "lathe_errno_seconds")
        if errno:
            out.append(f"{name}: the same lathe code built without -fno-math-errno "
                       f"(cc -O3 -march=native) takes {duration(errno)}")
        if "lathe_accuracy" in row or "peer_accuracy" in row:
            lathe = row.get("lathe_accuracy") or "n/a"
            peer = row.get("peer_accuracy") or "n/a"
            out.append(f"{name}: test accuracy lathe {lathe}{'%' if lathe != 'n/a' else ''}, "
                       f"peer {peer}{'%' if peer != 'n/a' else ''}")
        if "lathe_compile_seconds" in row:
            compile_seconds = float(row["lathe_compile_seconds"])
            out.append(f"{name}: lathe's time includes compiling the model "
                       f"(lathe compile + cc -O2 -shared: {compile_seconds:.2f} s)"
                       f", loading the data and the test evaluation; so does the peer's "
                       f"(Python start-up, torch import, data, test)")
        lathe_cpu, peer_cpu = number(row, "lathe_cpu_seconds"), number(row, "peer_cpu_seconds")
        if lathe_cpu or peer_cpu:
            out.append(f"{name}: CPU time (user + sys, less sensitive to other load than the "
                       f"wall time): lathe {duration(lathe_cpu) if lathe_cpu else 'n/a'}, "
                       f"peer {duration(peer_cpu) if peer_cpu else 'n/a'}")
        threads = number(row, "torch_threads_seconds")
        if threads:
            out.append(f"{name}: PyTorch on 2 threads takes {duration(threads)}")
        if "peer_loop_seconds" in row:
            out.append(f"{name}: the PyTorch training loop alone took "
                       f"{float(row['peer_loop_seconds']):.2f} s")
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: table.py RESULTS.tsv")
    rows = read_rows(sys.argv[1])
    peak, _ = measured_peak(rows.get("peak", {}))
    header = ["benchmark", "lathe", "peer", "peer name", "lathe/peer speed ratio",
              "lathe GFLOP/s", "% of FMA peak"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for name, row in rows.items():
        if name == "run":
            continue
        print("| " + " | ".join(cell(c) for c in format_row(name, row, peak)) + " |")
    print()
    print("Times are medians per call after warm-up (the epoch row: one wall-clock run of the")
    print("whole command). Speed ratio = peer time / lathe time (> 1: lathe faster). GFLOP/s")
    print("count matmul and convolution flops only. Single thread everywhere but the threads")
    print("row. Measurements, never assertions.")
    for line in notes(rows, peak):
        print("- " + line)


if __name__ == "__main__":
    main()
