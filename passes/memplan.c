/* passes/memplan.c — workspace memory planning: pass_memplan.
 *
 * Requires: a verified graph after DCE (and after fusion, if it runs): the kernel schedule of
 *           passes/kernels.c is final.
 * Does:     gives every value that crosses a kernel boundary a byte offset in one workspace
 *           arena and sets the arena's peak size. Offsets and sizes are multiples of 64 bytes
 *           (the caller passes a 64-byte aligned workspace) for every run-time batch n.
 *           A module with a run-time batch (docs/dynamic-batch.md) plans two pools with the
 *           same rules: the buffers whose shape is dynamic (Shape.dyn) in bytes per unit of n,
 *           each size rounded up to 64 bytes, from byte 0; the static buffers after them. A
 *           buffer starts at byte node->offset_n * n + node->offset: a dynamic one at
 *           (its per-n offset) * n + 0, a static one at A * n + (its offset), where A =
 *           g->workspace_bytes_n is the first pool's peak; the arena is
 *           g->workspace_bytes_n * n + g->workspace_bytes bytes. A static module has A = 0
 *           and offset_n = 0 everywhere, so its plan is what one pool gives. Stores the
 *           kernel schedule it planned over (Node.kernel, g->n_kernels) for codegen, which
 *           emits and numbers kernels in that order.
 * Invalidates: nothing; any pass that adds, removes, reorders or regroups nodes invalidates it.
 *
 * Which nodes get a buffer (codegen relies on exactly these rules):
 *   - INPUT/PARAM/STATE live in the caller's arrays and CONST nodes are literals or static
 *     tables in the generated file: no buffer, offset -1.
 *   - RESHAPE aliases its input (same bytes in C order): it shares the buffer of its storage
 *     root (the first non-RESHAPE node up the chain) and gets the root's offset (or -1).
 *   - A member of a fused group that is not stored (graph_fill_stored: read only inside its
 *     kernel, not an output) lives in a register: no buffer, offset -1.
 *   - A computed node (not one of the above) that is the value of an OUT_VALUE or OUT_GRAD
 *     output is written directly into the caller's output array: no buffer, offset -1.
 *     (If several such outputs share the node, codegen copies it from the first one.)
 *   - A parameter/state update that is the node of exactly one output and whose kernel runs
 *     after every other kernel reading the old value (and, if it reads it too, reads it
 *     elementwise at the update's shape) is written straight into the param/state: no
 *     buffer, offset -1 (codegen: update_storage in c_backend.c). An elementwise kernel, or
 *     a WRITE_AT whose x is the old value (its copy of x is then left out: a KV cache row
 *     costs one row).
 *   - Everything else, including loss values and the other parameter/state updates (which
 *     codegen copies into params/state only after every kernel ran), gets a buffer.
 * Liveness is over the kernel schedule: a buffer is live from the kernel that writes it to the
 * last kernel that reads it or any RESHAPE alias of it; outputs stay live to the end. A
 * kernel's buffers are allocated before the buffers of its dying inputs are released, so a
 * kernel never writes over an input it is still reading — except in place: an elementwise
 * output (codegen stores an element after all loads of that element) may take the buffer of a
 * same-sized input that dies in its kernel, when every read of that input in the kernel is by
 * an elementwise member at the output's shape (so not by a matmul's operands). Free space is
 * reused best-fit, coalescing neighbours.
 */
#include "passes.h"
#include "vjp_scan.h"

#include <stdlib.h>
#include <string.h>

typedef struct Block {
  int64_t offset, size;
} Block;

/* One pool of the plan: static bytes, or bytes per unit of the run-time batch. */
typedef struct Planner {
  Block *free_list; /* sorted by offset, never adjacent (coalesced) */
  int n_free;
  int64_t top; /* high-water mark: the arena size so far */
} Planner;

static bool is_direct_output(const Graph *g, NodeId id) {
  OpKind op = g->nodes[id].op;
  if (graph_op_is_view(op)) return false;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    if (o->node == id && (o->kind == OUT_VALUE || o->kind == OUT_GRAD)) return true;
  }
  return false;
}

static int64_t align_up(int64_t n) {
  return ir_workspace_align(n);
}

/* Best fit: the smallest free block that holds `size`; else grow the arena (extending a free
 * block that ends at the top, if any). */
