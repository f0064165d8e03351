/* ir/print.c — the IR text form (read back by ir/parse.c) and Graphviz dot output.
 *
 * The text form is self-contained: the module's declarations and train steps, then the graph
 * (format in docs/ir.md). Invariant: ir_print(ir_parse(ir_print(g))) == ir_print(g) — every
 * field the printer writes is one the parser reads back, doubles are printed with the fewest
 * digits that read back exactly, and anything after ';' is a comment the printer regenerates.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "ir_internal.h"

const char *const ir_output_kind_names[OUT_KIND_COUNT] = {
    [OUT_VALUE] = "value",
    [OUT_LOSS] = "loss",
    [OUT_PARAM_UPDATE] = "param_update",
    [OUT_STATE_UPDATE] = "state_update",
    [OUT_GRAD] = "grad",
};

typedef struct Buf {
  char *s;
  size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    b->s = realloc(b->s, cap);
    IR_ASSERT(b->s != NULL);
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void buf_printf(Buf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    buf_put(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  IR_ASSERT(big != NULL);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  buf_put(b, big, (size_t)n);
  free(big);
}

static void buf_double(Buf *b, double v) {
  char tmp[40];
  buf_printf(b, "%s", ir_format_double(v, tmp, sizeof tmp));
}

bool ir_name_char(int c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_') return true;
  return !first && ((c >= '0' && c <= '9') || c == '.' || c == '*');
}

static void put_name(Buf *b, const char *s);

bool ir_path_char(int c) {
  return ir_name_char(c, false) || c == '/' || c == '-' || c == '+';
}

/* a file path, bare when it has only path characters */
static void put_path(Buf *b, const char *s) {
  bool bare = *s != '\0';
  for (const char *p = s; *p; p++) bare = bare && ir_path_char((unsigned char)*p);
  if (bare) buf_printf(b, "%s", s);
  else put_name(b, s);
}

bool ir_name_is_bare(const char *s) {
  if (!*s) return false;
  for (const char *p = s; *p; p++)
    if (!ir_name_char((unsigned char)*p, p == s)) return false;
  return true;
}

/* a name: bare when possible, else a C-style quoted string */
static void put_name(Buf *b, const char *s) {
  if (!s) s = "";
  if (ir_name_is_bare(s)) {
    buf_printf(b, "%s", s);
    return;
  }
  buf_put(b, "\"", 1);
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
    else if (*p == '\n') buf_put(b, "\\n", 2);
    else if ((unsigned char)*p < 0x20) buf_printf(b, "\\x%02x", (unsigned char)*p);
    else buf_put(b, p, 1);
  }
  buf_put(b, "\"", 1);
}

static void put_type(Buf *b, DType t, const Shape *s) {
  char tmp[200];
  buf_printf(b, "%s%s", dtype_name(t), shape_str(s, tmp, sizeof tmp));
}

/* "  # name @file:line:col offset=N" (offset=An+B with a part per unit of the dynamic batch),
 * omitting absent parts (nothing at all if all absent) */
static void put_meta(Buf *b, const char *name, SrcLoc loc, int64_t offset, int64_t offset_n) {
  if (!name && !loc.file && offset < 0) return;
  buf_printf(b, "  #");
  if (name) {
    buf_put(b, " ", 1);
    put_name(b, name);
  }
  if (loc.file) {
    buf_put(b, " @", 2);
    put_path(b, loc.file);
    buf_printf(b, ":%u:%u", (unsigned)loc.line, (unsigned)loc.col);
  }
  if (offset >= 0 && offset_n)
    buf_printf(b, " offset=%lldn+%lld", (long long)offset_n, (long long)offset);
  else if (offset >= 0)
    buf_printf(b, " offset=%lld", (long long)offset);
}

static void put_init(Buf *b, InitSpec init) {
  buf_printf(b, " = %s", init_name(init.kind));
  if (init.kind == INIT_CONSTANT) {
    buf_put(b, "(", 1);
    buf_double(b, init.a);
    buf_put(b, ")", 1);
  } else if (init.kind == INIT_UNIFORM || init.kind == INIT_NORMAL) {
    buf_put(b, "(", 1);
    buf_double(b, init.a);
    buf_put(b, ", ", 2);
    buf_double(b, init.b);
    buf_put(b, ")", 1);
  }
}

static void put_decls(Buf *b, const char *kind, const TensorDecl *tab, int n, bool init) {
  for (int i = 0; i < n; i++) {
    buf_printf(b, "%s ", kind);
    put_name(b, tab[i].name);
    buf_put(b, ": ", 2);
    put_type(b, tab[i].dtype, &tab[i].shape);
    if (init) put_init(b, tab[i].init);
    put_meta(b, NULL, tab[i].loc, -1, 0);
    buf_printf(b, "  ; %s %d\n", kind, i);
  }
}

