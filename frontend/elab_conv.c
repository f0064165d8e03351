/* frontend/elab_conv.c — the convolution and pooling builtins (NCHW, PyTorch semantics):
 *   conv(x, w, stride = 1, padding = 0, dilation = 1, groups = 1)        F.conv2d
 *     (x [N, C, L]: F.conv1d, and conv_transpose F.conv_transpose1d; elab_conv1d.c)
 *   conv_transpose(x, w, stride = 1, padding = 0, output_padding = 0, groups = 1,
 *                  dilation = 1)                                          F.conv_transpose2d
 *   max_pool2d(x, kernel, stride = kernel, padding = 0, dilation = 1)    F.max_pool2d
 *   avg_pool2d(x, kernel, stride = kernel, padding = 0, count_include_pad = true)
 *                                                                        F.avg_pool2d
 *   global_avg_pool(x)                                                   mean over H, W
 *   batch_norm(x, gamma, beta, momentum = 0.1, eps = 1e-5)               F.batch_norm
 * (the layers with parameters, conv2d and conv_transpose2d, are lathe fns in lib/nn.lathe;
 * a fn cannot share a builtin's name). Window arguments are an int (both axes) or [h, w];
 * padding may also be [top, left, bottom, right], or `same` for conv (stride 1; the odd
 * extra row/col goes at the end, like PyTorch). avg_pool2d is a depthwise conv with a
 * constant 1/(kh*kw) kernel (count_include_pad, PyTorch's default; count_include_pad = false
 * multiplies by the constant kh*kw / (in-bounds count) per output position, an epilogue of the
 * conv); global_avg_pool is MEAN.
 * batch_norm normalizes over every axis but 1 (x is [N, C] or [N, C, H, W]); it creates the
 * states <instance>.running_mean (zeros) and .running_var (ones), named after the layer
 * instance (or the binding), and builds both modes: TRAIN_SELECT(batch statistics, running
 * statistics), plus OUT_STATE_UPDATE outputs of the running statistics (momentum like
 * PyTorch, unbiased variance). passes/mode.c picks the mode per entry point.
 * Invariant, as in elab_expr.c: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <string.h>

enum { CV_MAX_ARGS = 7 };

typedef enum ConvKind {
  CK_CONV,
  CK_CONV_T,
  CK_MAX_POOL,
  CK_AVG_POOL,
  CK_GLOBAL_AVG,
  CK_BATCH_NORM
} ConvKind;

typedef struct ConvBuiltin {
  const char *name;
  ConvKind kind;
  const char *params[CV_MAX_ARGS];
  int n_required;
} ConvBuiltin;

static const ConvBuiltin conv_builtins[] = {
    {"conv", CK_CONV, {"x", "w", "stride", "padding", "dilation", "groups"}, 2},
    {"conv_transpose",
     CK_CONV_T,
     {"x", "w", "stride", "padding", "output_padding", "groups", "dilation"},
     2},
    {"max_pool2d", CK_MAX_POOL, {"x", "kernel", "stride", "padding", "dilation"}, 2},
    {"avg_pool2d", CK_AVG_POOL, {"x", "kernel", "stride", "padding", "count_include_pad"}, 2},
    {"global_avg_pool", CK_GLOBAL_AVG, {"x"}, 1},
    {"batch_norm", CK_BATCH_NORM, {"x", "gamma", "beta", "momentum", "eps"}, 3},
};
enum { N_CONV_BUILTINS = sizeof conv_builtins / sizeof conv_builtins[0] };

static const ConvBuiltin *find(const char *name) {
  for (int i = 0; i < N_CONV_BUILTINS; i++)
    if (strcmp(conv_builtins[i].name, name) == 0) return &conv_builtins[i];
  return NULL;
}

bool elab_conv_is_builtin(const char *name) {
  return find(name) != NULL;
}

/* An int or a list of ints (n_max entries at most) into out; an int fills `fill` entries. */
static bool ints_arg(Elab *E, Scope *s, const Expr *e, const char *what, int fill, int n_max,
                     int64_t *out, int *n) {
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_NONE) return false;
  if (v.kind == VAL_INT) {
    for (int i = 0; i < fill; i++)
      out[i] = v.i;
    *n = fill;
    return true;
  }
  if (!elab_static_list(E, v, e, what)) return false;
  if (v.kind == VAL_LIST && v.n_items >= 1 && v.n_items <= n_max) {
    for (int i = 0; i < v.n_items; i++)
      out[i] = v.items[i];
    *n = v.n_items;
    return true;
  }
  diag_error(E->d, e->loc, "%s must be an int or a list of at most %d ints, got %s", what, n_max,
             elab_value_str(E, v));
  return false;
}

