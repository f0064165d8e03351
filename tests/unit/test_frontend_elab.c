/* tests/unit/test_frontend_elab.c — elaboration: examples/mlp.lathe end to end (params,
 * shapes, outputs, train step), the instance naming rule, `as` sharing, -D, --dtype f64,
 * scalar constants, errors that must name functions and shapes, and the built-in lib/ shared
 * between compiles. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

static char lib_dir[4096];

static Module *compile_opts(const char *text, FrontendOptions *o, Diag *d) {
  snprintf(lib_dir, sizeof lib_dir, "%s/lib", test_source_dir());
  o->lib_dir = lib_dir;
  diag_init(d);
  return frontend_compile("t.lathe", text, o, d);
}

static Module *compile(const char *text, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  return compile_opts(text, &o, d);
}

static void assert_param(const Module *m, const char *name, DType t, int rank, int64_t d0,
                         int64_t d1) {
  int32_t i = module_find_param(m, name);
  ck_assert_msg(i >= 0, "no param %s", name);
  const TensorDecl *p = &m->params[i];
  ck_assert_int_eq(p->dtype, t);
  ck_assert_int_eq(p->shape.rank, rank);
  ck_assert_int_eq(p->shape.dim[0], d0);
  if (rank > 1) ck_assert_int_eq(p->shape.dim[1], d1);
}

START_TEST(test_mlp) {
  char *text = test_read_file("examples/mlp.lathe");
  ck_assert_ptr_nonnull(text);
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(m->name, "mlp");
  ck_assert_int_eq(m->n_inputs, 2);
  ck_assert_str_eq(m->inputs[0].name, "x");
  ck_assert_int_eq(m->inputs[0].shape.dim[0], 64);
  ck_assert_int_eq(m->inputs[0].shape.dim[1], 784);
  ck_assert_int_eq(m->inputs[1].dtype, DT_I32);
  ck_assert_int_eq(m->n_params, 6);
  const char *order[] = {"h1.w", "h1.b", "h2.w", "h2.b", "logits.w", "logits.b"};
  for (int i = 0; i < 6; i++)
    ck_assert_str_eq(m->params[i].name, order[i]);
  assert_param(m, "h1.w", DT_F32, 2, 784, 256);
  assert_param(m, "h1.b", DT_F32, 1, 256, 0);
  assert_param(m, "h2.w", DT_F32, 2, 256, 128);
  assert_param(m, "logits.w", DT_F32, 2, 128, 10);
  ck_assert_int_eq(m->params[0].init.kind, INIT_GLOROT_UNIFORM);
  ck_assert_int_eq(m->params[1].init.kind, INIT_ZEROS);
  const Graph *g = m->model;
  ck_assert_int_eq(g->n_outputs, 2);
  ck_assert_str_eq(g->outputs[0].name, "probs");
  ck_assert_int_eq(g->outputs[0].kind, OUT_VALUE);
  const Node *probs = graph_node(g, g->outputs[0].node);
  ck_assert_int_eq(probs->op, OP_SOFTMAX);
  ck_assert_int_eq(probs->attr.softmax.axis, 1);
  ck_assert_int_eq(probs->shape.dim[1], 10);
  ck_assert_str_eq(probs->name, "probs");
  ck_assert_uint_eq(probs->loc.line, 9);
  ck_assert_str_eq(g->outputs[1].name, "loss");
  ck_assert_int_eq(g->outputs[1].kind, OUT_LOSS);
  ck_assert_int_eq(graph_node(g, g->outputs[1].node)->shape.rank, 0);
  ck_assert_int_eq(m->n_steps, 1);
  const TrainStep *s = &m->steps[0];
  ck_assert_ptr_null(s->name);
  ck_assert_str_eq(s->loss, "loss");
  ck_assert_uint_eq(s->loss_node, g->outputs[1].node);
  ck_assert_int_eq(s->n_globs, 0);
  ck_assert_str_eq(s->optimizer, "adam");
  ck_assert_int_eq(s->n_optim_args, 1);
  ck_assert_str_eq(s->optim_args[0].name, "lr");
  ck_assert_double_eq_tol(s->optim_args[0].value, 1e-3, 1e-15);
  /* node names are binding names */
  bool saw_h1 = false;
  for (uint32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].name && strcmp(g->nodes[i].name, "h1") == 0) saw_h1 = g->nodes[i].op == OP_RELU;
  ck_assert(saw_h1);
  ck_assert(ir_verify(g, &d));
  module_free(m);
  diag_fini(&d);
  free(text);
}
END_TEST

