/* frontend/elab_math.c — the issue-22 math builtins built from existing IR ops, and float
 * tensor literals:
 *
 *   silu(x)                                   x * sigmoid(x)
 *   logsumexp(x, axis, keepdims = false)      m + log(sum(exp(x - m))), m the (finite) max
 *   min(x, axis, keepdims = false)            -max(-x): the gradient goes to the first minimum
 *   var(x, axis, keepdims = false, correction = 1), std(...)   torch.var / torch.std
 *   argmax(x, axis, keepdims = false, last = false), argmin   the index of the max / min, i32
 *   cumsum(x, axis, exclusive = false, reverse = false)        a product with a 0/1 triangle
 *   broadcast_to(x, [d0, ...]), expand(...)   OP_BROADCAST (-1 keeps x's extent)
 *   [1.0, 2.0], [[1, 2], [3, 4.5]]            a constant tensor (elab_math_literal)
 *
 * Each is a composition of differentiable ops, so shape inference, evaluation, the gradient
 * and the lowering are those ops' (the elementwise parts fuse; the reductions are reduction
 * kernels). The choices that matter:
 *   - logsumexp shifts by stop_gradient(m), m the max clamped to the finite range, so a row
 *     of -inf gives -inf (not NaN) and +inf gives +inf, as in PyTorch; the shift cancels in
 *     the value, so its gradient is softmax(x) from the exp/sum/log chain alone;
 *   - argmax compares x with its max (kept dims) and takes the smallest index where they are
 *     equal: the min of L + (x == m) * (i - L). EQ has a zero derivative, so no gradient flows;
 *   - cumsum along an axis of length L is a product with the [L, L] 0/1 triangle T (T[j, i] =
 *     1 where j <= i; j >= i reversed; strict when exclusive): x viewed as [A, L] times T when
 *     the axis is the last one, T' times x viewed as [A, L, B] otherwise. One GEMM, O(L^2)
 *     work per row, good for the short axes of sequence models; its gradient is the
 *     transposed product (the reverse cumsum).
 * None uses an op the run-time batch refuses (where, transpose): all run at a dynamic batch
 * when they do not reduce or index along it.
 * Invariant, as in elab_expr.c: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* the longest axis cumsum takes: its [L, L] triangle is a 32 MiB f64 constant at 2048 */
enum { CUMSUM_MAX_LEN = 2048 };

typedef Value (*MathFn)(Elab *E, Scope *s, const Expr *call, const Expr **a);

typedef struct MathBuiltin {
  const char *name;
  const char *params[4];
  int n_required;
  MathFn fn;
} MathBuiltin;

/* ---- helpers -------------------------------------------------------------------------------- */

static const Node *nd(const Elab *E, NodeId id) {
  return graph_node(E->g, id);
}

static bool float_tensor_of(Elab *E, Scope *s, const Expr *arg, const char *fn, NodeId *out) {
  if (!elab_tensor_arg(E, s, arg, fn, out)) return false;
  if (dtype_is_float(nd(E, *out)->dtype)) return true;
  diag_error(E->d, arg->loc, "'%s' expects a floating-point tensor, got %s", fn,
             elab_value_str(E, elab_tensor_value(*out)));
  return false;
}

/* one axis (negative from the end) */
static bool one_axis(Elab *E, Scope *s, const Expr *arg, int rank, const char *fn, int *out) {
  int64_t axis;
  if (!elab_int(E, elab_expr(E, s, arg), arg->loc, "'axis'", &axis)) return false;
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    diag_error(E->d, arg->loc, "'%s': axis %lld is out of range for a tensor of rank %d", fn,
               (long long)axis, rank);
    return false;
  }
  *out = (int)a;
  return true;
}

/* the shape of x with the axes in mask reduced (kept as 1 when keep) */
static Shape reduced_shape(const Shape *x, uint32_t mask, bool keep) {
  Shape r = {0};
  for (int i = 0; i < x->rank; i++) {
    if (!(mask >> i & 1))
      r.dim[r.rank++] = x->dim[i];
    else if (keep)
      r.dim[r.rank++] = 1;
  }
  r.dyn = x->dyn && !(mask & 1u) ? x->dyn : 0;
  return r;
}

/* the number of elements the axes in mask hold together (at the bound) */
static int64_t reduced_count(const Shape *x, uint32_t mask) {
  int64_t count = 1;
  for (int i = 0; i < x->rank; i++)
    if (mask >> i & 1) count *= x->dim[i];
  return count;
}

