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
 * Sections: driver (the portable tile, the row x panel loops and the epilogue), avx2 (the
 * tiles, the epilogues, the panel routines that run tile, epilogue and stores in one call), vnni,
 * sdot (each a tile under its compiler and ISA guard), and pick_v3, pick_v4, pick_aarch64
 * (which tile a target's file runs). Embedded as in gemm.c (scripts/embed-kernels.py).
 */
/* @lathe-kernel driver */
/* ---- int8 GEMM (codegen/kernels/quant_gemm.c): 4-row x 16-column tiles over packed weights ----
 */
/* a tile: t[r * 16 + c] = sum_p (a[r][p] + off) * B[p, c] over the panel w, p < k */
typedef void lathe_qtile_fn(int64_t k, const int8_t *const *a, const int8_t *w, int32_t *t);
/* a panel's 16 columns, ready for the epilogue (columns past n: zeros, their results unused) */
typedef struct lathe_qcols {
  int64_t fold[16];   /* (off + x_zp) * wsum: t - fold is the exact sum of (x - x_zp) * w */
  int32_t fold32[16]; /* the same modulo 2^32 (the vector epilogues subtract in int32) */
  int32_t bias[16], mult[16], shift[16]; /* shift clamped to [-31, 30] as lathe_mbqm does */
  int32_t zp, lo, hi;
  int32_t plain;        /* 1: no left shift and |sum + bias| < 2^31 for every column (below) */
  int32_t bf[16];       /* bias - fold32 modulo 2^32: the plain epilogue's one addend */
} lathe_qcols;
/* an epilogue: y[r * 16 + c] = lathe_requant(t[r * 16 + c] - fold[c], bias[c], ...), 4 x 16 */
typedef void lathe_qepi_fn(const int32_t *t, const lathe_qcols *q, int32_t *y);
struct lathe_qgemm_args;
/* a panel routine: rows [0, m) of the 16 columns j0 .. j0 + 15 (packed weights w), tile,
 * epilogue and stores in one call (NULL: lathe_qgemm's loop over tile and epi) */
typedef void lathe_qpanel_fn(const struct lathe_qgemm_args *g, const lathe_qcols *q,
                             const int8_t *w, int64_t j0);
typedef struct lathe_qkernel {
  lathe_qtile_fn *tile;
  int32_t off; /* the offset the tile adds to each input byte (128: u8 x s8, 0: s8 x s8) */
  lathe_qepi_fn *epi;
  lathe_qpanel_fn *panel;
} lathe_qkernel;
typedef struct lathe_qgemm_args {
  int64_t m, k, n;                    /* rows of x, inner size, output columns */
  const int8_t *x;                    /* x[i, p] = x[i * x_rs + p] */
  int64_t x_rs;                       /* row stride of x */
  const int8_t *w;                    /* B packed (see above) */
  const int32_t *wsum;                /* the column sums of B */
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
/* the portable epilogue: lathe_requant itself */
static void lathe_qepi_c(const int32_t *t, const lathe_qcols *q, int32_t *y) {
  for (int x = 0; x < 64; x++)
    y[x] = lathe_requant((int32_t)(t[x] - q->fold[x % 16]), q->bias[x % 16], q->mult[x % 16],
                         q->shift[x % 16], q->zp, q->lo, q->hi);
}
static const lathe_qkernel lathe_qk_c = {lathe_qtile_c, 0, lathe_qepi_c, NULL};

/* the 4 bytes of x at p (zero past k), as one int32 lane */
static inline int32_t lathe_q4(const int8_t *x, int64_t p, int64_t k) {
  int32_t v = 0;
  memcpy(&v, x + p, (size_t)(k - p < 4 ? k - p : 4));
  return v;
}

/* the epilogue's view of columns j0 .. j0 + 15. plain: every shift <= 0 (no left shift) and
 * |bias| + 255 * 128 * k < 2^31 (|sum (x - x_zp) * w| <= 255 * 128 * k), so the bias sum cannot
 * saturate and t - fold + bias is exact in int32 arithmetic modulo 2^32 */
static void lathe_qcols_fill(const lathe_qgemm_args *g, int32_t off, int64_t j0, lathe_qcols *q) {
  q->zp = g->out_zp, q->lo = g->lo, q->hi = g->hi, q->plain = 1;
  for (int c = 0; c < 16; c++) {
    const int64_t o = j0 + c < g->n ? j0 + c : -1;
    const int32_t s = o < 0 ? 0 : g->shift[o * g->shift_cs];
    q->fold[c] = o < 0 ? 0 : (int64_t)(off + g->x_zp) * g->wsum[o];
    const uint32_t wrapped = (uint32_t)((uint64_t)q->fold[c] & 0xffffffffu);
    memcpy(&q->fold32[c], &wrapped, 4); /* two's complement: the value modulo 2^32 */
    q->bias[c] = o < 0 ? 0 : g->bias[o * g->bias_cs];
    q->mult[c] = o < 0 ? 0 : g->mult[o * g->mult_cs];
    q->shift[c] = s < -31 ? -31 : s > 30 ? 30 : s;
    const int64_t b = q->bias[c] < 0 ? -(int64_t)q->bias[c] : q->bias[c];
    if (q->shift[c] > 0 || b + 32640 * g->k > INT32_MAX) q->plain = 0;
    const uint32_t bf = (uint32_t)q->bias[c] - wrapped;
    memcpy(&q->bf[c], &bf, 4);
  }
}

static void lathe_qgemm(const lathe_qgemm_args *g, const lathe_qkernel *kern) {
  const int64_t groups = (g->k + 3) / 4;
  int32_t t[64], y[64];
  lathe_qcols q;
  for (int64_t j0 = 0; j0 < g->n; j0 += 16) {
    const int8_t *w = g->w + (j0 / 16) * groups * 64;
    const int64_t nc = g->n - j0 < 16 ? g->n - j0 : 16;
    lathe_qcols_fill(g, kern->off, j0, &q);
    if (kern->panel) {
      kern->panel(g, &q, w, j0);
      continue;
    }
    for (int64_t i0 = 0; i0 < g->m; i0 += 4) {
      const int64_t mr = g->m - i0 < 4 ? g->m - i0 : 4;
      const int8_t *a[4]; /* past the last row: the last row again, its sums not stored */
      for (int r = 0; r < 4; r++) a[r] = g->x + (i0 + (r < mr ? r : mr - 1)) * g->x_rs;
      kern->tile(g->k, a, w, t);
      kern->epi(t, &q, y);
      int8_t *out = g->y + i0 * g->y_rs + j0 * g->y_cs;
      for (int64_t r = 0; r < mr; r++)
        for (int64_t c = 0; c < nc; c++) out[r * g->y_rs + c * g->y_cs] = (int8_t)y[r * 16 + c];
    }
  }
}

/* @lathe-kernel avx2 */
/* the AVX2 tiles: compiled for AVX2 by their own attribute, whatever -march builds the file */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(LATHE_NO_VECTOR_EXTENSIONS)
#include <immintrin.h>
#define LATHE_QAVX2 1
#define LATHE_QAVX2_FN static __attribute__((target("avx2"), noinline))
#define LATHE_QAVX2_IN static inline __attribute__((target("avx2"), always_inline))
/* the 4 bytes of rows r = 0 .. n - 1 at p into q[r]: the full groups by one load each, the
 * last (k not a multiple of 4) zero-padded */
#define LATHE_Q4_ROWS(q, a, n, p, k)                                                             \
  for (int r_ = 0; r_ < (n); r_++) {                                                             \
    if ((p) + 4 <= (k))                                                                          \
      memcpy(&q[r_], (a)[r_] + (p), 4);                                                          \
    else                                                                                         \
      q[r_] = lathe_q4((a)[r_], (p), (k));                                                       \
  }
/* u8 x s8 (off = 128): each row's 4 bytes, offset to u8 (x ^ 0x80 = x + 128) and repeated;
 * vpmaddubsw sums the pairs of each group into int16, vpmaddwd by ones adds the two pairs
 * into the column's int32 lane. Only for weights no pair of which can saturate. */
#define LATHE_QU8_GROUP(q)                                                                       \
  do {                                                                                           \
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)w);                                    \
    const __m256i b1 = _mm256_loadu_si256((const __m256i *)(w + 32));                             \
    for (int r_ = 0; r_ < 4; r_++) {                                                             \
      const __m256i u_ = _mm256_xor_si256(_mm256_set1_epi32(q[r_]), flip);                       \
      const __m256i p0_ = _mm256_madd_epi16(_mm256_maddubs_epi16(u_, b0), ones);                 \
      const __m256i p1_ = _mm256_madd_epi16(_mm256_maddubs_epi16(u_, b1), ones);                 \
      c[r_][0] = _mm256_add_epi32(c[r_][0], p0_), c[r_][1] = _mm256_add_epi32(c[r_][1], p1_);     \
      __asm__("" : "+x"(c[r_][0]), "+x"(c[r_][1])); /* gcc: keep each sum in its register */     \
    }                                                                                            \
  } while (0)
