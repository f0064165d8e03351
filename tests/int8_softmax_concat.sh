#!/usr/bin/env bash
# int8 (issue 19, docs/int8.md): qsoftmax (TFLite's int8 softmax) and requantize / concat of
# int8 tensors with different parameters, tests/int8/qsoftmax.lathe, equal the oracle
# (tests/int8/tflite_softmax.py via tests/int8/qsoftmax_ref.py) bit for bit: softmax at five
# input scales (one-hot rows, ties, equal rows, differences below diff_min, 300 and 700
# elements per row, a 3-D tensor), requantize to other and to equal parameters, concats along
# axes 1 and 2 whose inputs are copied or requantized (clamping at both ends), and a softmax
# of a concat; through the evaluator, the compiled model (cc), and the C of `lathe compile` for
# the native and generic targets built by gcc and clang (-std=c99 -O2 -Wall -Wextra -Wpedantic
# -Werror); the generic C also builds for Cortex-M4 (arm-none-eabi-gcc -Werror). The oracle's
# self-test (against float softmax, exp and 1/(1+x)) runs first; a one-step mutation of the
# oracle's output is caught.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=tests/int8/oracle_check.bash
source "$ROOT/tests/int8/oracle_check.bash"
M=$ROOT/tests/int8/qsoftmax.lathe
/usr/bin/python3 "$ROOT/tests/int8/tflite_softmax.py" --self-test
/usr/bin/python3 "$ROOT/tests/int8/qsoftmax_ref.py" "$TMP/ref"
IN=()
for x in q wide big a b c; do IN+=(--input "$x=$TMP/ref/$x.npy"); done

check_everywhere "$M" qsm lathe_qsoftmax lathe_requant

check_mutant s1
