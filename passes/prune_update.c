/* passes/prune_update.c — a pruned param stays pruned after the optimizer update
 * (pass_prune_update; issue 20, docs/compression.md "In the IR").
 *
 * Every update of a param p that has a mask state "<p>.mask" (a `prune` statement of any
 * step) becomes update * mask: the mask this step chose (the value pass_prune_train writes to
 * the state) in a train entry that prunes p, else the state as it stands (another step's
 * train entry, the apply entry of a split step, whose grad entry chose the mask). So momentum
 * or weight decay cannot revive a pruned weight, and a weight pruned on this step is zero
 * from now on: the params themselves hold the zeros, which the forward entry, `lathe
 * compile --bake` and the sparsify pass then see.
 * Runs after autodiff on train and apply entries. Requires: the optimizer's OUT_PARAM_UPDATE
 * outputs. Preserves: ids (the products are appended after everything they read).
 */
#include "passes.h"

#include "ir/build.h"

#include <stdio.h>

/* the mask of p this entry writes to state `index`, else a read of the state */
static NodeId mask_node(Graph *g, int32_t index, SrcLoc loc) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].kind == OUT_STATE_UPDATE && g->outputs[i].target == index)
      return g->outputs[i].node;
  return graph_add_source(g, OP_STATE, index, loc);
}

bool pass_prune_update(Graph *g, PassCtx *c) {
  if (g->kind != ENTRY_TRAIN && g->kind != ENTRY_APPLY) return true;
  const Module *m = g->module;
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_PARAM_UPDATE) continue;
    const TensorDecl *p = &m->params[g->outputs[i].target];
    char name[512];
    snprintf(name, sizeof name, "%s.mask", p->name);
    int32_t index = module_find_state(m, name);
    if (index < 0) continue;
    Builder b = build_init(g, c->diag, m->states[index].loc);
    NodeId masked = build_binary(&b, OP_MUL, g->outputs[i].node, mask_node(g, index, b.loc));
    if (b.failed) return false;
    g->outputs[i].node = masked;
  }
  return true;
}
