/* codegen/sparse.c — a matmul over the nonzeros of a baked, mostly-zero B (matmul.sparse_b,
 * an IrSparseKernel decided by passes/sparsify.c; docs/compression.md "Sparse compilation").
 *
 * B [K, N] is written compressed at compile time, in static tables: its nonzeros' values and
 * indices (the narrowest unsigned type that holds the indexed extent) and where each run
 * starts. The dense table of B is never written (cg_gemm_packs_operand says it is read only
 * from tables of its own). The kernels, plain C99, the same code for every target:
 *   DOT       by output column, 8 columns at a time (lathe_sparse_dot8, the kernel library's
 *             codegen/kernels/sparse.c, which describes the layout): the columns sorted by
 *             their nonzero count, in groups of 8 padded to the group's longest, each step
 *             one vector of 8 gathered elements of A times 8 values; the rows' offsets two
 *             to a uint64_t. A row of A holding an infinity or a NaN then adds the dense
 *             product's 0 * inf terms (a cold path, lathe_sparse_dot8_nonfinite);
 *   UNROLLED  each output column one expression of literals (value * A[i][k]): no tables, no
 *             index loads, for weights of few nonzeros;
 *   PANEL     rows of A in panels of SPARSE_PANEL_ROWS, transposed into the scratch, then
 *             per output column each nonzero B[k][j] adds B[k][j] * panel[k][0..R) to R
 *             accumulators (a vector multiply-add the compiler vectorizes): B is read once
 *             per panel instead of once per row.
 */
#include "gemm.h"
#include "kernels_text.h"

#include <stdlib.h>

typedef struct SparseTables {
  const char *values, *index, *starts; /* the table names */
  int64_t nonzero;
} SparseTables;

static const char *index_type(int64_t extent) {
  return extent <= 256 ? "uint8_t" : extent <= 65536 ? "uint16_t" : "uint32_t";
}

/* the nonzeros of B [k, n] column by column: their values, or their row indices */
static void emit_list(CgFunc *f, const double *w, int64_t k, int64_t n, bool values) {
  CgBuf *v = f->globals;
  int64_t at = 0;
  for (int64_t j = 0; j < n; j++)
    for (int64_t p = 0; p < k; p++) {
      double x = w[p * n + j];
      if (x == 0.0) continue;
      if (values)
        cg_buf_printf(v, "%s%s,", at++ % 8 == 0 ? "\n  " : " ", cg_literal(f->arena, DT_F32, x));
      else
        cg_buf_printf(v, "%s%lld,", at++ % 16 == 0 ? "\n  " : " ", (long long)p);
    }
}

/* B [k, n] compressed by output columns: values, row indices, where each column starts */
static void emit_tables(CgFunc *f, NodeId b, SparseTables *t) {
  const Node *bn = graph_node(f->g, b);
  const double *w = bn->attr.constant.data;
  int64_t k = bn->shape.dim[0], n = bn->shape.dim[1];
  const char *base = arena_printf(f->arena, "%s_c%u_sp", f->symbol, b);
  t->values = arena_printf(f->arena, "%s_v", base);
  t->index = arena_printf(f->arena, "%s_r", base);
  t->starts = arena_printf(f->arena, "%s_p", base);
  t->nonzero = 0;
  for (int64_t i = 0; i < k * n; i++)
    t->nonzero += w[i] != 0.0;
  int64_t size = t->nonzero ? t->nonzero : 1; /* no zero-length arrays in C */
  CgBuf *v = f->globals;
  cg_buf_printf(v,
                "/* %%%u = const : f32[%lld, %lld], %lld nonzeros (%.1f%%) by output column: "
                "values, row indices, and where each column starts */\n",
                b, (long long)k, (long long)n, (long long)t->nonzero,
                100.0 * (double)t->nonzero / (double)(k * n));
  cg_buf_printf(v, "static const float %s[%lld] = {", t->values, (long long)size);
  emit_list(f, w, k, n, true);
  cg_buf_printf(v, "%s\n};\nstatic const %s %s[%lld] = {", t->nonzero ? "" : "\n  0.0f,",
                index_type(k), t->index, (long long)size);
  emit_list(f, w, k, n, false);
  cg_buf_printf(v, "%s\n};\nstatic const int32_t %s[%lld] = {", t->nonzero ? "" : "\n  0,",
                t->starts, (long long)(n + 1));
  int64_t at = 0;
  for (int64_t j = 0; j <= n; j++) {
    cg_buf_printf(v, "%s%lld,", j % 16 == 0 ? "\n  " : " ", (long long)at);
    for (int64_t p = 0; j < n && p < k; p++)
      at += w[p * n + j] != 0.0;
  }
  cg_buf_puts(v, "\n};\n\n");
}

