/* import/ops_quant.c — the quantized ONNX ops (issue 19; docs/onnx.md "Quantized models",
 * docs/int8.md "ONNX import"):
 *
 *   QuantizeLinear(x, s, zp)      quantize(x, s, zp, half_even = true): ONNX rounds x / s half
 *                                 to even and saturates (lathe's default is TFLite's half away)
 *   DequantizeLinear(q, s, zp)    dequantize(q, s, zp); a constant q (weights, int32 biases)
 *                                 is folded at import time, in float32 like ONNX Runtime
 *   QLinearMatMul, QLinearConv    the integer sum of (q - zp) products computed exactly in f64
 *                                 (|sum| < 2^53), then ONNX Runtime's float requantization
 *                                 (MlasRequantizeOutput): quantize(f32(acc) * m, 1, y_zp,
 *                                 half_even) with m = f32(f32(a_s * b_s) / y_s) per column or
 *                                 output channel; QLinearConv's int32 bias joins the sum
 *   MatMulInteger, ConvInteger    the same exact sum, cast to i32
 *
 * uint8: lathe's quantized dtype is i8, so an ONNX uint8 tensor q is carried as the i8 q - 128
 * with its zero point zp - 128 (exact both ways: clamp(r + zp, 0, 255) - 128 equals
 * clamp(r + zp - 128, -128, 127), and s * (q - zp) is unchanged), as TFLite's converter does;
 * the value's u8_shifted flag says so. A uint8 graph input (a u8 tensor) is shifted where a
 * dequantize reads it; a shifted graph output is shifted back to u8 (imp_quant_output).
 *
 * Invariants: scales and zero points are import-time constants; scales float32, finite and
 * > 0; per tensor (one value) or per axis (1-D, the axis' length); zero points int8 or uint8
 * (DequantizeLinear also int32 with zero points 0); other element types (int16, int4,
 * float8, ...) are refused naming the node, the input and the type.
 */
#include "import/imp.h"

#include <math.h>
#include <string.h>

enum {
  T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
  T_UINT8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8,
  T_INT8 = ONNX__TENSOR_PROTO__DATA_TYPE__INT8,
  T_INT32 = ONNX__TENSOR_PROTO__DATA_TYPE__INT32,
};

const char *imp_onnx_type_name(int32_t et) {
  static const char *const names[] = {
      "undefined",      "float",      "uint8",          "int8",       "uint16",   "int16",
      "int32",          "int64",      "string",         "bool",       "float16",  "double",
      "uint32",         "uint64",     "complex64",      "complex128", "bfloat16", "float8e4m3fn",
      "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz", "uint4",      "int4",     "float4e2m1"};
  return et >= 0 && et < (int32_t)(sizeof names / sizeof *names) ? names[et] : "unknown";
}

/* the ONNX element type of v */
static int32_t elem_type(const ImpVal *v) {
  if (v->u8_shifted) return T_UINT8;
  if (v->onnx_type) return v->onnx_type;
  switch (v->dtype) {
  case DT_I8:
    return T_INT8;
  case DT_U8:
    return T_UINT8;
  case DT_I32:
    return T_INT32;
  case DT_F32:
    return T_FLOAT;
  default:
    return 0;
  }
}

/* lathe's value of v minus ONNX's: -128 for a shifted uint8, else 0 */
static int32_t offset_of(const ImpVal *v) {
  return v->u8_shifted ? -128 : 0;
}

/* input k's name and role, for messages: "input 1 ('x_scale', the scale)" */
static const char *in_name(Imp *im, int k, const char *role) {
  const Onnx__NodeProto *n = im->node;
  const char *nm = k < (int)n->n_input && n->input[k] ? n->input[k] : "";
  return imp_printf(im, "input %d ('%s', %s)", k, nm, role);
}

