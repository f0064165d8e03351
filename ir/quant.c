/* ir/quant.c — infer and eval hooks of the int8 quantization ops (issue 19, docs/int8.md):
 * QUANTIZE, DEQUANTIZE, FAKE_QUANT, FAKE_QUANT_MASK, QDENSE, QCONV2D, QMAX_POOL2D, QAVG_POOL2D,
 * QADD and REQUANTIZE (QSOFTMAX: ir/quant_softmax.c).
 *
 * The arithmetic is TFLite's, bit for bit (the oracle is tests/int8/tflite_ref.py):
 *   quantize(x, s, zp)         clamp(round_half_away(x / s) + zp, qmin, qmax) as i8, the
 *                              division in x's dtype (f32: float32), a NaN giving qmin;
 *                              {half_even}: rounded half to even (ONNX QuantizeLinear)
 *   dequantize(q, s, zp)       s * (q - zp), the product in double, rounded to s's dtype
 *   fake_quant(x, s, zp)       dequantize(quantize(x)) with [qmin, qmax] (QAT), in x's dtype
 *   fake_quant_mask(x, s, zp)  1 where round_half_away(x / s) + zp lies in [qmin, qmax], else 0
 *   qdense(x, w, b, M, sh)     y[r, o] = clamp(mbqm(sum_k (x[r, k] - x_zp) * w[k, o] + b[o],
 *                              M[o], sh[o]) + out_zp, qmin, qmax), the sum in int32
 *   qconv2d(x, w, b, M, sh)    the same epilogue on y[n, o, p, q] = sum over c, i, j of
 *                              (x[n, c, p*stride + i*dil - pad, ...] - x_zp) * w[o, c, i, j],
 *                              padded taps adding 0 (zero in real terms: they read x_zp)
 *   qmax_pool2d(x)             the max of each window's taps inside the image
 *   qavg_pool2d(x)             TFLite's AveragePool: the sum S of the taps inside the image
 *                              over their count n, (S + n/2) / n if S > 0 else (S - n/2) / n
 *                              (C's truncating division: half away from zero)
 *   qadd(a, b, zp, M, sh)      TFLite's int8 ADD: mbqm(mbqm((a - zp0) << 20, M0, sh0) +
 *                              mbqm((b - zp1) << 20, M1, sh1), M2, sh2) + zp2, clamped
 *   requantize(x, M, sh)       clamp(mbqm(x - x_zp, M, sh) + out_zp, qmin, qmax): TFLite's
 *                              QUANTIZE of an int8 tensor (int8 to int8 at other parameters)
 * where mbqm is TFLite's MultiplyByQuantizedMultiplier (double rounding: a left shift for
 * sh > 0, the saturating rounding doubling high multiply, a rounding right shift for sh < 0).
 * Where TFLite's int32 would overflow (the oracle raises), lathe saturates: the bias sum and
 * the left shift are clamped to int32, the result of mbqm plus out_zp is computed in int64.
 * codegen/kernels/quant.c holds the same arithmetic for the generated C.
 *
 * Invariants checked by infer: scale and zp broadcast to x's shape (the result has x's shape);
 * constant scales are finite and > 0, constant multipliers in [0, 2^31), constant shifts in
 * [-31, 30]; the inner size keeps the int32 sum exact (I, or C * kh * kw, <= 65536).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir_internal.h"
#include "quant.h"

#define SHAPE_BUF 200

static const Node *in_node(const Graph *g, const Node *n, int i) {
  return &g->nodes[n->in[i]];
}

static double const_value(const Node *c, int64_t i) {
  return c->attr.constant.data ? c->attr.constant.data[i] : c->attr.constant.value;
}

/* every element of a CONST operand lies in [lo, hi] (lo_open: > lo); other ops pass. range
 * says it in words for the message ("finite and > 0") */
