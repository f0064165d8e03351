#!/usr/bin/env bash
# scripts/run-example.sh LATHE — what `make run` shows: compile the MLP example to C, then
# build and run it on a batch of Fashion-MNIST-shaped input.
set -euo pipefail
LATHE=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/out
mkdir -p "$OUT"
echo "== lathe compile examples/mlp.lathe -o out/mlp"
"$LATHE" compile "$ROOT/examples/mlp.lathe" -o "$OUT/mlp"
echo "== lathe run examples/mlp.lathe (PyTorch fixture weights and inputs)"
"$LATHE" run "$ROOT/examples/mlp.lathe" --weights "$ROOT/tests/fixtures/mlp/weights.safetensors" \
  --input x="$ROOT/tests/fixtures/mlp/x.npy"
echo "== lathe train examples/mlp.lathe --data fashion-mnist --epochs 1"
"$LATHE" train "$ROOT/examples/mlp.lathe" --data fashion-mnist --epochs 1 \
  --checkpoint "$OUT/mlp.safetensors" --plot "$OUT/mlp-curves.svg"
echo "checkpoint: out/mlp.safetensors   curves: out/mlp-curves.svg   C: out/mlp/mlp.c"