/* quantization parameters of one operand */
typedef struct QParam {
  int64_t n;    /* 1: per tensor; else per axis, one per index of the axis */
  float *scale; /* n scales (all 1 for the integer ops, which have none) */
  int32_t *zp;  /* n zero points, ONNX's values */
  int32_t type; /* the quantized element type: T_INT8, T_UINT8 (or T_INT32) */
} QParam;

/* the int8/uint8 (and, with i32_ok, int32) types; a message naming what else it is */
static bool quant_type_ok(Imp *im, int32_t t, bool i32_ok, const char *what) {
  if (t == T_INT8 || t == T_UINT8 || (i32_ok && t == T_INT32)) return true;
  return imp_fail(im, "%s is %s: expected int8 or uint8%s (lathe has no %s quantized tensors)",
                  what, imp_onnx_type_name(t), i32_ok ? " or int32" : "", imp_onnx_type_name(t));
}

/* a constant input k of one value or n_max (> 1: per axis; 1-D); its value count in *cnt */
static ImpVal *const_param(Imp *im, int k, const char *role, int64_t n_max, int64_t *cnt) {
  ImpVal *v = imp_in(im, k);
  if (!v) return NULL;
  const char *what = in_name(im, k, role);
  if (!v->has_const) {
    imp_fail(im,
             "%s must be a constant (an initializer or Constant): lathe needs the "
             "quantization parameters at import time",
             what);
    return NULL;
  }
  *cnt = shape_numel(&v->shape);
  if (v->shape.rank > 1 || (*cnt != 1 && *cnt != n_max)) {
    char s[200];
    if (n_max > 1)
      imp_fail(im, "%s has shape %s: expected one value (per tensor) or %lld (per axis)", what,
               shape_str(&v->shape, s, sizeof s), (long long)n_max);
    else
      imp_fail(im,
               "%s has shape %s: expected one value (only per-tensor quantization is "
               "supported here)",
               what, shape_str(&v->shape, s, sizeof s));
    return NULL;
  }
  return v;
}

/* scale input ks (-1: none) and zero point input kz (absent: 0 of type dflt) of an operand
 * whose per-axis length is axis_len (0: per tensor only) */
static bool read_qparam(Imp *im, int ks, int kz, int32_t dflt, bool i32_ok, int64_t axis_len,
                        QParam *q) {
  int64_t ns = 1, nz = 1, lim = axis_len > 0 ? axis_len : 1;
  ImpVal *s = ks >= 0 ? const_param(im, ks, "the scale", lim, &ns) : NULL;
  ImpVal *z = imp_in_opt(im, kz) ? const_param(im, kz, "the zero point", lim, &nz) : NULL;
  if ((ks >= 0 && !s) || (imp_in_opt(im, kz) && !z)) return false;
  if (s && z && ns != nz && ns != 1 && nz != 1)
    return imp_fail(im, "the scale has %lld values and the zero point %lld", (long long)ns,
                    (long long)nz);
  q->n = ns > nz ? ns : nz; /* one of them may be per tensor (ONNX Runtime accepts it) */
  q->type = z ? elem_type(z) : dflt;
  if (!quant_type_ok(im, q->type, i32_ok, in_name(im, kz, "the zero point"))) return false;
  if (s && (s->konst.dtype != DT_F32 || elem_type(s) != T_FLOAT))
    return imp_fail(im, "%s is %s: expected float32", in_name(im, ks, "the scale"),
                    imp_onnx_type_name(elem_type(s)));
  q->scale = arena_alloc(&im->arena, (size_t)q->n * sizeof *q->scale);
  q->zp = arena_alloc(&im->arena, (size_t)q->n * sizeof *q->zp);
  for (int64_t i = 0; i < q->n; i++) {
    q->scale[i] = s ? (float)tensor_get(&s->konst, ns == 1 ? 0 : i) : 1.0f;
    q->zp[i] = z ? (int32_t)imp_get_i64(&z->konst, nz == 1 ? 0 : i) : 0;
    if (!(isfinite(q->scale[i]) && q->scale[i] > 0))
      return imp_fail(im, "%s: element %lld is %g: a scale must be finite and > 0",
                      in_name(im, ks, "the scale"), (long long)i, (double)q->scale[i]);
    if (q->type == T_INT32 && q->zp[i] != 0)
      return imp_fail(im, "%s must be 0 for an int32 input, got %d",
                      in_name(im, kz, "the zero point"), (int)q->zp[i]);
  }
  return true;
}