static bool const_in_range(const Graph *g, const Node *n, int k, double lo, bool lo_open, double hi,
                           const char *what, const char *range, Diag *d) {
  const Node *c = in_node(g, n, k);
  if (c->op != OP_CONST) return true;
  int64_t count = c->attr.constant.data ? shape_numel(&c->shape) : 1;
  for (int64_t i = 0; i < count; i++) {
    double v = const_value(c, i);
    if ((lo_open ? v > lo : v >= lo) && v <= hi && isfinite(v)) continue;
    char at[48] = "";
    if (c->shape.rank > 0) snprintf(at, sizeof at, " (element %lld)", (long long)i);
    IR_ERROR(d, n->loc, "%s: %s must be %s, got %g%s", ir_ops[n->op].name, what, range, v, at);
    return false;
  }
  return true;
}

static bool want_dtype(const Node *n, const Node *arg, const char *what, bool ok,
                       const char *expected, Diag *d) {
  if (ok) return true;
  char s[SHAPE_BUF];
  IR_ERROR(d, n->loc, "%s: %s must be %s, got %s%s", ir_ops[n->op].name, what, expected,
           dtype_name(arg->dtype), shape_str(&arg->shape, s, sizeof s));
  return false;
}

/* arg broadcasts to x's shape without widening it */
static bool fits_shape(const Node *n, const Node *x, const Node *arg, const char *what, Diag *d) {
  Shape out;
  if (shape_broadcast(&x->shape, &arg->shape, &out) && shape_equal(&out, &x->shape) &&
      !arg->shape.dyn)
    return true;
  char sx[SHAPE_BUF], sa[SHAPE_BUF];
  IR_ERROR(d, n->loc,
           "%s: %s %s does not broadcast to the shape of x %s (per tensor: a scalar; "
           "per channel: e.g. [1, C, 1, 1])",
           ir_ops[n->op].name, what, shape_str(&arg->shape, sa, sizeof sa),
           shape_str(&x->shape, sx, sizeof sx));
  return false;
}

static bool check_range(const Node *n, bool int8_only, Diag *d) {
  int32_t lo = n->attr.quant.qmin, hi = n->attr.quant.qmax;
  if (lo <= hi && (!int8_only || (lo >= -128 && hi <= 127))) return true;
  IR_ERROR(d, n->loc, "%s: the clamp [qmin, qmax] = [%d, %d] must satisfy qmin <= qmax%s",
           ir_ops[n->op].name, (int)lo, (int)hi, int8_only ? " inside [-128, 127]" : "");
  return false;
}

/* QUANTIZE, DEQUANTIZE, FAKE_QUANT, FAKE_QUANT_MASK: (x, scale, zp), result of x's shape */
bool infer_quant(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0), *s = in_node(g, n, 1), *zp = in_node(g, n, 2);
  bool deq = n->op == OP_DEQUANTIZE;
  if (deq ? !want_dtype(n, x, "q", x->dtype == DT_I8, "i8", d)
          : !want_dtype(n, x, "x", dtype_is_float(x->dtype), "f32 or f64", d))
    return false;
  if (!want_dtype(n, s, "the scale", deq ? dtype_is_float(s->dtype) : s->dtype == x->dtype,
                  deq ? "f32 or f64" : dtype_name(x->dtype), d) ||
      !want_dtype(n, zp, "the zero point", zp->dtype == DT_I32, "i32", d) ||
      !fits_shape(n, x, s, "the scale", d) || !fits_shape(n, x, zp, "the zero point", d))
    return false;
  if (!deq && !check_range(n, n->op == OP_QUANTIZE, d)) return false;
  if (n->attr.quant.half_even && n->op != OP_QUANTIZE) {
    IR_ERROR(d, n->loc, "%s: half_even rounding is an attribute of quantize only",
             ir_ops[n->op].name);
    return false;
  }
  if (!const_in_range(g, n, 1, 0, true, HUGE_VAL, "the scale", "finite and > 0", d)) return false;
  n->shape = x->shape;
  n->dtype = n->op == OP_QUANTIZE ? DT_I8 : deq ? s->dtype : x->dtype;
  return true;
}

/* the epilogue operands of QDENSE and QCONV2D (bias, mult, shift: i32 [units] or scalars), the
 * zero points, the clamp and the inner size of the int32 sum */
