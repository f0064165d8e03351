/* codegen/lower_quant.c — C loop nests for the int8 quantization ops (docs/int8.md):
 * QUANTIZE, DEQUANTIZE, FAKE_QUANT, FAKE_QUANT_MASK (one loop nest over x, scale and zero
 * point NumPy-broadcast), QDENSE and QCONV2D (int32 sums, then lathe_requant of the kernel
 * library, codegen/kernels/quant.c), QMAX_POOL2D and QAVG_POOL2D (plain window loops), QADD
 * (lathe_qadd of the kernel library per broadcast pair), QSOFTMAX (lathe_qsoftmax per row of
 * the last axis) and REQUANTIZE (lathe_requant per element).
 *
 * Semantics match ir/quant.c exactly: the division x / scale in x's dtype (float32 for f32:
 * C evaluates float / float in float), roundf/round (half away from zero, computed inline as
 * trunc(q) + copysign(|q - trunc(q)| >= 0.5, q), the same value for every float including
 * NaN and infinities; rintf/rint, half to even in the default rounding mode, for quantize
 * {half_even}), the clamp with a
 * NaN giving qmin (!(r >= qmin)), dequantize's product in double. These ops are FUSE_OPAQUE,
 * so no output shares an input's buffer. A run-time batch is refused by infer (ir/quant.c).
 */
#include "lower_hooks.h"
#include "quant_gemm.h"

/* the element expressions of x, scale and zp at the output's loop variables */
static void operands(CgFunc *f, const Node *n, const char **vars, const char **x) {
  for (int k = 0; k < 3; k++)
    x[k] = cg_at(f, n->in[k],
                 cg_broadcast_index(f, &graph_node(f->g, n->in[k])->shape, &n->shape, vars));
}

bool lower_quant(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *vars[IR_MAX_RANK], *x[3];
  DType xt = graph_node(f->g, n->in[0])->dtype;
  const char *out_t = dtype_c_name(n->dtype),
             *lo = cg_literal(f->arena, DT_F64, n->attr.quant.qmin),
             *hi = cg_literal(f->arena, DT_F64, n->attr.quant.qmax);
  cg_nest_open(f, &n->shape, vars);
  operands(f, n, vars, x);
  const char *y = cg_at(f, id, cg_broadcast_index(f, &n->shape, &n->shape, vars));
  if (n->op == OP_DEQUANTIZE) {
    cg_line(f->e, "%s = (%s)((double)%s * (double)((int32_t)%s - %s));", y, out_t, x[1], x[0],
            x[2]);
    cg_nest_close(f, &n->shape, vars);
    return true;
  }
  /* r = round_half_away(x / scale) + zp, in double (exact: an integer of at most 2^128) */
  const char *r = cg_fresh(f->e, "r");
  if (n->attr.quant.half_even) {
    cg_line(f->e, "const double %s = (double)%s(%s / %s) + (double)%s;", r,
            xt == DT_F32 ? "rintf" : "rint", x[0], x[1], x[2]);
  } else { /* roundf's result, inline: truncf is one instruction (SSE4.1, NEON), roundf a call */
    const char *q = cg_fresh(f->e, "q"), *t = cg_fresh(f->e, "t");
    const char *ft = xt == DT_F32 ? "float" : "double", *sfx = xt == DT_F32 ? "f" : "";
    cg_line(f->e, "const %s %s = %s / %s, %s = trunc%s(%s); /* |q - t| < 1 is exact */", ft, q,
            x[0], x[1], t, sfx, q);
    cg_line(f->e,
            "const double %s = (double)(%s + copysign%s((%s)(fabs%s(%s - %s) >= 0.5%s), %s)) + "
            "(double)%s;",
            r, t, sfx, ft, sfx, q, t, sfx, q, x[2]);
  }
  const char *clamped =
      arena_printf(f->arena, "(!(%s >= %s) ? %s : %s > %s ? %s : %s)", r, lo, lo, r, hi, hi, r);
  if (n->op == OP_QUANTIZE)
    cg_line(f->e, "%s = (int8_t)%s;", y, clamped);
  else if (n->op == OP_FAKE_QUANT)
    cg_line(f->e, "%s = (%s)((double)%s * (%s - (double)%s));", y, out_t, x[1], clamped, x[2]);
  else
    cg_line(f->e, "%s = %s >= %s && %s <= %s ? %s : %s;", y, r, lo, r, hi,
            cg_literal(f->arena, n->dtype, 1), cg_literal(f->arena, n->dtype, 0));
  cg_nest_close(f, &n->shape, vars);
  return true;
}