/* a constant of dtype dt, shape s (from vals, n of them) as a param operand */
static const char *const_operand(Imp *im, const char *base, DType dt, const Shape *s,
                                 const double *vals) {
  ImpVal *v = imp_new_val(im, imp_printf(im, "\x06%s", base), dt, s);
  if (!v || !tensor_alloc(&v->konst, dt, s)) return NULL;
  v->has_const = true;
  v->initializer = true; /* a param even when all values are equal: keeps its dtype */
  for (int64_t i = 0; i < shape_numel(s); i++)
    tensor_set(&v->konst, i, vals[i]);
  return imp_ref_tensor(im, v);
}

/* the shape of a per-axis parameter of an operand of rank r: n at axis, 1 elsewhere */
static Shape axis_shape(int r, int axis, int64_t n) {
  Shape s = {.rank = r};
  for (int i = 0; i < r; i++)
    s.dim[i] = i == axis ? n : 1;
  return s;
}

/* the scale (as f32) or zero point (plus off, as i32) operand text of q for x of rank r */
static const char *param_text(Imp *im, const QParam *q, bool zp, int32_t off, int r, int axis,
                              const char *base) {
  if (q->n == 1) return zp ? imp_printf(im, "%d", (int)(q->zp[0] + off)) : imp_num(im, q->scale[0]);
  double *v = arena_alloc(&im->arena, (size_t)q->n * sizeof *v);
  for (int64_t i = 0; i < q->n; i++)
    v[i] = zp ? q->zp[i] + off : q->scale[i];
  Shape s = axis_shape(r, axis, q->n);
  const char *p = const_operand(im, base, DT_F32, &s, v);
  return p && zp ? imp_printf(im, "cast(%s, i32)", p) : p;
}

/* the axis attribute of QuantizeLinear/DequantizeLinear (opset >= 13), checked only when the
 * scale is per axis (ONNX ignores it for a per-tensor scale) */
static bool quant_axis(Imp *im, const Onnx__NodeProto *n, const ImpVal *x, int *axis) {
  *axis = 0;
  int64_t a = imp_attr_int(n, "axis", 1);
  if (imp_attr_int(n, "block_size", 0) != 0)
    return imp_fail(im, "blocked quantization (block_size) is not supported");
  ImpVal *s = imp_in_opt(im, 1);
  if (x->shape.rank == 0 || !s || shape_numel(&s->shape) == 1) return true;
  *axis = imp_axis(im, a, x->shape.rank);
  if (*axis < 0) return false;
  if (*axis == 0 && x->shape.dyn)
    return imp_fail(im, "per-axis quantization along the dynamic batch axis is not supported");
  return true;
}

/* QuantizeLinear(x, y_scale, y_zero_point = uint8 0; axis = 1) */
static bool map_quantize(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int axis;
  if (!x || !quant_axis(im, n, x, &axis)) return false;
  if (x->dtype != DT_F32 && x->dtype != DT_I32)
    return imp_fail(im, "%s is %s: expected float32 (or int32)", in_name(im, 0, "x"),
                    imp_onnx_type_name(elem_type(x)));
  QParam q;
  int64_t len = x->shape.rank && im->opset >= 13 ? x->shape.dim[axis] : 0;
  if (!read_qparam(im, 1, 2, T_UINT8, false, len, &q)) return false;
  const char *rx = imp_ref_tensor(im, x);
  if (!rx) return false;
  if (x->dtype == DT_I32) rx = imp_printf(im, "cast(%s, f32)", rx);
  int32_t off = q.type == T_UINT8 ? -128 : 0;
  const char *base = n->input[1];
  const char *rs = param_text(im, &q, false, 0, x->shape.rank, axis, base);
  const char *rz = param_text(im, &q, true, off, x->shape.rank, axis,
                              n->n_input > 2 && *n->input[2] ? n->input[2] : "zero_point");
  if (!rs || !rz) return false;
  ImpVal *y =
      imp_bind(im, 0, DT_I8, &x->shape, "quantize(%s, %s, %s, half_even = true)", rx, rs, rz);
  if (!y) return false;
  y->onnx_type = q.type;
  y->u8_shifted = q.type == T_UINT8;
  return true;
}