LATHE_QAVX2_IN void lathe_qtile_avx2_u8_in(int64_t k, const int8_t *const *a, const int8_t *w,
                                           int32_t *t) {
  const __m256i ones = _mm256_set1_epi16(1), flip = _mm256_set1_epi8((char)0x80);
  __m256i c[4][2];
  for (int r = 0; r < 4; r++) c[r][0] = c[r][1] = _mm256_setzero_si256();
  int32_t q[4];
  int64_t p = 0;
  for (; p + 4 <= k; p += 4, w += 64) { /* the full groups: no branch inside */
    memcpy(&q[0], a[0] + p, 4), memcpy(&q[1], a[1] + p, 4);
    memcpy(&q[2], a[2] + p, 4), memcpy(&q[3], a[3] + p, 4);
    LATHE_QU8_GROUP(q);
  }
  if (p < k) {
    LATHE_Q4_ROWS(q, a, 4, p, k);
    LATHE_QU8_GROUP(q);
  }
  for (int r = 0; r < 4; r++) {
    _mm256_storeu_si256((__m256i *)(t + 16 * r), c[r][0]);
    _mm256_storeu_si256((__m256i *)(t + 16 * r + 8), c[r][1]);
  }
}

/* s16 (off = 0, exact for any weights): each row's 4 bytes sign-extended to int16 and
 * repeated, each 16-byte quarter of the group (4 columns x 4 weights) sign-extended, vpmaddwd
 * into 2 partial sums per column, added pairwise (vphaddd) at the end; two rows at a time */
