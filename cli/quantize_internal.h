/* cli/quantize_internal.h — shared by quantize_plan.c and quantize_write.c only. */
#ifndef LATHE_CLI_QUANTIZE_INTERNAL_H
#define LATHE_CLI_QUANTIZE_INTERNAL_H

#include "ir/quant_match.h"
#include "quantize.h"

/* QPlan.role: what a node of the model graph is to the writer (the shared rule's roles,
 * ir/quant_match.h) */
enum {
  QR_DEAD = QM_DEAD,   /* not live (nothing written) */
  QR_INNER = QM_INNER, /* inside a layer (op, weight, bias, bias add) or a qadd: written there */
  QR_LAYER = QM_LAYER, /* a layer's result: one call of a layer fn */
  QR_INPUT = QM_INPUT, /* a model input */
  QR_LITERAL = QM_LITERAL, /* a rank-0 constant, written as a number where it is used */
  QR_GENERIC = QM_OTHER, /* a float op written as one binding (or an int8 reshape/transpose/pool) */
  QR_QADD = QM_QADD, /* an add of two int8 tensors, or the ReLU that is its only user: one qadd */
  QR_CONCAT = QM_CONCAT /* a concat (its unslices and adds are inner): one concat([...]) */
};

/* NULL when the writer can spell node id of g as a binding, else why not */
const char *qwrite_op_unsupported(const Graph *g, NodeId id);

#endif
