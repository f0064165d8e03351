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

#endif
