/* tests/unit/test_ir_text.c — the IR text form: print/parse round trips of several graphs,
 * verify on good and broken graphs, dot output, and malformed text giving errors (never a
 * crash or a partial module). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/unit/testutil.h"

static SrcLoc L(uint32_t line, uint32_t col) { return (SrcLoc){"mlp.lathe", line, col}; }

/* a small MLP with softmax output, a loss, and a train step */
static Module *build_mlp(void) {
  Module *m = module_new("mlp");
  m->source_file = "examples/mlp.lathe";
  int64_t dx[2] = {4, 6}, dy[1] = {4}, dw[2] = {6, 3}, db[1] = {3};
  Shape sx = shape_make(2, dx), sy = shape_make(1, dy), sw = shape_make(2, dw),
        sb = shape_make(1, db);
  module_add_input(m, "x", DT_F32, &sx, L(4, 11));
  module_add_input(m, "label", DT_I32, &sy, L(4, 28));
  module_add_param(m, "h1.w", DT_F32, &sw, (InitSpec){INIT_GLOROT_UNIFORM, 0, 0}, L(5, 3));
  module_add_param(m, "h1.b", DT_F32, &sb, (InitSpec){INIT_UNIFORM, -0.1, 0.25}, L(5, 3));
  module_add_state(m, "step count", DT_I64, &(Shape){0}, (InitSpec){INIT_CONSTANT, 1e-3, 0},
                   L(6, 1));
  Graph *g = m->model = graph_new(m, "model");
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, L(4, 11));
  NodeId y = graph_add_source(g, OP_INPUT, 1, L(4, 28));
  NodeId w = graph_add_source(g, OP_PARAM, 0, L(5, 3));
  NodeId b = graph_add_source(g, OP_PARAM, 1, L(5, 3));
  NodeId mm = graph_add_binary(g, OP_MATMUL, x, w, L(5, 12), &d);
  NodeId logits = graph_add_binary(g, OP_ADD, mm, b, L(5, 16), &d);
  graph_node(g, logits)->name = "logits";
  NodeAttr sm = {.softmax = {.axis = 1}};
  NodeId probs = graph_add(g, OP_SOFTMAX, &logits, 1, &sm, L(7, 18), &d);
  NodeId ls = graph_add(g, OP_LOG_SOFTMAX, &logits, 1, &sm, L(8, 10), &d);
  NodeAttr oh = {.one_hot = {.depth = 3, .dtype = DT_F32}};
  NodeId hot = graph_add(g, OP_ONE_HOT, &y, 1, &oh, L(8, 10), &d);
  NodeId prod = graph_add_binary(g, OP_MUL, ls, hot, L(8, 10), &d);
  NodeAttr red = {.reduce = {.axes = 3, .keepdims = false}};
  NodeId sum = graph_add(g, OP_SUM, &prod, 1, &red, L(8, 10), &d);
  NodeId scale = graph_add_scalar(g, DT_F32, -0.25, L(8, 10));
  NodeId loss = graph_add_binary(g, OP_MUL, sum, scale, L(8, 10), &d);
  graph_node(g, loss)->name = "loss";
  graph_add_output(g, "probs", probs, OUT_VALUE, -1);
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  ck_assert_msg(d.n_errors == 0, "%s", diag_text(&d));
  TrainStep *st = module_add_step(m);
  st->loss = "loss";
  st->loss_node = loss;
  st->optimizer = "adam";
  st->optim_args = arena_alloc(&m->arena, 2 * sizeof(OptimArg));
  st->optim_args[0] = (OptimArg){"lr", 1e-3, L(10, 20)};
  st->optim_args[1] = (OptimArg){"beta1", 0.9, L(10, 30)};
  st->n_optim_args = 2;
  st->loc = L(9, 1);
  TrainStep *s2 = module_add_step(m);
  s2->name = "disc";
  s2->loss = "loss";
  s2->loss_node = IR_NONE;
  s2->param_globs = arena_alloc(&m->arena, sizeof(char *));
  s2->param_globs[0] = "h1.*";
  s2->n_globs = 1;
  s2->optimizer = "sgd";
  diag_fini(&d);
  return m;
}

