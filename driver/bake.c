/* driver/bake.c — `lathe compile FILE --weights W --bake`: the weights built into the C.
 *
 * Before the passes, every PARAM and STATE node of the elaborated model becomes a CONST
 * holding its tensor from the safetensors file W (same name, same shape; f32 or f64 values for
 * a float param, the param's own dtype for an integer one: the int8 weights of docs/int8.md).
 * The module then has no params and no train block, so only the inference entry is derived,
 * its C takes no weights, and codegen writes the weights as static tables: a
 * matmul's constant operand straight in the GEMM's packed panel layout (codegen/gemm.c,
 * cg_gemm_packs_const), a direct convolution's weights blocked as its kernel reads them
 * (codegen/conv_direct.c), so nothing is packed at run time either. Constant folding sees the
 * weights too (a transposed or reshaped weight is folded once, at compile time).
 * A state that the model itself updates in inference (`update NAME = ...`: a KV cache) is
 * run-time data, not a weight: it stays a state (renumbered), the only ones a baked module
 * keeps, and its initial value comes from `<model>_init`, not from W.
 */
#include "driver/driver.h"

#include <string.h>

static const TensorDecl *decl_of(const Module *m, const Node *n) {
  int i = n->attr.source.index;
  return n->op == OP_PARAM ? (i < m->n_params ? &m->params[i] : NULL)
                           : (i < m->n_states ? &m->states[i] : NULL);
}

/* PARAM/STATE node n → a CONST of its tensor t (checked: same shape, compatible dtype) */
static bool bake_node(Graph *g, Node *n, const TensorDecl *decl, const Tensor *t, const char *who,
                      const char *path, Diag *d) {
  char want[200], got[200];
  if (!t) {
    diag_error(d, n->loc, "%s: %s has no tensor '%s'", who, path, decl ? decl->name : "?");
    return false;
  }
  if (!shape_equal(&t->shape, &n->shape) ||
      !(dtype_is_float(t->dtype) ? dtype_is_float(n->dtype) : t->dtype == n->dtype)) {
    diag_error(d, n->loc, "%s: '%s' is %s%s in %s, the model wants %s%s", who, decl->name,
               dtype_name(t->dtype), shape_str(&t->shape, got, sizeof got), path,
               dtype_name(n->dtype), shape_str(&n->shape, want, sizeof want));
    return false;
  }
  int64_t count = shape_numel(&n->shape);
  double *data = arena_alloc(&g->arena, sizeof *data * (size_t)(count > 0 ? count : 1));
  for (int64_t i = 0; i < count; i++)
    data[i] = tensor_get(t, i);
  DType dtype = n->dtype;
  Shape shape = n->shape;
  memset(&n->attr, 0, sizeof n->attr);
  n->op = OP_CONST;
  n->attr.constant.dtype = dtype;
  n->attr.constant.shape = shape;
  n->attr.constant.data = data;
  return true;
}

/* keep[i]: state i is updated by the model in inference (GraphOutput.inference) */
static void inference_states(const Graph *g, int n_states, bool *keep) {
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    if (o->kind == OUT_STATE_UPDATE && o->inference && o->target >= 0 && o->target < n_states)
      keep[o->target] = true;
  }
}

/* the kept states renumbered 0.. in order (remap[old] = new, -1 for a baked one); the other
 * state updates dropped (nothing can run them without a train block) */
static void compact_states(Module *m, const bool *keep) {
  Graph *g = m->model;
  int *remap = arena_alloc(&g->arena, sizeof *remap * (size_t)(m->n_states + 1));
  int n = 0;
  for (int i = 0; i < m->n_states; i++) {
    remap[i] = keep[i] ? n : -1;
    if (keep[i]) m->states[n++] = m->states[i];
  }
  int kept = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    GraphOutput o = g->outputs[i];
    if (o.kind == OUT_STATE_UPDATE && (o.target < 0 || o.target >= m->n_states || !keep[o.target]))
      continue;
    if (o.kind == OUT_STATE_UPDATE) o.target = remap[o.target];
    g->outputs[kept++] = o;
  }
  g->n_outputs = kept;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    Node *nd = graph_node(g, id);
    if (nd->op == OP_STATE) nd->attr.source.index = remap[nd->attr.source.index];
  }
  m->n_states = n;
}

bool driver_bake_set(Module *m, const RtTensorSet *w, const char *who, const char *path, Diag *d) {
  bool ok = true;
  Graph *g = m->model;
  if (!g) return true;
  bool *keep = arena_alloc(&g->arena, sizeof *keep * (size_t)(m->n_states + 1));
  memset(keep, 0, sizeof *keep * (size_t)(m->n_states + 1));
  inference_states(g, m->n_states, keep);
  for (NodeId id = 0; ok && id < g->n_nodes; id++) {
    Node *n = graph_node(g, id);
    if (n->op != OP_PARAM && n->op != OP_STATE) continue;
    if (n->op == OP_STATE && n->attr.source.index < m->n_states && keep[n->attr.source.index])
      continue;
    const TensorDecl *decl = decl_of(m, n);
    ok = bake_node(g, n, decl, decl ? rt_set_find(w, decl->name) : NULL, who, path, d);
  }
  if (ok) { /* nothing reads them any more: an inference-only module without weights */
    compact_states(m, keep);
    m->n_params = 0;
    m->n_steps = 0;
  }
  return ok;
}

bool driver_bake_weights(Module *m, const char *path, Diag *d) {
  RtTensorSet w;
  rt_set_init(&w);
  bool ok = rt_safetensors_read(path, &w, d) && driver_bake_set(m, &w, "--bake", path, d);
  rt_set_fini(&w);
  return ok;
}
