/* ir/topk.c — shape inference and reference evaluation of TOPK (issue 22).
 *
 * TOPK(x) {k, smallest}: for each row of x's last axis (length L), the i32 indices of its k
 * largest elements, largest first (smallest: the k smallest, smallest first); equal values
 * keep their index order. The selection is the one codegen/lower_topk.c emits, so the two agree
 * bit for bit: pick t is the best element ranked after pick t - 1 in the order (value, then
 * index), found by one scan of the row. With NaN in a row the order is unspecified (both
 * still agree); a row whose remaining elements are all NaN gives index -1.
 */
#include "ir_internal.h"

#define SHAPE_BUF 200

bool infer_topk(Graph *g, Node *n, Diag *d) {
  const Node *x = &g->nodes[n->in[0]];
  char sx[SHAPE_BUF];
  int rank = x->shape.rank;
  int64_t len = rank ? x->shape.dim[rank - 1] : 0;
  if (rank < 1 || n->attr.topk.k < 1 || n->attr.topk.k > len) {
    IR_ERROR(d, n->loc, "topk: k = %lld must be in [1, %lld], the last axis of %s",
             (long long)n->attr.topk.k, (long long)len, shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  if (rank == 1 && x->shape.dyn) {
    IR_ERROR(d, n->loc, "topk: the last axis of %s is the dynamic batch",
             shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  n->shape = x->shape;
  n->shape.dim[rank - 1] = n->attr.topk.k;
  n->dtype = DT_I32;
  return true;
}

/* the next pick after (pv, pi) in row x[0, len): the best element ranked after it */
static int64_t next_pick(const Tensor *x, int64_t base, int64_t len, bool smallest, int64_t pi,
                         double pv) {
  int64_t bi = -1;
  double bv = 0;
  for (int64_t j = 0; j < len; j++) {
    double v = tensor_get(x, base + j);
    bool after = smallest ? v > pv || (v == pv && j > pi) : v < pv || (v == pv && j > pi);
    if (pi >= 0 && !after) continue;
    if (bi < 0 || (smallest ? v < bv : v > bv)) bi = j, bv = v;
  }
  return bi;
}

void eval_topk(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  (void)g;
  int rank = in[0]->shape.rank;
  int64_t len = in[0]->shape.dim[rank - 1], k = n->attr.topk.k;
  int64_t rows = shape_numel(&in[0]->shape) / len;
  for (int64_t r = 0; r < rows; r++) {
    int64_t pi = -1;
    double pv = 0;
    for (int64_t t = 0; t < k; t++) {
      int64_t bi = next_pick(in[0], r * len, len, n->attr.topk.smallest, pi, pv);
      tensor_set(out, r * k + t, (double)bi);
      if (bi >= 0) pv = tensor_get(in[0], r * len + bi);
      pi = bi;
    }
  }
}
