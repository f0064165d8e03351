/* ir/verify.c — ir_verify: checks the invariants stated in ir.h on one graph.
 *
 * Checked: every op is known; arity matches ops.def; every input id is smaller than the
 * node's id (topological order); source indices are in range; each node's shape and dtype
 * equal what its infer hook recomputes; outputs name existing nodes, have a valid kind, and
 * updates/grads match the declaration they target. Reports every violation found (up to the
 * Diag limit), each naming the graph and node, and returns false if there was any.
 */
#include <string.h>

#include "ir_internal.h"

static const SrcLoc NO_LOC = {NULL, 0, 0};

static bool verify_inputs(const Graph *g, uint32_t id, Diag *d) {
  const Node *n = &g->nodes[id];
  const char *name = ir_ops[n->op].name;
  int arity = ir_ops[n->op].arity;
  if (n->n_in > IR_MAX_INPUTS || (arity >= 0 && n->n_in != arity)) {
    IR_ERROR(d, n->loc, "verify: %s: node %%%u (%s) has %d inputs, expected %d", g->name,
             (unsigned)id, name, n->n_in, arity);
    return false;
  }
  for (int k = 0; k < n->n_in; k++) {
    if (n->in[k] >= id) {
      IR_ERROR(d, n->loc, "verify: %s: node %%%u (%s) input %d is %%%u, not an earlier node",
               g->name, (unsigned)id, name, k, (unsigned)n->in[k]);
      return false;
    }
  }
  return true;
}

static bool verify_node(const Graph *g, uint32_t id, Diag *d) {
  const Node *n = &g->nodes[id];
  if ((unsigned)n->op >= OP_COUNT) {
    IR_ERROR(d, n->loc, "verify: %s: node %%%u has unknown op %d", g->name, (unsigned)id,
             (int)n->op);
    return false;
  }
  if (!verify_inputs(g, id, d)) return false;
  Node copy = *n;
  /* infer hooks only read the graph; the const cast lets verify share them */
  if (!ir_infer_node((Graph *)g, &copy, d)) {
    IR_ERROR(d, n->loc, "verify: %s: node %%%u (%s) does not type-check", g->name, (unsigned)id,
             ir_ops[n->op].name);
    return false;
  }
  if (copy.dtype != n->dtype || !shape_equal(&copy.shape, &n->shape)) {
    char have[200], want[200];
    IR_ERROR(d, n->loc, "verify: %s: node %%%u (%s) has type %s%s but its inputs give %s%s",
             g->name, (unsigned)id, ir_ops[n->op].name, dtype_name(n->dtype),
             shape_str(&n->shape, have, sizeof have), dtype_name(copy.dtype),
             shape_str(&copy.shape, want, sizeof want));
    return false;
  }
  return true;
}

/* the declaration an update or grad output targets, or NULL if the kind has none */
static const TensorDecl *output_target(const Graph *g, const GraphOutput *o, bool *bad) {
  const Module *m = g->module;
  *bad = false;
  if (o->kind == OUT_PARAM_UPDATE || o->kind == OUT_GRAD) {
    if (m && o->target >= 0 && o->target < m->n_params) return &m->params[o->target];
    *bad = true;
  } else if (o->kind == OUT_STATE_UPDATE) {
    if (m && o->target >= 0 && o->target < m->n_states) return &m->states[o->target];
    *bad = true;
  }
  return NULL;
}

static bool verify_output(const Graph *g, int i, Diag *d) {
  const GraphOutput *o = &g->outputs[i];
  if ((unsigned)o->kind >= OUT_KIND_COUNT || o->node >= g->n_nodes) {
    IR_ERROR(d, NO_LOC, "verify: %s: output %d '%s' has a bad kind or node", g->name, i,
             o->name ? o->name : "");
    return false;
  }
  const Node *n = &g->nodes[o->node];
  if (o->kind == OUT_LOSS && n->shape.rank != 0) {
    IR_ERROR(d, n->loc, "verify: %s: loss output '%s' is not a scalar", g->name, o->name);
    return false;
  }
  bool bad;
  const TensorDecl *t = output_target(g, o, &bad);
  if (bad) {
    IR_ERROR(d, n->loc, "verify: %s: output '%s' targets missing declaration %d", g->name,
             o->name, (int)o->target);
    return false;
  }
  if (t && (t->dtype != n->dtype || !shape_equal(&t->shape, &n->shape))) {
    char a[200], b[200];
    IR_ERROR(d, n->loc, "verify: %s: output '%s' is %s%s but '%s' is %s%s", g->name, o->name,
             dtype_name(n->dtype), shape_str(&n->shape, a, sizeof a), t->name,
             dtype_name(t->dtype), shape_str(&t->shape, b, sizeof b));
    return false;
  }
  return true;
}

bool ir_verify(const Graph *g, Diag *d) {
  bool ok = true;
  for (uint32_t id = 0; id < g->n_nodes; id++)
    if (!verify_node(g, id, d)) ok = false;
  for (int i = 0; i < g->n_outputs; i++)
    if (!verify_output(g, i, d)) ok = false;
  for (int i = 0; i < g->n_subgraphs; i++) /* scan bodies (their contract: infer_scan) */
    if (!ir_verify(g->subgraphs[i], d)) ok = false;
  return ok;
}
