#!/usr/bin/env bash
# `lathe quantize` writes int8 softmax (qsoftmax) and concat of int8 tensors (issue 19,
# docs/int8.md "What becomes int8"), on tests/int8/softcat.lathe trained briefly on random data:
#   - with --quantize-last: the concat of two int8 convolutions is int8 at the union of their
#     ranges (the input with other parameters requantized, the other copied), the concat of two
#     max pools of one tensor copies both, the softmax inside the model and the softmax of the
#     last layer are qsoftmax (1/256, -128), the output probabilities are dequantized, an int8
#     layer reads the softmax; a softmax over a non-last axis and a concat with a float input
#     stay float, and the report (text and --report-json) says why; the report lists the new
#     tensors with their rule;
#   - tests/int8/quantize_ref.py: every tensor's parameters by its rule, every int8 layer's
#     weights, biases, multipliers and shifts the oracle's; tests/int8/quantize_softcat_ref.py:
#     the text's qsoftmax and requantize constants are the oracle's, and the oracle's int8
#     model from quantize(x) gives expected outputs that the evaluator, cc, and the C of native
#     and generic targets under gcc and clang equal byte for byte (oracle_check.bash's
#     check_everywhere, with the Cortex-M4 build); a one-step mutation is caught;
#   - the percentile observer: the same checks through the evaluator;
#   - without --quantize-last: the last softmax stays float (its input is float) and the inner
#     one is still qsoftmax;
#   - a model with a `quantize` statement (QAT) converts with its softmax and concat float (QAT
#     does not model them), the report says so.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# shellcheck source=tests/int8/oracle_check.bash
source "$ROOT/tests/int8/oracle_check.bash"
M=$ROOT/tests/int8/softcat.lathe

/usr/bin/python3 -c "
import numpy as np, os
rng = np.random.default_rng(19)
os.makedirs('data', exist_ok=True)
np.save('data/x.npy', rng.uniform(-1, 1, (32, 2, 8, 8)).astype(np.float32))
np.save('data/label.npy', rng.integers(0, 3, 32).astype(np.int32))
np.save('x.npy', np.load('data/x.npy')[:8])"
quiet "$LATHE" train "$M" --data data --epochs 2 --checkpoint sc.safetensors
quiet "$LATHE" quantize "$M" --weights sc.safetensors --calibrate data --quantize-last \
  --report-json r.json -o q
cp "$TMP/log" report.txt
cat report.txt

# the text: what is int8, what stays float
need() { grep -qE "$1" "$2" || { cat "$2"; echo "FAIL: no /$1/ in $2"; exit 1; }; }
need "^  c = concat\(\[.*requantize\(.*\], axis = 1\)  # int8 " q.lathe
need "^  e = concat\(\[pd, [a-z0-9_]+\], axis = 2\)  # int8 " q.lathe
need "^  att = qsoftmax\(z, [0-9]+, [0-9]+, -[0-9]+\)" q.lathe
need "^  g = qdense_layer\(att, 8, x_zp = -128," q.lathe
need "^  probs_q = qsoftmax\(logits, " q.lathe
need "^  output probs = dequantize\(probs_q, 0.00390625, -128\)$" q.lathe
need "^  cols = softmax\([a-z0-9_]+_f, axis = 1\)$" q.lathe
need "^  mixed = concat\(\[h_f, [a-z0-9_]+\], axis = 1\)$" q.lathe
need "^att .*0.00390625  -128  \(int8 softmax: fixed\)$" report.txt
need "^c .*\(int8 concat: its inputs' union\)$" report.txt
need "^softmax cols stays float: its axis is not the last one" report.txt
need "^concat mixed stays float: an input is float" report.txt
/usr/bin/python3 - <<'PY'
import json
r = json.load(open("r.json"))
rules = {t["name"]: t["rule"] for t in r["tensors"]}
want = {"c": "concat", "e": "concat", "att": "softmax", "probs": "softmax"}
assert all(rules.get(k) == v for k, v in want.items()), rules
names = [t["name"] for t in r["tensors"]]
assert [names[k] for k in r["tensors"][names.index("c")]["inputs"]] == ["a", "b"]
assert [names[k] for k in r["tensors"][names.index("att")]["inputs"]] == ["z"]
ops = {f["name"]: (f["op"], f["why"]) for f in r["float_ops"]}
assert set(ops) == {"cols", "mixed"} and ops["cols"][0] == "softmax" and \
    ops["mixed"][0] == "concat", ops
