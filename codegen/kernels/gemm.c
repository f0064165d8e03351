/* codegen/kernels/gemm.c — kernel library text: the packed, cache-blocked GEMM routine lathe_gemm
 * and what it uses: the LATHE_NOVEC and LATHE_GEMM_SHARED macros, the B operand descriptor and its
 * pack routines, the whole-operand pre-packing of a scan's weights (codegen/gemm.c emits them; the
 * micro-kernel lathe_gemm_kernel is generated per target there).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_gemm_NAME (scripts/embed-kernels.py) and copied into generated files with its LT_*
 * identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_* alone on
 * a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands in for
 * code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel novec */
#if defined(__clang__)
#define LATHE_NOVEC _Pragma("clang loop vectorize(disable)")
#else
#define LATHE_NOVEC
#endif
/* @lathe-kernel dims */
/* The integers of a lathe_gemm or lathe_gemm_direct call, named at the call site: C (m x n,
 * row stride ldc) = A B, or C += A B when acc, A[i][p] = a[i * a_rs + p * a_cs], B's rows
 * ldb floats apart (lathe_gemm_direct), blocks of kc_max x mc_max x nc_max (lathe_gemm). */
typedef struct lathe_gemm_dims {
  ptrdiff_t m, n, k, a_rs, a_cs, ldb, ldc, kc_max, mc_max, nc_max;
  int acc;
} lathe_gemm_dims;

/* @lathe-kernel shared */
/* shared by every GEMM of this file: kept out of line (compile time) */
#if defined(__GNUC__)
#define LATHE_GEMM_SHARED static __attribute__((noinline))
#else
#define LATHE_GEMM_SHARED static
#endif

/* @lathe-kernel pack */
/* The B operand of lathe_gemm: `pack` writes rows [p0, p0 + kc) x columns [j0, j0 + nc)
 * of it as LT_NR-wide slivers, k-major, zero-padded to a whole sliver. Plain matrices:
 * B[p][j] = p[p * rs + j * cs]; convolutions (codegen/conv_gemm.c) read an implicit
 * im2col matrix straight from an NCHW image described by g[]. pack NULL: p holds the
 * whole operand already packed (lathe_gemm_prepack_b). */
typedef struct lathe_gemm_b lathe_gemm_b;
struct lathe_gemm_b {
  void (*pack)(const lathe_gemm_b *b, ptrdiff_t p0, ptrdiff_t kc, ptrdiff_t j0,
               ptrdiff_t nc, float *dst);
  const float *p;
  ptrdiff_t rs, cs;
  ptrdiff_t g[16];
};

/* A (mc x kc, A[i][p] = a[i * rs + p * cs]) as LT_MR-tall slivers, k-major, zero-padded */
LATHE_GEMM_SHARED void lathe_gemm_pack_a(const float *a, ptrdiff_t rs, ptrdiff_t cs,
                                         ptrdiff_t mc, ptrdiff_t kc, float *dst) {
  for (ptrdiff_t i0 = 0; i0 < mc; i0 += LT_MR) {
    const ptrdiff_t h = mc - i0 < LT_MR ? mc - i0 : LT_MR;
    for (ptrdiff_t p = 0; p < kc; p++, dst += LT_MR) {
      ptrdiff_t i = 0;
      LATHE_NOVEC for (; i < h; i++) dst[i] = a[(i0 + i) * rs + p * cs];
      LATHE_NOVEC for (; i < LT_MR; i++) dst[i] = 0.0f;
    }
  }
}

/* @lathe-kernel strided */
LATHE_GEMM_SHARED void lathe_gemm_pack_strided(const lathe_gemm_b *b, ptrdiff_t p0,
                                               ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,
                                               float *dst) {
  const ptrdiff_t rs = b->rs, cs = b->cs;
  for (ptrdiff_t j = 0; j < nc; j += LT_NR) {
    const ptrdiff_t w = nc - j < LT_NR ? nc - j : LT_NR;
    const float *src = b->p + p0 * rs + (j0 + j) * cs;
    for (ptrdiff_t p = 0; p < kc; p++, src += rs, dst += LT_NR) {
      ptrdiff_t x = 0;
      if (cs == 1 && w == LT_NR) {
        memcpy(dst, src, LT_NR * sizeof(float));
      } else {
        LATHE_NOVEC for (; x < w; x++) dst[x] = src[x * cs];
        LATHE_NOVEC for (; x < LT_NR; x++) dst[x] = 0.0f;
      }
    }
  }
}

/* @lathe-kernel driver */
/* c (mr x nr, row stride ldc) += the tile (an edge tile: whole ones go straight into C) */
LATHE_GEMM_SHARED void lathe_gemm_add(ptrdiff_t mr, ptrdiff_t nr, const float *restrict t,
                                      float *restrict c, ptrdiff_t ldc) {
  for (ptrdiff_t i = 0; i < mr; i++)
    for (ptrdiff_t j = 0; j < nr; j++) c[i * ldc + j] += t[i * LT_NR + j];
}

/* C (m x n, row stride ldc) = A B, or C += A B when acc, A[i][p] = a[i * a_rs + p * a_cs].
 * BLIS loop order: N panels of nc_max, K blocks of kc_max (B block packed), M blocks of
 * mc_max (A block packed), then LT_MR x LT_NR tiles, each written into C by the micro-kernel;
 * one at the edge of C goes through the scratch tile. ws: 64-byte aligned scratch holding
 * the tile, the packed A block and the packed B panel (codegen/gemm.c sizes it).
 * Pre-packed operands (lathe_gemm_prepack_a/_b, same k, kc_max, mc_max, nc_max) are read
 * in place: A when a_rs = a_cs = 0, B when b->pack is NULL (b->p holds the panels). */
