/* codegen/kernels/quant.c — kernel library text: the integer requantization of the int8 ops
 * (docs/int8.md), TFLite's arithmetic bit for bit, emitted once into a generated file whose
 * kernels call lathe_requant (codegen/c_backend.c; codegen/lower_quant.c writes the calls), and
 * the int8 add lathe_qadd, emitted after it when a kernel calls it.
 * ir/quant.c computes the same in the evaluator; tests/int8/tflite_ref.py is the oracle.
 *
 * Portable C99: every shift is of a non-negative value or of an int64_t known not to
 * overflow, so no step is implementation-defined (a right shift of a negative number is) or
 * undefined; int32_t is two's complement by definition. Sections as in math.c.
 */
/* @lathe-kernel requant */
/* int8 requantization (TFLite's MultiplyByQuantizedMultiplier, double rounding). */
/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b * 2 / 2^32), truncating like C */
static inline int32_t lathe_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = (int64_t)a * b;
  const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
  return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 31] */
static inline int32_t lathe_rdbpot(int32_t x, int e) {
  const int64_t mask = ((int64_t)1 << e) - 1, rem = (int64_t)x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0);
  const int64_t floor_div = x >= 0 ? (int64_t)x >> e : -((-(int64_t)x + mask) >> e);
  return (int32_t)(floor_div + (rem > threshold));
}
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
