/* codegen/lower_conv.h — lowerings of the convolution and pooling ops (lower_conv.c), named
 * in the lower column of ir/ops.def and collected into the table by lower.c. Private to
 * codegen/. */
#ifndef LATHE_CODEGEN_LOWER_CONV_H
#define LATHE_CODEGEN_LOWER_CONV_H

#include "gemm.h"

bool lower_conv2d(CgFunc *f, NodeId id);
bool lower_conv_transpose2d(CgFunc *f, NodeId id);
bool lower_conv2d_grad_weight(CgFunc *f, NodeId id);
bool lower_max_pool2d(CgFunc *f, NodeId id);
bool lower_max_pool2d_grad(CgFunc *f, NodeId id);
bool lower_train_select(CgFunc *f, NodeId id);

/* A CONV2D heading a fused group (passes/fuse.c: a conv2d in the NCHWc layout and its
 * elementwise epilogue): the direct convolution with the epilogue per image when it applies,
 * else the convolution into a staging buffer (store->partial, or scratch: cg_conv_scratch
 * counts it for a fused conv, workspace.c) and the epilogue in a loop over it (lower_conv.c). */
bool cg_conv_lower_fused(CgFunc *f, NodeId id, const CgGemmStore *store);
#endif
