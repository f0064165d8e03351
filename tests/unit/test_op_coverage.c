/* tests/unit/test_op_coverage.c — every op of ir/ops.def, by itself, through every stage.
 *
 * One loop over OpKind 0 .. OP_COUNT-1. Each op either has a case in `cases` (a small
 * instance built from f64 params) or a line in `exempt` saying why it cannot be built
 * standalone and which test covers it; an op that is neither fails the test, so a newly
 * added op must be covered here. For each case:
 *   1. the reference evaluator runs it (finite values of the inferred shape), and the IR
 *      text form round-trips it (print, parse, print: same text; same values evaluated);
 *   2. CSE merges two equal instances (the attribute compare of passes/cse.c);
 *   3. the generated C (tests/unit/codegen_harness.h) equals the evaluator: built by gcc in
 *      the quick run (label fast), by gcc and clang with `--exhaustive`
 *      (test_op_coverage_exhaustive, label slow);
 *   4. the vjp column of ops.def says what the case expects (a rule, a zero derivative or
 *      none), so a hook replaced by vjp_none fails here; and every op with a rule or a zero
 *      derivative is checked against central finite differences in f64, as in
 *      test_autodiff_gradcheck.c (loss = sum(op(params) * R), R fixed and random), unless
 *      the case names a reason it cannot be (integer inputs, the stop_gradient identity).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_harness.h"
#include "passes/autodiff_internal.h"
#include "passes/passes.h"

#define H 1e-6
#define TOL 1e-6
#define RTOL_CG 1e-10
#define MAXP 2

static const SrcLoc L = {"coverage.lathe", 5, 1};
static Diag *D;

/* ---- deterministic random numbers ---- */
static uint64_t rng = 88172645463325252ull;
static double urand(void) { /* xorshift64, [0, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

typedef enum Range { R_ANY, R_POS, R_NONZERO, R_EXPONENT } Range;

static double sample(Range r) {
  double u = urand();
  switch (r) {
  case R_POS:
    return 0.5 + 1.5 * u; /* [0.5, 2) */
  case R_NONZERO:
    return (u < 0.5 ? -1 : 1) * (0.2 + u); /* |x| >= 0.2 */
  case R_EXPONENT:
    return -1.0 + 3.0 * u; /* [-1, 2) */
  default:
    return 2.0 * u - 1.0; /* [-1, 1) */
  }
}

/* ---- builders ---- */
static NodeId add(Graph *g, OpKind op, const NodeId *in, int n, const NodeAttr *attr) {
  return graph_add(g, op, in, n, attr, L, D);
}

static NodeId const_data(Graph *g, DType t, const Shape *s, const double *values) {
  int64_t n = shape_numel(s);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    data[i] = values ? values[i] : 2.0 * urand() - 1.0;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  at.constant.shape = *s;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, L, D);
}

static NodeAttr zero_attr(void) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  return a;
}

static NodeAttr window(int rank, const int *begin, const int *step, const int *dim) {
  NodeAttr a = zero_attr();
  for (int i = 0; i < rank; i++)
    a.slice.begin[i] = begin[i], a.slice.step[i] = step[i], a.slice.dim[i] = dim[i];
  return a;
}

/* stride s, padding p on every side, window k (0: from the weights), one group */
static NodeAttr conv_attr(int s, int p, int k) {
  NodeAttr a = zero_attr();
  for (int i = 0; i < 2; i++)
    a.conv.stride[i] = s, a.conv.dilation[i] = 1, a.conv.kernel[i] = k;
  for (int i = 0; i < 4; i++)
    a.conv.pad[i] = p;
  a.conv.groups = 1;
  a.conv.layout = IR_CONV_NCHW;
  return a;
}

static const double IDS[6] = {3, 0, 3, 4, 1, 3}; /* repeats: scatter_add must sum them */

typedef NodeId (*BuildFn)(Graph *g, const NodeId *p);

#define BIN(fn, op)                                                                                \
  static NodeId fn(Graph *g, const NodeId *p) {                                                    \
    return add(g, op, p, 2, NULL);                                                                 \
  }
#define UN(fn, op)                                                                                 \
  static NodeId fn(Graph *g, const NodeId *p) {                                                    \
    return add(g, op, p, 1, NULL);                                                                 \
  }
BIN(b_add, OP_ADD)
BIN(b_sub, OP_SUB)
BIN(b_mul, OP_MUL)
BIN(b_div, OP_DIV)
BIN(b_maximum, OP_MAXIMUM)
BIN(b_minimum, OP_MINIMUM)
BIN(b_pow, OP_POW)
BIN(b_lt, OP_LT)
BIN(b_le, OP_LE)
BIN(b_gt, OP_GT)
BIN(b_ge, OP_GE)
BIN(b_eq, OP_EQ)
BIN(b_ne, OP_NE)
UN(u_neg, OP_NEG)
UN(u_exp, OP_EXP)
UN(u_log, OP_LOG)
UN(u_sqrt, OP_SQRT)
UN(u_abs, OP_ABS)
UN(u_sign, OP_SIGN)
UN(u_relu, OP_RELU)
UN(u_sigmoid, OP_SIGMOID)
UN(u_tanh, OP_TANH)
UN(u_stop, OP_STOP_GRAD)
UN(u_erf, OP_ERF)
UN(u_sin, OP_SIN) /* issue 22 (ops1) */
UN(u_cos, OP_COS)

