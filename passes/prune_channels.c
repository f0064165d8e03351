/* passes/prune_channels.c — structured pruning at bake: pass_prune_channels (issue #20,
 * docs/compression.md "Sparse compilation").
 *
 * Requires: a verified graph in which pruned weights are constants (`lathe compile --bake`);
 *           runs after cse and before dce and layout (it appends constants and re-sorts; dce
 *           drops the constants it replaced; layout then sees the smaller convolutions).
 * Does:     removes the output channels whose weights are all zero. A producer is a CONV2D
 *           (groups 1) with a constant weight [O, C, kh, kw] (channel k: row k) or a 2-D MATMUL
 *           `x @ B` with a constant B [I, O] (channel k: column k). From it a chain is followed,
 *           each value having exactly one reader and not being a graph output:
 *             - elementwise ops whose other operands are constants that are uniform or vary
 *               only along the channel axis (bias adds, batch norm's scale and shift, ReLU...);
 *             - max_pool2d;
 *             - a reshape [N, C, H, W] -> [N, C*H*W] (flatten) straight into a matmul;
 *           up to the consumer, the next op that mixes channels: a CONV2D (groups 1) reading
 *           the chain as its input (its weight's input channels k are removed), or a 2-D
 *           MATMUL reading it as A (B's rows k, or the H*W rows of channel k after a flatten).
 *           Every node of the chain shrinks along axis 1 (the channel axis of both), each
 *           per-channel constant with it. Anything else on the way — a residual add of two
 *           computed values, a concat, a reduction, a transpose, a second reader, an output —
 *           keeps every channel of that producer (a channel must leave every branch or none).
 * What keeps a zero channel non-zero: its weights are zero, so the producer outputs 0 there,
 *           but the chain's constants (a bias, batch norm's shift, sigmoid(0) = 0.5) can make
 *           it a non-zero constant v. The value is followed through the chain (the evaluator's
 *           arithmetic, rounded to the dtype after each op). v == 0: the channel is removed
 *           and the result is exact. v != 0: its contribution, v times the consumer's weights
 *           of that channel summed (over the window taps of a conv, the H*W rows of a
 *           flatten), is the same for every output position, so it is added to the consumer's
 *           bias — when the consumer is followed by a bias add (a constant along its channel
 *           axis) and, for a conv, has no padding (at a padded border the taps would read 0,
 *           not v). Then the result equals the dense model's up to float rounding (the bias
 *           sum is rounded once instead of the kernel's partial sums). Otherwise the channel
 *           stays. At least one channel always stays (a tensor has no empty axis).
 *           The decision is recorded on the producer: `pruned=[channels before, folded]`
 *           (IrConvAttr.pruned, matmul.pruned), which `lathe dump` prints; the shapes show
 *           the channels left. The memory plan and the baked tables shrink with the shapes.
 * Invalidates: node ids (constants appended, then re-sorted), the memory plan.
 */
#include "rewrite.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CHAIN_MAX = 32 };

typedef struct Chain {
  NodeId producer;        /* CONV2D or MATMUL whose output channels may go */
  NodeId node[CHAIN_MAX]; /* the chain after it, in order: elementwise, max_pool2d, flatten */
  int n;
  NodeId consumer;  /* CONV2D or MATMUL reading the chain's last value */
  NodeId bias_add;  /* the ADD of a constant right after the consumer, or IR_NONE */
  int64_t channels; /* O: the producer's output channels */
  int64_t block;    /* the consumer's weight rows per channel: 1, or H*W after flatten */
} Chain;

/* readers[id]: how many times node id is read (as an input or a graph output); reader[id]:
 * the node that reads it (any one), IR_NONE when only outputs read it */
typedef struct Uses {
  int32_t *readers;
  NodeId *reader;
} Uses;

static bool is_const_data(const Graph *g, NodeId id) {
  const Node *n = graph_node(g, id);
  return n->op == OP_CONST && n->attr.constant.data && dtype_is_float(n->dtype);
}

static double const_at(const Node *n, int64_t i) {
  return n->attr.constant.data ? n->attr.constant.data[i] : n->attr.constant.value;
}

