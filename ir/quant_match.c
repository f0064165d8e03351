/* ir/quant_match.c — the layers and int8 tensors of a model (the rule is in quant_match.h):
 * layers matched on the model graph, int8 tensors propagated in id order (a topological
 * order), the ranges listed once each.
 *
 * Invariant: after qmatch_assign_int8, every int8 node has range_of >= 0, and so does every
 * float node an int8 layer reads; QMatchLayer.y_range of an int8 layer is its out's range; a
 * range of rule QMR_CONCAT comes after the ranges of its concat's inputs (id order).
 */
#include "quant_match.h"

#include "quant.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define QMATCH_STR_(x) #x
#define QMATCH_STR(x) QMATCH_STR_(x) /* a macro's value as a string literal */

/* the single node that reads id, or IR_NONE (a graph output is a reader too) */
static NodeId only_user(const QMatch *q, NodeId id) {
  if (q->uses[id] != 1) return IR_NONE;
  for (int o = 0; o < q->g->n_outputs; o++)
    if (q->g->outputs[o].node == id) return IR_NONE;
  for (NodeId u = id + 1; u < q->g->n_nodes; u++)
    for (int k = 0; k < graph_node(q->g, u)->n_in; k++)
      if (graph_node(q->g, u)->in[k] == id) return u;
  return IR_NONE;
}

/* the bias param that `add` adds to y ([O], or reshaped to [O, 1, 1] for a conv), or -1 */
static int32_t bias_param(const QMatch *q, NodeId add, NodeId y, bool conv, int64_t o) {
  const Node *a = graph_node(q->g, add);
  if (a->op != OP_ADD || a->n_in != 2) return -1;
  NodeId b = a->in[0] == y ? a->in[1] : a->in[0];
  if (conv) {
    const Node *r = graph_node(q->g, b);
    if (r->op != OP_RESHAPE || q->uses[b] != 1 || r->shape.rank != 3 || r->shape.dim[0] != o)
      return -1;
    b = r->in[0];
  }
  const Node *p = graph_node(q->g, b);
  return p->op == OP_PARAM && p->shape.rank == 1 && p->shape.dim[0] == o && q->uses[b] == 1
             ? p->attr.source.index
             : -1;
}

/* "h1.w" -> "h1" (module arena) */
static const char *param_prefix(Module *m, int32_t w_param) {
  const char *full = m->params[w_param].name, *dot = strrchr(full, '.');
  return arena_strndup(&m->arena, full, dot ? (size_t)(dot - full) : strlen(full));
}

/* a matmul or conv2d by a param weight: a layer (its bias and ReLU taken when each is the only
 * user of the one before); false for anything else */
static bool match_layer(const QMatch *q, NodeId id, QMatchLayer *L) {
  const Node *n = graph_node(q->g, id);
  bool conv = n->op == OP_CONV2D;
  if ((n->op != OP_MATMUL && !conv) || n->n_in != 2 || !dtype_is_float(n->dtype)) return false;
  if (!conv && (n->attr.matmul.trans_a || n->attr.matmul.trans_b)) return false;
  const Node *w = graph_node(q->g, n->in[1]);
  if (w->op != OP_PARAM || w->shape.rank != (conv ? 4 : 2) || q->uses[n->in[1]] != 1) return false;
  int64_t o = conv ? w->shape.dim[0] : w->shape.dim[1];
  *L = (QMatchLayer){.conv = conv,
                     .op = id,
                     .x = n->in[0],
                     .add = IR_NONE,
                     .out = id,
                     .w_param = w->attr.source.index,
                     .b_param = -1,
                     .x_range = -1,
                     .y_range = -1};
  NodeId next = only_user(q, id);
  if (next != IR_NONE && (L->b_param = bias_param(q, next, id, conv, o)) >= 0)
    L->out = L->add = next, next = only_user(q, next);
  if (next != IR_NONE && graph_node(q->g, next)->op == OP_RELU) L->out = next, L->relu = true;
  L->prefix = param_prefix(q->m, L->w_param);
  return true;
}