/* DequantizeLinear of a constant: (float)(q - zp) * scale in float32, as ONNX Runtime */
static bool fold_dequantize(Imp *im, const ImpVal *x, const QParam *q, int axis) {
  Tensor t;
  if (!tensor_alloc(&t, DT_F32, &x->shape)) return imp_fail(im, "out of memory");
  int64_t count = shape_numel(&x->shape), inner = 1;
  for (int i = axis + 1; i < x->shape.rank; i++)
    inner *= x->shape.dim[i];
  for (int64_t i = 0; i < count; i++) {
    int64_t c = q->n == 1 ? 0 : (i / inner) % q->n;
    float d = (float)(imp_get_i64(&x->konst, i) - q->zp[c]);
    ((float *)t.data)[i] = d * q->scale[c];
  }
  imp_bind_const(im, 0, &t);
  return true;
}

/* DequantizeLinear(x, x_scale, x_zero_point = 0; axis = 1) */
static bool map_dequantize(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int axis;
  if (!x || !quant_axis(im, n, x, &axis)) return false;
  int32_t xt = elem_type(x);
  if (!quant_type_ok(im, xt, true, in_name(im, 0, "x"))) return false;
  QParam q;
  int64_t len = x->shape.rank && im->opset >= 13 ? x->shape.dim[axis] : 0;
  if (!read_qparam(im, 1, 2, xt, true, len, &q)) return false;
  if (q.type != xt)
    return imp_fail(im, "the zero point is %s but x is %s: they must have one type",
                    imp_onnx_type_name(q.type), imp_onnx_type_name(xt));
  if (x->has_const && !x->ident) return fold_dequantize(im, x, &q, axis);
  const char *rx = imp_ref_tensor(im, x);
  const char *rs = param_text(im, &q, false, 0, x->shape.rank, axis, n->input[1]);
  if (!rx || !rs) return false;
  if (xt == T_INT32) /* zero points 0: float32(x) * scale, one rounding each like ORT */
    return imp_bind(im, 0, DT_F32, &x->shape, "cast(%s, f32) * %s", rx, rs) != NULL;
  int32_t off = offset_of(x);
  if (x->dtype == DT_U8) /* a uint8 graph input: shifted to i8 here */
    rx = imp_printf(im, "cast(cast(%s, i32) - 128, i8)", rx), off = -128;
  else if (x->dtype != DT_I8)
    return imp_fail(im, "%s is a %s tensor: expected int8 or uint8", in_name(im, 0, "x"),
                    dtype_name(x->dtype));
  const char *rz = param_text(im, &q, true, off, x->shape.rank, axis,
                              n->n_input > 2 && *n->input[2] ? n->input[2] : "zero_point");
  if (!rz) return false;
  return imp_bind(im, 0, DT_F32, &x->shape, "dequantize(%s, %s, %s)", rx, rs, rz) != NULL;
}

const char *imp_quant_output(Imp *im, ImpVal *v, const char *ref) {
  if (!v->u8_shifted) return ref;
  ImpVal *u = imp_new_val(im, "\x02", DT_U8, &v->shape);
  if (!u) return NULL;
  u->ident = imp_ident(im, "t_", imp_printf(im, "%s_u8", v->onnx));
  fprintf(im->out, "  %s = cast(cast(%s, i32) + 128, u8)  # uint8 from its shifted i8\n", u->ident,
          ref);
  return u->ident;
}

