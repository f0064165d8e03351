/* codegen/lower_write_at.c — the C of WRITE_AT (issue 22: a KV cache row at a run-time
 * position), the loops of ir/write_at.c:
 *
 *   y = x (skipped when y is x's storage: the state update written in place)
 *   s = index clamped to [0, n - k]
 *   y[o, s + j, i] = v[o, j, i]   over x as [outer, n, inner], v as [outer, k, inner]
 *
 * WRITE_AT is FUSE_OPAQUE, so y never shares a buffer with an input, except when memplan
 * writes a state update straight into the state it reads as x (passes/memplan.c); then the
 * expressions of y and x are the same field and the copy is left out.
 */
#include "lower_hooks.h"

#include <string.h>

static const char *elem(CgFunc *f, NodeId id, const char *index) {
  const CgValue *v = &f->val[id];
  return v->literal ? v->expr : arena_printf(f->arena, "%s[%s]", v->expr, index);
}

/* y[i] = x[i] over every element, unless y is x */
static void copy_x(CgFunc *f, NodeId id, NodeId x) {
  const CgValue *y = &f->val[id], *xv = &f->val[x];
  if (!xv->literal && strcmp(y->expr, xv->expr) == 0) return;
  const char *i = cg_loop_open(f, "i", shape_numel(&graph_node(f->g, id)->shape));
  cg_line(f->e, "%s[%s] = %s;", y->expr, i ? i : "0", elem(f, x, i ? i : "0"));
  cg_loop_close(f, i);
}

bool lower_write_at(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *xs = &n->shape;
  int axis = n->attr.softmax.axis;
  int64_t len = xs->dim[axis], k = graph_node(f->g, n->in[1])->shape.dim[axis];
  int64_t inner = 1, outer = 1;
  for (int i = axis + 1; i < xs->rank; i++)
    inner *= xs->dim[i];
  for (int i = 0; i < axis; i++)
    outer *= xs->dim[i];
  copy_x(f, id, n->in[0]);
  const char *s = cg_fresh(f->e, "at");
  cg_line(f->e, "int64_t %s = (int64_t)%s;", s, elem(f, n->in[2], "0"));
  cg_line(f->e, "if (%s < 0) %s = 0;", s, s);
  cg_line(f->e, "if (%s > %lld) %s = %lld;", s, (long long)(len - k), s, (long long)(len - k));
  const char *o = cg_loop_open(f, "o", outer);
  const char *j = cg_loop_open(f, "j", k * inner);
  const char *jj = j ? j : "0";
  const char *src =
      o ? arena_printf(f->arena, "%s * %lld + %s", o, (long long)(k * inner), jj) : jj;
  const char *dst = arena_printf(f->arena, "(%s%s + %s) * %lld + %s", o ? o : "",
                                 o ? arena_printf(f->arena, " * %lld", (long long)len) : "0", s,
                                 (long long)inner, jj);
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, dst, elem(f, n->in[1], src));
  cg_loop_close(f, j);
  cg_loop_close(f, o);
  return true;
}
