#!/usr/bin/env bash
# int8 (issue 19, docs/int8.md): the int8 pools and add of tests/int8/qpool.lathe equal the
# oracle (tests/int8/tflite_ref.py via tests/int8/qpool_ref.py) bit for bit: max_pool2d and
# avg_pool2d of an i8 tensor (windows that tile, overlap, reach the padding, are dilated or
# rectangular; averages ending in exact halves) and qadd (three scale ratios, one saturating,
# broadcasting, a clamp, named arguments), through the evaluator, the compiled model (cc), and
# the C of `lathe compile` for the native and generic targets built by gcc and clang (-std=c99
# -O2 -Wall -Wextra -Wpedantic -Werror); the generic C also builds for Cortex-M4
# (arm-none-eabi-gcc -Werror). A one-step mutation of the oracle's output is caught.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=tests/int8/oracle_check.bash
source "$ROOT/tests/int8/oracle_check.bash"
M=$ROOT/tests/int8/qpool.lathe
/usr/bin/python3 "$ROOT/tests/int8/qpool_ref.py" "$TMP/ref"
IN=(--input q="$TMP/ref/q.npy" --input r="$TMP/ref/r.npy" --input row="$TMP/ref/row.npy")

quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/eval" --reference
check "$TMP/eval" "the evaluator"
quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/cc" --backend cc
check "$TMP/cc" "the compiled model (cc)"
for target in native generic; do
  dir=$TMP/$target
  quiet "$LATHE" compile "$M" --target "$target" -o "$dir"
  grep -q "lathe_qadd(" "$dir/qpool.c" || { echo "FAIL: no lathe_qadd call in the C"; exit 1; }
  for cc in gcc clang; do
    mkdir -p "$dir/$cc"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$dir/qpool.c" \
      -o "$dir/$cc/qpool.so" -lm
    quiet "$LATHE" run "$dir/$cc/qpool.so" "${IN[@]}" --out "$TMP/out-$target-$cc"
    check "$TMP/out-$target-$cc" "C, $target, $cc"
  done
done
command -v arm-none-eabi-gcc >/dev/null ||
  { echo "FAIL: arm-none-eabi-gcc missing (scripts/install-deps.sh)"; exit 1; }
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -O2 -Wall -Wextra -Werror \
  -c "$TMP/generic/qpool.c" -o "$TMP/qpool-m4.o"
echo "ok: the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror)"

# the comparison itself can fail: one byte of one output moved by one step
cp -r "$TMP/ref/expected" "$TMP/mutant"
/usr/bin/python3 -c "
import numpy as np, sys
y = np.load(sys.argv[1]); y.flat[3] = y.flat[3] + (1 if y.flat[3] < 127 else -1)
np.save(sys.argv[1], y)" "$TMP/mutant/app.npy"
if check "$TMP/cc" "mutant" "$TMP/mutant" 2>/dev/null; then
  echo "FAIL: a one-step difference went unnoticed"; exit 1
fi
echo "ok: a one-step difference in one byte is caught"