/* ---- the integer sums: QLinearMatMul, QLinearConv, MatMulInteger, ConvInteger ---------- */

/* the f64 operand text of (v - zp) for a quantized input k; zero points per tensor, or per
 * index of axis `axis` of v (q->n of them) */
static const char *centered(Imp *im, int k, const char *role, const QParam *q, int axis) {
  ImpVal *v = imp_in(im, k);
  if (!v) return NULL;
  int32_t t = elem_type(v);
  if (!quant_type_ok(im, t, false, in_name(im, k, role))) return NULL;
  if (t != q->type) {
    imp_fail(im, "%s is %s but its zero point is %s: they must have one type", in_name(im, k, role),
             imp_onnx_type_name(t), imp_onnx_type_name(q->type));
    return NULL;
  }
  int r = v->shape.rank;
  int64_t count = shape_numel(&v->shape), inner = 1;
  for (int i = axis + 1; i < r; i++)
    inner *= v->shape.dim[i];
  if (v->has_const && !v->ident) { /* weights: (q - zp) computed now */
    double *d = arena_alloc(&im->arena, (size_t)count * sizeof *d);
    for (int64_t i = 0; i < count; i++)
      d[i] = (double)(imp_get_i64(&v->konst, i) - q->zp[q->n == 1 ? 0 : (i / inner) % q->n]);
    return const_operand(im, v->onnx, DT_F64, &v->shape, d);
  }
  const char *rv = imp_ref_tensor(im, v);
  if (!rv) return NULL;
  int32_t off = offset_of(v);
  bool zero = true;
  for (int64_t i = 0; i < q->n; i++)
    zero = zero && q->zp[i] + off == 0;
  if (zero) return imp_printf(im, "cast(%s, f64)", rv);
  double *z = arena_alloc(&im->arena, (size_t)q->n * sizeof *z);
  for (int64_t i = 0; i < q->n; i++)
    z[i] = q->zp[i] + off;
  Shape zs = q->n == 1 ? (Shape){0} : axis_shape(r, axis, q->n);
  const char *rz = const_operand(im, imp_printf(im, "%s_zp", v->onnx), DT_F64, &zs, z);
  return rz ? imp_printf(im, "(cast(%s, f64) - %s)", rv, rz) : NULL;
}

/* requantization multipliers f32(f32(sx * sw[c]) / sy), as ONNX Runtime computes them */
static const char *multipliers(Imp *im, const QParam *x, const QParam *w, const QParam *y, int rank,
                               int axis) {
  double *m = arena_alloc(&im->arena, (size_t)w->n * sizeof *m);
  for (int64_t c = 0; c < w->n; c++) {
    float p = x->scale[0] * w->scale[c];
    m[c] = (double)(p / y->scale[0]);
  }
  if (w->n == 1) return imp_num(im, m[0]);
  Shape s = axis_shape(rank, axis, w->n);
  return const_operand(im, imp_printf(im, "%s_multiplier", im->node->output[0]), DT_F32, &s, m);
}

/* output 0 = quantize(f32(acc) * m, 1, y_zp, half_even) of type y->type */
static bool requantize(Imp *im, const char *acc, const Shape *s, const char *m, const QParam *y) {
  int32_t off = y->type == T_UINT8 ? -128 : 0;
  const char *a = imp_let(im, imp_printf(im, "%s_acc", im->node->output[0]), "%s", acc);
  if (!a) return false;
  ImpVal *v = imp_bind(im, 0, DT_I8, s, "quantize(cast(%s, f32) * %s, 1.0, %d, half_even = true)",
                       a, m, (int)(y->zp[0] + off));
  if (!v) return false;
  v->onnx_type = y->type;
  v->u8_shifted = y->type == T_UINT8;
  return true;
}

