/* passes/vjp.c — the vector-Jacobian product of every op, built from other IR ops.
 *
 * The rule table is generated from the `vjp` column of ir/ops.def. A rule receives the
 * forward node id and its output cotangent gy (same shape/dtype as the node) and hands one
 * contribution per differentiable input to ad_accumulate, which sums broadcast axes back to
 * the input's shape and adds fan-out. Rules may reuse the forward values (the node itself,
 * its inputs): they stay live into the backward pass. Inputs that are not active get no
 * contribution, so e.g. pow's log(a) term is only built when the exponent is trained.
 * Rules copy the forward Node first: graph_add may move the node array.
 */
#include <string.h>

#include "autodiff_internal.h"

typedef bool (*VjpFn)(AdCtx *a, const Node *n, NodeId id, NodeId gy);

bool vjp_none(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  return false;
}
bool vjp_zero(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  return true;
}

static NodeId one(AdCtx *a, const Node *n) {
  return build_scalar(&a->b, n->dtype, 1.0);
}

/* ---- elementwise binary ------------------------------------------------------------------- */

bool vjp_add(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], gy);
  ad_accumulate(a, n->in[1], gy);
  return true;
}

bool vjp_sub(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], gy);
  if (ad_wants(a, n->in[1])) ad_accumulate(a, n->in[1], build_unary(&a->b, OP_NEG, gy));
  return true;
}

bool vjp_mul(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  if (ad_wants(a, n->in[0])) ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, n->in[1]));
  if (ad_wants(a, n->in[1])) ad_accumulate(a, n->in[1], build_binary(&a->b, OP_MUL, gy, n->in[0]));
  return true;
}

/* y = a / b: da = gy / b, db = -gy * y / b */
bool vjp_div(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  if (ad_wants(a, n->in[0])) ad_accumulate(a, n->in[0], build_binary(&a->b, OP_DIV, gy, n->in[1]));
  if (ad_wants(a, n->in[1])) {
    NodeId t = build_binary(&a->b, OP_DIV, build_binary(&a->b, OP_MUL, gy, id), n->in[1]);
    ad_accumulate(a, n->in[1], build_unary(&a->b, OP_NEG, t));
  }
  return true;
}

/* maximum/minimum route gy to the selected input; a tie goes to the first operand */
static bool route(AdCtx *a, const Node *n, NodeId gy, OpKind first_wins) {
  NodeId mask = build_binary(&a->b, first_wins, n->in[0], n->in[1]);
  if (ad_wants(a, n->in[0])) ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, mask));
  if (ad_wants(a, n->in[1])) {
    NodeId rest = build_binary(&a->b, OP_SUB, one(a, n), mask);
    ad_accumulate(a, n->in[1], build_binary(&a->b, OP_MUL, gy, rest));
  }
  return true;
}

bool vjp_maximum(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  return route(a, n, gy, OP_GE);
}

bool vjp_minimum(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  return route(a, n, gy, OP_LE);
}

/* y = a^b: da = gy * b * a^(b-1), db = gy * y * log(a) */
bool vjp_pow(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0], e = n->in[1];
  if (ad_wants(a, x)) {
    NodeId d = build_binary(&a->b, OP_POW, x, build_binary(&a->b, OP_SUB, e, one(a, n)));
    ad_accumulate(a, x, build_binary(&a->b, OP_MUL, gy, build_binary(&a->b, OP_MUL, e, d)));
  }
  if (ad_wants(a, e)) {
    NodeId d = build_binary(&a->b, OP_MUL, id, build_unary(&a->b, OP_LOG, x));
    ad_accumulate(a, e, build_binary(&a->b, OP_MUL, gy, d));
  }
  return true;
}

/* ---- elementwise unary -------------------------------------------------------------------- */

bool vjp_neg(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], build_unary(&a->b, OP_NEG, gy));
  return true;
}

bool vjp_exp(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, id));
  return true;
}

bool vjp_log(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_DIV, gy, n->in[0]));
  return true;
}

/* y = sqrt(x): dx = gy / (2 y) */
bool vjp_sqrt(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId twice = build_binary(&a->b, OP_MUL, build_scalar(&a->b, n->dtype, 2.0), id);
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_DIV, gy, twice));
  return true;
}

bool vjp_abs(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0],
                build_binary(&a->b, OP_MUL, gy, build_unary(&a->b, OP_SIGN, n->in[0])));
  return true;
}

