#!/usr/bin/env bash
# bench/int8_onnx.py end to end (issue 19; docs/int8.md, "Against ONNX Runtime's int8"): the
# ONNX form of lathe's int8 models, which bench/int8.sh gives ONNX Runtime, computes what
# lathe's int8 models do.
# For the MLP and the CNN (random f32 weights of bench/int8_weights.py), `lathe quantize
# --quantize-last` (full-range weights; the CNN also --reduce-range) writes the int8 model; the
# exporter translates it (uint8 activations with int8 weights, and for the MLP also uint8
# weights and int8 activations); `lathe run M.onnx` (lathe's ONNX import: QDQ as float ops
# between QuantizeLinear and DequantizeLinear, ONNX's half-to-even rounding) must give int8
# logits within 1 quantum of lathe's int8 model on 64 other inputs (the two round
# differently: Q31 fixed point half away from zero against float32 half to even), and
# softmax outputs within 0.02. The check must catch a mutant (one layer's weight scales 3%
# off), and the exporter must refuse a model it cannot translate (a float last layer), naming
# the line and writing nothing.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PY=/usr/bin/python3
EXP="$ROOT/bench/int8_onnx.py"

$PY "$ROOT/bench/int8_weights.py" "$TMP/w"
quantize() { # NET OUT [flags]: the int8 model and a twin with its int8 logits as an output
  "$LATHE" quantize "$ROOT/examples/$1.lathe" --weights "$TMP/w/$1.safetensors" \
    --calibrate "$TMP/w/cal_$1" --limit 128 -o "$TMP/$2" --report-json "$TMP/$2.json" \
    "${@:3}" > "$TMP/$2.log" 2>&1 || { cat "$TMP/$2.log"; exit 1; }
  sed -E 's/^(  output probs( = .*)?)$/\1\n  output logits/' "$TMP/$2.lathe" > "$TMP/$2_check.lathe"
  grep -q "^  output logits$" "$TMP/$2_check.lathe"
  "$LATHE" run "$TMP/$2_check.lathe" --weights "$TMP/$2.safetensors" \
    --input "x=$TMP/w/check_$1.npy" --out "$TMP/$2.lathe_out" > /dev/null
}
check() { # NET Q NAME [export flags]: export, import and run, compare with lathe's int8 run
  $PY "$EXP" export "$TMP/$2.lathe" "$TMP/$2.safetensors" "$TMP/$2.json" -o "$TMP/$3.onnx" \
    --int8-output logits "${@:4}"
  "$LATHE" run "$TMP/$3.onnx" --input "x=$TMP/w/check_$1.npy" --out "$TMP/$3.out" > /dev/null
  $PY "$EXP" compare "$TMP/$2.lathe_out" "$TMP/$3.out" logits --max-quanta 1
  $PY - "$TMP/$2.lathe_out/probs.npy" "$TMP/$3.out/probs.npy" "$3" <<'EOF'
import sys
import numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape == (64, 10), (a.shape, b.shape)
assert np.abs(a - b).max() <= 0.02, (sys.argv[3], np.abs(a - b).max())
EOF
}

quantize mlp qmlp --quantize-last
quantize cnn qcnn --quantize-last
quantize cnn qcnn7 --quantize-last --reduce-range
check mlp qmlp mlp_u8s8
check mlp qmlp mlp_u8u8 --weight-type uint8
check mlp qmlp mlp_s8s8 --act int8
check cnn qcnn cnn_u8s8
check cnn qcnn7 cnn7_u8s8
# the exporter's ONNX holds lathe's bytes: the int8 weights as they are, the int32 biases
$PY - "$TMP/cnn_u8s8.onnx" "$TMP/qcnn.safetensors" "$ROOT/tests/fixtures" <<'EOF'
import sys
import numpy as np
import onnx
import onnx.numpy_helper
sys.path.insert(0, sys.argv[3])
import safetensors_py
init = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(sys.argv[1]).graph.initializer}
ours = safetensors_py.load(sys.argv[2])
for name in ("c1.w", "c2.w", "h.w", "logits.w", "c1.b", "c2.b", "h.b", "logits.b"):
    assert init[name].dtype == ours[name].dtype and np.array_equal(init[name], ours[name]), name
kinds = [n.op_type for n in onnx.load(sys.argv[1]).graph.node]
assert kinds.count("Conv") == 2 and kinds.count("Gemm") == 2 and kinds.count("MaxPool") == 2
EOF

# a mutant the comparison must catch: the first layer's weight scales 3% off
$PY - "$TMP/mlp_u8s8.onnx" "$TMP/mutant.onnx" <<'EOF'
import sys
import onnx
import onnx.numpy_helper
m = onnx.load(sys.argv[1])
for t in m.graph.initializer:
    if t.name == "h1.w.scale":
        t.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(t) * 1.03, t.name))
onnx.save(m, sys.argv[2])
EOF
"$LATHE" run "$TMP/mutant.onnx" --input "x=$TMP/w/check_mlp.npy" --out "$TMP/mutant.out" \
  > /dev/null
if $PY "$EXP" compare "$TMP/qmlp.lathe_out" "$TMP/mutant.out" logits --max-quanta 1 \
  > "$TMP/mutant.txt" 2>&1; then
  echo "FAIL: the comparison missed the mutant: $(cat "$TMP/mutant.txt")"
  exit 1
fi
echo "the mutant, caught as it must be: $(cat "$TMP/mutant.txt")"
grep -q "FAIL: the ONNX model's logits is [0-9]* quanta from lathe's" "$TMP/mutant.txt"

# bad input: the default quantization keeps the last layer float, which has no translation
"$LATHE" quantize "$ROOT/examples/mlp.lathe" --weights "$TMP/w/mlp.safetensors" \
  --calibrate "$TMP/w/cal_mlp" --limit 64 -o "$TMP/flast" --report-json "$TMP/flast.json" \
  > /dev/null 2>&1
if $PY "$EXP" export "$TMP/flast.lathe" "$TMP/flast.safetensors" "$TMP/flast.json" \
  -o "$TMP/flast.onnx" 2> "$TMP/flast.err"; then
  echo "FAIL: a float last layer was exported"
  exit 1
fi
grep -q "no ONNX translation for the line 'logits = dense_layer(h2_f, 10)'" "$TMP/flast.err" ||
  { cat "$TMP/flast.err"; exit 1; }
test ! -e "$TMP/flast.onnx" && test ! -e "$TMP/flast.onnx.tmp"
echo "int8_onnx_export: ok"
