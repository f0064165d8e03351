#!/usr/bin/env bash
# Quantization-aware training (issue 19, docs/int8.md "Quantization-aware training"): the
# `quantize` statement of tests/int8/qat_small.lathe against PyTorch's fake quantization
# (tests/fixtures/make_qat_fixture.py, committed under tests/fixtures/qat/), and the
# conversion of the trained model by `lathe quantize` without calibration.
#   1. the gradients of the compile-time backward pass (`lathe grad`: ranges from the batch)
#      and the loss equal torch's;
#   2. two train steps (`lathe train`, SGD): the params and the moving-average ranges in the
#      checkpoint equal torch's; a run resumed after the first step equals the straight run
#      bit for bit (ranges included);
#   3. conversion: trained on 256 samples, `lathe quantize` takes the ranges from the
#      checkpoint; every int8 tensor and layer output is within one quantum of the QAT model's
#      fake-quantized one and the predictions agree (the report's JSON, and `lathe run` of
#      both models on a batch); the int8 model's scales are TFLite's from the ranges;
#   4. bad input: a float checkpoint (no ranges), options the statement decides, a model
#      without the statement and without --calibrate: clear errors, nothing written.
# The generated C train step against the evaluator: tests/unit/test_qat.c.
set -euo pipefail
# shellcheck source=tests/int8/qat_check.bash
source "$(realpath "$2")/tests/int8/qat_check.bash" # LATHE, ROOT, PY, TMP (the cwd)
M=$ROOT/tests/int8/qat_small.lathe
F=$ROOT/tests/fixtures/qat

# ---- 1. gradients ---------------------------------------------------------------------------
qat_grad "$M" "$F"

# ---- 2. two steps, the ranges in the checkpoint, resume ---------------------------------------
qat_steps "$M" "$F" c1.qat_in,c1.qat_out,h.qat_out
train() { qat_train "$M" "$@"; }

# ---- 3. conversion without calibration ------------------------------------------------------
$PY - <<'PY'
import numpy as np
r = np.random.default_rng(5)
x = r.random((256, 1, 6, 6), dtype=np.float32) * 2 - 0.5
label = (x[:, 0, :3].sum(axis=(1, 2)) > x[:, 0, 3:].sum(axis=(1, 2))).astype(np.int32)
label += 2 * (x[:, 0, :, :3].sum(axis=(1, 2)) > x[:, 0, :, 3:].sum(axis=(1, 2)))
np.save("x256.npy", x), np.save("label256.npy", label)
np.save("x8.npy", x[:8])
PY
train x256.npy,label256.npy --resume w0.safetensors --epochs 3 --checkpoint qat.safetensors
quiet "$LATHE" quantize "$M" --weights qat.safetensors -o int8 --calibrate x256.npy,label256.npy \
  --report-json report.json
grep -q "taking the ranges of 3 tensors of 3 layers from qat.safetensors" log ||
  { cat log; echo "FAIL: the conversion did not take the checkpoint's ranges"; exit 1; }
quiet "$LATHE" run "$M" --weights qat.safetensors --input x=x8.npy --out fq
quiet "$LATHE" run int8.lathe --weights int8.safetensors --input x=x8.npy --out q
qat_converted '{"x": "c1.qat_in", "c1": "c1.qat_out", "h": "h.qat_out"}'

# ---- 4. bad input ----------------------------------------------------------------------------
fails() { # fails EXPECTED-TEXT COMMAND...: exits non-zero, says the text, writes no int8 files
  local want=$1
  shift
  if "$@" >"$TMP/log" 2>&1; then echo "FAIL: accepted: $*"; exit 1; fi
  grep -qF -- "$want" "$TMP/log" || { cat "$TMP/log"; echo "FAIL: expected '$want'"; exit 1; }
  [ ! -e bad.lathe ] && [ ! -e bad.safetensors ] || { echo "FAIL: output written: $*"; exit 1; }
}
fails "has no range 'c1.qat_in' (f32[2], min and max) for 'x': train the model" \
  "$LATHE" quantize "$M" --weights "$F/weights.safetensors" -o bad
fails "--keep-float: this model's quantize statement chooses the float layers" \
  "$LATHE" quantize "$M" --weights qat.safetensors -o bad --keep-float h
sed -e '/^  quantize$/d' "$M" > float.lathe
fails "expected --calibrate SPEC" "$LATHE" quantize float.lathe --weights qat.safetensors -o bad
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s, numpy as np
t = s.load('qat.safetensors'); t['h.qat_out'] = np.zeros(2, np.float32); s.save('z.safetensors', t)"
fails "cannot quantize 'h' (range 'h.qat_out' of z.safetensors is [0, 0]): degenerate range" \
  "$LATHE" quantize "$M" --weights z.safetensors -o bad
echo "ok: a float checkpoint, --keep-float, no --calibrate without QAT, a zero range: refused"
