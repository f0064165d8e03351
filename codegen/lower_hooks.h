/* codegen/lower_hooks.h — the per-op lowerings: the lower column of ir/ops.def, whose
 * prototypes are generated here from it (private to codegen/).
 *
 * Each lowering emits the C of one node (f->val of its inputs set; see lower.c's invariant)
 * and returns false, with a diagnostic, on what it cannot lower. The op table of lower.c
 * (cg_lower_node) is generated from the same column. The hooks are defined by lower.c (the
 * elementwise ops, sources, constants, reshape, transpose, one_hot, matmul, softmax),
 * lower_reduce.c, lower_scan.c, lower_struct.c and lower_conv.c; each includes this header so
 * that its definitions are checked against the column. scripts/check-deps.py counts the
 * table's include of this header as a dependency on every file that defines a hook.
 */
#ifndef LATHE_CODEGEN_LOWER_HOOKS_H
#define LATHE_CODEGEN_LOWER_HOOKS_H

#include "loops.h"

#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower) bool lower(CgFunc *f, NodeId id);
#include "ir/ops.def"
#undef OP

#endif
