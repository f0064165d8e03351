/* import/ops_basic.c — ONNX elementwise, matrix and reduction ops: unary activations,
 * broadcasting binary arithmetic and comparisons, variadic Sum/Mean/Max/Min, MatMul, Gemm,
 * Softmax/LogSoftmax (both axis conventions), Reduce*.
 *
 * Invariant: a 1-element constant operand is written as a literal only when broadcasting it
 * cannot change the result's shape (its rank is at most the other operand's).
 */
#include "import/imp.h"

#include <string.h>

typedef struct Unary {
  const char *op, *fmt; /* fmt: %1$s the operand; attribute values come through args */
} Unary;

static const Unary unaries[] = {
    {"Relu", "relu(%s)"},     {"Sigmoid", "sigmoid(%s)"},   {"Tanh", "tanh(%s)"},
    {"Exp", "exp(%s)"},       {"Log", "log(%s)"},           {"Sqrt", "sqrt(%s)"},
    {"Abs", "abs(%s)"},       {"Erf", "erf(%s)"},           {"Sign", "sign(%s)"},
    {"Neg", "-%s"},           {"Reciprocal", "1.0 / %s"},   {"Softplus", "softplus(%s)"},
    {"Softsign", "%s / (1.0 + abs(%s))"},
    {"Sin", "sin(%s)"},       {"Cos", "cos(%s)"},           {"Tan", "sin(%s) / cos(%s)"},
    {"Sinh", "(exp(%s) - exp(-%s)) / 2.0"},
    {"Cosh", "(exp(%s) + exp(-%s)) / 2.0"},
};

static bool map_unary(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float tensors are supported");
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  for (size_t i = 0; i < sizeof unaries / sizeof *unaries; i++)
    if (strcmp(unaries[i].op, n->op_type) == 0)
      return imp_bind(im, 0, x->dtype, &x->shape, unaries[i].fmt, r, r);
  return imp_fail(im, "internal: no unary mapping");
}

static bool map_activation(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  const char *r = imp_ref_tensor(im, x), *op = n->op_type;
  if (!r) return false;
  double a = imp_attr_float(n, "alpha", strcmp(op, "LeakyRelu") == 0     ? 0.01
                                        : strcmp(op, "HardSigmoid") == 0 ? 0.2
                                        : strcmp(op, "Selu") == 0        ? 1.67326319217681884765625
                                                                         : 1.0);
  const char *al = imp_num(im, a);
  if (strcmp(op, "LeakyRelu") == 0)
    return imp_bind(im, 0, x->dtype, &x->shape, "leaky_relu(%s, alpha = %s)", r, al);
  if (strcmp(op, "Elu") == 0)
    return imp_bind(im, 0, x->dtype, &x->shape, "elu(%s, alpha = %s)", r, al);
  if (strcmp(op, "Selu") == 0) {
    double g = imp_attr_float(n, "gamma", 1.05070102214813232421875);
    return imp_bind(im, 0, x->dtype, &x->shape, "%s * elu(%s, alpha = %s)", imp_num(im, g), r, al);
  }
  if (strcmp(op, "HardSigmoid") == 0) {
    double b = imp_attr_float(n, "beta", 0.5);
    return imp_bind(im, 0, x->dtype, &x->shape, "clamp(%s * %s + %s, min = 0.0, max = 1.0)", al,
                    r, imp_num(im, b));
  }
  if (strcmp(op, "HardSwish") == 0)
    return imp_bind(im, 0, x->dtype, &x->shape, "%s * clamp(%s / 6.0 + 0.5, min = 0.0, max = 1.0)",
                    r, r);
  if (strcmp(op, "ThresholdedRelu") == 0)
    return imp_bind(im, 0, x->dtype, &x->shape, "where(%s > %s, %s, 0.0)", r, al, r);
  return imp_fail(im, "internal: no activation mapping");
}

static const char *operand(Imp *im, ImpVal *v, const ImpVal *other) {
  if (!v->ident && v->has_const && shape_numel(&v->shape) == 1 &&
      v->shape.rank <= other->shape.rank && dtype_is_float(v->dtype))
    return imp_num(im, tensor_get(&v->konst, 0));
  return imp_ref_tensor(im, v);
}

typedef struct Binary {
  const char *op, *fmt;
  bool compare;
} Binary;

