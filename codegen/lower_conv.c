/* codegen/lower_conv.c — C loop nests for CONV2D, CONV_TRANSPOSE2D, CONV2D_GRAD_WEIGHT,
 * MAX_POOL2D and MAX_POOL2D_GRAD (NCHW; semantics of ir/conv.c).
 *
 * The conv kernels loop over one weight tap (kh, kw) at a time and sweep the output rows
 * that tap reaches: the valid range of output rows/cols for a tap is computed once per tap
 * (no bounds test in the interior), and the innermost loop runs over contiguous output
 * columns, so with stride 1 it is a vectorizable axpy. The weight gradient accumulates each
 * tap's products in a row of partial sums (vectorizable too) and reduces it once at the end.
 * A stride-1 unpadded conv_transpose2d (conv2d's input gradient in a plain CNN) takes a
 * faster path: each (b, o) plane is widened to row stride W in a local buffer (zeros in the
 * extra columns), so every tap is one long contiguous axpy of P = (Ho-1)*W + Wo elements into
 * the output plane. (The same trick for conv2d and conv2d_grad_weight measured slower than
 * the row-wise loops above on the examples/cnn.lathe train step, so they do not use it.)
 * These loops are the general path (IR_CONV_ALGO_NAIVE): f32 convolutions of array operands
 * take the implicit GEMM of conv_gemm.c or the direct kernel of conv_direct.c instead, as
 * passes/layout.c recorded (the loops stay for f64 and splat-constant operands).
 * A conv2d that heads a fused group (passes/fuse.c: NCHWc layout, an elementwise epilogue)
 * goes to cg_conv_lower_fused: the direct convolution applies the epilogue per image, the
 * other paths compute into a staging buffer and run the epilogue over it.
 * Pooling windows are small, so pooling tests bounds per element; when the windows tile the
 * image (stride = kernel, no padding or dilation, the usual 2x2 pool) a branch-free path
 * vectorizes over the pooled columns instead (the forward maximum, and the gradient written
 * once per element with no zeroing pass), with the same first-maximum and NaN rules. All
 * kernels zero their output first where they accumulate; these ops are FUSE_OPAQUE, so the
 * output never shares an input's buffer. Variables come from cg_fresh in the kernel's scope.
 */
#include "lower_conv.h"
#include "lower_hooks.h"

#include <math.h>

#include "conv.h"
#include "workspace.h"

typedef struct ConvDims {
  int64_t n, c, h, w; /* X grid */
  int64_t o, ho, wo;  /* Y grid */
  int64_t cg, og;     /* channels per group: X side, Y side */
  int64_t kh, kw;     /* window */
  const struct IrConvAttr *a;
  const Shape *xs; /* X: its axis 0 is the batch (a run-time n when dynamic, cg_count) */
} ConvDims;

static ConvDims conv_dims(const Shape *xs, const Shape *ys, const Shape *ws,
                          const struct IrConvAttr *a) {
  ConvDims d = {xs->dim[0],
                xs->dim[1],
                xs->dim[2],
                xs->dim[3],
                ys->dim[1],
                ys->dim[2],
                ys->dim[3],
                xs->dim[1] / a->groups,
                ys->dim[1] / a->groups,
                ws->dim[2],
                ws->dim[3],
                a,
                xs};
  return d;
}

static const char *fresh(CgFunc *f, const char *base) {
  return cg_fresh(f->e, base);
}

/* element `index` of node id: `buf[index]`, or the literal of a splat constant */
static const char *elem(CgFunc *f, NodeId id, const char *index) {
  const CgValue *v = &f->val[id];
  if (v->literal) return v->expr;
  return arena_printf(f->arena, "%s[%s]", v->expr, index);
}

static const char *loop(CgFunc *f, const char *base, const char *lo, int64_t hi) {
  const char *v = fresh(f, base);
  cg_open(f->e, "for (int64_t %s = %s; %s < %lld; %s++)", v, lo, v, (long long)hi, v);
  return v;
}

/* for (v = 0; v < count; v++) with count proportional to axis 0 of s (the images, the
 * elements): the run-time extent when s is dynamic (cg_count) */
static const char *loop_n(CgFunc *f, const char *base, const Shape *s, int64_t count) {
  const char *v = fresh(f, base);
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", v, v, cg_count(f, s, count), v);
  return v;
}

static void zero(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *i = loop_n(f, "i", &n->shape, shape_numel(&n->shape));
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, i, cg_literal(f->arena, n->dtype, 0));
  cg_close(f->e);
}

/* Declares off (the X offset of output index 0 for tap k), lo and hi (the output indices
 * whose input index lies in [0, len)) for axis ax; returns {off, lo, hi} names. */
