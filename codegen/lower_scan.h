/* codegen/lower_scan.h — lowerings of the recurrence ops (codegen/lower_scan.c), named in the
 * lower column of ir/ops.def and included by lower.c for its table. Private to codegen/. */
#ifndef LATHE_CODEGEN_LOWER_SCAN_H
#define LATHE_CODEGEN_LOWER_SCAN_H

#include "loops.h"

bool lower_scan(CgFunc *f, NodeId id);
bool lower_scan_arg(CgFunc *f, NodeId id);
bool lower_pack(CgFunc *f, NodeId id);
bool lower_unpack(CgFunc *f, NodeId id);

#endif
