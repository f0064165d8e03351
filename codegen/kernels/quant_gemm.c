/* codegen/kernels/quant_gemm.c — kernel library text: the int8 GEMM behind qdense and qconv2d
 * when their weights are baked (docs/int8.md, "Kernels"; codegen/lower_quant.c emits the calls
 * and packs the weights at compile time). Integer arithmetic is exact, so every tile gives the
 * same int32 sums and the same bytes out as the portable loops and the oracle.
 *
 *   y[i, o] = lathe_requant(sum_p (x[i, p] - x_zp) * B[p, o], bias[o], mult[o], shift[o], ...)
 *
 * Packed B (a static table written by the compiler): panels of 16 output columns, each panel
 * ceil(k / 4) groups of 64 bytes, a group holding for each of the 16 columns its 4 weights
 * p = 4g .. 4g + 3 (zero past k and past n). This one layout feeds every tile: a 64-byte group
 * is one AVX-512 vector for vpdpbusd, two AVX2 vectors for vpmaddubsw, four NEON vectors for
 * sdot, and four 16-byte halves that vpmovsxbw widens for the exact AVX2 tile. The table of
 * column sums wsum[o] = sum_p B[p, o] folds the input offset out at the epilogue:
 *
 *   a tile returns T = sum_p (x + off) * B  (off = 128 for the u8 x s8 tiles, whose input is
 *   x ^ 0x80 = x + 128 as an unsigned byte; 0 for the signed ones), so
 *   sum_p (x - x_zp) * B = T - (off + x_zp) * wsum[o], exactly: every |term| <= 255 * 128 and
 *   k <= 65536 (ir/quant.c), so T and the true sum both lie inside int32.
 *
 * vpmaddubsw adds two u8 x s8 products into an int16 with saturation: exact only when no
 * pair (B[4g, o], B[4g + 1, o]) or (B[4g + 2, o], B[4g + 3, o]) can leave [-32768, 32767] for
 * any input byte. The compiler checks every pair of the constant weights (lower_quant.c) and
 * passes exact = 1 when one could: that layer then runs the s16 tile (vpmovzxbw/vpmovsxbw to
 * int16, vpmaddwd, which cannot saturate), never a changed weight.
 *
 * Sections: driver (the portable tile, the row x panel loops and the epilogue), avx2, vnni,
 * sdot (each a tile under its compiler and ISA guard), and pick_v3, pick_v4, pick_aarch64
 * (which tile a target's file runs). Embedded as in gemm.c (scripts/embed-kernels.py).
 */
/* @lathe-kernel driver */
/* ---- int8 GEMM (codegen/kernels/quant_gemm.c): 4-row x 16-column tiles over packed weights ----
 */
/* a tile: t[r * 16 + c] = sum_p (a[r][p] + off) * B[p, c] over the panel w, p < k */
typedef void lathe_qtile_fn(int64_t k, const int8_t *const *a, const int8_t *w, int32_t *t);
typedef struct lathe_qkernel {
  lathe_qtile_fn *tile;
  int32_t off; /* the offset the tile adds to each input byte (128: u8 x s8, 0: s8 x s8) */
} lathe_qkernel;
typedef struct lathe_qgemm_args {
  int64_t m, k, n;                   /* rows of x, inner size, output columns */
  const int8_t *x;                   /* x[i, p] = x[i * x_rs + p] */
  int64_t x_rs;                      /* row stride of x */
  const int8_t *w;                   /* B packed (see above) */
  const int32_t *wsum;               /* the column sums of B */
  const int32_t *bias, *mult, *shift; /* element [o * *_cs] of each */
  int64_t bias_cs, mult_cs, shift_cs; /* 1: one per column, 0: one for all */
  int32_t x_zp, out_zp, lo, hi;       /* zero points, the clamp */
  int8_t *y;                          /* y[i, o] = y[i * y_rs + o * y_cs] */
  int64_t y_rs, y_cs;
} lathe_qgemm_args;

/* the portable tile (C99, off = 0): any compiler, any target */
static void lathe_qtile_c(int64_t k, const int8_t *const *a, const int8_t *w, int32_t *t) {
  for (int x = 0; x < 64; x++) t[x] = 0;
  for (int64_t p = 0; p < k; p++) {
    const int8_t *wg = w + (p / 4) * 64 + p % 4;
    for (int r = 0; r < 4; r++)
      for (int c = 0; c < 16; c++) t[r * 16 + c] += (int32_t)a[r][p] * wg[4 * c];
  }
}
static const lathe_qkernel lathe_qk_c = {lathe_qtile_c, 0};

/* the 4 bytes of x at p (zero past k), as one int32 lane */
static inline int32_t lathe_q4(const int8_t *x, int64_t p, int64_t k) {
  int32_t v = 0;
  memcpy(&v, x + p, (size_t)(k - p < 4 ? k - p : 4));
  return v;
}

