/* frontend/elab_expr.c — expressions to graph nodes: operators, names, builtins.
 *
 * Compile-time numbers stay numbers (`4*hidden` is an int) until they meet a tensor; then
 * they become a rank-0 CONST of the tensor's dtype. Nodes carry the location of their
 * operator or callee, so shape errors reported by graph_add point at the right place.
 * Invariant: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <math.h>
#include <string.h>

typedef enum BuiltinKind {
  BI_UNARY,     /* x → op(x) */
  BI_BINARY,    /* x, y → op(x, y) */
  BI_SOFTMAX,   /* x, axis = -1 */
  BI_REDUCE,    /* x, axis = all, keepdims = false */
  BI_RESHAPE,   /* x, shape */
  BI_FLATTEN,   /* x */
  BI_TRANSPOSE, /* x, perm = swap last two */
  BI_CAST,      /* x, dtype */
  BI_ONE_HOT,   /* label, depth */
} BuiltinKind;

typedef struct Builtin {
  const char *name;
  BuiltinKind kind;
  OpKind op;
  const char *params[3];
  int n_required;
} Builtin;

static const Builtin builtins[] = {
    {"exp", BI_UNARY, OP_EXP, {"x"}, 1},
    {"log", BI_UNARY, OP_LOG, {"x"}, 1},
    {"sqrt", BI_UNARY, OP_SQRT, {"x"}, 1},
    {"abs", BI_UNARY, OP_ABS, {"x"}, 1},
    {"sign", BI_UNARY, OP_SIGN, {"x"}, 1},
    {"relu", BI_UNARY, OP_RELU, {"x"}, 1},
    {"sigmoid", BI_UNARY, OP_SIGMOID, {"x"}, 1},
    {"tanh", BI_UNARY, OP_TANH, {"x"}, 1},
    {"sin", BI_UNARY, OP_SIN, {"x"}, 1},
    {"cos", BI_UNARY, OP_COS, {"x"}, 1},
    {"stop_gradient", BI_UNARY, OP_STOP_GRAD, {"x"}, 1},
    {"maximum", BI_BINARY, OP_MAXIMUM, {"x", "y"}, 2},
    {"minimum", BI_BINARY, OP_MINIMUM, {"x", "y"}, 2},
    {"pow", BI_BINARY, OP_POW, {"x", "y"}, 2},
    {"softmax", BI_SOFTMAX, OP_SOFTMAX, {"x", "axis"}, 1},
    {"log_softmax", BI_SOFTMAX, OP_LOG_SOFTMAX, {"x", "axis"}, 1},
    {"sum", BI_REDUCE, OP_SUM, {"x", "axis", "keepdims"}, 1},
    {"mean", BI_REDUCE, OP_MEAN, {"x", "axis", "keepdims"}, 1},
    {"max", BI_REDUCE, OP_MAX, {"x", "axis", "keepdims"}, 1},
    {"reshape", BI_RESHAPE, OP_RESHAPE, {"x", "shape"}, 2},
    {"flatten", BI_FLATTEN, OP_RESHAPE, {"x"}, 1},
    {"transpose", BI_TRANSPOSE, OP_TRANSPOSE, {"x", "perm"}, 1},
    {"cast", BI_CAST, OP_CAST, {"x", "dtype"}, 2},
    {"one_hot", BI_ONE_HOT, OP_ONE_HOT, {"label", "depth"}, 2},
};
enum { N_BUILTINS = sizeof builtins / sizeof builtins[0] };

static const char *builtin_names[N_BUILTINS + 1];

const char *const *elab_builtin_names(void) {
  for (int i = 0; i < N_BUILTINS; i++)
    builtin_names[i] = builtins[i].name;
  builtin_names[N_BUILTINS] = NULL;
  return builtin_names;
}

