/* frontend/elab_struct.c — the issue-4 builtins: activations composed from IR ops (leaky_relu,
 * elu, gelu, softplus, step, clamp), erf, where, concat, split (a tuple), pad, embedding,
 * causal_mask, and indexing/slicing `x[1:5:2, 0]`.
 *
 * Composites are built from differentiable IR ops, so their gradients come from the ops' VJP
 * rules; branches that could overflow where they are not selected are clamped first (elu's
 * exp(min(x, 0))) so that where's zero cotangent never meets an infinity.
 * Invariant, as in elab_expr.c: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <math.h>
#include <string.h>

typedef Value (*StructFn)(Elab *E, Scope *s, const Expr *call, const Expr **a);

typedef struct StructBuiltin {
  const char *name;
  const char *params[4];
  int n_required;
  StructFn fn;
} StructBuiltin;

/* ---- helpers -------------------------------------------------------------------------------- */

static const Node *nd(const Elab *E, NodeId id) {
  return graph_node(E->g, id);
}

/* a compile-time number argument (default def when absent) */
static bool number_of(Elab *E, Scope *s, const Expr *arg, const char *what, double def,
                      double *out) {
  *out = def;
  if (!arg) return true;
  Value v = elab_expr(E, s, arg);
  if (v.kind == VAL_NONE) return false;
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    *out = v.kind == VAL_FLOAT ? v.f : (double)v.i;
    return true;
  }
  diag_error(E->d, arg->loc, "%s must be a number, got %s", what, elab_value_str(E, v));
  return false;
}

/* a tensor, or a number converted to a rank-0 CONST of dtype t */
static NodeId operand(Elab *E, Scope *s, const Expr *arg, DType t, bool *ok) {
  Value v = elab_expr(E, s, arg);
  if (v.kind == VAL_TENSOR) return v.node;
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) return elab_scalar_node(E, v, t, arg->loc);
  if (v.kind != VAL_NONE)
    diag_error(E->d, arg->loc, "expected a tensor or a number, got %s", elab_value_str(E, v));
  *ok = false;
  return IR_NONE;
}

static bool axis_of(Elab *E, Scope *s, const Expr *arg, int rank, int64_t def, const char *fn,
                    int *out) {
  int64_t axis = def;
  if (arg && !elab_int(E, elab_expr(E, s, arg), arg->loc, "'axis'", &axis)) return false;
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    diag_error(E->d, arg ? arg->loc : (SrcLoc){0},
               "'%s': axis %lld is out of range for a tensor of rank %d", fn, (long long)axis,
               rank);
    return false;
  }
  *out = (int)a;
  return true;
}

static Value tv(NodeId id) {
  return elab_tensor_value(id);
}

/* x's dynamic axis 0 cannot be cut, padded or joined along: an error naming what did */
static bool dyn_axis_ok(Elab *E, NodeId x, int axis, SrcLoc loc, const char *what) {
  if (axis != 0 || !nd(E, x)->shape.dyn) return true;
  char buf[200];
  diag_error(E->d, loc,
             "%s: axis 0 of %s is the dynamic dimension %s (<= %lld), which cannot be "
             "cut, padded or joined along; only ':' keeps it whole",
             what, shape_str(&nd(E, x)->shape, buf, sizeof buf), E->dyn_name,
             (long long)E->dyn_max);
  return false;
}

/* ---- activations ----------------------------------------------------------------------------- */

static Value bi_erf(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "erf", &x)) return (Value){0};
  return tv(build_unary(&b, OP_ERF, x));
}

static Value bi_step(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "step", &x)) return (Value){0};
  return tv(build_binary(&b, OP_GT, x, build_scalar_like(&b, x, 0))); /* gt has zero gradient */
}

static NodeId where3(Elab *E, NodeId c, NodeId x, NodeId y, SrcLoc loc) {
  Builder b = elab_builder(E, loc);
  NodeId in[3] = {c, x, y};
  return build_node(&b, OP_WHERE, in, 3, NULL);
}

static Value bi_leaky_relu(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  double alpha;
  if (!elab_tensor_arg(E, s, a[0], "leaky_relu", &x) ||
      !number_of(E, s, a[1], "'alpha' of leaky_relu", 0.01, &alpha))
    return (Value){0};
  NodeId pos = build_binary(&b, OP_GT, x, build_scalar_like(&b, x, 0));
  return tv(
      where3(E, pos, x, build_binary(&b, OP_MUL, x, build_scalar_like(&b, x, alpha)), c->loc));
}