/* element o of a per-channel operand, or the scalar */
static const char *channel(CgFunc *f, NodeId in, const char *o) {
  return cg_at(f, in, graph_node(f->g, in)->shape.rank && o ? o : "0");
}

/* y[r, o] = lathe_requant(sum_k (x[r, k] - x_zp) * w[k, o], bias[o], mult[o], shift[o], ...):
 * the plain i-o-k loops of the portable C99 kernel */
bool lower_qdense(CgFunc *f, NodeId id) {
  if (cg_qgemm_applies(f->g, id, f->opt)) return cg_qgemm_lower(f, id); /* baked weights */
  const Node *n = graph_node(f->g, id);
  const Shape *ws = &graph_node(f->g, n->in[1])->shape;
  int64_t inner = ws->dim[0], units = ws->dim[1], rows = shape_numel(&n->shape) / units;
  cg_line(f->e, "/* int8 dense: int32 sums of (x - x_zp) * w, x_zp = %d, then bias, requantize */",
          (int)n->attr.quant.x_zp);
  const char *r = cg_loop_open(f, "r", rows), *o = cg_loop_open(f, "o", units);
  const char *acc = cg_fresh(f->e, "acc");
  cg_line(f->e, "int32_t %s = 0;", acc);
  const char *k = cg_loop_open(f, "k", inner);
  const char *rv[2] = {r, k}, *kv[2] = {k, o}, *ov[2] = {r, o};
  int64_t xs[2] = {inner, 1}, wst[2] = {units, 1};
  cg_line(f->e, "%s += ((int32_t)%s - (%d)) * (int32_t)%s;", acc,
          cg_at(f, n->in[0], cg_index_expr(f->arena, 2, rv, xs)), (int)n->attr.quant.x_zp,
          cg_at(f, n->in[1], cg_index_expr(f->arena, 2, kv, wst)));
  cg_loop_close(f, k);
  /* bias, multiplier, shift; out_zp, qmin, qmax */
  cg_line(f->e, "%s = lathe_requant(%s, %s,", cg_at(f, id, cg_index_expr(f->arena, 2, ov, wst)),
          acc, channel(f, n->in[2], o));
  cg_line(f->e, "    %s, %s, %d, %d, %d);", channel(f, n->in[3], o), channel(f, n->in[4], o),
          (int)n->attr.quant.out_zp, (int)n->attr.quant.qmin, (int)n->attr.quant.qmax);
  cg_loop_close(f, o);
  cg_loop_close(f, r);
  return true;
}

/* the input row (or column) of a tap: out * stride + k * dilation - pad */
static const char *tap(CgFunc *f, const char *out, const char *k, int stride, int dil, int pad) {
  const char *v[2] = {out, k};
  int64_t st[2] = {stride, dil};
  const char *e = cg_index_expr(f->arena, 2, v, st);
  return pad ? arena_printf(f->arena, "%s - %d", e, pad) : e;
}

/* the input channel of tap channel c (NULL: 0) of output channel o (NULL: 0): c, or with
 * groups, (o / (O / groups)) * (C / groups) + c; NULL when it is always 0 */
static const char *qconv_channel(CgFunc *f, const Node *n, const int64_t *wd, const char *o,
                                 const char *c) {
  int64_t G = n->attr.quant.groups > 1 ? n->attr.quant.groups : 1, per = wd[0] / G;
  if (G == 1 || !o) return c;
  const char *group = per == 1 ? o : arena_printf(f->arena, "%s / %lld", o, (long long)per);
  const char *first =
      wd[1] == 1 ? group : arena_printf(f->arena, "%s * %lld", group, (long long)wd[1]);
  return arena_printf(f->arena, c ? "(%s + %s)" : "(%s)", first, c);
}