typedef struct SparseCall {
  const char *a, *prod;
  int64_t a_rs, a_cs, m, k, n;
  const char *at; /* " * a_cs" or "" */
} SparseCall;

static void emit_finite(CgFunc *f) {
  if (cg_gemm_once(f, "lathe_sparse_finite (codegen/kernels/sparse.c)"))
    cg_kernel_emit(f, cg_kernel_sparse_finite);
}

/* ---- DOT: B's columns 8 at a time (lathe_sparse_dot8, codegen/kernels/sparse.c) ---- */

typedef struct GroupLayout {
  int64_t groups, entries; /* ceil(N / 8); 8 per step of every group */
  int32_t *order;          /* [groups * 8]: the column of each lane (-1: past N) */
  int32_t *starts;         /* [groups + 1]: each group's first entry */
} GroupLayout;

/* the columns by nonzero count, most first (ties by index: a stable counting sort) */
static void group_layout(CgFunc *f, const double *w, int64_t k, int64_t n, GroupLayout *l) {
  int64_t *count = arena_alloc(f->arena, (size_t)n * sizeof *count);
  int64_t *at = arena_alloc(f->arena, (size_t)(k + 2) * sizeof *at);
  for (int64_t p = 0; p <= k + 1; p++)
    at[p] = 0;
  for (int64_t j = 0; j < n; j++) {
    count[j] = 0;
    for (int64_t p = 0; p < k; p++)
      count[j] += w[p * n + j] != 0.0;
    at[k - count[j] + 1]++; /* slot k - count: most nonzeros first */
  }
  for (int64_t p = 1; p <= k + 1; p++)
    at[p] += at[p - 1];
  l->groups = (n + 7) / 8;
  l->order = arena_alloc(f->arena, (size_t)(l->groups * 8) * sizeof *l->order);
  for (int64_t j = 0; j < l->groups * 8; j++)
    l->order[j] = -1;
  for (int64_t j = 0; j < n; j++)
    l->order[at[k - count[j]]++] = (int32_t)j;
  l->starts = arena_alloc(f->arena, (size_t)(l->groups + 1) * sizeof *l->starts);
  l->entries = 0;
  for (int64_t g = 0; g < l->groups; g++) {
    l->starts[g] = (int32_t)l->entries;
    l->entries += 8 * (l->order[g * 8] >= 0 ? count[l->order[g * 8]] : 0); /* the longest */
  }
  l->starts[l->groups] = (int32_t)l->entries;
}

/* entry by entry, group by group: each lane's next nonzero, or its padding (value 0 at a row
 * where the column is 0: a term of the dense product; row 0 for a lane past N) */
static void group_entries(const double *w, int64_t k, int64_t n, int64_t a_cs, const GroupLayout *l,
                          double *value, uint32_t *row) {
  for (int64_t g = 0; g < l->groups; g++) {
    int64_t next[8], zero[8]; /* per lane: the row to look at next, a zero row */
    for (int q = 0; q < 8; q++) {
      int32_t j = l->order[g * 8 + q];
      next[q] = 0, zero[q] = 0;
      while (j >= 0 && zero[q] < k - 1 && w[zero[q] * n + j] != 0.0)
        zero[q]++;
    }
    for (int64_t e = l->starts[g]; e < l->starts[g + 1]; e++) {
      int q = (int)(e % 8);
      int32_t j = l->order[g * 8 + q];
      while (j >= 0 && next[q] < k && w[next[q] * n + j] == 0.0)
        next[q]++;
      bool real = j >= 0 && next[q] < k;
      value[e] = real ? w[next[q] * n + j] : 0.0;
      row[e] = (uint32_t)((real ? next[q]++ : zero[q]) * a_cs);
    }
  }
}

