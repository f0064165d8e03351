#!/usr/bin/env bash
# The int8 oracle (tests/int8/tflite_ref.py, issue #19, docs/int8.md) checked against exact
# rational arithmetic: requantization, rounding, multipliers, dense, conv, add. The generated
# integer C is compared against this oracle, so the oracle itself is tested first.
set -euo pipefail
ROOT=$2
/usr/bin/python3 -c 'import numpy' || { echo "int8_oracle: python3-numpy is missing" >&2; exit 1; }
/usr/bin/python3 "$ROOT/tests/int8/tflite_ref.py" --self-test