/* x, the keepdims result of a reduction of a tensor of shape xs, reshaped to drop them */
static NodeId drop_kept(Builder *b, NodeId x, const Shape *xs, uint32_t mask, bool keep) {
  if (keep) return x;
  Shape r = reduced_shape(xs, mask, false);
  return build_reshape(b, x, &r);
}

/* ---- elementwise and reductions ------------------------------------------------------------- */

/* silu(x) = x * sigmoid(x) (PyTorch's SiLU, the swish of SwiGLU) */
static Value bi_silu(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!float_tensor_of(E, s, a[0], "silu", &x)) return (Value){0};
  return elab_tensor_value(build_binary(&b, OP_MUL, x, build_unary(&b, OP_SIGMOID, x)));
}

/* the x, axes and keepdims of a reduction builtin f(x, axis, keepdims, ...) */
static bool reduction_args(Elab *E, Scope *s, const Expr *c, const Expr **a, bool want_float,
                           NodeId *x, uint32_t *mask, bool *keep) {
  bool ok =
      want_float ? float_tensor_of(E, s, a[0], c->name, x) : elab_tensor_arg(E, s, a[0], c->name, x);
  return ok && elab_reduce_axes(E, s, a[1], nd(E, *x)->shape.rank, c->name, mask) &&
         elab_bool_arg(E, s, a[2], "'keepdims'", false, keep);
}

/* logsumexp(x) = m + log(sum(exp(x - m))), m = stop_gradient(max(x)) clamped to the finite
 * range: a finite max is kept exactly, -inf becomes -FLT_MAX (exp(-inf + FLT_MAX) = 0, so a row
 * of -inf gives -inf) and +inf becomes FLT_MAX (the sum is then inf). Elementwise ops only,
 * so it fuses and runs at a run-time batch. */
static Value bi_logsumexp(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  uint32_t mask;
  bool keep;
  if (!reduction_args(E, s, c, a, true, &x, &mask, &keep)) return (Value){0};
  Shape xs = nd(E, x)->shape;
  double big = nd(E, x)->dtype == DT_F32 ? FLT_MAX : DBL_MAX;
  NodeId mx = build_reduce(&b, OP_MAX, x, mask, true);
  mx = build_binary(&b, OP_MAXIMUM, mx, build_scalar_like(&b, x, -big));
  NodeId m = build_unary(&b, OP_STOP_GRAD,
                         build_binary(&b, OP_MINIMUM, mx, build_scalar_like(&b, x, big)));
  NodeId e = build_unary(&b, OP_EXP, build_binary(&b, OP_SUB, x, m));
  NodeId sum = build_reduce(&b, OP_SUM, e, mask, true);
  NodeId r = build_binary(&b, OP_ADD, build_unary(&b, OP_LOG, sum), m);
  return elab_tensor_value(drop_kept(&b, r, &xs, mask, keep));
}

/* min(x) = -max(-x): the same values exactly, the gradient to the first minimum */
static Value bi_min(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  uint32_t mask;
  bool keep;
  if (!reduction_args(E, s, c, a, false, &x, &mask, &keep)) return (Value){0};
  DType t = nd(E, x)->dtype;
  if (t == DT_U8) x = build_cast(&b, x, DT_I32); /* -x would wrap around */
  NodeId neg = build_unary(&b, OP_NEG, x);
  NodeId r = build_unary(&b, OP_NEG, build_reduce(&b, OP_MAX, neg, mask, keep));
  return elab_tensor_value(t == DT_U8 ? build_cast(&b, r, DT_U8) : r);
}

/* var(x) = sum((x - mean(x))^2) / (count - correction), as mean(d^2) * count / (count -
 * correction) so that a reduction over the run-time batch (correction 0) needs no count */
static NodeId variance(Elab *E, Scope *s, const Expr *c, const Expr **a, bool *keep, uint32_t *mask,
                       NodeId *x) {
  Builder b = elab_builder(E, c->loc);
  if (!reduction_args(E, s, c, a, true, x, mask, keep)) return IR_NONE;
  int64_t corr = 1;
  if (a[3] && !elab_int(E, elab_expr(E, s, a[3]), a[3]->loc, "'correction'", &corr)) return IR_NONE;
  const Shape *xs = &nd(E, *x)->shape;
  int64_t count = reduced_count(xs, *mask);
  SrcLoc loc = a[3] ? a[3]->loc : c->loc;
  if (corr < 0 || corr >= count) {
    diag_error(E->d, loc,
               "'%s': correction must be in [0, %lld) for the %lld elements reduced, "
               "got %lld",
               c->name, (long long)count, (long long)count, (long long)corr);
    return IR_NONE;
  }
  if (corr && xs->dyn && (*mask & 1u)) {
    diag_error(E->d, loc,
               "'%s': a correction over the dynamic axis 0 (%s) needs the run-time "
               "count; reduce other axes, or pass correction = 0",
               c->name, E->dyn_name);
    return IR_NONE;
  }
  NodeId d = build_binary(&b, OP_SUB, *x, build_reduce(&b, OP_MEAN, *x, *mask, true));
  NodeId v = build_reduce(&b, OP_MEAN, build_binary(&b, OP_MUL, d, d), *mask, true);
  if (corr)
    v = build_binary(&b, OP_MUL, v,
                     build_scalar_like(&b, *x, (double)count / (double)(count - corr)));
  return b.failed ? IR_NONE : v;
}