/* a [h, w] pair argument (an int means both); def when absent */
static bool pair_arg(Elab *E, Scope *s, const Expr *e, const char *what, int64_t def, int lo,
                     int32_t *out) {
  int64_t v[2] = {def, def};
  int n = 2;
  if (!e) {
    out[0] = out[1] = (int32_t)def;
    return true;
  }
  if (!ints_arg(E, s, e, what, 2, 2, v, &n)) return false;
  if (n != 2) {
    diag_error(E->d, e->loc, "%s must be an int or [h, w]", what);
    return false;
  }
  for (int i = 0; i < 2; i++) {
    if (v[i] < lo || v[i] > 1 << 20) {
      diag_error(E->d, e->loc, "%s must be >= %d, got %lld", what, lo, (long long)v[i]);
      return false;
    }
    out[i] = (int32_t)v[i];
  }
  return true;
}

/* the word `same` (not a binding of that name) */
static bool is_same(Scope *s, const Expr *e) {
  return e && e->kind == EX_NAME && strcmp(e->name, "same") == 0 && !elab_lookup(s, "same");
}

/* padding: int, [h, w], [top, left, bottom, right], or `same` (needs the dilated kernel) */
static bool pad_arg(Elab *E, Scope *s, const Expr *e, const int64_t *k, NodeAttr *at) {
  if (!e) return true;
  if (is_same(s, e)) {
    if (!k) {
      diag_error(E->d, e->loc, "padding = same is only supported by conv");
      return false;
    }
    for (int i = 0; i < 2; i++) {
      int64_t total = at->conv.dilation[i] * (k[i] - 1);
      at->conv.pad[i] = (int32_t)(total / 2);
      at->conv.pad[i + 2] = (int32_t)(total - total / 2);
    }
    return true;
  }
  int64_t v[4];
  int n = 0;
  if (!ints_arg(E, s, e, "'padding'", 2, 4, v, &n)) return false;
  if (n == 3 || n == 1) {
    diag_error(E->d, e->loc, "'padding' must be an int, [h, w] or [top, left, bottom, right]");
    return false;
  }
  for (int i = 0; i < 4; i++) {
    int64_t p = n == 2 ? v[i % 2] : v[i];
    if (p < 0 || p > 1 << 20) {
      diag_error(E->d, e->loc, "'padding' must be >= 0, got %lld", (long long)p);
      return false;
    }
    at->conv.pad[i] = (int32_t)p;
  }
  return true;
}

static bool number_of(Elab *E, Scope *s, const Expr *arg, const char *what, double *out) {
  Value v = elab_expr(E, s, arg);
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    *out = v.kind == VAL_FLOAT ? v.f : (double)v.i;
    return true;
  }
  if (v.kind != VAL_NONE)
    diag_error(E->d, arg->loc, "%s must be a number, got %s", what, elab_value_str(E, v));
  return false;
}

static Value add_node(Elab *E, OpKind op, NodeId x, NodeId w, const NodeAttr *at, SrcLoc loc) {
  NodeId in[2] = {x, w};
  return elab_tensor_value(
      graph_add(E->g, op, in, w == IR_NONE ? 1 : 2, at, elab_loc(E, loc), E->d));
}

