/* cli/quantize_internal.h — shared by quantize_plan.c and quantize_write.c only. */
#ifndef LATHE_CLI_QUANTIZE_INTERNAL_H
#define LATHE_CLI_QUANTIZE_INTERNAL_H

#include "quantize.h"

/* QPlan.role: what a node of the model graph is to the writer */
enum {
  QR_DEAD,    /* not live (nothing written) */
  QR_INNER,   /* inside a layer (its op, weight, bias, bias add), written by the layer */
  QR_LAYER,   /* a layer's result: one call of a layer fn */
  QR_INPUT,   /* a model input */
  QR_LITERAL, /* a rank-0 constant, written as a number where it is used */
  QR_GENERIC, /* a float op written as one binding (or an int8 reshape/transpose/pool) */
  QR_QADD     /* an add of two int8 tensors, or the ReLU that is its only user: one qadd */
};

/* NULL when the writer can spell node id of g as a binding, else why not */
const char *qwrite_op_unsupported(const Graph *g, NodeId id);
/* reshape, transpose, max_pool2d: an int8 input stays int8 with its parameters */
bool qwrite_is_passthrough(OpKind op);

#endif
