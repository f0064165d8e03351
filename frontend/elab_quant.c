/* frontend/elab_quant.c — the int8 quantization builtins (issue 19, docs/int8.md,
 * docs/language.md "Quantization"):
 *
 *   quantize(x, scale, zp, qmin = -128, qmax = 127, half_even = false)   f32 -> i8
 *   dequantize(q, scale, zp)                              i8 -> f32
 *   fake_quant(x, scale, zp, qmin = -128, qmax = 127)     f32 -> f32, straight-through grad
 *   qdense(x, w, bias, multiplier, shift, x_zp = 0, out_zp = 0, qmin = -128, qmax = 127)
 *   qconv2d(x, w, bias, multiplier, shift, stride = 1, padding = 0, dilation = 1, x_zp = 0,
 *           out_zp = 0, qmin = -128, qmax = 127, groups = 1)   stride/dilation an int or
 *                                                      [h, w], padding an int, [h, w] or
 *                                                      [t, l, b, r]; w [O, C / groups, kh, kw]
 *   qadd(a, b, a_zp, b_zp, out_zp, a_multiplier, a_shift, b_multiplier, b_shift,
 *        out_multiplier, out_shift, qmin = -128, qmax = 127)   TFLite's int8 ADD, all ints
 *   qsoftmax(x, multiplier, left_shift, diff_min)      TFLite's int8 softmax, last axis; the
 *                                                      result's scale 1/256, zero point -128
 *   requantize(x, multiplier, shift, x_zp = 0, out_zp = 0, qmin = -128, qmax = 127)
 *                                                      int8 to int8 at other parameters
 *   max_pool2d(x i8, ...), avg_pool2d(x i8, ...)       (elab_conv.c's builtins on an i8 x)
 *
 * scale and zp are tensors NumPy-broadcast against x (a scalar per tensor, [1, C, 1, 1] per
 * channel) or numbers (rank-0 constants: scale in x's float dtype, zp i32); qdense's bias,
 * multiplier and shift are i32 tensors [O] or numbers. The integer attributes are
 * compile-time ints. The checks of shapes, dtypes and ranges are the ops' infer hooks
 * (ir/quant.c), reported at the call.
 * Invariant, as in elab_expr.c: a VAL_NONE operand yields VAL_NONE without a new message.
 */
#include "frontend/elab.h"

#include <stdio.h>
#include <string.h>

enum { QB_MAX_ARGS = 13 };

typedef struct QuantBuiltin {
  const char *name;
  OpKind op;
  const char *params[QB_MAX_ARGS + 1];
  int n_required;
} QuantBuiltin;

static const QuantBuiltin quant_builtins[] = {
    {"quantize", OP_QUANTIZE, {"x", "scale", "zp", "qmin", "qmax", "half_even"}, 3},
    {"dequantize", OP_DEQUANTIZE, {"q", "scale", "zp"}, 3},
    {"fake_quant", OP_FAKE_QUANT, {"x", "scale", "zp", "qmin", "qmax"}, 3},
    {"qdense",
     OP_QDENSE,
     {"x", "w", "bias", "multiplier", "shift", "x_zp", "out_zp", "qmin", "qmax"},
     5},
    {"qconv2d",
     OP_QCONV2D,
     {"x", "w", "bias", "multiplier", "shift", "stride", "padding", "dilation", "x_zp", "out_zp",
      "qmin", "qmax", "groups"},
     5},
    {"qadd",
     OP_QADD,
     {"a", "b", "a_zp", "b_zp", "out_zp", "a_multiplier", "a_shift", "b_multiplier", "b_shift",
      "out_multiplier", "out_shift", "qmin", "qmax"},
     11},
    {"qsoftmax", OP_QSOFTMAX, {"x", "multiplier", "left_shift", "diff_min"}, 4},
    {"requantize",
     OP_REQUANTIZE,
     {"x", "multiplier", "shift", "x_zp", "out_zp", "qmin", "qmax"},
     3},
};
enum { N_QUANT_BUILTINS = sizeof quant_builtins / sizeof quant_builtins[0] };

