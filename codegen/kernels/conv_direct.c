/* codegen/kernels/conv_direct.c — kernel library text: the direct NCHWc convolution's routines:
 * weight blocking, the per-image drivers, unblocking and the weight gradient
 * (codegen/conv_direct.c emits them; its micro-kernels, lathe_dconv_k... and lathe_dconv_w..., are
 * generated per shape there).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_conv_direct_NAME (scripts/embed-kernels.py) and copied into generated files with its
 * LT_* identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_*
 * alone on a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands
 * in for code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel pack_w */
/* The integers of a lathe_dconv_pack_w call: o filters of k weights (C * KH * KW) each. */
typedef struct lathe_dconv_pack_dims {
  ptrdiff_t o, k;
} lathe_dconv_pack_dims;

/* wp[ob][k][l] = w[ob * LT_V + l][k], zero for the channels past o: whole blocks of LT_V
 * channels by lathe_gemm_transpose (in registers), a partial last one element by element */
LATHE_GEMM_SHARED void lathe_dconv_pack_w(const float *w, lathe_dconv_pack_dims d, float *wp) {
  const ptrdiff_t o = d.o, k = d.k;
  for (ptrdiff_t ob = 0; ob < o / LT_V; ob++)
    lathe_gemm_transpose((lathe_transpose_dims){.k = k, .n = LT_V, .rs = 1, .cs = k},
                         w + ob * LT_V * k, wp + ob * k * LT_V);
  for (ptrdiff_t ob = o / LT_V; ob < (o + LT_V - 1) / LT_V; ob++)
    for (ptrdiff_t p = 0; p < k; p++)
      for (ptrdiff_t l = 0; l < LT_V; l++)
        wp[(ob * k + p) * LT_V + l] = ob * LT_V + l < o ? w[(ob * LT_V + l) * k + p] : 0.0f;
}

/* @lathe-kernel pack_wt */
/* The integers of a lathe_dconv_pack_wt call: weights w [o][c][kk]. */
typedef struct lathe_dconv_pack_wt_dims {
  ptrdiff_t o, c, kk;
} lathe_dconv_pack_wt_dims;

/* the transposed convolution's weights w [o][c][kk] as a convolution's, flipped:
 * wp[cb][(p * kk + t)][l] = w[p][cb * LT_V + l][kk - 1 - t], zero for the channels past c */
LATHE_GEMM_SHARED void lathe_dconv_pack_wt(const float *w, lathe_dconv_pack_wt_dims d,
                                           float *wp) {
  const ptrdiff_t o = d.o, c = d.c, kk = d.kk;
  for (ptrdiff_t cb = 0; cb < (c + LT_V - 1) / LT_V; cb++)
    for (ptrdiff_t p = 0; p < o; p++)
      for (ptrdiff_t t = 0; t < kk; t++)
        for (ptrdiff_t l = 0; l < LT_V; l++)
          *wp++ = cb * LT_V + l < c ? w[(p * c + cb * LT_V + l) * kk + kk - 1 - t] : 0.0f;
}

/* @lathe-kernel tile */
/* the micro-kernel of a direct convolution (codegen/conv_direct.c): for the nb (1 or 2)
 * vectors b of output channels and the pixels i of a row block, out[b * obs + i * V + l]
 * = sum over k < kn of x[koff[k] + i * SW] * w[b * wbs + k * V + l]; or the same for the
 * last blocks of RL rows (lathe_dconv_tile), each row's pixels at its row's offsets */
typedef void (*lathe_dconv_fn)(const float *restrict x, const ptrdiff_t *restrict koff,
                               ptrdiff_t kn, const float *restrict w, ptrdiff_t wbs,
                               int nb, float *restrict out, ptrdiff_t obs);

/* @lathe-kernel image */
/* The geometry g[] of one direct convolution: */
enum {
  LATHE_DC_C, LATHE_DC_H, LATHE_DC_W, LATHE_DC_O, LATHE_DC_HO, LATHE_DC_WO, LATHE_DC_KH,
  LATHE_DC_KW, LATHE_DC_SH, LATHE_DC_SW, LATHE_DC_DH, LATHE_DC_DW, LATHE_DC_PT,
  LATHE_DC_PL, LATHE_DC_HP, LATHE_DC_WP, LATHE_DC_PB, LATHE_DC_PAD, LATHE_DC_RL
};

/* koff[(c * KH + kh) * KW + kw]: where tap (c, kh, kw) of output pixel (0, 0) reads */
LATHE_GEMM_SHARED void lathe_dconv_offsets(const ptrdiff_t *g, ptrdiff_t *koff) {
  for (ptrdiff_t c = 0; c < g[LATHE_DC_C]; c++)
    for (ptrdiff_t kh = 0; kh < g[LATHE_DC_KH]; kh++)
      for (ptrdiff_t kw = 0; kw < g[LATHE_DC_KW]; kw++)
        *koff++ = (c * g[LATHE_DC_HP] + kh * g[LATHE_DC_DH]) * g[LATHE_DC_WP] +
                  kw * g[LATHE_DC_DW];
}