static int64_t planner_alloc(Planner *p, int64_t size) {
  int best = -1;
  for (int i = 0; i < p->n_free; i++)
    if (p->free_list[i].size >= size &&
        (best < 0 || p->free_list[i].size < p->free_list[best].size))
      best = i;
  if (best >= 0) {
    Block *b = &p->free_list[best];
    int64_t off = b->offset;
    b->offset += size;
    b->size -= size;
    if (b->size == 0) {
      memmove(b, b + 1, (size_t)(p->n_free - best - 1) * sizeof *b);
      p->n_free--;
    }
    return off;
  }
  if (p->n_free > 0) {
    Block *last = &p->free_list[p->n_free - 1];
    if (last->offset + last->size == p->top) {
      int64_t off = last->offset;
      p->n_free--;
      p->top = off + size;
      return off;
    }
  }
  int64_t off = p->top;
  p->top += size;
  return off;
}

/* Returns [offset, offset + size) to the free list, merging with its neighbours. The list
 * has room for one block per node, so it never needs to grow. */
static void planner_free(Planner *p, int64_t offset, int64_t size) {
  int i = 0;
  while (i < p->n_free && p->free_list[i].offset < offset)
    i++;
  memmove(&p->free_list[i + 1], &p->free_list[i], (size_t)(p->n_free - i) * sizeof(Block));
  p->free_list[i] = (Block){offset, size};
  p->n_free++;
  if (i + 1 < p->n_free && offset + size == p->free_list[i + 1].offset) {
    p->free_list[i].size += p->free_list[i + 1].size;
    memmove(&p->free_list[i + 1], &p->free_list[i + 2],
            (size_t)(p->n_free - i - 2) * sizeof(Block));
    p->n_free--;
  }
  if (i > 0 && p->free_list[i - 1].offset + p->free_list[i - 1].size == offset) {
    p->free_list[i - 1].size += p->free_list[i].size;
    memmove(&p->free_list[i], &p->free_list[i + 1], (size_t)(p->n_free - i - 1) * sizeof(Block));
    p->n_free--;
  }
}

/* The schedule and liveness of one graph; arrays have n_nodes + 1 entries. */
typedef struct Plan {
  Graph *g;
  int32_t *kernel_of; /* graph_fill_kernels */
  int32_t n_kernels;
  bool *needs;       /* the node gets a workspace buffer of its own */
  bool *donated;     /* the root's buffer was handed to an in-place output */
  NodeId *root;      /* storage root (RESHAPE chains followed) */
  int32_t *last;     /* per root: last reading kernel (n_kernels: live to the end) */
  uint32_t *kmember; /* members of kernel k: kmember[kstart[k] .. kstart[k + 1]) */
  uint32_t *kstart;
  uint32_t *dying; /* roots dying in kernel k: dying[dstart[k] .. dstart[k + 1]) */
  uint32_t *dstart;
} Plan;

/* the pool node n of g is planned in: 1 = per unit of the run-time batch, 0 = static */
static int pool_of(const Graph *g, const Node *n) {
  return n->shape.dyn > 0 && g->module && g->module->dyn_max > 0;
}

/* n's size in its pool: static bytes, or bytes per unit of n (its value at the bound divided
 * by the bound, Module.dyn_max), each rounded up to the alignment */
static int64_t node_bytes(const Graph *g, const Node *n) {
  int64_t elems = shape_numel(&n->shape);
  if (pool_of(g, n)) elems /= g->module->dyn_max;
  return align_up(elems * (int64_t)dtype_size(n->dtype));
}

static bool is_elementwise(OpKind op) {
  return op == OP_BROADCAST || (ir_ops[op].fusion == FUSE_ELEMWISE && op != OP_CONST);
}

