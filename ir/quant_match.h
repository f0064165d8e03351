/* ir/quant_match.h — which layers and tensors of a model are int8: the one rule of `lathe
 * quantize` (cli/quantize_plan.c, post-training quantization and the conversion after QAT) and
 * of the train block's `quantize` statement (frontend/elab_qat.c, quantization-aware training),
 * so the model QAT trains and the int8 model the conversion writes cannot disagree (issue 19,
 * docs/int8.md "What becomes int8").
 *
 * Read off an elaborated model graph (Module.model, before any pass):
 *   - a *layer* is a dense (a matmul, untransposed, of an activation by a param [I, O]) or a
 *     conv2d by a param [O, C / groups, kh, kw] (any groups: qconv2d's `groups`; depthwise
 *     is groups = C), the weight read by the op alone; with its param bias
 *     ([O]; a conv's reshaped to [O, 1, 1]) when the bias add is the op's only user, and its
 *     ReLU when that is the only user of the result before it;
 *   - every live layer is int8 except those kept float: the last one (unless quantize_last)
 *     and each one a given name matches (qmatch_keep_float);
 *   - an int8 layer's result is an int8 tensor; reshape, transpose and max_pool2d of an int8
 *     tensor stay int8 with its parameters (they commute with the quantization);
 *   - an add of two int8 tensors (a residual connection) is a *qadd*, an int8 tensor of its
 *     own parameters; a ReLU that is the add's only user is fused into its clamp (the ReLU is
 *     then the qadd's result);
 *   - with QMatch.softmax_concat (lathe quantize's PTQ; the QAT statement leaves it off): a
 *     softmax of an int8 tensor over its last axis, rows of at most 4095, is int8 (qsoftmax,
 *     parameters fixed at 1/256, -128), and a concat whose inputs are all int8 is int8
 *     (parameters from the union of the inputs' ranges; inputs with others requantized);
 *   - every other op computes in float.
 * A *concat* is how the frontend elaborates concat([a, b, ...], axis): unslices of the inputs
 * into the result's shape, tiling it along one axis, summed by a chain of adds; the last add is
 * the concat (QM_CONCAT), its unslices and other adds inner.
 * The *ranges* are the tensors whose range sets quantization parameters: each int8 layer's and
 * each qadd's result and each float tensor an int8 layer reads, once each, in graph order (a
 * layer's float input before its result); with softmax_concat also each int8 softmax's and
 * concat's result, whose parameters follow from a rule (QMatchRange.rule), not an observation.
 */
#ifndef LATHE_IR_QUANT_MATCH_H
#define LATHE_IR_QUANT_MATCH_H

#include "ir.h"

/* QMatch.role: what a node is to the int8 model */
typedef enum QMatchRole {
  QM_DEAD,    /* not live */
  QM_INNER,   /* inside a layer (its op, weight, bias and bias add) or a qadd's fused add */
  QM_LAYER,   /* a layer's result (int8 or float) */
  QM_INPUT,   /* a model input */
  QM_LITERAL, /* a rank-0 constant */
  QM_OTHER,   /* any other live node: a float op, or an int8 reshape/transpose/max_pool2d */
  QM_QADD,    /* a qadd's result: the add of two int8 tensors, or the ReLU fused after it */
  QM_CONCAT   /* a concat's result (int8 or float); its unslices and inner adds are QM_INNER */
} QMatchRole;

/* QMatchRange.rule: where a range's quantization parameters come from */
typedef enum QMatchRule {
  QMR_OBSERVED, /* the observed (or QAT-tracked) range of the tensor */
  QMR_SOFTMAX,  /* an int8 softmax's result: scale 1/256, zero point -128 (TFLite's) */
  QMR_CONCAT    /* an int8 concat's result: choose_params of the union of its inputs' ranges */
} QMatchRule;