static void emit_group_tables(CgFunc *f, NodeId b, int64_t a_cs, const GroupLayout *l,
                              SparseTables *t, const char **cols) {
  const Node *bn = graph_node(f->g, b);
  const double *w = bn->attr.constant.data;
  int64_t k = bn->shape.dim[0], n = bn->shape.dim[1], e_count = l->entries ? l->entries : 8;
  double *value = arena_alloc(f->arena, (size_t)e_count * sizeof *value);
  uint32_t *row = arena_alloc(f->arena, (size_t)e_count * sizeof *row);
  for (int64_t e = 0; e < e_count; e++)
    value[e] = 0.0, row[e] = 0;
  group_entries(w, k, n, a_cs, l, value, row);
  const char *base = arena_printf(f->arena, "%s_c%u_sp", f->symbol, b);
  t->values = arena_printf(f->arena, "%s_v", base);
  t->index = arena_printf(f->arena, "%s_r", base);
  t->starts = arena_printf(f->arena, "%s_p", base);
  *cols = arena_printf(f->arena, "%s_j", base);
  CgBuf *v = f->globals;
  cg_buf_printf(v,
                "/* %%%u = const : f32[%lld, %lld], %lld nonzeros (%.1f%%) by output column, 8 "
                "columns at a time (lathe_sparse_dot8): %lld entries with the padding; their "
                "values, their rows' offsets in pairs (the first in the low 32 bits), where "
                "each group starts, and the column of each lane */\n",
                b, (long long)k, (long long)n, (long long)t->nonzero,
                100.0 * (double)t->nonzero / (double)(k * n), (long long)l->entries);
  cg_buf_printf(v, "static const float %s[%lld] = {", t->values, (long long)e_count);
  for (int64_t e = 0; e < e_count; e++)
    cg_buf_printf(v, "%s%s,", e % 8 == 0 ? "\n  " : " ", cg_literal(f->arena, DT_F32, value[e]));
  cg_buf_printf(v, "\n};\nstatic const uint64_t %s[%lld] = {", t->index, (long long)e_count / 2);
  for (int64_t e = 0; e < e_count; e += 2)
    cg_buf_printf(v, "%s0x%08lx%08lxu,", e % 8 == 0 ? "\n  " : " ", (unsigned long)row[e + 1],
                  (unsigned long)row[e]);
  cg_buf_printf(v, "\n};\nstatic const int32_t %s[%lld] = {", t->starts, (long long)l->groups + 1);
  for (int64_t g = 0; g <= l->groups; g++)
    cg_buf_printf(v, "%s%ld,", g % 16 == 0 ? "\n  " : " ", (long)l->starts[g]);
  cg_buf_printf(v, "\n};\nstatic const int32_t %s[%lld] = {", *cols, (long long)n);
  for (int64_t j = 0; j < n; j++)
    cg_buf_printf(v, "%s%ld,", j % 16 == 0 ? "\n  " : " ", (long)l->order[j]);
  cg_buf_puts(v, "\n};\n\n");
}

static void dot_kernel(CgFunc *f, NodeId b, const SparseCall *c, SparseTables *t) {
  cg_vector_prelude(f);
  emit_finite(f);
  if (cg_gemm_once(f, "lathe_sparse_dot8 (codegen/kernels/sparse.c)"))
    cg_kernel_emit(f, cg_kernel_sparse_dot8), cg_kernel_emit(f, cg_kernel_sparse_dot8_nonfinite);
  GroupLayout l;
  const char *cols;
  group_layout(f, graph_node(f->g, b)->attr.constant.data, c->k, c->n, &l);
  emit_group_tables(f, b, c->a_cs, &l, t, &cols);
  const char *i = cg_fresh(f->e, "i"), *row = cg_fresh(f->e, "a_i"), *out = cg_fresh(f->e, "c_i");
  const char *tables = arena_printf(f->arena, "%s, %s, %s, %s, %lld, %s", t->values, t->index,
                                    t->starts, cols, (long long)c->n, out);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", i, i, (long long)c->m, i);
  cg_line(f->e, "const float *const %s = %s + %s * %lld;", row, c->a, i, (long long)c->a_rs);
  cg_line(f->e, "float *const %s = %s + %s * %lld;", out, c->prod, i, (long long)c->n);
  cg_line(f->e, "lathe_sparse_dot8(%s, %s);", row, tables);
  cg_line(f->e, "if (!lathe_sparse_finite(%s, %lld, %lld)) /* an infinity or a NaN: 0 * it */", row,
          (long long)c->k, (long long)c->a_cs);
  cg_line(f->e, "  lathe_sparse_dot8_nonfinite(%s, %lld, %lld, %s);", row, (long long)c->k,
          (long long)c->a_cs, tables);
  cg_close(f->e);
}