static void tap_range(CgFunc *f, const ConvDims *d, int ax, const char *k, const char **names,
                      int64_t len, int64_t out_len) {
  int64_t s = d->a->stride[ax];
  const char *off = fresh(f, ax ? "woff" : "hoff"), *lo = fresh(f, ax ? "wlo" : "hlo");
  const char *hi = fresh(f, ax ? "whi" : "hhi");
  cg_line(f->e, "const int64_t %s = %s * %d - %d;", off, k, (int)d->a->dilation[ax],
          (int)d->a->pad[ax]);
  cg_line(f->e, "const int64_t %s = %s >= 0 ? 0 : (%lld - %s) / %lld;", lo, off, (long long)(s - 1),
          off, (long long)s);
  cg_line(f->e, "int64_t %s = %lld - %s < 0 ? 0 : (%lld - %s) / %lld + 1;", hi,
          (long long)(len - 1), off, (long long)(len - 1), off, (long long)s);
  cg_line(f->e, "if (%s > %lld) %s = %lld;", hi, (long long)out_len, hi, (long long)out_len);
  names[0] = off, names[1] = lo, names[2] = hi;
}

/* for (v = lo; v < hi; v++) with runtime bounds */
static const char *range_loop(CgFunc *f, const char *base, const char *lo, const char *hi) {
  const char *v = fresh(f, base);
  cg_open(f->e, "for (int64_t %s = %s; %s < %s; %s++)", v, lo, v, hi, v);
  return v;
}

/* the weight element [o, ci, kh, kw] */
static const char *w_index(CgFunc *f, const ConvDims *d, const char *o, const char *ci,
                           const char *kh, const char *kw) {
  return arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld + %s", o, (long long)d->cg,
                      ci, (long long)d->kh, kh, (long long)d->kw, kw);
}

/* X row start: ((b*C + c)*H + oh*sh + hoff)*W + woff; Y row start: ((b*O + o)*Ho + oh)*Wo */
static const char *x_row(CgFunc *f, const ConvDims *d, const char *b, const char *c, const char *oh,
                         const char *const *hr, const char *const *wr) {
  return arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s * %d + %s) * %lld + %s", b,
                      (long long)d->c, c, (long long)d->h, oh, (int)d->a->stride[0], hr[0],
                      (long long)d->w, wr[0]);
}

static const char *y_row(CgFunc *f, const ConvDims *d, const char *b, const char *o,
                         const char *oh) {
  return arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld", b, (long long)d->o, o,
                      (long long)d->ho, oh, (long long)d->wo);
}

/* opens the kh, kw tap loops with their ranges; hr/wr receive {off, lo, hi} */
static void taps_open(CgFunc *f, const ConvDims *d, const char **kh, const char **kw,
                      const char **hr, const char **wr) {
  *kh = loop(f, "kh", "0", d->kh);
  tap_range(f, d, 0, *kh, hr, d->h, d->ho);
  *kw = loop(f, "kw", "0", d->kw);
  tap_range(f, d, 1, *kw, wr, d->w, d->wo);
}

/* ---- the stride-1, unpadded fast path ---------------------------------------------------- */

enum { FAST_MAX_RUN = 8192 }; /* elements of the local plane buffer */

static int64_t flat_run(const ConvDims *d) {
  return (d->ho - 1) * d->w + d->wo;
}

static bool fast_ok(const ConvDims *d) {
  const struct IrConvAttr *a = d->a;
  return a->stride[0] == 1 && a->stride[1] == 1 && !a->pad[0] && !a->pad[1] && !a->pad[2] &&
         !a->pad[3] && !a->out_pad[0] && !a->out_pad[1] &&
         d->wo + (d->kw - 1) * a->dilation[1] == d->w && flat_run(d) <= FAST_MAX_RUN;
}

/* X offset of tap (kh, kw) of plane (b, c): ((b*C + c)*H + kh*dh)*W + kw*dw */
static const char *tap_offset(CgFunc *f, const ConvDims *d, const char *b, const char *c,
                              const char *kh, const char *kw) {
  return arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s * %d) * %lld + %s * %d", b,
                      (long long)d->c, c, (long long)d->h, kh, (int)d->a->dilation[0],
                      (long long)d->w, kw, (int)d->a->dilation[1]);
}

/* declares buf[P] holding plane (b, o) of the Y-grid operand yid widened to row stride W */
static const char *widen_plane(CgFunc *f, const ConvDims *d, const char *t, NodeId yid,
                               const char *b, const char *o) {
  const char *buf = fresh(f, "gp"), *p = fresh(f, "p"), *lit0 = "0";
  int64_t run = flat_run(d);
  cg_line(f->e, "%s %s[%lld];", t, buf, (long long)run);
  cg_line(f->e, "for (int64_t %s = 0; %s < %lld; %s++) %s[%s] = %s;", p, p, (long long)run, p, buf,
          p, lit0);
  const char *oh = loop(f, "oh", "0", d->ho), *ow = loop(f, "ow", "0", d->wo);
  const char *src = arena_printf(f->arena, "%s + %s", y_row(f, d, b, o, oh), ow);
  cg_line(f->e, "%s[%s * %lld + %s] = %s;", buf, oh, (long long)d->w, ow, elem(f, yid, src));
  cg_close(f->e);
  cg_close(f->e);
  return buf;
}

