/* passes/mode.c — resolves the training/inference choices of an entry graph.
 *
 * The model graph holds TRAIN_SELECT(train_value, inference_value) nodes (batch norm: batch
 * statistics vs running statistics) and OUT_STATE_UPDATE outputs for the running statistics.
 * pipeline.c keeps those updates only in the train entries and, before the passes run, calls
 * passes_resolve_mode on every entry: train and grad entries (entry_kind_is_training) take
 * the first input (like a PyTorch module in .train()), forward and evaluate the second
 * (.eval()). Uses are rewired in
 * one sweep in id order (rewrite.h); the selects and the branch not taken become dead.
 */
#include "mode.h"

#include "rewrite.h"

bool passes_resolve_mode(Graph *g, bool train, PassCtx *c) {
  NodeId *repl = rw_identity(g, c, "mode");
  if (!repl) return false;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    rw_inputs(g, repl, id);
    Node *n = &g->nodes[id];
    if (n->op != OP_TRAIN_SELECT) continue;
    n->attr.mode.train = train;
    repl[id] = n->in[train ? 0 : 1];
  }
  rw_outputs(g, repl);
  free(repl);
  return true;
}
