/* passes/autodiff.c — reverse-mode differentiation at compile time (pass_autodiff).
 *
 * Runs on the train entries (ENTRY_TRAIN: the optimizer step of Graph.step) and on the grad
 * entry (ENTRY_GRAD: gradients only, of the step `lathe grad --step` chose, steps[0] by
 * default); other graphs are left untouched. The entry arrives as a clone
 * of the model graph whose only output is the step's loss (OUT_LOSS, a rank-0 float).
 *
 *   1. select the params of the step (param_globs, fnmatch; none = all params);
 *   2. mark active nodes: float values that depend on a selected param through ops that
 *      are differentiable (not STOP_GRAD/comparisons/...) AND that the loss depends on;
 *      an active op without a VJP rule is an error, all of them reported at once;
 *   3. sweep ids downward from the loss (id order is topological): seed 1.0, apply each
 *      op's VJP rule (vjp.c), fan-out accumulating with ADD;
 *   4. "grad": add OUT_GRAD outputs; train entries: append the optimizer step (optim.c).
 *
 * Every backward node carries the loc of the forward node it differentiates, so the
 * generated code of the backward pass points at the model source.
 * Requires: a verified graph. Preserves: ids of the forward nodes (backward nodes append).
 */
#include <fnmatch.h>
#include <string.h>

#include "autodiff_internal.h"

/* ---- accumulation --------------------------------------------------------------------------- */

bool ad_wants(const AdCtx *a, NodeId input) {
  return input < a->n_fwd && a->active[input];
}

void ad_accumulate(AdCtx *a, NodeId input, NodeId contribution) {
  if (input >= a->n_fwd || !a->active[input] || contribution == IR_NONE) return;
  const Node *in = graph_node(a->b.g, input);
  Shape s = in->shape;
  DType t = in->dtype;
  NodeId c = build_cast(&a->b, build_unbroadcast(&a->b, contribution, &s), t);
  if (c == IR_NONE) return;
  a->grad[input] = a->grad[input] == IR_NONE ? c : build_binary(&a->b, OP_ADD, a->grad[input], c);
}

/* ---- which step, which params ------------------------------------------------------------- */

/* The step an entry differentiates (Graph.step): NULL with *is_entry false for entries that
 * are neither train nor grad. A grad entry made without a step takes the step whose loss it
 * kept, else the first. */
static const TrainStep *entry_step(const Graph *g, bool *is_entry, bool *grad_only) {
  const Module *m = g->module;
  *is_entry = g->kind == ENTRY_TRAIN || g->kind == ENTRY_GRAD;
  *grad_only = g->kind == ENTRY_GRAD;
  if (!*is_entry) return NULL;
  if (g->step >= 0) return g->step < m->n_steps ? &m->steps[g->step] : NULL;
  if (!*grad_only) return NULL;
  for (int i = 0; i < g->n_outputs; i++)
    for (int k = 0; g->outputs[i].kind == OUT_LOSS && k < m->n_steps; k++)
      if (m->steps[k].loss_node == g->outputs[i].node) return &m->steps[k];
  return m->n_steps > 0 ? &m->steps[0] : NULL;
}

static bool param_selected(const TrainStep *s, const char *name) {
  if (!s || s->n_globs == 0) return true;
  for (int i = 0; i < s->n_globs; i++)
    if (fnmatch(s->param_globs[i], name, 0) == 0) return true;
  return false;
}

/* The OUT_LOSS output, checked to be a rank-0 float; -1 (reported) otherwise. */
static int find_loss(const Graph *g, Diag *d) {
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_LOSS) continue;
    const Node *n = graph_node(g, g->outputs[i].node);
    char buf[200];
    if (n->shape.rank != 0 || !dtype_is_float(n->dtype)) {
      diag_error(d, n->loc, "the loss '%s' must be a scalar float, got %s%s",
                 g->outputs[i].name ? g->outputs[i].name : "?", dtype_name(n->dtype),
                 shape_str(&n->shape, buf, sizeof buf));
      return -1;
    }
    return i;
  }
  diag_error(d, (SrcLoc){0}, "internal error: train entry '%s' has no loss output", g->name);
  return -1;
}

/* ---- activity analysis -------------------------------------------------------------------- */

/* dep[i]: float node depending on a selected param through differentiable ops. */
static void mark_dependent(const Graph *g, const TrainStep *s, uint32_t n, bool *dep) {
  for (uint32_t i = 0; i < n; i++) {
    const Node *nd = graph_node(g, i);
    dep[i] = false;
    if (!dtype_is_float(nd->dtype)) continue;
    if (nd->op == OP_PARAM) {
      dep[i] = param_selected(s, g->module->params[nd->attr.source.index].name);
      continue;
    }
    if (vjp_kind(nd->op) == VJP_ZERO) continue;
    for (int k = 0; k < nd->n_in; k++)
      dep[i] = dep[i] || dep[nd->in[k]];
  }
}

/* active[i] = dep[i] and the loss depends on i through dependent nodes. */
static void mark_active(const Graph *g, NodeId loss, const bool *dep, bool *active) {
  for (NodeId i = 0; i <= loss; i++)
    active[i] = false;
  active[loss] = dep[loss];
  for (NodeId i = loss + 1; i-- > 0;) {
    if (!active[i]) continue;
    const Node *nd = graph_node(g, i);
    for (int k = 0; k < nd->n_in; k++)
      if (dep[nd->in[k]]) active[nd->in[k]] = true;
  }
}

