#!/usr/bin/python3
"""bench/int8_onnx.py — lathe's int8 models as ONNX, for ONNX Runtime (issue 19, bench/int8.sh).

    int8_onnx.py export Q.lathe Q.safetensors REPORT.json -o OUT.onnx
                 [--act uint8|int8] [--weight-type int8|uint8] [--form qdq|qop]
                 [--int8-output NAME]
    int8_onnx.py fused MODEL.onnx ORT.log
    int8_onnx.py compare LATHE_DIR ORT_DIR NAME --max-quanta Q

export: translates the model `lathe quantize` writes (Q.lathe, its weights Q.safetensors and
its `--report-json` REPORT.json) into an ONNX model (opset 13) in QDQ form: every int8 layer is
DequantizeLinear on its input, weights and int32 bias, then the float Conv or Gemm (a Relu
where the layer has one), then QuantizeLinear at the layer's output scale and zero point; max
pooling and reshape sit between a DequantizeLinear and a QuantizeLinear of equal parameters.
ONNX Runtime fuses these patterns into its integer kernels (QLinearConv, QGemm, MaxPool and
Reshape on uint8: `fused` checks it). The same bytes as lathe's:
  - the int8 weights and int32 biases as they are;
  - activations as uint8 by default (`--act uint8`: q + 128, zero point + 128, the exact
    shift; ORT's x86 kernels are U8S8 and U8U8 ones, its S8S8 GEMM has a vector kernel only
    with AVX-VNNI-INT8), or as int8 (`--act int8`);
  - `--weight-type uint8`: weights w + 128 with zero point 128 (exact), so ORT runs its U8U8
    kernels, which cannot saturate (its U8S8 AVX2 kernel, vpmaddubsw, can with full-range
    weights);
  - the weight scale of output channel c is s_w[c] = m[c] 2^(s[c] - 31) s_y / s_x, from
    lathe's Q31 multiplier m and shift s: ORT's float requantization multiplier
    s_x s_w[c] / s_y is then lathe's fixed-point one (to float32 precision), and the bias
    scale s_x s_w[c] the one lathe's int32 bias was quantized at (within 2^-30 relative).
The two still differ by rounding: lathe requantizes in Q31 fixed point rounding half away
from zero (TFLite's arithmetic), ORT in float32 rounding half to even, so an output can move
by a quantum, and a quantum per layer can add up.

`--form qop` writes the QOperator form instead: QLinearConv, com.microsoft's QGemm (standard
ONNX has no int8 dense layer with a bias), MaxPool and Reshape on the uint8 tensors; ORT runs
it as the same kernels (bench/int8.sh times both), lathe's importer does not take QGemm.

Only what `lathe quantize` writes for chains of layers is translated (quantize, qdense_layer,
qconv_layer, max_pool2d, reshape, dequantize, softmax); any other line the output depends on
is an error naming it. `--int8-output NAME` adds the int8 tensor NAME as a second output (for
the check against lathe's; the timed model has the float output alone).

fused: reads ORT's verbose session log (bench/int8_ort.js --log) and exits 1 unless its QDQ
optimizer matched every Conv and Gemm of MODEL.onnx (each match replaces the group by an
integer kernel: QLinearConv, QGemm); prints the counts and the node count ORT runs.

compare: NAME.npy of lathe's run (int8) against ORT's (uint8 shifted by 128, or int8): prints the
largest difference in quanta and how many elements differ; exits 1 above --max-quanta.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "fixtures"))
import safetensors_py  # noqa: E402

NUM = r"(-?[0-9.e+-]+)"
KW = lambda k: rf"{k} = (-?\d+)"  # noqa: E731
# One regex per line form of the written model (cli/quantize_write.c): binding = call(...).
FORMS = {
    "quantize": re.compile(rf"^(\w+) = quantize\((\w+), {NUM}, (-?\d+)\)"),
    "dequantize": re.compile(rf"^(\w+) = dequantize\((\w+), {NUM}, (-?\d+)\)"),
    "qdense": re.compile(rf"^(\w+) = qdense_layer\((\w+), (\d+), {KW('x_zp')}, "
                         rf"{KW('out_zp')}, {KW('qmin')}\)"),
    "qconv": re.compile(rf"^(\w+) = qconv_layer\((\w+), (\d+), (\d+), (\d+), {KW('stride')}, "
                        rf"{KW('padding')}, {KW('dilation')}, {KW('x_zp')}, {KW('out_zp')}, "
                        rf"{KW('qmin')}\)"),
    "maxpool": re.compile(rf"^(\w+) = max_pool2d\((\w+), (\d+), {KW('stride')}, "
                          rf"{KW('padding')}, {KW('dilation')}\)"),
    "reshape": re.compile(r"^(\w+) = reshape\((\w+), \[([\w, ]+)\]\)"),
    "softmax": re.compile(r"^(\w+) = softmax\((\w+), axis = (-?\d+)\)"),
    # TFLite's int8 softmax over the last axis: output scale 1/256, zero point -128
    "qsoftmax": re.compile(r"^(\w+) = qsoftmax\((\w+), (-?\d+), (-?\d+), (-?\d+)\)"),
}


class ExportError(Exception):
    pass


def parse_model(path):
    """The written model: its consts, input, output and each binding's (form, match)."""
    text = open(path).read()
    consts = {m[1]: int(m[2]) for m in re.finditer(r"^const (\w+) = (\d+)$", text, re.M)}
    head = re.search(r"^model \w+\((\w+): f32\[([\w, ]+)\]", text, re.M)
    outs = re.findall(r"^  output (\w+)(?: = .*)?$", text, re.M)
    if not head or len(outs) != 1:
        raise ExportError(f"{path}: expected a model with an f32 first input and one output")
    dims = [consts[d] if d in consts else int(d) for d in head[2].split(", ")]
    lines = {}
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("output ") and " = " in line:  # `output probs = dequantize(...)`
            line = line[len("output "):]
        name = re.match(r"^(\w+) = ", line)
        if not name:
            continue
        form = next(((f, m) for f, rx in FORMS.items() if (m := rx.match(line))), None)
        lines[name[1]] = form if form else ("unknown", line)
    return head[1], dims, outs[0], lines, consts