LATHE_GEMM_SHARED void lathe_gemm(const float *a, const lathe_gemm_b *b, float *c, float *ws,
                                  lathe_gemm_dims d) {
  const ptrdiff_t m = d.m, n = d.n, k = d.k, a_rs = d.a_rs, a_cs = d.a_cs, ldc = d.ldc;
  const ptrdiff_t kc_max = d.kc_max, mc_max = d.mc_max, nc_max = d.nc_max;
  const int acc = d.acc;
  float *const pa = ws + LT_TILE;
  float *const pb = pa + ((mc_max + LT_MR - 1) / LT_MR * LT_MR * kc_max + 15) / 16 * 16;
  if (k <= 0 && !acc)
    for (ptrdiff_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
  for (ptrdiff_t jc = 0; jc < n; jc += nc_max) {
    const ptrdiff_t nc = n - jc < nc_max ? n - jc : nc_max;
    for (ptrdiff_t pc = 0; pc < k; pc += kc_max) {
      const ptrdiff_t kc = k - pc < kc_max ? k - pc : kc_max;
      const int add = acc || pc > 0;
      const float *bp = pb;
      if (b->pack) b->pack(b, pc, kc, jc, nc, pb);
      else bp = b->p + jc * k + pc * ((nc + LT_NR - 1) / LT_NR * LT_NR); /* pre-packed */
      for (ptrdiff_t ic = 0; ic < m; ic += mc_max) {
        const ptrdiff_t mc = m - ic < mc_max ? m - ic : mc_max;
        const float *ap = pa;
        if (a_rs == 0 && a_cs == 0) ap = a + ic * k + pc * ((mc + LT_MR - 1) / LT_MR * LT_MR);
        else lathe_gemm_pack_a(a + ic * a_rs + pc * a_cs, a_rs, a_cs, mc, kc, pa);
LT_PAR
        for (ptrdiff_t jr = 0; jr < nc; jr += LT_NR) {
LT_TILEDECL
          const ptrdiff_t nr = nc - jr < LT_NR ? nc - jr : LT_NR;
          for (ptrdiff_t ir = 0; ir < mc; ir += LT_MR) {
            const ptrdiff_t mr = mc - ir < LT_MR ? mc - ir : LT_MR;
            float *const cp = c + (ic + ir) * ldc + jc + jr;
            if (mr == LT_MR && nr == LT_NR) { /* a whole tile: straight into C */
              lathe_gemm_kernel(kc, ap + ir * kc, bp + jr * kc, cp, ldc, add);
              continue;
            }
            lathe_gemm_kernel(kc, ap + ir * kc, bp + jr * kc, tile, LT_NR, 0);
            if (add) {
              lathe_gemm_add(mr, nr, tile, cp, ldc);
            } else {
              for (ptrdiff_t i = 0; i < mr; i++)
                memcpy(cp + i * ldc, tile + i * LT_NR, (size_t)nr * sizeof(float));
            }
          }
        }
      }
    }
  }
}

/* @lathe-kernel prepack_b */
/* The whole op(B) (k x n) packed once, as lathe_gemm reads it with the same kc_max and
 * nc_max: the block of N panel jc and K block pc at dst + jc * k + pc * (its width rounded
 * up to LT_NR), round_up(n, LT_NR) * k floats in all; lathe_gemm then reads it in place. */
LATHE_GEMM_SHARED void lathe_gemm_prepack_b(const lathe_gemm_b *b, ptrdiff_t k, ptrdiff_t n,
                                            ptrdiff_t kc_max, ptrdiff_t nc_max,
                                            float *dst) {
  for (ptrdiff_t jc = 0; jc < n; jc += nc_max) {
    const ptrdiff_t nc = n - jc < nc_max ? n - jc : nc_max;
    for (ptrdiff_t pc = 0; pc < k; pc += kc_max) {
      const ptrdiff_t kc = k - pc < kc_max ? k - pc : kc_max;
      b->pack(b, pc, kc, jc, nc, dst + jc * k + pc * ((nc + LT_NR - 1) / LT_NR * LT_NR));
    }
  }
}

/* @lathe-kernel prepack_a */
/* The whole A (m x k, A[i][p] = a[i * rs + p * cs]) packed once, as lathe_gemm reads it
 * with the same kc_max and mc_max: the block of M block ic and K block pc at dst + ic * k
 * + pc * (its height rounded up to LT_MR), round_up(m, LT_MR) * k floats in all. */
LATHE_GEMM_SHARED void lathe_gemm_prepack_a(const float *a, ptrdiff_t rs, ptrdiff_t cs,
                                            ptrdiff_t m, ptrdiff_t k, ptrdiff_t kc_max,
                                            ptrdiff_t mc_max, float *dst) {
  for (ptrdiff_t ic = 0; ic < m; ic += mc_max) {
    const ptrdiff_t mc = m - ic < mc_max ? m - ic : mc_max;
    for (ptrdiff_t pc = 0; pc < k; pc += kc_max) {
      const ptrdiff_t kc = k - pc < kc_max ? k - pc : kc_max;
      lathe_gemm_pack_a(a + ic * rs + pc * cs, rs, cs, mc, kc,
                        dst + ic * k + pc * ((mc + LT_MR - 1) / LT_MR * LT_MR));
    }
  }
}