static const Binary binaries[] = {
    {"Add", "%s + %s", false},          {"Sub", "%s - %s", false},
    {"Mul", "%s * %s", false},          {"Div", "%s / %s", false},
    {"Pow", "pow(%s, %s)", false},      {"Max", "maximum(%s, %s)", false},
    {"Min", "minimum(%s, %s)", false},  {"Sum", "%s + %s", false},
    {"Mean", "%s + %s", false},         {"Equal", "%s == %s", true},
    {"Less", "%s < %s", true},          {"Greater", "%s > %s", true},
    {"LessOrEqual", "%s <= %s", true},  {"GreaterOrEqual", "%s >= %s", true},
};

static const Binary *find_binary(const char *op) {
  for (size_t i = 0; i < sizeof binaries / sizeof *binaries; i++)
    if (strcmp(binaries[i].op, op) == 0) return &binaries[i];
  return NULL;
}

/* a binary op, or a variadic one folded left to right */
static bool map_binary(Imp *im, const Onnx__NodeProto *n) {
  const Binary *b = find_binary(n->op_type);
  ImpVal *a = imp_in(im, 0);
  if (!a) return false;
  Shape s = a->shape;
  const char *acc = NULL;
  DType dt = a->dtype;
  for (size_t k = 1; k < n->n_input || (k == 1 && n->n_input == 1); k++) {
    if (n->n_input == 1) {
      acc = imp_ref_tensor(im, a);
      break;
    }
    ImpVal *c = imp_in(im, (int)k);
    if (!c) return false;
    Shape t = s;
    if (!imp_broadcast(im, &t, &c->shape, &s)) return false;
    ImpVal lhs = *a;
    lhs.shape = t;
    const char *l = acc ? acc : operand(im, a, c), *r = operand(im, c, &lhs);
    if (!l || !r) return false;
    bool lit_a = !a->ident && !acc, lit_c = !c->ident;
    if (strcmp(n->op_type, "Pow") == 0 && c->dtype != a->dtype && dtype_is_float(a->dtype) &&
        !lit_c)
      r = imp_printf(im, "cast(%s, %s)", r, dtype_name(a->dtype));
    else if (c->dtype != a->dtype && !lit_a && !lit_c)
      return imp_fail(im, "operands of different element types (%s, %s)", dtype_name(a->dtype),
                      dtype_name(c->dtype));
    if (!a->ident && !c->ident) return imp_fail(im, "internal: constant operands not folded");
    if (lit_a) dt = c->dtype;
    acc = imp_printf(im, b->fmt, l, r);
    if (k + 1 < n->n_input) acc = imp_printf(im, "(%s)", acc);
  }
  if (!acc) return false;
  if (!dtype_is_float(dt) && !b->compare) return imp_fail(im, "only float tensors are supported");
  if (strcmp(n->op_type, "Mean") == 0 && n->n_input > 1)
    acc = imp_printf(im, "(%s) / %d.0", acc, (int)n->n_input);
  return imp_bind(im, 0, dt, &s, "%s", acc);
}

static bool map_prelu(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *sl = imp_in(im, 1);
  Shape s;
  if (!x || !sl || !imp_broadcast(im, &x->shape, &sl->shape, &s)) return false;
  const char *r = imp_ref_tensor(im, x), *q = operand(im, sl, x);
  return r && q &&
         imp_bind(im, 0, x->dtype, &s, "relu(%s) + %s * minimum(%s, 0.0)", r, q, r);
}

/* [.., M, K] @ [.., K, N] with NumPy's rank-1 promotion */
static bool map_matmul(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *a = imp_in(im, 0), *b = imp_in(im, 1);
  if (!a || !b) return false;
  Shape sa = a->shape, sb = b->shape;
  if (sa.rank < 1 || sb.rank < 1) return imp_fail(im, "MatMul of a scalar");
  const char *ra = imp_ref_tensor(im, a), *rb = imp_ref_tensor(im, b);
  if (!ra || !rb) return false;
  if (sa.rank == 1) {
    ra = imp_printf(im, "reshape(%s, [1, %lld])", ra, (long long)sa.dim[0]);
    sa.rank = 2, sa.dim[1] = sa.dim[0], sa.dim[0] = 1;
  }
  if (sb.rank == 1) {
    rb = imp_printf(im, "reshape(%s, [%lld, 1])", rb, (long long)sb.dim[0]);
    sb.rank = 2, sb.dim[1] = 1;
  }
  if (sa.dim[sa.rank - 1] != sb.dim[sb.rank - 2]) return imp_fail(im, "inner dims differ");
  Shape ba = sa, bb = sb, s;
  ba.rank -= 2, bb.rank -= 2;
  ba.dyn = ba.rank ? sa.dyn : 0, bb.dyn = bb.rank ? sb.dyn : 0; /* a batch among batch dims */
  if (!imp_broadcast(im, &ba, &bb, &s)) return false;
  if (s.rank == 0) s.dyn = a->shape.rank == 2 ? a->shape.dyn : 0; /* the rows of A */
  s.dim[s.rank++] = sa.dim[sa.rank - 2];
  s.dim[s.rank++] = sb.dim[sb.rank - 1];
  Shape out = s;
  if (a->shape.rank == 1) out.dim[out.rank - 2] = out.dim[out.rank - 1], out.rank--;
  if (b->shape.rank == 1) out.rank--, out.dim[out.rank] = 0;
  const char *e = imp_printf(im, "%s @ %s", ra, rb);
  if (!shape_equal(&out, &s)) e = imp_printf(im, "reshape(%s, %s)", e, imp_dims(im, &out));
  return imp_bind(im, 0, a->dtype, &out, "%s", e);
}