static const Builtin *find_builtin(const char *name) {
  for (int i = 0; i < N_BUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

bool elab_is_builtin(const char *name) {
  return find_builtin(name) != NULL || elab_struct_is_builtin(name) || elab_conv_is_builtin(name) ||
         elab_quant_is_builtin(name) || elab_vocab_is_builtin(name) || elab_math_is_builtin(name);
}

Value elab_tensor_value(NodeId id) {
  Value v = {0};
  if (id == IR_NONE) return v;
  v.kind = VAL_TENSOR;
  v.node = id;
  return v;
}

NodeId elab_scalar_node(Elab *E, Value v, DType dtype, SrcLoc loc) {
  double x = v.kind == VAL_FLOAT ? v.f : (double)v.i;
  return graph_add_scalar(E->g, dtype, x, elab_loc(E, loc));
}

static const Node *node_of(const Elab *E, Value v) {
  return graph_node(E->g, v.node);
}

/* ---- argument matching -------------------------------------------------------------------- */

static int param_index(const char *const *names, int n, const char *kw) {
  for (int i = 0; i < n; i++)
    if (strcmp(names[i], kw) == 0) return i;
  return -1;
}

bool elab_match_args(Elab *E, const Expr *call, const char *const *names, int n, const Expr **out) {
  bool ok = true;
  int pos = 0;
  for (int i = 0; i < n; i++)
    out[i] = NULL;
  for (int a = 0; a < call->n_args; a++) {
    const char *kw = call->arg_names[a];
    int k = pos;
    if (kw) {
      k = param_index(names, n, kw);
      if (k < 0) {
        const char *hint = elab_suggest(kw, names, n);
        diag_error(E->d, call->arg_locs[a], "'%s' has no argument '%s'%s%s%s", call->name, kw,
                   hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
        ok = false;
        continue;
      }
    } else if (pos >= n) {
      diag_error(E->d, call->arg_locs[a],
                 "too many arguments to '%s': expected at most %d, "
                 "got %d",
                 call->name, n, call->n_args);
      return false;
    } else {
      pos++;
    }
    if (out[k]) {
      diag_error(E->d, call->arg_locs[a], "argument '%s' of '%s' given twice", names[k],
                 call->name);
      ok = false;
    }
    out[k] = call->args[a];
  }
  return ok;
}

bool elab_builtin_args(Elab *E, const Expr *call, const char *const *params, int n_max,
                       int n_required, const Expr **out) {
  int n = 0;
  while (n < n_max && params[n])
    n++;
  if (!elab_match_args(E, call, params, n, out)) return false;
  for (int i = 0; i < n_required; i++) {
    if (!out[i]) {
      diag_error(E->d, call->loc, "missing argument '%s' in call to '%s'", params[i], call->name);
      return false;
    }
  }
  return true;
}

bool elab_tensor_arg(Elab *E, Scope *s, const Expr *arg, const char *fn, NodeId *out) {
  Value v = elab_expr(E, s, arg);
  *out = IR_NONE;
  if (v.kind == VAL_NONE) return false;
  if (v.kind == VAL_TENSOR) return *out = v.node, true;
  diag_error(E->d, arg->loc, "'%s' expects a tensor, got %s", fn, elab_value_str(E, v));
  return false;
}

/* ---- operators ---------------------------------------------------------------------------- */

static OpKind binary_op(TokenKind k) {
  switch (k) {
  case TK_PLUS:
    return OP_ADD;
  case TK_MINUS:
    return OP_SUB;
  case TK_STAR:
    return OP_MUL;
  case TK_SLASH:
    return OP_DIV;
  case TK_AT:
    return OP_MATMUL;
  case TK_LT:
    return OP_LT;
  case TK_LE:
    return OP_LE;
  case TK_GT:
    return OP_GT;
  case TK_GE:
    return OP_GE;
  case TK_EQ:
    return OP_EQ;
  default:
    return OP_NE;
  }
}

static bool is_number(Value v) {
  return v.kind == VAL_INT || v.kind == VAL_FLOAT || v.kind == VAL_BOOL;
}
static double num(Value v) {
  return v.kind == VAL_FLOAT ? v.f : (double)v.i;
}

/* Both operands compile-time numbers: fold. Ints stay ints (exact division only). */
static Value fold_binary(Elab *E, TokenKind op, Value a, Value b, SrcLoc loc) {
  Value r = {0};
  bool ints = a.kind != VAL_FLOAT && b.kind != VAL_FLOAT;
  double x = num(a), y = num(b);
  bool overflow = false;
  r.kind = ints ? VAL_INT : VAL_FLOAT;
  switch (op) {
  case TK_PLUS:
    overflow = __builtin_add_overflow(a.i, b.i, &r.i), r.f = x + y;
    break;
  case TK_MINUS:
    overflow = __builtin_sub_overflow(a.i, b.i, &r.i), r.f = x - y;
    break;
  case TK_STAR:
    overflow = __builtin_mul_overflow(a.i, b.i, &r.i), r.f = x * y;
    break;
  case TK_SLASH:
    if (ints && b.i == 0) {
      diag_error(E->d, loc, "division by zero in a compile-time expression");
      return (Value){0};
    }
    if (ints && b.i != -1 && a.i % b.i == 0)
      r.i = a.i / b.i;
    else
      r.kind = VAL_FLOAT, r.f = x / y;
    break;
  case TK_AT:
    diag_error(E->d, loc, "'@' needs tensors on both sides, got %s and %s", elab_value_str(E, a),
               elab_value_str(E, b));
    return (Value){0};
  default:
    r.kind = VAL_BOOL;
    r.i = op == TK_LT   ? x < y
          : op == TK_LE ? x <= y
          : op == TK_GT ? x > y
          : op == TK_GE ? x >= y
          : op == TK_EQ ? x == y
                        : x != y;
  }
  if (ints && overflow) {
    diag_error(E->d, loc, "integer overflow in a compile-time expression");
    return (Value){0};
  }
  return r;
}

/* A number meeting a tensor becomes a rank-0 CONST of the tensor's dtype. */
static NodeId as_node(Elab *E, Value v, DType dtype, SrcLoc loc, bool *ok) {
  if (v.kind == VAL_TENSOR) return v.node;
  if (!is_number(v)) {
    diag_error(E->d, loc, "expected a tensor or a number, got %s", elab_value_str(E, v));
    *ok = false;
    return IR_NONE;
  }
  if (v.kind == VAL_FLOAT && !dtype_is_float(dtype) && v.f != floor(v.f)) {
    diag_error(E->d, loc, "cannot mix the number %g with an %s tensor; cast() it first", v.f,
               dtype_name(dtype));
    *ok = false;
    return IR_NONE;
  }
  return elab_scalar_node(E, v, dtype, loc);
}

/* Tensor (op) tensor-or-number; numbers take the tensor's dtype. */
static Value elab_binary_op(Elab *E, OpKind op, Value a, Value b, SrcLoc loc) {
  if (a.kind == VAL_NONE || b.kind == VAL_NONE) return (Value){0};
  for (int i = 0; i < 2; i++) { /* both checked before a number becomes a node: a const's */
    Value v = i ? b : a;        /* `2 - i64` has no graph to put it in */
    if (v.kind != VAL_TENSOR && !is_number(v)) {
      diag_error(E->d, loc, "expected a tensor or a number, got %s", elab_value_str(E, v));
      return (Value){0};
    }
  }
  DType t = a.kind == VAL_TENSOR   ? node_of(E, a)->dtype
            : b.kind == VAL_TENSOR ? node_of(E, b)->dtype
                                   : elab_float_dtype(E);
  bool ok = true;
  NodeId x = as_node(E, a, t, loc, &ok);
  NodeId y = ok ? as_node(E, b, t, loc, &ok) : IR_NONE;
  if (!ok) return (Value){0};
  return elab_tensor_value(graph_add_binary(E->g, op, x, y, elab_loc(E, loc), E->d));
}

/* The dynamic dimension in an operator: only k * N (or N * k) with an int k >= 1 stays
 * symbolic; anything else (N + 1, N / 2, N < 3, N * N, x * N) is an error at the operator. */
static Value dyn_binary(Elab *E, TokenKind op, Value a, Value b, SrcLoc loc) {
  static const char *const names[TK_COUNT] = {
      [TK_PLUS] = "+", [TK_MINUS] = "-", [TK_STAR] = "*", [TK_SLASH] = "/",
      [TK_AT] = "@",   [TK_LT] = "<",    [TK_LE] = "<=",  [TK_GT] = ">",
      [TK_GE] = ">=",  [TK_EQ] = "==",   [TK_NE] = "!="};
  Value d = a.kind == VAL_DYN ? a : b, k = a.kind == VAL_DYN ? b : a;
  Value r = {.kind = VAL_DYN};
  if (op == TK_STAR && k.kind == VAL_INT && k.i >= 1 &&
      !__builtin_mul_overflow(d.dyn, k.i, &r.dyn) && !__builtin_mul_overflow(d.i, k.i, &r.i))
    return r;
  const char *what = arena_printf(&E->scratch, "an operand of '%s'", names[op] ? names[op] : "?");
  if (op == TK_STAR && k.kind == VAL_INT)
    what = arena_printf(&E->scratch, "k * N with k = %lld (k must be an int >= 1)", (long long)k.i);
  elab_dyn_misuse(E, loc, what);
  return (Value){0};
}

static Value elab_binary(Elab *E, Scope *s, const Expr *e) {
  Value a = elab_expr(E, s, e->lhs);
  Value b = elab_expr(E, s, e->rhs);
  if (a.kind == VAL_NONE || b.kind == VAL_NONE) return (Value){0};
  if (a.kind == VAL_DYN || b.kind == VAL_DYN) return dyn_binary(E, e->op, a, b, e->loc);
  if (is_number(a) && is_number(b)) return fold_binary(E, e->op, a, b, e->loc);
  return elab_binary_op(E, binary_op(e->op), a, b, e->loc);
}

static Value elab_unary(Elab *E, Scope *s, const Expr *e) {
  Value a = elab_expr(E, s, e->lhs);
  switch (a.kind) {
  case VAL_INT:
    if (a.i == INT64_MIN) {
      diag_error(E->d, e->loc, "integer overflow in a compile-time expression");
      return (Value){0};
    }
    a.i = -a.i;
    return a;
  case VAL_FLOAT:
    a.f = -a.f;
    return a;
  case VAL_TENSOR:
    return elab_tensor_value(graph_add_unary(E->g, OP_NEG, a.node, elab_loc(E, e->loc), E->d));
  case VAL_NONE:
    return a;
  case VAL_DYN:
    elab_dyn_misuse(E, e->loc, "the operand of unary '-'");
    return (Value){0};
  default:
    diag_error(E->d, e->loc, "cannot negate %s", elab_value_str(E, a));
    return (Value){0};
  }
}

/* ---- builtins ----------------------------------------------------------------------------- */

static bool tensor_arg(Elab *E, Scope *s, const Expr *arg, const char *fn, Value *out) {
  *out = elab_expr(E, s, arg);
  if (out->kind == VAL_NONE) return false;
  if (out->kind == VAL_TENSOR) return true;
  diag_error(E->d, arg->loc, "'%s' expects a tensor, got %s", fn, elab_value_str(E, *out));
  return false;
}

/* Normalizes a possibly negative axis against rank. */
static bool axis_arg(Elab *E, int64_t axis, int rank, SrcLoc loc, const char *fn, int *out) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    diag_error(E->d, loc, "'%s': axis %lld is out of range for a tensor of rank %d", fn,
               (long long)axis, rank);
    return false;
  }
  *out = (int)a;
  return true;
}

/* an int or a list of ints; the dynamic dimension only as a shape's first entry (l.dyn) */
static Value int_list(Elab *E, Scope *s, const Expr *e, const char *what) {
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_INT || v.kind == VAL_DYN) {
    Value l = {.kind = VAL_LIST, .n_items = 1, .dyn = v.kind == VAL_DYN ? v.dyn : 0};
    l.items = arena_alloc(&E->scratch, sizeof(int64_t));
    l.items[0] = v.i;
    return l;
  }
  if (v.kind != VAL_LIST && v.kind != VAL_NONE) {
    diag_error(E->d, e->loc, "%s must be an int or a list of ints, got %s", what,
               elab_value_str(E, v));
    return (Value){0};
  }
  return v;
}

