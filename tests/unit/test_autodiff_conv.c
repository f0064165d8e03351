/* tests/unit/test_autodiff_conv.c — the VJP rules of the conv and pooling ops against central
 * finite differences (the method of test_autodiff_gradcheck.c).
 *
 * Each case builds a small f64 graph  loss = sum(op(p0, p1) * R)  with R a fixed random
 * tensor, runs pass_autodiff on it as a "grad" entry, evaluates the OUT_GRAD outputs with
 * the reference evaluator and compares each element with (L(p + h) - L(p - h)) / 2h, error
 * |a - b| / max(1, |a|, |b|) <= 1e-6. The cases cover strides, asymmetric padding, dilation,
 * groups (including depthwise) and output_padding; the conv ops are bilinear, so the rules
 * of CONV2D_GRAD_WEIGHT and CONV_TRANSPOSE2D are checked directly too. Random inputs make
 * max-pool ties (the one non-differentiable point) a measure-zero event.
 * TRAIN_SELECT's rule routes the cotangent to the selected input (both settings checked).
 * MAX_POOL2D_GRAD (the gradient of max_pool2d) has no VJP rule: second derivatives of
 * max-pooling are not supported (autodiff reports it).
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

static const SrcLoc L = {"test.lathe", 3, 1};
static Diag *D;

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

typedef enum Kind { K_CONV, K_CONV_T, K_GRAD_W, K_POOL, K_CHAIN, K_SELECT } Kind;

typedef struct Case {
  const char *name;
  Kind kind;
  int64_t p0[4], p1[4]; /* param dims (p1 unused for pooling) */
  int stride[2], pad[4], dil[2], out_pad[2], kernel[2], groups;
} Case;

static NodeAttr attr_of(const Case *k) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  for (int i = 0; i < 2; i++) {
    at.conv.stride[i] = k->stride[i] ? k->stride[i] : 1;
    at.conv.dilation[i] = k->dil[i] ? k->dil[i] : 1;
    at.conv.out_pad[i] = k->out_pad[i];
    at.conv.kernel[i] = k->kernel[i];
  }
  for (int i = 0; i < 4; i++) at.conv.pad[i] = k->pad[i];
  at.conv.groups = k->groups ? k->groups : 1;
  return at;
}

static NodeId op2(Graph *g, OpKind op, NodeId a, NodeId b, const NodeAttr *at) {
  NodeId in[2] = {a, b};
  return graph_add(g, op, in, b == IR_NONE ? 1 : 2, at, L, D);
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

/* conv -> relu -> max_pool2d, the CNN building block, with the pool's attrs from the case */
static NodeId chain(Graph *g, const Case *k, const NodeId *p) {
  NodeAttr c;
  memset(&c, 0, sizeof c);
  c.conv.stride[0] = c.conv.stride[1] = c.conv.dilation[0] = c.conv.dilation[1] = 1;
  c.conv.pad[0] = c.conv.pad[1] = c.conv.pad[2] = c.conv.pad[3] = 1;
  c.conv.groups = 1;
  NodeId y = graph_add_unary(g, OP_RELU, op2(g, OP_CONV2D, p[0], p[1], &c), L, D);
  NodeAttr pool = attr_of(k);
  return op2(g, OP_MAX_POOL2D, y, IR_NONE, &pool);
}

static NodeId build(Graph *g, const Case *k, const NodeId *p) {
  NodeAttr at = attr_of(k);
  switch (k->kind) {
  case K_CONV: return op2(g, OP_CONV2D, p[0], p[1], &at);
  case K_CONV_T: return op2(g, OP_CONV_TRANSPOSE2D, p[0], p[1], &at);
  case K_GRAD_W: return op2(g, OP_CONV2D_GRAD_WEIGHT, p[0], p[1], &at);
  case K_POOL: return op2(g, OP_MAX_POOL2D, p[0], IR_NONE, &at);
  case K_SELECT: { /* train_select(p0 * p1, exp(p0) - p1), the choice in groups */
    NodeAttr sel;
    memset(&sel, 0, sizeof sel);
    sel.mode.train = k->groups == 1;
    NodeId a = graph_add_binary(g, OP_MUL, p[0], p[1], L, D);
    NodeId e = graph_add_binary(g, OP_SUB, graph_add_unary(g, OP_EXP, p[0], L, D), p[1], L, D);
    return op2(g, OP_TRAIN_SELECT, a, e, &sel);
  }
  default: return chain(g, k, p);
  }
}

static int n_params(const Case *k) { return k->kind == K_POOL ? 1 : 2; }

static Graph *make_graph(Module *m, const Case *k) {
  Graph *g = graph_new(m, "grad");
  NodeId p[2];
  for (int i = 0; i < n_params(k); i++) p[i] = graph_add_source(g, OP_PARAM, i, L);
  NodeId y = build(g, k, p);
  ck_assert_msg(y != IR_NONE, "%s: building failed: %s", k->name, diag_text(D));
  Shape ys = graph_node(g, y)->shape;
  NodeId prod = graph_add_binary(g, OP_MUL, y, const_tensor(g, &ys), L, D);
  NodeAttr r;
  memset(&r, 0, sizeof r);
  r.reduce.axes = (1u << ys.rank) - 1;
  NodeId loss = graph_add(g, OP_SUM, &prod, 1, &r, L, D);
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  return g;
}

static double eval_loss(const Graph *g, const Tensor *params) {
  Tensor outs[3];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, D), "eval: %s", diag_text(D));
  double l = tensor_get(&outs[0], 0);
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  return l;
}