static NodeId c_cast(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.cast.dtype = DT_F64;
  return add(g, OP_CAST, p, 1, &a);
}
static NodeId c_matmul(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.matmul.trans_b = true;
  return add(g, OP_MATMUL, p, 2, &a); /* [3,4] x [5,4]^T */
}
static NodeId softmax_of(Graph *g, OpKind op, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.softmax.axis = 1;
  return add(g, op, p, 1, &a);
}
static NodeId c_softmax(Graph *g, const NodeId *p) {
  return softmax_of(g, OP_SOFTMAX, p);
}
static NodeId c_log_softmax(Graph *g, const NodeId *p) {
  return softmax_of(g, OP_LOG_SOFTMAX, p);
}
static NodeId reduce_of(Graph *g, OpKind op, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.reduce.axes = 2;
  return add(g, op, p, 1, &a);
}
static NodeId c_sum(Graph *g, const NodeId *p) {
  return reduce_of(g, OP_SUM, p);
}
static NodeId c_mean(Graph *g, const NodeId *p) {
  return reduce_of(g, OP_MEAN, p);
}
static NodeId c_max(Graph *g, const NodeId *p) {
  return reduce_of(g, OP_MAX, p);
}
static NodeId c_reshape(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.reshape.shape = shape_make(2, (int64_t[]){2, 6});
  return add(g, OP_RESHAPE, p, 1, &a);
}
static NodeId c_transpose(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.transpose.perm[0] = 2, a.transpose.perm[1] = 0, a.transpose.perm[2] = 1;
  return add(g, OP_TRANSPOSE, p, 1, &a);
}
static NodeId c_broadcast(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.reshape.shape = shape_make(3, (int64_t[]){2, 3, 4});
  return add(g, OP_BROADCAST, p, 1, &a);
}
static NodeId c_one_hot(Graph *g, const NodeId *p) {
  (void)p;
  Shape s = shape_make(1, (int64_t[]){6});
  NodeId ids = const_data(g, DT_I32, &s, IDS);
  NodeAttr a = zero_attr();
  a.one_hot.depth = 5;
  a.one_hot.dtype = DT_F64;
  return add(g, OP_ONE_HOT, &ids, 1, &a);
}
static NodeId c_pack(Graph *g, const NodeId *p) {
  return add(g, OP_PACK, p, 2, NULL);
}
static NodeId c_unpack(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.unpack.offset = 2;
  a.unpack.shape = shape_make(2, (int64_t[]){2, 3});
  return add(g, OP_UNPACK, p, 1, &a); /* [12] elements 2..7 as [2,3] */
}
static NodeId c_where(Graph *g, const NodeId *p) {
  Shape cs = shape_make(2, (int64_t[]){3, 1});
  NodeId c = const_data(g, DT_F64, &cs, (double[]){1, 0, -2});
  return add(g, OP_WHERE, (NodeId[]){c, p[0], p[1]}, 3, NULL); /* [3,1] ? [3,4] : [4] */
}
static NodeId c_slice(Graph *g, const NodeId *p) {
  NodeAttr a = window(2, (int[]){1, 0}, (int[]){2, 3}, (int[]){2, 2});
  return add(g, OP_SLICE, p, 1, &a); /* [5,6] rows 1,3 cols 0,3 */
}
static NodeId c_unslice(Graph *g, const NodeId *p) {
  NodeAttr a = window(2, (int[]){0, 1}, (int[]){2, 2}, (int[]){5, 7});
  return add(g, OP_UNSLICE, p, 1, &a); /* [3,3] into [5,7] */
}
static NodeId c_gather(Graph *g, const NodeId *p) {
  Shape is = shape_make(2, (int64_t[]){2, 3});
  NodeId ids = const_data(g, DT_I32, &is, IDS);
  return add(g, OP_GATHER, (NodeId[]){p[0], ids}, 2, NULL); /* [5,3] -> [2,3,3] */
}
static NodeId c_scatter_add(Graph *g, const NodeId *p) {
  Shape is = shape_make(2, (int64_t[]){2, 3});
  NodeId ids = const_data(g, DT_I64, &is, IDS);
  NodeAttr a = {.gather = {5}};
  return add(g, OP_SCATTER_ADD, (NodeId[]){p[0], ids}, 2, &a); /* [2,3,2] -> [5,2] */
}
static NodeId c_write_at(Graph *g, const NodeId *p) {
  Shape s0 = shape_make(0, NULL);
  NodeId at = const_data(g, DT_I32, &s0, (double[]){2});
  NodeAttr a = zero_attr();
  a.softmax.axis = 1;
  return add(g, OP_WRITE_AT, (NodeId[]){p[0], p[1], at}, 3, &a); /* [2,5,3] rows 2..3 of [2,2,3] */
}
static NodeId c_topk(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.topk.k = 3;
  a.topk.smallest = true;
  return add(g, OP_TOPK, p, 1, &a); /* [3,5] -> [3,3] */
}
/* issue 20: the mask of the 6 smallest |w| of 12 (the old mask is ignored on an update) */
static NodeId c_prune_mask(Graph *g, const NodeId *p) {
  Shape s = shape_make(2, (int64_t[]){3, 4});
  NodeId old = const_data(g, DT_F64, &s, (double[]){1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1});
  NodeId sparsity = graph_add_scalar(g, DT_F64, 0.5, L);
  NodeAttr a = zero_attr();
  return add(g, OP_PRUNE_MASK, (NodeId[]){p[0], old, sparsity}, 3, &a);
}
/* one replica (no hook): the identity; `cotangent` round-trips through the IR text */
static NodeId c_replica_sum(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.replica.cotangent = true;
  return add(g, OP_REPLICA_SUM, p, 1, &a);
}
static NodeId c_random(Graph *g, const NodeId *p) {
  (void)p;
  NodeAttr a = zero_attr();
  a.random.stream = 3;
  a.random.dist = 1;
  a.random.dtype = DT_F64;
  a.random.shape = shape_make(2, (int64_t[]){3, 4});
  NodeId seed = graph_add_scalar(g, DT_F64, 977, L), step = graph_add_scalar(g, DT_F64, 2, L);
  return add(g, OP_RANDOM, (NodeId[]){seed, step}, 2, &a);
}
static NodeId c_dropout(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.random.stream = 5;
  a.random.p = 0.4;
  NodeId seed = graph_add_scalar(g, DT_F64, 977, L), step = graph_add_scalar(g, DT_F64, 2, L);
  return add(g, OP_DROPOUT, (NodeId[]){p[0], seed, step}, 3, &a);
}
static NodeId c_conv2d(Graph *g, const NodeId *p) {
  NodeAttr a = conv_attr(1, 1, 0);
  return add(g, OP_CONV2D, p, 2, &a); /* x [1,2,5,5], w [3,2,3,3] -> [1,3,5,5] */
}
static NodeId c_conv_t(Graph *g, const NodeId *p) {
  NodeAttr a = conv_attr(2, 0, 0);
  return add(g, OP_CONV_TRANSPOSE2D, p, 2, &a); /* x [1,3,3,3], w [3,2,2,2] -> [1,2,6,6] */
}
static NodeId c_conv_gw(Graph *g, const NodeId *p) {
  NodeAttr a = conv_attr(1, 1, 3);
  return add(g, OP_CONV2D_GRAD_WEIGHT, p, 2, &a); /* x [1,2,4,4], gy [1,3,4,4] -> [3,2,3,3] */
}
static NodeId c_pool(Graph *g, const NodeId *p) {
  NodeAttr a = conv_attr(2, 0, 2);
  a.conv.dilation[0] = a.conv.dilation[1] = 1;
  return add(g, OP_MAX_POOL2D, p, 1, &a); /* [1,2,4,4] -> [1,2,2,2] */
}
static NodeId c_pool_grad(Graph *g, const NodeId *p) {
  NodeAttr a = conv_attr(2, 0, 2);
  return add(g, OP_MAX_POOL2D_GRAD, p, 2, &a); /* x [1,2,4,4], gy [1,2,2,2] -> [1,2,4,4] */
}
/* the training choice: train_select(p0 * p1, exp(p0) - p1) */
static NodeId c_train_select(Graph *g, const NodeId *p) {
  NodeAttr a = zero_attr();
  a.mode.train = true;
  NodeId t = add(g, OP_MUL, p, 2, NULL), e = add(g, OP_EXP, p, 1, NULL);
  NodeId i = add(g, OP_SUB, (NodeId[]){e, p[1]}, 2, NULL);
  return add(g, OP_TRAIN_SELECT, (NodeId[]){t, i}, 2, &a);
}

