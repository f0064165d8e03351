#!/usr/bin/env bash
# Quantized ONNX import (issue 19; docs/onnx.md "Quantized models"): tests/int8/onnx_qmodels.py
# builds small models of QuantizeLinear, DequantizeLinear (per tensor and per axis, int8 and
# uint8, opset 10 and 13 forms, exact halves that half-to-even decides), QLinearMatMul,
# MatMulInteger, QLinearConv (bias, padding, stride, dilation, groups, 1-D), ConvInteger and a
# QDQ MLP, three of them also with a symbolic batch (lathe's run-time batch), with the expected
# outputs of the NumPy reference of the ONNX definitions (tests/int8/onnx_qref.py). Each model is run as users would and must give the same bytes:
#   - `lathe run M.onnx` (compiled, in-process JIT) and `--backend cc` (C through the system
#     compiler);
#   - `lathe import` + `lathe run M.lathe --weights W --reference` (the IR evaluator), and
#     `lathe run M.onnx --reference` (the evaluator with the file's initializers);
#   - one model's generated C compiled warning-free by gcc and clang (-Wall -Wextra -Werror).
# Then the bad models must be refused with their message and no output written.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PY=/usr/bin/python3
CMP="$ROOT/tests/int8/onnx_qcompare.py"

$PY "$ROOT/tests/int8/onnx_qmodels.py" "$TMP"
n=0
while read -r name inputs; do
  args=()
  for i in $inputs; do args+=(--input "$i=$TMP/$name.$i.npy"); done
  for mode in jit cc; do
    "$LATHE" run "$TMP/$name.onnx" "${args[@]}" --backend "$mode" --out "$TMP/out-$name-$mode"
    $PY "$CMP" "$TMP/out-$name-$mode/y.npy" "$TMP/$name.y.npy" "$name ($mode)"
  done
  "$LATHE" import "$TMP/$name.onnx" -o "$TMP/$name.lathe" --weights-out "$TMP/$name.st" \
    > /dev/null
  "$LATHE" run "$TMP/$name.lathe" --weights "$TMP/$name.st" "${args[@]}" --reference \
    --out "$TMP/out-$name-ref"
  $PY "$CMP" "$TMP/out-$name-ref/y.npy" "$TMP/$name.y.npy" "$name (reference evaluator)"
  "$LATHE" run "$TMP/$name.onnx" "${args[@]}" --reference --out "$TMP/out-$name-onnxref"
  $PY "$CMP" "$TMP/out-$name-onnxref/y.npy" "$TMP/$name.y.npy" "$name (.onnx, reference)"
  n=$((n + 1))
done < "$TMP/cases.txt"
test "$n" -ge 20

# the imported text says what runs: ONNX's rounding on quantize, the uint8 shift
grep -q "quantize(x, 0.5, 3, half_even = true)" "$TMP/q_tensor_uint8.lathe"
grep -q "cast(cast(t_y, i32) + 128, u8)" "$TMP/q_tensor_uint8.lathe"
# no control characters (the importer's internal value names) leak into the text
if LC_ALL=C grep -l $'[\x01-\x08]' "$TMP"/*.lathe; then
  echo "FAIL: control characters in the imported text"
  exit 1
fi
# ... and the IR and the C carry it
"$LATHE" dump "$TMP/q_tensor_int8.lathe" 2> /dev/null | grep -q "half_even"
"$LATHE" compile "$TMP/qlconv_u8_axis_bias_pad_stride.lathe" -o "$TMP/c" > /dev/null
grep -q "rintf(" "$TMP/c"/*.c
for cc in gcc clang; do
  if command -v "$cc" > /dev/null; then
    "$cc" -std=c99 -Wall -Wextra -Werror -c "$TMP"/c/*.c -o "$TMP/c.$cc.o"
  fi
done

# bad input: a clear message naming the node and the input, exit 1, nothing written
while IFS=$'\t' read -r name msg; do
  if "$LATHE" import "$TMP/bad/$name.onnx" -o "$TMP/bad/$name.lathe" 2> "$TMP/bad/$name.err"; then
    echo "FAIL: $name imported"
    exit 1
  fi
  grep -qF -- "$msg" "$TMP/bad/$name.err" || {
    echo "FAIL: $name: expected '$msg', got:"
    cat "$TMP/bad/$name.err"
    exit 1
  }
  test ! -e "$TMP/bad/$name.lathe"
done < "$TMP/bad.txt"
echo "onnx_quant: $n models equal the reference on three runs each; bad models refused"