/* y[b, o, p, q] = lathe_requant(sum over c, i, j of (x - x_zp) * w, ...): plain loops, the
 * padded taps skipped (they would add (x_zp - x_zp) * w = 0); with groups, c runs over the
 * C / groups channels of o's group */
bool lower_qconv2d(CgFunc *f, NodeId id) {
  if (cg_qgemm_applies(f->g, id, f->opt)) return cg_qgemm_lower(f, id); /* baked weights */
  const Node *n = graph_node(f->g, id);
  const int64_t *xd = graph_node(f->g, n->in[0])->shape.dim;
  const int64_t *wd = graph_node(f->g, n->in[1])->shape.dim, *od = n->shape.dim;
  const int32_t *st = n->attr.quant.stride, *dil = n->attr.quant.dilation, *pad = n->attr.quant.pad;
  bool padded = pad[0] || pad[1] || pad[2] || pad[3];
  cg_line(f->e, "/* int8 convolution%s: int32 sums of (x - x_zp) * w, x_zp = %d%s */",
          n->attr.quant.groups > 1
              ? arena_printf(f->arena, ", %d groups", (int)n->attr.quant.groups)
              : "",
          (int)n->attr.quant.x_zp, padded ? ", padded taps skipped" : "");
  const char *o4[4];
  for (int k = 0; k < 4; k++)
    o4[k] = cg_loop_open(f, (const char *[]){"b", "o", "oh", "ow"}[k], od[k]);
  const char *acc = cg_fresh(f->e, "acc");
  cg_line(f->e, "int32_t %s = 0;", acc);
  const char *c = cg_loop_open(f, "c", wd[1]), *i = cg_loop_open(f, "i", wd[2]),
             *j = cg_loop_open(f, "j", wd[3]);
  const char *h = cg_fresh(f->e, "h"), *v = cg_fresh(f->e, "v");
  cg_line(f->e, "const int64_t %s = %s, %s = %s;", h, tap(f, o4[2], i, st[0], dil[0], pad[0]), v,
          tap(f, o4[3], j, st[1], dil[1], pad[1]));
  const char *xv[4] = {o4[0], qconv_channel(f, n, wd, o4[1], c), h, v}, *wv[4] = {o4[1], c, i, j};
  int64_t xs[4] = {xd[1] * xd[2] * xd[3], xd[2] * xd[3], xd[3], 1};
  int64_t ws[4] = {wd[1] * wd[2] * wd[3], wd[2] * wd[3], wd[3], 1};
  const char *term =
      arena_printf(f->arena, "((int32_t)%s - (%d)) * (int32_t)%s",
                   cg_at(f, n->in[0], cg_index_expr(f->arena, 4, xv, xs)), (int)n->attr.quant.x_zp,
                   cg_at(f, n->in[1], cg_index_expr(f->arena, 4, wv, ws)));
  if (padded)
    cg_open(f->e, "if (%s >= 0 && %s < %lld && %s >= 0 && %s < %lld)", h, h, (long long)xd[2], v, v,
            (long long)xd[3]);
  cg_line(f->e, "%s += %s;", acc, term);
  if (padded) cg_close(f->e);
  cg_loop_close(f, j);
  cg_loop_close(f, i);
  cg_loop_close(f, c);
  int64_t ys[4] = {od[1] * od[2] * od[3], od[2] * od[3], od[3], 1};
  cg_line(f->e, "%s = lathe_requant(%s, %s,", cg_at(f, id, cg_index_expr(f->arena, 4, o4, ys)), acc,
          channel(f, n->in[2], o4[1]));
  cg_line(f->e, "    %s, %s, %d, %d, %d);", channel(f, n->in[3], o4[1]),
          channel(f, n->in[4], o4[1]), (int)n->attr.quant.out_zp, (int)n->attr.quant.qmin,
          (int)n->attr.quant.qmax);
  for (int k = 3; k >= 0; k--)
    cg_loop_close(f, o4[k]);
  return true;
}

