/* frontend/elab_qat.c — the `quantize` statement of a train block (quantization-aware
 * training, issue 19, docs/int8.md "Quantization-aware training") into Module.qat.
 *
 *   quantize [per_channel | per_tensor] [except NAME {, NAME}]
 *
 * The int8 layers are the ones `lathe quantize` makes int8 (cli/quantize_plan.c, the same
 * rules on the same elaborated model graph): a dense (a matmul of an activation by a param
 * [I, O], its param bias add and its ReLU when each is the only user of the one before) or a
 * conv2d by a param [O, C, kh, kw]; every one of them except the last (it stays float by
 * default, as in `lathe quantize`) and those named by `except` (a param prefix, `h1` for
 * `h1.w`, or a glob of one). The tensors given a tracked range are the ones `lathe quantize`
 * observes: each int8 layer's result and each float tensor an int8 layer reads (an int8
 * layer's result stays int8 through reshape, transpose and max_pool2d). Each range is a state
 * "<layer>.qat_in" / "<layer>.qat_out" of [min, max] (zeros: not yet observed), named after
 * the first int8 layer that reads or makes it. passes/qat.c builds the fake quantization.
 * Reported at the statement: a second `quantize`, an `except` name that names no layer, a
 * model with no layer to quantize, a grouped conv2d left int8.
 */
#include "elab.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct QatMatch {
  Graph *g;
  int *uses;     /* per node: its readers, graph outputs included */
  uint8_t *live; /* per node: an output depends on it */
} QatMatch;

/* the single node that reads id, or IR_NONE (a graph output is a reader too) */
static NodeId only_user(const QatMatch *q, NodeId id) {
  if (q->uses[id] != 1) return IR_NONE;
  for (int o = 0; o < q->g->n_outputs; o++)
    if (q->g->outputs[o].node == id) return IR_NONE;
  for (NodeId u = id + 1; u < q->g->n_nodes; u++)
    for (int k = 0; k < graph_node(q->g, u)->n_in; k++)
      if (graph_node(q->g, u)->in[k] == id) return u;
  return IR_NONE;
}

/* true when `add` adds a param bias [O] (a conv's reshaped to [O, 1, 1]) to y */
static bool is_bias_add(const QatMatch *q, NodeId add, NodeId y, bool conv, int64_t o) {
  const Node *a = graph_node(q->g, add);
  if (a->op != OP_ADD || a->n_in != 2) return false;
  NodeId b = a->in[0] == y ? a->in[1] : a->in[0];
  if (conv) {
    const Node *r = graph_node(q->g, b);
    if (r->op != OP_RESHAPE || q->uses[b] != 1 || r->shape.rank != 3 || r->shape.dim[0] != o)
      return false;
    b = r->in[0];
  }
  const Node *p = graph_node(q->g, b);
  return p->op == OP_PARAM && p->shape.rank == 1 && p->shape.dim[0] == o && q->uses[b] == 1;
}

/* a matmul / conv2d by a param weight (quantize_plan.c's match_layer) */
static bool match_layer(const QatMatch *q, NodeId id, QatLayer *L) {
  const Node *n = graph_node(q->g, id);
  bool conv = n->op == OP_CONV2D;
  if ((n->op != OP_MATMUL && !conv) || n->n_in != 2 || !dtype_is_float(n->dtype)) return false;
  if (!conv && (n->attr.matmul.trans_a || n->attr.matmul.trans_b)) return false;
  const Node *w = graph_node(q->g, n->in[1]);
  if (w->op != OP_PARAM || w->shape.rank != (conv ? 4 : 2) || q->uses[n->in[1]] != 1) return false;
  int64_t o = conv ? w->shape.dim[0] : w->shape.dim[1];
  *L = (QatLayer){.w_param = w->attr.source.index,
                  .conv = conv,
                  .op = id,
                  .x = n->in[0],
                  .out = id,
                  .x_state = -1,
                  .y_state = -1};
  NodeId next = only_user(q, id);
  if (next != IR_NONE && is_bias_add(q, next, id, conv, o))
    L->out = next, next = only_user(q, next);
  if (next != IR_NONE && graph_node(q->g, next)->op == OP_RELU) L->out = next;
  return true;
}

