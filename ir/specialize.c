/* ir/specialize.c — a graph of a dynamic-batch module fixed at one batch: graph_specialize.
 *
 * The reference semantics of a dynamic graph at run-time batch n (docs/dynamic-batch.md) are
 * those of the same graph with every dynamic axis 0 (Shape.dyn = k) replaced by the static
 * extent k * n, in the node shapes and in every attribute that states a shape (scan bodies
 * included; a packed value and its UNPACK offsets take the layout at n). The evaluator
 * runs on that clone; tests compare generated code at n against it.
 */
#include "ir_internal.h"
#include "scan.h"

/* s at batch n: dim[0] = k * n for a dynamic shape */
static void fix_shape(Shape *s, int64_t n) {
  if (!s->dyn) return;
  s->dim[0] = s->dyn * n;
  s->dyn = 0;
}

static void fix_node(Node *x, const Shape *before, int64_t n) {
  switch (x->op) {
  case OP_CONST:
    fix_shape(&x->attr.constant.shape, n);
    break;
  case OP_RESHAPE:
  case OP_BROADCAST:
    fix_shape(&x->attr.reshape.shape, n);
    break;
  case OP_RANDOM:
    fix_shape(&x->attr.random.shape, n);
    break;
  case OP_SLICE:
  case OP_UNSLICE:
    /* the window keeps all of a dynamic axis 0 (infer_slice): its extent is the node's for a
     * slice, the input's for an unslice; either way before->dim[0] at the bound */
    if (before->dyn) x->attr.slice.dim[0] = (int32_t)(before->dyn * n);
    break;
  default:
    break;
  }
  fix_shape(&x->shape, n);
}

/* The recurrence ops (ir/scan.h): a packed value holds its pieces at n one after the other,
 * so its extent and its pieces' offsets are the affine ones of the original o at n. */
static void fix_packed(const Graph *g, const Node *o, Node *x, int64_t n) {
  int64_t per_n, fixed;
  if (x->op == OP_SCAN_ARG) fix_shape(&x->attr.scan_arg.shape, n);
  if (x->op == OP_UNPACK) {
    fix_shape(&x->attr.unpack.shape, n);
    x->attr.unpack.offset =
        o->attr.unpack.offset - o->attr.unpack.offset_n * (g->module->dyn_max - n);
    x->attr.unpack.offset_n = 0;
  }
  if (x->op == OP_SCAN || x->op == OP_PACK) {
    scan_packed_total(g, o, &per_n, &fixed);
    int64_t total = per_n * n + fixed;
    x->shape = shape_make(1, &total);
  }
}

/* An elementwise op over a packed value static at the bound (the VJP's sum of cotangents of
 * a scan mixing batch-sized and static pieces) takes its operand's extent at n. */
static void fix_packed_elementwise(Graph *c, const Graph *g, const Node *o, Node *x) {
  if (ir_ops[x->op].fusion != FUSE_ELEMWISE || o->shape.dyn || o->shape.rank != 1) return;
  for (int k = 0; k < o->n_in; k++) {
    const Shape *before = &g->nodes[o->in[k]].shape, *now = &c->nodes[x->in[k]].shape;
    if (shape_equal(before, &o->shape) && !shape_equal(before, now)) {
      x->shape = *now;
      return;
    }
  }
}

/* c (a clone of g) at batch n, its scan bodies too */
static void fix_graph(Graph *c, const Graph *g, int64_t n) {
  for (uint32_t id = 0; id < c->n_nodes; id++) {
    Node *x = &c->nodes[id];
    const Node *o = &g->nodes[id]; /* the original: c's inputs are fixed already */
    fix_node(x, x->op == OP_UNSLICE ? &g->nodes[o->in[0]].shape : &o->shape, n);
    fix_packed(g, o, x, n);
    fix_packed_elementwise(c, g, o, x);
  }
  for (int i = 0; i < c->n_subgraphs && i < g->n_subgraphs; i++)
    fix_graph(c->subgraphs[i], g->subgraphs[i], n);
}

Graph *graph_specialize(const Graph *g, int64_t n, Diag *d) {
  const Module *m = g->module;
  if (!m || m->dyn_max <= 0 || n < 1 || n > m->dyn_max) {
    IR_ERROR(d, (SrcLoc){0}, "specialize: batch %lld is not in [1, %lld] of graph '%s'",
             (long long)n, (long long)(m ? m->dyn_max : 0), g->name);
    return NULL;
  }
  Graph *c = graph_clone(g, NULL);
  fix_graph(c, g, n);
  c->workspace_bytes = -1;
  c->workspace_bytes_n = 0;
  c->n_kernels = -1;
  return c;
}