static bool check_epilogue(const Graph *g, const Node *n, int64_t inner, int64_t units, Diag *d) {
  const char *op = ir_ops[n->op].name;
  if (inner > IR_QUANT_MAX_INNER) {
    IR_ERROR(d, n->loc, "%s: %lld inputs per output could overflow the int32 sum (at most %d)", op,
             (long long)inner, IR_QUANT_MAX_INNER);
    return false;
  }
  static const char *const what[3] = {"the bias", "the multiplier", "the shift"};
  for (int k = 2; k < 5; k++) {
    const Node *a = in_node(g, n, k);
    bool vec = a->shape.rank == 1 && a->shape.dim[0] == units;
    if (!want_dtype(n, a, what[k - 2], a->dtype == DT_I32 && (a->shape.rank == 0 || vec),
                    "i32 [O] or an i32 scalar", d))
      return false;
  }
  bool zps = n->attr.quant.x_zp >= -128 && n->attr.quant.x_zp <= 127 &&
             n->attr.quant.out_zp >= -128 && n->attr.quant.out_zp <= 127;
  if (!zps) {
    IR_ERROR(d, n->loc, "%s: the zero points must lie in [-128, 127], got x_zp %d, out_zp %d", op,
             (int)n->attr.quant.x_zp, (int)n->attr.quant.out_zp);
    return false;
  }
  return check_range(n, true, d) &&
         const_in_range(g, n, 3, 0, false, 2147483647.0, "the multiplier", "in [0, 2^31)", d) &&
         const_in_range(g, n, 4, -31, false, 30, "the shift", "in [-31, 30]", d);
}

static bool int8_operands(const Node *n, const Node *x, const Node *w, Diag *d) {
  char sx[SHAPE_BUF];
  if (!want_dtype(n, x, "x", x->dtype == DT_I8, "i8", d) ||
      !want_dtype(n, w, "the weights", w->dtype == DT_I8, "i8", d))
    return false;
  if (!x->shape.dyn && !w->shape.dyn) return true;
  IR_ERROR(d, n->loc, "%s: a run-time batch is not supported yet (x is %s)", ir_ops[n->op].name,
           shape_str(&x->shape, sx, sizeof sx));
  return false;
}

/* qdense(x i8 [.., I], w i8 [I, O], bias, mult, shift) -> i8 [.., O] */
bool infer_qdense(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0), *w = in_node(g, n, 1);
  char sx[SHAPE_BUF], sw[SHAPE_BUF];
  if (!int8_operands(n, x, w, d)) return false;
  int r = x->shape.rank;
  if (r < 1 || w->shape.rank != 2 || x->shape.dim[r - 1] != w->shape.dim[0]) {
    IR_ERROR(d, n->loc, "qdense: expected x [.., I] and weights [I, O], got %s and %s",
             shape_str(&x->shape, sx, sizeof sx), shape_str(&w->shape, sw, sizeof sw));
    return false;
  }
  if (!check_epilogue(g, n, w->shape.dim[0], w->shape.dim[1], d)) return false;
  n->shape = x->shape;
  n->shape.dim[r - 1] = w->shape.dim[1];
  n->dtype = DT_I8;
  return true;
}

/* the output extent of spatial axis i, or 0 when the dilated kernel does not fit */
static int64_t qconv_extent(const Node *n, int64_t in, int64_t k, int i) {
  const int32_t *p = n->attr.quant.pad;
  int64_t span = in + p[i] + p[i + 2] - (int64_t)n->attr.quant.dilation[i] * (k - 1) - 1;
  return span < 0 ? 0 : span / n->attr.quant.stride[i] + 1;
}

/* the channel groups of a QCONV2D (0 and 1: one) */
static int64_t qconv_groups(const Node *n) {
  return n->attr.quant.groups > 1 ? n->attr.quant.groups : 1;
}