static Value bi_var(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  bool keep;
  uint32_t mask;
  NodeId x, v = variance(E, s, c, a, &keep, &mask, &x);
  if (v == IR_NONE) return (Value){0};
  Shape xs = nd(E, x)->shape;
  if (strcmp(c->name, "std") == 0) v = build_unary(&b, OP_SQRT, v);
  return elab_tensor_value(drop_kept(&b, v, &xs, mask, keep));
}

/* argmax(x, axis) = min over the axis of (x == max(x) ? i : L), as i32, the candidate written
 * L + hit * (i - L) (hit is 1 or 0: exact, and elementwise); no axis: the index into the
 * flattened x; last = true: the last index on ties, the max of (hit ? i : -1) (ONNX's
 * select_last_index) */
static Value bi_argmax(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  bool keep, last;
  if (!elab_tensor_arg(E, s, a[0], c->name, &x) ||
      !elab_bool_arg(E, s, a[2], "'keepdims'", false, &keep) ||
      !elab_bool_arg(E, s, a[3], "'last'", false, &last))
    return (Value){0};
  Shape xs = nd(E, x)->shape, flat = shape_make(1, (int64_t[]){shape_numel(&xs)});
  flat.dyn = xs.dyn ? xs.dyn * (flat.dim[0] / xs.dim[0]) : 0;
  int axis = 0;
  if (a[1] && !one_axis(E, s, a[1], xs.rank, c->name, &axis)) return (Value){0};
  if (!a[1]) x = build_reshape(&b, x, &flat); /* over every element */
  const Shape *ws = a[1] ? &xs : &flat;
  if (ws->dyn && axis == 0) {
    diag_error(E->d, c->loc,
               "'%s': axis 0 is the dynamic dimension %s; the index along it is "
               "not supported",
               c->name, E->dyn_name);
    return (Value){0};
  }
  int64_t len = ws->dim[axis];
  double base = last ? -1.0 : (double)len; /* the candidate where x is not the extremum */
  double *step = arena_alloc(&E->scratch, (size_t)len * sizeof *step);
  for (int64_t i = 0; i < len; i++)
    step[i] = (double)i - base;
  Shape is = {0};
  is.rank = ws->rank;
  for (int i = 0; i < ws->rank; i++)
    is.dim[i] = i == axis ? len : 1;
  if (nd(E, x)->dtype == DT_U8) x = build_cast(&b, x, DT_I32); /* argmin negates x */
  DType t = nd(E, x)->dtype;
  bool is_max = strcmp(c->name, "argmax") == 0;
  uint32_t mask = 1u << axis;
  NodeId m = is_max ? build_reduce(&b, OP_MAX, x, mask, true)
                    : build_unary(&b, OP_NEG,
                                  build_reduce(&b, OP_MAX, build_unary(&b, OP_NEG, x), mask, true));
  NodeId hit = build_binary(&b, OP_EQ, x, m);
  NodeId cand = build_binary(&b, OP_ADD, build_scalar(&b, t, base), /* i where hit, else base */
                             build_binary(&b, OP_MUL, hit, build_const_data(&b, t, &is, step)));
  NodeId pick =
      last ? build_reduce(&b, OP_MAX, cand, mask, true)
           : build_unary(&b, OP_NEG,
                         build_reduce(&b, OP_MAX, build_unary(&b, OP_NEG, cand), mask, true));
  NodeId idx = build_cast(&b, pick, DT_I32);
  if (!a[1]) { /* keepdims without an axis: every dim 1, as in torch.argmax */
    Shape ones = {0};
    ones.rank = keep ? xs.rank : 0;
    for (int i = 0; i < ones.rank; i++)
      ones.dim[i] = 1;
    return elab_tensor_value(build_reshape(&b, idx, &ones));
  }
  return elab_tensor_value(drop_kept(&b, idx, &xs, mask, keep));
}