/* opens ci, kh, kw loops of o's group; returns c (the X-grid channel) */
static const char *group_taps(CgFunc *f, const ConvDims *d, const char *o, const char **ci,
                              const char **kh, const char **kw) {
  *ci = loop(f, "ci", "0", d->cg);
  const char *c = fresh(f, "c");
  cg_line(f->e, "const int64_t %s = %s / %lld * %lld + %s;", c, o, (long long)d->og,
          (long long)d->cg, *ci);
  *kh = loop(f, "kh", "0", d->kh);
  *kw = loop(f, "kw", "0", d->kw);
  return c;
}

static void conv_transpose2d_fast(CgFunc *f, NodeId id, const ConvDims *d) {
  const Node *n = graph_node(f->g, id);
  const char *t = dtype_c_name(n->dtype), *ci, *kh, *kw;
  zero(f, id);
  const char *b = loop_n(f, "b", d->xs, d->n), *o = loop(f, "o", "0", d->o);
  const char *gp = widen_plane(f, d, t, n->in[0], b, o);
  const char *c = group_taps(f, d, o, &ci, &kh, &kw);
  const char *wv = fresh(f, "wv"), *xo = fresh(f, "xo");
  cg_line(f->e, "const %s %s = %s;", t, wv, elem(f, n->in[1], w_index(f, d, o, ci, kh, kw)));
  cg_line(f->e, "const int64_t %s = %s;", xo, tap_offset(f, d, b, c, kh, kw));
  const char *p = loop(f, "p", "0", flat_run(d));
  cg_line(f->e, "%s[%s + %s] += %s * %s[%s];", f->val[id].expr, xo, p, wv, gp, p);
  for (int i = 0; i < 6; i++)
    cg_close(f->e); /* p, kw, kh, ci, o, b */
}

/* ---- the general path ------------------------------------------------------------------- */

/* Y = conv2d(X, W): per (b, o, ci, tap), y[row][ow] += w * x[row'][ow * sw] */
static bool conv2d_loops(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Node *x = graph_node(f->g, n->in[0]), *w = graph_node(f->g, n->in[1]);
  ConvDims d = conv_dims(&x->shape, &n->shape, &w->shape, &n->attr.conv);
  const char *t = dtype_c_name(n->dtype), *Y = f->val[id].expr, *hr[3], *wr[3], *kh, *kw;
  zero(f, id);
  const char *b = loop_n(f, "b", d.xs, d.n), *o = loop(f, "o", "0", d.o);
  const char *ci = loop(f, "ci", "0", d.cg);
  const char *c = fresh(f, "c");
  cg_line(f->e, "const int64_t %s = %s / %lld * %lld + %s;", c, o, (long long)d.og, (long long)d.cg,
          ci);
  taps_open(f, &d, &kh, &kw, hr, wr);
  const char *wv = fresh(f, "wv");
  cg_line(f->e, "const %s %s = %s;", t, wv, elem(f, n->in[1], w_index(f, &d, o, ci, kh, kw)));
  const char *oh = range_loop(f, "oh", hr[1], hr[2]);
  const char *yp = fresh(f, "yr"), *xp = fresh(f, "xr");
  cg_line(f->e, "const int64_t %s = %s;", yp, y_row(f, &d, b, o, oh));
  cg_line(f->e, "const int64_t %s = %s;", xp, x_row(f, &d, b, c, oh, hr, wr));
  const char *ow = range_loop(f, "ow", wr[1], wr[2]);
  const char *xi = arena_printf(f->arena, "%s + %s * %d", xp, ow, (int)d.a->stride[1]);
  cg_line(f->e, "%s[%s + %s] += %s * %s;", Y, yp, ow, wv, elem(f, n->in[0], xi));
  for (int i = 0; i < 7; i++)
    cg_close(f->e); /* ow, oh, kw, kh and three outer */
  return true;
}

