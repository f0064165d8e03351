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

# a model with a run-time batch (docs/dynamic-batch.md): its inputs are data with that batch,
# and every call runs at the rows :set gave them (zeros at the bound before); more rows than
# the bound are refused with the bound in the message, and the last good value stays; a
# batch of 1 trains no batch norm that sees one value per channel
sed 's/^const N = 64 .*/const N = dynamic(max = 64)/' "$ROOT/examples/mlp.lathe" > mlpd.lathe
/usr/bin/python3 -c "
import numpy as np
rng = np.random.default_rng(2)
np.save('x5.npy', rng.random((5, 784), dtype=np.float32))
np.save('l5.npy', np.array([1, 0, 3, 9, 2], dtype=np.int32))
np.save('x1.npy', rng.random((1, 784), dtype=np.float32))
np.save('l1.npy', np.array([4], dtype=np.int32))
np.save('x70.npy', rng.random((70, 784), dtype=np.float32))
np.save('b1.npy', rng.random((1, 3), dtype=np.float32))"
"$LATHE" repl mlpd.lathe > out.txt <<'S'
probs
:set x x5.npy
:set label l5.npy
probs
:grad loss wrt h1.w
:train loss 2
:set x x70.npy
sum(x)
:set x x1.npy
:set label l1.npy
:train loss 1
probs
data b: f32[N, 3] = ones
import nn
data v: f32[N, 3]
z = batchnorm1d(v)
:set v b1.npy
zs = sum(z)
:train zs 1
S
check 'f32\[64, 10\]'                                  # zeros at the bound before :set
check 'x <- x5.npy (a run-time batch of 5)'
check 'f32\[5, 10\]'
check "error: x70.npy is f32\[70, 784\], but 'x' is f32\[n<=64, 784\]: n rows for a \
run-time batch n from 1 to 64"
check 'f32\[1, 10\]'
check "error: data 'b' has a run-time batch (f32\[N, 3\]): it starts as zeros, not 'ones'"
check "entry 'train': a batch of 1 cannot train this model: batch norm 'z'"
/usr/bin/python3 - <<'PY'
import re, sys
text = open('out.txt').read()
# sum(x) after the refused :set is the 5 rows of x5.npy (the value kept), not 70 rows
import numpy as np
want = float(np.load('x5.npy').astype(np.float64).sum())
got = float(re.search(r'f32\[\]\n(-?[0-9.]+)', text).group(1))
if abs(got - want) > 1e-3 * abs(want):
    sys.exit(f"FAIL: sum(x) after refusing 70 rows: {got}, want the 5 rows' {want}")
steps = re.findall(r'step \d+: loss = ([0-9.]+)', text)
if len(steps) != 3 or not all(np.isfinite(float(v)) for v in steps):
    sys.exit(f"FAIL: :train at n = 5 and n = 1: {steps}")
print(f"ok: sum(x) = {got:.4f} over the 5 rows kept; train losses {steps}")
PY