#define LATHE_QS16_GROUP(q)                                                                      \
  do {                                                                                           \
    const __m256i x0_ = _mm256_cvtepi8_epi16(_mm_set1_epi32(q[0]));                              \
    const __m256i x1_ = _mm256_cvtepi8_epi16(_mm_set1_epi32(q[1]));                              \
    for (int h_ = 0; h_ < 4; h_++) { /* one quarter live at a time: no spill, no copies */       \
      const __m256i b_ = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16 * h_)));  \
      c[0][h_] = _mm256_add_epi32(c[0][h_], _mm256_madd_epi16(x0_, b_));                         \
      c[1][h_] = _mm256_add_epi32(c[1][h_], _mm256_madd_epi16(x1_, b_));                         \
      __asm__("" : "+x"(c[0][h_]), "+x"(c[1][h_])); /* gcc: keep each sum in its register */     \
    }                                                                                            \
  } while (0)
LATHE_QAVX2_IN void lathe_qtile_avx2_s16_rows(int64_t k, const int8_t *const *a, const int8_t *w,
                                              int32_t *t) {
  __m256i c[2][4];
  for (int h = 0; h < 4; h++) c[0][h] = c[1][h] = _mm256_setzero_si256();
  int32_t q[2];
  int64_t p = 0;
  for (; p + 4 <= k; p += 4, w += 64) { /* the full groups: no branch inside */
    memcpy(&q[0], a[0] + p, 4), memcpy(&q[1], a[1] + p, 4);
    LATHE_QS16_GROUP(q);
  }
  if (p < k) {
    LATHE_Q4_ROWS(q, a, 2, p, k);
    LATHE_QS16_GROUP(q);
  }
  /* vphaddd gives columns 0 1 4 5 2 3 6 7 of each 8; the 64-bit permute puts them in order */
  for (int r = 0; r < 2; r++)
    for (int h = 0; h < 2; h++)
      _mm256_storeu_si256((__m256i *)(t + 16 * r + 8 * h),
                          _mm256_permute4x64_epi64(
                              _mm256_hadd_epi32(c[r][2 * h], c[r][2 * h + 1]), 0xD8));
}
LATHE_QAVX2_IN void lathe_qtile_avx2_s16_in(int64_t k, const int8_t *const *a, const int8_t *w,
                                            int32_t *t) {
  lathe_qtile_avx2_s16_rows(k, a, w, t);
  lathe_qtile_avx2_s16_rows(k, a + 2, w, t + 32);
}
/* the tiles as functions (lathe_qkernel.tile; the panels below inline them) */
LATHE_QAVX2_FN void lathe_qtile_avx2_u8(int64_t k, const int8_t *const *a, const int8_t *w,
                                        int32_t *t) {
  lathe_qtile_avx2_u8_in(k, a, w, t);
}
LATHE_QAVX2_FN void lathe_qtile_avx2_s16(int64_t k, const int8_t *const *a, const int8_t *w,
                                         int32_t *t) {
  lathe_qtile_avx2_s16_in(k, a, w, t);
}

