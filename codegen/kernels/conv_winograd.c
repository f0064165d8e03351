/* codegen/kernels/conv_winograd.c — kernel library text: Winograd's F(2x2, 3x3) inside the direct
 * path: the weight transform, the products on the direct micro-kernels, the input and output
 * transforms (codegen/conv_winograd.c emits them).
 *
 * Each `@lathe-kernel NAME` section is embedded into lathe at build time as the string
 * cg_kernel_conv_winograd_NAME (scripts/embed-kernels.py) and copied into generated files with its
 * LT_* identifiers replaced by the target's numbers (cg_kernel_emit, codegen/gemm.c); an LT_*
 * alone on a line stands for whole lines. A `@lathe-check-only` region is not embedded: it stands
 * in for code generated around the text, so that the build can compile the library as C (the
 * lathe_kernels_check target: check.c includes every file in order) under -std=c99 -Wall -Wextra
 * -Wpedantic -Werror. Nothing above the first section is embedded.
 */
/* @lathe-kernel pack_u */
/* The integers of a lathe_wino_pack_u call: o 3x3 filters over c channels. */
typedef struct lathe_wino_pack_dims {
  ptrdiff_t o, c;
} lathe_wino_pack_dims;

/* u[xi][ob][c][l] = (G g G^T)[xi] for the 3x3 filter g = w[ob * LT_V + l][c] (zero past o),
 * G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]: Winograd's F(2x2, 3x3). The weights are
 * first blocked into wt[ob][c * 9][LT_V] by lathe_dconv_pack_w (a transpose in registers),
 * so the transform runs along the lanes, LT_V filters at a time. */
LATHE_GEMM_SHARED void lathe_wino_pack_u(const float *w, lathe_wino_pack_dims d, float *u,
                                         float *wt) {
  const ptrdiff_t o = d.o, c = d.c;
  const ptrdiff_t OB = (o + LT_V - 1) / LT_V, xs = OB * c * LT_V; /* floats per xi */
  lathe_dconv_pack_w(w, (lathe_dconv_pack_dims){.o = o, .k = c * 9}, wt);
  for (ptrdiff_t ob = 0; ob < OB; ob++)
    for (ptrdiff_t ci = 0; ci < c; ci++) {
      /* the 16 values of the LT_V filters in a local block, then one row per xi: the xi
       * planes of u are a power of two apart, so single stores would evict each other */
      const float *const g = wt + (ob * c + ci) * 9 * LT_V; /* tap x of lane l: g[x * LT_V + l] */
      float r[16][LT_V];
      for (ptrdiff_t l = 0; l < LT_V; l++) {
        float t[4][3];
        for (int j = 0; j < 3; j++) { /* G g, column j */
          const float g0 = g[j * LT_V + l], g1 = g[(3 + j) * LT_V + l];
          const float g2 = g[(6 + j) * LT_V + l];
          t[0][j] = g0, t[1][j] = 0.5f * (g0 + g1 + g2);
          t[2][j] = 0.5f * (g0 - g1 + g2), t[3][j] = g2;
        }
        for (int i = 0; i < 4; i++) { /* (G g) G^T, row i */
          r[4 * i][l] = t[i][0];
          r[4 * i + 1][l] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
          r[4 * i + 2][l] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
          r[4 * i + 3][l] = t[i][2];
        }
      }
      for (int xi = 0; xi < 16; xi++)
        memcpy(u + xi * xs + (ob * c + ci) * LT_V, r[xi], sizeof r[xi]);
    }
}

/* koff[c] = c * T: the micro-kernel's taps are the input channels of v[xi] */
LATHE_GEMM_SHARED void lathe_wino_offsets(const ptrdiff_t *g, ptrdiff_t *koff) {
  const ptrdiff_t T = (g[LATHE_DC_HO] + 1) / 2 * ((g[LATHE_DC_WO] + 1) / 2);
  for (ptrdiff_t c = 0; c < g[LATHE_DC_C]; c++) koff[c] = c * T;
}

