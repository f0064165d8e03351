#!/usr/bin/python3
"""tests/int8/onnx_qmodels.py DIR — small quantized ONNX models for tests/onnx_quant.sh.

For every case it writes DIR/NAME.onnx (built with the onnx package, python3-onnx), its
inputs DIR/NAME.<input>.npy and the expected output DIR/NAME.y.npy computed by the NumPy
reference of the ONNX definitions (tests/int8/onnx_qref.py), and lists the case in
DIR/cases.txt as `NAME input...`. Inputs are chosen to hit exact halves of x / scale (where
half to even and half away differ), both saturation ends, and every zero point sign.

`DIR/bad/*.onnx` are models the importer must refuse with a clear message (bad.txt lists
`NAME expected-message-fragment`).

Cases NAME_dyn are NAME with a symbolic batch (lathe's run-time batch, bound 64, run at the
inputs' smaller batch). The QDQ MLP (case qdq_mlp) is a float MLP quantized by this script's own QDQ insertion:
activations uint8 per tensor, weights int8 symmetric per output channel, biases int32 at
s_x * s_w, power-of-two scales so every float product and sum is exact in float32 (so the
float MatMul/Add between the QDQ pairs has one correct result whatever the summation order,
and the comparison is exact).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_qref as ref  # noqa: E402

OUT = sys.argv[1]
RNG = np.random.default_rng(19)
CASES, BAD = [], []
NP2ONNX = {np.float32: TensorProto.FLOAT, np.int8: TensorProto.INT8,
           np.uint8: TensorProto.UINT8, np.int32: TensorProto.INT32,
           np.int16: TensorProto.INT16}


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


def vinfo(name, a, dyn=False):
    """dyn: axis 0 is the symbolic batch 'N' (lathe's run-time batch)"""
    dims = (["N"] if dyn else []) + list(a.shape)[1 if dyn else 0:]
    return helper.make_tensor_value_info(name, NP2ONNX[a.dtype.type], dims)


def save(name, nodes, inputs, inits, y, opset=13, bad=None, dyn=False):
    """inputs: {name: array}; y: the expected output (named y); dyn: also saved as NAME_dyn,
    the same graph with axis 0 of its inputs and output the symbolic batch 'N'"""
    _save(name, nodes, inputs, inits, y, opset, bad, False)
    if dyn:
        _save(name + "_dyn", nodes, inputs, inits, y, opset, bad, True)


def _save(name, nodes, inputs, inits, y, opset, bad, dyn):
    g = helper.make_graph(nodes, name, [vinfo(k, v, dyn) for k, v in inputs.items()],
                          [vinfo("y", y, dyn)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    d = os.path.join(OUT, "bad") if bad else OUT
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, name + ".onnx"))
    if bad:
        BAD.append(f"{name}\t{bad}")
        return
    if opset <= onnx.defs.onnx_opset_version():  # python3-onnx 1.12 knows opsets up to 17
        onnx.checker.check_model(m)
    for k, v in inputs.items():
        np.save(os.path.join(OUT, f"{name}.{k}.npy"), v)
    np.save(os.path.join(OUT, f"{name}.y.npy"), y)
    CASES.append(" ".join([name] + list(inputs)))


def halves(shape, scale):
    """x / scale lands on exact halves k + 0.5 (and integers), both signs, past both ends"""
    k = RNG.integers(-300, 300, size=shape)
    return ((k + 0.5 * RNG.integers(0, 2, size=shape)) * np.float32(scale)).astype(np.float32)


def quantize_cases():
    x = halves((2, 3, 4, 5), 0.5)
    for dt, zp in ((np.int8, -3), (np.uint8, 131)):
        z = np.asarray(zp, dtype=dt)
        y = ref.quantize_linear(x, np.float32(0.5), z)
        save(f"q_tensor_{dt.__name__}",
             [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], {"x": x},
             [init("s", np.float32(0.5)), init("z", z)], y)
    scales = np.float32([0.5, 0.25, 2.0])
    for dt, zps in ((np.int8, [-5, 0, 7]), (np.uint8, [0, 128, 250])):
        z = np.asarray(zps, dtype=dt)
        xs = (halves((2, 3, 4, 5), 0.25) * np.float32(2)).astype(np.float32)
        y = ref.quantize_linear(xs, scales, z, axis=1)
        save(f"q_axis_{dt.__name__}",
             [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": xs},
             [init("s", scales), init("z", z)], y)
    # opset 10: per tensor, no zero point (uint8 0), scale of shape [1]-less scalar
    x10 = halves((4, 6), 0.125)
    save("q_opset10", [helper.make_node("QuantizeLinear", ["x", "s"], ["y"])], {"x": x10},
         [init("s", np.float32(0.125))], ref.quantize_linear(x10, np.float32(0.125)), opset=10)
    # opset 19's form: `saturate` (it concerns float8 only; int8 always saturates)
    save("q_opset19_saturate",
         [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], saturate=1)], {"x": x10},
         [init("s", np.float32(0.125)), init("z", np.int8(-100))],
         ref.quantize_linear(x10, np.float32(0.125), np.int8(-100)), opset=19)
    # the negative axis of opset 13, and an int32 input
    xi = RNG.integers(-2000, 2000, size=(3, 4)).astype(np.int32)
    s4 = np.float32([2.0, 4.0, 8.0, 16.0])
    z4 = np.int8([0, -1, 1, 3])
    save("q_int32_axis_last",
         [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=-1)], {"x": xi},
         [init("s", s4), init("z", z4)], ref.quantize_linear(xi.astype(np.float32), s4, z4, 1))


