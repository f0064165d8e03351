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

check_everywhere "$M" qpool lathe_qadd

check_mutant app
