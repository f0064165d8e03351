#!/usr/bin/env bash
# int8 post-training quantization (issue 19, docs/int8.md): `lathe quantize` of the example
# MLP, trained briefly on Fashion-MNIST (Debian dataset-fashion-mnist):
#   - the report: the int8 model's probabilities agree with float's top-1 on >= 95% of the
#     calibration samples; `lathe eval` of the int8 model on the 10000 test images loses at
#     most 1.5 points of accuracy against float;
#   - tests/int8/quantize_ref.py: every scale and zero point is the oracle's choose_params of
#     the chosen range, every int8 weight, bias, multiplier and shift is the oracle's
#     (tests/int8/tflite_ref.py), and the oracle's fully_connected chain from quantize(x)
#     gives exactly lathe's int8 layer values;
#   - the written model gives the same int8 bytes through the evaluator, the compiled model
#     and `lathe compile --bake` C (native and generic, gcc and clang, -Werror);
#   - --quantize-last: the MLP's softmax is a qsoftmax, the oracle's;
#   - every observer and --per-tensor write a model; bad input (calibration data that does
#     not fit, all-zero activations, an unknown --keep-float name) is a clear error and
#     writes nothing.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }
fails() { # expected-message cmd...: must exit 1 with the message, writing no q.* file
  local want=$1
  shift
  if "$@" >"$TMP/err" 2>&1; then echo "FAIL: succeeded: $*"; exit 1; fi
  grep -qF -- "$want" "$TMP/err" || { cat "$TMP/err"; echo "FAIL: no '$want'"; exit 1; }
  if ls "$TMP"/bad.* >/dev/null 2>&1; then echo "FAIL: output written by: $*"; exit 1; fi
  echo "ok: refused: $want"
}
MLP=$ROOT/examples/mlp.lathe

quiet "$LATHE" train "$MLP" --data fashion-mnist --epochs 1 --limit 4096 \
  --checkpoint mlp.safetensors
quiet "$LATHE" quantize "$MLP" --weights mlp.safetensors --calibrate fashion-mnist --limit 256 \
  --report-json report.json -o q
cat "$TMP/log"
test -s q.lathe && test -s q.safetensors

/usr/bin/python3 - report.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
out = r["outputs"][0]
assert out["top1_agreement"] >= 0.95, f"top-1 agreement {out['top1_agreement']} < 0.95"
assert out["rel_rms"] < 0.05, f"relative RMS error {out['rel_rms']} >= 0.05"
kinds = [(L["name"], L["int8"]) for L in r["layers"]]
assert kinds == [("h1", True), ("h2", True), ("logits", False)], kinds
print(f"ok: report: top-1 agreement {out['top1_agreement']:.4f}, rel. RMS {out['rel_rms']:.4f}")
PY

accuracy() {
  "$LATHE" eval "$@" --data fashion-mnist | sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p'
}
f32=$(accuracy "$MLP" --weights mlp.safetensors)
i8=$(accuracy q.lathe --weights q.safetensors)
/usr/bin/python3 -c "
import sys
f, q = float(sys.argv[1]), float(sys.argv[2])
assert f > 70, f'float accuracy {f}'
assert f - q <= 1.5, f'int8 accuracy {q} is more than 1.5 points below float {f}'
print(f'ok: test accuracy f32 {f}%, int8 {q}%')" "$f32" "$i8"

# the int8 layers as outputs, on 64 test images
sed 's/^  output probs$/  output h1\n  output h2\n  output probs/' q.lathe >qo.lathe
grep -q "^  output h2$" qo.lathe
/usr/bin/python3 - <<'PY'
import gzip
import numpy as np
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    img = np.frombuffer(f.read(), np.uint8, offset=16)[:64 * 784]
np.save("x.npy", (img.reshape(64, 784) / np.float32(255)).astype(np.float32))
PY
quiet "$LATHE" run qo.lathe --weights q.safetensors --input x=x.npy --out ref --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" mlp.safetensors q.safetensors report.json \
  x.npy ref

