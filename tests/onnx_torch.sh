#!/usr/bin/env bash
# ONNX import of PyTorch exports: tests/onnx/export_torch.py exports an MLP, a CNN, an LSTM, a
# GRU and a Transformer encoder block with torch.onnx.export; each is imported with
# `lathe import`, run with its weights and compared with PyTorch's output (<= 1e-4); one is
# also run as a .onnx FILE directly, and the MLP is imported with a loss and trained a step.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MODELS=${ONNX_TORCH_MODELS:-"mlp cnn lstm gru transformer"}

/usr/bin/python3 "$ROOT/tests/onnx/export_torch.py" "$TMP" $MODELS 2>/dev/null
for m in $MODELS; do
  "$LATHE" import "$TMP/$m.onnx" -o "$TMP/$m.lathe" --weights-out "$TMP/$m.safetensors"
  grep -q "^model $m(" "$TMP/$m.lathe"
  "$LATHE" run "$TMP/$m.lathe" --weights "$TMP/$m.safetensors" --input x="$TMP/$m.x.npy" \
    --out "$TMP/out-$m" 2>/dev/null
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out-$m/y.npy" "$TMP/$m.y.npy" 1e-4
done

# a .onnx FILE given to run directly: imported in memory, weights from its initializers
"$LATHE" run "$TMP/mlp.onnx" --input x="$TMP/mlp.x.npy" --out "$TMP/direct" 2>/dev/null
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/direct/y.npy" "$TMP/mlp.y.npy" 1e-4

# an imported model is trainable: --loss adds a label input, the loss and a train block
"$LATHE" import "$TMP/mlp.onnx" -o "$TMP/mlp_train.lathe" --loss cross_entropy \
  --optimizer "sgd(lr = 0.1)"
grep -q "loss = cross_entropy(y, label)" "$TMP/mlp_train.lathe"
grep -q "optimizer sgd(lr = 0.1)" "$TMP/mlp_train.lathe"
"$LATHE" check "$TMP/mlp_train.lathe"
# ... and `lathe train` takes the .onnx directly, starting from its initializers
"$LATHE" train "$TMP/mlp.onnx" --loss cross_entropy --optimizer "adam(lr = 1e-3)" \
  --data fashion-mnist --limit 256 --checkpoint "$TMP/trained.safetensors" > /dev/null 2>&1
test -s "$TMP/trained.safetensors"

# malformed and truncated files: a clear error, exit 1, and no output written
head -c 200 "$TMP/cnn.onnx" > "$TMP/truncated.onnx"
printf 'not an onnx model at all' > "$TMP/junk.onnx"
for bad in truncated junk; do
  if "$LATHE" import "$TMP/$bad.onnx" -o "$TMP/$bad.lathe" 2> "$TMP/$bad.err"; then
    echo "FAIL: $bad.onnx was accepted"; exit 1
  fi
  grep -q "error: .*$bad.onnx" "$TMP/$bad.err"
  test ! -e "$TMP/$bad.lathe" && test ! -e "$TMP/$bad.safetensors"
done
echo "ok: PyTorch exports import and match"