static void compute_liveness(Plan *p) {
  const Graph *g = p->g;
  bool *stored = p->donated; /* borrowed; cleared below */
  graph_fill_stored(g, stored);
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    p->root[id] = n->op == OP_RESHAPE ? p->root[n->in[0]] : id;
    p->last[id] = p->kernel_of[id];
    p->needs[id] = !graph_op_is_view(n->op) && stored[id] && !is_direct_output(g, id);
    for (int k = 0; k < n->n_in; k++) {
      NodeId r = p->root[n->in[k]];
      if (p->kernel_of[id] > p->last[r]) p->last[r] = p->kernel_of[id];
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    p->last[p->root[g->outputs[i].node]] = p->n_kernels;
  for (uint32_t id = 0; id < g->n_nodes; id++)
    stored[id] = false;
}

/* Buckets ids by key (counting sort): out[start[k] .. start[k + 1]) in id order. */
static void bucket(const Plan *p, const int32_t *key, bool (*take)(const Plan *, uint32_t),
                   uint32_t *out, uint32_t *start) {
  int32_t nk = p->n_kernels;
  for (int32_t k = 0; k <= nk + 1; k++)
    start[k] = 0;
  for (uint32_t id = 0; id < p->g->n_nodes; id++)
    if (take(p, id) && key[id] >= 0 && key[id] < nk) start[key[id] + 1]++;
  for (int32_t k = 0; k < nk; k++)
    start[k + 1] += start[k];
  uint32_t *fill = start + nk + 1; /* scratch cursor: start has n_kernels + 2 + n slots */
  for (int32_t k = 0; k < nk; k++)
    fill[k] = start[k];
  for (uint32_t id = 0; id < p->g->n_nodes; id++)
    if (take(p, id) && key[id] >= 0 && key[id] < nk) out[fill[key[id]]++] = id;
}

static bool take_member(const Plan *p, uint32_t id) {
  return p->kernel_of[id] >= 0;
}
static bool take_root(const Plan *p, uint32_t id) {
  return p->needs[id];
}

/* Whether kernel k reads the storage r (root r, or when r is IR_NONE any source (op, index))
 * only through elementwise members at shape s: element i only to compute element i. (In a
 * matmul kernel that means the epilogue, never the matmul's operands.) */
static bool reads_at_shape(const Plan *p, int32_t k, NodeId r, OpKind op, int32_t index,
                           const Shape *s) {
  for (uint32_t i = p->kstart[k]; i < p->kstart[k + 1]; i++) {
    const Node *m = &p->g->nodes[p->kmember[i]];
    for (int j = 0; j < m->n_in; j++) {
      NodeId x = p->root[m->in[j]];
      const Node *xn = &p->g->nodes[x];
      bool hit = r != IR_NONE ? x == r : xn->op == op && xn->attr.source.index == index;
      /* write_at copies its x element by element before writing its window (v is read) */
      bool at_shape = is_elementwise(m->op) || (m->op == OP_WRITE_AT && j == 0);
      if (hit && (!at_shape || !shape_equal(&p->g->nodes[m->in[j]].shape, s))) return false;
    }
  }
  return true;
}

/* whether every read kernel k makes of the param/state source (op, index) is by an
 * elementwise kernel at shape s, and no later kernel reads it */
static bool source_dies_in(const Plan *p, int32_t k, OpKind op, int32_t index, const Shape *s) {
  const Graph *g = p->g;
  bool read_here = false;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    for (int j = 0; j < n->n_in; j++) {
      const Node *src = &g->nodes[p->root[n->in[j]]];
      if (src->op != op || src->attr.source.index != index) continue;
      if (p->kernel_of[id] > k) return false;
      read_here |= p->kernel_of[id] == k;
    }
  }
  for (int i = 0; i < g->n_outputs; i++) { /* outputs are copied after every kernel */
    const Node *src = &g->nodes[p->root[g->outputs[i].node]];
    if (src->op == op && src->attr.source.index == index) return false;
  }
  return !read_here || reads_at_shape(p, k, IR_NONE, op, index, s);
}

/* An update output computed by a kernel after every other reader of its target is written
 * straight into the caller's param/state (codegen then skips the write-back): the node of
 * exactly one output, of kind OUT_PARAM_UPDATE or OUT_STATE_UPDATE. */
static bool update_in_place(const Plan *p, NodeId id) {
  const Graph *g = p->g;
  const GraphOutput *upd = NULL;
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].node != id) continue;
    if (upd) return false;
    upd = &g->outputs[i];
  }
  OpKind kind = g->nodes[id].op;
  if (!upd || (!is_elementwise(kind) && kind != OP_WRITE_AT) || p->kernel_of[id] < 0) return false;
  if (upd->kind != OUT_PARAM_UPDATE && upd->kind != OUT_STATE_UPDATE) return false;
  OpKind op = upd->kind == OUT_PARAM_UPDATE ? OP_PARAM : OP_STATE;
  return source_dies_in(p, p->kernel_of[id], op, upd->target, &g->nodes[id].shape);
}

/* A buffer output `id` of kernel k may take over in place, or IR_NONE. */
static NodeId inplace_donor(const Plan *p, int32_t k, NodeId id) {
  const Node *out = &p->g->nodes[id];
  if (!is_elementwise(out->op)) return IR_NONE; /* a matmul accumulates: never in place */
  for (uint32_t i = p->kstart[k]; i < p->kstart[k + 1]; i++) {
    const Node *m = &p->g->nodes[p->kmember[i]];
    for (int j = 0; j < m->n_in; j++) {
      NodeId r = p->root[m->in[j]];
      const Node *rn = &p->g->nodes[r];
      if (p->kernel_of[r] == k || !p->needs[r] || p->donated[r] || p->last[r] != k) continue;
      if (pool_of(p->g, rn) != pool_of(p->g, out) || node_bytes(p->g, rn) != node_bytes(p->g, out))
        continue;
      /* elements of one size only: a cast f64 -> f32 in place would overlap element i of
       * the output with element i / 2 of the input, whose stores (another C type) the
       * compiler may then move past the cast's under strict aliasing */
      if (dtype_size(rn->dtype) != dtype_size(out->dtype)) continue;
      if (reads_at_shape(p, k, r, OP_COUNT, -1, &out->shape)) return r;
    }
  }
  return IR_NONE;
}