# the oracle check can fail: a zero point off by one, an int8 value moved by one step
/usr/bin/python3 - <<'PY'
import json
import numpy as np
r = json.load(open("report.json"))
r["tensors"][1]["zp"] += 1
json.dump(r, open("bad_report.json", "w"))
h = np.load("ref/h2.npy")
h.flat[5] += 1 if h.flat[5] < 127 else -1
import os
os.makedirs("mutant", exist_ok=True)
np.save("mutant/h1.npy", np.load("ref/h1.npy"))
np.save("mutant/h2.npy", h)
PY
for args in "bad_report.json x.npy ref" "report.json x.npy mutant"; do
  # shellcheck disable=SC2086
  if /usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" mlp.safetensors q.safetensors $args \
    >"$TMP/mut" 2>&1; then
    cat "$TMP/mut"; echo "FAIL: a mutant passed the oracle check ($args)"; exit 1
  fi
done
echo "ok: the oracle check catches a zero point off by one and an int8 value off by one step"

same() { # dir: its int8 layers equal the evaluator's byte for byte, its probs within 1e-5
  /usr/bin/python3 - "$1" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
for name in ("h1", "h2"):
    got, want = np.load(f"{d}/{name}.npy"), np.load(f"ref/{name}.npy")
    assert got.dtype == np.int8 and np.array_equal(got, want), f"{d}/{name} differs"
p, q = np.load(f"{d}/probs.npy"), np.load("ref/probs.npy")
assert np.allclose(p, q, atol=1e-5), f"{d}/probs: {np.abs(p - q).max()}"
print(f"ok: {d}: int8 layers equal the evaluator bit for bit")
PY
}
quiet "$LATHE" run qo.lathe --weights q.safetensors --input x=x.npy --out cc --backend cc
same cc
for target in native generic; do
  quiet "$LATHE" compile qo.lathe --weights q.safetensors --bake --target "$target" -o "c-$target"
  grep -q "lathe_requant(" "c-$target/mlp.c" || { echo "FAIL: no integer requantization"; exit 1; }
  for cc in gcc clang; do
    mkdir -p "c-$target/$cc"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "c-$target/mlp.c" \
      -o "c-$target/$cc/mlp.so" -lm
    quiet "$LATHE" run "c-$target/$cc/mlp.so" --input x=x.npy --out "out-$target-$cc"
    same "out-$target-$cc"
  done
done

# --reduce-range: 7-bit weights in [-63, 63] (the oracle's, with wmax 63), so AVX2 runs the
# u8 x s8 vpmaddubsw tile on every int8 layer (full-range weights need the exact s16 tile);
# the x86-64-v3 C of both equals the evaluator bit for bit
quiet "$LATHE" quantize "$MLP" --weights mlp.safetensors --calibrate fashion-mnist --limit 256 \
  --reduce-range --report-json r7.json -o q7
grep -q "7-bit (\[-63, 63\], --reduce-range)" q7.lathe
sed 's/^  output probs$/  output h1\n  output h2\n  output probs/' q7.lathe >q7o.lathe
quiet "$LATHE" run q7o.lathe --weights q7.safetensors --input x=x.npy --out ref7 --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" mlp.safetensors q7.safetensors r7.json \
  x.npy ref7
for tag in "" 7; do
  quiet "$LATHE" compile "q${tag}o.lathe" --weights "q$tag.safetensors" --bake \
    --target x86-64-v3 -o "v3$tag"
