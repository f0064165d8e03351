/* codegen/conv_winograd.c — 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3), inside the
 * direct NCHWc path (codegen/conv_direct.c).
 *
 * Each 2x2 block of output pixels ("tile", T = ceil(HO/2) * ceil(WO/2) per image) is
 *   Y = A^T [ (G g G^T) (.) (B^T d B) ] A
 * over its 4x4 input patch d and each 3x3 filter g: 16 multiplies per input channel where the
 * direct convolution does 36, at the cost of the three small transforms. Per call and then
 * per image:
 *   weights   u[xi][ob][c][l] = (G g G^T)[xi] for g = w[ob*V + l][c]   (lathe_wino_pack_u)
 *   input     v[xi][c][t] = (B^T d B)[xi] for tile t's patch of channel c, read with no
 *             bounds test: from the image, or from a zero-bordered copy when the convolution
 *             pads or an output size is odd (lathe_wino_tile)
 *   products  m[xi][ob][t][l] = sum over c of v[xi][c][t] * u[xi][ob][c][l]: for each of the
 *             16 xi a small GEMM, run by the direct convolution's own micro-kernel (the tiles
 *             as its "pixels", koff[c] = c * T, K = C: lathe_wino_offsets)
 *   output    the blocked tile tmp[ob][q][l] of lathe_dconv_tile, q = oh * WO + ow, from
 *             A^T m A per tile (along the V lanes), so every epilogue, pooling and unblocking
 *             of conv_direct.c applies unchanged
 * The transforms' constants are 0, +-1 and 1/2: the result differs from the direct sum by a
 * few f32 roundings (tests/unit/test_codegen_conv_direct.c holds it to rtol 1e-4).
 * Measured on the CNN example's second convolution (32 -> 64 channels, 13 x 13 -> 11 x 11):
 * 38 us per image direct, 28 us here, plus the weight transform per call (the weights change
 * at every train step): 17 us element by element, 3 us blocked first by lathe_dconv_pack_w. Used
 * for forward conv2d with a 3x3 kernel, stride and dilation 1, at least 16 input and output
 * channels and at least 4 images, where the weight transform pays for itself
 * (cg_conv_winograd_suits). Not for the stride-1 input gradient (a transposed convolution run as a
 * convolution): measured on the CNN example's (64 -> 32 channels, 7 x 7 tiles an image), the input
 * transform of rows of 7 tiles stays scalar and costs what the products save. Invariant: the
 * per-thread scratch is the tile, then v, then m (each rounded to 64 bytes), then the zero-bordered
 * copy, as cg_conv_winograd_bytes and cg_conv_winograd_xpad count and lathe_wino_tile computes. The
 * input transform has no arrays of variable extent and no bounds tests: an earlier form with both
 * took the JIT's optimizer twice as long.
 */
#include "gemm.h"
#include "lower_conv.h"

bool cg_conv_winograd_suits(const Graph *g, NodeId id) {
  const Node *n = graph_node(g, id);
  if (n->op != OP_CONV2D || n->attr.conv.groups != 1) return false;
  const Shape *w = &graph_node(g, n->in[1])->shape;
  const struct IrConvAttr *a = &n->attr.conv;
  return graph_node(g, n->in[1])->op != OP_CONST && w->dim[2] == 3 && w->dim[3] == 3 &&
         a->stride[0] == 1 && a->stride[1] == 1 && a->dilation[0] == 1 && a->dilation[1] == 1 &&
         w->dim[0] >= 16 && w->dim[1] >= 16 && graph_node(g, n->in[0])->shape.dim[0] >= 4;
}

static int64_t round16(int64_t floats) {
  return (floats + 15) / 16 * 16;
}

int64_t cg_conv_winograd_tiles(int64_t ho, int64_t wo) {
  return ((ho + 1) / 2) * ((wo + 1) / 2);
}

int64_t cg_conv_winograd_bytes(int64_t c, int64_t o_blocked, int64_t tiles) {
  return 4 * (round16(16 * c * tiles) + round16(16 * o_blocked * tiles));
}

/* The input transform reads the 2 * TY + 2 rows and 2 * TX + 2 columns the tiles cover with
 * no bounds test: a padded convolution, or an odd output size (whose last tiles reach a row or
 * column past the image), reads a zero-bordered copy of that size instead (lathe_wino_tile). */
