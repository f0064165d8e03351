#!/usr/bin/env bash
# End to end: examples/gan.lathe at batch 8 and noise size 8 (-D B=8 -D Z=8) against PyTorch
# (tests/fixtures/make_family_fixtures.py, same weights and states). The noise is randn inside
# the model; the weights file sets rng.seed and rng.step, and the fixture script recomputes the
# same noise from ir/rng.h's formula. Compared, relative error <= 1e-4: the forward samples
# (generator in eval mode: batch norms use the running statistics of the weights file), and
# loss and gradients of both train steps (`lathe grad --step gen` for the second). The reference
# evaluator (`lathe run --reference`, states from the same weights file) agrees too.
# The generator biases that feed a batch norm have a zero gradient.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/gan
MODEL=$ROOT/examples/gan.lathe
CHECK=$ROOT/tests/fixtures/check_grad.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
D=(-D B=8 -D Z=8 --weights "$FIX/weights.safetensors")

"$LATHE" run "${D[@]}" "$MODEL" --out "$TMP/out"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/samples.npy" "$FIX/samples.npy" 1e-4
"$LATHE" run --reference "${D[@]}" "$MODEL" --out "$TMP/ref"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/ref/samples.npy" "$FIX/samples.npy" 1e-4

echo "step disc:"
"$LATHE" grad "${D[@]}" "$MODEL" --input x="$FIX/x.npy" --out "$TMP/disc" | tee "$TMP/disc.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/disc/grads.safetensors" \
  "$FIX/disc_grads.safetensors" 1e-4
/usr/bin/python3 "$CHECK" loss "$TMP/disc.txt" "$FIX/disc_loss.npy" 1e-4

echo "step gen:"
"$LATHE" grad "${D[@]}" --step gen "$MODEL" --out "$TMP/gen" | tee "$TMP/gen.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/gen/grads.safetensors" \
  "$FIX/gen_grads.safetensors" 1e-4
/usr/bin/python3 "$CHECK" loss "$TMP/gen.txt" "$FIX/gen_loss.npy" 1e-4
/usr/bin/python3 "$CHECK" zero "$TMP/gen/grads.safetensors" gen.h.b gen.u1.b