/* The epilogue in AVX2, lane for lane lathe_requant (codegen/kernels/quant.c): the bias added
 * with int32 saturation, the left shift saturating, gemmlowp's doubling high multiply in
 * 64-bit lanes (even and odd lanes apart; truncating division by 2^31 as |v| >> 31 with the
 * sign put back), the rounding right shift, the clamp (before adding zp: no overflow). */
#define LATHE_QSRDHM4(v) /* 4 int64 products: (v + nudge) / 2^31, truncated */                  \
  do {                                                                                           \
    v = _mm256_add_epi64(v, _mm256_blendv_epi8(n30, n30m, _mm256_cmpgt_epi64(zero, v)));         \
    const __m256i neg_ = _mm256_cmpgt_epi64(zero, v);                                            \
    v = _mm256_srli_epi64(_mm256_sub_epi64(_mm256_xor_si256(v, neg_), neg_), 31);                \
    v = _mm256_sub_epi64(_mm256_xor_si256(v, neg_), neg_);                                       \
  } while (0)
/* int32 lanes that are INT32_MAX where x >= 0, INT32_MIN where x < 0 */
#define LATHE_QSAT(x) _mm256_xor_si256(_mm256_srai_epi32(x, 31), imax)
LATHE_QAVX2_FN void lathe_qepi_avx2(const int32_t *t, const lathe_qcols *q, int32_t *y) {
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
  const __m256i imax = _mm256_set1_epi32(INT32_MAX), imin = _mm256_set1_epi32(INT32_MIN);
  const __m256i n30 = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i n30m = _mm256_set1_epi64x(1 - ((int64_t)1 << 30));
  const __m256i lo = _mm256_set1_epi32(q->lo - q->zp), hi = _mm256_set1_epi32(q->hi - q->zp);
  const __m256i zp = _mm256_set1_epi32(q->zp);
  for (int h = 0; h < 2; h++) {
    const __m256i fold = _mm256_loadu_si256((const __m256i *)(q->fold32 + 8 * h));
    const __m256i bias = _mm256_loadu_si256((const __m256i *)(q->bias + 8 * h));
    const __m256i mult = _mm256_loadu_si256((const __m256i *)(q->mult + 8 * h));
    const __m256i mult_odd = _mm256_srli_epi64(mult, 32);
    const __m256i shift = _mm256_loadu_si256((const __m256i *)(q->shift + 8 * h));
    const __m256i left = _mm256_max_epi32(shift, zero);
    const __m256i right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i half = _mm256_srli_epi32(mask, 1), mult_min = _mm256_cmpeq_epi32(mult, imin);
    for (int r = 0; r < 4; r++) {
      const __m256i x = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(t + 16 * r + 8 * h)),
                                         fold);
      __m256i s = _mm256_add_epi32(x, bias); /* overflow: x and bias of one sign, s not */
      const __m256i ovf = _mm256_and_si256(_mm256_xor_si256(x, s), _mm256_xor_si256(bias, s));
      s = _mm256_blendv_epi8(s, LATHE_QSAT(x), _mm256_srai_epi32(ovf, 31));
      const __m256i v = _mm256_sllv_epi32(s, left); /* saturating: it must shift back */
      const __m256i kept = _mm256_cmpeq_epi32(_mm256_srav_epi32(v, left), s);
      const __m256i xs = _mm256_blendv_epi8(LATHE_QSAT(s), v, kept);
      __m256i pe = _mm256_mul_epi32(xs, mult);
      __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(xs, 32), mult_odd);
      LATHE_QSRDHM4(pe);
      LATHE_QSRDHM4(po);
      __m256i d = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
      d = _mm256_blendv_epi8(d, imax, _mm256_and_si256(_mm256_cmpeq_epi32(xs, imin), mult_min));
      const __m256i rem = _mm256_and_si256(d, mask);
      const __m256i threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(d, 31));
      d = _mm256_sub_epi32(_mm256_srav_epi32(d, right), _mm256_cmpgt_epi32(rem, threshold));
      d = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(d, lo), hi), zp);
      _mm256_storeu_si256((__m256i *)(y + 16 * r + 8 * h), d);
    }
  }
}

