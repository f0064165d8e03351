/* tests/unit/test_autodiff_scan.c — SCAN's reverse-scan VJP against central finite
 * differences in f64 (same approach and error measure as test_autodiff_gradcheck.c):
 * loss = sum(out * R) over random R; every param element is perturbed by +-h.
 * Cases: an LSTM (gradients of the sequence, the initial carries and the weights), the same
 * run in reverse, two stacked LSTM layers, and a tanh RNN scanning along axis 0 whose carry
 * is read only at the end. Also: the text form of a differentiated graph round-trips.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tests/unit/scan_build.h"
#include "tests/unit/testutil.h"

#define H 1e-6
#define TOL 1e-6
#define MAXP 8

static uint64_t rng = 88172645463325252ull;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static NodeId rand_const(Graph *g, const Shape *s) {
  int64_t n = shape_numel(s);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) data[i] = 2.0 * urand() - 1.0;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = DT_F64;
  at.constant.shape = *s;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, SB_L, NULL);
}

/* sum(x * R) */
static NodeId weigh(Graph *g, NodeId x) {
  Shape s = graph_node(g, x)->shape;
  NodeId prod = sb_bin(g, OP_MUL, x, rand_const(g, &s));
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reduce.axes = (1u << s.rank) - 1;
  return graph_add(g, OP_SUM, &prod, 1, &at, SB_L, NULL);
}

typedef NodeId (*BuildFn)(Graph *g, const NodeId *p);
typedef struct Case {
  const char *name;
  int n;
  int rank[MAXP];
  int64_t dims[MAXP][4];
  BuildFn build;
} Case;

static NodeId lstm_case(Graph *g, const NodeId *p, bool reverse) {
  NodeId hs, cT;
  sb_lstm(g, p, 2, 3, 3, 2, reverse, &hs, &cT);
  return sb_bin(g, OP_ADD, weigh(g, hs), weigh(g, cT));
}
static NodeId lstm_fwd(Graph *g, const NodeId *p) { return lstm_case(g, p, false); }
static NodeId lstm_rev(Graph *g, const NodeId *p) { return lstm_case(g, p, true); }

/* xs, wx1, wh1, b1, wx2, wh2, b2; zero initial carries */
static NodeId lstm2(Graph *g, const NodeId *p) {
  Shape hs0 = shape_make(2, (int64_t[]){2, 2});
  NodeAttr z;
  memset(&z, 0, sizeof z);
  z.constant.dtype = DT_F64;
  z.constant.shape = hs0;
  NodeId zero = graph_add(g, OP_CONST, NULL, 0, &z, SB_L, NULL);
  NodeId hs1, c1, hs2, c2;
  sb_lstm(g, (NodeId[]){zero, zero, p[0], p[1], p[2], p[3]}, 2, 4, 3, 2, false, &hs1, &c1);
  sb_lstm(g, (NodeId[]){zero, zero, hs1, p[4], p[5], p[6]}, 2, 4, 2, 2, true, &hs2, &c2);
  return weigh(g, hs2);
}

/* h = tanh(x_t @ w + h @ u) over xs [T=4, B=2, I=3] along axis 0; only the final h is used */
static NodeId rnn_axis0(Graph *g, const NodeId *p) {
  Graph *b = graph_new(g->module, "body");
  NodeId h = sb_arg(b, 0, DT_F64, 2, (int64_t[]){2, 2});
  NodeId x = sb_arg(b, 1, DT_F64, 2, (int64_t[]){2, 3});
  NodeId w = sb_arg(b, 2, DT_F64, 2, (int64_t[]){3, 2});
  NodeId u = sb_arg(b, 3, DT_F64, 2, (int64_t[]){2, 2});
  NodeId xw = graph_add(b, OP_MATMUL, (NodeId[]){x, w}, 2, NULL, SB_L, NULL);
  NodeId hu = graph_add(b, OP_MATMUL, (NodeId[]){h, u}, 2, NULL, SB_L, NULL);
  graph_add_output(b, "h", sb_un(b, OP_TANH, sb_bin(b, OP_ADD, xw, hu)), OUT_VALUE, -1);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(g, b);
  at.scan.length = 4;
  at.scan.n_carry = 1;
  at.scan.n_seq = 1;
  at.scan.axis = 0;
  NodeId s = graph_add(g, OP_SCAN, (NodeId[]){p[0], p[1], p[2], p[3]}, 4, &at, SB_L, NULL);
  ck_assert(s != IR_NONE);
  return weigh(g, sb_unpack(g, s, 0, 2, (int64_t[]){2, 2}));
}

