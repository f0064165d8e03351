/* codegen/kernels/quant.c — kernel library text: the integer requantization of the int8 ops
 * (docs/int8.md), TFLite's arithmetic bit for bit, emitted once into a generated file whose
 * kernels call lathe_requant (codegen/c_backend.c; codegen/lower_quant.c writes the calls), and
 * the int8 add lathe_qadd and the int8 softmax lathe_qsoftmax, each emitted after it when a
 * kernel calls it. ir/quant.c and ir/quant_softmax.c compute the same in the evaluator;
 * tests/int8/tflite_ref.py and tests/int8/tflite_softmax.py are the oracle.
 *
 * Sections: fixedpoint (srdhm, rdbpot) whenever one of the others is emitted, requant, qadd
 * (after requant), qsoftmax (after fixedpoint).
 * Portable C99: every shift is of a non-negative value or of an int64_t known not to
 * overflow, so no step is implementation-defined (a right shift of a negative number is) or
 * undefined; int32_t is two's complement by definition. Sections as in math.c.
 */
/* @lathe-kernel fixedpoint */
/* gemmlowp's fixed-point steps of TFLite's int8 arithmetic (requantization, softmax). */
/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b * 2 / 2^32), truncating like C */
static inline int32_t lathe_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 62] (TFLite's
 * stops at 31; qsoftmax rounds exactly beyond) */
static inline int32_t lathe_rdbpot(int32_t x, int e) {
  const int64_t mask = ((int64_t)1 << e) - 1, rem = (int64_t)x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0);
  const int64_t floor_div = x >= 0 ? (int64_t)x >> e : -((-(int64_t)x + mask) >> e);
  return (int32_t)(floor_div + (rem > threshold));
}
/* @lathe-kernel requant */
/* int8 requantization (TFLite's MultiplyByQuantizedMultiplier, double rounding). */
/* x * mult * 2^(shift - 31): the left shift saturates, the shift is clamped to [-31, 30] */
static inline int32_t lathe_mbqm(int32_t x, int32_t mult, int32_t shift) {
  const int s = shift < -31 ? -31 : shift > 30 ? 30 : (int)shift;
  const int64_t left = (int64_t)x * ((int64_t)1 << (s > 0 ? s : 0));
  const int32_t xs = left < INT32_MIN ? INT32_MIN : left > INT32_MAX ? INT32_MAX : (int32_t)left;
  return lathe_rdbpot(lathe_srdhm(xs, mult), s > 0 ? 0 : -s);
}
/* an int32 accumulator plus its bias, requantized, offset by zp and clamped to [lo, hi] */
static inline int8_t lathe_requant(int32_t acc, int32_t bias, int32_t mult, int32_t shift,
                                   int32_t zp, int32_t lo, int32_t hi) {
  const int64_t b = (int64_t)acc + bias;
  const int32_t sum = b < INT32_MIN ? INT32_MIN : b > INT32_MAX ? INT32_MAX : (int32_t)b;
  const int64_t v = (int64_t)lathe_mbqm(sum, mult, shift) + zp;
  return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}
/* @lathe-kernel qadd */
/* TFLite's int8 ADD on one pair: each (v - zp) << 20 rescaled by its multiplier, the sum
 * (saturated) rescaled to the output, plus its zero point, clamped to [lo, hi]. p holds the
 * zero points, multipliers and shifts of a, b and the result: {zp[3], mult[3], shift[3]}. */
static inline int8_t lathe_qadd(int8_t a, int8_t b, const int32_t *p, int32_t lo, int32_t hi) {
  const int64_t la = ((int64_t)a - p[0]) * ((int64_t)1 << 20);
  const int64_t lb = ((int64_t)b - p[1]) * ((int64_t)1 << 20);
  const int32_t xa = la < INT32_MIN ? INT32_MIN : la > INT32_MAX ? INT32_MAX : (int32_t)la;
  const int32_t xb = lb < INT32_MIN ? INT32_MIN : lb > INT32_MAX ? INT32_MAX : (int32_t)lb;
  const int64_t s = (int64_t)lathe_mbqm(xa, p[3], p[6]) + lathe_mbqm(xb, p[4], p[7]);
  const int32_t sum = s < INT32_MIN ? INT32_MIN : s > INT32_MAX ? INT32_MAX : (int32_t)s;
  return lathe_requant(sum, 0, p[5], p[8], p[2], lo, hi); /* the sum is the accumulator */
}
/* @lathe-kernel qsoftmax */
/* TFLite's int8 softmax over one row (reference_ops::Softmax; gemmlowp's fixed point; the
 * steps of ir/quant_softmax.c). p = {multiplier, left shift, diff_min}; the result's scale is
 * 1/256, its zero point -128. The row has at most 4095 elements, so the Q12.19 sum fits. */
