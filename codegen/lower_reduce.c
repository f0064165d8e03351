/* codegen/lower_reduce.c — the reductions SUM, MEAN and MAX over any set of axes (the
 * lower column of ir/ops.def; row-wise groups reduce in codegen/lower_rows.c instead).
 *
 * The output is set to the identity (0, or the lowest value for MAX), then one loop nest over
 * the input accumulates into it; MEAN divides at the end. An integer sum wraps in the
 * element's width like + (docs/language.md), and an integer MEAN is that sum / the count,
 * truncated toward zero. A float sum whose reduced axes
 * include a long contiguous run at the end takes reduce_rows: lane-wise partial sums that
 * vectorize without -ffast-math. With --threads N, a large one shares its outermost loop out:
 * when that dim is kept, each thread writes its own outputs; when it is reduced (a bias
 * gradient's sum over the batch), each thread sums into its own partial outputs, added up in
 * thread order after (deterministic for a given N).
 */
#include "lower_hooks.h"

/* A float sum whose trailing input dims (a contiguous run of `inner` >= REDUCE_ROW_MIN
 * elements) are all reduced: per row, REDUCE_LANES partial sums that the compiler keeps in
 * one vector (each lane is its own sequential sum, so no reassociation is asked for), then
 * added up and into the output. A plain `out[k] += x[...]` chain instead runs at one add per
 * floating-point latency and stays scalar without -ffast-math. Emits nothing and returns
 * false when the shape does not qualify. */
enum { REDUCE_LANES = 16, REDUCE_ROW_MIN = 64, REDUCE_PARTIALS_MAX = 4096 };

/* How reduce_rows shares its outermost loop (over in->dim[0]) out with --threads. */
typedef enum { RED_SERIAL, RED_KEPT, RED_PARTIAL } RedThreads;

static RedThreads red_threads(const CgFunc *f, const Node *n, const Shape *in, int split) {
  int th = f->opt->threads;
  if (th <= 1 || split < 1 || in->dim[0] < th ||
      shape_numel(in) * CG_OMP_ELEMENT_COST < CG_OMP_MIN_FLOPS)
    return RED_SERIAL;
  if (!(n->attr.reduce.axes & 1u)) return RED_KEPT;
  return shape_numel(&n->shape) * th <= REDUCE_PARTIALS_MAX ? RED_PARTIAL : RED_SERIAL;
}

static bool reduce_rows(CgFunc *f, NodeId id, const int64_t *ist, const int64_t *ost) {
  const Node *n = graph_node(f->g, id);
  const Shape *in = &graph_node(f->g, n->in[0])->shape;
  uint32_t axes = n->attr.reduce.axes;
  int split = in->rank;
  int64_t inner = 1;
  while (split > 0 && ((axes >> (split - 1)) & 1u))
    inner *= in->dim[--split];
  bool dyn = cg_is_dyn(f, in); /* the rows run over the batch, never along it */
  if (inner < REDUCE_ROW_MIN || (dyn && split == 0)) return false;
  const char *t = dtype_c_name(n->dtype), *zero = cg_literal(f->arena, n->dtype, 0);
  const char *vars[IR_MAX_RANK] = {0};
  RedThreads par = red_threads(f, n, in, split);
  if (dyn && par == RED_PARTIAL) par = RED_SERIAL; /* its thread split is over the bound */
  int th = f->opt->threads;
  int64_t outs = shape_numel(&n->shape);
  const char *dst = f->val[id].expr, *thread = NULL, *tp = NULL;
  if (par == RED_PARTIAL) { /* per thread partial outputs */
    tp = cg_fresh(f->e, "tpart");
    cg_line(f->e, "{ /* each thread's partial sums, added up in thread order after */");
    cg_indent(f->e);
    cg_line(f->e, "%s %s[%d][%lld] = {{%s}};", t, tp, th, (long long)outs, zero);
    cg_line(f->e, "LATHE_OMP_FOR");
    thread = cg_loop_open(f, "thread", th);
    vars[0] = cg_fresh(f->e, "i");
    cg_scope_push(f->e);
    cg_open(f->e, "for (int64_t %s = %s * %lld / %d; %s < (%s + 1) * %lld / %d; %s++)", vars[0],
            thread, (long long)in->dim[0], th, vars[0], thread, (long long)in->dim[0], th, vars[0]);
    dst = arena_printf(f->arena, "%s[%s]", tp, thread);
  } else if (split > 0) {
    if (par == RED_KEPT) cg_line(f->e, "LATHE_OMP_FOR");
    vars[0] = cg_loop_open_count(f, "i", in, in->dim[0]);
  }
  for (int d = 1; d < split; d++)
    vars[d] = cg_loop_open(f, "i", in->dim[d]);
  const char *row = cg_index_expr(f->arena, split, vars, ist);
  const char *part = cg_fresh(f->e, "part"), *j = cg_fresh(f->e, "j"), *l = cg_fresh(f->e, "l");
  const char *sum = cg_fresh(f->e, "sum");
  long long full = (long long)(inner / REDUCE_LANES * REDUCE_LANES);
  cg_line(f->e, "%s %s[%d] = {%s};", t, part, REDUCE_LANES, zero);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s += %d)", j, j, full, j, REDUCE_LANES);
  cg_line(f->e, "for (int %s = 0; %s < %d; %s++) %s[%s] += %s;", l, l, REDUCE_LANES, l, part, l,
          cg_at(f, n->in[0], arena_printf(f->arena, "%s + %s + %s", row, j, l)));
  cg_close(f->e);
  cg_line(f->e, "%s %s = %s;", t, sum, zero);
  cg_line(f->e, "for (int %s = 0; %s < %d; %s++) %s += %s[%s];", l, l, REDUCE_LANES, l, sum, part,
          l);
  if (full < inner) /* the last elements of the row, past the whole lane blocks */
    cg_line(f->e, "for (int64_t %s = %lld; %s < %lld; %s++) %s += %s;", j, full, j,
            (long long)inner, j, sum,
            cg_at(f, n->in[0], arena_printf(f->arena, "%s + %s", row, j)));
  cg_line(f->e, "%s[%s] += %s;", dst, cg_index_expr(f->arena, split, vars, ost), sum);
  for (int d = split - 1; d >= 0; d--)
    cg_loop_close(f, vars[d]);
  if (par == RED_PARTIAL) {
    cg_loop_close(f, thread);
    const char *tv = cg_loop_open(f, "thread", th), *k = cg_fresh(f->e, "k");
    cg_line(f->e, "for (int64_t %s = 0; %s < %lld; %s++) %s[%s] += %s[%s][%s];", k, k,
            (long long)outs, k, f->val[id].expr, k, tp, tv, k);
    cg_loop_close(f, tv);
    cg_close(f->e);
  }
  return true;
}

