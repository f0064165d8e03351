#!/usr/bin/env bash
# The `prune` statement of the train block (issue #20, docs/compression.md): masks in the
# state, chosen on TF MOT's schedule by the generated train step.
#   1. the mask choice equals the NumPy oracle tests/prune/prune_ref.py bit for bit (one
#      mask at step 0 from tie-heavy weights, sgd(lr = 0), so the params after the step are
#      the oracle's pruned weights): magnitude per param and global, channels by L1 and
#      L2, N:M — the same rule as `lathe prune`;
#   2. a schedule run, one step per epoch, resumed from its checkpoint after every epoch:
#      each mask prunes exactly round(s(t) * size) weights (channels) at the schedule's
#      sparsity of its last update step, pruned params stay zero, a pruned weight is never
#      revived; the resumed run, and the split step (grad + apply) under mpirun, equal the
#      straight run bit for bit;
#   3. checkpoints: a mask that matches no param of the model is rejected with its name; a
#      model without the statements evaluates a pruned checkpoint;
#   4. the IR: the train entry chooses masks (prune_mask), the forward entry reads the params
#      alone (they hold the zeros).
# The evaluator of prune_mask against its C: tests/unit/test_op_coverage.c.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
PY=/usr/bin/python3
REF=$ROOT/tests/prune/prune_ref.py
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
$PY -c 'import numpy' || { echo "prune_train: python3-numpy is missing" >&2; exit 1; }

model() { # model NAME OPTIMIZER PRUNE-LINE...: the layers of tests/prune/model.lathe
  local name=$1 opt=$2; shift 2
  {
    printf 'import nn\nmodel prune_test(x: f32[2, 2, 6, 6], label: i32[2]) {\n'
    printf '  c1 = relu(conv2d(x, 6, 3))\n  h = reshape(c1[:, :, 0:2, 0:2], [2, 24])\n'
    printf '  d1 = relu(dense(h, 8))\n  out = dense(d1, 4)\n  output probs = softmax(out)\n'
    printf '  loss = cross_entropy(out, label)\n}\ntrain prune_test {\n  minimize loss\n'
    printf '  optimizer %s\n' "$opt"
    for line in "$@"; do printf '  %s\n' "$line"; done
    printf '}\n'
  } > "$name.lathe"
}
$PY - <<'PY'
import numpy as np
r = np.random.default_rng(7)
np.save("x.npy", r.standard_normal((2, 2, 6, 6)).astype(np.float32))
np.save("label.npy", np.int32([1, 3]))
PY
$PY "$REF" make w.safetensors
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s, numpy as np
t = s.load('w.safetensors'); t['lathe.epoch'] = np.int64([0]).reshape(())
s.save('w0.safetensors', t)"
train() { # train MODEL ARGS...
  "$LATHE" train "$1.lathe" --data x.npy,label.npy --task none "${@:2}" > "$1.log" 2>&1 ||
    { echo "FAIL: lathe train $*"; cat "$1.log"; exit 1; }
}

# ---- 1. the mask choice against the oracle ----------------------------------------------------
oracle() { # oracle NAME PRUNE-LINE -- SPEC...
  local name=$1 line=$2; shift 3
  model "$name" 'sgd(lr = 0)' "$line"
  train "$name" --resume w0.safetensors --epochs 1 --checkpoint "$name.safetensors"
  $PY "$REF" check w.safetensors "$name.safetensors" "$@"
}
oracle mag50 'prune c1.w, d1.w, out.w magnitude(0.5)' -- magnitude 0.5 c1.w d1.w out.w
oracle mag90 'prune *.w magnitude(sparsity = 0.9)' -- magnitude 0.9 c1.w d1.w out.w
oracle mag_glob 'prune c1.w, d1.w, out.w magnitude(0.7, global = true)' \
  -- magnitude 0.7 global c1.w d1.w out.w
oracle mag_sel 'prune d1.*, out.w magnitude(0.3)' -- magnitude 0.3 d1.w d1.b out.w
oracle ch_l1 'prune *.w channels(0.5)' -- channels 0.5 l1 c1.w d1.w out.w
oracle ch_l2 'prune c1.w, d1.w channels(0.34, norm = l2)' -- channels 0.34 l2 c1.w d1.w
oracle nm24 'prune d1.w, out.w n_of_m(2, 4)' -- nofm 2 4 d1.w out.w
oracle nm13 'prune c1.w n_of_m(n = 1, m = 3)' -- nofm 1 3 c1.w
# the oracle tells them apart
if $PY "$REF" check w.safetensors mag_glob.safetensors magnitude 0.7 c1.w d1.w out.w \
  > /dev/null; then
  echo "FAIL: the oracle accepts per-param pruning for global"; exit 1
fi

# ---- 2. the schedule, pruned params stay zero, resume == straight run ------------------------
SCHED=('prune d1.w magnitude(0.8, begin = 1, end = 9, every = 2, initial = 0.1)'
       'prune c1.w channels(0.5, norm = l2, begin = 2, end = 6, every = 3)')
model sched 'adam(lr = 0.05)' "${SCHED[@]}"
train sched --epochs 12 --checkpoint straight.safetensors
train sched --epochs 1 --checkpoint chain.safetensors
cp chain.safetensors chain1.safetensors
for e in $(seq 2 12); do
  train sched --resume chain.safetensors --epochs "$e" --checkpoint chain.safetensors
  cp chain.safetensors "chain$e.safetensors"
