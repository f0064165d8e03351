/* ir/quant_softmax.c — infer and eval of QSOFTMAX, TFLite's int8 softmax (issue 19,
 * docs/int8.md; the reference kernel reference_ops::Softmax, int8 in and out, whose
 * arithmetic is gemmlowp's fixed point). The oracle is tests/int8/tflite_softmax.py; the
 * generated C calls lathe_qsoftmax (codegen/kernels/quant.c), the same steps.
 *
 * qsoftmax(x, p), p = {M, ls, diff_min} (i32 [3] constant, from beta * x's scale: TFLite's
 * PreprocessSoftmaxScaling and CalculateInputRadius), per row of x's last axis:
 *   max = the row's max; for each diff = x - max >= diff_min:
 *     e = exp_on_negative_values(srdhm(diff * 2^ls, M))   Q5.26 in, Q0.31 out
 *     sum += rdbpot(e, 12)                                 Q12.19
 *   z = the leading zeros of sum, r = one_over_one_plus_x((sum << z) - 2^31)   Q0.31
 *   y = clamp(rdbpot(srdhm(r, e), 35 - z) - 128), or -128 where diff < diff_min.
 * The result's scale is 1/256 and its zero point -128 (TFLite's requirement for an int8
 * softmax). TFLite stops when 35 - z > 31 (a row sum of 512 or more, which needs more than
 * 511 elements per row); lathe rounds exactly there (every such value is below half a step).
 *
 * Invariants checked by infer: x i8 of static shape, 1 to 4095 elements per row (so the
 * Q12.19 sum stays inside int32: each exp is at most 2^19); p constant, M in [0, 2^31), ls in
 * [0, 31], diff_min in [-floor(31 * 2^26 / 2^ls), 0] (so diff * 2^ls fits Q5.26).
 */
#include <math.h>
#include <stdio.h>

#include "ir_internal.h"
#include "quant.h"

enum { QSOFTMAX_ACCUM_BITS = 12 }; /* the sum of exps in Q12.19 */

/* the constant p's {M, ls, diff_min} checked against TFLite's ranges */
static bool qsoftmax_params_ok(const Node *n, const Node *p, Diag *d) {
  double v[3];
  for (int i = 0; i < 3; i++)
    v[i] = p->attr.constant.data ? p->attr.constant.data[i] : p->attr.constant.value;
  if (!(v[0] >= 0 && v[0] <= 2147483647.0 && v[1] >= 0 && v[1] <= 31)) {
    IR_ERROR(d, n->loc,
             "qsoftmax: expected the multiplier in [0, 2^31) and the left shift in [0, 31], "
             "got %.0f and %.0f",
             v[0], v[1]);
    return false;
  }
  double radius = floor(31.0 * 67108864.0 / ldexp(1.0, (int)v[1])); /* 31 * 2^26 / 2^ls */
  if (v[2] <= 0 && v[2] >= -radius) return true;
  IR_ERROR(d, n->loc,
           "qsoftmax: diff_min must be in [-%.0f, 0] (TFLite's input radius for the left shift "
           "%.0f), got %.0f",
           radius, v[1], v[2]);
  return false;
}

