#!/usr/bin/env bash
# `lathe repl` driven by piped scripts: errors print a diagnostic and the session continues;
# params persist across evaluations and through :save/:restore; :load runs a file; :ir and :c
# print the compiled forms; :set loads data from .npy; :time reports a median; a redefinition
# replaces the old value; an unfinished input at end of file is reported.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

check() { # pattern — must occur in out.txt
  grep -q -- "$1" out.txt || { echo "FAIL: no '$1' in the output:"; cat out.txt; exit 1; }
  echo "ok: $1"
}

cat > lib.lathe <<'L'
# a library of fns, loaded with :load
fn scaled(v: f32[..., D], k: int) -> f32[..., D] {
  return v * 2.0
}
L
/usr/bin/python3 -c "
import numpy as np
np.save('x.npy', np.arange(6, dtype=np.float32).reshape(2, 3))"

"$LATHE" repl > out.txt <<'S'
param w: f32[3, 2] = ones
data x: f32[2, 3]
:set x x.npy
x @ w
nosuch(x)
1 +
y = x @ w
y
y = x @ w * 10.0
y
:load lib.lathe
scaled(y, 3)
:grad sum(x @ w) wrt w
l = sum((x @ w) * (x @ w))
:train l 3 sgd(lr = 0.001)
:save ckpt.safetensors
:ir y
:c y
:time y
:reset
:vars
param w: f32[3, 2] = zeros
x2: f32[2]
:restore ckpt.safetensors
w
:bogus
model m() { }
sum(w
S
check '\[\[ 3.0000  3.0000\]'            # x @ w with x = arange(6) from x.npy
check "<input>:1:1: error: unknown function 'nosuch'"
check '<input>:1:4: error: expected an expression'   # the column in `1 +`, not in the
check '^  1 +$'                                       # synthetic `output _ = 1 +`
if grep -q '^ *output _ = .* +$' out.txt; then echo "FAIL: a diagnostic shows the synthetic model"; exit 1; fi
check '\[\[ 30.0000  30.0000\]'          # the redefinition of y
check '\[\[ 60.0000  60.0000\]'          # scaled(y) from the :load'ed file
check 'd(sum(x @ w))/d(w): f32\[3, 2\]'
check '\[\[3.0000 3.0000\]'               # its value: column sums of x
check 'step 3: l = '
check 'saved 2 tensors to ckpt.safetensors'
check 'matmul'                            # :ir
check 'void repl_forward'                 # :c
check 'run: median'
check 'session cleared'
check '(nothing defined)'
check 'restored 2 tensors from ckpt.safetensors'
check "unknown command ':bogus'"
check 'blocks are for files'
check "expected ')'"
# after :restore, w holds the trained values (not the zeros of its new declaration)
/usr/bin/python3 - <<'PY'
import re, sys
text = open('out.txt').read()
w = text.split('restored 2 tensors')[1]
vals = [float(v) for v in re.findall(r'-?\d+\.\d+', w.split('error')[0])]
if len(vals) != 6 or all(v == 0 for v in vals) or any(v >= 1 for v in vals):
    sys.exit(f"FAIL: w after :restore: {vals}")
print(f"ok: trained w restored: {vals}")
PY

# the file argument is loaded first; the exit status is 0 at end of input
printf 'param b: f32[2] = ones\n' > start.lathe
echo 'b + 1.0' | "$LATHE" repl start.lathe > out.txt
check '\[2.0000 2.0000\]'

# `lathe repl MODEL.lathe` loads the model: inputs as data, bindings (the train block is
# skipped with one note, not two "blocks are for files" errors)
"$LATHE" repl "$ROOT/examples/mlp.lathe" > out.txt <<'S'
:vars
probs
:time sum(x)
S
check "model 'mlp': 2 inputs as data (zeros until :set), 5 bindings"
check "note: the file's train block is skipped"
check 'binding probs = softmax(logits)'
check 'f32\[64, 10\]'
if grep -q 'blocks are for files' out.txt; then echo "FAIL: model file refused"; exit 1; fi
# :time of a small expression reads in us or ns, not "0.000 ms"
check 'run: median [0-9.]* \(s\|ms\|us\|ns\) of'
if grep -q 'median 0.000 ' out.txt; then echo "FAIL: a zero median"; cat out.txt; exit 1; fi

# a non-scalar :grad/:train target is named in the user's words (no __loss, no <repl>:L:C);
# a binding cannot replace the data tensor its own expression reads; :restore refuses a
# tensor whose type differs from the session's declaration and says so
"$LATHE" repl > out.txt <<'S'
param w: f32[3, 2] = ones
data x: f32[2, 3]
y = x @ w
:grad y wrt w
:train y 3
x = x * 2.0
S
"$LATHE" repl >> out.txt <<'S'
param w: f32[5, 2] = ones
data x: f32[2, 3]
:restore ckpt.safetensors
S
check "error: the loss 'y' must be a scalar, got f32\[2, 2\]; reduce it, e.g. sum(y)"
if grep -q -e '__loss' -e '<repl>:' out.txt; then echo "FAIL: internal names:"; cat out.txt; exit 1; fi
check "error: 'x' is a data tensor (f32\[2, 3\] = zeros); a binding of that name cannot use it"
[ "$(grep -c 'error' out.txt)" -eq 4 ] || { echo "FAIL: not one error per mistake:"; cat out.txt; exit 1; }
check "error: 'w' is f32\[3, 2\] in the checkpoint, but the session declares f32\[5, 2\]; not restored"
check "restored 1 of 2 tensors from ckpt.safetensors"