static bool same_loc(SrcLoc a, SrcLoc b) {
  bool same_file = a.file == b.file || (a.file && b.file && strcmp(a.file, b.file) == 0);
  return same_file && a.line == b.line && a.col == b.col;
}

/* Reports every active op without a VJP rule, once per (op, loc). False if any. */
static bool check_rules(const Graph *g, NodeId loss, const bool *active, Diag *d) {
  int errors = 0;
  for (NodeId i = 0; i <= loss; i++) {
    const Node *nd = graph_node(g, i);
    if (!active[i] || nd->op == OP_PARAM || vjp_kind(nd->op) != VJP_NONE) continue;
    bool seen = false;
    for (NodeId j = 0; j < i && !seen; j++) {
      const Node *o = graph_node(g, j);
      seen = active[j] && o->op == nd->op && same_loc(o->loc, nd->loc);
    }
    if (seen) continue;
    diag_error(d, nd->loc,
               "cannot differentiate '%s': the op has no gradient rule, and the "
               "loss depends on a trained param through it",
               ir_ops[nd->op].name);
    errors++;
  }
  return errors == 0;
}

/* ---- the sweep ---------------------------------------------------------------------------- */

static bool sweep(AdCtx *a, NodeId loss) {
  const Node *l = graph_node(a->b.g, loss);
  a->b.loc = l->loc;
  a->grad[loss] = build_scalar(&a->b, l->dtype, 1.0);
  for (NodeId i = loss + 1; i-- > 0;) {
    const Node *nd = graph_node(a->b.g, i);
    if (!a->active[i] || a->grad[i] == IR_NONE || nd->op == OP_PARAM) continue;
    a->b.loc = nd->loc;
    if (!vjp_apply(a, i, a->grad[i]) || a->b.failed) return false;
  }
  return !a->b.failed;
}

/* Sum of the gradients of every PARAM node of param p (NONE if none reached p). */
static NodeId param_grad(AdCtx *a, int32_t p, NodeId *value) {
  NodeId sum = IR_NONE;
  *value = IR_NONE;
  for (NodeId i = 0; i < a->n_fwd; i++) {
    const Node *nd = graph_node(a->b.g, i);
    if (nd->op != OP_PARAM || nd->attr.source.index != p) continue;
    if (*value == IR_NONE) *value = i;
    if (a->grad[i] == IR_NONE) continue;
    sum = sum == IR_NONE ? a->grad[i] : build_binary(&a->b, OP_ADD, sum, a->grad[i]);
  }
  return sum;
}

static bool add_grad_outputs(AdCtx *a, const TrainStep *s) {
  Module *m = a->b.g->module;
  for (int32_t p = 0; p < m->n_params; p++) {
    if (!param_selected(s, m->params[p].name)) continue;
    NodeId value;
    a->b.loc = m->params[p].loc;
    NodeId gr = param_grad(a, p, &value);
    if (gr == IR_NONE) gr = build_fill(&a->b, m->params[p].dtype, &m->params[p].shape, 0.0);
    if (a->b.failed) return false;
    graph_add_output(a->b.g, m->params[p].name, gr, OUT_GRAD, p);
  }
  return true;
}

/* Params the optimizer updates: selected ones that the loss reaches (like torch, a param
 * whose .grad stays None is skipped by the optimizer). */
static bool append_optimizer(AdCtx *a, const TrainStep *s, PassCtx *c) {
  Module *m = a->b.g->module;
  OptimParam *ps = arena_alloc(&c->scratch, sizeof *ps * (size_t)(m->n_params + 1));
  int n = 0;
  for (int32_t p = 0; p < m->n_params; p++) {
    if (!param_selected(s, m->params[p].name)) continue;
    NodeId value;
    a->b.loc = m->params[p].loc;
    NodeId gr = param_grad(a, p, &value);
    if (gr == IR_NONE) continue;
    ps[n++] = (OptimParam){p, value, gr};
  }
  if (a->b.failed) return false;
  return optim_append(a, s, a->b.g->name, ps, n);
}

bool pass_autodiff(Graph *g, PassCtx *c) {
  bool is_entry, grad_only;
  const TrainStep *s = entry_step(g, &is_entry, &grad_only);
  if (!is_entry) return true;
  if (!s && !grad_only) {
    diag_error(c->diag, (SrcLoc){0}, "internal error: no train step for entry '%s'", g->name);
    return false;
  }
  int lo = find_loss(g, c->diag);
  if (lo < 0) return false;
  NodeId loss = g->outputs[lo].node;
  uint32_t n = g->n_nodes;
  bool *dep = arena_alloc(&c->scratch, n);
  bool *active = arena_alloc(&c->scratch, n);
  NodeId *grad = arena_alloc(&c->scratch, sizeof *grad * n);
  for (uint32_t i = 0; i < n; i++)
    grad[i] = IR_NONE;
  mark_dependent(g, s, n, dep);
  mark_active(g, loss, dep, active);
  if (!check_rules(g, loss, active, c->diag)) return false;
  AdCtx a = {build_init(g, c->diag, g->nodes[loss].loc), grad, active, n};
  if (!sweep(&a, loss)) return false;
  return grad_only ? add_grad_outputs(&a, s) : append_optimizer(&a, s, c);
}