bool elab_reduce_axes(Elab *E, Scope *s, const Expr *arg, int rank, const char *fn,
                      uint32_t *axes) {
  *axes = rank ? (uint32_t)((1u << rank) - 1) : 0;
  if (!arg) return true;
  Value l = int_list(E, s, arg, "'axis'");
  if (l.kind == VAL_NONE || !elab_static_list(E, l, arg, "'axis'")) return false;
  *axes = 0;
  for (int i = 0; i < l.n_items; i++) {
    int ax;
    if (!axis_arg(E, l.items[i], rank, arg->loc, fn, &ax)) return false;
    *axes |= 1u << ax;
  }
  return true;
}

bool elab_bool_arg(Elab *E, Scope *s, const Expr *arg, const char *what, bool def, bool *out) {
  *out = def;
  if (!arg) return true;
  Value k = elab_expr(E, s, arg);
  if (k.kind == VAL_NONE) return false;
  if (k.kind != VAL_BOOL) {
    diag_error(E->d, arg->loc, "%s must be true or false, got %s", what, elab_value_str(E, k));
    return false;
  }
  *out = k.i != 0;
  return true;
}

static Value bi_reduce(Elab *E, Scope *s, const Expr *call, const Builtin *b, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], b->name, &x)) return (Value){0};
  const Node *n = node_of(E, x);
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  bool keep;
  if (!elab_reduce_axes(E, s, a[1], n->shape.rank, b->name, &attr.reduce.axes) ||
      !elab_bool_arg(E, s, a[2], "'keepdims'", false, &keep))
    return (Value){0};
  attr.reduce.keepdims = keep;
  return elab_tensor_value(graph_add(E->g, b->op, &x.node, 1, &attr, elab_loc(E, call->loc), E->d));
}