static void check_param(const Case *k, const Graph *g, Tensor *params, int i,
                        const Tensor *grad) {
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
                  k->name, i, (long long)e, an, fd);
  }
}

static void gradcheck(const Case *k) {
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Tensor params[2];
  int np = n_params(k);
  for (int i = 0; i < np; i++) {
    Shape s = shape_make(4, i ? k->p1 : k->p0);
    module_add_param(m, i ? "p1" : "p0", DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
    tensor_alloc(&params[i], DT_F64, &s);
    for (int64_t e = 0; e < shape_numel(&s); e++) tensor_set(&params[i], e, 2 * urand() - 1);
  }
  Graph *g = make_graph(m, k);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: autodiff failed: %s", k->name, diag_text(&d));
  ck_assert_msg(ir_verify(g, &d), "%s: IR invalid: %s", k->name, diag_text(&d));
  ck_assert_int_eq(g->n_outputs, 1 + np);
  Tensor outs[3];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < np; i++) {
    ck_assert(shape_equal(&outs[1 + i].shape, &params[i].shape));
    check_param(k, g, params, i, &outs[1 + i]);
  }
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  for (int i = 0; i < np; i++) tensor_free(&params[i]);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}

#define CASE(nm, kd, a, b, ...) {.name = nm, .kind = kd, .p0 = a, .p1 = b, __VA_ARGS__}
#define D4(a, b, c, d) {a, b, c, d}
#define P2(a, b) {a, b}
static const Case cases[] = {
    CASE("conv2d basic", K_CONV, D4(2, 3, 5, 5), D4(4, 3, 3, 3), .groups = 1),
    CASE("conv2d stride 2 pad 1", K_CONV, D4(1, 2, 6, 5), D4(3, 2, 3, 2), .stride = P2(2, 2),
         .pad = D4(1, 1, 1, 1)),
    CASE("conv2d stride (1,3) asym pad", K_CONV, D4(1, 2, 5, 7), D4(2, 2, 2, 3),
         .stride = P2(1, 3), .pad = D4(0, 1, 2, 0)),
    CASE("conv2d dilation (2,1)", K_CONV, D4(1, 2, 7, 6), D4(2, 2, 2, 3), .pad = D4(1, 0, 0, 1),
         .dil = P2(2, 1)),
    CASE("conv2d groups 2 stride (1,2)", K_CONV, D4(2, 4, 5, 5), D4(6, 2, 3, 3),
         .stride = P2(1, 2), .groups = 2),
    CASE("conv2d depthwise stride 2 dil 2", K_CONV, D4(1, 3, 7, 7), D4(3, 1, 2, 2),
         .stride = P2(2, 2), .pad = D4(1, 1, 1, 1), .dil = P2(2, 2), .groups = 3),
    CASE("conv2d 1x1", K_CONV, D4(2, 3, 3, 4), D4(2, 3, 1, 1), .groups = 1),
    CASE("conv_transpose2d stride 2 pad 1 out_pad 1", K_CONV_T, D4(2, 3, 3, 3), D4(3, 2, 3, 3),
         .stride = P2(2, 2), .pad = D4(1, 1, 1, 1), .out_pad = P2(1, 1)),
    CASE("conv_transpose2d groups 2 dil 2", K_CONV_T, D4(1, 4, 3, 3), D4(4, 1, 2, 2),
         .dil = P2(2, 2), .groups = 2),
    CASE("conv_transpose2d stride (3,1) asym pad", K_CONV_T, D4(1, 2, 3, 4), D4(2, 3, 3, 2),
         .stride = P2(3, 1), .pad = D4(1, 0, 0, 1), .out_pad = P2(2, 0)),
    CASE("conv2d_grad_weight", K_GRAD_W, D4(2, 2, 5, 5), D4(2, 3, 3, 3), .kernel = P2(3, 3)),
    CASE("conv2d_grad_weight stride 2 pad groups 2", K_GRAD_W, D4(1, 2, 6, 6), D4(1, 4, 3, 3),
         .stride = P2(2, 2), .pad = D4(1, 1, 1, 1), .kernel = P2(3, 3), .groups = 2),
    CASE("max_pool2d 2x2", K_POOL, D4(2, 2, 6, 6), D4(0, 0, 0, 0), .stride = P2(2, 2),
         .kernel = P2(2, 2)),
    CASE("max_pool2d 3x3 stride 2 pad 1", K_POOL, D4(1, 2, 7, 7), D4(0, 0, 0, 0),
         .stride = P2(2, 2), .pad = D4(1, 1, 1, 1), .kernel = P2(3, 3)),
    CASE("max_pool2d dilation 2 stride 1", K_POOL, D4(1, 1, 5, 6), D4(0, 0, 0, 0),
         .dil = P2(2, 2), .kernel = P2(2, 2)),
    CASE("train_select train", K_SELECT, D4(1, 2, 3, 2), D4(1, 2, 3, 2), .groups = 1),
    CASE("train_select inference", K_SELECT, D4(1, 2, 3, 2), D4(1, 2, 3, 2), .groups = 2),
    CASE("conv relu max_pool chain", K_CHAIN, D4(2, 2, 6, 6), D4(3, 2, 3, 3), .stride = P2(2, 2),
         .kernel = P2(2, 2)),
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

START_TEST(test_gradcheck) { gradcheck(&cases[_i]); }
END_TEST

/* The gradient of a max-pool's gradient has no rule: a clear error, not a crash. */
START_TEST(test_second_order_pool_rejected) {
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Shape s = shape_make(4, (int64_t[]){1, 1, 4, 4});
  module_add_param(m, "p0", DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
  Graph *g = graph_new(m, "grad");
  NodeId x = graph_add_source(g, OP_PARAM, 0, L);
  Case k = {.name = "pool", .kind = K_POOL, .stride = {2, 2}, .kernel = {2, 2}};
  NodeAttr at = attr_of(&k);
  NodeId y = op2(g, OP_MAX_POOL2D, x, IR_NONE, &at);
  NodeId gx = op2(g, OP_MAX_POOL2D_GRAD, x, y, &at);
  NodeAttr r;
  memset(&r, 0, sizeof r);
  r.reduce.axes = 15;
  graph_add_output(g, "loss", graph_add(g, OP_SUM, &gx, 1, &r, L, &d), OUT_LOSS, -1);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert(!pass_autodiff(g, &c));
  ck_assert_msg(strstr(diag_text(&d), "max_pool2d_grad") != NULL, "%s", diag_text(&d));
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* The text form round-trips every conv/pool attribute and train_select's flag. */
START_TEST(test_text_round_trip) {
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Shape s = shape_make(4, (int64_t[]){2, 4, 7, 7});
  module_add_param(m, "p0", DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
  Graph *g = graph_new(m, "forward");
  m->model = g;
  NodeId x = graph_add_source(g, OP_PARAM, 0, L);
  Case k = {.name = "all", .stride = {2, 1}, .pad = {1, 0, 2, 1}, .dil = {1, 2}, .groups = 2};
  NodeAttr at = attr_of(&k);
  NodeId w = const_tensor(g, &(Shape){.rank = 4, .dim = {6, 2, 3, 2}});
  NodeId y = op2(g, OP_CONV2D, x, w, &at);
  at.conv.out_pad[0] = 1;
  NodeId xt = op2(g, OP_CONV_TRANSPOSE2D, y, const_tensor(g, &(Shape){.rank = 4, .dim = {6, 2, 3, 2}}), &at);
  at.conv.out_pad[0] = 0;
  at.conv.kernel[0] = 3, at.conv.kernel[1] = 2;
  NodeId gw = op2(g, OP_CONV2D_GRAD_WEIGHT, x, y, &at);
  NodeAttr pool = attr_of(&(Case){.stride = {2, 2}, .pad = {1, 1, 0, 0}, .kernel = {3, 2}});
  NodeId p = op2(g, OP_MAX_POOL2D, x, IR_NONE, &pool);
  NodeId pg = op2(g, OP_MAX_POOL2D_GRAD, x, p, &pool);
  NodeAttr sel = {.mode = {true}};
  NodeId ts = op2(g, OP_TRAIN_SELECT, pg, x, &sel);
  ck_assert_msg(xt != IR_NONE && gw != IR_NONE && ts != IR_NONE, "%s", diag_text(&d));
  graph_add_output(g, "xt", xt, OUT_VALUE, -1);
  graph_add_output(g, "gw", gw, OUT_VALUE, -1);
  graph_add_output(g, "ts", ts, OUT_VALUE, -1);
  char *text = ir_print(g);
  Module *back = ir_parse(text, "t.ir", &d);
  ck_assert_msg(back != NULL, "%s\n%s", diag_text(&d), text);
  const Graph *g2 = back->model ? back->model : back->entries[0];
  char *again = ir_print(g2);
  ck_assert_str_eq(text, again);
  ck_assert(strstr(text, "pad=[1, 0, 2, 1]") && strstr(text, "{train}"));
  free(text);
  free(again);
  module_free(back);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("autodiff_conv");
  TCase *tc = tcase_create("gradcheck");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_gradcheck, 0, N_CASES);
  tcase_add_test(tc, test_second_order_pool_rejected);
  tcase_add_test(tc, test_text_round_trip);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(conv_suite()); }