/* ---- the table: one case per op ---- */

/* int8 quantization (ir/quant.c): per-channel scales [4] and zero points over x [3, 4] */
static NodeAttr quant_attr(int x_zp, int out_zp, int qmin, int qmax) {
  NodeAttr a = zero_attr();
  a.quant.x_zp = x_zp, a.quant.out_zp = out_zp, a.quant.qmin = qmin, a.quant.qmax = qmax;
  return a;
}
static NodeId quant_of(Graph *g, OpKind op, NodeId x, const NodeAttr *a) {
  Shape c = shape_make(1, (int64_t[]){4});
  NodeId s = const_data(g, DT_F64, &c, (double[]){0.01, 0.05, 0.2, 0.007});
  NodeId zp = const_data(g, DT_I32, &c, (double[]){3, -7, 0, 100});
  return add(g, op, (NodeId[]){x, s, zp}, 3, a);
}
static NodeId c_quantize(Graph *g, const NodeId *p) {
  NodeAttr a = quant_attr(0, 0, -128, 127);
  return quant_of(g, OP_QUANTIZE, p[0], &a);
}
static NodeId c_dequantize(Graph *g, const NodeId *p) {
  return quant_of(g, OP_DEQUANTIZE, c_quantize(g, p), NULL);
}
static NodeId c_fake_quant(Graph *g, const NodeId *p) {
  NodeAttr a = quant_attr(0, 0, -20, 90);
  return quant_of(g, OP_FAKE_QUANT, p[0], &a);
}
static NodeId c_fake_quant_mask(Graph *g, const NodeId *p) {
  NodeAttr a = quant_attr(0, 0, -20, 90);
  return quant_of(g, OP_FAKE_QUANT_MASK, p[0], &a);
}
static NodeId c_qdense(Graph *g, const NodeId *p) { /* i8 [3, 4] x [4, 2] -> [3, 2] */
  Shape ws = shape_make(2, (int64_t[]){4, 2}), os = shape_make(1, (int64_t[]){2});
  NodeId w = const_data(g, DT_I8, &ws, (double[]){127, -127, 3, 50, -80, 0, 9, -1});
  NodeId b = const_data(g, DT_I32, &os, (double[]){-700, 1234});
  NodeId m = const_data(g, DT_I32, &os, (double[]){1288490189, 1717986918});
  NodeId sh = const_data(g, DT_I32, &os, (double[]){-6, 1});
  NodeAttr a = quant_attr(-5, 7, -100, 127);
  return add(g, OP_QDENSE, (NodeId[]){c_quantize(g, p), w, b, m, sh}, 5, &a);
}
static NodeId c_qconv2d(Graph *g, const NodeId *p) { /* i8 [1, 3, 4, 4] by [2, 3, 3, 3] */
  Shape ws = shape_make(4, (int64_t[]){2, 3, 3, 3}), os = shape_make(1, (int64_t[]){2});
  double wv[54];
  for (int i = 0; i < 54; i++)
    wv[i] = (i * 37) % 255 - 127;
  NodeId w = const_data(g, DT_I8, &ws, wv);
  NodeId b = const_data(g, DT_I32, &os, (double[]){-70, 134});
  NodeId m = const_data(g, DT_I32, &os, (double[]){1288490189, 1717986918});
  NodeId sh = const_data(g, DT_I32, &os, (double[]){-6, -3});
  NodeAttr a = quant_attr(-5, 7, -100, 127);
  a.quant.stride[0] = 2, a.quant.stride[1] = 1, a.quant.dilation[0] = 1, a.quant.dilation[1] = 2;
  a.quant.pad[0] = 1, a.quant.pad[1] = 2, a.quant.pad[2] = 0, a.quant.pad[3] = 1;
  return add(g, OP_QCONV2D, (NodeId[]){c_quantize(g, p), w, b, m, sh}, 5, &a);
}
/* int8 pools and add: x [1, 2, 4, 4] quantized per channel of its last axis */
static NodeId c_qmax_pool(Graph *g, const NodeId *p) { /* window 3, stride 2, pad 1: [1,2,2,2] */
  NodeAttr a = conv_attr(2, 1, 3);
  return add(g, OP_QMAX_POOL2D, (NodeId[]){c_quantize(g, p)}, 1, &a);
}
static NodeId c_qavg_pool(Graph *g, const NodeId *p) { /* window 2, stride 1, pad 1: [1,2,5,5] */
  NodeAttr a = conv_attr(1, 1, 2);
  return add(g, OP_QAVG_POOL2D, (NodeId[]){c_quantize(g, p)}, 1, &a);
}
static NodeId c_qadd(Graph *g, const NodeId *p) { /* q + q with other zero points: [3, 4] */
  Shape three = shape_make(1, (int64_t[]){3});
  NodeId zp = const_data(g, DT_I32, &three, (double[]){0, 5, -9});
  NodeId m = const_data(g, DT_I32, &three, (double[]){1073741824, 1518500250, 1789569707});
  NodeId sh = const_data(g, DT_I32, &three, (double[]){0, -1, -19});
  NodeId q = c_quantize(g, p);
  NodeAttr a = quant_attr(0, 0, -128, 120);
  return add(g, OP_QADD, (NodeId[]){q, q, zp, m, sh}, 5, &a);
}
/* int8 softmax at input scale 0.1 (TFLite's parameters of it) and a requantize from (1, zp 5)
 * to (0.5, zp -3) with a clamp, over the quantized [3, 4] */