static void lathe_qgemm(const lathe_qgemm_args *g, const lathe_qkernel *kern) {
  const int64_t groups = (g->k + 3) / 4;
  int32_t t[64];
  for (int64_t j0 = 0; j0 < g->n; j0 += 16) {
    const int8_t *w = g->w + (j0 / 16) * groups * 64;
    const int64_t nc = g->n - j0 < 16 ? g->n - j0 : 16;
    for (int64_t i0 = 0; i0 < g->m; i0 += 4) {
      const int64_t mr = g->m - i0 < 4 ? g->m - i0 : 4;
      const int8_t *a[4]; /* past the last row: the last row again, its sums not stored */
      for (int r = 0; r < 4; r++) a[r] = g->x + (i0 + (r < mr ? r : mr - 1)) * g->x_rs;
      kern->tile(g->k, a, w, t);
      for (int64_t c = 0; c < nc; c++) {
        const int64_t o = j0 + c;
        const int64_t fold = (int64_t)(kern->off + g->x_zp) * g->wsum[o];
        for (int64_t r = 0; r < mr; r++)
          g->y[(i0 + r) * g->y_rs + o * g->y_cs] = lathe_requant(
              (int32_t)(t[r * 16 + c] - fold), g->bias[o * g->bias_cs], g->mult[o * g->mult_cs],
              g->shift[o * g->shift_cs], g->out_zp, g->lo, g->hi);
      }
    }
  }
}

/* @lathe-kernel avx2 */
/* the AVX2 tiles: compiled for AVX2 by their own attribute, whatever -march builds the file */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LATHE_NO_VECTOR_EXTENSIONS)
#include <immintrin.h>
#define LATHE_QAVX2 1
#define LATHE_QAVX2_FN static __attribute__((target("avx2"), noinline))
/* u8 x s8 (off = 128): vpmaddubsw sums the pairs of each 4-byte group into int16, vpmaddwd by
 * ones adds the two pairs into the int32 lane; only for weights no pair of which can saturate */
#define LATHE_QU8_STEP(c0, c1, q)                                                                 \
  do {                                                                                           \
    const __m256i u_ = _mm256_set1_epi32((int32_t)((uint32_t)(q) ^ 0x80808080u));                 \
    c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(_mm256_maddubs_epi16(u_, b0), ones));            \
    c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(_mm256_maddubs_epi16(u_, b1), ones));            \
  } while (0)
LATHE_QAVX2_FN void lathe_qtile_avx2_u8(int64_t k, const int8_t *const *a, const int8_t *w,
                                        int32_t *t) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
          c30 = c00, c31 = c00;
  for (int64_t p = 0; p < k; p += 4, w += 64) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)w);
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 32));
    int32_t q0, q1, q2, q3;
    if (p + 4 <= k) {
      memcpy(&q0, a[0] + p, 4), memcpy(&q1, a[1] + p, 4);
      memcpy(&q2, a[2] + p, 4), memcpy(&q3, a[3] + p, 4);
    } else {
      q0 = lathe_q4(a[0], p, k), q1 = lathe_q4(a[1], p, k);
      q2 = lathe_q4(a[2], p, k), q3 = lathe_q4(a[3], p, k);
    }
    LATHE_QU8_STEP(c00, c01, q0);
    LATHE_QU8_STEP(c10, c11, q1);
    LATHE_QU8_STEP(c20, c21, q2);
    LATHE_QU8_STEP(c30, c31, q3);
  }
  __m256i *o = (__m256i *)t;
  _mm256_storeu_si256(o, c00), _mm256_storeu_si256(o + 1, c01);
  _mm256_storeu_si256(o + 2, c10), _mm256_storeu_si256(o + 3, c11);
  _mm256_storeu_si256(o + 4, c20), _mm256_storeu_si256(o + 5, c21);
  _mm256_storeu_si256(o + 6, c30), _mm256_storeu_si256(o + 7, c31);
}
static const lathe_qkernel lathe_qk_avx2_u8 = {lathe_qtile_avx2_u8, 128};

/* s16 (off = 128, exact for any weights): the 4 input bytes zero-extended to int16 and
 * repeated, each 16-byte quarter of the group (4 columns x 4 weights) sign-extended, vpmaddwd
 * into 2 partial sums per column, added pairwise (vphaddd) at the end; two rows at a time */
#define LATHE_QS16_STEP(c, q)                                                                     \
  do {                                                                                           \
    const __m256i u_ = _mm256_cvtepu8_epi16(                                                     \
        _mm_set1_epi32((int32_t)((uint32_t)(q) ^ 0x80808080u)));                                \
    for (int h_ = 0; h_ < 4; h_++) c[h_] = _mm256_add_epi32(c[h_], _mm256_madd_epi16(u_, b[h_])); \
  } while (0)
