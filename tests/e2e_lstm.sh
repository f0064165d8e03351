#!/usr/bin/env bash
# End to end: scan-based recurrent models against PyTorch (tests/fixtures/make_lstm_fixture.py:
# torch.nn.LSTM / torch.nn.GRU with weights mapped to lathe's layout, batch 8, 6 steps):
#   examples/lstm.lathe (lstm_last: final state → dense → softmax), fixtures/lstm/lstm_seq,
#   gru_seq (every state stacked by the scan) and bilstm_seq (plus a reversed scan) — outputs (`lathe run`, also with the
#   reference evaluator), the loss and every gradient (`lathe grad`), relative error <= 1e-4.
# Also: the generated C builds warning-free with gcc and clang at -Werror. Each model twice:
# with the fixed batch 8, and with a run-time batch bounded at 64 called at n = 8
# (docs/dynamic-batch.md "Scans").
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/lstm
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

check_model() { # model-file prefix output-name
  local model=$1 prefix=$2 out=$3
  "$LATHE" compile "${DEFS[@]}" "$model" -o "$TMP/c-$prefix"
  for cc in gcc clang; do
    $cc -std=c99 -Wall -Wextra -Werror -O1 -c "$TMP/c-$prefix"/*.c -o "$TMP/$prefix-$cc.o"
  done
  echo "ok: $prefix: generated C builds with gcc and clang -std=c99 -Wall -Wextra -Werror"
  "$LATHE" run "${DEFS[@]}" "$model" --weights "$FIX/${prefix}weights.safetensors" \
    --input x="$FIX/x.npy" --out "$TMP/out-$prefix"
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out-$prefix/$out.npy" \
    "$FIX/$prefix$out.npy" 1e-4
  "$LATHE" run --reference "${DEFS[@]}" "$model" --weights "$FIX/${prefix}weights.safetensors" \
    --input x="$FIX/x.npy" --out "$TMP/ref-$prefix"
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/ref-$prefix/$out.npy" \
    "$FIX/$prefix$out.npy" 1e-4
  "$LATHE" grad "${DEFS[@]}" "$model" --weights "$FIX/${prefix}weights.safetensors" \
    --input x="$FIX/x.npy" --input label="$FIX/label.npy" --out "$TMP/grad-$prefix" \
    | tee "$TMP/loss-$prefix.txt"
  /usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad-$prefix/grads.safetensors" \
    "$FIX/${prefix}grads.safetensors" 1e-4
  /usr/bin/python3 - "$TMP/loss-$prefix.txt" "$FIX/${prefix}loss.npy" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split()[1])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.7g} vs PyTorch {want:.7g}: relative error {err:.2g}")
sys.exit(0 if err <= 1e-4 else 1)
PY
}

for defs in "-D N=8 -D T=6 -D H=16" "-D N=dynamic(max=64) -D T=6 -D H=16"; do
  IFS=" " read -r -a DEFS <<<"$defs"
  echo "-- ${DEFS[*]}"
  check_model "$ROOT/examples/lstm.lathe" last_ probs
  check_model "$FIX/lstm_seq.lathe" lstm_seq_ seq
  check_model "$FIX/gru_seq.lathe" gru_seq_ seq
  check_model "$FIX/bilstm_seq.lathe" bilstm_seq_ seq
done