static Value bi_softmax(Elab *E, Scope *s, const Expr *call, const Builtin *b, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], b->name, &x)) return (Value){0};
  int64_t axis = -1;
  if (a[1] && !elab_int(E, elab_expr(E, s, a[1]), a[1]->loc, "'axis'", &axis)) return (Value){0};
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  int ax;
  SrcLoc loc = a[1] ? a[1]->loc : call->loc;
  if (!axis_arg(E, axis, node_of(E, x)->shape.rank, loc, b->name, &ax)) return (Value){0};
  attr.softmax.axis = ax;
  return elab_tensor_value(graph_add(E->g, b->op, &x.node, 1, &attr, elab_loc(E, call->loc), E->d));
}

/* dyn: the target's axis 0 is dyn * n (dims[0] at the bound) */
static Value reshape_to(Elab *E, Value x, const int64_t *dims, int rank, int64_t dyn, SrcLoc loc) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.reshape.shape = shape_make(rank, dims);
  attr.reshape.shape.dyn = rank ? dyn : 0;
  return elab_tensor_value(graph_add(E->g, OP_RESHAPE, &x.node, 1, &attr, elab_loc(E, loc), E->d));
}

static Value bi_reshape(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], "reshape", &x)) return (Value){0};
  Value l = int_list(E, s, a[1], "the shape of 'reshape'");
  if (l.kind == VAL_NONE) return l;
  const Node *n = node_of(E, x);
  if (l.n_items > IR_MAX_RANK) {
    diag_error(E->d, a[1]->loc, "reshape: rank %d exceeds the maximum %d", l.n_items, IR_MAX_RANK);
    return (Value){0};
  }
  int64_t known = 1, dims[IR_MAX_RANK];
  int infer = -1;
  for (int i = 0; i < l.n_items; i++) {
    dims[i] = l.items[i];
    if (dims[i] == -1 && infer < 0)
      infer = i;
    else if (dims[i] <= 0 || known > INT64_MAX / dims[i]) {
      diag_error(E->d, a[1]->loc,
                 "reshape: dimension %d is %lld; expected a positive size "
                 "(or one -1)",
                 i, (long long)dims[i]);
      return (Value){0};
    } else
      known *= dims[i];
  }
  int64_t numel = shape_numel(&n->shape);
  if (infer >= 0) {
    if (numel % known != 0) {
      char buf[200];
      diag_error(E->d, a[1]->loc,
                 "reshape: cannot infer the -1 dimension: %lld elements of "
                 "%s are not a multiple of %lld",
                 (long long)numel, shape_str(&n->shape, buf, sizeof buf), (long long)known);
      return (Value){0};
    }
    dims[infer] = numel / known;
  }
  /* [-1, ...] of a dynamic x: axis 0 stays dynamic, k' = its size per unit of n */
  int64_t dyn = l.dyn;
  if (infer == 0 && n->shape.dyn && E->dyn_max && dims[0] % E->dyn_max == 0)
    dyn = dims[0] / E->dyn_max;
  return reshape_to(E, x, dims, l.n_items, dyn, call->loc);
}

