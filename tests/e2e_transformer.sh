#!/usr/bin/env bash
# End to end: examples/transformer.lathe (embedding, learned positions, two post-norm encoder
# blocks, dense head) at batch 8 (-D B=8) against PyTorch (torch.nn.TransformerEncoderLayer,
# tests/fixtures/make_family_fixtures.py, same weights): `lathe run` probabilities, `lathe grad`
# loss and gradients, relative error <= 1e-4; the key biases' gradients are 0; the reference
# evaluator agrees with the compiled forward pass.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/transformer
MODEL=$ROOT/examples/transformer.lathe
CHECK=$ROOT/tests/fixtures/check_grad.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
W=(--weights "$FIX/weights.safetensors")

"$LATHE" run -D B=8 "$MODEL" "${W[@]}" --input ids="$FIX/ids.npy" --out "$TMP/out"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$FIX/probs.npy" 1e-4
"$LATHE" run --reference -D B=8 "$MODEL" "${W[@]}" --input ids="$FIX/ids.npy" --out "$TMP/ref"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$TMP/ref/probs.npy" 1e-4

"$LATHE" grad -D B=8 "$MODEL" "${W[@]}" --input ids="$FIX/ids.npy" \
  --input target="$FIX/target.npy" --out "$TMP/grad" | tee "$TMP/loss.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 "$CHECK" loss "$TMP/loss.txt" "$FIX/loss.npy" 1e-4
/usr/bin/python3 "$CHECK" zero "$TMP/grad/grads.safetensors" enc1.attn.key.b enc2.attn.key.b