def order(output, inp, lines):
    """The bindings the output depends on, inputs first; an unknown form is an error."""
    seen, out = set(), []

    def visit(name):
        if name in seen or name == inp:
            return
        if name not in lines:
            raise ExportError(f"'{name}' is not a binding of the model")
        form, m = lines[name]
        if form == "unknown":
            raise ExportError(f"no ONNX translation for the line '{m}'")
        seen.add(name)
        visit(m[2])
        out.append(name)

    visit(output)
    return out


class Builder:
    """The ONNX graph under construction: nodes, initializers, each int8 tensor's params."""

    def __init__(self, onnx, act_signed, weights_u8, qop):
        self.onnx, self.h = onnx, onnx.helper
        self.act_signed, self.weights_u8, self.qop = act_signed, weights_u8, qop
        self.nodes, self.inits, self.params = [], [], {}  # params: name -> (scale, lathe zp)
        self.dequantized = set()  # the int8 tensors whose DequantizeLinear exists
        self.alias = {}  # a dequantize binding -> its DequantizeLinear's output

    def const(self, name, array):
        self.inits.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def act_zp(self, name, zp):  # lathe's int8 zero point in the graph's activation type
        if self.act_signed:
            return self.const(name, np.array(zp, np.int8))
        return self.const(name, np.array(zp + 128, np.uint8))

    def node(self, op, inputs, output, domain=None, **attrs):
        self.nodes.append(self.h.make_node(op, inputs, [output], name=output, domain=domain,
                                           **attrs))
        return output

    def declare(self, name, scale, zp):
        """The scale and zero point initializers of int8 tensor name."""
        self.const(f"{name}.scale", np.array(scale, np.float32))
        self.act_zp(f"{name}.zp", zp)
        self.params[name] = (scale, zp)
        return [f"{name}.scale", f"{name}.zp"]

    def dq(self, name):
        """The float value of int8 tensor name (one DequantizeLinear per tensor)."""
        if f"{name}.f" not in self.dequantized:
            self.dequantized.add(f"{name}.f")
            self.node("DequantizeLinear", [name, f"{name}.scale", f"{name}.zp"], f"{name}.f")
        return f"{name}.f"

    def q(self, value, name, scale, zp):
        """QuantizeLinear of the float value to the int8 tensor name at (scale, zp)."""
        self.node("QuantizeLinear", [value] + self.declare(name, scale, zp), name)


