#!/usr/bin/python3
"""tests/int8/tflite_ref.py — the int8 arithmetic of TFLite's reference kernels, in NumPy.

This is the oracle of issue #19 (docs/int8.md): the generated integer C must give exactly
these bytes on every quantized op and on whole models. It follows the contract that
TFLite's `reference_integer_ops` and CMSIS-NN implement (not their code):

  * weights int8 in [-127, 127], symmetric (zero point 0), per output channel or per tensor;
  * activations int8 in [-128, 127], asymmetric per tensor (scale, zero point);
  * bias int32 at scale input_scale * weight_scale[c], zero point 0;
  * requantization of an int32 accumulator by a Q31 multiplier M and a shift s
    (real = M * 2^(s - 31)): a saturating rounding doubling high multiply, then a rounding
    (half away from zero) arithmetic right shift — TFLite's default double rounding;
  * float -> int8 by round-half-away-from-zero of x / scale in float32, plus the zero point,
    clamped; int8 -> float as float32(scale * (q - zero_point)) with the product in float64.

Layouts follow lathe (NCHW, weights [O, C, kh, kw], dense weights [I, O] as `x @ w`); the
arithmetic is per element, so the layout does not change any result.

Every integer intermediate is an int64 NumPy array; a value that would overflow int32 where
the C kernels hold it in int32 raises, so an oracle run also proves the C cannot overflow.

Run `tests/int8/tflite_ref.py --self-test` to check the oracle against exact rational
arithmetic (Python's Fraction) on random and edge-case inputs.
"""
import math
import sys
from fractions import Fraction

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT8_MIN, INT8_MAX = -128, 127
WEIGHT_MIN, WEIGHT_MAX = -127, 127


def _i64(x):
    return np.asarray(x, dtype=np.int64)


def _check_i32(x, what):
    x = _i64(x)
    if x.size and (x.min() < INT32_MIN or x.max() > INT32_MAX):
        raise OverflowError(f"{what} leaves int32: [{x.min()}, {x.max()}]")
    return x


