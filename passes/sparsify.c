/* passes/sparsify.c — baked weights that are mostly zero: pass_sparsify (issue #20,
 * docs/compression.md "Sparse compilation").
 *
 * Requires: a verified graph after layout (a matmul's operand flags are final).
 * Does:     records in matmul.sparse_b which sparse kernel (IrSparseKernel, ir/ir.h) computes
 *           a 2-D f32 MATMUL `A @ B` whose B is a data constant (a weight baked in by
 *           `lathe compile --bake`, e.g. one pruned by `lathe prune` or the `prune`
 *           statement) read untransposed, with few enough nonzeros that the kernel beats the
 *           dense one, and a product of static rows. Codegen (codegen/sparse.c) then computes
 *           it over B's nonzeros and never writes B's dense table. The decision is the IR's:
 *           `lathe dump` shows it (sparse_b, sparse_unrolled, sparse_panel), codegen only obeys.
 * Invalidates: nothing (an attribute).
 *
 * The choice, measured with bench/sparse.sh and CPU-time A/B runs (AMD Zen 3;
 * docs/compression.md):
 *   - at most SPARSE_MAX_ROWS rows (batch-1 inference: the dense kernel streams every weight
 *     once per row and memory traffic dominates) and at most SPARSE_MAX_DENSITY nonzeros:
 *     UNROLLED when B has at most SPARSE_UNROLL_MAX nonzeros (literals, no index loads),
 *     else DOT, 8 columns at a time. SCATTER over B's rows, which skips the zero inputs a
 *     ReLU or a blank pixel gives, is no longer chosen: it wins only above about 65% zero
 *     inputs (each nonzero costs a load and a store of the output besides its index and
 *     value), and the 8-column dot beat it on the MLP's hidden layer, ReLU zeros included
 *     (6.5 against 7.1 us for the whole MLP on random inputs, 6.7 against 8.0 on real
 *     images), and its kernel was removed;
 *   - more rows: PANEL, B's column nonzeros each a multiply-add over a panel of rows of A,
 *     when B has at most SPARSE_PANEL_DENSITY nonzeros; the dense GEMM otherwise.
 */
#include "passes.h"

enum { SPARSE_MAX_ROWS = 4, SPARSE_UNROLL_MAX = 512 };
static const double SPARSE_MAX_DENSITY = 0.15, SPARSE_PANEL_DENSITY = 0.25;

static bool sparse_candidate(const Graph *g, const Node *n) {
  if (n->op != OP_MATMUL || n->dtype != DT_F32 || n->shape.rank != 2 || n->shape.dyn ||
      n->attr.matmul.trans_b)
    return false;
  const Node *a = graph_node(g, n->in[0]), *b = graph_node(g, n->in[1]);
  return a->dtype == DT_F32 && a->shape.rank == 2 && b->op == OP_CONST && b->attr.constant.data &&
         b->shape.rank == 2;
}

static IrSparseKernel choose(const Node *n, const Node *b) {
  int64_t count = shape_numel(&b->shape), nonzero = 0;
  for (int64_t i = 0; i < count; i++)
    nonzero += b->attr.constant.data[i] != 0.0;
  double density = count ? (double)nonzero / (double)count : 1.0;
  if (n->shape.dim[0] > SPARSE_MAX_ROWS)
    return density <= SPARSE_PANEL_DENSITY ? IR_SPARSE_PANEL : IR_SPARSE_NONE;
  if (density > SPARSE_MAX_DENSITY) return IR_SPARSE_NONE;
  return nonzero <= SPARSE_UNROLL_MAX ? IR_SPARSE_UNROLLED : IR_SPARSE_DOT;
}

bool pass_sparsify(Graph *g, PassCtx *c) {
  (void)c;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    Node *n = graph_node(g, id);
    if (sparse_candidate(g, n))
      n->attr.matmul.sparse_b = (uint8_t)choose(n, graph_node(g, n->in[1]));
  }
  return true;
}
