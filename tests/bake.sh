#!/usr/bin/env bash
# `lathe compile --weights W --bake` (driver/bake.c): the weights built into the generated C,
# the matmuls' weight operands as static tables already in the GEMM's packed layout.
#   - examples/mlp.lathe, examples/lstm.lathe (a scan) and examples/cnn.lathe, baked with their
#     fixtures' weights,
#     for the native target and --target generic: the C builds with gcc and clang
#     -std=c99 -Wall -Wextra -Wpedantic -Werror, its forward entry (loaded by `lathe run`
#     as a .so, no --weights) gives the outputs of the unbaked model run with the weights;
#   - the MLP's three dense weights are packed at compile time: no packing routine for B is
#     left in the C, and the header declares no params; the CNN's two conv weights are
#     blocked for the direct kernels at compile time;
#   - --bake without --weights, and a checkpoint missing a param, are errors.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

check_baked() { # name model weights input output [defines...]
  local name=$1 model=$2 weights=$3 input=$4 out=$5
  shift 5
  "$LATHE" run "$@" "$model" --weights "$weights" --input x="$input" --out "$TMP/ref-$name" \
    --backend cc >/dev/null
  for target in native generic; do
    local dir="$TMP/$name-$target"
    "$LATHE" compile "$@" "$model" --weights "$weights" --bake --target "$target" -o "$dir" \
      2>/dev/null
    local c_file
    c_file=$(ls "$dir"/*.c)
    local so="$dir/$(basename "$c_file" .c).so"
    for cc in gcc clang; do
      $cc -std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$c_file" -o "$so" -lm
    done
    "$LATHE" run "$so" --input x="$input" --out "$TMP/out-$name-$target" >/dev/null
    /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out-$name-$target/$out.npy" \
      "$TMP/ref-$name/$out.npy" 1e-5
  done
}

FIX=$ROOT/tests/fixtures
check_baked mlp "$ROOT/examples/mlp.lathe" "$FIX/mlp/weights.safetensors" "$FIX/mlp/x.npy" probs
check_baked lstm "$ROOT/examples/lstm.lathe" "$FIX/lstm/last_weights.safetensors" \
  "$FIX/lstm/x.npy" probs -D N=8 -D T=6 -D H=16
check_baked cnn "$ROOT/examples/cnn.lathe" "$FIX/cnn/weights.safetensors" "$FIX/cnn/x.npy" \
  probs -D N=16

C=$TMP/cnn-native/cnn.c
tables=$(grep -c "blocked at compile time" "$C")
[[ $tables -eq 2 ]] || { echo "FAIL: $tables conv weights blocked at compile time, want 2"; exit 1; }
if grep -q "^ *lathe_dconv_pack_w(" "$C"; then
  echo "FAIL: a conv weight is still blocked at run time"; exit 1
fi
echo "ok: the CNN's 2 conv weights are blocked at compile time (direct NCHWc kernels)"

C=$TMP/mlp-native/mlp.c
tables=$(grep -c "packed at compile time" "$C")
[[ $tables -eq 3 ]] || { echo "FAIL: $tables dense weights packed at compile time, want 3"; exit 1; }
if grep -q "{lathe_gemm_pack_strided,\|^ *lathe_gemm_prepack_[ab](" "$C"; then
  echo "FAIL: a weight is still packed at run time"; exit 1
fi
grep -q "the model has no parameters" "$TMP/mlp-native/mlp.h" ||
  { echo "FAIL: the baked header still declares params"; exit 1; }
echo "ok: the MLP's 3 weights are packed at compile time, nothing is packed at run time"

if "$LATHE" compile "$ROOT/examples/mlp.lathe" --bake -o "$TMP/x" 2>"$TMP/err"; then
  echo "FAIL: --bake without --weights accepted"; exit 1
fi
grep -q "needs --weights" "$TMP/err" || { cat "$TMP/err"; exit 1; }
if "$LATHE" compile "$ROOT/examples/lstm.lathe" -D N=8 -D T=6 -D H=16 --bake \
  --weights "$FIX/mlp/weights.safetensors" -o "$TMP/x" 2>"$TMP/err"; then
  echo "FAIL: a checkpoint without the model's params accepted"; exit 1
fi
grep -q "has no tensor" "$TMP/err" || { cat "$TMP/err"; exit 1; }
echo "ok: --bake errors"

# a baked entry takes no params, so the params pointer gets its (void) even when a binding of
# the model is named p and its comments say so (the use check once matched comment words)
mkdir "$TMP/named_p"
cat > "$TMP/named_p/m.lathe" <<'EOF2'
import nn
model m(x: f32[2, 3]) {
  p = relu(dense(x, 4))
  output y = dense(p, 2)
}
EOF2
/usr/bin/python3 - "$TMP/named_p/w.safetensors" <<'PY'
import json, struct, sys
import numpy as np
r = np.random.default_rng(0)
t = {"p.w": (3, 4), "p.b": (4,), "y.w": (4, 2), "y.b": (2,)}
hdr, blob = {}, b""
for k, shape in t.items():
    b = r.standard_normal(shape).astype("<f4").tobytes()
    hdr[k] = {"dtype": "F32", "shape": list(shape), "data_offsets": [len(blob), len(blob) + len(b)]}
    blob += b
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + blob)
PY
"$LATHE" compile "$TMP/named_p/m.lathe" --weights "$TMP/named_p/w.safetensors" --bake \
  -o "$TMP/named_p/c" > /dev/null
for cc in gcc clang; do
  $cc -std=c99 -Wall -Wextra -Werror -c "$TMP/named_p/c/m.c" -o "$TMP/named_p/m.o"
done
echo "ok: a baked model with a binding named p compiles warning-free"
