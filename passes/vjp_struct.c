/* passes/vjp_struct.c — VJP rules of ERF, WHERE, SLICE, UNSLICE, GATHER and SCATTER_ADD.
 *
 * Same contract as passes/vjp.c: a rule receives a copy of the forward node, its id and the
 * output cotangent gy, and hands one contribution per active input to ad_accumulate (which
 * unbroadcasts). Adjoint pairs: slice <-> unslice with the same window, gather <-> scatter_add
 * with the same indices; dropout is linear in x for its (recomputed, deterministic) mask, so
 * its adjoint is the same dropout applied to gy. Integer inputs (where's condition, the
 * indices) get no gradient.
 */
#include <string.h>

#include "autodiff_internal.h"

/* y = erf(x): dx = gy * 2/sqrt(pi) * exp(-x^2) */
bool vjp_erf(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0];
  NodeId e =
      build_unary(&a->b, OP_EXP, build_unary(&a->b, OP_NEG, build_binary(&a->b, OP_MUL, x, x)));
  NodeId d = build_binary(&a->b, OP_MUL,
                          build_scalar(&a->b, n->dtype, 1.1283791670955126) /* 2/sqrt(pi) */, e);
  ad_accumulate(a, x, build_binary(&a->b, OP_MUL, gy, d));
  return true;
}

/* y = where(c, p, q): dp = where(c, gy, 0), dq = where(c, 0, gy) */
bool vjp_where(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId zero = build_scalar(&a->b, n->dtype, 0.0);
  for (int k = 1; k <= 2; k++) {
    if (!ad_wants(a, n->in[k])) continue;
    NodeId in[3] = {n->in[0], k == 1 ? gy : zero, k == 1 ? zero : gy};
    ad_accumulate(a, n->in[k], build_node(&a->b, OP_WHERE, in, 3, NULL));
  }
  return true;
}

/* the same window seen from the other side: dim becomes the other tensor's shape */
static NodeId window(AdCtx *a, OpKind op, const Node *n, NodeId x, const Shape *result) {
  NodeAttr attr = n->attr;
  for (int i = 0; i < IR_MAX_RANK; i++)
    attr.slice.dim[i] = i < result->rank ? (int32_t)result->dim[i] : 0;
  return build_node(&a->b, op, &x, 1, &attr);
}

bool vjp_slice(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s = graph_node(a->b.g, n->in[0])->shape;
  ad_accumulate(a, n->in[0], window(a, OP_UNSLICE, n, gy, &s));
  return true;
}

bool vjp_unslice(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s = graph_node(a->b.g, n->in[0])->shape;
  ad_accumulate(a, n->in[0], window(a, OP_SLICE, n, gy, &s));
  return true;
}

/* y = table[ids]: dtable = scatter_add(gy, ids) over the table's rows */
bool vjp_gather(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.gather.rows = graph_node(a->b.g, n->in[0])->shape.dim[0];
  NodeId in[2] = {gy, n->in[1]};
  ad_accumulate(a, n->in[0], build_node(&a->b, OP_SCATTER_ADD, in, 2, &attr));
  return true;
}

bool vjp_scatter_add(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId in[2] = {gy, n->in[1]};
  ad_accumulate(a, n->in[0], build_node(&a->b, OP_GATHER, in, 2, NULL));
  return true;
}

/* y = dropout(x): dx = dropout(gy) with the same stream, seed and step: the same mask */
bool vjp_dropout(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId in[3] = {gy, n->in[1], n->in[2]};
  ad_accumulate(a, n->in[0], build_node(&a->b, OP_DROPOUT, in, 3, &n->attr));
  return true;
}
