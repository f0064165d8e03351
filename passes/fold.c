/* passes/fold.c — constant folding: pass_fold.
 *
 * Requires: a verified graph.
 * Does:     every computed node whose inputs are all CONST is evaluated once, at compile time,
 *           by the reference evaluator (ir_eval on a two-level copy: the constant inputs and
 *           the node) and turned into a CONST in place. Because nodes are visited in id order,
 *           whole constant-only subgraphs fold bottom-up. A result whose elements are all equal
 *           becomes a splat constant (no data); otherwise the data is kept only up to
 *           FOLD_MAX_TABLE elements, so folding never bloats the generated file. Nodes larger
 *           than FOLD_MAX_EVAL elements are not evaluated at all.
 * Invalidates: nothing structural (ids stay); the folded nodes' former inputs may become
 *           dead (run dce after), and the memory plan.
 * The folded values are exactly the evaluator's (the oracle), rounded to the node's dtype.
 */
#include "passes.h"

#include <string.h>

enum { FOLD_MAX_EVAL = 1 << 16, FOLD_MAX_TABLE = 4096 };

static bool foldable(const Graph *g, const Node *n) {
  if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE || n->op == OP_CONST ||
      n->op == OP_REPLICA_SUM) /* its value is the replicas', not the evaluator's */
    return false;
  if (shape_numel(&n->shape) > FOLD_MAX_EVAL) return false;
  for (int k = 0; k < n->n_in; k++) {
    const Node *x = &g->nodes[n->in[k]];
    if (x->op != OP_CONST) return false;
    /* over a dynamic batch, only ops without a cross-element dependency fold: a reduction's
     * value depends on the run-time extent */
    if (x->shape.dyn && ir_ops[n->op].fusion != FUSE_ELEMWISE &&
        ir_ops[n->op].fusion != FUSE_INJECTIVE)
      return false;
  }
  return true;
}

/* Evaluates node id of g (all inputs CONST) into *out through a scratch graph. */
static bool fold_eval(const Graph *g, NodeId id, Tensor *out, Diag *d) {
  const Node *n = &g->nodes[id];
  Graph *t = graph_new(g->module, "fold");
  NodeId in[IR_MAX_INPUTS];
  bool ok = true;
  for (int k = 0; k < n->n_in && ok; k++) {
    const Node *c = &g->nodes[n->in[k]];
    in[k] = graph_add(t, OP_CONST, NULL, 0, &c->attr, c->loc, d);
    ok = in[k] != IR_NONE;
  }
  NodeId r = ok ? graph_add(t, n->op, in, n->n_in, &n->attr, n->loc, d) : IR_NONE;
  if (r != IR_NONE) {
    graph_add_output(t, "folded", r, OUT_VALUE, -1);
    ok = ir_eval(t, NULL, NULL, NULL, out, NULL, d);
  } else {
    ok = false;
  }
  graph_free(t);
  return ok;
}

/* Rewrites node id into a CONST holding the value t (splat when every element is equal). */
static bool fold_replace(Graph *g, NodeId id, const Tensor *t) {
  Node *n = &g->nodes[id];
  int64_t count = shape_numel(&n->shape);
  bool splat = true;
  double first = count > 0 ? tensor_get(t, 0) : 0.0;
  for (int64_t i = 1; i < count && splat; i++) {
    double v = tensor_get(t, i);
    splat = v == first || (v != v && first != first);
  }
  if (!splat && (count > FOLD_MAX_TABLE || n->shape.dyn)) return false;
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.constant.value = first;
  a.constant.dtype = n->dtype;
  a.constant.shape = n->shape;
  if (!splat) {
    double *data = arena_alloc(&g->arena, (size_t)count * sizeof *data);
    for (int64_t i = 0; i < count; i++)
      data[i] = tensor_get(t, i);
    a.constant.data = data;
  }
  n->op = OP_CONST;
  n->n_in = 0;
  for (int k = 0; k < IR_MAX_INPUTS; k++)
    n->in[k] = IR_NONE;
  n->attr = a;
  n->group = -1;
  return true;
}

bool pass_fold(Graph *g, PassCtx *c) {
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    if (!foldable(g, &g->nodes[id])) continue;
    Diag quiet; /* a node the evaluator cannot fold simply stays */
    diag_init(&quiet);
    Tensor out;
    memset(&out, 0, sizeof out);
    if (fold_eval(g, id, &out, &quiet)) {
      changed |= fold_replace(g, id, &out);
      tensor_free(&out);
    }
    diag_fini(&quiet);
  }
  if (changed) g->workspace_bytes = -1;
  (void)c;
  return true;
}