/* the op, weight, bias (and its reshape) and bias add of L are inner; its result the layer's */
static void claim_layer(QMatch *q, const QMatchLayer *L) {
  q->role[L->op] = q->role[graph_node(q->g, L->op)->in[1]] = QM_INNER;
  if (L->add != IR_NONE) {
    const Node *add = graph_node(q->g, L->add);
    NodeId b = add->in[0] == L->op ? add->in[1] : add->in[0];
    q->role[L->add] = q->role[b] = QM_INNER;
    if (graph_node(q->g, b)->op == OP_RESHAPE) q->role[graph_node(q->g, b)->in[0]] = QM_INNER;
  }
  q->role[L->out] = QM_LAYER;
}

/* ---- concat: unslices tiling the result along one axis, summed ------------------------------ */

/* the unslices of the add chain ending at `id` (each read by the chain alone, the inner adds
 * too) into u, at most max; their count, or -1 when id is no such chain */
static int concat_chain(const Graph *g, const int *uses, NodeId id, NodeId *u, int max) {
  int n = 0;
  NodeId cur = id;
  while (graph_node(g, cur)->op == OP_ADD && graph_node(g, cur)->n_in == 2) {
    const Node *a = graph_node(g, cur);
    if (n == max || (cur != id && uses && uses[cur] != 1)) return -1;
    u[n++] = a->in[1];
    cur = a->in[0];
  }
  if (cur == id || n == max) return -1;
  u[n++] = cur;
  for (int k = 0; k < n; k++) {
    const Node *x = graph_node(g, u[k]);
    if (x->op != OP_UNSLICE || (uses && uses[u[k]] != 1) ||
        !shape_equal(&x->shape, &graph_node(g, id)->shape))
      return -1;
  }
  return n;
}

/* the axis along which unslice u places its input into the result, or -1 (several, or a step) */
static int placed_axis(const Graph *g, NodeId u) {
  const Node *n = graph_node(g, u), *x = graph_node(g, n->in[0]);
  int axis = -1;
  for (int d = 0; d < n->shape.rank; d++) {
    if (n->attr.slice.step[d] != 1) return -1;
    if (x->shape.dim[d] == n->shape.dim[d] && n->attr.slice.begin[d] == 0) continue;
    if (axis >= 0) return -1;
    axis = d;
  }
  return axis;
}

int qmatch_concat_inputs(const Graph *g, const int *uses, NodeId id, NodeId *pieces, int max,
                         int *axis) {
  NodeId u[64];
  int n = concat_chain(g, uses, id, u, 64);
  if (n < 2 || n > max || (*axis = placed_axis(g, u[0])) < 0) return -1;
  int64_t at = 0, total = graph_node(g, id)->shape.dim[*axis];
  for (int k = 0; k < n; k++) { /* the piece that starts where the ones before end */
    int found = -1;
    for (int j = 0; j < n && found < 0; j++) {
      const Node *uj = graph_node(g, u[j]);
      if (placed_axis(g, u[j]) == *axis && uj->attr.slice.begin[*axis] == at) found = j;
    }
    if (found < 0) return -1;
    pieces[k] = graph_node(g, u[found])->in[0];
    at += graph_node(g, pieces[k])->shape.dim[*axis];
  }
  return at == total ? n : -1;
}

/* a concat at id: its unslices and inner adds are inner */
static bool claim_concat(QMatch *q, NodeId id) {
  NodeId pieces[64], u[64];
  int axis;
  if (qmatch_concat_inputs(q->g, q->uses, id, pieces, 64, &axis) < 0) return false;
  int n = concat_chain(q->g, q->uses, id, u, 64);
  for (NodeId cur = id; cur != u[n - 1]; cur = graph_node(q->g, cur)->in[0])
    q->role[cur] = QM_INNER;
  for (int k = 0; k < n; k++)
    q->role[u[k]] = QM_INNER;
  q->role[id] = QM_CONCAT;
  return true;
}