static const QuantBuiltin *find(const char *name) {
  for (int i = 0; i < N_QUANT_BUILTINS; i++)
    if (strcmp(quant_builtins[i].name, name) == 0) return &quant_builtins[i];
  return NULL;
}

bool elab_quant_is_builtin(const char *name) {
  return find(name) != NULL;
}

/* a tensor, or a number as a rank-0 CONST of dtype t */
static NodeId operand(Elab *E, Scope *s, const Expr *arg, DType t, const char *fn) {
  Value v = elab_expr(E, s, arg);
  if (v.kind == VAL_TENSOR) return v.node;
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) return elab_scalar_node(E, v, t, arg->loc);
  if (v.kind != VAL_NONE)
    diag_error(E->d, arg->loc, "'%s' expects a tensor or a number, got %s", fn,
               elab_value_str(E, v));
  return IR_NONE;
}

/* a compile-time int in [-2^31, 2^31) (def when the argument is absent) */
static bool int_arg(Elab *E, Scope *s, const Expr *arg, const char *what, int32_t def,
                    int32_t *out) {
  *out = def;
  if (!arg) return true;
  Value v = elab_expr(E, s, arg);
  if (v.kind == VAL_NONE) return false;
  if (v.kind == VAL_INT && v.i >= INT32_MIN && v.i <= INT32_MAX) {
    *out = (int32_t)v.i;
    return true;
  }
  diag_error(E->d, arg->loc, "%s must be an int in [-2^31, 2^31), got %s", what,
             elab_value_str(E, v));
  return false;
}

/* an int or a list of n_max ints at most into out (an int fills `fill` entries); def if absent */
static bool ints_arg(Elab *E, Scope *s, const Expr *e, const char *what, int fill, int n_max,
                     int64_t def, int64_t *out, int *n) {
  for (int i = 0; i < fill; i++)
    out[i] = def;
  *n = fill;
  if (!e) return true;
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_INT && v.i >= 0 && v.i <= INT32_MAX) {
    for (int i = 0; i < fill; i++)
      out[i] = v.i;
    return true;
  }
  bool ok = v.kind == VAL_LIST && v.n_items >= 1 && v.n_items <= n_max && v.dyn == 0;
  for (int i = 0; ok && i < v.n_items; i++)
    ok = v.items[i] >= 0 && v.items[i] <= INT32_MAX;
  if (ok) {
    memcpy(out, v.items, (size_t)v.n_items * sizeof *out);
    *n = v.n_items;
    return true;
  }
  if (v.kind != VAL_NONE)
    diag_error(E->d, e->loc, "%s must be an int >= 0 or a list of up to %d of them, got %s", what,
               n_max, elab_value_str(E, v));
  return false;
}

/* qconv2d's stride, padding ([h, w] is top = bottom = h, left = right = w) and dilation */
static bool conv_geometry(Elab *E, Scope *s, const Expr **a, NodeAttr *at) {
  int64_t st[2], pd[4], dl[2];
  int ns, np, nd;
  if (!ints_arg(E, s, a[5], "'stride'", 2, 2, 1, st, &ns) ||
      !ints_arg(E, s, a[6], "'padding'", 4, 4, 0, pd, &np) ||
      !ints_arg(E, s, a[7], "'dilation'", 2, 2, 1, dl, &nd))
    return false;
  if (ns == 1) st[1] = st[0];
  if (nd == 1) dl[1] = dl[0];
  if (np == 1) pd[1] = pd[2] = pd[3] = pd[0];
  if (np == 2) pd[2] = pd[0], pd[3] = pd[1];
  if (np == 3) {
    diag_error(E->d, a[6]->loc, "'padding' takes 1, 2 or 4 ints, got 3");
    return false;
  }
  for (int i = 0; i < 2; i++)
    at->quant.stride[i] = (int32_t)st[i], at->quant.dilation[i] = (int32_t)dl[i];
  for (int i = 0; i < 4; i++)
    at->quant.pad[i] = (int32_t)pd[i];
  return true;
}

