/* passes/qat.c — quantization-aware training: the fake quantization of a `quantize`
 * statement in every entry (pass_qat; issue 19, docs/int8.md "Quantization-aware training").
 *
 * For each int8 layer of Module.qat (frontend/elab_qat.c: the layers and tensors `lathe
 * quantize` would make int8):
 *   - its weight w is read as fake_quant(w, s_w, 0) {-127, 127}, s_w = max|w| / 127 per
 *     output channel (a dense [I, O]: per column; a conv2d [O, C / groups, kh, kw], grouped
 *     or depthwise alike: per O; one scale with `per_tensor`), an all-zero channel 1 —
 *     rt_quant_weight_scales, recomputed from the current weights every step;
 *   - its input (when float) is read as fake_quant(x, s, zp) {-128, 127} and every reader of
 *     its result reads fake_quant(y, s, zp), (s, zp) chosen from the tensor's range [lo, hi]
 *     as rt_quant_choose_params does (in f64: [lo, hi] widened to contain 0, s = (hi - lo) /
 *     255, zp = round_half_away(-128 - lo / s) clamped to [-128, 127]; s = 1 while the range is
 *     [0, 0]).
 * For each qadd of Module.qat (an add of two int8 tensors, a residual connection, which
 * `lathe quantize` writes as TFLite's int8 ADD): its inputs are int8 layers' results, read
 * fake-quantized already; every reader of its result (the add, or the ReLU fused after it)
 * reads fake_quant(y, s, zp) of its own range, as for a layer's result.
 * The range is the tensor's state [min, max]. Training entries (train, grad) take the batch's
 * min and max b and move the state as PyTorch's MovingAverageMinMaxObserver does: the first
 * batch's range as it is (a state of [0, 0] has seen nothing), then state + 0.01 (b - state);
 * that new range quantizes the batch and is written back (train entries, and the grad entry
 * of a split step). Inference entries (forward, evaluate) read the state as it is.
 * fake_quant's VJP is the straight-through estimator (passes/vjp_quant.c); its scale and zero
 * point get no gradient, so the ranges and max|w| are not differentiated.
 * Runs first, on the entries of a module with a `quantize` statement, while their node ids are
 * still Module.model's. Requires: a verified graph. Invalidates: ids (re-sorted).
 */
#include "rewrite.h"

#include "ir/build.h"

#include <string.h>

typedef struct Qat {
  Builder b;
  PassCtx *c;
  const QatSpec *spec;
  bool training; /* batch ranges, moved into the state */
  bool write;    /* the new ranges written to their states */
  NodeId *done;  /* per state: the fake-quantized tensor of that range, once built */
} Qat;

static NodeId num(Qat *q, double v) {
  return build_scalar(&q->b, DT_F64, v);
}
static NodeId bin(Qat *q, OpKind op, NodeId x, NodeId y) {
  return build_binary(&q->b, op, x, y);
}

static NodeId fake_quant(Qat *q, NodeId x, NodeId scale, NodeId zp, int32_t qmin, int32_t qmax) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.quant.qmin = qmin, a.quant.qmax = qmax;
  NodeId in[3] = {x, scale, zp};
  return build_node(&q->b, OP_FAKE_QUANT, in, 3, &a);
}

/* fake_quant(w) with s = max|w| / 127 per output channel (or per tensor), in w's dtype */
static NodeId weight_fq(Qat *q, const QatLayer *L, NodeId w) {
  const Node *wn = graph_node(q->b.g, w);
  DType t = wn->dtype;
  uint32_t all = (1u << wn->shape.rank) - 1;
  uint32_t axes = q->spec->per_tensor ? all : L->conv ? all & ~1u : 1u; /* keep O */
  NodeId amax = build_reduce(&q->b, OP_MAX, build_unary(&q->b, OP_ABS, w), axes, L->conv);
  NodeId scale =
      build_ternary(&q->b, OP_WHERE, bin(q, OP_GT, amax, build_scalar(&q->b, t, 0)),
                    bin(q, OP_DIV, amax, build_scalar(&q->b, t, 127)), build_scalar(&q->b, t, 1));
  return fake_quant(q, w, scale, build_scalar(&q->b, DT_I32, 0), -127, 127);
}

