#!/usr/bin/env bash
# `mpirun -np K lathe train` with a run-time batch and a fixed global batch
# (docs/distributed.md), 2 ranks on this machine over loopback, 97 samples (not a multiple of
# the global batch 16: every epoch ends with a partial global batch of 1 sample, so rank 0
# trains 1 row and rank 1 none and takes part with a zero gradient):
#   - 2 ranks at -D N=dynamic(max=8) give the params of 1 rank at dynamic(max=16) after 2
#     epochs (relative difference <= 1e-6, f64), report the same epoch losses and the whole
#     epoch (97/97); a run that drops the partial batch (-D N=16) differs, so the check can fail;
#   - --global-batch 16 on a model with dynamic(max=16): 2 ranks (8 rows each) == 1 rank
#     (<= 1e-5, f32);
#   - --global-batch errors: not a multiple of the ranks, a share that is not the fixed batch,
#     a share above the bound;
#   - synchronized batch norm (passes/syncbn.c) at a run-time batch, the CNN with batch norm
#     (tests/fixtures/cnn_bn.lathe), f64, 37 samples: 2 ranks at bound 8 (the last step 3 and 2
#     rows: ranks weighted unevenly) and 3 ranks at bound 4 on 26 samples (the last step 1, 1
#     and 0 rows: a rank without rows takes part in the replica sums with zeros) give the
#     params of 1 rank at the global bound (<= 1e-6 over all params); per-rank batch norm
#     (--disable syncbn) differs by far more, so the check can fail.
# Open MPI missing is a failure, never a skip (scripts/install-deps.sh installs it).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
source "$ROOT/tests/mpi/env.bash" mpirun
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
MODEL=$ROOT/examples/mlp.lathe
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(11)
np.save("x.npy", rng.random((97, 784), dtype=np.float32))
np.save("label.npy", rng.integers(0, 10, 97).astype(np.int32))
PY
TRAIN=(train "$MODEL" --data x.npy,label.npy --seed 5 --epochs 2)

# params_diff A B LIMIT: the params (not the optimizer state) of two checkpoints, per tensor
# ||a - b|| / ||b||, the worst <= LIMIT (see tests/mpi_lathe_train.sh for why not elementwise)
params_diff() {
  /usr/bin/python3 - "$1" "$2" "$3" "$ROOT/tests/fixtures" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[4])
import safetensors_py
a, b = safetensors_py.load(sys.argv[1]), safetensors_py.load(sys.argv[2])
worst = 0.0
for name in (n for n in b if not n.startswith(("adam.", "train.", "lathe."))):
    x, y = a[name].astype(np.float64), b[name].astype(np.float64)
    worst = max(worst, float(np.linalg.norm(x - y) / np.linalg.norm(y)))
print(f"  params relative difference {worst:.3g} (limit {sys.argv[3]})")
sys.exit(0 if worst <= float(sys.argv[3]) else 1)
PY
}

# params_all A B LIMIT [MIN]: ||a - b|| / ||b|| over all params at once (a model with batch
# norm has biases whose gradient is zero, their values rounding noise), <= LIMIT (>= MIN)
params_all() {
  /usr/bin/python3 - "$@" "$ROOT/tests/fixtures" <<'PY'
import sys
import numpy as np
sys.path.insert(0, sys.argv[-1])
import safetensors_py
a, b = safetensors_py.load(sys.argv[1]), safetensors_py.load(sys.argv[2])
names = [n for n in b if not n.startswith(("adam.", "train.", "lathe.")) and "running" not in n]
x = np.concatenate([a[n].astype(np.float64).ravel() for n in names])
y = np.concatenate([b[n].astype(np.float64).ravel() for n in names])
rel = float(np.linalg.norm(x - y) / np.linalg.norm(y))
print(f"  {x.size} params, relative difference {rel:.3g}")
sys.exit(0 if rel <= float(sys.argv[3]) and (len(sys.argv) < 6 or rel >= float(sys.argv[4])) else 1)
PY
}

# the partial global batch, 2 ranks x bound 8 vs 1 rank x bound 16, f64
$MPIRUN -np 2 "$LATHE" "${TRAIN[@]}" -D 'N=dynamic(max=8)' --dtype f64 --checkpoint two.st \
  >two.txt 2>two.err
"$LATHE" "${TRAIN[@]}" -D 'N=dynamic(max=16)' --dtype f64 --checkpoint one.st >one.txt 2>one.err
params_diff two.st one.st 1e-6 || { echo "FAIL: 2 ranks x 8 != 1 rank x 16 (partial batch)"; exit 1; }
diff <(grep -o "^epoch ./2: train loss .*" two.err) <(grep -o "^epoch ./2: train loss .*" one.err) ||
  { echo "FAIL: 2 ranks and 1 rank report different epoch losses"; exit 1; }
