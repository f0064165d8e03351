/* ir/infer.c — shape and dtype inference: the `infer` column of ops.def.
 *
 * Each hook receives a node whose op, inputs (existing ids, arity already checked by
 * graph_add) and attributes are set, and fills node->shape and node->dtype. It validates
 * everything a later stage relies on (attribute ranges, dtypes, compatible shapes) and on
 * error reports at the node's loc, naming the op and printing the shapes involved.
 */
#include <string.h>

#include "ir_internal.h"

#define SHAPE_BUF 200

static const char *op_name(const Node *n) { return ir_ops[n->op].name; }
static const Node *input(const Graph *g, const Node *n, int i) { return &g->nodes[n->in[i]]; }

static bool shape_valid(const Shape *s) {
  if (s->rank < 0 || s->rank > IR_MAX_RANK) return false;
  if (s->dyn < 0 || (s->dyn > 0 && (s->rank < 1 || s->dim[0] % s->dyn != 0))) return false;
  for (int i = 0; i < s->rank; i++)
    if (s->dim[i] < 1) return false;
  return true;
}

/* a Shape with the unused dims zeroed, so that shapes compare and print canonically */
static Shape shape_clean(const Shape *s) {
  Shape r = shape_make(s->rank, s->dim);
  r.dyn = s->dyn;
  return r;
}

/* the error of an op that cannot take a dynamic batch the way it is used */
static bool dyn_error(const Node *n, const Shape *s, const char *why, Diag *d) {
  char ss[SHAPE_BUF];
  IR_ERROR(d, n->loc, "%s: the dynamic batch of %s %s", op_name(n), shape_str(s, ss, sizeof ss),
           why);
  return false;
}

static bool check_shape_attr(const Node *n, const Shape *s, Diag *d) {
  if (shape_valid(s)) return true;
  IR_ERROR(d, n->loc, "%s: invalid target shape (rank must be 0..%d, every dim >= 1)",
           op_name(n), IR_MAX_RANK);
  return false;
}

static bool check_dtype(const Node *n, DType t, Diag *d) {
  if ((unsigned)t < DT_COUNT) return true;
  IR_ERROR(d, n->loc, "%s: invalid dtype %d", op_name(n), (int)t);
  return false;
}

bool infer_source(Graph *g, Node *n, Diag *d) {
  if (n->op == OP_CONST) {
    if (!check_dtype(n, n->attr.constant.dtype, d)) return false;
    if (!check_shape_attr(n, &n->attr.constant.shape, d)) return false;
    n->attr.constant.shape = shape_clean(&n->attr.constant.shape);
    if (n->attr.constant.shape.dyn && n->attr.constant.data)
      return dyn_error(n, &n->attr.constant.shape, "needs a splat constant (one value)", d);
    n->dtype = n->attr.constant.dtype;
    n->shape = n->attr.constant.shape;
    return true;
  }
  const Module *m = g->module;
  const TensorDecl *tab = NULL;
  int count = 0;
  if (m) {
    tab = n->op == OP_INPUT ? m->inputs : n->op == OP_PARAM ? m->params : m->states;
    count = n->op == OP_INPUT ? m->n_inputs : n->op == OP_PARAM ? m->n_params : m->n_states;
  }
  int32_t idx = n->attr.source.index;
  if (idx < 0 || idx >= count) {
    IR_ERROR(d, n->loc, "%s: index %d out of range (the module declares %d)", op_name(n),
             (int)idx, count);
    return false;
  }
  n->dtype = tab[idx].dtype;
  n->shape = shape_clean(&tab[idx].shape);
  if (n->shape.dyn && n->op != OP_INPUT)
    return dyn_error(n, &n->shape, "is not allowed: parameters and states are static", d);
  return true;
}

bool infer_broadcast(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  if (a->dtype != b->dtype) {
    IR_ERROR(d, n->loc, "%s: operand dtypes differ: %s%s vs %s%s", op_name(n),
             dtype_name(a->dtype), shape_str(&a->shape, sa, sizeof sa), dtype_name(b->dtype),
             shape_str(&b->shape, sb, sizeof sb));
    return false;
  }
  if (!shape_broadcast(&a->shape, &b->shape, &n->shape)) {
    IR_ERROR(d, n->loc, "%s: shapes cannot be broadcast together: %s and %s", op_name(n),
             shape_str(&a->shape, sa, sizeof sa), shape_str(&b->shape, sb, sizeof sb));
    return false;
  }
  n->dtype = a->dtype;
  return true;
}

/* ops whose result is only meaningful in floating point */
static bool op_needs_float(OpKind op) {
  switch (op) {
  case OP_EXP: case OP_LOG: case OP_SQRT: case OP_SIGMOID: case OP_TANH: case OP_ERF:
  case OP_SIN: case OP_COS:
  case OP_SOFTMAX: case OP_LOG_SOFTMAX:
    return true;
  default:
    return false;
  }
}

