/* codegen/conv.h — the convolution kernels of the kernel library (private to codegen/): the
 * implicit GEMM (conv_gemm.c), the direct NCHWc convolution (conv_direct.c) and Winograd's
 * F(2x2, 3x3) inside it (conv_winograd.c). Which one computes a node is recorded in the IR
 * by passes/layout.c (IrConvAttr.algo); cg_conv_algo reads it for a target. The op-level
 * lowerings that dispatch on it are in lower_conv.c. */
#ifndef LATHE_CODEGEN_CONV_H
#define LATHE_CODEGEN_CONV_H

#include "gemm.h"

/* The algorithm that computes convolution node id of g on o's target: the one the layout
 * pass recorded (or would record: passes_conv_algo, when it did not run), except that DIRECT
 * and WINOGRAD run as GEMM (or NAIVE when the GEMM cannot take the operands) where the
 * target cannot run them: no vector kernels (generic), or a weight gradient whose kernel row
 * needs more accumulator registers than the target has. UNSET for a node that is no
 * convolution. The one place that reads IrConvAttr.algo. */
IrConvAlgo cg_conv_algo(const Graph *g, NodeId id, const CgOptions *o);

/* The implicit GEMM (algo GEMM): its lowering and the scratch bytes it needs. */
bool cg_conv_gemm_lower(CgFunc *f, NodeId id);
int64_t cg_conv_gemm_scratch(const Graph *g, NodeId id, const CgOptions *o);

/* The direct convolution in the blocked NCHWc layout (algo DIRECT or WINOGRAD): its lowering
 * and the scratch bytes it needs. */
bool cg_conv_direct_lower(CgFunc *f, NodeId id);
/* ... with an epilogue: store (codegen/gemm.h) emits each finished element y[b, o, oh, ow]
 * and the fused members computed from it, per image while its tile is in cache */
bool cg_conv_direct_lower_fused(CgFunc *f, NodeId id, const CgGemmStore *store);
int64_t cg_conv_direct_scratch(const Graph *g, NodeId id, const CgOptions *o);
/* whether input k of node conv is a constant (baked weights) that conv_direct.c blocks into
 * a table of its own at compile time (so the plain table is not needed for it) */
bool cg_conv_direct_packs_const(const Graph *g, NodeId conv, int k, const CgOptions *o);

/* Winograd's F(2x2, 3x3) inside the direct path (conv_winograd.c, algo WINOGRAD): the tiles of
 * an HO x WO output, the per-thread scratch after the tile (c input channels, o_blocked output
 * channels rounded up to whole vectors), and the routines (lathe_wino_pack_u,
 * lathe_wino_offsets, lathe_wino_tile), written once per file. */
int64_t cg_conv_winograd_tiles(int64_t ho, int64_t wo);
int64_t cg_conv_winograd_bytes(int64_t c, int64_t o_blocked, int64_t tiles);
/* the bytes of the zero-bordered copy of a c-channel image (0: read in place) */
int64_t cg_conv_winograd_xpad(int64_t c, int64_t ho, int64_t wo, bool pad);
void cg_conv_winograd_emit(CgFunc *f);

#endif
