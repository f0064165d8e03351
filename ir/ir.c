/* ir/ir.c — dtypes, shapes, tensors, the op table, graphs and modules.
 *
 * Invariants: a Graph's node ids are indices into g->nodes and every input id is smaller than
 * the node's own id (graph_add only accepts existing ids); a node is appended only after its
 * op's infer hook accepted it, so shape/dtype are always the inferred ones. Strings and
 * constant data referenced by nodes live in the graph arena; declarations live in the module
 * arena.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir_internal.h"

/* ---- dtypes ------------------------------------------------------------------------------ */

static const struct {
  const char *name, *c_name;
  size_t size;
  bool is_float;
} dtype_table[DT_COUNT] = {
    [DT_F32] = {"f32", "float", 4, true},    [DT_F64] = {"f64", "double", 8, true},
    [DT_I32] = {"i32", "int32_t", 4, false}, [DT_I64] = {"i64", "int64_t", 8, false},
    [DT_U8] = {"u8", "uint8_t", 1, false},   [DT_I8] = {"i8", "int8_t", 1, false},
};

const char *dtype_name(DType t) {
  return (unsigned)t < DT_COUNT ? dtype_table[t].name : "?";
}
size_t dtype_size(DType t) {
  return (unsigned)t < DT_COUNT ? dtype_table[t].size : 0;
}
const char *dtype_c_name(DType t) {
  return (unsigned)t < DT_COUNT ? dtype_table[t].c_name : "?";
}
bool dtype_is_float(DType t) {
  return (unsigned)t < DT_COUNT && dtype_table[t].is_float;
}

bool dtype_from_name(const char *name, DType *out) {
  for (int t = 0; t < DT_COUNT; t++) {
    if (strcmp(name, dtype_table[t].name) == 0) {
      *out = (DType)t;
      return true;
    }
  }
  return false;
}

/* ---- shapes ------------------------------------------------------------------------------ */

int64_t shape_numel(const Shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++)
    n *= s->dim[i];
  return n;
}

bool shape_equal(const Shape *a, const Shape *b) {
  if (a->rank != b->rank || a->dyn != b->dyn) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

Shape shape_make(int rank, const int64_t *dims) {
  Shape s;
  memset(&s, 0, sizeof s);
  IR_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
  s.rank = rank;
  for (int i = 0; i < rank; i++)
    s.dim[i] = dims[i];
  return s;
}

char *shape_str(const Shape *s, char *buf, size_t size) {
  size_t n = 0;
  if (size == 0) return buf;
  buf[0] = '\0';
  n += (size_t)snprintf(buf + n, size - n, "[");
  for (int i = 0; i < s->rank && n < size; i++) {
    if (i == 0 && s->dyn == 1)
      n += (size_t)snprintf(buf + n, size - n, "n<=%lld", (long long)s->dim[0]);
    else if (i == 0 && s->dyn > 1)
      n += (size_t)snprintf(buf + n, size - n, "%lldn<=%lld", (long long)s->dyn,
                            (long long)s->dim[0]);
    else
      n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
  }
  if (n < size) snprintf(buf + n, size - n, "]");
  return buf;
}

/* A dynamic axis 0 broadcasts only onto axis 0 of the result (strides never depend on the
 * batch), against a 1 or the same dynamic extent: the result's axis 0 is then dynamic. */
static bool broadcast_dyn(const Shape *a, const Shape *b, Shape *r) {
  const Shape *x[2] = {a, b};
  for (int k = 0; k < 2; k++) {
    const Shape *s = x[k], *o = x[1 - k];
    if (!s->dyn) continue;
    if (s->rank != r->rank) return false;
    int io = o->rank - r->rank; /* axis 0 of the result in o: io < 0 means absent */
    if (io >= 0 && o->dim[0] != 1 && (o->dyn != s->dyn || o->dim[0] != s->dim[0]))
      return false;
    r->dyn = s->dyn;
  }
  return true;
}

bool shape_broadcast(const Shape *a, const Shape *b, Shape *out) {
  Shape r;
  memset(&r, 0, sizeof r);
  r.rank = a->rank > b->rank ? a->rank : b->rank;
  if ((a->dyn || b->dyn) && !broadcast_dyn(a, b, &r)) return false;
  for (int i = 0; i < r.rank; i++) {
    /* align on the right: axis i of the result is axis i - (r.rank - x.rank) of x */
    int ia = i - (r.rank - a->rank), ib = i - (r.rank - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    r.dim[i] = da == 1 ? db : da;
  }
  *out = r;
  return true;
}

void ir_strides(const Shape *s, int64_t *strides) {
  int64_t st = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    strides[i] = st;
    st *= s->dim[i];
  }
}

void ir_broadcast_strides(const Shape *in, int out_rank, int64_t *strides) {
  int64_t own[IR_MAX_RANK];
  ir_strides(in, own);
  int lead = out_rank - in->rank;
  for (int i = 0; i < out_rank; i++) {
    int k = i - lead;
    strides[i] = (k < 0 || in->dim[k] == 1) ? 0 : own[k];
  }
}

int64_t ir_strided_offset(int64_t idx, const Shape *shape, const int64_t *strides) {
  int64_t off = 0;
  for (int i = shape->rank - 1; i >= 0; i--) {
    off += (idx % shape->dim[i]) * strides[i];
    idx /= shape->dim[i];
  }
  return off;
}

char *ir_format_double(double v, char *buf, size_t size) {
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    if (strtod(buf, NULL) == v || isnan(v)) break;
  }
  return buf;
}