static Value conv_call(Elab *E, Scope *s, const Expr *call, const ConvBuiltin *b, const Expr **a) {
  NodeId x, w;
  if (!elab_tensor_arg(E, s, a[0], b->name, &x) || !elab_tensor_arg(E, s, a[1], b->name, &w)) return (Value){0};
  NodeAttr at;
  memset(&at, 0, sizeof at);
  bool t = b->kind == CK_CONV_T;
  const Expr *dil = t ? a[6] : a[4];
  int64_t groups = 1;
  if (!pair_arg(E, s, a[2], "'stride'", 1, 1, at.conv.stride) ||
      !pair_arg(E, s, dil, "'dilation'", 1, 1, at.conv.dilation) ||
      (a[5] && !elab_int(E, elab_expr(E, s, a[5]), a[5]->loc, "'groups'", &groups)) ||
      (t && !pair_arg(E, s, a[4], "'output_padding'", 0, 0, at.conv.out_pad)))
    return (Value){0};
  if (groups < 1 || groups > 1 << 20) {
    diag_error(E->d, a[5]->loc, "'groups' must be >= 1, got %lld", (long long)groups);
    return (Value){0};
  }
  at.conv.groups = (int32_t)groups;
  const Shape *ws = &graph_node(E->g, w)->shape;
  bool one_d = graph_node(E->g, x)->shape.rank == 3; /* F.conv1d: elab_conv1d.c */
  int64_t k[2] = {ws->rank == 4 ? ws->dim[2] : 1, ws->rank >= 3 ? ws->dim[ws->rank - 1] : 1};
  if (!pad_arg(E, s, a[3], t ? NULL : k, &at)) return (Value){0};
  if (!t && is_same(s, a[3]) && (at.conv.stride[0] != 1 || at.conv.stride[1] != 1)) {
    diag_error(E->d, a[3]->loc, "padding = same needs stride 1 (like PyTorch)");
    return (Value){0};
  }
  OpKind op = t ? OP_CONV_TRANSPOSE2D : OP_CONV2D;
  if (one_d) return elab_conv1d(E, call, op, x, w, &at, is_same(s, a[3]));
  return add_node(E, op, x, w, &at, call->loc);
}

/* max_pool2d / avg_pool2d: kernel, stride (default kernel), padding */
static bool pool_attrs(Elab *E, Scope *s, const ConvBuiltin *b, const Expr **a, NodeAttr *at) {
  memset(at, 0, sizeof *at);
  at->conv.groups = 1;
  if (!pair_arg(E, s, a[1], "'kernel'", 1, 1, at->conv.kernel)) return false;
  int32_t st[2];
  if (!pair_arg(E, s, a[2], "'stride'", 0, 1, st)) return false;
  at->conv.stride[0] = a[2] ? st[0] : at->conv.kernel[0];
  at->conv.stride[1] = a[2] ? st[1] : at->conv.kernel[1];
  const Expr *dil = b->kind == CK_MAX_POOL ? a[4] : NULL;
  return pair_arg(E, s, dil, "'dilation'", 1, 1, at->conv.dilation) &&
         pad_arg(E, s, a[3], NULL, at);
}

/* the [Ho, Wo] factors kh*kw / (window positions inside the image) of a padded average pool
 * (count_include_pad = false); out is the pool's [N, C, Ho, Wo] result */
static NodeId pool_rescale(Elab *E, const Expr *call, DType t, const Shape *x,
                           const struct IrConvAttr *c, const Shape *out) {
  int64_t ho = out->dim[2], wo = out->dim[3], k[2] = {c->kernel[0], c->kernel[1]};
  double *f = arena_alloc(&E->scratch, (size_t)(ho * wo) * sizeof *f);
  for (int64_t p = 0; p < ho; p++) {
    for (int64_t q = 0; q < wo; q++) {
      int64_t in[2], at[2] = {p, q};
      for (int i = 0; i < 2; i++) {
        int64_t lo = at[i] * c->stride[i] - c->pad[i], hi = lo + k[i];
        in[i] = (hi < x->dim[2 + i] ? hi : x->dim[2 + i]) - (lo > 0 ? lo : 0);
      }
      f[p * wo + q] = (double)(k[0] * k[1]) / (double)(in[0] * in[1]);
    }
  }
  Builder b = elab_builder(E, call->loc);
  return build_const_data(&b, t, &(Shape){.rank = 2, .dim = {ho, wo}}, f);
}

