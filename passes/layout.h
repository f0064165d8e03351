/* passes/layout.h — the parts of pass_layout (private to passes/): layout.c (transposes into
 * matmul flags, the driver) and layout_bn.c (per-channel affine chains
 * after a convolution, batch norm in inference entries, folded into its weights). */
#ifndef LATHE_PASSES_LAYOUT_H
#define LATHE_PASSES_LAYOUT_H

#include "passes.h"

/* Folds every conv2d + per-channel affine chain; sets *changed. False on error (diagnosed). */
bool layout_fold_bn(Graph *g, PassCtx *c, bool *changed);

#endif