LATHE_QAVX2_FN void lathe_qtile_avx2_s16_rows(int64_t k, const int8_t *a0, const int8_t *a1,
                                              const int8_t *w, int32_t *t) {
  __m256i c0[4], c1[4];
  for (int h = 0; h < 4; h++) c0[h] = c1[h] = _mm256_setzero_si256();
  for (int64_t p = 0; p < k; p += 4, w += 64) {
    __m256i b[4];
    for (int h = 0; h < 4; h++)
      b[h] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * h)));
    int32_t q0, q1;
    if (p + 4 <= k) {
      memcpy(&q0, a0 + p, 4), memcpy(&q1, a1 + p, 4);
    } else {
      q0 = lathe_q4(a0, p, k), q1 = lathe_q4(a1, p, k);
    }
    LATHE_QS16_STEP(c0, q0);
    LATHE_QS16_STEP(c1, q1);
  }
  /* vphaddd gives columns 0 1 4 5 2 3 6 7 of each 8; the 64-bit permute puts them in order */
  __m256i *o = (__m256i *)t;
  _mm256_storeu_si256(o, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0[0], c0[1]), 0xD8));
  _mm256_storeu_si256(o + 1, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c0[2], c0[3]), 0xD8));
  _mm256_storeu_si256(o + 2, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c1[0], c1[1]), 0xD8));
  _mm256_storeu_si256(o + 3, _mm256_permute4x64_epi64(_mm256_hadd_epi32(c1[2], c1[3]), 0xD8));
}
static void lathe_qtile_avx2_s16(int64_t k, const int8_t *const *a, const int8_t *w,
                                 int32_t *t) {
  lathe_qtile_avx2_s16_rows(k, a[0], a[1], w, t);
  lathe_qtile_avx2_s16_rows(k, a[2], a[3], w, t + 32);
}
static const lathe_qkernel lathe_qk_avx2_s16 = {lathe_qtile_avx2_s16, 128};
#endif

/* @lathe-kernel vnni */
/* the AVX-512 VNNI tile (off = 128): vpdpbusd adds the 4 u8 x s8 products of each lane to its
 * int32 without an int16 step, so it is exact for any weights; a group is one vector */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LATHE_NO_VECTOR_EXTENSIONS)
#define LATHE_QVNNI 1
static __attribute__((target("avx512f,avx512vnni"), noinline)) void
lathe_qtile_vnni(int64_t k, const int8_t *const *a, const int8_t *w, int32_t *t) {
  __m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0;
  for (int64_t p = 0; p < k; p += 4, w += 64) {
    const __m512i b = _mm512_loadu_si512((const void *)w);
    int32_t q[4];
    for (int r = 0; r < 4; r++) {
      if (p + 4 <= k)
        memcpy(&q[r], a[r] + p, 4);
      else
        q[r] = lathe_q4(a[r], p, k);
      q[r] = (int32_t)((uint32_t)q[r] ^ 0x80808080u);
    }
    c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(q[0]), b);
    c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(q[1]), b);
    c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(q[2]), b);
    c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(q[3]), b);
  }
  _mm512_storeu_si512((void *)t, c0), _mm512_storeu_si512((void *)(t + 16), c1);
  _mm512_storeu_si512((void *)(t + 32), c2), _mm512_storeu_si512((void *)(t + 48), c3);
}
static const lathe_qkernel lathe_qk_vnni = {lathe_qtile_vnni, 128};
#endif

/* @lathe-kernel sdot */
/* the aarch64 tile (off = 0): sdot adds the 4 s8 x s8 products of each lane to its int32,
 * exact for any weights; a group is four vectors of 4 columns. Needs the dot-product extension
 * at build time (-march=armv8.2-a+dotprod or a CPU that has it); otherwise the portable tile. */
#if defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD) && defined(__GNUC__) &&                \
    !defined(LATHE_NO_VECTOR_EXTENSIONS)
#include <arm_neon.h>
#define LATHE_QSDOT 1
static __attribute__((noinline)) void lathe_qtile_sdot(int64_t k, const int8_t *const *a,
                                                       const int8_t *w, int32_t *t) {
  int32x4_t c[4][4];
  for (int r = 0; r < 4; r++)
    for (int h = 0; h < 4; h++) c[r][h] = vdupq_n_s32(0);
  for (int64_t p = 0; p < k; p += 4, w += 64) {
    const int8x16_t b0 = vld1q_s8(w), b1 = vld1q_s8(w + 16), b2 = vld1q_s8(w + 32),
                    b3 = vld1q_s8(w + 48);
    for (int r = 0; r < 4; r++) {
      int32_t q;
      if (p + 4 <= k)
        memcpy(&q, a[r] + p, 4);
      else
        q = lathe_q4(a[r], p, k);
      const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(q));
      c[r][0] = vdotq_s32(c[r][0], b0, x), c[r][1] = vdotq_s32(c[r][1], b1, x);
      c[r][2] = vdotq_s32(c[r][2], b2, x), c[r][3] = vdotq_s32(c[r][3], b3, x);
    }
  }
  for (int r = 0; r < 4; r++)
    for (int h = 0; h < 4; h++) vst1q_s32(t + 16 * r + 4 * h, c[r][h]);
}
static const lathe_qkernel lathe_qk_sdot = {lathe_qtile_sdot, 0};
#endif