bool infer_unary(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  char sa[SHAPE_BUF];
  if (op_needs_float(n->op) && !dtype_is_float(a->dtype)) {
    IR_ERROR(d, n->loc, "%s: expected a floating-point operand, got %s%s", op_name(n),
             dtype_name(a->dtype), shape_str(&a->shape, sa, sizeof sa));
    return false;
  }
  if (n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX) {
    int32_t axis = n->attr.softmax.axis;
    if (axis < 0 || axis >= a->shape.rank) {
      IR_ERROR(d, n->loc, "%s: axis %d out of range for shape %s (rank %d)", op_name(n),
               (int)axis, shape_str(&a->shape, sa, sizeof sa), (int)a->shape.rank);
      return false;
    }
  }
  n->dtype = a->dtype;
  n->shape = a->shape;
  return true;
}

bool infer_cast(Graph *g, Node *n, Diag *d) {
  if (!check_dtype(n, n->attr.cast.dtype, d)) return false;
  n->dtype = n->attr.cast.dtype;
  n->shape = input(g, n, 0)->shape;
  return true;
}

/* the two matrix dims of an operand, honouring its transpose flag */
static void matrix_dims(const Shape *s, bool trans, int64_t *rows, int64_t *cols) {
  int64_t r = s->dim[s->rank - 2], c = s->dim[s->rank - 1];
  *rows = trans ? c : r;
  *cols = trans ? r : c;
}

/* batch dims of s (all but the last two), dynamic when axis 0 of s is among them */
static Shape batch_shape(const Shape *s) {
  Shape r = shape_make(s->rank - 2, s->dim);
  if (s->rank > 2) r.dyn = s->dyn;
  return r;
}

/* The dynamic batch through a matmul (rank-2 operands; batched ones carry it in their batch
 * dims): the rows of A give dynamic rows, a dynamic contraction (A transposed and B not, both
 * dynamic alike: X^T dY) a static result; as columns it would leave axis 0. */
static bool matmul_dyn(const Node *n, const Node *a, const Node *b, int64_t *dyn, Diag *d) {
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  const Shape *sa = &a->shape, *sb = &b->shape;
  *dyn = 0;
  if (sa->rank > 2 || sb->rank > 2) return true; /* batch dims: shape_broadcast decides */
  if (sb->dyn && tb) return dyn_error(n, sb, "would become the result's columns", d);
  if (!sa->dyn && !sb->dyn) return true;
  if (sa->dyn && !ta) {
    if (sb->dyn) return dyn_error(n, sb, "cannot be contracted with static rows", d);
    *dyn = sa->dyn;
    return true;
  }
  if (!sa->dyn || !sb->dyn || sa->dyn != sb->dyn)
    return dyn_error(n, sa->dyn ? sa : sb, "must be contracted with the same dynamic axis", d);
  return true;
}

bool infer_matmul(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0), *b = input(g, n, 1);
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  shape_str(&a->shape, sa, sizeof sa);
  shape_str(&b->shape, sb, sizeof sb);
  if (a->dtype != b->dtype) {
    IR_ERROR(d, n->loc, "matmul: operand dtypes differ: %s%s @ %s%s", dtype_name(a->dtype), sa,
             dtype_name(b->dtype), sb);
    return false;
  }
  if (a->shape.rank < 2 || b->shape.rank < 2) {
    IR_ERROR(d, n->loc, "matmul: operands must have rank >= 2: %s @ %s", sa, sb);
    return false;
  }
  int64_t m, ka, kb, nn;
  matrix_dims(&a->shape, n->attr.matmul.trans_a, &m, &ka);
  matrix_dims(&b->shape, n->attr.matmul.trans_b, &kb, &nn);
  if (ka != kb) {
    IR_ERROR(d, n->loc, "matmul: inner dimensions do not match: %s%s @ %s%s (%lld vs %lld)", sa,
             n->attr.matmul.trans_a ? "^T" : "", sb, n->attr.matmul.trans_b ? "^T" : "",
             (long long)ka, (long long)kb);
    return false;
  }
  int64_t dyn = 0;
  if (!matmul_dyn(n, a, b, &dyn, d)) return false;
  Shape ba = batch_shape(&a->shape), bb = batch_shape(&b->shape), out;
  if (!shape_broadcast(&ba, &bb, &out)) {
    IR_ERROR(d, n->loc, "matmul: batch dimensions cannot be broadcast: %s @ %s", sa, sb);
    return false;
  }
  if (out.rank + 2 > IR_MAX_RANK) return false; /* unreachable: ranks are <= IR_MAX_RANK */
  out.dim[out.rank++] = m;
  out.dim[out.rank++] = nn;
  if (dyn) out.dyn = dyn; /* rank-2 rows; batched operands carry it in out's batch dims */
  n->shape = out;
  n->dtype = a->dtype;
  return true;
}

