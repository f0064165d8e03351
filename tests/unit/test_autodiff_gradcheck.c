/* tests/unit/test_autodiff_gradcheck.c — every VJP rule against central finite differences.
 *
 * Each case builds a small f64 graph  loss = sum(op(params...) * R)  with R a fixed random
 * tensor (so the output cotangent is not uniform and a transposed or mis-summed gradient
 * shows), runs pass_autodiff on it as a "grad" entry, evaluates the OUT_GRAD outputs with
 * the reference evaluator, and compares each element with (L(p + h) - L(p - h)) / 2h.
 *
 * Error measure: |a - b| / max(1, |a|, |b|). Relative where gradients are large, absolute
 * where they are small: the finite difference carries an absolute error of about
 * eps_machine * |L| / h ~ 1e-10 plus h^2 f''' ~ 1e-12, which would blow up a pure relative
 * error on a gradient near zero, while a wrong rule is off by O(1) * |gradient|.
 * Inputs stay away from the non-differentiable points (relu/abs at 0, max ties).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/autodiff_internal.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

#define H 1e-6
#define TOL 1e-6
#define MAXP 3

static const SrcLoc L = {"test.lathe", 7, 3};

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
  case R_POS: return 0.5 + 1.5 * u;                           /* [0.5, 2) */
  case R_NONZERO: return (u < 0.5 ? -1 : 1) * (0.2 + u);      /* |x| >= 0.2 */
  case R_EXPONENT: return -1.0 + 3.0 * u;                     /* [-1, 2) */
  default: return 2.0 * u - 1.0;                              /* [-1, 1) */
  }
}

/* ---- graph builders ---- */
static Diag *D;
static NodeId B(Graph *g, OpKind op, NodeId a, NodeId b) {
  return graph_add_binary(g, op, a, b, L, D);
}
static NodeId U(Graph *g, OpKind op, NodeId a) { return graph_add_unary(g, op, a, L, D); }
static NodeId with_attr(Graph *g, OpKind op, NodeId a, NodeAttr *attr) {
  return graph_add(g, op, &a, 1, attr, L, D);
}
static NodeId reduce(Graph *g, OpKind op, NodeId a, uint32_t axes, bool keep) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reduce.axes = axes;
  at.reduce.keepdims = keep;
  return with_attr(g, op, a, &at);
}
static NodeId matmul(Graph *g, NodeId a, NodeId b, bool ta, bool tb) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.matmul.trans_a = ta;
  at.matmul.trans_b = tb;
  NodeId in[2] = {a, b};
  return graph_add(g, OP_MATMUL, in, 2, &at, L, D);
}
static NodeId softmax(Graph *g, OpKind op, NodeId a, int axis) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.softmax.axis = axis;
  return with_attr(g, op, a, &at);
}
static NodeId shaped(Graph *g, OpKind op, NodeId a, int rank, const int64_t *dims) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reshape.shape = shape_make(rank, dims);
  return with_attr(g, op, a, &at);
}
static NodeId transpose(Graph *g, NodeId a, int8_t p0, int8_t p1, int8_t p2) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.transpose.perm[0] = p0;
  at.transpose.perm[1] = p1;
  at.transpose.perm[2] = p2;
  return with_attr(g, OP_TRANSPOSE, a, &at);
}
static NodeId const_tensor(Graph *g, const Shape *s) {
  int64_t n = shape_numel(s);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) data[i] = 2.0 * urand() - 1.0;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = DT_F64;
  at.constant.shape = *s;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, L, D);
}

typedef NodeId (*BuildFn)(Graph *g, const NodeId *p);

typedef struct Case {
  const char *name;
  int n;                  /* params */
  int rank[MAXP];
  int64_t dims[MAXP][4];
  Range range[MAXP];
  BuildFn build;
} Case;

/* ---- the check ---- */

