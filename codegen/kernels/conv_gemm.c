/* codegen/kernels/conv_gemm.c — kernel library text: the implicit-GEMM convolutions' pack
 * routines (im2col, its transpose, the transposed convolution's gather), the weight transpose
 * and the geometry names they read (codegen/conv_gemm.c emits them).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_conv_gemm_NAME (scripts/embed-kernels.py) and copied into generated files with its
 * LT_* identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_*
 * alone on a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands
 * in for code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel geometry */
/* The geometry g[] of one implicit-GEMM convolution (lathe_gemm_b.g): */
enum {
  LATHE_CV_ROWS, LATHE_CV_H, LATHE_CV_W, LATHE_CV_KH, LATHE_CV_KW, LATHE_CV_SH, LATHE_CV_SW,
  LATHE_CV_PH, LATHE_CV_PW, LATHE_CV_DH, LATHE_CV_DW, LATHE_CV_HO, LATHE_CV_WO
};

/* @lathe-kernel run */
/* dst[t] = plane[ih][iw0 + t * sw] for t in [0, len), 0 outside the h x w plane */
LATHE_GEMM_SHARED void lathe_conv_run(float *dst, const float *plane, ptrdiff_t h,
                                      ptrdiff_t w, ptrdiff_t ih, ptrdiff_t iw0,
                                      ptrdiff_t sw, ptrdiff_t len) {
  ptrdiff_t lo = iw0 >= 0 ? 0 : sw == 1 ? -iw0 : (sw - 1 - iw0) / sw;
  ptrdiff_t hi = iw0 > w - 1 ? 0 : sw == 1 ? w - iw0 : (w - 1 - iw0) / sw + 1;
  if (ih < 0 || ih >= h) hi = 0;
  if (hi > len) hi = len;
  if (lo > hi) lo = hi;
  const float *src = plane + ih * w + iw0;
  LATHE_NOVEC for (ptrdiff_t t = 0; t < lo; t++) dst[t] = 0.0f;
  if (sw == 1) {
    for (ptrdiff_t t = lo; t < hi; t++) dst[t] = src[t];
  } else {
    LATHE_NOVEC for (ptrdiff_t t = lo; t < hi; t++) dst[t] = src[t * sw];
  }
  LATHE_NOVEC for (ptrdiff_t t = hi; t < len; t++) dst[t] = 0.0f;
}

/* @lathe-kernel im2col */
/* im2col(X) rows [p0, p0 + kc) (channel, kh, kw) x columns [j0, j0 + nc) (output pixels)
 * of the image at b->p, as lathe_gemm_pack_strided lays them out: one run per output row
 * a sliver crosses */
LATHE_GEMM_SHARED void lathe_conv_pack_im2col(const lathe_gemm_b *b, ptrdiff_t p0,
                                              ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,
                                              float *dst) {
  const ptrdiff_t *g = b->g, H = g[LATHE_CV_H], W = g[LATHE_CV_W], KH = g[LATHE_CV_KH];
  const ptrdiff_t KW = g[LATHE_CV_KW], SH = g[LATHE_CV_SH], SW = g[LATHE_CV_SW];
  const ptrdiff_t PH = g[LATHE_CV_PH], PW = g[LATHE_CV_PW], DH = g[LATHE_CV_DH];
  const ptrdiff_t DW = g[LATHE_CV_DW], WO = g[LATHE_CV_WO];
  for (ptrdiff_t j = 0; j < nc; j += LT_NR) {
    const ptrdiff_t w = nc - j < LT_NR ? nc - j : LT_NR;
    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += LT_NR) {
      const float *xc = b->p + p / (KH * KW) * H * W;
      const ptrdiff_t hoff = p / KW % KH * DH - PH, woff = p % KW * DW - PW;
      ptrdiff_t oh = (j0 + j) / WO, ow = (j0 + j) % WO, x = 0;
      while (x < w) {
        const ptrdiff_t len = WO - ow < w - x ? WO - ow : w - x;
        lathe_conv_run(dst + x, xc, H, W, oh * SH + hoff, ow * SW + woff, SW, len);
        x += len, ow = 0, oh++;
      }
      LATHE_NOVEC for (; x < LT_NR; x++) dst[x] = 0.0f;
    }
  }
}

/* @lathe-kernel im2col_t */
/* im2col(X)^T: rows [p0, p0 + kc) (output pixels) x columns [j0, j0 + nc) (channel, kh,
 * kw) */