/* avg_pool2d(x) = conv(x, 1/(kh*kw) everywhere, groups = C) [* pool_rescale] */
static Value avg_pool(Elab *E, Scope *s, const Expr *call, const Expr *cip, NodeId x,
                      NodeAttr *at) {
  const Node *xn = graph_node(E->g, x);
  if (xn->shape.rank != 4 || !dtype_is_float(xn->dtype)) {
    char buf[200];
    diag_error(E->d, call->loc, "avg_pool2d: expected a floating-point NCHW tensor, got %s%s",
               dtype_name(xn->dtype), shape_str(&xn->shape, buf, sizeof buf));
    return (Value){0};
  }
  for (int i = 0; i < 2; i++) {
    if (2 * at->conv.pad[i] > at->conv.kernel[i] || 2 * at->conv.pad[i + 2] > at->conv.kernel[i]) {
      diag_error(E->d, call->loc, "avg_pool2d: padding must be at most half the kernel");
      return (Value){0};
    }
  }
  bool include_pad;
  if (!elab_bool_arg(E, s, cip, "'count_include_pad'", true, &include_pad)) return (Value){0};
  struct IrConvAttr window = at->conv;
  Shape xs = xn->shape;
  NodeAttr c;
  memset(&c, 0, sizeof c);
  int64_t dims[4] = {xs.dim[1], 1, at->conv.kernel[0], at->conv.kernel[1]};
  c.constant.dtype = xn->dtype;
  c.constant.shape = shape_make(4, dims);
  c.constant.value = 1.0 / ((double)dims[2] * (double)dims[3]);
  NodeId w = graph_add(E->g, OP_CONST, NULL, 0, &c, elab_loc(E, call->loc), E->d);
  at->conv.groups = (int32_t)dims[0];
  at->conv.kernel[0] = at->conv.kernel[1] = 0;
  if (w == IR_NONE) return (Value){0};
  Value y = add_node(E, OP_CONV2D, x, w, at, call->loc);
  bool padded = window.pad[0] || window.pad[1] || window.pad[2] || window.pad[3];
  if (y.kind != VAL_TENSOR || include_pad || !padded) return y;
  Shape ys = graph_node(E->g, y.node)->shape;
  NodeId f = pool_rescale(E, call, graph_node(E->g, x)->dtype, &xs, &window, &ys);
  if (f == IR_NONE) return (Value){0};
  return elab_tensor_value(graph_add_binary(E->g, OP_MUL, y.node, f, elab_loc(E, call->loc), E->d));
}

static Value global_avg(Elab *E, const Expr *call, NodeId x) {
  const Node *xn = graph_node(E->g, x);
  if (xn->shape.rank != 4) {
    char buf[200];
    diag_error(E->d, call->loc, "global_avg_pool: expected an NCHW tensor, got %s",
               shape_str(&xn->shape, buf, sizeof buf));
    return (Value){0};
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reduce.axes = (1u << 2) | (1u << 3);
  return add_node(E, OP_MEAN, x, IR_NONE, &at, call->loc);
}

/* ---- batch norm ------------------------------------------------------------------------- */

typedef struct Bn {
  Elab *E;
  SrcLoc loc;
  Builder build; /* on E->g, with loc */
  Shape kept;    /* [1, C] or [1, C, 1, 1] */
  Shape vec;     /* [C] */
  DType t;
} Bn;

/* op(x, y), or op(x) for the unary ops (y == x) */
static NodeId bn_op(Bn *b, OpKind op, NodeId x, NodeId y, const NodeAttr *at) {
  NodeId in[2] = {x, y};
  return build_node(&b->build, op, in, ir_ops[op].arity == 1 ? 1 : 2, at);
}

static NodeId bn_num(Bn *b, double v) {
  return build_scalar(&b->build, b->t, v);
}

static NodeId bn_reshape(Bn *b, NodeId x, const Shape *s) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reshape.shape = *s;
  return bn_op(b, OP_RESHAPE, x, x, &at);
}

/* (x - mean) / sqrt(var + eps), mean and var of the kept shape */
static NodeId bn_normalize(Bn *b, NodeId x, NodeId mean, NodeId var, double eps) {
  NodeId d = bn_op(b, OP_SUB, x, mean, NULL);
  NodeId v = bn_op(b, OP_ADD, var, bn_num(b, eps), NULL);
  NodeId sd = bn_op(b, OP_SQRT, v, v, NULL);
  return bn_op(b, OP_DIV, d, sd, NULL);
}