/* a graph using the remaining ops and attributes */
static Module *build_misc(void) {
  Module *m = module_new("misc");
  int64_t da[3] = {2, 3, 4};
  Shape sa = shape_make(3, da);
  module_add_input(m, "a", DT_F64, &sa, (SrcLoc){0});
  Graph *g = m->model = graph_new(m, "forward");
  g->workspace_bytes = 4096;
  Diag d;
  diag_init(&d);
  NodeId a = graph_add_source(g, OP_INPUT, 0, (SrcLoc){0});
  NodeAttr tp = {.transpose = {.perm = {0, 2, 1}}};
  NodeId t = graph_add(g, OP_TRANSPOSE, &a, 1, &tp, (SrcLoc){0}, &d);
  NodeAttr mt = {.matmul = {.trans_a = true, .trans_b = true}};
  NodeId ta[2] = {a, t};
  NodeId mm = graph_add(g, OP_MATMUL, ta, 2, &mt, (SrcLoc){0}, &d);
  int64_t d6[2] = {6, 4};
  NodeAttr rs = {.reshape = {.shape = shape_make(2, d6)}};
  NodeId r = graph_add(g, OP_RESHAPE, &a, 1, &rs, (SrcLoc){0}, &d);
  int64_t d264[3] = {2, 6, 4};
  NodeAttr bc = {.reshape = {.shape = shape_make(3, d264)}};
  NodeId bcast = graph_add(g, OP_BROADCAST, &r, 1, &bc, (SrcLoc){0}, &d);
  NodeAttr c = {.cast = {.dtype = DT_I32}};
  NodeId ci = graph_add(g, OP_CAST, &bcast, 1, &c, (SrcLoc){0}, &d);
  graph_node(g, ci)->name = "weird \"name\"\n";
  graph_node(g, ci)->offset = 128;
  static const double data[4] = {1.5, -0.1, 1e300, 3};
  int64_t d4[1] = {4};
  NodeAttr k = {.constant = {.data = data, .dtype = DT_F64, .shape = shape_make(1, d4)}};
  NodeId kk = graph_add(g, OP_CONST, NULL, 0, &k, (SrcLoc){0}, &d);
  NodeId sum = graph_add_binary(g, OP_ADD, a, kk, (SrcLoc){0}, &d);
  NodeAttr mx = {.reduce = {.axes = 2, .keepdims = true}};
  NodeId mxn = graph_add(g, OP_MAX, &sum, 1, &mx, (SrcLoc){0}, &d);
  NodeId ex = graph_add_unary(g, OP_EXP, mxn, (SrcLoc){0}, &d);
  NodeId sg = graph_add_unary(g, OP_STOP_GRAD, ex, (SrcLoc){0}, &d);
  graph_add_output(g, "mm", mm, OUT_VALUE, -1);
  graph_add_output(g, "ci", ci, OUT_VALUE, -1);
  graph_add_output(g, "sg", sg, OUT_VALUE, -1);
  ck_assert_msg(d.n_errors == 0, "%s", diag_text(&d));
  diag_fini(&d);
  return m;
}

static void check_round_trip(Module *m) {
  Diag d;
  diag_init(&d);
  ck_assert_msg(ir_verify(m->model, &d), "%s", diag_text(&d));
  char *t1 = ir_print(m->model);
  Module *m2 = ir_parse(t1, "t.ir", &d);
  ck_assert_msg(m2 != NULL, "%s\n--- text ---\n%s", diag_text(&d), t1);
  ck_assert_msg(ir_verify(m2->model, &d), "%s", diag_text(&d));
  char *t2 = ir_print(m2->model);
  ck_assert_msg(strcmp(t1, t2) == 0, "round trip differs:\n%s\n---\n%s", t1, t2);
  ck_assert_uint_eq(m2->model->n_nodes, m->model->n_nodes);
  ck_assert_int_eq(m2->n_params, m->n_params);
  free(t1);
  free(t2);
  module_free(m2);
  diag_fini(&d);
}

