#!/usr/bin/env bash
# Inputs that shape recursion, at every stage: 10^6-term operator chains and 10^4-deep
# nesting (parentheses, calls, unary minus, index chains, type dims, scans) get a located
# "nested too deeply (limit N)" error and exit 1, never a crash; fns that nest or multiply
# their calls are bounded in elaboration; a wide statement (2000 sub-expressions) is not deep;
# a 10^4-long dependency chain of bindings goes through the passes, the IR printer, codegen,
# the compiled code and the reference evaluator with the right value. Run under ASan/UBSan by
# `make test`; the output must hold no sanitizer report.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
PY=/usr/bin/python3

# expect_error FILE STATUS PATTERN: `lathe check FILE` exits STATUS with PATTERN in a line
# that starts with FILE:LINE:COL, and no sanitizer report
expect_error() {
  local status=0
  timeout 300 "$LATHE" check --lib "$ROOT/lib" "$1" > out.txt 2>&1 || status=$?
  if [ "$status" -ne "$2" ]; then
    echo "FAIL $1: exit $status, expected $2"; head -c 2000 out.txt; exit 1
  fi
  if ! grep -E "^$1:[0-9]+:[0-9]+: error: .*$3" out.txt > /dev/null; then
    echo "FAIL $1: no located '$3' in:"; head -c 2000 out.txt; exit 1
  fi
  if grep -q -e "Sanitizer" -e "runtime error" out.txt; then
    echo "FAIL $1: sanitizer report"; head -c 4000 out.txt; exit 1
  fi
  echo "ok: $1: $(grep -m1 -o "error: .*" out.txt | cut -c1-110)"
}

$PY - <<'EOF'
def model(expr, pre=''):
    return pre + 'model m(a: f32[2]) {\n  output y = ' + expr + '\n}\n'
N, D = 10**6, 10**4
open('chain.lathe', 'w').write(model(' + '.join(['a'] * N)))
open('chain_undefined.lathe', 'w').write(model(' + '.join(['a'] * N) + ' + undefined'))
open('chain_mul.lathe', 'w').write(model(' * '.join(['a'] * N)))
open('parens.lathe', 'w').write(model('(' * D + 'a' + ')' * D))
open('calls.lathe', 'w').write(model('relu(' * D + 'a' + ')' * D))
open('minus.lathe', 'w').write(model('-' * D + 'a'))
open('index.lathe', 'w').write(model('a' + '[0:2]' * D))
open('dims.lathe', 'w').write('model m(a: f32[' + '(' * D + '2' + ')' * D + ']) {\n'
                              '  output y = a\n}\n')
scan = 'scan t in 0..2 with (h = a) {\n yield '
open('scans.lathe', 'w').write(model(scan * D + 'h' + '\n}' * D))
# wide, not deep: one statement of 2000 sub-expressions (a scan body of 1000 statements)
open('wide.lathe', 'w').write(model('scan t in 0..2 with (h = a) {\n' +
                                    '    h = h * 0.5 + a\n' * 1000 + '    yield h\n  }'))
# 60 fns, each a 990-term chain whose first term calls the next fn: each tree is within the
# parser's limit, their sum along the calls is not
fns = ['fn g0(x: f32[2]) -> f32[2] {\n  return x * 2\n}']
for i in range(1, 60):
    fns.append('fn g%d(x: f32[2]) -> f32[2] {\n  return g%d(x) + %s\n}'
               % (i, i - 1, ' + '.join(['x'] * 990)))
open('fns_deep.lathe', 'w').write('\n'.join(fns) + '\n' + model('g59(a)'))
# fns calling the previous one twice: 2^40 inlined calls
fns = ['fn f0(x: f32[2]) -> f32[2] {\n  return x * 2\n}']
for i in range(1, 41):
    fns.append('fn f%d(x: f32[2]) -> f32[2] {\n  return f%d(x) + f%d(x)\n}' % (i, i - 1, i - 1))
open('fns_doubling.lathe', 'w').write('\n'.join(fns) + '\n' + model('f40(a)'))
# a params glob that backtracking would take exponential time on (40 stars, a 40-letter name)
open('glob.lathe', 'w').write(
    'fn lin(x: f32[2]) -> f32[2] {\n  param w: f32[2] = zeros\n  return x * w\n}\n'
    'model m(a: f32[2]) {\n  ' + 'h' * 40 + ' = lin(a)\n  loss = sum(' + 'h' * 40 + ')\n}\n'
    'train m {\n  minimize loss\n  params ' + '*.' * 40 + 'b\n  optimizer sgd(lr = 0.1)\n}\n')
# a 10^4-long chain of bindings: b_i = b_{i-1} + a, y = 10^4 * a
lines = ['model m(a: f32[2]) {', '  b0 = a']
lines += ['  b%d = b%d + a' % (i, i - 1) for i in range(1, D)]
lines += ['  output y = b%d' % (D - 1), '}']
open('bindings.lathe', 'w').write('\n'.join(lines) + '\n')
import numpy as np
np.save('a.npy', np.array([1.0, -0.5], dtype=np.float32))
EOF

LIMIT="nested too deeply \\(limit [0-9]+ levels"
expect_error chain.lathe 1 "$LIMIT, where each operator of a chain is one level"
expect_error chain_undefined.lathe 1 "$LIMIT, where each operator of a chain is one level"
expect_error chain_mul.lathe 1 "$LIMIT, where each operator of a chain is one level"
expect_error parens.lathe 1 "$LIMIT\\)"
expect_error calls.lathe 1 "$LIMIT\\)"
expect_error minus.lathe 1 "$LIMIT\\)"
expect_error index.lathe 1 "$LIMIT, where each operator of a chain is one level"
expect_error dims.lathe 1 "$LIMIT\\)"
expect_error scans.lathe 1 "$LIMIT\\)"
expect_error fns_deep.lathe 1 "$LIMIT, counting those of the fns it calls\\)"
expect_error fns_doubling.lathe 1 "too many fn calls to inline \\(limit [0-9]+\\)"
expect_error glob.lathe 1 "matches no parameter of the model"

timeout 300 "$LATHE" check --lib "$ROOT/lib" wide.lathe
echo "ok: a statement of 2000 sub-expressions is wide, not deep"

# the passes (and the IR printer after one), codegen, the compiled code, the evaluator
timeout 600 "$LATHE" dump --after fuse bindings.lathe > dump.txt
[ "$(grep -c ' add ' dump.txt)" -ge 1 ] || { echo "FAIL: no add in the dump"; exit 1; }
echo "ok: bindings.lathe through the passes and the IR printer"
timeout 600 "$LATHE" run bindings.lathe -i a=a.npy -o run > /dev/null
timeout 600 "$LATHE" run --reference bindings.lathe -i a=a.npy -o ref > /dev/null
$PY - <<'EOF'
import numpy as np
want = 10**4 * np.array([1.0, -0.5])
for d in ('run', 'ref'):
    y = np.load(d + '/y.npy')
    assert np.allclose(y, want, rtol=1e-5), (d, y, want)
EOF
echo "ok: a 10^4-long chain of bindings runs compiled and in the evaluator: y = 10^4 a"
