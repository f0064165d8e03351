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
#include "vjp_conv.h"

static bool wants(const AdCtx *a, NodeId input) { return input < a->n_fwd && a->active[input]; }

static NodeId conv_node(AdCtx *a, OpKind op, NodeId x, NodeId y, const NodeAttr *attr) {
  if (a->failed || x == IR_NONE || y == IR_NONE) return IR_NONE;
  NodeId in[2] = {x, y};
  NodeId id = graph_add(a->g, op, in, 2, attr, a->loc, a->diag);
  if (id == IR_NONE) a->failed = true;
  return id;
}

/* conv_transpose2d(gy, w) sized back to the X grid `xs` (the kernel is w's last two dims) */
static NodeId to_x_grid(AdCtx *a, const Node *n, NodeId gy, NodeId w, const Shape *xs) {
  if (a->failed || gy == IR_NONE || w == IR_NONE) return IR_NONE;
  NodeAttr at = n->attr;
  const Shape *ys = &graph_node(a->g, gy)->shape, *ws = &graph_node(a->g, w)->shape;
  for (int i = 0; i < 2; i++) {
    int64_t span = (ys->dim[2 + i] - 1) * at.conv.stride[i] - at.conv.pad[i] -
                   at.conv.pad[i + 2] + at.conv.dilation[i] * (ws->dim[2 + i] - 1) + 1;
    at.conv.out_pad[i] = (int32_t)(xs->dim[2 + i] - span);
    at.conv.kernel[i] = 0;
  }
  return conv_node(a, OP_CONV_TRANSPOSE2D, gy, w, &at);
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
  Shape xs = graph_node(a->g, x)->shape, ws = graph_node(a->g, w)->shape;
  if (wants(a, x)) ad_accumulate(a, x, to_x_grid(a, n, gy, w, &xs));
  if (wants(a, w)) {
    NodeAttr at = with_kernel(n, &ws, true);
    ad_accumulate(a, w, conv_node(a, OP_CONV2D_GRAD_WEIGHT, x, gy, &at));
  }
  return true;
}

bool vjp_conv_transpose2d(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId y = n->in[0], w = n->in[1];
  Shape ws = graph_node(a->g, w)->shape;
  if (wants(a, y)) {
    NodeAttr at = with_kernel(n, &ws, false);
    ad_accumulate(a, y, conv_node(a, OP_CONV2D, gy, w, &at));
  }
  if (wants(a, w)) {
    NodeAttr at = with_kernel(n, &ws, true);
    ad_accumulate(a, w, conv_node(a, OP_CONV2D_GRAD_WEIGHT, gy, y, &at));
  }
  return true;
}

bool vjp_conv2d_grad_weight(AdCtx *a, const Node *n, NodeId id, NodeId gw) {
  NodeId x = n->in[0], y = n->in[1];
  Shape xs = graph_node(a->g, x)->shape;
  if (wants(a, x)) ad_accumulate(a, x, to_x_grid(a, n, y, gw, &xs));
  if (wants(a, y)) {
    NodeAttr at = with_kernel(n, &n->shape, false);
    ad_accumulate(a, y, conv_node(a, OP_CONV2D, x, gw, &at));
  }
  return true;
}

bool vjp_max_pool2d(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeAttr at = n->attr;
  ad_accumulate(a, n->in[0], conv_node(a, OP_MAX_POOL2D_GRAD, n->in[0], gy, &at));
  return true;
}

/* the cotangent goes to the selected input only */
bool vjp_train_select(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[n->attr.mode.train ? 0 : 1], gy);
  return true;
}
