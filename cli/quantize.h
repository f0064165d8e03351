/* cli/quantize.h — `lathe quantize` (issue 19, docs/int8.md "The passes and commands"),
 * private to cli/: the plan of a model's quantization (quantize_plan.c) and the command
 * (cmd_quantize.c) that calibrates it and writes the int8 model.
 *
 * The plan is read off the elaborated model graph (Module.model, before any pass) by the rule
 * of ir/quant_match.h, which the `quantize` statement of QAT shares:
 *   - a *layer* is a dense (matmul of an activation by a param [I, O], + a param bias [O]) or
 *     a conv2d (by a param [O, C / groups, kh, kw], any groups, + a reshaped param bias), each
 *     with an optional ReLU that is the only user of its result;
 *   - layers are int8 (qdense / qconv2d) unless kept float (the last layer by default, and
 *     every name of --keep-float);
 *   - an int8 layer's output is an int8 tensor; reshape, transpose and max_pool2d of an int8
 *     tensor stay int8 with its scale and zero point (max_pool2d is written on the int8
 *     tensor: the int8 max pool);
 *   - an add of two int8 tensors (a residual connection) is one qadd, an int8 tensor of its
 *     own observed parameters, with a ReLU that is its only user fused into its clamp;
 *   - a softmax of an int8 tensor over its last axis (rows of at most 4095) is one qsoftmax,
 *     scale 1/256 and zero point -128; a concat of int8 tensors is int8 at choose_params of
 *     the union of its inputs' ranges, each input with other parameters requantized (not for
 *     a model with a `quantize` statement: QAT does not model them, so they stay float);
 *   - every other op computes in float: dequantize where it reads an int8 tensor, quantize
 *     where an int8 layer reads a float tensor.
 * Observed tensors are what that needs: each int8 layer's and qadd's output and each float
 * tensor an int8 layer reads.
 */
#ifndef LATHE_CLI_QUANTIZE_H
#define LATHE_CLI_QUANTIZE_H

#include "cli.h"

typedef struct QLayer {
  bool conv;         /* qconv2d, else qdense */
  bool keep_float;   /* stays float (the last layer, or --keep-float) */
  bool relu;         /* a ReLU fused into the clamp */
  NodeId op;         /* the matmul / conv2d */
  NodeId x;          /* its activation input */
  NodeId add;        /* the bias add, or IR_NONE */
  NodeId out;        /* the layer's result: the relu, the bias add, or the op */
  int w_param;       /* Module.params index of the weight */
  int b_param;       /* of the bias, or -1 */
  const char *name;  /* binding and param prefix in the written model ("h1"; module arena) */
  int x_obs, y_obs;  /* QPlan.obs index of the input's and the output's parameters */
  float w_scale_min; /* report: the smallest and largest weight scale */
  float w_scale_max;
  const char *x_name; /* report: its input's binding in the written model, the int8 form when
                         the layer is int8 ("x_q", "p1"; qplan_write; module arena) */
} QLayer;

/* one observed tensor: its float node, its range and the parameters chosen from it */
typedef struct QObs {
  NodeId node;
  const char *what; /* for the report: the binding name, or "%<id>" (module arena) */
  double lo, hi;    /* the chosen range (before widening to contain 0) */
  double min, max;  /* what the observer saw */
  float scale;
  int32_t zp;
  const char *binding; /* its int8 form's binding in the written model (qplan_write), or NULL */
  int8_t rule;         /* a QMatchRule (ir/quant_match.h): observed, or a softmax's or concat's
                          parameters by their rule (qplan_derive) */
} QObs;

/* a softmax or concat that reads an int8 tensor but computes in float, for the report */
typedef struct QFloatOp {
  NodeId node;
  const char *what; /* the binding name, or "%<id>" (module arena) */
  const char *op;   /* "softmax" or "concat" */
  const char *why;  /* static text */
} QFloatOp;

typedef struct QPlan {
  Module *m;
  QLayer *layers; /* in graph order */
  int n_layers;
  QObs *obs;
  int n_obs;
  int *obs_of;         /* per node: QPlan.obs index of the parameters of an int8 tensor, or -1 */
  uint8_t *is_int8;    /* per node: 1 when the written model holds it as int8 */
  int8_t *role;        /* per node: what the node is to the writer (quantize_plan.c) */
  int n_outputs;       /* the model's own outputs (probes are added after them) */
  int32_t weight_max;  /* int8 weights lie in [-weight_max, weight_max]: 127, or 63 */
  QFloatOp *float_ops; /* softmaxes and concats of int8 tensors kept float, and why */
  int n_float_ops;
} QPlan;

/* what the user asked for */
typedef struct QPlanOptions {
  const char *const *keep; /* --keep-float names */
  int n_keep;
  bool quantize_last; /* --quantize-last: the last layer is int8 too */
  bool per_channel;
  bool reduce_range; /* --reduce-range: 7-bit weights in [-63, 63] (AVX2's u8 tile) */
} QPlanOptions;

/* Reads m->model into p: layers, int8 tensors, the tensors to observe. Every op that cannot
 * be written, every layer with no int8 form and every unknown --keep-float name is reported
 * (all of them) in d, with false. */
bool qplan_build(QPlan *p, Module *m, const QPlanOptions *o, Diag *d);
void qplan_fini(QPlan *p);

/* The parameters of p->obs[k] whose rule is not QMR_OBSERVED, from the ones it follows (chosen
 * before it): a softmax's 1/256 and -128 (its range [0, 255/256]), a concat's choose_params of
 * the union of its inputs' ranges. False (reported) when they cannot be chosen. */
bool qplan_derive(QPlan *p, int k, Diag *d);

/* The int8 model as .lathe text (malloc'd, under the comment lines of header) and its
 * weights (added to out) from the trained float params fw (read from the file `what`): the
 * scales of p->obs must be chosen. Fills each QLayer's weight-scale range. False (reported)
 * when a layer's numbers do not fit TFLite's int8 rules (a multiplier too large, a bias
 * outside int32) or a trained param is missing or misshapen. */
bool qplan_write(QPlan *p, const QPlanOptions *o, const char *header, const RtTensorSet *fw,
                 const char *what, char **text, RtTensorSet *out, Diag *d);

/* Quantization-aware training (docs/int8.md "Quantization-aware training"): the scales and
 * zero points of p->obs from the range states of the model's `quantize` statement (Module.qat)
 * in the checkpoint ckpt (read from the file `what`), instead of calibration. False (reported)
 * when the plan's int8 layers are not the statement's, a range is missing or misshapen, or a
 * range cannot be quantized (all zero: never trained). */
bool qplan_qat_ranges(QPlan *p, const RtTensorSet *ckpt, const char *what, Diag *d);

#endif
