/* frontend/elab_qat.c — the `quantize` statement of a train block (quantization-aware
 * training, issue 19, docs/int8.md "Quantization-aware training") into Module.qat.
 *
 *   quantize [per_channel | per_tensor] [except NAME {, NAME}]
 *
 * The int8 layers and tensors are the ones `lathe quantize` makes int8: both take them from
 * ir/quant_match.c, on the same elaborated model graph. The layers are dense and conv2d layers
 * by a param, every one of them except the last (it stays float by default, as in `lathe
 * quantize`) and those named by `except` (a param prefix, `h1` for `h1.w`, or a glob of one).
 * The tensors given a tracked range are the rule's ranges, the ones `lathe quantize` observes:
 * each int8 layer's result, each float tensor an int8 layer reads, and each qadd's result (an
 * add of two int8 tensors, a residual connection). Each range is a state [min, max] (zeros:
 * not yet observed): "<layer>.qat_in" / "<layer>.qat_out", named after the first int8 layer
 * that reads or makes it, and "<binding>.qat_add" for a qadd ("add<id>.qat_add" when its
 * result has no name). passes/qat.c builds the fake quantization.
 * Reported at the statement: a second `quantize`, an `except` name that names no layer, a
 * model with no layer to quantize, a layer left int8 with no int8 form (a sum over more than
 * 65536 inputs per output). A grouped or depthwise conv2d is int8 like any other (qconv2d's
 * groups); its weight is fake-quantized per output channel.
 */
#include "elab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/quant_match.h"

/* the layers `except` keeps float (and the last one); false on a name matching none */
static bool choose_float(Elab *E, const QuantizeAst *qa, QMatch *q) {
  bool *hit = calloc((size_t)qa->n_except + 1, sizeof *hit), ok = hit != NULL;
  if (!ok) {
    diag_error(E->d, elab_loc(E, qa->loc), "out of memory");
    return false;
  }
  qmatch_keep_float(q, (const char *const *)qa->except, qa->n_except, false, hit);
  for (int k = 0; k < qa->n_except; k++) {
    if (hit[k]) continue;
    char names[512] = "";
    for (int l = 0; l < q->n_layers; l++)
      snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", l ? ", " : "",
               q->layers[l].prefix);
    diag_error(E->d, elab_loc(E, qa->except_locs[k]),
               "quantize: 'except %s' names no dense or conv2d layer; the layers are %s",
               qa->except[k], names);
    ok = false;
  }
  free(hit);
  return ok;
}

/* a new range state "<base>.<what>", zeros (not yet observed), of t's dtype */
static int32_t range_state(Elab *E, const char *base, const char *what, NodeId t, SrcLoc loc) {
  int64_t two = 2;
  Shape s = shape_make(1, &two);
  const char *name = arena_printf(&E->m->arena, "%s.%s", base, what);
  if (module_find_state(E->m, name) >= 0 || module_find_param(E->m, name) >= 0) {
    diag_error(E->d, loc, "quantize: the range state '%s' is already a name of the model", name);
    return -1;
  }
  return module_add_state(E->m, name, graph_node(E->g, t)->dtype, &s, (InitSpec){INIT_ZEROS, 0, 0},
                          loc);
}

/* range r's state: "<layer>.qat_in" / "<layer>.qat_out", or "<binding>.qat_add" for a qadd (a
 * suffix of its own: the binding may be a layer's prefix too, `r = relu(c1 + conv2d(...))`) */
static int32_t make_state(Elab *E, const QMatch *q, const QMatchRange *r, SrcLoc loc) {
  if (r->layer >= 0) {
    const QMatchLayer *L = &q->layers[r->layer];
    return range_state(E, L->prefix, r->node == L->x ? "qat_in" : "qat_out", r->node, loc);
  }
  const char *name = graph_node(E->g, r->node)->name;
  return range_state(E, name ? name : arena_printf(&E->m->arena, "add%u", r->node), "qat_add",
                     r->node, loc);
}

/* the statement's int8 layers, qadds and float layers, each range a new state */
static bool fill_spec(Elab *E, QatSpec *qs, const QMatch *q) {
  int32_t *state = malloc(sizeof *state * (size_t)(q->n_ranges + 1));
  int n = q->n_layers + 1;
  qs->layers = arena_alloc(&E->m->arena, sizeof *qs->layers * (size_t)n);
  qs->float_layers = arena_alloc(&E->m->arena, sizeof *qs->float_layers * (size_t)n);
  qs->adds = arena_alloc(&E->m->arena, sizeof *qs->adds * (size_t)(q->n_ranges + 1));
  bool ok = state != NULL;
  if (!ok) diag_error(E->d, qs->loc, "out of memory");
  for (int k = 0; ok && k < q->n_ranges; k++) /* in the rule's order: ids stay as before */
    ok = (state[k] = make_state(E, q, &q->ranges[k], qs->loc)) >= 0;
  for (int k = 0; ok && k < q->n_ranges; k++)
    if (q->ranges[k].layer < 0) qs->adds[qs->n_adds++] = (QatAdd){q->ranges[k].node, state[k]};
  for (int l = 0; ok && l < q->n_layers; l++) {
    const QMatchLayer *L = &q->layers[l];
    if (L->keep_float) {
      qs->float_layers[qs->n_float++] = L->prefix;
      continue;
    }
    qs->layers[qs->n_layers++] = (QatLayer){.w_param = L->w_param,
                                            .conv = L->conv,
                                            .op = L->op,
                                            .x = L->x,
                                            .out = L->out,
                                            .x_state = q->is_int8[L->x] ? -1 : state[L->x_range],
                                            .y_state = state[L->y_range]};
  }
  free(state);
  return ok;
}

/* a layer left int8 with no int8 form (a sum too long for int32): reported, false */
static bool check_int8_form(Elab *E, const QatSpec *qs, const QMatch *q) {
  bool ok = true;
  for (int l = 0; l < q->n_layers; l++) {
    const QMatchLayer *L = &q->layers[l];
    const char *why = L->keep_float ? NULL : qmatch_no_int8_form(q, L);
    if (!why) continue;
    diag_error(E->d, qs->loc,
               "quantize: layer '%s' has no int8 form: %s; keep it float with "
               "'except %s'",
               L->prefix, why, L->prefix);
    ok = false;
  }
  return ok;
}

/* some layer is int8 */
static bool any_int8(const QMatch *q) {
  for (int l = 0; l < q->n_layers; l++)
    if (!q->layers[l].keep_float) return true;
  return false;
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
  QMatch q;
  bool ok = qmatch_find(&q, E->m, E->g);
  if (!ok) diag_error(E->d, loc, "out of memory");
  if (ok && q.n_layers < 2) {
    diag_error(E->d, loc,
               "quantize: %s has %s; the last layer stays float, so there is nothing to quantize",
               E->m->name, q.n_layers ? "one dense or conv2d layer" : "no dense or conv2d layer");
    ok = false;
  }
  ok = ok && choose_float(E, qa, &q) && check_int8_form(E, qs, &q);
  if (ok && !any_int8(&q)) {
    diag_error(E->d, loc, "quantize: every layer is kept float");
    ok = false;
  }
  if (ok && !qmatch_assign_int8(&q)) {
    diag_error(E->d, loc, "out of memory");
    ok = false;
  }
  ok = ok && fill_spec(E, qs, &q);
  qmatch_fini(&q);
  return ok;
}