/* a CONV2D (groups 1) over a constant weight, or a 2-D MATMUL x @ B over a constant B */
static bool is_producer(const Graph *g, const Node *n) {
  if (!dtype_is_float(n->dtype)) return false;
  if (n->op == OP_CONV2D)
    return n->attr.conv.groups == 1 && n->shape.rank == 4 && is_const_data(g, n->in[1]);
  return n->op == OP_MATMUL && n->shape.rank == 2 && !n->attr.matmul.trans_a &&
         !n->attr.matmul.trans_b && graph_node(g, n->in[0])->shape.rank == 2 &&
         is_const_data(g, n->in[1]);
}

/* The axis of the chain's shape s that a constant operand k varies along once broadcast: -1
 * when k is uniform (every axis of size 1), 1 when only along the channel axis; -2 when along
 * another one (a positional table), which the chain cannot follow. */
static int const_axis(const Node *k, const Shape *s) {
  int axis = -1;
  for (int j = 0; j < k->shape.rank; j++) {
    int at = j + s->rank - k->shape.rank; /* NumPy broadcasting aligns the last axes */
    if (k->shape.dim[j] == 1) continue;
    if (at != 1) return -2;
    axis = 1;
  }
  return axis;
}

/* the consumer c reads `from` as the one that mixes channels: conv input or matmul A */
static bool is_consumer(const Graph *g, const Node *c, NodeId from, bool flattened) {
  if (c->n_in < 2 || c->in[0] != from || c->in[1] == from || !is_const_data(g, c->in[1]))
    return false;
  if (c->op == OP_CONV2D) return !flattened && c->attr.conv.groups == 1;
  return c->op == OP_MATMUL && c->shape.rank == 2 && !c->attr.matmul.trans_a &&
         !c->attr.matmul.trans_b;
}

/* node u (reading `from`, of shape s) as a link of the chain */
static bool is_link(const Graph *g, const Node *u, NodeId from) {
  const Shape *s = &graph_node(g, from)->shape;
  if (u->op == OP_MAX_POOL2D) return true;
  if (ir_ops[u->op].fusion != FUSE_ELEMWISE || u->op == OP_CONST || !shape_equal(&u->shape, s))
    return false;
  if (u->n_in == 1) return true;
  if (u->n_in != 2) return false;
  NodeId other = u->in[0] == from ? u->in[1] : u->in[0];
  const Node *k = graph_node(g, other);
  return other != from && k->op == OP_CONST && const_axis(k, s) != -2;
}

/* a flatten [N, C, H, W] -> [N, C*H*W] of node `from` */
static bool is_flatten(const Graph *g, const Node *u, NodeId from) {
  const Shape *s = &graph_node(g, from)->shape;
  return u->op == OP_RESHAPE && s->rank == 4 && u->shape.rank == 2 &&
         u->shape.dim[0] == s->dim[0] && u->shape.dyn == s->dyn &&
         u->shape.dim[1] == s->dim[1] * s->dim[2] * s->dim[3];
}

/* the only reader of node id, or IR_NONE (none, several, or a graph output) */
static NodeId only_reader(const Uses *u, NodeId id) {
  return u->readers[id] == 1 ? u->reader[id] : IR_NONE;
}

/* Follows the chain from producer p to its consumer; false when it meets anything else. */
static bool chain_trace(const Graph *g, const Uses *uses, NodeId p, Chain *ch) {
  memset(ch, 0, sizeof *ch);
  ch->producer = p;
  ch->channels = graph_node(g, p)->shape.dim[1];
  ch->block = 1;
  NodeId cur = p;
  bool flattened = false;
  for (;;) {
    NodeId next = only_reader(uses, cur);
    if (next == IR_NONE || ch->n == CHAIN_MAX) return false;
    const Node *u = graph_node(g, next);
    if (is_consumer(g, u, cur, flattened)) {
      ch->consumer = next;
      break;
    }
    if (flattened) return false; /* a flatten goes straight into the matmul */
    if (is_flatten(g, u, cur)) {
      const Shape *s = &graph_node(g, cur)->shape;
      ch->block = s->dim[2] * s->dim[3];
      flattened = true;
    } else if (!is_link(g, u, cur)) {
      return false;
    }
    ch->node[ch->n++] = next;
    cur = next;
  }
  NodeId add = only_reader(uses, ch->consumer);
  const Node *a = add == IR_NONE ? NULL : graph_node(g, add);
  ch->bias_add = IR_NONE;
  if (a && a->op == OP_ADD && is_link(g, a, ch->consumer)) {
    const Node *k = graph_node(g, a->in[0] == ch->consumer ? a->in[1] : a->in[0]);
    if (shape_numel(&k->shape) == graph_node(g, ch->consumer)->shape.dim[1] &&
        const_axis(k, &a->shape) == 1)
      ch->bias_add = add;
  }
  return true;
}