/* X = conv_transpose2d(Y, W): per (b, c, o in c's group, tap), x[row'][ow*sw] += w * y[row][ow] */
static bool conv_transpose2d_loops(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Node *y = graph_node(f->g, n->in[0]), *w = graph_node(f->g, n->in[1]);
  ConvDims d = conv_dims(&n->shape, &y->shape, &w->shape, &n->attr.conv);
  if (fast_ok(&d)) {
    conv_transpose2d_fast(f, id, &d);
    return true;
  }
  const char *t = dtype_c_name(n->dtype), *X = f->val[id].expr, *hr[3], *wr[3], *kh, *kw;
  zero(f, id);
  const char *b = loop_n(f, "b", d.xs, d.n), *c = loop(f, "c", "0", d.c);
  const char *oi = loop(f, "oi", "0", d.og);
  const char *o = fresh(f, "o"), *ci = "0"; /* ci only indexes non-literal weights */
  cg_line(f->e, "const int64_t %s = %s / %lld * %lld + %s;", o, c, (long long)d.cg, (long long)d.og,
          oi);
  if (!f->val[n->in[1]].literal) {
    ci = fresh(f, "ci");
    cg_line(f->e, "const int64_t %s = %s %% %lld;", ci, c, (long long)d.cg);
  }
  taps_open(f, &d, &kh, &kw, hr, wr);
  const char *wv = fresh(f, "wv");
  cg_line(f->e, "const %s %s = %s;", t, wv, elem(f, n->in[1], w_index(f, &d, o, ci, kh, kw)));
  const char *oh = range_loop(f, "oh", hr[1], hr[2]);
  const char *yp = fresh(f, "yr"), *xp = fresh(f, "xr");
  cg_line(f->e, "const int64_t %s = %s;", yp, y_row(f, &d, b, o, oh));
  cg_line(f->e, "const int64_t %s = %s;", xp, x_row(f, &d, b, c, oh, hr, wr));
  const char *ow = range_loop(f, "ow", wr[1], wr[2]);
  const char *yi = arena_printf(f->arena, "%s + %s", yp, ow);
  cg_line(f->e, "%s[%s + %s * %d] += %s * %s;", X, xp, ow, (int)d.a->stride[1], wv,
          elem(f, n->in[0], yi));
  for (int i = 0; i < 7; i++)
    cg_close(f->e); /* ow, oh, kw, kh and three outer */
  return true;
}

/* A group ending in a max-pool, element (b, c, oh, ow) = v[] in row-major order (null: 0)
 * of the staging path: its value into its window's maximum, the first element of a window
 * starting it (the same first-NaN and first-maximum rules as the max_pool2d kernels). */
static void pool_element(CgFunc *f, const CgGemmStore *store, const char **v) {
  const Node *pn = graph_node(f->g, store->pool);
  const Shape *ps = &pn->shape;
  const char *ix[4], *P = f->val[store->pool].expr, *x = store->pooled(store->ctx);
  for (int i = 0; i < 4; i++)
    ix[i] = v[i] ? v[i] : "0";
  long long kh = pn->attr.conv.kernel[0], kw = pn->attr.conv.kernel[1];
  cg_open(f->e, "if (%s < %lld && %s < %lld)", ix[2], kh * ps->dim[2], ix[3], kw * ps->dim[3]);
  const char *pi = fresh(f, "pi");
  cg_line(f->e, "const int64_t %s = ((%s * %lld + %s) * %lld + %s / %lld) * %lld + %s / %lld;", pi,
          ix[0], (long long)ps->dim[1], ix[1], (long long)ps->dim[2], ix[2], kh,
          (long long)ps->dim[3], ix[3], kw);
  cg_line(f->e, "if (%s %% %lld == 0 && %s %% %lld == 0) %s[%s] = %s;", ix[2], kh, ix[3], kw, P, pi,
          x);
  cg_line(f->e, "else if (!(%s[%s] != %s[%s] || %s <= %s[%s])) %s[%s] = %s;", P, pi, P, pi, x, P,
          pi, P, pi, x);
  cg_close(f->e);
}

/* The algorithm's choice as the generated C states it, when passes/schedule.c recorded who
 * made it (only convolutions that have a choice) */
static void sched_note(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  if (n->attr.conv.algo_from == IR_SCHED_UNSET) return;
  cg_line(f->e, "/* convolution %%%u: %s, from %s */", id,
          ir_conv_algo_name(cg_conv_algo(f->g, id, f->opt)),
          n->attr.conv.algo_from == IR_SCHED_TUNED ? "the tune cache" : "the cost model");
}

bool cg_conv_lower_fused(CgFunc *f, NodeId id, const CgGemmStore *store) {
  sched_note(f, id);
  IrConvAlgo algo = cg_conv_algo(f->g, id, f->opt);
  if (algo == IR_CONV_ALGO_DIRECT || algo == IR_CONV_ALGO_WINOGRAD)
    return cg_conv_direct_lower_fused(f, id, store);
  const Node *n = graph_node(f->g, id);
  const char *t = dtype_c_name(n->dtype), *stage = store->partial;
  cg_line(f->e, "/* the convolution into a staging buffer, then the epilogue */");
  if (!stage) { /* the scratch after the convolution's own (cg_conv_scratch, workspace.c) */
    stage = fresh(f, "stage");
    cg_line(f->e, "%s *const %s = (%s *)((char *)ws + %s);", t, stage, t,
            cg_scratch_offset(f, cg_conv_plain_scratch(f->g, id, f->opt)));
  }
  CgValue saved = f->val[id];
  f->val[id].expr = stage, f->val[id].literal = false, f->val[id].writable = true;
  cg_line(f->e, "{");
  cg_indent(f->e);
  bool ok = algo == IR_CONV_ALGO_GEMM ? cg_conv_gemm_lower(f, id) : conv2d_loops(f, id);
  cg_close(f->e);
  f->val[id] = saved;
  if (!ok) return false;
  const char *vars[IR_MAX_RANK];
  int64_t st[IR_MAX_RANK];
  cg_strides_of(&n->shape, st);
  cg_nest_open(f, &n->shape, vars);
  const char *idx = "0";
  for (int i = 0; i < n->shape.rank; i++)
    if (vars[i]) idx = arena_printf(f->arena, "%s + %s * %lld", idx, vars[i], (long long)st[i]);
  ok = store->emit(f, store->ctx, vars, idx, arena_printf(f->arena, "%s[%s]", stage, idx));
  if (ok && store->pool != IR_NONE) pool_element(f, store, vars);
  cg_nest_close(f, &n->shape, vars);
  return ok;
}

