/* ir/build.h — the graph builders: the one way straight-line code appends IR.
 *
 * A Builder appends nodes to one graph, all with one source location. Every builder takes
 * and returns node ids and passes a failure through: an IR_NONE input, or an earlier failed
 * append, makes it return IR_NONE without a new message (whoever failed first reported to
 * the Diag), and sets `failed`. So a rule that builds many nodes is straight-line code with
 * one check of `failed` at its end. Users: the VJP rules and the optimizer (passes/), the
 * scan hoisting (passes/hoist.c), and the frontend's builtins (frontend/elab_*.c).
 */
#ifndef LATHE_IR_BUILD_H
#define LATHE_IR_BUILD_H

#include "ir.h"

typedef struct Builder {
  Graph *g;
  Diag *diag;  /* where graph_add reports a shape/dtype error */
  SrcLoc loc;  /* given to every node built */
  bool failed; /* some build returned IR_NONE; every later one returns IR_NONE too */
} Builder;

Builder build_init(Graph *g, Diag *d, SrcLoc loc);
/* graph_add, passing failure through */
NodeId build_node(Builder *b, OpKind op, const NodeId *in, int n_in, const NodeAttr *attr);
NodeId build_unary(Builder *b, OpKind op, NodeId x);
NodeId build_binary(Builder *b, OpKind op, NodeId x, NodeId y);
NodeId build_ternary(Builder *b, OpKind op, NodeId x, NodeId y, NodeId z);
NodeId build_scalar(Builder *b, DType t, double v);               /* rank-0 CONST */
NodeId build_fill(Builder *b, DType t, const Shape *s, double v); /* CONST of shape s */
/* a CONST of shape s holding values (numel of them, C order; copied into the graph arena) */
NodeId build_const_data(Builder *b, DType t, const Shape *s, const double *values);
NodeId build_scalar_like(Builder *b, NodeId like, double v);      /* rank 0, like's dtype */
NodeId build_reduce(Builder *b, OpKind op, NodeId x, uint32_t axes, bool keepdims);
/* x itself when it already has shape s (dtype t for build_cast) */
NodeId build_reshape(Builder *b, NodeId x, const Shape *s);
NodeId build_broadcast(Builder *b, NodeId x, const Shape *s);
NodeId build_cast(Builder *b, NodeId x, DType t);
NodeId build_transpose(Builder *b, NodeId x, const int8_t *perm);
NodeId build_matmul(Builder *b, NodeId x, NodeId y, bool trans_a, bool trans_b);
/* the s-shaped run of rank-1 x that starts at element offset */
NodeId build_unpack(Builder *b, NodeId x, int64_t offset, int64_t offset_n, const Shape *s);
/* x, the broadcast result of an operand of shape s, summed back to s: SUM over the
 * broadcast axes (keepdims), then RESHAPE */
NodeId build_unbroadcast(Builder *b, NodeId x, const Shape *s);

#endif