/* ---- tensors ----------------------------------------------------------------------------- */

bool tensor_alloc(Tensor *t, DType dtype, const Shape *shape) {
  t->dtype = dtype;
  t->shape = *shape;
  size_t bytes = (size_t)shape_numel(shape) * dtype_size(dtype);
  t->data = calloc(bytes ? bytes : 1, 1);
  return t->data != NULL;
}

void tensor_free(Tensor *t) {
  free(t->data);
  t->data = NULL;
}

double tensor_get(const Tensor *t, int64_t i) {
  switch (t->dtype) {
  case DT_F32:
    return ((const float *)t->data)[i];
  case DT_F64:
    return ((const double *)t->data)[i];
  case DT_I32:
    return ((const int32_t *)t->data)[i];
  case DT_I64:
    return (double)((const int64_t *)t->data)[i];
  case DT_U8:
    return ((const uint8_t *)t->data)[i];
  case DT_I8:
    return ((const int8_t *)t->data)[i];
  case DT_COUNT:
    break;
  }
  IR_ASSERT(!"bad dtype");
  return 0;
}

int64_t tensor_get_int(const Tensor *t, int64_t i) {
  switch (t->dtype) {
  case DT_I32:
    return ((const int32_t *)t->data)[i];
  case DT_I64:
    return ((const int64_t *)t->data)[i];
  case DT_U8:
    return ((const uint8_t *)t->data)[i];
  case DT_I8:
    return ((const int8_t *)t->data)[i];
  default:
    break;
  }
  IR_ASSERT(!"tensor_get_int: not an integer tensor");
  return 0;
}

/* the low bits of v in the element's width, as two's complement (what the generated C's
 * unsigned arithmetic gives) */
void tensor_set_wrap(Tensor *t, int64_t i, uint64_t v) {
  switch (t->dtype) {
  case DT_I32:
    ((uint32_t *)t->data)[i] = (uint32_t)v;
    return;
  case DT_I64:
    ((uint64_t *)t->data)[i] = v;
    return;
  case DT_U8:
  case DT_I8:
    ((uint8_t *)t->data)[i] = (uint8_t)v;
    return;
  default:
    break;
  }
  IR_ASSERT(!"tensor_set_wrap: not an integer tensor");
}

/* float -> integer: truncate toward zero like a C cast, saturate out-of-range values and map
 * NaN to 0 (a C cast of those is undefined; generated code never relies on them) */
static double to_integer(double v, double lo, double hi) {
  if (isnan(v)) return 0;
  v = trunc(v);
  return v < lo ? lo : v > hi ? hi : v;
}

void tensor_set(Tensor *t, int64_t i, double v) {
  switch (t->dtype) {
  case DT_F32:
    ((float *)t->data)[i] = (float)v;
    return;
  case DT_F64:
    ((double *)t->data)[i] = v;
    return;
  case DT_I32:
    ((int32_t *)t->data)[i] = (int32_t)to_integer(v, INT32_MIN, INT32_MAX);
    return;
  case DT_I64: {
    /* 2^63 is not representable as int64: clamp just below it */
    double x = to_integer(v, -9223372036854775808.0, 9223372036854774784.0);
    ((int64_t *)t->data)[i] = (int64_t)x;
    return;
  }
  case DT_U8:
    ((uint8_t *)t->data)[i] = (uint8_t)to_integer(v, 0, 255);
    return;
  case DT_I8:
    ((int8_t *)t->data)[i] = (int8_t)to_integer(v, -128, 127);
    return;
  case DT_COUNT:
    break;
  }
  IR_ASSERT(!"bad dtype");
}

