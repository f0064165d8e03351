/* tests/unit/test_codegen_scan.c — C for SCAN/PACK/UNPACK against ir_eval, compiled by gcc and
 * clang (codegen_harness.h): an LSTM forward and its gradient entry (the reverse scan), in
 * f32 and f64, forwards and reversed, after the optimizing passes (fold, simplify, cse, dce,
 * fuse, memplan), plus a tanh RNN along axis 0. Also checks that the generated code for an
 * LSTM does not grow with the sequence length.
 */
#include "codegen_harness.h"
#include "tests/unit/scan_build.h"

static uint64_t rng = 1234567;
static double urand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static NodeId rand_const(Graph *g, DType t, const Shape *s) {
  int64_t n = shape_numel(s);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) data[i] = 2.0 * urand() - 1.0;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  at.constant.shape = *s;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, SB_L, NULL);
}

static bool square_loss; /* weigh by x itself: no table whose size depends on T */

static NodeId weigh(Graph *g, NodeId x) {
  const Node *n = graph_node(g, x);
  Shape s = n->shape;
  NodeId prod = sb_bin(g, OP_MUL, x, square_loss ? x : rand_const(g, n->dtype, &s));
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reduce.axes = (1u << s.rank) - 1;
  return graph_add(g, OP_SUM, &prod, 1, &at, SB_L, NULL);
}

enum { B = 2, I = 4, HID = 3 };

typedef struct Model {
  Module *m;
  Tensor inputs[3], params[3];
} Model;

/* inputs h0, c0, xs [B, T, I]; params wx, wh, b; entries forward (hs, cT) and, if grad, a
 * "grad" entry of sum(hs * R) + sum(cT * R2) through the optimizing passes */
static void build(Model *md, DType t, int64_t T, bool reverse, bool grad) {
  Module *m = md->m = module_new("lstm_t");
  m->source_file = "scan.lathe";
  Shape hs = shape_make(2, (int64_t[]){B, HID}), xs = shape_make(3, (int64_t[]){B, T, I});
  Shape ws[3] = {shape_make(2, (int64_t[]){I, 4 * HID}), shape_make(2, (int64_t[]){HID, 4 * HID}),
                 shape_make(1, (int64_t[]){4 * HID})};
  Shape in_s[3] = {hs, hs, xs};
  const char *in_names[3] = {"h0", "c0", "xs"}, *p_names[3] = {"wx", "wh", "b"};
  for (int i = 0; i < 3; i++) {
    module_add_input(m, in_names[i], t, &in_s[i], SB_L);
    ck_assert(tensor_alloc(&md->inputs[i], t, &in_s[i]));
    cgh_fill(&md->inputs[i], (uint64_t)i + 5, -1, 1);
    module_add_param(m, p_names[i], t, &ws[i], (InitSpec){INIT_ZEROS, 0, 0}, SB_L);
    ck_assert(tensor_alloc(&md->params[i], t, &ws[i]));
    cgh_fill(&md->params[i], (uint64_t)i + 17, -0.6, 0.6);
  }
  for (int e = 0; e < (grad ? 2 : 1); e++) {
    Graph *g = graph_new(m, e ? "grad" : "forward");
    NodeId in[6];
    for (int i = 0; i < 3; i++) in[i] = graph_add_source(g, OP_INPUT, i, SB_L);
    for (int i = 0; i < 3; i++) in[3 + i] = graph_add_source(g, OP_PARAM, i, SB_L);
    NodeId h, c;
    sb_lstm(g, in, B, T, I, HID, reverse, &h, &c);
    if (e == 0) {
      graph_add_output(g, "hs", h, OUT_VALUE, -1);
      graph_add_output(g, "cT", c, OUT_VALUE, -1);
    } else {
      graph_add_output(g, "loss", sb_bin(g, OP_ADD, weigh(g, h), weigh(g, c)), OUT_LOSS, -1);
    }
    module_add_entry(m, g);
  }
}

static void optimize(Module *m) {
  Diag d;
  diag_init(&d);
  PassCtx c;
  pass_ctx_init(&c, &d);
  for (int i = 0; i < m->n_entries; i++) {
    Graph *g = m->entries[i];
    bool ok = pass_autodiff(g, &c) && pass_fold(g, &c) && pass_simplify(g, &c) &&
              pass_cse(g, &c) && pass_dce(g, &c) && pass_fuse(g, &c);
    ck_assert_msg(ok, "passes: %s", diag_text(&d));
    ck_assert_msg(ir_verify(g, &d), "verify: %s", diag_text(&d));
  }
  pass_ctx_fini(&c);
  diag_fini(&d);
}

