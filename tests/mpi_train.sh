#!/usr/bin/env bash
# Data-parallel training on MPI (docs/distributed.md), 2 ranks on this machine over loopback:
# a model compiled with --split-step, driven by examples/mpi/main.c (grad, one MPI_Allreduce,
# apply). Checks, for the MLP (Adam), the CNN (Adam), the LSTM (Adam, a scan) and the CNN with
# batch norm (SGD), in f32 and (--dtype f64) in f64:
#   - one rank: the fused train step == grad + allreduce + apply, bit for bit, every step; for
#     batch norm also with grad's hooks NULL (--no-hooks): the replica sums of synchronized
#     batch norm (passes/syncbn.c) leave one replica's bits unchanged;
#   - two ranks: params and state identical on both ranks after every step (hash compare);
#   - the per-bucket hook (--buckets): see check_buckets below;
#   - 2 ranks at batch B give the params of 1 rank at batch 2B after 20 steps (relative
#     difference <= 1e-5 in f32, <= 1e-6 in f64); with batch norm because its statistics are
#     the global batch's (the hooks); without the hooks (--no-hooks: each rank normalizes by its
#     own batch, PyTorch DDP without SyncBatchNorm) they differ by far more, so the check can
#     fail.
# Open MPI missing is a failure, never a skip (scripts/install-deps.sh installs it).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
source "$ROOT/tests/mpi/env.bash" mpicc mpirun
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

# build NAME MODEL FILE BATCH [FLAGS]: ./NAME, the example over FILE compiled at batch BATCH
build() {
  "$LATHE" compile --split-step ${5:-} -D N=$4 "$3" -o "gen_$1" 2>/dev/null
  mpicc -std=c11 -O2 -Wall -Wextra -Werror -I"gen_$1" -DLATHE_MODEL_H="\"$2.h\"" \
    -DLATHE_MODEL_INFO=$2_info "$ROOT/examples/mpi/main.c" "gen_$1/$2.c" -lm -o "$1"
}

# same_params A B DTYPE [MIN]: relative difference ||a - b|| / ||b|| (2-norm) of two raw params
# files of DTYPE (f32 or f64), <= 1e-5 (f32) or 1e-6 (f64); with MIN, >= MIN instead (the
# files must differ that much). Not elementwise: Adam's division by sqrt(v) magnifies the
# rounding of near-zero gradients (see tests/mpi_lathe_train.sh).
same_params() {
  /usr/bin/python3 - "$@" <<'PY'
import sys, numpy as np
t = np.float64 if sys.argv[3] == "f64" else np.float32
a, b = (np.fromfile(f, t) for f in sys.argv[1:3])
same = a.size == b.size
rel = float(np.linalg.norm(a - b) / np.linalg.norm(b)) if same else float("inf")
elem = float(np.abs(a - b).max() / np.abs(b).max()) if same else float("inf")
print(f"  {a.size} {sys.argv[3]} params, relative difference {rel:.3g} "
      f"(elementwise max {elem:.3g})")
if len(sys.argv) > 4:
    sys.exit(0 if same and rel >= float(sys.argv[4]) else 1)
sys.exit(0 if rel <= (1e-6 if t == np.float64 else 1e-5) else 1)
PY
}

# check NAME MODEL FILE B CLASSES DTYPE: the three properties
check() {
  local name=$1 model=$2 file=$3 b=$4 classes=$5 dt=$6
  local flags="--dtype $dt" run="$name-$dt"
  build ${run}_b$b $model "$file" $b "$flags"
  $MPIRUN -np 1 ./${run}_b$b --check-train --classes $classes --steps 20 >train.txt ||
    { echo "FAIL: $run: train != grad + apply"; cat train.txt; exit 1; }
  echo "ok: $run: train == grad + allreduce + apply bit for bit, 20 steps"
  $MPIRUN -np 2 ./${run}_b$b --classes $classes --steps 20 --out ${run}_2x$b.bin >two.txt ||
    { echo "FAIL: $run: 2 ranks"; cat two.txt; exit 1; }
  grep -q "on 2 rank(s).*replicas identical" two.txt || { echo "FAIL: $run: 2 ranks"; exit 1; }
  echo "ok: $run: 2 ranks identical after every step"
  build ${run}_b$((2 * b)) $model "$file" $((2 * b)) "$flags"
  $MPIRUN -np 1 ./${run}_b$((2 * b)) --classes $classes --steps 20 --out ${run}_1x.bin >one.txt
  same_params ${run}_2x$b.bin ${run}_1x.bin $dt ||
    { echo "FAIL: $run: 2 ranks x $b != 1 rank x $((2 * b))"; exit 1; }
  echo "ok: $run: 2 ranks x batch $b == 1 rank x batch $((2 * b)) after 20 steps"
}

