#!/usr/bin/env bash
# Structured pruning at bake (issue #20, passes/prune_channels.c): output channels whose
# baked weights are all zero are removed from the producer, the chain after it and the
# consumer, and the physically smaller model computes what the masked dense model computes.
#   - the CNN fixture with half the channels of c1, c2 and h zeroed by `lathe prune --kind
#     channels` (its biases are non-zero, so some removed channels carry a constant that is
#     folded into the next layer's bias): the IR records pruned=[before, folded] and has the
#     smaller shapes; the header's workspace is smaller and the .c (the weight tables)
#     shorter than the same bake with --disable prune_channels; built with gcc and clang
#     -std=c99 -Wall -Wextra -Wpedantic -Werror, native and --target generic, its outputs
#     equal the reference evaluator's on the unbaked masked model and the dense bake's
#     (tolerance 1e-5 of the largest probability: the kernels' sums run in another order);
#   - the MLP fixture pruned the same way (the logits layer keeps its columns: they are
#     the model's output);
#   - an MLP trained a few steps with a `prune ... channels(0.5)` statement, then baked;
#   - kept: the batch-norm CNN fixture, whose pruned conv reaches an add of two pooling
#     branches (a channel would have to leave both) and a padded convolution; a residual
#     MLP; and nothing to remove (the unpruned CNN): the C is byte for byte the C of
#     --disable prune_channels.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
FIX=$ROOT/tests/fixtures

fail() {
  echo "FAIL: $*"
  exit 1
}