static bool map_gemm(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *a = imp_in(im, 0), *b = imp_in(im, 1), *c = imp_in_opt(im, 2);
  if (!a || !b) return false;
  if (a->shape.rank != 2 || b->shape.rank != 2) return imp_fail(im, "Gemm needs 2-D A and B");
  bool ta = imp_attr_int(n, "transA", 0), tb = imp_attr_int(n, "transB", 0);
  double alpha = imp_attr_float(n, "alpha", 1), beta = imp_attr_float(n, "beta", 1);
  const char *ra = imp_ref_tensor(im, a), *rb = imp_ref_tensor(im, b);
  if (!ra || !rb) return false;
  Shape s = {0};
  s.rank = 2;
  s.dim[0] = a->shape.dim[ta ? 1 : 0];
  s.dim[1] = b->shape.dim[tb ? 0 : 1];
  s.dyn = ta ? 0 : a->shape.dyn; /* a batch in the contraction gives a static result */
  if (a->shape.dim[ta ? 0 : 1] != b->shape.dim[tb ? 1 : 0]) return imp_fail(im, "K differs");
  const char *e = imp_printf(im, "%s%s%s @ %s%s%s", ta ? "transpose(" : "", ra, ta ? ")" : "",
                             tb ? "transpose(" : "", rb, tb ? ")" : "");
  if (alpha != 1) e = imp_printf(im, "%s * (%s)", imp_num(im, alpha), e);
  if (c && beta != 0) {
    Shape t;
    if (!imp_broadcast(im, &c->shape, &s, &t) || !shape_equal(&t, &s))
      return im->n_problems ? false : imp_fail(im, "C does not broadcast to the result");
    ImpVal res = *a;
    res.shape = s;
    const char *rc = operand(im, c, &res);
    if (!rc) return false;
    e = beta == 1 ? imp_printf(im, "%s + %s", e, rc)
                  : imp_printf(im, "%s + %s * %s", e, imp_num(im, beta), rc);
  }
  return imp_bind(im, 0, a->dtype, &s, "%s", e);
}

static bool map_softmax(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  bool old = im->opset < 13;
  int r = x->shape.rank;
  int axis = imp_axis(im, imp_attr_int(n, "axis", old ? 1 : -1), r);
  if (axis < 0) return false;
  const char *fn = strcmp(n->op_type, "LogSoftmax") == 0 ? "log_softmax" : "softmax";
  const char *rx = imp_ref_tensor(im, x);
  if (!rx) return false;
  if (!old || axis == r - 1)
    return imp_bind(im, 0, x->dtype, &x->shape, "%s(%s, axis = %d)", fn, rx, axis);
  int64_t lead = 1, rest = 1;
  for (int i = 0; i < r; i++)
    *(i < axis ? &lead : &rest) *= x->shape.dim[i];
  return imp_bind(im, 0, x->dtype, &x->shape,
                  "reshape(%s(reshape(%s, [%lld, %lld]), axis = 1), %s)", fn, rx,
                  (long long)lead, (long long)rest, imp_dims(im, &x->shape));
}