def dequantize_cases():
    for dt, zp in ((np.int8, -7), (np.uint8, 120)):
        lo, hi = ref.RANGES[dt]
        q = RNG.integers(lo, hi + 1, size=(3, 5)).astype(dt)
        q.flat[:2] = [lo, hi]
        z = np.asarray(zp, dtype=dt)
        save(f"dq_tensor_{dt.__name__}",
             [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"])], {"x": q},
             [init("s", np.float32(0.0173)), init("z", z)],
             ref.dequantize_linear(q, np.float32(0.0173), z))
        s = np.float32([0.1, 0.37, 3.0])
        za = np.asarray([lo, 0 if dt == np.int8 else 128, hi], dtype=dt)
        qa = RNG.integers(lo, hi + 1, size=(2, 3, 4)).astype(dt)
        save(f"dq_axis_{dt.__name__}",
             [helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=1)], {"x": qa},
             [init("s", s), init("z", za)], ref.dequantize_linear(qa, s, za, axis=1))
    # constant int8 weights per channel and an int32 bias: folded at import time
    w = RNG.integers(-127, 128, size=(4, 3)).astype(np.int8)
    sw = np.float32([0.01, 0.02, 0.003])
    b = np.int32([123456789, -5, 0])
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    nodes = [helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wf"], axis=1),
             helper.make_node("DequantizeLinear", ["b", "sb"], ["bf"]),
             helper.make_node("Slice", ["wf", "st", "en"], ["w2"]),
             helper.make_node("Add", ["x", "w2"], ["t"]),
             helper.make_node("Add", ["t", "bf"], ["y"])]
    wf = ref.dequantize_linear(w, sw, np.zeros(3, np.int8), axis=1)
    bf = ref.dequantize_linear(b, np.float32(1e-4))
    save("dq_const", nodes, {"x": x},
         [init("w", w), init("sw", sw), init("zw", np.zeros(3, np.int8)), init("b", b),
          init("sb", np.float32(1e-4)), init("st", np.int64([0])), init("en", np.int64([2]))],
         ((x + wf[:2]) + bf).astype(np.float32))


def qdq_roundtrip_cases():
    x = halves((4, 3, 5), 0.5)
    for dt, zp in ((np.uint8, 128), (np.int8, 0)):
        z = np.asarray(zp, dtype=dt)
        q = ref.quantize_linear(x, np.float32(0.5), z)
        save(f"qdq_{dt.__name__}",
             [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
              helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])], {"x": x},
             [init("s", np.float32(0.5)), init("z", z)],
             ref.dequantize_linear(q, np.float32(0.5), z))