/* out[kept dims] = identity; then one nest over the input accumulating (float sums of
 * contiguous rows: reduce_rows); MEAN divides. */
bool lower_reduce(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *in = &graph_node(f->g, n->in[0])->shape;
  uint32_t axes = n->attr.reduce.axes;
  int64_t ist[IR_MAX_RANK], ost[IR_MAX_RANK], count = 1, acc = 1;
  cg_strides_of(in, ist);
  for (int d = in->rank - 1; d >= 0; d--) { /* output strides of kept input dims */
    bool reduced = (axes >> d) & 1u;
    ost[d] = reduced ? 0 : acc;
    if (reduced)
      count *= in->dim[d];
    else
      acc *= in->dim[d];
  }
  const char *out = f->val[id].expr;
  DType t = n->dtype;
  const char *init = n->op == OP_MAX ? cg_lowest(f, t) : cg_literal(f->arena, t, 0);
  const char *i = cg_loop_open_count(f, "i", &n->shape, shape_numel(&n->shape));
  cg_line(f->e, "%s[%s] = %s;", out, i ? i : "0", init);
  cg_loop_close(f, i);
  if (n->op == OP_MAX || !dtype_is_float(t) || !reduce_rows(f, id, ist, ost)) {
    const char *vars[IR_MAX_RANK];
    cg_nest_open(f, in, vars);
    const char *x = cg_at(f, n->in[0], cg_index_expr(f->arena, in->rank, vars, ist));
    const char *o =
        arena_printf(f->arena, "%s[%s]", out, cg_index_expr(f->arena, in->rank, vars, ost));
    if (n->op == OP_MAX)
      cg_line(f->e, "if (%s > %s%s) %s = %s;", x, o, cg_is_nan(f, t, x), o, x);
    else if (dtype_is_float(t))
      cg_line(f->e, "%s += %s;", o, x);
    else /* an integer sum wraps, as + does */
      cg_line(f->e, "%s = %s;", o, cg_int_wrap(f, t, o, "+", x));
    cg_nest_close(f, in, vars);
  }
  bool batch = (axes & 1u) && cg_is_dyn(f, in); /* a mean over the run-time batch */
  if (n->op == OP_MEAN && (count != 1 || batch)) {
    const char *by =
        batch ? arena_printf(f->arena, "(%s)(%s)", dtype_c_name(t), cg_count(f, in, count))
              : cg_literal(f->arena, t, (double)count);
    if (!dtype_is_float(t)) /* truncated toward zero; the count may not fit in t */
      by = batch ? arena_printf(f->arena, "(int64_t)(%s)", cg_count(f, in, count))
                 : arena_printf(f->arena, "(int64_t)%lld", (long long)count);
    i = cg_loop_open_count(f, "i", &n->shape, shape_numel(&n->shape));
    const char *o = arena_printf(f->arena, "%s[%s]", out, i ? i : "0");
    if (dtype_is_float(t))
      cg_line(f->e, "%s /= %s;", o, by);
    else
      cg_line(f->e, "%s = (%s)((int64_t)%s / %s);", o, dtype_c_name(t), o, by);
    cg_loop_close(f, i);
  }
  return true;
}