/* one column's expression: value * a_i[k] for its nonzeros, four to a line */
static void unrolled_column(CgFunc *f, const SparseCall *c, const double *w, int64_t j,
                            const char *row, const char *out) {
  int64_t terms = 0, last = -1;
  for (int64_t p = 0; p < c->k; p++)
    if (w[p * c->n + j] != 0.0) terms++, last = p;
  if (terms == 0) {
    cg_line(f->e, "%s[%lld] = 0.0f;", out, (long long)j);
    return;
  }
  const char *text = arena_printf(f->arena, "%s[%lld] =", out, (long long)j);
  int64_t on_line = 0;
  for (int64_t p = 0; p < c->k; p++) {
    if (w[p * c->n + j] == 0.0) continue;
    text = arena_printf(f->arena, "%s%s %s * %s[%lld]%s", text, on_line ? " +" : "",
                        cg_literal(f->arena, DT_F32, w[p * c->n + j]), row,
                        (long long)(p * c->a_cs), p == last ? ";" : "");
    if (++on_line == 4 || p == last) {
      cg_line(f->e, "%s", text);
      text = "   +", on_line = 0;
    }
  }
}

static void unrolled_kernel(CgFunc *f, NodeId b, const SparseCall *c) {
  const double *w = graph_node(f->g, b)->attr.constant.data;
  const char *i = cg_fresh(f->e, "i"), *row = cg_fresh(f->e, "a_i"), *out = cg_fresh(f->e, "c_i");
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", i, i, (long long)c->m, i);
  cg_line(f->e, "const float *const %s = %s + %s * %lld;", row, c->a, i, (long long)c->a_rs);
  cg_line(f->e, "float *const %s = %s + %s * %lld;", out, c->prod, i, (long long)c->n);
  for (int64_t j = 0; j < c->n; j++)
    unrolled_column(f, c, w, j, row, out);
  cg_close(f->e);
}

int cg_sparse_panel_rows(const CgOptions *o) {
  int vec, mr, nr;
  cg_gemm_tile(o, &vec, &mr, &nr);
  return vec >= 8 ? 2 * vec : 16;
}

int64_t cg_sparse_scratch(const Graph *g, NodeId mm, const CgOptions *o) {
  const Node *n = graph_node(g, mm);
  if (n->attr.matmul.sparse_b != IR_SPARSE_PANEL) return 0;
  int64_t k = graph_node(g, n->in[1])->shape.dim[0];
  return ir_workspace_align(k * cg_sparse_panel_rows(o) * (int64_t)sizeof(float));
}

/* the rows i0 .. i0 + R of A, transposed into panel[k][r] (zeros past the last row) */
static void panel_load(CgFunc *f, const SparseCall *c, const char *panel, const char *i0, int r) {
  const char *q = cg_fresh(f->e, "r"), *k = cg_fresh(f->e, "k");
  cg_line(f->e, "const int64_t rows = %lld - %s < %d ? %lld - %s : %d;", (long long)c->m, i0, r,
          (long long)c->m, i0, r);
  cg_open(f->e, "for (int64_t %s = 0; %s < %d; %s++)", q, q, r, q);
  cg_line(f->e, "const float *const a_r = %s + (%s + %s) * %lld;", c->a, i0, q, (long long)c->a_rs);
  cg_line(f->e, "if (%s < rows)", q);
  cg_line(f->e, "  for (int64_t %s = 0; %s < %lld; %s++) %s[%s * %d + %s] = a_r[%s%s];", k, k,
          (long long)c->k, k, panel, k, r, q, k, c->at);
  cg_line(f->e, "else");
  cg_line(f->e, "  for (int64_t %s = 0; %s < %lld; %s++) %s[%s * %d + %s] = 0.0f;", k, k,
          (long long)c->k, k, panel, k, r, q);
  cg_close(f->e);
}

static void panel_kernel(CgFunc *f, const SparseCall *c, const SparseTables *t) {
  int r = cg_sparse_panel_rows(f->opt);
  const char *panel = cg_fresh(f->e, "panel"), *i0 = cg_fresh(f->e, "i0");
  const char *j = cg_fresh(f->e, "j"), *p = cg_fresh(f->e, "p"), *q = cg_fresh(f->e, "r");
  cg_line(f->e, "float *const %s = (float *)((char *)ws + %s); /* [K][%d] */", panel,
          cg_scratch_offset(f, 0), r);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s += %d)", i0, i0, (long long)c->m, i0, r);
  panel_load(f, c, panel, i0, r);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", j, j, (long long)c->n, j);
  const char *acc = cg_fresh(f->e, "acc"), *end = cg_fresh(f->e, "end");
  const char *v = cg_fresh(f->e, "b_kj"), *x = cg_fresh(f->e, "a_k");
  cg_line(f->e, "float %s[%d] = {0.0f};", acc, r);
  cg_line(f->e, "const int32_t %s = %s[%s + 1];", end, t->starts, j);
  cg_open(f->e, "for (int32_t %s = %s[%s]; %s < %s; %s++)", p, t->starts, j, p, end, p);
  cg_line(f->e, "const float %s = %s[%s];", v, t->values, p);
  cg_line(f->e, "const float *const %s = %s + (int64_t)%s[%s] * %d;", x, panel, t->index, p, r);
  cg_line(f->e, "for (int %s = 0; %s < %d; %s++) %s[%s] += %s[%s] * %s;", q, q, r, q, acc, q, x, q,
          v);
  cg_close(f->e);
  cg_line(f->e, "for (int64_t %s = 0; %s < rows; %s++) %s[(%s + %s) * %lld + %s] = %s[%s];", q, q,
          q, c->prod, i0, q, (long long)c->n, j, acc, q);
  cg_close(f->e);
  cg_close(f->e);
}

