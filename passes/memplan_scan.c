/* passes/memplan_scan.c — workspace buffers of scan bodies (memplan_scan_bodies).
 *
 * Scan bodies are not fused or planned by pass_memplan; their nodes get fixed, non-overlapping
 * buffers (no reuse: a body is one step, small next to the sequence) in a region that starts
 * at the parent's planned top. All bodies share that region: scans run one after the other.
 * Body node offsets are absolute workspace offsets. Which body nodes get a buffer:
 *   - SCAN_ARG of a carry or a sequence: the carry's current value / the step's slice; every
 *     SCAN_ARG of the same index shares the first one's buffer;
 *   - captured SCAN_ARGs read the scan's input where it lives; CONST and RESHAPE need none
 *     (literal/table, alias); neither does a member of a fused group (pass_fuse fuses bodies
 *     too) that is not stored (graph_fill_stored: read only inside its kernel, not a body
 *     output): it lives in a register; every other node gets one.
 * Each body's kernel schedule is stored as pass_memplan stores the parent's (Node.kernel,
 * Graph.n_kernels), without the SCAN_ARGs (the scan fills their buffers around the body).
 * In a module with a run-time batch the region starts above the parent's two pools, at
 * g->workspace_bytes_n * n + (static top), and has two parts like the parent's plan: first the
 * batch-sized body buffers (Shape.dyn), each at its bytes per unit of n rounded up to the
 * alignment, then, past the largest such part of any body, the static ones. A body buffer is
 * then at offset_n * n + offset, and the region is (most per-n bytes) * n + (most static
 * bytes): the workspace grows by both.
 * body->workspace_bytes(_n) is then set to the parent's whole workspace size: what follows it is
 * scratch that kernels may use (codegen's GEMM packing, codegen/gemm.c), so kernels lowered
 * inside a body find their scratch past every planned buffer, as in the parent.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/scan.h"
#include "vjp_scan.h"

static int64_t scan_align(int64_t n) {
  return ir_workspace_align(n);
}

/* b's bytes in its part of the region: per unit of the batch when dynamic, else static */
static int64_t body_bytes(const Node *b) {
  int64_t per_n, fixed;
  scan_affine(&b->shape, &per_n, &fixed);
  return scan_align((b->shape.dyn ? per_n : fixed) * (int64_t)dtype_size(b->dtype));
}

/* whether body node b has a buffer of its own (else: none, or its first SCAN_ARG's, *first);
 * stored: graph_fill_stored of the body */
static bool body_buffer(const Node *scan, const Graph *body, NodeId id, const bool *stored,
                        NodeId *first) {
  const Node *b = graph_node(body, id);
  *first = id;
  if (b->op == OP_CONST || b->op == OP_RESHAPE) return false;
  if (b->op != OP_SCAN_ARG) return stored[id];
  if (scan_input_kind(scan, b->attr.scan_arg.index) == 2) return false;
  for (NodeId j = 0; j < id && *first == id; j++) {
    const Node *o = graph_node(body, j);
    if (o->op == OP_SCAN_ARG && o->attr.scan_arg.index == b->attr.scan_arg.index) *first = j;
  }
  return *first == id;
}

/* Places the body's buffers of one part (dynamic: per unit of n at base_n, else static at
 * base) one after the other; returns the part's size. */
static int64_t plan_body(const Node *scan, Graph *body, const bool *stored, bool dynamic,
                         int64_t base_n, int64_t base) {
  int64_t used = 0;
  for (NodeId id = 0; id < body->n_nodes; id++) {
    Node *b = graph_node(body, id);
    NodeId first;
    if (!body_buffer(scan, body, id, stored, &first)) {
      if (first != id) {
        b->offset = graph_node(body, first)->offset;
        b->offset_n = graph_node(body, first)->offset_n;
      }
      continue;
    }
    if ((b->shape.dyn > 0) != dynamic) continue;
    b->offset_n = dynamic ? base_n + used : base_n;
    b->offset = base + (dynamic ? 0 : used);
    used += body_bytes(b);
  }
  return used;
}

/* The body's kernel schedule (Node.kernel, Graph.n_kernels; passes/kernels.c) with its
 * SCAN_ARGs taken out: their buffers are filled by the scan around the body, so they are no
 * kernels (codegen/lower_scan.c walks the rest in this order). Fills stored
 * (graph_fill_stored). False when out of memory. */
static bool body_schedule(Graph *body, bool *stored) {
  uint32_t n = body->n_nodes + 1;
  int32_t *kernel_of = malloc(n * sizeof *kernel_of), *renumber = malloc(n * sizeof *renumber);
  int32_t n_kernels = kernel_of && renumber ? graph_fill_kernels(body, kernel_of) : -1;
  if (n_kernels < 0) {
    free(kernel_of);
    free(renumber);
    return false;
  }
  for (int32_t k = 0; k < n_kernels; k++)
    renumber[k] = 0;
  for (NodeId id = 0; id < body->n_nodes; id++) /* renumber[k]: 1 when kernel k is a SCAN_ARG */
    if (graph_node(body, id)->op == OP_SCAN_ARG && kernel_of[id] >= 0) renumber[kernel_of[id]] = 1;
  int32_t kept = 0;
  for (int32_t k = 0; k < n_kernels; k++)
    renumber[k] = renumber[k] ? -1 : kept++;
  for (NodeId id = 0; id < body->n_nodes; id++)
    graph_node(body, id)->kernel = kernel_of[id] < 0 ? -1 : renumber[kernel_of[id]];
  body->n_kernels = kept;
  graph_fill_stored(body, stored);
  free(kernel_of);
  free(renumber);
  return true;
}

/* Schedules and plans every body of g; false when out of memory. */
static bool plan_bodies(Graph *g, int64_t base, int64_t most[2], bool *any) {
  for (int dynamic = 1; dynamic >= 0; dynamic--) { /* the per-n part first: see the head */
    for (NodeId id = 0; id < g->n_nodes; id++) {
      const Node *n = graph_node(g, id);
      Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
      if (!body) continue;
      bool *stored = malloc((body->n_nodes + 1) * sizeof *stored);
      if (!stored || !body_schedule(body, stored)) {
        free(stored);
        return false;
      }
      if (dynamic)
        for (NodeId b = 0; b < body->n_nodes; b++)
          graph_node(body, b)->offset = -1;
      int64_t used = plan_body(n, body, stored, dynamic,
                               g->workspace_bytes_n + (dynamic ? 0 : most[1]), base);
      most[dynamic] = used > most[dynamic] ? used : most[dynamic];
      *any = true;
      free(stored);
    }
  }
  return true;
}

bool memplan_scan_bodies(Graph *g, PassCtx *c) {
  int64_t base = scan_align(g->workspace_bytes > 0 ? g->workspace_bytes : 0), most[2] = {0, 0};
  bool any = false;
  if (!plan_bodies(g, base, most, &any)) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory while planning the scan bodies of '%s'",
               g->name);
    return false;
  }
  if (!any) return true;
  g->workspace_bytes = base + most[0];
  g->workspace_bytes_n += most[1];
  for (NodeId id = 0; id < g->n_nodes; id++) { /* see the header comment */
    const Node *n = graph_node(g, id);
    Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
    if (body) body->workspace_bytes = g->workspace_bytes;
    if (body) body->workspace_bytes_n = g->workspace_bytes_n;
  }
  return true;
}
