/* codegen/lower_rows.c — one kernel for a row-wise fusion group (passes/fuse.c): softmax,
 * log-softmax, layer norm, cross-entropy and their backward chains as one loop over rows.
 *
 * The group has a full shape S (rank >= 2, rows of length C along the last axis). Members are
 * "full" (shape S: elementwise ops, one-hot, softmax), "row" values (S with its last axis 1 or
 * dropped: reductions over the last axis and elementwise ops on them) and rank-0 "scalars"
 * (a reduction of a row value over all rows, elementwise ops on scalars). Codegen:
 *
 *   scalar accumulators = init
 *   for each row:
 *     for pass L = 0 .. n_passes-1:
 *       row values available before pass L (reduction results, elementwise on them)
 *       for j in 0..C: the full members pass L needs (recomputed from inputs and row values,
 *                      never stored in between), accumulated into the reductions of pass L;
 *                      in the last pass, the stored full members are written
 *     row values after the last pass; stored row values written; scalar accumulation
 *   scalar members; stored scalars written
 *
 * need[k] is the first pass in which member k's value is known: a full member's from its
 * inputs, a reduction over pass L is known from pass L + 1, a softmax of x runs its max in pass
 * need(x), its sum of exponentials in need(x) + 1 and is known from need(x) + 2. Every full
 * value is written after all loads of its element, and only in the last pass of its row, so
 * an in-place output (passes/memplan.c) never overwrites an element a later load reads.
 */
#include "lower_rows.h"

#include <string.h>

typedef enum { RK_FULL, RK_ROW, RK_SCAL } RowKind;

typedef struct Rows {
  CgFunc *f;
  const NodeId *mem;
  int nm;
  Shape S;           /* the full shape */
  int r;             /* its rank */
  int64_t C;         /* row length */
  RowKind *kind;     /* per member */
  int *need;         /* per member: first pass its value is known (see above) */
  int *pass;         /* reductions and softmax: the pass that accumulates (softmax: max) */
  const char **reg;  /* per member: its local (full members: in the current pass) */
  const char **acc;  /* reductions: accumulator; softmax: running max */
  const char **acc2; /* softmax: sum of exponentials, then log-sum-exp (log_softmax) */
  bool *want;        /* per member: needed in the current pass */
  const char *vars[IR_MAX_RANK]; /* outer row loops, then j */
  int n_passes;
} Rows;

static bool is_reduce(OpKind op) {
  return op == OP_SUM || op == OP_MEAN || op == OP_MAX;
}
static bool is_softmax(OpKind op) {
  return op == OP_SOFTMAX || op == OP_LOG_SOFTMAX;
}

static int member_of(const Rows *w, NodeId id) {
  for (int k = 0; k < w->nm; k++)
    if (w->mem[k] == id) return k;
  return -1;
}

/* The full shape: of the first softmax or one-hot, or the input of a row reduction. */
static const Shape *full_shape(const Graph *g, const NodeId *members, int n) {
  for (int k = 0; k < n; k++) {
    const Node *m = graph_node(g, members[k]);
    if (is_softmax(m->op) || m->op == OP_ONE_HOT) return &m->shape;
    if (is_reduce(m->op) && m->shape.rank > 0) return &graph_node(g, m->in[0])->shape;
  }
  return NULL;
}

bool cg_rows_group(const Graph *g, const NodeId *members, int n_members) {
  const Shape *s = full_shape(g, members, n_members);
  return s && s->rank >= 2;
}

