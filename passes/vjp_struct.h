/* passes/vjp_struct.h — VJP rules of the issue-4 structural ops (vjp_struct.c), named in the
 * vjp column of ir/ops.def and collected into the rule table by vjp.c. Private to passes/. */
#ifndef LATHE_PASSES_VJP_STRUCT_H
#define LATHE_PASSES_VJP_STRUCT_H

#include "autodiff_internal.h"

bool vjp_erf(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_where(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_slice(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_unslice(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_gather(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_scatter_add(AdCtx *a, const Node *n, NodeId id, NodeId gy);
bool vjp_dropout(AdCtx *a, const Node *n, NodeId id, NodeId gy);

#endif