def quantize_multiplier(real):
    """real >= 0 (a Python float, i.e. double) -> (M, shift) with real ~= M * 2^(shift - 31),
    M in [2^30, 2^31) or 0, as TFLite's QuantizeMultiplier: frexp, round half away from zero,
    renormalize 2^31, flush tiny multipliers to zero."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"multiplier must be finite and >= 0, got {real!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # real = q * 2^shift, q in [0.5, 1)
    q_fixed = _round_half_away(q * (1 << 31))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"multiplier {real!r} is too large for a Q31 multiplier")
    return int(q_fixed), int(shift)


def _round_half_away(v):
    """std::round on a Python float."""
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def round_half_away(x):
    """std::round elementwise (NumPy's np.round rounds half to even: not the contract).
    Exact in x's own precision: x - trunc(x) is exact, so no addition of 0.5 can round up
    (floor(|x| + 0.5) gives 1 for the float32 0.49999997 and 8388610 for 8388609)."""
    x = np.asarray(x)
    t = np.trunc(x)
    return t + np.sign(x) * (np.abs(x - t) >= x.dtype.type(0.5))


def saturating_rounding_doubling_high_mul(a, b):
    """gemmlowp's SaturatingRoundingDoublingHighMul: round((a * b * 2) / 2^32), the one
    overflow case (INT32_MIN * INT32_MIN) saturating to INT32_MAX."""
    a, b = np.broadcast_arrays(_check_i32(a, "srdhm a"), _check_i32(b, "srdhm b"))
    ab = a * b  # exact in int64: |a*b| <= 2^62
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))  # C division: truncates toward zero
    overflow = (a == b) & (a == INT32_MIN)
    return np.where(overflow, np.int64(INT32_MAX), high)


def rounding_divide_by_pot(x, exponent):
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    x = _check_i32(x, "rdbpot x")
    e = _i64(exponent)
    if e.size and (e.min() < 0 or e.max() > 31):
        raise ValueError("rounding_divide_by_pot: exponent outside [0, 31]")
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, multiplier, shift):
    """TFLite's MultiplyByQuantizedMultiplier (double rounding): a left shift for shift > 0,
    the high multiply, then the rounding right shift for shift < 0. multiplier and shift
    broadcast against x (per-channel requantization)."""
    x = _check_i32(x, "requantize input")
    m, s = _i64(multiplier), _i64(shift)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = _check_i32(x * (np.int64(1) << left), "requantize left shift")
    return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m), right)


def quantize(x, scale, zero_point, qmin=INT8_MIN, qmax=INT8_MAX, axis=None):
    """float32 -> int8: clamp(round_half_away(x / scale) + zp); the division in float32.
    axis: the per-channel axis of scale/zero_point (None: per tensor)."""
    x = np.asarray(x, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    zp = _i64(zero_point)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    # clipped to +-2^40 first: a float beyond int64 has no defined conversion (1e30 / 0.1)
    r = np.clip(round_half_away(x / scale), -(2.0 ** 40), 2.0 ** 40)
    return np.clip(r.astype(np.int64) + zp, qmin, qmax)


def dequantize(q, scale, zero_point, axis=None):
    """int8 -> float32: float32(scale * (q - zp)), the product in float64 as TFLite does."""
    q = _i64(q)
    scale = np.asarray(scale, dtype=np.float64)
    zp = _i64(zero_point)
    if axis is not None:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (scale * (q - zp).astype(np.float64)).astype(np.float32)


def choose_params(lo, hi, qmin=INT8_MIN, qmax=INT8_MAX):
    """An observed activation range [lo, hi] -> (scale, zero point) as TFLite's converter
    does: the range widened to contain 0, scale = (hi - lo) / 255, the zero point the
    nudged integer where real 0 lands. Raises on a degenerate (empty or non-finite) range."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"non-finite range [{lo}, {hi}]")
    if hi == lo:
        raise ValueError("degenerate range: every observed value is 0")
    scale = (hi - lo) / (qmax - qmin)
    zp_real = qmin - lo / scale
    zp = int(min(max(_round_half_away(zp_real), qmin), qmax))
    return float(np.float32(scale)), zp


def symmetric_weight_scales(w, axis=0, wmax=WEIGHT_MAX):
    """Per-output-channel symmetric scales: max|w| / wmax over every axis but `axis`
    (a channel of zeros gets scale 1, so its weights quantize to 0). wmax 127, or 63 for
    7-bit weights (a reduced range, as FBGEMM and oneDNN use on AVX2)."""
    w = np.asarray(w, dtype=np.float32)
    red = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.max(np.abs(w), axis=red) if red else np.abs(w)
    return np.where(amax > 0, amax / np.float32(wmax), np.float32(1)).astype(np.float32)


def quantize_bias(b, input_scale, weight_scales):
    """bias -> int32 at scale input_scale * weight_scale[c] (computed in double)."""
    s = np.float64(input_scale) * np.asarray(weight_scales, dtype=np.float64)
    q = round_half_away(np.asarray(b, dtype=np.float64) / s).astype(np.int64)
    return _check_i32(q, "quantized bias")


def activation_range(kind, out_scale, out_zp):
    """The int8 clamp of a fused activation: none, relu or relu6."""
    if kind == "none":
        return INT8_MIN, INT8_MAX
    lo = max(INT8_MIN, out_zp)
    if kind == "relu":
        return lo, INT8_MAX
    if kind == "relu6":
        return lo, min(INT8_MAX, out_zp + _round_half_away(6.0 / out_scale))
    raise ValueError(f"unknown activation {kind!r}")


def output_multipliers(input_scale, weight_scales, output_scale):
    """Per-channel (M, shift) for real = input_scale * weight_scale[c] / output_scale."""
    pairs = [quantize_multiplier(float(input_scale) * float(ws) / float(output_scale))
             for ws in np.atleast_1d(weight_scales)]
    return _i64([p[0] for p in pairs]), _i64([p[1] for p in pairs])


def _requantize_out(acc, mult, shift, out_zp, act_min, act_max):
    out = multiply_by_quantized_multiplier(acc, mult, shift) + out_zp
    return np.clip(out, act_min, act_max)


def fully_connected(x, x_zp, w, bias, mult, shift, out_zp, act_min=INT8_MIN, act_max=INT8_MAX):
    """int8 dense: x [N, I], w [I, O] int8 (zero point 0), bias int32 [O] or None,
    per-channel (mult, shift) over O. acc = sum (x - x_zp) * w + bias, in int32."""
    x, w = _i64(x), _i64(w)
    acc = (x - x_zp) @ w
    if bias is not None:
        acc = acc + _i64(bias)
    acc = _check_i32(acc, "dense accumulator")
    return _requantize_out(acc, mult, shift, out_zp, act_min, act_max)


def conv2d(x, x_zp, w, bias, mult, shift, out_zp, stride=1, padding=0, dilation=1,
           act_min=INT8_MIN, act_max=INT8_MAX):
    """int8 convolution, NCHW, w [O, C, kh, kw] (groups 1), zero padding in *real* terms:
    padded taps contribute nothing (TFLite skips them), i.e. they read x_zp."""
    x, w = _i64(x), _i64(w)
    n, c, h, wd = x.shape
    o, c2, kh, kw = w.shape
    assert c == c2, "conv2d: channel mismatch"
    xs = np.pad(x - x_zp, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    acc = np.zeros((n, o, oh, ow), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xs[:, :, i * dilation: i * dilation + stride * (oh - 1) + 1: stride,
                       j * dilation: j * dilation + stride * (ow - 1) + 1: stride]
            acc += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if bias is not None:
        acc = acc + _i64(bias).reshape(1, -1, 1, 1)
    acc = _check_i32(acc, "conv accumulator")
    m = _i64(mult).reshape(1, -1, 1, 1) if np.ndim(mult) else mult
    s = _i64(shift).reshape(1, -1, 1, 1) if np.ndim(shift) else shift
    return _requantize_out(acc, m, s, out_zp, act_min, act_max)


def _pair(v):
    return (v, v) if np.ndim(v) == 0 else tuple(v)


def _pool_windows(x, kernel, stride, padding, dilation):
    """Every tap of every window of NCHW x: (values, inside), each [kh * kw, N, C, oh, ow].
    kernel, stride and dilation are an int or (h, w); padding an int or (top, left, bottom,
    right); padded taps are not inside."""
    x = _i64(x)
    (kh, kw), (sh, sw), (dh, dw) = _pair(kernel), _pair(stride), _pair(dilation)
    t, l, b, r = (padding,) * 4 if np.ndim(padding) == 0 else padding
    n, c, h, w = x.shape
    oh = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (w + l + r - dw * (kw - 1) - 1) // sw + 1
    xp = np.zeros((n, c, h + t + b, w + l + r), dtype=np.int64)
    xp[:, :, t: t + h, l: l + w] = x
    mask = np.zeros(xp.shape, dtype=bool)
    mask[:, :, t: t + h, l: l + w] = True
    vals, inside = [], []
    for i in range(kh):
        for j in range(kw):
            sl = (slice(None), slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                  slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))
            vals.append(xp[sl])
            inside.append(mask[sl])
    return np.stack(vals), np.stack(inside)


def max_pool2d(x, kernel, stride=None, padding=0, dilation=1, act_min=INT8_MIN,
               act_max=INT8_MAX):
    """int8 max pooling: the max of each window's taps inside the image (TFLite skips the
    padding; INT8_MIN if there are none), clamped; scale/zp unchanged."""
    vals, inside = _pool_windows(x, kernel, kernel if stride is None else stride, padding,
                                 dilation)
    out = np.where(inside, vals, INT8_MIN).max(axis=0)
    return np.clip(out, act_min, act_max)


def avg_pool2d(x, kernel, stride=None, padding=0, act_min=INT8_MIN, act_max=INT8_MAX):
    """int8 average pooling (TFLite's AveragePool): the sum of each window's taps inside the
    image divided by their count, rounded half away from zero in integers, clamped;
    scale/zp unchanged."""
    vals, inside = _pool_windows(x, kernel, kernel if stride is None else stride, padding, 1)
    s = _check_i32(np.where(inside, vals, 0).sum(axis=0), "average pool sum")
    cnt = inside.sum(axis=0).astype(np.int64)
    if cnt.size and cnt.min() < 1:
        raise ValueError("avg_pool2d: a window lies wholly in the padding")
    avg = np.where(s > 0, (s + cnt // 2) // cnt, -((-s + cnt // 2) // cnt))
    return np.clip(avg, act_min, act_max)


def add_params(s1, s2, s_out):
    """TFLite's int8 ADD parameters: both inputs rescaled to 2 * max(s1, s2) with 20 bits
    of headroom, the sum rescaled to the output."""
    left_shift = 20
    twice_max = 2.0 * max(float(s1), float(s2))
    m1 = quantize_multiplier(float(s1) / twice_max)
    m2 = quantize_multiplier(float(s2) / twice_max)
    mo = quantize_multiplier(twice_max / ((1 << left_shift) * float(s_out)))
    return left_shift, m1, m2, mo


def add(a, a_zp, b, b_zp, params, out_zp, act_min=INT8_MIN, act_max=INT8_MAX):
    """int8 elementwise add (broadcasting), TFLite's AddElementwise arithmetic."""
    left_shift, (m1, e1), (m2, e2), (mo, eo) = params
    a1 = _check_i32((_i64(a) - a_zp) << left_shift, "add input 1")
    b1 = _check_i32((_i64(b) - b_zp) << left_shift, "add input 2")
    sa = multiply_by_quantized_multiplier(a1, m1, e1)
    sb = multiply_by_quantized_multiplier(b1, m2, e2)
    raw = multiply_by_quantized_multiplier(_check_i32(sa + sb, "add sum"), mo, eo) + out_zp
    return np.clip(raw, act_min, act_max)


# ---- self-test: the oracle against exact rational arithmetic ------------------------------

def _exact_mbqm(x, m, s):
    """The same double rounding, computed with Fractions (no int64 tricks)."""
    xs = x * 2 ** max(s, 0)
    prod = Fraction(xs * m * 2, 2 ** 32)
    high = _frac_round_half_away(prod) if not (xs == m == INT32_MIN) else INT32_MAX
    r = max(-s, 0)
    return _frac_round_half_away(Fraction(high, 2 ** r))


def _frac_round_half_away(f):
    a = abs(f)
    r = math.floor(a + Fraction(1, 2))
    return r if f >= 0 else -r


def _self_test():
    rng = np.random.default_rng(19)
    failures = 0

    def check(cond, what):
        nonlocal failures
        if not cond:
            failures += 1
            print("FAIL:", what)

    # rounding: half away from zero, never half to even
    check(list(rounding_divide_by_pot(_i64([3, -3, 5, -5, 6, -6, 1, -1]), 1)) ==
          [2, -2, 3, -3, 3, -3, 1, -1], "rounding_divide_by_pot halves")
    check(list(round_half_away(np.float32([0.5, -0.5, 1.5, 2.5, -2.5]))) ==
          [1, -1, 2, 3, -3], "round_half_away")
    check(list(round_half_away(np.float32([0.49999997, -0.49999997, 8388609, -8388609]))) ==
          [0, 0, 8388609, -8388609], "round_half_away just below a half and at 2^23 + 1")
    check(int(round_half_away(np.float64(0.49999999999999994))) == 0, "round_half_away f64")
    check(int(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN)) == INT32_MAX,
          "srdhm saturation")
    check(list(quantize(np.float32([0.5, -0.5, 1000, -1000]), 1.0, 0)) == [1, -1, 127, -128],
          "quantize rounding and clamping")
    check(list(quantize(np.float32([1e30, -1e30, 3e38]), 0.01, 5)) == [127, -128, 127],
          "quantize clamps values beyond int64")
    # the multiplier: exact for powers of two, within 2^-31 relative otherwise
    check(quantize_multiplier(0.5) == (1 << 30, 0), "quantize_multiplier(0.5)")
    check(quantize_multiplier(1.0) == (1 << 30, 1), "quantize_multiplier(1.0)")
    check(quantize_multiplier(1e-12) == (0, 0), "quantize_multiplier flushes tiny values")
    for real in rng.uniform(1e-6, 4.0, 2000):
        m, s = quantize_multiplier(float(real))
        check(abs(m * 2.0 ** (s - 31) - real) <= real * 2.0 ** -30,
              f"quantize_multiplier({real}) accuracy")
    # requantization against Fractions, random and extreme accumulators
    xs = list(rng.integers(-(1 << 24), 1 << 24, 3000)) + [0, 1, -1, INT32_MAX, INT32_MIN + 1]
    for x in xs:
        real = float(rng.uniform(1e-5, 0.9))
        m, s = quantize_multiplier(real)
        got = int(multiply_by_quantized_multiplier(int(x), m, s))
        check(got == _exact_mbqm(int(x), m, s), f"mbqm({x}, {m}, {s})")
    # a dense layer: the integer result is within one step of the float computation
    x = rng.integers(-128, 128, (5, 12))
    w = rng.integers(-127, 128, (12, 4))
    bias = rng.integers(-500, 500, 4)
    in_s, out_s, ws = 0.02, 0.05, np.float32([0.01, 0.02, 0.005, 0.03])
    mult, shift = output_multipliers(in_s, ws, out_s)
    got = fully_connected(x, 3, w, bias, mult, shift, -2)
    ref = ((x - 3) @ w + bias) * (in_s * ws.astype(np.float64)) / out_s - 2
    check(np.all(np.abs(got - np.clip(ref, -128, 127)) <= 1), "dense within one step")
    # a convolution equals the dense layer on im2col patches
    xc = rng.integers(-128, 128, (2, 3, 5, 5))
    wc = rng.integers(-127, 128, (4, 3, 3, 3))
    m4, s4 = output_multipliers(0.02, ws, 0.5)
    conv = conv2d(xc, 1, wc, None, m4, s4, 0, padding=1)
    cols = np.zeros((2, 5, 5, 27), dtype=np.int64)
    xp = np.pad(xc - 1, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(5):
        for j in range(5):
            cols[:, i, j] = xp[:, :, i:i + 3, j:j + 3].reshape(2, -1)
    dense = fully_connected(cols.reshape(-1, 27) + 1, 1, wc.reshape(4, -1).T, None, m4, s4, 0)
    check(np.array_equal(conv, dense.reshape(2, 5, 5, 4).transpose(0, 3, 1, 2)),
          "conv2d equals im2col dense")
    # add: within one step of the float sum
    a, b = rng.integers(-128, 128, 100), rng.integers(-128, 128, 100)
    p = add_params(0.03, 0.07, 0.1)
    s = add(a, 5, b, -7, p, 1)
    ref = ((a - 5) * 0.03 + (b + 7) * 0.07) / 0.1 + 1
    check(np.all(np.abs(s - np.clip(ref, -128, 127)) <= 1), "add within one step")
    # pools: against a direct loop over the taps inside the image (padding 1, stride 2)
    xq = rng.integers(-128, 128, (2, 3, 6, 7))
    mx, av = max_pool2d(xq, 3, 2, padding=1), avg_pool2d(xq, 3, 2, padding=1)
    for (b_, c_, i_, j_) in np.ndindex(*mx.shape):
        taps = [xq[b_, c_, h, v] for h in range(2 * i_ - 1, 2 * i_ + 2)
                for v in range(2 * j_ - 1, 2 * j_ + 2) if 0 <= h < 6 and 0 <= v < 7]
        exact = _frac_round_half_away(Fraction(int(sum(taps)), len(taps)))
        check(mx[b_, c_, i_, j_] == max(taps) and av[b_, c_, i_, j_] == exact,
              f"pools at {(b_, c_, i_, j_)}")
    check(list(avg_pool2d(_i64([[[[1, 2], [0, 0]], [[-1, -2], [0, 0]]]]), 2).ravel()) ==
          [1, -1], "avg_pool2d rounds 3/4 and -3/4 half away from zero")
    # an int32 overflow is reported, not wrapped
    try:
        fully_connected(np.full((1, 70000), 127), -128, np.full((70000, 1), 127), None,
                        [1 << 30], [0], 0)
        check(False, "accumulator overflow raises")
    except OverflowError:
        pass
    print("tflite_ref self-test:", "FAILED" if failures else "ok", f"({failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        with np.errstate(over="ignore", invalid="ignore"):  # the infinities of the edge cases
            sys.exit(_self_test())
    print(__doc__)
    sys.exit(2)
