/* passes/dce.c — dead code elimination: pass_dce.
 *
 * Requires: a verified graph (inputs of node i have ids < i).
 * Does:     removes every node from which no graph output is reachable, then compacts the
 *           node array so ids stay dense; surviving nodes keep their relative order, so id
 *           order is still a topological order. Inputs and outputs are renumbered.
 * Invalidates: node ids (anything holding a NodeId into g; fusion group ids are renumbered
 *           with them), and the memory plan
 *           (node->offset is reset to -1 and g->workspace_bytes to -1 when nodes move).
 * Sources that nothing uses (an INPUT no output depends on) are removed too, so an entry
 * point's signature lists only what it reads.
 */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

/* Marks live[i] for every node some output depends on. Walks ids downwards: a node's
 * inputs have smaller ids, so one backward sweep sees every consumer before its inputs. */
static void mark_live(const Graph *g, bool *live) {
  for (int i = 0; i < g->n_outputs; i++)
    live[g->outputs[i].node] = true;
  for (uint32_t id = g->n_nodes; id-- > 0;) {
    if (!live[id]) continue;
    const Node *n = &g->nodes[id];
    for (int k = 0; k < n->n_in; k++)
      live[n->in[k]] = true;
  }
}

static bool outputs_valid(const Graph *g, PassCtx *c) {
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].node < g->n_nodes) continue;
    diag_error(c->diag, (SrcLoc){0}, "internal error: output '%s' of '%s' names node %u",
               g->outputs[i].name ? g->outputs[i].name : "?", g->name, g->outputs[i].node);
    return false;
  }
  return true;
}

bool pass_dce(Graph *g, PassCtx *c) {
  if (g->n_nodes == 0) return true;
  bool *live = calloc(g->n_nodes, sizeof *live);
  NodeId *remap = malloc(g->n_nodes * sizeof *remap);
  if (!live || !remap) {
    free(live);
    free(remap);
    diag_error(c->diag, (SrcLoc){0}, "out of memory in dead code elimination of '%s'", g->name);
    return false;
  }
  if (!outputs_valid(g, c)) {
    free(live);
    free(remap);
    return false;
  }
  mark_live(g, live);
  /* compact in place: the destination index never exceeds the source index */
  uint32_t kept = 0;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    remap[id] = IR_NONE;
    if (!live[id]) continue;
    Node n = g->nodes[id];
    for (int k = 0; k < n.n_in; k++)
      n.in[k] = remap[n.in[k]];
    remap[id] = kept;
    g->nodes[kept++] = n;
  }
  bool moved = kept != g->n_nodes;
  g->n_nodes = kept;
  for (int i = 0; i < g->n_outputs; i++)
    g->outputs[i].node = remap[g->outputs[i].node];
  if (moved) {
    for (uint32_t id = 0; id < g->n_nodes; id++) {
      Node *n = &g->nodes[id];
      n->offset = -1;
      /* group ids are node ids: follow the seed, or dissolve a group that lost it */
      if (n->group >= 0) n->group = remap[n->group] == IR_NONE ? -1 : (int32_t)remap[n->group];
    }
    g->workspace_bytes = -1;
  }
  free(live);
  free(remap);
  return true;
}
