/* codegen/lower_reduce.h — the reductions (lower_reduce.c), named in the lower column of
 * ir/ops.def and collected into the table by lower.c. Private to codegen/. */
#ifndef LATHE_CODEGEN_LOWER_REDUCE_H
#define LATHE_CODEGEN_LOWER_REDUCE_H

#include "loops.h"

/* SUM, MEAN and MAX of one node */
bool lower_reduce(CgFunc *f, NodeId id);

#endif
