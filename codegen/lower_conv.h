/* codegen/lower_conv.h — the fused convolution lowering of lower_conv.c, for the op table's
 * group lowering (lower.c). The per-op lowerings of the convolution and pooling ops are
 * declared with the others in lower_hooks.h. Private to codegen/. */
#ifndef LATHE_CODEGEN_LOWER_CONV_H
#define LATHE_CODEGEN_LOWER_CONV_H

#include "gemm.h"

/* A CONV2D heading a fused group (passes/fuse.c: a conv2d in the NCHWc layout and its
 * elementwise epilogue): the direct convolution with the epilogue per image when it applies,
 * else the convolution into a staging buffer (store->partial, or scratch: cg_conv_scratch
 * counts it for a fused conv, workspace.c) and the epilogue in a loop over it (lower_conv.c). */
bool cg_conv_lower_fused(CgFunc *f, NodeId id, const CgGemmStore *store);
#endif
