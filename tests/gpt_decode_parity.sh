#!/usr/bin/env bash
# The GPT decode step against PyTorch: the checks of bench/gpt_decode.sh without its timing.
# bench/torch_gpt.py draws random weights (fixed seed, lathe's param names) and PyTorch's step
# logits at 64 positions of a random prompt (checked there against its own full causal
# forward); lathe's step — `gpt_step` of examples/gpt.lathe (--model gpt_step), its KV cache
# in the model's state — built by `lathe compile` with the weights as params and with the
# weights baked (--bake: the cache stays a state), each run by
# bench/gpt_drive.c, must give every logit within 1e-4 of the largest one; a reference with
# one logit moved by 0.01 must fail the check.
set -euo pipefail
LATHE=$1
ROOT=$2
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MODEL=$ROOT/examples/gpt.lathe MODEL_ARGS=(--model gpt_step)

"$PY" "$ROOT/bench/torch_gpt.py" weights --with-state -o "$TMP/w.safetensors" --ref "$TMP/ref.bin"
# the reference with logit 100 moved by 0.01 (after the 64 int32 ids)
"$PY" - "$TMP/ref.bin" "$TMP/bad.bin" <<'PY'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
at = 64 * 4 + 100 * 4
raw[at:at + 4] = struct.pack("<f", struct.unpack("<f", raw[at:at + 4])[0] + 0.01)
open(sys.argv[2], "wb").write(raw)
PY

for variant in params baked; do
  args=("$MODEL" "${MODEL_ARGS[@]}")
  [[ $variant == baked ]] && args+=(--weights "$TMP/w.safetensors" --bake)
  "$LATHE" compile "${args[@]}" -o "$TMP/$variant" --prefix gpt_step
  cc -std=c11 -O2 -march=native -fno-math-errno -I"$TMP/$variant" \
    -DMODEL_HEADER='"gpt_step.h"' -DMODEL_INFO=gpt_step_info "$ROOT/bench/gpt_drive.c" \
    "$TMP/$variant/gpt_step.c" -o "$TMP/$variant/drive" -lm
  run=("$TMP/$variant/drive" --weights "$TMP/w.safetensors" --reps 1 --min-time 0.001)
  "${run[@]}" --ref "$TMP/ref.bin" | tee "$TMP/$variant.out"
  grep -q '^check_max_abs' "$TMP/$variant.out"
  if "${run[@]}" --ref "$TMP/bad.bin" >"$TMP/bad.out" 2>"$TMP/bad.log"; then
    echo "FAIL: $variant: a reference off by 0.01 passed the check" >&2
    exit 1
  fi
  grep -q 'CHECK FAILED' "$TMP/bad.log"
done
echo "gpt_decode_parity: ok"