static void model_free(Model *md) {
  for (int i = 0; i < 3; i++) {
    tensor_free(&md->inputs[i]);
    tensor_free(&md->params[i]);
  }
  module_free(md->m);
}

static void check_lstm(DType t, bool reverse, double rtol) {
  Model md;
  memset(&md, 0, sizeof md);
  build(&md, t, 5, reverse, true);
  optimize(md.m);
  Tensor none[1];
  memset(none, 0, sizeof none);
  cgh_check_module(md.m, md.inputs, md.params, none, rtol);
  model_free(&md);
}

START_TEST(test_lstm_f32) { check_lstm(DT_F32, false, 1e-4); }
END_TEST
START_TEST(test_lstm_f64_reverse) { check_lstm(DT_F64, true, 1e-10); }
END_TEST

/* h = tanh(x_t @ w + h), xs [T=6, B=2, I=3] along axis 0, stacked along axis 0 too */
START_TEST(test_rnn_axis0) {
  Module *m = module_new("rnn_t");
  Shape xs = shape_make(3, (int64_t[]){6, 2, 3}), ws = shape_make(2, (int64_t[]){3, 2});
  Tensor inputs[1], params[1], none[1];
  memset(none, 0, sizeof none);
  module_add_input(m, "xs", DT_F32, &xs, SB_L);
  module_add_param(m, "w", DT_F32, &ws, (InitSpec){INIT_ZEROS, 0, 0}, SB_L);
  ck_assert(tensor_alloc(&inputs[0], DT_F32, &xs) && tensor_alloc(&params[0], DT_F32, &ws));
  cgh_fill(&inputs[0], 3, -1, 1);
  cgh_fill(&params[0], 4, -1, 1);
  Graph *g = graph_new(m, "forward");
  NodeId x = graph_add_source(g, OP_INPUT, 0, SB_L), w = graph_add_source(g, OP_PARAM, 0, SB_L);
  Graph *b = graph_new(m, "body");
  NodeId h = sb_arg(b, 0, DT_F32, 2, (int64_t[]){2, 2});
  NodeId xt = sb_arg(b, 1, DT_F32, 2, (int64_t[]){2, 3});
  NodeId wb = sb_arg(b, 2, DT_F32, 2, (int64_t[]){3, 2});
  NodeId xw = graph_add(b, OP_MATMUL, (NodeId[]){xt, wb}, 2, NULL, SB_L, NULL);
  NodeId h2 = sb_un(b, OP_TANH, sb_bin(b, OP_ADD, xw, h));
  graph_add_output(b, "h", h2, OUT_VALUE, -1);
  graph_add_output(b, "y", h2, OUT_VALUE, -1);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(g, b);
  at.scan.length = 6;
  at.scan.n_carry = 1;
  at.scan.n_seq = 1;
  NodeAttr z;
  memset(&z, 0, sizeof z);
  z.constant.dtype = DT_F32;
  z.constant.shape = shape_make(2, (int64_t[]){2, 2});
  NodeId zero = graph_add(g, OP_CONST, NULL, 0, &z, SB_L, NULL);
  NodeId s = graph_add(g, OP_SCAN, (NodeId[]){zero, x, w}, 3, &at, SB_L, NULL);
  ck_assert(s != IR_NONE);
  graph_add_output(g, "ys", sb_unpack(g, s, 4, 3, (int64_t[]){6, 2, 2}), OUT_VALUE, -1);
  module_add_entry(m, g);
  cgh_check_module(m, inputs, params, none, 1e-5);
  tensor_free(&inputs[0]);
  tensor_free(&params[0]);
  module_free(m);
}
END_TEST

/* the generated C of an LSTM's forward and gradient is the same size for T = 8 and T = 64 */
START_TEST(test_code_size_independent_of_length) {
  size_t len[2];
  square_loss = true;
  for (int k = 0; k < 2; k++) {
    Model md;
    memset(&md, 0, sizeof md);
    build(&md, DT_F32, k ? 64 : 8, false, true);
    optimize(md.m);
    cgh_plan(md.m);
    char *c_text, *h_text;
    cgh_emit(md.m, false, &c_text, &h_text);
    len[k] = strlen(c_text);
    free(c_text);
    free(h_text);
    model_free(&md);
  }
  square_loss = false;
  /* only numerals differ (loop bounds, offsets, sizes): a few characters each */
  ck_assert_msg(len[1] < len[0] + len[0] / 50, "T=8: %zu bytes, T=64: %zu bytes", len[0], len[1]);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("codegen_scan");
  TCase *tc = tcase_create("scan");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_lstm_f32);
  tcase_add_test(tc, test_lstm_f64_reverse);
  tcase_add_test(tc, test_rnn_axis0);
  tcase_add_test(tc, test_code_size_independent_of_length);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(suite()); }