def qlinear_matmul_cases():
    # a uint8 input, b int8 constant per column, y uint8; ties at m = 0.5
    a = RNG.integers(0, 256, size=(5, 7)).astype(np.uint8)
    b = RNG.integers(-128, 128, size=(7, 4)).astype(np.int8)
    bs, bz = np.float32([1.0, 0.5, 0.25, 2.0]), np.int8([0, 3, -2, 0])
    args = (a, np.float32(0.5), np.uint8(130), b, bs, bz, np.float32(8.0), np.uint8(100))
    save("qlmm_u8_i8axis",
         [helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                           ["y"])], {"a": a},
         [init("as", args[1]), init("az", args[2]), init("b", b), init("bs", bs),
          init("bz", bz), init("ys", args[6]), init("yz", args[7])], ref.qlinear_matmul(*args),
         dyn=True)
    # int8 a (3-D, batched), uint8 b as a runtime input, per tensor, y int8
    a3 = RNG.integers(-128, 128, size=(2, 3, 6)).astype(np.int8)
    b3 = RNG.integers(0, 256, size=(6, 5)).astype(np.uint8)
    args = (a3, np.float32(0.03), np.int8(-4), b3, np.float32(0.011), np.uint8(127),
            np.float32(0.9), np.int8(5))
    save("qlmm_i8_u8runtime",
         [helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                           ["y"])], {"a": a3, "b": b3},
         [init("as", args[1]), init("az", args[2]), init("bs", args[4]), init("bz", args[5]),
          init("ys", args[6]), init("yz", args[7])], ref.qlinear_matmul(*args))