def layer_scales(m, s, s_x, s_y):
    """Each output channel's weight scale from lathe's Q31 multiplier and shift (docstring)."""
    mult = m.astype(np.float64) * np.exp2(s.astype(np.float64) - 31)
    return (mult * s_y / s_x).astype(np.float32)


def layer_operands(b, name, form, m, weights, report):
    """Checks a layer; its int8 weights, their scales and zero points, its bias, its clamp."""
    src = m[2]
    w, bias = weights[f"{name}.w"], weights[f"{name}.b"]
    if w.dtype != np.int8 or bias.dtype != np.int32:
        raise ExportError(f"{name}: expected i8 weights and i32 biases")
    s_x, zp_x = b.params[src]
    rep = report[name]
    x_zp, out_zp, qmin = (int(m[i]) for i in ((4, 5, 6) if form == "qdense" else (9, 10, 11)))
    if x_zp != zp_x:
        raise ExportError(f"{name}: x_zp = {x_zp}, but {src}'s zero point is {zp_x}")
    if rep["zp"] != out_zp:
        raise ExportError(f"{name}: the report's zero point {rep['zp']} is not {out_zp}")
    if qmin not in (-128, out_zp):
        raise ExportError(f"{name}: a clamp at {qmin} that is neither none nor a ReLU")
    sw = layer_scales(weights[f"{name}.m"], weights[f"{name}.s"], s_x, rep["scale"])
    if b.weights_u8:
        wq = b.const(f"{name}.w", (w.astype(np.int16) + 128).astype(np.uint8))
        wzp = b.const(f"{name}.w.zp", np.full(sw.shape, 128, np.uint8))
    else:
        wq = b.const(f"{name}.w", w)
        wzp = b.const(f"{name}.w.zp", np.zeros(sw.shape, np.int8))
    relu = bool(rep.get("relu")) or qmin == out_zp and out_zp > -128
    return wq, b.const(f"{name}.w.scale", sw), wzp, bias, sw, relu, (rep["scale"], out_zp)


def conv_attrs(name, m):
    k, st, pad, dil = int(m[4]), int(m[6]), int(m[7]), int(m[8])
    if int(m[5]) != k:
        raise ExportError(f"{name}: only square kernels are translated")
    return dict(kernel_shape=[k, k], strides=[st, st], pads=[pad] * 4, dilations=[dil, dil])


def emit_layer(b, name, form, m, weights, report):
    """QDQ: DequantizeLinear on input, weights and bias; Conv or Gemm; Relu; QuantizeLinear.
    QOperator: QLinearConv, or com.microsoft's QGemm (QLinearMatMul takes no bias)."""
    wq, ws, wzp, bias, sw, relu, out = layer_operands(b, name, form, m, weights, report)
    s_x = b.params[m[2]][0]
    if b.qop:
        if relu and out[1] > -128:
            raise ExportError(f"{name}: a ReLU above the output's zero point (QOperator form)")
        x = [m[2], f"{m[2]}.scale", f"{m[2]}.zp"]
        bq = b.const(f"{name}.b", bias)
        if form == "qconv":
            b.node("QLinearConv", x + [wq, ws, wzp] + b.declare(name, *out) + [bq], name,
                   **conv_attrs(name, m))
        else:
            b.node("QGemm", x + [wq, ws, wzp, bq] + b.declare(name, *out), name,
                   domain="com.microsoft")
        return
    axis = 0 if form == "qconv" else 1
    wf = b.node("DequantizeLinear", [wq, ws, wzp], f"{name}.w.f", axis=axis)
    bs = (np.float64(s_x) * sw.astype(np.float64)).astype(np.float32)
    bf = b.node("DequantizeLinear", [b.const(f"{name}.b", bias), b.const(f"{name}.b.scale", bs),
                                     b.const(f"{name}.b.zp", np.zeros(bs.shape, np.int32))],
                f"{name}.b.f", axis=0)
    if form == "qconv":
        y = b.node("Conv", [b.dq(m[2]), wf, bf], f"{name}.y", **conv_attrs(name, m))
    else:
        y = b.node("Gemm", [b.dq(m[2]), wf, bf], f"{name}.y")
    if relu:
        y = b.node("Relu", [y], f"{name}.relu")
    b.q(y, name, *out)


