/* passes/layout.c — layout rewrites before fusion: pass_layout.
 *
 * Requires: a verified graph after DCE.
 * Does:     transposes that feed a matmul become the matmul's operand variant. A MATMUL operand
 *           `transpose(x, p)` whose permutation p swaps the two matrix axes last (p = q then
 *           swap of the last two axes):
 *             - when q is the identity, the matmul reads x directly with its trans_a/trans_b
 *               flag toggled (no copy at all);
 *             - otherwise, when the transpose is read by nothing but matmuls (and is no graph
 *               output), it becomes transpose(x, q) and every reading matmul toggles its flag:
 *               the copy then moves whole contiguous rows (q keeps the last axis) instead of
 *               gathering one element per stride, and the GEMM reads the operand transposed.
 *           (Transposes of transposes are composed by simplify; the backward pass of a matmul is
 *           already written with the flags by autodiff.)
 *           Batch norm in inference entries folds into the preceding convolution's weights
 *           (layout_bn.c). Then dce removes what became dead.
 * Invalidates: node ids when dce removes nodes; the memory plan.
 */
#include "layout.h"

#include <stdlib.h>
#include <string.h>

/* q = p with its last two entries swapped; true when q is the identity */
static bool strip_swap(const Node *t, int8_t *q) {
  int r = t->shape.rank;
  memcpy(q, t->attr.transpose.perm, sizeof t->attr.transpose.perm);
  int8_t tmp = q[r - 1];
  q[r - 1] = q[r - 2];
  q[r - 2] = tmp;
  bool identity = true;
  for (int d = 0; d < r; d++)
    identity &= q[d] == d;
  return identity;
}

static void toggle(Node *m, int k) {
  if (k == 0)
    m->attr.matmul.trans_a = !m->attr.matmul.trans_a;
  else
    m->attr.matmul.trans_b = !m->attr.matmul.trans_b;
}

/* uses[id]: readers of id that are not matmul operands, plus graph outputs */
static void count_other_uses(const Graph *g, uint32_t *other) {
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    for (int k = 0; k < n->n_in; k++)
      if (n->op != OP_MATMUL) other[n->in[k]]++;
  }
  for (int i = 0; i < g->n_outputs; i++)
    other[g->outputs[i].node]++;
}

/* transpose t (read only by matmuls) becomes transpose(x, q); every reading matmul toggles */
static void rewrite_transpose(Graph *g, NodeId t, const int8_t *q) {
  Node *tn = &g->nodes[t];
  int r = tn->shape.rank;
  memcpy(tn->attr.transpose.perm, q, sizeof tn->attr.transpose.perm);
  int64_t tmp = tn->shape.dim[r - 1];
  tn->shape.dim[r - 1] = tn->shape.dim[r - 2];
  tn->shape.dim[r - 2] = tmp;
  for (NodeId id = t + 1; id < g->n_nodes; id++) {
    Node *m = &g->nodes[id];
    if (m->op != OP_MATMUL) continue;
    for (int k = 0; k < 2; k++)
      if (m->in[k] == t) toggle(m, k);
  }
}

/* Folds the transposed operands of matmul id; true if anything changed. */
static bool fold_operands(Graph *g, NodeId id, const uint32_t *other) {
  bool changed = false;
  for (int k = 0; k < 2; k++) {
    Node *m = &g->nodes[id];
    const Node *t = &g->nodes[m->in[k]];
    if (t->op != OP_TRANSPOSE || t->shape.rank < 2) continue;
    if (m->in[0] == m->in[1]) continue; /* both operands: one flag each, keep it simple */
    int8_t q[IR_MAX_RANK];
    bool identity = strip_swap(t, q);
    int r = t->shape.rank;
    if (identity) {
      m->in[k] = t->in[0];
      toggle(m, k);
      changed = true;
    } else if (other[m->in[k]] == 0 && q[r - 1] == r - 1 &&
               t->attr.transpose.perm[r - 1] != r - 1) {
      rewrite_transpose(g, m->in[k], q);
      changed = true;
    }
  }
  return changed;
}

bool pass_layout(Graph *g, PassCtx *c) {
  uint32_t *other = calloc(g->n_nodes + 1, sizeof *other);
  if (!other) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in layout of '%s'", g->name);
    return false;
  }
  count_other_uses(g, other);
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++)
    if (g->nodes[id].op == OP_MATMUL) changed |= fold_operands(g, id, other);
  free(other);
  if (!layout_fold_bn(g, c, &changed)) return false;
  if (!changed) return true;
  g->workspace_bytes = -1;
  return pass_dce(g, c);
}
