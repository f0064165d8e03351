/* passes/syncbn.c — synchronized batch norm: pass_syncbn (issue 21, docs/distributed.md).
 *
 * Requires: a verified entry graph whose mode is resolved (passes/mode.c), before autodiff.
 * Does, in the "grad" entry of a split step (PassCtx.want_split: a data-parallel compile) and
 * nowhere else: every batch-norm statistic becomes its value over the global batch of all
 * replicas, as PyTorch's SyncBatchNorm computes it, through REPLICA_SUM nodes that the
 * generated C hands to the caller's hook (identity without one). A statistic is what the
 * elaborator of batch_norm (frontend/elab_conv.c) builds and a running-statistic update reads:
 * an OUT_STATE_UPDATE ADD(MUL(state, k), MUL(RESHAPE(stat), scale)) whose stat is a MEAN with
 * kept axes. For each such MEAN m over c values per channel on this replica:
 *     C  = replica_sum(c)           the global count (c: a constant, or the run-time rows)
 *     w  = c / C                    this replica's share of the global batch
 *     m' = replica_sum(m * w)       the global mean, replacing m everywhere
 * The variance is the MEAN of (x - mean)^2: with the mean replaced it is the mean squared
 * deviation from the GLOBAL mean, weighted likewise (Chan et al.'s pairwise combination with
 * the means already equal). That is the two-pass form: it costs a second exchange after the
 * first, but unlike sum and sum of squares (E[x^2] - E[x]^2, one exchange) it does not cancel
 * catastrophically when |mean| >> std, which f32 activations reach easily. The running
 * variance's unbiasing factor momentum * c / (c - 1) becomes momentum * C / (C - 1)
 * (global_unbias). Autodiff then differentiates through the replica sums (their
 * VJP is a replica sum of cotangents): the backward pass sums the two per-channel reductions
 * of batch norm's gradient over the replicas too.
 * With one replica (no hook) C == c, so w and the factor are exactly 1 and every value keeps
 * its bits: the entry computes what it computed before this pass.
 * Invalidates: the node order (new nodes are appended and read by older ones; re-sorted).
 */
#include "passes.h"
#include "rewrite.h"

#include "ir/build.h"

#include <stdlib.h>
#include <string.h>

typedef struct Sync {
  Graph *g;
  Builder b;
  NodeId *stat; /* per node of the entry as it came: its global replacement, or IR_NONE */
} Sync;

/* the MEAN with kept axes that state update u (ADD(MUL(state, k), MUL(RESHAPE(m), scale)))
 * reads, and that MUL; IR_NONE when u is not batch norm's */
static NodeId update_stat(const Graph *g, NodeId u, NodeId *mul) {
  const Node *add = &g->nodes[u];
  if (add->op != OP_ADD) return IR_NONE;
  const Node *m = &g->nodes[add->in[1]];
  if (m->op != OP_MUL || g->nodes[add->in[0]].op != OP_MUL) return IR_NONE;
  const Node *r = &g->nodes[m->in[0]];
  if (r->op != OP_RESHAPE) return IR_NONE;
  const Node *stat = &g->nodes[r->in[0]];
  if (stat->op != OP_MEAN || !stat->attr.reduce.keepdims) return IR_NONE;
  *mul = add->in[1];
  return r->in[0];
}

/* the per-channel count of MEAN m on this replica, as a scalar node of m's dtype: a constant,
 * or over a run-time batch the SUM of ones shaped like its operand with the kept axes 1 */
static NodeId local_count(Sync *s, NodeId m) {
  const Node *n = &s->g->nodes[m];
  Shape x = s->g->nodes[n->in[0]].shape;
  if (!x.dyn)
    return build_scalar(&s->b, n->dtype, (double)(shape_numel(&x) / shape_numel(&n->shape)));
  uint32_t axes = n->attr.reduce.axes;
  for (int i = 0; i < x.rank; i++)
    if (!(axes & (1u << i))) x.dim[i] = 1;
  NodeId ones = build_fill(&s->b, n->dtype, &x, 1.0);
  return build_reduce(&s->b, OP_SUM, ones, (1u << x.rank) - 1, false);
}

