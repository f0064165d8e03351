#!/usr/bin/env bash
# End to end: examples/vae.lathe at batch 8 and 32 hidden units (-D B=8 -D H=32) against
# PyTorch (tests/fixtures/make_family_fixtures.py, same weights and states). The
# reparameterization noise is randn inside the model; the weights file sets rng.seed and
# rng.step and the fixture script recomputes the same noise from ir/rng.h's formula, so the
# unmodified model is compared at a fixed, known noise. Compared, relative error <= 1e-4: the
# forward reconstructions and samples decoded from the prior, and the loss (BCE + KL) and
# gradients of `lathe grad`.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/vae
MODEL=$ROOT/examples/vae.lathe
CHECK=$ROOT/tests/fixtures/check_grad.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
D=(-D B=8 -D H=32 --weights "$FIX/weights.safetensors")

"$LATHE" run "${D[@]}" "$MODEL" --input x="$FIX/x.npy" --out "$TMP/out"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/recon.npy" "$FIX/recon.npy" 1e-4
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/samples.npy" "$FIX/samples.npy" 1e-4
# the reference evaluator, with the states (rng.seed, rng.step) of the same weights file
"$LATHE" run --reference "${D[@]}" "$MODEL" --input x="$FIX/x.npy" --out "$TMP/ref"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/ref/recon.npy" "$FIX/recon.npy" 1e-4
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/ref/samples.npy" "$FIX/samples.npy" 1e-4

"$LATHE" grad "${D[@]}" "$MODEL" --input x="$FIX/x.npy" --out "$TMP/grad" | tee "$TMP/loss.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 "$CHECK" loss "$TMP/loss.txt" "$FIX/loss.npy" 1e-4
