/* passes/sparsify.c — baked weights that are mostly zero: pass_sparsify (issue #20,
 * docs/compression.md "Sparse compilation").
 *
 * Requires: a verified graph after layout (a matmul's operand flags are final).
 * Does:     marks a 2-D f32 MATMUL `A @ B` with matmul.sparse_b when B is a data constant (a
 *           weight baked in by `lathe compile --bake`, e.g. one pruned by `lathe prune`) of at
 *           most SPARSE_MAX_DENSITY nonzeros, read untransposed, and the product has at most
 *           SPARSE_MAX_ROWS rows at compile time (batch-1 inference: the dense kernel then
 *           streams every weight once per row, and memory traffic dominates). Codegen
 *           (codegen/sparse.c) then computes it over B's nonzeros, stored column-compressed
 *           in static tables, and never writes B's dense table. The decision is the IR's:
 *           `lathe dump` shows it, codegen only obeys.
 * Invalidates: nothing (an attribute).
 *
 * The thresholds are measured (bench/sparse.sh, README; AMD Zen 3): at batch 1 the nonzero
 * loop is 1.56x the dense row loop at 10% nonzeros and 2.87x at 5%, but 0.78x at 20% and
 * 0.51x at 30%; with more rows the dense GEMM's vector throughput wins (a sparse kernel
 * vectorized over rows is future work).
 */
#include "passes.h"

enum { SPARSE_MAX_ROWS = 4 };
static const double SPARSE_MAX_DENSITY = 0.15;

static bool sparse_candidate(const Graph *g, const Node *n) {
  if (n->op != OP_MATMUL || n->dtype != DT_F32 || n->shape.rank != 2 || n->shape.dyn ||
      n->attr.matmul.trans_b)
    return false;
  const Node *a = graph_node(g, n->in[0]), *b = graph_node(g, n->in[1]);
  return a->dtype == DT_F32 && a->shape.rank == 2 && b->op == OP_CONST && b->attr.constant.data &&
         b->shape.rank == 2 && n->shape.dim[0] <= SPARSE_MAX_ROWS;
}

static double density(const Node *b) {
  int64_t count = shape_numel(&b->shape), nonzero = 0;
  for (int64_t i = 0; i < count; i++)
    nonzero += b->attr.constant.data[i] != 0.0;
  return count ? (double)nonzero / (double)count : 1.0;
}

bool pass_sparsify(Graph *g, PassCtx *c) {
  (void)c;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    Node *n = graph_node(g, id);
    if (sparse_candidate(g, n))
      n->attr.matmul.sparse_b = density(graph_node(g, n->in[1])) <= SPARSE_MAX_DENSITY;
  }
  return true;
}