static NodeId c_qsoftmax(Graph *g, const NodeId *p) {
  Shape three = shape_make(1, (int64_t[]){3});
  NodeId sp = const_data(g, DT_I32, &three, (double[]){1717986944, 23, -248});
  return add(g, OP_QSOFTMAX, (NodeId[]){c_quantize(g, p), sp}, 2, NULL);
}
static NodeId c_requantize(Graph *g, const NodeId *p) {
  Shape one = shape_make(0, NULL);
  NodeId m = const_data(g, DT_I32, &one, (double[]){1073741824});
  NodeId sh = const_data(g, DT_I32, &one, (double[]){2});
  NodeAttr a = quant_attr(5, -3, -128, 100);
  return add(g, OP_REQUANTIZE, (NodeId[]){c_quantize(g, p), m, sh}, 3, &a);
}

typedef struct OpCase {
  BuildFn build;
  int n; /* params p0 .. p{n-1}, all f64 */
  int rank[MAXP];
  int64_t dims[MAXP][4];
  Range range[MAXP];
  VjpKind vjp;              /* what the vjp column of ops.def must say */
  const char *no_gradcheck; /* why no finite-difference check, or NULL */
} OpCase;

#define M34                                                                                        \
  {2, 2}, {                                                                                        \
    {3, 4}, {                                                                                      \
      3, 4                                                                                         \
    }                                                                                              \
  }
#define V34                                                                                        \
  {2, 1}, {                                                                                        \
    {3, 4}, {                                                                                      \
      4                                                                                            \
    }                                                                                              \
  }