/* the attributes: the zero points (qdense, qconv2d) and qmin/qmax after the operands */
static bool quant_attrs(Elab *E, Scope *s, const QuantBuiltin *b, const Expr **a, NodeAttr *at) {
  memset(at, 0, sizeof *at);
  if (b->op == OP_DEQUANTIZE) return true;
  bool conv = b->op == OP_QCONV2D;
  int z = conv ? 8 : 5, r = b->op == OP_QDENSE || conv ? z + 2 : 3;
  if (conv && !conv_geometry(E, s, a, at)) return false;
  if (conv && !int_arg(E, s, a[12], "'groups'", 1, &at->quant.groups)) return false;
  if (conv && at->quant.groups < 1) {
    diag_error(E->d, a[12]->loc, "'groups' must be an int >= 1, got %d", (int)at->quant.groups);
    return false;
  }
  if (r != 3 && (!int_arg(E, s, a[z], "'x_zp'", 0, &at->quant.x_zp) ||
                 !int_arg(E, s, a[z + 1], "'out_zp'", 0, &at->quant.out_zp)))
    return false;
  bool ok = int_arg(E, s, a[r], "'qmin'", -128, &at->quant.qmin) &&
            int_arg(E, s, a[r + 1], "'qmax'", 127, &at->quant.qmax);
  if (ok && b->op == OP_QUANTIZE) /* ONNX's QuantizeLinear rounds half to even */
    ok = elab_bool_arg(E, s, a[5], "'half_even'", false, &at->quant.half_even);
  return ok;
}

/* qadd(a, b, ...): the nine ints as three i32 [3] constants (zero points, multipliers,
 * shifts of a, b and the result); their ranges are infer_qadd's */