/* loss = sum(build(p) * R) in a "grad" entry; returns it after pass_autodiff */
static Graph *make_graph(Module *m, const Case *k) {
  Graph *g = graph_new(m, "grad");
  NodeId p[MAXP];
  for (int i = 0; i < k->n; i++) p[i] = graph_add_source(g, OP_PARAM, i, L);
  NodeId y = k->build(g, p);
  ck_assert_msg(y != IR_NONE, "%s: building failed: %s", k->name, diag_text(D));
  Shape ys = graph_node(g, y)->shape;
  NodeId prod = B(g, OP_MUL, y, const_tensor(g, &ys));
  NodeId loss = ys.rank ? reduce(g, OP_SUM, prod, (1u << ys.rank) - 1, false) : prod;
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  return g;
}

static double eval_loss(const Graph *g, const Tensor *params, Tensor *outs) {
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, D), "eval: %s", diag_text(D));
  double l = tensor_get(&outs[0], 0);
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  return l;
}

static void check_param(const Case *k, const Graph *g, Tensor *params, int i,
                        const Tensor *grad) {
  Tensor outs[MAXP + 1];
  for (int64_t e = 0; e < shape_numel(&params[i].shape); e++) {
    double x = tensor_get(&params[i], e);
    tensor_set(&params[i], e, x + H);
    double up = eval_loss(g, params, outs);
    tensor_set(&params[i], e, x - H);
    double down = eval_loss(g, params, outs);
    tensor_set(&params[i], e, x);
    double fd = (up - down) / (2 * H), an = tensor_get(grad, e);
    double err = fabs(an - fd) / fmax(1.0, fmax(fabs(an), fabs(fd)));
    ck_assert_msg(err <= TOL, "%s: d/dp%d[%lld]: autodiff %.12g vs finite difference %.12g",
                  k->name, i, (long long)e, an, fd);
  }
}

static void gradcheck(const Case *k) {
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Tensor params[MAXP];
  for (int i = 0; i < k->n; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    Shape s = shape_make(k->rank[i], k->dims[i]);
    module_add_param(m, name, DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
    tensor_alloc(&params[i], DT_F64, &s);
    for (int64_t e = 0; e < shape_numel(&s); e++) tensor_set(&params[i], e, sample(k->range[i]));
  }
  Graph *g = make_graph(m, k);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: autodiff failed: %s", k->name, diag_text(&d));
  ck_assert_msg(ir_verify(g, &d), "%s: IR invalid: %s", k->name, diag_text(&d));
  ck_assert_int_eq(g->n_outputs, 1 + k->n);
  Tensor outs[MAXP + 1];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < k->n; i++) {
    ck_assert_int_eq(g->outputs[1 + i].kind, OUT_GRAD);
    ck_assert_int_eq(g->outputs[1 + i].target, i);
    ck_assert(shape_equal(&outs[1 + i].shape, &params[i].shape));
    check_param(k, g, params, i, &outs[1 + i]);
  }
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  for (int i = 0; i < k->n; i++) tensor_free(&params[i]);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}

/* ---- the cases: one builder per op (and per attribute variant) ---- */
#define BIN(fn, op) \
  static NodeId fn(Graph *g, const NodeId *p) { return B(g, op, p[0], p[1]); }
#define UN(fn, op) \
  static NodeId fn(Graph *g, const NodeId *p) { return U(g, op, p[0]); }
BIN(b_add, OP_ADD)
BIN(b_sub, OP_SUB)
BIN(b_mul, OP_MUL)
BIN(b_div, OP_DIV)
BIN(b_maximum, OP_MAXIMUM)
BIN(b_minimum, OP_MINIMUM)
BIN(b_pow, OP_POW)
UN(u_neg, OP_NEG)
UN(u_exp, OP_EXP)
UN(u_log, OP_LOG)
UN(u_sqrt, OP_SQRT)
UN(u_abs, OP_ABS)
UN(u_relu, OP_RELU)
UN(u_sigmoid, OP_SIGMOID)
UN(u_tanh, OP_TANH)