static void put_step(Buf *b, const TrainStep *s) {
  buf_printf(b, "train ");
  if (s->name) {
    buf_printf(b, "step ");
    put_name(b, s->name);
    buf_printf(b, ": ");
  }
  buf_printf(b, "minimize ");
  put_name(b, s->loss);
  if (s->loss_node != IR_NONE) buf_printf(b, " %%%u", (unsigned)s->loss_node);
  if (s->n_globs > 0) {
    buf_printf(b, " params [");
    for (int i = 0; i < s->n_globs; i++) {
      if (i) buf_put(b, ", ", 2);
      put_name(b, s->param_globs[i]);
    }
    buf_put(b, "]", 1);
  }
  if (s->optimizer) {
    buf_printf(b, " optimizer ");
    put_name(b, s->optimizer);
    buf_put(b, "(", 1);
    for (int i = 0; i < s->n_optim_args; i++) {
      buf_printf(b, "%s", i ? ", " : "");
      put_name(b, s->optim_args[i].name);
      buf_put(b, "=", 1);
      buf_double(b, s->optim_args[i].value);
    }
    buf_put(b, ")", 1);
  }
  put_meta(b, NULL, s->loc, -1, 0);
  buf_put(b, "\n", 1);
}

static void put_module(Buf *b, const Module *m) {
  buf_printf(b, "module ");
  put_name(b, m->name);
  buf_put(b, "\n", 1);
  if (m->source_file) {
    buf_printf(b, "source ");
    put_path(b, m->source_file);
    buf_put(b, "\n", 1);
  }
  if (m->dyn_max > 0) {
    buf_printf(b, "dynamic ");
    put_name(b, m->dyn_name ? m->dyn_name : "n");
    buf_printf(b, " max=%lld\n", (long long)m->dyn_max);
  }
  put_decls(b, "input", m->inputs, m->n_inputs, false);
  put_decls(b, "param", m->params, m->n_params, true);
  put_decls(b, "state", m->states, m->n_states, true);
  for (int i = 0; i < m->n_steps; i++) put_step(b, &m->steps[i]);
}

/* a number, a word or a list of numbers, as ir/attr.c wrote it */
static void put_value(Buf *b, const IrAttrValue *v) {
  switch (v->kind) {
  case IR_ATTR_FLAG:
    break;
  case IR_ATTR_NUMBER:
    if (v->is_int)
      buf_printf(b, "%lld", (long long)v->i);
    else
      buf_double(b, v->d);
    break;
  case IR_ATTR_WORD:
    buf_printf(b, "%s", v->word);
    break;
  case IR_ATTR_LIST:
    buf_put(b, "[", 1);
    for (int64_t i = 0; i < v->n; i++) {
      if (i) buf_put(b, ", ", 2);
      if (v->is_int)
        buf_printf(b, "%lld", (long long)v->ints[i]);
      else
        buf_double(b, v->nums[i]);
    }
    buf_put(b, "]", 1);
    break;
  }
}

/* everything between the op name and the ':': the attribute operand (a source's index, a
 * constant's values), the inputs, and the attributes the node's type does not already state
 * in braces (ir/attr.c says which, by the op's attribute kind) */
static void put_operands_and_attrs(Buf *b, const Node *n) {
  IrAttrText t;
  ir_attr_write(n, &t);
  if (t.has_operand) {
    buf_put(b, " ", 1);
    put_value(b, &t.operand);
  }
  for (int k = 0; k < n->n_in; k++)
    buf_printf(b, "%s%%%u", k ? ", " : " ", (unsigned)n->in[k]);
  for (int i = 0; i < t.n; i++) {
    buf_printf(b, "%s%s", i ? ", " : " {", t.entry[i].key);
    if (t.entry[i].value.kind != IR_ATTR_FLAG) buf_put(b, "=", 1);
    put_value(b, &t.entry[i].value);
  }
  if (t.n) buf_put(b, "}", 1);
}

/* the declaration a source node reads, for the trailing comment */
static const char *source_name(const Graph *g, const Node *n) {
  const Module *m = g->module;
  int32_t i = n->attr.source.index;
  if (!m || i < 0) return NULL;
  if (n->op == OP_INPUT && i < m->n_inputs) return m->inputs[i].name;
  if (n->op == OP_PARAM && i < m->n_params) return m->params[i].name;
  if (n->op == OP_STATE && i < m->n_states) return m->states[i].name;
  return NULL;
}

static void put_node(Buf *b, const Graph *g, uint32_t id) {
  const Node *n = &g->nodes[id];
  buf_printf(b, "  %%%u = %s", (unsigned)id, ir_ops[n->op].name);
  put_operands_and_attrs(b, n);
  buf_printf(b, " : ");
  put_type(b, n->dtype, &n->shape);
  put_meta(b, n->name, n->loc, n->offset, n->offset_n);
  const char *src = n->op == OP_CONST ? NULL : source_name(g, n);
  if (src) buf_printf(b, "  ; %s", src);
  buf_put(b, "\n", 1);
}

/* the subgraphs (scan bodies, each before the nodes), nodes and outputs of g; bodies are
 * indented two more columns per level */