bool vjp_relu(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId mask = build_binary(&a->b, OP_GT, n->in[0], build_scalar(&a->b, n->dtype, 0.0));
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, mask));
  return true;
}

/* y = sigmoid(x): dx = gy * y * (1 - y) */
bool vjp_sigmoid(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId d = build_binary(&a->b, OP_MUL, id, build_binary(&a->b, OP_SUB, one(a, n), id));
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, d));
  return true;
}

/* y = tanh(x): dx = gy * (1 - y^2) */
bool vjp_tanh(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId d = build_binary(&a->b, OP_SUB, one(a, n), build_binary(&a->b, OP_MUL, id, id));
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, d));
  return true;
}

/* float→float casts pass gy back in the input's dtype (ad_accumulate casts) */
bool vjp_cast(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], gy);
  return true;
}

/* ---- structure ---------------------------------------------------------------------------- */

/* [P..., M, K] -> [P * ... * M, K]: the batch dims of a matmul operand folded into its rows */
static NodeId rows_2d(AdCtx *a, NodeId x) {
  const Shape s = graph_node(a->b.g, x)->shape;
  Shape r = {0};
  r.rank = 2;
  r.dim[1] = s.dim[s.rank - 1];
  r.dim[0] = r.dim[1] ? shape_numel(&s) / r.dim[1] : 0;
  return build_reshape(&a->b, x, &r);
}

/* C = op(A) @ op(B), op = transpose of the last two dims when trans_*:
 *   dA = dC @ op(B)^T  (or its transpose when trans_a),  dB = op(A)^T @ dC  (likewise),
 * written with the trans flags instead of explicit transposes. A broadcast batch dim is
 * summed back by ad_accumulate — except for the common A[P..., M, K] @ B[K, N] (a dense layer
 * on a sequence): its gradients are single 2-D GEMMs over all P * M rows, not P small
 * matmuls and a sum over P. */
bool vjp_matmul(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  NodeId x = n->in[0], y = n->in[1];
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  const Shape xshape = graph_node(a->b.g, x)->shape, *xs = &xshape; /* the node array grows */
  if (xs->rank < 2 || graph_node(a->b.g, y)->shape.rank < 2) {
    diag_error(a->b.diag, n->loc,
               "cannot differentiate 'matmul' with a rank-1 operand "
               "(reshape it to a matrix)");
    return false;
  }
  bool rows = !ta && xs->rank > 2 && graph_node(a->b.g, y)->shape.rank == 2;
  if (ad_wants(a, x)) {
    NodeId d = ta     ? build_matmul(&a->b, y, gy, tb, true)
               : rows ? build_reshape(&a->b, build_matmul(&a->b, rows_2d(a, gy), y, false, !tb), xs)
                      : build_matmul(&a->b, gy, y, false, !tb);
    ad_accumulate(a, x, d);
  }
  if (ad_wants(a, y)) {
    NodeId d;
    if (rows)
      d = tb ? build_matmul(&a->b, rows_2d(a, gy), rows_2d(a, x), true, false)
             : build_matmul(&a->b, rows_2d(a, x), rows_2d(a, gy), true, false);
    else
      d = tb ? build_matmul(&a->b, gy, x, true, ta) : build_matmul(&a->b, x, gy, !ta, false);
    ad_accumulate(a, y, d);
  }
  return true;
}

/* y = softmax(x): dx = y * (gy - sum(gy * y, axis)) */
bool vjp_softmax(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  uint32_t axis = 1u << n->attr.softmax.axis;
  NodeId dot = build_reduce(&a->b, OP_SUM, build_binary(&a->b, OP_MUL, gy, id), axis, true);
  NodeId d = build_binary(&a->b, OP_MUL, id, build_binary(&a->b, OP_SUB, gy, dot));
  ad_accumulate(a, n->in[0], d);
  return true;
}

/* y = log_softmax(x): dx = gy - exp(y) * sum(gy, axis) */
bool vjp_log_softmax(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  uint32_t axis = 1u << n->attr.softmax.axis;
  NodeId total = build_reduce(&a->b, OP_SUM, gy, axis, true);
  NodeId d = build_binary(&a->b, OP_SUB, gy,
                          build_binary(&a->b, OP_MUL, build_unary(&a->b, OP_EXP, id), total));
  ad_accumulate(a, n->in[0], d);
  return true;
}

/* The input's shape with the reduced axes kept as 1. */
static Shape kept_shape(const Shape *in, uint32_t axes) {
  Shape s = *in;
  for (int i = 0; i < s.rank; i++)
    if (axes & (1u << i)) s.dim[i] = 1;
  if (axes & 1u) s.dyn = 0; /* a reduced dynamic batch is 1 */
  return s;
}

