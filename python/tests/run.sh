#!/usr/bin/env bash
# python/tests/run.sh LIBLATHE.so LATHE ROOT — ctest's `python` test: pytest over python/tests
# with the build's liblathe.so and CLI. Missing numpy or pytest is a failure (not a skip), and
# so is pytest's exit status 5 (no tests collected). In a sanitizer build the sanitizer
# runtimes are preloaded into python (leak checking off: the interpreter keeps its memory; no
# quarantine of freed blocks, so test_leak's RSS bound measures leaks, not ASan's holding).
set -euo pipefail
LIB=$(realpath "$1")
LATHE=$(realpath "$2")
ROOT=$(realpath "$3")
PY=/usr/bin/python3
if ! "$PY" -c "import numpy, pytest" 2>/dev/null; then
  echo "FAIL: $PY needs python3-numpy and python3-pytest (scripts/install-deps.sh)" >&2
  exit 1
fi
export LATHE_LIBRARY=$LIB LATHE_BIN=$LATHE LATHE_SOURCE_DIR=$ROOT PYTHONPATH=$ROOT/python
preload=()
# ldd's output first, then grep: `ldd | grep -q` under pipefail fails at random when grep
# exits before ldd has written everything (SIGPIPE), and the runtimes were then not preloaded
deps=$(ldd "$LIB")
for rt in asan ubsan; do
  if grep -q "lib$rt" <<<"$deps"; then preload+=("$(gcc -print-file-name=lib$rt.so)"); fi
done
if [[ ${#preload[@]} -gt 0 ]]; then
  export LD_PRELOAD="${preload[*]}" ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0:quarantine_size_mb=0
fi
set +e
"$PY" -m pytest -q -p no:cacheprovider "$ROOT/python/tests"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
  echo "FAIL: pytest collected no tests in $ROOT/python/tests" >&2
  exit 1
fi
exit $rc
