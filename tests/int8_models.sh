#!/usr/bin/env bash
# int8 (issue 19, docs/int8.md): whole int8 models give the NumPy oracle's bytes
# (tests/int8/tflite_ref.py, via each model's tests/int8/<model>_ref.py, run here):
#   - qmlp.lathe: two qdense layers (a fused ReLU clamp, a channel requantized by 1.2, i.e. a
#     left shift), against the oracle's fully_connected;
#   - qcnn.lathe: two qconv2d layers (stride 2 and padding 1 with a ReLU clamp; dilation 2 and
#     padding 2), against the oracle's conv2d;
#   - qgroup.lathe: grouped and depthwise qconv2d (2 groups with a ReLU clamp; depthwise with 2
#     outputs per channel, stride 2; depthwise, dilation 2), against the oracle's conv2d per
#     group (its baked weights stay in the portable loops: the packed GEMM takes one group);
# each through the evaluator (lathe run --reference), the compiled model (lathe run, cc) and
# the C of `lathe compile --weights W --bake`, native and --target generic, built with gcc and
# clang -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror and run through lathe run; the generic
# C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -mcpu=cortex-m4 -Wall -Wextra -Werror
# -c, Debian gcc-arm-none-eabi); a mutated oracle output (one byte off) is caught.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }
same() { # got.npy want.npy what
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
import numpy as np
got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
    bad = np.argwhere(got != want) if got.shape == want.shape else "shape"
    sys.exit(f"FAIL {sys.argv[3]}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}, "
             f"differs at {bad[:5] if not isinstance(bad, str) else bad}")
print(f"ok: {sys.argv[3]} equals the oracle bit for bit ({got.size} int8 values)")
PY
}

check_model() { # name
  local name=$1 M=$ROOT/tests/int8/$1.lathe
  local R=$TMP/$name W=$TMP/$name/weights.safetensors
  /usr/bin/python3 "$ROOT/tests/int8/${name}_ref.py" "$R"
  quiet "$LATHE" run "$M" --weights "$W" --input x="$R/x.npy" --out "$R/eval" --reference
  same "$R/eval/y.npy" "$R/y.npy" "$name: the evaluator"
  quiet "$LATHE" run "$M" --weights "$W" --input x="$R/x.npy" --out "$R/cc" --backend cc
  same "$R/cc/y.npy" "$R/y.npy" "$name: the compiled model (cc)"

  for target in native generic; do
    local dir=$R/$target
    quiet "$LATHE" compile "$M" --weights "$W" --bake --target "$target" -o "$dir"
    grep -q "lathe_requant(" "$dir/$name.c" || { echo "FAIL: no requantize call in the C"; exit 1; }
    for cc in gcc clang; do
      mkdir -p "$dir/$cc"
      $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$dir/$name.c" \
        -o "$dir/$cc/$name.so" -lm
      quiet "$LATHE" run "$dir/$cc/$name.so" --input x="$R/x.npy" --out "$R/out-$target-$cc"
      same "$R/out-$target-$cc/y.npy" "$R/y.npy" "$name: baked C, $target, $cc"
    done
  done

  if ! command -v arm-none-eabi-gcc >/dev/null; then
    echo "FAIL: arm-none-eabi-gcc missing (Debian gcc-arm-none-eabi, scripts/install-deps.sh)"
    exit 1
  fi
  arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -O2 -Wall -Wextra -Werror \
    -c "$R/generic/$name.c" -o "$R/$name-m4.o"
  echo "ok: $name: the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror)"
}

check_model qmlp
check_model qcnn
check_model qgroup

# the comparison itself can fail: one output byte moved by one step
/usr/bin/python3 -c "
import numpy as np, sys
y = np.load(sys.argv[1]); y.flat[7] = y.flat[7] + (1 if y.flat[7] < 127 else -1)
np.save(sys.argv[2], y)" "$TMP/qmlp/y.npy" "$TMP/mutated.npy"
if same "$TMP/qmlp/cc/y.npy" "$TMP/mutated.npy" "mutant" 2>/dev/null; then
  echo "FAIL: a one-step difference went unnoticed"; exit 1
fi
echo "ok: a one-step difference in one byte is caught"
