/* codegen/lower_topk.c — the C of TOPK (issue 22): per row of the last axis, k scans of the
 * row, each picking the best element ranked after the previous pick (value, then index), with
 * the comparisons of ir/topk.c in the input's own type, so the indices equal the evaluator's.
 * O(k * L) per row and no scratch memory: meant for the k of top-k sampling and ranking, where
 * k is small beside L. Rows are independent (an OpenMP loop when large enough).
 */
#include "lower_hooks.h"

bool lower_topk(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id), *x = graph_node(f->g, n->in[0]);
  int64_t len = x->shape.dim[x->shape.rank - 1], k = n->attr.topk.k;
  int64_t rows = shape_numel(&x->shape) / len;
  const char *t = dtype_c_name(x->dtype), *better = n->attr.topk.smallest ? "<" : ">";
  const char *after = n->attr.topk.smallest ? ">" : "<";
  cg_omp_for(f, rows * k * len);
  const char *r = cg_loop_open(f, "r", rows);
  const char *row = r ? arena_printf(f->arena, "%s * %lld", r, (long long)len) : "0";
  const char *pi = cg_fresh(f->e, "pi"), *pv = cg_fresh(f->e, "pv");
  cg_line(f->e, "int64_t %s = -1;", pi);
  cg_line(f->e, "%s %s = 0;", t, pv);
  const char *p = cg_loop_open(f, "t", k);
  const char *bi = cg_fresh(f->e, "bi"), *bv = cg_fresh(f->e, "bv");
  cg_line(f->e, "int64_t %s = -1;", bi);
  cg_line(f->e, "%s %s = 0;", t, bv);
  const char *j = cg_fresh(f->e, "j"), *v = cg_fresh(f->e, "v"); /* a loop even at L = 1 */
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", j, j, (long long)len, j);
  cg_line(f->e, "const %s %s = %s;", t, v,
          cg_at(f, n->in[0], arena_printf(f->arena, "%s + %s", row, j)));
  cg_line(f->e, "if (%s >= 0 && !(%s %s %s || (%s == %s && %s > %s))) continue;", pi, v, after, pv,
          v, pv, j, pi);
  cg_open(f->e, "if (%s < 0 || %s %s %s)", bi, v, better, bv);
  cg_line(f->e, "%s = %s;", bi, j);
  cg_line(f->e, "%s = %s;", bv, v);
  cg_close(f->e);
  cg_close(f->e);
  const char *o = r ? arena_printf(f->arena, "%s * %lld", r, (long long)k) : "0";
  cg_line(f->e, "%s[%s%s%s] = (int32_t)%s;", f->val[id].expr, o, p ? " + " : "", p ? p : "", bi);
  cg_open(f->e, "if (%s >= 0)", bi);
  cg_line(f->e, "%s = %s;", pv, bv);
  cg_close(f->e);
  cg_line(f->e, "%s = %s;", pi, bi);
  cg_loop_close(f, p);
  cg_loop_close(f, r);
  return true;
}
