/* codegen/lower.h — lowering one IR node to a C loop nest (private to codegen/).
 *
 * c_backend.c prepares a CgFunc for each entry graph: the storage of every node that needs
 * some (caller arrays, params/state fields, workspace pointers, output arguments), then calls
 * cg_lower_node in node order. Lowering fills in the values of CONST and RESHAPE nodes (a
 * literal, a static table, or an alias of the input) and emits each kernel, preceded by a
 * comment naming the node, its binding and source location.
 */
#ifndef LATHE_CODEGEN_LOWER_H
#define LATHE_CODEGEN_LOWER_H

#include "loops.h"

bool cg_lower_node(CgFunc *f, NodeId id);
/* One kernel for a fusion group (Node.group, passes/fuse.c): members in id order, all of one
 * shape (or a 2-D matmul and its epilogue of its output shape). Members with storage in f->val
 * are stored; the others live in registers. */
bool cg_lower_group(CgFunc *f, const NodeId *members, int n_members);

/* Called after kernel k is lowered (c_backend.c: the gradient buckets ready then). */
typedef void (*CgKernelHook)(CgFunc *f, int32_t kernel, void *ctx);

/* Lowers every kernel of f->g in the schedule memory planning stored (Node.kernel,
 * Graph.n_kernels; passes/kernels.c), in its order: kernel k once its last member is reached
 * (a group through cg_lower_group), a view (kernel -1: a source, constant or reshape, which
 * only names storage) where it stands; a scan body's SCAN_ARGs (kernel -1) are skipped, the
 * scan fills them (lower_scan.c). The same walk for an entry (c_backend.c) and for a scan's
 * step. False (internal error) when the graph has no schedule or the walk disagrees with it. */
bool cg_lower_kernels(CgFunc *f, CgKernelHook after, void *ctx);

#endif