/* ---- ops --------------------------------------------------------------------------------- */

const OpInfo ir_ops[OP_COUNT] = {
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower)                                  \
  [OP_##e] = {text, arity, fusion, attr},
#include "ops.def"
#undef OP
};

typedef bool (*InferFn)(Graph *, Node *, Diag *);
static const InferFn infer_table[OP_COUNT] = {
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower) [OP_##e] = infer,
#include "ops.def"
#undef OP
};

bool ir_infer_node(Graph *g, Node *n, Diag *d) {
  return infer_table[n->op](g, n, d);
}

bool op_from_name(const char *name, OpKind *out) {
  for (int op = 0; op < OP_COUNT; op++) {
    if (strcmp(name, ir_ops[op].name) == 0) {
      *out = (OpKind)op;
      return true;
    }
  }
  return false;
}

static const char *const init_names[INIT_COUNT] = {
    [INIT_ZEROS] = "zeros",
    [INIT_ONES] = "ones",
    [INIT_CONSTANT] = "constant",
    [INIT_UNIFORM] = "uniform",
    [INIT_NORMAL] = "normal",
    [INIT_GLOROT_UNIFORM] = "glorot_uniform",
    [INIT_GLOROT_NORMAL] = "glorot_normal",
    [INIT_HE_UNIFORM] = "he_uniform",
    [INIT_HE_NORMAL] = "he_normal",
    [INIT_ORTHOGONAL] = "orthogonal",
};

const char *init_name(InitKind k) {
  return (unsigned)k < INIT_COUNT ? init_names[k] : "?";
}

bool init_from_name(const char *name, InitKind *out) {
  for (int k = 0; k < INIT_COUNT; k++) {
    if (strcmp(name, init_names[k]) == 0) {
      *out = (InitKind)k;
      return true;
    }
  }
  return false;
}

/* ---- graphs ------------------------------------------------------------------------------ */

bool entry_kind_is_training(EntryKind k) {
  return k == ENTRY_TRAIN || k == ENTRY_GRAD;
}

/* The entry-name convention (passes/pipeline.c names the entries; the IR text and the tests
 * name them too): the only place that reads a kind from a name. */
static void graph_set_entry(Graph *g) {
  const char *name = g->name;
  const Module *m = g->module;
  g->kind = ENTRY_NONE;
  g->step = -1;
  if (strcmp(name, "forward") == 0) g->kind = ENTRY_FORWARD;
  if (strcmp(name, "evaluate") == 0) g->kind = ENTRY_EVALUATE;
  if (strcmp(name, "grad") == 0) g->kind = ENTRY_GRAD;
  if (strcmp(name, "apply") == 0) g->kind = ENTRY_APPLY;
  if (strcmp(name, "train") == 0) {
    g->kind = ENTRY_TRAIN;
    g->step = 0;
  }
  if (strncmp(name, "train_", 6) == 0) {
    g->kind = ENTRY_TRAIN;
    for (int i = 0; m && i < m->n_steps && g->step < 0; i++)
      if (m->steps[i].name && strcmp(m->steps[i].name, name + 6) == 0) g->step = i;
  }
}

Graph *graph_new(Module *m, const char *name) {
  Graph *g = calloc(1, sizeof *g);
  IR_ASSERT(g != NULL);
  g->module = m;
  arena_init(&g->arena);
  g->name = arena_strdup(&g->arena, name ? name : "model");
  graph_set_entry(g);
  g->workspace_bytes = -1;
  g->n_kernels = -1;
  return g;
}

void graph_free(Graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_subgraphs; i++)
    graph_free(g->subgraphs[i]);
  free(g->subgraphs);
  free(g->nodes);
  free(g->outputs);
  arena_fini(&g->arena);
  free(g);
}

static void graph_reserve_nodes(Graph *g, uint32_t n) {
  if (n <= g->cap_nodes) return;
  uint32_t cap = g->cap_nodes ? g->cap_nodes : 16;
  while (cap < n)
    cap *= 2;
  g->nodes = realloc(g->nodes, cap * sizeof *g->nodes);
  IR_ASSERT(g->nodes != NULL);
  g->cap_nodes = cap;
}