/* the image x [C][H][W] as the convolution reads it: with its zero border in xpad
 * [C][HP][WP] when g[LATHE_DC_PAD], else x itself */
LATHE_GEMM_SHARED const float *lathe_dconv_border(const float *x, const ptrdiff_t *g,
                                                  float *xpad) {
  const ptrdiff_t C = g[LATHE_DC_C], H = g[LATHE_DC_H], W = g[LATHE_DC_W];
  const ptrdiff_t HP = g[LATHE_DC_HP], WP = g[LATHE_DC_WP];
  if (!g[LATHE_DC_PAD]) return x;
  memset(xpad, 0, (size_t)(C * HP * WP) * sizeof(float));
  for (ptrdiff_t c = 0; c < C; c++)
    for (ptrdiff_t h = 0; h < H; h++)
      memcpy(xpad + (c * HP + h + g[LATHE_DC_PT]) * WP + g[LATHE_DC_PL],
             x + (c * H + h) * W, (size_t)W * sizeof(float));
  return xpad;
}

/* the convolution of one image x [C][H][W] into the blocked tile tmp [OB][HO * WO][LT_V];
 * wp and koff as packed above; xpad: [C][HP][WP] when g[LATHE_DC_PAD]. k_main computes the
 * row blocks of PB pixels, k_last the last (shorter) blocks of RL rows at once: of rows oh to
 * oh + RL - 1 for each multiple oh of RL, the last group moved up to end at row HO - 1 (it
 * then computes a row or more again, the same sums in the same order). */
LATHE_GEMM_SHARED void lathe_dconv_tile(const float *x, const ptrdiff_t *g,
                                        const float *wp, const ptrdiff_t *koff,
                                        lathe_dconv_fn k_main, lathe_dconv_fn k_last,
                                        float *tmp, float *xpad) {
  const ptrdiff_t C = g[LATHE_DC_C], O = g[LATHE_DC_O], HO = g[LATHE_DC_HO];
  const ptrdiff_t WO = g[LATHE_DC_WO], WP = g[LATHE_DC_WP], PB = g[LATHE_DC_PB];
  const ptrdiff_t K = C * g[LATHE_DC_KH] * g[LATHE_DC_KW], P = HO * WO;
  const ptrdiff_t OB = (O + LT_V - 1) / LT_V, SH = g[LATHE_DC_SH], SW = g[LATHE_DC_SW];
  const ptrdiff_t RL = g[LATHE_DC_RL], last = (WO - 1) / PB * PB; /* the last block's column */
  const float *src = lathe_dconv_border(x, g, xpad);
  for (ptrdiff_t oh = 0; oh < HO; oh++)
    for (ptrdiff_t ob = 0; ob < OB; ob += 2) {
      const int nb = OB - ob < 2 ? 1 : 2;
      for (ptrdiff_t ow = 0; ow < last; ow += PB)
        k_main(src + oh * SH * WP + ow * SW, koff, K, wp + ob * K * LT_V, K * LT_V, nb,
               tmp + (ob * P + oh * WO + ow) * LT_V, P * LT_V);
      if (oh % RL == 0) {
        const ptrdiff_t r = oh + RL <= HO ? oh : HO - RL;
        k_last(src + r * SH * WP + last * SW, koff, K, wp + ob * K * LT_V, K * LT_V, nb,
               tmp + (ob * P + r * WO + last) * LT_V, P * LT_V);
      }
    }
}

/* lathe_dconv_tile, or another way to the same tile (lathe_wino_tile) */
typedef void (*lathe_dconv_tile_fn)(const float *x, const ptrdiff_t *g, const float *wp,
                                    const ptrdiff_t *koff, lathe_dconv_fn k_main,
                                    lathe_dconv_fn k_last, float *tmp, float *xpad);

/* @lathe-kernel unblock */
/* y [O][HO][WO] = the convolution of one image x [C][H][W]: its tile (lathe_dconv_tile or
 * lathe_wino_tile), then the tile unblocked into y */
LATHE_GEMM_SHARED void lathe_dconv_image(lathe_dconv_tile_fn tile, const float *x,
                                         const ptrdiff_t *g, const float *wp,
                                         const ptrdiff_t *koff, lathe_dconv_fn k_main,
                                         lathe_dconv_fn k_last, float *y, float *tmp,
                                         float *xpad) {
  const ptrdiff_t O = g[LATHE_DC_O], P = g[LATHE_DC_HO] * g[LATHE_DC_WO];
  const ptrdiff_t OB = (O + LT_V - 1) / LT_V;
  tile(x, g, wp, koff, k_main, k_last, tmp, xpad);
  float r[LT_V * 32]; /* unblock: NCHWc -> NCHW, 32 pixels at a time through r */
  for (ptrdiff_t ob = 0; ob < OB; ob++) {
    const ptrdiff_t lanes = O - ob * LT_V < LT_V ? O - ob * LT_V : LT_V;
    float *const yb = y + ob * LT_V * P;
    for (ptrdiff_t q0 = 0; q0 < P; q0 += 32) {
      const ptrdiff_t n = P - q0 < 32 ? P - q0 : 32;
      for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t l = 0; l < LT_V; l++) r[l * 32 + i] = tmp[(ob * P + q0 + i) * LT_V + l];
      for (ptrdiff_t l = 0; l < lanes; l++)
        for (ptrdiff_t i = 0; i < n; i++) yb[l * P + q0 + i] = r[l * 32 + i];
    }
  }
}