#define U34                                                                                        \
  {2}, {                                                                                           \
    { 3, 4 }                                                                                       \
  }
#define CASE_BIN(fn, r0, r1, kind)                                                                 \
  { fn, 2, V34, {r0, r1}, kind, NULL }
#define CASE_CMP(fn)                                                                               \
  { fn, 2, M34, {R_ANY, R_ANY}, VJP_ZERO, NULL }
#define CASE_UN(fn, r, kind)                                                                       \
  { fn, 1, U34, {r}, kind, NULL }

static const OpCase cases[OP_COUNT] = {
    [OP_ADD] = CASE_BIN(b_add, R_ANY, R_ANY, VJP_RULE),
    [OP_SUB] = CASE_BIN(b_sub, R_ANY, R_ANY, VJP_RULE),
    [OP_MUL] = CASE_BIN(b_mul, R_ANY, R_ANY, VJP_RULE),
    [OP_DIV] = CASE_BIN(b_div, R_ANY, R_POS, VJP_RULE),
    [OP_MAXIMUM] = CASE_BIN(b_maximum, R_ANY, R_ANY, VJP_RULE),
    [OP_MINIMUM] = CASE_BIN(b_minimum, R_ANY, R_ANY, VJP_RULE),
    [OP_POW] = CASE_BIN(b_pow, R_POS, R_EXPONENT, VJP_RULE),
    [OP_LT] = CASE_CMP(b_lt),
    [OP_LE] = CASE_CMP(b_le),
    [OP_GT] = CASE_CMP(b_gt),
    [OP_GE] = CASE_CMP(b_ge),
    [OP_EQ] = CASE_CMP(b_eq),
    [OP_NE] = CASE_CMP(b_ne),
    [OP_NEG] = CASE_UN(u_neg, R_ANY, VJP_RULE),
    [OP_EXP] = CASE_UN(u_exp, R_ANY, VJP_RULE),
    [OP_LOG] = CASE_UN(u_log, R_POS, VJP_RULE),
    [OP_SQRT] = CASE_UN(u_sqrt, R_POS, VJP_RULE),
    [OP_ABS] = CASE_UN(u_abs, R_NONZERO, VJP_RULE),
    [OP_SIGN] = CASE_UN(u_sign, R_NONZERO, VJP_ZERO),
    [OP_RELU] = CASE_UN(u_relu, R_NONZERO, VJP_RULE),
    [OP_SIGMOID] = CASE_UN(u_sigmoid, R_ANY, VJP_RULE),
    [OP_TANH] = CASE_UN(u_tanh, R_ANY, VJP_RULE),
    [OP_STOP_GRAD] = {u_stop,
                      1,
                      U34,
                      {R_ANY},
                      VJP_ZERO,
                      "the value is the identity, the derivative zero by definition"},
    [OP_CAST] = CASE_UN(c_cast, R_ANY, VJP_RULE),
    [OP_MATMUL] = {c_matmul, 2, M34, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_SOFTMAX] = CASE_UN(c_softmax, R_ANY, VJP_RULE),
    [OP_LOG_SOFTMAX] = CASE_UN(c_log_softmax, R_ANY, VJP_RULE),
    [OP_SUM] = CASE_UN(c_sum, R_ANY, VJP_RULE),
    [OP_MEAN] = CASE_UN(c_mean, R_ANY, VJP_RULE),
    [OP_MAX] = CASE_UN(c_max, R_ANY, VJP_RULE),
    [OP_RESHAPE] = CASE_UN(c_reshape, R_ANY, VJP_RULE),
    [OP_TRANSPOSE] = {c_transpose, 1, {3}, {{2, 3, 4}}, {R_ANY}, VJP_RULE, NULL},
    [OP_BROADCAST] = {c_broadcast, 1, {2}, {{3, 1}}, {R_ANY}, VJP_RULE, NULL},
    [OP_ONE_HOT] = {c_one_hot, 0, {0}, {{0}}, {R_ANY}, VJP_ZERO, "its input is integer ids"},
    [OP_PACK] = {c_pack, 2, {2, 1}, {{2, 3}, {4}}, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_UNPACK] = {c_unpack, 1, {1}, {{12}}, {R_ANY}, VJP_RULE, NULL},
    [OP_ERF] = CASE_UN(u_erf, R_ANY, VJP_RULE),
    [OP_WHERE] = CASE_BIN(c_where, R_ANY, R_ANY, VJP_RULE),
    [OP_SLICE] = {c_slice, 1, {2}, {{5, 6}}, {R_ANY}, VJP_RULE, NULL},
    [OP_UNSLICE] = {c_unslice, 1, {2}, {{3, 3}}, {R_ANY}, VJP_RULE, NULL},
    [OP_GATHER] = {c_gather, 1, {2}, {{5, 3}}, {R_ANY}, VJP_RULE, NULL},
    [OP_SCATTER_ADD] = {c_scatter_add, 1, {3}, {{2, 3, 2}}, {R_ANY}, VJP_RULE, NULL},
    [OP_RANDOM] = {c_random,
                   0,
                   {0},
                   {{0}},
                   {R_ANY},
                   VJP_ZERO,
                   "its inputs are the integer seed and step counters"},
    [OP_DROPOUT] = {c_dropout, 1, {2}, {{4, 5}}, {R_ANY}, VJP_RULE, NULL},
    [OP_CONV2D] =
        {c_conv2d, 2, {4, 4}, {{1, 2, 5, 5}, {3, 2, 3, 3}}, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_CONV_TRANSPOSE2D] =
        {c_conv_t, 2, {4, 4}, {{1, 3, 3, 3}, {3, 2, 2, 2}}, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_CONV2D_GRAD_WEIGHT] =
        {c_conv_gw, 2, {4, 4}, {{1, 2, 4, 4}, {1, 3, 4, 4}}, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_MAX_POOL2D] = {c_pool, 1, {4}, {{1, 2, 4, 4}}, {R_ANY}, VJP_RULE, NULL},
    [OP_MAX_POOL2D_GRAD] =
        {c_pool_grad, 2, {4, 4}, {{1, 2, 4, 4}, {1, 2, 2, 2}}, {R_ANY, R_ANY}, VJP_NONE, NULL},
    [OP_TRAIN_SELECT] = {c_train_select, 2, M34, {R_ANY, R_ANY}, VJP_RULE, NULL},
    [OP_QUANTIZE] = {c_quantize, 1, U34, {R_ANY}, VJP_ZERO, "its result is integer (i8)"},
    [OP_DEQUANTIZE] = {c_dequantize, 1, U34, {R_ANY}, VJP_ZERO, "its input is integer (i8)"},
    [OP_FAKE_QUANT] = {c_fake_quant,
                       1,
                       U34,
                       {R_ANY},
                       VJP_RULE,
                       "the straight-through estimator is not the derivative; "
                       "tests/int8_fake_quant.sh checks it against PyTorch"},
    [OP_FAKE_QUANT_MASK] =
        {c_fake_quant_mask, 1, U34, {R_ANY}, VJP_ZERO, "piecewise constant: 0 or 1"},
    [OP_QDENSE] = {c_qdense, 1, U34, {R_ANY}, VJP_NONE, NULL},
    [OP_QCONV2D] = {c_qconv2d, 1, {4}, {{1, 3, 4, 4}}, {R_ANY}, VJP_NONE, NULL},
    [OP_QMAX_POOL2D] = {c_qmax_pool, 1, {4}, {{1, 2, 4, 4}}, {R_ANY}, VJP_NONE, NULL},
    [OP_QAVG_POOL2D] = {c_qavg_pool, 1, {4}, {{1, 2, 4, 4}}, {R_ANY}, VJP_NONE, NULL},
    [OP_QADD] = {c_qadd, 1, U34, {R_ANY}, VJP_NONE, NULL},
    [OP_QSOFTMAX] = {c_qsoftmax, 1, U34, {R_ANY}, VJP_NONE, NULL},
    [OP_REQUANTIZE] = {c_requantize, 1, U34, {R_ANY}, VJP_NONE, NULL},
    [OP_TOPK] = {c_topk, 1, {2}, {{3, 5}}, {R_ANY}, VJP_ZERO,
                 "its result is integer indices (topk's values, a gather: test_frontend_vocab)"},
    [OP_PRUNE_MASK] =
        {c_prune_mask, 1, U34, {R_ANY}, VJP_ZERO, "piecewise constant: a 0/1 mask chosen from |w|"},
    [OP_WRITE_AT] = {c_write_at, 2, {3, 3}, {{2, 5, 3}, {2, 2, 3}}, {R_ANY, R_ANY}, VJP_NONE, NULL},
    /* issue 22 (ops1) */
    [OP_SIN] = CASE_UN(u_sin, R_ANY, VJP_RULE),
    [OP_COS] = CASE_UN(u_cos, R_ANY, VJP_RULE),
    /* issue 21 (data-parallel batch norm) */
    [OP_REPLICA_SUM] = CASE_UN(c_replica_sum, R_ANY, VJP_RULE),
};