static Value bi_flatten(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], "flatten", &x)) return (Value){0};
  const Node *n = node_of(E, x);
  if (n->shape.rank < 1) {
    diag_error(E->d, call->loc, "flatten: expected a tensor of rank >= 1, got a scalar");
    return (Value){0};
  }
  int64_t dims[2] = {n->shape.dim[0], shape_numel(&n->shape) / n->shape.dim[0]};
  return reshape_to(E, x, dims, 2, n->shape.dyn, call->loc);
}

static Value bi_transpose(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], "transpose", &x)) return (Value){0};
  int rank = node_of(E, x)->shape.rank;
  if (rank > IR_MAX_RANK) rank = IR_MAX_RANK; /* never: shapes are checked; tells gcc the bound */
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  for (int i = 0; i < rank; i++)
    attr.transpose.perm[i] = (int8_t)i;
  if (!a[1]) {
    if (rank < 2) {
      diag_error(E->d, call->loc, "transpose: expected a tensor of rank >= 2, got rank %d", rank);
      return (Value){0};
    }
    attr.transpose.perm[rank - 2] = (int8_t)(rank - 1);
    attr.transpose.perm[rank - 1] = (int8_t)(rank - 2);
  } else {
    Value l = int_list(E, s, a[1], "'perm'");
    if (l.kind == VAL_NONE || !elab_static_list(E, l, a[1], "'perm'")) return (Value){0};
    uint32_t seen = 0;
    bool ok = l.n_items == rank;
    for (int i = 0; ok && i < rank; i++) {
      int64_t p = l.items[i];
      ok = p >= 0 && p < rank && !(seen & (1u << p));
      if (ok) seen |= 1u << p, attr.transpose.perm[i] = (int8_t)p;
    }
    if (!ok) {
      diag_error(E->d, a[1]->loc, "transpose: 'perm' must be a permutation of 0..%d", rank - 1);
      return (Value){0};
    }
  }
  return elab_tensor_value(
      graph_add(E->g, OP_TRANSPOSE, &x.node, 1, &attr, elab_loc(E, call->loc), E->d));
}

