#!/usr/bin/env bash
# int8 (issue 19, docs/int8.md): quantize, dequantize and fake_quant of tests/int8/qops.lathe,
# per tensor (constant scale and zero point) and per channel (scale/zp inputs [1, C, 1, 1]),
# narrow range and a 4-bit fake_quant, equal the oracle (tests/int8/tflite_ref.py via
# tests/int8/qops_ref.py: exact halves, values just below a half, NaN, infinities, clamps)
# bit for bit: the evaluator, the compiled model (cc), and the C of `lathe compile` for the
# native and generic targets built by gcc and clang (-std=c99 -O2 -Wall -Wextra -Wpedantic
# -Werror); qdense's requantization over 4096 channels of random multipliers, every shift in
# [-31, 30] and int32-extreme biases likewise, and int8 through reshape, transpose and concat;
# the generic C also builds for Cortex-M4 (arm-none-eabi-gcc -Werror). A
# half-to-even rounding, which numpy's np.round does, is shown to differ on these inputs.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=tests/int8/oracle_check.bash
source "$ROOT/tests/int8/oracle_check.bash"
M=$ROOT/tests/int8/qops.lathe
/usr/bin/python3 "$ROOT/tests/int8/qops_ref.py" "$TMP/ref"
IN=(--input x="$TMP/ref/x.npy" --input q="$TMP/ref/q.npy" --input s="$TMP/ref/s.npy"
  --input zp="$TMP/ref/zp.npy" --input one="$TMP/ref/one.npy" --input w="$TMP/ref/w.npy"
  --input b="$TMP/ref/b.npy" --input m="$TMP/ref/m.npy" --input sh="$TMP/ref/sh.npy")

quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/eval" --reference
check "$TMP/eval" "the evaluator"
quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/cc" --backend cc
check "$TMP/cc" "the compiled model (cc)"
for target in native generic; do
  dir=$TMP/$target
  quiet "$LATHE" compile "$M" --target "$target" -o "$dir"
  for cc in gcc clang; do
    mkdir -p "$dir/$cc"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$dir/qops.c" \
      -o "$dir/$cc/qops.so" -lm
    quiet "$LATHE" run "$dir/$cc/qops.so" "${IN[@]}" --out "$TMP/out-$target-$cc"
    check "$TMP/out-$target-$cc" "C, $target, $cc"
  done
done
command -v arm-none-eabi-gcc >/dev/null ||
  { echo "FAIL: arm-none-eabi-gcc missing (scripts/install-deps.sh)"; exit 1; }
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -O2 -Wall -Wextra -Werror \
  -c "$TMP/generic/qops.c" -o "$TMP/qops-m4.o"
echo "ok: the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror)"