/* @lathe-kernel grad */
/* the micro-kernel of a direct weight gradient (codegen/conv_direct.c): for the nb (1 or
 * 2) vectors b of output channels and the taps i of a group of kernel rows,
 * acc[b * astride + i * V + l] += the sum over the ho x wo output pixels (oh, ow) of
 * x[oh * rs + ow * SW + offset of tap i] * dy[b * pstride + (oh * wo + ow) * V + l] */
typedef void (*lathe_dconv_wfn)(const float *restrict x, const float *restrict dy,
                                ptrdiff_t pstride, int nb, ptrdiff_t ho, ptrdiff_t wo,
                                ptrdiff_t rs, float *restrict acc, ptrdiff_t astride);

/* one image's share of a direct weight gradient: x [C][H][W], dy [O][HO][WO]; acc: the
 * blocked sums [OB][C * KH * KW][LT_V], dyb: dy blocked [OB][HO * WO][LT_V], xpad as for
 * lathe_dconv_border; g[LATHE_DC_PB]: kernel rows per group of taps (k_main); the last
 * (shorter) group of kernel rows by k_last, of g[LATHE_DC_RL] channels (dividing C) a call */
LATHE_GEMM_SHARED void lathe_dconv_wimage(const float *x, const float *dy,
                                          const ptrdiff_t *g, lathe_dconv_wfn k_main,
                                          lathe_dconv_wfn k_last, float *acc, float *dyb,
                                          float *xpad) {
  const ptrdiff_t C = g[LATHE_DC_C], O = g[LATHE_DC_O], HO = g[LATHE_DC_HO];
  const ptrdiff_t WO = g[LATHE_DC_WO], KH = g[LATHE_DC_KH], KW = g[LATHE_DC_KW];
  const ptrdiff_t HP = g[LATHE_DC_HP], WP = g[LATHE_DC_WP], RB = g[LATHE_DC_PB];
  const ptrdiff_t RL = g[LATHE_DC_RL];
  const ptrdiff_t K = C * KH * KW, P = HO * WO, OB = (O + LT_V - 1) / LT_V;
  const float *src = lathe_dconv_border(x, g, xpad);
  float r[LT_V * 32]; /* block: NCHW -> NCHWc, 32 pixels at a time through r */
  for (ptrdiff_t ob = 0; ob < OB; ob++) {
    const ptrdiff_t lanes = O - ob * LT_V < LT_V ? O - ob * LT_V : LT_V;
    const float *yb = dy + ob * LT_V * P;
    float *d = dyb + ob * P * LT_V;
    for (ptrdiff_t q0 = 0; q0 < P; q0 += 32) {
      const ptrdiff_t n = P - q0 < 32 ? P - q0 : 32;
      for (ptrdiff_t l = 0; l < LT_V; l++)
        for (ptrdiff_t i = 0; i < n; i++) r[l * 32 + i] = l < lanes ? yb[l * P + q0 + i] : 0.0f;
      for (ptrdiff_t i = 0; i < n; i++)
        for (ptrdiff_t l = 0; l < LT_V; l++) d[(q0 + i) * LT_V + l] = r[l * 32 + i];
    }
  }
  for (ptrdiff_t c = 0; c < C; c++)
    for (ptrdiff_t kh = 0; kh < KH; kh += RB)
      if (kh + RB <= KH || c % RL == 0)
        for (ptrdiff_t ob = 0; ob < OB; ob += 2)
          (kh + RB <= KH ? k_main : k_last)(
              src + (c * HP + kh * g[LATHE_DC_DH]) * WP, dyb + ob * P * LT_V, P * LT_V,
              OB - ob < 2 ? 1 : 2, HO, WO, g[LATHE_DC_SH] * WP,
              acc + (ob * K + (c * KH + kh) * KW) * LT_V, K * LT_V);
}

/* The integers of a lathe_dconv_wfinish call: dw [o][k], threads blocked sums stride floats
 * apart. */
typedef struct lathe_dconv_wfinish_dims {
  ptrdiff_t o, k, stride;
  int threads;
} lathe_dconv_wfinish_dims;

/* dw [o][k] = the sum over the threads t of their blocked sums acc + t * stride */
LATHE_GEMM_SHARED void lathe_dconv_wfinish(float *dw, lathe_dconv_wfinish_dims d,
                                           const float *acc) {
  const ptrdiff_t o = d.o, k = d.k, stride = d.stride;
  const int threads = d.threads;
  for (ptrdiff_t i = 0; i < o; i++)
    for (ptrdiff_t p = 0; p < k; p++) {
      float s = 0.0f;
      for (int t = 0; t < threads; t++)
        s += acc[t * stride + ((i / LT_V) * k + p) * LT_V + i % LT_V];
      dw[i * k + p] = s;
    }
}

