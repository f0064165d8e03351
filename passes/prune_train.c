/* passes/prune_train.c — the masks of the `prune` statements in the forward of a train step
 * (pass_prune_train; issue 20, docs/compression.md "In the IR").
 *
 * For every param p that a statement of the entry's step prunes, with its mask state
 * "<p>.mask" (declared by frontend/elab_prune.c, ones at init):
 *   s     = the statement's sparsity at step t (TF MOT's polynomial schedule, ir/prune.h's
 *           prune_schedule, built in f64 from the step counter "<train entry>.step_count",
 *           which passes/optim.c increments) on a mask-update step, else -1;
 *   mask' = PRUNE_MASK(|w|, mask, s): a new mask on an update step, the old one otherwise
 *           (channels: of the per-channel norms; global magnitude: of all matched params
 *           packed into one vector);
 *   every use of p in the forward reads p * mask', so a pruned weight's gradient is zero and
 *   the optimizer's moments never see it; mask' is written back to the state (train
 *   entries, and the grad entry of a split step). pass_prune_update then masks the update.
 * An update step is t in [begin, end] with (t - begin) % every == 0, or t == end (so the
 * final sparsity is reached even when every does not divide end - begin); t counts the steps
 * taken before this one, so the first step is t = 0. With end == begin the schedule is
 * constant: one mask at `begin`, at the final sparsity.
 * Runs before autodiff on train and grad entries whose step has `prune` statements.
 * Requires: a verified graph. Invalidates: ids (re-sorted: the masks are appended and the
 * forward reads them).
 */
#include "rewrite.h"

#include "ir/build.h"
#include "ir/prune.h"

#include <stdio.h>
#include <string.h>

typedef struct Pruner {
  Builder b;
  PassCtx *c;
  const TrainStep *step;
  uint32_t n_fwd; /* nodes before the pass: the ones whose reads of p are masked */
  NodeId *repl;   /* PARAM node -> its masked value */
  NodeId t;       /* f64: steps taken before this one */
  bool write;     /* write the new masks to their states */
} Pruner;

static NodeId f64(Pruner *r, double v) {
  return build_scalar(&r->b, DT_F64, v);
}
static NodeId is(Pruner *r, OpKind cmp, NodeId x, NodeId y) {
  return build_cast(&r->b, build_binary(&r->b, cmp, x, y), DT_F64);
}

/* the step counter that passes/optim.c keeps for the step's train entry */
static NodeId steps_taken(Pruner *r, const Graph *g) {
  Module *m = g->module;
  const char *name = r->step->name ? arena_printf(&m->arena, "train_%s.step_count", r->step->name)
                                   : "train.step_count";
  int32_t idx = module_find_state(m, name);
  Shape scalar = shape_make(0, NULL);
  if (idx < 0)
    idx = module_add_state(m, name, DT_F64, &scalar, (InitSpec){INIT_ZEROS, 0, 0}, r->step->loc);
  return graph_add_source(r->b.g, OP_STATE, idx, r->step->loc);
}

/* s(t) on a mask-update step, else -1 (see the head comment) */
static NodeId sparsity_at(Pruner *r, const PruneSpec *ps) {
  NodeId t = r->t, begin = f64(r, (double)ps->begin), end = f64(r, (double)ps->end);
  NodeId since = build_binary(&r->b, OP_SUB, t, begin);
  NodeId q = build_binary(&r->b, OP_DIV, since, f64(r, (double)ps->every));
  NodeId whole = build_cast(&r->b, build_cast(&r->b, q, DT_I64), DT_F64); /* q >= 0 when used */
  NodeId turn = build_binary(
      &r->b, OP_MAXIMUM,
      is(r, OP_EQ, build_binary(&r->b, OP_MUL, whole, f64(r, (double)ps->every)), since),
      is(r, OP_EQ, t, end));
  NodeId update =
      build_binary(&r->b, OP_MUL,
                   build_binary(&r->b, OP_MUL, is(r, OP_GE, t, begin), is(r, OP_LE, t, end)), turn);
  NodeId s = f64(r, ps->sparsity);
  if (ps->end > ps->begin) { /* prune_schedule's branches, in its order of operations */
    NodeId p =
        build_binary(&r->b, OP_SUB, f64(r, 1.0),
                     build_binary(&r->b, OP_DIV, since, f64(r, (double)(ps->end - ps->begin))));
    NodeId cube = build_binary(
        &r->b, OP_MUL,
        build_binary(&r->b, OP_MUL,
                     build_binary(&r->b, OP_MUL, f64(r, ps->initial - ps->sparsity), p), p),
        p);
    NodeId mid = build_binary(&r->b, OP_ADD, s, cube);
    s = build_ternary(&r->b, OP_WHERE, is(r, OP_LE, t, begin), f64(r, ps->initial),
                      build_ternary(&r->b, OP_WHERE, is(r, OP_GE, t, end), s, mid));
  } /* end == begin: one mask at begin, at the final sparsity (TF MOT's ConstantSparsity) */
  return build_ternary(&r->b, OP_WHERE, update, s, f64(r, -1.0));
}