START_TEST(test_round_trip_mlp) {
  Module *m = build_mlp();
  check_round_trip(m);
  char *t = ir_print(m->model);
  ck_assert_ptr_nonnull(strstr(t, "module mlp\n"));
  ck_assert_ptr_nonnull(strstr(t, "param h1.w: f32[6, 3] = glorot_uniform"));
  ck_assert_ptr_nonnull(strstr(t, "= matmul %0, %2 : f32[4, 3]"));
  ck_assert_ptr_nonnull(strstr(t, "{axes=[0, 1], keepdims=false} : f32[]"));
  ck_assert_ptr_nonnull(strstr(t, "output probs = %6 value"));
  ck_assert_ptr_nonnull(strstr(t, "optimizer adam(lr=0.001, beta1=0.9)"));
  free(t);
  module_free(m);
}
END_TEST

START_TEST(test_round_trip_misc) {
  Module *m = build_misc();
  check_round_trip(m);
  module_free(m);
}
END_TEST

START_TEST(test_parse_preserves_fields) {
  Module *m = build_misc();
  Diag d;
  diag_init(&d);
  char *t = ir_print(m->model);
  Module *m2 = ir_parse(t, "t.ir", &d);
  ck_assert_ptr_nonnull(m2);
  const Graph *g = m2->model;
  ck_assert_str_eq(g->name, "forward");
  ck_assert_int_eq(g->workspace_bytes, 4096);
  ck_assert_str_eq(graph_node(g, 5)->name, "weird \"name\"\n");
  ck_assert_int_eq(graph_node(g, 5)->offset, 128);
  ck_assert(graph_node(g, 2)->attr.matmul.trans_a && graph_node(g, 2)->attr.matmul.trans_b);
  ck_assert(graph_node(g, 6)->attr.constant.data[2] == 1e300);
  ck_assert(graph_node(g, 6)->attr.constant.data[1] == -0.1);
  free(t);
  module_free(m2);
  Module *m3 = build_mlp();
  t = ir_print(m3->model);
  m2 = ir_parse(t, "t.ir", &d);
  ck_assert_ptr_nonnull(m2);
  ck_assert_str_eq(m2->params[1].name, "h1.b");
  ck_assert(m2->params[1].init.kind == INIT_UNIFORM && m2->params[1].init.b == 0.25);
  ck_assert_str_eq(m2->states[0].name, "step count");
  ck_assert_str_eq(graph_node(m2->model, 0)->loc.file, "mlp.lathe");
  ck_assert_int_eq(graph_node(m2->model, 0)->loc.col, 11);
  ck_assert_int_eq(m2->n_steps, 2);
  ck_assert_str_eq(m2->steps[1].name, "disc");
  ck_assert_str_eq(m2->steps[1].param_globs[0], "h1.*");
  ck_assert(m2->steps[0].optim_args[0].value == 1e-3);
  ck_assert_uint_eq(m2->steps[0].loss_node, m3->steps[0].loss_node);
  free(t);
  module_free(m2);
  module_free(m3);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_hand_written) {
  const char *text = "; a comment line\n"
                     "module tiny\n"
                     "input x: f32[2, 3]\n"
                     "\n"
                     "graph model {\n"
                     "  %0 = input 0 : f32[2, 3]   ; x\n"
                     "  %1 = relu %0 : f32[2, 3]  # h @tiny.lathe:2:5\n"
                     "  %2 = mean %1 {axes=[1]} : f32[2]\n"
                     "  output y = %2 value\n"
                     "}\n";
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "tiny.ir", &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_uint_eq(m->model->n_nodes, 3);
  ck_assert_str_eq(graph_node(m->model, 1)->name, "h");
  ck_assert_int_eq(graph_node(m->model, 1)->loc.line, 2);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* each malformed text must give an error mentioning `want`, and no module */
static void expect_parse_error(const char *text, const char *want) {
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "bad.ir", &d);
  ck_assert_msg(m == NULL, "parsed malformed text:\n%s", text);
  ck_assert_int_ge(d.n_errors, 1);
  ck_assert_msg(strstr(diag_text(&d), want) != NULL, "want '%s' in:\n%s", want, diag_text(&d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "bad.ir:"));
  diag_fini(&d);
}