/* The number of elements a reduction of x over axes averages. Over a dynamic batch it is
 * known only at run time: the SUM of a splat 1 shaped like the reduced axes (a batch-averaged
 * loss then trains a partial batch exactly, docs/dynamic-batch.md). */
static NodeId reduced_count(AdCtx *a, const Shape *x, uint32_t axes, DType t) {
  Shape ones = shape_make(0, NULL);
  double count = 1;
  for (int i = 0; i < x->rank; i++) {
    if (!(axes & (1u << i))) continue;
    ones.dim[ones.rank++] = x->dim[i];
    count *= (double)x->dim[i];
  }
  if (!(x->dyn && (axes & 1u))) return build_scalar(&a->b, t, count);
  ones.dyn = x->dyn;
  return build_reduce(&a->b, OP_SUM, build_fill(&a->b, t, &ones, 1.0), (1u << ones.rank) - 1,
                      false);
}

/* gy of a reduction, spread back over the input's shape */
static NodeId spread(AdCtx *a, const Node *n, NodeId gy, Shape *in_shape) {
  *in_shape = graph_node(a->b.g, n->in[0])->shape;
  Shape kept = kept_shape(in_shape, n->attr.reduce.axes);
  return build_broadcast(&a->b, build_reshape(&a->b, gy, &kept), in_shape);
}

bool vjp_sum(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s;
  ad_accumulate(a, n->in[0], spread(a, n, gy, &s));
  return true;
}

bool vjp_mean(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s;
  NodeId g = spread(a, n, gy, &s);
  NodeId count = reduced_count(a, &s, n->attr.reduce.axes, n->dtype);
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_DIV, g, count));
  return true;
}

/* max: gy to the positions equal to the max, split evenly among ties (like torch.amax) */
bool vjp_max(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s;
  NodeId g = spread(a, n, gy, &s);
  Shape kept = kept_shape(&s, n->attr.reduce.axes);
  NodeId y = build_broadcast(&a->b, build_reshape(&a->b, id, &kept), &s);
  NodeId mask = build_binary(&a->b, OP_EQ, n->in[0], y);
  NodeId ties = build_reduce(&a->b, OP_SUM, mask, n->attr.reduce.axes, true);
  NodeId share = build_binary(&a->b, OP_DIV, mask, ties);
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, g, share));
  return true;
}

bool vjp_reshape(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  Shape s = graph_node(a->b.g, n->in[0])->shape;
  ad_accumulate(a, n->in[0], build_reshape(&a->b, gy, &s));
  return true;
}

bool vjp_transpose(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  int8_t inverse[IR_MAX_RANK];
  memset(inverse, 0, sizeof inverse);
  for (int i = 0; i < n->shape.rank; i++)
    inverse[n->attr.transpose.perm[i]] = (int8_t)i;
  ad_accumulate(a, n->in[0], build_transpose(&a->b, gy, inverse));
  return true;
}

/* broadcast_to: ad_accumulate sums the broadcast axes back */
bool vjp_broadcast_to(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ad_accumulate(a, n->in[0], gy);
  return true;
}

/* ---- the table ---------------------------------------------------------------------------- */

static const VjpFn vjp_table[] = {
#define OP(e, text, arity, fusion, infer, eval, vjp, lower) vjp,
#include "ir/ops.def"
#undef OP
};
_Static_assert(sizeof vjp_table / sizeof vjp_table[0] == OP_COUNT,
               "vjp_table must have one rule per op of ir/ops.def");

/* ops whose rule tests pretend is missing; see vjp_test_remove_rule */
static bool removed_rules[OP_COUNT];

void vjp_test_remove_rule(OpKind op, bool removed) {
  removed_rules[op] = removed;
}

VjpKind vjp_kind(OpKind op) {
  if (vjp_table[op] == vjp_none || removed_rules[op]) return VJP_NONE;
  if (vjp_table[op] == vjp_zero) return VJP_ZERO;
  return VJP_RULE;
}

bool vjp_apply(AdCtx *a, NodeId id, NodeId gy) {
  Node n = *graph_node(a->b.g, id); /* a copy: the rule grows the node array */
  if (vjp_kind(n.op) != VJP_RULE) return vjp_kind(n.op) == VJP_ZERO;
  return vjp_table[n.op](a, &n, id, gy) && !a->b.failed;
}