/* Ops with no standalone instance here, and where they are tested instead. */
static const struct {
  OpKind op;
  const char *why;
} exempt[] = {
    /* sources: the operands of every case above (PARAM, CONST) or of every model test */
    {OP_INPUT, "a source; test_codegen_ops, test_ir_eval"},
    {OP_PARAM, "a source: the operand of every case here"},
    {OP_STATE, "a source; test_codegen_ops (optimizer state), test_autodiff_optim"},
    {OP_CONST, "a source: an operand of several cases here (where, gather, random)"},
    /* recurrence: a scan needs its body subgraph, a scan_arg exists only inside one */
    {OP_SCAN, "needs a body subgraph; test_autodiff_scan, test_codegen_scan"},
    {OP_SCAN_ARG, "only inside a scan body; test_autodiff_scan, test_codegen_scan"},
};
enum { N_EXEMPT = sizeof exempt / sizeof exempt[0] };
_Static_assert(N_EXEMPT == 6, "adding an exemption is a decision: update this count and say "
                              "in the table which test covers the op instead");

static const char *exemption(OpKind op) {
  for (int i = 0; i < N_EXEMPT; i++)
    if (exempt[i].op == op) return exempt[i].why;
  return NULL;
}

/* ---- the checks ---- */

static Module *make_module(const OpCase *k, const char *name, Tensor *params) {
  Module *m = module_new(name);
  for (int i = 0; i < k->n; i++) {
    char pname[16];
    snprintf(pname, sizeof pname, "p%d", i);
    Shape s = shape_make(k->rank[i], k->dims[i]);
    module_add_param(m, pname, DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
    tensor_alloc(&params[i], DT_F64, &s);
    for (int64_t e = 0; e < shape_numel(&s); e++)
      tensor_set(&params[i], e, sample(k->range[i]));
  }
  return m;
}

static NodeId build_case(Graph *g, OpKind op, const OpCase *k) {
  NodeId p[MAXP];
  for (int i = 0; i < k->n; i++)
    p[i] = graph_add_source(g, OP_PARAM, i, L);
  NodeId y = k->build(g, p);
  ck_assert_msg(y != IR_NONE, "%s: building failed: %s", ir_ops[op].name, diag_text(D));
  ck_assert_int_eq(graph_node(g, y)->op, op);
  return y;
}

/* the evaluator gives finite values of the inferred shape */
static void check_eval(OpKind op, const Graph *g, const Tensor *params, NodeId y) {
  Tensor out;
  ck_assert_msg(ir_eval(g, NULL, params, NULL, &out, NULL, D), "%s: eval: %s", ir_ops[op].name,
                diag_text(D));
  ck_assert(shape_equal(&out.shape, &graph_node(g, y)->shape));
  ck_assert_int_eq(out.dtype, graph_node(g, y)->dtype);
  for (int64_t i = 0; i < shape_numel(&out.shape); i++)
    ck_assert_msg(isfinite(tensor_get(&out, i)), "%s: eval: y[%lld] is not finite", ir_ops[op].name,
                  (long long)i);
  tensor_free(&out);
}

static void eval_all(OpKind op, const Graph *g, const Tensor *params, Tensor *out) {
  ck_assert_msg(ir_eval(g, NULL, params, NULL, out, NULL, D), "%s: eval: %s", ir_ops[op].name,
                diag_text(D));
}

/* The IR text form keeps the op and its attributes: printing, parsing and printing again
 * gives the same text, and the parsed graph evaluates to the same bits (an attribute that
 * print or parse forgot comes back as its zero value and changes the result). */
static void check_text(OpKind op, const Graph *g, const Tensor *params) {
  char *t1 = ir_print(g);
  Module *m2 = ir_parse(t1, "coverage.ir", D);
  ck_assert_msg(m2 != NULL, "%s: parse: %s\n--- text ---\n%s", ir_ops[op].name, diag_text(D), t1);
  char *t2 = ir_print(m2->model);
  ck_assert_msg(strcmp(t1, t2) == 0, "%s: round trip differs:\n%s\n---\n%s", ir_ops[op].name, t1,
                t2);
  Tensor a, b;
  eval_all(op, g, params, &a);
  eval_all(op, m2->model, params, &b);
  ck_assert(shape_equal(&a.shape, &b.shape) && a.dtype == b.dtype);
  for (int64_t i = 0; i < shape_numel(&a.shape); i++) {
    double x = tensor_get(&a, i), y = tensor_get(&b, i);
    ck_assert_msg(memcmp(&x, &y, sizeof x) == 0,
                  "%s: parsed text evaluates y[%lld] = %.17g, "
                  "the graph %.17g\n%s",
                  ir_ops[op].name, (long long)i, y, x, t1);
  }
  tensor_free(&a);
  tensor_free(&b);
  free(t1);
  free(t2);
  module_free(m2);
}

/* CSE compares the op's attributes: the same instance built twice is merged into one */
static void check_cse(OpKind op, const OpCase *k) {
  Tensor params[MAXP];
  Module *m = make_module(k, "cov_cse", params);
  Graph *g = graph_new(m, "forward");
  graph_add_output(g, "y1", build_case(g, op, k), OUT_VALUE, -1);
  graph_add_output(g, "y2", build_case(g, op, k), OUT_VALUE, -1);
  PassCtx c;
  pass_ctx_init(&c, D);
  ck_assert_msg(pass_cse(g, &c), "%s: cse: %s", ir_ops[op].name, diag_text(D));
  pass_ctx_fini(&c);
  ck_assert_msg(g->outputs[0].node == g->outputs[1].node,
                "%s: CSE did not merge two equal instances (%%%u, %%%u)", ir_ops[op].name,
                (unsigned)g->outputs[0].node, (unsigned)g->outputs[1].node);
  for (int i = 0; i < k->n; i++)
    tensor_free(&params[i]);
  graph_free(g);
  module_free(m);
}

/* forward entry y = op(params): the evaluator, the text form, then the generated C */
static void check_forward(OpKind op, const OpCase *k) {
  Tensor params[MAXP];
  char name[64];
  snprintf(name, sizeof name, "cov_%s", ir_ops[op].name);
  Module *m = make_module(k, name, params);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g); /* the module owns it; cgh_check_module compiles its entries */
  NodeId y = build_case(g, op, k);
  graph_add_output(g, "y", y, OUT_VALUE, -1);
  ck_assert_msg(ir_verify(g, D), "%s: %s", ir_ops[op].name, diag_text(D));
  check_eval(op, g, params, y);
  check_text(op, g, params);
  ck_assert_int_eq(m->n_entries, 1);
  cgh_check_module(m, NULL, params, NULL, RTOL_CG);
  for (int i = 0; i < k->n; i++)
    tensor_free(&params[i]);
  module_free(m);
}