/* "h1.w" -> "h1" (module arena) */
static const char *layer_prefix(Module *m, int32_t w_param) {
  const char *full = m->params[w_param].name, *dot = strrchr(full, '.');
  return arena_strndup(&m->arena, full, dot ? (size_t)(dot - full) : strlen(full));
}

static bool qat_match_init(QatMatch *q, Graph *g) {
  size_t n = g->n_nodes ? g->n_nodes : 1;
  q->g = g;
  q->uses = calloc(n, sizeof *q->uses);
  q->live = calloc(n, 1);
  if (!q->uses || !q->live) return false;
  for (NodeId id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < graph_node(g, id)->n_in; k++)
      q->uses[graph_node(g, id)->in[k]]++;
  for (int o = 0; o < g->n_outputs; o++)
    q->uses[g->outputs[o].node]++, q->live[g->outputs[o].node] = 1;
  for (NodeId id = g->n_nodes; id-- > 0;)
    for (int k = 0; q->live[id] && k < graph_node(g, id)->n_in; k++)
      q->live[graph_node(g, id)->in[k]] = 1;
  return true;
}

/* every live layer of the model, in graph order (*n of them; malloc'd) */
static QatLayer *find_layers(const QatMatch *q, int *n) {
  QatLayer *all = calloc(q->g->n_nodes ? q->g->n_nodes : 1, sizeof *all);
  *n = 0;
  for (NodeId id = 0; all && id < q->g->n_nodes; id++)
    if (q->live[id] && match_layer(q, id, &all[*n])) ++*n;
  return all;
}

/* the layers `except` keeps float (and the last one): keep[l]; false on a name matching none */
static bool choose_float(Elab *E, const QuantizeAst *qa, const QatLayer *all, int n, bool *keep) {
  bool ok = true;
  for (int l = 0; l < n; l++)
    keep[l] = l == n - 1;
  for (int k = 0; k < qa->n_except; k++) {
    bool hit = false;
    for (int l = 0; l < n; l++)
      if (fnmatch(qa->except[k], layer_prefix(E->m, all[l].w_param), 0) == 0) keep[l] = hit = true;
    if (hit) continue;
    char names[512] = "";
    for (int l = 0; l < n; l++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", l ? ", " : "",
               layer_prefix(E->m, all[l].w_param));
    diag_error(E->d, elab_loc(E, qa->except_locs[k]),
               "quantize: 'except %s' names no dense or conv2d layer; the layers are %s",
               qa->except[k], names);
    ok = false;
  }
  return ok;
}

/* a new range state "<layer>.<what>", zeros (not yet observed), of t's dtype */
static int32_t range_state(Elab *E, const QatLayer *L, const char *what, NodeId t, SrcLoc loc) {
  int64_t two = 2;
  Shape s = shape_make(1, &two);
  const char *name = arena_printf(&E->m->arena, "%s.%s", layer_prefix(E->m, L->w_param), what);
  if (module_find_state(E->m, name) >= 0 || module_find_param(E->m, name) >= 0) {
    diag_error(E->d, loc, "quantize: the range state '%s' is already a name of the model", name);
    return -1;
  }
  return module_add_state(E->m, name, graph_node(E->g, t)->dtype, &s, (InitSpec){INIT_ZEROS, 0, 0},
                          loc);
}

static bool is_passthrough(OpKind op) {
  return op == OP_RESHAPE || op == OP_TRANSPOSE || op == OP_MAX_POOL2D;
}