static Value bi_cast(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], "cast", &x)) return (Value){0};
  Value t = elab_expr(E, s, a[1]);
  if (t.kind == VAL_NONE) return t;
  if (t.kind != VAL_DTYPE) {
    diag_error(E->d, a[1]->loc, "cast: expected a dtype such as f32 or f64, got %s",
               elab_value_str(E, t));
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.cast.dtype = (DType)t.i;
  return elab_tensor_value(
      graph_add(E->g, OP_CAST, &x.node, 1, &attr, elab_loc(E, call->loc), E->d));
}

static Value bi_one_hot(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  Value x;
  if (!tensor_arg(E, s, a[0], "one_hot", &x)) return (Value){0};
  int64_t depth;
  if (!elab_int(E, elab_expr(E, s, a[1]), a[1]->loc, "'depth' of one_hot", &depth))
    return (Value){0};
  if (depth < 1) {
    diag_error(E->d, a[1]->loc, "one_hot: 'depth' must be positive, got %lld", (long long)depth);
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.one_hot.depth = depth;
  attr.one_hot.dtype = elab_float_dtype(E);
  return elab_tensor_value(
      graph_add(E->g, OP_ONE_HOT, &x.node, 1, &attr, elab_loc(E, call->loc), E->d));
}

static Value elab_builtin(Elab *E, Scope *s, const Expr *call, const Builtin *b) {
  const Expr *a[3];
  if (!elab_builtin_args(E, call, b->params, 3, b->n_required, a)) return (Value){0};
  Value x, y;
  switch (b->kind) {
  case BI_UNARY:
    x = elab_expr(E, s, a[0]);
    if (is_number(x)) return elab_struct_fold_unary(E, b->op, x, a[0]->loc); /* sqrt(D / h) */
    if (x.kind != VAL_TENSOR) {
      if (x.kind != VAL_NONE)
        diag_error(E->d, a[0]->loc, "'%s' expects a tensor, got %s", b->name, elab_value_str(E, x));
      return (Value){0};
    }
    return elab_tensor_value(graph_add_unary(E->g, b->op, x.node, elab_loc(E, call->loc), E->d));
  case BI_BINARY:
    x = elab_expr(E, s, a[0]);
    y = elab_expr(E, s, a[1]);
    if (x.kind == VAL_NONE || y.kind == VAL_NONE) return (Value){0};
    if (x.kind != VAL_TENSOR && y.kind != VAL_TENSOR) {
      diag_error(E->d, call->loc, "'%s' expects at least one tensor argument", b->name);
      return (Value){0};
    }
    return elab_binary_op(E, b->op, x, y, call->loc);
  case BI_SOFTMAX:
    return bi_softmax(E, s, call, b, a);
  case BI_REDUCE:
    return bi_reduce(E, s, call, b, a);
  case BI_RESHAPE:
    return bi_reshape(E, s, call, a);
  case BI_FLATTEN:
    return bi_flatten(E, s, call, a);
  case BI_TRANSPOSE:
    return bi_transpose(E, s, call, a);
  case BI_CAST:
    return bi_cast(E, s, call, a);
  default:
    return bi_one_hot(E, s, call, a);
  }
}

/* ---- names, calls, lists ------------------------------------------------------------------ */

static const char *const dtype_words[] = {"f32", "f64", "i32", "i64", "u8", "i8"};

static void unknown_name(Elab *E, Scope *s, const Expr *e) {
  int n = 0, cap = 16;
  const char **cands = arena_alloc(&E->scratch, (size_t)cap * sizeof *cands);
  for (int pass = 0; pass < 2; pass++) {
    for (Binding *b = pass ? E->consts : s->head; b; b = b->next) {
      if (pass && elab_const(E, s, b->name) != b) continue; /* not visible here */
      if (n == cap) {
        const char **c = arena_alloc(&E->scratch, (size_t)cap * 2 * sizeof *c);
        memcpy(c, cands, (size_t)n * sizeof *c);
        cands = c, cap *= 2;
      }
      cands[n++] = b->name;
    }
  }
  const char *hint = elab_suggest(e->name, cands, n);
  if (hint)
    diag_error(E->d, e->loc, "unknown name '%s'; did you mean '%s'?", e->name, hint);
  else
    diag_error(E->d, e->loc, "unknown name '%s'", e->name);
}

static Value elab_name(Elab *E, Scope *s, const Expr *e) {
  if (strchr(e->name, '.')) return elab_tensor_value(elab_param_path(E, s, e->name, e->loc));
  Binding *b = elab_lookup(s, e->name);
  if (!b) b = elab_const(E, s, e->name);
  if (b) return b->value;
  DType t;
  for (size_t i = 0; i < sizeof dtype_words / sizeof *dtype_words; i++)
    if (strcmp(e->name, dtype_words[i]) == 0 && elab_dtype(E, e->name, e->loc, &t))
      return (Value){.kind = VAL_DTYPE, .i = t};
  unknown_name(E, s, e);
  return (Value){0};
}

static void unknown_function(Elab *E, const Expr *e) {
  int n = 0;
  const char **cands =
      arena_alloc(&E->scratch, (size_t)(E->prog->n_decls + N_BUILTINS) * sizeof *cands);
  for (int i = 0; i < E->prog->n_decls; i++)
    if (E->prog->decls[i]->kind == DECL_FN) cands[n++] = E->prog->decls[i]->name;
  for (int i = 0; i < N_BUILTINS; i++)
    cands[n++] = builtins[i].name;
  const char *hint = elab_suggest(e->name, cands, n);
  if (hint)
    diag_error(E->d, e->loc, "unknown function '%s'; did you mean '%s'?", e->name, hint);
  else
    diag_error(E->d, e->loc, "unknown function '%s'", e->name);
}

static Value elab_call(Elab *E, Scope *s, const Expr *e) {
  int n_cached = 0;
  const Decl *fn = elab_struct_resolve_fn(E, s, e, &n_cached); /* overloads by dtype */
  if (fn) {
    Value v = elab_fn_call(E, s, e, fn);
    elab_struct_uncache(E, n_cached);
    return v;
  }
  const Builtin *b = find_builtin(e->name);
  if (!b && elab_conv_is_builtin(e->name) && !e->as_name) return elab_conv_call(E, s, e);
  if (!b && elab_struct_is_builtin(e->name) && !e->as_name) return elab_struct_call(E, s, e);
  if (!b && elab_quant_is_builtin(e->name) && !e->as_name) return elab_quant_call(E, s, e);
  if (!b && elab_vocab_is_builtin(e->name) && !e->as_name) return elab_vocab_call(E, s, e);
  if (!b && elab_math_is_builtin(e->name) && !e->as_name) return elab_math_call(E, s, e);
  if (!b && strcmp(e->name, "dynamic") == 0) {
    diag_error(E->d, e->loc,
               "dynamic(max = M) can only be the whole value of a top-level const, "
               "as in 'const N = dynamic(max = 64)'");
    return (Value){0};
  }
  if (!b && !elab_struct_is_builtin(e->name) && !elab_math_is_builtin(e->name)) {
    unknown_function(E, e);
    return (Value){0};
  }
  if (e->as_name) {
    diag_error(E->d, e->as_loc, "'as %s' needs a call to a fn with params; '%s' is a builtin",
               e->as_name, e->name);
    return (Value){0};
  }
  return elab_builtin(E, s, e, b);
}

/* [a, b, ...] of ints; the first may be k * N (a shape's first axis: l.dyn = k) */
static Value elab_list(Elab *E, Scope *s, const Expr *e) {
  if (elab_math_is_literal(e)) return elab_math_literal(E, s, e); /* [1.0, 2.5], [[1, 2], ...] */
  Value l = {.kind = VAL_LIST, .n_items = e->n_args};
  l.items = arena_alloc(&E->scratch, (size_t)(e->n_args + 1) * sizeof(int64_t));
  for (int i = 0; i < e->n_args; i++) {
    Value v = elab_expr(E, s, e->args[i]);
    if (v.kind == VAL_DYN && i == 0) {
      l.items[0] = v.i, l.dyn = v.dyn;
      continue;
    }
    const char *what =
        v.kind == VAL_DYN
            ? arena_printf(&E->scratch, "entry %d of a list (axis %d of a shape)", i, i)
            : "a list element";
    if (!elab_int(E, v, e->args[i]->loc, what, &l.items[i])) return (Value){0};
  }
  return l;
}

/* (a, b, ...): of tensors a tuple (a fn's multiple results, destructured by `x, y = ...`),
 * else a list of ints */
static Value elab_tuple(Elab *E, Scope *s, const Expr *e) {
  Value first = elab_expr(E, s, e->args[0]);
  if (first.kind != VAL_TENSOR) return first.kind == VAL_NONE ? first : elab_list(E, s, e);
  Value t = {.kind = VAL_TUPLE, .n_items = e->n_args};
  t.items = arena_alloc(&E->scratch, (size_t)e->n_args * sizeof *t.items);
  t.items[0] = first.node;
  for (int i = 1; i < e->n_args; i++) {
    Value v = elab_expr(E, s, e->args[i]);
    if (v.kind == VAL_NONE) return v;
    if (v.kind != VAL_TENSOR) {
      diag_error(E->d, e->args[i]->loc, "a tuple holds tensors (or ints), got %s",
                 elab_value_str(E, v));
      return (Value){0};
    }
    t.items[i] = v.node;
  }
  return t;
}

/* x[1:5:2, 0], x[ids]: elab_struct.c */
static Value elab_index(Elab *E, Scope *s, const Expr *e) {
  return elab_struct_index(E, s, e);
}

/* A top-level const is elaborated before any model exists (E->m is NULL): its value may be
 * numbers, earlier consts and arithmetic on them, nothing that makes a tensor. */
static bool const_expr_refused(Elab *E, const Expr *e) {
  if (E->m) return false;
  bool dotted = e->kind == EX_NAME && strchr(e->name, '.');
  if (!dotted && (e->kind == EX_INT || e->kind == EX_FLOAT || e->kind == EX_BOOL ||
                  e->kind == EX_NAME || e->kind == EX_UNARY || e->kind == EX_BINARY))
    return false;
  const char *what = dotted                ? "a param path"
                     : e->kind == EX_CALL  ? "a call"
                     : e->kind == EX_LIST  ? "a list"
                     : e->kind == EX_INDEX ? "an index"
                     : e->kind == EX_TUPLE ? "a tuple"
                                           : "a tensor expression";
  diag_error(E->d, e->loc,
             "a const's value is a number: numbers, earlier consts and + - * / on them; "
             "this is %s (compute tensors inside a model or fn)",
             what);
  return true;
}

static Value elab_expr_kind(Elab *E, Scope *s, const Expr *e) {
  Value cached;
  if (E->n_arg_cache && elab_struct_cached(E, e, &cached)) return cached;
  if (const_expr_refused(E, e)) return (Value){0};
  switch (e->kind) {
  case EX_INT:
    return (Value){.kind = VAL_INT, .i = e->ival};
  case EX_FLOAT:
    return (Value){.kind = VAL_FLOAT, .f = e->fval};
  case EX_BOOL:
    return (Value){.kind = VAL_BOOL, .i = e->ival};
  case EX_NAME:
    return elab_name(E, s, e);
  case EX_UNARY:
    return elab_unary(E, s, e);
  case EX_BINARY:
    return elab_binary(E, s, e);
  case EX_CALL:
    return elab_call(E, s, e);
  case EX_INDEX:
    return elab_index(E, s, e);
  case EX_LIST:
    return elab_list(E, s, e);
  case EX_TUPLE:
    return elab_tuple(E, s, e);
  case EX_SCAN:
    return elab_scan(E, s, e);
  case EX_STRING:
    diag_error(E->d, e->loc, "a string is only allowed as einsum's equation or a resize mode");
    return (Value){0};
  default:
    diag_error(E->d, e->loc, "'%s' is not allowed here", e->kind == EX_ELLIPSIS ? "..." : "':'");
    return (Value){0};
  }
}

/* The parser bounds each tree's height; this bounds their sum along a chain of inlined fn
 * calls (each fn's body is elaborated inside the call's expression), so the stack stays
 * bounded however the fns nest. */
Value elab_expr(Elab *E, Scope *s, const Expr *e) {
  if (E->expr_depth >= ELAB_MAX_DEPTH) {
    if (!E->depth_reported)
      diag_error(E->d, elab_loc(E, e->loc),
                 "expression nested too deeply (limit %d levels, counting those of the fns it "
                 "calls)",
                 ELAB_MAX_DEPTH);
    E->depth_reported = true;
    return (Value){0};
  }
  E->expr_depth++;
  Value v = elab_expr_kind(E, s, e);
  E->expr_depth--;
  return v;
}
