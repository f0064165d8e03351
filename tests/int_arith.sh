#!/usr/bin/env bash
# Integer arithmetic (docs/language.md, "Integer arithmetic"): i8, u8, i32 and i64 + - * /,
# unary - and abs on edge values (MIN, MAX, -1, 0, MIN / -1, x / 0, a fused chain that wraps
# at every node) equal NumPy's two's complement (tests/int_arith/ref.py) through the
# evaluator, the JIT, cc, and the C of `lathe compile` for the native and generic targets
# built by gcc and clang with -Wall -Wextra -Wpedantic -Werror and -fsanitize=undefined (no
# signed overflow, no division by zero in the generated C). A wrong expected value is caught.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
M=$ROOT/tests/int_arith/arith.lathe
/usr/bin/python3 "$ROOT/tests/int_arith/ref.py" "$TMP/ref"
IN=()
for f in "$TMP"/ref/in/*.npy; do IN+=(--input "$(basename "$f" .npy)=$f"); done

# check DIR WHAT: every expected output equals DIR's, dtype and bytes
check() {
  /usr/bin/python3 - "$TMP/ref/want" "$1" "$2" <<'PY'
import glob, os, sys
import numpy as np
want_dir, got_dir, what = sys.argv[1:]
bad = []
for w in sorted(glob.glob(want_dir + "/*.npy")):
    name = os.path.basename(w)
    want, got = np.load(w), np.load(os.path.join(got_dir, name))
    if want.dtype != got.dtype or not np.array_equal(want, got):
        bad.append(f"{name}: got {got.tolist()} ({got.dtype}), want {want.tolist()} ({want.dtype})")
if bad:
    print(f"FAIL: {what}:\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"ok: {what}")
PY
}
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log"; exit 1; }; }

quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/eval" --reference
check "$TMP/eval" "the evaluator"
quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/cc" --backend cc
check "$TMP/cc" "the compiled model (cc)"
if "$LATHE" run --help | grep -q "jit|cc"; then
  quiet "$LATHE" run "$M" "${IN[@]}" --out "$TMP/jit"
  check "$TMP/jit" "the default backend (JIT when built with LLVM)"
fi
for target in native generic; do
  dir=$TMP/$target
  quiet "$LATHE" compile "$M" --target "$target" -o "$dir"
  for cc in gcc clang; do
    mkdir -p "$dir/$cc"
    $cc -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -fsanitize=undefined \
      -fno-sanitize-recover=undefined -shared -fPIC "$dir/arith.c" -o "$dir/$cc/arith.so" -lm
    # the UBSan runtime: lathe's own when it is built with the sanitizers (make test), else
    # preloaded (an ASan lathe refuses a preload that comes before its runtime)
    rt=
    if [[ $(ldd "$LATHE") != *libubsan* ]]; then
      rt=$($cc -print-file-name="libubsan.so")
      [[ $cc == clang ]] && rt=$(clang -print-file-name="libclang_rt.ubsan_standalone-x86_64.so")
      [[ -f $rt ]] || { echo "FAIL: no UBSan runtime for $cc ($rt)"; exit 1; }
    fi
    LD_PRELOAD=$rt quiet "$LATHE" run "$dir/$cc/arith.so" "${IN[@]}" --out "$TMP/out-$target-$cc"
    check "$TMP/out-$target-$cc" "C, $target, $cc, UBSan"
  done
done

# the check can fail: a wrong expected value is reported
/usr/bin/python3 -c "
import numpy as np, sys
p = sys.argv[1]; w = np.load(p); w[0] += 1; np.save(p, w)" "$TMP/ref/want/div_i32.npy"
if check "$TMP/eval" "mutated oracle" >/dev/null; then
  echo "FAIL: a wrong expected div_i32 was not caught"
  exit 1
fi
echo "PASS"