for t in r["tensors"]:  # the int8 model's values against float on the calibration data
    assert t["max_abs_err"] < 0.1, t
print("ok: the report lists the int8 softmaxes and concats with their rule, and why two stay float")
PY

/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" sc.safetensors q.safetensors r.json x.npy .
/usr/bin/python3 "$ROOT/tests/int8/quantize_softcat_ref.py" q.safetensors r.json q.lathe x.npy \
  "$TMP/ref"

# every int8 tensor as an output, through every backend against the oracle
sed 's/^  output probs = /  output a\n  output b\n  output c\n  output d\n  output e\n  output h\n  output z\n  output att\n  output g\n  output logits\n  output probs = /' \
  q.lathe >qo.lathe
need "^  output att$" qo.lathe
IN=(--weights "$TMP/q.safetensors" --input "x=$TMP/x.npy")
check_everywhere qo.lathe sc lathe_qsoftmax lathe_requant
check_mutant att

# the percentile observer clips each input's range: a concat's is the union of the clipped ones;
# the evaluator equals the oracle's model; a concat's zero point off by one is caught
quiet "$LATHE" quantize "$M" --weights sc.safetensors --calibrate data --quantize-last \
  --observer percentile --percentile 99 --report-json rp.json -o qp
/usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" sc.safetensors qp.safetensors rp.json x.npy .
/usr/bin/python3 "$ROOT/tests/int8/quantize_softcat_ref.py" qp.safetensors rp.json qp.lathe \
  x.npy "$TMP/refp"
sed 's/^  output probs = /  output a\n  output b\n  output c\n  output d\n  output e\n  output h\n  output z\n  output att\n  output g\n  output logits\n  output probs = /' \
  qp.lathe >qpo.lathe
quiet "$LATHE" run qpo.lathe --weights qp.safetensors --input x=x.npy --out evp --reference
check evp "percentile: the evaluator" "$TMP/refp/expected"
/usr/bin/python3 -c "
import json
r = json.load(open('rp.json'))
[c] = [t for t in r['tensors'] if t['name'] == 'c']
c['zp'] += 1
json.dump(r, open('bad.json', 'w'))"
if /usr/bin/python3 "$ROOT/tests/int8/quantize_ref.py" sc.safetensors qp.safetensors bad.json \
  x.npy . >"$TMP/mut" 2>&1; then
  cat "$TMP/mut"; echo "FAIL: a concat's zero point off by one passed"; exit 1
fi
echo "ok: a concat's zero point off by one is caught"

# the last layer float: its softmax too, the inner one int8
quiet "$LATHE" quantize "$M" --weights sc.safetensors --calibrate data -o qf
need "^  logits = dense_layer\(g_f, 3\)  # float$" qf.lathe
need "^  probs = softmax\(logits, axis = 1\)$" qf.lathe
need "^  att = qsoftmax\(z, " qf.lathe
quiet "$LATHE" run qf.lathe --weights qf.safetensors --input x=x.npy --out qf-ref --reference
quiet "$LATHE" run qf.lathe --weights qf.safetensors --input x=x.npy --out qf-cc --backend cc
/usr/bin/python3 -c "
import numpy as np
assert np.allclose(np.load('qf-cc/probs.npy'), np.load('qf-ref/probs.npy'), atol=1e-6)
print('ok: the last layer float: its softmax float, the compiled model equals the evaluator')"

# QAT: the statement does not model int8 softmax or concat, so its conversion keeps them float
sed 's/^  minimize loss$/  minimize loss\n  quantize/' "$M" >qat.lathe
need "^  quantize$" qat.lathe
quiet "$LATHE" train qat.lathe --data data --epochs 3 --resume sc.safetensors \
  --checkpoint qat.safetensors
quiet "$LATHE" quantize qat.lathe --weights qat.safetensors --calibrate data -o qq
need "^  c = concat\(\[a_f, b_f\], axis = 1\)$" qq.lathe
need "^  att = softmax\(z_f, axis = 1\)$" qq.lathe
need "^softmax att stays float: the quantize statement \(QAT\) does not model" "$TMP/log"
need "^concat c stays float: the quantize statement \(QAT\) does not model" "$TMP/log"
echo "ok: QAT's conversion keeps softmax and concat float, and says why"