/* channel k of the producer's constant weight is all zero */
static bool weight_zero(const Graph *g, const Chain *ch, int64_t k) {
  const Node *p = graph_node(g, ch->producer), *w = graph_node(g, p->in[1]);
  int64_t size = shape_numel(&w->shape), o = ch->channels;
  if (p->op == OP_CONV2D) {
    int64_t row = size / o;
    for (int64_t i = 0; i < row; i++)
      if (w->attr.constant.data[k * row + i] != 0.0) return false;
    return true;
  }
  for (int64_t i = k; i < size; i += o)
    if (w->attr.constant.data[i] != 0.0) return false;
  return true;
}

/* channel k of constant operand `k_node` of a link of shape s */
static double const_channel(const Node *k_node, const Shape *s, int64_t k) {
  return const_axis(k_node, s) == 1 ? const_at(k_node, k) : const_at(k_node, 0);
}

static double round_to(DType t, double v) {
  return t == DT_F32 ? (double)(float)v : v;
}

/* The value of channel k after the chain when the producer outputs 0 there */
static double chain_value(const Graph *g, const Chain *ch, int64_t k) {
  double v = 0.0;
  NodeId from = ch->producer;
  for (int i = 0; i < ch->n; i++) {
    const Node *u = graph_node(g, ch->node[i]);
    if (u->op != OP_MAX_POOL2D && u->op != OP_RESHAPE && u->n_in == 1)
      v = ir_eval_elementwise(u->op, v, 0.0);
    else if (u->n_in == 2) {
      bool left = u->in[0] == from;
      double c = const_channel(graph_node(g, u->in[left ? 1 : 0]), &u->shape, k);
      v = ir_eval_elementwise(u->op, left ? v : c, left ? c : v);
    }
    v = round_to(u->dtype, v); /* max_pool2d and a flatten pass a constant through */
    from = ch->node[i];
  }
  return v;
}

/* a non-zero constant channel can go into the consumer's bias */
static bool can_fold(const Graph *g, const Chain *ch) {
  const Node *c = graph_node(g, ch->consumer);
  if (ch->bias_add == IR_NONE) return false;
  if (c->op == OP_MATMUL) return true;
  const int32_t *pad = c->attr.conv.pad;
  return pad[0] == 0 && pad[1] == 0 && pad[2] == 0 && pad[3] == 0;
}

/* Chooses the channels: keep[k] and value[k] (the constant a removed channel carried);
 * returns how many stay, *folded how many removed ones carry a non-zero constant. */
static int64_t chain_decide(const Graph *g, const Chain *ch, bool *keep, double *value,
                            int64_t *folded) {
  bool fold = can_fold(g, ch);
  int64_t kept = 0;
  *folded = 0;
  for (int64_t k = 0; k < ch->channels; k++) {
    value[k] = weight_zero(g, ch, k) ? chain_value(g, ch, k) : 0.0;
    /* an infinite or NaN constant (log(0)...) stays: 0 * inf in the consumer is not 0 */
    keep[k] = !weight_zero(g, ch, k) || (value[k] != 0.0 && (!fold || !isfinite(value[k])));
    kept += keep[k];
  }
  if (kept == 0) keep[0] = true, kept = 1; /* no empty axis: channel 0 stays */
  for (int64_t k = 0; k < ch->channels; k++)
    *folded += !keep[k] && value[k] != 0.0;
  return kept;
}

/* appends a CONST of dtype t, shape s and values data (copied), with the name and source
 * location of the constant `like` it replaces; IR_NONE when it fails */
static NodeId add_const(Graph *g, NodeId like, const Shape *s, const double *data, PassCtx *c) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  size_t bytes = sizeof *data * (size_t)shape_numel(s);
  double *copy = arena_alloc(&g->arena, bytes ? bytes : sizeof *copy);
  memcpy(copy, data, bytes);
  a.constant.data = copy;
  a.constant.dtype = graph_node(g, like)->dtype;
  a.constant.shape = *s;
  NodeId id = graph_add(g, OP_CONST, NULL, 0, &a, graph_node(g, like)->loc, c->diag);
  if (id != IR_NONE) graph_node(g, id)->name = graph_node(g, like)->name;
  return id;
}

