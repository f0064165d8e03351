#!/usr/bin/env bash
# `lathe dump --memplan` of a model with a run-time batch (docs/dynamic-batch.md): every
# buffer's size and offset as A*n + B, equal to the plan table of the generated header (the
# same buffers at the same offsets; sizes as planned, rounded up to 64 bytes), and each
# entry's <MODEL>_<ENTRY>_WORKSPACE_BYTES(n) = A*n + B equal to the header's #define, the
# model-wide one too. examples/cnn.lathe's train step has
# both pools: per-sample buffers at A*n and static ones at A*n + B. A static model's plan
# keeps plain numbers.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
MODEL=$ROOT/examples/cnn.lathe

"$LATHE" dump "$MODEL" -D 'N=dynamic(max=64)' --memplan > plan.txt
"$LATHE" compile "$MODEL" -D 'N=dynamic(max=64)' -o gen > /dev/null
"$LATHE" dump "$ROOT/examples/mlp.lathe" --memplan > static.txt
/usr/bin/python3 - plan.txt gen/cnn.h static.txt <<'PY'
import re, sys
plan, header, static = (open(p).read() for p in sys.argv[1:])
AFF = r"(\d+\*n \+ \d+|\d+\*n|\d+)"

# the dump's rows per entry: node id -> (bytes, offset)
rows, entry = {}, None
for line in plan.splitlines():
    m = re.match(r"; entry (\w+): workspace plan at run-time batch n, 1 <= n <= 64", line)
    if m:
        entry = m.group(1)
        rows[entry] = {}
        continue
    m = re.match(r"%(\d+)\s+\S+\s+" + AFF + r"\s+" + AFF + r"\s+-?\d+\s+\d+$", line)
    if m:
        rows[entry][int(m.group(1))] = (m.group(2), m.group(3))
assert set(rows) == {"forward", "train"}, rows.keys()

# the header's plan tables: t<id> (name) bytes offset kernels source
hrows, entry = {}, None
for line in header.splitlines():
    m = re.match(r"/\* workspace plan of cnn_(\w+):", line)
    if m:
        entry = m.group(1)
        hrows[entry] = {}
        continue
    m = re.match(r" \*\s+t(\d+)(?: \([^)]*\))?\s+" + AFF + r"\s+" + AFF + r"\s+\d+\.\.", line)
    if m and entry:
        hrows[entry][int(m.group(1))] = (m.group(2), m.group(3))
for e in rows:
    assert set(rows[e]) == set(hrows[e]), (e, sorted(rows[e]), sorted(hrows[e]))
    for node, (size, offset) in rows[e].items():
        assert offset == hrows[e][node][1], (e, node, offset, hrows[e][node])
        hsize = hrows[e][node][0]  # the header's exact bytes; the plan's rounded up to 64
        assert ("*n" in size) == ("*n" in hsize), (e, node, size, hsize)
        got, exact = (int(v.split("*")[0]) for v in (size, hsize))
        assert got == (exact + 63) // 64 * 64, (e, node, size, hsize)
per_n = [r for r in rows["train"].values() if "*n" in r[0]]
static_at = [r for r in rows["train"].values() if "*n" not in r[0] and "*n + " in r[1]]
assert per_n and static_at, "expected per-sample buffers and static ones above them"
print(f"plan rows equal the header's: {sum(map(len, rows.values()))} buffers, "
      f"{len(per_n)} of train per sample, {len(static_at)} static at A*n + B, e.g. {static_at[0]}")

macros = dict(re.findall(r"^(CNN\w*_WORKSPACE_BYTES)\(n\) = " + AFF + "$", plan, re.M))
assert set(macros) == {"CNN_WORKSPACE_BYTES", "CNN_FORWARD_WORKSPACE_BYTES",
                       "CNN_TRAIN_WORKSPACE_BYTES"}, macros
for name, value in macros.items():
    m = re.search(r"#define " + name + r"\(n\) \(\(size_t\)(\d+) \* \(size_t\)\(n\) \+ "
                  r"\(size_t\)(\d+)\)", header)
    a, b = (int(v) for v in m.groups())
    want = f"{a}*n + {b}" if a and b else (f"{a}*n" if a else f"{b}")
    assert value == want, (name, value, want)
    print(f"{name}(n) = {value}: as in the header")

assert "*n" not in static and "WORKSPACE_BYTES" not in static, static
assert re.search(r"^arena \d+ bytes; sum of \d+ buffers \d+ bytes", static, re.M), static
print("a static model's plan: plain numbers")
PY
echo "dump_memplan_dyn: ok"