def matmul_integer_cases():
    a = RNG.integers(0, 256, size=(4, 9)).astype(np.uint8)
    b = RNG.integers(-128, 128, size=(9, 3)).astype(np.int8)
    bz = np.int8([1, -2, 0])
    save("mmi_u8_i8axis",
         [helper.make_node("MatMulInteger", ["a", "b", "az", "bz"], ["y"])], {"a": a},
         [init("b", b), init("az", np.uint8(77)), init("bz", bz)],
         ref.matmul_integer(a, b, 77, bz))
    a2 = RNG.integers(-128, 128, size=(3, 8)).astype(np.int8)
    b2 = RNG.integers(-128, 128, size=(8, 2)).astype(np.int8)
    save("mmi_i8_runtime", [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
         {"a": a2, "b": b2}, [], ref.matmul_integer(a2, b2))


def qlinear_conv_cases():
    conv_in = ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"]
    x = RNG.integers(0, 256, size=(2, 3, 7, 6)).astype(np.uint8)
    w = RNG.integers(-127, 128, size=(4, 3, 3, 3)).astype(np.int8)
    ws, b = np.float32([0.01, 0.02, 0.005, 0.04]), RNG.integers(-3000, 3000, 4).astype(np.int32)
    p = (x, np.float32(0.05), np.uint8(128), w, ws, np.int8(0), np.float32(0.2), np.uint8(120))
    save("qlconv_u8_axis_bias_pad_stride",
         [helper.make_node("QLinearConv", conv_in + ["b"], ["y"], pads=[1, 1, 1, 1],
                           strides=[2, 2])], {"x": x},
         [init("xs", p[1]), init("xz", p[2]), init("w", w), init("ws", ws),
          init("wz", p[5]), init("ys", p[6]), init("yz", p[7]), init("b", b)],
         ref.qlinear_conv(*p, bias=b, pads=[1, 1, 1, 1], strides=[2, 2]), dyn=True)
    # int8 x, per-tensor weights, dilation 2 with asymmetric pads, ties: m = 0.5
    x2 = RNG.integers(-128, 128, size=(1, 2, 8, 8)).astype(np.int8)
    w2 = RNG.integers(-128, 128, size=(3, 2, 2, 3)).astype(np.int8)
    p2 = (x2, np.float32(0.5), np.int8(-2), w2, np.float32(1.0), np.int8(1), np.float32(64.0),
          np.int8(-1))
    conv = dict(pads=[0, 2, 1, 1], dilations=[2, 2])
    save("qlconv_i8_dilation",
         [helper.make_node("QLinearConv", conv_in, ["y"], **conv)], {"x": x2},
         [init("xs", p2[1]), init("xz", p2[2]), init("w", w2), init("ws", p2[4]),
          init("wz", p2[5]), init("ys", p2[6]), init("yz", p2[7])], ref.qlinear_conv(*p2, **conv))
    # grouped (2 groups), uint8 weights with a zero point, 1-D is below
    x3 = RNG.integers(0, 256, size=(1, 4, 5, 5)).astype(np.uint8)
    w3 = RNG.integers(0, 256, size=(6, 2, 3, 3)).astype(np.uint8)
    p3 = (x3, np.float32(0.02), np.uint8(3), w3, np.float32(0.01), np.uint8(128),
          np.float32(0.1), np.uint8(0))
    save("qlconv_grouped",
         [helper.make_node("QLinearConv", conv_in, ["y"], group=2, pads=[1, 1, 1, 1])],
         {"x": x3}, [init("xs", p3[1]), init("xz", p3[2]), init("w", w3), init("ws", p3[4]),
                     init("wz", p3[5]), init("ys", p3[6]), init("yz", p3[7])],
         ref.qlinear_conv(*p3, group=2, pads=[1, 1, 1, 1]))
    x4 = RNG.integers(-128, 128, size=(2, 3, 9)).astype(np.int8)
    w4 = RNG.integers(-127, 128, size=(2, 3, 3)).astype(np.int8)
    p4 = (x4, np.float32(0.1), np.int8(0), w4, np.float32([0.1, 0.2]), np.int8(0),
          np.float32(0.7), np.int8(3))
    save("qlconv_1d",
         [helper.make_node("QLinearConv", conv_in, ["y"], strides=[2], pads=[1, 0])],
         {"x": x4}, [init("xs", p4[1]), init("xz", p4[2]), init("w", w4), init("ws", p4[4]),
                     init("wz", p4[5]), init("ys", p4[6]), init("yz", p4[7])],
         ref.qlinear_conv(*p4, strides=[2], pads=[1, 0]))


def conv_integer_cases():
    x = RNG.integers(0, 256, size=(1, 2, 6, 6)).astype(np.uint8)
    w = RNG.integers(0, 256, size=(3, 2, 3, 3)).astype(np.uint8)
    save("convint_u8",
         [helper.make_node("ConvInteger", ["x", "w", "xz", "wz"], ["y"], pads=[1, 1, 1, 1],
                           strides=[1, 2])], {"x": x},
         [init("w", w), init("xz", np.uint8(100)), init("wz", np.uint8(128))],
         ref.conv_integer(x, w, 100, 128, pads=[1, 1, 1, 1], strides=[1, 2]))


def pow2_scale(lo, hi, levels):
    return np.float32(2.0 ** np.ceil(np.log2(max(hi - lo, 1e-8) / levels)))


def qdq_mlp():
    """a float MLP 16 -> 12 -> 5 quantized by QDQ insertion (see the module docstring)"""
    x = (RNG.standard_normal((8, 16)) * 1.5).astype(np.float32)
    w1 = (RNG.standard_normal((16, 12)) * 0.3).astype(np.float32)
    w2 = (RNG.standard_normal((12, 5)) * 0.3).astype(np.float32)
    b1, b2 = RNG.standard_normal(12).astype(np.float32), RNG.standard_normal(5).astype(np.float32)
    nodes, inits = [], []

    def qdq(name, t, lo, hi):  # activation: uint8 per tensor, asymmetric
        s = pow2_scale(min(lo, 0.0), max(hi, 0.0), 255)
        z = np.uint8(np.clip(np.rint(-min(lo, 0.0) / s), 0, 255))
        inits.extend([init(name + "_s", s), init(name + "_z", z)])
        nodes.append(helper.make_node("QuantizeLinear", [t, name + "_s", name + "_z"],
                                      [name + "_q"]))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s",
                                                           name + "_z"], [name + "_dq"]))
        return s, z

    def weights(name, w, b, s_x):  # int8 symmetric per output column, int32 bias
        sw = np.float32([pow2_scale(-np.abs(c).max(), np.abs(c).max(), 254) for c in w.T])
        wq = ref.quantize_linear(w, sw, np.zeros(len(sw), np.int8), axis=1)
        bq = np.rint(b / (s_x * sw)).astype(np.int32)
        inits.extend([init(name + "_wq", wq), init(name + "_ws", sw),
                      init(name + "_wz", np.zeros(len(sw), np.int8)), init(name + "_bq", bq),
                      init(name + "_bs", (s_x * sw).astype(np.float32))])
        nodes.append(helper.make_node("DequantizeLinear", [name + "_wq", name + "_ws",
                                                           name + "_wz"], [name + "_w"], axis=1))
        nodes.append(helper.make_node("DequantizeLinear", [name + "_bq", name + "_bs"],
                                      [name + "_b"], axis=0))
        return (ref.dequantize_linear(wq, sw, None, axis=1),
                ref.dequantize_linear(bq, s_x * sw, None, axis=0))

    sx, zx = qdq("x", "x", float(x.min()), float(x.max()))
    xd = ref.dequantize_linear(ref.quantize_linear(x, sx, zx), sx, zx)
    w1d, b1d = weights("l1", w1, b1, sx)
    h = np.maximum(xd @ w1d + b1d, 0).astype(np.float32)
    nodes += [helper.make_node("MatMul", ["x_dq", "l1_w"], ["h_mm"]),
              helper.make_node("Add", ["h_mm", "l1_b"], ["h_add"]),
              helper.make_node("Relu", ["h_add"], ["h"])]
    sh, zh = qdq("h", "h", 0.0, float(h.max()))
    hd = ref.dequantize_linear(ref.quantize_linear(h, sh, zh), sh, zh)
    w2d, b2d = weights("l2", w2, b2, sh)
    nodes += [helper.make_node("MatMul", ["h_dq", "l2_w"], ["o_mm"]),
              helper.make_node("Add", ["o_mm", "l2_b"], ["y"])]
    y = (hd @ w2d + b2d).astype(np.float32)
    # every float value above is a dyadic rational of few bits: exact in float32 in any order
    assert np.array_equal(y.astype(np.float64),
                          hd.astype(np.float64) @ w2d.astype(np.float64) + b2d)
    save("qdq_mlp", nodes, {"x": x}, inits, y, dyn=True)