static bool classify(Rows *w) {
  for (int k = 0; k < w->nm; k++) {
    const Shape *s = &graph_node(w->f->g, w->mem[k])->shape;
    if (shape_equal(s, &w->S)) {
      w->kind[k] = RK_FULL;
    } else if (s->rank == 0) {
      w->kind[k] = RK_SCAL;
    } else {
      bool ok = s->rank == w->r - 1 || (s->rank == w->r && s->dim[w->r - 1] == 1);
      for (int d = 0; d < w->r - 1 && ok; d++)
        ok = s->dim[d] == w->S.dim[d];
      if (!ok) return cg_unsupported(w->f, w->mem[k], "row group member of another shape");
      w->kind[k] = RK_ROW;
    }
  }
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(w->f->g, w->mem[k]);
    for (int j = 0; j < n->n_in; j++) {
      int m = member_of(w, n->in[j]);
      const Shape *s = &graph_node(w->f->g, n->in[j])->shape;
      bool ok = m < 0 ? !(w->kind[k] == RK_SCAL && is_reduce(n->op))
                      : w->kind[m] == w->kind[k] || (w->kind[k] == RK_FULL && s->rank == w->r) ||
                            (w->kind[k] == RK_SCAL && is_reduce(n->op)) ||
                            (w->kind[m] == RK_FULL && is_reduce(n->op));
      if (!ok) return cg_unsupported(w->f, w->mem[k], "row group member reads another kind");
    }
  }
  return true;
}

/* need[] and pass[] (see the file comment); n_passes */
static void schedule(Rows *w, const bool *stored) {
  w->n_passes = 1;
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(w->f->g, w->mem[k]);
    int in_need = 0;
    for (int j = 0; j < n->n_in; j++) {
      int m = member_of(w, n->in[j]);
      if (m >= 0 && w->need[m] > in_need) in_need = w->need[m];
    }
    w->pass[k] = -1;
    w->need[k] = in_need;
    if (w->kind[k] == RK_SCAL) continue;
    if (is_softmax(n->op)) {
      w->pass[k] = in_need;
      w->need[k] = in_need + 2;
    } else if (is_reduce(n->op)) {
      w->pass[k] = in_need;
      w->need[k] = in_need + 1;
    }
    int last = w->pass[k] + (is_softmax(n->op) ? 2 : 1);
    if (w->kind[k] == RK_FULL && stored[k] && w->need[k] + 1 > last) last = w->need[k] + 1;
    if (last > w->n_passes) w->n_passes = last;
  }
}

/* element of x for member kind `kind` (of shape `shape`) at the current position */
static const char *operand(Rows *w, NodeId x, const Shape *shape, RowKind kind) {
  int m = member_of(w, x);
  if (m >= 0) return w->reg[m];
  CgFunc *f = w->f;
  const Shape *xs = &graph_node(f->g, x)->shape;
  if (kind == RK_SCAL || shape_numel(xs) == 1) return cg_at(f, x, "0");
  const char *vars[IR_MAX_RANK];
  memcpy(vars, w->vars, sizeof vars);
  if (kind == RK_ROW) vars[w->r - 1] = NULL; /* a row value: its last axis is 1 or absent */
  return cg_at(f, x, cg_broadcast_index(f, xs, kind == RK_ROW ? shape : &w->S, vars));
}

/* index of the current row in a row-shaped value (S with the last axis 1 or dropped) */
static const char *row_index(Rows *w) {
  int64_t st[IR_MAX_RANK];
  Shape rs = w->S;
  rs.dim[w->r - 1] = 1;
  cg_strides_of(&rs, st);
  return cg_index_expr(w->f->arena, w->r - 1, w->vars, st);
}

/* the value of a full member in the current pass */
static const char *full_value(Rows *w, int k) {
  CgFunc *f = w->f;
  const Node *n = graph_node(f->g, w->mem[k]);
  DType t = n->dtype;
  if (n->op == OP_ONE_HOT) {
    const char *j = w->vars[w->r - 1] ? w->vars[w->r - 1] : "0";
    const char *c = cg_at(f, n->in[0], row_index(w));
    return arena_printf(f->arena, "((int64_t)%s == %s ? %s : %s)", c, j, cg_literal(f->arena, t, 1),
                        cg_literal(f->arena, t, 0));
  }
  const char *x = operand(w, n->in[0], &n->shape, RK_FULL);
  if (n->op == OP_LOG_SOFTMAX)
    return arena_printf(f->arena, "(%s - %s - %s)", x, w->acc[k], w->acc2[k]);
  if (n->op == OP_SOFTMAX)
    return arena_printf(f->arena, "(%s / %s)",
                        cg_math_call(f, t, "exp", arena_printf(f->arena, "%s - %s", x, w->acc[k])),
                        w->acc2[k]);
  const char *y = n->n_in > 1 ? operand(w, n->in[1], &n->shape, RK_FULL) : NULL;
  return cg_ew_expr(f, n, x, y);
}