/* elu(x) = x for x > 0, alpha * (exp(x) - 1) otherwise; exp(min(x, 0)) never overflows */
static Value bi_elu(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  double alpha;
  if (!elab_tensor_arg(E, s, a[0], "elu", &x) || !number_of(E, s, a[1], "'alpha' of elu", 1.0, &alpha))
    return (Value){0};
  SrcLoc l = c->loc;
  NodeId zero = build_scalar_like(&b, x, 0);
  NodeId e = build_unary(&b, OP_EXP, build_binary(&b, OP_MINIMUM, x, zero));
  NodeId neg = build_binary(&b, OP_MUL, build_scalar_like(&b, x, alpha),
                            build_binary(&b, OP_SUB, e, build_scalar_like(&b, x, 1)));
  return tv(where3(E, build_binary(&b, OP_GT, x, zero), x, neg, l));
}

/* gelu(x) = x/2 (1 + erf(x / sqrt 2)); approximate: x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) */
static Value bi_gelu(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "gelu", &x)) return (Value){0};
  bool approx = false;
  if (a[1]) {
    Value v = elab_expr(E, s, a[1]);
    if (v.kind == VAL_NONE) return v;
    if (v.kind != VAL_BOOL) {
      diag_error(E->d, a[1]->loc, "'approximate' must be true or false, got %s",
                 elab_value_str(E, v));
      return (Value){0};
    }
    approx = v.i != 0;
  }
  NodeId inner;
  if (approx) {
    NodeId x3 = build_binary(&b, OP_MUL, build_binary(&b, OP_MUL, x, x), x);
    NodeId u = build_binary(&b, OP_ADD, x,
                            build_binary(&b, OP_MUL, build_scalar_like(&b, x, 0.044715), x3));
    inner = build_unary(&b, OP_TANH,
                        build_binary(&b, OP_MUL, build_scalar_like(&b, x, 0.7978845608028654), u));
  } else {
    inner = build_unary(&b, OP_ERF,
                        build_binary(&b, OP_MUL, x, build_scalar_like(&b, x, 0.7071067811865476)));
  }
  NodeId half_x = build_binary(&b, OP_MUL, build_scalar_like(&b, x, 0.5), x);
  return tv(build_binary(&b, OP_MUL, half_x,
                         build_binary(&b, OP_ADD, build_scalar_like(&b, x, 1), inner)));
}

/* softplus(x) = max(x, 0) + log(1 + exp(-|x|)), stable for any x */
static Value bi_softplus(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "softplus", &x)) return (Value){0};
  NodeId e = build_unary(&b, OP_EXP, build_unary(&b, OP_NEG, build_unary(&b, OP_ABS, x)));
  NodeId lg = build_unary(&b, OP_LOG, build_binary(&b, OP_ADD, build_scalar_like(&b, x, 1), e));
  return tv(
      build_binary(&b, OP_ADD, build_binary(&b, OP_MAXIMUM, x, build_scalar_like(&b, x, 0)), lg));
}

static Value bi_clamp(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "clamp", &x)) return (Value){0};
  bool ok = true;
  if (a[1]) x = build_binary(&b, OP_MAXIMUM, x, operand(E, s, a[1], nd(E, x)->dtype, &ok));
  if (ok && a[2] && x != IR_NONE)
    x = build_binary(&b, OP_MINIMUM, x, operand(E, s, a[2], nd(E, x)->dtype, &ok));
  return ok ? tv(x) : (Value){0};
}

static Value bi_where(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  NodeId cond;
  if (!elab_tensor_arg(E, s, a[0], "where", &cond)) return (Value){0};
  Value x = elab_expr(E, s, a[1]), y = elab_expr(E, s, a[2]);
  if (x.kind == VAL_NONE || y.kind == VAL_NONE) return (Value){0};
  DType t = x.kind == VAL_TENSOR   ? nd(E, x.node)->dtype
            : y.kind == VAL_TENSOR ? nd(E, y.node)->dtype
                                   : elab_float_dtype(E);
  bool ok = true;
  NodeId xn = operand(E, s, a[1], t, &ok), yn = ok ? operand(E, s, a[2], t, &ok) : IR_NONE;
  return ok ? tv(where3(E, cond, xn, yn, c->loc)) : (Value){0};
}

/* ---- structure ------------------------------------------------------------------------------- */