/* after the panels: a row of A holding an infinity or a NaN adds each column's A[i][k] * 0
 * terms that B's tables leave out (NaN there, as in the dense product; a cold path) */
static void panel_nonfinite(CgFunc *f, const SparseCall *c, const SparseTables *t) {
  emit_finite(f);
  const char *i = cg_fresh(f->e, "i"), *j = cg_fresh(f->e, "j"), *k = cg_fresh(f->e, "k");
  const char *p = cg_fresh(f->e, "p"), *row = cg_fresh(f->e, "a_i");
  cg_line(f->e, "/* a row of A with an infinity or a NaN: the dense product's A[i][k] * 0 terms "
                "at B's zeros (NaN there) */");
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", i, i, (long long)c->m, i);
  cg_line(f->e, "const float *const %s = %s + %s * %lld;", row, c->a, i, (long long)c->a_rs);
  cg_line(f->e, "if (lathe_sparse_finite(%s, %lld, %lld)) continue;", row, (long long)c->k,
          (long long)c->a_cs);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", j, j, (long long)c->n, j);
  cg_line(f->e, "int32_t %s = %s[%s];", p, t->starts, j);
  cg_line(f->e, "float zero_terms = 0.0f;");
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", k, k, (long long)c->k, k);
  cg_line(f->e, "if (%s < %s[%s + 1] && %s[%s] == %s)", p, t->starts, j, t->index, p, k);
  cg_line(f->e, "  %s++;", p);
  cg_line(f->e, "else");
  cg_line(f->e, "  zero_terms += %s[%s%s] * 0.0f;", row, k, c->at);
  cg_close(f->e);
  cg_line(f->e, "%s[%s * %lld + %s] += zero_terms;", c->prod, i, (long long)c->n, j);
  cg_close(f->e);
  cg_close(f->e);
}

static const char *const kernel_names[] = {
    "dense", "dot products over each column's nonzeros, 8 columns at a time",
    "unrolled: the nonzeros as literals", "panels of rows, a vector multiply-add per nonzero"};

void cg_sparse_product(CgFunc *f, NodeId mm, const char *a, int64_t a_rs, int64_t a_cs, int64_t m,
                       const char *prod) {
  const Node *n = graph_node(f->g, mm);
  const Shape *bs = &graph_node(f->g, n->in[1])->shape;
  IrSparseKernel kind = (IrSparseKernel)n->attr.matmul.sparse_b;
  SparseCall c = {a,          prod,
                  a_rs,       a_cs,
                  m,          bs->dim[0],
                  bs->dim[1], a_cs == 1 ? "" : arena_printf(f->arena, " * %lld", (long long)a_cs)};
  SparseTables t = {0};
  if (kind == IR_SPARSE_PANEL)
    emit_tables(f, n->in[1], &t);
  else
    for (int64_t i = 0; i < c.k * c.n; i++)
      t.nonzero += graph_node(f->g, n->in[1])->attr.constant.data[i] != 0.0;
  cg_line(f->e,
          "/* sparse product %lld x %lld x %lld (M x K x N): %lld nonzeros of B; %s "
          "(passes/sparsify.c) */",
          (long long)m, (long long)c.k, (long long)c.n, (long long)t.nonzero, kernel_names[kind]);
  cg_line(f->e, "{");
  cg_indent(f->e);
  if (kind == IR_SPARSE_UNROLLED)
    unrolled_kernel(f, n->in[1], &c);
  else if (kind == IR_SPARSE_PANEL)
    panel_kernel(f, &c, &t), panel_nonfinite(f, &c, &t);
  else
    dot_kernel(f, n->in[1], &c, &t);
  cg_close(f->e);
}
