/* codegen/lower_rows.h — row-wise fusion groups (lower_rows.c), called by the op table's group
 * driver (lower.c). Private to codegen/. */
#ifndef LATHE_CODEGEN_LOWER_ROWS_H
#define LATHE_CODEGEN_LOWER_ROWS_H

#include "loops.h"

/* Row-wise groups (passes/fuse.c): a group with a softmax, a reduction or a one-hot member is
 * lowered as one loop over rows, a few passes along each row. */
bool cg_rows_group(const Graph *g, const NodeId *members, int n_members);
bool cg_lower_rows(CgFunc *f, const NodeId *members, int n_members);

#endif
