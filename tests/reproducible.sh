#!/usr/bin/env bash
# The generated C names no directory of the compiling machine: source paths are relative to
# the model file (kernel comments, #line directives, the banner, the descriptor), so the
# same model compiled in two different checkouts — one from its root with relative paths,
# one by absolute paths from another directory — gives byte-identical files. Every example,
# with --line-directives, for the generic and the x86-64-v3 target.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
TMP=$(mktemp -d)
trap 'status=$?; [ $status = 0 ] || cat "$TMP/log" 2>/dev/null; rm -rf "$TMP"' EXIT
for tree in a b/deeper/checkout; do
  mkdir -p "$TMP/$tree"
  cp -r "$ROOT/examples" "$ROOT/lib" "$TMP/$tree/"
done
B=$TMP/b/deeper/checkout
mkdir -p "$TMP/out-a" "$TMP/out-b"
for model in "$ROOT"/examples/*.lathe; do
  name=$(basename "$model" .lathe)
  for target in generic x86-64-v3; do
    (cd "$TMP/a" && "$LATHE" compile "examples/$name.lathe" --lib lib --line-directives \
      --target "$target" -o "$TMP/out-a/$name-$target" >/dev/null 2>>"$TMP/log")
    (cd / && "$LATHE" compile "$B/examples/$name.lathe" --lib "$B/lib" --line-directives \
      --target "$target" -o "$TMP/out-b/$name-$target" >/dev/null 2>>"$TMP/log")
  done
done
if ! diff -r "$TMP/out-a" "$TMP/out-b" >"$TMP/diff"; then
  echo "FAIL: the two checkouts give different C:"
  head -40 "$TMP/diff"
  exit 1
fi
# the library built into lathe (no --lib, no LATHE_LIB) is named "lib/nn.lathe" whatever the
# working directory, never as a path from it
(cd "$TMP/a" && env -u LATHE_LIB "$LATHE" compile "$B/examples/cnn.lathe" -o "$TMP/builtin-a" \
  >/dev/null 2>>"$TMP/log")
(cd / && env -u LATHE_LIB "$LATHE" compile "$B/examples/cnn.lathe" -o "$TMP/builtin-root" \
  >/dev/null 2>>"$TMP/log")
if ! diff -r "$TMP/builtin-a" "$TMP/builtin-root" >"$TMP/diff"; then
  echo "FAIL: the built-in library's name depends on the working directory"
  head "$TMP/diff"
  exit 1
fi
grep -q '(lib/nn.lathe:' "$TMP/builtin-a/cnn.c" ||
  { echo "FAIL: the built-in library is not named lib/nn.lathe"; exit 1; }
for dir in "$TMP" "$ROOT" "${HOME:-/root}"; do
  if grep -rlF -- "$dir/" "$TMP/out-a" "$TMP/out-b" "$TMP"/builtin-*; then
    echo "FAIL: the generated files above name the machine's directory $dir"
    exit 1
  fi
done
grep -q '(../lib/nn.lathe:' "$TMP/out-a/cnn-generic/cnn.c"
grep -q '^#line [0-9]* "mlp.lathe"' "$TMP/out-a/mlp-generic/mlp.c"
echo "ok: $(ls "$TMP/out-a" | wc -l) compiles byte-identical across checkouts, no machine path"