/* @lathe-kernel products */
/* m [16][OB][T][LT_V]: for each xi, the product of v[xi] ([C][T]: the tiles as the
 * micro-kernel's pixels, koff[c] = c * T) and u[xi] ([OB][C][LT_V]), pairs of channel
 * vectors, blocks of g[LATHE_DC_PB] tiles */
LATHE_GEMM_SHARED void lathe_wino_products(const ptrdiff_t *g, const float *u,
                                           const ptrdiff_t *koff, lathe_dconv_fn k_main,
                                           lathe_dconv_fn k_last, const float *v,
                                           float *m) {
  const ptrdiff_t C = g[LATHE_DC_C], OB = (g[LATHE_DC_O] + LT_V - 1) / LT_V;
  const ptrdiff_t T = (g[LATHE_DC_HO] + 1) / 2 * ((g[LATHE_DC_WO] + 1) / 2);
  const ptrdiff_t PB = g[LATHE_DC_PB];
  for (int xi = 0; xi < 16; xi++)
    for (ptrdiff_t ob = 0; ob < OB; ob += 2)
      for (ptrdiff_t t0 = 0; t0 < T; t0 += PB)
        (t0 + PB < T ? k_main : k_last)(v + xi * C * T + t0, koff, C,
                                        u + (xi * OB + ob) * C * LT_V, C * LT_V,
                                        OB - ob < 2 ? 1 : 2,
                                        m + ((xi * OB + ob) * T + t0) * LT_V, T * LT_V);
}

/* @lathe-kernel tile */
/* The convolution of one image x [C][H][W] (3x3, stride 1) into the blocked tile
 * tmp [OB][HO * WO][LT_V] by F(2x2, 3x3), as lathe_dconv_tile computes it directly; u from
 * lathe_wino_pack_u, koff from lathe_wino_offsets, the products by lathe_wino_products.
 * v [16][C][T] and m [16][OB][T][LT_V] follow the tile in tmp. */
