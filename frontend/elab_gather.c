/* frontend/elab_gather.c — indexing along one axis, like torch.gather / Tensor.scatter_add:
 *   gather(x, axis, index)            y[i] = x[i with i_axis = index[i]]          shape of index
 *   scatter_add(x, axis, index, src)  y = x, then y[i with i_axis = index[i]] += src[i]
 * index is an integer tensor of x's rank, no larger than x on the other axes; src has index's
 * shape. Negative indices count from the end (ONNX GatherElements/ScatterElements); indices
 * outside [-d, d) read 0 (gather) or are dropped (scatter_add), as the row ops do.
 *
 * Both are the row ops of embeddings over x flattened to one axis: the flat position of i is
 * index[i] * stride(axis) + the offset of i's other coordinates (a constant of index's shape),
 * or -1 when index[i] is out of range — an integer elementwise chain that fuses into one loop.
 * gather is GATHER(x as [numel], flat); scatter_add is x + SCATTER_ADD(src, flat) reshaped
 * to x. Their gradients are GATHER's and SCATTER_ADD's (each the other's adjoint): the
 * gradient of gather reaches x by a scatter-add, that of scatter_add reaches src by a gather.
 * A dynamic batch (docs/dynamic-batch.md) is refused: the offsets are a static constant.
 */
#include "frontend/elab.h"

#include <string.h>

/* index fits x along every axis but `axis` (same rank, integer, static) */
static bool check_index(Elab *E, const Expr *call, NodeId x, NodeId index, int axis) {
  const Node *xn = graph_node(E->g, x), *in = graph_node(E->g, index);
  bool ok = in->shape.rank == xn->shape.rank && !dtype_is_float(in->dtype);
  for (int d = 0; ok && d < xn->shape.rank; d++)
    ok = d == axis || in->shape.dim[d] <= xn->shape.dim[d];
  char sx[200], si[200];
  shape_str(&xn->shape, sx, sizeof sx);
  shape_str(&in->shape, si, sizeof si);
  if (!ok) {
    diag_error(E->d, call->loc,
               "'%s': expected an integer index of x's rank, no larger than x on the axes "
               "other than %d; got x %s and index %s%s",
               call->name, axis, sx, dtype_name(in->dtype), si);
    return false;
  }
  if (xn->shape.dyn || in->shape.dyn) {
    diag_error(E->d, call->loc, "'%s' does not take a dynamic batch: x %s, index %s", call->name,
               sx, si);
    return false;
  }
  return true;
}