static NodeId window(Elab *E, OpKind op, NodeId x, const Shape *result, const int64_t *begin,
                     const int64_t *step, SrcLoc loc) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  for (int i = 0; i < result->rank; i++) {
    if (result->dim[i] > INT32_MAX || begin[i] > INT32_MAX || step[i] > INT32_MAX) {
      diag_error(E->d, loc, "%s: dimension too large", ir_ops[op].name);
      return IR_NONE;
    }
    attr.slice.begin[i] = (int32_t)begin[i];
    attr.slice.step[i] = (int32_t)step[i];
    attr.slice.dim[i] = (int32_t)result->dim[i];
  }
  Builder b = elab_builder(E, loc);
  return build_node(&b, op, &x, 1, &attr);
}

/* the tensors of a list/tuple argument */
static int tensor_list(Elab *E, Scope *s, const Expr *arg, const char *fn, NodeId *out, int max) {
  if (arg->kind != EX_LIST && arg->kind != EX_TUPLE) {
    diag_error(E->d, arg->loc, "'%s' expects a list of tensors [a, b, ...]", fn);
    return -1;
  }
  if (arg->n_args < 1 || arg->n_args > max) {
    diag_error(E->d, arg->loc, "'%s' takes 1 to %d tensors, got %d", fn, max, arg->n_args);
    return -1;
  }
  for (int i = 0; i < arg->n_args; i++)
    if (!elab_tensor_arg(E, s, arg->args[i], fn, &out[i])) return -1;
  return arg->n_args;
}

/* concat: each piece placed into the result by unslice (zeros elsewhere), then summed */
static Value bi_concat(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId xs[64];
  int n = tensor_list(E, s, a[0], "concat", xs, 64);
  if (n < 0) return (Value){0};
  const Node *first = nd(E, xs[0]);
  int axis;
  if (!axis_of(E, s, a[1], first->shape.rank, 0, "concat", &axis) ||
      (n > 1 && !dyn_axis_ok(E, xs[0], axis, c->loc, "concat")))
    return (Value){0};
  Shape out = first->shape;
  char s0[200], s1[200];
  for (int i = 1; i < n; i++) {
    const Node *x = nd(E, xs[i]);
    bool same = x->shape.rank == out.rank && x->dtype == first->dtype && x->shape.dyn == out.dyn;
    for (int d = 0; same && d < out.rank; d++)
      same = d == axis || x->shape.dim[d] == out.dim[d];
    if (!same) {
      diag_error(E->d, a[0]->args[i]->loc, "concat: %s%s does not match %s%s outside axis %d",
                 dtype_name(x->dtype), shape_str(&x->shape, s1, sizeof s1),
                 dtype_name(first->dtype), shape_str(&first->shape, s0, sizeof s0), axis);
      return (Value){0};
    }
    out.dim[axis] += x->shape.dim[axis];
  }
  int64_t begin[IR_MAX_RANK] = {0}, step[IR_MAX_RANK];
  for (int d = 0; d < IR_MAX_RANK; d++)
    step[d] = 1;
  NodeId sum = IR_NONE;
  for (int i = 0; i < n; i++) {
    NodeId piece = n == 1 ? xs[0] : window(E, OP_UNSLICE, xs[i], &out, begin, step, c->loc);
    sum = i == 0 ? piece : build_binary(&b, OP_ADD, sum, piece);
    begin[axis] += nd(E, xs[i])->shape.dim[axis];
  }
  return tv(sum);
}

/* the part sizes of split's `n` (a count of equal parts or a list of sizes); 0 on error */
static int split_sizes(Elab *E, Scope *s, const Expr *arg, int64_t dim, int axis, int64_t *sizes) {
  Value nv = elab_expr(E, s, arg);
  int64_t n = 0, total = 0;
  if (nv.kind == VAL_INT) {
    n = nv.i;
    if (n < 1 || n > 64 || dim % n != 0) {
      diag_error(E->d, arg->loc,
                 "split: cannot split %lld elements of axis %d into %lld "
                 "equal parts (1 to 64)",
                 (long long)dim, axis, (long long)n);
      return 0;
    }
    for (int i = 0; i < n; i++)
      sizes[i] = dim / n;
    total = dim;
  } else if (!elab_static_list(E, nv, arg, "a part size of split")) {
    return 0;
  } else if (nv.kind == VAL_LIST && nv.n_items >= 1 && nv.n_items <= 64) {
    n = nv.n_items;
    for (int i = 0; i < n; i++)
      sizes[i] = nv.items[i], total += sizes[i] > 0 ? sizes[i] : -1;
  }
  if (n == 0 || total != dim) {
    if (nv.kind != VAL_NONE)
      diag_error(E->d, arg->loc,
                 "split: expected a part count or part sizes adding up to "
                 "%lld, got %s",
                 (long long)dim, elab_value_str(E, nv));
    return 0;
  }
  return (int)n;
}

