#!/usr/bin/env bash
# Data-parallel training on MPI (docs/distributed.md), 2 ranks on this machine over loopback:
# a model compiled with --split-step, driven by examples/mpi/main.c (grad, one MPI_Allreduce,
# apply). Checks, for the MLP (Adam), the CNN (Adam), the LSTM (Adam, a scan) and the CNN with
# batch norm (SGD):
#   - one rank: the fused train step == grad + allreduce + apply, bit for bit, every step;
#   - two ranks: params and state identical on both ranks after every step (hash compare);
#   - MLP, CNN, LSTM: 2 ranks at batch B give the params of 1 rank at batch 2B after 20 steps
#     (relative difference <= 1e-5 in f32). Not with batch norm: each rank normalizes by its
#     own batch's statistics, so 2 x B is not 1 x 2B (as in PyTorch DDP without SyncBatchNorm).
# Open MPI missing is a failure, never a skip (scripts/install-deps.sh installs it).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
for tool in mpicc mpirun; do
  command -v $tool >/dev/null || {
    echo "FAIL: $tool not found: install openmpi-bin and libopenmpi-dev (scripts/install-deps.sh)"
    exit 1
  }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPIRUN="mpirun --oversubscribe"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

# build NAME MODEL FILE BATCH: ./NAME, the example over FILE compiled at batch BATCH
build() {
  "$LATHE" compile --split-step -D N=$4 "$3" -o "gen_$1" 2>/dev/null
  mpicc -std=c11 -O2 -Wall -Wextra -Werror -I"gen_$1" -DLATHE_MODEL_H="\"$2.h\"" \
    -DLATHE_MODEL_INFO=$2_info "$ROOT/examples/mpi/main.c" "gen_$1/$2.c" -lm -o "$1"
}

# same_params A B: relative difference ||a - b|| / ||b|| (2-norm) of two raw f32 params files
# (elementwise, Adam's division by sqrt(v) magnifies the rounding of near-zero gradients; see
# tests/mpi_lathe_train.sh)
same_params() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, numpy as np
a, b = (np.fromfile(f, np.float32) for f in sys.argv[1:3])
same = a.size == b.size
rel = float(np.linalg.norm(a - b) / np.linalg.norm(b)) if same else float("inf")
elem = float(np.abs(a - b).max() / np.abs(b).max()) if same else float("inf")
print(f"  {a.size} params, relative difference {rel:.3g} (elementwise max {elem:.3g})")
sys.exit(0 if rel <= 1e-5 else 1)
PY
}

# check NAME MODEL FILE B CLASSES EQUAL: the three properties (EQUAL: compare 2 x B with 1 x 2B)
check() {
  local name=$1 model=$2 file=$3 b=$4 classes=$5 equal=$6
  build ${name}_b$b $model "$file" $b
  $MPIRUN -np 1 ./${name}_b$b --check-train --classes $classes --steps 20 >train.txt ||
    { echo "FAIL: $name: train != grad + apply"; cat train.txt; exit 1; }
  echo "ok: $name: train == grad + allreduce + apply bit for bit, 20 steps"
  $MPIRUN -np 2 ./${name}_b$b --classes $classes --steps 20 --out ${name}_2x$b.bin >two.txt ||
    { echo "FAIL: $name: 2 ranks"; cat two.txt; exit 1; }
  grep -q "on 2 rank(s).*replicas identical" two.txt || { echo "FAIL: $name: 2 ranks"; exit 1; }
  echo "ok: $name: 2 ranks identical after every step"
  [[ $equal == yes ]] || return 0
  build ${name}_b$((2 * b)) $model "$file" $((2 * b))
  $MPIRUN -np 1 ./${name}_b$((2 * b)) --classes $classes --steps 20 --out ${name}_1x.bin >one.txt
  same_params ${name}_2x$b.bin ${name}_1x.bin ||
    { echo "FAIL: $name: 2 ranks x $b != 1 rank x $((2 * b))"; exit 1; }
  echo "ok: $name: 2 ranks x batch $b == 1 rank x batch $((2 * b)) after 20 steps"
}

check mlp mlp "$ROOT/examples/mlp.lathe" 8 10 yes
check cnn cnn "$ROOT/examples/cnn.lathe" 4 10 yes
check lstm lstm_mnist "$ROOT/examples/lstm.lathe" 4 10 yes
check cnnbn cnnbn "$ROOT/tests/fixtures/cnn_bn.lathe" 4 3 no

# a model compiled without --split-step: a clear error, not a crash
"$LATHE" compile -D N=4 "$ROOT/examples/mlp.lathe" -o gen_plain 2>/dev/null
mpicc -std=c11 -Igen_plain "$ROOT/examples/mpi/main.c" gen_plain/mlp.c -lm -o plain
if $MPIRUN -np 1 ./plain >plain.txt 2>&1; then echo "FAIL: unsplit model accepted"; exit 1; fi
grep -q "compile it with \`lathe compile --split-step\`" plain.txt ||
  { echo "FAIL: unsplit model:"; cat plain.txt; exit 1; }
echo "ok: a model without a split step is refused with a clear message"