/* the flat position in x of every element of index along axis, -1 where out of range */
static NodeId flat_positions(Builder *b, const Shape *xs, NodeId index, int axis) {
  const Node *in = graph_node(b->g, index);
  Shape is = in->shape;
  DType t = in->dtype;
  int64_t stride[IR_MAX_RANK], numel = shape_numel(&is), len = xs->dim[axis], st = 1;
  for (int d = xs->rank - 1; d >= 0; st *= xs->dim[d], d--)
    stride[d] = st;
  double *off = arena_alloc(&b->g->arena, sizeof(double) * (size_t)numel);
  for (int64_t e = 0; e < numel; e++) { /* e's coordinates in index, in x's strides */
    int64_t rest = e, o = 0;
    for (int d = is.rank - 1; d >= 0; d--) {
      if (d != axis) o += (rest % is.dim[d]) * stride[d];
      rest /= is.dim[d];
    }
    off[e] = (double)o + 1; /* + 1: the -1 of an invalid position below */
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  at.constant.shape = is;
  at.constant.data = off;
  NodeId offsets = build_node(b, OP_CONST, NULL, 0, &at);
  NodeId neg = build_binary(b, OP_LT, index, build_scalar(b, t, 0));
  NodeId j =
      build_binary(b, OP_ADD, index, build_binary(b, OP_MUL, neg, build_scalar(b, t, (double)len)));
  NodeId valid = build_binary(b, OP_MUL, build_binary(b, OP_GE, j, build_scalar(b, t, 0)),
                              build_binary(b, OP_LT, j, build_scalar(b, t, (double)len)));
  NodeId pos = build_binary(
      b, OP_ADD, build_binary(b, OP_MUL, j, build_scalar(b, t, (double)stride[axis])), offsets);
  return build_binary(b, OP_SUB, build_binary(b, OP_MUL, valid, pos), build_scalar(b, t, 1));
}

static bool axis_arg(Elab *E, Scope *s, const Expr *e, NodeId x, int *axis) {
  int64_t v;
  int rank = graph_node(E->g, x)->shape.rank;
  if (!elab_int(E, elab_expr(E, s, e), e->loc, "'axis'", &v)) return false;
  if (v < 0) v += rank;
  if (v >= 0 && v < rank) return *axis = (int)v, true;
  diag_error(E->d, e->loc, "'axis' must be in [-%d, %d) for x of rank %d", rank, rank, rank);
  return false;
}

Value elab_gather_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const params[] = {"x", "axis", "index", "src"};
  bool scatter = strcmp(call->name, "scatter_add") == 0;
  const Expr *a[4];
  if (!elab_builtin_args(E, call, params, scatter ? 4 : 3, scatter ? 4 : 3, a)) return (Value){0};
  NodeId x, index, src = IR_NONE;
  int axis;
  if (!elab_tensor_arg(E, s, a[0], call->name, &x) || !axis_arg(E, s, a[1], x, &axis) ||
      !elab_tensor_arg(E, s, a[2], call->name, &index) ||
      (scatter && !elab_tensor_arg(E, s, a[3], call->name, &src)) ||
      !check_index(E, call, x, index, axis))
    return (Value){0};
  Builder b = elab_builder(E, call->loc);
  Shape xs = graph_node(E->g, x)->shape, flat = {.rank = 1, .dim = {shape_numel(&xs)}};
  NodeId pos = flat_positions(&b, &xs, index, axis);
  if (!scatter) {
    NodeId in[2] = {build_reshape(&b, x, &flat), pos};
    return elab_tensor_value(build_node(&b, OP_GATHER, in, 2, NULL));
  }
  const Node *sn = graph_node(E->g, src), *in = graph_node(E->g, index);
  if (!shape_equal(&sn->shape, &in->shape) || sn->dtype != graph_node(E->g, x)->dtype) {
    char ss[200], si[200];
    diag_error(E->d, a[3]->loc,
               "'scatter_add': expected src of index's shape %s and x's dtype, "
               "got %s%s",
               shape_str(&in->shape, si, sizeof si), dtype_name(sn->dtype),
               shape_str(&sn->shape, ss, sizeof ss));
    return (Value){0};
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.gather.rows = flat.dim[0];
  NodeId ins[2] = {src, pos};
  NodeId added = build_reshape(&b, build_node(&b, OP_SCATTER_ADD, ins, 2, &at), &xs);
  return elab_tensor_value(build_binary(&b, OP_ADD, x, added));
}

/* ---- topk ---------------------------------------------------------------------------------- */

/* the i32 indices of TOPK along `axis` of x: moved last by swapping it with the last axis
 * (a swap is its own inverse) when it is not */
static NodeId topk_indices(Builder *b, NodeId x, int axis, int64_t k, bool largest) {
  int rank = graph_node(b->g, x)->shape.rank;
  int8_t perm[IR_MAX_RANK];
  for (int i = 0; i < rank; i++)
    perm[i] = (int8_t)i;
  perm[axis] = (int8_t)(rank - 1);
  perm[rank - 1] = (int8_t)axis;
  bool moved = axis != rank - 1;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.topk.k = k;
  at.topk.smallest = !largest;
  NodeId xt = moved ? build_transpose(b, x, perm) : x;
  NodeId idx = build_node(b, OP_TOPK, &xt, 1, &at);
  return moved ? build_transpose(b, idx, perm) : idx;
}

/* topk(x, k, axis = -1, largest = true) → (values, indices), like torch.topk (sorted);
 * topk_indices(...) → the indices alone. values = gather(x, axis, indices): their gradient is
 * the gather's (to the picked positions). */
Value elab_topk_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const params[] = {"x", "k", "axis", "largest"};
  const Expr *a[4];
  if (!elab_match_args(E, call, params, 4, a)) return (Value){0};
  if (!a[0] || !a[1]) {
    diag_error(E->d, call->loc, "'%s' needs argument '%s'", call->name, a[0] ? "k" : "x");
    return (Value){0};
  }
  NodeId x;
  int axis = -1;
  int64_t k;
  bool largest = true;
  if (!elab_tensor_arg(E, s, a[0], call->name, &x) ||
      !elab_int(E, elab_expr(E, s, a[1]), a[1]->loc, "'k'", &k))
    return (Value){0};
  int rank = graph_node(E->g, x)->shape.rank;
  if (a[2] ? !axis_arg(E, s, a[2], x, &axis) : (axis = rank - 1) < 0) return (Value){0};
  if (a[3]) {
    Value v = elab_expr(E, s, a[3]);
    if (v.kind != VAL_BOOL) {
      if (v.kind != VAL_NONE)
        diag_error(E->d, a[3]->loc, "'largest' must be true or false, got %s",
                   elab_value_str(E, v));
      return (Value){0};
    }
    largest = v.i != 0;
  }
  Builder b = elab_builder(E, call->loc);
  NodeId idx = topk_indices(&b, x, axis, k, largest);
  if (strcmp(call->name, "topk_indices") == 0 || idx == IR_NONE) return elab_tensor_value(idx);
  if (!check_index(E, call, x, idx, axis)) return (Value){0};
  Shape xs = graph_node(E->g, x)->shape, flat = {.rank = 1, .dim = {shape_numel(&xs)}};
  NodeId in[2] = {build_reshape(&b, x, &flat), flat_positions(&b, &xs, idx, axis)};
  NodeId values = build_node(&b, OP_GATHER, in, 2, NULL);
  if (values == IR_NONE) return (Value){0};
  Value t = {.kind = VAL_TUPLE, .n_items = 2};
  t.items = arena_alloc(&E->scratch, 2 * sizeof *t.items);
  t.items[0] = values;
  t.items[1] = idx;
  return t;
}
