/* passes/kernels.c — the kernel schedule: graph_fill_kernels, graph_fill_stored,
 * graph_fill_buffers (analyses, declared in passes.h).
 *
 * A kernel is a fusion group (every node with the same Node.group >= 0) or a single ungrouped
 * node that computes something. A group runs where its last member (highest id) is, which
 * fuse.c guarantees is after every producer it reads and before every consumer of its stored
 * members; so ordering kernels by their last member's id is a topological order, and it is the
 * order codegen emits them in. These analyses only read the graph.
 */
#include "passes.h"

#include <stdlib.h>

bool graph_op_is_view(OpKind op) {
  return op == OP_INPUT || op == OP_PARAM || op == OP_STATE || op == OP_CONST || op == OP_RESHAPE;
}

int32_t graph_fill_kernels(const Graph *g, int32_t *kernel_of) {
  uint32_t n = g->n_nodes;
  /* last[grp]: the last member of group grp (group ids are node ids); index[x]: kernel */
  uint32_t *last = malloc((n + 1) * sizeof *last);
  int32_t *index = malloc((n + 1) * sizeof *index);
  if (!last || !index) {
    free(last);
    free(index);
    return -1;
  }
  for (uint32_t id = 0; id < n; id++) {
    last[id] = IR_NONE;
    index[id] = -1;
  }
  for (uint32_t id = 0; id < n; id++) {
    int32_t grp = g->nodes[id].group;
    if (grp >= 0 && (uint32_t)grp < n) last[grp] = id;
  }
  int32_t count = 0;
  for (uint32_t id = 0; id < n; id++) { /* a group is numbered at its last member */
    const Node *nd = &g->nodes[id];
    if (graph_op_is_view(nd->op)) continue;
    if (nd->group < 0 || (uint32_t)nd->group >= n)
      index[id] = count++;
    else if (last[nd->group] == id)
      index[nd->group] = count++;
  }
  for (uint32_t id = 0; id < n; id++) {
    const Node *nd = &g->nodes[id];
    if (graph_op_is_view(nd->op))
      kernel_of[id] = -1;
    else if (nd->group < 0 || (uint32_t)nd->group >= n)
      kernel_of[id] = index[id];
    else
      kernel_of[id] = index[nd->group];
  }
  free(last);
  free(index);
  return count;
}

void graph_fill_stored(const Graph *g, bool *stored) {
  for (uint32_t id = 0; id < g->n_nodes; id++)
    stored[id] = g->nodes[id].group < 0;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    for (int k = 0; k < n->n_in; k++) {
      const Node *in = &g->nodes[n->in[k]];
      if (in->group < 0 || in->group != n->group) stored[n->in[k]] = true;
    }
  }
  for (int i = 0; i < g->n_outputs; i++)
    stored[g->outputs[i].node] = true;
}

/* n's buffer: bytes_n * n + bytes, as passes/memplan.c sizes it */
static PlanBuffer plan_buffer(const Graph *g, NodeId id, int32_t kernel) {
  const Node *n = &g->nodes[id];
  int64_t elems = shape_numel(&n->shape), max = g->module ? g->module->dyn_max : 0;
  bool dyn = n->shape.dyn > 0 && max > 0;
  int64_t b = ir_workspace_align((dyn ? elems / max : elems) * (int64_t)dtype_size(n->dtype));
  return (PlanBuffer){.node = id,
                      .bytes = dyn ? 0 : b,
                      .bytes_n = dyn ? b : 0,
                      .offset = n->offset,
                      .offset_n = n->offset_n,
                      .first = kernel,
                      .last = kernel};
}

/* The storage root of id: the first node up a RESHAPE chain. */
static NodeId storage_root(const Graph *g, NodeId id) {
  while (g->nodes[id].op == OP_RESHAPE)
    id = g->nodes[id].in[0];
  return id;
}

int graph_fill_buffers(const Graph *g, PlanBuffer *out, int64_t *total_bytes) {
  uint32_t n = g->n_nodes;
  int32_t *kernel_of = malloc((n + 1) * sizeof *kernel_of);
  int32_t *slot = malloc((n + 1) * sizeof *slot);
  int32_t n_kernels = kernel_of ? graph_fill_kernels(g, kernel_of) : -1;
  if (n_kernels < 0 || !slot) {
    free(kernel_of);
    free(slot);
    return -1;
  }
  int count = 0;
  int64_t total = 0;
  for (uint32_t id = 0; id < n; id++) {
    const Node *nd = &g->nodes[id];
    slot[id] = -1;
    if (graph_op_is_view(nd->op) || nd->offset < 0) continue;
    slot[id] = count;
    out[count] = plan_buffer(g, id, kernel_of[id]);
    total += out[count].bytes + out[count].bytes_n * (g->module ? g->module->dyn_max : 0);
    count++;
  }
  for (uint32_t id = 0; id < n; id++) {
    const Node *nd = &g->nodes[id];
    for (int k = 0; k < nd->n_in; k++) {
      int32_t s = slot[storage_root(g, nd->in[k])];
      if (s >= 0 && kernel_of[id] > out[s].last) out[s].last = kernel_of[id];
    }
  }
  for (int i = 0; i < g->n_outputs; i++) {
    int32_t s = slot[storage_root(g, g->outputs[i].node)];
    if (s >= 0) out[s].last = n_kernels;
  }
  if (total_bytes) *total_bytes = total;
  free(kernel_of);
  free(slot);
  return count;
}
