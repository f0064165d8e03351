/* passes/vjp_scan.h — the recurrence ops in passes/ (private): VJP rules (vjp_scan.c), named
 * in the vjp column of ir/ops.def and included by vjp.c for its rule table, and the planning
 * of scan bodies' buffers (memplan_scan.c), called at the end of pass_memplan. */
#ifndef LATHE_PASSES_VJP_SCAN_H
#define LATHE_PASSES_VJP_SCAN_H

#include "autodiff_internal.h"

bool vjp_scan(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_pack(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_unpack(AdCtx *a, const Node *n, NodeId id, NodeId gy);

/* Gives the buffers of every scan body reachable from g's SCAN nodes offsets past g's planned
 * workspace (bodies run one at a time, so they share that region) and grows
 * g->workspace_bytes to cover it. See memplan_scan.c for which body nodes get a buffer. */
bool memplan_scan_bodies(Graph *g, PassCtx *c);

#endif