def emit(b, name, form, m, weights, report, consts):
    """One binding of the written model as ONNX nodes."""
    if form == "quantize":
        b.q(m[2], name, float(m[3]), int(m[4]))
    elif form in ("qdense", "qconv"):
        emit_layer(b, name, form, m, weights, report)
    elif form in ("maxpool", "reshape"):  # QOperator: on the int8 tensor, parameters kept
        if form == "maxpool":
            k, st, pad, dil = (int(v) for v in m.groups()[2:6])
            op, extra = "MaxPool", {"kernel_shape": [k, k], "strides": [st, st],
                                    "pads": [pad] * 4, "dilations": [dil, dil]}
            inputs = []
        else:
            dims = [consts[d] if d in consts else int(d) for d in m[3].split(", ")]
            op, extra = "Reshape", {}
            inputs = [b.const(f"{name}.shape", np.array(dims, np.int64))]
        if b.qop:
            b.node(op, [m[2]] + inputs, name, **extra)
            b.declare(name, *b.params[m[2]])
        else:
            b.q(b.node(op, [b.dq(m[2])] + inputs, f"{name}.y", **extra), name, *b.params[m[2]])
    elif form == "dequantize":
        scale, zp = b.params[m[2]]
        if abs(float(m[3]) - scale) > 1e-6 * scale or int(m[4]) != zp:
            raise ExportError(f"{name}: dequantize at parameters other than {m[2]}'s")
        b.alias[name] = b.dq(m[2])
    elif form == "qsoftmax":  # QDQ around a float Softmax (ORT's own int8 softmax rounds its way)
        y = b.node("Softmax", [b.dq(m[2])], f"{name}.y", axis=-1)
        b.q(y, name, 1.0 / 256.0, -128)
    elif form == "softmax":
        b.node("Softmax", [b.alias.get(m[2], m[2])], name, axis=int(m[3]))
    else:
        raise ExportError(f"{name}: no ONNX translation of {form}")


def export(args):
    import onnx  # python3-onnx
    import onnx.numpy_helper  # noqa: F401

    inp, dims, output, lines, consts = parse_model(args.model)
    weights = safetensors_py.load(args.weights)
    rep = json.load(open(args.report))
    report = {t["name"]: t for t in rep["tensors"]}
    for layer in rep["layers"]:
        if layer["name"] in report:
            report[layer["name"]]["relu"] = layer["relu"]
    b = Builder(onnx, args.act == "int8", args.weights_kind == "uint8", args.form == "qop")
    for name in order(output, inp, lines):
        form, m = lines[name]
        emit(b, name, form, m, weights, report, consts)
    if output in b.alias:  # the model's output is a dequantize: name it
        b.node("Identity", [b.alias[output]], output)
    h, elem = onnx.helper, onnx.TensorProto
    outputs = [h.make_tensor_value_info(output, elem.FLOAT, None)]
    if args.int8_output:
        if args.int8_output not in b.params:
            raise ExportError(f"--int8-output {args.int8_output}: not an int8 tensor")
        kind = elem.INT8 if b.act_signed else elem.UINT8
        outputs.append(h.make_tensor_value_info(args.int8_output, kind, None))
    graph = h.make_graph(b.nodes, "lathe_int8", [h.make_tensor_value_info(inp, elem.FLOAT,
                                                                          dims)],
                         outputs, b.inits)
    opsets = [h.make_opsetid("", 13)] + ([h.make_opsetid("com.microsoft", 1)] if b.qop else [])
    model = h.make_model(graph, opset_imports=opsets,
                         producer_name="lathe bench/int8_onnx.py")
    model.ir_version = 7
    graph = onnx.shape_inference.infer_shapes(model).graph
    inferred = {v.name: v for v in list(graph.value_info) + list(graph.output)}
    for out in model.graph.output:  # the outputs' shapes, from ONNX's shape inference
        if out.name in inferred and inferred[out.name].type.tensor_type.HasField("shape"):
            out.type.CopyFrom(inferred[out.name].type)
        else:  # behind com.microsoft's QGemm, which ONNX cannot infer: [batch, classes]
            kind = out.type.tensor_type.elem_type
            out.CopyFrom(h.make_tensor_value_info(out.name, kind, [None, None]))
    onnx.checker.check_model(model)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(model.SerializeToString())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, args.out)