/* the int8 layers' range states, in id order as quantize_plan.c's assign_int8 */
static bool assign_states(Elab *E, QatSpec *qs, const QatMatch *q) {
  Graph *g = E->g;
  size_t n = g->n_nodes ? g->n_nodes : 1;
  int32_t *state_of = malloc(n * sizeof *state_of), *layer_at = malloc(n * sizeof *layer_at);
  uint8_t *int8 = calloc(n, 1);
  bool ok = state_of && layer_at && int8;
  for (NodeId id = 0; ok && id < g->n_nodes; id++)
    state_of[id] = layer_at[id] = -1;
  for (int l = 0; ok && l < qs->n_layers; l++)
    layer_at[qs->layers[l].out] = l;
  for (NodeId id = 0; ok && id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (layer_at[id] >= 0) {
      QatLayer *L = &qs->layers[layer_at[id]];
      if (!int8[L->x] && state_of[L->x] < 0)
        state_of[L->x] = range_state(E, L, "qat_in", L->x, qs->loc);
      L->x_state = int8[L->x] ? -1 : state_of[L->x];
      L->y_state = state_of[id] = range_state(E, L, "qat_out", id, qs->loc);
      int8[id] = 1;
      ok = L->y_state >= 0 && (int8[L->x] || L->x_state >= 0);
    } else if (q->live[id] && is_passthrough(n->op) && int8[n->in[0]]) {
      int8[id] = 1;
    } else if (q->live[id] && n->op == OP_ADD && n->n_in == 2 && int8[n->in[0]] &&
               int8[n->in[1]]) { /* lathe quantize would write a qadd: no QAT form yet */
      diag_error(E->d, n->loc,
                 "quantize: this add of two int8 layers' results (a residual connection) has "
                 "no quantization-aware form yet; keep a layer of one branch float with "
                 "'except NAME' at %u:%u",
                 qs->loc.line, qs->loc.col);
      ok = false;
    }
  }
  free(state_of), free(layer_at), free(int8);
  return ok;
}

/* the int8 layers of all into qs (module arena); false when one has no int8 form */
static bool keep_int8(Elab *E, QatSpec *qs, const QatLayer *all, int n, const bool *keep) {
  qs->layers = arena_alloc(&E->m->arena, sizeof *qs->layers * (size_t)(n ? n : 1));
  qs->float_layers = arena_alloc(&E->m->arena, sizeof *qs->float_layers * (size_t)(n ? n : 1));
  bool ok = true;
  for (int l = 0; l < n; l++) {
    const Node *op = graph_node(E->g, all[l].op);
    if (keep[l]) {
      qs->float_layers[qs->n_float++] = layer_prefix(E->m, all[l].w_param);
    } else if (all[l].conv && op->attr.conv.groups != 1) {
      diag_error(E->d, qs->loc,
                 "quantize: layer '%s' is a conv2d with %d groups, which has no int8 form "
                 "(qconv2d takes one group); keep it float with 'except %s'",
                 layer_prefix(E->m, all[l].w_param), op->attr.conv.groups,
                 layer_prefix(E->m, all[l].w_param));
      ok = false;
    } else {
      qs->layers[qs->n_layers++] = all[l];
    }
  }
  return ok;
}

bool elab_qat(Elab *E, const QuantizeAst *qa) {
  SrcLoc loc = elab_loc(E, qa->loc);
  if (E->m->qat) {
    diag_error(E->d, loc,
               "'quantize' given twice in the train block (first at %u:%u): one "
               "statement quantizes the whole model",
               E->m->qat->loc.line, E->m->qat->loc.col);
    return false;
  }
  QatSpec *qs = arena_alloc(&E->m->arena, sizeof *qs);
  memset(qs, 0, sizeof *qs);
  *qs = (QatSpec){.per_tensor = qa->per_tensor, .momentum = 0.01, .loc = loc};
  E->m->qat = qs;
  QatMatch q = {0};
  int n = 0;
  QatLayer *all = qat_match_init(&q, E->g) ? find_layers(&q, &n) : NULL;
  bool *keep = calloc((size_t)n + 1, sizeof *keep);
  bool ok = all && keep;
  if (!ok) diag_error(E->d, loc, "out of memory");
  if (ok && n < 2) {
    diag_error(E->d, loc,
               "quantize: %s has %s; the last layer stays float, so there is nothing to quantize",
               E->m->name, n ? "one dense or conv2d layer" : "no dense or conv2d layer");
    ok = false;
  }
  ok = ok && choose_float(E, qa, all, n, keep) && keep_int8(E, qs, all, n, keep);
  if (ok && qs->n_layers == 0) {
    diag_error(E->d, loc, "quantize: every layer is kept float");
    ok = false;
  }
  ok = ok && assign_states(E, qs, &q);
  free(all), free(keep), free(q.uses), free(q.live);
  return ok;
}
