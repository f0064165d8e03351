/* passes/resort.c — rw_resort (rewrite.h): restores the IR's topological id order after a
 * pass appended nodes that earlier nodes now read (hoist, layout).
 *
 * Invariant kept: every input of a node has a smaller id; groups, graph outputs and the
 * memory plan (invalidated: workspace_bytes = -1, offsets -1) follow the new ids.
 */
#include "rewrite.h"

#include <string.h>

/* pos[id] = new index: a depth-first post-order visiting roots and inputs in id order, so a
 * graph already in order maps to itself. False on a cycle (an internal error). */
static bool sort_order(const Graph *g, NodeId *pos, NodeId *stack, uint8_t *cursor) {
  uint32_t next = 0;
  for (NodeId r = 0; r < g->n_nodes; r++) {
    if (pos[r] != IR_NONE) continue;
    uint32_t sp = 0;
    stack[sp++] = r;
    cursor[r] = 1;
    while (sp > 0) {
      NodeId top = stack[sp - 1];
      const Node *n = graph_node(g, top);
      if (cursor[top] - 1 < n->n_in) {
        NodeId in = n->in[cursor[top]++ - 1];
        if (pos[in] != IR_NONE) continue;
        if (cursor[in] != 0) return false;
        cursor[in] = 1;
        stack[sp++] = in;
      } else {
        pos[top] = next++;
        sp--;
      }
    }
  }
  return true;
}

bool rw_resort(Graph *g, PassCtx *c, const char *pass) {
  uint32_t n = g->n_nodes;
  NodeId *pos = malloc(sizeof *pos * (n + 1)), *stack = malloc(sizeof *stack * (n + 1));
  uint8_t *cursor = calloc(n + 1, 1);
  Node *nodes = malloc(sizeof *nodes * (n + 1));
  bool ok = pos && stack && cursor && nodes;
  for (uint32_t i = 0; ok && i < n; i++) pos[i] = IR_NONE;
  ok = ok && sort_order(g, pos, stack, cursor);
  for (uint32_t i = 0; ok && i < n; i++) {
    Node nd = g->nodes[i];
    for (int k = 0; k < nd.n_in; k++) nd.in[k] = pos[nd.in[k]];
    if (nd.group >= 0) nd.group = (int32_t)pos[nd.group];
    nd.offset = -1;
    nodes[pos[i]] = nd;
  }
  if (ok) {
    memcpy(g->nodes, nodes, sizeof *nodes * n);
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i].node = pos[g->outputs[i].node];
    g->workspace_bytes = -1;
  } else {
    diag_error(c->diag, (SrcLoc){0}, "internal error: %s could not re-sort '%s'", pass,
               g->name);
  }
  free(pos);
  free(stack);
  free(cursor);
  free(nodes);
  return ok;
}

