/* passes/vjp_conv.h — VJP rules of the convolution and pooling ops (vjp_conv.c), named in the
 * vjp column of ir/ops.def and collected into the rule table by vjp.c. Private to passes/. */
#ifndef LATHE_PASSES_VJP_CONV_H
#define LATHE_PASSES_VJP_CONV_H

#include "autodiff_internal.h"

bool vjp_conv2d(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_conv_transpose2d(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_conv2d_grad_weight(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_max_pool2d(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_train_select(AdCtx *a, const Node *n, NodeId id, NodeId gy);

#endif