int64_t cg_conv_winograd_xpad(int64_t c, int64_t ho, int64_t wo, bool pad) {
  if (!pad && ho % 2 == 0 && wo % 2 == 0) return 0;
  return (c * (ho + ho % 2 + 2) * (wo + wo % 2 + 2) * 4 + 63) / 64 * 64;
}

static const char mark[] = "lathe_wino_tile (codegen/conv_winograd.c)";

static const char pack_text[] =
    "/* u[xi][ob][c][l] = (G g G^T)[xi] for the 3x3 filter g = w[ob * @V@ + l][c] (zero past o),\n"
    " * G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]: Winograd's F(2x2, 3x3). The weights are\n"
    " * first blocked into wt[ob][c * 9][@V@] by lathe_dconv_pack_w (a transpose in registers),\n"
    " * so the transform runs along the lanes, @V@ filters at a time. */\n"
    "LATHE_GEMM_SHARED void lathe_wino_pack_u(const float *w, ptrdiff_t o, ptrdiff_t c,\n"
    "                                         float *u, float *wt) {\n"
    "  const ptrdiff_t OB = (o + @V@ - 1) / @V@, xs = OB * c * @V@; /* floats per xi */\n"
    "  lathe_dconv_pack_w(w, o, c * 9, wt);\n"
    "  for (ptrdiff_t ob = 0; ob < OB; ob++)\n"
    "    for (ptrdiff_t ci = 0; ci < c; ci++) {\n"
    "      /* the 16 values of the @V@ filters in a local block, then one row per xi: the xi\n"
    "       * planes of u are a power of two apart, so single stores would evict each other */\n"
    "      const float *const g = wt + (ob * c + ci) * 9 * @V@; /* tap x of lane l: g[x * @V@ + l] "
    "*/\n"
    "      float r[16][@V@];\n"
    "      for (ptrdiff_t l = 0; l < @V@; l++) {\n"
    "        float t[4][3];\n"
    "        for (int j = 0; j < 3; j++) { /* G g, column j */\n"
    "          const float g0 = g[j * @V@ + l], g1 = g[(3 + j) * @V@ + l];\n"
    "          const float g2 = g[(6 + j) * @V@ + l];\n"
    "          t[0][j] = g0, t[1][j] = 0.5f * (g0 + g1 + g2);\n"
    "          t[2][j] = 0.5f * (g0 - g1 + g2), t[3][j] = g2;\n"
    "        }\n"
    "        for (int i = 0; i < 4; i++) { /* (G g) G^T, row i */\n"
    "          r[4 * i][l] = t[i][0];\n"
    "          r[4 * i + 1][l] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);\n"
    "          r[4 * i + 2][l] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);\n"
    "          r[4 * i + 3][l] = t[i][2];\n"
    "        }\n"
    "      }\n"
    "      for (int xi = 0; xi < 16; xi++)\n"
    "        memcpy(u + xi * xs + (ob * c + ci) * @V@, r[xi], sizeof r[xi]);\n"
    "    }\n"
    "}\n\n"
    "/* koff[c] = c * T: the micro-kernel's taps are the input channels of v[xi] */\n"
    "LATHE_GEMM_SHARED void lathe_wino_offsets(const ptrdiff_t *g, ptrdiff_t *koff) {\n"
    "  const ptrdiff_t T = (g[LATHE_DC_HO] + 1) / 2 * ((g[LATHE_DC_WO] + 1) / 2);\n"
    "  for (ptrdiff_t c = 0; c < g[LATHE_DC_C]; c++) koff[c] = c * T;\n"
    "}\n\n";