/* split(x, n, axis = -1): n equal parts, or parts of the listed sizes; a tuple */
static Value bi_split(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], "split", &x)) return (Value){0};
  Shape xs = nd(E, x)->shape;
  int axis;
  if (!axis_of(E, s, a[2], xs.rank, -1, "split", &axis)) return (Value){0};
  int64_t sizes[64];
  int n = split_sizes(E, s, a[1], xs.dim[axis], axis, sizes);
  if (n == 0 || (n > 1 && !dyn_axis_ok(E, x, axis, c->loc, "split"))) return (Value){0};
  Value t = {.kind = VAL_TUPLE, .n_items = (int)n};
  t.items = arena_alloc(&E->scratch, (size_t)n * sizeof *t.items);
  int64_t begin[IR_MAX_RANK] = {0}, step[IR_MAX_RANK];
  for (int d = 0; d < IR_MAX_RANK; d++)
    step[d] = 1;
  for (int i = 0; i < n; i++) {
    Shape part = xs;
    part.dim[axis] = sizes[i];
    NodeId p = window(E, OP_SLICE, x, &part, begin, step, c->loc);
    if (p == IR_NONE) return (Value){0};
    t.items[i] = p;
    begin[axis] += sizes[i];
  }
  return t;
}

/* pad(x, pads, value = 0): pads = [before0, after0, before1, after1, ...] from the first axis */
static Value bi_pad(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  double value;
  if (!elab_tensor_arg(E, s, a[0], "pad", &x) || !number_of(E, s, a[2], "'value' of pad", 0, &value))
    return (Value){0};
  Shape xs = nd(E, x)->shape, out = xs;
  Value l = elab_expr(E, s, a[1]);
  if (l.kind == VAL_NONE || !elab_static_list(E, l, a[1], "a padding of pad")) return (Value){0};
  if (l.kind != VAL_LIST || l.n_items != 2 * xs.rank) {
    diag_error(E->d, a[1]->loc,
               "pad: expected a list of %d ints [before, after] per axis, "
               "got %s",
               2 * xs.rank, elab_value_str(E, l));
    return (Value){0};
  }
  int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK];
  for (int d = 0; d < xs.rank; d++) {
    int64_t lo = l.items[2 * d], hi = l.items[2 * d + 1];
    if (lo < 0 || hi < 0 || lo > INT32_MAX || hi > INT32_MAX) {
      diag_error(E->d, a[1]->loc, "pad: padding of axis %d must be >= 0", d);
      return (Value){0};
    }
    begin[d] = lo, step[d] = 1, out.dim[d] += lo + hi;
    if ((lo || hi) && !dyn_axis_ok(E, x, d, a[1]->loc, "pad")) return (Value){0};
  }
  SrcLoc lc = c->loc;
  NodeId placed = window(E, OP_UNSLICE, x, &out, begin, step, lc);
  if (value == 0) return tv(placed);
  /* where(inside, placed, value): exact for any value (no (x - v) + v rounding); the mask
   * is a constant that fold computes */
  NodeAttr ba;
  memset(&ba, 0, sizeof ba);
  ba.reshape.shape = xs;
  NodeId one = build_scalar_like(&b, x, 1);
  NodeId inside =
      window(E, OP_UNSLICE, build_node(&b, OP_BROADCAST, &one, 1, &ba), &out, begin, step, lc);
  return tv(where3(E, inside, placed, build_scalar_like(&b, x, value), lc));
}

static Value bi_embedding(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId ids, table;
  if (!elab_tensor_arg(E, s, a[0], "embedding", &ids) || !elab_tensor_arg(E, s, a[1], "embedding", &table))
    return (Value){0};
  NodeId in[2] = {table, ids};
  return tv(build_node(&b, OP_GATHER, in, 2, NULL));
}

/* a compile-time size argument in [1, 4096] */
static bool size_of(Elab *E, Scope *s, const Expr *arg, const char *what, int64_t *out) {
  if (!elab_int(E, elab_expr(E, s, arg), arg->loc, what, out)) return false;
  if (*out >= 1 && *out <= 4096) return true;
  diag_error(E->d, arg->loc, "%s must be 1 to 4096, got %lld", what, (long long)*out);
  return false;
}

/* a [rows, cols] constant of the float dtype holding data */
static Value table2(Elab *E, int64_t rows, int64_t cols, const double *data, SrcLoc loc) {
  Builder b = elab_builder(E, loc);
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.constant.dtype = elab_float_dtype(E);
  int64_t dims[2] = {rows, cols};
  attr.constant.shape = shape_make(2, dims);
  attr.constant.data = data;
  return tv(build_node(&b, OP_CONST, NULL, 0, &attr));
}

