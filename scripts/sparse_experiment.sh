#!/usr/bin/env bash
# scripts/sparse_experiment.sh — issue #20's unstructured-pruning experiment: the Fashion-MNIST
# MLP (examples/mlp.lathe) pruned to 90% unstructured sparsity in training and fine-tuned,
# against the same MLP trained dense (same epochs, batch 64, Adam 1e-3, same seeds).
#
# Usage: scripts/sparse_experiment.sh [OUTDIR]
#   LATHE=build-release/lathe   the lathe binary (a release build)
#   EPOCHS=20                   epochs of each run
#   BEGIN=2 END=10              the `prune` schedule's begin and end, in epochs: the
#                               sparsity rises polynomially (TF MOT) from 0 to SPARSITY
#                               between them, and the epochs after END fine-tune at it
#   SPARSITY=0.9                the final sparsity of every weight (per tensor, magnitude)
#   EVERY=100                   steps between mask updates
#   SEEDS="1 2 3"               the seeds (init and shuffle)
#   NICE=10                     the niceness every run gets
# Steps: per seed, train examples/mlp.lathe dense and the same file with one `prune` line
# (h1.w, h2.w, logits.w magnitude(...)), evaluating on the 10,000 test images after the last
# epoch; prints every run, the mean and sample standard deviation and the drop; then bakes
# the first seed's dense and pruned checkpoints at N = 1 (lathe compile --bake) and prints
# each weight's sparsity, which kernel passes/sparsify.c chose, and the objects' code + data
# bytes (gcc -O2).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LATHE=${LATHE:-$ROOT/build-release/lathe}
EPOCHS=${EPOCHS:-20}
BEGIN=${BEGIN:-2}
END=${END:-10}
SPARSITY=${SPARSITY:-0.9}
EVERY=${EVERY:-100}
SEEDS=${SEEDS:-1 2 3}
NICE=${NICE:-10}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
STEPS_PER_EPOCH=938 # ceil(60000 / 64): the train split at batch 64

final_accuracy() { # the final epoch's val_accuracy (percent) from a --log CSV
  /usr/bin/python3 - "$1" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("%.2f" % (100 * float(rows[-1]["val_accuracy"])))
PY
}

train() { # FILE SEED NAME
  nice -n "$NICE" "$LATHE" train "$1" --data fashion-mnist --val fashion-mnist \
    --epochs "$EPOCHS" --seed "$2" --log "$OUT/$3.csv" --checkpoint "$OUT/$3.safetensors" \
    >"$OUT/$3.out" 2>&1 || { cat "$OUT/$3.out" >&2; exit 1; }
}

begin=$((BEGIN * STEPS_PER_EPOCH))
end=$((END * STEPS_PER_EPOCH))
cp "$ROOT/examples/mlp.lathe" "$OUT/dense.lathe"
sed -e "s|^  optimizer adam(lr = 1e-3)|&\n  prune h1.w, h2.w, logits.w magnitude(sparsity = $SPARSITY, \
begin = $begin, end = $end, every = $EVERY)|" "$ROOT/examples/mlp.lathe" >"$OUT/pruned.lathe"
grep -q '^  prune ' "$OUT/pruned.lathe"
echo "lathe: $LATHE; $EPOCHS epochs, seeds $SEEDS; prune to $SPARSITY from step $begin to" \
  "$end (epochs $BEGIN to $END), every $EVERY steps"
echo "CPU: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')"
start=$(date +%s)
declare -A acc
for seed in $SEEDS; do
  for kind in dense pruned; do
    t0=$(date +%s)
    train "$OUT/$kind.lathe" "$seed" "$kind.$seed"
    acc[$kind]+="$(final_accuracy "$OUT/$kind.$seed.csv") "
    echo "$kind seed $seed: test accuracy $(final_accuracy "$OUT/$kind.$seed.csv")%" \
      "($(($(date +%s) - t0)) s)"
  done
done

/usr/bin/python3 - "${acc[dense]}" "${acc[pruned]}" <<'PY'
import statistics, sys
dense, pruned = ([float(v) for v in a.split()] for a in sys.argv[1:3])
for name, v in (("dense", dense), ("pruned", pruned)):
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    print("%-7s mean %.2f%%  sd %.2f  min %.2f  max %.2f  (n = %d)"
          % (name, statistics.mean(v), sd, min(v), max(v), len(v)))
print("pruned - dense: %+.2f points" % (statistics.mean(pruned) - statistics.mean(dense)))
PY

# the first seed's checkpoints baked at batch 1: sparsity, kernels, code + data bytes
seed=${SEEDS%% *}
/usr/bin/python3 - "$OUT/pruned.$seed.safetensors" "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[2] + "/tests/fixtures")
import numpy as np, safetensors_py as s
for name, w in sorted(s.load(sys.argv[1]).items()):
    if name.endswith(".w"):
        print("%-9s %-12s %.2f%% zero" % (name, "x".join(map(str, w.shape)),
                                          100 * float(np.mean(w == 0))))
PY
bytes() { size -A "$1" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
for kind in dense pruned; do
  "$LATHE" compile "$OUT/dense.lathe" -D N=1 --weights "$OUT/$kind.$seed.safetensors" --bake \
    -o "$OUT/bake-$kind" --prefix m >/dev/null 2>&1
  gcc -std=c99 -O2 -c "$OUT/bake-$kind/m.c" -o "$OUT/bake-$kind/m.o"
done
grep -h "sparse product" "$OUT/bake-pruned/m.c" | sed "s/^ *//" || true
d=$(bytes "$OUT/bake-dense/m.o") p=$(bytes "$OUT/bake-pruned/m.o")
echo "baked at N = 1, code + data: dense $d bytes, pruned $p bytes" \
  "($(awk -v a="$d" -v b="$p" 'BEGIN {printf "%.1f", a / b}')x smaller)"
echo "outputs in $OUT ($(($(date +%s) - start)) s in all)"
