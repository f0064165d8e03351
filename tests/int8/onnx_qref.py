#!/usr/bin/python3
"""tests/int8/onnx_qref.py — the quantized ONNX operators in NumPy, written from the ONNX
operator definitions (onnx/docs/Operators.md), the reference lathe's import must equal byte for
byte (tests/onnx_quant.sh; docs/onnx.md "Quantized models"):

  QuantizeLinear    y = saturate(round_half_to_even(x / y_scale) + y_zero_point), the division
                    in float32; per tensor or per axis; int8 or uint8 (the zero point's type,
                    uint8 when it is absent)
  DequantizeLinear  y = float32(x - x_zero_point) * x_scale in float32; int8, uint8 or int32
  MatMulInteger     int32 sum of (a - a_zero_point) * (b - b_zero_point) (b per column)
  ConvInteger       the same for a convolution; padded taps are real zeros (x_zero_point)
  QLinearMatMul     the int32 sum, then requantized in float32 as ONNX Runtime does
  QLinearConv       (MlasRequantizeOutput): m = float32(float32(a_scale * b_scale[c]) /
                    y_scale), y = saturate(round_half_to_even(float32(acc) * m) + y_zp);
                    QLinearConv adds its int32 bias to the sum first

The float32 steps are explicit NumPy float32 operations (one rounding each, as in C). ONNX's
own Python reference multiplies the int32 sum by the float32 multiplier in float64 (NumPy's
int32 * float32 promotion); the two agree except where the float32 product rounds across a
half, and lathe follows ONNX Runtime, which is what runs such models.

Every integer intermediate is int64; a sum that would leave int32 raises.
"""
import numpy as np

RANGES = {np.int8: (-128, 127), np.uint8: (0, 255)}


def _along(v, axis, ndim):
    """a per-axis parameter (1-D, or one value) shaped to broadcast along axis"""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis] = v.size
    return v.reshape(shape)


def _saturate(v, dtype):
    lo, hi = RANGES[dtype]
    return np.clip(v, lo, hi).astype(dtype)


def quantize_linear(x, scale, zero_point=None, axis=1, dtype=None):
    """ONNX QuantizeLinear; dtype defaults to the zero point's (uint8 without one)"""
    if dtype is None:
        dtype = zero_point.dtype.type if zero_point is not None else np.uint8
    x = np.asarray(x, dtype=np.float32)
    s = _along(np.asarray(scale, dtype=np.float32), axis, x.ndim)
    zp = 0 if zero_point is None else _along(zero_point, axis, x.ndim).astype(np.int64)
    r = np.rint(x / s)  # float32 division, round half to even
    r = np.clip(r, -1e10, 1e10)  # +-inf saturate; keeps the int64 conversion defined
    return _saturate(r.astype(np.int64) + zp, dtype)


def dequantize_linear(q, scale, zero_point=None, axis=1):
    q = np.asarray(q)
    s = _along(np.asarray(scale, dtype=np.float32), axis, q.ndim)
    zp = 0 if zero_point is None else _along(zero_point, axis, q.ndim).astype(np.int64)
    return ((q.astype(np.int64) - zp).astype(np.float32) * s).astype(np.float32)


def _int32(acc):
    acc = np.asarray(acc, dtype=np.int64)
    if acc.size and (acc.min() < -2**31 or acc.max() >= 2**31):
        raise OverflowError("an int32 sum overflows")
    return acc


def matmul_integer(a, b, a_zp=0, b_zp=0):
    """a [.., M, K] @ b [K, N]; b_zp one value or one per column"""
    a = a.astype(np.int64) - np.asarray(a_zp, dtype=np.int64)
    b = b.astype(np.int64) - np.asarray(b_zp, dtype=np.int64).reshape(1, -1)
    return _int32(a @ b).astype(np.int32)