/* a convolution's layout (passes/layout.c) round-trips; a pooling op cannot have one */
START_TEST(test_conv_layout) {
  const char *text =
      "module c\ninput x: f32[1, 2, 6, 6]\nparam w: f32[8, 2, 3, 3] = he_uniform\n"
      "graph model {\n  %0 = input 0 : f32[1, 2, 6, 6]\n  %1 = param 0 : f32[8, 2, 3, 3]\n"
      "  %2 = conv2d %0, %1 {stride=[1, 1], dilation=[1, 1], pad=[0, 0, 0, 0], "
      "out_pad=[0, 0], kernel=[0, 0], groups=[1], nchwc} : f32[1, 8, 4, 4]\n"
      "  output y = %2 value\n}\n";
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "c.ir", &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(graph_node(m->model, 2)->attr.conv.layout, IR_CONV_NCHWC);
  char *printed = ir_print(m->model);
  ck_assert_ptr_nonnull(strstr(printed, "groups=[1], nchwc}"));
  free(printed);
  module_free(m);
  diag_fini(&d);
  expect_parse_error("module c\ninput x: f32[1, 2, 6, 6]\ngraph g {\n"
                     "  %0 = input 0 : f32[1, 2, 6, 6]\n  %1 = max_pool2d %0 {stride=[2, 2], "
                     "dilation=[1, 1], pad=[0, 0, 0, 0], out_pad=[0, 0], kernel=[2, 2], "
                     "groups=[1], nchwc} : f32[1, 2, 3, 3]\n}\n",
                     "only a convolution's layout may be nchwc");
}
END_TEST

/* a convolution's algorithm (passes/layout.c) round-trips for every IrConvAlgo; a name that
 * is none, winograd without nchwc and a pooling op with one are errors */
START_TEST(test_conv_algo) {
  const char *conv =
      "module c\ninput x: f32[4, 16, 6, 6]\nparam w: f32[16, 16, 3, 3] = he_uniform\n"
      "graph model {\n  %%0 = input 0 : f32[4, 16, 6, 6]\n"
      "  %%1 = param 0 : f32[16, 16, 3, 3]\n"
      "  %%2 = conv2d %%0, %%1 {stride=[1, 1], dilation=[1, 1], pad=[0, 0, 0, 0], "
      "out_pad=[0, 0], kernel=[0, 0], groups=[1]%s} : f32[4, 16, 4, 4]\n"
      "  output y = %%2 value\n}\n";
  for (int a = IR_CONV_ALGO_NAIVE; a < IR_CONV_ALGO_COUNT; a++) {
    char attr[64], text[1024];
    snprintf(attr, sizeof attr, "%s, algo=%s", a >= IR_CONV_ALGO_DIRECT ? ", nchwc" : "",
             ir_conv_algo_name((IrConvAlgo)a));
    snprintf(text, sizeof text, conv, attr);
    Diag d;
    diag_init(&d);
    Module *m = ir_parse(text, "c.ir", &d);
    ck_assert_msg(m != NULL, "%s", diag_text(&d));
    ck_assert_int_eq(graph_node(m->model, 2)->attr.conv.algo, a);
    char *printed = ir_print(m->model);
    ck_assert_msg(strstr(printed, attr) != NULL, "want '%s' in:\n%s", attr, printed);
    IrConvAlgo back;
    ck_assert(ir_conv_algo_parse(ir_conv_algo_name((IrConvAlgo)a), &back) && back == (IrConvAlgo)a);
    free(printed);
    module_free(m);
    diag_fini(&d);
  }
  char text[1024];
  snprintf(text, sizeof text, conv, ", algo=fast");
  expect_parse_error(text, "expected naive, gemm, direct or winograd after 'algo='");
  snprintf(text, sizeof text, conv, ", algo=winograd");
  expect_parse_error(text, "algo=direct or winograd needs nchwc");
  expect_parse_error("module c\ninput x: f32[1, 2, 6, 6]\ngraph g {\n"
                     "  %0 = input 0 : f32[1, 2, 6, 6]\n  %1 = max_pool2d %0 {stride=[2, 2], "
                     "dilation=[1, 1], pad=[0, 0, 0, 0], out_pad=[0, 0], kernel=[2, 2], "
                     "groups=[1], algo=naive} : f32[1, 2, 3, 3]\n}\n",
                     "only a convolution has an algo");
}
END_TEST