/* causal_mask(T): [T, T] additive mask, 0 where j <= i and -inf above the diagonal */
static Value bi_causal_mask(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  int64_t t;
  if (!size_of(E, s, a[0], "the size of causal_mask", &t)) return (Value){0};
  double *data = arena_alloc(&E->g->arena, (size_t)(t * t) * sizeof *data);
  for (int64_t i = 0; i < t; i++)
    for (int64_t j = 0; j < t; j++)
      data[i * t + j] = j <= i ? 0.0 : -INFINITY;
  return table2(E, t, t, data, c->loc);
}

/* sinusoidal_positions(T, D): pe[t, 2i] = sin(t / 10000^(2i/D)), pe[t, 2i+1] = cos(...) */
static Value bi_sinusoidal(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  int64_t t, d;
  if (!size_of(E, s, a[0], "the length of sinusoidal_positions", &t) ||
      !size_of(E, s, a[1], "the width of sinusoidal_positions", &d))
    return (Value){0};
  double *data = arena_alloc(&E->g->arena, (size_t)(t * d) * sizeof *data);
  for (int64_t p = 0; p < t; p++) {
    for (int64_t j = 0; j < d; j++) {
      double angle = (double)p / pow(10000.0, (double)(j - j % 2) / (double)d);
      data[p * d + j] = j % 2 ? cos(angle) : sin(angle);
    }
  }
  return table2(E, t, d, data, c->loc);
}