/* the state `<prefix>.<what>` (a new one; batch norm instances cannot be shared) */
static NodeId bn_state(Bn *b, Scope *s, const char *what, InitKind init, int32_t *index) {
  const char *base = s->prefix && *s->prefix ? s->prefix : s->naming.base;
  if (!base || s->shared || b->E->scan_depth > 0) {
    diag_error(b->E->d, b->loc,
               "batch_norm must be bound to a name (or called in a layer), "
               "outside scan and without `as` sharing");
    return IR_NONE;
  }
  const char *name = arena_printf(&b->E->m->arena, "%s.%s", base, what);
  for (int i = 0; i < b->E->m->n_states; i++) {
    if (strcmp(b->E->m->states[i].name, name) != 0) continue;
    diag_error(b->E->d, b->loc, "batch_norm: state '%s' already exists", name);
    return IR_NONE;
  }
  *index = module_add_state(b->E->m, name, b->t, &b->vec, (InitSpec){init, 0, 0}, b->loc);
  return graph_add_source(b->E->g, OP_STATE, *index, b->loc);
}

/* running = (1 - momentum) * running + momentum * batch value, as an OUT_STATE_UPDATE */
/* run <- (1 - momentum) run + momentum * scale * batch; scale: a scalar node */
static void bn_update(Bn *b, NodeId run, NodeId batch, double momentum, NodeId scale,
                      int32_t index) {
  NodeId keep = bn_op(b, OP_MUL, run, bn_num(b, 1 - momentum), NULL);
  NodeId add = bn_op(b, OP_MUL, bn_reshape(b, batch, &b->vec), scale, NULL);
  NodeId upd = bn_op(b, OP_ADD, keep, add, NULL);
  if (upd != IR_NONE)
    graph_add_output(b->E->g, b->E->m->states[index].name, upd, OUT_STATE_UPDATE, index);
}

/* momentum * m / (m - 1), m the values per channel (PyTorch's unbiased running variance).
 * Over a dynamic batch m is known at run time only: the SUM of a splat 1 shaped like x with
 * one channel, so a partial batch updates the statistics exactly (docs/dynamic-batch.md).
 * When a sample holds one value per channel, m = n and a batch of 1 cannot train: recorded in
 * Module.train_min_n for the hosts to refuse it (state: the running_var's index). */
static NodeId bn_unbias(Bn *b, NodeId x, double momentum, double m, int32_t state) {
  Shape s = graph_node(b->E->g, x)->shape;
  if (!s.dyn) return bn_num(b, momentum * m / (m - 1));
  if (shape_numel(&s) / s.dim[1] / (s.dim[0] / s.dyn) < 2 && b->E->m->train_min_n < 2) {
    b->E->m->train_min_n = 2;
    b->E->m->train_min_why = b->E->m->states[state].name;
  }
  s.dim[1] = 1;
  NodeId ones = build_fill(&b->build, b->t, &s, 1.0);
  NodeId count = build_reduce(&b->build, OP_SUM, ones, (1u << s.rank) - 1, false);
  NodeId ratio = bn_op(b, OP_DIV, count, bn_op(b, OP_SUB, count, bn_num(b, 1), NULL), NULL);
  return bn_op(b, OP_MUL, ratio, bn_num(b, momentum), NULL);
}

static bool bn_check(Elab *E, const Expr *call, NodeId x, NodeId gamma, NodeId beta, Bn *b) {
  const Node *xn = graph_node(E->g, x);
  char sx[200], sg[200], sb[200];
  int64_t c = xn->shape.rank >= 2 ? xn->shape.dim[1] : 0;
  int64_t count = c ? shape_numel(&xn->shape) / c : 0;
  b->vec = shape_make(1, &c);
  bool ok = (xn->shape.rank == 2 || xn->shape.rank == 4) && dtype_is_float(xn->dtype) &&
            shape_equal(&graph_node(E->g, gamma)->shape, &b->vec) &&
            shape_equal(&graph_node(E->g, beta)->shape, &b->vec) && count >= 2;
  if (!ok)
    diag_error(E->d, call->loc,
               "batch_norm: expected x [N, C] or [N, C, H, W] (more than one "
               "value per channel) and gamma, beta [C]; got %s, %s and %s",
               shape_str(&xn->shape, sx, sizeof sx),
               shape_str(&graph_node(E->g, gamma)->shape, sg, sizeof sg),
               shape_str(&graph_node(E->g, beta)->shape, sb, sizeof sb));
  int64_t kept[4] = {1, c, 1, 1};
  b->kept = shape_make(xn->shape.rank, kept);
  b->t = xn->dtype;
  return ok;
}