const char *qmatch_softmax_no_int8(const Graph *g, NodeId id) {
  const Node *n = graph_node(g, id), *x = graph_node(g, n->in[0]);
  if (n->op != OP_SOFTMAX) return "only softmax has an int8 form (qsoftmax)";
  int axis = n->attr.softmax.axis < 0 ? n->attr.softmax.axis + x->shape.rank : n->attr.softmax.axis;
  if (axis != x->shape.rank - 1)
    return "its axis is not the last one (qsoftmax normalizes rows of the last axis)";
  if (x->shape.dim[axis] > IR_QSOFTMAX_MAX_DEPTH)
    return "its rows have more than " QMATCH_STR(IR_QSOFTMAX_MAX_DEPTH) " elements (qsoftmax's limit)";
  return NULL;
}

static void count_uses(QMatch *q) {
  const Graph *g = q->g;
  for (NodeId id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < graph_node(g, id)->n_in; k++)
      q->uses[graph_node(g, id)->in[k]]++;
  for (int o = 0; o < g->n_outputs; o++)
    q->uses[g->outputs[o].node]++, q->live[g->outputs[o].node] = 1;
  for (NodeId id = g->n_nodes; id-- > 0;)
    for (int k = 0; q->live[id] && k < graph_node(g, id)->n_in; k++)
      q->live[graph_node(g, id)->in[k]] = 1;
}

bool qmatch_find(QMatch *q, Module *m, const Graph *g) {
  memset(q, 0, sizeof *q);
  q->m = m, q->g = g;
  size_t n = g->n_nodes ? g->n_nodes : 1;
  q->uses = calloc(n, sizeof *q->uses), q->live = calloc(n, 1), q->role = calloc(n, 1);
  q->is_int8 = calloc(n, 1), q->range_of = malloc(n * sizeof *q->range_of);
  q->layers = calloc(n, sizeof *q->layers), q->ranges = calloc(n, sizeof *q->ranges);
  if (!q->uses || !q->live || !q->role || !q->is_int8 || !q->range_of || !q->layers || !q->ranges)
    return false;
  count_uses(q);
  for (NodeId id = 0; id < g->n_nodes; id++) {
    q->range_of[id] = -1;
    if (q->live[id] && match_layer(q, id, &q->layers[q->n_layers]))
      claim_layer(q, &q->layers[q->n_layers++]);
  }
  for (NodeId id = 0; id < g->n_nodes; id++) /* ascending: an inner add does not tile */
    if (q->live[id] && q->role[id] == QM_DEAD && graph_node(g, id)->op == OP_ADD)
      claim_concat(q, id);
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (!q->live[id] || q->role[id] != QM_DEAD) continue;
    q->role[id] = n->op == OP_INPUT                         ? QM_INPUT
                  : n->op == OP_CONST && n->shape.rank == 0 ? QM_LITERAL
                                                            : QM_OTHER;
  }
  return true;
}

void qmatch_fini(QMatch *q) {
  free(q->uses), free(q->live), free(q->role), free(q->is_int8), free(q->range_of);
  free(q->layers), free(q->ranges);
  memset(q, 0, sizeof *q);
}

const char *qmatch_binding_name(Module *m, const QMatchLayer *L) {
  char *s = arena_strdup(&m->arena, L->prefix);
  for (char *c = s; c && *c; c++)
    if (*c == '.') *c = '_';
  return s;
}

void qmatch_keep_float(QMatch *q, const char *const *names, int n_names, bool quantize_last,
                       bool *hit) {
  for (int k = 0; k < n_names; k++)
    hit[k] = false;
  for (int l = 0; l < q->n_layers; l++) {
    QMatchLayer *L = &q->layers[l];
    const char *binding = qmatch_binding_name(q->m, L);
    L->keep_float = l == q->n_layers - 1 && !quantize_last;
    for (int k = 0; k < n_names; k++)
      if (fnmatch(names[k], L->prefix, 0) == 0 || fnmatch(names[k], binding, 0) == 0)
        L->keep_float = hit[k] = true;
  }
}