done
[ "$(grep -c "AVX2's u8 x s8 vpmaddubsw tile" v37/mlp.c)" = 2 ] ||
  { echo "FAIL: --reduce-range weights do not run the u8 x s8 tile"; exit 1; }
grep -q "AVX2's exact s16 tile" v3/mlp.c ||
  { echo "FAIL: full-range weights should need the exact s16 tile"; exit 1; }
if grep -q avx2 /proc/cpuinfo; then
  for tag in "" 7; do
    gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "v3$tag/mlp.c" \
      -o "v3$tag/mlp.so" -lm
    quiet "$LATHE" run "v3$tag/mlp.so" --input x=x.npy --out "o3$tag"
  done
  /usr/bin/python3 - <<'PY'
import numpy as np
for d, ref in (("o3", "ref"), ("o37", "ref7")):
    for name in ("h1", "h2"):
        got, want = np.load(f"{d}/{name}.npy"), np.load(f"{ref}/{name}.npy")
        assert got.dtype == np.int8 and np.array_equal(got, want), f"{d}/{name} differs"
print("ok: x86-64-v3 C (s16 and u8 tiles) equals the evaluator bit for bit")
PY
else
  echo "note: no AVX2 on this CPU: the x86-64-v3 C was generated, not run"
fi

for obs in percentile entropy; do
  quiet "$LATHE" quantize "$MLP" --weights mlp.safetensors --calibrate fashion-mnist \
    --limit 128 --observer "$obs" --per-tensor --report-json "r-$obs.json" -o "q-$obs"
  grep -q "observer $obs" "q-$obs.lathe"
  quiet "$LATHE" run "q-$obs.lathe" --weights "q-$obs.safetensors" --input x=x.npy --out "o-$obs"
  sed 's/^  output probs$/  output h1\n  output h2\n  output probs/' "q-$obs.lathe" >"qo-$obs.lathe"
  quiet "$LATHE" run "qo-$obs.lathe" --weights "q-$obs.safetensors" --input x=x.npy \
    --out "ref-$obs" --reference
  /usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" mlp.safetensors "q-$obs.safetensors" \
    "r-$obs.json" x.npy "ref-$obs"
done

# --quantize-last: the last layer int8 too, and its softmax a qsoftmax (1/256, -128) whose
# probabilities are dequantized; its constants and values are the oracle's (softmax_params of
# the logits' scale, softmax of lathe's int8 logits), top-1 agreement >= 95% and accuracy within
# 1.5 points of float
quiet "$LATHE" quantize "$MLP" --weights mlp.safetensors --calibrate fashion-mnist --limit 256 \
  --quantize-last --report-json rl.json -o ql
grep -q "^  probs_q = qsoftmax(logits, " ql.lathe
grep -q "^  output probs = dequantize(probs_q, 0.00390625, -128)$" ql.lathe
sed 's/^  output probs = /  output h1\n  output h2\n  output logits\n  output pq = probs_q\n  output probs = /' \
  ql.lathe >qlo.lathe
quiet "$LATHE" run qlo.lathe --weights ql.safetensors --input x=x.npy --out refl --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" mlp.safetensors ql.safetensors rl.json \
  x.npy refl
/usr/bin/python3 - "$ROOT/tests/int8" <<'PY'
import json, re, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import tflite_softmax as sm
r = json.load(open("rl.json"))
t = {e["name"]: e for e in r["tensors"]}
assert t["probs"]["rule"] == "softmax" and r["outputs"][0]["top1_agreement"] >= 0.95, r["outputs"]
p = sm.softmax_params(np.float32(t["logits"]["scale"]))
assert re.search(r"^  probs_q = qsoftmax\(logits, %d, %d, %d\)" % p, open("ql.lathe").read(), re.M)
got, logits = np.load("refl/pq.npy"), np.load("refl/logits.npy")
assert got.dtype == np.int8 and np.array_equal(got, sm.softmax(logits, *p)), "not the oracle's"
assert np.array_equal(np.load("refl/probs.npy"), (got.astype(np.float64) + 128) / 256)
print(f"ok: --quantize-last: qsoftmax {p} equals the oracle's softmax, top-1 agreement "
      f"{r['outputs'][0]['top1_agreement']:.4f}")
PY
il=$(accuracy ql.lathe --weights ql.safetensors)
/usr/bin/python3 -c "
import sys
f, q = float(sys.argv[1]), float(sys.argv[2])
assert f - q <= 1.5, f'int8 accuracy {q} (--quantize-last) is more than 1.5 points below {f}'
print(f'ok: --quantize-last: test accuracy f32 {f}%, int8 with qsoftmax {q}%')" "$f32" "$il"

# the CNN: qconv2d layers, int8 max pooling (max_pool2d of the int8 tensor), the flatten of an
# int8 tensor, no dequantize before the last layer; the oracle checks its weights, the
# evaluator equals the baked C
CNN=$ROOT/examples/cnn.lathe
quiet "$LATHE" train "$CNN" --data fashion-mnist --epochs 1 --limit 256 --checkpoint cnn.safetensors
quiet "$LATHE" quantize "$CNN" --weights cnn.safetensors --calibrate fashion-mnist --limit 64 \
  --observer entropy --report-json rc.json -o qc
grep -q "^  c1 = qconv_layer(x_q, 32, 3, 3" qc.lathe
grep -q "^  p1 = max_pool2d(c1, 2" qc.lathe
if grep -q "dequantize(c\|dequantize(p" qc.lathe; then
  echo "FAIL: a float island between the CNN's int8 layers"; exit 1
fi
sed 's/^  output probs$/  output c2\n  output p2\n  output h\n  output probs/' qc.lathe >qco.lathe
/usr/bin/python3 -c "
import numpy as np
np.save('xc.npy', np.load('x.npy')[:64].reshape(64, 1, 28, 28))"
quiet "$LATHE" run qco.lathe --weights qc.safetensors --input x=xc.npy --out cref --reference
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" cnn.safetensors qc.safetensors rc.json \
  xc.npy cref
quiet "$LATHE" compile qco.lathe --weights qc.safetensors --bake --target generic -o cc-cnn
mkdir -p cc-cnn/so
gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC cc-cnn/cnn.c -o cc-cnn/so/cnn.so -lm
quiet "$LATHE" run cc-cnn/so/cnn.so --input x=xc.npy --out cout
/usr/bin/python3 - <<'PY'
import numpy as np
for name in ("c2", "p2", "h"):
    got, want = np.load(f"cout/{name}.npy"), np.load(f"cref/{name}.npy")
    assert got.dtype == np.int8 and np.array_equal(got, want), f"cnn {name} differs"
assert np.allclose(np.load("cout/probs.npy"), np.load("cref/probs.npy"), atol=1e-5)
print("ok: cnn: qconv2d, int8 pooling and qdense of the baked C equal the evaluator bit for bit")
PY

# residual adds: r = relu(c1 + c2) is one qadd with the ReLU in its clamp, s = pool + c3 a qadd,
# max_pool2d of r stays int8, nothing is dequantized before the last (float) layer; the qadd
# constants are the oracle's add_params of the report's scales, and the oracle's add and
# max_pool2d of lathe's int8 inputs give lathe's int8 results; the baked C equals the evaluator
/usr/bin/python3 -c "
import numpy as np
rng = np.random.default_rng(1)
import os
os.makedirs('gdata', exist_ok=True)
np.save('gdata/x.npy', rng.uniform(-1, 1, (32, 2, 8, 8)).astype(np.float32))
np.save('gdata/label.npy', rng.integers(0, 3, 32).astype(np.int32))"
RES=$ROOT/tests/int8/residual.lathe
quiet "$LATHE" train "$RES" --data gdata --epochs 1 --checkpoint res.safetensors
quiet "$LATHE" quantize "$RES" --weights res.safetensors --calibrate gdata --report-json rr.json \
  -o qr
grep -q "^  r = qadd(c1, c2, .*, qmin = " qr.lathe
grep -q "^  pool = max_pool2d(r, 2" qr.lathe
grep -q "^  s = qadd(pool, c3, [-0-9, ]*)  #" qr.lathe
[ "$(grep -c "dequantize(" qr.lathe)" = 1 ] && grep -q "^  h_f = dequantize(h," qr.lathe ||
  { echo "FAIL: a float island in the residual model"; exit 1; }
sed 's/^  output probs$/  output c1\n  output c2\n  output r\n  output pool\n  output c3\n  output s\n  output probs/' \
  qr.lathe >qro.lathe
/usr/bin/python3 -c "
import numpy as np
np.save('rx.npy', np.load('gdata/x.npy')[:8])"
quiet "$LATHE" run qro.lathe --weights qr.safetensors --input x=rx.npy --out rref --reference
/usr/bin/python3 - "$ROOT/tests/int8" <<'PY'
import json, re, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import tflite_ref as ref
t = {e["name"]: e for e in json.load(open("rr.json"))["tensors"]}
text = open("qr.lathe").read()
v = {n: np.load(f"rref/{n}.npy") for n in ("c1", "c2", "r", "pool", "c3", "s")}
for out, a, b in (("r", "c1", "c2"), ("s", "pool", "c3")):
    line = re.search(rf"^  {out} = qadd\({a}, {b}, ([-0-9, ]*)", text, re.M).group(1)
    nums = [int(k) for k in line.split(",") if k.strip()]
    sa, sb = (np.float32(t["r" if n == "pool" else n]["scale"]) for n in (a, b))
    _, m1, m2, mo = ref.add_params(sa, sb, np.float32(t[out]["scale"]))
    want = [t["r" if a == "pool" else a]["zp"], t[b]["zp"], t[out]["zp"], *m1, *m2, *mo]
    assert nums == want, f"{out}: qadd constants {nums}, the oracle's {want}"
    lo = max(-128, t[out]["zp"]) if out == "r" else -128
    y = ref.add(v[a], want[0], v[b], want[1], (20, m1, m2, mo), want[2], lo, 127)
    assert np.array_equal(y, v[out].astype(np.int64)), f"{out}: not the oracle's add"
assert np.array_equal(ref.max_pool2d(v["r"], 2), v["pool"].astype(np.int64)), "pool: not max_pool2d"
print("ok: residual: the qadd constants and values and the int8 max pool are the oracle's")
PY
quiet "$LATHE" compile qro.lathe --weights qr.safetensors --bake --target generic -o cc-res
gcc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC cc-res/res.c -o cc-res/res.so -lm
quiet "$LATHE" run cc-res/res.so --input x=rx.npy --out rout
/usr/bin/python3 - <<'PY'
import numpy as np
for name in ("c1", "c2", "r", "pool", "c3", "s"):
    got, want = np.load(f"rout/{name}.npy"), np.load(f"rref/{name}.npy")
    assert got.dtype == np.int8 and np.array_equal(got, want), f"residual {name} differs"
assert np.allclose(np.load("rout/probs.npy"), np.load("rref/probs.npy"), atol=1e-5)
print("ok: residual: the baked C's int8 tensors equal the evaluator bit for bit")
PY

# a conv2d with 2 groups is int8 by default (a qconv2d with groups: tests/int8_quantize_grouped.sh
# checks the numbers); kept float with --keep-float, it is written as a float conv between int8
# layers
/usr/bin/python3 -c "
import numpy as np
rng = np.random.default_rng(1)
import os
os.makedirs('gdata', exist_ok=True)
np.save('gdata/x.npy', rng.uniform(-1, 1, (32, 2, 8, 8)).astype(np.float32))
np.save('gdata/label.npy', rng.integers(0, 3, 32).astype(np.int32))"
G=$ROOT/tests/int8/grouped.lathe
quiet "$LATHE" train "$G" --data gdata --epochs 1 --checkpoint g.safetensors
quiet "$LATHE" quantize "$G" --weights g.safetensors --calibrate gdata -o qgi
grep -qF "g = qconv_group_layer(c1, 4, 3, 3, stride = 1, padding = 1, dilation = 1, groups = 2," \
  qgi.lathe || { cat qgi.lathe; echo "FAIL: the grouped conv is not a grouped qconv2d"; exit 1; }
quiet "$LATHE" quantize "$G" --weights g.safetensors --calibrate gdata \
  --keep-float g -o qg
grep -qF "g = relu(conv_layer(c1_f, 4, 3, 3, stride = 1, padding = 1, dilation = 1, groups = 2))" \
  qg.lathe
grep -q "^  h = qdense_layer(" qg.lathe
/usr/bin/python3 -c "
import numpy as np
np.save('gx8.npy', np.load('gdata/x.npy')[:8])"
quiet "$LATHE" run qg.lathe --weights qg.safetensors --input x=gx8.npy --out gref --reference
quiet "$LATHE" run qg.lathe --weights qg.safetensors --input x=gx8.npy --out gcc --backend cc
/usr/bin/python3 -c "
import numpy as np
assert np.allclose(np.load('gcc/probs.npy'), np.load('gref/probs.npy'), atol=1e-5)
print('ok: a grouped conv kept float between int8 layers: the compiled model equals the evaluator')"

# bad input: nothing written
mkdir -p wrong zeros
/usr/bin/python3 - <<'PY'
import numpy as np
np.save("wrong/x.npy", np.zeros((8, 100), np.float32))
np.save("wrong/label.npy", np.zeros(8, np.int32))
np.save("zeros/x.npy", np.zeros((8, 784), np.float32))
np.save("zeros/label.npy", np.zeros(8, np.int32))
PY
fails "takes f32[784] per sample" "$LATHE" quantize "$MLP" --weights mlp.safetensors \
  --calibrate wrong -o bad
fails "cannot quantize 'x'" "$LATHE" quantize "$MLP" --weights mlp.safetensors \
  --calibrate zeros -o bad
fails "--keep-float: 'h9' is not a dense or conv2d layer" "$LATHE" quantize "$MLP" \
  --weights mlp.safetensors --calibrate fashion-mnist --keep-float h9 -o bad
fails "but the model expects f32" "$LATHE" quantize "$MLP" --weights q.safetensors \
  --calibrate fashion-mnist --limit 64 -o bad
fails "--observer expects minmax, percentile or entropy" "$LATHE" quantize "$MLP" \
  --weights mlp.safetensors --calibrate fashion-mnist --observer kl -o bad
