/* codegen/lower_replica.c — REPLICA_SUM (issue 21, docs/distributed.md): the one place the
 * generated C hands a value to the caller's data-parallel transport.
 *
 * The node's buffer gets a copy of the operand, then the caller's hook sums it over the
 * replicas in place: `hooks->sum_f32(hooks->ctx, buf, count, cotangent)` (sum_f64 for f64).
 * `hooks` is the entry's `const lathe_grad_hooks *` argument (c_backend.c plans it for every
 * entry with a replica_sum); NULL, or a NULL function, leaves the copy: one replica. The calls
 * happen in node order, which is the kernel order (the op is never fused), the order the
 * descriptor lists them in (lathe_entry_info.replica_sums).
 */
#include "lower_hooks.h"

bool lower_replica_sum(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int64_t count = shape_numel(&n->shape);
  if (n->shape.dyn) return cg_dyn_unsupported(f, id, "replica_sum");
  const char *i = cg_loop_open(f, "i", count);
  const char *idx = i ? i : "0";
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, idx, cg_at(f, n->in[0], idx));
  cg_loop_close(f, i);
  const char *fn = n->dtype == DT_F64 ? "sum_f64" : "sum_f32";
  cg_line(f->e, "if (hooks && hooks->%s) hooks->%s(hooks->ctx, %s, %lld, %d);", fn, fn,
          f->val[id].expr, (long long)count, n->attr.replica.cotangent ? 1 : 0);
  return true;
}
