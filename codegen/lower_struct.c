/* codegen/lower_struct.c — C loop nests for WHERE, SLICE, UNSLICE, GATHER, SCATTER_ADD,
 * RANDOM and DROPOUT (the generator of ir/rng.h, emitted once per file as LATHE_RNG_C_SOURCE).
 *
 * Same conventions as lower.c: static shapes become literal bounds and strides, extent-1
 * loops are dropped, each kernel runs in its own name scope (cg_lower_node pushes it).
 * Semantics match ir/struct_ops.c exactly (where: c != 0 picks a, NaN included; unslice and
 * scatter_add zero the output first; gather/scatter_add skip ids outside [0, rows), gather
 * writing zeros there). These ops are FUSE_OPAQUE, so the output never shares an input's
 * buffer (memplan only donates to elementwise outputs).
 */
#include "lower_hooks.h"

#include <stdio.h>
#include <string.h>

#include "ir/rng.h"

/* base + sum of vars[i] * stride[i], skipping NULL vars and zero strides */
static const char *index_sum(Arena *a, int64_t base, int n, const char *const *vars,
                             const int64_t *stride) {
  const char *text = base ? arena_printf(a, "%lld", (long long)base) : NULL;
  for (int i = 0; i < n; i++) {
    if (!vars[i] || stride[i] == 0) continue;
    const char *term =
        stride[i] == 1 ? vars[i] : arena_printf(a, "%s * %lld", vars[i], (long long)stride[i]);
    text = text ? arena_printf(a, "%s + %s", text, term) : term;
  }
  return text ? text : "0";
}

static const char *elem(CgFunc *f, NodeId id, const char *index) {
  const CgValue *v = &f->val[id];
  if (v->literal) return v->expr;
  return arena_printf(f->arena, "%s[%s]", v->expr, index);
}

/* out[0 .. count) = 0 (count at the run-time batch) */
static void zero_fill(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *i = cg_loop_open_count(f, "i", &n->shape, shape_numel(&n->shape));
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, i ? i : "0", cg_literal(f->arena, n->dtype, 0));
  cg_loop_close(f, i);
}

/* strides of `in` broadcast to `out` (0 along broadcast axes) */
static void bcast_strides(const Shape *in, const Shape *out, int64_t *bst) {
  int64_t st[IR_MAX_RANK];
  cg_strides_of(in, st);
  int lead = out->rank - in->rank;
  for (int d = 0; d < out->rank; d++) {
    int di = d - lead;
    bst[d] = (di < 0 || in->dim[di] == 1) ? 0 : st[di];
  }
}

bool lower_where(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *vars[IR_MAX_RANK], *x[3];
  int64_t ost[IR_MAX_RANK], bst[IR_MAX_RANK];
  cg_strides_of(&n->shape, ost);
  cg_nest_open(f, &n->shape, vars);
  for (int k = 0; k < 3; k++) {
    bcast_strides(&graph_node(f->g, n->in[k])->shape, &n->shape, bst);
    x[k] = elem(f, n->in[k], index_sum(f->arena, 0, n->shape.rank, vars, bst));
  }
  /* Both branches are loaded into locals before the select: with the loads inside `?:`,
   * gcc 12 -O3 if-converts them into masked loads and miscompiles the nested loop
   * (tests/grad_leaky_conv.sh); every index is in bounds, so loading both is safe. */
  DType ct = graph_node(f->g, n->in[0])->dtype;
  const char *name[3] = {cg_fresh(f->e, "cond"), cg_fresh(f->e, "pick"), cg_fresh(f->e, "other")};
  for (int k = 0; k < 3; k++)
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(k ? n->dtype : ct), name[k], x[k]);
  cg_line(f->e, "%s[%s] = %s != %s ? %s : %s;", f->val[id].expr,
          index_sum(f->arena, 0, n->shape.rank, vars, ost), name[0], cg_literal(f->arena, ct, 0),
          name[1], name[2]);
  cg_nest_close(f, &n->shape, vars);
  return true;
}

/* one loop nest over the window (the small shape), copying small <-> large */
static void window_copy(CgFunc *f, NodeId id, const Shape *small, const Shape *large, NodeId src,
                        const char *dst, bool to_large) {
  const Node *n = graph_node(f->g, id);
  int64_t sst[IR_MAX_RANK], lst[IR_MAX_RANK], wst[IR_MAX_RANK], base = 0;
  cg_strides_of(small, sst);
  cg_strides_of(large, lst);
  for (int d = 0; d < small->rank; d++) {
    wst[d] = lst[d] * n->attr.slice.step[d];
    base += lst[d] * n->attr.slice.begin[d];
  }
  const char *vars[IR_MAX_RANK];
  cg_nest_open(f, small, vars);
  const char *si = index_sum(f->arena, 0, small->rank, vars, sst);
  const char *li = index_sum(f->arena, base, small->rank, vars, wst);
  cg_line(f->e, "%s[%s] = %s;", dst, to_large ? li : si, elem(f, src, to_large ? si : li));
  cg_nest_close(f, small, vars);
}

