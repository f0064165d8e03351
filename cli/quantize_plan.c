/* cli/quantize_plan.c — which tensors of a model `lathe quantize` makes int8: the layers, the
 * int8 tensors and the ranges to observe are ir/quant_match.c's (the rule the `quantize`
 * statement of QAT follows too, so the two cannot disagree); this adds what the writer needs
 * (binding names, the ops it can spell) and the options (--keep-float, --quantize-last).
 *
 * Invariant: after qplan_build, every live node has a role; QLayer.x_obs/y_obs of an int8
 * layer and obs_of of every int8 node name an entry of QPlan.obs.
 */
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantize_internal.h"
#include "runtime/quant_calib.h"

/* ---- the checks ------------------------------------------------------------------------------ */

static bool conv_symmetric(const Node *n) {
  const struct IrConvAttr *c = &n->attr.conv;
  return c->stride[0] == c->stride[1] && c->dilation[0] == c->dilation[1] &&
         c->pad[0] == c->pad[1] && c->pad[1] == c->pad[2] && c->pad[2] == c->pad[3];
}

/* --keep-float names that are no layer; layers kept float; layers with no int8 form */
static bool choose_float_layers(QPlan *p, QMatch *q, const QPlanOptions *o, Diag *d) {
  bool *hit = calloc((size_t)o->n_keep + 1, sizeof *hit), ok = hit != NULL;
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory");
  if (ok) qmatch_keep_float(q, o->keep, o->n_keep, o->quantize_last, hit);
  for (int k = 0; ok && k < o->n_keep; k++)
    if (!hit[k]) {
      diag_error(d, (SrcLoc){0}, "--keep-float: '%s' is not a dense or conv2d layer of %s",
                 o->keep[k], p->m->name);
      ok = false;
    }
  free(hit);
  int no_int8 = 0;
  char names[512] = "";
  for (int l = 0; l < p->n_layers; l++) {
    QLayer *L = &p->layers[l];
    L->keep_float = q->layers[l].keep_float;
    const Node *op = graph_node(p->m->model, L->op);
    const char *why = L->keep_float ? NULL : qmatch_no_int8_form(q, &q->layers[l]);
    if (why) {
      diag_error(d, op->loc, "layer '%s' has no int8 form: %s", L->name, why);
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
    diag_note(
        d, (SrcLoc){0},
        "lathe quantize writes dense and conv2d layers and the elementwise, reduction, "
        "softmax, concat, reshape, transpose and max-pooling ops between them (docs/int8.md)");
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

/* the plan's layers from the shared rule's (their binding names for the written model) */
static bool copy_layers(QPlan *p, const QMatch *q) {
  p->layers = calloc((size_t)q->n_layers + 1, sizeof *p->layers);
  if (!p->layers) return false;
  for (int l = 0; l < q->n_layers; l++) {
    const QMatchLayer *M = &q->layers[l];
    p->layers[p->n_layers++] = (QLayer){.conv = M->conv,
                                        .relu = M->relu,
                                        .op = M->op,
                                        .x = M->x,
                                        .add = M->add,
                                        .out = M->out,
                                        .w_param = M->w_param,
                                        .b_param = M->b_param,
                                        .name = qmatch_binding_name(p->m, M),
                                        .x_obs = -1,
                                        .y_obs = -1};
  }
  return true;
}

/* the observations are the shared rule's ranges; the per-node tables are taken over from q */
static bool take_int8(QPlan *p, QMatch *q) {
  if (!qmatch_assign_int8(q)) return false;
  p->obs = calloc((size_t)q->n_ranges + 1, sizeof *p->obs);
  if (!p->obs) return false;
  for (int k = 0; k < q->n_ranges; k++) {
    const Node *n = graph_node(p->m->model, q->ranges[k].node);
    p->obs[k] = (QObs){.node = q->ranges[k].node, .rule = (int8_t)q->ranges[k].rule};
    p->obs[k].what = n->name ? n->name : arena_printf(&p->m->arena, "%%%u", q->ranges[k].node);
  }
  p->n_obs = q->n_ranges;
  for (int l = 0; l < p->n_layers; l++)
    p->layers[l].x_obs = q->layers[l].x_range, p->layers[l].y_obs = q->layers[l].y_range;
  p->obs_of = q->range_of, p->is_int8 = q->is_int8;
  q->range_of = NULL, q->is_int8 = NULL;
  return true;
}

/* ---- softmax and concat ---------------------------------------------------------------------- */

/* why softmax or concat `id`, which reads an int8 tensor, stays float; NULL when it does not
 * read one or is int8 */
static const char *float_why(const QPlan *p, const QMatch *q, NodeId id) {
  const Node *n = graph_node(p->m->model, id);
  NodeId in[64];
  int axis,
      count = p->role[id] == QR_CONCAT ? qmatch_concat_inputs(q->g, NULL, id, in, 64, &axis) : 0;
  bool reads_int8 = false, reads_float = false;
  for (int k = 0; k < count; k++)
    reads_int8 |= p->is_int8[in[k]], reads_float |= !p->is_int8[in[k]];
  if (n->op == OP_SOFTMAX && p->role[id] == QR_GENERIC) reads_int8 = p->is_int8[n->in[0]];
  if (p->is_int8[id] || !reads_int8) return NULL;
  if (!q->softmax_concat)
    return "the quantize statement (QAT) does not model an int8 softmax or concat yet";
  if (n->op == OP_SOFTMAX) return qmatch_softmax_no_int8(p->m->model, id);
  return reads_float ? "an input is float (the concat of int8 tensors takes only int8 inputs)"
                     : NULL;
}

/* the softmaxes and concats that read an int8 tensor but stay float, for the report */
static bool note_float_ops(QPlan *p, const QMatch *q) {
  const Graph *g = p->m->model;
  p->float_ops = calloc(g->n_nodes + 1, sizeof *p->float_ops);
  if (!p->float_ops) return false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    const char *why =
        p->role[id] == QR_CONCAT || p->role[id] == QR_GENERIC ? float_why(p, q, id) : NULL;
    if (why)
      p->float_ops[p->n_float_ops++] =
          (QFloatOp){.node = id,
                     .what = n->name ? n->name : arena_printf(&p->m->arena, "%%%u", id),
                     .op = p->role[id] == QR_CONCAT ? "concat" : ir_ops[n->op].name,
                     .why = why};
  }
  return true;
}

bool qplan_derive(QPlan *p, int k, Diag *d) {
  QObs *o = &p->obs[k];
  if (o->rule == QMR_SOFTMAX) { /* TFLite's fixed output: [0, 255/256] is choose_params' */
    o->lo = 0, o->hi = 255.0 / 256.0, o->scale = 1.0f / 256.0f, o->zp = -128;
    return true;
  }
  NodeId in[64];
  int axis;
  int n = qmatch_concat_inputs(p->m->model, NULL, o->node, in, 64, &axis);
  o->lo = INFINITY, o->hi = -INFINITY;
  for (int j = 0; j < n; j++) {
    const QObs *x = &p->obs[p->obs_of[in[j]]];
    o->lo = fmin(o->lo, x->lo), o->hi = fmax(o->hi, x->hi);
  }
  const char *why = n < 1 ? "internal: not a concat" : NULL;
  if (!why && rt_quant_choose_params(o->lo, o->hi, &o->scale, &o->zp, &why)) return true;
  diag_error(d, graph_node(p->m->model, o->node)->loc,
             "cannot quantize the concat '%s' (the union of its inputs' ranges, [%g, %g]): %s",
             o->what, o->lo, o->hi, why);
  return false;
}

bool qplan_build(QPlan *p, Module *m, const QPlanOptions *o, Diag *d) {
  memset(p, 0, sizeof *p);
  p->m = m;
  p->n_outputs = m->model->n_outputs;
  p->weight_max = o->reduce_range ? 63 : 127;
  QMatch q;
  bool ok = qmatch_find(&q, m, m->model) && copy_layers(p, &q);
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory");
  if (ok && m->dyn_max) {
    diag_error(d, (SrcLoc){m->source_file, 1, 1},
               "lathe quantize needs a static batch; compile with -D %s=<batch>", m->dyn_name);
    ok = false;
  }
  if (ok && p->n_layers == 0) {
    diag_error(d, (SrcLoc){m->source_file, 1, 1},
               "%s has no dense or conv2d layer (a matmul or conv2d by a param) to quantize",
               m->name);
    ok = false;
  }
  p->role = q.role;                  /* the plan's from here: qmatch_fini leaves it */
  q.softmax_concat = m->qat == NULL; /* QAT does not model them: its conversion keeps them float */
  ok = ok && check_writable(p, q.live, d) && choose_float_layers(p, &q, o, d);
  if (ok && (!take_int8(p, &q) || !note_float_ops(p, &q))) {
    diag_error(d, (SrcLoc){0}, "out of memory");
    ok = false;
  }
  q.role = NULL;
  qmatch_fini(&q);
  return ok;
}

void qplan_fini(QPlan *p) {
  free(p->float_ops);
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
  for (int a = 0; a < qs->n_adds; a++)
    if (qs->adds[a].out == node) return qs->adds[a].state;
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
