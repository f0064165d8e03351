#!/usr/bin/env bash
# tests/diagnostics.sh — every malformed model in tests/diagnostics/ must be rejected by
# `lathe check` with exit status 1 and with each diagnostic its file expects.
#
# Usage: bash tests/diagnostics.sh <path-to-lathe-binary> <repo-root>
#
# A test file starts with comment lines (any order):
#   # EXPECT: 3:12: error: expected ')' to close '(' at 3:7
#   # ARGS: -D N=0            (optional extra arguments for `lathe check`)
#   # ERRORS: 2               (optional: exactly this many error lines, so none is repeated)
# Every EXPECT text must appear in the output (stderr) as a substring of one line; line:col
# refer to the file itself. The output must not contain sanitizer reports.
set -uo pipefail
LATHE=${1:?usage: diagnostics.sh LATHE ROOT}
ROOT=${2:?usage: diagnostics.sh LATHE ROOT}
DIR=$ROOT/tests/diagnostics
pass=0
fail=0
for file in "$DIR"/*.lathe; do
  name=$(basename "$file")
  mapfile -t expects < <(sed -n 's/^# EXPECT: //p' "$file")
  args=$(sed -n 's/^# ARGS: //p' "$file" | head -n 1)
  errors=$(sed -n 's/^# ERRORS: //p' "$file" | head -n 1)
  if [ ${#expects[@]} -eq 0 ]; then
    echo "FAIL $name: no '# EXPECT:' line"
    fail=$((fail + 1))
    continue
  fi
  # shellcheck disable=SC2086
  out=$("$LATHE" check $args --lib "$ROOT/lib" "$file" 2>&1)
  status=$?
  ok=1
  if [ $status -ne 1 ]; then
    echo "FAIL $name: exit status $status, expected 1"
    ok=0
  fi
  for e in "${expects[@]}"; do
    if ! grep -qF -- "$e" <<<"$out"; then
      echo "FAIL $name: missing diagnostic: $e"
      ok=0
    fi
  done
  if [ -n "$errors" ] && [ "$(grep -c ': error: ' <<<"$out")" -ne "$errors" ]; then
    echo "FAIL $name: expected exactly $errors error lines"
    ok=0
  fi
  if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' <<<"$out"; then
    echo "FAIL $name: sanitizer report"
    ok=0
  fi
  if [ $ok -eq 1 ]; then
    pass=$((pass + 1))
  else
    echo "---- output of lathe check $args $name:"
    echo "$out"
    fail=$((fail + 1))
  fi
done
echo "diagnostics: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -ge 1 ]