static const Case cases[] = {
    {"lstm", 6, {2, 2, 3, 2, 2, 1}, {{2, 2}, {2, 2}, {2, 3, 3}, {3, 8}, {2, 8}, {8}}, NULL},
    {"lstm reverse", 6, {2, 2, 3, 2, 2, 1}, {{2, 2}, {2, 2}, {2, 3, 3}, {3, 8}, {2, 8}, {8}},
     NULL},
    {"two stacked lstm layers", 7, {3, 2, 2, 1, 2, 2, 1},
     {{2, 4, 3}, {3, 8}, {2, 8}, {8}, {2, 8}, {2, 8}, {8}}, lstm2},
    {"rnn along axis 0", 4, {2, 3, 2, 2}, {{2, 2}, {4, 2, 3}, {3, 2}, {2, 2}}, rnn_axis0},
};

static Diag *D;

static double eval_loss(const Graph *g, const Tensor *params) {
  Tensor outs[MAXP + 1];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, D), "eval: %s", diag_text(D));
  double l = tensor_get(&outs[0], 0);
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  return l;
}

static void check_param(const Case *k, const Graph *g, Tensor *params, int i, const Tensor *gr) {
  for (int64_t e = 0; e < shape_numel(&params[i].shape); e++) {
    double x = tensor_get(&params[i], e);
    tensor_set(&params[i], e, x + H);
    double up = eval_loss(g, params);
    tensor_set(&params[i], e, x - H);
    double down = eval_loss(g, params);
    tensor_set(&params[i], e, x);
    double fd = (up - down) / (2 * H), an = tensor_get(gr, e);
    double err = fabs(an - fd) / fmax(1.0, fmax(fabs(an), fabs(fd)));
    ck_assert_msg(err <= TOL, "%s: d/dp%d[%lld]: autodiff %.12g vs finite difference %.12g",
                  k->name, i, (long long)e, an, fd);
  }
}

/* the text form of g parses back and prints identically */
static void check_round_trip(const Graph *g) {
  char *text = ir_print(g);
  Module *m2 = ir_parse(text, "rt.ir", D);
  ck_assert_msg(m2 != NULL, "parse: %s\n%s", diag_text(D), text);
  char *again = ir_print(m2->model);
  ck_assert_str_eq(text, again);
  ck_assert_msg(ir_verify(m2->model, D), "%s", diag_text(D));
  free(again);
  free(text);
  module_free(m2);
}

static Graph *make_graph(Module *m, const Case *k, int index, Tensor *params) {
  for (int i = 0; i < k->n; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    Shape s = shape_make(k->rank[i], k->dims[i]);
    module_add_param(m, name, DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, SB_L);
    tensor_alloc(&params[i], DT_F64, &s);
    for (int64_t e = 0; e < shape_numel(&s); e++) tensor_set(&params[i], e, urand() - 0.5);
  }
  Graph *g = graph_new(m, "grad");
  NodeId p[MAXP];
  for (int i = 0; i < k->n; i++) p[i] = graph_add_source(g, OP_PARAM, i, SB_L);
  NodeId loss = k->build ? k->build(g, p) : index == 0 ? lstm_fwd(g, p) : lstm_rev(g, p);
  ck_assert(loss != IR_NONE);
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  return g;
}

START_TEST(test_gradcheck) {
  const Case *k = &cases[_i];
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Tensor params[MAXP];
  Graph *g = make_graph(m, k, _i, params);
  ck_assert_msg(ir_verify(g, &d), "%s: %s", k->name, diag_text(&d));
  check_round_trip(g);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: autodiff failed: %s", k->name, diag_text(&d));
  ck_assert_msg(ir_verify(g, &d), "%s: IR invalid: %s", k->name, diag_text(&d));
  check_round_trip(g);
  ck_assert_int_eq(g->n_outputs, 1 + k->n);
  Tensor outs[MAXP + 1];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < k->n; i++) {
    ck_assert_int_eq(g->outputs[1 + i].kind, OUT_GRAD);
    check_param(k, g, params, i, &outs[1 + i]);
  }
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  for (int i = 0; i < k->n; i++) tensor_free(&params[i]);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a body argument whose type disagrees with the scan's input is reported, naming the op */
START_TEST(test_bad_body_reported) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("t");
  Graph *g = graph_new(m, "model");
  m->model = g;
  Shape s = shape_make(2, (int64_t[]){2, 3});
  int32_t pi = module_add_param(m, "p", DT_F32, &s, (InitSpec){INIT_ZEROS, 0, 0}, SB_L);
  NodeId p = graph_add_source(g, OP_PARAM, pi, SB_L);
  Graph *b = graph_new(m, "body");
  graph_add_output(b, "h", sb_arg(b, 0, DT_F32, 2, (int64_t[]){3, 2}), OUT_VALUE, -1);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(g, b);
  at.scan.length = 5;
  at.scan.n_carry = 1;
  ck_assert_uint_eq(graph_add(g, OP_SCAN, &p, 1, &at, SB_L, &d), IR_NONE);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "scan:"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "[3, 2]"));
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *scan_suite(void) {
  Suite *s = suite_create("autodiff_scan");
  TCase *tc = tcase_create("gradcheck");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_gradcheck, 0, (int)(sizeof cases / sizeof cases[0]));
  tcase_add_test(tc, test_bad_body_reported);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(scan_suite()); }