LATHE_GEMM_SHARED void lathe_wino_tile(const float *x, const ptrdiff_t *g, const float *u,
                                       const ptrdiff_t *koff, lathe_dconv_fn k_main,
                                       lathe_dconv_fn k_last, float *tmp, float *xpad) {
  const ptrdiff_t C = g[LATHE_DC_C], O = g[LATHE_DC_O], HO = g[LATHE_DC_HO];
  const ptrdiff_t WO = g[LATHE_DC_WO], OB = (O + LT_V - 1) / LT_V;
  const ptrdiff_t TY = (HO + 1) / 2, TX = (WO + 1) / 2, T = TY * TX;
  float *const v = tmp + (OB * LT_V * HO * WO + 15) / 16 * 16;
  float *const m = v + (16 * C * T + 15) / 16 * 16;
  /* the image, or with xpad its zero-bordered copy [C][HQ][WQ]: rows and columns to the
   * last tile's (cg_conv_winograd_xpad) */
  const ptrdiff_t H = g[LATHE_DC_H], W = g[LATHE_DC_W];
  const ptrdiff_t HQ = xpad ? 2 * TY + 2 : H, WQ = xpad ? 2 * TX + 2 : W;
  const float *src = x;
  if (xpad) { /* lathe_dconv_border with the copy's size */
    ptrdiff_t gq[LATHE_DC_PAD + 1];
    memcpy(gq, g, sizeof gq);
    gq[LATHE_DC_HP] = HQ, gq[LATHE_DC_WP] = WQ, gq[LATHE_DC_PAD] = 1;
    src = lathe_dconv_border(x, gq, xpad);
  }
  /* v = B^T d B per tile, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: the columns of
   * the 4-row band of a row of tiles into e (contiguous: vectorized), then the rows of
   * each tile's patch from e into q, in whole blocks of 8 tiles (e zero past the band, the
   * extra tiles not stored): a loop of a constant 8 iterations, which Clang vectorizes too
   * (it leaves a loop of tn < 8 iterations scalar, and the CNN's rows have 6 tiles); 32 tiles
   * (66 columns) at a time */
  for (ptrdiff_t c = 0; c < C; c++)
    for (ptrdiff_t ty = 0; ty < TY; ty++)
      for (ptrdiff_t t0 = 0; t0 < TX; t0 += 32) {
        const ptrdiff_t tn = TX - t0 < 32 ? TX - t0 : 32, tb = (tn + 7) / 8 * 8;
        const float *const r0 = src + (c * HQ + 2 * ty) * WQ + 2 * t0;
        const float *const r1 = r0 + WQ, *const r2 = r1 + WQ, *const r3 = r2 + WQ;
        float e[4][66], q[4][32];
        for (ptrdiff_t x = 0; x < 2 * tn + 2; x++) {
          e[0][x] = r0[x] - r2[x], e[1][x] = r1[x] + r2[x];
          e[2][x] = r2[x] - r1[x], e[3][x] = r1[x] - r3[x];
        }
        for (int i = 0; i < 4; i++)
          for (ptrdiff_t x = 2 * tn + 2; x < 2 * tb + 2; x++) e[i][x] = 0.0f;
        for (int i = 0; i < 4; i++) {
          float *const vi = v + (ptrdiff_t)i * 4 * C * T + c * T + ty * TX + t0;
          for (ptrdiff_t b = 0; b < tb; b += 8) {
            const float *const eb = e[i] + 2 * b;
            for (int t = 0; t < 8; t++) {
              q[0][b + t] = eb[2 * t] - eb[2 * t + 2];
              q[1][b + t] = eb[2 * t + 1] + eb[2 * t + 2];
              q[2][b + t] = eb[2 * t + 2] - eb[2 * t + 1];
              q[3][b + t] = eb[2 * t + 1] - eb[2 * t + 3];
            }
          }
          for (int j = 0; j < 4; j++) memcpy(vi + j * C * T, q[j], (size_t)tn * sizeof(float));
        }
      }
  lathe_wino_products(g, u, koff, k_main, k_last, v, m);
/* @lathe-kernel tile_out */
  /* the tile: A^T m A per tile, A^T = [1 1 1 0; 0 1 -1 -1], along the lanes; the
   * pixels past HO x WO (odd sizes) are not stored */
  const ptrdiff_t S = OB * LT_V * T; /* floats from one xi to the next */
  for (ptrdiff_t ob = 0; ob < OB; ob++)
    for (ptrdiff_t t = 0; t < T; t++) {
      const ptrdiff_t ty = t / TX, tx = t % TX;
      const float *const mp = m + (ob * T + t) * LT_V;
      float *const y = tmp + (ob * HO * WO + 2 * ty * WO + 2 * tx) * LT_V;
      /* the 2x2 pixels into q, a loop the compiler vectorizes, then stored */
      float q[4][LT_V];
      for (ptrdiff_t l = 0; l < LT_V; l++) {
        const float a0 = mp[l] + mp[4 * S + l] + mp[8 * S + l];
        const float a1 = mp[S + l] + mp[5 * S + l] + mp[9 * S + l];
        const float a2 = mp[2 * S + l] + mp[6 * S + l] + mp[10 * S + l];
        const float a3 = mp[3 * S + l] + mp[7 * S + l] + mp[11 * S + l];
        const float b0 = mp[4 * S + l] - mp[8 * S + l] - mp[12 * S + l];
        const float b1 = mp[5 * S + l] - mp[9 * S + l] - mp[13 * S + l];
        const float b2 = mp[6 * S + l] - mp[10 * S + l] - mp[14 * S + l];
        const float b3 = mp[7 * S + l] - mp[11 * S + l] - mp[15 * S + l];
        q[0][l] = a0 + a1 + a2, q[1][l] = a1 - a2 - a3;
        q[2][l] = b0 + b1 + b2, q[3][l] = b1 - b2 - b3;
      }
      memcpy(y, q[0], sizeof q[0]);
      if (2 * tx + 1 < WO) memcpy(y + LT_V, q[1], sizeof q[1]);
      if (2 * ty + 1 < HO) {
        memcpy(y + WO * LT_V, q[2], sizeof q[2]);
        if (2 * tx + 1 < WO) memcpy(y + (WO + 1) * LT_V, q[3], sizeof q[3]);
      }
    }
}