/* the value of param p that the mask is chosen from: the forward's first read of it (a new
 * read when the forward has none) */
static NodeId param_value(Pruner *r, int32_t p) {
  for (NodeId i = 0; i < r->n_fwd; i++) {
    const Node *n = graph_node(r->b.g, i);
    if (n->op == OP_PARAM && n->attr.source.index == p) return i;
  }
  return graph_add_source(r->b.g, OP_PARAM, p, r->b.loc);
}

static int32_t mask_index(const Module *m, int32_t p) {
  char name[512];
  snprintf(name, sizeof name, "%s.mask", m->params[p].name);
  return module_find_state(m, name);
}

static NodeId prune_op(Pruner *r, NodeId w, NodeId old, NodeId s, const PruneSpec *ps,
                       bool columns) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  if (ps->kind == PRUNE_N_OF_M) a.prune.n = ps->n, a.prune.m = ps->m, a.prune.columns = columns;
  NodeId in[3] = {w, old, s};
  return build_node(&r->b, OP_PRUNE_MASK, in, 3, &a);
}

/* channels: the mask of the per-channel L1 / L2 norms (in f64, as ir/prune.c), broadcast
 * back over each channel; the old per-channel mask is the max over the channel */
static NodeId channel_mask(Pruner *r, const PruneSpec *ps, int32_t p, NodeId w, NodeId old,
                           NodeId s) {
  const TensorDecl *d = &r->b.g->module->params[p];
  int rank = d->shape.rank, keep = prune_output_axis(r->b.g->module->model, p) == 1 ? rank - 1 : 0;
  uint32_t axes = ((1u << rank) - 1) & ~(1u << keep);
  NodeId x = build_cast(&r->b, w, DT_F64);
  NodeId mag = ps->norm == 1 ? build_unary(&r->b, OP_ABS, x) : build_binary(&r->b, OP_MUL, x, x);
  NodeId norms = build_reduce(&r->b, OP_SUM, mag, axes, false);
  NodeId before = build_cast(&r->b, build_reduce(&r->b, OP_MAX, old, axes, false), DT_F64);
  NodeId chosen = build_cast(&r->b, prune_op(r, norms, before, s, ps, false), d->dtype);
  Shape kept = d->shape;
  for (int i = 0; i < rank; i++)
    kept.dim[i] = i == keep ? d->shape.dim[i] : 1;
  return build_broadcast(&r->b, build_reshape(&r->b, chosen, &kept), &d->shape);
}

