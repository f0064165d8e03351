#!/usr/bin/python3
"""tests/int8/qkernels_ref.py — edge cases of the packed int8 GEMM (docs/int8.md, "Kernels").

    qkernels_ref.py OUTDIR

For each case writes OUTDIR/<case>/qk.lathe (one qdense or qconv2d with baked-in shapes),
weights.safetensors, x.npy, x.bin (the raw int8 bytes, for the aarch64 driver) and y.npy, the
oracle's output (tests/int8/tflite_ref.py); and OUTDIR/cases.txt, one line per case:
`<case> <tile>`, the AVX2 tile the packer must choose (u8: no weight pair can saturate
vpmaddubsw; s16: one can). Fixed seed: the same files every run.

The cases cover K not a multiple of the 4-byte group or of any vector (1, 3, 33, 131),
output columns not a multiple of the 16-column panel (1, 3, 7, 17, 33), one row, batch 64,
inputs of -128 and 127 (the u8 bytes 0 and 255), weights at +-127 and -128, 7-bit weights
at the exact limit where vpmaddubsw cannot saturate (pairs of 64 + 64 against bytes of 255),
and one pair past it (65 + 64) that must send the layer to the s16 tile, scalar (per-tensor)
bias/multiplier/shift, every requantization shift in [-31, 30] with multipliers and biases at
their ends, and convolutions with padding, stride, dilation, 1x1 windows and more
output pixels than one 64-row im2col block.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))
import safetensors_py  # noqa: E402
import qops_ref  # noqa: E402
import tflite_ref as ref  # noqa: E402


def weights(rng, kind, shape):
    if kind == "full":  # the whole int8 range, -128 included, with many +-127
        w = rng.integers(-128, 128, shape)
        w[rng.random(shape) < 0.3] = 127
        w[rng.random(shape) < 0.3] = -127
    elif kind == "limit":  # 7 bits, mostly +-64: pair sums of +-128 at most (255 * 128 fits)
        w = rng.integers(-64, 65, shape)
        w[rng.random(shape) < 0.5] = 64
        w[rng.random(shape) < 0.2] = -64
    else:  # "over": the limit, and one pair (65, 64) that can saturate for bytes near 255
        w = np.full(shape, 64)
        w[rng.random(shape) < 0.3] = -64
    return w.astype(np.int8)


def inputs(rng, shape):
    """random, with rows (dense) or bands of 3 image rows (conv) of 127, every byte 255 after
    the +128 offset (the largest pair sums), and of -128 (byte 0)"""
    x = rng.integers(-128, 128, shape)
    if len(shape) == 2:
        x[0] = 127
        x[-1] = -128 if shape[0] > 1 else x[-1]
    else:
        x[0, :, :3] = 127
        x[-1, :, -3:] = -128
    return x.astype(np.int8)


def requant(acc):
    """per-channel multipliers that spread the outputs (acc: [rows, channels] sums + bias)"""
    spread = abs(acc).mean(axis=0) + 1.0
    vary = 0.5 + (np.arange(acc.shape[1]) % 7) / 6.0  # channels differ even with one row
    w_scales = (60.0 * vary / spread).astype(np.float32)
    mult, shift = ref.output_multipliers(1.0, w_scales, 1.0)
    return mult.astype(np.int32), shift.astype(np.int32)


def dense(rng, m, k, o, kind, scalar=False):
    w = weights(rng, kind, (k, o))
    if kind == "over":
        w[0, o - 1], w[1, o - 1] = 65, 64  # the group's first pair of the last column
    x = inputs(rng, (m, k))
    bias = rng.integers(-30000, 30000, o).astype(np.int32)
    x_zp, out_zp = 5, -7
    if kind == "over":  # the last column: that pair, small weights, row 0 summing to 0
        w[2:, o - 1] = rng.integers(-3, 4, k - 2)
        bias[o - 1] = -int((x[0].astype(np.int64) - x_zp) @ w[:, o - 1].astype(np.int64))
    mult, shift = requant((x.astype(np.int64) - x_zp) @ w.astype(np.int64) + bias)
    if kind == "over":  # scale 1/16: a saturated pair (128 short) moves y[0, -1] by 8 steps
        m1, s1 = ref.output_multipliers(1.0, np.float32([1 / 16]), 1.0)
        mult[o - 1], shift[o - 1] = m1[0], s1[0]
    if scalar:
        bias, mult, shift = bias[:1], mult[:1], shift[:1]
    y = ref.fully_connected(x, x_zp, w, np.broadcast_to(bias, (o,)), np.broadcast_to(mult, (o,)),
                            np.broadcast_to(shift, (o,)), out_zp)
    ops = ("{}, {}, {}".format(int(bias[0]), int(mult[0]), int(shift[0])) if scalar
           else "b, m, s")
    src = (f"model qk(x: i8[{m}, {k}]) {{\n  param w: i8[{k}, {o}] = zeros\n"
           + ("" if scalar else f"  param b: i32[{o}] = zeros\n  param m: i32[{o}] = zeros\n"
              f"  param s: i32[{o}] = zeros\n")
           + f"  output y = qdense(x, w, {ops}, x_zp = {x_zp}, out_zp = {out_zp})\n}}\n")
    params = {"w": w} if scalar else {"w": w, "b": bias, "m": mult, "s": shift}
    return src, params, x, y


def _conv_acc(x, x_zp, w, bias, stride, pad, dil):
    """the int32 sums + bias of the convolution, [pixels, channels] (im2col in NumPy)"""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x.astype(np.int64) - x_zp, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh = (h + 2 * pad - dil * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * pad - dil * (kw - 1) - 1) // stride + 1
    span_h, span_w = stride * (oh - 1) + 1, stride * (ow - 1) + 1
    cols = [xp[:, :, i * dil:i * dil + span_h:stride, j * dil:j * dil + span_w:stride]
            for i in range(kh) for j in range(kw)]
    patches = np.stack(cols, axis=2).reshape(n, c * kh * kw, oh * ow)  # (c, i, j) order
    acc = np.einsum("nkp,ok->npo", patches, w.reshape(o, -1).astype(np.int64))
    return acc.reshape(-1, o) + bias


def dense_requant(rng):
    """the epilogue's extremes: 4096 columns with every shift in [-31, 30], multipliers at
    the ends of [2^30, 2^31), biases that land most results in int8 and some at the int32
    ends (the bias sum saturates), small weights (the sums stay near the bias)"""
    m, k, o = 3, 5, 4096
    w = rng.integers(-2, 3, (k, o)).astype(np.int8)
    x = inputs(rng, (m, k))
    bias, mult, shift = qops_ref.requant_inputs(rng, o)
    # the biases at the int32 ends alone (sums past int32, which lathe saturates, the oracle
    # refuses), the others far enough inside for sums of at most 5 * 255 * 2
    w[:, 4:8] = 0
    w[:, shift > 0] = 0  # a left shift of the sum would leave int32 too: the bias alone there
    inner = np.clip(bias.astype(np.int64), ref.INT32_MIN + 3000, ref.INT32_MAX - 3000)
    bias = np.where(np.arange(o) // 4 == 1, bias, inner).astype(np.int32)
    x_zp, out_zp = 5, -7
    y = ref.fully_connected(x, x_zp, w, bias, mult, shift, out_zp)
    src = (f"model qk(x: i8[{m}, {k}]) {{\n  param w: i8[{k}, {o}] = zeros\n"
           f"  param b: i32[{o}] = zeros\n  param m: i32[{o}] = zeros\n"
           f"  param s: i32[{o}] = zeros\n"
           f"  output y = qdense(x, w, b, m, s, x_zp = {x_zp}, out_zp = {out_zp})\n}}\n")
    return src, {"w": w, "b": bias, "m": mult, "s": shift}, x, y


def conv(rng, n, c, h, wd, o, kh, kw, kind, stride, pad, dil):
    w = weights(rng, kind, (o, c, kh, kw))
    x = inputs(rng, (n, c, h, wd))
    bias = rng.integers(-30000, 30000, o).astype(np.int32)
    x_zp, out_zp = -9, 3
    mult, shift = requant(_conv_acc(x, x_zp, w, bias, stride, pad, dil))
    lo = out_zp  # a fused ReLU clamp
    y = ref.conv2d(x, x_zp, w, bias, mult, shift, out_zp, stride=stride, padding=pad,
                   dilation=dil, act_min=lo)
    oh, ow = y.shape[2], y.shape[3]
    src = (f"model qk(x: i8[{n}, {c}, {h}, {wd}]) {{\n  param w: i8[{o}, {c}, {kh}, {kw}] = zeros\n"
           f"  param b: i32[{o}] = zeros\n  param m: i32[{o}] = zeros\n"
           f"  param s: i32[{o}] = zeros\n"
           f"  output y = qconv2d(x, w, b, m, s, stride = {stride}, padding = {pad}, "
           f"dilation = {dil}, x_zp = {x_zp}, out_zp = {out_zp}, qmin = {lo})\n}}\n")
    assert y.shape == (n, o, oh, ow)
    return src, {"w": w, "b": bias, "m": mult, "s": shift}, x, y


CASES = [  # name, expected AVX2 tile, builder
    ("d_k1", "u8", lambda r: dense(r, 5, 1, 3, "full")),  # one weight per pair: cannot saturate
    ("d_row1_k3_o17", "s16", lambda r: dense(r, 1, 3, 17, "full")),
    ("d_k33_o7_limit", "u8", lambda r: dense(r, 7, 33, 7, "limit")),
    ("d_b64_k131_o33", "s16", lambda r: dense(r, 64, 131, 33, "full")),
    ("d_b64_k130_o16_limit", "u8", lambda r: dense(r, 64, 130, 16, "limit")),
    ("d_k64_o9_over", "s16", lambda r: dense(r, 6, 64, 9, "over")),
    ("d_requant_o4096", "u8", dense_requant),
    ("d_scalar_k21_o1", "s16", lambda r: dense(r, 3, 21, 1, "full", scalar=True)),
    ("c_s2_p1", "s16", lambda r: conv(r, 2, 3, 9, 7, 5, 3, 3, "full", 2, 1, 1)),
    ("c_1x1_limit", "u8", lambda r: conv(r, 1, 17, 5, 5, 17, 1, 1, "limit", 1, 0, 1)),
    ("c_pix144_d2", "s16", lambda r: conv(r, 3, 8, 12, 12, 19, 3, 3, "full", 1, 2, 2)),
    # the panel routines' stores: 16-byte rows with a last block of 2 rows (qdense), and the
    # first convolution of a CNN (one channel, K = 9 read as 12, 32 output channels) over
    # 49 and 100 pixels (a last block of 1 and of 4 rows), padded and not
    ("d_m6_k40_o32", "s16", lambda r: dense(r, 6, 40, 32, "full")),
    ("c_k9_o32", "s16", lambda r: conv(r, 2, 1, 9, 9, 32, 3, 3, "full", 1, 0, 1)),
    ("c_k9_o32_p1_limit", "u8", lambda r: conv(r, 1, 1, 10, 10, 32, 3, 3, "limit", 1, 1, 1)),
]


def avx2_tile(w_ko):
    """the tile the packer must choose for B = w_ko [K, O]: s16 when some pair (B[2j, o],
    B[2j + 1, o]) can leave int16 for bytes in [0, 255] (vpmaddubsw pairs them), else u8"""
    b = w_ko.astype(np.int64)
    if b.shape[0] % 2:
        b = np.vstack([b, np.zeros((1, b.shape[1]), np.int64)])
    lo, hi = b[0::2], b[1::2]
    pos = np.maximum(lo, 0) + np.maximum(hi, 0)
    neg = np.minimum(lo, 0) + np.minimum(hi, 0)
    return "s16" if ((255 * pos > 32767) | (255 * neg < -32768)).any() else "u8"


def main(out):
    rng = np.random.default_rng(2019)
    os.makedirs(out, exist_ok=True)
    lines = []
    for name, tile, build in CASES:
        src, params, x, y = build(rng)
        w = params["w"]
        got = avx2_tile(w if w.ndim == 2 else w.reshape(w.shape[0], -1).T)
        assert got == tile, f"{name}: the weights make the {got} tile, the case wants {tile}"
        assert len(np.unique(y)) > min(8, y.size // 2), f"{name}: output too uniform"
        d = os.path.join(out, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "qk.lathe"), "w") as f:
            f.write(f"# {name}: generated by tests/int8/qkernels_ref.py\n" + src)
        safetensors_py.save(os.path.join(d, "weights.safetensors"), params)
        np.save(os.path.join(d, "x.npy"), x)
        x.tofile(os.path.join(d, "x.bin"))
        np.save(os.path.join(d, "y.npy"), y.astype(np.int8))
        lines.append(f"{name} {tile} {x.size} {y.size}\n")
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.writelines(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
