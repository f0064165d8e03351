/* cli/quantize_plan.c — which tensors of a model `lathe quantize` makes int8 (see quantize.h
 * for the rules): layers matched on the elaborated model graph, int8 tensors propagated in
 * id order (a topological order), the tensors to observe listed once each.
 *
 * Invariant: after qplan_build, every live node has a role; QLayer.x_obs/y_obs of an int8
 * layer and obs_of of every int8 node name an entry of QPlan.obs.
 */
#include "quantize.h"

#include <stdlib.h>
#include <string.h>

#include "quantize_internal.h"
#include "runtime/quant_calib.h"

/* ---- matching ------------------------------------------------------------------------------ */

static int *use_counts(const Graph *g) {
  int *uses = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *uses);
  for (NodeId id = 0; uses && id < g->n_nodes; id++)
    for (int k = 0; k < graph_node(g, id)->n_in; k++)
      uses[graph_node(g, id)->in[k]]++;
  for (int o = 0; uses && o < g->n_outputs; o++)
    uses[g->outputs[o].node]++;
  return uses;
}

/* the single node that reads id (uses[id] == 1), or IR_NONE */
static NodeId only_user(const Graph *g, const int *uses, NodeId id) {
  if (uses[id] != 1) return IR_NONE;
  for (int o = 0; o < g->n_outputs; o++)
    if (g->outputs[o].node == id) return IR_NONE;
  for (NodeId u = id + 1; u < g->n_nodes; u++)
    for (int k = 0; k < graph_node(g, u)->n_in; k++)
      if (graph_node(g, u)->in[k] == id) return u;
  return IR_NONE;
}

/* the bias param that `add` adds to `y` ([O], or reshaped to [O, 1, 1] for a conv), or -1 */
static int bias_param(const Graph *g, const int *uses, NodeId add, NodeId y, bool conv, int64_t o) {
  const Node *a = graph_node(g, add);
  if (a->op != OP_ADD || a->n_in != 2) return -1;
  NodeId b = a->in[0] == y ? a->in[1] : a->in[0];
  if (conv) {
    const Node *r = graph_node(g, b);
    if (r->op != OP_RESHAPE || uses[b] != 1 || r->shape.rank != 3 || r->shape.dim[0] != o)
      return -1;
    b = r->in[0];
  }
  const Node *p = graph_node(g, b);
  return p->op == OP_PARAM && p->shape.rank == 1 && p->shape.dim[0] == o && uses[b] == 1
             ? p->attr.source.index
             : -1;
}

/* a matmul or conv2d by a param weight: a layer (its bias and ReLU taken when they are the
 * only users); false for anything else */
static bool match_layer(const Graph *g, const int *uses, NodeId id, QLayer *L) {
  const Node *n = graph_node(g, id);
  bool conv = n->op == OP_CONV2D;
  if ((n->op != OP_MATMUL && !conv) || n->n_in != 2 || !dtype_is_float(n->dtype)) return false;
  if (!conv && (n->attr.matmul.trans_a || n->attr.matmul.trans_b)) return false;
  const Node *w = graph_node(g, n->in[1]);
  if (w->op != OP_PARAM || w->shape.rank != (conv ? 4 : 2) || uses[n->in[1]] != 1) return false;
  int64_t o = conv ? w->shape.dim[0] : w->shape.dim[1];
  *L = (QLayer){.conv = conv,
                .op = id,
                .x = n->in[0],
                .out = id,
                .add = IR_NONE,
                .b_param = -1,
                .x_obs = -1,
                .y_obs = -1,
                .w_param = w->attr.source.index};
  NodeId next = only_user(g, uses, id);
  if (next != IR_NONE && (L->b_param = bias_param(g, uses, next, id, conv, o)) >= 0)
    L->out = L->add = next, next = only_user(g, uses, next);
  if (next != IR_NONE && graph_node(g, next)->op == OP_RELU) L->out = next, L->relu = true;
  return true;
}

/* "h1.w" -> "h1", "enc.q.w" -> "enc_q": a binding name for the layer's params */
static const char *layer_name(Module *m, int w_param) {
  const char *full = m->params[w_param].name;
  const char *dot = strrchr(full, '.');
  char *s = arena_strndup(&m->arena, full, dot ? (size_t)(dot - full) : strlen(full));
  for (char *c = s; c && *c; c++)
    if (*c == '.') *c = '_';
  return s;
}

