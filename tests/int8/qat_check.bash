# tests/int8/qat_check.bash — sourced by the quantization-aware training tests (int8_qat.sh,
# int8_qat_residual.sh, int8_qat_grouped.sh) with their arguments LATHE ROOT: sets LATHE,
# ROOT, PY and TMP (the current directory, removed at exit unless KEEP is set), then checks a
# model with a `quantize` statement against its PyTorch fixture
# (tests/fixtures/make_qat_fixture.py).
#   quiet CMD...                 runs CMD, showing its output only when it fails
#   close A B RTOL WHAT          every tensor of safetensors B is in A, within RTOL (relative)
#   qat_grad M F                 `lathe grad` of model M on fixture F's batch and weights: the
#                                gradients and the loss equal torch's
#   qat_steps M F STATES         two SGD steps by `lathe train` from F's weights give torch's
#                                params and ranges; resumed after one == straight, bit for bit;
#                                the checkpoint holds each range state named in STATES
#                                (comma-separated). Leaves w0.safetensors (F's weights, epoch 0).
#   qat_converted RANGES [QUANTA] after `lathe quantize M --weights qat.safetensors --calibrate ...
#                                --report-json report.json -o int8` and `lathe run` of M (into
#                                fq/) and of int8.lathe (into q/) on a batch: each observed
#                                tensor's scale and zero point are the oracle's choose_params of
#                                its range state in qat.safetensors (RANGES: JSON, the report's
#                                tensor name -> the state); each int8 tensor (not a float input:
#                                the QAT model's probe of it is before its quantization) and
#                                each int8 layer's result is within QUANTA (default 1) quanta of
#                                the fake-quantized model's; the predictions agree
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }

# the set-up every QAT test shares: sourced as `source ROOT/tests/int8/qat_check.bash` by a
# script called with LATHE and ROOT as its arguments
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT
cd "$TMP"
$PY -c 'import numpy' || { echo "$(basename "$0" .sh): python3-numpy is missing" >&2; exit 1; }

close() {
  $PY - "$ROOT/tests/fixtures" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, safetensors_py as st
a, b, rtol, what = st.load(sys.argv[2]), st.load(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
worst = 0.0
for k, want in b.items():
    assert k in a, f"FAIL: {what}: {k} is missing"
    got = a[k]
    assert got.shape == want.shape, f"{what}: {k} is {got.shape}, torch's {want.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - want) / np.maximum(1, np.abs(want))))
    assert err <= rtol, f"FAIL: {what}: {k} differs from torch's by {err:.3g} (> {rtol})"
    worst = max(worst, err)
print(f"ok: {what} equal torch's ({len(b)} tensors, largest relative error {worst:.2g})")
PY
}

qat_grad() {
  quiet "$LATHE" grad "$1" --weights "$2/weights.safetensors" --input x="$2/x.npy" \
    --input label="$2/label.npy" --out grad
  close grad/grads.safetensors "$2/grads.safetensors" 1e-5 "the gradients through fake_quant"
  $PY - "$TMP/log" "$2/loss.npy" <<'PY'
import re, sys
import numpy as np
got = float(re.search(r"loss ([-0-9.e]+)", open(sys.argv[1]).read()).group(1))
want = float(np.load(sys.argv[2]))
assert abs(got - want) <= 1e-5 * abs(want), f"FAIL: loss {got} against torch {want}"
print(f"ok: the loss {got} equals torch {want:.8f}")
PY
}

qat_train() { quiet "$LATHE" train "$1" --data "$2" --task none "${@:3}"; }

qat_steps() {
  local m=$1 f=$2 data=$2/x.npy,$2/label.npy # one batch: one step per epoch
  $PY - "$ROOT/tests/fixtures" "$f/weights.safetensors" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, safetensors_py as s
t = s.load(sys.argv[2])
t["lathe.epoch"] = np.int64([0]).reshape(())
s.save("w0.safetensors", t)
PY
  qat_train "$m" "$data" --resume w0.safetensors --epochs 2 --checkpoint straight.safetensors
  close straight.safetensors "$f/step2.safetensors" 1e-5 "params and ranges after two steps"
  qat_train "$m" "$data" --resume w0.safetensors --epochs 1 --checkpoint chain.safetensors
  qat_train "$m" "$data" --resume chain.safetensors --epochs 2 --checkpoint chain.safetensors
  $PY - "$ROOT/tests/fixtures" "$3" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import safetensors_py as st
a, b = st.load("straight.safetensors"), st.load("chain.safetensors")
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
bad = [k for k in a if a[k].tobytes() != b[k].tobytes()]
assert not bad, f"FAIL: the resumed run differs from the straight one in {bad}"
assert all(k in a for k in sys.argv[2].split(",")), sorted(a)
print(f"ok: the checkpoint carries the ranges; resumed == straight bit for bit ({len(a)} tensors)")
PY
}

qat_converted() {
  $PY - "$ROOT/tests/fixtures" "$ROOT/tests/int8" "$1" "${2:-1}" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2])
import numpy as np, safetensors_py as st
import tflite_ref as ref
rep, ck = json.load(open("report.json")), st.load("qat.safetensors")
by_name = json.loads(sys.argv[3])
bound = float(sys.argv[4]) + 1e-5
assert sorted(t["name"] for t in rep["tensors"]) == sorted(by_name), \
    f"FAIL: observed {[t['name'] for t in rep['tensors']]}, expected {sorted(by_name)}"
worst = 0.0
for t in rep["tensors"]:
    lo, hi = (float(v) for v in ck[by_name[t["name"]]])
    s, z = ref.choose_params(lo, hi)
    assert (np.float32(t["scale"]), t["zp"]) == (np.float32(s), z), \
        f"FAIL: {t['name']}: scale {t['scale']} zp {t['zp']}, the oracle's {s} {z} of [{lo}, {hi}]"
    if by_name[t["name"]].endswith(".qat_in"):
        continue  # a float input: the probe of the QAT model is before its fake quantization
    quanta = t["max_abs_err"] / t["scale"]
    assert quanta <= bound, f"FAIL: tensor {t['name']} is {quanta:.3f} quanta off"
    worst = max(worst, quanta)
for layer in rep["layers"]:
    if not layer["int8"]:
        continue
    scale = rep["tensors"][layer["y"]]["scale"]
    quanta = layer["max_abs_err"] / scale
    assert quanta <= bound, f"FAIL: layer {layer['name']} is {quanta:.3f} quanta off"
    worst = max(worst, quanta)
out = rep["outputs"][0]
assert out["top1_agreement"] == 1, f"FAIL: top-1 agreement {out['top1_agreement']}"
fq, q = np.load("fq/probs.npy"), np.load("q/probs.npy")
assert np.array_equal(fq.argmax(1), q.argmax(1)), "FAIL: the predictions of the batch differ"
print(f"ok: int8 tensors and layers within {worst:.3f} quanta of the QAT model "
      f"({len(rep['tensors'])} tensors); probs max |diff| {out['max_abs_err']:.3g}, on a batch "
      f"{np.abs(fq - q).max():.3g}; top-1 agrees")
PY
}