static const char products_text[] =
    "/* m [16][OB][T][@V@]: for each xi, the product of v[xi] ([C][T]: the tiles as the\n"
    " * micro-kernel's pixels, koff[c] = c * T) and u[xi] ([OB][C][@V@]), pairs of channel\n"
    " * vectors, blocks of g[LATHE_DC_PB] tiles */\n"
    "LATHE_GEMM_SHARED void lathe_wino_products(const ptrdiff_t *g, const float *u,\n"
    "                                           const ptrdiff_t *koff, lathe_dconv_fn k_main,\n"
    "                                           lathe_dconv_fn k_last, const float *v,\n"
    "                                           float *m) {\n"
    "  const ptrdiff_t C = g[LATHE_DC_C], OB = (g[LATHE_DC_O] + @V@ - 1) / @V@;\n"
    "  const ptrdiff_t T = (g[LATHE_DC_HO] + 1) / 2 * ((g[LATHE_DC_WO] + 1) / 2);\n"
    "  const ptrdiff_t PB = g[LATHE_DC_PB];\n"
    "  for (int xi = 0; xi < 16; xi++)\n"
    "    for (ptrdiff_t ob = 0; ob < OB; ob += 2)\n"
    "      for (ptrdiff_t t0 = 0; t0 < T; t0 += PB)\n"
    "        (t0 + PB < T ? k_main : k_last)(v + xi * C * T + t0, koff, C,\n"
    "                                        u + (xi * OB + ob) * C * @V@, C * @V@,\n"
    "                                        OB - ob < 2 ? 1 : 2,\n"
    "                                        m + ((xi * OB + ob) * T + t0) * @V@, T * @V@);\n"
    "}\n\n";

static const char tile_text[] =
    "/* The convolution of one image x [C][H][W] (3x3, stride 1) into the blocked tile\n"
    " * tmp [OB][HO * WO][@V@] by F(2x2, 3x3), as lathe_dconv_tile computes it directly; u from\n"
    " * lathe_wino_pack_u, koff from lathe_wino_offsets, the products by lathe_wino_products.\n"
    " * v [16][C][T] and m [16][OB][T][@V@] follow the tile in tmp. */\n"
    "LATHE_GEMM_SHARED void lathe_wino_tile(const float *x, const ptrdiff_t *g, const float *u,\n"
    "                                       const ptrdiff_t *koff, lathe_dconv_fn k_main,\n"
    "                                       lathe_dconv_fn k_last, float *tmp, float *xpad) {\n"
    "  const ptrdiff_t C = g[LATHE_DC_C], O = g[LATHE_DC_O], HO = g[LATHE_DC_HO];\n"
    "  const ptrdiff_t WO = g[LATHE_DC_WO], OB = (O + @V@ - 1) / @V@;\n"
    "  const ptrdiff_t TY = (HO + 1) / 2, TX = (WO + 1) / 2, T = TY * TX;\n"
    "  float *const v = tmp + (OB * @V@ * HO * WO + 15) / 16 * 16;\n"
    "  float *const m = v + (16 * C * T + 15) / 16 * 16;\n"
    "  /* the image, or with xpad its zero-bordered copy [C][HQ][WQ]: rows and columns to the\n"
    "   * last tile's (cg_conv_winograd_xpad) */\n"
    "  const ptrdiff_t H = g[LATHE_DC_H], W = g[LATHE_DC_W];\n"
    "  const ptrdiff_t HQ = xpad ? 2 * TY + 2 : H, WQ = xpad ? 2 * TX + 2 : W;\n"
    "  const float *src = x;\n"
    "  if (xpad) { /* lathe_dconv_border with the copy's size */\n"
    "    ptrdiff_t gq[LATHE_DC_PAD + 1];\n"
    "    memcpy(gq, g, sizeof gq);\n"
    "    gq[LATHE_DC_HP] = HQ, gq[LATHE_DC_WP] = WQ, gq[LATHE_DC_PAD] = 1;\n"
    "    src = lathe_dconv_border(x, gq, xpad);\n"
    "  }\n"
    "  /* v = B^T d B per tile, B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]: the columns of\n"
    "   * the 4-row band of a row of tiles into e (contiguous: vectorized), then the rows of\n"
    "   * each tile's patch from e; 32 tiles (66 columns) at a time */\n"
    "  for (ptrdiff_t c = 0; c < C; c++)\n"
    "    for (ptrdiff_t ty = 0; ty < TY; ty++)\n"
    "      for (ptrdiff_t t0 = 0; t0 < TX; t0 += 32) {\n"
    "        const ptrdiff_t tn = TX - t0 < 32 ? TX - t0 : 32;\n"
    "        const float *const r0 = src + (c * HQ + 2 * ty) * WQ + 2 * t0;\n"
    "        const float *const r1 = r0 + WQ, *const r2 = r1 + WQ, *const r3 = r2 + WQ;\n"
    "        float e[4][66];\n"
    "        for (ptrdiff_t x = 0; x < 2 * tn + 2; x++) {\n"
    "          e[0][x] = r0[x] - r2[x], e[1][x] = r1[x] + r2[x];\n"
    "          e[2][x] = r2[x] - r1[x], e[3][x] = r1[x] - r3[x];\n"
    "        }\n"
    "        for (int i = 0; i < 4; i++) {\n"
    "          float *const vi = v + (ptrdiff_t)i * 4 * C * T + c * T + ty * TX + t0;\n"
    "          for (ptrdiff_t t = 0; t < tn; t++) {\n"
    "            vi[t] = e[i][2 * t] - e[i][2 * t + 2];\n"
    "            vi[C * T + t] = e[i][2 * t + 1] + e[i][2 * t + 2];\n"
    "            vi[2 * C * T + t] = e[i][2 * t + 2] - e[i][2 * t + 1];\n"
    "            vi[3 * C * T + t] = e[i][2 * t + 1] - e[i][2 * t + 3];\n"
    "          }\n"
    "        }\n"
    "      }\n"
    "  lathe_wino_products(g, u, koff, k_main, k_last, v, m);\n";

