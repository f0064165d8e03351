#!/usr/bin/python3
"""tests/int8/tflite_softmax.py — TFLite's int8 softmax and int8 concatenation, the oracle of
lathe's qsoftmax and qconcat (issue #19, docs/int8.md).

Softmax follows TFLite's reference kernel (reference_ops::Softmax, int8 in, int8 out), whose
arithmetic is gemmlowp's fixed point (its contract, not its code):

  * parameters (softmax_params): PreprocessSoftmaxScaling of beta * input_scale with 5
    integer bits, min(beta * s * 2^26, 2^31 - 1) as a Q31 multiplier > 1 and a left shift,
    diff_min = -CalculateInputRadius(5, left_shift) = -floor(31 * 2^26 / 2^left_shift);
  * per row of the last axis: the row's max; each diff = x - max >= diff_min is scaled by
    srdhm(diff << left_shift, multiplier) into Q5.26, its exp by exp_on_negative_values
    (Q0.31: a Taylor polynomial on [-1/4, 0) times exp(-2^k) for each set bit of the rest),
    the exps summed in Q12.19 (each rounded right by 12 bits);
  * the reciprocal of the sum: its leading zeros z, (sum << z) - 2^31 as x in [0, 1),
    one_over_one_plus_x_for_x_in_0_1 (three Newton-Raphson steps in Q2.29);
  * each output rounding_divide_by_pot(srdhm(reciprocal, exp), 12 - z + 23) - 128, clamped;
    diffs below diff_min give -128. The output's scale is 1/256, its zero point -128.

TFLite checks that the last exponent is at most 31 (a row sum below 512, always the case with
at most 511 elements per row); lathe rounds exactly beyond (the value is below half a step:
-128), so this oracle does too.

Concatenation of int8 tensors with different parameters (requantize, concat,
concat_params): TFLite's int8 CONCATENATION copies, and requires every input to have the
output's scale and zero point; its converter puts a QUANTIZE (int8 -> int8: TFLite's
Requantize) before each input that has other parameters. The output's parameters are
choose_params of the union of the inputs' ranges; requantize(q) is
clamp(mbqm(q - zp_in, M, sh) + zp_out) with (M, sh) = quantize_multiplier(double(s_in) /
double(s_out)); an input with the output's parameters is copied.

Every intermediate is a Python int checked to stay inside int32 where the C holds an int32.
Run `tests/int8/tflite_softmax.py --self-test` to compare with float softmax and concat.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tflite_ref as ref  # noqa: E402

INT32_MIN, INT32_MAX = ref.INT32_MIN, ref.INT32_MAX
SCALED_DIFF_BITS = 5  # Q5.26 input to exp
ACCUM_BITS = 12  # Q12.19 sum of exps
MAX_DEPTH = 4095  # 4096 exps of 2^19 each would leave int32


def _i32(v, what):
    if not INT32_MIN <= v <= INT32_MAX:
        raise OverflowError(f"{what} leaves int32: {v}")
    return v


def srdhm(a, b):
    return int(ref.saturating_rounding_doubling_high_mul(_i32(a, "srdhm"), _i32(b, "srdhm")))


def rdbpot(x, e):
    """RoundingDivideByPOT, exact half away from zero for any e >= 0 (TFLite: e <= 31)."""
    _i32(x, "rdbpot")
    mask = (1 << e) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if (x & mask) > threshold else 0)


def sat_shl(x, e):
    """SaturatingRoundingMultiplyByPOT<e> for e > 0: x * 2^e saturated to int32."""
    return max(INT32_MIN, min(INT32_MAX, x << e))


def softmax_params(input_scale, beta=1.0):
    """(multiplier, left_shift, diff_min) of PreprocessSoftmaxScaling and
    CalculateInputRadius; input_scale and beta are float32 values widened to double."""
    real = min(float(np.float32(beta)) * float(np.float32(input_scale)) *
               (1 << (31 - SCALED_DIFF_BITS)), (1 << 31) - 1.0)
    if not real > 1.0:
        raise ValueError(f"softmax: beta * input_scale * 2^26 = {real} must be > 1")
    m, shift = ref.quantize_multiplier(real)
    if shift < 0:
        raise ValueError(f"softmax: left shift {shift} < 0")
    radius = math.floor(((1 << SCALED_DIFF_BITS) - 1) * (1 << (31 - SCALED_DIFF_BITS)) /
                        (1 << shift))
    return m, shift, -radius


def exp_on_interval(a):
    """exp(a) for a in [-1/4, 0), Q0.31 in and out: the Taylor expansion around -1/8."""
    x = _i32(a + (1 << 28), "exp x")
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = rdbpot(x4, 2)
    poly = rdbpot(_i32(srdhm(_i32(x4_over_4 + x3, "exp"), 715827883) + x2, "exp"), 1)
    c = 1895147668  # exp(-1/8)
    return _i32(c + srdhm(c, _i32(x + poly, "exp")), "exp result")


BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
          (2, 39332535), (3, 720401), (4, 242))  # exp(-2^k) in Q0.31


def exp_on_negative_values(a):
    """exp(a) for a <= 0 in Q5.26, result Q0.31."""
    quarter = 1 << 24
    a_mod = (a & (quarter - 1)) - quarter  # in [-1/4, 0)
    result = exp_on_interval(sat_shl(a_mod, SCALED_DIFF_BITS))
    remainder = a_mod - a
    for k, mult in BARREL:
        if remainder & (1 << (26 + k)):
            result = srdhm(result, mult)
    return INT32_MAX if a == 0 else result


def one_over_one_plus_x(a):
    """1 / (1 + a) for a in [0, 1) Q0.31, the result Q0.31 (Newton-Raphson in Q2.29)."""
    s = a + INT32_MAX
    half_den = _i32((s + 1) // 2 if s >= 0 else -((-s + 1) // 2), "half denominator")
    x = _i32(1515870810 + srdhm(half_den, -1010580540), "newton x")  # 48/17 - 32/17 d
    for _ in range(3):
        one_minus = _i32((1 << 29) - srdhm(half_den, x), "newton")
        x = _i32(x + sat_shl(srdhm(x, one_minus), 2), "newton x")
    return sat_shl(x, 1)


def softmax_row(row, mult, left_shift, diff_min):
    top = max(int(v) for v in row)
    exps = []
    for v in row:
        diff = int(v) - top
        if diff < diff_min:
            exps.append(None)
            continue
        scaled = srdhm(_i32(diff * (1 << left_shift), "scaled diff"), mult)
        exps.append(exp_on_negative_values(scaled))
    total = 0
    for e in exps:
        if e is not None:
            total = _i32(total + rdbpot(e, ACCUM_BITS), "sum of exps")
    z = 32 - total.bit_length()  # leading zeros of a positive int32
    recip = one_over_one_plus_x(((total << z) & 0xFFFFFFFF) - (1 << 31))
    shift = ACCUM_BITS - z + 31 - 8
    return [-128 if e is None else max(-128, min(127, rdbpot(srdhm(recip, e), shift) - 128))
            for e in exps]


def softmax(x, mult, left_shift, diff_min):
    """int8 softmax over the last axis; the result's scale is 1/256, zero point -128."""
    x = np.asarray(x)
    if x.shape[-1] > MAX_DEPTH:
        raise ValueError(f"softmax: {x.shape[-1]} elements per row, at most {MAX_DEPTH}")
    rows = x.reshape(-1, x.shape[-1])
    out = [softmax_row(r, mult, left_shift, diff_min) for r in rows]
    return np.array(out, dtype=np.int64).reshape(x.shape)


