#!/usr/bin/env bash
# A rank that dies in `mpirun -np 2 lathe train` (docs/distributed.md): an LD_PRELOAD shim
# (tests/faults/mpi_die.c) makes rank 1 die at its k-th MPI_Allreduce while rank 0 waits in
# the next collective or writes its checkpoint. The job must end within a bounded time (no
# hang: `timeout` would say 124), mpirun exits non-zero naming the rank, the survivor says it
# was ended by the launcher, and no partial file is left: the checkpoint on disk is a whole
# epoch that resumes, and no temp file remains.
#   - SIGKILL right after epoch 1's hash check while rank 0 writes the epoch-1 checkpoint:
#     the fsync of a file takes 1.5 s here. Open MPI ends the survivors with SIGCONT, SIGTERM
#     1 s later, SIGKILL 1 s after that (odls_base_sigkill_timeout), so SIGTERM lands inside
#     the write and SIGKILL after it; rank 0 holds SIGTERM back until the rename
#     (lathe_dist.hold, cli/dist_mpi.c). Without the hold this test fails (a temp file left);
#   - _exit(3) without MPI_Finalize in the middle of epoch 1 (no checkpoint yet: none left).
# Open MPI missing is a failure, never a skip (scripts/install-deps.sh installs it).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
source "$ROOT/tests/mpi/env.bash" mpicc mpirun
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
mpicc -shared -fPIC "$ROOT/tests/faults/mpi_die.c" -o mpi_die.so -ldl
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(5)
np.save("x.npy", rng.random((640, 784), dtype=np.float32))
np.save("label.npy", rng.integers(0, 10, 640).astype(np.int32))
PY
TRAIN=(train "$ROOT/examples/mlp.lathe" --data x.npy,label.npy --batch 8 --seed 2)
LIMIT=240 # seconds: a run that has not ended by then hangs

# die HOW AFTER OUT: 2 ranks for 3 epochs, rank 1 dies (HOW) at its AFTER-th allreduce;
# the job's exit status in $rc, its output in OUT, its length in $took
die() {
  local start=$SECONDS
  rc=0
  timeout $LIMIT mpirun --oversubscribe -np 2 -x LD_PRELOAD="$TMP/mpi_die.so" -x LATHE_DIE_RANK=1 \
    -x LATHE_DIE_AFTER="$2" -x LATHE_DIE_HOW="$1" -x LATHE_SLOW_FSYNC_MS=1500 "$LATHE" "${TRAIN[@]}" --epochs 3 \
    --checkpoint ck/run.st >"$3" 2>&1 || rc=$?
  took=$((SECONDS - start))
  [[ $rc != 0 && $rc != 124 ]] ||
    { echo "FAIL: $1: exit $rc after ${took}s (124: a hang)"; cat "$3"; exit 1; }
  grep -q "rank 0 of 2 ended by the MPI launcher" "$3" ||
    { echo "FAIL: $1: the survivor did not say why it ended:"; cat "$3"; exit 1; }
  if grep -q "\.tmp-" <<<"$(ls -A ck)"; then echo "FAIL: $1: a temp file was left: $(ls -A ck)"; exit 1; fi
}

# allreduces of rank 1 in epoch 1: 1 (hash at the start) + 40 steps + 1 (which state grad
# updates, first step) + 2 (the epoch's loss, the hash after it): the 45th is epoch 2's first
mkdir ck
die kill 45 kill.txt
grep -q "process rank 1 .* exited on signal 9" kill.txt ||
  { echo "FAIL: mpirun did not name the killed rank:"; cat kill.txt; exit 1; }
grep -q "^epoch 1/3: train loss" kill.txt || { echo "FAIL: epoch 1 did not end:"; cat kill.txt; exit 1; }
[[ -f ck/run.st ]] || { echo "FAIL: no checkpoint of epoch 1"; exit 1; }
"$LATHE" "${TRAIN[@]}" --epochs 2 --resume ck/run.st >resume.txt 2>&1 ||
  { echo "FAIL: the checkpoint left does not resume:"; cat resume.txt; exit 1; }
grep -q "resuming from ck/run.st after epoch 1" resume.txt ||
  { echo "FAIL: not epoch 1's checkpoint:"; cat resume.txt; exit 1; }
echo "ok: rank 1 killed (SIGKILL) after epoch 1: exit $rc in ${took}s, epoch 1's checkpoint whole"

rm -rf ck && mkdir ck
die exit 20 exit.txt
grep -q "exited with non-zero status" exit.txt && grep -q "Exit code: *3" exit.txt ||
  { echo "FAIL: mpirun did not report the rank's exit:"; cat exit.txt; exit 1; }
[[ -z $(ls -A ck) ]] || { echo "FAIL: files left: $(ls -A ck)"; exit 1; }
echo "ok: rank 1 quit (_exit(3), no MPI_Finalize) mid-epoch: exit $rc in ${took}s, no file left"
