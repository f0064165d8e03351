/* passes/vjp_conv.c — VJP rules of the convolution and pooling ops.
 *
 * The three conv ops are one bilinear relation (ir/conv.c) between an input grid X, an
 * output grid Y and weights W, each computing one of the three from the other two; so each
 * one's VJP is the other two with the same stride/padding/dilation/groups:
 *   conv2d(X, W) = Y:           dX = conv_transpose2d(gY, W), dW = conv2d_grad_weight(X, gY)
 *   conv_transpose2d(Y, W) = X: dY = conv2d(gX, W),           dW = conv2d_grad_weight(gX, Y)
 *   conv2d_grad_weight(X, Y) = W: dX = conv_transpose2d(Y, gW), dY = conv2d(X, gW)
 * conv_transpose2d gets the output_padding that makes its result exactly X's size.
 * max_pool2d's gradient goes to each window's first maximum (max_pool2d_grad).
 */
#include "autodiff_internal.h"

/* conv_transpose2d(gy, w) sized back to the X grid `xs` (the kernel is w's last two dims) */
static NodeId to_x_grid(AdCtx *a, const Node *n, NodeId gy, NodeId w, const Shape *xs) {
  if (a->b.failed || gy == IR_NONE || w == IR_NONE) return IR_NONE;
  NodeAttr at = n->attr;
  const Shape *ys = &graph_node(a->b.g, gy)->shape, *ws = &graph_node(a->b.g, w)->shape;
  for (int i = 0; i < 2; i++) {
    int64_t span = (ys->dim[2 + i] - 1) * at.conv.stride[i] - at.conv.pad[i] - at.conv.pad[i + 2] +
                   at.conv.dilation[i] * (ws->dim[2 + i] - 1) + 1;
    at.conv.out_pad[i] = (int32_t)(xs->dim[2 + i] - span);
    at.conv.kernel[i] = 0;
  }
  return build_node(&a->b, OP_CONV_TRANSPOSE2D, (NodeId[]){gy, w}, 2, &at);
}

/* attrs for a conv2d / grad-weight node built from n's attrs */
static NodeAttr with_kernel(const Node *n, const Shape *ws, bool kernel) {
  NodeAttr at = n->attr;
  for (int i = 0; i < 2; i++) {
    at.conv.out_pad[i] = 0;
    at.conv.kernel[i] = kernel ? (int32_t)ws->dim[2 + i] : 0;
  }
  return at;
}

bool vjp_conv2d(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0], w = n->in[1];
  Shape xs = graph_node(a->b.g, x)->shape, ws = graph_node(a->b.g, w)->shape;
  if (ad_wants(a, x)) ad_accumulate(a, x, to_x_grid(a, n, gy, w, &xs));
  if (ad_wants(a, w)) {
    NodeAttr at = with_kernel(n, &ws, true);
    ad_accumulate(a, w, build_node(&a->b, OP_CONV2D_GRAD_WEIGHT, (NodeId[]){x, gy}, 2, &at));
  }
  return true;
}

bool vjp_conv_transpose2d(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId y = n->in[0], w = n->in[1];
  Shape ws = graph_node(a->b.g, w)->shape;
  if (ad_wants(a, y)) {
    NodeAttr at = with_kernel(n, &ws, false);
    ad_accumulate(a, y, build_node(&a->b, OP_CONV2D, (NodeId[]){gy, w}, 2, &at));
  }
  if (ad_wants(a, w)) {
    NodeAttr at = with_kernel(n, &ws, true);
    ad_accumulate(a, w, build_node(&a->b, OP_CONV2D_GRAD_WEIGHT, (NodeId[]){gy, y}, 2, &at));
  }
  return true;
}

bool vjp_conv2d_grad_weight(AdCtx *a, const Node *n, NodeId id, NodeId gw) {
  NodeId x = n->in[0], y = n->in[1];
  Shape xs = graph_node(a->b.g, x)->shape;
  if (ad_wants(a, x)) ad_accumulate(a, x, to_x_grid(a, n, y, gw, &xs));
  if (ad_wants(a, y)) {
    NodeAttr at = with_kernel(n, &n->shape, false);
    ad_accumulate(a, y, build_node(&a->b, OP_CONV2D, (NodeId[]){x, gw}, 2, &at));
  }
  return true;
}

bool vjp_max_pool2d(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeAttr at = n->attr;
  ad_accumulate(a, n->in[0],
                build_node(&a->b, OP_MAX_POOL2D_GRAD, (NodeId[]){n->in[0], gy}, 2, &at));
  return true;
}

/* the cotangent goes to the selected input only */
bool vjp_train_select(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[n->attr.mode.train ? 0 : 1], gy);
  return true;
}
