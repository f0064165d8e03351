/* codegen/gemm_direct.c — the f32 GEMM that packs nothing, for the matmuls too small for
 * packing to pay.
 *
 * C = op(A) B with B row-major (B[p][j] = b[p * ldb + j], as a dense layer's weights, the
 * forward product of every layer, and dW = Xᵀ dY's dY are) and A through any strides (a
 * transposed A is read in place too):
 *
 *   for each thread t of --threads N (one OpenMP parallel region per call; 1 without):
 *     for each block of B, about 256 columns x up to 64K floats (256 KB, kept in L2):
 *       for thread t's run of the block's MR x NR tiles (the t-th of N equal runs, row-major):
 *         MR x NR accumulators = A rows (MR broadcasts per k) x B row p (NR / V vector loads)
 *         stored straight into C (or added: a K block after the first, or acc)
 *
 * The tiles, not the row blocks, are shared out, so that a 64-row batch (11 row blocks of 6)
 * splits evenly, and each thread takes the same tiles in every K block: a tile is computed by
 * one thread in the order one thread computes it (bit for bit the result of one thread).
 *
 * A B stored transposed (dX = dY Wᵀ, attention's Q Kᵀ) is first made row-major in the call's
 * scratch by lathe_gemm_transpose (16 x 16 blocks transposed in registers on AVX-512): k n
 * floats moved, where packing copies B and A both. A scan's captured B stays on the packed
 * routine instead, packed once before the loop (codegen/gemm.c).
 *
 * The packed routine (codegen/gemm.c) copies B into slivers and A into k-major slivers so
 * that the micro-kernel streams contiguous memory; for a 64-row batch the copies cost 15 to
 * 20% of the product (each packed B element is used by only M / MR tiles), and at 64^3 they
 * are a third of it. Here the micro-kernel reads B's rows in place (NR consecutive floats, a
 * whole vector load each) and A's elements as scalar broadcasts from MR row pointers, and
 * writes its tile straight into C: measured at 90 to 97% of the FMA peak from 64^3 to a
 * 64 x 3136 x 128 dense layer, where the packed routine ran at 65 to 80%. Rows past the edge
 * of a row block repeat the last row (computed, never stored); a column edge (n not a
 * multiple of NR) is the one thing copied: that last sliver of B, zero-padded, once per call,
 * and its tile goes through a small stack buffer. cg_gemm_direct_suits keeps the large cubes
 * (every dimension >= 512) on the packed routine: there B rows a power-of-two stride apart
 * share cache sets, and packing pays back over the many row blocks (measured: even at 512^3,
 * 2.8 ms either way; at 1024^3 packed 22.9 ms, unpacked 25.0).
 *
 * Invariant: the call's scratch is cg_gemm_direct_bytes at the offset the caller gives in the
 * scratch region: B made row-major (k x n floats, when transposed), then the padded edge
 * sliver (k x NR floats).
 */

#include "gemm.h"
#include "kernels_text.h"

#include <stdio.h>

bool cg_gemm_direct_suits(int64_t m, int64_t k, int64_t n) {
  return !(m >= 512 && k >= 512 && n >= 512);
}

/* the scratch of B made row-major (k x n floats) when it is stored transposed; the edge
 * sliver follows it */
static int64_t transposed_bytes(int64_t k, int64_t n, bool trans_b) {
  return trans_b ? ir_workspace_align(k * n * 4) : 0;
}

int64_t cg_gemm_direct_bytes(const CgOptions *o, int64_t k, int64_t n, bool trans_b) {
  int vec, mr, nr;
  cg_gemm_tile(o, &vec, &mr, &nr);
  return transposed_bytes(k, n, trans_b) + ir_workspace_align(k * nr * 4);
}

static const char kernel_doc[] =
    "/* C tile (%d x %d, row stride ldc) = A rows (%d x kc, A[i][p] = a[i * rs + p * cs]) x\n"
    " * B (kc x %d, B[p][j] = b[p * ldb + j]), both read in place, or C tile += it when acc.\n"
    " * Only the first mr rows are stored; the rows past them repeat row mr - 1. cs >= 1. */\n";

