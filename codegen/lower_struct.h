/* codegen/lower_struct.h — lowerings of the issue-4 structural ops (lower_struct.c), named in
 * the lower column of ir/ops.def and collected into the table by lower.c. Private to codegen/.
 */
#ifndef LATHE_CODEGEN_LOWER_STRUCT_H
#define LATHE_CODEGEN_LOWER_STRUCT_H

#include "loops.h"

bool lower_where(CgFunc *f, NodeId id);
bool lower_slice(CgFunc *f, NodeId id);
bool lower_unslice(CgFunc *f, NodeId id);
bool lower_gather(CgFunc *f, NodeId id);
bool lower_scatter_add(CgFunc *f, NodeId id);
bool lower_random(CgFunc *f, NodeId id);
bool lower_dropout(CgFunc *f, NodeId id);

#endif
