/* ir/write_at.c — shape inference and reference evaluation of WRITE_AT (issue 22: the KV
 * cache of a decode step).
 *
 * WRITE_AT(x, v, index) {axis}: y = x, then with k = v's extent along axis, n = x's and
 * s = index clamped to [0, n - k] (XLA's dynamic_update_slice clamps the same way),
 *   y[..., s + j, ...] = v[..., j, ...]   for j in [0, k)
 * v has x's dtype and rank and x's extents on every other axis; index is an integer scalar
 * (rank 0 or one element) known at run time. codegen/lower_write_at.c emits the same loops.
 * Invariants: infer refuses a run-time batch (a cache has a static shape), so eval and codegen
 * index with static strides; the clamp keeps every write inside y.
 */
#include "ir_internal.h"

#define SHAPE_BUF 200

bool infer_write_at(Graph *g, Node *n, Diag *d) {
  const Node *x = &g->nodes[n->in[0]], *v = &g->nodes[n->in[1]], *at = &g->nodes[n->in[2]];
  char sx[SHAPE_BUF], sv[SHAPE_BUF], si[SHAPE_BUF];
  shape_str(&x->shape, sx, sizeof sx);
  shape_str(&v->shape, sv, sizeof sv);
  shape_str(&at->shape, si, sizeof si);
  int axis = n->attr.softmax.axis, rank = x->shape.rank;
  bool ok = axis >= 0 && axis < rank && v->shape.rank == rank && v->dtype == x->dtype;
  for (int i = 0; ok && i < rank; i++)
    ok = i == axis ? v->shape.dim[i] >= 1 && v->shape.dim[i] <= x->shape.dim[i]
                   : v->shape.dim[i] == x->shape.dim[i];
  if (!ok) {
    IR_ERROR(d, n->loc,
             "write_at: expected v of x's dtype and rank, x's extents on every axis but %d and "
             "at most x's on it; got x %s%s and v %s%s",
             axis, dtype_name(x->dtype), sx, dtype_name(v->dtype), sv);
    return false;
  }
  if (dtype_is_float(at->dtype) || shape_numel(&at->shape) != 1 || at->shape.dyn) {
    IR_ERROR(d, n->loc, "write_at: expected an integer scalar index, got %s%s",
             dtype_name(at->dtype), si);
    return false;
  }
  if (x->shape.dyn || v->shape.dyn) {
    IR_ERROR(d, n->loc, "write_at does not take a run-time batch: x %s, v %s", sx, sv);
    return false;
  }
  n->shape = x->shape;
  n->dtype = x->dtype;
  return true;
}

static int64_t write_at_start(double index, int64_t n, int64_t k) {
  if (!(index >= 0)) return 0; /* a NaN cannot reach here (integer dtype) */
  return index > (double)(n - k) ? n - k : (int64_t)index;
}

void eval_write_at(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  (void)g;
  const Shape *xs = &in[0]->shape;
  int axis = n->attr.softmax.axis;
  int64_t len = xs->dim[axis], k = in[1]->shape.dim[axis], inner = 1, outer = 1;
  for (int i = axis + 1; i < xs->rank; i++)
    inner *= xs->dim[i];
  for (int i = 0; i < axis; i++)
    outer *= xs->dim[i];
  int64_t count = shape_numel(xs);
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i, tensor_get(in[0], i));
  int64_t s = write_at_start(tensor_get(in[2], 0), len, k);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k * inner; j++)
      tensor_set(out, (o * len + s) * inner + j, tensor_get(in[1], o * k * inner + j));
}