/* global magnitude: one mask over every matched param, packed into one vector */
static bool global_masks(Pruner *r, const PruneSpec *ps, NodeId s, NodeId *masks) {
  const Module *m = r->b.g->module;
  if (ps->n_params > IR_MAX_INPUTS) {
    diag_error(r->c->diag, ps->loc,
               "global magnitude pruning ranks at most %d params together, "
               "this statement matches %d",
               IR_MAX_INPUTS, ps->n_params);
    return false;
  }
  NodeId ws[IR_MAX_INPUTS], olds[IR_MAX_INPUTS];
  for (int i = 0; i < ps->n_params; i++) {
    const TensorDecl *d = &m->params[ps->params[i]];
    int64_t size = shape_numel(&d->shape);
    Shape flat = shape_make(1, &size);
    NodeId old = graph_add_source(r->b.g, OP_STATE, mask_index(m, ps->params[i]), ps->loc);
    ws[i] = build_reshape(&r->b, param_value(r, ps->params[i]), &flat);
    olds[i] = build_reshape(&r->b, old, &flat);
  }
  NodeId all = prune_op(r, build_node(&r->b, OP_PACK, ws, ps->n_params, NULL),
                        build_node(&r->b, OP_PACK, olds, ps->n_params, NULL), s, ps, false);
  int64_t offset = 0;
  for (int i = 0; i < ps->n_params; i++) {
    const TensorDecl *d = &m->params[ps->params[i]];
    int64_t size = shape_numel(&d->shape);
    Shape flat = shape_make(1, &size);
    masks[i] = build_reshape(&r->b, build_unpack(&r->b, all, offset, 0, &flat), &d->shape);
    offset += size;
  }
  return !r->b.failed;
}

/* the new masks of one statement, one per matched param */
static bool statement_masks(Pruner *r, const PruneSpec *ps, NodeId *masks) {
  const Module *m = r->b.g->module;
  NodeId s = sparsity_at(r, ps);
  if (ps->kind == PRUNE_MAGNITUDE && ps->global) return global_masks(r, ps, s, masks);
  for (int i = 0; i < ps->n_params; i++) {
    int32_t p = ps->params[i];
    NodeId w = param_value(r, p);
    NodeId old = graph_add_source(r->b.g, OP_STATE, mask_index(m, p), ps->loc);
    bool columns = prune_output_axis(m->model, p) == 1;
    masks[i] = ps->kind == PRUNE_CHANNELS ? channel_mask(r, ps, p, w, old, s)
                                          : prune_op(r, w, old, s, ps, columns);
  }
  return !r->b.failed;
}

/* the forward's reads of p become p * mask; the mask is written back when r->write */
static void use_mask(Pruner *r, int32_t p, NodeId mask) {
  Graph *g = r->b.g;
  for (NodeId i = 0; i < r->n_fwd; i++) {
    const Node *n = graph_node(g, i);
    if (n->op == OP_PARAM && n->attr.source.index == p)
      r->repl[i] = build_binary(&r->b, OP_MUL, i, mask);
  }
  const Module *m = g->module;
  int32_t index = mask_index(m, p);
  if (r->write) graph_add_output(g, m->states[index].name, mask, OUT_STATE_UPDATE, index);
}

static bool prune_step(Pruner *r) {
  Graph *g = r->b.g;
  r->t = steps_taken(r, g);
  for (int k = 0; k < r->step->n_prunes; k++) {
    const PruneSpec *ps = &r->step->prunes[k];
    NodeId *masks = arena_alloc(&r->c->scratch, sizeof *masks * (size_t)ps->n_params);
    r->b.loc = ps->loc;
    if (!statement_masks(r, ps, masks)) return false;
    for (int i = 0; i < ps->n_params; i++)
      use_mask(r, ps->params[i], masks[i]);
  }
  if (r->b.failed) return false;
  for (NodeId i = 0; i < r->n_fwd; i++)
    if (graph_node(g, i)->op != OP_PARAM) rw_inputs(g, r->repl, i);
  return rw_resort(g, r->c, "prune_train");
}

bool pass_prune_train(Graph *g, PassCtx *c) {
  const Module *m = g->module;
  if ((g->kind != ENTRY_TRAIN && g->kind != ENTRY_GRAD) || g->step < 0 || g->step >= m->n_steps)
    return true;
  const TrainStep *step = &m->steps[g->step];
  if (step->n_prunes == 0) return true;
  Pruner r = {build_init(g, c->diag, step->loc),      c, step, g->n_nodes, NULL, IR_NONE,
              g->kind == ENTRY_TRAIN || c->want_split};
  if (!(r.repl = rw_identity(g, c, "prune_train"))) return false;
  bool ok = prune_step(&r);
  free(r.repl);
  return ok;
}