[[ $(grep -c "97/97" two.err) == 2 ]] || { echo "FAIL: not the whole epoch:"; cat two.err; exit 1; }
echo "ok: the partial global batch on 2 ranks (1 row and 0 rows) == 1 rank, f64; 97/97 reported"
"$LATHE" "${TRAIN[@]}" -D N=16 --dtype f64 --checkpoint drop.st >/dev/null 2>&1
if params_diff drop.st one.st 1e-4 >/dev/null; then
  echo "FAIL: dropping the partial batch gives the same params: the check cannot fail"
  exit 1
fi
echo "ok: a run that drops the partial batch differs (the check can fail)"

# a fixed global batch: the same steps on 1 and 2 ranks
$MPIRUN -np 2 "$LATHE" "${TRAIN[@]}" -D 'N=dynamic(max=16)' --global-batch 16 \
  --checkpoint g2.st >/dev/null 2>g2.err
"$LATHE" "${TRAIN[@]}" -D 'N=dynamic(max=16)' --global-batch 16 --checkpoint g1.st \
  >/dev/null 2>&1
params_diff g2.st g1.st 1e-5 || { echo "FAIL: --global-batch 16: 2 ranks != 1 rank"; exit 1; }
echo "ok: --global-batch 16: 2 ranks x 8 rows == 1 rank x 16 rows (f32)"

# expect_error TEXT COMMAND...: the command fails (not 0) and says TEXT
expect_error() {
  local text=$1 rc=0
  shift
  "$@" >err.txt 2>&1 || rc=$?
  [[ $rc != 0 ]] && grep -qF -- "$text" err.txt ||
    { echo "FAIL: expected an error '$text' (rc $rc):"; cat err.txt; exit 1; }
  echo "ok: error: $(grep -oF -- "$text" err.txt | head -1)"
}
expect_error "--global-batch 15 on 2 ranks: expected a multiple of 2" \
  $MPIRUN -np 2 "$LATHE" "${TRAIN[@]}" --global-batch 15
expect_error "is 16 samples per rank, but 'mlp' has a fixed batch of 8" \
  $MPIRUN -np 2 "$LATHE" "${TRAIN[@]}" --batch 8 --global-batch 32
expect_error "is 32 samples per rank, more than the bound 16 of the run-time batch of 'mlp'" \
  "$LATHE" "${TRAIN[@]}" -D 'N=dynamic(max=16)' --global-batch 32

# synchronized batch norm at a run-time batch (uneven last steps), f64
BN=(train "$ROOT/tests/fixtures/cnn_bn.lathe" --seed 5 --epochs 2 --dtype f64)
/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(12)
np.save("xb.npy", rng.random((37, 1, 12, 12), dtype=np.float32))
np.save("lb.npy", rng.integers(0, 3, 37).astype(np.int32))
PY
$MPIRUN -np 2 "$LATHE" "${BN[@]}" --data xb.npy,lb.npy -D 'N=dynamic(max=8)' --checkpoint bn2.st \
  >/dev/null 2>bn2.err || { echo "FAIL: batch norm on 2 ranks"; cat bn2.err; exit 1; }
"$LATHE" "${BN[@]}" --data xb.npy,lb.npy -D 'N=dynamic(max=16)' --checkpoint bn1.st >/dev/null 2>&1
params_all bn2.st bn1.st 1e-6 ||
  { echo "FAIL: batch norm: 2 ranks x 8 != 1 rank x 16 (last step 3 + 2 rows)"; exit 1; }
echo "ok: synchronized batch norm: 2 ranks x 8 == 1 rank x 16, uneven last step, f64"
$MPIRUN -np 2 "$LATHE" "${BN[@]}" --data xb.npy,lb.npy -D 'N=dynamic(max=8)' --disable syncbn \
  --checkpoint own.st >/dev/null 2>&1
params_all own.st bn1.st 1 1e-3 ||
  { echo "FAIL: per-rank batch norm is as close to 1 rank as the synchronized one"; exit 1; }
echo "ok: per-rank batch norm (--disable syncbn) differs (the check can fail)"
/usr/bin/python3 -c "import numpy as np
np.save('xc.npy', np.load('xb.npy')[:26]); np.save('lc.npy', np.load('lb.npy')[:26])"
$MPIRUN -np 3 "$LATHE" "${BN[@]}" --data xc.npy,lc.npy -D 'N=dynamic(max=4)' --checkpoint bn3.st \
  >/dev/null 2>bn3.err || { echo "FAIL: batch norm on 3 ranks"; cat bn3.err; exit 1; }
"$LATHE" "${BN[@]}" --data xc.npy,lc.npy -D 'N=dynamic(max=12)' --checkpoint bn1c.st >/dev/null 2>&1
params_all bn3.st bn1c.st 1e-6 ||
  { echo "FAIL: batch norm: 3 ranks x 4 != 1 rank x 12 (last step 1 + 1 + 0 rows)"; exit 1; }
echo "ok: synchronized batch norm: 3 ranks x 4 == 1 rank x 12, a rank without rows, f64"