/* a [.., M, K] @ b [K, N] or b [.., K, N] with a's batch dims (b's parameters per column):
 * the result's shape */
static bool matmul_shape(Imp *im, int ka, int kb, Shape *out) {
  ImpVal *a = imp_in(im, ka), *b = imp_in(im, kb);
  if (!a || !b) return false;
  int r = a->shape.rank, rb = b->shape.rank;
  bool ok = r >= 2 && (rb == 2 || rb == r) && a->shape.dim[r - 1] == b->shape.dim[rb - 2];
  for (int i = 0; ok && rb == r && i < r - 2; i++)
    ok = a->shape.dim[i] == b->shape.dim[i] && !b->shape.dyn;
  if (!ok) {
    char sa[200], sb[200];
    return imp_fail(im,
                    "expected a [.., M, K] and b [K, N] or b with a's batch dims, got %s and %s",
                    shape_str(&a->shape, sa, sizeof sa), shape_str(&b->shape, sb, sizeof sb));
  }
  *out = a->shape;
  out->dim[r - 1] = b->shape.dim[rb - 1];
  return true;
}

/* the element type of input k (0 when absent) */
static int32_t in_type(Imp *im, int k) {
  ImpVal *v = imp_in_opt(im, k);
  return v ? elem_type(v) : 0;
}

static int64_t dim_of(Imp *im, int k, int axis) {
  ImpVal *v = imp_in_opt(im, k);
  return v && v->shape.rank > axis && axis >= 0 ? v->shape.dim[axis] : 0;
}

/* the last axis of input k (b's columns) and its length */
static int last(Imp *im, int k) {
  ImpVal *v = imp_in_opt(im, k);
  return v && v->shape.rank ? v->shape.rank - 1 : 0;
}
static int64_t last_dim(Imp *im, int k) {
  return dim_of(im, k, last(im, k));
}

/* QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): a per tensor, b per
 * tensor or per column */
static bool map_qlinear_matmul(Imp *im, const Onnx__NodeProto *n) {
  (void)n;
  Shape s;
  QParam qa, qb, qy;
  if (!matmul_shape(im, 0, 3, &s) || !read_qparam(im, 1, 2, in_type(im, 0), false, 0, &qa) ||
      !read_qparam(im, 4, 5, in_type(im, 3), false, last_dim(im, 3), &qb) ||
      !read_qparam(im, 6, 7, T_UINT8, false, 0, &qy))
    return false;
  const char *ra = centered(im, 0, "a", &qa, 0), *rb = centered(im, 3, "b", &qb, last(im, 3));
  const char *m = ra && rb ? multipliers(im, &qa, &qb, &qy, 1, 0) : NULL;
  return m && requantize(im, imp_printf(im, "%s @ %s", ra, rb), &s, m, &qy);
}

/* MatMulInteger(a, b, a_zp = 0, b_zp = 0) -> int32: a per tensor, b per tensor or column */
static bool map_matmul_integer(Imp *im, const Onnx__NodeProto *n) {
  (void)n;
  Shape s;
  QParam qa, qb;
  ImpVal *a = imp_in(im, 0), *b = imp_in(im, 1);
  if (!a || !b || !matmul_shape(im, 0, 1, &s) ||
      !read_qparam(im, -1, 2, elem_type(a), false, 0, &qa) ||
      !read_qparam(im, -1, 3, elem_type(b), false, last_dim(im, 1), &qb))
    return false;
  const char *ra = centered(im, 0, "a", &qa, 0), *rb = centered(im, 1, "b", &qb, last(im, 1));
  if (!ra || !rb) return false;
  return imp_bind(im, 0, DT_I32, &s, "cast(%s @ %s, i32)", ra, rb) != NULL;
}

