#!/usr/bin/env bash
# Scan bodies are fused (passes/fuse.c, memplan_scan.c, codegen/lower_scan.c): in the C of
# examples/lstm.lathe and examples/gru.lathe, every `for (step ...)` loop of a scan runs at
# least one fused kernel, and at -O2 (fusion on) each step loop runs fewer loops than at -O1
# (fusion off: every body node a loop of its own). The values are checked by
# test_codegen_scan and e2e_lstm (generated code against the evaluator and PyTorch).
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# per step loop of FILE: "<loops directly inside it> <fused kernels inside it>"
step_loops() {
  awk '
    !in_step && /^ *for \(int64_t step/ {
      in_step = 1; ind = match($0, /[^ ]/); loops = 0; fused = 0; next
    }
    in_step {
      d = match($0, /[^ ]/)
      if (d == ind && $0 ~ /^ *}/) { print loops, fused; in_step = 0; next }
      if (d == ind + 2 && $0 ~ /^ *for \(/) loops++
      if ($0 ~ /fused kernel/) fused++
    }' "$1"
}
for model in lstm gru; do
  for level in 1 2; do
    "$LATHE" compile -O$level "$ROOT/examples/$model.lathe" -o "$TMP/$model-O$level" > /dev/null
    step_loops "$TMP/$model-O$level"/*.c > "$TMP/$model-O$level.steps"
  done
  echo "$model: per step loop, (loops, fused kernels) at -O1 then -O2:"
  paste "$TMP/$model-O1.steps" "$TMP/$model-O2.steps"
  n=$(wc -l < "$TMP/$model-O2.steps")
  if [ "$n" -lt 2 ] || [ "$n" != "$(wc -l < "$TMP/$model-O1.steps")" ]; then
    echo "FAIL: $model: expected the same step loops (at least 2) at -O1 and -O2" >&2
    exit 1
  fi
  paste "$TMP/$model-O1.steps" "$TMP/$model-O2.steps" | while read -r l1 _ l2 f2; do
    if [ "$f2" -lt 1 ] || [ "$l2" -ge "$l1" ]; then
      echo "FAIL: $model: a scan step runs $l2 loops and $f2 fused kernels at -O2 ($l1 at -O1)" >&2
      exit 1
    fi
  done
done
echo "ok: scan bodies are fused"
