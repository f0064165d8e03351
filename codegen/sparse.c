/* codegen/sparse.c — a matmul over the nonzeros of a baked, mostly-zero B (matmul.sparse_b,
 * decided by passes/sparsify.c; docs/compression.md "Sparse compilation").
 *
 * B [K, N] is written column-compressed at compile time: for output column j, its nonzeros'
 * values and row indices are contiguous (<sym>_c<id>_sp_v, _sp_r), starting at _sp_p[j]. The
 * dense table of B is never written (cg_gemm_packs_operand says it is read only from tables
 * of its own). Each output element is a dot product of the row of A with one column's
 * nonzeros, in four independent partial sums so the multiply-adds pipeline; the indices are
 * the narrowest unsigned type that holds K. Plain C99: the same code for every target.
 */
#include "gemm.h"

#include <stdlib.h>

typedef struct SparseTables {
  const char *values, *rows, *starts; /* the table names */
  int64_t nonzero;
} SparseTables;

static void emit_tables(CgFunc *f, NodeId b, int64_t k, int64_t n, SparseTables *t) {
  const Node *bn = graph_node(f->g, b);
  const double *w = bn->attr.constant.data;
  const char *base = arena_printf(f->arena, "%s_c%u_sp", f->symbol, b);
  t->values = arena_printf(f->arena, "%s_v", base);
  t->rows = arena_printf(f->arena, "%s_r", base);
  t->starts = arena_printf(f->arena, "%s_p", base);
  t->nonzero = 0;
  for (int64_t i = 0; i < k * n; i++)
    t->nonzero += w[i] != 0.0;
  const char *index_type = k <= 256 ? "uint8_t" : k <= 65536 ? "uint16_t" : "uint32_t";
  int64_t size = t->nonzero ? t->nonzero : 1; /* no zero-length arrays in C */
  cg_buf_printf(f->globals,
                "/* %%%u = const : f32[%lld, %lld], %lld nonzeros (%.1f%%) by output column: "
                "values, row indices, and where each column starts */\n",
                b, (long long)k, (long long)n, (long long)t->nonzero,
                100.0 * (double)t->nonzero / (double)(k * n));
  CgBuf *v = f->globals;
  cg_buf_printf(v, "static const float %s[%lld] = {", t->values, (long long)size);
  int64_t at = 0;
  for (int64_t j = 0; j < n; j++)
    for (int64_t p = 0; p < k; p++)
      if (w[p * n + j] != 0.0)
        cg_buf_printf(v, "%s%s,", at++ % 8 == 0 ? "\n  " : " ",
                      cg_literal(f->arena, DT_F32, w[p * n + j]));
  cg_buf_printf(v, "%s\n};\nstatic const %s %s[%lld] = {", t->nonzero ? "" : "\n  0.0f,",
                index_type, t->rows, (long long)size);
  at = 0;
  for (int64_t j = 0; j < n; j++)
    for (int64_t p = 0; p < k; p++)
      if (w[p * n + j] != 0.0)
        cg_buf_printf(v, "%s%lld,", at++ % 16 == 0 ? "\n  " : " ", (long long)p);
  cg_buf_printf(v, "%s\n};\nstatic const int32_t %s[%lld] = {", t->nonzero ? "" : "\n  0,",
                t->starts, (long long)(n + 1));
  at = 0;
  for (int64_t j = 0; j <= n; j++) {
    cg_buf_printf(v, "%s%lld,", j % 16 == 0 ? "\n  " : " ", (long long)at);
    for (int64_t p = 0; j < n && p < k; p++)
      at += w[p * n + j] != 0.0;
  }
  cg_buf_puts(v, "\n};\n\n");
}

void cg_sparse_product(CgFunc *f, NodeId mm, const char *a, int64_t a_rs, int64_t a_cs, int64_t m,
                       const char *prod) {
  const Node *n = graph_node(f->g, mm);
  const Shape *bs = &graph_node(f->g, n->in[1])->shape;
  int64_t k = bs->dim[0], cols = bs->dim[1];
  SparseTables t;
  emit_tables(f, n->in[1], k, cols, &t);
  cg_line(f->e,
          "/* sparse product %lld x %lld x %lld (M x K x N): %lld nonzeros of B, by column */",
          (long long)m, (long long)k, (long long)cols, (long long)t.nonzero);
  const char *i = cg_fresh(f->e, "i"), *j = cg_fresh(f->e, "j"), *p = cg_fresh(f->e, "p");
  const char *row = cg_fresh(f->e, "a_i");
  const char *at = a_cs == 1 ? "" : arena_printf(f->arena, " * %lld", (long long)a_cs);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", i, i, (long long)m, i);
  cg_line(f->e, "const float *const %s = %s + %s * %lld;", row, a, i, (long long)a_rs);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", j, j, (long long)cols, j);
  cg_line(f->e, "float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;");
  cg_line(f->e, "int32_t %s = %s[%s];", p, t.starts, j);
  cg_line(f->e, "const int32_t end = %s[%s + 1];", t.starts, j);
  cg_open(f->e, "for (; %s + 4 <= end; %s += 4)", p, p);
  for (int u = 0; u < 4; u++)
    cg_line(f->e, "s%d += %s[%s[%s + %d]%s] * %s[%s + %d];", u, row, t.rows, p, u, at, t.values, p,
            u);
  cg_close(f->e);
  cg_line(f->e, "for (; %s < end; %s++) s0 += %s[%s[%s]%s] * %s[%s];", p, p, row, t.rows, p, at,
          t.values, p);
  cg_line(f->e, "%s[%s * %lld + %s] = (s0 + s1) + (s2 + s3);", prod, i, (long long)cols, j);
  cg_close(f->e);
  cg_close(f->e);
}