/* W = conv2d_grad_weight(X, Y): per (o, ci, tap), part[ow] += y[row][ow] * x[row'][ow*sw]
 * over (b, oh), then w = sum(part) */
static bool conv2d_grad_weight_loops(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Node *x = graph_node(f->g, n->in[0]), *y = graph_node(f->g, n->in[1]);
  ConvDims d = conv_dims(&x->shape, &y->shape, &n->shape, &n->attr.conv);
  const char *t = dtype_c_name(n->dtype), *W = f->val[id].expr, *hr[3], *wr[3], *kh, *kw;
  const char *zero_lit = cg_literal(f->arena, n->dtype, 0);
  const char *o = loop(f, "o", "0", d.o), *ci = loop(f, "ci", "0", d.cg);
  const char *c = fresh(f, "c");
  cg_line(f->e, "const int64_t %s = %s / %lld * %lld + %s;", c, o, (long long)d.og, (long long)d.cg,
          ci);
  taps_open(f, &d, &kh, &kw, hr, wr);
  const char *part = fresh(f, "part"), *j = fresh(f, "j"), *acc = fresh(f, "acc");
  cg_line(f->e, "%s %s[%lld];", t, part, (long long)d.wo);
  cg_line(f->e, "for (int64_t %s = 0; %s < %lld; %s++) %s[%s] = %s;", j, j, (long long)d.wo, j,
          part, j, zero_lit);
  const char *b = loop_n(f, "b", d.xs, d.n);
  const char *oh = range_loop(f, "oh", hr[1], hr[2]);
  const char *yp = fresh(f, "yr"), *xp = fresh(f, "xr");
  cg_line(f->e, "const int64_t %s = %s;", yp, y_row(f, &d, b, o, oh));
  cg_line(f->e, "const int64_t %s = %s;", xp, x_row(f, &d, b, c, oh, hr, wr));
  const char *ow = range_loop(f, "ow", wr[1], wr[2]);
  const char *xi = arena_printf(f->arena, "%s + %s * %d", xp, ow, (int)d.a->stride[1]);
  const char *yi = arena_printf(f->arena, "%s + %s", yp, ow);
  cg_line(f->e, "%s[%s] += %s * %s;", part, ow, elem(f, n->in[1], yi), elem(f, n->in[0], xi));
  for (int i = 0; i < 3; i++)
    cg_close(f->e);
  cg_line(f->e, "%s %s = %s;", t, acc, zero_lit);
  cg_line(f->e, "for (int64_t %s = 0; %s < %lld; %s++) %s += %s[%s];", j, j, (long long)d.wo, j,
          acc, part, j);
  cg_line(f->e, "%s[%s] = %s;", W, w_index(f, &d, o, ci, kh, kw), acc);
  for (int i = 0; i < 4; i++)
    cg_close(f->e);
  return true;
}

/* whether every window of pool node n (pooled grid ps) lies inside x: no padding reached */
static bool pool_inside(const Node *n, const Shape *ps, const Shape *xs) {
  const struct IrConvAttr *a = &n->attr.conv;
  for (int ax = 0; ax < 2; ax++) {
    int64_t last = (ps->dim[2 + ax] - 1) * a->stride[ax] - a->pad[ax] +
                   (int64_t)(a->kernel[ax] - 1) * a->dilation[ax];
    if (ps->dim[2 + ax] > 0 && (a->pad[ax] > 0 || last >= xs->dim[2 + ax])) return false;
  }
  return true;
}

/* Declares `best` (index into x of the window's first maximum, -1 if none) for window
 * (b, c, oh, ow) of pool node n reading x. When every window is inside x (`inside`), the
 * bounds tests go and the search starts at the window's first element, so best >= 0. */