/* ---- roles ---------------------------------------------------------------------------------- */

static void mark_live(const Graph *g, int n_outputs, uint8_t *live) {
  for (int o = 0; o < n_outputs; o++)
    live[g->outputs[o].node] = 1;
  for (NodeId id = g->n_nodes; id-- > 0;)
    for (int k = 0; live[id] && k < graph_node(g, id)->n_in; k++)
      live[graph_node(g, id)->in[k]] = 1;
}

static void claim_layer(QPlan *p, const QLayer *L) {
  const Graph *g = p->m->model;
  p->role[L->op] = p->role[graph_node(g, L->op)->in[1]] = QR_INNER;
  if (L->add != IR_NONE) {
    const Node *add = graph_node(g, L->add);
    NodeId b = add->in[0] == L->op ? add->in[1] : add->in[0];
    p->role[L->add] = p->role[b] = QR_INNER;
    if (graph_node(g, b)->op == OP_RESHAPE) p->role[graph_node(g, b)->in[0]] = QR_INNER;
  }
  p->role[L->out] = QR_LAYER;
}

static bool find_layers(QPlan *p, const uint8_t *live, const int *uses) {
  const Graph *g = p->m->model;
  p->layers = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *p->layers);
  if (!p->layers) return false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    QLayer L;
    if (!live[id] || !match_layer(g, uses, id, &L)) continue;
    L.name = layer_name(p->m, L.w_param);
    p->layers[p->n_layers++] = L;
    claim_layer(p, &L);
  }
  return true;
}

/* ---- the checks ------------------------------------------------------------------------------ */

static bool conv_symmetric(const Node *n) {
  const struct IrConvAttr *c = &n->attr.conv;
  return c->stride[0] == c->stride[1] && c->dilation[0] == c->dilation[1] &&
         c->pad[0] == c->pad[1] && c->pad[1] == c->pad[2] && c->pad[2] == c->pad[3];
}

static bool keep_named(const QPlanOptions *o, const char *name) {
  for (int k = 0; k < o->n_keep; k++)
    if (strcmp(o->keep[k], name) == 0) return true;
  return false;
}

/* --keep-float names that are no layer; layers kept float; layers with no int8 form */
static bool choose_float_layers(QPlan *p, const QPlanOptions *o, Diag *d) {
  bool ok = true;
  for (int k = 0; k < o->n_keep; k++) {
    bool hit = false;
    for (int l = 0; l < p->n_layers; l++)
      hit |= strcmp(p->layers[l].name, o->keep[k]) == 0;
    if (!hit) {
      diag_error(d, (SrcLoc){0}, "--keep-float: '%s' is not a dense or conv2d layer of %s",
                 o->keep[k], p->m->name);
      ok = false;
    }
  }
  int no_int8 = 0;
  char names[512] = "";
  for (int l = 0; l < p->n_layers; l++) {
    QLayer *L = &p->layers[l];
    L->keep_float = keep_named(o, L->name) || (l == p->n_layers - 1 && !o->quantize_last);
    const Node *op = graph_node(p->m->model, L->op);
    if (!L->keep_float && L->conv && op->attr.conv.groups != 1) {
      diag_error(d, op->loc,
                 "layer '%s': conv2d with %d groups has no int8 form (qconv2d takes one "
                 "group)",
                 L->name, op->attr.conv.groups);
      size_t k = strlen(names);
      snprintf(names + k, sizeof names - k, "%s%s", no_int8++ ? "," : "", L->name);
    }
  }
  if (no_int8)
    diag_note(d, (SrcLoc){0}, "keep %s float with --keep-float %s", no_int8 == 1 ? "it" : "them",
              names);
  return ok && no_int8 == 0;
}