static bool reduce_axes(Imp *im, const Onnx__NodeProto *n, int rank, bool *red, bool *noop) {
  int64_t ax[IR_MAX_RANK + 1];
  bool input_axes = im->opset >= 18 || (im->opset >= 13 && strcmp(n->op_type, "ReduceSum") == 0);
  int na = input_axes ? (imp_in_opt(im, 1) ? imp_const_ints(im, 1, ax, IR_MAX_RANK) : -1)
                      : imp_attr_ints(n, "axes", ax, IR_MAX_RANK);
  if (im->n_problems) return false;
  *noop = na <= 0 && imp_attr_int(n, "noop_with_empty_axes", 0);
  for (int i = 0; i < rank; i++)
    red[i] = na <= 0;
  for (int i = 0; i < na; i++) {
    int a = imp_axis(im, ax[i], rank);
    if (a < 0) return false;
    red[a] = true;
  }
  return true;
}

static bool map_reduce(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  bool red[IR_MAX_RANK], noop = false;
  if (!x || !reduce_axes(im, n, x->shape.rank, red, &noop)) return false;
  if (noop) { /* empty axes with noop_with_empty_axes: the input unchanged */
    const char *r = imp_ref_tensor(im, x);
    return r && imp_bind(im, 0, x->dtype, &x->shape, "%s", r);
  }
  bool keep = imp_attr_int(n, "keepdims", 1) != 0;
  const char *axes = "(", *rx = imp_ref_tensor(im, x), *op = n->op_type + 6;
  if (!rx) return false;
  Shape s = {0};
  int cnt = 0;
  for (int i = 0; i < x->shape.rank; i++) {
    if (red[i]) axes = imp_printf(im, "%s%s%d", axes, cnt++ ? ", " : "", i);
    if (!red[i] || keep) s.dim[s.rank++] = red[i] ? 1 : x->shape.dim[i];
  }
  axes = imp_printf(im, "%s%s)", axes, cnt == 1 ? "," : "");
  const char *kd = keep ? ", keepdims = true" : "", *e;
  if (strcmp(op, "Sum") == 0 || strcmp(op, "Mean") == 0 || strcmp(op, "Max") == 0)
    e = imp_printf(im, "%s(%s, axis = %s%s)", strcmp(op, "Sum") == 0 ? "sum"
                                              : strcmp(op, "Mean") == 0 ? "mean" : "max",
                   rx, axes, kd);
  else if (strcmp(op, "Min") == 0)
    e = imp_printf(im, "min(%s, axis = %s%s)", rx, axes, kd);
  else if (strcmp(op, "SumSquare") == 0)
    e = imp_printf(im, "sum(%s * %s, axis = %s%s)", rx, rx, axes, kd);
  else if (strcmp(op, "L2") == 0)
    e = imp_printf(im, "sqrt(sum(%s * %s, axis = %s%s))", rx, rx, axes, kd);
  else if (strcmp(op, "L1") == 0)
    e = imp_printf(im, "sum(abs(%s), axis = %s%s)", rx, axes, kd);
  else if (strcmp(op, "LogSum") == 0)
    e = imp_printf(im, "log(sum(%s, axis = %s%s))", rx, axes, kd);
  else if (strcmp(op, "LogSumExp") == 0)
    e = imp_printf(im, "logsumexp(%s, axis = %s%s)", rx, axes, kd);
  else
    return imp_fail(im, "reduction '%s' is not supported", n->op_type);
  return imp_bind(im, 0, x->dtype, &s, "%s", e);
}

typedef struct OpEntry {
  const char *name;
  ImpOpFn fn;
} OpEntry;

static const OpEntry ops[] = {
    {"LeakyRelu", map_activation}, {"Elu", map_activation},
    {"Selu", map_activation},      {"HardSigmoid", map_activation},
    {"HardSwish", map_activation}, {"ThresholdedRelu", map_activation},
    {"PRelu", map_prelu},          {"MatMul", map_matmul},
    {"Gemm", map_gemm},            {"Softmax", map_softmax},
    {"LogSoftmax", map_softmax},   {"ReduceSum", map_reduce},
    {"ReduceMean", map_reduce},    {"ReduceMax", map_reduce},
    {"ReduceMin", map_reduce},     {"ReduceSumSquare", map_reduce},
    {"ReduceL2", map_reduce},      {"ReduceL1", map_reduce},
    {"ReduceLogSum", map_reduce},  {"ReduceLogSumExp", map_reduce},
};

ImpOpFn imp_op_basic(const char *op) {
  for (size_t i = 0; i < sizeof unaries / sizeof *unaries; i++)
    if (strcmp(unaries[i].op, op) == 0) return map_unary;
  if (find_binary(op)) return map_binary;
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].name, op) == 0) return ops[i].fn;
  return NULL;
}
