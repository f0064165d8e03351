/* passes/vjp_math.c — VJP rules of the issue-22 elementwise math ops: SIN and COS.
 *
 * Same contract as passes/vjp.c: a rule receives a copy of the forward node, its id and the
 * output cotangent gy, and hands its contribution to ad_accumulate. The other issue-22
 * builtins (silu, logsumexp, min, var/std, argmax/argmin, cumsum, broadcast_to) are built
 * from existing ops by the frontend (frontend/elab_math.c), so their gradients come from
 * those ops' rules.
 */
#include "autodiff_internal.h"

/* y = sin(x): dx = gy * cos(x) */
bool vjp_sin(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0];
  ad_accumulate(a, x, build_binary(&a->b, OP_MUL, gy, build_unary(&a->b, OP_COS, x)));
  return true;
}

/* y = cos(x): dx = -gy * sin(x) */
bool vjp_cos(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0];
  NodeId d = build_binary(&a->b, OP_MUL, gy, build_unary(&a->b, OP_SIN, x));
  ad_accumulate(a, x, build_unary(&a->b, OP_NEG, d));
  return true;
}