static Value qadd_call(Elab *E, Scope *s, const Expr *call, const Expr **a) {
  NodeId in[5];
  for (int k = 0; k < 2; k++)
    if (!elab_tensor_arg(E, s, a[k], "qadd", &in[k])) return (Value){0};
  static const char *const names[9] = {"'a_zp'",         "'b_zp'",         "'out_zp'",
                                       "'a_multiplier'", "'b_multiplier'", "'out_multiplier'",
                                       "'a_shift'",      "'b_shift'",      "'out_shift'"};
  static const int arg_of[9] = {2, 3, 4, 5, 7, 9, 6, 8, 10}; /* names[k] is argument arg_of[k] */
  double v[9];
  for (int k = 0; k < 9; k++) {
    int32_t i;
    if (!int_arg(E, s, a[arg_of[k]], names[k], 0, &i)) return (Value){0};
    v[k] = i;
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  if (!int_arg(E, s, a[11], "'qmin'", -128, &at.quant.qmin) ||
      !int_arg(E, s, a[12], "'qmax'", 127, &at.quant.qmax))
    return (Value){0};
  Builder bl = elab_builder(E, call->loc);
  Shape three = shape_make(1, (int64_t[]){3});
  for (int k = 0; k < 3; k++)
    in[2 + k] = build_const_data(&bl, DT_I32, &three, v + 3 * k);
  return elab_tensor_value(build_node(&bl, OP_QADD, in, 5, &at));
}

/* qsoftmax(x, multiplier, left_shift, diff_min): the three ints as one i32 [3] constant;
 * requantize(x, multiplier, shift, ...): two i32 scalars and the zero points and clamp as
 * attributes. Their ranges are infer_qsoftmax's and infer_requantize's */
static Value qsoftmax_requantize_call(Elab *E, Scope *s, const QuantBuiltin *b, const Expr *call,
                                      const Expr **a) {
  NodeId in[2];
  if (!elab_tensor_arg(E, s, a[0], b->name, &in[0])) return (Value){0};
  bool soft = b->op == OP_QSOFTMAX;
  double v[3];
  for (int k = 0; k < (soft ? 3 : 2); k++) {
    int32_t i;
    char what[32];
    snprintf(what, sizeof what, "'%s'", b->params[k + 1]);
    if (!int_arg(E, s, a[k + 1], what, 0, &i)) return (Value){0};
    v[k] = i;
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  if (!soft && !(int_arg(E, s, a[3], "'x_zp'", 0, &at.quant.x_zp) &&
                 int_arg(E, s, a[4], "'out_zp'", 0, &at.quant.out_zp) &&
                 int_arg(E, s, a[5], "'qmin'", -128, &at.quant.qmin) &&
                 int_arg(E, s, a[6], "'qmax'", 127, &at.quant.qmax)))
    return (Value){0};
  Builder bl = elab_builder(E, call->loc);
  if (soft) {
    Shape three = shape_make(1, (int64_t[]){3});
    in[1] = build_const_data(&bl, DT_I32, &three, v);
    return elab_tensor_value(build_node(&bl, OP_QSOFTMAX, in, 2, &at));
  }
  NodeId r[3] = {in[0], build_scalar(&bl, DT_I32, v[0]), build_scalar(&bl, DT_I32, v[1])};
  return elab_tensor_value(build_node(&bl, OP_REQUANTIZE, r, 3, &at));
}

/* the int8 forms of elab_conv.c's pools: qmax_pool2d, and qavg_pool2d, which averages over the
 * taps inside the image as TFLite does, so a padded one needs count_include_pad = false */
Value elab_quant_pool(Elab *E, Scope *s, const Expr *call, bool avg, const Expr *arg4, NodeId x,
                      const NodeAttr *at) {
  const struct IrConvAttr *c = &at->conv;
  bool padded = c->pad[0] || c->pad[1] || c->pad[2] || c->pad[3], include_pad = false;
  if (avg && !elab_bool_arg(E, s, arg4, "'count_include_pad'", true, &include_pad))
    return (Value){0};
  if (avg && padded && include_pad) {
    diag_error(E->d, call->loc,
               "avg_pool2d of an i8 tensor averages over the taps inside the image (TFLite's "
               "int8 AveragePool): write count_include_pad = false");
    return (Value){0};
  }
  Builder bl = elab_builder(E, call->loc);
  return elab_tensor_value(build_node(&bl, avg ? OP_QAVG_POOL2D : OP_QMAX_POOL2D, &x, 1, at));
}

Value elab_quant_call(Elab *E, Scope *s, const Expr *call) {
  const QuantBuiltin *b = find(call->name);
  const Expr *a[QB_MAX_ARGS];
  if (!elab_builtin_args(E, call, b->params, QB_MAX_ARGS, b->n_required, a)) return (Value){0};
  if (b->op == OP_QADD) return qadd_call(E, s, call, a);
  if (b->op == OP_QSOFTMAX || b->op == OP_REQUANTIZE)
    return qsoftmax_requantize_call(E, s, b, call, a);
  NodeId in[5] = {operand(E, s, a[0], elab_float_dtype(E), b->name)};
  if (in[0] == IR_NONE) return (Value){0};
  DType xt = graph_node(E->g, in[0])->dtype;
  bool qd = b->op == OP_QDENSE || b->op == OP_QCONV2D;
  DType scale_t = b->op == OP_DEQUANTIZE || !dtype_is_float(xt) ? elab_float_dtype(E) : xt;
  for (int k = 1; k < (qd ? 5 : 3); k++) {
    in[k] = operand(E, s, a[k],
                    qd       ? (k == 1 ? DT_I8 : DT_I32)
                    : k == 1 ? scale_t
                             : DT_I32,
                    b->name);
    if (in[k] == IR_NONE) return (Value){0};
  }
  NodeAttr at;
  if (!quant_attrs(E, s, b, a, &at)) return (Value){0};
  Builder bl = elab_builder(E, call->loc);
  return elab_tensor_value(build_node(&bl, b->op, in, qd ? 5 : 3, &at));
}
