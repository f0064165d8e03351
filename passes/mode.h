/* passes/mode.h — training vs inference entries (mode.c). Private to passes/. */
#ifndef LATHE_PASSES_MODE_H
#define LATHE_PASSES_MODE_H

#include "passes.h"

/* Replaces every TRAIN_SELECT of g by its first input (train) or its second (inference);
 * the selects become dead (dce removes them). False (reported) when out of memory. */
bool passes_resolve_mode(Graph *g, bool train, PassCtx *c);

#endif