/* the convolution sum of x (input kx) and w (input kw) in f64, its shape in s */
static const char *conv_sum(Imp *im, const Onnx__NodeProto *n, int kx, const QParam *qx, int kw,
                            const QParam *qw, Shape *s) {
  ImpVal *x = imp_in(im, kx), *w = imp_in(im, kw);
  if (!x || !w) return NULL;
  if (x->shape.rank < 3 || x->shape.rank > 4 || w->shape.rank != x->shape.rank) {
    char sx[200], sw[200];
    imp_fail(im, "expected x [N, C, ...] and w [M, C/group, ...] of rank 3 or 4, got %s and %s",
             shape_str(&x->shape, sx, sizeof sx), shape_str(&w->shape, sw, sizeof sw));
    return NULL;
  }
  const char *rx = centered(im, kx, "x", qx, 0), *rw = centered(im, kw, "w", qw, 0);
  if (!rx || !rw) return NULL;
  return imp_conv_expr(im, n, rx, &x->shape, rw, &w->shape, s);
}

/* QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B = none): x per tensor, w
 * per tensor or per output channel, B int32 [M] */
static bool map_qlinear_conv(Imp *im, const Onnx__NodeProto *n) {
  QParam qx, qw, qy;
  Shape s;
  if (!read_qparam(im, 1, 2, in_type(im, 0), false, 0, &qx) ||
      !read_qparam(im, 4, 5, in_type(im, 3), false, dim_of(im, 3, 0), &qw) ||
      !read_qparam(im, 6, 7, T_UINT8, false, 0, &qy))
    return false;
  const char *acc = conv_sum(im, n, 0, &qx, 3, &qw, &s);
  if (!acc) return false;
  ImpVal *b = imp_in_opt(im, 8);
  if (b) {
    if (elem_type(b) != T_INT32 || b->shape.rank != 1 || b->shape.dim[0] != s.dim[1])
      return imp_fail(im, "%s must be int32 [%lld]", in_name(im, 8, "the bias"),
                      (long long)s.dim[1]);
    double *d = NULL;
    if (b->has_const && !b->ident) { /* exact in f64 for any int32 */
      d = arena_alloc(&im->arena, (size_t)s.dim[1] * sizeof *d);
      for (int64_t i = 0; i < s.dim[1]; i++)
        d[i] = (double)imp_get_i64(&b->konst, i);
    }
    const char *rb = d ? const_operand(im, b->onnx, DT_F64, &b->shape, d) : imp_ref_tensor(im, b);
    if (!rb) return false;
    acc = imp_printf(im, "%s + reshape(cast(%s, f64), [%lld%s])", acc, rb, (long long)s.dim[1],
                     s.rank == 4 ? ", 1, 1" : ", 1");
  }
  const char *m = multipliers(im, &qx, &qw, &qy, s.rank, 1);
  return m && requantize(im, acc, &s, m, &qy);
}

/* ConvInteger(x, w, x_zp = 0, w_zp = 0) -> int32 */
static bool map_conv_integer(Imp *im, const Onnx__NodeProto *n) {
  QParam qx, qw;
  ImpVal *x = imp_in(im, 0), *w = imp_in(im, 1);
  Shape s;
  if (!x || !w || !read_qparam(im, -1, 2, elem_type(x), false, 0, &qx) ||
      !read_qparam(im, -1, 3, elem_type(w), false, dim_of(im, 1, 0), &qw))
    return false;
  const char *acc = conv_sum(im, n, 0, &qx, 1, &qw, &s);
  return acc && imp_bind(im, 0, DT_I32, &s, "cast(%s, i32)", acc) != NULL;
}

ImpOpFn imp_op_quant(const char *op) {
  static const struct {
    const char *name;
    ImpOpFn fn;
  } table[] = {
      {"QuantizeLinear", map_quantize},      {"DequantizeLinear", map_dequantize},
      {"QLinearMatMul", map_qlinear_matmul}, {"MatMulInteger", map_matmul_integer},
      {"QLinearConv", map_qlinear_conv},     {"ConvInteger", map_conv_integer},
  };
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    if (strcmp(table[i].name, op) == 0) return table[i].fn;
  return NULL;
}
