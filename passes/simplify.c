/* passes/simplify.c — algebraic simplification: pass_simplify.
 *
 * Requires: a verified graph.
 * Does:     one sweep in id order (see rewrite.h) applying local identities, each only when
 *           the replacement has exactly the node's dtype and shape (so `x + zeros[64, 10]`
 *           with x: [10] is kept — it broadcasts):
 *             x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1        -> x
 *             x * 0, 0 * x                                    -> 0   (integer x only: a float
 *                                                                     x may be inf or NaN)
 *             neg(neg(x)), cast(x) to x's dtype               -> x
 *             broadcast(x) to x's shape, reshape(x) to x's shape -> x
 *             reshape(reshape(x))                             -> reshape(x)
 *             transpose(transpose(x))                         -> transpose(x) with the
 *                                                                composed permutation, or x
 *                                                                when that is the identity
 *           Graph outputs follow their replacements.
 * Invalidates: leaves replaced nodes dead (run dce after) and the memory plan.
 */
#include "rewrite.h"

#include <string.h>

static bool same_type(const Graph *g, const Node *n, NodeId x) {
  const Node *in = &g->nodes[x];
  return in->dtype == n->dtype && shape_equal(&in->shape, &n->shape);
}

/* x op c where c is an identity splat: the other operand, or IR_NONE */
static NodeId identity_operand(const Graph *g, const Node *n) {
  NodeId a = n->in[0], b = n->in[1];
  switch (n->op) {
  case OP_ADD:
    if (rw_is_splat(g, b, 0) && same_type(g, n, a)) return a;
    if (rw_is_splat(g, a, 0) && same_type(g, n, b)) return b;
    return IR_NONE;
  case OP_SUB:
    return rw_is_splat(g, b, 0) && same_type(g, n, a) ? a : IR_NONE;
  case OP_MUL:
    if (rw_is_splat(g, b, 1) && same_type(g, n, a)) return a;
    if (rw_is_splat(g, a, 1) && same_type(g, n, b)) return b;
    return IR_NONE;
  case OP_DIV:
    return rw_is_splat(g, b, 1) && same_type(g, n, a) ? a : IR_NONE;
  default:
    return IR_NONE;
  }
}

/* integer x * 0 -> a zero splat of the product's type, made by rewriting n in place */
static bool mul_by_zero(Graph *g, NodeId id) {
  Node *n = &g->nodes[id];
  if (n->op != OP_MUL || dtype_is_float(n->dtype)) return false;
  if (!rw_is_splat(g, n->in[0], 0) && !rw_is_splat(g, n->in[1], 0)) return false;
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.constant.dtype = n->dtype;
  a.constant.shape = n->shape;
  n->op = OP_CONST;
  n->n_in = 0;
  for (int k = 0; k < IR_MAX_INPUTS; k++)
    n->in[k] = IR_NONE;
  n->attr = a;
  return true;
}

/* transpose(transpose(x)): compose in place; x when the composition is the identity */
static NodeId fold_transposes(Graph *g, NodeId id) {
  Node *n = &g->nodes[id];
  const Node *in = &g->nodes[n->in[0]];
  if (in->op != OP_TRANSPOSE) return IR_NONE;
  int8_t perm[IR_MAX_RANK];
  bool identity = true;
  for (int d = 0; d < n->shape.rank; d++) {
    perm[d] = in->attr.transpose.perm[n->attr.transpose.perm[d]];
    identity &= perm[d] == d;
  }
  NodeId x = in->in[0];
  if (identity && same_type(g, n, x)) return x;
  memcpy(n->attr.transpose.perm, perm, sizeof perm);
  n->in[0] = x;
  return id;
}

/* The node that replaces id (id itself when it was only rewritten in place), or IR_NONE. */
static NodeId simplify_node(Graph *g, NodeId id) {
  Node *n = &g->nodes[id];
  switch (n->op) {
  case OP_ADD:
  case OP_SUB:
  case OP_MUL:
  case OP_DIV:
    if (mul_by_zero(g, id)) return id;
    return identity_operand(g, n);
  case OP_NEG: {
    const Node *in = &g->nodes[n->in[0]];
    return in->op == OP_NEG && same_type(g, n, in->in[0]) ? in->in[0] : IR_NONE;
  }
  case OP_CAST:
  case OP_BROADCAST:
    return same_type(g, n, n->in[0]) ? n->in[0] : IR_NONE;
  case OP_RESHAPE:
    if (same_type(g, n, n->in[0])) return n->in[0];
    if (g->nodes[n->in[0]].op != OP_RESHAPE) return IR_NONE;
    n->in[0] = g->nodes[n->in[0]].in[0];
    return same_type(g, n, n->in[0]) ? n->in[0] : id;
  case OP_TRANSPOSE:
    return fold_transposes(g, id);
  default:
    return IR_NONE;
  }
}

bool pass_simplify(Graph *g, PassCtx *c) {
  NodeId *repl = rw_identity(g, c, "simplification");
  if (!repl) return false;
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    rw_inputs(g, repl, id);
    NodeId r = simplify_node(g, id);
    if (r == IR_NONE) continue;
    changed = true;
    repl[id] = r;
  }
  changed |= rw_outputs(g, repl);
  if (changed) g->workspace_bytes = -1;
  free(repl);
  return true;
}
