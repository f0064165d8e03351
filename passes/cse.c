/* passes/cse.c — common subexpression elimination: pass_cse.
 *
 * Requires: a verified graph.
 * Does:     hash-consing in one sweep in id order (see rewrite.h): a node with the same op,
 *           dtype, shape, (already rewritten) inputs and attributes as an earlier node is
 *           replaced by it. Every op is pure, so this is always sound; sources are equal when
 *           they name the same table entry, constants when their values are equal. Graph
 *           outputs follow their replacements.
 * Invalidates: leaves replaced nodes dead (run dce after) and the memory plan.
 * Attributes are compared and hashed by their kind (the attr column of ir/ops.def, ir/attr.c).
 */
#include "rewrite.h"

#include "ir/attr.h"

static bool node_equal(const Node *a, const Node *b) {
  if (a->op != b->op || a->dtype != b->dtype || a->n_in != b->n_in) return false;
  if (!shape_equal(&a->shape, &b->shape)) return false;
  for (int k = 0; k < a->n_in; k++)
    if (a->in[k] != b->in[k]) return false;
  return ir_attr_equal(a, b);
}

static uint64_t node_hash(const Node *n) {
  uint64_t h = 1469598103934665603ull;
  uint64_t parts[4 + IR_MAX_INPUTS + IR_MAX_RANK];
  int np = 0;
  parts[np++] = (uint64_t)n->op;
  parts[np++] = (uint64_t)n->dtype;
  parts[np++] = (uint64_t)n->n_in;
  for (int k = 0; k < n->n_in; k++)
    parts[np++] = n->in[k];
  for (int d = 0; d < n->shape.rank; d++)
    parts[np++] = (uint64_t)n->shape.dim[d];
  parts[np++] = ir_attr_hash(n);
  for (int i = 0; i < np; i++)
    h = (h ^ parts[i]) * 1099511628211ull;
  return h;
}

bool pass_cse(Graph *g, PassCtx *c) {
  NodeId *repl = rw_identity(g, c, "common subexpression elimination");
  uint32_t cap = 16;
  while (cap < 2 * g->n_nodes)
    cap *= 2;
  NodeId *table = malloc(cap * sizeof *table);
  if (!repl || !table) {
    free(repl);
    free(table);
    if (repl) diag_error(c->diag, (SrcLoc){0}, "out of memory in CSE of '%s'", g->name);
    return false;
  }
  for (uint32_t i = 0; i < cap; i++)
    table[i] = IR_NONE;
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    rw_inputs(g, repl, id);
    const Node *n = &g->nodes[id];
    uint32_t slot = (uint32_t)(node_hash(n) & (cap - 1));
    while (table[slot] != IR_NONE && !node_equal(&g->nodes[table[slot]], n))
      slot = (slot + 1) & (cap - 1);
    if (table[slot] == IR_NONE) {
      table[slot] = id;
    } else {
      repl[id] = table[slot];
      changed = true;
    }
  }
  changed |= rw_outputs(g, repl);
  if (changed) g->workspace_bytes = -1;
  free(repl);
  free(table);
  return true;
}
