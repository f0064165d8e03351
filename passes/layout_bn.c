/* passes/layout_bn.c — per-channel affine epilogues folded into convolutions (part of
 * pass_layout, declared in layout.h).
 *
 * Batch norm in an inference entry is, after elaboration, conv2d(x, w) followed by a chain of
 * add / sub / mul / div with per-channel operands that do not depend on the convolution (the
 * bias, the running mean and variance, gamma, beta). Such a chain is y = conv(x, w) * s + t
 * with per-channel s and t, so it becomes
 *     y = conv2d(x, w * s[:, None, None, None]) + t
 * where s and t are built from the chain's operands (one pass over the small per-channel
 * vectors and the weights per call: the weights are run-time params). Only a chain with a mul
 * or div is folded (a lone bias add gains nothing), every intermediate must have the chain's
 * next node as its only reader, and the convolution's output must be read by the chain alone.
 * In train entries the batch statistics depend on the convolution, so nothing folds there.
 * New nodes are appended and the graph re-sorted topologically (stable).
 */
#include "layout.h"
#include "rewrite.h"

#include <stdlib.h>
#include <string.h>

typedef struct Fold {
  Graph *g;
  Diag *d;
  NodeId conv;
  NodeId chain[16]; /* the affine ops, in order */
  int n;
  uint32_t *readers; /* per node: readers (inputs of later nodes, graph outputs) */
  bool *dep;         /* per node: depends on the convolution */
} Fold;

/* whether o broadcasts against conv's [B, C, H, W] output as one value per channel (or one) */
static bool per_channel(const Graph *g, NodeId o, const Shape *out) {
  const Shape *s = &g->nodes[o].shape;
  if (s->rank > out->rank) return false;
  int lead = out->rank - s->rank;
  for (int d = 0; d < s->rank; d++)
    if (s->dim[d] != 1 && (d + lead != 1 || s->dim[d] != out->dim[1])) return false;
  return true;
}

/* the next affine op after cur, or IR_NONE */
static NodeId next_op(Fold *f, NodeId cur, const bool *is_output) {
  Graph *g = f->g;
  if (f->readers[cur] != 1 || is_output[cur]) return IR_NONE;
  for (NodeId id = cur + 1; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    int k = n->n_in == 2 ? (n->in[0] == cur ? 0 : n->in[1] == cur ? 1 : -1) : -1;
    if (k < 0) continue;
    bool op = n->op == OP_ADD || n->op == OP_MUL ||
              ((n->op == OP_SUB || n->op == OP_DIV) && k == 0);
    NodeId o = n->in[1 - k];
    if (!op || n->in[0] == n->in[1] || f->dep[o] || g->nodes[o].dtype != n->dtype ||
        !shape_equal(&n->shape, &g->nodes[f->conv].shape) ||
        !per_channel(g, o, &n->shape))
      return IR_NONE;
    return id;
  }
  return IR_NONE;
}

static NodeId add2(Fold *f, OpKind op, NodeId a, NodeId b, SrcLoc loc) {
  if (a == IR_NONE || b == IR_NONE) return IR_NONE;
  return graph_add_binary(f->g, op, a, b, loc, f->d);
}

/* scale and shift of the chain (IR_NONE = 1 and 0) */
static bool build_affine(Fold *f, NodeId *scale, NodeId *shift) {
  Graph *g = f->g;
  *scale = *shift = IR_NONE;
  NodeId cur = f->conv;
  for (int i = 0; i < f->n; i++) {
    Node n = g->nodes[f->chain[i]];
    NodeId o = n.in[0] == cur ? n.in[1] : n.in[0];
    SrcLoc loc = n.loc;
    if (n.op == OP_ADD || n.op == OP_SUB) {
      OpKind op = n.op;
      if (*shift == IR_NONE && op == OP_SUB) o = graph_add_unary(g, OP_NEG, o, loc, f->d);
      *shift = *shift == IR_NONE ? o : add2(f, op, *shift, o, loc);
    } else {
      if (*shift != IR_NONE) *shift = add2(f, n.op, *shift, o, loc);
      if (*scale == IR_NONE && n.op == OP_DIV)
        o = add2(f, OP_DIV, graph_add_scalar(g, n.dtype, 1.0, loc), o, loc);
      *scale = *scale == IR_NONE ? o : add2(f, n.op, *scale, o, loc);
    }
    if ((*scale == IR_NONE && *shift == IR_NONE) || o == IR_NONE) return false;
    cur = f->chain[i];
  }
  return *scale != IR_NONE;
}