static NodeId replica_sum(Sync *s, NodeId x) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  return build_node(&s->b, OP_REPLICA_SUM, &x, 1, &at);
}

/* c / (c - 1) */
static NodeId unbias_ratio(Sync *s, NodeId c) {
  NodeId one = build_scalar_like(&s->b, c, 1.0);
  return build_binary(&s->b, OP_DIV, c, build_binary(&s->b, OP_SUB, c, one));
}

/* the variance statistic: a MEAN of MUL(d, d) */
static bool is_variance(const Graph *g, NodeId m) {
  const Node *sq = &g->nodes[g->nodes[m].in[0]];
  return sq->op == OP_MUL && sq->in[0] == sq->in[1];
}

/* The running variance's update scale over the global count `all` instead of the local `c`.
 * Over a run-time batch it is MUL(c / (c - 1), momentum) (frontend/elab_conv.c, bn_unbias):
 * rebuilt from `all` the same way, so a replica with one row (c / (c - 1) infinite) still gets
 * the global factor. A constant momentum * c / (c - 1) (c >= 2, checked by the elaborator)
 * is multiplied by (C / (C - 1)) / (c / (c - 1)). Either is exactly the old scale when C == c. */
static NodeId global_unbias(Sync *s, NodeId scale, NodeId c, NodeId all) {
  const Node *n = &s->g->nodes[scale];
  if (n->op == OP_MUL && s->g->nodes[n->in[1]].op == OP_CONST && s->g->nodes[n->in[0]].op == OP_DIV)
    return build_binary(&s->b, OP_MUL, unbias_ratio(s, all), n->in[1]);
  NodeId fix = build_binary(&s->b, OP_DIV, unbias_ratio(s, all), unbias_ratio(s, c));
  return build_binary(&s->b, OP_MUL, scale, fix);
}

/* Statistic m (read by the update's MUL `mul`) over the global batch: s->stat[m] = m', and a
 * variance's update scale the global one */
static void globalize(Sync *s, NodeId m, NodeId mul) {
  s->b.loc = s->g->nodes[m].loc;
  NodeId c = local_count(s, m), all = replica_sum(s, c);
  NodeId w = build_binary(&s->b, OP_DIV, c, all);
  s->stat[m] = replica_sum(s, build_binary(&s->b, OP_MUL, m, w));
  if (!is_variance(s->g, m)) return;
  NodeId scale = global_unbias(s, s->g->nodes[mul].in[1], c, all);
  if (scale != IR_NONE) s->g->nodes[mul].in[1] = scale;
}

/* every reader of a statistic but its own m * w reads the global value */
static void redirect(Sync *s, uint32_t n_old) {
  Graph *g = s->g;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    Node *n = &g->nodes[id];
    NodeId first = n->in[0];
    if (id >= n_old && n->op == OP_MUL && first < n_old && s->stat[first] != IR_NONE) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] < n_old && s->stat[n->in[k]] != IR_NONE) n->in[k] = s->stat[n->in[k]];
  }
}

bool pass_syncbn(Graph *g, PassCtx *c) {
  if (g->kind != ENTRY_GRAD || !c->want_split) return true;
  uint32_t n_old = g->n_nodes;
  Sync s = {.g = g, .b = build_init(g, c->diag, (SrcLoc){0})};
  s.stat = malloc((n_old + 1) * sizeof *s.stat);
  if (!s.stat) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in syncbn of '%s'", g->name);
    return false;
  }
  for (uint32_t i = 0; i < n_old; i++)
    s.stat[i] = IR_NONE;
  bool changed = false;
  for (int i = 0; i < g->n_outputs; i++) {
    NodeId mul = IR_NONE, m = IR_NONE;
    if (g->outputs[i].kind == OUT_STATE_UPDATE) m = update_stat(g, g->outputs[i].node, &mul);
    if (m == IR_NONE || s.stat[m] != IR_NONE) continue;
    globalize(&s, m, mul);
    changed = true;
  }
  bool ok = !s.b.failed;
  if (ok && changed) redirect(&s, n_old);
  free(s.stat);
  return ok && (!changed || rw_resort(g, c, "syncbn"));
}
