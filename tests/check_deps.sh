#!/usr/bin/env bash
# scripts/check-deps.py on the source tree: no include cycle between the modules of ir/,
# passes/, codegen/ and runtime/ and no layer violation (see the script's head comment). Then
# the check itself, on a copy of the tree with one violation injected at a time: a runtime/
# file including codegen/, and codegen/gemm.c including the op table (lower.h) that includes
# gemm.h, and a lowering including the op table that calls it through the generated hook
# header — each must fail with its message.
set -euo pipefail
ROOT=$2
CHECK="/usr/bin/python3 $ROOT/scripts/check-deps.py"
$CHECK "$ROOT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# expect_fail DESCRIPTION FILE LINE MESSAGE: FILE (of the copy) gets LINE prepended
expect_fail() {
  rm -rf "$TMP/tree"
  mkdir -p "$TMP/tree"
  for d in ir frontend passes codegen runtime cli import; do cp -r "$ROOT/$d" "$TMP/tree/"; done
  { echo "$3"; cat "$TMP/tree/$2"; } >"$TMP/x" && mv "$TMP/x" "$TMP/tree/$2"
  if $CHECK "$TMP/tree" >"$TMP/out" 2>&1; then
    echo "FAIL: check-deps accepted $1"
    exit 1
  fi
  grep -qE -- "$4" "$TMP/out" || { echo "FAIL: $1: want '$4' in:"; cat "$TMP/out"; exit 1; }
  echo "ok: $1 rejected"
}
expect_fail "runtime including codegen" runtime/npy.c '#include "codegen/codegen.h"' \
  "runtime/npy.c: includes codegen/codegen.h: runtime/ may include only ir"
expect_fail "a cycle gemm <-> lower" codegen/gemm.c '#include "lower.h"' \
  "include cycle between modules: .*codegen/gemm -> codegen/lower"
# the op table depends on every file defining a hook of the generated codegen/lower_hooks.h:
# a lowering that calls back into the table is a cycle
expect_fail "a cycle lower_struct <-> lower through the hook header" codegen/lower_struct.c \
  '#include "lower.h"' "include cycle between modules: codegen/lower -> "
