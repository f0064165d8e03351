#!/usr/bin/python3
"""tests/int8/quantize_softcat_ref.py — the oracle's int8 model of tests/int8/softcat.lathe as
`lathe quantize --quantize-last` writes it (issue 19): int8 concats and softmaxes.

    quantize_softcat_ref.py INT8.safetensors REPORT.json INT8.lathe X.npy OUTDIR

From the report's scales and zero points and the int8 weights lathe wrote, runs the model in
TFLite's arithmetic (tests/int8/tflite_ref.py, tflite_softmax.py) from quantize(X):
  a, b      conv2d (a with its ReLU clamp)
  c         concat([a, b], axis 1) at concat_params of a's and b's ranges: an input with other
            parameters requantized (TFLite's converter: an int8 QUANTIZE before it), one with
            the output's copied
  d, e      conv2d + ReLU; e = concat of two max pools of d (d's parameters: both copied)
  h, z      fully_connected (h with ReLU)
  att       softmax(z) with softmax_params of z's scale (1/256, -128)
  g, logits fully_connected from att (x_zp -128), g with ReLU
  probs     dequantize(softmax(logits)), float32
and writes each as OUTDIR/expected/<name>.npy (int8; probs float32) for the byte-for-byte
comparison of tests/int8/oracle_check.bash. Before that, checks that the text's qsoftmax and
concat lines carry exactly the oracle's constants (softmax_params; requantize's multiplier and
shift, or a copy) and that c's inputs are requantized and e's copied. Exits 1 on a mismatch.
"""
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import tflite_ref as ref  # noqa: E402
import tflite_softmax as sm  # noqa: E402


def main(qw_path, report_path, text_path, x_path, out):
    qw = safetensors_py.load(qw_path)
    with open(report_path) as f:
        t = {e["name"]: e for e in json.load(f)["tensors"]}
    text = open(text_path).read()
    x = np.load(x_path)
    p = {k: (np.float32(v["scale"]), v["zp"]) for k, v in t.items()}
    bad = []

    def layer(name, inp, in_zp, relu, conv):
        s, zp = p[name]
        lo, hi = ref.activation_range("relu" if relu else "none", s, zp)
        args = (inp, in_zp, qw[name + ".w"], qw[name + ".b"], qw[name + ".m"], qw[name + ".s"], zp)
        if conv:
            return ref.conv2d(*args, padding=1, act_min=lo, act_max=hi)
        return ref.fully_connected(*args, act_min=lo, act_max=hi)

    def piece(name, src, out_name):
        """the text of one concat input: a copy, or requantize with the oracle's constants"""
        if p[src] == p[out_name]:
            return name
        _, m, sh = sm.requantize([0], *p[src], *p[out_name])
        return f"requantize({name}, {m}, {sh}, x_zp = {p[src][1]}, out_zp = {p[out_name][1]})"

    def line(want):
        if not re.search(rf"^  {re.escape(want)}(  #|$)", text, re.M):
            bad.append(f"no line '{want}' in the written model")

    # the concats: parameters from the union of the inputs' ranges
    for name, ins in (("c", ("a", "b")), ("e", ("d", "d"))):
        want = sm.concat_params([(t[i]["lo"], t[i]["hi"]) for i in ins])
        if (np.float32(want[0]), want[1]) != p[name]:
            bad.append(f"{name}: parameters {p[name]}, concat_params gives {want}")
    line(f"c = concat([{piece('a', 'a', 'c')}, {piece('b', 'b', 'c')}], axis = 1)")
    pool = re.search(r"^  e = concat\(\[pd, (\w+)\], axis = 2\)", text, re.M)
    if not pool:
        bad.append("e is not concat([pd, <pool>], axis = 2) of copied inputs")
    if p["a"] == p["c"] and p["b"] == p["c"]:
        bad.append("c: no input is requantized (the test needs one)")
    sa, sl = sm.softmax_params(p["z"][0]), sm.softmax_params(p["logits"][0])
    line("att = qsoftmax(z, %d, %d, %d)" % sa)
    line("probs_q = qsoftmax(logits, %d, %d, %d)" % sl)
    line("output probs = dequantize(probs_q, 0.00390625, -128)")
    for name in ("att", "probs"):
        if p[name] != (np.float32(1 / 256), -128):
            bad.append(f"{name}: an int8 softmax's parameters are {p[name]}, not (1/256, -128)")
    if bad:
        sys.exit("quantize_softcat_ref: " + "; ".join(bad))

    v = {}
    xq = ref.quantize(x, *p["x"])
    v["a"] = layer("a", xq, p["x"][1], True, True)
    v["b"] = layer("b", xq, p["x"][1], False, True)
    v["c"] = sm.concat([v["a"], v["b"]], [p["a"], p["b"]], *p["c"], axis=1)
    v["d"] = layer("d", v["c"], p["c"][1], True, True)
    pools = [ref.max_pool2d(v["d"], 2), ref.max_pool2d(v["d"], 4, stride=2, padding=1)]
    v["e"] = sm.concat(pools, [p["d"], p["d"]], *p["e"], axis=2)
    v["h"] = layer("h", v["e"].reshape(len(x), -1), p["e"][1], True, False)
    v["z"] = layer("z", v["h"], p["h"][1], False, False)
    v["att"] = sm.softmax(v["z"], *sa)
    v["g"] = layer("g", v["att"], -128, True, False)
    v["logits"] = layer("logits", v["g"], p["g"][1], False, False)
    probs = ref.dequantize(sm.softmax(v["logits"], *sl), 1 / 256, -128).astype(np.float32)
    for name in ("c", "att"):
        if len(np.unique(v[name])) < 8:
            sys.exit(f"quantize_softcat_ref: {name} too uniform to test anything")
    os.makedirs(os.path.join(out, "expected"), exist_ok=True)
    for name, val in v.items():
        np.save(os.path.join(out, "expected", f"{name}.npy"), val.astype(np.int8))
    np.save(os.path.join(out, "expected", "probs.npy"), probs)
    print(f"ok: the written model's concat and qsoftmax constants are the oracle's "
          f"({len(v) + 1} expected outputs written)")


if __name__ == "__main__":
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(*sys.argv[1:])