/* The plain epilogue (lathe_qcols.plain: no left shift, no saturation of the bias sum), lane
 * for lane lathe_requant in fewer steps: x = t + (bias - fold); gemmlowp's doubling high
 * multiply is floor((x * mult + 2^30) / 2^31) for either sign (its nudge 1 - 2^30 and
 * truncation for a negative product give the same integer), whose low 32 bits a logical
 * 64-bit shift gives; x != INT32_MIN here, so its one overflow case cannot occur. Then the
 * rounding right shift and the clamp as above. d[r][h]: row r, columns 8h .. 8h + 7. */
LATHE_QAVX2_IN void lathe_qepi_avx2_plain(const int32_t *t, const lathe_qcols *q,
                                          __m256i d[4][2]) {
  const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
  const __m256i n30 = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i lo = _mm256_set1_epi32(q->lo - q->zp), hi = _mm256_set1_epi32(q->hi - q->zp);
  const __m256i zp = _mm256_set1_epi32(q->zp);
  for (int h = 0; h < 2; h++) {
    const __m256i bf = _mm256_loadu_si256((const __m256i *)(q->bf + 8 * h));
    const __m256i mult = _mm256_loadu_si256((const __m256i *)(q->mult + 8 * h));
    const __m256i mult_odd = _mm256_srli_epi64(mult, 32);
    const __m256i right =
        _mm256_sub_epi32(zero, _mm256_loadu_si256((const __m256i *)(q->shift + 8 * h)));
    const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
    const __m256i half = _mm256_srli_epi32(mask, 1);
    for (int r = 0; r < 4; r++) {
      const __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(t + 16 * r + 8 * h)),
                                         bf);
      __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, mult), n30);
      __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), mult_odd), n30);
      __m256i v = _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
      const __m256i rem = _mm256_and_si256(v, mask);
      const __m256i threshold = _mm256_sub_epi32(half, _mm256_srai_epi32(v, 31));
      v = _mm256_sub_epi32(_mm256_srav_epi32(v, right), _mm256_cmpgt_epi32(rem, threshold));
      d[r][h] = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zp);
    }
  }
}

/* the int8 results d (int32 lanes inside [-128, 127]) of rows i0 .. i0 + mr - 1, columns
 * j0 .. j0 + nc - 1 into y: packed to bytes, 16-byte rows where a row is contiguous (qdense),
 * 4-byte columns where a column is (qconv2d's y [o, pixels], rows transposed in registers) */