def fused(args):
    import onnx

    kinds = [n.op_type for n in onnx.load(args.model).graph.node]
    log = open(args.log).read()
    nodes = re.findall(r"Number of nodes: (\d+)", log)
    bad = []
    for op in ("Conv", "Gemm", "MatMul"):
        want, got = kinds.count(op), len(re.findall(rf"Matched {op}$", log, re.M))
        if want:
            print(f"{op}: {got} of {want} fused into integer kernels")
        if got != want:
            bad.append(op)
    print(f"ORT runs {nodes[-1] if nodes else '?'} nodes (the file has {len(kinds)})")
    if bad or not nodes:
        raise ExportError(f"ORT left float {', '.join(bad) or 'kernels'} (its log: {args.log})")


def compare(args):
    ours = np.load(os.path.join(args.lathe_dir, args.name + ".npy"))
    theirs = np.load(os.path.join(args.ort_dir, args.name + ".npy"))
    if ours.dtype != np.int8 or theirs.dtype not in (np.int8, np.uint8):
        raise ExportError(f"{args.name}: expected lathe's int8 and ONNX's int8 or uint8, got "
                          f"{ours.dtype} and {theirs.dtype}")
    ours = ours.astype(np.int32)
    theirs = theirs.astype(np.int32) - (128 if theirs.dtype == np.uint8 else 0)
    if ours.shape != theirs.shape:
        raise ExportError(f"{args.name}: lathe's shape {ours.shape}, ORT's {theirs.shape}")
    diff = np.abs(ours - theirs)
    worst = int(diff.max())
    print(f"{worst} {int((diff > 0).sum())} {diff.size}")
    if worst > args.max_quanta:
        print(f"FAIL: the ONNX model's {args.name} is {worst} quanta from lathe's (at most "
              f"{args.max_quanta} expected)", file=sys.stderr)
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("model")
    e.add_argument("weights")
    e.add_argument("report")
    e.add_argument("-o", "--out", required=True)
    e.add_argument("--act", choices=("uint8", "int8"), default="uint8")
    e.add_argument("--weight-type", dest="weights_kind", choices=("int8", "uint8"),
                   default="int8")
    e.add_argument("--int8-output")
    e.add_argument("--form", choices=("qdq", "qop"), default="qdq")
    o = sub.add_parser("fused")
    o.add_argument("model")
    o.add_argument("log")
    c = sub.add_parser("compare")
    c.add_argument("lathe_dir")
    c.add_argument("ort_dir")
    c.add_argument("name")
    c.add_argument("--max-quanta", type=int, required=True)
    args = p.parse_args()
    try:
        if args.cmd == "export":
            export(args)
        elif args.cmd == "fused":
            fused(args)
        else:
            compare(args)
    except (ExportError, OSError, KeyError, ValueError) as err:
        print(f"int8_onnx.py: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