static double eval_loss(const Graph *g, const Tensor *params) {
  Tensor outs[MAXP + 1];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, D), "eval: %s", diag_text(D));
  double l = tensor_get(&outs[0], 0);
  for (int i = 0; i < g->n_outputs; i++)
    tensor_free(&outs[i]);
  return l;
}

static void check_param(OpKind op, const Graph *g, Tensor *params, int i, const Tensor *grad) {
  for (int64_t e = 0; e < shape_numel(&params[i].shape); e++) {
    double x = tensor_get(&params[i], e);
    tensor_set(&params[i], e, x + H);
    double up = eval_loss(g, params);
    tensor_set(&params[i], e, x - H);
    double down = eval_loss(g, params);
    tensor_set(&params[i], e, x);
    double fd = (up - down) / (2 * H), an = tensor_get(grad, e);
    double err = fabs(an - fd) / fmax(1.0, fmax(fabs(an), fabs(fd)));
    ck_assert_msg(err <= TOL, "%s: d/dp%d[%lld]: autodiff %.12g vs finite difference %.12g",
                  ir_ops[op].name, i, (long long)e, an, fd);
  }
}

/* grad entry loss = sum(op(params) * R), differentiated by pass_autodiff */
static Graph *make_grad_graph(Module *m, OpKind op, const OpCase *k) {
  Graph *g = graph_new(m, "grad");
  NodeId y = build_case(g, op, k);
  Shape ys = graph_node(g, y)->shape;
  NodeId prod = add(g, OP_MUL, (NodeId[]){y, const_data(g, DT_F64, &ys, NULL)}, 2, NULL);
  NodeAttr r = zero_attr();
  r.reduce.axes = (1u << ys.rank) - 1;
  NodeId loss = ys.rank ? add(g, OP_SUM, &prod, 1, &r) : prod;
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  PassCtx c;
  pass_ctx_init(&c, D);
  ck_assert_msg(pass_autodiff(g, &c), "%s: autodiff: %s", ir_ops[op].name, diag_text(D));
  pass_ctx_fini(&c);
  ck_assert_msg(ir_verify(g, D), "%s: IR invalid: %s", ir_ops[op].name, diag_text(D));
  return g;
}

