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

check_everywhere "$M" qops