/* the rest of lathe_wino_tile, after the products (a second string: C99 compilers need only
 * take 4095 characters in one) */
static const char tile_out_text[] =

    "  /* the tile: A^T m A per tile, A^T = [1 1 1 0; 0 1 -1 -1], along the lanes; the\n"
    "   * pixels past HO x WO (odd sizes) are not stored */\n"
    "  const ptrdiff_t S = OB * @V@ * T; /* floats from one xi to the next */\n"
    "  for (ptrdiff_t ob = 0; ob < OB; ob++)\n"
    "    for (ptrdiff_t t = 0; t < T; t++) {\n"
    "      const ptrdiff_t ty = t / TX, tx = t % TX;\n"
    "      const float *const mp = m + (ob * T + t) * @V@;\n"
    "      float *const y = tmp + (ob * HO * WO + 2 * ty * WO + 2 * tx) * @V@;\n"
    "      /* the 2x2 pixels into q, a loop the compiler vectorizes, then stored */\n"
    "      float q[4][@V@];\n"
    "      for (ptrdiff_t l = 0; l < @V@; l++) {\n"
    "        const float a0 = mp[l] + mp[4 * S + l] + mp[8 * S + l];\n"
    "        const float a1 = mp[S + l] + mp[5 * S + l] + mp[9 * S + l];\n"
    "        const float a2 = mp[2 * S + l] + mp[6 * S + l] + mp[10 * S + l];\n"
    "        const float a3 = mp[3 * S + l] + mp[7 * S + l] + mp[11 * S + l];\n"
    "        const float b0 = mp[4 * S + l] - mp[8 * S + l] - mp[12 * S + l];\n"
    "        const float b1 = mp[5 * S + l] - mp[9 * S + l] - mp[13 * S + l];\n"
    "        const float b2 = mp[6 * S + l] - mp[10 * S + l] - mp[14 * S + l];\n"
    "        const float b3 = mp[7 * S + l] - mp[11 * S + l] - mp[15 * S + l];\n"
    "        q[0][l] = a0 + a1 + a2, q[1][l] = a1 - a2 - a3;\n"
    "        q[2][l] = b0 + b1 + b2, q[3][l] = b1 - b2 - b3;\n"
    "      }\n"
    "      memcpy(y, q[0], sizeof q[0]);\n"
    "      if (2 * tx + 1 < WO) memcpy(y + @V@, q[1], sizeof q[1]);\n"
    "      if (2 * ty + 1 < HO) {\n"
    "        memcpy(y + WO * @V@, q[2], sizeof q[2]);\n"
    "        if (2 * tx + 1 < WO) memcpy(y + (WO + 1) * @V@, q[3], sizeof q[3]);\n"
    "      }\n"
    "    }\n"
    "}\n\n";

void cg_conv_winograd_emit(CgFunc *f) {
  if (!cg_gemm_once(f, mark)) return;
  cg_conv_emit_text(f, pack_text);
  cg_conv_emit_text(f, products_text);
  cg_conv_emit_text(f, tile_text);
  cg_conv_emit_text(f, tile_out_text);
}