/* cumsum along axis, x viewed as [A, L, B]: [A, L] @ T when B = 1, else T' @ [A, L, B] (T'
 * broadcast over A; T'[i, j] = T[j, i]) */
static Value bi_cumsum(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  int axis;
  bool exclusive, reverse;
  if (!float_tensor_of(E, s, a[0], "cumsum", &x) ||
      !one_axis(E, s, a[1], nd(E, x)->shape.rank, "cumsum", &axis) ||
      !elab_bool_arg(E, s, a[2], "'exclusive'", false, &exclusive) ||
      !elab_bool_arg(E, s, a[3], "'reverse'", false, &reverse))
    return (Value){0};
  Shape xs = nd(E, x)->shape;
  if (xs.dyn && axis == 0) {
    diag_error(E->d, a[1]->loc,
               "cumsum: axis 0 is the dynamic dimension %s; a running sum "
               "along it is not supported",
               E->dyn_name);
    return (Value){0};
  }
  int64_t len = xs.dim[axis], outer = 1, inner = 1;
  if (len > CUMSUM_MAX_LEN) {
    diag_error(E->d, a[1]->loc,
               "cumsum: axis %d has %lld elements; the running sum is a product with an "
               "[L, L] triangle, for axes of at most %d",
               axis, (long long)len, CUMSUM_MAX_LEN);
    return (Value){0};
  }
  for (int i = 0; i < xs.rank; i++)
    *(i < axis ? &outer : &inner) *= i == axis ? 1 : xs.dim[i];
  double *tri = arena_alloc(&E->scratch, (size_t)(len * len) * sizeof *tri);
  for (int64_t j = 0; j < len; j++) { /* out[i] = sum over j of x[j] * T[j, i] */
    for (int64_t i = 0; i < len; i++) {
      bool in = reverse ? (exclusive ? j > i : j >= i) : (exclusive ? j < i : j <= i);
      tri[inner == 1 ? j * len + i : i * len + j] = in;
    }
  }
  Shape ts = shape_make(2, (int64_t[]){len, len});
  NodeId t = build_const_data(&b, nd(E, x)->dtype, &ts, tri);
  Shape view = {.rank = inner == 1 ? 2 : 3, .dim = {outer, len, inner}};
  view.dyn = xs.dyn ? xs.dyn * (outer / xs.dim[0]) : 0; /* axis > 0 here: outer holds dim 0 */
  NodeId v = build_reshape(&b, x, &view);
  NodeId y =
      inner == 1 ? build_matmul(&b, v, t, false, false) : build_matmul(&b, t, v, false, false);
  return elab_tensor_value(build_reshape(&b, y, &xs));
}

/* ---- shapes and literals -------------------------------------------------------------------- */

/* broadcast_to(x, [d0, ...]): NumPy broadcasting to the shape; -1 keeps x's extent there
 * (aligned from the right, like torch.Tensor.expand); the first entry may be k * N */
static Value bi_broadcast_to(Elab *E, Scope *s, const Expr *c, const Expr **a) {
  Builder b = elab_builder(E, c->loc);
  NodeId x;
  if (!elab_tensor_arg(E, s, a[0], c->name, &x)) return (Value){0};
  Value l = elab_expr(E, s, a[1]);
  if (l.kind == VAL_NONE) return l;
  const Shape xs = nd(E, x)->shape;
  if (l.kind != VAL_LIST || l.n_items > IR_MAX_RANK || l.n_items < xs.rank) {
    diag_error(E->d, a[1]->loc,
               "%s: expected a shape [d0, d1, ...] of at least %d sizes (the "
               "rank of %s), got %s",
               c->name, xs.rank, elab_value_str(E, elab_tensor_value(x)), elab_value_str(E, l));
    return (Value){0};
  }
  Shape to = {0};
  to.rank = l.n_items;
  to.dyn = l.dyn;
  int lead = l.n_items - xs.rank;
  for (int i = 0; i < l.n_items; i++) {
    to.dim[i] = l.items[i];
    if (l.items[i] == -1 && i >= lead) {
      to.dim[i] = xs.dim[i - lead];
      if (i == 0) to.dyn = xs.dyn;
    } else if (l.items[i] < 1) {
      diag_error(E->d, a[1]->loc,
                 "%s: size %lld at axis %d; expected a positive size, or -1 "
                 "to keep the tensor's",
                 c->name, (long long)l.items[i], i);
      return (Value){0};
    }
  }
  return elab_tensor_value(build_broadcast(&b, x, &to));
}