/* The k loop: B's row p as NR / V vector loads, A's column p as MR scalar broadcasts, MR x NR / V
 * FMAs. The MR rows of A are read at one offset from their row pointers (a_i[off], off += cs):
 * one add per k for all of them, where a pointer per row costs MR adds; on AVX2 (6 x 16: 12
 * FMAs, 6 broadcasts, 2 loads) that is 24 instructions per k instead of 30. Unrolled by hand,
 * with 16 vector registers both GCC and Clang interleaved the steps and spilled accumulators
 * (25 to 29 instructions per k); GCC's own unrolling by 4 (LATHE_UNROLL_K, codegen/gemm.c)
 * keeps the steps apart and spills nothing, and is 14% faster on the MLP's layers on Zen 3;
 * Clang still spills when asked, so it is asked only under GCC. */
static void emit_vector_step(CgBuf *o, int vec, int mr, int nr) {
  int nv = nr / vec;
  cg_buf_puts(o, "  const ptrdiff_t end = kc * cs;\n"
                 "  LATHE_UNROLL_K\n"
                 "  for (ptrdiff_t off = 0; off != end; off += cs) {\n");
  for (int v = 0; v < nv; v++)
    cg_buf_printf(o, "    const lathe_vf b%d = *(const lathe_vfu *)(b + %d);\n", v, v * vec);
  for (int i = 0; i < mr; i++) {
    cg_buf_printf(o, "    const float x%d = a%d[off];\n   ", i, i);
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, " c%d_%d += x%d * b%d;", i, v, i, v);
    cg_buf_puts(o, "\n");
  }
  cg_buf_puts(o, "    b += ldb;\n  }\n");
}

/* The kernel of `rows` rows (the name's suffix _ROWS, or none for the full MR): the edge
 * kernels of 2 and 4 rows (emit_vector_kernels) serve a last row block of at most that many rows,
 * which the full kernel would compute whole and store in part: a 64-row batch is 10 x 6 + 4 rows,
 * the LSTM's 32 rows 5 x 6 + 2, so 3% and 11% of their FMAs were spent on rows never stored.
 * Each row's sum runs in the same order in every kernel: the results are the same bits. */
static void emit_vector_kernel(CgBuf *o, int vec, int rows, int nr, int mr) {
  int nv = nr / vec;
  char suffix[16] = "";
  if (rows != mr) snprintf(suffix, sizeof suffix, "_%d", rows);
  cg_buf_printf(o, kernel_doc, rows, nr, rows, nr);
  cg_buf_printf(o,
                "LATHE_GEMM_FN void lathe_gemm_direct_kernel%s(ptrdiff_t kc,\n"
                "    const float *restrict a, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t mr,\n"
                "    const float *restrict b, ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc,\n"
                "    int acc) {\n",
                suffix);
  for (int e = 2; rows == mr && e < mr; e *= 2) /* the edge kernels, emitted before */
    cg_buf_printf(o,
                  "  if (mr <= %d) {\n"
                  "    lathe_gemm_direct_kernel_%d(kc, a, rs, cs, mr, b, ldb, c, ldc, acc);\n"
                  "    return;\n"
                  "  }\n",
                  e, e);
  for (int i = 0; i < rows; i++) {
    if (i == 0)
      cg_buf_puts(o, "  const float *a0 = a;\n");
    else
      cg_buf_printf(o, "  const float *a%d = a + (%d < mr ? %d : mr - 1) * rs;\n", i, i, i);
  }
  for (int i = 0; i < rows; i++) {
    cg_buf_puts(o, "  lathe_vf");
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, "%s c%d_%d = {0}", v ? "," : "", i, v);
    cg_buf_puts(o, ";\n");
  }
  emit_vector_step(o, vec, rows, nr);
  for (int i = 0; i < rows; i++) {
    if (i) cg_buf_printf(o, "  if (mr <= %d) return;\n  c += ldc;\n", i);
    for (int add = 1; add >= 0; add--) {
      cg_buf_puts(o, add ? "  if (acc) {\n   " : "  } else {\n   ");
      for (int v = 0; v < nv; v++)
        cg_buf_printf(o, " *(lathe_vfu *)(c + %d) %s= c%d_%d;", v * vec, add ? "+" : "", i, v);
      cg_buf_puts(o, "\n");
    }
    cg_buf_puts(o, "  }\n");
  }
  cg_buf_puts(o, "}\n");
}