/* groups >= 1 divides O, and x's C is groups times w's C / groups */
static bool qconv_groups_ok(const Node *n, const Node *x, const Node *w, Diag *d) {
  int64_t G = qconv_groups(n);
  if (n->attr.quant.groups >= 0 && x->shape.rank == 4 && w->shape.rank == 4 &&
      w->shape.dim[0] % G == 0 && x->shape.dim[1] == w->shape.dim[1] * G)
    return true;
  char sx[SHAPE_BUF], sw[SHAPE_BUF];
  IR_ERROR(d, n->loc,
           "qconv2d: groups = %d must divide the output channels O, and x's channels C must be "
           "groups times the weights' C / groups; got x %s and weights [O, C / groups, kh, kw] "
           "= %s",
           (int)n->attr.quant.groups, shape_str(&x->shape, sx, sizeof sx),
           shape_str(&w->shape, sw, sizeof sw));
  return false;
}

/* qconv2d(x i8 [N, C, H, W], w i8 [O, C / groups, kh, kw], bias, mult, shift) -> i8 [N, O, Ho,
 * Wo]; output channel o reads the input channels of its group o / (O / groups) */
bool infer_qconv2d(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0), *w = in_node(g, n, 1);
  char sx[SHAPE_BUF], sw[SHAPE_BUF];
  if (!int8_operands(n, x, w, d)) return false;
  const int32_t *st = n->attr.quant.stride, *dil = n->attr.quant.dilation;
  bool geometry = st[0] >= 1 && st[1] >= 1 && dil[0] >= 1 && dil[1] >= 1;
  for (int i = 0; i < 4; i++)
    geometry = geometry && n->attr.quant.pad[i] >= 0;
  if (x->shape.rank == 4 && w->shape.rank == 4 && !qconv_groups_ok(n, x, w, d)) return false;
  bool fits = x->shape.rank == 4 && w->shape.rank == 4;
  int64_t oh = fits ? qconv_extent(n, x->shape.dim[2], w->shape.dim[2], 0) : 0;
  int64_t ow = fits ? qconv_extent(n, x->shape.dim[3], w->shape.dim[3], 1) : 0;
  if (!geometry || oh < 1 || ow < 1) {
    IR_ERROR(d, n->loc,
             "qconv2d: expected x [N, C, H, W] and weights [O, C, kh, kw] whose (dilated) "
             "kernel fits the padded input, strides and dilations >= 1; got %s and %s",
             shape_str(&x->shape, sx, sizeof sx), shape_str(&w->shape, sw, sizeof sw));
    return false;
  }
  const int64_t *wd = w->shape.dim;
  if (!check_epilogue(g, n, wd[1] * wd[2] * wd[3], wd[0], d)) return false;
  n->shape = shape_make(4, (int64_t[]){x->shape.dim[0], wd[0], oh, ow});
  n->dtype = DT_I8;
  return true;
}

/* ---- the arithmetic ------------------------------------------------------------------------- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

int32_t ir_quant_sat32(int64_t v) {
  return (int32_t)clamp64(v, INT32_MIN, INT32_MAX);
}

/* round_half_away(x / s) + zp in x's precision, as a double (NaN stays NaN); half_even:
 * rint/rintf, which round half to even in the default rounding mode lathe never changes */
static double quant_unclamped(DType t, double x, double s, double zp, bool half_even) {
  if (t == DT_F32)
    return (double)(half_even ? rintf((float)x / (float)s) : roundf((float)x / (float)s)) + zp;
  return (half_even ? rint(x / s) : round(x / s)) + zp;
}

/* v clamped to [lo, hi]; a NaN gives lo (what the C's !(v >= lo) test does) */
static int64_t quant_clamp(double v, int64_t lo, int64_t hi) {
  return !(v >= (double)lo) ? lo : v > (double)hi ? hi : (int64_t)v;
}