static NodeId mm(Graph *g, const NodeId *p) { return matmul(g, p[0], p[1], false, false); }
static NodeId mm_ta(Graph *g, const NodeId *p) { return matmul(g, p[0], p[1], true, false); }
static NodeId mm_tb(Graph *g, const NodeId *p) { return matmul(g, p[0], p[1], false, true); }
static NodeId mm_tt(Graph *g, const NodeId *p) { return matmul(g, p[0], p[1], true, true); }
static NodeId sm1(Graph *g, const NodeId *p) { return softmax(g, OP_SOFTMAX, p[0], 1); }
static NodeId sm0(Graph *g, const NodeId *p) { return softmax(g, OP_SOFTMAX, p[0], 0); }
static NodeId lsm1(Graph *g, const NodeId *p) { return softmax(g, OP_LOG_SOFTMAX, p[0], 1); }
static NodeId lsm2(Graph *g, const NodeId *p) { return softmax(g, OP_LOG_SOFTMAX, p[0], 2); }
static NodeId sum1(Graph *g, const NodeId *p) { return reduce(g, OP_SUM, p[0], 2, false); }
static NodeId sum_all(Graph *g, const NodeId *p) { return reduce(g, OP_SUM, p[0], 3, false); }
static NodeId sum_keep(Graph *g, const NodeId *p) { return reduce(g, OP_SUM, p[0], 5, true); }
static NodeId mean0(Graph *g, const NodeId *p) { return reduce(g, OP_MEAN, p[0], 1, false); }
static NodeId mean_keep(Graph *g, const NodeId *p) { return reduce(g, OP_MEAN, p[0], 6, true); }
static NodeId max1(Graph *g, const NodeId *p) { return reduce(g, OP_MAX, p[0], 2, false); }
static NodeId max_all(Graph *g, const NodeId *p) { return reduce(g, OP_MAX, p[0], 3, true); }
static NodeId resh(Graph *g, const NodeId *p) {
  return shaped(g, OP_RESHAPE, p[0], 2, (int64_t[]){2, 6});
}
static NodeId transp(Graph *g, const NodeId *p) { return transpose(g, p[0], 2, 0, 1); }
static NodeId bcast(Graph *g, const NodeId *p) {
  return shaped(g, OP_BROADCAST, p[0], 3, (int64_t[]){2, 3, 4});
}
static NodeId bcast_lead(Graph *g, const NodeId *p) {
  return shaped(g, OP_BROADCAST, p[0], 2, (int64_t[]){3, 4});
}
/* fan-out: p0 used three times, through different paths */
static NodeId fanout(Graph *g, const NodeId *p) {
  NodeId t = B(g, OP_MUL, p[0], U(g, OP_TANH, p[0]));
  return B(g, OP_ADD, t, U(g, OP_EXP, p[0]));
}
/* comparison masks: zero derivative themselves, but the product rule still flows */
static NodeId masked(Graph *g, const NodeId *p) {
  NodeId mask = B(g, OP_GT, p[0], p[1]);
  return B(g, OP_MUL, mask, B(g, OP_MUL, p[0], p[1]));
}
/* a two-layer perceptron with a softmax cross-entropy: the real-life chain */
static NodeId mlp(Graph *g, const NodeId *p) {
  NodeId x = const_tensor(g, &(Shape){.rank = 2, .dim = {5, 3}});
  NodeId h = U(g, OP_TANH, B(g, OP_ADD, matmul(g, x, p[0], false, false), p[1]));
  NodeId logits = matmul(g, h, p[2], false, false);
  NodeId ls = softmax(g, OP_LOG_SOFTMAX, logits, 1);
  NodeId target = U(g, OP_SIGMOID, const_tensor(g, &(Shape){.rank = 2, .dim = {5, 2}}));
  return U(g, OP_NEG, reduce(g, OP_MEAN, B(g, OP_MUL, ls, target), 3, false));
}

