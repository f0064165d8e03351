#!/usr/bin/env bash
# Sparse compilation of baked weights (issue #20, passes/sparsify.c, codegen/sparse.c): a
# matmul whose baked B is mostly zero runs over B's nonzeros from compressed tables (or
# literals), in the kernel the pass records, and B's dense table is not written.
#   - the MLP fixture's weights pruned to 90% (`lathe prune`), baked at N = 1 and 4 (dot and
#     unrolled kernels) and N = 8 and 20 (panels: one partial, one full and one
#     partial), native and --target generic, built with gcc and clang -std=c99 -Wall
#     -Wextra -Wpedantic -Werror: outputs equal the unbaked model's (dense kernels) on the
#     same weights; at 50% pruned every product stays dense;
#   - edge cases in one small model, each kernel class: an all-zero output column, a full
#     column, columns of fewer than 4 nonzeros, inputs with exact zeros and a ReLU'd input,
#     8-bit indices (the panels' K = 30), the dot kernel's row offsets in pairs over K = 300 and
#     N = 37 (a partial group of 8 columns), a fused ReLU, 20 rows (panels of 16 or 32 rows:
#     K and M not multiples of the panel), native and generic, gcc and clang; the dot
#     kernel on an all-zero row of A, a NaN and a -inf, the panels on a +inf and a NaN (NaN
#     and +-inf exactly where the dense product has them: 0 * inf is NaN;
#     tests/compare_nonfinite.py);
#   - the baked MLP's object (code + weights) is at least 3x smaller than the dense bake
#     (the issue's goal), and weights above the thresholds stay dense.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
FIX=$ROOT/tests/fixtures/mlp
MODEL=$ROOT/examples/mlp.lathe

"$LATHE" prune "$MODEL" -w "$FIX/weights.safetensors" -s 0.9 -o p90.safetensors >/dev/null
"$LATHE" prune "$MODEL" -w "$FIX/weights.safetensors" -s 0.5 -o p50.safetensors >/dev/null

kernels() { # the sparse kernel of each product in a generated C file, in order
  { grep -o "nonzeros of B; [a-z]*" "$1" || true; } | awk '{printf "%s%s", s, $NF; s = ","}'
}