def requantize(q, in_scale, in_zp, out_scale, out_zp):
    """TFLite's int8 -> int8 QUANTIZE: (M, sh) of s_in / s_out, then the requantization of
    q - zp_in; returns (values, M, sh)"""
    m, sh = ref.quantize_multiplier(float(np.float32(in_scale)) / float(np.float32(out_scale)))
    v = ref.multiply_by_quantized_multiplier(np.asarray(q, dtype=np.int64) - in_zp, m, sh)
    return np.clip(v + out_zp, -128, 127), m, sh


def concat(inputs, params, out_scale, out_zp, axis):
    """int8 concatenation: inputs with the output's (scale, zp) copied, others requantized"""
    parts = []
    for q, (s, zp) in zip(inputs, params):
        same = np.float32(s) == np.float32(out_scale) and zp == out_zp
        parts.append(np.asarray(q, dtype=np.int64) if same else
                     requantize(q, s, zp, out_scale, out_zp)[0])
    return np.concatenate(parts, axis=axis)


def concat_params(ranges):
    """the output's (scale, zp) of a concat: choose_params of the union of the inputs'
    float ranges [(lo, hi), ...]"""
    return ref.choose_params(min(r[0] for r in ranges), max(r[1] for r in ranges))


def _self_test():
    rng = np.random.default_rng(19)
    failures = 0

    def check(cond, what):
        nonlocal failures
        if not cond:
            failures += 1
            print("FAIL:", what)

    # exp against math.exp, over the whole Q5.26 range
    for a in list(rng.integers(-(31 << 26), 1, 2000)) + [0, -1, -(1 << 24), -(31 << 26)]:
        got = exp_on_negative_values(int(a)) / 2.0 ** 31
        check(abs(got - math.exp(int(a) / 2.0 ** 26)) < 2e-8 + 1e-6 * math.exp(int(a) / 2.0 ** 26),
              f"exp({a})")
    for a in list(rng.integers(0, 1 << 31, 2000)) + [0, INT32_MAX]:
        got = one_over_one_plus_x(int(a)) / 2.0 ** 31
        check(abs(got - 1 / (1 + int(a) / 2.0 ** 31)) < 1e-8, f"1 / (1 + {a})")
    # the parameters of a common scale
    m, ls, dm = softmax_params(np.float32(0.1))
    want = ref.quantize_multiplier(float(np.float32(0.1)) * 2 ** 26)
    check((m, ls) == want and dm == -math.floor(31 * 2 ** 26 / 2 ** want[1]),
          f"softmax_params(0.1) = {(m, ls, dm)}")
    # int8 softmax within one step of float softmax (output scale 1/256, zp -128)
    for scale, depth in ((0.1, 10), (0.05, 37), (0.5, 5), (0.02, 300), (1.0, 600)):
        s = np.float32(scale)
        m, ls, dm = softmax_params(s)
        x = rng.integers(-128, 128, (8, depth))
        got = softmax(x, m, ls, dm)
        f = x.astype(np.float64) * float(s)
        p = np.exp(f - f.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        want = np.clip(np.round(p * 256) - 128, -128, 127)
        check(np.abs(got - want).max() <= 1, f"softmax({scale}, {depth}) within one step: "
              f"{np.abs(got - want).max()}")
    # a row of equal values: each 1/depth; one large value: 1.0 -> 127
    m, ls, dm = softmax_params(np.float32(0.1))
    check(list(softmax([[5, 5, 5, 5]], m, ls, dm)[0]) == [-64] * 4, "uniform row")
    check(softmax([[127, -128, -128]], m, ls, dm)[0, 0] == 127, "one-hot row saturates")
    # concat: copied when the parameters are equal, within half a step otherwise
    a = rng.integers(-128, 128, (2, 3))
    b = rng.integers(-128, 128, (2, 4))
    got = concat([a, b], [(0.1, 3), (0.05, -7)], 0.1, 3, axis=1)
    check(np.array_equal(got[:, :3], a), "concat copies equal parameters")
    want = np.clip(np.round((b + 7) * 0.05 / 0.1) + 3, -128, 127)
    check(np.abs(got[:, 3:] - want).max() <= 1, "concat requantizes")
    print("tflite_softmax self-test:", "FAILED" if failures else "ok", f"({failures} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(_self_test())
    print(__doc__)
    sys.exit(2)