/* the full kernel and, before it, its edge kernels of 2, 4, ... rows (fewer than MR) */
static void emit_vector_kernels(CgBuf *o, int vec, int mr, int nr) {
  for (int e = 2; e < mr; e *= 2)
    emit_vector_kernel(o, vec, e, nr, mr);
  emit_vector_kernel(o, vec, mr, nr, mr);
}

static void emit_scalar_kernel(CgBuf *o, int mr, int nr) {
  cg_buf_printf(o, kernel_doc, mr, nr, mr, nr);
  cg_buf_printf(
      o,
      "LATHE_GEMM_SHARED void lathe_gemm_direct_kernel(ptrdiff_t kc, const float *restrict a,\n"
      "                                                ptrdiff_t rs, ptrdiff_t cs,\n"
      "                                                ptrdiff_t mr,\n"
      "                                                const float *restrict b,\n"
      "                                                ptrdiff_t ldb, float *restrict c,\n"
      "                                                ptrdiff_t ldc, int acc) {\n"
      "  float t[%d];\n"
      "  for (int x = 0; x < %d; x++) t[x] = 0.0f;\n"
      "  for (ptrdiff_t p = 0; p < kc; p++) {\n"
      "    for (ptrdiff_t i = 0; i < mr; i++) {\n"
      "      const float ai = a[i * rs + p * cs];\n"
      "      for (int j = 0; j < %d; j++) t[i * %d + j] += ai * b[p * ldb + j];\n"
      "    }\n"
      "  }\n"
      "  for (ptrdiff_t i = 0; i < mr; i++)\n"
      "    for (int j = 0; j < %d; j++)\n"
      "      c[i * ldc + j] = acc ? c[i * ldc + j] + t[i * %d + j] : t[i * %d + j];\n"
      "}\n",
      mr * nr, mr * nr, nr, nr, nr, nr, nr);
}

/* the row blocks of one B block, after the OpenMP line of --threads N; then the column edge */

/* the column edge's row blocks, after the OpenMP line */

/* B (k x n, B[p][j] = b[p * rs + j * cs]) copied row-major, for a B that is stored
 * transposed (dX = dY Wᵀ, attention's Q Kᵀ): k n floats, a small fraction of the k m n
 * multiply-adds, where packing would copy it and A as well. Vector targets transpose V x V
 * blocks in registers (log2 V rounds of two-source shuffles that swap the off-diagonal
 * h x h sub-blocks of row pairs h apart: about 3 times faster than element by element);
 * the rest, and every element on the generic target, goes by 16-column strips with whole
 * rows of dst written. */

void cg_gemm_transpose_emit(CgFunc *f) {
  cg_vector_prelude(f);
  if (!cg_gemm_once(f, "lathe_gemm_transpose (codegen/gemm_direct.c)")) return;
  int vec, mr, nr;
  cg_gemm_tile(f->opt, &vec, &mr, &nr);
  CgBuf *o = f->globals;
  if (vec > 0)
    cg_buf_puts(o, "#if defined(LATHE_VECTOR) && defined(__has_builtin)\n"
                   "#if __has_builtin(__builtin_shufflevector)\n"
                   "#define LATHE_SHUFFLE 1\n"
                   "#endif\n"
                   "#endif\n");
  cg_buf_puts(o, cg_kernel_gemm_direct_transpose_doc);
  cg_buf_puts(
      o, "LATHE_GEMM_SHARED void lathe_gemm_transpose(lathe_transpose_dims d, const float *b,\n"
         "                                            float *restrict dst) {\n"
         "  const ptrdiff_t k = d.k, n = d.n, rs = d.rs, cs = d.cs;\n"
         "  ptrdiff_t jf = 0, pf = 0; /* the columns and rows of dst in whole blocks */\n");
  if (vec > 0) {
    cg_buf_printf(
        o,
        "#ifdef LATHE_SHUFFLE\n"
        "  if (rs == 1) { /* %d x %d blocks: %d rows of B's storage in vectors, transposed */\n"
        "    jf = n / 16 * 16, pf = k / %d * %d;\n"
        "    for (ptrdiff_t j0 = 0; j0 < jf; j0 += %d)\n"
        "      for (ptrdiff_t p0 = 0; p0 < pf; p0 += %d) {\n"
        "        lathe_vfu r[%d];\n"
        "        for (int j = 0; j < %d; j++) r[j] = *(const lathe_vfu *)(b + p0 + (j0 + j) * "
        "cs);\n",
        vec, vec, vec, vec, vec, vec, vec, vec, vec);
    for (int h = vec / 2; h >= 1; h /= 2) {
      cg_buf_printf(o,
                    "        for (int i = 0; i < %d; i++)\n"
                    "          if (!(i & %d)) {\n"
                    "            const lathe_vfu x = r[i], y = r[i + %d];\n",
                    vec, h, h);
      for (int side = 0; side < 2; side++) {
        if (side)
          cg_buf_printf(o, "            r[i + %d] = __builtin_shufflevector(x, y", h);
        else
          cg_buf_puts(o, "            r[i] = __builtin_shufflevector(x, y");
        for (int e = 0; e < vec; e++) {
          int idx = side == 0 ? ((e & h) ? vec + e - h : e) : ((e & h) ? vec + e : e + h);
          cg_buf_printf(o, ", %d", idx);
        }
        cg_buf_puts(o, ");\n");
      }
      cg_buf_puts(o, "          }\n");
    }
    cg_buf_printf(
        o,
        "        for (int p = 0; p < %d; p++) *(lathe_vfu *)(dst + (p0 + p) * n + j0) = r[p];\n"
        "      }\n"
        "  }\n"
        "#endif\n",
        vec);
  }
  cg_buf_puts(o, cg_kernel_gemm_direct_transpose_rest);
}