/* element i of the range state's value r, as an f64 scalar */
static NodeId element(Qat *q, NodeId r, int64_t i) {
  Shape scalar = shape_make(0, NULL);
  return build_cast(&q->b, build_unpack(&q->b, r, i, 0, &scalar), DT_F64);
}

/* training: the moved range of the state from the batch t (written back when q->write) */
static void batch_range(Qat *q, NodeId t, int32_t state, NodeId old, NodeId *lo, NodeId *hi) {
  Graph *g = q->b.g;
  uint32_t all = (1u << graph_node(g, t)->shape.rank) - 1;
  NodeId bmax = build_cast(&q->b, build_reduce(&q->b, OP_MAX, t, all, false), DT_F64);
  NodeId bmin = build_unary(
      &q->b, OP_NEG,
      build_cast(&q->b, build_reduce(&q->b, OP_MAX, build_unary(&q->b, OP_NEG, t), all, false),
                 DT_F64));
  NodeId omin = element(q, old, 0), omax = element(q, old, 1);
  NodeId empty = bin(q, OP_MUL, bin(q, OP_EQ, omin, num(q, 0)), bin(q, OP_EQ, omax, num(q, 0)));
  NodeId k = num(q, q->spec->momentum);
  *lo = build_ternary(&q->b, OP_WHERE, empty, bmin,
                      bin(q, OP_ADD, omin, bin(q, OP_MUL, k, bin(q, OP_SUB, bmin, omin))));
  *hi = build_ternary(&q->b, OP_WHERE, empty, bmax,
                      bin(q, OP_ADD, omax, bin(q, OP_MUL, k, bin(q, OP_SUB, bmax, omax))));
  if (!q->write) return;
  int64_t one = 1;
  Shape v1 = shape_make(1, &one);
  NodeId both[2] = {build_reshape(&q->b, *lo, &v1), build_reshape(&q->b, *hi, &v1)};
  NodeId packed = build_node(&q->b, OP_PACK, both, 2, NULL);
  const TensorDecl *d = &g->module->states[state];
  graph_add_output(g, d->name, build_cast(&q->b, packed, d->dtype), OUT_STATE_UPDATE, state);
}

/* fake_quant(t) with the scale and zero point of its range state (see the head comment) */
static NodeId activation_fq(Qat *q, NodeId t, int32_t state) {
  if (q->done[state] != IR_NONE) return q->done[state];
  NodeId old = graph_add_source(q->b.g, OP_STATE, state, q->b.loc), lo, hi;
  if (q->training)
    batch_range(q, t, state, old, &lo, &hi);
  else
    lo = element(q, old, 0), hi = element(q, old, 1);
  lo = bin(q, OP_MINIMUM, lo, num(q, 0)), hi = bin(q, OP_MAXIMUM, hi, num(q, 0));
  NodeId s = build_ternary(&q->b, OP_WHERE, bin(q, OP_GT, hi, lo),
                           bin(q, OP_DIV, bin(q, OP_SUB, hi, lo), num(q, 255)), num(q, 1));
  NodeId z = bin(q, OP_SUB, num(q, -128), bin(q, OP_DIV, lo, s));
  NodeId away = build_cast(
      &q->b, build_cast(&q->b, bin(q, OP_ADD, build_unary(&q->b, OP_ABS, z), num(q, 0.5)), DT_I64),
      DT_F64); /* trunc(|z| + 0.5) */
  NodeId zr = bin(q, OP_MUL, build_unary(&q->b, OP_SIGN, z), away);
  zr = bin(q, OP_MINIMUM, bin(q, OP_MAXIMUM, zr, num(q, -128)), num(q, 127));
  DType dt = graph_node(q->b.g, t)->dtype;
  NodeId fq = fake_quant(q, t, build_cast(&q->b, s, dt), build_cast(&q->b, zr, DT_I32), -128, 127);
  return q->done[state] = fq;
}

