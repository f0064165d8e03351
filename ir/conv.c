/* ir/conv.c — shape inference and reference evaluation of the convolution and pooling ops
 * (CONV2D, CONV_TRANSPOSE2D, CONV2D_GRAD_WEIGHT, MAX_POOL2D, MAX_POOL2D_GRAD), NCHW layout,
 * PyTorch semantics and weight layouts.
 *
 * All three conv ops are one relation (see NodeAttr.conv in ir.h) between an input grid X
 * [N, C, H, W], an output grid Y [N, O, Ho, Wo] and weights Wt [O, C/groups, kh, kw]:
 *   Y[n, o, p] += X[n, c, p*stride - pad_lo + k*dilation] * Wt[o, c - group*C/groups, k]
 * CONV2D computes Y from (X, Wt); CONV_TRANSPOSE2D computes X from (Y, Wt) (so its input has
 * O channels and its weights are [O, C/groups, kh, kw], PyTorch's [in, out/groups, kh, kw]);
 * CONV2D_GRAD_WEIGHT computes Wt from (X, Y). eval_conv runs the relation once in double.
 * Invariant: infer has checked every attribute, so eval never sees a bad window.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir_internal.h"

#define SHAPE_BUF 200

static const char *op_name(const Node *n) { return ir_ops[n->op].name; }
static const Node *input(const Graph *g, const Node *n, int i) { return &g->nodes[n->in[i]]; }

/* output length of a window sweep; < 1 when the window does not fit */
static int64_t sweep_len(int64_t in, int64_t k, int64_t s, int64_t d, int64_t lo, int64_t hi) {
  int64_t span = in + lo + hi - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

static bool check_attrs(const Node *n, bool pool, Diag *d) {
  const struct IrConvAttr *a = &n->attr.conv;
  bool blocked_algo = a->algo == IR_CONV_ALGO_DIRECT || a->algo == IR_CONV_ALGO_WINOGRAD;
  bool ok = a->groups >= 1 &&
            (a->layout == IR_CONV_NCHW ||
             (a->layout == IR_CONV_NCHWC &&
              (n->op == OP_CONV2D || n->op == OP_CONV_TRANSPOSE2D ||
               n->op == OP_CONV2D_GRAD_WEIGHT)));
  ok = ok && a->algo >= IR_CONV_ALGO_UNSET && a->algo < IR_CONV_ALGO_COUNT &&
       (!pool || a->algo == IR_CONV_ALGO_UNSET) && (!blocked_algo || a->layout == IR_CONV_NCHWC);
  for (int i = 0; i < 2; i++) {
    ok = ok && a->stride[i] >= 1 && a->dilation[i] >= 1 && a->out_pad[i] >= 0;
    ok = ok && a->pad[i] >= 0 && a->pad[i + 2] >= 0;
    if (pool) ok = ok && a->kernel[i] >= 1 && 2 * a->pad[i] <= a->kernel[i] &&
                   2 * a->pad[i + 2] <= a->kernel[i];
  }
  if (!ok)
    IR_ERROR(d, n->loc,
             "%s: invalid attributes (stride, dilation, groups and kernel must be >= 1, "
             "padding >= 0%s; only a convolution's layout may be nchwc, only a convolution "
             "has an algo, and algo=direct or winograd needs nchwc)",
             op_name(n), pool ? " and at most half the kernel" : "");
  return ok;
}

static const char *const algo_names[IR_CONV_ALGO_COUNT] = {NULL, "naive", "gemm", "direct",
                                                            "winograd"};

const char *ir_conv_algo_name(IrConvAlgo a) {
  return a >= 0 && a < IR_CONV_ALGO_COUNT ? algo_names[a] : NULL;
}

bool ir_conv_algo_parse(const char *name, IrConvAlgo *out) {
  for (int a = IR_CONV_ALGO_UNSET + 1; a < IR_CONV_ALGO_COUNT; a++)
    if (strcmp(name, algo_names[a]) == 0) return *out = (IrConvAlgo)a, true;
  return false;
}

static bool check_4d(const Node *n, const Node *x, const Node *w, Diag *d) {
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  shape_str(&x->shape, sa, sizeof sa);
  shape_str(&w->shape, sb, sizeof sb);
  if (!dtype_is_float(x->dtype) || x->dtype != w->dtype) {
    IR_ERROR(d, n->loc, "%s: expected operands of one floating-point dtype, got %s%s and %s%s",
             op_name(n), dtype_name(x->dtype), sa, dtype_name(w->dtype), sb);
    return false;
  }
  if (x->shape.rank != 4 || w->shape.rank != 4) {
    IR_ERROR(d, n->loc, "%s: expected rank-4 operands (NCHW and weights), got %s and %s",
             op_name(n), sa, sb);
    return false;
  }
  return true;
}

/* the NCHW result; dyn: the dynamic batch of N (0: static) */
static bool set_out(Node *n, DType t, int64_t a, int64_t b, int64_t h, int64_t w,
                    int64_t dyn) {
  int64_t dims[4] = {a, b, h, w};
  n->shape = shape_make(4, dims);
  n->shape.dyn = dyn;
  n->dtype = t;
  return true;
}

/* the spatial output of a conv over x (dims 2, 3) with window (kh, kw); false if it is empty */
static bool conv_spatial(const Node *n, const Shape *x, const int64_t *k, int64_t *out) {
  const struct IrConvAttr *a = &n->attr.conv;
  for (int i = 0; i < 2; i++)
    out[i] = sweep_len(x->dim[2 + i], k[i], a->stride[i], a->dilation[i], a->pad[i],
                       a->pad[i + 2]);
  return out[0] >= 1 && out[1] >= 1;
}

static bool shape_error(const Node *n, const Node *x, const Node *w, const char *what, Diag *d) {
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  IR_ERROR(d, n->loc, "%s: %s: %s and %s", op_name(n), what,
           shape_str(&x->shape, sa, sizeof sa), shape_str(&w->shape, sb, sizeof sb));
  return false;
}

bool infer_conv2d(Graph *g, Node *n, Diag *d) {
  const Node *x = input(g, n, 0), *w = input(g, n, 1);
  if (!check_attrs(n, false, d) || !check_4d(n, x, w, d)) return false;
  int64_t gr = n->attr.conv.groups, out[2], k[2] = {w->shape.dim[2], w->shape.dim[3]};
  if (x->shape.dim[1] != w->shape.dim[1] * gr || w->shape.dim[0] % gr != 0)
    return shape_error(n, x, w, "channels do not match the weights [O, C/groups, kh, kw]", d);
  if (!conv_spatial(n, &x->shape, k, out))
    return shape_error(n, x, w, "the (dilated) kernel is larger than the padded input", d);
  if (w->shape.dyn) return shape_error(n, x, w, "the weights cannot have a dynamic batch", d);
  return set_out(n, x->dtype, x->shape.dim[0], w->shape.dim[0], out[0], out[1], x->shape.dyn);
}

bool ir_conv_transpose_as_conv(const Node *n, const int64_t *k, struct IrConvAttr *out) {
  const struct IrConvAttr *a = &n->attr.conv;
  struct IrConvAttr c = *a;
  for (int i = 0; i < 2; i++) {
    int64_t span = (int64_t)a->dilation[i] * (k[i] - 1);
    int64_t lo = span - a->pad[i], hi = span - a->pad[i + 2] + a->out_pad[i];
    if (a->stride[i] != 1 || lo < 0 || hi < 0 || lo > INT32_MAX || hi > INT32_MAX) return false;
    c.pad[i] = (int32_t)lo, c.pad[i + 2] = (int32_t)hi;
    c.out_pad[i] = 0;
  }
  if (out) *out = c;
  return true;
}

bool infer_conv_transpose2d(Graph *g, Node *n, Diag *d) {
  const Node *x = input(g, n, 0), *w = input(g, n, 1);
  if (!check_attrs(n, false, d) || !check_4d(n, x, w, d)) return false;
  const struct IrConvAttr *a = &n->attr.conv;
  int64_t gr = a->groups, out[2];
  if (x->shape.dim[1] != w->shape.dim[0] || w->shape.dim[0] % gr != 0)
    return shape_error(n, x, w, "channels do not match the weights [C, O/groups, kh, kw]", d);
  for (int i = 0; i < 2; i++) {
    if (a->out_pad[i] >= a->stride[i] && a->out_pad[i] >= a->dilation[i]) {
      IR_ERROR(d, n->loc, "%s: output_padding %d must be smaller than the stride or the "
               "dilation", op_name(n), (int)a->out_pad[i]);
      return false;
    }
    out[i] = (x->shape.dim[2 + i] - 1) * a->stride[i] - a->pad[i] - a->pad[i + 2] +
             (int64_t)a->dilation[i] * (w->shape.dim[2 + i] - 1) + a->out_pad[i] + 1;
    if (out[i] < 1) return shape_error(n, x, w, "the output would be empty", d);
  }
  if (w->shape.dyn) return shape_error(n, x, w, "the weights cannot have a dynamic batch", d);
  return set_out(n, x->dtype, x->shape.dim[0], w->shape.dim[1] * gr, out[0], out[1],
                 x->shape.dyn);
}

bool infer_conv2d_grad_weight(Graph *g, Node *n, Diag *d) {
  const Node *x = input(g, n, 0), *gy = input(g, n, 1);
  const struct IrConvAttr *a = &n->attr.conv;
  if (!check_attrs(n, false, d) || !check_4d(n, x, gy, d)) return false;
  int64_t gr = a->groups, out[2], k[2] = {a->kernel[0], a->kernel[1]};
  if (k[0] < 1 || k[1] < 1 || x->shape.dim[1] % gr || gy->shape.dim[1] % gr ||
      x->shape.dim[0] != gy->shape.dim[0] || x->shape.dyn != gy->shape.dyn)
    return shape_error(n, x, gy, "batch, channels or kernel do not match", d);
  if (!conv_spatial(n, &x->shape, k, out) || out[0] != gy->shape.dim[2] ||
      out[1] != gy->shape.dim[3])
    return shape_error(n, x, gy, "the gradient is not the size of the conv output", d);
  return set_out(n, x->dtype, gy->shape.dim[1], x->shape.dim[1] / gr, k[0], k[1], 0);
}

static bool check_float4(const Node *n, const Node *x, Diag *d) {
  char sa[SHAPE_BUF];
  if (dtype_is_float(x->dtype) && x->shape.rank == 4) return true;
  IR_ERROR(d, n->loc, "%s: expected a floating-point NCHW tensor, got %s%s", op_name(n),
           dtype_name(x->dtype), shape_str(&x->shape, sa, sizeof sa));
  return false;
}

bool infer_max_pool2d(Graph *g, Node *n, Diag *d) {
  const Node *x = input(g, n, 0);
  if (!check_attrs(n, true, d) || !check_float4(n, x, d)) return false;
  int64_t out[2], k[2] = {n->attr.conv.kernel[0], n->attr.conv.kernel[1]};
  char sa[SHAPE_BUF];
  if (!conv_spatial(n, &x->shape, k, out)) {
    IR_ERROR(d, n->loc, "%s: the window is larger than the padded input %s", op_name(n),
             shape_str(&x->shape, sa, sizeof sa));
    return false;
  }
  return set_out(n, x->dtype, x->shape.dim[0], x->shape.dim[1], out[0], out[1], x->shape.dyn);
}

bool infer_max_pool2d_grad(Graph *g, Node *n, Diag *d) {
  const Node *x = input(g, n, 0), *gy = input(g, n, 1);
  if (!check_attrs(n, true, d) || !check_float4(n, x, d) || !check_4d(n, x, gy, d))
    return false;
  int64_t out[2], k[2] = {n->attr.conv.kernel[0], n->attr.conv.kernel[1]};
  if (!conv_spatial(n, &x->shape, k, out) || x->shape.dim[0] != gy->shape.dim[0] ||
      x->shape.dyn != gy->shape.dyn ||
      x->shape.dim[1] != gy->shape.dim[1] || out[0] != gy->shape.dim[2] ||
      out[1] != gy->shape.dim[3])
    return shape_error(n, x, gy, "the gradient is not the size of the pool output", d);
  n->shape = x->shape;
  n->dtype = x->dtype;
  return true;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

typedef struct ConvView {
  const Shape *xs, *ys, *ws; /* X grid, Y grid, weights */
  const Tensor *x, *y, *w;   /* the two known operands (the unknown one is NULL) */
  double *acc;               /* the unknown operand, accumulated in double */
} ConvView;

static int64_t at4(const Shape *s, int64_t a, int64_t b, int64_t c, int64_t e) {
  return ((a * s->dim[1] + b) * s->dim[2] + c) * s->dim[3] + e;
}

/* one (n, o, p) output position: every tap of its window */
static void conv_taps(const Node *n, const ConvView *v, int64_t b, int64_t o, int64_t ph,
                      int64_t pw) {
  const struct IrConvAttr *a = &n->attr.conv;
  int64_t cg = v->ws->dim[1], og = v->ys->dim[1] / a->groups, grp = o / og;
  for (int64_t ci = 0; ci < cg; ci++) {
    int64_t c = grp * cg + ci;
    for (int64_t kh = 0; kh < v->ws->dim[2]; kh++) {
      int64_t qh = ph * a->stride[0] - a->pad[0] + kh * a->dilation[0];
      if (qh < 0 || qh >= v->xs->dim[2]) continue;
      for (int64_t kw = 0; kw < v->ws->dim[3]; kw++) {
        int64_t qw = pw * a->stride[1] - a->pad[1] + kw * a->dilation[1];
        if (qw < 0 || qw >= v->xs->dim[3]) continue;
        int64_t xi = at4(v->xs, b, c, qh, qw), yi = at4(v->ys, b, o, ph, pw);
        int64_t wi = at4(v->ws, o, ci, kh, kw);
        if (!v->y) v->acc[yi] += tensor_get(v->x, xi) * tensor_get(v->w, wi);
        else if (!v->x) v->acc[xi] += tensor_get(v->y, yi) * tensor_get(v->w, wi);
        else v->acc[wi] += tensor_get(v->x, xi) * tensor_get(v->y, yi);
      }
    }
  }
}

void eval_conv(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  ConvView v = {0};
  if (n->op == OP_CONV2D) {
    v = (ConvView){&in[0]->shape, &out->shape, &in[1]->shape, in[0], NULL, in[1], NULL};
  } else if (n->op == OP_CONV_TRANSPOSE2D) {
    v = (ConvView){&out->shape, &in[0]->shape, &in[1]->shape, NULL, in[0], in[1], NULL};
  } else {
    v = (ConvView){&in[0]->shape, &in[1]->shape, &out->shape, in[0], in[1], NULL, NULL};
  }
  int64_t count = shape_numel(&out->shape);
  v.acc = calloc((size_t)count, sizeof *v.acc);
  IR_ASSERT(v.acc != NULL);
  for (int64_t b = 0; b < v.ys->dim[0]; b++)
    for (int64_t o = 0; o < v.ys->dim[1]; o++)
      for (int64_t ph = 0; ph < v.ys->dim[2]; ph++)
        for (int64_t pw = 0; pw < v.ys->dim[3]; pw++) conv_taps(n, &v, b, o, ph, pw);
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, v.acc[i]);
  free(v.acc);
}

/* index into x of the first maximum of pooling window (b, c, ph, pw); -1 if all padding.
 * NaN wins (like torch.max_pool2d); a tie goes to the first in row-major window order. */
static int64_t pool_argmax(const Node *n, const Tensor *x, int64_t b, int64_t c, int64_t ph,
                           int64_t pw) {
  const struct IrConvAttr *a = &n->attr.conv;
  const Shape *s = &x->shape;
  int64_t best = -1;
  double bv = 0;
  for (int64_t kh = 0; kh < a->kernel[0]; kh++) {
    int64_t qh = ph * a->stride[0] - a->pad[0] + kh * a->dilation[0];
    if (qh < 0 || qh >= s->dim[2]) continue;
    for (int64_t kw = 0; kw < a->kernel[1]; kw++) {
      int64_t qw = pw * a->stride[1] - a->pad[1] + kw * a->dilation[1];
      if (qw < 0 || qw >= s->dim[3]) continue;
      int64_t i = at4(s, b, c, qh, qw);
      double v = tensor_get(x, i);
      if (best < 0 || v > bv || (isnan(v) && !isnan(bv))) best = i, bv = v;
    }
  }
  return best;
}

/* out = max_pool2d(x) when gy is NULL, else the gradient routed to x (out zero-filled) */
static void pool_sweep(const Node *n, const Tensor *x, const Tensor *gy, Tensor *out,
                       const Shape *ps) {
  int64_t o = 0;
  for (int64_t b = 0; b < ps->dim[0]; b++)
    for (int64_t c = 0; c < ps->dim[1]; c++)
      for (int64_t ph = 0; ph < ps->dim[2]; ph++)
        for (int64_t pw = 0; pw < ps->dim[3]; pw++, o++) {
          int64_t i = pool_argmax(n, x, b, c, ph, pw);
          if (!gy) tensor_set(out, o, i < 0 ? -INFINITY : tensor_get(x, i));
          else if (i >= 0) tensor_set(out, i, tensor_get(out, i) + tensor_get(gy, o));
        }
}

void eval_max_pool2d(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  pool_sweep(n, in[0], NULL, out, &out->shape);
}

void eval_max_pool2d_grad(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  pool_sweep(n, in[0], in[1], out, &in[1]->shape);
}

/* ---- train_select ----------------------------------------------------------------------- */

bool infer_train_select(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  if (a->dtype != b->dtype || !shape_equal(&a->shape, &b->shape)) {
    IR_ERROR(d, n->loc, "%s: the two choices differ: %s%s vs %s%s", op_name(n),
             dtype_name(a->dtype), shape_str(&a->shape, sa, sizeof sa), dtype_name(b->dtype),
             shape_str(&b->shape, sb, sizeof sb));
    return false;
  }
  n->shape = a->shape;
  n->dtype = a->dtype;
  return true;
}

void eval_train_select(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const Tensor *src = in[n->attr.mode.train ? 0 : 1];
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, tensor_get(src, i));
}
