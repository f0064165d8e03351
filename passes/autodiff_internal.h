/* passes/autodiff_internal.h — shared between autodiff.c (the reverse sweep), vjp.c (the
 * per-op VJP rules) and optim.c (optimizer steps as IR). Private to passes/.
 *
 * All IR built here goes through the ad_* builders: they take and return node ids, return
 * IR_NONE once any graph_add failed (the error is already in the Diag), and accept IR_NONE
 * inputs, so a rule is straight-line code with one failure check at the end.
 */
#ifndef LATHE_PASSES_AUTODIFF_INTERNAL_H
#define LATHE_PASSES_AUTODIFF_INTERNAL_H

#include "passes.h"

typedef struct AdCtx {
  Graph *g;
  Diag *diag;
  SrcLoc loc;     /* loc given to every node built (the forward node being differentiated) */
  bool failed;    /* some graph_add returned IR_NONE */
  NodeId *grad;   /* per forward node: accumulated cotangent, or IR_NONE (n_fwd entries) */
  const bool *active; /* per forward node: on a path from a selected param to the loss */
  uint32_t n_fwd; /* forward node count (nodes >= n_fwd are backward/optimizer nodes) */
} AdCtx;

/* ---- builders (autodiff.c) ---- */
NodeId ad_unary(AdCtx *a, OpKind op, NodeId x);
NodeId ad_binary(AdCtx *a, OpKind op, NodeId x, NodeId y);
NodeId ad_scalar(AdCtx *a, DType t, double v); /* rank-0 constant */
NodeId ad_fill(AdCtx *a, DType t, const Shape *s, double v); /* constant tensor */
NodeId ad_reduce(AdCtx *a, OpKind op, NodeId x, uint32_t axes, bool keepdims);
NodeId ad_reshape(AdCtx *a, NodeId x, const Shape *s);
NodeId ad_broadcast(AdCtx *a, NodeId x, const Shape *s);
NodeId ad_cast(AdCtx *a, NodeId x, DType t);
NodeId ad_transpose(AdCtx *a, NodeId x, const int8_t *perm);
NodeId ad_matmul(AdCtx *a, NodeId x, NodeId y, bool trans_a, bool trans_b);
/* sum x (broadcast result) back to shape s: SUM over broadcast axes (keepdims), RESHAPE */
NodeId ad_unbroadcast(AdCtx *a, NodeId x, const Shape *s);

/* ---- VJP rules (vjp.c) ---- */
typedef enum VjpKind {
  VJP_NONE, /* no rule: differentiating through it is an error */
  VJP_ZERO, /* zero derivative: gradient stops here */
  VJP_RULE, /* has a rule */
} VjpKind;

VjpKind vjp_kind(OpKind op);
/* For the tests of the missing-rule diagnostic only (every float op of ops.def has a rule
 * today): make vjp_kind report VJP_NONE for op until called again with removed = false. */
void vjp_test_remove_rule(OpKind op, bool removed);
/* Adds the cotangent contributions of node `id` (output cotangent gy) to a->grad of its
 * active inputs (through ad_accumulate). Returns false on error. */
bool vjp_apply(AdCtx *a, NodeId id, NodeId gy);
/* grad[input] += contribution, unbroadcast to the input's shape; ignores inactive inputs */
void ad_accumulate(AdCtx *a, NodeId input, NodeId contribution);

/* ---- optimizer step (optim.c) ---- */
typedef struct OptimParam {
  int32_t index; /* Module.params */
  NodeId value;  /* PARAM node holding the current value */
  NodeId grad;   /* gradient node (same shape and dtype) */
} OptimParam;

/* Appends the update of `step` (clipping, schedule, optimizer) to g: OUT_PARAM_UPDATE per
 * param, OUT_STATE_UPDATE per optimizer state (created in the Module). entry names the
 * train entry (for the step counter's state name). False with diagnostics on error. */
bool optim_append(AdCtx *a, const TrainStep *step, const char *entry, const OptimParam *ps,
                  int n);

#endif