static inline int32_t lathe_sat32(int64_t v) {
  return v < INT32_MIN ? INT32_MIN : v > INT32_MAX ? INT32_MAX : (int32_t)v;
}
/* exp(a) for a in [-1/4, 0), Q0.31: the Taylor polynomial around -1/8 */
static inline int32_t lathe_exp_quarter(int32_t a) {
  const int32_t c = 1895147668, third = 715827883; /* exp(-1/8), 1/3 */
  const int32_t x = a + ((int32_t)1 << 28);
  const int32_t x2 = lathe_srdhm(x, x), x3 = lathe_srdhm(x2, x), x4 = lathe_srdhm(x2, x2);
  const int32_t poly = lathe_rdbpot(lathe_srdhm(lathe_rdbpot(x4, 2) + x3, third) + x2, 1);
  return c + lathe_srdhm(c, x + poly);
}
/* exp(a) for a <= 0 in Q5.26, Q0.31: exp of a mod 1/4, times exp(-2^k) per bit k of the rest */
static inline int32_t lathe_exp_negative(int32_t a) {
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242}; /* exp(-2^k), k = -2..4 */
  const int32_t quarter = (int32_t)1 << 24;
  const int32_t a_mod = (int32_t)(a & (quarter - 1)) - quarter, remainder = a_mod - a;
  int32_t result = lathe_exp_quarter(a_mod * 32);
  int k;
  for (k = 0; k < 7; k++)
    if (remainder & ((int32_t)1 << (24 + k))) result = lathe_srdhm(result, barrel[k]);
  return a == 0 ? INT32_MAX : result;
}
/* 1 / (1 + a) for a in [0, 1), Q0.31: three Newton-Raphson steps in Q2.29 */
static inline int32_t lathe_one_over_one_plus(int32_t a) {
  const int32_t half = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
  int32_t x = 1515870810 + lathe_srdhm(half, -1010580540); /* 48/17 - 32/17 half */
  int i;
  for (i = 0; i < 3; i++) {
    const int32_t one_minus = ((int32_t)1 << 29) - lathe_srdhm(half, x);
    x += lathe_sat32((int64_t)lathe_srdhm(x, one_minus) * 4);
  }
  return lathe_sat32((int64_t)x * 2);
}
/* the Q0.31 exp of one difference from the row's max, or -1 below diff_min (skipped) */
static inline int32_t lathe_qsoftmax_exp(int32_t diff, const int32_t *p) {
  if (diff < p[2]) return -1;
  return lathe_exp_negative(lathe_srdhm(lathe_sat32((int64_t)diff * ((int64_t)1 << p[1])), p[0]));
}
static void lathe_qsoftmax(const int8_t *x, int8_t *y, int64_t depth, const int32_t *p) {
  int32_t top = -128, sum = 0, recip;
  int64_t c;
  int z = 0;
  for (c = 0; c < depth; c++)
    top = x[c] > top ? x[c] : top;
  for (c = 0; c < depth; c++) {
    const int32_t e = lathe_qsoftmax_exp(x[c] - top, p);
    if (e >= 0) sum += lathe_rdbpot(e, 12);
  }
  while (!(((uint32_t)sum << z) & 0x80000000u)) /* sum >= 2^19: the max's exp alone */
    z++;
  recip = lathe_one_over_one_plus((int32_t)(((uint32_t)sum << z) - 0x80000000u));
  for (c = 0; c < depth; c++) {
    const int32_t e = lathe_qsoftmax_exp(x[c] - top, p);
    const int64_t v = e < 0 ? -128 : (int64_t)lathe_rdbpot(lathe_srdhm(recip, e), 35 - z) - 128;
    y[c] = (int8_t)(v > 127 ? 127 : v);
  }
}