LATHE_QAVX2_IN void lathe_qstore_avx2(const lathe_qgemm_args *g, int64_t i0, int64_t j0,
                                      int64_t mr, int64_t nc, __m256i d[4][2]) {
  int8_t *out = g->y + i0 * g->y_rs + j0 * g->y_cs;
  __m256i rows[2]; /* rows 2i and 2i + 1, 16 bytes each, columns in order */
  for (int i = 0; i < 2; i++) {
    const __m256i a = _mm256_permute4x64_epi64(_mm256_packs_epi32(d[2 * i][0], d[2 * i][1]), 0xD8);
    const __m256i b =
        _mm256_permute4x64_epi64(_mm256_packs_epi32(d[2 * i + 1][0], d[2 * i + 1][1]), 0xD8);
    rows[i] = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
  }
  const __m128i r0 = _mm256_castsi256_si128(rows[0]), r1 = _mm256_extracti128_si256(rows[0], 1);
  const __m128i r2 = _mm256_castsi256_si128(rows[1]), r3 = _mm256_extracti128_si256(rows[1], 1);
  if (g->y_cs == 1 && nc == 16) {
    const __m128i rv[4] = {r0, r1, r2, r3};
    for (int64_t r = 0; r < mr; r++) _mm_storeu_si128((__m128i *)(out + r * g->y_rs), rv[r]);
    return;
  }
  if (g->y_rs == 1 && mr == 4) {
    const __m128i a = _mm_unpacklo_epi8(r0, r1), b = _mm_unpackhi_epi8(r0, r1);
    const __m128i c = _mm_unpacklo_epi8(r2, r3), e = _mm_unpackhi_epi8(r2, r3);
    int32_t col[16]; /* column c's 4 rows */
    _mm_storeu_si128((__m128i *)col, _mm_unpacklo_epi16(a, c));
    _mm_storeu_si128((__m128i *)(col + 4), _mm_unpackhi_epi16(a, c));
    _mm_storeu_si128((__m128i *)(col + 8), _mm_unpacklo_epi16(b, e));
    _mm_storeu_si128((__m128i *)(col + 12), _mm_unpackhi_epi16(b, e));
    for (int64_t c = 0; c < nc; c++) memcpy(out + c * g->y_cs, &col[c], 4);
    return;
  }
  int8_t y[64];
  _mm256_storeu_si256((__m256i *)y, rows[0]);
  _mm256_storeu_si256((__m256i *)(y + 32), rows[1]);
  for (int64_t r = 0; r < mr; r++)
    for (int64_t c = 0; c < nc; c++) out[r * g->y_rs + c * g->y_cs] = y[r * 16 + c];
}

/* a panel routine (lathe_qpanel_fn) on an inlined tile: the rows 4 at a time, the plain
 * epilogue where the panel allows it (else the exact one), the block stores */
#define LATHE_QPANEL_AVX2(name, tile_in)                                                         \
  LATHE_QAVX2_FN void name(const lathe_qgemm_args *g, const lathe_qcols *q, const int8_t *w,     \
                           int64_t j0) {                                                         \
    const int64_t nc = g->n - j0 < 16 ? g->n - j0 : 16;                                          \
    int32_t t[64];                                                                               \
    for (int64_t i0 = 0; i0 < g->m; i0 += 4) {                                                   \
      const int64_t mr = g->m - i0 < 4 ? g->m - i0 : 4;                                          \
      const int8_t *a[4]; /* past the last row: the last row again, its sums not stored */       \
      for (int r = 0; r < 4; r++) a[r] = g->x + (i0 + (r < mr ? r : mr - 1)) * g->x_rs;          \
      tile_in(g->k, a, w, t);                                                                    \
      __m256i d[4][2];                                                                           \
      if (q->plain) {                                                                            \
        lathe_qepi_avx2_plain(t, q, d);                                                          \
      } else {                                                                                   \
        int32_t y[64];                                                                           \
        lathe_qepi_avx2(t, q, y);                                                                \
        for (int r = 0; r < 4; r++)                                                              \
          for (int h = 0; h < 2; h++)                                                            \
            d[r][h] = _mm256_loadu_si256((const __m256i *)(y + 16 * r + 8 * h));                 \
      }                                                                                          \
      lathe_qstore_avx2(g, i0, j0, mr, nc, d);                                                   \
    }                                                                                            \
  }
LATHE_QPANEL_AVX2(lathe_qpanel_avx2_u8, lathe_qtile_avx2_u8_in)
LATHE_QPANEL_AVX2(lathe_qpanel_avx2_s16, lathe_qtile_avx2_s16_in)
static const lathe_qkernel lathe_qk_avx2_s16 = {lathe_qtile_avx2_s16, 0, lathe_qepi_avx2,
                                                lathe_qpanel_avx2_s16};