bool lower_slice(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  window_copy(f, id, &n->shape, &graph_node(f->g, n->in[0])->shape, n->in[0], f->val[id].expr,
              false);
  return true;
}

bool lower_unslice(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  zero_fill(f, id);
  window_copy(f, id, &graph_node(f->g, n->in[0])->shape, &n->shape, n->in[0], f->val[id].expr,
              true);
  return true;
}

/* for each index i: `r` = ids[i] as int64_t (floats never reach here: infer rejects them) */
static const char *open_rows(CgFunc *f, NodeId ids, const char **i) {
  *i = cg_loop_open(f, "i", shape_numel(&graph_node(f->g, ids)->shape));
  const char *r = cg_fresh(f->e, "r");
  cg_line(f->e, "const int64_t %s = (int64_t)%s;", r, elem(f, ids, *i ? *i : "0"));
  return r;
}

bool lower_gather(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *ts = &graph_node(f->g, n->in[0])->shape;
  int64_t rows = ts->dim[0], width = shape_numel(ts) / rows;
  const char *i, *r = open_rows(f, n->in[1], &i);
  const char *j = cg_loop_open(f, "j", width);
  const char *vars[2] = {i, j}, *rvars[2] = {r, j};
  const int64_t st[2] = {width, 1};
  cg_line(f->e, "%s[%s] = %s >= 0 && %s < %lld ? %s : %s;", f->val[id].expr,
          index_sum(f->arena, 0, 2, vars, st), r, r, (long long)rows,
          elem(f, n->in[0], index_sum(f->arena, 0, 2, rvars, st)),
          cg_literal(f->arena, n->dtype, 0));
  cg_loop_close(f, j);
  cg_loop_close(f, i);
  return true;
}

bool lower_scatter_add(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int64_t rows = n->attr.gather.rows, width = shape_numel(&n->shape) / rows;
  zero_fill(f, id);
  const char *i, *r = open_rows(f, n->in[1], &i);
  cg_open(f->e, "if (%s >= 0 && %s < %lld)", r, r, (long long)rows);
  const char *j = cg_loop_open(f, "j", width);
  const char *vars[2] = {i, j}, *rvars[2] = {r, j};
  const int64_t st[2] = {width, 1};
  cg_line(f->e, "%s[%s] += %s;", f->val[id].expr, index_sum(f->arena, 0, 2, rvars, st),
          elem(f, n->in[0], index_sum(f->arena, 0, 2, vars, st)));
  cg_loop_close(f, j);
  cg_close(f->e);
  cg_loop_close(f, i);
  return true;
}

/* ---- random numbers (bit-identical to ir/struct_ops.c: doubles, then one rounding) ---- */

/* declares the seed and step keys of the node whose inputs [k, k + 1] are (seed, step) */
static void rng_keys(CgFunc *f, const Node *n, int k, const char **seed, const char **step) {
  if (!f->globals->data || !strstr(f->globals->data, "LATHE_RNG_DEFINED"))
    cg_buf_puts(f->globals, LATHE_RNG_C_SOURCE "\n");
  bool normal = n->op == OP_RANDOM && n->attr.random.dist == 1;
  if (normal && !strstr(f->globals->data, "LATHE_RNG_NORMAL_DEFINED"))
    cg_buf_puts(f->globals, LATHE_RNG_NORMAL_C_SOURCE "\n");
  *seed = cg_fresh(f->e, "seed");
  cg_line(f->e, "const uint64_t %s = lathe_rng_key((double)%s);", *seed, elem(f, n->in[k], "0"));
  *step = cg_fresh(f->e, "step");
  cg_line(f->e, "const uint64_t %s = lathe_rng_key((double)%s);", *step,
          elem(f, n->in[k + 1], "0"));
}

bool lower_random(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *seed, *step;
  rng_keys(f, n, 0, &seed, &step);
  const char *i = cg_loop_open(f, "i", shape_numel(&n->shape));
  const char *idx = i ? i : "0";
  cg_line(f->e, "%s[%s] = (%s)lathe_rng_%s(%s, %s, %uu, (uint64_t)%s);", f->val[id].expr, idx,
          dtype_c_name(n->dtype), n->attr.random.dist ? "normal" : "uniform", seed, step,
          (unsigned)n->attr.random.stream, idx);
  cg_loop_close(f, i);
  return true;
}

bool lower_dropout(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *seed, *step;
  rng_keys(f, n, 1, &seed, &step);
  double p = n->attr.random.p;
  const char *i = cg_loop_open(f, "i", shape_numel(&n->shape));
  const char *idx = i ? i : "0";
  cg_line(f->e,
          "%s[%s] = lathe_rng_uniform(%s, %s, %uu, (uint64_t)%s) >= %s ? (%s)((double)%s * %s) "
          ": %s;",
          f->val[id].expr, idx, seed, step, (unsigned)n->attr.random.stream, idx,
          cg_literal(f->arena, DT_F64, p), dtype_c_name(n->dtype), elem(f, n->in[0], idx),
          cg_literal(f->arena, DT_F64, 1.0 / (1.0 - p)), cg_literal(f->arena, n->dtype, 0));
  cg_loop_close(f, i);
  return true;
}
