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

#endif
