/* passes/autodiff_internal.h — shared between autodiff.c (the reverse sweep), vjp.c (the
 * per-op VJP rules) and optim.c (optimizer steps as IR). Private to passes/.
 *
 * All IR built here goes through the graph builders of ir/build.h on AdCtx.b: they take and
 * return node ids, return IR_NONE once any graph_add failed (the error is already in the
 * Diag), and accept IR_NONE inputs, so a rule is straight-line code with one failure check
 * at the end.
 */
#ifndef LATHE_PASSES_AUTODIFF_INTERNAL_H
#define LATHE_PASSES_AUTODIFF_INTERNAL_H

#include "ir/build.h"
#include "passes.h"

typedef struct AdCtx {
  Builder b;          /* appends to the graph being differentiated, loc = the forward node's */
  NodeId *grad;       /* per forward node: accumulated cotangent, or IR_NONE (n_fwd entries) */
  const bool *active; /* per forward node: on a path from a selected param to the loss */
  uint32_t n_fwd;     /* forward node count (nodes >= n_fwd are backward/optimizer nodes) */
} AdCtx;

/* ---- accumulation (autodiff.c) ---- */
/* true when input is an active forward node: one that wants a cotangent */
bool ad_wants(const AdCtx *a, NodeId input);

/* ---- VJP rules (vjp.c) ---- */
typedef enum VjpKind {
  VJP_NONE, /* no rule: differentiating through it is an error */
  VJP_ZERO, /* zero derivative: gradient stops here */
  VJP_RULE, /* has a rule */
} VjpKind;

VjpKind vjp_kind(OpKind op);
/* The rules, one per op: the vjp column of ir/ops.def, prototypes generated from it. Each adds
 * the cotangent contributions of forward node n (id `id`, output cotangent gy) to its active
 * inputs through ad_accumulate; false = no rule. vjp_none and vjp_zero and the elementwise
 * and structural rules are in vjp.c, the others in vjp_struct.c, vjp_conv.c, vjp_scan.c. */
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower)                                        \
  bool vjp(AdCtx *a, const Node *n, NodeId id, NodeId gy);
#include "ir/ops.def"
#undef OP
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
bool optim_append(AdCtx *a, const TrainStep *step, const char *entry, const OptimParam *ps, int n);

/* The "apply" entry of a split train step: the optimizer update of train entry `train` (after
 * its pipeline ran) built by optim_append, as train builds it, over the same params (train's
 * OUT_PARAM_UPDATE targets, in order) and the same optimizer state; param p's gradient is the
 * module input "grad.<param p's name>" (added on first use). NULL with diagnostics on error. */
Graph *optim_apply_entry(Module *m, const Graph *train, Diag *d);

#endif