static Value elab_batch_norm(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  NodeId x, gamma, beta;
  double mom = 0.1, eps = 1e-5;
  if (!elab_tensor_arg(E, s, a[0], "batch_norm", &x) || !elab_tensor_arg(E, s, a[1], "batch_norm", &gamma) ||
      !elab_tensor_arg(E, s, a[2], "batch_norm", &beta) ||
      (a[3] && !number_of(E, s, a[3], "'momentum'", &mom)) ||
      (a[4] && !number_of(E, s, a[4], "'eps'", &eps)))
    return (Value){0};
  Bn b = {.E = E, .loc = elab_loc(E, call->loc)};
  b.build = build_init(E->g, E->d, b.loc);
  if (!bn_check(E, call, x, gamma, beta, &b)) return (Value){0};
  int rank = graph_node(E->g, x)->shape.rank;
  double n = (double)shape_numel(&graph_node(E->g, x)->shape) / (double)b.vec.dim[0];
  NodeAttr red;
  memset(&red, 0, sizeof red);
  red.reduce.axes = rank == 4 ? 0xdu : 0x1u;
  red.reduce.keepdims = true;
  NodeId mean = bn_op(&b, OP_MEAN, x, x, &red);
  NodeId d = bn_op(&b, OP_SUB, x, mean, NULL);
  NodeId var = bn_op(&b, OP_MEAN, bn_op(&b, OP_MUL, d, d, NULL), x, &red);
  int32_t im = -1, iv = -1;
  NodeId rm = bn_state(&b, s, "running_mean", INIT_ZEROS, &im);
  NodeId rv = rm == IR_NONE ? IR_NONE : bn_state(&b, s, "running_var", INIT_ONES, &iv);
  if (rm == IR_NONE || rv == IR_NONE) return (Value){0};
  NodeId train = bn_normalize(&b, x, mean, var, eps);
  NodeId infer = bn_normalize(&b, x, bn_reshape(&b, rm, &b.kept), bn_reshape(&b, rv, &b.kept), eps);
  NodeId xhat = bn_op(&b, OP_TRAIN_SELECT, train, infer, NULL);
  bn_update(&b, rm, mean, mom, bn_num(&b, mom), im);
  bn_update(&b, rv, var, mom, bn_unbias(&b, x, mom, n, iv), iv);
  NodeId y = bn_op(&b, OP_MUL, xhat, bn_reshape(&b, gamma, &b.kept), NULL);
  return elab_tensor_value(bn_op(&b, OP_ADD, y, bn_reshape(&b, beta, &b.kept), NULL));
}

Value elab_conv_call(Elab *E, Scope *s, const Expr *call) {
  const ConvBuiltin *b = find(call->name);
  const Expr *a[CV_MAX_ARGS];
  if (!elab_builtin_args(E, call, b->params, CV_MAX_ARGS, b->n_required, a)) return (Value){0};
  if (b->kind == CK_CONV || b->kind == CK_CONV_T) return conv_call(E, s, call, b, a);
  if (b->kind == CK_BATCH_NORM) return elab_batch_norm(E, s, call, a);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], b->name, &x)) return (Value){0};
  if (b->kind == CK_GLOBAL_AVG) return global_avg(E, call, x);
  NodeAttr at;
  if (!pool_attrs(E, s, b, a, &at)) return (Value){0};
  if (graph_node(E->g, x)->dtype == DT_I8) /* int8 pooling (elab_quant.c) */
    return elab_quant_pool(E, s, call, b->kind == CK_AVG_POOL, a[4], x, &at);
  if (b->kind == CK_AVG_POOL) return avg_pool(E, s, call, a[4], x, &at);
  return add_node(E, OP_MAX_POOL2D, x, IR_NONE, &at, call->loc);
}