static const char *pool_argmax(CgFunc *f, const Node *n, const Shape *xs, NodeId x,
                               const char *const *v, bool inside) {
  const struct IrConvAttr *a = &n->attr.conv;
  const char *t = dtype_c_name(n->dtype), *best = fresh(f, "best"), *bv = fresh(f, "bv");
  if (inside) {
    cg_line(f->e, "int64_t %s = ((%s * %lld + %s) * %lld + %s * %d) * %lld + %s * %d;", best, v[0],
            (long long)xs->dim[1], v[1], (long long)xs->dim[2], v[2], (int)a->stride[0],
            (long long)xs->dim[3], v[3], (int)a->stride[1]);
    cg_line(f->e, "%s %s = %s;", t, bv, elem(f, x, best));
  } else {
    cg_line(f->e, "int64_t %s = -1;", best);
    cg_line(f->e, "%s %s = %s;", t, bv, cg_literal(f->arena, n->dtype, 0));
  }
  const char *q[2];
  for (int ax = 0; ax < 2; ax++) {
    const char *k = loop(f, ax ? "kw" : "kh", "0", a->kernel[ax]);
    q[ax] = fresh(f, ax ? "qw" : "qh");
    cg_line(f->e, "const int64_t %s = %s * %d - %d + %s * %d;", q[ax], v[2 + ax],
            (int)a->stride[ax], (int)a->pad[ax], k, (int)a->dilation[ax]);
    if (!inside)
      cg_line(f->e, "if (%s < 0 || %s >= %lld) continue;", q[ax], q[ax],
              (long long)xs->dim[2 + ax]);
  }
  const char *i = fresh(f, "xi"), *xv = fresh(f, "xv");
  cg_line(f->e, "const int64_t %s = ((%s * %lld + %s) * %lld + %s) * %lld + %s;", i, v[0],
          (long long)xs->dim[1], v[1], (long long)xs->dim[2], q[0], (long long)xs->dim[3], q[1]);
  cg_line(f->e, "const %s %s = %s;", t, xv, elem(f, x, i));
  if (inside)
    cg_line(f->e, "if (%s > %s || (%s != %s && %s == %s)) { %s = %s; %s = %s; }", xv, bv, xv, xv,
            bv, bv, best, i, bv, xv);
  else
    cg_line(f->e, "if (%s < 0 || %s > %s || (%s != %s && %s == %s)) { %s = %s; %s = %s; }", best,
            xv, bv, xv, xv, bv, bv, best, i, bv, xv);
  cg_close(f->e);
  cg_close(f->e);
  return best;
}

/* loops over the pooled grid ps; v receives b, c, oh, ow; returns the flat pooled index. The
 * images are independent (a gradient window only adds into its own image): with --threads
 * they are shared out. */
static const char *pool_loops(CgFunc *f, const Shape *ps, const char **v) {
  static const char *const base[4] = {"b", "c", "oh", "ow"};
  if (ps->dim[0] > 1) cg_omp_for(f, shape_numel(ps) * 4 * CG_OMP_ELEMENT_COST);
  v[0] = loop_n(f, base[0], ps, ps->dim[0]);
  for (int i = 1; i < 4; i++)
    v[i] = loop(f, base[i], "0", ps->dim[i]);
  return arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld + %s", v[0],
                      (long long)ps->dim[1], v[1], (long long)ps->dim[2], v[2],
                      (long long)ps->dim[3], v[3]);
}

/* ---- the tiled fast path: windows that tile the image ----------------------------------- */

enum { TILE_MAX_TAPS = 16 }; /* window elements, unrolled */

/* whether pool node n's windows over x (grid xs, pooled grid ps) tile it: stride = kernel,
 * dilation 1, no padding, at most TILE_MAX_TAPS elements, x a buffer. Then every element of
 * x is in at most one window (the last rows / columns may be in none). */
static bool pool_tiles_attrs(const Node *n, const Shape *ps, const Shape *xs) {
  const struct IrConvAttr *a = &n->attr.conv;
  for (int ax = 0; ax < 2; ax++)
    if (a->stride[ax] != a->kernel[ax] || a->dilation[ax] != 1 || a->pad[ax] || a->pad[ax + 2])
      return false;
  return (int64_t)a->kernel[0] * a->kernel[1] <= TILE_MAX_TAPS && pool_inside(n, ps, xs) &&
         shape_numel(ps) > 0;
}

static bool pool_tiles(CgFunc *f, const Node *n, NodeId x, const Shape *ps, const Shape *xs) {
  return !f->val[x].literal && pool_tiles_attrs(n, ps, xs);
}

/* LATHE_INDEPENDENT, once per file: before a loop whose iterations read and write disjoint
 * elements, Clang's vectorizer may skip its dependence test. The tiled pooling loops need it:
 * x and the result are both in the workspace (one pointer), their distance is not a constant
 * and the accesses have stride KW, so Clang's loop-access analysis gives up ("unsafe dependent
 * memory operations") where GCC vectorizes with a run-time alias check; the loops stayed
 * scalar in Clang and the JIT (docs/jit.md). Safe: the result never shares an input's buffer
 * (FUSE_OPAQUE) and each window writes only its own elements. */
static void independent_prelude(CgFunc *f) {
  if (cg_gemm_once(f, "LATHE_INDEPENDENT (codegen/lower_conv.c)"))
    cg_buf_puts(f->globals,
                "#if defined(__clang__)\n"
                "#define LATHE_INDEPENDENT _Pragma(\"clang loop vectorize(assume_safety)\")\n"
                "#else\n#define LATHE_INDEPENDENT\n#endif\n\n");
}

