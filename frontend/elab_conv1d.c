/* frontend/elab_conv1d.c — 1-D convolution and pooling (NCL, PyTorch semantics):
 *   conv(x, w, ...) with x [N, C, L], w [O, C/groups, k]                  F.conv1d
 *   conv_transpose(x, w, ...) with x [N, C, L], w [C, O/groups, k]        F.conv_transpose1d
 *   max_pool1d(x, kernel, stride = kernel, padding = 0, dilation = 1)     F.max_pool1d
 *   avg_pool1d(x, kernel, stride = kernel, padding = 0,
 *              count_include_pad = true)                                  F.avg_pool1d
 * Each is the 2-D op over an inserted axis of height 1: x [N, C, 1, L], w [O, C/g, 1, k], the
 * result reshaped back to [N, O, L']. The height axis has kernel, stride and dilation 1 and no
 * padding, so the 2-D kernels (direct, Winograd excluded by the 1-row kernel, implicit GEMM,
 * their gradients and the run-time batch) serve the 1-D ops unchanged and as fast: the row
 * loops of a 1-row image are the 1-D loops. avg_pool1d is a depthwise conv with the constant
 * kernel 1/k like avg_pool2d; count_include_pad = false divides the padded sum by the pool of
 * a constant ones image instead (a constant the fold pass computes at compile time).
 * Window arguments of the 1-D ops are ints (the length axis); padding may be `same` for conv.
 * Invariant, as in elab_expr.c: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <string.h>

/* s with an axis of size 1 inserted before axis 2: [N, C, L] → [N, C, 1, L] */
static Shape with_height(const Shape *s) {
  Shape r = *s;
  r.rank = 4;
  r.dim[3] = s->dim[2];
  r.dim[2] = 1;
  return r;
}

static NodeId to_4d(Builder *b, NodeId x) {
  Shape s = with_height(&graph_node(b->g, x)->shape);
  return build_reshape(b, x, &s);
}

/* [N, O, 1, L'] → [N, O, L'] */
static NodeId to_3d(Builder *b, NodeId y) {
  if (y == IR_NONE) return IR_NONE;
  Shape s = graph_node(b->g, y)->shape;
  s.rank = 3;
  s.dim[2] = s.dim[3];
  s.dim[3] = 0;
  return build_reshape(b, y, &s);
}

static bool rank_is(Elab *E, SrcLoc loc, const char *fn, NodeId x, int rank, const char *what) {
  const Node *n = graph_node(E->g, x);
  if (n->shape.rank == rank) return true;
  char buf[200];
  diag_error(E->d, loc, "'%s': expected %s of rank %d, got %s%s", fn, what, rank,
             dtype_name(n->dtype), shape_str(&n->shape, buf, sizeof buf));
  return false;
}

/* The height axis of a 1-D window: kernel, stride, dilation 1, no padding. The 2-D argument
 * parser filled both axes from one int; two different values mean a [h, w] list was given. */
static bool one_axis(Elab *E, SrcLoc loc, const char *fn, NodeAttr *at, bool same) {
  struct IrConvAttr *c = &at->conv;
  bool ok = c->stride[0] == c->stride[1] && c->dilation[0] == c->dilation[1] &&
            (same || (c->pad[0] == c->pad[1] && c->pad[2] == c->pad[3] && c->pad[0] == c->pad[2]));
  if (!ok) {
    diag_error(E->d, loc,
               "'%s' of a 1-D input [N, C, L]: stride, padding and dilation must be ints "
               "(or padding = same)",
               fn);
    return false;
  }
  c->stride[0] = c->dilation[0] = 1;
  c->pad[0] = c->pad[2] = 0;
  c->out_pad[0] = 0;
  return true;
}

Value elab_conv1d(Elab *E, const Expr *call, OpKind op, NodeId x, NodeId w, NodeAttr *at,
                  bool same) {
  const char *fn = op == OP_CONV2D ? "conv" : "conv_transpose";
  if (!rank_is(E, call->loc, fn, w, 3, "weights [O, C/groups, k] for x [N, C, L]") ||
      !one_axis(E, call->loc, fn, at, same))
    return (Value){0};
  Builder b = elab_builder(E, call->loc);
  NodeId in[2] = {to_4d(&b, x), to_4d(&b, w)};
  return elab_tensor_value(to_3d(&b, build_node(&b, op, in, 2, at)));
}

/* ---- pooling ------------------------------------------------------------------------------ */

enum { P_X, P_KERNEL, P_STRIDE, P_PADDING, P_DILATION, P_COUNT_PAD, P_MAX };

static bool int_arg(Elab *E, Scope *s, const Expr *e, const char *what, int64_t def, int64_t lo,
                    int64_t *out) {
  *out = def;
  if (!e) return true;
  if (!elab_int(E, elab_expr(E, s, e), e->loc, what, out)) return false;
  if (*out >= lo && *out <= 1 << 20) return true;
  diag_error(E->d, e->loc, "%s must be >= %lld, got %lld", what, (long long)lo, (long long)*out);
  return false;
}