/* marks full member k and the full members it reads (in this pass) as wanted */
static void want_full(Rows *w, int k) {
  if (k < 0 || w->kind[k] != RK_FULL || w->want[k]) return;
  w->want[k] = true;
  const Node *n = graph_node(w->f->g, w->mem[k]);
  for (int j = 0; j < n->n_in; j++)
    want_full(w, member_of(w, n->in[j]));
}

static void emit_accumulate(Rows *w, int k, int L) {
  CgFunc *f = w->f;
  const Node *n = graph_node(f->g, w->mem[k]);
  DType t = n->dtype;
  const char *x = operand(w, n->in[0], &w->S, RK_FULL);
  if (is_softmax(n->op)) {
    if (w->pass[k] == L)
      cg_line(f->e, "if (%s > %s) %s = %s;", x, w->acc[k], w->acc[k], x);
    else
      cg_line(f->e, "%s += %s;", w->acc2[k],
              cg_math_call(f, t, "exp", arena_printf(f->arena, "%s - %s", x, w->acc[k])));
  } else if (n->op == OP_MAX) {
    cg_line(f->e, "if (%s > %s%s) %s = %s;", x, w->acc[k], cg_is_nan(f, t, x), w->acc[k], x);
  } else {
    cg_line(f->e, "%s += %s;", w->acc[k], x);
  }
}

/* whether member k accumulates in pass L (a reduction, a softmax's max or sum) */
static bool accumulates(const Rows *w, int k, const Node *n, int L) {
  if (w->kind[k] == RK_SCAL || w->pass[k] < 0) return false;
  return w->pass[k] == L || (is_softmax(n->op) && w->pass[k] + 1 == L);
}

/* the accumulators of pass L (reductions, a softmax's max or sum); clears want[] */
static void declare_accumulators(Rows *w, int L) {
  CgFunc *f = w->f;
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    DType t = n->dtype;
    w->want[k] = false;
    if (w->kind[k] == RK_SCAL) continue;
    if (w->pass[k] == L) {
      bool mx = n->op == OP_MAX || is_softmax(n->op);
      w->acc[k] = cg_fresh(f->e, is_softmax(n->op) ? "mx" : "acc");
      cg_line(f->e, "%s %s = %s;", dtype_c_name(t), w->acc[k],
              mx ? cg_lowest(f, t) : cg_literal(f->arena, t, 0));
    } else if (is_softmax(n->op) && w->pass[k] + 1 == L) {
      w->acc2[k] = cg_fresh(f->e, "se");
      cg_line(f->e, "%s %s = %s;", dtype_c_name(t), w->acc2[k], cg_literal(f->arena, t, 0));
    }
  }
}