Graph *graph_clone(const Graph *g, const char *name) {
  Graph *c = graph_new(g->module, name ? name : g->name);
  graph_reserve_nodes(c, g->n_nodes);
  if (g->n_nodes) memcpy(c->nodes, g->nodes, g->n_nodes * sizeof *g->nodes);
  c->n_nodes = g->n_nodes;
  for (uint32_t i = 0; i < c->n_nodes; i++) {
    Node *n = &c->nodes[i];
    if (n->name) n->name = arena_strdup(&c->arena, n->name);
    if (n->op == OP_CONST && n->attr.constant.data) {
      size_t bytes = (size_t)shape_numel(&n->attr.constant.shape) * sizeof(double);
      double *data = arena_alloc(&c->arena, bytes);
      memcpy(data, n->attr.constant.data, bytes);
      n->attr.constant.data = data;
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    graph_add_output(c, o->name, o->node, o->kind, o->target);
    c->outputs[c->n_outputs - 1].inference = o->inference;
  }
  c->workspace_bytes = g->workspace_bytes;
  c->workspace_bytes_n = g->workspace_bytes_n;
  c->n_kernels = g->n_kernels;
  if (!name) {
    c->kind = g->kind;
    c->step = g->step;
  }
  for (int i = 0; i < g->n_subgraphs; i++)
    graph_add_subgraph(c, graph_clone(g->subgraphs[i], NULL));
  return c;
}

/* checks what infer hooks rely on: arity and input ids */
static bool graph_check_inputs(const Graph *g, OpKind op, const NodeId *in, int n_in, SrcLoc loc,
                               Diag *d) {
  int arity = ir_ops[op].arity;
  if (n_in < 0 || n_in > IR_MAX_INPUTS || (arity >= 0 && n_in != arity)) {
    IR_ERROR(d, loc, "%s: expected %d input%s, got %d", ir_ops[op].name, arity,
             arity == 1 ? "" : "s", n_in);
    return false;
  }
  for (int i = 0; i < n_in; i++) {
    if (in[i] >= g->n_nodes) {
      IR_ERROR(d, loc, "%s: input %d refers to node %%%u, which does not exist", ir_ops[op].name, i,
               (unsigned)in[i]);
      return false;
    }
  }
  return true;
}

NodeId graph_add(Graph *g, OpKind op, const NodeId *in, int n_in, const NodeAttr *attr, SrcLoc loc,
                 Diag *d) {
  IR_ASSERT((unsigned)op < OP_COUNT);
  if (!graph_check_inputs(g, op, in, n_in, loc, d)) return IR_NONE;
  graph_reserve_nodes(g, g->n_nodes + 1);
  Node *n = &g->nodes[g->n_nodes];
  memset(n, 0, sizeof *n);
  n->op = op;
  n->n_in = (uint8_t)n_in;
  for (int i = 0; i < n_in; i++)
    n->in[i] = in[i];
  for (int i = n_in; i < IR_MAX_INPUTS; i++)
    n->in[i] = IR_NONE;
  if (attr) n->attr = *attr;
  n->loc = loc;
  n->offset = -1;
  n->group = -1;
  n->kernel = -1;
  if (!infer_table[op](g, n, d)) return IR_NONE; /* the slot is simply not committed */
  return g->n_nodes++;
}

NodeId graph_add_unary(Graph *g, OpKind op, NodeId a, SrcLoc loc, Diag *d) {
  return graph_add(g, op, &a, 1, NULL, loc, d);
}

NodeId graph_add_binary(Graph *g, OpKind op, NodeId a, NodeId b, SrcLoc loc, Diag *d) {
  NodeId in[2] = {a, b};
  return graph_add(g, op, in, 2, NULL, loc, d);
}

NodeId graph_add_scalar(Graph *g, DType dtype, double value, SrcLoc loc) {
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.constant.value = value;
  attr.constant.dtype = dtype;
  NodeId id = graph_add(g, OP_CONST, NULL, 0, &attr, loc, NULL);
  IR_ASSERT(id != IR_NONE);
  return id;
}

NodeId graph_add_source(Graph *g, OpKind op, int32_t index, SrcLoc loc) {
  IR_ASSERT(op == OP_INPUT || op == OP_PARAM || op == OP_STATE);
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.source.index = index;
  NodeId id = graph_add(g, op, NULL, 0, &attr, loc, NULL);
  IR_ASSERT(id != IR_NONE); /* the index must name an existing declaration */
  return id;
}

void graph_add_output(Graph *g, const char *name, NodeId node, OutputKind kind, int32_t target) {
  if (g->n_outputs == g->cap_outputs) {
    g->cap_outputs = g->cap_outputs ? 2 * g->cap_outputs : 8;
    g->outputs = realloc(g->outputs, (size_t)g->cap_outputs * sizeof *g->outputs);
    IR_ASSERT(g->outputs != NULL);
  }
  GraphOutput *o = &g->outputs[g->n_outputs++];
  o->name = arena_strdup(&g->arena, name ? name : "");
  o->node = node;
  o->kind = kind;
  o->target = target;
  o->inference = false;
}

void graph_add_inference_update(Graph *g, const char *name, NodeId node, int32_t target) {
  graph_add_output(g, name, node, OUT_STATE_UPDATE, target);
  g->outputs[g->n_outputs - 1].inference = true;
}

int32_t graph_add_subgraph(Graph *g, Graph *body) {
  if (g->n_subgraphs == g->cap_subgraphs) {
    g->cap_subgraphs = g->cap_subgraphs ? 2 * g->cap_subgraphs : 4;
    g->subgraphs = realloc(g->subgraphs, (size_t)g->cap_subgraphs * sizeof *g->subgraphs);
    IR_ASSERT(g->subgraphs != NULL);
  }
  g->subgraphs[g->n_subgraphs] = body;
  return g->n_subgraphs++;
}

/* ---- modules ----------------------------------------------------------------------------- */

Module *module_new(const char *name) {
  Module *m = calloc(1, sizeof *m);
  IR_ASSERT(m != NULL);
  arena_init(&m->arena);
  m->name = arena_strdup(&m->arena, name ? name : "model");
  return m;
}

void module_free(Module *m) {
  if (!m) return;
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i] != m->model) graph_free(m->entries[i]);
  graph_free(m->model);
  free(m->entries);
  free(m->steps);
  free(m->inputs);
  free(m->params);
  free(m->states);
  arena_fini(&m->arena);
  free(m);
}