/* Opens the loops over the images b, channels c (bc receives both; *p the plane b * C + c)
 * and pooled rows oh, with the pooled columns ow innermost, and declares the window's maximum `m`
 * (and with `arg`, `k`: the index in the window, row-major, of its first maximum, in x's type) for
 * window (p, oh, ow) of x, branch-free so the ow loop vectorizes: m stays when it is NaN or v <= m,
 * else v replaces it (the first NaN wins, ties keep the first maximum, as in pool_argmax). GCC 12
 * vectorizes exactly this form of the select (not `(m == m) & !(v <= m)`, nor an int k); Clang
 * too, given LATHE_INDEPENDENT (independent_prelude). *xr
 * receives the name of the window row start offset into x, *ow the column. The caller closes 4
 * loops. */
static const char *tile_max(CgFunc *f, const Node *n, NodeId x, const Shape *xs, const Shape *ps,
                            bool arg, const char **xr, const char **ow, const char **p,
                            const char **oh, const char **k, const char **bc) {
  const struct IrConvAttr *a = &n->attr.conv;
  const char *t = dtype_c_name(n->dtype), *X = f->val[x].expr;
  int64_t kh = a->kernel[0], kw = a->kernel[1], w = xs->dim[3];
  if (ps->dim[0] > 1) cg_omp_for(f, shape_numel(ps) * 4 * CG_OMP_ELEMENT_COST);
  bc[0] = loop_n(f, "b", ps, ps->dim[0]);
  bc[1] = loop(f, "c", "0", ps->dim[1]);
  *p = arena_printf(f->arena, "(%s * %lld + %s)", bc[0], (long long)ps->dim[1], bc[1]);
  *oh = loop(f, "oh", "0", ps->dim[2]);
  *xr = fresh(f, "xr");
  cg_line(f->e, "const int64_t %s = (%s * %lld + %s * %lld) * %lld;", *xr, *p,
          (long long)xs->dim[2], *oh, (long long)kh, (long long)w);
  independent_prelude(f);
  *ow = fresh(f, "ow");
  cg_open(f->e, "LATHE_INDEPENDENT for (int64_t %s = 0; %s < %lld; %s++)", *ow, *ow,
          (long long)ps->dim[3], *ow);
  const char *m = fresh(f, "m");
  cg_line(f->e, "%s %s = %s[%s + %s * %lld];", t, m, X, *xr, *ow, (long long)kw);
  *k = NULL;
  if (arg) {
    *k = fresh(f, "k");
    cg_line(f->e, "%s %s = 0;", t, *k); /* x's type: GCC vectorizes one element type */
  }
  for (int64_t j = 1; j < kh * kw; j++) {
    const char *v = fresh(f, "v");
    const char *load = arena_printf(f->arena, "%s[%s + %s * %lld + %lld]", X, *xr, *ow,
                                    (long long)kw, (long long)(j / kw * w + j % kw));
    const char *keep = arena_printf(f->arena, "(%s != %s || %s <= %s)", m, m, v, m);
    const char *karg =
        arg ? arena_printf(f->arena, " %s = %s ? %s : %lld;", *k, keep, *k, (long long)j) : "";
    cg_line(f->e, "{ const %s %s = %s;%s %s = %s ? %s : %s; }", t, v, load, karg, m, keep, m, v);
  }
  return m;
}

/* y[p][oh][ow] = the maximum of its window, when the windows tile x (pool_tiles) */
static void lower_max_pool2d_tiled(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *xs = &graph_node(f->g, n->in[0])->shape, *ps = &n->shape;
  const char *xr, *ow, *p, *oh, *k, *bc[2];
  cg_line(f->e, "/* the %dx%d windows tile the image: each window's maximum, branch-free */",
          (int)n->attr.conv.kernel[0], (int)n->attr.conv.kernel[1]);
  const char *m = tile_max(f, n, n->in[0], xs, ps, false, &xr, &ow, &p, &oh, &k, bc);
  cg_line(f->e, "%s[(%s * %lld + %s) * %lld + %s] = %s;", f->val[id].expr, p, (long long)ps->dim[2],
          oh, (long long)ps->dim[3], ow, m);
  for (int i = 0; i < 4; i++)
    cg_close(f->e);
}

/* dx = the pooled gradient g at each window's first maximum, zero elsewhere, when the
 * windows tile x (pool_tiles): every element of dx is written once (no zeroing pass, no
 * accumulation); the rows and columns past the last window get zeros. (Fusing relu's mask
 * `dx * (y > 0)` into this loop stops GCC 12 from vectorizing it: measured slower.) */