START_TEST(test_malformed) {
  const char *head = "module t\ninput x: f32[2, 3]\ngraph g {\n  %0 = input 0 : f32[2, 3]\n";
  char buf[512];
  expect_parse_error("", "expected 'module'");
  expect_parse_error("module t\ninput x: f33[2]\n", "expected a dtype");
  expect_parse_error("module t\ninput x: f32[2, 0]\n", ">= 1");
  expect_parse_error("module t\ninput x: f32[2\n", "expected ']'");
  expect_parse_error("module t\nparam w: f32[2] = glorious\n", "unknown initializer");
  expect_parse_error("module t\ngraph g {\n", "expected '}'");
  expect_parse_error("module t\ngraph g {\n  %0 = input 0 : f32[2]\n}\n", "index 0 out of range");
  snprintf(buf, sizeof buf, "%s  %%1 = frobnicate %%0 : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "unknown op 'frobnicate'");
  snprintf(buf, sizeof buf, "%s  %%1 = add %%0 : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "add: expected 2 inputs, got 1");
  snprintf(buf, sizeof buf, "%s  %%1 = add %%0, %%7 : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "does not exist");
  snprintf(buf, sizeof buf, "%s  %%1 = neg %%0 : f32[3, 2]\n}\n", head);
  expect_parse_error(buf, "does not match the inferred f32[2, 3]");
  snprintf(buf, sizeof buf, "%s  %%5 = neg %%0 : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "expected node %1 next");
  snprintf(buf, sizeof buf, "%s  %%1 = matmul %%0, %%0 : f32[2, 2]\n}\n", head);
  expect_parse_error(buf, "inner dimensions do not match");
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 {axes=[1], bogus=2} : f32[2]\n}\n", head);
  expect_parse_error(buf, "unknown attribute");
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 : f32[2]\n}\n", head);
  expect_parse_error(buf, "needs {axes=");
  /* the attribute dictionary is read by kind (ir/attr.c): each key once, in its form */
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 {axes=[1], axes=[0]} : f32[2]\n}\n", head);
  expect_parse_error(buf, "attribute 'axes' given twice");
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 {axes=[1.5]} : f32[2]\n}\n", head);
  expect_parse_error(buf, "expected a list of integers after 'axes='");
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 {axes} : f32[2]\n}\n", head);
  expect_parse_error(buf, "expected '=' after 'axes'");
  snprintf(buf, sizeof buf, "%s  %%1 = sum %%0 {axes=[1], keepdims=maybe} : f32[2]\n}\n", head);
  expect_parse_error(buf, "expected true or false after 'keepdims='");
  snprintf(buf, sizeof buf, "%s  %%1 = matmul %%0, %%0 {trans_b=1} : f32[2, 2]\n}\n", head);
  expect_parse_error(buf, "'trans_b' takes no value");
  snprintf(buf, sizeof buf, "%s  %%1 = neg %%0 {nchwc} : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "unknown attribute 'nchwc' for 'neg'");
  snprintf(buf, sizeof buf, "%s  %%1 = input x : f32[2, 3]\n}\n", head);
  expect_parse_error(buf, "expected a declaration index (an integer)");
  snprintf(buf, sizeof buf, "%s  %%1 = const [1, 2] : f32[3]\n}\n", head);
  expect_parse_error(buf, "constant has 2 elements");
  snprintf(buf, sizeof buf, "%s  output y = %%3 value\n}\n", head);
  expect_parse_error(buf, "does not exist");
  snprintf(buf, sizeof buf, "%s  output y = %%0 sideways\n}\n", head);
  expect_parse_error(buf, "expected an output kind");
  snprintf(buf, sizeof buf, "%s  %%1 = neg %%0 : f32[2, 3]  # \"unterminated\n}\n", head);
  expect_parse_error(buf, "unterminated string");
  snprintf(buf, sizeof buf, "%s}\ntrailing\n", head);
  expect_parse_error(buf, "unexpected text after the graph");
  snprintf(buf, sizeof buf, "%s  %%1 = transpose %%0 {perm=[0, 0]} : f32[2, 2]\n}\n", head);
  expect_parse_error(buf, "error");
}
END_TEST

