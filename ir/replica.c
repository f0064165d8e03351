/* ir/replica.c — replica_sum (issue 21, docs/distributed.md): a value summed over the
 * replicas of a data-parallel step.
 *
 * Within one process there is one replica, so the evaluator's value is its input: the
 * reference of a compile without a hook, and of the generated C called with a NULL hook. The
 * operand is a float tensor of static shape (per-channel statistics, counts): the host sizes
 * the exchange from the descriptor (lathe_entry_info.replica_sums), so it cannot depend on the
 * run-time batch.
 */
#include <string.h>

#include "ir_internal.h"

bool infer_replica_sum(Graph *g, Node *n, Diag *d) {
  const Node *a = &g->nodes[n->in[0]];
  char sa[200];
  if (!dtype_is_float(a->dtype) || a->shape.dyn) {
    IR_ERROR(d, n->loc,
             "%s: expected a floating-point tensor of static shape (not the run-time batch), "
             "got %s%s",
             ir_ops[n->op].name, dtype_name(a->dtype), shape_str(&a->shape, sa, sizeof sa));
    return false;
  }
  n->dtype = a->dtype;
  n->shape = a->shape;
  return true;
}

void eval_replica_sum(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  (void)g, (void)n;
  memcpy(out->data, in[0]->data, (size_t)shape_numel(&out->shape) * dtype_size(out->dtype));
}