/* appends to one of the declaration tables; returns the new index */
static int32_t module_add_decl(Module *m, TensorDecl **tab, int *n, int *cap, const char *name,
                               DType t, const Shape *s, InitSpec init, SrcLoc loc) {
  if (*n == *cap) {
    *cap = *cap ? 2 * *cap : 8;
    *tab = realloc(*tab, (size_t)*cap * sizeof **tab);
    IR_ASSERT(*tab != NULL);
  }
  TensorDecl *decl = &(*tab)[*n];
  memset(decl, 0, sizeof *decl);
  decl->name = arena_strdup(&m->arena, name);
  decl->dtype = t;
  decl->shape = *s;
  decl->init = init;
  decl->loc = loc;
  return (*n)++;
}

int32_t module_add_input(Module *m, const char *name, DType t, const Shape *s, SrcLoc loc) {
  InitSpec none = {INIT_ZEROS, 0, 0};
  return module_add_decl(m, &m->inputs, &m->n_inputs, &m->cap_inputs, name, t, s, none, loc);
}

int32_t module_add_param(Module *m, const char *name, DType t, const Shape *s, InitSpec init,
                         SrcLoc loc) {
  return module_add_decl(m, &m->params, &m->n_params, &m->cap_params, name, t, s, init, loc);
}

int32_t module_add_state(Module *m, const char *name, DType t, const Shape *s, InitSpec init,
                         SrcLoc loc) {
  return module_add_decl(m, &m->states, &m->n_states, &m->cap_states, name, t, s, init, loc);
}

int32_t module_find_param(const Module *m, const char *name) {
  for (int i = 0; i < m->n_params; i++)
    if (strcmp(m->params[i].name, name) == 0) return i;
  return -1;
}

int32_t module_find_state(const Module *m, const char *name) {
  for (int i = 0; i < m->n_states; i++)
    if (strcmp(m->states[i].name, name) == 0) return i;
  return -1;
}

void module_add_entry(Module *m, Graph *g) {
  if (m->n_entries == m->cap_entries) {
    m->cap_entries = m->cap_entries ? 2 * m->cap_entries : 4;
    m->entries = realloc(m->entries, (size_t)m->cap_entries * sizeof *m->entries);
    IR_ASSERT(m->entries != NULL);
  }
  m->entries[m->n_entries++] = g;
}

TrainStep *module_add_step(Module *m) {
  if (m->n_steps == m->cap_steps) {
    m->cap_steps = m->cap_steps ? 2 * m->cap_steps : 2;
    m->steps = realloc(m->steps, (size_t)m->cap_steps * sizeof *m->steps);
    IR_ASSERT(m->steps != NULL);
  }
  TrainStep *s = &m->steps[m->n_steps++];
  memset(s, 0, sizeof *s);
  s->loss_node = IR_NONE;
  return s;
}