# bake MODEL WEIGHTS DIR [args...]: the baked C in DIR (its .c path printed)
bake() {
  local model=$1 weights=$2 dir=$3
  shift 3
  "$LATHE" compile "$@" "$model" --weights "$weights" --bake -o "$dir" >/dev/null
  ls "$dir"/*.c
}

# run_c C_FILE INPUT OUTDIR CC [cflags...]: build the baked C as a shared object and run it
run_c() {
  local c_file=$1 input=$2 out=$3 cc=$4
  shift 4
  local so
  so="$(dirname "$c_file")/$cc/$(basename "$c_file" .c).so" # the .so's name is the prefix
  mkdir -p "$(dirname "$so")"
  $cc -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror "$@" -shared -fPIC "$c_file" -o "$so" -lm
  "$LATHE" run "$so" --input x="$input" --out "$out" >/dev/null
}

workspace() { # the forward entry's workspace bytes from a generated header
  grep -oE '_FORWARD_WORKSPACE_BYTES = [0-9]+|_WORKSPACE_BYTES = [0-9]+' "$1" | head -1 |
    grep -oE '[0-9]+$'
}

# check NAME MODEL WEIGHTS INPUT OUTPUT PRUNED-PATTERN [defines...]: the pruned bake against
# the reference evaluator and the dense bake, for each of $TARGETS; PRUNED-PATTERN must
# appear in the IR after prune_channels, and the pruned bake's workspace and C be smaller
TARGETS="native generic"
check() {
  local name=$1 model=$2 weights=$3 input=$4 out=$5 pattern=$6
  shift 6
  "$LATHE" run "$@" "$model" --weights "$weights" --input x="$input" --reference \
    --out "ref-$name" >/dev/null
  "$LATHE" compile "$@" "$model" --weights "$weights" --bake -o "ir-$name" \
    --dump-after prune_channels >"ir-$name.txt"
  grep -qE "$pattern" "ir-$name.txt" || fail "$name: no '$pattern' in the IR"
  for target in $TARGETS; do
    local pruned dense
    pruned=$(bake "$model" "$weights" "$name-$target" --target "$target" "$@")
    dense=$(bake "$model" "$weights" "$name-$target-dense" --target "$target" \
      --disable prune_channels "$@")
    local wp wd
    wp=$(workspace "${pruned%.c}.h")
    wd=$(workspace "${dense%.c}.h")
    [ "$wp" -lt "$wd" ] || fail "$name-$target: workspace $wp bytes, dense $wd"
    [ "$(wc -c <"$pruned")" -lt "$(wc -c <"$dense")" ] || fail "$name-$target: C not smaller"
    for cc in gcc clang; do
      run_c "$pruned" "$input" "out-$name-$target-$cc" "$cc"
      run_c "$dense" "$input" "dense-$name-$target-$cc" "$cc"
      $PY "$ROOT/tests/compare_npy.py" "out-$name-$target-$cc/$out.npy" "ref-$name/$out.npy" 1e-5
      $PY "$ROOT/tests/compare_npy.py" "out-$name-$target-$cc/$out.npy" \
        "dense-$name-$target-$cc/$out.npy" 1e-5
    done
    echo "$name-$target: workspace $wp bytes (dense $wd), C $(wc -c <"$pruned") bytes" \
      "(dense $(wc -c <"$dense"))"
  done
}

# ---- the CNN: c1 32 -> 16, c2 64 -> 32 (its input 32 -> 16), h 128 -> 64 ----
"$LATHE" prune "$ROOT/examples/cnn.lathe" -w "$FIX/cnn/weights.safetensors" -s 0.5 \
  --kind channels --params 'c1.w,c2.w,h.w' -o cnn50.safetensors >/dev/null
TARGETS=native # the CNN's C takes long to build: generic is covered by the MLPs
check cnn "$ROOT/examples/cnn.lathe" cnn50.safetensors "$FIX/cnn/x.npy" probs \
  'conv2d .*pruned=\[32, [0-9]+\]\} : f32\[16, 16, 26, 26\]' -D N=16
grep -qE 'conv2d .*pruned=\[64, [0-9]+\]\} : f32\[16, 32, 11, 11\]' ir-cnn.txt ||
  fail "cnn: c2 not shrunk to 32 channels"
grep -qE 'reshape .* : f32\[16, 800\]' ir-cnn.txt || fail "cnn: flatten not shrunk to 800"
grep -qE 'matmul .*pruned=\[128, [0-9]+\]\} : f32\[16, 64\]' ir-cnn.txt ||
  fail "cnn: h not shrunk to 64 neurons"
# the fixture's biases are non-zero: some removed channels carried a constant, folded
grep -qE 'pruned=\[[0-9]+, [1-9][0-9]*\]' ir-cnn.txt || fail "cnn: nothing folded"

# ---- the MLP: h1 256 -> 128, h2 128 -> 64; logits (the output's layer) kept ----
"$LATHE" prune "$ROOT/examples/mlp.lathe" -w "$FIX/mlp/weights.safetensors" -s 0.5 \
  --kind channels -o mlp50.safetensors >/dev/null
$PY -c "import numpy as np; np.save('x8.npy', np.load('$FIX/mlp/x.npy')[:8])"
TARGETS="native generic"
check mlp "$ROOT/examples/mlp.lathe" mlp50.safetensors x8.npy probs \
  'matmul .*pruned=\[256, [0-9]+\]\} : f32\[8, 128\]' -D N=8
grep -qE 'matmul .*pruned=\[128, [0-9]+\]\} : f32\[8, 64\]' ir-mlp.txt || fail "mlp: h2"
grep -qE 'matmul .* : f32\[8, 10\]' ir-mlp.txt || fail "mlp: the logits changed"

# ---- an MLP trained with the `prune` statement (masks in the train step), then baked ----
sed -e 's|^  optimizer adam(lr = 1e-3)$|&\n  prune h1.w, h2.w channels(sparsity = 0.5)|' \
  "$ROOT/examples/mlp.lathe" >stmt.lathe
grep -q '^  prune ' stmt.lathe || fail "no prune statement in stmt.lathe"
"$LATHE" train stmt.lathe -D N=8 --data fashion-mnist --limit 64 --epochs 1 \
  --checkpoint stmt.safetensors >/dev/null 2>&1
TARGETS=native
check stmt stmt.lathe stmt.safetensors x8.npy probs \
  'matmul .*pruned=\[256, [0-9]+\]\} : f32\[8, 128\]' -D N=8

# ---- kept: batch-norm CNN (two pooling branches added, a padded conv), residual MLP ----
"$LATHE" prune "$FIX/cnn_bn.lathe" -w "$FIX/cnn_bn/weights.safetensors" -s 0.5 \
  --kind channels --params 'h1.w' -o bn50.safetensors >/dev/null
cat >residual.lathe <<'M'
import nn
model res(x: f32[4, 12]) {
  h = relu(dense(x, 12))
  r = h + x                                 # a residual add: h's channels meet x's
  g = relu(dense(r, 6))
  output y = dense(g, 3)
}
M
$PY -c "
import sys; sys.path.insert(0, '$FIX'); import safetensors_py as s
import numpy as np
rng = np.random.default_rng(3)
w = {'h.w': rng.standard_normal((12, 12)), 'h.b': np.zeros(12),
     'g.w': rng.standard_normal((12, 6)), 'g.b': rng.standard_normal(6),
     'y.w': rng.standard_normal((6, 3)), 'y.b': rng.standard_normal(3)}
w = {k: v.astype(np.float32) for k, v in w.items()}
w['h.w'][:, [2, 5, 7]] = 0
s.save('res.safetensors', w)
np.save('xr.npy', rng.standard_normal((4, 12)).astype(np.float32))"
same() { # NAME MODEL WEIGHTS INPUT CFLAGS [defines...]: pruning changes nothing in the C
  local name=$1 model=$2 weights=$3 input=$4 cflags=$5
  shift 5
  local a b
  a=$(bake "$model" "$weights" "$name" "$@")
  b=$(bake "$model" "$weights" "$name-off" --disable prune_channels "$@")
  cmp -s "$a" "$b" || fail "$name: prune_channels changed the C of a model it cannot prune"
  "$LATHE" run "$@" "$model" --weights "$weights" --input x="$input" --reference \
    --out "ref-$name" >/dev/null
  run_c "$a" "$input" "out-$name" gcc $cflags
  local out
  out=$(ls "ref-$name" | head -1)
  $PY "$ROOT/tests/compare_npy.py" "out-$name/$out" "ref-$name/$out" 1e-5
  echo "$name: unchanged"
}
# (the baked cnn_bn's forward leaves its empty params argument unused: -Wno-unused-parameter)
same bn "$FIX/cnn_bn.lathe" bn50.safetensors "$FIX/cnn_bn/x.npy" -Wno-unused-parameter
same residual residual.lathe res.safetensors xr.npy ""
same cnn_dense "$ROOT/examples/cnn.lathe" "$FIX/cnn/weights.safetensors" "$FIX/cnn/x.npy" "" \
  -D N=16
echo "prune_channels: ok"
