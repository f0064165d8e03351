/* passes/layout.h — the parts of pass_layout (private to passes/): layout.c (transposes into
 * matmul flags, the driver, a topological re-sort) and layout_bn.c (per-channel affine chains
 * after a convolution, batch norm in inference entries, folded into its weights). */
#ifndef LATHE_PASSES_LAYOUT_H
#define LATHE_PASSES_LAYOUT_H

#include "passes.h"

/* Folds every conv2d + per-channel affine chain; sets *changed. False on error (diagnosed). */
bool layout_fold_bn(Graph *g, PassCtx *c, bool *changed);
/* Re-sorts g's nodes topologically after nodes were appended (stable: nodes already in order
 * keep their relative order). False on a cycle (an internal error, diagnosed). */
bool layout_resort(Graph *g, PassCtx *c);

#endif
