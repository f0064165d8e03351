/* ir/prune.c — pruning masks and the sparsity schedule (see prune.h). */
#include "prune.h"

#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Ranked {
  double mag;
  int64_t order; /* the tie-break: lower first */
} Ranked;

static int ranked_cmp(const void *pa, const void *pb) {
  const Ranked *a = pa, *b = pb;
  if (a->mag != b->mag) return a->mag < b->mag ? -1 : 1;
  return (a->order > b->order) - (a->order < b->order);
}

int64_t prune_count(double sparsity, int64_t count) {
  double x = sparsity * (double)count;
  double r = nearbyint(x); /* the default rounding mode: halves to even */
  if (r < 0) r = 0;
  return r > (double)count ? count : (int64_t)r;
}

bool prune_magnitude(const double *const *w, const int64_t *len, int n_tensors, double sparsity,
                     uint8_t *const *mask) {
  int64_t total = 0;
  for (int t = 0; t < n_tensors; t++)
    total += len[t];
  Ranked *r = malloc(sizeof *r * (size_t)(total > 0 ? total : 1));
  if (!r) return false;
  int64_t k = 0;
  for (int t = 0; t < n_tensors; t++)
    for (int64_t i = 0; i < len[t]; i++, k++)
      r[k] = (Ranked){fabs(w[t][i]), k};
  qsort(r, (size_t)total, sizeof *r, ranked_cmp);
  for (int t = 0; t < n_tensors; t++)
    memset(mask[t], 1, (size_t)len[t]);
  int64_t n_prune = prune_count(sparsity, total);
  for (int64_t j = 0; j < n_prune; j++) { /* the flat order back to (tensor, index) */
    int64_t flat = r[j].order;
    int t = 0;
    while (flat >= len[t])
      flat -= len[t++];
    mask[t][flat] = 0;
  }
  free(r);
  return true;
}

bool prune_channels(const double *w, int64_t rows, int64_t cols, int axis, int norm,
                    double sparsity, uint8_t *mask) {
  int64_t channels = axis == 1 ? cols : rows;
  Ranked *r = calloc((size_t)(channels > 0 ? channels : 1), sizeof *r);
  if (!r) return false;
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      double v = w[i * cols + j];
      r[axis == 1 ? j : i].mag += norm == 1 ? fabs(v) : v * v;
    }
  for (int64_t c = 0; c < channels; c++)
    r[c].order = c; /* the L2 norm ranks as its square */
  qsort(r, (size_t)channels, sizeof *r, ranked_cmp);
  memset(mask, 1, (size_t)(rows * cols));
  int64_t n_prune = prune_count(sparsity, channels);
  for (int64_t p = 0; p < n_prune; p++) {
    int64_t c = r[p].order;
    for (int64_t i = 0; i < (axis == 1 ? rows : cols); i++)
      mask[axis == 1 ? i * cols + c : c * cols + i] = 0;
  }
  free(r);
  return true;
}

void prune_n_of_m(const double *w, int64_t rows, int64_t cols, int axis, int n, int m,
                  uint8_t *mask) {
  int64_t channels = axis == 1 ? cols : rows, length = axis == 1 ? rows : cols;
  for (int64_t c = 0; c < channels; c++)
    for (int64_t g = 0; g + m <= length; g += m) {
      /* rank the group by selection: element e is kept when fewer than n others beat it
       * (larger magnitude, or equal and earlier) — m is tiny (4, 8, 16) */
      for (int e = 0; e < m; e++) {
        int64_t ie = axis == 1 ? (g + e) * cols + c : c * cols + g + e;
        int beaten = 0;
        for (int o = 0; o < m; o++) {
          int64_t io = axis == 1 ? (g + o) * cols + c : c * cols + g + o;
          double a = fabs(w[io]), b = fabs(w[ie]);
          beaten += a > b || (a == b && o < e);
        }
        mask[ie] = beaten < n;
      }
    }
}

double prune_schedule(int64_t t, double s_i, double s_f, int64_t begin, int64_t end) {
  if (t <= begin) return s_i;
  if (t >= end || end <= begin) return s_f;
  double p = 1.0 - (double)(t - begin) / (double)(end - begin);
  return s_f + (s_i - s_f) * p * p * p;
}

int prune_output_axis(const Graph *g, int32_t p) {
  for (NodeId id = 0; g && id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if ((n->op != OP_MATMUL && n->op != OP_CONV2D) || n->n_in < 2) continue;
    const Node *w = graph_node(g, n->in[1]);
    if (w->op == OP_PARAM && w->attr.source.index == p && w->shape.rank >= 2)
      return n->op == OP_MATMUL ? 1 : 0;
  }
  return -1;
}