static void check_gradient(OpKind op, const OpCase *k) {
  Tensor params[MAXP], outs[MAXP + 1];
  Module *m = make_module(k, "cov_grad", params);
  Graph *g = make_grad_graph(m, op, k);
  ck_assert_int_eq(g->n_outputs, 1 + k->n);
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, D), "%s", diag_text(D));
  for (int i = 0; i < k->n; i++) {
    ck_assert_int_eq(g->outputs[1 + i].kind, OUT_GRAD);
    ck_assert(shape_equal(&outs[1 + i].shape, &params[i].shape));
    check_param(op, g, params, i, &outs[1 + i]);
  }
  for (int i = 0; i < g->n_outputs; i++)
    tensor_free(&outs[i]);
  for (int i = 0; i < k->n; i++)
    tensor_free(&params[i]);
  graph_free(g);
  module_free(m);
}

static const char *vjp_kind_name(VjpKind v) {
  return v == VJP_RULE ? "a rule" : v == VJP_ZERO ? "vjp_zero" : "vjp_none";
}

START_TEST(test_op) {
  OpKind op = (OpKind)_i;
  const OpCase *k = &cases[op];
  const char *why = exemption(op);
  ck_assert_msg(!(k->build && why), "%s: both a case and an exemption", ir_ops[op].name);
  if (why) return; /* explicit, listed above with the test that covers it */
  ck_assert_msg(k->build != NULL,
                "op '%s' has no case and no exemption in tests/unit/test_op_coverage.c: add one "
                "(docs/adding-an-op.md)",
                ir_ops[op].name);
  Diag d;
  diag_init(&d);
  D = &d;
  ck_assert_msg(vjp_kind(op) == k->vjp, "%s: the vjp column of ir/ops.def gives %s, expected %s",
                ir_ops[op].name, vjp_kind_name(vjp_kind(op)), vjp_kind_name(k->vjp));
  check_forward(op, k);
  check_cse(op, k);
  if (k->vjp != VJP_NONE && !k->no_gradcheck) {
    ck_assert_msg(k->n > 0, "%s: a gradient check needs params", ir_ops[op].name);
    check_gradient(op, k);
  }
  diag_fini(&d);
}
END_TEST

/* the exemption table names real ops, each once */
START_TEST(test_exemptions_are_distinct) {
  for (int i = 0; i < N_EXEMPT; i++) {
    ck_assert((int)exempt[i].op >= 0 && exempt[i].op < OP_COUNT);
    for (int j = 0; j < i; j++)
      ck_assert(exempt[i].op != exempt[j].op);
  }
}
END_TEST

static Suite *coverage_suite(void) {
  Suite *s = suite_create("op_coverage");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_op, 0, OP_COUNT);
  tcase_add_test(tc, test_exemptions_are_distinct);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return 2;
  return test_run_suite(coverage_suite());
}