/* The constant w seen as [outer, channels, inner] along axis `axis`, keeping the channels
 * keep[] marks (each channel one or, after a flatten, H*W consecutive entries of the axis): a
 * new constant with that axis shrunk to `kept` channels; IR_NONE when it fails. */
static NodeId shrink_const(Graph *g, NodeId w, int axis, const bool *keep, int64_t channels,
                           int64_t kept, PassCtx *c) {
  const Node *n = graph_node(g, w);
  Shape s = n->shape;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; i++)
    outer *= s.dim[i];
  for (int i = axis + 1; i < s.rank; i++)
    inner *= s.dim[i];
  inner = inner * s.dim[axis] / channels; /* a flatten's H*W rows per channel */
  double *out = malloc(sizeof *out * (size_t)(outer * kept * inner + 1));
  if (!out) return IR_NONE;
  int64_t o = 0;
  for (int64_t i = 0; i < outer; i++)
    for (int64_t k = 0; k < channels; k++)
      for (int64_t j = 0; keep[k] && j < inner; j++)
        out[o++] = const_at(n, (i * channels + k) * inner + j);
  s.dim[axis] = kept * (s.dim[axis] / channels);
  NodeId id = add_const(g, w, &s, out, c);
  free(out);
  return id;
}

/* The consumer's bias plus, per output channel o, the sum over the removed constant channels
 * k of value[k] times the consumer's weights of k (every tap of a conv window, every row of a
 * flatten's block): a new constant; IR_NONE when it fails. */
static NodeId fold_bias(Graph *g, const Chain *ch, const bool *keep, const double *value,
                        PassCtx *c) {
  const Node *cons = graph_node(g, ch->consumer), *add = graph_node(g, ch->bias_add);
  const Node *w = graph_node(g, cons->in[1]);
  NodeId bias = add->in[0] == ch->consumer ? add->in[1] : add->in[0];
  const Node *b = graph_node(g, bias);
  int64_t outs = cons->shape.dim[1], size = shape_numel(&w->shape);
  double *sum = calloc((size_t)outs, sizeof *sum);
  if (!sum) return IR_NONE;
  for (int64_t k = 0; k < ch->channels; k++) {
    if (keep[k] || value[k] == 0.0) continue;
    if (cons->op == OP_CONV2D) { /* w [O2, C, kh, kw] */
      int64_t taps = size / (outs * ch->channels);
      for (int64_t o = 0; o < outs; o++)
        for (int64_t t = 0; t < taps; t++)
          sum[o] += value[k] * w->attr.constant.data[(o * ch->channels + k) * taps + t];
    } else { /* w [C * block, O2]: rows k * block .. (k + 1) * block */
      for (int64_t r = k * ch->block; r < (k + 1) * ch->block; r++)
        for (int64_t o = 0; o < outs; o++)
          sum[o] += value[k] * w->attr.constant.data[r * outs + o];
    }
  }
  for (int64_t o = 0; o < outs; o++)
    sum[o] = round_to(b->dtype, const_at(b, o) + sum[o]);
  NodeId id = add_const(g, bias, &b->shape, sum, c);
  free(sum);
  return id;
}

/* points input `from` of node `user` at `to` */
static void replace_input(Graph *g, NodeId user, NodeId from, NodeId to) {
  Node *u = graph_node(g, user);
  for (int k = 0; k < u->n_in; k++)
    if (u->in[k] == from) u->in[k] = to;
}

/* Shrinks the chain's nodes along axis 1, and their per-channel constants with them. */
static bool shrink_chain(Graph *g, const Chain *ch, const bool *keep, int64_t kept, PassCtx *c) {
  NodeId from = ch->producer;
  for (int i = 0; i < ch->n; i++) {
    Node *u = graph_node(g, ch->node[i]);
    int64_t per = u->shape.dim[1] / ch->channels; /* 1, or H*W after a flatten */
    u->shape.dim[1] = kept * per;
    if (u->op == OP_RESHAPE) u->attr.reshape.shape = u->shape;
    if (u->n_in == 2 && u->op != OP_MAX_POOL2D) {
      NodeId k = u->in[0] == from ? u->in[1] : u->in[0];
      const Node *kn = graph_node(g, k);
      if (const_axis(kn, &u->shape) == 1) {
        int axis = 1 - (u->shape.rank - kn->shape.rank);
        NodeId to = shrink_const(g, k, axis, keep, ch->channels, kept, c);
        if (to == IR_NONE) return false;
        replace_input(g, ch->node[i], k, to);
      }
    }
    from = ch->node[i];
  }
  return true;
}