START_TEST(test_mlp_defines_and_f64) {
  char *text = test_read_file("examples/mlp.lathe");
  FrontendOptions o;
  frontend_options_init(&o);
  Define def = {.name = "N", .value = 1};
  o.defines = &def;
  o.n_defines = 1;
  o.float_dtype = DT_F64;
  Diag d;
  Module *m = compile_opts(text, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->inputs[0].shape.dim[0], 1);
  ck_assert_int_eq(m->inputs[0].dtype, DT_F64);
  ck_assert_int_eq(m->inputs[1].dtype, DT_I32);
  assert_param(m, "h1.w", DT_F64, 2, 784, 256);
  module_free(m);
  diag_fini(&d);
  Define bad = {.name = "Q", .value = 3};
  o.defines = &bad;
  m = compile_opts(text, &o, &d);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "-D Q=3: the model has no const 'Q'"));
  diag_fini(&d);
  free(text);
}
END_TEST

START_TEST(test_naming_rule) {
  Diag d;
  Module *m = compile("import nn\n"
                      "fn attn(x: f32[N, D]) -> f32[N, D] {\n"
                      "  q = dense(x, D)\n  k = dense(x, D)\n  return q * k\n}\n"
                      "fn block(x: f32[N, D]) -> f32[N, D] {\n"
                      "  a = attn(x)\n  return dense(relu(dense(a, 2 * D)), D)\n}\n"
                      "model m(x: f32[3, 4]) {\n"
                      "  h = dense(dense(x, 5), 6)\n"
                      "  enc = block(h)\n"
                      "  output y = enc\n}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  assert_param(m, "h.w", DT_F32, 2, 4, 5);        /* first layer call of the binding */
  assert_param(m, "h.dense1.w", DT_F32, 2, 5, 6); /* second call of dense */
  assert_param(m, "enc.a.q.w", DT_F32, 2, 6, 6);  /* nested: outer instance prefix */
  assert_param(m, "enc.a.k.b", DT_F32, 1, 6, 0);
  assert_param(m, "enc.dense0.w", DT_F32, 2, 6, 12); /* calls in a return: F<k> */
  assert_param(m, "enc.dense1.w", DT_F32, 2, 12, 6);
  ck_assert_int_eq(m->n_params, 12);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_sharing_and_steps) {
  Diag d;
  Module *m = compile("import nn\n"
                      "model gan(x: f32[2, 8], z: f32[2, 4]) {\n"
                      "  fake = dense(z, 8) as gen\n"
                      "  d_real = dense(x, 1) as disc\n"
                      "  d_fake = dense(fake, 1) as disc\n"
                      "  d_loss = mean(d_fake - d_real)\n"
                      "  g_loss = -mean(d_fake)\n}\n"
                      "train gan {\n"
                      "  step disc { minimize d_loss params disc.* optimizer adam(lr = 2e-4,"
                      " beta1 = 0.5) }\n"
                      "  step gen { minimize g_loss params gen.* optimizer sgd }\n}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->n_params, 4); /* gen.w gen.b disc.w disc.b: disc shared */
  assert_param(m, "disc.w", DT_F32, 2, 8, 1);
  ck_assert_int_eq(m->n_steps, 2);
  ck_assert_str_eq(m->steps[0].name, "disc");
  ck_assert_str_eq(m->steps[0].param_globs[0], "disc.*");
  ck_assert_int_eq(m->steps[0].n_optim_args, 2);
  ck_assert_str_eq(m->steps[1].optimizer, "sgd");
  int losses = 0;
  for (int i = 0; i < m->model->n_outputs; i++)
    losses += m->model->outputs[i].kind == OUT_LOSS;
  ck_assert_int_eq(losses, 2);
  /* both disc calls read the same PARAM node */
  int param_nodes = 0;
  for (uint32_t i = 0; i < m->model->n_nodes; i++)
    param_nodes += m->model->nodes[i].op == OP_PARAM;
  ck_assert_int_eq(param_nodes, 4);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_nested_sharing) {
  Diag d;
  Module *m = compile("import nn\n"
                      "fn disc(x: f32[B, I]) -> f32[B, 1] {\n"
                      "  h = relu(dense(x, 16))\n  return dense(h, 1)\n}\n"
                      "model gan(x: f32[2, 8], z: f32[2, 4]) {\n"
                      "  fake = dense(z, 8) as gen\n"
                      "  d_real = disc(x) as d\n"
                      "  d_fake = disc(fake) as d\n"
                      "  output y = d_fake - d_real\n}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->n_params, 6); /* gen.w gen.b d.h.w d.h.b d.dense0.w d.dense0.b */
  assert_param(m, "d.h.w", DT_F32, 2, 8, 16);
  assert_param(m, "d.dense0.w", DT_F32, 2, 16, 1);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_builtins_and_scalars) {
  Diag d;
  Module *m = compile("model m(x: f32[2, 3, 4]) {\n"
                      "  a = x * 2.0 + 1\n"
                      "  b = sum(x, axis = (0, 2), keepdims = true)\n"
                      "  c = reshape(x, [6, -1])\n"
                      "  e = transpose(flatten(x))\n"
                      "  f = cast(mean(x), f64)\n"
                      "  g = maximum(x, 0.0) - pow(x, 2) + stop_gradient(tanh(x))\n"
                      "  h = transpose(x, perm = [2, 0, 1])\n"
                      "  output y = a\n  output b\n  output c\n  output e\n  output f\n"
                      "  output g\n  output h\n}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  const Graph *g = m->model;
  ck_assert_int_eq(g->n_outputs, 7);
  const Node *a = graph_node(g, g->outputs[0].node);
  ck_assert_int_eq(a->op, OP_ADD);
  const Node *two = graph_node(g, graph_node(g, a->in[0])->in[1]);
  ck_assert_int_eq(two->op, OP_CONST);
  ck_assert_int_eq(two->dtype, DT_F32);
  ck_assert_int_eq(two->shape.rank, 0);
  ck_assert_double_eq(two->attr.constant.value, 2.0);
  const Node *b = graph_node(g, g->outputs[1].node);
  ck_assert_uint_eq(b->attr.reduce.axes, 5u);
  ck_assert_int_eq(b->shape.rank, 3);
  const Node *c = graph_node(g, g->outputs[2].node);
  ck_assert_int_eq(c->shape.dim[1], 4);
  const Node *e = graph_node(g, g->outputs[3].node);
  ck_assert_int_eq(e->shape.dim[0], 12);
  ck_assert_int_eq(e->shape.dim[1], 2);
  ck_assert_int_eq(graph_node(g, g->outputs[4].node)->dtype, DT_F64);
  const Node *h = graph_node(g, g->outputs[6].node);
  ck_assert_int_eq(h->shape.dim[0], 4);
  ck_assert_int_eq(h->shape.dim[1], 2);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static void expect_error(const char *text, const char *message) {
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(diag_text(&d), message) != NULL, "wanted '%s' in:\n%s", message,
                diag_text(&d));
  diag_fini(&d);
}

START_TEST(test_errors) {
  expect_error("import nn\nmodel m(x: f32[2, 3]) {\n  output y = dense(x, 4, true, 5)\n}\n",
               "t.lathe:3:32: error: too many arguments to 'dense': expected at most 3, got 4");
  expect_error("fn f(a: f32[N, K], b: f32[K, M]) -> f32[N, M] { return a @ b }\n"
               "model m(x: f32[2, 3]) {\n  output y = f(x, x)\n}\n",
               "t.lathe:3:19: error: in call to 'f': argument 'b' must be f32[3, M], got "
               "f32[2, 3]");
  expect_error("model m(x: f32[2, 3]) {\n  output y = x @ x\n}\n", "t.lathe:2:16: error: matmul");
  expect_error("model m(x: f32[2, 3]) {\n  loss = sum(x, axis = 1)\n}\n"
               "train m { minimize loss optimizer sgd }\n",
               "t.lathe:4:11: error: the loss 'loss' must be a float scalar (f32[]), but it is "
               "f32[2]");
  expect_error("import nn\nmodel m(x: f32[2, 3]) {\n  h = dense(x, 4)\n  loss = mean(h)\n}\n"
               "train m { minimize loss params h2.* optimizer sgd }\n",
               "'params h2.*' matches no parameter of the model; did you mean 'h.*'?");
  expect_error("const N = 99999999999 * 99999999999\nmodel m(x: f32[2]) {\n  output y = x\n}\n",
               "t.lathe:1:23: error: integer overflow in a compile-time expression");
  expect_error("fn f(x: f32[N]) -> f32[N] {\n  return x\n  y = x\n}\n"
               "model m(x: f32[2]) {\n  output y = f(x)\n}\n",
               "t.lathe:3:3: error: statement after 'return' in 'f'");
  expect_error("model m(label: i32[2]) {\n  output y = label * 0.5\n}\n",
               "cannot mix the number 0.5 with an i32 tensor");
  expect_error("import nn\nmodel m(x: f32[2, 3]) {\n  h = dense(x, 4)\n"
               "  k = dense(x, 4) as h\n  j = dense(x, 4) as h\n  h2 = relu(x) as q\n}\n",
               "'as q' needs a call to a fn with params; 'relu' is a builtin");
}
END_TEST

/* The built-in lib/ is parsed once per process and shared (frontend/frontend.c): a second
 * compile gets the same model, an error inside a library fn still points at the user's call
 * with a note on the library line (relative path, caret line), and --lib still wins. */
static char *builtin_compile(const char *text, const char *lib, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  diag_init(d);
  Module *m = frontend_compile("t.lathe", text, &o, d);
  char *ir = m ? ir_print(m->model) : NULL;
  module_free(m);
  return ir;
}

START_TEST(test_builtin_lib_shared) {
  unsetenv("LATHE_LIB");
  const char *mlp = "import nn\nmodel m(x: f32[2, 3]) {\n  output y = relu(dense(x, 4))\n}\n";
  const char *bad = "import nn\nmodel m(x: f32[1, 1, 4, 4]) {\n  output y = conv2d(x, 2, 7)\n}\n";
  Diag d;
  char *first = builtin_compile(mlp, NULL, &d);
  ck_assert_ptr_nonnull(first);
  diag_fini(&d);
  for (int round = 0; round < 2; round++) {
    char *again = builtin_compile(mlp, NULL, &d);
    ck_assert_ptr_nonnull(again);
    ck_assert_str_eq(first, again);
    free(again);
    diag_fini(&d);
    ck_assert_ptr_null(builtin_compile(bad, NULL, &d));
    const char *text = diag_text(&d);
    ck_assert_msg(strstr(text, "t.lathe:3:14: error: conv2d: the (dilated) kernel is larger") &&
                      strstr(text, "lib/nn.lathe:") && strstr(text, "note: inside 'conv2d'") &&
                      strstr(text, "y = conv(x, w, stride = stride"),
                  "round %d:\n%s", round, text);
    diag_fini(&d);
  }
  char *from_dir = builtin_compile(mlp, "/nonexistent-lathe-lib", &d);
  ck_assert_ptr_null(from_dir);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "cannot import 'nn': no file "
                                              "/nonexistent-lathe-lib/nn.lathe"));
  diag_fini(&d);
  free(first);
}
END_TEST

static Suite *elab_suite(void) {
  Suite *s = suite_create("frontend_elab");
  TCase *t = tcase_create("core");
  tcase_add_test(t, test_mlp);
  tcase_add_test(t, test_mlp_defines_and_f64);
  tcase_add_test(t, test_naming_rule);
  tcase_add_test(t, test_sharing_and_steps);
  tcase_add_test(t, test_nested_sharing);
  tcase_add_test(t, test_builtins_and_scalars);
  tcase_add_test(t, test_errors);
  tcase_add_test(t, test_builtin_lib_shared);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(elab_suite());
}