typedef struct QMatchLayer {
  bool conv;          /* conv2d, else dense */
  bool relu;          /* a ReLU is part of the layer */
  bool keep_float;    /* stays float (qmatch_keep_float) */
  NodeId op;          /* the matmul / conv2d */
  NodeId x;           /* its activation input */
  NodeId add;         /* the bias add, or IR_NONE */
  NodeId out;         /* the layer's result: the ReLU, the bias add, or the op */
  int32_t w_param;    /* Module.params index of the weight */
  int32_t b_param;    /* of the bias, or -1 */
  const char *prefix; /* the weight's param prefix: "enc.q" for enc.q.w (module arena) */
  int32_t x_range;    /* an int8 layer's: QMatch.ranges index of x's quantization (its own
                         range when x is float, the range of its parameters when int8), else -1 */
  int32_t y_range;    /* of out when the layer is int8, else -1 */
} QMatchLayer;

typedef struct QMatchRange {
  NodeId node;   /* the tensor: an int8 layer's or qadd's result, or an int8 layer's float input */
  int32_t layer; /* the int8 layer that makes it, or the first that reads it float; -1: a qadd,
                    a softmax or a concat */
  QMatchRule rule;
} QMatchRange;

typedef struct QMatch {
  Module *m;
  const Graph *g;
  QMatchLayer *layers; /* every live layer, in graph order (qmatch_find) */
  int n_layers;
  int *uses;           /* per node: its readers, graph outputs included */
  uint8_t *live;       /* per node: an output depends on it */
  int8_t *role;        /* per node: a QMatchRole */
  uint8_t *is_int8;    /* per node: an int8 tensor of the int8 model (qmatch_assign_int8) */
  int32_t *range_of;   /* per node: the ranges index of its parameters (an int8 tensor) or of
                          its quantization where int8 layers read it (a float one), else -1 */
  QMatchRange *ranges; /* qmatch_assign_int8 */
  int n_ranges;
  bool softmax_concat; /* set before qmatch_assign_int8: int8 softmax and concat (see above) */
} QMatch;

/* The layers of g (a graph of m) and each live node's role (qmatch_assign_int8 adds the
 * qadds). False only when out of memory; qmatch_fini in any case. */
bool qmatch_find(QMatch *q, Module *m, const Graph *g);
void qmatch_fini(QMatch *q);

/* Keeps float the last layer (unless quantize_last) and every layer a name matches: a glob of
 * its param prefix ("enc.q", "enc.*") or of its binding name in the int8 model ("enc_q").
 * hit[k] (n_names of them; may be NULL when n_names is 0): names[k] matched a layer. */
void qmatch_keep_float(QMatch *q, const char *const *names, int n_names, bool quantize_last,
                       bool *hit);

/* "enc_q" for the prefix "enc.q": the layer's binding name in the int8 model (module arena) */
const char *qmatch_binding_name(Module *m, const QMatchLayer *L);

/* NULL when layer L can be int8, else why not (module arena): a sum over more inputs per
 * output than the int32 accumulator allows; any groups are fine (qconv2d's `groups`) */
const char *qmatch_no_int8_form(const QMatch *q, const QMatchLayer *L);

/* The int8 tensors, the qadds and the ranges, once the float layers are chosen */
bool qmatch_assign_int8(QMatch *q);

/* reshape, transpose, max_pool2d: an int8 input stays int8 with its parameters */
bool qmatch_is_passthrough(OpKind op);

/* The inputs of a concat at node id of g, in order along its axis (*axis), at most max of them,
 * into pieces; their count, or -1 when id is no concat. uses (QMatch.uses) also requires each
 * unslice and inner add to be read by the chain alone; NULL for a node known to be QM_CONCAT. */
int qmatch_concat_inputs(const Graph *g, const int *uses, NodeId id, NodeId *pieces, int max,
                         int *axis);

/* softmax node id of an int8 tensor: NULL when it can be int8 (qsoftmax), else why not */
const char *qmatch_softmax_no_int8(const Graph *g, NodeId id);

#endif