/* One pass along the row: accumulators, the j loop, the reductions' results. */
static bool emit_pass(Rows *w, const bool *stored, int L) {
  CgFunc *f = w->f;
  bool last = L == w->n_passes - 1;
  declare_accumulators(w, L);
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    if (accumulates(w, k, n, L)) want_full(w, member_of(w, n->in[0]));
    if (last && stored[k] && w->kind[k] == RK_FULL) want_full(w, k);
  }
  w->vars[w->r - 1] = cg_loop_open(f, "j", w->C);
  int64_t st[IR_MAX_RANK];
  cg_strides_of(&w->S, st);
  const char *idx = cg_index_expr(f->arena, w->r, w->vars, st);
  for (int k = 0; k < w->nm; k++) {
    if (!w->want[k]) continue;
    const char *e = full_value(w, k);
    if (!e) return cg_unsupported(f, w->mem[k], "no elementwise lowering");
    w->reg[k] = cg_fresh(f->e, arena_printf(f->arena, "v%u", w->mem[k]));
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(graph_node(f->g, w->mem[k])->dtype), w->reg[k],
            e);
  }
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    if (accumulates(w, k, n, L)) emit_accumulate(w, k, L);
  }
  for (int k = 0; k < w->nm && last; k++)
    if (stored[k] && w->kind[k] == RK_FULL)
      cg_line(f->e, "%s[%s] = %s;", f->val[w->mem[k]].expr, idx, w->reg[k]);
  cg_loop_close(f, w->vars[w->r - 1]);
  w->vars[w->r - 1] = NULL;
  return true;
}

/* after pass L: the results of its reductions, the log-sum-exp of its log-softmaxes */
static void finish_pass(Rows *w, int L) {
  CgFunc *f = w->f;
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    DType t = n->dtype;
    if (w->kind[k] == RK_SCAL) continue;
    if (is_reduce(n->op) && w->pass[k] == L) {
      w->reg[k] = w->acc[k];
      if (n->op == OP_MEAN && w->C != 1)
        cg_line(f->e, "%s /= %s;", w->acc[k], cg_literal(f->arena, t, (double)w->C));
    } else if (n->op == OP_LOG_SOFTMAX && w->pass[k] + 1 == L) {
      cg_line(f->e, "%s = %s;", w->acc2[k], cg_math_call(f, t, "log", w->acc2[k]));
    }
  }
}

/* row values (elementwise on row values) known before pass L, in id order */
static bool emit_row_values(Rows *w, int L) {
  CgFunc *f = w->f;
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    if (w->kind[k] != RK_ROW || is_reduce(n->op) || w->need[k] != L) continue;
    const char *x = operand(w, n->in[0], &n->shape, RK_ROW);
    const char *y = n->n_in > 1 ? operand(w, n->in[1], &n->shape, RK_ROW) : NULL;
    const char *e = cg_ew_expr(f, n, x, y);
    if (!e) return cg_unsupported(f, w->mem[k], "no elementwise lowering");
    w->reg[k] = cg_fresh(f->e, arena_printf(f->arena, "v%u", w->mem[k]));
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(n->dtype), w->reg[k], e);
  }
  return true;
}

/* scalar reductions: their accumulators before the rows, one step per row */
static void scalar_accumulators(Rows *w, bool step) {
  CgFunc *f = w->f;
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    if (w->kind[k] != RK_SCAL || !is_reduce(n->op)) continue;
    DType t = n->dtype;
    if (!step) {
      w->acc[k] = cg_fresh(f->e, "total");
      cg_line(f->e, "%s %s = %s;", dtype_c_name(t), w->acc[k],
              n->op == OP_MAX ? cg_lowest(f, t) : cg_literal(f->arena, t, 0));
      continue;
    }
    const char *x = operand(w, n->in[0], &n->shape, RK_SCAL);
    if (n->op == OP_MAX)
      cg_line(f->e, "if (%s > %s%s) %s = %s;", x, w->acc[k], cg_is_nan(f, t, x), w->acc[k], x);
    else
      cg_line(f->e, "%s += %s;", w->acc[k], x);
  }
}