static bool bool_arg(Elab *E, Scope *s, const Expr *e, const char *what, bool *out) {
  if (!e) return true;
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_BOOL) return *out = v.i != 0, true;
  if (v.kind != VAL_NONE)
    diag_error(E->d, e->loc, "%s must be true or false, got %s", what, elab_value_str(E, v));
  return false;
}

/* kernel, stride (default kernel), padding (at most half the kernel, like PyTorch) and dilation */
static bool pool1d_attrs(Elab *E, Scope *s, const Expr *call, const Expr **a, NodeAttr *at) {
  int64_t k, st, pad, dil;
  if (!int_arg(E, s, a[P_KERNEL], "'kernel'", 1, 1, &k) ||
      !int_arg(E, s, a[P_STRIDE], "'stride'", k, 1, &st) ||
      !int_arg(E, s, a[P_PADDING], "'padding'", 0, 0, &pad) ||
      !int_arg(E, s, a[P_DILATION], "'dilation'", 1, 1, &dil))
    return false;
  if (2 * pad > k) {
    diag_error(E->d, call->loc, "'%s': padding must be at most half the kernel, got %lld > %lld/2",
               call->name, (long long)pad, (long long)k);
    return false;
  }
  memset(at, 0, sizeof *at);
  at->conv.groups = 1;
  at->conv.kernel[0] = at->conv.stride[0] = at->conv.dilation[0] = 1;
  at->conv.kernel[1] = (int32_t)k;
  at->conv.stride[1] = (int32_t)st;
  at->conv.dilation[1] = (int32_t)dil;
  at->conv.pad[1] = at->conv.pad[3] = (int32_t)pad;
  return true;
}

/* the sum over each window of x4 [N, C, 1, L] times `scale`: a depthwise conv of a constant */
static NodeId window_sum(Builder *b, NodeId x4, const NodeAttr *pool, double scale) {
  const Node *xn = graph_node(b->g, x4);
  if (x4 == IR_NONE) return IR_NONE;
  int64_t dims[4] = {xn->shape.dim[1], 1, 1, pool->conv.kernel[1]};
  Shape ws = shape_make(4, dims);
  NodeId w = build_fill(b, xn->dtype, &ws, scale);
  NodeAttr at = *pool;
  at.conv.groups = (int32_t)dims[0];
  at.conv.kernel[0] = at.conv.kernel[1] = 0;
  NodeId in[2] = {x4, w};
  return build_node(b, OP_CONV2D, in, 2, &at);
}

/* avg_pool1d: the window mean, padding counted or (count_include_pad = false) not */
static NodeId avg_pool1d(Builder *b, NodeId x4, const NodeAttr *at, bool count_pad) {
  int64_t k = at->conv.kernel[1];
  if (count_pad || at->conv.pad[1] == 0) return window_sum(b, x4, at, 1.0 / (double)k);
  const Node *xn = graph_node(b->g, x4);
  Shape one = xn->shape; /* one image of one channel: the count is the same everywhere else */
  one.dim[0] = one.dim[1] = 1;
  one.dyn = 0;
  NodeId count = window_sum(b, build_fill(b, xn->dtype, &one, 1.0), at, 1.0);
  return build_binary(b, OP_DIV, window_sum(b, x4, at, 1.0), count);
}

Value elab_pool1d_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const params[P_MAX] = {"x",       "kernel",   "stride",
                                            "padding", "dilation", "count_include_pad"};
  bool is_max = strcmp(call->name, "max_pool1d") == 0;
  const Expr *a[P_MAX];
  if (!elab_match_args(E, call, params, P_MAX, a)) return (Value){0};
  const char *bad = !a[P_X] ? "x" : !a[P_KERNEL] ? "kernel" : NULL;
  if (bad || (is_max && a[P_COUNT_PAD]) || (!is_max && a[P_DILATION])) {
    diag_error(E->d, call->loc, bad ? "'%s' needs argument '%s'" : "'%s' takes no argument '%s'",
               call->name,
               bad      ? bad
               : is_max ? "count_include_pad"
                        : "dilation");
    return (Value){0};
  }
  NodeId x;
  if (!elab_tensor_arg(E, s, a[P_X], call->name, &x) ||
      !rank_is(E, a[P_X]->loc, call->name, x, 3, "x [N, C, L]"))
    return (Value){0};
  if (!dtype_is_float(graph_node(E->g, x)->dtype)) {
    diag_error(E->d, a[P_X]->loc, "'%s': expected a floating-point tensor", call->name);
    return (Value){0};
  }
  NodeAttr at;
  bool count_pad = true;
  if (!pool1d_attrs(E, s, call, a, &at) ||
      !bool_arg(E, s, a[P_COUNT_PAD], "'count_include_pad'", &count_pad))
    return (Value){0};
  Builder b = elab_builder(E, call->loc);
  NodeId x4 = to_4d(&b, x);
  NodeId y =
      is_max ? build_node(&b, OP_MAX_POOL2D, &x4, 1, &at) : avg_pool1d(&b, x4, &at, count_pad);
  return elab_tensor_value(to_3d(&b, y));
}