/* every live node the writer cannot spell, all reported */
static bool check_writable(const QPlan *p, const uint8_t *live, Diag *d) {
  const Graph *g = p->m->model;
  bool ok = true;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    const char *why = NULL;
    if (!live[id] || p->role[id] != QR_GENERIC) continue;
    if (n->op == OP_PARAM)
      why = "a param used outside a dense or conv2d layer";
    else if (n->op == OP_STATE)
      why = "state tensors (batch-norm running statistics) are not written";
    else
      why = qwrite_op_unsupported(g, id);
    if (why) {
      diag_error(d, n->loc, "lathe quantize cannot write %s%s%s%s: %s", ir_ops[n->op].name,
                 n->name ? " '" : "", n->name ? n->name : "", n->name ? "'" : "", why);
      ok = false;
    }
  }
  if (!ok)
    diag_note(d, (SrcLoc){0},
              "lathe quantize writes dense and conv2d layers and the elementwise, reduction, "
              "softmax, reshape, transpose and max-pooling ops between them (docs/int8.md)");
  for (int l = 0; l < p->n_layers; l++) {
    const Node *op = graph_node(g, p->layers[l].op);
    if (p->layers[l].conv && !conv_symmetric(op)) {
      diag_error(d, op->loc,
                 "lathe quantize cannot write layer '%s': conv2d with different strides, "
                 "dilations or paddings per side",
                 p->layers[l].name);
      ok = false;
    }
  }
  return ok;
}

/* ---- int8 tensors and observations ----------------------------------------------------------- */

static int add_obs(QPlan *p, NodeId id) {
  const Node *n = graph_node(p->m->model, id);
  QObs *o = &p->obs[p->n_obs];
  *o = (QObs){.node = id};
  o->what = n->name ? n->name : arena_printf(&p->m->arena, "%%%u", id);
  return p->n_obs++;
}

bool qwrite_is_passthrough(OpKind op) {
  return op == OP_RESHAPE || op == OP_TRANSPOSE || op == OP_MAX_POOL2D;
}

/* an add of two int8 tensors becomes one qadd, with the ReLU that is its only user fused
 * into its clamp; the written node (the add or the ReLU) is an int8 tensor of its own
 * parameters */
static void claim_qadd(QPlan *p, const int *uses, NodeId add) {
  const Graph *g = p->m->model;
  NodeId out = add, r = only_user(g, uses, add);
  if (r != IR_NONE && graph_node(g, r)->op == OP_RELU && p->role[r] == QR_GENERIC)
    p->role[add] = QR_INNER, out = r;
  p->role[out] = QR_QADD;
  p->is_int8[out] = 1;
  p->obs_of[out] = add_obs(p, out);
}

static bool is_int8_add(const QPlan *p, const Node *n) {
  return n->op == OP_ADD && n->n_in == 2 && p->is_int8[n->in[0]] && p->is_int8[n->in[1]];
}

static void assign_int8(QPlan *p, const int *layer_at, const int *uses) {
  const Graph *g = p->m->model;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (p->role[id] == QR_GENERIC && is_int8_add(p, n)) {
      claim_qadd(p, uses, id);
    } else if (p->role[id] == QR_LAYER) {
      QLayer *L = &p->layers[layer_at[id]];
      if (L->keep_float) continue;
      if (!p->is_int8[L->x] && p->obs_of[L->x] < 0) p->obs_of[L->x] = add_obs(p, L->x);
      L->x_obs = p->obs_of[L->x];
      p->is_int8[id] = 1;
      p->obs_of[id] = L->y_obs = add_obs(p, id);
    } else if (p->role[id] == QR_GENERIC && qwrite_is_passthrough(n->op) && p->is_int8[n->in[0]]) {
      p->is_int8[id] = 1;
      p->obs_of[id] = p->obs_of[n->in[0]];
    }
  }
}

static void assign_roles(QPlan *p, const uint8_t *live) {
  const Graph *g = p->m->model;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (!live[id] || p->role[id] != QR_DEAD) continue;
    if (n->op == OP_INPUT)
      p->role[id] = QR_INPUT;
    else if (n->op == OP_CONST && n->shape.rank == 0)
      p->role[id] = QR_LITERAL;
    else
      p->role[id] = QR_GENERIC;
  }
}