/* the taps of a pool window, (oh, ow) the output's loop variables: opens the i, j loops and,
 * when the window can reach the padding, the test that the tap is inside the image; returns
 * the element of x at the tap. The caller closes the test and the two loops. */
static const char *qpool_tap(CgFunc *f, const Node *n, const char *plane, const char *oh,
                             const char *ow, const char **loops, bool *padded) {
  const struct IrConvAttr *a = &n->attr.conv;
  const int64_t *xd = graph_node(f->g, n->in[0])->shape.dim;
  loops[0] = cg_loop_open(f, "i", a->kernel[0]);
  loops[1] = cg_loop_open(f, "j", a->kernel[1]);
  const char *h = cg_fresh(f->e, "h"), *v = cg_fresh(f->e, "v");
  cg_line(f->e, "const int64_t %s = %s, %s = %s;", h,
          tap(f, oh, loops[0], a->stride[0], a->dilation[0], a->pad[0]), v,
          tap(f, ow, loops[1], a->stride[1], a->dilation[1], a->pad[1]));
  *padded = a->pad[0] || a->pad[1] || a->pad[2] || a->pad[3];
  if (*padded)
    cg_open(f->e, "if (%s >= 0 && %s < %lld && %s >= 0 && %s < %lld)", h, h, (long long)xd[2], v, v,
            (long long)xd[3]);
  const char *xv[3] = {plane, h, v};
  int64_t xs[3] = {xd[2] * xd[3], xd[3], 1};
  return cg_at(f, n->in[0], cg_index_expr(f->arena, 3, xv, xs));
}

/* qmax_pool2d: each window's max; qavg_pool2d: TFLite's average, the sum of the taps inside
 * the image over their count rounded half away from zero by C's truncating division. Plain
 * loops over the N * C planes (ir/quant.c's qpool_window) */
bool lower_qpool2d(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const int64_t *od = n->shape.dim;
  const struct IrConvAttr *a = &n->attr.conv;
  bool avg = n->op == OP_QAVG_POOL2D;
  cg_line(f->e, "/* int8 %s pool %dx%d, stride %dx%d: %s */", avg ? "average" : "max",
          (int)a->kernel[0], (int)a->kernel[1], (int)a->stride[0], (int)a->stride[1],
          avg ? "the sum over the count, half away from zero" : "the input's scale and zero point");
  const char *o3[3] = {cg_loop_open(f, "plane", od[0] * od[1]), cg_loop_open(f, "oh", od[2]),
                       cg_loop_open(f, "ow", od[3])};
  const char *acc = cg_fresh(f->e, avg ? "sum" : "m"), *cnt = cg_fresh(f->e, "count"), *loops[2];
  cg_line(f->e, "int32_t %s = %s;", acc, avg ? "0" : "-128");
  bool padded;
  const char *e = NULL;
  if (avg && a->pad[0] + a->pad[1] + a->pad[2] + a->pad[3] > 0)
    cg_line(f->e, "int32_t %s = 0;", cnt);
  e = qpool_tap(f, n, o3[0], o3[1], o3[2], loops, &padded);
  if (avg) {
    cg_line(f->e, "%s += %s;%s", acc, e, padded ? arena_printf(f->arena, " %s += 1;", cnt) : "");
  } else {
    const char *t = cg_fresh(f->e, "t");
    cg_line(f->e, "const int32_t %s = %s;", t, e);
    cg_line(f->e, "%s = %s > %s ? %s : %s;", acc, t, acc, t, acc);
  }
  if (padded) cg_close(f->e);
  cg_loop_close(f, loops[1]);
  cg_loop_close(f, loops[0]);
  if (!padded) cnt = arena_printf(f->arena, "%lld", (long long)a->kernel[0] * a->kernel[1]);
  int64_t ys[3] = {od[2] * od[3], od[3], 1};
  const char *y = cg_at(f, id, cg_index_expr(f->arena, 3, o3, ys));
  if (avg)
    cg_line(f->e, "%s = (int8_t)(%s > 0 ? (%s + %s / 2) / %s : (%s - %s / 2) / %s);", y, acc, acc,
            cnt, cnt, acc, cnt, cnt);
  else
    cg_line(f->e, "%s = (int8_t)%s;", y, acc);
  for (int k = 2; k >= 0; k--)
    cg_loop_close(f, o3[k]);
  return true;
}

