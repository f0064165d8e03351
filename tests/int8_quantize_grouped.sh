#!/usr/bin/env bash
# int8 post-training quantization of grouped and depthwise convolutions (issue 19,
# docs/int8.md): `lathe quantize` of tests/int8/mobile.lathe (conv -> depthwise 3x3 with two
# outputs per channel and stride 2 -> pointwise 1x1 -> 3x3 with 4 groups, dilated -> float
# dense), trained briefly on random data:
#   - the written model has both grouped layers as qconv2d with `groups`, and no float island
#     before the last layer; the report lists them (dwconv, gconv) and their tensors' ranges;
#   - tests/int8/quantize_ref.py: every scale and zero point is the oracle's choose_params of
#     the chosen range, every int8 weight (per output channel), bias, multiplier and shift the
#     oracle's, and the oracle's chain (conv2d per group) from quantize(x) gives lathe's int8
#     layer values bit for bit; per tensor (--per-tensor) too;
#   - the oracle's int8 values equal, byte for byte, those of the evaluator, the compiled model
#     and the baked C (`lathe compile --bake`, native and generic, gcc and clang, -Werror); the
#     generic C builds for Cortex-M4; a one-step mutation of the oracle's output is caught;
#   - bad input: a foreign weight file whose depthwise weight has a grouped conv's shape, or is
#     missing, is a clear error and writes nothing; so is a layer with no int8 form (a dense
#     summing 65537 inputs per output), listed with --keep-float named.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
cd "$TMP"
# shellcheck source=tests/int8/oracle_check.bash
source "$ROOT/tests/int8/oracle_check.bash"
M=$ROOT/tests/int8/mobile.lathe
LAYERS="c1 dw pw g"

/usr/bin/python3 - <<'PY'
import os
import numpy as np
rng = np.random.default_rng(19)
os.makedirs("data", exist_ok=True)
x = rng.uniform(-1, 1, (64, 2, 8, 8)).astype(np.float32)
np.save("data/x.npy", x)
np.save("data/label.npy", (x[:, 0].sum(axis=(1, 2)) > x[:, 1].sum(axis=(1, 2))).astype(np.int32))
np.save("x8.npy", x[:8])
PY
quiet "$LATHE" train "$M" --data data --epochs 2 --checkpoint m.safetensors
quiet "$LATHE" quantize "$M" --weights m.safetensors --calibrate data --report-json r.json -o q
cat "$TMP/log"
DW="  dw = qconv_group_layer(c1, 16, 3, 3, stride = 2, padding = 1, dilation = 1, groups = 8,"
GC="  g = qconv_group_layer(pw, 8, 3, 3, stride = 1, padding = 2, dilation = 2, groups = 4,"
grep -qF "$DW" q.lathe && grep -qF "$GC" q.lathe &&
  grep -q "^  pw = qconv_layer(dw, 12, 1, 1" q.lathe ||
  { cat q.lathe; echo "FAIL: the grouped layers are not qconv2d with groups"; exit 1; }
