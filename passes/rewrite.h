/* passes/rewrite.h — helpers shared by the rewriting passes (private to passes/).
 *
 * The cleanup passes (simplify, cse) replace a node by an earlier one in one sweep in id
 * order: repl[i] is the node that now stands for i (i itself when unchanged). Because every
 * input of i has a smaller id, rewriting i's inputs through repl before looking at i is enough
 * to see the rewritten graph. Replaced nodes stay in the array (dead); dce removes them.
 */
#ifndef LATHE_PASSES_REWRITE_H
#define LATHE_PASSES_REWRITE_H

#include "passes.h"

#include <stdlib.h>

/* repl[i] = i for every node; NULL when out of memory (reported to c->diag) */
static inline NodeId *rw_identity(const Graph *g, PassCtx *c, const char *pass) {
  NodeId *repl = malloc((g->n_nodes + 1) * sizeof *repl);
  if (!repl) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in %s of '%s'", pass, g->name);
    return NULL;
  }
  for (uint32_t i = 0; i < g->n_nodes; i++)
    repl[i] = i;
  return repl;
}

/* points node id's inputs at their replacements */
static inline void rw_inputs(Graph *g, const NodeId *repl, NodeId id) {
  Node *n = &g->nodes[id];
  for (int k = 0; k < n->n_in; k++)
    n->in[k] = repl[n->in[k]];
}

/* points the graph outputs at their replacements; true if any changed */
static inline bool rw_outputs(Graph *g, const NodeId *repl) {
  bool changed = false;
  for (int i = 0; i < g->n_outputs; i++) {
    NodeId r = repl[g->outputs[i].node];
    changed |= r != g->outputs[i].node;
    g->outputs[i].node = r;
  }
  return changed;
}

/* true when node id is a CONST whose every element equals v */
static inline bool rw_is_splat(const Graph *g, NodeId id, double v) {
  const Node *n = &g->nodes[id];
  if (n->op != OP_CONST) return false;
  if (!n->attr.constant.data) return n->attr.constant.value == v;
  int64_t count = shape_numel(&n->shape);
  for (int64_t i = 0; i < count; i++)
    if (n->attr.constant.data[i] != v) return false;
  return true;
}

/* Re-sorts g into topological id order (a stable depth-first post-order: a graph already in
 * order keeps its ids) after `pass` appended nodes that earlier ones read; groups and outputs
 * follow, the memory plan is invalidated. False (reported) on a cycle or out of memory. */
bool rw_resort(Graph *g, PassCtx *c, const char *pass);

#endif
