#!/usr/bin/env bash
# `mpirun -np K lathe train` (docs/distributed.md), 2 ranks on this machine over loopback:
#   - 2 ranks at batch 8 give the params of 1 rank at batch 16 after 20 steps (relative
#     difference <= 1e-5, f32; MLP with Adam), and print one progress report;
#   - 1 rank under mpirun (grad, allreduce, apply) writes the checkpoint of plain `lathe train`
#     bit for bit;
#   - a checkpoint of 2 ranks resumes on 1 rank and on 2;
#   - ranks with different weights (another --seed) stop at the start with a clear error;
#   - a dataset smaller than the number of ranks: a clear error;
#   - --buckets 65536 (docs/distributed.md, the per-bucket hook): each rank reduces the MLP's
#     gradients as 3 buckets with MPI_Iallreduce during grad (counted by an LD_PRELOAD shim,
#     60 calls in 20 steps) and writes the checkpoint of one MPI_Allreduce after grad, bit for
#     bit.
# Open MPI missing is a failure, never a skip (scripts/install-deps.sh installs it).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
source "$ROOT/tests/mpi/env.bash" mpirun mpicc
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
MODEL=$ROOT/examples/mlp.lathe
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(7)
np.save("x.npy", rng.random((320, 784), dtype=np.float32))
np.save("label.npy", rng.integers(0, 10, 320).astype(np.int32))
np.save("x1.npy", rng.random((1, 784), dtype=np.float32))
np.save("label1.npy", rng.integers(0, 10, 1).astype(np.int32))
PY
mkdir -p one && cp x1.npy one/x.npy && cp label1.npy one/label.npy
DATA="--data x.npy,label.npy --seed 3"

# params_close A B: the params (not the optimizer state) of two checkpoints: per tensor the
# relative difference ||a - b|| / ||b|| (2-norm) <= 1e-5. Not elementwise: Adam divides by
# sqrt(v), so a weight whose gradients stay near 0 moves by lr whatever their rounding, and the
# f32 rounding of the two reduction orders (one batch of 16; two of 8, summed) shows there
# (max |a - b| / max |b| reaches 1e-5 on a tensor while the moments agree to 3e-7).
params_close() {
  /usr/bin/python3 - "$1" "$2" "$ROOT/tests/fixtures" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[3])
import safetensors_py
a, b = safetensors_py.load(sys.argv[1]), safetensors_py.load(sys.argv[2])
worst = elem = 0.0
for name in (n for n in b if not n.startswith(("adam.", "train.", "lathe."))):
    x, y = a[name].astype(np.float64), b[name].astype(np.float64)
    worst = max(worst, float(np.linalg.norm(x - y) / np.linalg.norm(y)))
    elem = max(elem, float(np.abs(x - y).max() / np.abs(y).max()))
print(f"  params relative difference {worst:.3g} (elementwise max {elem:.3g})")
sys.exit(0 if worst <= 1e-5 else 1)
PY
}

$MPIRUN -np 2 "$LATHE" train "$MODEL" $DATA --batch 8 --checkpoint two.st >two.txt 2>two.err
$MPIRUN -np 1 "$LATHE" train "$MODEL" $DATA --batch 16 --checkpoint one.st >one.txt 2>/dev/null
params_close two.st one.st || { echo "FAIL: 2 ranks x 8 != 1 rank x 16"; exit 1; }
echo "ok: lathe train: 2 ranks x batch 8 == 1 rank x batch 16 (20 steps, Adam)"
[[ $(grep -c "train loss" two.txt) == 1 && $(grep -c "^epoch 1/1:" two.err) == 1 ]] ||
  { echo "FAIL: 2 ranks did not report once:"; cat two.txt two.err; exit 1; }
echo "ok: only rank 0 reports"

"$LATHE" train "$MODEL" $DATA --batch 16 --checkpoint plain.st >/dev/null 2>&1
cmp -s plain.st one.st || { echo "FAIL: 1 rank under mpirun != plain lathe train"; exit 1; }
echo "ok: 1 rank under mpirun writes plain lathe train's checkpoint bit for bit"

$MPIRUN -np 2 "$LATHE" train "$MODEL" $DATA --batch 8 --resume two.st --epochs 2 \
  --checkpoint r2.st >/dev/null 2>r2.err
"$LATHE" train "$MODEL" $DATA --batch 16 --resume two.st --epochs 2 --checkpoint r1.st \
  >/dev/null 2>&1
params_close r2.st r1.st || { echo "FAIL: resuming on 2 ranks and on 1 differ"; exit 1; }
grep -q "resuming from two.st after epoch 1" r2.err || { echo "FAIL: resume:"; cat r2.err; exit 1; }
echo "ok: a checkpoint of 2 ranks resumes on 2 ranks and on 1 (the same epoch 2)"

set +e
$MPIRUN -np 1 "$LATHE" train "$MODEL" $DATA --batch 8 : -np 1 "$LATHE" train "$MODEL" \
  --data x.npy,label.npy --seed 4 --batch 8 >bad.txt 2>&1
rc=$?
set -e
[[ $rc != 0 ]] && grep -q "rank 1's model or weights differ from rank 0's at the start" bad.txt ||
  { echo "FAIL: ranks with different weights (rc $rc):"; cat bad.txt; exit 1; }
echo "ok: ranks with different weights stop at the start with a clear error"

set +e
$MPIRUN -np 2 "$LATHE" train "$MODEL" --data one/x.npy,one/label.npy --batch 1 >small.txt 2>&1
rc=$?
set -e
[[ $rc != 0 ]] && grep -q "1 training samples for 2 ranks" small.txt ||
  { echo "FAIL: a dataset smaller than the ranks (rc $rc):"; cat small.txt; exit 1; }
echo "ok: a dataset smaller than the number of ranks is a clear error"

# the per-bucket hook: MPI_Iallreduce per bucket during grad == one MPI_Allreduce after it
cat >count.c <<'EOF2'
/* counts this rank's MPI_Iallreduce calls and says so at MPI_Finalize */
#include <mpi.h>
#include <stdio.h>
static long calls;
int MPI_Iallreduce(const void *s, void *r, int n, MPI_Datatype t, MPI_Op o, MPI_Comm c,
                   MPI_Request *q) {
  calls++;
  return PMPI_Iallreduce(s, r, n, t, o, c, q);
}
int MPI_Finalize(void) {
  int rank = 0;
  PMPI_Comm_rank(MPI_COMM_WORLD, &rank);
  fprintf(stderr, "MPI_Iallreduce calls on rank %d: %ld\n", rank, calls);
  return PMPI_Finalize();
}
EOF2
mpicc -shared -fPIC -O2 -Wall -Wextra -Werror count.c -o count.so
$MPIRUN -np 2 -x LD_PRELOAD="$PWD/count.so" "$LATHE" train \
  "$MODEL" $DATA --batch 8 --buckets 65536 --checkpoint bk.st >/dev/null 2>bk.err ||
  { echo "FAIL: --buckets: lathe train failed:"; cat bk.err; exit 1; }
[[ $(grep -c "MPI_Iallreduce calls on rank .: 60$" bk.err) == 2 ]] || {
  echo "FAIL: --buckets: expected 3 buckets x 20 steps of MPI_Iallreduce per rank:"
  cat bk.err
  exit 1
}
cmp -s bk.st two.st ||
  { echo "FAIL: --buckets: 2 ranks overlapped != one allreduce after grad"; exit 1; }
echo "ok: --buckets: 2 ranks reduce 3 buckets in grad (60 MPI_Iallreduce each), same checkpoint"