static const lathe_qkernel lathe_qk_avx2_u8 = {lathe_qtile_avx2_u8, 128, lathe_qepi_avx2,
                                               lathe_qpanel_avx2_u8};
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
static const lathe_qkernel lathe_qk_vnni = {lathe_qtile_vnni, 128, lathe_qepi_avx2, NULL};
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
static const lathe_qkernel lathe_qk_sdot = {lathe_qtile_sdot, 0, lathe_qepi_c, NULL};
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
/* an im2col routine: the generated code wraps lathe_qim2col per convolution with its geometry
 * a constant, so the compiler unrolls the window and drops the divisions */
typedef void lathe_qim2col_fn(const int8_t *x, int8_t zp, int64_t r0, int64_t m, int8_t *col);
#if defined(__GNUC__)
#define LATHE_QINLINE static inline __attribute__((always_inline))
#else
#define LATHE_QINLINE static inline
#endif
/* col[r, (c * kh + i) * kw + j] = the tap (c, i, j) of output pixel r0 + r, x_zp where padded
 * (real zero: (x_zp - x_zp) * w adds nothing, as a skipped tap); a window wholly inside the
 * image is copied without the bounds tests. A row is k = c * kh * kw taps rounded up to a
 * multiple of 4 (LATHE_QROW) with zp: the packed weights are zero there, and the tiles read
 * whole groups, never a partial one */
#define LATHE_QROW(k) (((k) + 3) / 4 * 4)
LATHE_QINLINE void lathe_qim2col(const lathe_qconv_dims *d, const int8_t *x, int8_t zp,
                                 int64_t r0, int64_t m, int8_t *col) {
  const int64_t pad = LATHE_QROW(d->c * d->kh * d->kw) - d->c * d->kh * d->kw;
  for (int64_t r = 0; r < m; r++) {
    const int64_t oy = (r0 + r) / d->ow, ox = (r0 + r) % d->ow;
    const int64_t y0 = oy * d->sh - d->pt, v0 = ox * d->sw - d->pl;
    if (y0 >= 0 && y0 + (d->kh - 1) * d->dh < d->h && v0 >= 0 &&
        v0 + (d->kw - 1) * d->dw < d->w) {
      for (int64_t c = 0; c < d->c; c++)
        for (int64_t i = 0; i < d->kh; i++) {
          const int8_t *src = x + (c * d->h + y0 + i * d->dh) * d->w + v0;
          for (int64_t j = 0; j < d->kw; j++) *col++ = src[j * d->dw];
        }
    } else {
      for (int64_t c = 0; c < d->c; c++)
        for (int64_t i = 0; i < d->kh; i++) {
          const int64_t y = y0 + i * d->dh;
          for (int64_t j = 0; j < d->kw; j++) {
            const int64_t v = v0 + j * d->dw;
            *col++ = y >= 0 && y < d->h && v >= 0 && v < d->w ? x[(c * d->h + y) * d->w + v] : zp;
          }
        }
    }
    for (int64_t p = 0; p < pad; p++) *col++ = zp;
  }
}
/* g: k, n, the weights, the epilogue and y (image 0) set; col: 64 * LATHE_QROW(k) bytes of
 * scratch */
static void lathe_qconv(const lathe_qconv_dims *d, lathe_qim2col_fn *im2col, int64_t batch,
                        const int8_t *x, const lathe_qgemm_args *g, int8_t *col,
                        const lathe_qkernel *kern) {
  const int64_t pix = d->oh * d->ow;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t r0 = 0; r0 < pix; r0 += 64) {
      lathe_qgemm_args a = *g;
      a.m = pix - r0 < 64 ? pix - r0 : 64;
      im2col(x + b * d->c * d->h * d->w, (int8_t)g->x_zp, r0, a.m, col);
      a.x = col, a.k = a.x_rs = LATHE_QROW(g->k);
      a.y = g->y + b * g->n * pix + r0, a.y_rs = 1, a.y_cs = pix;
      lathe_qgemm(&a, kern);
    }
}
