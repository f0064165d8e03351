/* passes/fuse.c — operator fusion: pass_fuse.
 *
 * Requires: a verified graph after DCE.
 * Does:     sets Node.group: nodes with the same group id (the id of the group's first node)
 *           become one kernel in codegen; -1 means a kernel of its own (or no code at all).
 *           Greedy, in id order:
 *             - an elementwise node (class FUSE_ELEMWISE, or BROADCAST) joins — and merges —
 *               the groups of its inputs that have exactly its shape: elementwise chains
 *               (forward activations, backward masks like relu's `gy * (x > 0)`, the optimizer
 *               update of one parameter with its moments) become one loop; inputs of other
 *               shapes are read broadcast, in place;
 *             - a MATMUL with 2-D operands seeds a group, and elementwise nodes of its output
 *               shape and dtype join it as an epilogue (bias, activation, residual), applied
 *               to each output tile before it is stored. At most one matmul per group.
 *           Softmax, reductions, transposes and one-hots stay kernels of their own.
 * Legality: a node may join group G only if no member of G has so far been read by a node
 *           outside G. A kernel runs at its last member, so this keeps every consumer of a
 *           group after the group and every producer before it (no cycles between kernels);
 *           see passes/kernels.c for the schedule it implies.
 * Invalidates: the memory plan (memplan must run after: fused intermediates need no buffer).
 */
#include "passes.h"

#include <stdlib.h>

typedef struct Fuser {
  Graph *g;
  int32_t *group;  /* per node: its group id, or -1 */
  bool *ext_used;  /* per group id: a member was read by a node outside the group */
  bool *has_mm;    /* per group id: the group contains a matmul */
  DType *dtype;    /* per group id: the members' dtype, DT_COUNT when mixed */
  uint32_t *size;  /* per group id: member count */
} Fuser;

static bool is_elementwise(OpKind op) {
  return op == OP_BROADCAST || (ir_ops[op].fusion == FUSE_ELEMWISE && op != OP_CONST);
}

static bool matmul_seeds(const Graph *g, const Node *n) {
  return n->op == OP_MATMUL && dtype_is_float(n->dtype) && n->shape.rank == 2 &&
         g->nodes[n->in[0]].shape.rank == 2 && g->nodes[n->in[1]].shape.rank == 2;
}

/* whether node n may join group grp */
static bool can_join(const Fuser *f, const Node *n, int32_t grp) {
  if (grp < 0 || f->ext_used[grp]) return false;
  if (!shape_equal(&f->g->nodes[grp].shape, &n->shape)) return false;
  return !f->has_mm[grp] || f->dtype[grp] == n->dtype;
}

/* moves every member of group `from` into group `to` */
static void merge_into(Fuser *f, int32_t to, int32_t from, uint32_t upto) {
  for (uint32_t id = (uint32_t)from; id <= upto; id++)
    if (f->group[id] == from) f->group[id] = to;
  f->has_mm[to] |= f->has_mm[from];
  if (f->dtype[to] != f->dtype[from]) f->dtype[to] = DT_COUNT;
  f->size[to] += f->size[from];
}

/* The groups node id joins (merged into the lowest id), or a new group seeded by id. */
static void place_elementwise(Fuser *f, NodeId id) {
  const Node *n = &f->g->nodes[id];
  int32_t target = -1;
  bool mm = false;
  for (int k = 0; k < n->n_in; k++) {
    int32_t grp = f->group[n->in[k]];
    if (!can_join(f, n, grp) || grp == target) continue;
    if (f->has_mm[grp] && mm) continue; /* one matmul per kernel */
    bool with_mm = mm || f->has_mm[grp]; /* an epilogue: one dtype throughout */
    if (with_mm && (f->dtype[grp] != n->dtype || (target >= 0 && f->dtype[target] != n->dtype)))
      continue;
    if (target < 0) {
      target = grp;
    } else {
      int32_t lo = grp < target ? grp : target, hi = grp < target ? target : grp;
      merge_into(f, lo, hi, id);
      target = lo;
    }
    mm |= f->has_mm[grp];
  }
  if (target < 0) {
    target = (int32_t)id;
    f->dtype[target] = n->dtype;
    f->size[target] = 0;
  } else if (f->dtype[target] != n->dtype) {
    f->dtype[target] = DT_COUNT;
  }
  f->group[id] = target;
  f->size[target]++;
}

static void fuse_run(Fuser *f) {
  Graph *g = f->g;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    f->group[id] = -1;
    if (is_elementwise(n->op)) {
      place_elementwise(f, id);
    } else if (matmul_seeds(g, n)) {
      f->group[id] = (int32_t)id;
      f->has_mm[id] = true;
      f->dtype[id] = n->dtype;
      f->size[id] = 1;
    }
    for (int k = 0; k < n->n_in; k++) {
      int32_t grp = f->group[n->in[k]];
      if (grp >= 0 && grp != f->group[id]) f->ext_used[grp] = true;
    }
  }
  for (NodeId id = 0; id < g->n_nodes; id++) { /* a group of one is just a kernel */
    int32_t grp = f->group[id];
    g->nodes[id].group = grp >= 0 && f->size[grp] > 1 ? grp : -1;
  }
}

bool pass_fuse(Graph *g, PassCtx *c) {
  uint32_t n = g->n_nodes + 1;
  Fuser f = {g, calloc(n, sizeof(int32_t)), calloc(n, sizeof(bool)), calloc(n, sizeof(bool)),
             calloc(n, sizeof(DType)), calloc(n, sizeof(uint32_t))};
  bool ok = f.group && f.ext_used && f.has_mm && f.dtype && f.size;
  if (ok)
    fuse_run(&f);
  else
    diag_error(c->diag, (SrcLoc){0}, "out of memory while fusing '%s'", g->name);
  free(f.group);
  free(f.ext_used);
  free(f.has_mm);
  free(f.dtype);
  free(f.size);
  g->workspace_bytes = -1;
  return ok;
}