/* @lathe-kernel pick_v3 */
/* x86-64-v3: the AVX2 tile, s16 for the layers whose weights could saturate vpmaddubsw */
static const lathe_qkernel *lathe_qkernel_pick_v3(int exact) {
  (void)&lathe_qk_c; /* the portable tile: used when the vector ones are not compiled */
#if defined(LATHE_QAVX2)
  return exact ? &lathe_qk_avx2_s16 : &lathe_qk_avx2_u8;
#else
  (void)exact;
  return &lathe_qk_c;
#endif
}

/* @lathe-kernel pick_v4 */
/* x86-64-v4: the VNNI tile where the CPU has AVX-512 VNNI (not every AVX-512 CPU does: it is
 * asked at run time), else as x86-64-v3 */
static const lathe_qkernel *lathe_qkernel_pick_v4(int exact) {
  (void)&lathe_qk_c;
#if defined(LATHE_QVNNI)
  if (__builtin_cpu_supports("avx512vnni")) return &lathe_qk_vnni;
#endif
#if defined(LATHE_QAVX2)
  return exact ? &lathe_qk_avx2_s16 : &lathe_qk_avx2_u8;
#else
  (void)exact;
  return &lathe_qk_c;
#endif
}

/* @lathe-kernel pick_aarch64 */
/* aarch64: the sdot tile when built with the dot-product extension, else the portable one */
static const lathe_qkernel *lathe_qkernel_pick_aarch64(int exact) {
  (void)exact;
  (void)&lathe_qk_c;
#if defined(LATHE_QSDOT)
  return &lathe_qk_sdot;
#else
  return &lathe_qk_c;
#endif
}

/* @lathe-kernel conv */
/* qconv2d on the int8 GEMM: the rows of each image's im2col matrix, 64 output pixels at a time,
 * through lathe_qgemm into y [o, oh, ow] (column stride oh * ow) */
typedef struct lathe_qconv_dims {
  int64_t c, h, w, kh, kw, oh, ow; /* x [c, h, w] per image, the window, y [., oh, ow] */
  int64_t sh, sw, dh, dw, pt, pl;  /* strides, dilations, the top and left padding */
} lathe_qconv_dims;
/* col[r, (c * kh + i) * kw + j] = the tap (c, i, j) of output pixel r0 + r, x_zp where padded
 * (real zero: (x_zp - x_zp) * w adds nothing, as a skipped tap) */
static void lathe_qim2col(const lathe_qconv_dims *d, const int8_t *x, int8_t zp, int64_t r0,
                          int64_t m, int8_t *col) {
  for (int64_t r = 0; r < m; r++) {
    const int64_t oy = (r0 + r) / d->ow, ox = (r0 + r) % d->ow;
    for (int64_t c = 0; c < d->c; c++)
      for (int64_t i = 0; i < d->kh; i++) {
        const int64_t y = oy * d->sh + i * d->dh - d->pt;
        for (int64_t j = 0; j < d->kw; j++) {
          const int64_t v = ox * d->sw + j * d->dw - d->pl;
          *col++ = y >= 0 && y < d->h && v >= 0 && v < d->w ? x[(c * d->h + y) * d->w + v] : zp;
        }
      }
  }
}
/* g: k, n, the weights, the epilogue and y (image 0) set; col: 64 * k bytes of scratch */
static void lathe_qconv(const lathe_qconv_dims *d, int64_t batch, const int8_t *x,
                        const lathe_qgemm_args *g, int8_t *col, const lathe_qkernel *kern) {
  const int64_t pix = d->oh * d->ow;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t r0 = 0; r0 < pix; r0 += 64) {
      lathe_qgemm_args a = *g;
      a.m = pix - r0 < 64 ? pix - r0 : 64;
      lathe_qim2col(d, x + b * d->c * d->h * d->w, (int8_t)g->x_zp, r0, a.m, col);
      a.x = col, a.x_rs = g->k;
      a.y = g->y + b * g->n * pix + r0, a.y_rs = 1, a.y_cs = pix;
      lathe_qgemm(&a, kern);
    }
}
