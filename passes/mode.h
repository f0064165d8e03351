/* passes/mode.h — training vs inference entries (mode.c). Private to passes/. */
#ifndef LATHE_PASSES_MODE_H
#define LATHE_PASSES_MODE_H

#include "passes.h"

/* true for the entries that run in training mode: "train", "train_<step>" and "grad" */
bool passes_is_training_entry(const char *name);
/* Replaces every TRAIN_SELECT of g by its first input (train) or its second (inference);
 * the selects become dead (dce removes them). False (reported) when out of memory. */
bool passes_resolve_mode(Graph *g, bool train, PassCtx *c);

#endif
