/* passes/memplan.c — workspace memory planning: pass_memplan.
 *
 * Requires: a verified graph after DCE, in final kernel order (node order is execution order:
 *           codegen emits one kernel per node, in id order).
 * Does:     gives every intermediate that needs a buffer a byte offset (node->offset) in one
 *           workspace arena and sets g->workspace_bytes to the arena's peak size. Offsets and
 *           sizes are multiples of 64 bytes (the caller passes a 64-byte aligned workspace).
 * Invalidates: nothing; any pass that adds, removes or reorders nodes invalidates the plan.
 *
 * Which nodes get a buffer (codegen relies on exactly these rules):
 *   - INPUT/PARAM/STATE live in the caller's arrays and CONST nodes are literals or static
 *     tables in the generated file: no buffer, offset -1.
 *   - RESHAPE aliases its input (same bytes in C order): it shares the buffer of its storage
 *     root (the first non-RESHAPE node up the chain) and gets the root's offset (or -1).
 *   - A computed node (not one of the above) that is the value of an OUT_VALUE or OUT_GRAD
 *     output is written directly into the caller's output array: no buffer, offset -1.
 *     (If several such outputs share the node, codegen copies it from the first one.)
 *   - Everything else, including loss values and parameter/state updates (which codegen copies
 *     into params/state only after every kernel ran), gets a buffer.
 * Liveness is over node order: a buffer is live from its defining node to the last node that
 * reads it or any RESHAPE alias of it; outputs stay live to the end. A node's buffer is
 * allocated before the buffers of its dead inputs are released, so a kernel never writes
 * over an input it is still reading. Free space is reused best-fit, coalescing neighbours.
 */
#include "passes.h"

#include <stdlib.h>
#include <string.h>

enum { MEMPLAN_ALIGN = 64 };

typedef struct Block {
  int64_t offset, size;
} Block;

typedef struct Planner {
  Block *free_list; /* sorted by offset, never adjacent (coalesced) */
  int n_free;
  int64_t top; /* high-water mark: the arena size so far */
} Planner;

static bool is_source_or_const(OpKind op) {
  return op == OP_INPUT || op == OP_PARAM || op == OP_STATE || op == OP_CONST;
}

static bool is_direct_output(const Graph *g, NodeId id) {
  OpKind op = g->nodes[id].op;
  if (is_source_or_const(op) || op == OP_RESHAPE) return false;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    if (o->node == id && (o->kind == OUT_VALUE || o->kind == OUT_GRAD)) return true;
  }
  return false;
}

static int64_t align_up(int64_t n) {
  return (n + MEMPLAN_ALIGN - 1) / MEMPLAN_ALIGN * MEMPLAN_ALIGN;
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

/* root[i]: the node whose bytes i uses; last[r]: the last node reading root r (n_nodes when
 * r feeds an output). */
static void compute_liveness(const Graph *g, NodeId *root, uint32_t *last) {
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    root[id] = n->op == OP_RESHAPE ? root[n->in[0]] : id;
    last[id] = id;
    for (int k = 0; k < n->n_in; k++)
      last[root[n->in[k]]] = id;
  }
  for (int i = 0; i < g->n_outputs; i++)
    last[root[g->outputs[i].node]] = g->n_nodes;
}

/* The allocation sweep; `dying` threads roots by their last use (head[u] .. next[r]). */
static void plan(Graph *g, const NodeId *root, const uint32_t *last, uint32_t *head, uint32_t *next,
                 Planner *p) {
  uint32_t n = g->n_nodes;
  for (uint32_t i = 0; i <= n; i++)
    head[i] = IR_NONE;
  for (uint32_t id = 0; id < n; id++) {
    Node *node = &g->nodes[id];
    node->offset = -1;
    if (root[id] != id) {
      node->offset = g->nodes[root[id]].offset;
    } else if (!is_source_or_const(node->op) && !is_direct_output(g, id)) {
      int64_t size = align_up(shape_numel(&node->shape) * (int64_t)dtype_size(node->dtype));
      node->offset = planner_alloc(p, size);
      next[id] = head[last[id]];
      head[last[id]] = id;
    }
    for (uint32_t r = head[id]; r != IR_NONE; r = next[r]) {
      const Node *dead = &g->nodes[r];
      planner_free(p, dead->offset,
                   align_up(shape_numel(&dead->shape) * (int64_t)dtype_size(dead->dtype)));
    }
  }
}

bool pass_memplan(Graph *g, PassCtx *c) {
  uint32_t n = g->n_nodes;
  NodeId *root = malloc((n + 1) * sizeof *root);
  uint32_t *last = malloc((n + 1) * sizeof *last);
  uint32_t *head = malloc((n + 1) * sizeof *head);
  uint32_t *next = malloc((n + 1) * sizeof *next);
  Planner p = {malloc((n + 1) * sizeof(Block)), 0, 0};
  bool ok = root && last && head && next && p.free_list;
  if (ok) {
    compute_liveness(g, root, last);
    plan(g, root, last, head, next, &p);
    g->workspace_bytes = p.top;
  } else {
    diag_error(c->diag, (SrcLoc){0}, "out of memory while planning the workspace of '%s'", g->name);
  }
  free(root);
  free(last);
  free(head);
  free(next);
  free(p.free_list);
  return ok;
}
