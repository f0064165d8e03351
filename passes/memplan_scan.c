/* passes/memplan_scan.c — workspace buffers of scan bodies (memplan_scan_bodies).
 *
 * Scan bodies are not fused or planned by pass_memplan; their nodes get fixed, non-overlapping
 * buffers (no reuse: a body is one step, small next to the sequence) in a region that starts
 * at the parent's planned top. All bodies share that region: scans run one after the other.
 * Body node offsets are absolute workspace offsets. Which body nodes get a buffer:
 *   - SCAN_ARG of a carry or a sequence: the carry's current value / the step's slice; every
 *     SCAN_ARG of the same index shares the first one's buffer;
 *   - captured SCAN_ARGs read the scan's input where it lives; CONST and RESHAPE need none
 *     (literal/table, alias); every other node gets one.
 * In a module with a run-time batch the region starts above the parent's two pools, at
 * g->workspace_bytes_n * n + (static top), and holds each body buffer at its size at the bound
 * (Node.offset_n = g->workspace_bytes_n for every body buffer).
 * body->workspace_bytes(_n) is then set to the parent's whole workspace size: what follows it is
 * scratch that kernels may use (codegen's GEMM packing, codegen/gemm.c), so kernels lowered
 * inside a body find their scratch past every planned buffer, as in the parent.
 */
#include <string.h>

#include "ir/scan.h"
#include "vjp_scan.h"

static int64_t scan_align(int64_t n) {
  return ir_workspace_align(n);
}

static int64_t plan_body(const Node *scan, Graph *body, int64_t base_n, int64_t base) {
  int64_t used = 0;
  for (NodeId id = 0; id < body->n_nodes; id++) {
    Node *b = graph_node(body, id);
    b->offset = -1;
    b->offset_n = base_n;
    if (b->op == OP_CONST || b->op == OP_RESHAPE) continue;
    if (b->op == OP_SCAN_ARG) {
      if (scan_input_kind(scan, b->attr.scan_arg.index) == 2) continue;
      NodeId first = id;
      for (NodeId j = 0; j < id && first == id; j++) {
        const Node *o = graph_node(body, j);
        if (o->op == OP_SCAN_ARG && o->attr.scan_arg.index == b->attr.scan_arg.index) first = j;
      }
      if (first != id) {
        b->offset = graph_node(body, first)->offset;
        continue;
      }
    }
    b->offset = base + used;
    used += scan_align(shape_numel(&b->shape) * (int64_t)dtype_size(b->dtype));
  }
  body->workspace_bytes = used;
  return used;
}

bool memplan_scan_bodies(Graph *g, PassCtx *c) {
  int64_t base = scan_align(g->workspace_bytes > 0 ? g->workspace_bytes : 0), most = 0;
  bool any = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
    if (!body) continue;
    int64_t used = plan_body(n, body, g->workspace_bytes_n, base);
    most = used > most ? used : most;
    any = true;
  }
  if (!any) return true;
  g->workspace_bytes = base + most;
  for (NodeId id = 0; id < g->n_nodes; id++) { /* see the header comment */
    const Node *n = graph_node(g, id);
    Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
    if (body) body->workspace_bytes = g->workspace_bytes;
    if (body) body->workspace_bytes_n = g->workspace_bytes_n;
  }
  (void)c;
  return true;
}
