/* passes/cse.c — common subexpression elimination: pass_cse.
 *
 * Requires: a verified graph.
 * Does:     hash-consing in one sweep in id order (see rewrite.h): a node with the same op,
 *           dtype, shape, (already rewritten) inputs and attributes as an earlier node is
 *           replaced by it. Every op is pure, so this is always sound; sources are equal when
 *           they name the same table entry, constants when their values are equal. Graph
 *           outputs follow their replacements.
 * Invalidates: leaves replaced nodes dead (run dce after) and the memory plan.
 * Attributes are compared field by field per op (never memcmp: unions carry stale bytes).
 */
#include "rewrite.h"

#include <string.h>

static bool const_equal(const Node *a, const Node *b) {
  const double *da = a->attr.constant.data, *db = b->attr.constant.data;
  int64_t count = shape_numel(&a->shape);
  for (int64_t i = 0; i < count; i++) {
    double x = da ? da[i] : a->attr.constant.value, y = db ? db[i] : b->attr.constant.value;
    if (memcmp(&x, &y, sizeof x) != 0) return false; /* bitwise: -0.0 != 0.0, NaN == NaN */
    if (!da && !db) break;
  }
  return true;
}

/* attributes of two nodes of the same op */
static bool attr_equal(const Node *a, const Node *b) {
  const NodeAttr *x = &a->attr, *y = &b->attr;
  switch (a->op) {
  case OP_INPUT:
  case OP_PARAM:
  case OP_STATE:
    return x->source.index == y->source.index;
  case OP_CONST:
    return const_equal(a, b);
  case OP_RESHAPE:
  case OP_BROADCAST:
    return shape_equal(&x->reshape.shape, &y->reshape.shape);
  case OP_CAST:
    return x->cast.dtype == y->cast.dtype;
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
    return x->reduce.axes == y->reduce.axes && x->reduce.keepdims == y->reduce.keepdims;
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
    return x->softmax.axis == y->softmax.axis;
  case OP_TRANSPOSE:
    return memcmp(x->transpose.perm, y->transpose.perm, (size_t)a->shape.rank) == 0;
  case OP_MATMUL:
    return x->matmul.trans_a == y->matmul.trans_a && x->matmul.trans_b == y->matmul.trans_b;
  case OP_ONE_HOT:
    return x->one_hot.depth == y->one_hot.depth && x->one_hot.dtype == y->one_hot.dtype;
  case OP_SLICE: /* the window; dim is the result (SLICE) or compared through the shape */
  case OP_UNSLICE:
    return memcmp(&x->slice, &y->slice, sizeof x->slice) == 0;
  case OP_SCATTER_ADD:
    return x->gather.rows == y->gather.rows;
  case OP_RANDOM: /* shape and dtype are compared by node_equal */
  case OP_DROPOUT:
    return x->random.stream == y->random.stream && x->random.dist == y->random.dist &&
           x->random.p == y->random.p;
  case OP_SCAN: /* a scan is its body: equal only if it is the same body */
    return x->scan.body == y->scan.body && x->scan.length == y->scan.length &&
           x->scan.n_carry == y->scan.n_carry && x->scan.n_seq == y->scan.n_seq &&
           x->scan.axis == y->scan.axis && x->scan.reverse == y->scan.reverse;
  case OP_SCAN_ARG:
    return x->scan_arg.index == y->scan_arg.index;
  case OP_UNPACK:
    return x->unpack.offset == y->unpack.offset;
  default:
    /* elementwise ops carry no attributes; any other op not listed above is compared
     * bytewise, which can only miss a merge (padding), never merge different nodes */
    return ir_ops[a->op].fusion == FUSE_ELEMWISE || memcmp(x, y, sizeof *x) == 0;
  }
}

static bool node_equal(const Node *a, const Node *b) {
  if (a->op != b->op || a->dtype != b->dtype || a->n_in != b->n_in) return false;
  if (!shape_equal(&a->shape, &b->shape)) return false;
  for (int k = 0; k < a->n_in; k++)
    if (a->in[k] != b->in[k]) return false;
  return attr_equal(a, b);
}

static uint64_t node_hash(const Node *n) {
  uint64_t h = 1469598103934665603ull;
  uint64_t parts[3 + IR_MAX_INPUTS + IR_MAX_RANK];
  int np = 0;
  parts[np++] = (uint64_t)n->op;
  parts[np++] = (uint64_t)n->dtype;
  parts[np++] = (uint64_t)n->n_in;
  for (int k = 0; k < n->n_in; k++)
    parts[np++] = n->in[k];
  for (int d = 0; d < n->shape.rank; d++)
    parts[np++] = (uint64_t)n->shape.dim[d];
  if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE)
    h ^= (uint64_t)(uint32_t)n->attr.source.index * 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < np; i++)
    h = (h ^ parts[i]) * 1099511628211ull;
  return h;
}

bool pass_cse(Graph *g, PassCtx *c) {
  NodeId *repl = rw_identity(g, c, "common subexpression elimination");
  uint32_t cap = 16;
  while (cap < 2 * g->n_nodes)
    cap *= 2;
  NodeId *table = malloc(cap * sizeof *table);
  if (!repl || !table) {
    free(repl);
    free(table);
    if (repl) diag_error(c->diag, (SrcLoc){0}, "out of memory in CSE of '%s'", g->name);
    return false;
  }
  for (uint32_t i = 0; i < cap; i++)
    table[i] = IR_NONE;
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    rw_inputs(g, repl, id);
    const Node *n = &g->nodes[id];
    uint32_t slot = (uint32_t)(node_hash(n) & (cap - 1));
    while (table[slot] != IR_NONE && !node_equal(&g->nodes[table[slot]], n))
      slot = (slot + 1) & (cap - 1);
    if (table[slot] == IR_NONE) {
      table[slot] = id;
    } else {
      repl[id] = table[slot];
      changed = true;
    }
  }
  changed |= rw_outputs(g, repl);
  if (changed) g->workspace_bytes = -1;
  free(repl);
  free(table);
  return true;
}