LATHE_GEMM_SHARED void lathe_conv_pack_im2col_t(const lathe_gemm_b *b, ptrdiff_t p0,
                                                ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,
                                                float *dst) {
  const ptrdiff_t *g = b->g, H = g[LATHE_CV_H], W = g[LATHE_CV_W], KH = g[LATHE_CV_KH];
  const ptrdiff_t KW = g[LATHE_CV_KW], SH = g[LATHE_CV_SH], SW = g[LATHE_CV_SW];
  const ptrdiff_t PH = g[LATHE_CV_PH], PW = g[LATHE_CV_PW], DH = g[LATHE_CV_DH];
  const ptrdiff_t DW = g[LATHE_CV_DW], WO = g[LATHE_CV_WO];
  for (ptrdiff_t j = 0; j < nc; j += LT_NR) {
    const ptrdiff_t w = nc - j < LT_NR ? nc - j : LT_NR;
    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += LT_NR) {
      const ptrdiff_t ih0 = p / WO * SH - PH, iw0 = p % WO * SW - PW;
      ptrdiff_t c = (j0 + j) / (KH * KW), kh = (j0 + j) / KW % KH, kw = (j0 + j) % KW;
      ptrdiff_t x = 0;
      LATHE_NOVEC for (; x < w; x++) {
        const ptrdiff_t ih = ih0 + kh * DH, iw = iw0 + kw * DW;
        dst[x] = ih >= 0 && ih < H && iw >= 0 && iw < W ? b->p[(c * H + ih) * W + iw]
                                                        : 0.0f;
        if (++kw == KW) {
          kw = 0;
          if (++kh == KH) kh = 0, c++;
        }
      }
      LATHE_NOVEC for (; x < LT_NR; x++) dst[x] = 0.0f;
    }
  }
}

/* @lathe-kernel gather */
/* the transposed convolution's B: rows [p0, p0 + kc) (Y channel, kh, kw) x columns
 * [j0, j0 + nc) (X pixels): the Y pixel the tap maps onto the X pixel, or 0 */
LATHE_GEMM_SHARED void lathe_conv_pack_gather(const lathe_gemm_b *b, ptrdiff_t p0,
                                              ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,
                                              float *dst) {
  const ptrdiff_t *g = b->g, W = g[LATHE_CV_W], KH = g[LATHE_CV_KH], KW = g[LATHE_CV_KW];
  const ptrdiff_t SH = g[LATHE_CV_SH], SW = g[LATHE_CV_SW], PH = g[LATHE_CV_PH];
  const ptrdiff_t PW = g[LATHE_CV_PW], DH = g[LATHE_CV_DH], DW = g[LATHE_CV_DW];
  const ptrdiff_t HO = g[LATHE_CV_HO], WO = g[LATHE_CV_WO];
  for (ptrdiff_t j = 0; j < nc; j += LT_NR) {
    const ptrdiff_t w = nc - j < LT_NR ? nc - j : LT_NR;
    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += LT_NR) {
      const float *yc = b->p + p / (KH * KW) * HO * WO;
      const ptrdiff_t hoff = PH - p / KW % KH * DH, woff = PW - p % KW * DW;
      ptrdiff_t h = (j0 + j) / W, wc = (j0 + j) % W, x = 0;
      while (SH == 1 && SW == 1 && x < w) { /* stride 1: runs, as in im2col */
        const ptrdiff_t len = W - wc < w - x ? W - wc : w - x;
        lathe_conv_run(dst + x, yc, HO, WO, h + hoff, wc + woff, 1, len);
        x += len, wc = 0, h++;
      }
      LATHE_NOVEC for (; x < w; x++) {
        ptrdiff_t yh = h + hoff, yw = wc + woff;
        int ok = yh >= 0 && yw >= 0;
        if (SH != 1) ok = ok && yh % SH == 0, yh /= SH;
        if (SW != 1) ok = ok && yw % SW == 0, yw /= SW;
        dst[x] = ok && yh < HO && yw < WO ? yc[yh * WO + yw] : 0.0f;
        if (++wc == W) wc = 0, h++;
      }
      LATHE_NOVEC for (; x < LT_NR; x++) dst[x] = 0.0f;
    }
  }
}

/* @lathe-kernel weight_t */
/* The integers of a lathe_conv_weight_t call: weights w [groups][og][cg][kk]. */
typedef struct lathe_conv_weight_dims {
  ptrdiff_t groups, og, cg, kk;
} lathe_conv_weight_dims;

/* wt[g][ci][o][t] = w[g][o][ci][t]: the weights of each group with O and C swapped */
LATHE_GEMM_SHARED void lathe_conv_weight_t(const float *w, lathe_conv_weight_dims d, float *wt) {
  const ptrdiff_t groups = d.groups, og = d.og, cg = d.cg, kk = d.kk;
  for (ptrdiff_t gi = 0; gi < groups; gi++)
    for (ptrdiff_t o = 0; o < og; o++)
      for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t t = 0; t < kk; t++)
          wt[((gi * cg + ci) * og + o) * kk + t] = w[((gi * og + o) * cg + ci) * kk + t];
}