/* Removes the channels keep[] does not mark from the producer, the chain and the consumer
 * (folding non-zero constants into the consumer's bias) and records the decision. */
static bool chain_apply(Graph *g, const Chain *ch, const bool *keep, const double *value,
                        int64_t kept, int64_t folded, PassCtx *c) {
  Node *p = graph_node(g, ch->producer);
  bool conv = p->op == OP_CONV2D;
  NodeId w = shrink_const(g, p->in[1], conv ? 0 : 1, keep, ch->channels, kept, c);
  if (w == IR_NONE) return false;
  graph_node(g, ch->producer)->in[1] = w;
  if (folded) {
    NodeId add = ch->bias_add, old = graph_node(g, add)->in[0] == ch->consumer
                                         ? graph_node(g, add)->in[1]
                                         : graph_node(g, add)->in[0];
    NodeId bias = fold_bias(g, ch, keep, value, c);
    if (bias == IR_NONE) return false;
    replace_input(g, add, old, bias);
  }
  NodeId cw = graph_node(g, ch->consumer)->in[1];
  bool cconv = graph_node(g, ch->consumer)->op == OP_CONV2D;
  NodeId to = shrink_const(g, cw, cconv ? 1 : 0, keep, ch->channels, kept, c);
  if (to == IR_NONE) return false;
  graph_node(g, ch->consumer)->in[1] = to;
  p = graph_node(g, ch->producer);
  p->shape.dim[1] = kept;
  int32_t *pruned = conv ? p->attr.conv.pruned : p->attr.matmul.pruned;
  pruned[0] = (int32_t)ch->channels;
  pruned[1] = (int32_t)folded;
  return shrink_chain(g, ch, keep, kept, c);
}

static bool uses_fill(const Graph *g, Uses *u) {
  u->readers = calloc(g->n_nodes + 1, sizeof *u->readers);
  u->reader = malloc((g->n_nodes + 1) * sizeof *u->reader);
  if (!u->readers || !u->reader) return false;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    u->reader[id] = IR_NONE;
    const Node *n = graph_node(g, id);
    for (int k = 0; k < n->n_in; k++)
      u->readers[n->in[k]]++, u->reader[n->in[k]] = id;
  }
  for (int i = 0; i < g->n_outputs; i++)
    u->readers[g->outputs[i].node] += 2; /* an output's value is never shrunk */
  return true;
}

/* One producer: trace, decide, apply. *changed when it removed channels. */
static bool prune_producer(Graph *g, const Uses *uses, NodeId id, bool *changed, PassCtx *c) {
  Chain ch;
  if (!is_producer(g, graph_node(g, id)) || !chain_trace(g, uses, id, &ch)) return true;
  bool *keep = malloc(sizeof *keep * (size_t)ch.channels);
  double *value = malloc(sizeof *value * (size_t)ch.channels);
  bool ok = keep && value;
  int64_t folded = 0, kept = ok ? chain_decide(g, &ch, keep, value, &folded) : 0;
  if (ok && kept < ch.channels) {
    ok = chain_apply(g, &ch, keep, value, kept, folded, c);
    *changed = true;
  }
  free(keep);
  free(value);
  return ok;
}

bool pass_prune_channels(Graph *g, PassCtx *c) {
  Uses uses = {0};
  bool changed = false, ok = uses_fill(g, &uses);
  uint32_t n = g->n_nodes; /* the constants appended on the way are no producers */
  for (NodeId id = 0; ok && id < n; id++)
    ok = prune_producer(g, &uses, id, &changed, c);
  free(uses.readers);
  free(uses.reader);
  if (!ok) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in prune_channels of '%s'", g->name);
    return false;
  }
  return !changed || rw_resort(g, c, "prune_channels");
}
