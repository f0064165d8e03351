/* ir/prune_mask.c — shape inference and reference evaluation of PRUNE_MASK (issue 20).
 *
 * PRUNE_MASK(w, mask, s) {n, m, columns}: the pruning mask of param w at one train step
 * (docs/compression.md, "In the IR"). s is the f64 scalar sparsity of this step, or < 0 when
 * the step does not update masks: the result is then `mask` itself. Otherwise magnitude
 * (m == 0) prunes prune_count(s, size) weights of smallest |w|, ties to the lower index, and
 * N:M (m > 0) keeps the n largest |w| of every m consecutive weights along the reduction axis
 * of the [dim0, rest] view. The choice is ir/prune.c's, the one `lathe prune` makes, so the
 * statement and the tool agree; codegen/lower_prune.c computes the same selection in C (a
 * radix select on the bits of |w|, no sort).
 */
#include "ir_internal.h"
#include "prune.h"

#include <stdlib.h>

#define SHAPE_BUF 200

void prune_mask_view(const Node *n, const Shape *w, int64_t *rows, int64_t *cols) {
  int64_t size = shape_numel(w);
  int64_t channels = w->rank == 0 ? 1 : n->attr.prune.columns ? w->dim[w->rank - 1] : w->dim[0];
  if (channels == 0) channels = 1;
  *rows = n->attr.prune.columns ? size / channels : channels;
  *cols = n->attr.prune.columns ? channels : size / channels;
}

bool infer_prune_mask(Graph *g, Node *n, Diag *d) {
  const Node *w = &g->nodes[n->in[0]], *mask = &g->nodes[n->in[1]], *s = &g->nodes[n->in[2]];
  char sw[SHAPE_BUF], sm[SHAPE_BUF];
  if (!dtype_is_float(w->dtype) || !shape_equal(&w->shape, &mask->shape) ||
      mask->dtype != w->dtype || w->shape.dyn) {
    IR_ERROR(d, n->loc,
             "prune_mask: w %s%s and mask %s%s must be static float tensors of one "
             "shape and dtype",
             dtype_name(w->dtype), shape_str(&w->shape, sw, sizeof sw), dtype_name(mask->dtype),
             shape_str(&mask->shape, sm, sizeof sm));
    return false;
  }
  if (s->shape.rank != 0 || s->dtype != DT_F64) {
    IR_ERROR(d, n->loc, "prune_mask: the sparsity must be an f64 scalar, got %s%s",
             dtype_name(s->dtype), shape_str(&s->shape, sw, sizeof sw));
    return false;
  }
  int32_t nk = n->attr.prune.n, m = n->attr.prune.m;
  int64_t rows, cols;
  prune_mask_view(n, &w->shape, &rows, &cols);
  int64_t len = n->attr.prune.columns ? rows : cols;
  if (m < 0 || (m > 0 && (nk < 1 || nk > m || w->shape.rank < 2 || len % m != 0))) {
    IR_ERROR(d, n->loc,
             "prune_mask: %d:%d needs 1 <= n <= m and a reduction axis (%lld) of %s "
             "that is a multiple of m",
             nk, m, (long long)len, shape_str(&w->shape, sw, sizeof sw));
    return false;
  }
  n->shape = w->shape;
  n->dtype = w->dtype;
  return true;
}

void eval_prune_mask(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  (void)g;
  int64_t size = shape_numel(&in[0]->shape);
  double s = tensor_get(in[2], 0);
  if (s < 0) {
    for (int64_t i = 0; i < size; i++)
      tensor_set(out, i, tensor_get(in[1], i));
    return;
  }
  double *w = malloc(sizeof *w * (size_t)(size ? size : 1));
  uint8_t *keep = malloc((size_t)(size ? size : 1));
  if (!w || !keep) { /* the evaluator has no error path: a mask that prunes nothing */
    free(w);
    free(keep);
    for (int64_t i = 0; i < size; i++)
      tensor_set(out, i, 1.0);
    return;
  }
  for (int64_t i = 0; i < size; i++)
    w[i] = tensor_get(in[0], i);
  int64_t rows, cols;
  prune_mask_view(n, &in[0]->shape, &rows, &cols);
  bool done = true;
  if (n->attr.prune.m > 0)
    prune_n_of_m(w, rows, cols, n->attr.prune.columns ? 1 : 0, n->attr.prune.n, n->attr.prune.m,
                 keep);
  else
    done = prune_magnitude((const double *const *)&w, &size, 1, s, &keep);
  for (int64_t i = 0; i < size; i++)
    tensor_set(out, i, done ? (double)keep[i] : 1.0);
  free(w);
  free(keep);
}