static const Case cases[] = {
    {"add", 2, {2, 2}, {{3, 4}, {3, 4}}, {R_ANY, R_ANY}, b_add},
    {"add broadcast [3,4]+[4]", 2, {2, 1}, {{3, 4}, {4}}, {R_ANY, R_ANY}, b_add},
    {"add broadcast [2,1,4]+[3,1]", 2, {3, 2}, {{2, 1, 4}, {3, 1}}, {R_ANY, R_ANY}, b_add},
    {"sub broadcast", 2, {2, 2}, {{3, 4}, {3, 1}}, {R_ANY, R_ANY}, b_sub},
    {"mul by scalar", 2, {2, 0}, {{2, 3}, {0}}, {R_ANY, R_ANY}, b_mul},
    {"mul broadcast", 2, {2, 3}, {{3, 1}, {2, 1, 4}}, {R_ANY, R_ANY}, b_mul},
    {"div", 2, {2, 1}, {{3, 4}, {4}}, {R_ANY, R_POS}, b_div},
    {"maximum", 2, {2, 2}, {{3, 4}, {3, 4}}, {R_ANY, R_ANY}, b_maximum},
    {"minimum broadcast", 2, {2, 1}, {{3, 4}, {4}}, {R_ANY, R_ANY}, b_minimum},
    {"pow", 2, {2, 2}, {{3, 4}, {3, 4}}, {R_POS, R_EXPONENT}, b_pow},
    {"pow scalar exponent", 2, {2, 0}, {{3, 4}, {0}}, {R_POS, R_EXPONENT}, b_pow},
    {"neg", 1, {2}, {{3, 4}}, {R_ANY}, u_neg},
    {"exp", 1, {2}, {{3, 4}}, {R_ANY}, u_exp},
    {"log", 1, {2}, {{3, 4}}, {R_POS}, u_log},
    {"sqrt", 1, {2}, {{3, 4}}, {R_POS}, u_sqrt},
    {"abs", 1, {2}, {{3, 4}}, {R_NONZERO}, u_abs},
    {"relu", 1, {2}, {{3, 4}}, {R_NONZERO}, u_relu},
    {"sigmoid", 1, {2}, {{3, 4}}, {R_ANY}, u_sigmoid},
    {"tanh", 1, {3}, {{2, 3, 2}}, {R_ANY}, u_tanh},
    {"matmul", 2, {2, 2}, {{3, 4}, {4, 5}}, {R_ANY, R_ANY}, mm},
    {"matmul trans_a", 2, {2, 2}, {{4, 3}, {4, 5}}, {R_ANY, R_ANY}, mm_ta},
    {"matmul trans_b", 2, {2, 2}, {{3, 4}, {5, 4}}, {R_ANY, R_ANY}, mm_tb},
    {"matmul trans_a trans_b", 2, {2, 2}, {{4, 3}, {5, 4}}, {R_ANY, R_ANY}, mm_tt},
    {"matmul batched", 2, {3, 3}, {{2, 3, 4}, {2, 4, 5}}, {R_ANY, R_ANY}, mm},
    {"matmul batch broadcast rhs", 2, {3, 2}, {{2, 3, 4}, {4, 5}}, {R_ANY, R_ANY}, mm},
    {"matmul batch broadcast lhs", 2, {2, 3}, {{3, 4}, {2, 4, 5}}, {R_ANY, R_ANY}, mm},
    {"matmul batch [1,..]x[2,..] ta", 2, {3, 3}, {{1, 4, 3}, {2, 4, 5}}, {R_ANY, R_ANY},
     mm_ta},
    {"matmul batch [2,1,..]x[3,..] tb", 2, {4, 3}, {{2, 1, 3, 4}, {3, 5, 4}}, {R_ANY, R_ANY},
     mm_tb},
    {"matmul batched trans_a trans_b", 2, {3, 3}, {{2, 4, 3}, {2, 5, 4}}, {R_ANY, R_ANY},
     mm_tt},
    {"softmax axis 1", 1, {2}, {{3, 4}}, {R_ANY}, sm1},
    {"softmax axis 0", 1, {2}, {{3, 4}}, {R_ANY}, sm0},
    {"log_softmax axis 1", 1, {2}, {{3, 4}}, {R_ANY}, lsm1},
    {"log_softmax axis 2", 1, {3}, {{2, 3, 4}}, {R_ANY}, lsm2},
    {"sum axis 1", 1, {2}, {{3, 4}}, {R_ANY}, sum1},
    {"sum all", 1, {2}, {{3, 4}}, {R_ANY}, sum_all},
    {"sum keepdims axes 0,2", 1, {3}, {{2, 3, 4}}, {R_ANY}, sum_keep},
    {"mean axis 0", 1, {2}, {{3, 4}}, {R_ANY}, mean0},
    {"mean keepdims axes 1,2", 1, {3}, {{2, 3, 4}}, {R_ANY}, mean_keep},
    {"max axis 1", 1, {2}, {{3, 4}}, {R_ANY}, max1},
    {"max all keepdims", 1, {2}, {{3, 4}}, {R_ANY}, max_all},
    {"reshape", 1, {2}, {{3, 4}}, {R_ANY}, resh},
    {"transpose", 1, {3}, {{2, 3, 4}}, {R_ANY}, transp},
    {"broadcast_to [3,1]->[2,3,4]", 1, {2}, {{3, 1}}, {R_ANY}, bcast},
    {"broadcast_to [4]->[3,4]", 1, {1}, {{4}}, {R_ANY}, bcast_lead},
    {"fan-out", 1, {2}, {{3, 4}}, {R_ANY}, fanout},
    {"comparison mask", 2, {2, 2}, {{3, 4}, {3, 4}}, {R_ANY, R_ANY}, masked},
    {"mlp", 3, {2, 1, 2}, {{3, 4}, {4}, {4, 2}}, {R_ANY, R_ANY, R_ANY}, mlp},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

START_TEST(test_gradcheck) { gradcheck(&cases[_i]); }
END_TEST

/* ---- behaviour beyond the rules ---- */

typedef struct Fixture {
  Diag d;
  PassCtx c;
  Module *m;
  Graph *g;
} Fixture;

static void fixture_init(Fixture *f, const char *entry) {
  diag_init(&f->d);
  D = &f->d;
  pass_ctx_init(&f->c, &f->d);
  f->m = module_new("t");
  f->g = graph_new(f->m, entry);
}

static void fixture_fini(Fixture *f) {
  graph_free(f->g);
  module_free(f->m);
  pass_ctx_fini(&f->c);
  diag_fini(&f->d);
}

static NodeId add_param(Fixture *f, const char *name, int rank, const int64_t *dims) {
  Shape s = shape_make(rank, dims);
  int32_t i = module_add_param(f->m, name, DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
  return graph_add_source(f->g, OP_PARAM, i, L);
}

static NodeId sum_all_axes(Graph *g, NodeId x) {
  int r = graph_node(g, x)->shape.rank;
  return r ? reduce(g, OP_SUM, x, (1u << r) - 1, false) : x;
}

static void fill(Tensor *t, const Shape *s, double base) {
  tensor_alloc(t, DT_F64, s);
  for (int64_t i = 0; i < shape_numel(s); i++) tensor_set(t, i, base + 0.25 * (double)i);
}

/* Every op without a rule on the path is listed, once per (op, location), and the pass fails */
START_TEST(test_missing_rule_lists_all) {
  Fixture f;
  fixture_init(&f, "grad");
  Graph *g = f.g;
  NodeId p = add_param(&f, "w", 1, (int64_t[]){3});
  SrcLoc l9 = {"test.lathe", 9, 5}, l11 = {"test.lathe", 11, 2};
  NodeId t1 = graph_add_unary(g, OP_TANH, p, l9, &f.d);
  NodeId t2 = graph_add_unary(g, OP_TANH, p, l9, &f.d); /* same op and line: one report */
  NodeId t3 = graph_add_unary(g, OP_TANH, t2, l11, &f.d);
  NodeId e = graph_add_unary(g, OP_EXP, t1, l11, &f.d);
  NodeId y = B(g, OP_ADD, B(g, OP_ADD, t1, t3), e);
  graph_add_output(g, "loss", sum_all_axes(g, y), OUT_LOSS, -1);
  vjp_test_remove_rule(OP_TANH, true);
  vjp_test_remove_rule(OP_EXP, true);
  bool ok = pass_autodiff(g, &f.c);
  vjp_test_remove_rule(OP_TANH, false);
  vjp_test_remove_rule(OP_EXP, false);
  ck_assert(!ok);
  const char *text = diag_text(&f.d);
  ck_assert_int_eq(f.d.n_errors, 3);
  ck_assert_msg(strstr(text, "test.lathe:9:5") && strstr(text, "'tanh'"), "%s", text);
  ck_assert_msg(strstr(text, "test.lathe:11:2") && strstr(text, "'exp'"), "%s", text);
  fixture_fini(&f);
}
END_TEST

/* An op without a rule that the loss does not reach through a param is not an error */
START_TEST(test_missing_rule_off_path_is_fine) {
  Fixture f;
  fixture_init(&f, "grad");
  NodeId p = add_param(&f, "w", 1, (int64_t[]){3});
  NodeId c = const_tensor(f.g, &(Shape){.rank = 1, .dim = {3}});
  NodeId y = B(f.g, OP_MUL, p, U(f.g, OP_TANH, c)); /* tanh of a constant */
  graph_add_output(f.g, "loss", sum_all_axes(f.g, y), OUT_LOSS, -1);
  vjp_test_remove_rule(OP_TANH, true);
  bool ok = pass_autodiff(f.g, &f.c);
  vjp_test_remove_rule(OP_TANH, false);
  ck_assert_msg(ok, "%s", diag_text(&f.d));
  fixture_fini(&f);
}
END_TEST

/* loss = sum(w * one_hot(label) + w * cast(label)): integer values get no backward nodes */
START_TEST(test_integer_inputs_not_differentiated) {
  Fixture f;
  fixture_init(&f, "grad");
  Graph *g = f.g;
  Shape ls = shape_make(1, (int64_t[]){3});
  int32_t li = module_add_input(f.m, "label", DT_I32, &ls, L);
  NodeId w = add_param(&f, "w", 2, (int64_t[]){3, 4});
  NodeId label = graph_add_source(g, OP_INPUT, li, L);
  NodeAttr oh = {.one_hot = {4, DT_F64}};
  NodeId onehot = with_attr(g, OP_ONE_HOT, label, &oh);
  NodeAttr ca = {.cast = {DT_F64}};
  NodeId lf = shaped(g, OP_RESHAPE, with_attr(g, OP_CAST, label, &ca), 2, (int64_t[]){3, 1});
  NodeId y = B(g, OP_ADD, B(g, OP_MUL, w, onehot), B(g, OP_MUL, w, lf));
  graph_add_output(g, "loss", sum_all_axes(g, y), OUT_LOSS, -1);
  uint32_t n_fwd = g->n_nodes;
  ck_assert_msg(pass_autodiff(g, &f.c), "%s", diag_text(&f.d));
  for (uint32_t i = n_fwd; i < g->n_nodes; i++) {
    ck_assert(dtype_is_float(g->nodes[i].dtype));
    for (int k = 0; k < g->nodes[i].n_in; k++) ck_assert(g->nodes[i].in[k] != label);
  }
  Tensor in, par, outs[2];
  tensor_alloc(&in, DT_I32, &ls);
  int32_t labels[3] = {2, 0, 3};
  for (int i = 0; i < 3; i++) tensor_set(&in, i, labels[i]);
  fill(&par, &g->module->params[0].shape, 0.5);
  ck_assert_msg(ir_eval(g, &in, &par, NULL, outs, NULL, &f.d), "%s", diag_text(&f.d));
  for (int r = 0; r < 3; r++)
    for (int c = 0; c < 4; c++)
      ck_assert_double_eq_tol(tensor_get(&outs[1], r * 4 + c), (c == labels[r]) + labels[r],
                              1e-12);
  for (int i = 0; i < 2; i++) tensor_free(&outs[i]);
  tensor_free(&in);
  tensor_free(&par);
  fixture_fini(&f);
}
END_TEST

/* loss = sum(stop_gradient(w) * w * w): d/dw = 2 w * w (the stopped factor is a constant) */
START_TEST(test_stop_gradient_blocks) {
  Fixture f;
  fixture_init(&f, "grad");
  NodeId w = add_param(&f, "w", 1, (int64_t[]){4});
  NodeId y = B(f.g, OP_MUL, U(f.g, OP_STOP_GRAD, w), B(f.g, OP_MUL, w, w));
  graph_add_output(f.g, "loss", sum_all_axes(f.g, y), OUT_LOSS, -1);
  ck_assert_msg(pass_autodiff(f.g, &f.c), "%s", diag_text(&f.d));
  Tensor par, outs[2];
  fill(&par, &f.m->params[0].shape, -0.5);
  ck_assert_msg(ir_eval(f.g, NULL, &par, NULL, outs, NULL, &f.d), "%s", diag_text(&f.d));
  for (int i = 0; i < 4; i++) {
    double x = tensor_get(&par, i);
    ck_assert_double_eq_tol(tensor_get(&outs[1], i), 2 * x * x, 1e-12);
  }
  for (int i = 0; i < 2; i++) tensor_free(&outs[i]);
  tensor_free(&par);
  fixture_fini(&f);
}
END_TEST

/* a step's param_globs select what is differentiated; an unreached param gets a zero grad */
START_TEST(test_param_globs) {
  Fixture f;
  fixture_init(&f, "grad");
  NodeId a = add_param(&f, "enc.w", 1, (int64_t[]){2});
  NodeId b = add_param(&f, "dec.w", 1, (int64_t[]){2});
  add_param(&f, "enc.unused", 1, (int64_t[]){2});
  TrainStep *s = module_add_step(f.m);
  const char **globs = arena_alloc(&f.m->arena, sizeof *globs);
  globs[0] = "enc.*";
  s->param_globs = globs;
  s->n_globs = 1;
  NodeId y = B(f.g, OP_MUL, a, b);
  graph_add_output(f.g, "loss", sum_all_axes(f.g, y), OUT_LOSS, -1);
  ck_assert_msg(pass_autodiff(f.g, &f.c), "%s", diag_text(&f.d));
  ck_assert_int_eq(f.g->n_outputs, 3);
  ck_assert_str_eq(f.g->outputs[1].name, "enc.w");
  ck_assert_str_eq(f.g->outputs[2].name, "enc.unused");
  Tensor par[3], outs[3];
  for (int i = 0; i < 3; i++) fill(&par[i], &f.m->params[i].shape, 1.0 + i);
  ck_assert_msg(ir_eval(f.g, NULL, par, NULL, outs, NULL, &f.d), "%s", diag_text(&f.d));
  for (int i = 0; i < 2; i++) {
    ck_assert_double_eq_tol(tensor_get(&outs[1], i), tensor_get(&par[1], i), 1e-12);
    ck_assert_double_eq(tensor_get(&outs[2], i), 0.0);
  }
  for (int i = 0; i < 3; i++) tensor_free(&outs[i]), tensor_free(&par[i]);
  fixture_fini(&f);
}
END_TEST

START_TEST(test_loss_must_be_scalar) {
  Fixture f;
  fixture_init(&f, "grad");
  NodeId w = add_param(&f, "w", 1, (int64_t[]){2});
  graph_add_output(f.g, "loss", U(f.g, OP_EXP, w), OUT_LOSS, -1);
  ck_assert(!pass_autodiff(f.g, &f.c));
  ck_assert_msg(strstr(diag_text(&f.d), "scalar"), "%s", diag_text(&f.d));
  fixture_fini(&f);
}
END_TEST

/* non-train entries are left alone */
START_TEST(test_forward_untouched) {
  Fixture f;
  fixture_init(&f, "forward");
  NodeId w = add_param(&f, "w", 1, (int64_t[]){2});
  graph_add_output(f.g, "y", U(f.g, OP_EXP, w), OUT_VALUE, -1);
  uint32_t n = f.g->n_nodes;
  ck_assert(pass_autodiff(f.g, &f.c));
  ck_assert_uint_eq(f.g->n_nodes, n);
  ck_assert_int_eq(f.g->n_outputs, 1);
  fixture_fini(&f);
}
END_TEST

static Suite *autodiff_suite(void) {
  Suite *s = suite_create("autodiff");
  TCase *tc = tcase_create("gradcheck");
  tcase_add_loop_test(tc, test_gradcheck, 0, N_CASES);
  suite_add_tcase(s, tc);
  TCase *tb = tcase_create("behaviour");
  tcase_add_test(tb, test_missing_rule_lists_all);
  tcase_add_test(tb, test_missing_rule_off_path_is_fine);
  tcase_add_test(tb, test_integer_inputs_not_differentiated);
  tcase_add_test(tb, test_stop_gradient_blocks);
  tcase_add_test(tb, test_param_globs);
  tcase_add_test(tb, test_loss_must_be_scalar);
  tcase_add_test(tb, test_forward_untouched);
  suite_add_tcase(s, tb);
  return s;
}

int main(void) { return test_run_suite(autodiff_suite()); }