START_TEST(test_error_location) {
  Diag d;
  diag_init(&d);
  Module *m = ir_parse("module t\ninput x: f32[2]\n  bogus\n", "loc.ir", &d);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(diag_text(&d), "loc.ir:3:3:") != NULL, "%s", diag_text(&d));
  diag_fini(&d);
}
END_TEST

START_TEST(test_verify_catches) {
  Module *m = build_mlp();
  Diag d;
  diag_init(&d);
  ck_assert(ir_verify(m->model, &d));
  Graph *g = graph_clone(m->model, "broken");
  g->nodes[4].shape.dim[1] = 5; /* matmul result type no longer what infer computes */
  ck_assert(!ir_verify(g, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "matmul"));
  graph_free(g);
  g = graph_clone(m->model, "broken2");
  g->nodes[5].in[0] = 9; /* a forward reference breaks topological order */
  ck_assert(!ir_verify(g, &d));
  graph_free(g);
  g = graph_clone(m->model, "broken3");
  graph_add_output(g, "w", 4, OUT_PARAM_UPDATE, 0); /* [4, 3] is not h1.w's [6, 3] */
  ck_assert(!ir_verify(g, &d));
  graph_free(g);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_dot) {
  Module *m = build_mlp();
  char *dot = ir_print_dot(m->model);
  ck_assert_ptr_nonnull(strstr(dot, "digraph \"model\" {"));
  ck_assert_ptr_nonnull(strstr(dot, "n4 -> n5;"));
  ck_assert_ptr_nonnull(strstr(dot, "probs (value)"));
  ck_assert_ptr_nonnull(strstr(dot, "%4 matmul"));
  ck_assert_ptr_null(strstr(dot, "subgraph")); /* no fusion groups yet */
  free(dot);
  /* a fusion group (as passes/fuse.c marks one) is drawn as one cluster holding its members */
  m->model->nodes[4].group = 4;
  m->model->nodes[5].group = 4;
  dot = ir_print_dot(m->model);
  const char *cl = strstr(dot, "subgraph cluster_k4 {");
  ck_assert_ptr_nonnull(cl);
  ck_assert_ptr_nonnull(strstr(cl, "fused kernel %4..%5: 2 nodes"));
  const char *end = strstr(cl, "\n  }\n");
  const char *n4 = strstr(dot, "  n4 [label"), *n5 = strstr(dot, "  n5 [label");
  ck_assert(end && n4 > cl && n4 < end && n5 > cl && n5 < end);
  ck_assert_ptr_nonnull(strstr(end, "n4 -> n5;")); /* edges after the clusters */
  ck_assert_ptr_null(strstr(end + 1, "subgraph"));
  free(dot);
  module_free(m);
}
END_TEST

static Suite *ir_text_suite(void) {
  Suite *s = suite_create("ir_text");
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, test_round_trip_mlp);
  tcase_add_test(tc, test_round_trip_misc);
  tcase_add_test(tc, test_parse_preserves_fields);
  tcase_add_test(tc, test_hand_written);
  tcase_add_test(tc, test_conv_layout);
  tcase_add_test(tc, test_conv_algo);
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_error_location);
  tcase_add_test(tc, test_verify_catches);
  tcase_add_test(tc, test_dot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(ir_text_suite()); }