done
$PY - "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/fixtures")
import numpy as np, safetensors_py as st

def schedule(t, s_i, s_f, begin, end):  # ir/prune.c prune_schedule; end == begin: constant
    if end == begin: return s_f
    if t <= begin: return s_i
    if t >= end: return s_f
    p = 1.0 - (t - begin) / (end - begin)
    return s_f + (s_i - s_f) * p * p * p

def pruned_at(t, s_i, s_f, begin, end, every, units):  # the count of the last update <= t
    last = [u for u in range(begin, min(t, end) + 1) if (u - begin) % every == 0 or u == end]
    return round(schedule(last[-1], s_i, s_f, begin, end) * units) if last else 0

specs = {"d1.w": (0.1, 0.8, 1, 9, 2, 192, 1), "c1.w": (0.0, 0.5, 2, 6, 3, 6, 18)}
before = {}
for e in range(1, 13):
    t = st.load(f"chain{e}.safetensors")
    step = e - 1  # the step this epoch took (one per epoch)
    assert t["train.step_count"] == e, (e, t["train.step_count"])
    for name, (s_i, s_f, b, end, every, units, per) in specs.items():
        mask, w = t[name + ".mask"], t[name]
        zeros = int((mask == 0).sum())
        want = pruned_at(step, s_i, s_f, b, end, every, units) * per
        assert zeros == want, f"step {step}: {name} mask prunes {zeros}, schedule says {want}"
        assert np.all(w[mask == 0] == 0), f"step {step}: a pruned weight of {name} is not zero"
        if name in before:
            assert np.all(mask[before[name] == 0] == 0), f"step {step}: {name} revived a weight"
        before[name] = mask
    if step >= 9:  # from `end` on: the final sparsity
        assert int((t["d1.w.mask"] == 0).sum()) == round(0.8 * 192)
print("schedule: ok")
PY
$PY - "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/fixtures")
import numpy as np, safetensors_py as st
a, b = st.load("straight.safetensors"), st.load("chain12.safetensors")
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
bad = [k for k in a if a[k].dtype != b[k].dtype or a[k].tobytes() != b[k].tobytes()]
assert not bad, f"the resumed run differs from the straight run in {bad}"
print("resume: ok (bit for bit)")
PY

# the split step (grad chooses the mask, apply masks the update) under mpirun, one rank: the
# checkpoint of plain `lathe train` bit for bit (Open MPI missing is a failure, as in
# tests/mpi_lathe_train.sh)
source "$ROOT/tests/mpi/env.bash" mpirun
$MPIRUN -np 1 "$LATHE" train sched.lathe --data x.npy,label.npy --task none \
  --epochs 12 --checkpoint split.safetensors > split.log 2>&1 || { cat split.log; exit 1; }
$PY - "$ROOT" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/fixtures")
import safetensors_py as st
a, b = st.load("straight.safetensors"), st.load("split.safetensors")
bad = [k for k in a if k not in b or a[k].tobytes() != b[k].tobytes()]
assert not bad, f"the split step differs from the train step in {bad}"
print("split step: ok (bit for bit)")
PY

# ---- 3. checkpoints ----------------------------------------------------------------------------
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s, numpy as np
t = s.load('chain12.safetensors'); t['zz.w.mask'] = np.ones((3, 3), np.float32)
s.save('foreign.safetensors', t)
t = s.load('chain12.safetensors'); t['out.w.mask'] = np.ones((4, 8), np.float32)
s.save('shape.safetensors', t)
t = s.load('chain12.safetensors'); t['d1.w.mask'] = np.ones((8, 24), np.float32)
s.save('state.safetensors', t)"
expect_fail() { # expect_fail PATTERN CKPT: exit status 1 and the message
  local rc=0
  "$LATHE" train sched.lathe --data x.npy,label.npy --task none --resume "$2" --epochs 13 \
    > bad.log 2>&1 || rc=$?
  if [ $rc -ne 1 ] || ! grep -q -- "$1" bad.log; then
    echo "FAIL: --resume $2 gave $rc, not 1 with '$1'"; cat bad.log; exit 1
  fi
}
expect_fail "pruning masks that match no param of the model: zz.w.mask" foreign.safetensors
expect_fail "out.w.mask (not of its param's shape)" shape.safetensors
expect_fail "tensor 'd1.w.mask' is f32\[8, 24\], but the model expects f32\[24, 8\]" \
  state.safetensors
model plain 'adam(lr = 0.05)'
"$LATHE" eval plain.lathe --weights chain12.safetensors --data x.npy,label.npy --task none \
  > plain.log 2>&1 || { echo "FAIL: a model without prune statements rejects a pruned checkpoint"
                        cat plain.log; exit 1; }

# ---- 4. the IR: the train entry chooses masks, the forward reads the params alone -------------
"$LATHE" dump sched.lathe --after prune_update --entry train > train.ir
"$LATHE" dump sched.lathe --after prune_update --entry forward | sed -n '/^graph/,$p' > forward.ir
grep -q ' = param ' forward.ir ||
  { echo "FAIL: no forward graph"; exit 1; }
grep -q 'prune_mask' train.ir || { echo "FAIL: no prune_mask in the train entry"; exit 1; }
if grep -q 'prune_mask\|\.mask' forward.ir; then echo "FAIL: the forward reads masks"; exit 1; fi
echo "prune_train: ok"