/* one element of a QUANTIZE, DEQUANTIZE, FAKE_QUANT or FAKE_QUANT_MASK; t: x's dtype */
static double quant_elem(const Node *n, DType t, double x, double s, double zp) {
  int64_t lo = n->attr.quant.qmin, hi = n->attr.quant.qmax;
  bool even = n->attr.quant.half_even;
  switch (n->op) {
  case OP_QUANTIZE:
    return (double)quant_clamp(quant_unclamped(t, x, s, zp, even), lo, hi);
  case OP_DEQUANTIZE:
    return s * (x - zp);
  case OP_FAKE_QUANT:
    return s * (double)(quant_clamp(quant_unclamped(t, x, s, zp, even), lo, hi) - (int64_t)zp);
  default: { /* OP_FAKE_QUANT_MASK */
    double q = quant_unclamped(t, x, s, zp, even);
    return q >= (double)lo && q <= (double)hi ? 1 : 0;
  }
  }
}

void eval_quant(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t st[3][IR_MAX_RANK];
  for (int k = 0; k < 3; k++)
    ir_broadcast_strides(&in[k]->shape, out->shape.rank, st[k]);
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) {
    double v[3];
    for (int k = 0; k < 3; k++)
      v[k] = tensor_get(in[k], ir_strided_offset(i, &out->shape, st[k]));
    tensor_set(out, i, quant_elem(n, in[0]->dtype, v[0], v[1], v[2]));
  }
}

/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b * 2 / 2^32), C division */
int32_t ir_quant_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  int64_t ab = (int64_t)a * b;
  int64_t nudge = ab >= 0 ? (INT64_C(1) << 30) : 1 - (INT64_C(1) << 30);
  return (int32_t)((ab + nudge) / (INT64_C(1) << 31));
}

/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 62] (TFLite's
 * stops at 31; beyond, the exact rounding qsoftmax needs) */
int32_t ir_quant_rdbpot(int32_t x, int e) {
  int64_t mask = (INT64_C(1) << e) - 1, rem = (int64_t)x & mask;
  int64_t threshold = (mask >> 1) + (x < 0);
  int64_t floor_div = x >= 0 ? (int64_t)x >> e : -((-(int64_t)x + mask) >> e);
  return (int32_t)(floor_div + (rem > threshold));
}

/* TFLite's MultiplyByQuantizedMultiplier; the left shift saturates, the shift is clamped to
 * [-31, 30] (infer rejects other constant shifts) */
int32_t ir_quant_mbqm(int32_t x, int32_t mult, int32_t shift) {
  int s = shift < -31 ? -31 : shift > 30 ? 30 : (int)shift;
  int64_t left = (int64_t)x * (INT64_C(1) << (s > 0 ? s : 0));
  int32_t xs = (int32_t)clamp64(left, INT32_MIN, INT32_MAX);
  return ir_quant_rdbpot(ir_quant_srdhm(xs, mult), s > 0 ? 0 : -s);
}

/* the epilogue of output channel o: bias, requantization, out_zp, clamp */
static double epilogue(const Node *n, const Tensor *in[], int32_t acc, int64_t o) {
  int64_t biased = (int64_t)acc + (int64_t)tensor_get(in[2], in[2]->shape.rank ? o : 0);
  int32_t mult = (int32_t)tensor_get(in[3], in[3]->shape.rank ? o : 0);
  int32_t shift = (int32_t)tensor_get(in[4], in[4]->shape.rank ? o : 0);
  int32_t sum = (int32_t)clamp64(biased, INT32_MIN, INT32_MAX);
  int64_t v = (int64_t)ir_quant_mbqm(sum, mult, shift) + n->attr.quant.out_zp;
  return (double)clamp64(v, n->attr.quant.qmin, n->attr.quant.qmax);
}

void eval_qdense(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t inner = in[1]->shape.dim[0], units = in[1]->shape.dim[1];
  int64_t rows = inner ? shape_numel(&in[0]->shape) / inner : 0;
  const int8_t *x = in[0]->data, *w = in[1]->data;
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t o = 0; o < units; o++) {
      int32_t acc = 0;
      for (int64_t k = 0; k < inner; k++)
        acc += ((int32_t)x[r * inner + k] - n->attr.quant.x_zp) * (int32_t)w[k * units + o];
      tensor_set(out, r * units + o, epilogue(n, in, acc, o));
    }
  }
}

