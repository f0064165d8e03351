#!/usr/bin/env bash
# Checkpoints survive faults. A full disk (an LD_PRELOAD shim, tests/faults/enospc.c, fails
# every write under the checkpoint's directory with ENOSPC) gives a clear error, exit 1, the
# previous checkpoint byte for byte and no temp file left. A run killed with SIGKILL in the
# middle of an epoch resumes from its last checkpoint and ends bit-identical to a run that
# was never interrupted.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
M=$ROOT/examples/mlp.lathe
TRAIN=(train "$M" --data fashion-mnist --limit 9600 --seed 11)

cc -shared -fPIC "$ROOT/tests/faults/enospc.c" -o enospc.so -ldl
mkdir ck
"$LATHE" "${TRAIN[@]}" --epochs 1 --checkpoint ck/run.safetensors > /dev/null 2>&1
before=$(sha256sum < ck/run.safetensors)
status=0
LD_PRELOAD=$TMP/enospc.so LATHE_ENOSPC_DIR=$TMP/ck ASAN_OPTIONS=verify_asan_link_order=0 \
  "$LATHE" "${TRAIN[@]}" --epochs 2 --resume ck/run.safetensors \
  --checkpoint ck/run.safetensors > out.txt 2>&1 || status=$?
[ "$status" -eq 1 ] || { echo "FAIL: exit $status on a full disk"; cat out.txt; exit 1; }
grep -q "cannot write 'ck/run.safetensors': No space left on device" out.txt ||
  { echo "FAIL: no clear disk-full error:"; cat out.txt; exit 1; }
[ "$(sha256sum < ck/run.safetensors)" = "$before" ] ||
  { echo "FAIL: the previous checkpoint changed"; exit 1; }
[ "$(ls -A ck)" = "run.safetensors" ] || { echo "FAIL: left behind: $(ls -A ck)"; exit 1; }
echo "ok: disk full: $(grep -o "error: .*" out.txt | head -1); the previous checkpoint is intact"

# the uninterrupted run, then one killed mid-epoch and resumed
"$LATHE" "${TRAIN[@]}" --epochs 4 --checkpoint straight.safetensors > /dev/null 2>&1
"$LATHE" "${TRAIN[@]}" --epochs 4 --checkpoint killed.safetensors > killed.txt 2>&1 &
pid=$!
for _ in $(seq 600); do # wait for the first checkpoint, then kill inside the next epoch
  [ -f killed.safetensors ] && break
  sleep 0.1
done
sleep 0.3
kill -KILL "$pid" 2> /dev/null && echo "killed the run with SIGKILL" || true
wait "$pid" 2> /dev/null || true
[ -f killed.safetensors ] || { echo "FAIL: no checkpoint before the kill"; exit 1; }
grep -q "\.tmp-" <<<"$(ls -A)" && { echo "FAIL: a temp file was left: $(ls -A)"; exit 1; }
"$LATHE" "${TRAIN[@]}" --epochs 4 --resume killed.safetensors \
  --checkpoint killed.safetensors > resumed.txt 2>&1
cmp straight.safetensors killed.safetensors
echo "ok: killed mid-run, resumed from its checkpoint: bit-identical to the uninterrupted run"