bool infer_reduce(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  uint32_t axes = n->attr.reduce.axes;
  char sa[SHAPE_BUF];
  if (a->shape.rank < 32 && (axes >> a->shape.rank) != 0) {
    IR_ERROR(d, n->loc, "%s: reduction axes mask 0x%x names an axis beyond rank %d of %s",
             op_name(n), (unsigned)axes, (int)a->shape.rank,
             shape_str(&a->shape, sa, sizeof sa));
    return false;
  }
  Shape out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < a->shape.rank; i++) {
    if (axes & (1u << i)) {
      if (n->attr.reduce.keepdims) out.dim[out.rank++] = 1;
    } else {
      out.dim[out.rank++] = a->shape.dim[i];
    }
  }
  if (!(axes & 1u)) out.dyn = a->shape.dyn; /* axis 0 kept: still dynamic */
  n->shape = out;
  n->dtype = a->dtype;
  return true;
}

bool infer_reshape(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  if (!check_shape_attr(n, &n->attr.reshape.shape, d)) return false;
  Shape target = shape_clean(&n->attr.reshape.shape);
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  if (shape_numel(&target) != shape_numel(&a->shape)) {
    IR_ERROR(d, n->loc, "reshape: element counts differ: %s (%lld elements) to %s (%lld)",
             shape_str(&a->shape, sa, sizeof sa), (long long)shape_numel(&a->shape),
             shape_str(&target, sb, sizeof sb), (long long)shape_numel(&target));
    return false;
  }
  if (!a->shape.dyn != !target.dyn) { /* elements per unit of n then match too */
    IR_ERROR(d, n->loc, "reshape: %s to %s: a dynamic batch must stay in axis 0 (as k * n)",
             shape_str(&a->shape, sa, sizeof sa), shape_str(&target, sb, sizeof sb));
    return false;
  }
  n->attr.reshape.shape = target;
  n->shape = target;
  n->dtype = a->dtype;
  return true;
}

bool infer_transpose(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  int rank = a->shape.rank;
  bool seen[IR_MAX_RANK] = {false};
  char sa[SHAPE_BUF];
  Shape out = a->shape;
  for (int i = 0; i < rank; i++) {
    int p = n->attr.transpose.perm[i];
    if (p < 0 || p >= rank || seen[p]) {
      IR_ERROR(d, n->loc, "transpose: perm is not a permutation of the %d axes of %s", rank,
               shape_str(&a->shape, sa, sizeof sa));
      return false;
    }
    seen[p] = true;
    out.dim[i] = a->shape.dim[p];
  }
  if (a->shape.dyn && n->attr.transpose.perm[0] != 0)
    return dyn_error(n, &a->shape, "must stay axis 0", d);
  for (int i = rank; i < IR_MAX_RANK; i++) n->attr.transpose.perm[i] = 0;
  n->shape = out;
  n->dtype = a->dtype;
  return true;
}

bool infer_broadcast_to(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  if (!check_shape_attr(n, &n->attr.reshape.shape, d)) return false;
  Shape target = shape_clean(&n->attr.reshape.shape), out;
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  if (!shape_broadcast(&a->shape, &target, &out) || !shape_equal(&out, &target)) {
    IR_ERROR(d, n->loc, "broadcast: shape %s cannot be broadcast to %s",
             shape_str(&a->shape, sa, sizeof sa), shape_str(&target, sb, sizeof sb));
    return false;
  }
  n->attr.reshape.shape = target;
  n->shape = target;
  n->dtype = a->dtype;
  return true;
}

bool infer_one_hot(Graph *g, Node *n, Diag *d) {
  const Node *a = input(g, n, 0);
  char sa[SHAPE_BUF];
  if (dtype_is_float(a->dtype)) {
    IR_ERROR(d, n->loc, "one_hot: expected integer indices, got %s%s", dtype_name(a->dtype),
             shape_str(&a->shape, sa, sizeof sa));
    return false;
  }
  if (!check_dtype(n, n->attr.one_hot.dtype, d)) return false;
  if (n->attr.one_hot.depth < 1) {
    IR_ERROR(d, n->loc, "one_hot: depth must be >= 1, got %lld",
             (long long)n->attr.one_hot.depth);
    return false;
  }
  if (a->shape.rank >= IR_MAX_RANK) {
    IR_ERROR(d, n->loc, "one_hot: input %s already has the maximum rank %d",
             shape_str(&a->shape, sa, sizeof sa), IR_MAX_RANK);
    return false;
  }
  n->shape = a->shape;
  n->shape.dim[n->shape.rank++] = n->attr.one_hot.depth;
  n->dtype = n->attr.one_hot.dtype;
  return true;
}
