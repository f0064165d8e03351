#!/usr/bin/env bash
# docs/repl.md's session transcript, replayed: its inputs (the text after each `lathe> ` or
# `  ...> ` prompt) are piped into `lathe repl --echo`, once per backend, and the output must
# match the transcript: text exactly, numbers within 1e-3 relative (JIT and cc may differ in
# the last digits), times ("in 0.1 ms") ignored.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# the first ``` block after "## A session"
awk '/^## A session/{s=1} s&&/^```$/{n++; next} s&&n==1{print}' "$ROOT/docs/repl.md" \
  > "$TMP/want.txt"
[[ -s $TMP/want.txt ]] || { echo "FAIL: no transcript in docs/repl.md"; exit 1; }
sed -n -e 's/^lathe> //p' -e 's/^  \.\.\.> //p' "$TMP/want.txt" > "$TMP/inputs.txt"

for backend in jit cc; do
  "$LATHE" repl --echo --backend $backend < "$TMP/inputs.txt" > "$TMP/got-$backend.txt"
  /usr/bin/python3 - "$TMP/got-$backend.txt" "$TMP/want.txt" <<'PY'
import re, sys
num = re.compile(r'[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?')
def norm(path):
    text = re.sub(r'in [0-9.]+ ms', 'in T ms', open(path).read())
    return text.splitlines()
got, want = norm(sys.argv[1]), norm(sys.argv[2])
bad = []
if len(got) != len(want):
    bad.append(f"{len(got)} lines, transcript has {len(want)}")
for i, (g, w) in enumerate(zip(got, want)):
    if num.sub('#', g) != num.sub('#', w):
        bad.append(f"line {i + 1}: got {g!r}, want {w!r}")
        continue
    for a, b in zip(num.findall(g), num.findall(w)):
        if abs(float(a) - float(b)) > 1e-3 * max(abs(float(b)), 1e-1):
            bad.append(f"line {i + 1}: {a} vs {b}: {g!r}")
if bad:
    print("FAIL " + sys.argv[1] + ":\n  " + "\n  ".join(bad[:10]))
    sys.exit(1)
print(f"ok: {sys.argv[1]} matches the transcript ({len(want)} lines)")
PY
done