/* the dims of a literal [[...], ...]: each level's length, rows of one level equally long */
static bool literal_dims(Elab *E, const Expr *e, int depth, Shape *s) {
  if (e->kind != EX_LIST) {
    if (depth == s->rank) return true;
    diag_error(E->d, e->loc,
               "tensor literal: expected a list of %lld entries here (rows must "
               "have equal lengths), got a number",
               (long long)s->dim[depth]);
    return false;
  }
  if (depth == s->rank) {
    if (depth == IR_MAX_RANK || e->n_args == 0 || (depth > 0 && s->dim[depth - 1] == 0)) {
      diag_error(E->d, e->loc, "tensor literal: expected a non-empty list of rank <= %d",
                 IR_MAX_RANK);
      return false;
    }
    s->dim[s->rank++] = e->n_args;
  } else if (s->dim[depth] != e->n_args) {
    diag_error(E->d, e->loc,
               "tensor literal: this row has %d entries, expected %lld like the "
               "first",
               e->n_args, (long long)s->dim[depth]);
    return false;
  }
  for (int i = 0; i < e->n_args; i++)
    if (!literal_dims(E, e->args[i], depth + 1, s)) return false;
  return true;
}

/* the numbers of a literal in C order */
static bool literal_values(Elab *E, Scope *s, const Expr *e, double *out, int64_t *n) {
  if (e->kind == EX_LIST) {
    for (int i = 0; i < e->n_args; i++)
      if (!literal_values(E, s, e->args[i], out, n)) return false;
    return true;
  }
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    out[(*n)++] = v.kind == VAL_FLOAT ? v.f : (double)v.i;
    return true;
  }
  if (v.kind != VAL_NONE)
    diag_error(E->d, e->loc, "tensor literal: expected a number, got %s", elab_value_str(E, v));
  return false;
}

static bool is_float_literal(const Expr *e) {
  return e->kind == EX_FLOAT || (e->kind == EX_UNARY && e->lhs && e->lhs->kind == EX_FLOAT);
}

bool elab_math_is_literal(const Expr *e) {
  if (e->kind != EX_LIST) return false;
  for (int i = 0; i < e->n_args; i++)
    if (e->args[i]->kind == EX_LIST || is_float_literal(e->args[i])) return true;
  return false;
}

Value elab_math_literal(Elab *E, Scope *s, const Expr *e) {
  Builder b = elab_builder(E, e->loc);
  Shape shape = {0};
  if (!literal_dims(E, e, 0, &shape)) return (Value){0};
  int64_t n = 0, numel = shape_numel(&shape);
  if (numel > 1 << 20) {
    diag_error(E->d, e->loc, "tensor literal: %lld numbers; literals hold at most 2^20",
               (long long)numel);
    return (Value){0};
  }
  double *vals = arena_alloc(&E->scratch, (size_t)numel * sizeof *vals);
  if (!literal_values(E, s, e, vals, &n)) return (Value){0};
  return elab_tensor_value(build_const_data(&b, elab_float_dtype(E), &shape, vals));
}

/* ---- the table ------------------------------------------------------------------------------- */

static const MathBuiltin table[] = {
    {"silu", {"x"}, 1, bi_silu},
    {"logsumexp", {"x", "axis", "keepdims"}, 1, bi_logsumexp},
    {"min", {"x", "axis", "keepdims"}, 1, bi_min},
    {"var", {"x", "axis", "keepdims", "correction"}, 1, bi_var},
    {"std", {"x", "axis", "keepdims", "correction"}, 1, bi_var},
    {"argmax", {"x", "axis", "keepdims", "last"}, 1, bi_argmax},
    {"argmin", {"x", "axis", "keepdims", "last"}, 1, bi_argmax},
    {"cumsum", {"x", "axis", "exclusive", "reverse"}, 2, bi_cumsum},
    {"broadcast_to", {"x", "shape"}, 2, bi_broadcast_to},
    {"expand", {"x", "shape"}, 2, bi_broadcast_to},
};
enum { N_MATH = sizeof table / sizeof table[0] };

static const MathBuiltin *find(const char *name) {
  for (int i = 0; i < N_MATH; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

bool elab_math_is_builtin(const char *name) {
  return find(name) != NULL;
}

Value elab_math_call(Elab *E, Scope *s, const Expr *call) {
  const MathBuiltin *m = find(call->name);
  const Expr *a[4];
  if (!elab_builtin_args(E, call, m->params, 4, m->n_required, a)) return (Value){0};
  return m->fn(E, s, call, a);
}
