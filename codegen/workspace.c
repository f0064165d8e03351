/* codegen/workspace.c — how many bytes an entry's workspace needs beyond its memory plan:
 * the kernels' shared scratch region and the operands its scans pre-pack (workspace.h has the
 * layout). Each kernel of the library reports its own need (cg_gemm_scratch,
 * cg_conv_gemm_scratch, cg_conv_direct_scratch, cg_gemm_pack_bytes); this file takes the
 * largest, so the lowerings and the published sizes agree by construction.
 */
#include "workspace.h"

#include "conv.h"
#include "ir/scan.h"
#include "quant_gemm.h"

int64_t cg_conv_plain_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  switch (cg_conv_algo(g, id, o)) {
  case IR_CONV_ALGO_DIRECT:
  case IR_CONV_ALGO_WINOGRAD:
    return cg_conv_direct_scratch(g, id, o);
  case IR_CONV_ALGO_GEMM:
    return cg_conv_gemm_scratch(g, id, o);
  default:
    return 0;
  }
}

int64_t cg_conv_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  int64_t plain = cg_conv_plain_scratch(g, id, o);
  IrConvAlgo a = cg_conv_algo(g, id, o);
  if (n->op == OP_CONV2D && n->group >= 0 && a != IR_CONV_ALGO_DIRECT && a != IR_CONV_ALGO_WINOGRAD)
    plain += ir_workspace_align(shape_numel(&n->shape) * (int64_t)dtype_size(n->dtype));
  return plain; /* a fused conv off the direct path: its staging buffer after the scratch */
}

/* the largest scratch of g's GEMMs and convolutions, scan bodies included (they run inside g) */
static int64_t kernel_scratch(const Graph *g, const CgOptions *o) {
  int64_t scratch = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    OpKind op = graph_node(g, id)->op;
    int64_t bytes = op == OP_MATMUL    ? cg_gemm_scratch(g, id, o)
                    : op == OP_QCONV2D ? cg_qgemm_scratch(g, id, o)
                                       : cg_conv_scratch(g, id, o);
    if (bytes > scratch) scratch = bytes;
  }
  for (int i = 0; i < g->n_subgraphs; i++) {
    int64_t sub = kernel_scratch(g->subgraphs[i], o);
    if (sub > scratch) scratch = sub;
  }
  return scratch;
}

static int64_t scan_packs(const Graph *g, const CgOptions *o);

/* the pre-packed bytes scan node `scan` of g needs while its loop runs (its body's nested
 * scans pack theirs above them) */
static int64_t scan_pack_bytes(const Graph *g, NodeId scan, const CgOptions *o) {
  const Node *n = graph_node(g, scan);
  const Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
  if (!body) return 0;
  int64_t bytes = 0;
  for (NodeId b = 0; b < body->n_nodes; b++)
    for (int j = 0; j < 2; j++)
      bytes += cg_gemm_pack_bytes(n, body, b, j, o);
  return bytes + scan_packs(body, o);
}

/* the most pre-packed bytes of g's scans (they run one at a time) */
static int64_t scan_packs(const Graph *g, const CgOptions *o) {
  int64_t most = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    int64_t bytes = scan_pack_bytes(g, id, o);
    if (bytes > most) most = bytes;
  }
  return most;
}

int64_t cg_scan_pack_base(const Graph *g, const CgOptions *o) {
  return cg_scratch_base(g) + ir_workspace_align(kernel_scratch(g, o));
}

int64_t cg_workspace_bytes(const Graph *g, const CgOptions *o) {
  int64_t scratch = kernel_scratch(g, o);
  return scratch ? cg_scan_pack_base(g, o) + scan_packs(g, o) : g->workspace_bytes;
}