/* qsoftmax(x i8 [.., D], p i32 [3] constant) -> i8 [.., D] */
bool infer_qsoftmax(Graph *g, Node *n, Diag *d) {
  const Node *x = &g->nodes[n->in[0]], *p = &g->nodes[n->in[1]];
  char sx[200];
  int r = x->shape.rank;
  if (x->dtype != DT_I8 || x->shape.dyn || r < 1 || x->shape.dim[r - 1] < 1 ||
      x->shape.dim[r - 1] > IR_QSOFTMAX_MAX_DEPTH) {
    IR_ERROR(d, n->loc,
             "qsoftmax: x must be i8 of static shape with 1 to %d elements along its last "
             "axis (the Q12.19 sum of TFLite's kernel), got %s%s",
             IR_QSOFTMAX_MAX_DEPTH, dtype_name(x->dtype), shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  if (p->op != OP_CONST || p->dtype != DT_I32 || p->shape.rank != 1 || p->shape.dim[0] != 3) {
    IR_ERROR(d, n->loc,
             "qsoftmax: the parameters must be a constant i32 [3] {multiplier, left shift, "
             "diff_min}, got %s%s",
             dtype_name(p->dtype), shape_str(&p->shape, sx, sizeof sx));
    return false;
  }
  if (!qsoftmax_params_ok(n, p, d)) return false;
  n->shape = x->shape;
  n->dtype = DT_I8;
  return true;
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: the Taylor polynomial around -1/8 */
static int32_t exp_quarter(int32_t a) {
  const int32_t c = 1895147668, third = 715827883; /* exp(-1/8), 1/3 */
  int32_t x = a + (1 << 28);
  int32_t x2 = ir_quant_srdhm(x, x), x3 = ir_quant_srdhm(x2, x), x4 = ir_quant_srdhm(x2, x2);
  int32_t poly = ir_quant_rdbpot(ir_quant_srdhm(ir_quant_rdbpot(x4, 2) + x3, third) + x2, 1);
  return c + ir_quant_srdhm(c, x + poly);
}

/* exp(a) for a <= 0 in Q5.26, the result Q0.31: exp of a mod 1/4 in [-1/4, 0), times
 * exp(-2^k) for each bit k of the rest, 1 at a == 0 */
static int32_t exp_negative(int32_t a) {
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308,
                                    39332535,   720401,     242}; /* exp(-2^k), k = -2..4 */
  const int32_t quarter = 1 << 24;
  int32_t a_mod = (int32_t)(a & (quarter - 1)) - quarter;
  int32_t result = exp_quarter(a_mod * 32), remainder = a_mod - a;
  for (int k = 0; k < 7; k++)
    if (remainder & ((int32_t)1 << (24 + k))) result = ir_quant_srdhm(result, barrel[k]);
  return a == 0 ? INT32_MAX : result;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out: three Newton-Raphson steps in Q2.29 from
 * 48/17 - 32/17 d, d = (1 + a) / 2 */
static int32_t one_over_one_plus(int32_t a) {
  int32_t half = (int32_t)(((int64_t)a + INT32_MAX + 1) / 2);
  int32_t x = 1515870810 + ir_quant_srdhm(half, -1010580540);
  for (int i = 0; i < 3; i++) {
    int32_t one_minus = (1 << 29) - ir_quant_srdhm(half, x);
    x += ir_quant_sat32((int64_t)ir_quant_srdhm(x, one_minus) * 4);
  }
  return ir_quant_sat32((int64_t)x * 2);
}

/* the Q0.31 exp of one diff, or -1 when it is below diff_min (skipped) */
static int32_t row_exp(int32_t diff, const int32_t *p) {
  if (diff < p[2]) return -1;
  int32_t scaled = ir_quant_sat32((int64_t)diff * (INT64_C(1) << p[1]));
  return exp_negative(ir_quant_srdhm(scaled, p[0]));
}

static void qsoftmax_row(const int8_t *x, int8_t *y, int64_t depth, const int32_t *p) {
  int32_t top = -128, sum = 0;
  for (int64_t c = 0; c < depth; c++)
    top = x[c] > top ? x[c] : top;
  for (int64_t c = 0; c < depth; c++) {
    int32_t e = row_exp(x[c] - top, p);
    if (e >= 0) sum += ir_quant_rdbpot(e, QSOFTMAX_ACCUM_BITS);
  }
  int z = 0; /* sum >= 2^19: the max's exp alone */
  while (!(((uint32_t)sum << z) & 0x80000000u))
    z++;
  int32_t recip = one_over_one_plus((int32_t)(((uint32_t)sum << z) - 0x80000000u));
  for (int64_t c = 0; c < depth; c++) {
    int32_t e = row_exp(x[c] - top, p);
    int64_t v = e < 0 ? -128
                      : (int64_t)ir_quant_rdbpot(ir_quant_srdhm(recip, e),
                                                 QSOFTMAX_ACCUM_BITS - z + 31 - 8) -
                            128;
    y[c] = (int8_t)(v > 127 ? 127 : v);
  }
}

void eval_qsoftmax(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int32_t p[3];
  for (int i = 0; i < 3; i++)
    p[i] = (int32_t)tensor_get(in[1], i);
  int64_t depth = out->shape.dim[out->shape.rank - 1];
  int64_t rows = shape_numel(&out->shape) / depth;
  for (int64_t r = 0; r < rows; r++)
    qsoftmax_row((const int8_t *)in[0]->data + r * depth, (int8_t *)out->data + r * depth, depth,
                 p);
}