/* conv2d(x, w * scale) + shift, or IR_NONE */
static NodeId build_folded(Fold *f) {
  Graph *g = f->g;
  NodeId scale, shift;
  if (!build_affine(f, &scale, &shift)) return IR_NONE;
  Node c = g->nodes[f->conv];
  const Shape *ws = &g->nodes[c.in[1]].shape;
  NodeAttr ra;
  memset(&ra, 0, sizeof ra);
  ra.reshape.shape = *ws;
  for (int d = 1; d < ws->rank; d++)
    ra.reshape.shape.dim[d] = 1;
  if (shape_numel(&g->nodes[scale].shape) != ws->dim[0]) return IR_NONE;
  NodeId s4 = graph_add(g, OP_RESHAPE, &scale, 1, &ra, c.loc, f->d);
  NodeId w = add2(f, OP_MUL, c.in[1], s4, c.loc);
  if (w == IR_NONE) return IR_NONE;
  NodeId in[2] = {c.in[0], w};
  NodeId conv = graph_add(g, OP_CONV2D, in, 2, &c.attr, c.loc, f->d);
  if (conv == IR_NONE || shift == IR_NONE) return conv;
  return add2(f, OP_ADD, conv, shift, g->nodes[f->chain[f->n - 1]].loc);
}

static void mark_dep(Fold *f) {
  Graph *g = f->g;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    f->dep[id] = id == f->conv;
    for (int k = 0; k < n->n_in && id > f->conv; k++)
      f->dep[id] |= f->dep[n->in[k]];
  }
}

/* Folds the chain after conv c if there is one; returns its replacement (or IR_NONE). */
static NodeId fold_conv(Fold *f, NodeId c, const bool *is_output) {
  f->conv = c;
  f->n = 0;
  if (!dtype_is_float(f->g->nodes[c].dtype) || f->g->nodes[c].shape.rank != 4) return IR_NONE;
  mark_dep(f);
  bool scales = false;
  for (NodeId cur = c, nx; f->n < 16 && (nx = next_op(f, cur, is_output)) != IR_NONE; cur = nx) {
    f->chain[f->n++] = nx;
    scales |= f->g->nodes[nx].op == OP_MUL || f->g->nodes[nx].op == OP_DIV;
  }
  return scales ? build_folded(f) : IR_NONE;
}

static void count_readers(const Graph *g, uint32_t *readers, bool *is_output) {
  memset(readers, 0, (g->n_nodes + 1) * sizeof *readers);
  memset(is_output, 0, (g->n_nodes + 1) * sizeof *is_output);
  for (NodeId id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < g->nodes[id].n_in; k++)
      readers[g->nodes[id].in[k]]++;
  for (int i = 0; i < g->n_outputs; i++)
    is_output[g->outputs[i].node] = true;
}

/* every reader of `from` (a later node, or an output) reads `to` instead */
static void redirect(Graph *g, NodeId from, NodeId to) {
  for (NodeId id = from + 1; id < g->n_nodes; id++) {
    Node *n = &g->nodes[id];
    if (id == to) continue;
    for (int k = 0; k < n->n_in; k++)
      if (n->in[k] == from) n->in[k] = to;
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].node == from) g->outputs[i].node = to;
}

bool layout_fold_bn(Graph *g, PassCtx *c, bool *changed) {
  uint32_t n0 = g->n_nodes, cap = 2 * n0 + 64;
  Fold f = {g, c->diag, IR_NONE, {0}, 0, malloc(cap * sizeof(uint32_t)), malloc(cap)};
  bool *is_output = malloc(cap);
  bool ok = f.readers && f.dep && is_output;
  for (NodeId id = 0; ok && id < n0; id++) {
    if (g->nodes[id].op != OP_CONV2D || g->n_nodes + 64 > cap) continue;
    count_readers(g, f.readers, is_output);
    if (f.readers[id] != 1 || is_output[id]) continue;
    NodeId r = fold_conv(&f, id, is_output);
    if (r == IR_NONE) continue;
    redirect(g, f.chain[f.n - 1], r);
    *changed = true;
  }
  free(f.readers);
  free(f.dep);
  free(is_output);
  if (!ok) diag_error(c->diag, (SrcLoc){0}, "out of memory in layout of '%s'", g->name);
  return ok && (!*changed || rw_resort(g, c, "layout"));
}
