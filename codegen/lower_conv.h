/* codegen/lower_conv.h — lowerings of the convolution and pooling ops (lower_conv.c), named
 * in the lower column of ir/ops.def and collected into the table by lower.c. Private to
 * codegen/. */
#ifndef LATHE_CODEGEN_LOWER_CONV_H
#define LATHE_CODEGEN_LOWER_CONV_H

#include "lower.h"

bool lower_conv2d(CgFunc *f, NodeId id);
bool lower_conv_transpose2d(CgFunc *f, NodeId id);
bool lower_conv2d_grad_weight(CgFunc *f, NodeId id);
bool lower_max_pool2d(CgFunc *f, NodeId id);
bool lower_max_pool2d_grad(CgFunc *f, NodeId id);
bool lower_train_select(CgFunc *f, NodeId id);

/* The f32 convolutions on the shared GEMM routine (conv_gemm.c): whether node id of g takes
 * that path, its lowering, and the scratch bytes it needs (0 when it does not apply). */
bool cg_conv_gemm_applies(const Graph *g, NodeId id);
bool cg_conv_gemm_lower(CgFunc *f, NodeId id);
int64_t cg_conv_scratch(const Graph *g, NodeId id, const CgOptions *o);
/* the same without the staging buffer of a fused conv (cg_conv_lower_fused) */
int64_t cg_conv_plain_scratch(const Graph *g, NodeId id, const CgOptions *o);

/* The convolutions in the blocked NCHWc layout (passes/layout.c), as direct convolutions
 * (conv_direct.c): whether node id takes that path (a vector target), its lowering, and the
 * scratch bytes it needs (0 when it does not apply). */
bool cg_conv_direct_applies(const Graph *g, NodeId id, const CgOptions *o);
bool cg_conv_direct_lower(CgFunc *f, NodeId id);
/* ... with an epilogue: store (codegen/gemm.h) emits each finished element y[b, o, oh, ow]
 * and the fused members computed from it, per image while its tile is in cache */
struct CgGemmStore;
bool cg_conv_direct_lower_fused(CgFunc *f, NodeId id, const struct CgGemmStore *store);

/* A CONV2D heading a fused group (passes/fuse.c: a conv2d in the NCHWc layout and its
 * elementwise epilogue): the direct convolution with the epilogue per image when it applies,
 * else the convolution into a staging buffer (store->partial, or scratch: cg_conv_scratch
 * counts it for a fused conv) and the epilogue in a loop over it (lower_conv.c). */
bool cg_conv_lower_fused(CgFunc *f, NodeId id, const struct CgGemmStore *store);
int64_t cg_conv_direct_scratch(const Graph *g, NodeId id, const CgOptions *o);
/* whether input k of node conv is a constant (baked weights) that conv_direct.c blocks into
 * a table of its own at compile time (so the plain table is not needed for it) */
bool cg_conv_direct_packs_const(const Graph *g, NodeId conv, int k, const CgOptions *o);
/* appends C text to f->globals with @V@ replaced by the target's floats per vector */
void cg_conv_emit_text(CgFunc *f, const char *text);

/* Winograd's F(2x2, 3x3) inside the direct path (conv_winograd.c): whether conv node id
 * suits it (a forward 3x3 stride-1 convolution, >= 16 channels in and out, >= 4 images,
 * weights not baked), the tiles of an HO x WO output, the per-thread scratch after the tile (c
 * input channels, o_blocked output channels rounded up to whole vectors), and the routines
 * (lathe_wino_pack_u, lathe_wino_offsets, lathe_wino_tile), written once per file. */
bool cg_conv_winograd_suits(const Graph *g, NodeId id);
int64_t cg_conv_winograd_tiles(int64_t ho, int64_t wo);
int64_t cg_conv_winograd_bytes(int64_t c, int64_t o_blocked, int64_t tiles);
/* the bytes of the zero-bordered copy of a c-channel image (0: read in place) */
int64_t cg_conv_winograd_xpad(int64_t c, int64_t ho, int64_t wo, bool pad);
void cg_conv_winograd_emit(CgFunc *f);

#endif
