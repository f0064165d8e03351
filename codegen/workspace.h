/* codegen/workspace.h — the workspace an entry needs beyond its memory plan (workspace.c;
 * private to codegen/).
 *
 * Layout of an entry's workspace, each region aligned to LATHE_WORKSPACE_ALIGN:
 *   [0, Graph.workspace_bytes)           the memory plan (passes/memplan.c)
 *   [cg_scratch_base, + kernel scratch)  one scratch region all GEMMs and convolutions share
 *                                        (kernels run one at a time): the largest one needs
 *   [cg_scan_pack_base, ...)             the operands a scan's body GEMMs take pre-packed,
 *                                        nested scans above their parent's
 * Every workspace size codegen publishes (the header's enum, the descriptor, the plan
 * comment) is cg_workspace_bytes.
 */
#ifndef LATHE_CODEGEN_WORKSPACE_H
#define LATHE_CODEGEN_WORKSPACE_H

#include "loops.h"

/* the bytes a convolution (any algorithm, as cg_conv_algo picks it) needs from the scratch
 * region's start, without (plain) and with the staging buffer that a fused conv2d off the
 * direct path computes into before its epilogue (lower_conv.c, cg_conv_lower_fused) */
int64_t cg_conv_plain_scratch(const Graph *g, NodeId id, const CgOptions *o);
int64_t cg_conv_scratch(const Graph *g, NodeId id, const CgOptions *o);
/* where the pre-packed operands of g's scans start: above the largest kernel scratch */
int64_t cg_scan_pack_base(const Graph *g, const CgOptions *o);
/* the workspace an entry needs: the memory plan, the GEMM and convolution scratch, and the
 * operands its scans pre-pack */
int64_t cg_workspace_bytes(const Graph *g, const CgOptions *o);

#endif
