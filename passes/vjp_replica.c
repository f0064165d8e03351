/* passes/vjp_replica.c — the VJP of REPLICA_SUM (issue 21, docs/distributed.md).
 *
 * Same contract as passes/vjp.c. y = sum over replicas r of x_r, every replica receiving y, is
 * linear; the loss being the sum over replicas of their losses, the cotangent of x_r is the
 * sum over replicas of their cotangents of y: replica_sum again, marked `cotangent` so that a
 * host that weights its ranks by their rows (a partial global batch) can weight these sums too
 * (runtime/dist.c). With one replica both are the identity, which the gradient checks see.
 */
#include <string.h>

#include "autodiff_internal.h"

bool vjp_replica_sum(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  (void)id;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.replica.cotangent = true;
  ad_accumulate(a, n->in[0], build_node(&a->b, OP_REPLICA_SUM, &gy, 1, &at));
  return true;
}