/* a grouped conv2d is int8 too (qconv2d's groups): only the int32 sum's bound is left */
const char *qmatch_no_int8_form(const QMatch *q, const QMatchLayer *L) {
  const Shape *w = &graph_node(q->g, graph_node(q->g, L->op)->in[1])->shape;
  int64_t inner = L->conv ? w->dim[1] * w->dim[2] * w->dim[3] : w->dim[0];
  if (inner > IR_QUANT_MAX_INNER)
    return arena_printf(&q->m->arena,
                        "%lld inputs per output could overflow qdense/qconv2d's int32 sum (at "
                        "most %d)",
                        (long long)inner, IR_QUANT_MAX_INNER);
  return NULL;
}

bool qmatch_is_passthrough(OpKind op) {
  return op == OP_RESHAPE || op == OP_TRANSPOSE || op == OP_MAX_POOL2D;
}

static int32_t add_range(QMatch *q, NodeId node, int32_t layer) {
  q->ranges[q->n_ranges] = (QMatchRange){.node = node, .layer = layer};
  return q->n_ranges++;
}

/* an add of two int8 tensors: a qadd, with the ReLU that is its only user fused */
static void claim_qadd(QMatch *q, NodeId add) {
  NodeId out = add, r = only_user(q, add);
  if (r != IR_NONE && graph_node(q->g, r)->op == OP_RELU && q->role[r] == QM_OTHER)
    q->role[add] = QM_INNER, out = r;
  q->role[out] = QM_QADD;
  q->is_int8[out] = 1;
  q->range_of[out] = add_range(q, out, -1);
}

/* an int8 layer: its float input quantized (one range however many layers read it), its
 * result an int8 tensor of its own range */
static void int8_layer(QMatch *q, int32_t l) {
  QMatchLayer *L = &q->layers[l];
  if (!q->is_int8[L->x] && q->range_of[L->x] < 0) q->range_of[L->x] = add_range(q, L->x, l);
  L->x_range = q->range_of[L->x];
  q->is_int8[L->out] = 1;
  q->range_of[L->out] = L->y_range = add_range(q, L->out, l);
}

/* with softmax_concat: a concat of int8 inputs, a softmax of an int8 tensor that qsoftmax can
 * compute: int8, parameters by their rule */
static void assign_softmax_concat(QMatch *q, NodeId id) {
  const Node *n = graph_node(q->g, id);
  NodeId pieces[64];
  int axis, k = 0, count = -1;
  QMatchRule rule = QMR_OBSERVED;
  if (q->role[id] == QM_CONCAT &&
      (count = qmatch_concat_inputs(q->g, NULL, id, pieces, 64, &axis)) > 0) {
    while (k < count && q->is_int8[pieces[k]])
      k++;
    rule = k == count ? QMR_CONCAT : QMR_OBSERVED;
  } else if (q->role[id] == QM_OTHER && n->op == OP_SOFTMAX && q->is_int8[n->in[0]] &&
             !qmatch_softmax_no_int8(q->g, id)) {
    rule = QMR_SOFTMAX;
  }
  if (rule == QMR_OBSERVED) return;
  q->is_int8[id] = 1;
  q->range_of[id] = add_range(q, id, -1);
  q->ranges[q->range_of[id]].rule = rule;
}

bool qmatch_assign_int8(QMatch *q) {
  const Graph *g = q->g;
  int32_t *layer_at = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof *layer_at);
  if (!layer_at) return false;
  for (NodeId id = 0; id < g->n_nodes; id++)
    layer_at[id] = -1;
  for (int l = 0; l < q->n_layers; l++)
    layer_at[q->layers[l].out] = l;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (q->role[id] == QM_OTHER && n->op == OP_ADD && n->n_in == 2 && q->is_int8[n->in[0]] &&
        q->is_int8[n->in[1]]) {
      claim_qadd(q, id);
    } else if (q->role[id] == QM_LAYER) {
      if (!q->layers[layer_at[id]].keep_float) int8_layer(q, layer_at[id]);
    } else if (q->role[id] == QM_OTHER && qmatch_is_passthrough(n->op) && q->is_int8[n->in[0]]) {
      q->is_int8[id] = 1;
      q->range_of[id] = q->range_of[n->in[0]];
    } else if (q->softmax_concat) {
      assign_softmax_concat(q, id);
    }
  }
  free(layer_at);
  return true;
}