/* qadd: lathe_qadd (codegen/kernels/quant.c) on each broadcast pair, its nine integer
 * parameters (zero points, multipliers, shifts of a, b and the result) in one array */
bool lower_qadd(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *p = cg_fresh(f->e, "qp"), *el[9];
  for (int k = 0; k < 9; k++)
    el[k] = cg_at(f, n->in[2 + k / 3], (const char *[]){"0", "1", "2"}[k % 3]);
  cg_line(f->e, "/* int8 add (TFLite's ADD): zero points, multipliers, shifts of a, b, result */");
  cg_line(f->e, "const int32_t %s[9] = {%s, %s, %s,", p, el[0], el[1], el[2]);
  cg_line(f->e, "    %s, %s, %s, %s, %s, %s};", el[3], el[4], el[5], el[6], el[7], el[8]);
  const char *vars[IR_MAX_RANK];
  cg_nest_open(f, &n->shape, vars);
  const char *x[2];
  for (int k = 0; k < 2; k++)
    x[k] = cg_at(f, n->in[k],
                 cg_broadcast_index(f, &graph_node(f->g, n->in[k])->shape, &n->shape, vars));
  cg_line(f->e, "%s = lathe_qadd(%s, %s, %s, %d, %d);",
          cg_at(f, id, cg_broadcast_index(f, &n->shape, &n->shape, vars)), x[0], x[1], p,
          (int)n->attr.quant.qmin, (int)n->attr.quant.qmax);
  cg_nest_close(f, &n->shape, vars);
  return true;
}

/* qsoftmax: lathe_qsoftmax (codegen/kernels/quant.c) on each row of the last axis, its three
 * parameters (multiplier, left shift, diff_min) in one array */
bool lower_qsoftmax(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int64_t depth = n->shape.dim[n->shape.rank - 1], rows = shape_numel(&n->shape) / depth;
  const char *p = cg_fresh(f->e, "sp");
  cg_line(f->e, "/* int8 softmax (TFLite's), rows of %lld: scale 1/256, zero point -128 */",
          (long long)depth);
  cg_line(f->e, "const int32_t %s[3] = {%s, %s, %s}; /* multiplier, left shift, diff_min */", p,
          cg_at(f, n->in[1], "0"), cg_at(f, n->in[1], "1"), cg_at(f, n->in[1], "2"));
  const char *r = cg_loop_open(f, "r", rows);
  const char *row = cg_index_expr(f->arena, 1, &r, &depth);
  cg_line(f->e, "lathe_qsoftmax(&%s, &%s, %lld, %s);", cg_at(f, n->in[0], row), cg_at(f, id, row),
          (long long)depth, p);
  cg_loop_close(f, r);
  return true;
}

/* requantize: int8 to int8 at other parameters, lathe_requant of x - x_zp per element */
bool lower_requantize(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *vars[IR_MAX_RANK];
  cg_line(f->e, "/* int8 requantize (TFLite's QUANTIZE of an int8 tensor): x_zp %d -> %d */",
          (int)n->attr.quant.x_zp, (int)n->attr.quant.out_zp);
  cg_nest_open(f, &n->shape, vars);
  const char *at = cg_broadcast_index(f, &n->shape, &n->shape, vars);
  cg_line(f->e, "%s = lathe_requant((int32_t)%s - (%d), 0,", cg_at(f, id, at),
          cg_at(f, n->in[0], at), (int)n->attr.quant.x_zp);
  cg_line(f->e, "    %s, %s, %d, %d, %d);", cg_at(f, n->in[1], "0"), cg_at(f, n->in[2], "0"),
          (int)n->attr.quant.out_zp, (int)n->attr.quant.qmin, (int)n->attr.quant.qmax);
  cg_nest_close(f, &n->shape, vars);
  return true;
}