/* sum over the taps of output (b, o, p, q) of (x - x_zp) * w, the input channels those of o's
 * group; padded taps add 0 */
static int32_t qconv_sum(const Node *n, const Tensor *xt, const Tensor *wt, int64_t b, int64_t o,
                         int64_t p, int64_t q) {
  const int64_t *xd = xt->shape.dim, *wd = wt->shape.dim;
  const int8_t *x = xt->data, *w = wt->data;
  const int32_t *st = n->attr.quant.stride, *dil = n->attr.quant.dilation, *pad = n->attr.quant.pad;
  int32_t acc = 0;
  int64_t c0 = o / (wd[0] / qconv_groups(n)) * wd[1]; /* the group's first input channel */
  for (int64_t c = 0; c < wd[1]; c++)
    for (int64_t i = 0; i < wd[2]; i++)
      for (int64_t j = 0; j < wd[3]; j++) {
        int64_t h = p * st[0] + i * dil[0] - pad[0], v = q * st[1] + j * dil[1] - pad[1];
        if (h < 0 || h >= xd[2] || v < 0 || v >= xd[3]) continue;
        int32_t xv = x[((b * xd[1] + c0 + c) * xd[2] + h) * xd[3] + v];
        acc += (xv - n->attr.quant.x_zp) * (int32_t)w[((o * wd[1] + c) * wd[2] + i) * wd[3] + j];
      }
  return acc;
}

void eval_qconv2d(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const int64_t *od = out->shape.dim;
  int64_t at = 0;
  for (int64_t b = 0; b < od[0]; b++)
    for (int64_t o = 0; o < od[1]; o++)
      for (int64_t p = 0; p < od[2]; p++)
        for (int64_t q = 0; q < od[3]; q++)
          tensor_set(out, at++, epilogue(n, in, qconv_sum(n, in[0], in[1], b, o, p, q), o));
}

/* ---- int8 pooling (QMAX_POOL2D, QAVG_POOL2D) ------------------------------------------------ */

/* the window attributes of an int8 pool: strides, dilations and the window >= 1, padding at
 * most half the window (so no window lies wholly in the padding), qavg_pool2d undilated (TFLite
 * has no dilated average pool) */
static bool qpool_window_ok(const Node *n) {
  const struct IrConvAttr *a = &n->attr.conv;
  bool ok = a->groups == 1 && a->layout == IR_CONV_NCHW && a->algo == IR_CONV_ALGO_UNSET;
  for (int i = 0; i < 2; i++) {
    ok = ok && a->stride[i] >= 1 && a->dilation[i] >= 1 && a->kernel[i] >= 1;
    ok = ok && a->pad[i] >= 0 && a->pad[i + 2] >= 0 && 2 * a->pad[i] <= a->kernel[i] &&
         2 * a->pad[i + 2] <= a->kernel[i];
    ok = ok && (n->op == OP_QMAX_POOL2D || a->dilation[i] == 1);
  }
  return ok;
}

/* the output extent of spatial axis i of a pool over `in` (0 when the window does not fit) */
static int64_t qpool_extent(const struct IrConvAttr *a, int64_t in, int i) {
  int64_t span = in + a->pad[i] + a->pad[i + 2] - (int64_t)a->dilation[i] * (a->kernel[i] - 1) - 1;
  return span < 0 ? 0 : span / a->stride[i] + 1;
}