bool qplan_build(QPlan *p, Module *m, const QPlanOptions *o, Diag *d) {
  memset(p, 0, sizeof *p);
  p->m = m;
  p->n_outputs = m->model->n_outputs;
  p->weight_max = o->reduce_range ? 63 : 127;
  const Graph *g = m->model;
  size_t n = g->n_nodes ? g->n_nodes : 1;
  uint8_t *live = calloc(n, 1);
  int *uses = use_counts(g), *layer_at = malloc(n * sizeof *layer_at);
  p->obs = calloc(n, sizeof *p->obs);
  p->obs_of = malloc(n * sizeof *p->obs_of);
  p->is_int8 = calloc(n, 1);
  p->role = calloc(n, 1);
  bool ok = live && uses && layer_at && p->obs && p->obs_of && p->is_int8 && p->role;
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory");
  if (ok && m->dyn_max) {
    diag_error(d, (SrcLoc){m->source_file, 1, 1},
               "lathe quantize needs a static batch; compile with -D %s=<batch>", m->dyn_name);
    ok = false;
  }
  if (ok) {
    for (size_t i = 0; i < n; i++)
      p->obs_of[i] = -1, layer_at[i] = -1;
    mark_live(g, p->n_outputs, live);
    ok = find_layers(p, live, uses);
  }
  for (int l = 0; ok && l < p->n_layers; l++)
    layer_at[p->layers[l].out] = l;
  if (ok) assign_roles(p, live);
  if (ok && p->n_layers == 0) {
    diag_error(d, (SrcLoc){m->source_file, 1, 1},
               "%s has no dense or conv2d layer (a matmul or conv2d by a param) to quantize",
               m->name);
    ok = false;
  }
  ok = ok && check_writable(p, live, d) && choose_float_layers(p, o, d);
  if (ok) assign_int8(p, layer_at, uses);
  free(live), free(uses), free(layer_at);
  return ok;
}

void qplan_fini(QPlan *p) {
  free(p->layers), free(p->obs), free(p->obs_of), free(p->is_int8), free(p->role);
  memset(p, 0, sizeof *p);
}

/* ---- quantization-aware training: the ranges from the checkpoint ----------------------------- */

/* the range state of observed tensor `node` in the model's `quantize` statement, or -1 */
static int32_t qat_state_of(const QatSpec *qs, NodeId node) {
  for (int l = 0; l < qs->n_layers; l++) {
    if (qs->layers[l].out == node) return qs->layers[l].y_state;
    if (qs->layers[l].x == node && qs->layers[l].x_state >= 0) return qs->layers[l].x_state;
  }
  return -1;
}

/* every int8 layer of the plan is one of the statement's, and the other way round */
static bool qat_same_layers(const QPlan *p, const QatSpec *qs, Diag *d) {
  int int8 = 0;
  for (int l = 0; l < p->n_layers; l++) {
    if (p->layers[l].keep_float) continue;
    int8++;
    bool found = false;
    for (int k = 0; k < qs->n_layers; k++)
      found |= qs->layers[k].w_param == p->layers[l].w_param;
    if (!found) {
      diag_error(d, qs->loc,
                 "internal: layer '%s' is int8 in lathe quantize's plan but not in "
                 "the quantize statement",
                 p->layers[l].name);
      return false;
    }
  }
  if (int8 == qs->n_layers) return true;
  diag_error(d, qs->loc, "internal: the quantize statement has %d int8 layers, the plan %d",
             qs->n_layers, int8);
  return false;
}

bool qplan_qat_ranges(QPlan *p, const RtTensorSet *ckpt, const char *what, Diag *d) {
  const Module *m = p->m;
  if (!qat_same_layers(p, m->qat, d)) return false;
  bool ok = true;
  for (int k = 0; k < p->n_obs; k++) {
    QObs *o = &p->obs[k];
    int32_t s = qat_state_of(m->qat, o->node);
    const char *name = s >= 0 ? m->states[s].name : "?";
    const Tensor *t = s >= 0 ? rt_set_find(ckpt, name) : NULL;
    if (s < 0) {
      diag_error(d, m->qat->loc, "internal: no range state for the int8 tensor '%s'", o->what);
    } else if (!t || t->shape.rank != 1 || t->shape.dim[0] != 2) {
      diag_error(d, m->qat->loc,
                 "%s has no range '%s' (f32[2], min and max) for '%s': train the model with "
                 "its quantize statement first (lathe train ... --checkpoint), or calibrate the "
                 "float model with --calibrate",
                 what, name, o->what);
    } else {
      o->min = o->lo = tensor_get(t, 0), o->max = o->hi = tensor_get(t, 1);
      const char *why = NULL;
      if (rt_quant_choose_params(o->lo, o->hi, &o->scale, &o->zp, &why)) continue;
      diag_error(d, m->qat->loc, "cannot quantize '%s' (range '%s' of %s is [%g, %g]): %s", o->what,
                 name, what, o->min, o->max, why);
    }
    ok = false;
  }
  return ok;
}
