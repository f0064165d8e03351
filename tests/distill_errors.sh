#!/usr/bin/env bash
# tests/distill_errors.sh — every bad `distill` statement in tests/distill/errors/ is rejected
# by `lathe check` with exit status 1 and each diagnostic its file expects (the format of
# tests/diagnostics.sh: `# EXPECT: LINE:COL: error: ...` lines, substrings of the output).
# The files are checked from their directory, so the teacher paths in the messages are the
# relative ones written in the statements. No sanitizer report may appear.
#
# Usage: bash tests/distill_errors.sh <path-to-lathe-binary> <repo-root>
set -uo pipefail
LATHE=${1:?usage: distill_errors.sh LATHE ROOT}
ROOT=${2:?usage: distill_errors.sh LATHE ROOT}
DIR=$ROOT/tests/distill/errors
pass=0
fail=0
for file in "$DIR"/*.lathe; do
  name=$(basename "$file")
  mapfile -t expects < <(sed -n 's/^# EXPECT: //p' "$file")
  out=$(cd "$DIR" && "$LATHE" check --lib "$ROOT/lib" "$name" 2>&1)
  status=$?
  ok=1
  [ ${#expects[@]} -gt 0 ] || { echo "FAIL $name: no '# EXPECT:' line"; ok=0; }
  [ $status -eq 1 ] || { echo "FAIL $name: exit status $status, expected 1"; ok=0; }
  for e in "${expects[@]}"; do
    grep -qF -- "$e" <<<"$out" || { echo "FAIL $name: missing diagnostic: $e"; ok=0; }
  done
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' <<<"$out"; then
    echo "FAIL $name: sanitizer report"
    ok=0
  fi
  if [ $ok -eq 1 ]; then
    pass=$((pass + 1))
  else
    printf -- '---- output of lathe check %s:\n%s\n' "$name" "$out"
    fail=$((fail + 1))
  fi
done
echo "distill errors: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -ge 16 ]