/* fill(shape, value): a constant tensor of the float dtype */
static Value bi_fill(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  Value l = elab_expr(E, s, a[0]);
  double v;
  if (l.kind == VAL_NONE || !number_of(E, s, a[1], "'value' of fill", 0, &v)) return (Value){0};
  bool ok = l.kind == VAL_LIST && l.n_items <= IR_MAX_RANK;
  for (int i = 0; ok && i < l.n_items; i++)
    ok = l.items[i] >= 1;
  if (!ok) {
    diag_error(E->d, a[0]->loc, "fill: expected a shape [d0, d1, ...] of positive sizes, got %s",
               elab_value_str(E, l));
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.constant.dtype = elab_float_dtype(E);
  attr.constant.shape = shape_make(l.n_items, l.items);
  attr.constant.shape.dyn = l.dyn; /* fill([N, 1], 0.0): a splat as large as the batch */
  attr.constant.value = v;
  return tv(build_node(&b, OP_CONST, NULL, 0, &attr));
}

Value elab_struct_fold_unary(Elab *E, OpKind op, Value x, SrcLoc loc) {
  double v = x.kind == VAL_FLOAT ? x.f : (double)x.i, r;
  switch (op) {
  case OP_EXP:
    r = exp(v);
    break;
  case OP_LOG:
    r = log(v);
    break;
  case OP_SQRT:
    r = sqrt(v);
    break;
  case OP_ABS:
    r = fabs(v);
    break;
  case OP_TANH:
    r = tanh(v);
    break;
  case OP_SIGMOID:
    r = 1.0 / (1.0 + exp(-v));
    break;
  case OP_SIN:
    r = sin(v);
    break;
  case OP_COS:
    r = cos(v);
    break;
  default:
    diag_error(E->d, loc, "'%s' expects a tensor, got %s", ir_ops[op].name, elab_value_str(E, x));
    return (Value){0};
  }
  if (!isfinite(r)) {
    diag_error(E->d, loc, "'%s' of %g is not a finite number", ir_ops[op].name, v);
    return (Value){0};
  }
  return (Value){.kind = VAL_FLOAT, .f = r};
}

/* ---- random numbers -------------------------------------------------------------------------
 * The generator's seed and step counter are two rank-0 f64 states created on first use:
 * rng.seed = uniform(0, 2^32) (so <model>_init(seed) sets it reproducibly) and rng.step =
 * zeros, advanced by one per train call (an OUT_STATE_UPDATE kept in train entries). Each
 * random node gets its own stream: the number of random nodes before it. */

static NodeId rng_state(Elab *E, const char *name, InitSpec init, SrcLoc loc) {
  Builder b = elab_builder(E, loc);
  int32_t idx = -1;
  for (int i = 0; i < E->m->n_states && idx < 0; i++)
    if (strcmp(E->m->states[i].name, name) == 0) idx = i;
  if (idx < 0) {
    Shape scalar = shape_make(0, NULL);
    idx = module_add_state(E->m, name, DT_F64, &scalar, init, elab_loc(E, loc));
  }
  for (uint32_t id = 0; id < E->g->n_nodes; id++) {
    const Node *n = nd(E, id);
    if (n->op == OP_STATE && n->attr.source.index == idx) return id;
  }
  NodeId id = graph_add_source(E->g, OP_STATE, idx, elab_loc(E, loc));
  if (strcmp(name, "rng.step") == 0) { /* the first use: step + 1 after each train call */
    NodeId next = build_binary(&b, OP_ADD, id, graph_add_scalar(E->g, DT_F64, 1, elab_loc(E, loc)));
    graph_add_output(E->g, "rng.step", next, OUT_STATE_UPDATE, idx);
  }
  return id;
}

static uint32_t rng_stream(const Elab *E) {
  uint32_t count = 0;
  for (uint32_t id = 0; id < E->g->n_nodes; id++)
    count += nd(E, id)->op == OP_RANDOM || nd(E, id)->op == OP_DROPOUT;
  return count;
}

static void rng_inputs(Elab *E, SrcLoc loc, NodeId *seed, NodeId *step) {
  *seed = rng_state(E, "rng.seed", (InitSpec){INIT_UNIFORM, 0, 4294967296.0}, loc);
  *step = rng_state(E, "rng.step", (InitSpec){INIT_ZEROS, 0, 0}, loc);
}

/* rand(shape) / randn(shape) */
static Value bi_random(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  Value l = elab_expr(E, s, a[0]);
  if (l.kind == VAL_NONE) return l;
  bool ok = l.kind == VAL_LIST && l.n_items <= IR_MAX_RANK;
  for (int i = 0; ok && i < l.n_items; i++)
    ok = l.items[i] >= 1;
  if (!ok) {
    diag_error(E->d, a[0]->loc, "%s: expected a shape [d0, d1, ...] of positive sizes, got %s",
               c->name, elab_value_str(E, l));
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.random.stream = rng_stream(E);
  attr.random.dist = strcmp(c->name, "randn") == 0;
  attr.random.dtype = elab_float_dtype(E);
  attr.random.shape = shape_make(l.n_items, l.items);
  attr.random.shape.dyn = l.dyn;
  NodeId in[2];
  rng_inputs(E, c->loc, &in[0], &in[1]);
  return tv(build_node(&b, OP_RANDOM, in, 2, &attr));
}

/* dropout(x, p): active in training entries only (train_select resolves per entry) */
static Value bi_dropout(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  double p;
  if (!elab_tensor_arg(E, s, a[0], "dropout", &x) || !number_of(E, s, a[1], "'p' of dropout", 0, &p))
    return (Value){0};
  if (!(p >= 0 && p < 1)) {
    diag_error(E->d, a[1]->loc, "dropout: p must be in [0, 1), got %g", p);
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.random.stream = rng_stream(E);
  attr.random.p = p;
  NodeId in[3] = {x, IR_NONE, IR_NONE};
  rng_inputs(E, c->loc, &in[1], &in[2]);
  NodeId drop = build_node(&b, OP_DROPOUT, in, 3, &attr);
  return tv(build_binary(&b, OP_TRAIN_SELECT, drop, x));
}

/* ---- the table ------------------------------------------------------------------------------- */

static const StructBuiltin table[] = {
    {"erf", {"x"}, 1, bi_erf},
    {"step", {"x"}, 1, bi_step},
    {"leaky_relu", {"x", "alpha"}, 1, bi_leaky_relu},
    {"elu", {"x", "alpha"}, 1, bi_elu},
    {"gelu", {"x", "approximate"}, 1, bi_gelu},
    {"softplus", {"x"}, 1, bi_softplus},
    {"clamp", {"x", "min", "max"}, 1, bi_clamp},
    {"where", {"cond", "x", "y"}, 3, bi_where},
    {"concat", {"xs", "axis"}, 1, bi_concat},
    {"split", {"x", "n", "axis"}, 2, bi_split},
    {"pad", {"x", "pads", "value"}, 2, bi_pad},
    {"embedding", {"ids", "table"}, 2, bi_embedding},
    {"causal_mask", {"size"}, 1, bi_causal_mask},
    {"fill", {"shape", "value"}, 2, bi_fill},
    {"sinusoidal_positions", {"length", "width"}, 2, bi_sinusoidal},
    {"rand", {"shape"}, 1, bi_random},
    {"randn", {"shape"}, 1, bi_random},
    {"dropout", {"x", "p"}, 2, bi_dropout},
};
enum { N_STRUCT = sizeof table / sizeof table[0] };

static const StructBuiltin *find(const char *name) {
  for (int i = 0; i < N_STRUCT; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

bool elab_struct_is_builtin(const char *name) {
  return find(name) != NULL;
}

const char *elab_struct_builtin_name(int i) {
  return i < N_STRUCT ? table[i].name : NULL;
}

Value elab_struct_call(Elab *E, Scope *s, const Expr *call) {
  const StructBuiltin *b = find(call->name);
  const Expr *a[4];
  if (!elab_builtin_args(E, call, b->params, 4, b->n_required, a)) return (Value){0};
  return b->fn(E, s, call, a);
}

/* ---- indexing -------------------------------------------------------------------------------- */

/* a slice bound: absent → def; negative counts from the end; clamped to [0, dim] (Python) */
static bool bound(Elab *E, Scope *s, const Expr *b, int64_t dim, int64_t def, int64_t *out) {
  *out = def;
  if (!b) return true;
  int64_t v;
  if (!elab_int(E, elab_expr(E, s, b), b->loc, "a slice bound", &v)) return false;
  if (v < 0) v += dim;
  *out = v < 0 ? 0 : v > dim ? dim : v;
  return true;
}

/* one axis of an index: a slice start:end:step, or an integer (the axis is then dropped) */
static bool index_axis(Elab *E, Scope *s, const Expr *arg, int64_t dim, int64_t *begin,
                       int64_t *step, int64_t *count, bool *drop) {
  *drop = false;
  if (arg->kind == EX_SLICE) {
    const Expr *st = arg->n_args == 1 ? arg->args[0] : NULL;
    int64_t end;
    *step = 1;
    if (st && !elab_int(E, elab_expr(E, s, st), st->loc, "a slice step", step)) return false;
    if (*step < 1) {
      diag_error(E->d, st->loc, "slice step must be >= 1, got %lld", (long long)*step);
      return false;
    }
    if (!bound(E, s, arg->lhs, dim, 0, begin) || !bound(E, s, arg->rhs, dim, dim, &end))
      return false;
    *count = end > *begin ? (end - *begin + *step - 1) / *step : 0;
    if (*count < 1) {
      diag_error(E->d, arg->loc, "slice selects no elements of an axis of size %lld",
                 (long long)dim);
      return false;
    }
    return true;
  }
  int64_t i;
  if (!elab_int(E, elab_expr(E, s, arg), arg->loc, "an index", &i)) return false;
  if (i < -dim || i >= dim) {
    diag_error(E->d, arg->loc, "index %lld is out of range for an axis of size %lld", (long long)i,
               (long long)dim);
    return false;
  }
  *begin = i < 0 ? i + dim : i, *step = 1, *count = 1, *drop = true;
  return true;
}

Value elab_struct_index(Elab *E, Scope *s, const Expr *e) {
  Builder b = elab_builder(E, e->loc);
  Value x = elab_expr(E, s, e->lhs);
  if (x.kind == VAL_NONE) return x;
  if (x.kind != VAL_TENSOR) {
    diag_error(E->d, e->loc, "cannot index %s", elab_value_str(E, x));
    return (Value){0};
  }
  Shape xs = nd(E, x.node)->shape, out = xs, kept;
  if (e->n_args > xs.rank) {
    diag_error(E->d, e->loc, "too many indices for a tensor of rank %d", xs.rank);
    return (Value){0};
  }
  if (e->n_args == 1 && e->args[0]->kind != EX_SLICE) { /* x[ids]: gather rows */
    Value i = elab_expr(E, s, e->args[0]);
    if (i.kind == VAL_TENSOR) {
      NodeId in[2] = {x.node, i.node};
      return tv(build_node(&b, OP_GATHER, in, 2, NULL));
    }
  }
  int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK];
  bool identity = true;
  memset(&kept, 0, sizeof kept);
  for (int d = 0; d < xs.rank; d++) {
    bool drop = false;
    begin[d] = 0, step[d] = 1;
    if (d < e->n_args &&
        !index_axis(E, s, e->args[d], xs.dim[d], &begin[d], &step[d], &out.dim[d], &drop))
      return (Value){0};
    if ((drop || out.dim[d] != xs.dim[d]) && !dyn_axis_ok(E, x.node, d, e->args[d]->loc, "index"))
      return (Value){0};
    identity &= out.dim[d] == xs.dim[d];
    if (!drop) kept.dim[kept.rank++] = out.dim[d];
  }
  kept.dyn = xs.dyn; /* axis 0 is kept whole when dynamic (dyn_axis_ok) */
  NodeId y = identity ? x.node : window(E, OP_SLICE, x.node, &out, begin, step, e->loc);
  if (y == IR_NONE || kept.rank == xs.rank) return tv(y);
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.reshape.shape = kept;
  return tv(build_node(&b, OP_RESHAPE, &y, 1, &attr));
}

/* ---- overloading by argument dtype ------------------------------------------------------------
 */

bool elab_struct_overloads(const Decl *a, const Decl *b) {
  if (a->n_args != b->n_args) return false;
  for (int i = 0; i < a->n_args; i++) {
    const TypeExpr *x = a->args[i].type, *y = b->args[i].type;
    if (x->is_int != y->is_int || x->is_float != y->is_float || x->is_bool != y->is_bool)
      return true;
    if (!type_is_scalar(x) && x->dtype && y->dtype && strcmp(x->dtype, y->dtype) != 0) return true;
  }
  return false;
}

bool elab_struct_cached(const Elab *E, const Expr *e, Value *out) {
  for (int i = E->n_arg_cache - 1; i >= 0; i--) {
    if (E->arg_cache_expr[i] == e) {
      *out = E->arg_cache_val[i];
      return true;
    }
  }
  return false;
}

void elab_struct_uncache(Elab *E, int n_cached) {
  E->n_arg_cache -= n_cached;
}

/* whether the elaborated arguments fit fn's declared argument kinds and dtypes */
static bool fits(Elab *E, const Decl *fn, const Expr *const *args, const Value *vals) {
  for (int i = 0; i < fn->n_args; i++) {
    if (!args[i]) continue; /* missing or defaulted: bind_args reports */
    const TypeExpr *t = fn->args[i].type;
    if (type_is_scalar(t)) {
      bool number = vals[i].kind == VAL_INT || (t->is_float && vals[i].kind == VAL_FLOAT);
      if (t->is_bool ? vals[i].kind != VAL_BOOL : !number) return false;
      continue;
    }
    bool number = vals[i].kind == VAL_INT || vals[i].kind == VAL_FLOAT;
    if (number && t->n_dims == 0) continue; /* a number is a rank-0 tensor of any dtype */
    DType want;
    if (vals[i].kind != VAL_TENSOR || !dtype_from_name(t->dtype, &want)) return false;
    if (want == DT_F32) want = elab_float_dtype(E);
    if (nd(E, vals[i].node)->dtype != want) return false;
  }
  return true;
}

/* matches call's arguments to fn's names without reporting (bind_args reports later) */
static bool match_quietly(Elab *E, const Expr *call, const Decl *fn, const Expr **args) {
  const char *names[16];
  if (fn->n_args > 16) return false;
  for (int i = 0; i < fn->n_args; i++)
    names[i] = fn->args[i].name;
  Diag quiet;
  diag_init(&quiet);
  Diag *saved = E->d;
  E->d = &quiet;
  bool ok = elab_match_args(E, call, names, fn->n_args, args);
  E->d = saved;
  diag_fini(&quiet);
  return ok;
}

const Decl *elab_struct_resolve_fn(Elab *E, Scope *s, const Expr *call, int *n_cached) {
  const Decl *cands[16];
  int n = 0;
  *n_cached = 0;
  for (int i = 0; i < E->prog->n_decls && n < 16; i++) {
    const Decl *d = E->prog->decls[i];
    if (d->kind == DECL_FN && strcmp(d->name, call->name) == 0) cands[n++] = d;
  }
  if (n < 2 || call->n_args > 16 || E->n_arg_cache + call->n_args > 32) return n ? cands[0] : NULL;
  for (int k = 0; k < n; k++) {
    const Expr *args[16];
    Value vals[16];
    if (!match_quietly(E, call, cands[k], args)) continue;
    bool failed = false;
    for (int i = 0; i < cands[k]->n_args; i++) {
      if (!args[i] || elab_struct_cached(E, args[i], &vals[i])) continue;
      vals[i] = elab_expr(E, s, args[i]); /* once: later lookups hit the cache */
      E->arg_cache_expr[E->n_arg_cache] = args[i];
      E->arg_cache_val[E->n_arg_cache++] = vals[i];
      (*n_cached)++;
      failed |= vals[i].kind == VAL_NONE;
    }
    if (failed) return cands[k]; /* reported; bind_args fails quietly on the VAL_NONE */
    for (int i = 0; i < cands[k]->n_args; i++)
      if (args[i]) elab_struct_cached(E, args[i], &vals[i]);
    if (fits(E, cands[k], args, vals)) return cands[k];
  }
  return cands[0];
}