def conv_integer(x, w, x_zp=0, w_zp=0, pads=None, strides=None, dilations=None, group=1):
    """NCHW (or NCL) convolution of (x - x_zp) and (w - w_zp[m]) in int64"""
    nd = x.ndim - 2
    pads = pads or [0] * (2 * nd)
    strides, dilations = strides or [1] * nd, dilations or [1] * nd
    xc = x.astype(np.int64) - np.asarray(x_zp, dtype=np.int64)
    wc = w.astype(np.int64) - _along(np.asarray(w_zp, dtype=np.int64), 0, w.ndim)
    if nd == 1:  # as 2-D over an axis of length 1
        xc, wc = xc[:, :, None, :], wc[:, :, None, :]
        pads, strides, dilations = [0, pads[0], 0, pads[1]], [1] + strides, [1] + dilations
    xp = np.pad(xc, [(0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])])
    n, c, h, wd = xp.shape
    m, cg, kh, kw = wc.shape
    oh = (h - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wd - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    y = np.zeros((n, m, oh, ow), dtype=np.int64)
    mg = m // group
    for o in range(m):
        g = o // mg
        for i in range(kh):
            for j in range(kw):
                hs, ws = i * dilations[0], j * dilations[1]
                patch = xp[:, g * cg:(g + 1) * cg,
                           hs:hs + strides[0] * (oh - 1) + 1:strides[0],
                           ws:ws + strides[1] * (ow - 1) + 1:strides[1]]
                y[:, o] += np.einsum("nchw,c->nhw", patch, wc[o, :, i, j])
    y = _int32(y)
    return (y[:, :, 0, :] if nd == 1 else y).astype(np.int32)


def _requantize(acc, mult, y_zp, dtype):
    """ONNX Runtime's MlasRequantizeOutput: float32(acc) * m in float32, half to even"""
    v = acc.astype(np.float32) * mult.astype(np.float32)
    return _saturate(np.rint(v).astype(np.int64) + int(y_zp), dtype)


def multipliers(a_scale, b_scale, y_scale):
    p = np.float32(a_scale) * np.asarray(b_scale, dtype=np.float32)
    return (p / np.float32(y_scale)).astype(np.float32)


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    acc = matmul_integer(a, b, a_zp, b_zp)
    m = multipliers(a_scale, b_scale, y_scale).reshape(-1)
    return _requantize(acc, m if m.size > 1 else m.reshape(()), y_zp, y_zp.dtype.type)


def qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, **conv):
    acc = conv_integer(x, w, x_zp, w_zp, **conv).astype(np.int64)
    if bias is not None:
        acc = _int32(acc + bias.astype(np.int64).reshape([1, -1] + [1] * (acc.ndim - 2)))
    m = _along(multipliers(x_scale, w_scale, y_scale), 1, acc.ndim)
    return _requantize(acc, m, y_zp, y_zp.dtype.type)


def self_test():
    """hand-worked cases of the definitions (the half-to-even ties above all)"""
    q = quantize_linear(np.array([0.5, 1.5, 2.5, -0.5, -1.5, 300, -300], np.float32),
                        np.float32(1), np.int8(0))
    assert q.tolist() == [0, 2, 2, 0, -2, 127, -128], q
    q = quantize_linear(np.array([0.25, 0.75], np.float32), np.float32(0.5), np.uint8(128))
    assert q.tolist() == [128, 130] and q.dtype == np.uint8, q
    assert dequantize_linear(np.uint8([0, 255]), np.float32(0.5), np.uint8(128)).tolist() == \
        [-64.0, 63.5]
    y = qlinear_matmul(np.int8([[3, 1]]), 0.5, np.int8(0), np.int8([[1], [0]]), 1.0, np.int8(0),
                       1.0, np.int8(0))
    assert y.tolist() == [[2]], y  # 3 * 0.5 = 1.5 -> 2 (even)
    x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    w = np.ones((1, 1, 3, 3), np.uint8)
    c = conv_integer(x, w, 0, 0, pads=[1, 1, 1, 1])
    assert c[0, 0, 0, 0] == 0 + 1 + 4 + 5 and c[0, 0, 1, 1] == sum(range(0, 11)) - 3 - 7, c
    print("onnx_qref self-test: ok")


if __name__ == "__main__":
    self_test()