[ "$(grep -c "dequantize(" q.lathe)" = 1 ] &&
  grep -q "^  t[0-9]* = reshape(g, \[N, 128\])" q.lathe ||
  { cat q.lathe; echo "FAIL: a float island between the int8 layers"; exit 1; }
grep -Eq "^dw +dwconv +int8 " log && grep -Eq "^g +gconv +int8 " log ||
  { echo "FAIL: the report does not list the grouped layers"; exit 1; }
/usr/bin/python3 - <<'PY'
import json
r = json.load(open("r.json"))
kinds = [(L["name"], L["int8"], L.get("groups")) for L in r["layers"]]
assert kinds == [("c1", True, 1), ("dw", True, 8), ("pw", True, 1), ("g", True, 4),
                 ("logits", False, None)], kinds
names = [t["name"] for t in r["tensors"]]
assert names == ["x", "c1", "dw", "pw", "g"], names
assert all(t["hi"] > t["lo"] for t in r["tensors"]), r["tensors"]
print(f"ok: report: {kinds}, ranges of {names}")
PY

# the int8 layers as outputs; the oracle's chain, saved as the expected outputs
PROBES='s/^  output probs$/  output c1\n  output dw\n  output pw\n  output g\n  output probs/'
sed "$PROBES" q.lathe >qo.lathe
grep -q "^  output pw$" qo.lathe
quiet "$LATHE" run qo.lathe --weights q.safetensors --input x=x8.npy --out eval --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" m.safetensors q.safetensors r.json x8.npy \
  eval --expected "$TMP/ref/expected" | tee oracle.log
for L in $LAYERS; do
  grep -q "ok: $L equals the oracle's" oracle.log || { echo "FAIL: $L not checked"; exit 1; }
done

# every backend equals the oracle byte for byte
check eval "the evaluator"
quiet "$LATHE" run qo.lathe --weights q.safetensors --input x=x8.npy --out "$TMP/cc" --backend cc
check "$TMP/cc" "the compiled model (cc)"
for target in native generic; do
  quiet "$LATHE" compile qo.lathe --weights q.safetensors --bake --target "$target" -o "c-$target"
  grep -q "lathe_requant(" "c-$target/mobile.c" ||
    { echo "FAIL: no integer requantization"; exit 1; }
  for cc in gcc clang; do
    mkdir -p "c-$target/$cc"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "c-$target/mobile.c" \
      -o "c-$target/$cc/mobile.so" -lm
    quiet "$LATHE" run "c-$target/$cc/mobile.so" --input x=x8.npy --out "out-$target-$cc"
    check "out-$target-$cc" "baked C, $target, $cc"
  done
done
command -v arm-none-eabi-gcc >/dev/null ||
  { echo "FAIL: arm-none-eabi-gcc missing (scripts/install-deps.sh)"; exit 1; }
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -O2 -Wall -Wextra -Werror \
  -c c-generic/mobile.c -o mobile-m4.o
echo "ok: the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror)"
check_mutant dw

# per-tensor weight scales: the oracle's too
quiet "$LATHE" quantize "$M" --weights m.safetensors --calibrate data --per-tensor \
  --report-json rt.json -o qt
sed "$PROBES" qt.lathe >qto.lathe
quiet "$LATHE" run qto.lathe --weights qt.safetensors --input x=x8.npy --out evalt --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" m.safetensors qt.safetensors rt.json x8.npy \
  evalt | tee oracle-t.log
grep -q "ok: g equals the oracle's conv2d (4 groups)" oracle-t.log ||
  { echo "FAIL: g not checked per tensor"; exit 1; }

# bad input: a foreign weight file with a grouped conv's shape for the depthwise weight, or
# without it: clear errors, nothing written
fails() { # expected-message cmd...: must fail with the message, writing no bad.* file
  local want=$1
  shift
  if "$@" >"$TMP/err" 2>&1; then echo "FAIL: succeeded: $*"; exit 1; fi
  grep -qF -- "$want" "$TMP/err" || { cat "$TMP/err"; echo "FAIL: no '$want'"; exit 1; }
  if ls "$TMP"/bad.* >/dev/null 2>&1; then echo "FAIL: output written by: $*"; exit 1; fi
  echo "ok: refused: $want"
}
/usr/bin/python3 - "$ROOT/tests/fixtures" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, safetensors_py as st
t = st.load("m.safetensors")
t["dw.w"] = np.zeros((16, 2, 3, 3), np.float32)  # groups 4's shape, not depthwise's
st.save("wrong.safetensors", t)
del t["dw.w"]
st.save("missing.safetensors", t)
PY
fails "tensor 'dw.w' is f32[16, 2, 3, 3], but the model expects f32[16, 1, 3, 3]" \
  "$LATHE" quantize "$M" --weights wrong.safetensors --calibrate data -o bad
fails "no tensor 'dw.w'" "$LATHE" quantize "$M" --weights missing.safetensors --calibrate data \
  -o bad

# what is still refused: a layer whose int32 sum could overflow (more than 65536 inputs per
# output, the bound of qdense and qconv2d) is listed with --keep-float named
cat >wide.lathe <<'LATHE'
import nn
model wide(x: f32[4, 65537], label: i32[4]) {
  h = relu(dense(x, 4))
  logits = dense(h, 3)
  output probs = softmax(logits)
  loss = cross_entropy(logits, label)
}
train wide {
  minimize loss
  optimizer sgd(lr = 0.01)
}
LATHE
/usr/bin/python3 -c "
import os
import numpy as np
os.makedirs('wdata', exist_ok=True)
np.save('wdata/x.npy', np.random.default_rng(3).uniform(-1, 1, (4, 65537)).astype(np.float32))
np.save('wdata/label.npy', np.arange(4, dtype=np.int32) % 3)"
quiet "$LATHE" train wide.lathe --data wdata --epochs 1 --checkpoint wide.safetensors
fails "layer 'h' has no int8 form: 65537 inputs per output could overflow qdense/qconv2d's \
int32 sum (at most 65536)" \
  "$LATHE" quantize wide.lathe --weights wide.safetensors --calibrate wdata -o bad
grep -qF "keep it float with --keep-float h" "$TMP/err" || { cat "$TMP/err"; exit 1; }
