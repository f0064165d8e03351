/* ir/build.c — the graph builders (see build.h): graph_add with failure passed through, and
 * the attribute-filling shorthands the VJP rules, the optimizer, hoisting and the frontend's
 * builtins share. Each is a node of the op it names, built with b->loc. */
#include "build.h"

#include <string.h>

Builder build_init(Graph *g, Diag *d, SrcLoc loc) {
  Builder b = {.g = g, .diag = d, .loc = loc, .failed = false};
  return b;
}

NodeId build_node(Builder *b, OpKind op, const NodeId *in, int n_in, const NodeAttr *attr) {
  if (b->failed) return IR_NONE;
  for (int i = 0; i < n_in; i++)
    if (in[i] == IR_NONE) {
      b->failed = true;
      return IR_NONE;
    }
  NodeId id = graph_add(b->g, op, in, n_in, attr, b->loc, b->diag);
  if (id == IR_NONE) b->failed = true;
  return id;
}

NodeId build_unary(Builder *b, OpKind op, NodeId x) {
  return build_node(b, op, &x, 1, NULL);
}

NodeId build_binary(Builder *b, OpKind op, NodeId x, NodeId y) {
  NodeId in[2] = {x, y};
  return build_node(b, op, in, 2, NULL);
}

NodeId build_ternary(Builder *b, OpKind op, NodeId x, NodeId y, NodeId z) {
  NodeId in[3] = {x, y, z};
  return build_node(b, op, in, 3, NULL);
}

NodeId build_fill(Builder *b, DType t, const Shape *s, double v) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.constant.value = v;
  attr.constant.data = NULL;
  attr.constant.dtype = t;
  attr.constant.shape = *s;
  return build_node(b, OP_CONST, NULL, 0, &attr);
}

NodeId build_const_data(Builder *b, DType t, const Shape *s, const double *values) {
  if (b->failed) return IR_NONE;
  size_t bytes = (size_t)shape_numel(s) * sizeof(double);
  double *data = arena_alloc(&b->g->arena, bytes);
  memcpy(data, values, bytes);
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.constant.data = data;
  attr.constant.dtype = t;
  attr.constant.shape = *s;
  return build_node(b, OP_CONST, NULL, 0, &attr);
}

NodeId build_scalar(Builder *b, DType t, double v) {
  Shape s = shape_make(0, NULL);
  return build_fill(b, t, &s, v);
}

NodeId build_scalar_like(Builder *b, NodeId like, double v) {
  if (like == IR_NONE || b->failed) {
    b->failed = true;
    return IR_NONE;
  }
  return build_scalar(b, graph_node(b->g, like)->dtype, v);
}

NodeId build_reduce(Builder *b, OpKind op, NodeId x, uint32_t axes, bool keepdims) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.reduce.axes = axes;
  attr.reduce.keepdims = keepdims;
  return build_node(b, op, &x, 1, &attr);
}

/* RESHAPE or BROADCAST to s: both keep the target shape in attr.reshape */
static NodeId build_to_shape(Builder *b, OpKind op, NodeId x, const Shape *s) {
  if (x != IR_NONE && shape_equal(&graph_node(b->g, x)->shape, s)) return x;
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.reshape.shape = *s;
  return build_node(b, op, &x, 1, &attr);
}

NodeId build_reshape(Builder *b, NodeId x, const Shape *s) {
  return build_to_shape(b, OP_RESHAPE, x, s);
}

NodeId build_broadcast(Builder *b, NodeId x, const Shape *s) {
  return build_to_shape(b, OP_BROADCAST, x, s);
}

NodeId build_cast(Builder *b, NodeId x, DType t) {
  if (x != IR_NONE && graph_node(b->g, x)->dtype == t) return x;
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.cast.dtype = t;
  return build_node(b, OP_CAST, &x, 1, &attr);
}

NodeId build_transpose(Builder *b, NodeId x, const int8_t *perm) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  memcpy(attr.transpose.perm, perm, sizeof attr.transpose.perm);
  return build_node(b, OP_TRANSPOSE, &x, 1, &attr);
}

NodeId build_matmul(Builder *b, NodeId x, NodeId y, bool trans_a, bool trans_b) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.matmul.trans_a = trans_a;
  attr.matmul.trans_b = trans_b;
  NodeId in[2] = {x, y};
  return build_node(b, OP_MATMUL, in, 2, &attr);
}

NodeId build_unpack(Builder *b, NodeId x, int64_t offset, int64_t offset_n, const Shape *s) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.unpack.offset = offset;
  attr.unpack.offset_n = offset_n;
  attr.unpack.shape = *s;
  return build_node(b, OP_UNPACK, &x, 1, &attr);
}

NodeId build_unbroadcast(Builder *b, NodeId x, const Shape *s) {
  if (x == IR_NONE) return IR_NONE;
  Shape xs = graph_node(b->g, x)->shape;
  if (shape_equal(&xs, s)) return x;
  int lead = xs.rank - s->rank;
  uint32_t axes = 0;
  for (int i = 0; i < xs.rank; i++) {
    int j = i - lead;
    if (j < 0 || (s->dim[j] == 1 && xs.dim[i] != 1)) axes |= 1u << i;
  }
  NodeId r = axes ? build_reduce(b, OP_SUM, x, axes, true) : x;
  return build_reshape(b, r, s);
}
