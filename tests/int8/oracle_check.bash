# tests/int8/oracle_check.bash — sourced by the int8 script tests that compare a model's
# outputs with the oracle's byte for byte (int8_ops.sh, int8_pool_add.sh,
# int8_softmax_concat.sh); needs TMP, LATHE and (for check_everywhere) IN set.
#   quiet CMD...            runs CMD, showing its output only when it fails
#   check DIR WHAT [WANT]   every WANT/NAME.npy (default $TMP/ref/expected) equals DIR/NAME.npy:
#                           dtype, shape and bytes
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }

check() {
  /usr/bin/python3 - "$1" "${3:-$TMP/ref/expected}" "$2" <<'PY'
import os, sys
import numpy as np
got_dir, want_dir, what = sys.argv[1:]
bad = []
for name in sorted(os.listdir(want_dir)):
    want, got = np.load(os.path.join(want_dir, name)), np.load(os.path.join(got_dir, name))
    if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
        bad.append(f"{name}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}, "
                   f"{np.sum(got != want) if got.shape == want.shape else '?'} differ")
if bad:
    sys.exit(f"FAIL {what}: " + "; ".join(bad))
print(f"ok: {what}: {len(os.listdir(want_dir))} outputs equal the oracle byte for byte")
PY
}

# check_everywhere MODEL NAME [KERNEL ...]: MODEL's outputs on the inputs "${IN[@]}" equal the
# oracle's through the evaluator, cc, and the C of `lathe compile` for the native and generic
# targets built by gcc and clang (-std=c99 -O2 -Wall -Wextra -Wpedantic -Werror); the C calls
# each KERNEL; the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror).
# NAME is the model's name (its C file NAME.c); the outputs stay in $TMP/cc for a mutant check.
check_everywhere() {
  local m=$1 name=$2 target cc dir fn
  shift 2
  quiet "$LATHE" run "$m" "${IN[@]}" --out "$TMP/eval" --reference
  check "$TMP/eval" "the evaluator"
  quiet "$LATHE" run "$m" "${IN[@]}" --out "$TMP/cc" --backend cc
  check "$TMP/cc" "the compiled model (cc)"
  for target in native generic; do
    dir=$TMP/$target
    quiet "$LATHE" compile "$m" --target "$target" -o "$dir"
    for fn in "$@"; do
      grep -q "$fn(" "$dir/$name.c" || { echo "FAIL: no $fn call in the C"; exit 1; }
    done
    for cc in gcc clang; do
      mkdir -p "$dir/$cc"
      $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -shared -fPIC "$dir/$name.c" \
        -o "$dir/$cc/$name.so" -lm
      quiet "$LATHE" run "$dir/$cc/$name.so" "${IN[@]}" --out "$TMP/out-$target-$cc"
      check "$TMP/out-$target-$cc" "C, $target, $cc"
    done
  done
  command -v arm-none-eabi-gcc >/dev/null ||
    { echo "FAIL: arm-none-eabi-gcc missing (scripts/install-deps.sh)"; exit 1; }
  arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -std=c99 -O2 -Wall -Wextra -Werror \
    -c "$TMP/generic/$name.c" -o "$TMP/$name-m4.o"
  echo "ok: the generic C builds warning-free for Cortex-M4 (arm-none-eabi-gcc -Werror)"
}

# check_mutant NAME: the comparison itself can fail — NAME.npy of the expected outputs with one
# byte moved by one step must not equal $TMP/cc (check_everywhere's cc outputs)
check_mutant() {
  cp -r "$TMP/ref/expected" "$TMP/mutant"
  /usr/bin/python3 -c "
import numpy as np, sys
y = np.load(sys.argv[1]); y.flat[3] = y.flat[3] + (1 if y.flat[3] < 127 else -1)
np.save(sys.argv[1], y)" "$TMP/mutant/$1.npy"
  if check "$TMP/cc" "mutant" "$TMP/mutant" 2>/dev/null; then
    echo "FAIL: a one-step difference went unnoticed"; exit 1
  fi
  echo "ok: a one-step difference in one byte is caught"
}
