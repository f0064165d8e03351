/* codegen/kernels/gemm_direct.c — kernel library text: the unpacked GEMM lathe_gemm_direct (its
 * loop over the threads' shares is a section of its own: the OpenMP line of --threads goes
 * before it) and the end of lathe_gemm_transpose, after the part generated per vector width
 * (codegen/gemm_direct.c emits them).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_gemm_direct_NAME (scripts/embed-kernels.py) and copied into generated files with its
 * LT_* identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_*
 * alone on a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands
 * in for code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel driver */
/* C (m x n, row stride ldc) = A B, or C += A B when acc, with A[i][p] = a[i * a_rs + p *
 * a_cs] and B[p][j] = b[p * ldb + j] read in place: no packing (codegen/gemm_direct.c).
 * B is walked in blocks of kc x nc (at most 64K floats, 256 KB) that stay in L2 while
 * every row block of A passes over them; a K block after the first adds to C.
 * ws: the last LT_NR columns of B, zero-padded, when n is not a multiple of LT_NR.
 * LT_THREADS threads (one parallel region per call, after the OpenMP line of --threads):
 * thread t takes the t-th of LT_THREADS equal runs of each B block's MR x NR tiles (row-major
 * order) and of the column edge's row blocks, the same tiles for every K block, so each tile of
 * C is computed by one thread in the same order as on one thread (the same bits). */
LATHE_GEMM_SHARED void lathe_gemm_direct(const float *a, const float *b, float *c, float *ws,
                                         lathe_gemm_dims d) {
  const ptrdiff_t m = d.m, n = d.n, k = d.k, a_rs = d.a_rs, a_cs = d.a_cs, ldb = d.ldb;
  const ptrdiff_t ldc = d.ldc;
  const int acc = d.acc;
  const ptrdiff_t nf = n / LT_NR * LT_NR; /* the columns in whole slivers */
  const ptrdiff_t rows = (m + LT_MR - 1) / LT_MR; /* row blocks, the last maybe partial */
  ptrdiff_t nc = nf, kc = k;
  if (nf * k > 65536) { /* about 256 columns, whole slivers; K blocks of equal size */
    nc = nf < 256 / LT_NR * LT_NR ? nf : 256 / LT_NR * LT_NR;
    const ptrdiff_t kb = (k + 65536 / nc - 1) / (65536 / nc);
    kc = (k + kb - 1) / kb;
  }
  /* (flat loops with a fixed inner trip: a fraction of the compile time) */
  if (nf < n) {
    LATHE_NOVEC for (ptrdiff_t x = 0; x < k * LT_NR; x++) {
      const ptrdiff_t p = x / LT_NR, j = x % LT_NR;
      ws[x] = j < n - nf ? b[p * ldb + nf + j] : 0.0f;
    }
  }
/* @lathe-kernel loop */
  for (ptrdiff_t t = 0; t < LT_THREADS; t++) {
    for (ptrdiff_t jc = 0; jc < nf; jc += nc) {
      const ptrdiff_t jn = nf - jc < nc ? nf : jc + nc, sn = (jn - jc) / LT_NR;
      const ptrdiff_t lo = rows * sn * t / LT_THREADS, hi = rows * sn * (t + 1) / LT_THREADS;
      for (ptrdiff_t pc = 0; pc < k; pc += kc) {
        const ptrdiff_t kn = k - pc < kc ? k - pc : kc;
        const int add = acc || pc > 0;
        for (ptrdiff_t x = lo; x < hi; x++) { /* tile x: row block x / sn, sliver x % sn */
          const ptrdiff_t i = x / sn * LT_MR, j = jc + x % sn * LT_NR;
          const ptrdiff_t mr = m - i < LT_MR ? m - i : LT_MR;
          lathe_gemm_direct_kernel(kn, a + i * a_rs + pc * a_cs, a_rs, a_cs, mr,
                                   b + pc * ldb + j, ldb, c + i * ldc + j, ldc, add);
        }
      }
    }
    if (nf == n) continue;
    for (ptrdiff_t r0 = rows * t / LT_THREADS; r0 < rows * (t + 1) / LT_THREADS; r0++) {
      const ptrdiff_t i = r0 * LT_MR, mr = m - i < LT_MR ? m - i : LT_MR;
      float *ci = c + i * ldc;
      float tile[LT_MR * LT_NR];
      lathe_gemm_direct_kernel(k, a + i * a_rs, a_rs, a_cs, mr, ws, LT_NR, tile, LT_NR, 0);
      for (ptrdiff_t r = 0; r < mr; r++)
        LATHE_NOVEC for (ptrdiff_t j = 0; j < LT_NR; j++)
          if (nf + j < n)
            ci[r * ldc + nf + j] = (acc ? ci[r * ldc + nf + j] : 0.0f) + tile[r * LT_NR + j];
    }
  }
}

/* @lathe-kernel transpose_doc */
/* The integers of a lathe_gemm_transpose call, named at the call site. */
typedef struct lathe_transpose_dims {
  ptrdiff_t k, n, rs, cs;
} lathe_transpose_dims;

/* dst (k x n, row-major) = B, B[p][j] = b[p * rs + j * cs] (codegen/gemm_direct.c): a
 * transposed B made row-major for lathe_gemm_direct. */
/* @lathe-check-only */
LATHE_GEMM_SHARED void lathe_gemm_transpose(lathe_transpose_dims d, const float *b,
                                            float *restrict dst) {
  const ptrdiff_t k = d.k, n = d.n, rs = d.rs, cs = d.cs;
  ptrdiff_t jf = 0, pf = 0; /* generated: the whole blocks of jf columns and pf rows */
/* @lathe-kernel transpose_rest */
  /* the rest (16-column strips; dst's rows written whole) */
  for (ptrdiff_t j0 = 0; j0 < n; j0 += 16) {
    const ptrdiff_t j1 = n - j0 < 16 ? n : j0 + 16;
    for (ptrdiff_t p = j0 < jf ? pf : 0; p < k; p++)
      LATHE_NOVEC for (ptrdiff_t j = j0; j < j1; j++) dst[p * n + j] = b[p * rs + j * cs];
  }
}