/* qmax_pool2d / qavg_pool2d(x i8 [N, C, H, W]) {window} -> i8 [N, C, Ho, Wo] */
bool infer_qpool2d(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0);
  char sx[SHAPE_BUF];
  if (!want_dtype(n, x, "x", x->dtype == DT_I8 && x->shape.rank == 4 && !x->shape.dyn,
                  "an i8 NCHW tensor of static shape", d))
    return false;
  const struct IrConvAttr *a = &n->attr.conv;
  int64_t oh = qpool_extent(a, x->shape.dim[2], 0), ow = qpool_extent(a, x->shape.dim[3], 1);
  if (!qpool_window_ok(n) || oh < 1 || ow < 1) {
    IR_ERROR(d, n->loc,
             "%s: expected a window, strides%s >= 1 that fit the padded input %s, padding at "
             "most half the window",
             ir_ops[n->op].name, n->op == OP_QMAX_POOL2D ? " and dilations" : " (dilation 1)",
             shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  n->shape = shape_make(4, (int64_t[]){x->shape.dim[0], x->shape.dim[1], oh, ow});
  n->dtype = DT_I8;
  return true;
}

/* one window of plane `plane` (b * C + c) at (p, q): its max (-128 if every tap is padding),
 * or TFLite's average of the taps inside the image: the sum divided by their count, rounded
 * half away from zero (C's division truncates) */
static int8_t qpool_window(const Node *n, const Tensor *xt, int64_t plane, int64_t p, int64_t q) {
  const struct IrConvAttr *a = &n->attr.conv;
  const int64_t *xd = xt->shape.dim;
  const int8_t *x = (const int8_t *)xt->data + plane * xd[2] * xd[3];
  int32_t best = -128, sum = 0, count = 0;
  for (int64_t i = 0; i < a->kernel[0]; i++) {
    int64_t h = p * a->stride[0] + i * a->dilation[0] - a->pad[0];
    if (h < 0 || h >= xd[2]) continue;
    for (int64_t j = 0; j < a->kernel[1]; j++) {
      int64_t v = q * a->stride[1] + j * a->dilation[1] - a->pad[1];
      if (v < 0 || v >= xd[3]) continue;
      int32_t e = x[h * xd[3] + v];
      best = e > best ? e : best;
      sum += e;
      count++;
    }
  }
  if (n->op == OP_QMAX_POOL2D) return (int8_t)best;
  return (int8_t)(sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count);
}

void eval_qpool2d(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const int64_t *od = out->shape.dim;
  int8_t *y = out->data;
  for (int64_t plane = 0; plane < od[0] * od[1]; plane++)
    for (int64_t p = 0; p < od[2]; p++)
      for (int64_t q = 0; q < od[3]; q++)
        *y++ = qpool_window(n, in[0], plane, p, q);
}

/* ---- int8 add (QADD) ------------------------------------------------------------------------ */

enum { QADD_LEFT_SHIFT = 20 }; /* TFLite's int8 ADD: 20 bits of headroom before rescaling */

/* qadd(a i8, b i8, zp, mult, shift i32 [3]) {qmin, qmax} -> i8 of the broadcast shape */
bool infer_qadd(Graph *g, Node *n, Diag *d) {
  const Node *a = in_node(g, n, 0), *b = in_node(g, n, 1);
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  if (!want_dtype(n, a, "a", a->dtype == DT_I8 && !a->shape.dyn, "i8 of static shape", d) ||
      !want_dtype(n, b, "b", b->dtype == DT_I8 && !b->shape.dyn, "i8 of static shape", d))
    return false;
  static const char *const what[3] = {"the zero points", "the multipliers", "the shifts"};
  for (int k = 2; k < 5; k++) {
    const Node *p = in_node(g, n, k);
    if (!want_dtype(n, p, what[k - 2],
                    p->dtype == DT_I32 && p->shape.rank == 1 && p->shape.dim[0] == 3,
                    "i32 [3] (a's, b's, the result's)", d))
      return false;
  }
  if (!shape_broadcast(&a->shape, &b->shape, &n->shape)) {
    IR_ERROR(d, n->loc, "qadd: the shapes %s and %s do not broadcast",
             shape_str(&a->shape, sa, sizeof sa), shape_str(&b->shape, sb, sizeof sb));
    return false;
  }
  n->dtype = DT_I8;
  return check_range(n, true, d) &&
         const_in_range(g, n, 2, -128, false, 127, "the zero points", "in [-128, 127]", d) &&
         const_in_range(g, n, 3, 0, false, 2147483647.0, "the multipliers", "in [0, 2^31)", d) &&
         const_in_range(g, n, 4, -31, false, 30, "the shifts", "in [-31, 30]", d);
}

/* TFLite's AddElementwise on one pair: each input's (v - zp) << 20 rescaled by its multiplier,
 * the sum (saturated to int32, which TFLite's parameters never reach) rescaled to the output */
static int8_t qadd_elem(const Node *n, int32_t va, int32_t vb, const int32_t *zp, const int32_t *m,
                        const int32_t *s) {
  int64_t la = ((int64_t)va - zp[0]) * (INT64_C(1) << QADD_LEFT_SHIFT);
  int64_t lb = ((int64_t)vb - zp[1]) * (INT64_C(1) << QADD_LEFT_SHIFT);
  int32_t sa = ir_quant_mbqm((int32_t)clamp64(la, INT32_MIN, INT32_MAX), m[0], s[0]);
  int32_t sb = ir_quant_mbqm((int32_t)clamp64(lb, INT32_MIN, INT32_MAX), m[1], s[1]);
  int32_t sum = (int32_t)clamp64((int64_t)sa + sb, INT32_MIN, INT32_MAX);
  int64_t v = (int64_t)ir_quant_mbqm(sum, m[2], s[2]) + zp[2];
  return (int8_t)clamp64(v, n->attr.quant.qmin, n->attr.quant.qmax);
}

void eval_qadd(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int32_t p[3][3];
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < 3; i++)
      p[k][i] = (int32_t)tensor_get(in[2 + k], i);
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->shape, out->shape.rank, sa);
  ir_broadcast_strides(&in[1]->shape, out->shape.rank, sb);
  const int8_t *a = in[0]->data, *b = in[1]->data;
  int8_t *y = out->data;
  for (int64_t i = 0; i < shape_numel(&out->shape); i++)
    y[i] = qadd_elem(n, a[ir_strided_offset(i, &out->shape, sa)],
                     b[ir_strided_offset(i, &out->shape, sb)], p[0], p[1], p[2]);
}