static void lower_max_pool2d_grad_tiled(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *xs = &n->shape, *ps = &graph_node(f->g, n->in[1])->shape;
  const char *t = dtype_c_name(n->dtype), *DX = f->val[id].expr, *xr, *ow, *p, *oh, *k, *bc[2];
  const char *zero_lit = cg_literal(f->arena, n->dtype, 0);
  int64_t kh = n->attr.conv.kernel[0], kw = n->attr.conv.kernel[1], h = xs->dim[2], w = xs->dim[3];
  cg_line(f->e,
          "/* the %dx%d windows tile the image: the gradient goes to each window's first "
          "maximum, every element written once */",
          (int)kh, (int)kw);
  tile_max(f, n, n->in[0], xs, ps, true, &xr, &ow, &p, &oh, &k, bc);
  const char *gv = fresh(f, "g");
  cg_line(f->e, "const %s %s = %s;", t, gv,
          elem(f, n->in[1],
               arena_printf(f->arena, "(%s * %lld + %s) * %lld + %s", p, (long long)ps->dim[2], oh,
                            (long long)ps->dim[3], ow)));
  for (int64_t j = 0; j < kh * kw; j++)
    cg_line(f->e, "%s[%s + %s * %lld + %lld] = %s == %lld ? %s : %s;", DX, xr, ow, (long long)kw,
            (long long)(j / kw * w + j % kw), k, (long long)j, gv, zero_lit);
  cg_close(f->e);            /* ow */
  if (w > ps->dim[3] * kw) { /* the columns past the last window */
    const char *r = loop(f, "r", "0", kh);
    const char *j = loop(f, "j", arena_printf(f->arena, "%lld", (long long)(ps->dim[3] * kw)), w);
    cg_line(f->e, "%s[%s + %s * %lld + %s] = %s;", DX, xr, r, (long long)w, j, zero_lit);
    cg_close(f->e);
    cg_close(f->e);
  }
  cg_close(f->e);            /* oh */
  if (h > ps->dim[2] * kh) { /* the rows past the last window */
    const char *j =
        loop(f, "j", arena_printf(f->arena, "%lld", (long long)(ps->dim[2] * kh * w)), h * w);
    cg_line(f->e, "%s[%s * %lld + %s] = %s;", DX, p, (long long)(h * w), j, zero_lit);
    cg_close(f->e);
  }
  cg_close(f->e); /* c */
  cg_close(f->e); /* b */
}

bool lower_max_pool2d(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *xs = &graph_node(f->g, n->in[0])->shape;
  if (pool_tiles(f, n, n->in[0], &n->shape, xs)) {
    lower_max_pool2d_tiled(f, id);
    return true;
  }
  const char *v[4];
  const char *o = pool_loops(f, &n->shape, v);
  bool inside = pool_inside(n, &n->shape, xs);
  const char *best = pool_argmax(f, n, xs, n->in[0], v, inside);
  const char *ninf = cg_literal(f->arena, n->dtype, -INFINITY);
  if (inside)
    cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, o, elem(f, n->in[0], best));
  else
    cg_line(f->e, "%s[%s] = %s < 0 ? %s : %s;", f->val[id].expr, o, best, ninf,
            elem(f, n->in[0], best));
  for (int i = 0; i < 4; i++)
    cg_close(f->e);
  return true;
}

bool lower_max_pool2d_grad(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *ps = &graph_node(f->g, n->in[1])->shape;
  if (pool_tiles(f, n, n->in[0], ps, &n->shape)) {
    lower_max_pool2d_grad_tiled(f, id);
    return true;
  }
  const char *v[4];
  zero(f, id);
  const char *o = pool_loops(f, ps, v);
  bool inside = pool_inside(n, ps, &n->shape);
  const char *best = pool_argmax(f, n, &n->shape, n->in[0], v, inside);
  if (inside)
    cg_line(f->e, "%s[%s] += %s;", f->val[id].expr, best, elem(f, n->in[1], o));
  else
    cg_line(f->e, "if (%s >= 0) %s[%s] += %s;", best, f->val[id].expr, best, elem(f, n->in[1], o));
  for (int i = 0; i < 4; i++)
    cg_close(f->e);
  return true;
}

/* train_select is normally resolved by passes/mode.c; a remaining one copies its choice */
bool lower_train_select(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  NodeId src = n->in[n->attr.mode.train ? 0 : 1];
  const char *i = loop_n(f, "i", &n->shape, shape_numel(&n->shape));
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, i, elem(f, src, i));
  cg_close(f->e);
  return true;
}

/* ---- the op table's entries: the algorithm passes/layout.c recorded ----------------------- */

/* the direct (or Winograd) kernel, the implicit GEMM, or the loops of this file (NAIVE) */
static bool by_algo(CgFunc *f, NodeId id, bool (*loops)(CgFunc *, NodeId)) {
  sched_note(f, id);
  switch (cg_conv_algo(f->g, id, f->opt)) {
  case IR_CONV_ALGO_DIRECT:
  case IR_CONV_ALGO_WINOGRAD:
    return cg_conv_direct_lower(f, id);
  case IR_CONV_ALGO_GEMM:
    return cg_conv_gemm_lower(f, id);
  default:
    return loops(f, id);
  }
}

bool lower_conv2d(CgFunc *f, NodeId id) {
  return by_algo(f, id, conv2d_loops);
}
bool lower_conv_transpose2d(CgFunc *f, NodeId id) {
  return by_algo(f, id, conv_transpose2d_loops);
}
bool lower_conv2d_grad_weight(CgFunc *f, NodeId id) {
  return by_algo(f, id, conv2d_grad_weight_loops);
}