/* one layer: its weight and float input read fake-quantized; repl[out] = its quantized result */
static bool qat_layer(Qat *q, const QatLayer *L, NodeId *repl) {
  Graph *g = q->b.g;
  const Node *op = graph_node(g, L->op);
  bool same = L->op < g->n_nodes && L->out < g->n_nodes &&
              op->op == (L->conv ? OP_CONV2D : OP_MATMUL) && op->n_in == 2 &&
              graph_node(g, op->in[1])->op == OP_PARAM &&
              graph_node(g, op->in[1])->attr.source.index == L->w_param;
  if (!same) {
    diag_error(q->c->diag, q->spec->loc,
               "internal: entry '%s' no longer has the layer of param '%s' where the model had it",
               g->name, g->module->params[L->w_param].name);
    return false;
  }
  q->b.loc = op->loc;
  NodeId wq = weight_fq(q, L, op->in[1]);
  NodeId xq = L->x_state >= 0 ? activation_fq(q, L->x, L->x_state) : L->x;
  repl[L->out] = activation_fq(q, L->out, L->y_state);
  if (q->b.failed) return false;
  g->nodes[L->op].in[0] = xq, g->nodes[L->op].in[1] = wq; /* the arena may have moved */
  return true;
}

/* one qadd (a residual add of two int8 tensors): every reader of its result (the add, or the
 * ReLU fused after it) reads it fake-quantized with its own range; its inputs already are */
static bool qat_add(Qat *q, const QatAdd *a, NodeId *repl) {
  Graph *g = q->b.g;
  const Node *n = a->out < g->n_nodes ? graph_node(g, a->out) : NULL;
  if (!n || (n->op != OP_ADD && n->op != OP_RELU)) {
    diag_error(q->c->diag, q->spec->loc,
               "internal: entry '%s' no longer has the residual add of range '%s' where the "
               "model had it",
               g->name, g->module->states[a->state].name);
    return false;
  }
  q->b.loc = n->loc;
  repl[a->out] = activation_fq(q, a->out, a->state);
  return !q->b.failed;
}

bool pass_qat(Graph *g, PassCtx *c) {
  Module *m = g->module;
  if (!m->qat || g->kind == ENTRY_NONE || g->kind == ENTRY_APPLY) return true;
  Qat q = {.b = build_init(g, c->diag, m->qat->loc),
           .c = c,
           .spec = m->qat,
           .training = entry_kind_is_training(g->kind),
           .write = g->kind == ENTRY_TRAIN || (g->kind == ENTRY_GRAD && c->want_split)};
  uint32_t n_fwd = g->n_nodes;
  NodeId *repl = rw_identity(g, c, "qat");
  q.done = malloc(sizeof *q.done * (size_t)(m->n_states + 1));
  bool ok = repl && q.done;
  for (int i = 0; ok && i < m->n_states; i++)
    q.done[i] = IR_NONE;
  for (int l = 0; ok && l < m->qat->n_layers; l++)
    ok = qat_layer(&q, &m->qat->layers[l], repl);
  for (int a = 0; ok && a < m->qat->n_adds; a++)
    ok = qat_add(&q, &m->qat->adds[a], repl);
  for (uint32_t id = 0; ok && id < n_fwd; id++) /* the new nodes read what they were built on */
    for (int k = 0; k < g->nodes[id].n_in; k++)
      if (g->nodes[id].in[k] < n_fwd) g->nodes[id].in[k] = repl[g->nodes[id].in[k]];
  for (int o = 0; ok && o < g->n_outputs; o++)
    if (g->outputs[o].node < n_fwd) g->outputs[o].node = repl[g->outputs[o].node];
  ok = ok && rw_resort(g, c, "qat");
  free(repl), free(q.done);
  return ok;
}