/* ---- int8 to int8 (REQUANTIZE) -------------------------------------------------------------- */

/* requantize(x i8, mult i32, shift i32) {x_zp, out_zp, qmin, qmax} -> i8 of x's shape:
 * TFLite's QUANTIZE of an int8 tensor to other parameters (its Requantize) */
bool infer_requantize(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0);
  if (!want_dtype(n, x, "x", x->dtype == DT_I8 && !x->shape.dyn, "i8 of static shape", d))
    return false;
  static const char *const what[2] = {"the multiplier", "the shift"};
  for (int k = 1; k < 3; k++) {
    const Node *a = in_node(g, n, k);
    if (!want_dtype(n, a, what[k - 1], a->dtype == DT_I32 && a->shape.rank == 0, "an i32 scalar",
                    d))
      return false;
  }
  bool zps = n->attr.quant.x_zp >= -128 && n->attr.quant.x_zp <= 127 &&
             n->attr.quant.out_zp >= -128 && n->attr.quant.out_zp <= 127;
  if (!zps) {
    IR_ERROR(d, n->loc,
             "requantize: the zero points must lie in [-128, 127], got x_zp %d, "
             "out_zp %d",
             (int)n->attr.quant.x_zp, (int)n->attr.quant.out_zp);
    return false;
  }
  n->shape = x->shape;
  n->dtype = DT_I8;
  return check_range(n, true, d) &&
         const_in_range(g, n, 1, 0, false, 2147483647.0, "the multiplier", "in [0, 2^31)", d) &&
         const_in_range(g, n, 2, -31, false, 30, "the shift", "in [-31, 30]", d);
}

void eval_requantize(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int32_t mult = (int32_t)tensor_get(in[1], 0), shift = (int32_t)tensor_get(in[2], 0);
  const int8_t *x = in[0]->data;
  int8_t *y = out->data;
  for (int64_t i = 0; i < shape_numel(&out->shape); i++) {
    int64_t v = (int64_t)ir_quant_mbqm((int32_t)x[i] - n->attr.quant.x_zp, mult, shift) +
                n->attr.quant.out_zp;
    y[i] = (int8_t)clamp64(v, n->attr.quant.qmin, n->attr.quant.qmax);
  }
}
