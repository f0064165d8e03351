/* passes/vjp_scan.h — the recurrence ops in passes/ (private): the planning of scan bodies'
 * buffers (memplan_scan.c), called at the end of pass_memplan. The VJP rules of SCAN, PACK
 * and UNPACK (vjp_scan.c) are declared with every rule in autodiff_internal.h. */
#ifndef LATHE_PASSES_VJP_SCAN_H
#define LATHE_PASSES_VJP_SCAN_H

#include "autodiff_internal.h"

/* Gives the buffers of every scan body reachable from g's SCAN nodes offsets past g's planned
 * workspace (bodies run one at a time, so they share that region) and grows
 * g->workspace_bytes to cover it. See memplan_scan.c for which body nodes get a buffer. */
bool memplan_scan_bodies(Graph *g, PassCtx *c);

#endif