check() { # check NAME MODEL WEIGHTS INPUT OUTPUT KERNELS [defines...]
  local name=$1 model=$2 weights=$3 input=$4 out=$5 want=$6
  shift 6
  "$LATHE" run "$@" "$model" --weights "$weights" --input x="$input" --out "ref-$name" \
    --backend cc >/dev/null
  for target in native generic; do
    local dir="$name-$target"
    "$LATHE" compile "$@" "$model" --weights "$weights" --bake --target "$target" -o "$dir" \
      2>/dev/null
    local c_file so
    c_file=$(ls "$dir"/*.c)
    so="$dir/$(basename "$c_file" .c).so"
    local got
    got=$(kernels "$c_file")
    [ "$got" = "$want" ] || { echo "FAIL $name-$target: sparse kernels '$got', want '$want'"; exit 1; }
    for cc in gcc clang; do
      $cc -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$c_file" -o "$so" -lm
      "$LATHE" run "$so" --input x="$input" --out "out-$name-$target" >/dev/null
      $PY "$ROOT/tests/compare_npy.py" "out-$name-$target/$out.npy" "ref-$name/$out.npy" 1e-5
    done
  done
}

$PY -c "
import numpy as np
x = np.load('$FIX/x.npy')
for n in (1, 4, 8, 20): np.save(f'x{n}.npy', x[:n])"
check mlp1 "$MODEL" p90.safetensors x1.npy probs dot,dot,unrolled -D N=1
check mlp4 "$MODEL" p90.safetensors x4.npy probs dot,dot,unrolled -D N=4
check mlp8 "$MODEL" p90.safetensors x8.npy probs panels,panels,panels -D N=8
check mlp20 "$MODEL" p90.safetensors x20.npy probs panels,panels,panels -D N=20
check mlp1_p50 "$MODEL" p50.safetensors x1.npy probs "" -D N=1
check mlp20_p50 "$MODEL" p50.safetensors x20.npy probs "" -D N=20

# no dense table of a sparse weight: only the biases' tables (one line each) remain
if grep -q "^/\* %[0-9]* = const : f32\[784, 256\] \*/" mlp1-native/mlp.c; then
  echo "FAIL: the dense table of a sparse weight is still written"; exit 1
fi

# edge cases: a small model with crafted weights, every kernel class
cat > edge.lathe <<'M'
import nn
model edge(x: f32[3, 12], y: f32[3, 300], z: f32[20, 30]) {
  output a = relu(dense(x, 16))
  output b = dense(relu(y), 40)
  output c = dense(y, 37)
  output d = relu(dense(z, 70))
}
M
$PY -c "
import sys; sys.path.insert(0, '$ROOT/tests/fixtures'); import safetensors_py as s
import numpy as np
rng = np.random.default_rng(5)
def sparse(k, n, p):
    w = np.where(rng.random((k, n)) < p, rng.standard_normal((k, n)), 0).astype(np.float32)
    w[:, 0] = 0                       # an empty column
    w[:, 1] = rng.standard_normal(k)  # a full one
    w[:, 2] = 0; w[[0, k - 1], 2] = [1.5, -0.75]  # two nonzeros, at the ends
    return w
wa = np.zeros((12, 16), np.float32); wa[:, 1] = rng.standard_normal(12); wa[3, 2] = 0.5
wa[[0, 7, 11], 3] = [1.0, -2.0, 0.25]; wa[5, 5] = -1.5
t = {'a.w': wa, 'a.b': rng.standard_normal(16).astype(np.float32),
     'b.w': sparse(300, 40, 0.08), 'b.b': rng.standard_normal(40).astype(np.float32),
     'c.w': sparse(300, 37, 0.08), 'c.b': np.zeros(37, np.float32),
     'd.w': sparse(30, 70, 0.1), 'd.b': rng.standard_normal(70).astype(np.float32)}
s.save('edge.safetensors', t)
x = rng.standard_normal((3, 12)).astype(np.float32); x[1, 3] = 0
y = rng.standard_normal((3, 300)).astype(np.float32); y[0, :50] = 0
z = rng.standard_normal((20, 30)).astype(np.float32); z[4, 2] = 0
np.save('ex.npy', x); np.save('ey.npy', y); np.save('ez.npy', z)
y2 = rng.standard_normal((3, 300)).astype(np.float32)
y2[0] = 0                        # an all-zero row of A
y2[1, 5] = np.nan                # a NaN: every output of the dense product is NaN
y2[2, 299] = -np.inf             # B[299][2] != 0: -inf there, NaN where B[299][j] == 0
np.save('ey2.npy', y2)
z2 = z.copy()
z2[3, 7] = np.inf                # the panels: +inf in one row, a NaN in another
z2[17, 0] = np.nan
np.save('ez2.npy', z2)"
edge_inputs=(--input x=ex.npy --input y=ey.npy --input z=ez.npy)
"$LATHE" run edge.lathe --weights edge.safetensors "${edge_inputs[@]}" --out ref-edge \
  --backend cc >/dev/null
"$LATHE" run edge.lathe --weights edge.safetensors --input x=ex.npy --input y=ey2.npy \
  --input z=ez2.npy --out ref-edge2 --backend cc >/dev/null
$PY -c "
import numpy as np
c = np.load('ref-edge2/c.npy')
assert np.isnan(c[1]).all() and np.isnan(c[2]).any() and np.isinf(c[2]).any(), c[1:]
assert (c[0] == 0).all(), c[0]
d = np.load('ref-edge2/d.npy')
assert (d[17] == 0).all() and not np.isfinite(d[3]).all(), d[3]  # ReLU(NaN) is 0"
for target in native generic; do
  "$LATHE" compile edge.lathe --weights edge.safetensors --bake --target "$target" \
    -o "edge-$target" 2>/dev/null
  got=$(kernels "edge-$target/edge.c")
  [ "$got" = "unrolled,dot,dot,panels" ] ||
    { echo "FAIL: edge-$target kernels '$got', want unrolled,dot,dot,panels"; exit 1; }
  grep -q "static const uint8_t edge_forward_c[0-9]*_sp_r" "edge-$target/edge.c" ||
    { echo "FAIL: no 8-bit row indices for the panels' K = 30"; exit 1; }
  grep -q "static const uint64_t edge_forward_c[0-9]*_sp_r" "edge-$target/edge.c" ||
    { echo "FAIL: no row offsets in pairs for the dot kernel"; exit 1; }
  for cc in gcc clang; do
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "edge-$target/edge.c" \
      -o edge.so -lm
    "$LATHE" run edge.so "${edge_inputs[@]}" --out out-edge >/dev/null
    for o in a b c d; do $PY "$ROOT/tests/compare_npy.py" "out-edge/$o.npy" "ref-edge/$o.npy" 1e-5; done
    # the dot kernel on an all-zero row, a NaN and an infinity, the panels on an infinity and
    # a NaN: NaN and +-inf where the dense product has them (0 * inf is NaN), the finite
    # outputs within 1e-5
    "$LATHE" run edge.so --input x=ex.npy --input y=ey2.npy --input z=ez2.npy --out out-edge2 \
      >/dev/null
    for o in b c d; do
      $PY "$ROOT/tests/compare_nonfinite.py" "out-edge2/$o.npy" "ref-edge2/$o.npy" 1e-5
    done
  done
done

# code + weight bytes: the sparse bake against the dense bake of the same weights
"$LATHE" compile "$MODEL" -D N=1 --weights "$FIX/weights.safetensors" --bake -o dense >/dev/null 2>&1
gcc -std=c99 -O2 -c dense/mlp.c -o dense.o
gcc -std=c99 -O2 -c mlp1-native/mlp.c -o sparse.o
bytes() { size -A "$1" | awk '$1 ~ /^\.(text|data|rodata)/ {s += $2} END {print s}'; }
d=$(bytes dense.o) s=$(bytes sparse.o)
echo "baked MLP, code + weights: dense $d bytes, 90% sparse $s bytes ($(($d / $s))x smaller)"
[ $((s * 3)) -le "$d" ] || { echo "FAIL: the sparse bake is not 3x smaller"; exit 1; }
echo "sparse_bake: ok"