# check_bn NAME MODEL FILE B CLASSES DTYPE: batch norm without the hooks (grad's hooks NULL)
check_bn() {
  local name=$1 model=$2 file=$3 b=$4 classes=$5 dt=$6 run="$1-$6"
  grep -q "_GRAD_REPLICA_SUMS = " gen_${run}_b$b/$model.h ||
    { echo "FAIL: $run: no replica sums in gen_${run}_b$b/$model.h"; exit 1; }
  $MPIRUN -np 1 ./${run}_b$b --check-train --no-hooks --classes $classes --steps 20 >train.txt ||
    { echo "FAIL: $run: train != grad (hooks NULL) + apply"; cat train.txt; exit 1; }
  echo "ok: $run: train == grad with NULL hooks + apply bit for bit, 20 steps"
  $MPIRUN -np 2 ./${run}_b$b --no-hooks --classes $classes --steps 20 --out ${run}_own.bin \
    >two.txt ||
    { echo "FAIL: $run: 2 ranks without hooks"; cat two.txt; exit 1; }
  same_params ${run}_own.bin ${run}_1x.bin $dt 1e-4 ||
    { echo "FAIL: $run: per-rank batch norm is as close to 1 x $((2 * b)) as synced"; exit 1; }
  echo "ok: $run: without the hooks (each rank its own batch norm) 2 x $b != 1 x $((2 * b))"
}

for dt in f32 f64; do
  check mlp mlp "$ROOT/examples/mlp.lathe" 8 10 $dt
  check cnn cnn "$ROOT/examples/cnn.lathe" 4 10 $dt
  check lstm lstm_mnist "$ROOT/examples/lstm.lathe" 4 10 $dt
  check cnnbn cnnbn "$ROOT/tests/fixtures/cnn_bn.lathe" 4 3 $dt
  check_bn cnnbn cnnbn "$ROOT/tests/fixtures/cnn_bn.lathe" 4 3 $dt
done

# check_buckets NAME MODEL FILE B CLASSES BYTES: the per-bucket hook (--buckets BYTES, f32): one
# rank with
# a ready hook that copies each bucket when called: every byte of <model>_grads in exactly one
# bucket, final when called, train == grad + apply bit for bit; 2 ranks reducing each bucket
# with MPI_Iallreduce as grad calls it ready (--overlap) give the bits of 2 ranks with one
# MPI_Allreduce after grad, with and without --buckets
check_buckets() {
  local name=$1 model=$2 file=$3 b=$4 classes=$5 run="$1-bk"
  build ${run} $model "$file" $b "--buckets $6"
  local n=$(grep -o "_GRAD_BUCKETS = [0-9]*" gen_${run}/$model.h | grep -o "[0-9]*$")
  [[ ${n:-0} -ge 2 ]] || { echo "FAIL: $run: expected several buckets, got '${n:-}'"; exit 1; }
  $MPIRUN -np 1 ./${run} --check-train --check-buckets --classes $classes --steps 20 >bk.txt ||
    { echo "FAIL: $run: buckets"; cat bk.txt; exit 1; }
  echo "ok: $run: $n buckets cover the gradients once, final when ready; train == grad + apply"
  $MPIRUN -np 2 ./${run} --overlap --classes $classes --steps 20 --out ${run}_ov.bin >ov.txt ||
    { echo "FAIL: $run: 2 ranks overlapped"; cat ov.txt; exit 1; }
  $MPIRUN -np 2 ./${run} --classes $classes --steps 20 --out ${run}_one.bin >/dev/null
  cmp ${run}_ov.bin ${run}_one.bin && cmp ${run}_ov.bin $name-f32_2x$b.bin ||
    { echo "FAIL: $run: 2 ranks with buckets != 2 ranks without"; exit 1; }
  echo "ok: $run: 2 ranks reducing $n buckets during grad == one allreduce after it, bit for bit"
}

check_buckets mlp mlp "$ROOT/examples/mlp.lathe" 8 10 65536
check_buckets cnn cnn "$ROOT/examples/cnn.lathe" 4 10 65536
check_buckets lstm lstm_mnist "$ROOT/examples/lstm.lathe" 4 10 65536
check_buckets cnnbn cnnbn "$ROOT/tests/fixtures/cnn_bn.lathe" 4 3 256

# the decision is in the IR: batch norm's statistics are replica sums in the split step's grad
# entry (after the syncbn pass), and only there
"$LATHE" dump --split-step --after syncbn --entry grad -D N=4 "$ROOT/tests/fixtures/cnn_bn.lathe" \
  >grad.ir
"$LATHE" dump --split-step --after syncbn --entry train -D N=4 "$ROOT/tests/fixtures/cnn_bn.lathe" \
  >train.ir
[[ $(grep -c "= replica_sum " grad.ir) == 8 && $(grep -c "replica_sum" train.ir) == 0 ]] ||
  { echo "FAIL: expected 8 replica sums in grad after syncbn, none in train"; exit 1; }
echo "ok: lathe dump shows grad's replica sums (8: a count and a statistic per mean and variance)"

# a model compiled without --split-step: a clear error, not a crash
"$LATHE" compile -D N=4 "$ROOT/examples/mlp.lathe" -o gen_plain 2>/dev/null
mpicc -std=c11 -Igen_plain "$ROOT/examples/mpi/main.c" gen_plain/mlp.c -lm -o plain
if $MPIRUN -np 1 ./plain >plain.txt 2>&1; then echo "FAIL: unsplit model accepted"; exit 1; fi
grep -q "compile it with \`lathe compile --split-step\`" plain.txt ||
  { echo "FAIL: unsplit model:"; cat plain.txt; exit 1; }
echo "ok: a model without a split step is refused with a clear message"