def bad_cases():
    x = np.zeros((2, 3), np.float32)
    save("int16_zp", [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q16")],
         {"x": x}, [init("s", np.float32(1)), init("z", np.int16(0))], x,
         bad="node 'q16' (QuantizeLinear): input 2 ('z', the zero point) is int16")
    save("runtime_scale", [helper.make_node("QuantizeLinear", ["x", "s"], ["y"], name="qs")],
         {"x": x, "s": np.float32([1.0])}, [], x,
         bad="node 'qs' (QuantizeLinear): input 1 ('s', the scale) must be a constant")
    save("zero_scale", [helper.make_node("DequantizeLinear", ["x", "s"], ["y"], name="dz")],
         {"x": np.zeros((2, 3), np.int8)}, [init("s", np.float32(0))], x,
         bad="node 'dz' (DequantizeLinear): input 1 ('s', the scale): element 0 is 0")
    save("dynamic_quantize",
         [helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "ys", "yz"], name="dyn")],
         {"x": x}, [], x, bad="node 'dyn' (DynamicQuantizeLinear): operator "
                              "'DynamicQuantizeLinear' is not supported")
    f8 = TensorProto(name="z", data_type=17, raw_data=b"\x00")  # float8e4m3fn (opset 19)
    save("float8_zp", [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q8")],
         {"x": x}, [init("s", np.float32(1)), f8], x,
         bad="initializer 'z': unsupported tensor element type 17 (float8e4m3fn)")
    save("per_row_a",
         [helper.make_node("QLinearMatMul", ["a", "as", "az", "b", "bs", "bz", "ys", "yz"],
                           ["y"], name="mm")], {"a": np.zeros((2, 3), np.uint8)},
         [init("as", np.float32([1, 1])), init("az", np.uint8([0, 0])),
          init("b", np.zeros((3, 2), np.uint8)), init("bs", np.float32(1)),
          init("bz", np.uint8(0)), init("ys", np.float32(1)), init("yz", np.uint8(0))], x,
         bad="node 'mm' (QLinearMatMul): input 1 ('as', the scale) has shape [2]: expected one "
             "value")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    ref.self_test()
    quantize_cases()
    dequantize_cases()
    qdq_roundtrip_cases()
    qlinear_matmul_cases()
    matmul_integer_cases()
    qlinear_conv_cases()
    conv_integer_cases()
    qdq_mlp()
    bad_cases()
    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(CASES) + "\n")
    with open(os.path.join(OUT, "bad.txt"), "w") as f:
        f.write("\n".join(BAD) + "\n")
    print(f"{len(CASES)} models, {len(BAD)} bad models in {OUT}")
