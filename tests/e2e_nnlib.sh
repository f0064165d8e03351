#!/usr/bin/env bash
# End to end: the issue-22 layers of lib/nn.lathe against PyTorch (tests/fixtures/nnlib/, made
# by tests/fixtures/make_nnlib_fixtures.py): a tied-embedding Llama block (RMSNorm, rotary,
# causal grouped-query attention, SwiGLU), pre-/post-norm encoder and decoder blocks with
# per-example padding masks and a model-level param, layers with bias = false, and
# LSTM/GRU/RNN with initial states, lengths (pack_padded_sequence) and final states. For each
# model: the outputs (`lathe run`, compiled and with the reference evaluator), the loss and
# every gradient (`lathe grad`), relative error <= 1e-4; the attention key biases' gradients
# are 0; the generated C builds warning-free with gcc and clang at -Werror.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/nnlib
CHECK=$ROOT/tests/fixtures/check_grad.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

check_model() { # model "outputs" "forward inputs" "grad inputs"
  local model=$1 outs=$2 fwd=$3 all=$4
  local W=(--weights "$FIX/${model}_weights.safetensors") fin=() gin=()
  for n in $fwd; do fin+=(--input "$n=$FIX/${model}_$n.npy"); done
  for n in $all; do gin+=(--input "$n=$FIX/${model}_$n.npy"); done
  "$LATHE" compile "$FIX/$model.lathe" -o "$TMP/c-$model"
  for cc in gcc clang; do
    $cc -std=c99 -Wall -Wextra -Werror -O1 -c "$TMP/c-$model"/*.c -o "$TMP/$model-$cc.o"
  done
  echo "ok: $model: generated C builds with gcc and clang -std=c99 -Wall -Wextra -Werror"
  "$LATHE" run "$FIX/$model.lathe" "${W[@]}" "${fin[@]}" --out "$TMP/out-$model"
  "$LATHE" run --reference "$FIX/$model.lathe" "${W[@]}" "${fin[@]}" --out "$TMP/ref-$model"
  for out in $outs; do
    for dir in out ref; do
      /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/$dir-$model/$out.npy" \
        "$FIX/${model}_$out.npy" 1e-4
    done
  done
  "$LATHE" grad "$FIX/$model.lathe" "${W[@]}" "${gin[@]}" --out "$TMP/grad-$model" \
    | tee "$TMP/loss-$model.txt"
  /usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad-$model/grads.safetensors" \
    "$FIX/${model}_grads.safetensors" 1e-4
  /usr/bin/python3 "$CHECK" loss "$TMP/loss-$model.txt" "$FIX/${model}_loss.npy" 1e-4
}

check_model tied_llama probs "ids" "ids target"
check_model encoder_mask y "x keep" "x keep target"
/usr/bin/python3 "$CHECK" zero "$TMP/grad-encoder_mask/grads.safetensors" enc1.attn.key.b \
  enc2.attn.key.b
check_model decoder_mask y "x memory keep" "x memory keep target"
/usr/bin/python3 "$CHECK" zero "$TMP/grad-decoder_mask/grads.safetensors" dec1.self_attn.key.b \
  dec1.cross.key.b dec2.self_attn.key.b dec2.cross.key.b
check_model nobias probs "x" "x label"
check_model rnn_state "lstm_ys lstm_h lstm_c gru_ys gru_h rnn_ys rnn_h" "x mask h0 c0" \
  "x mask h0 c0 target"
