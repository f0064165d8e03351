#!/usr/bin/env bash
# The malformed-model corpus (tests/malformed/make_corpus.py: >= 100 models of parse errors,
# unterminated constructs, type and shape errors, huge/negative/zero dims, deep nesting,
# binary garbage): `lathe check` must reject each with exit status 1 or 2, its first error
# located (FILE:LINE:COL: error:), and no crash or sanitizer report (`make test` runs it
# under ASan + UBSan).
set -uo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
n=$(/usr/bin/python3 "$ROOT/tests/malformed/make_corpus.py" corpus "$ROOT") || exit 1
[ "$n" -ge 100 ] || { echo "FAIL: only $n models in the corpus"; exit 1; }
fail=0
for f in corpus/*.lathe; do
  timeout 120 "$LATHE" check "$f" > out.txt 2>&1
  status=$?
  first=$(grep -m1 "error:" out.txt)
  if [ $status -ne 1 ] && [ $status -ne 2 ]; then
    echo "FAIL $f: exit status $status"; head -c 600 out.txt; fail=$((fail + 1))
  elif ! grep -qE "^$f:[0-9]+:[0-9]+: error: " <<< "$first"; then
    echo "FAIL $f: first error not located: $first" | head -c 400; echo; fail=$((fail + 1))
  elif grep -q -e "Sanitizer" -e "runtime error:" out.txt; then
    echo "FAIL $f: sanitizer report"; head -c 2000 out.txt; fail=$((fail + 1))
  fi
done
[ $fail -eq 0 ] || { echo "$fail of $n malformed models failed"; exit 1; }
echo "ok: all $n malformed models rejected with a located error, exit 1 or 2, no crash"