static void put_graph_lines(Buf *b, const Graph *g, int depth) {
  for (int i = 0; i < g->n_subgraphs; i++) {
    buf_printf(b, "%*sbody %d {\n", 2 * depth + 2, "", i);
    put_graph_lines(b, g->subgraphs[i], depth + 1);
    buf_printf(b, "%*s}\n", 2 * depth + 2, "");
  }
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    buf_printf(b, "%*s", 2 * depth, "");
    put_node(b, g, id);
  }
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    buf_printf(b, "%*s  output ", 2 * depth, "");
    put_name(b, o->name);
    buf_printf(b, " = %%%u %s", (unsigned)o->node,
               (unsigned)o->kind < OUT_KIND_COUNT ? ir_output_kind_names[o->kind] : "?");
    if (o->target != -1) buf_printf(b, " %d", (int)o->target);
    if (o->inference) buf_printf(b, " inference");
    buf_put(b, "\n", 1);
  }
}

static void put_graph(Buf *b, const Graph *g) {
  buf_printf(b, "graph ");
  put_name(b, g->name);
  if (g->workspace_bytes >= 0) buf_printf(b, " workspace=%lld", (long long)g->workspace_bytes);
  buf_printf(b, " {\n");
  put_graph_lines(b, g, 0);
  buf_printf(b, "}\n");
}

char *ir_print(const Graph *g) {
  Buf b = {0};
  if (g->module) put_module(&b, g->module);
  put_graph(&b, g);
  return b.s;
}

/* ---- Graphviz ---------------------------------------------------------------------------- */

/* a dot string literal body: quotes and backslashes escaped */
static void put_dot_text(Buf *b, const char *s) {
  for (const char *p = s; *p; p++) {
    if (*p == '"' || *p == '\\') buf_put(b, "\\", 1);
    buf_put(b, p, 1);
  }
}

static void put_dot_node(Buf *b, const Graph *g, uint32_t id, const char *indent) {
  const Node *n = &g->nodes[id];
  char type[240], shape[200];
  snprintf(type, sizeof type, "%s%s", dtype_name(n->dtype),
           shape_str(&n->shape, shape, sizeof shape));
  const char *label = n->name ? n->name : source_name(g, n);
  buf_printf(b, "%sn%u [label=\"%%%u %s", indent, (unsigned)id, (unsigned)id, ir_ops[n->op].name);
  if (label) {
    buf_put(b, " ", 1);
    put_dot_text(b, label);
  }
  buf_printf(b, "\\n%s\"%s];\n", type,
             n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE
                 ? ", shape=ellipse"
                 : "");
}

/* The fusion groups (Node.group, set by passes/fuse.c) are drawn as clusters, one box per
 * generated kernel, labelled with its first and last member and its size (`lathe dump
 * --kernels` lists the same groups); ungrouped nodes stand alone. */
static void put_dot_clusters(Buf *b, const Graph *g) {
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    int32_t grp = g->nodes[id].group;
    if (grp < 0) {
      put_dot_node(b, g, id, "  ");
      continue;
    }
    bool first = true; /* the group's first node in id order opens its cluster */
    for (uint32_t j = 0; j < id && first; j++) first = g->nodes[j].group != grp;
    if (!first) continue;
    int members = 0;
    uint32_t last = id;
    for (uint32_t j = id; j < g->n_nodes; j++)
      if (g->nodes[j].group == grp) members++, last = j;
    buf_printf(b,
               "  subgraph cluster_k%d {\n    label=\"fused kernel %%%u..%%%u: %d nodes\";\n"
               "    style=\"rounded,filled\"; fillcolor=\"#eef4ff\"; color=\"#4a78c2\";\n",
               (int)grp, (unsigned)id, (unsigned)last, members);
    for (uint32_t j = id; j < g->n_nodes; j++)
      if (g->nodes[j].group == grp) put_dot_node(b, g, j, "    ");
    buf_printf(b, "  }\n");
  }
}

char *ir_print_dot(const Graph *g) {
  Buf b = {0};
  buf_printf(&b, "digraph \"");
  put_dot_text(&b, g->name);
  buf_printf(&b, "\" {\n  node [shape=box, fontname=\"monospace\"];\n");
  put_dot_clusters(&b, g);
  for (uint32_t id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < g->nodes[id].n_in; k++)
      buf_printf(&b, "  n%u -> n%u;\n", (unsigned)g->nodes[id].in[k], (unsigned)id);
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    buf_printf(&b, "  out%d [label=\"", i);
    put_dot_text(&b, o->name ? o->name : "");
    buf_printf(&b, " (%s)\", shape=doubleoctagon];\n",
               (unsigned)o->kind < OUT_KIND_COUNT ? ir_output_kind_names[o->kind] : "?");
    buf_printf(&b, "  n%u -> out%d;\n", (unsigned)o->node, i);
  }
  buf_printf(&b, "}\n");
  return b.s;
}