/* The allocation sweep over kernels; pl[0] plans the static buffers, pl[1] the dynamic
 * ones (pool_of). Offsets are pool-relative until place_pools. */
static void plan_kernels(Plan *p, Planner *pl) {
  Graph *g = p->g;
  for (uint32_t id = 0; id < g->n_nodes; id++)
    g->nodes[id].offset = -1;
  for (int32_t k = 0; k < p->n_kernels; k++) {
    for (uint32_t i = p->kstart[k]; i < p->kstart[k + 1]; i++) {
      NodeId id = p->kmember[i];
      if (!p->needs[id]) continue;
      if (update_in_place(p, id)) { /* written into its param/state by codegen */
        p->needs[id] = false;
        continue;
      }
      NodeId donor = inplace_donor(p, k, id);
      if (donor != IR_NONE) {
        p->donated[donor] = true;
        g->nodes[id].offset = g->nodes[donor].offset;
      } else {
        const Node *n = &g->nodes[id];
        g->nodes[id].offset = planner_alloc(&pl[pool_of(g, n)], node_bytes(g, n));
      }
    }
    for (uint32_t i = p->dstart[k]; i < p->dstart[k + 1]; i++) {
      const Node *dead = &g->nodes[p->dying[i]];
      if (!p->donated[p->dying[i]])
        planner_free(&pl[pool_of(g, dead)], dead->offset, node_bytes(g, dead));
    }
  }
  for (uint32_t id = 0; id < g->n_nodes; id++)
    if (g->nodes[id].op == OP_RESHAPE) g->nodes[id].offset = g->nodes[p->root[id]].offset;
}

/* Turns pool-relative offsets into offset_n * n + offset: the dynamic pool from byte 0, the
 * static one after its peak (a RESHAPE follows its root's pool). */
static void place_pools(Plan *p, const Planner *pl) {
  Graph *g = p->g;
  g->workspace_bytes_n = pl[1].top;
  g->workspace_bytes = pl[0].top;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    Node *n = &g->nodes[id];
    n->offset_n = 0;
    if (n->offset < 0) continue;
    if (pool_of(g, &g->nodes[p->root[id]])) {
      n->offset_n = n->offset;
      n->offset = 0;
    } else {
      n->offset_n = pl[1].top;
    }
  }
}

bool pass_memplan(Graph *g, PassCtx *c) {
  uint32_t n = g->n_nodes + 1;
  Plan p = {.g = g};
  p.kernel_of = malloc(n * sizeof *p.kernel_of);
  p.needs = calloc(n, sizeof *p.needs);
  p.donated = calloc(n, sizeof *p.donated);
  p.root = malloc(n * sizeof *p.root);
  p.last = malloc(n * sizeof *p.last);
  p.kmember = malloc(n * sizeof *p.kmember);
  p.kstart = malloc(2 * (n + 2) * sizeof *p.kstart);
  p.dying = malloc(n * sizeof *p.dying);
  p.dstart = malloc(2 * (n + 2) * sizeof *p.dstart);
  Planner pl[2] = {{malloc(n * sizeof(Block)), 0, 0}, {malloc(n * sizeof(Block)), 0, 0}};
  bool ok = p.kernel_of && p.needs && p.donated && p.root && p.last && p.kmember && p.kstart &&
            p.dying && p.dstart && pl[0].free_list && pl[1].free_list;
  if (ok) p.n_kernels = graph_fill_kernels(g, p.kernel_of);
  ok = ok && p.n_kernels >= 0;
  if (ok) {
    compute_liveness(&p);
    bucket(&p, p.kernel_of, take_member, p.kmember, p.kstart);
    bucket(&p, p.last, take_root, p.dying, p.dstart);
    plan_kernels(&p, pl);
    place_pools(&p, pl);
    for (uint32_t id = 0; id < g->n_nodes; id++) /* the schedule codegen follows */
      g->nodes[id].kernel = p.kernel_of[id];
    g->n_kernels = p.n_kernels;
    ok = memplan_scan_bodies(g, c); /* scan bodies: past the top (memplan_scan.c) */
  } else {
    diag_error(c->diag, (SrcLoc){0}, "out of memory while planning the workspace of '%s'", g->name);
  }
  free(p.kernel_of);
  free(p.needs);
  free(p.donated);
  free(p.root);
  free(p.last);
  free(p.kmember);
  free(p.kstart);
  free(p.dying);
  free(p.dstart);
  free(pl[0].free_list);
  free(pl[1].free_list);
  return ok;
}