/* after the rows: scalar results and elementwise scalars, in id order, and their stores */
static bool emit_scalars(Rows *w, const bool *stored) {
  CgFunc *f = w->f;
  int64_t rows = shape_numel(&w->S) / (w->C ? w->C : 1);
  bool dyn = cg_is_dyn(f, &w->S); /* the rows are the run-time batch's: a mean divides by them */
  for (int k = 0; k < w->nm; k++) {
    const Node *n = graph_node(f->g, w->mem[k]);
    if (w->kind[k] != RK_SCAL) continue;
    if (is_reduce(n->op)) {
      w->reg[k] = w->acc[k];
      if (n->op == OP_MEAN && dyn)
        cg_line(f->e, "%s /= (%s)(%s);", w->acc[k], dtype_c_name(n->dtype),
                cg_count(f, &w->S, rows));
      else if (n->op == OP_MEAN && rows != 1)
        cg_line(f->e, "%s /= %s;", w->acc[k], cg_literal(f->arena, n->dtype, (double)rows));
      continue;
    }
    const char *x = operand(w, n->in[0], &n->shape, RK_SCAL);
    const char *y = n->n_in > 1 ? operand(w, n->in[1], &n->shape, RK_SCAL) : NULL;
    const char *e = cg_ew_expr(f, n, x, y);
    if (!e) return cg_unsupported(f, w->mem[k], "no elementwise lowering");
    w->reg[k] = cg_fresh(f->e, arena_printf(f->arena, "v%u", w->mem[k]));
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(n->dtype), w->reg[k], e);
  }
  for (int k = 0; k < w->nm; k++)
    if (stored[k] && w->kind[k] == RK_SCAL)
      cg_line(f->e, "%s[0] = %s;", f->val[w->mem[k]].expr, w->reg[k]);
  return true;
}

static bool emit_rows(Rows *w, const bool *stored) {
  CgFunc *f = w->f;
  scalar_accumulators(w, false);
  for (int d = 0; d < w->r - 1; d++) /* the rows: axis 0 runs to the run-time batch */
    w->vars[d] =
        d == 0 ? cg_loop_open_count(f, "i", &w->S, w->S.dim[0]) : cg_loop_open(f, "i", w->S.dim[d]);
  w->vars[w->r - 1] = NULL;
  for (int L = 0; L < w->n_passes; L++) {
    if (!emit_row_values(w, L) || !emit_pass(w, stored, L)) return false;
    finish_pass(w, L);
  }
  if (!emit_row_values(w, w->n_passes)) return false;
  const char *ri = row_index(w);
  for (int k = 0; k < w->nm; k++)
    if (stored[k] && w->kind[k] == RK_ROW)
      cg_line(f->e, "%s[%s] = %s;", f->val[w->mem[k]].expr, ri, w->reg[k]);
  scalar_accumulators(w, true);
  for (int d = w->r - 2; d >= 0; d--)
    cg_loop_close(f, w->vars[d]);
  return emit_scalars(w, stored);
}

bool cg_lower_rows(CgFunc *f, const NodeId *members, int n_members) {
  const Shape *S = full_shape(f->g, members, n_members);
  if (!S || S->rank < 2) return cg_unsupported(f, members[0], "not a row-wise group");
  size_t n = (size_t)n_members;
  Rows w = {.f = f, .mem = members, .nm = n_members, .S = *S, .r = S->rank};
  w.C = S->dim[S->rank - 1];
  w.kind = arena_alloc(f->arena, n * sizeof *w.kind);
  w.need = arena_alloc(f->arena, n * sizeof *w.need);
  w.pass = arena_alloc(f->arena, n * sizeof *w.pass);
  w.reg = arena_alloc(f->arena, n * sizeof *w.reg);
  w.acc = arena_alloc(f->arena, n * sizeof *w.acc);
  w.acc2 = arena_alloc(f->arena, n * sizeof *w.acc2);
  w.want = arena_alloc(f->arena, n * sizeof *w.want);
  bool *stored = arena_alloc(f->arena, n * sizeof *stored);
  if (!w.kind || !w.need || !w.pass || !w.reg || !w.acc || !w.acc2 || !w.want || !stored)
    return cg_unsupported(f, members[0], "out of memory");
  for (int k = 0; k < n_members; k++) {
    const CgValue *v = &f->val[members[k]];
    stored[k] = v->expr && !v->literal;
    w.reg[k] = w.acc[k] = w.acc2[k] = NULL;
  }
  if (!classify(&w)) return false;
  schedule(&w, stored);
  return emit_rows(&w, stored);
}