/* the loop over the threads' shares of the tiles (one parallel region per call), after the
 * OpenMP line of --threads N: below about a million flops, one thread runs every share */
static void emit_driver(CgFunc *f) {
  cg_kernel_emit(f, cg_kernel_gemm_direct_driver);
  if (f->opt->threads > 1)
    cg_buf_printf(
        f->globals,
        "#ifdef _OPENMP\n"
        "#pragma omp parallel for num_threads(%d) schedule(static) if(m * n * k >= %lld)\n"
        "#endif\n",
        f->opt->threads, (long long)(CG_OMP_MIN_FLOPS / 2));
  cg_kernel_emit(f, cg_kernel_gemm_direct_loop);
}

static void emit_routines(CgFunc *f) {
  cg_vector_prelude(f);
  if (!cg_gemm_once(f, "lathe_gemm_direct (codegen/gemm_direct.c)")) return;
  int vec, mr, nr;
  cg_gemm_tile(f->opt, &vec, &mr, &nr);
  CgBuf *o = f->globals;
  if (vec > 0) {
    cg_buf_puts(o, "#ifdef LATHE_VECTOR\n");
    emit_vector_kernels(o, vec, mr, nr);
    cg_buf_puts(o, "#else\n");
  }
  emit_scalar_kernel(o, mr, nr);
  if (vec > 0) cg_buf_puts(o, "#endif\n");
  cg_buf_puts(o, "\n");
  emit_driver(f);
}

void cg_gemm_direct_call(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                         const char *b, int64_t b_rs, int64_t b_cs, const char *c, int64_t ldc,
                         int64_t at) {
  int64_t n = p->n, k = p->k; /* a transposed B never has the run-time batch as k */
  emit_routines(f);
  int64_t ldb = b_rs;
  if (b_cs != 1) { /* made row-major first, at the start of the call's scratch */
    cg_gemm_transpose_emit(f);
    const char *bt = cg_fresh(f->e, "gemm_bt");
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", bt, cg_scratch_offset(f, at));
    cg_line(f->e,
            "lathe_gemm_transpose((lathe_transpose_dims){.k = %lld, .n = %lld, .rs = %lld, "
            ".cs = %lld},",
            (long long)k, (long long)n, (long long)b_rs, (long long)b_cs);
    cg_line(f->e, "                     %s, %s);", b, bt);
    b = bt, ldb = n, at += transposed_bytes(k, n, true);
  }
  cg_line(f->e, "lathe_gemm_direct(%s, %s, %s, (float *)((char *)ws + %s),", a, b, c,
          cg_scratch_offset(f, at));
  cg_line(f->e,
          "                  (lathe_gemm_dims){.m = %s, .n = %lld, .k = %s, "
          ".a_rs = %lld, .a_cs = %lld,",
          cg_gemm_m(f, p), (long long)n, cg_gemm_k(f, p), (long long)a_rs, (long long)a_cs);
  cg_line(f->e, "                                    .ldb = %lld, .ldc = %lld, .acc = 0});",
          (long long)ldb, (long long)ldc);
}
