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
 * (passes/layout.c records IR_CONV_ALGO_WINOGRAD then). Not for the stride-1 input gradient (a
 * transposed convolution run as a convolution): measured on the CNN example's (64 -> 32 channels, 7
 * x 7 tiles an image), the input transform of rows of 7 tiles stays scalar and costs what the
 * products save. Invariant: the per-thread scratch is the tile, then v, then m (each rounded to 64
 * bytes), then the zero-bordered copy, as cg_conv_winograd_bytes and cg_conv_winograd_xpad count
 * and lathe_wino_tile computes. The input transform has no arrays of variable extent and no bounds
 * tests: an earlier form with both took the JIT's optimizer twice as long.
 */
#include "conv.h"
#include "kernels_text.h"

int64_t cg_conv_winograd_tiles(int64_t ho, int64_t wo) {
  return ((ho + 1) / 2) * ((wo + 1) / 2);
}

int64_t cg_conv_winograd_bytes(int64_t c, int64_t o_blocked, int64_t tiles) {
  return ir_workspace_align(4 * 16 * c * tiles) + ir_workspace_align(4 * 16 * o_blocked * tiles);
}

/* The input transform reads the 2 * TY + 2 rows and 2 * TX + 2 columns the tiles cover with
 * no bounds test: a padded convolution, or an odd output size (whose last tiles reach a row or
 * column past the image), reads a zero-bordered copy of that size instead (lathe_wino_tile). */
int64_t cg_conv_winograd_xpad(int64_t c, int64_t ho, int64_t wo, bool pad) {
  if (!pad && ho % 2 == 0 && wo % 2 == 0) return 0;
  return ir_workspace_align(c * (ho + ho % 2 + 2) * (wo + wo % 2 + 2) * 4);
}

static const char mark[] = "lathe_wino_tile (codegen/conv_winograd.c)";

/* the rest of lathe_wino_tile, after the products (a second string: C99 compilers need only
 * take 4095 characters in one) */

void cg_conv_winograd_emit(CgFunc *f) {
  if (!cg_gemm_once(f, mark)) return;
  cg_kernel_emit(f, cg_kernel_conv_winograd_pack_u);
  cg_kernel_emit(f, cg_kernel_conv_winograd_products);
  cg_kernel_emit(f, cg_kernel_conv_winograd_tile);
  cg_kernel_emit(f, cg_kernel_conv_winograd_tile_out);
}
