/* tests/unit/test_frontend_dyn.c — the run-time batch in the language (docs/dynamic-batch.md,
 * docs/language.md "Dynamic dimensions"): `const N = dynamic(max = M)` and -D, the symbolic
 * value k * N in shapes (inputs, shape lists, shape variables bound by unification), and every
 * misuse as an error at its line:col naming N. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

static char lib_dir[4096];

static Module *compile_defs(const char *text, const Define *defs, int n_defs, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  snprintf(lib_dir, sizeof lib_dir, "%s/lib", test_source_dir());
  o.lib_dir = lib_dir;
  o.defines = defs;
  o.n_defines = n_defs;
  diag_init(d);
  return frontend_compile("t.lathe", text, &o, d);
}

static Module *compile(const char *text, Diag *d) {
  return compile_defs(text, NULL, 0, d);
}

/* text fails to elaborate, with message (a whole "t.lathe:L:C: error: ..." prefix) in the
 * diagnostics */
static void expect_error_defs(const char *text, const Define *defs, int n_defs,
                              const char *message) {
  Diag d;
  Module *m = compile_defs(text, defs, n_defs, &d);
  ck_assert_msg(m == NULL, "compiled, but wanted '%s'", message);
  ck_assert_msg(strstr(diag_text(&d), message) != NULL, "wanted '%s' in:\n%s", message,
                diag_text(&d));
  diag_fini(&d);
}

static void expect_error(const char *text, const char *message) {
  expect_error_defs(text, NULL, 0, message);
}

static const Node *node_named(const Graph *g, const char *name) {
  for (uint32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].name && strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  ck_abort_msg("no node named %s", name);
  return NULL;
}

/* the module-level view: Module.dyn_max/dyn_name, the inputs' declared types */
START_TEST(test_declare) {
  Diag d;
  Module *m = compile("const N = dynamic(max = 64)  # the batch\n"
                      "const T = 3\n"
                      "model m(x: f32[N, 784], ids: i32[T * N], w: f32[2, 5]) {\n"
                      "  output y = relu(x)\n"
                      "}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->dyn_max, 64);
  ck_assert_str_eq(m->dyn_name, "N");
  ck_assert_int_eq(m->inputs[0].shape.dyn, 1);
  ck_assert_int_eq(m->inputs[0].shape.dim[0], 64);
  ck_assert_int_eq(m->inputs[0].shape.dim[1], 784);
  ck_assert_int_eq(m->inputs[1].shape.dyn, 3); /* T * N: k = 3, 192 at the bound */
  ck_assert_int_eq(m->inputs[1].shape.dim[0], 192);
  ck_assert_int_eq(m->inputs[2].shape.dyn, 0);
  /* the INPUT node has the declared type */
  ck_assert_int_eq(node_named(m->model, "x")->shape.dyn, 1);
  ck_assert_int_eq(node_named(m->model, "ids")->shape.dyn, 3);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* -D N=32 makes the dynamic const static (the fixed-batch build of the same file);
 * -D N=dynamic(max = M) makes an int const dynamic, or changes the bound */
START_TEST(test_defines) {
  const char *dyn = "const N = dynamic(max = 64)\nmodel m(x: f32[N, 4]) {\n  output y = x\n}\n";
  const char *fixed = "const N = 8\nmodel m(x: f32[N, 4]) {\n  output y = x\n}\n";
  Define def;
  Diag d;
  ck_assert(frontend_define_value("32", &def) && !def.dynamic && def.value == 32);
  def.name = "N";
  Module *m = compile_defs(dyn, &def, 1, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->dyn_max, 0);
  ck_assert_ptr_null(m->dyn_name);
  ck_assert_int_eq(m->inputs[0].shape.dyn, 0);
  ck_assert_int_eq(m->inputs[0].shape.dim[0], 32);
  module_free(m);
  diag_fini(&d);
  const char *forms[] = {"dynamic(max=128)", "dynamic(max = 128)", " dynamic( 128 ) "};
  for (int i = 0; i < 3; i++) {
    ck_assert_msg(frontend_define_value(forms[i], &def), "%s", forms[i]);
    ck_assert(def.dynamic && def.value == 128);
    def.name = "N";
    for (int k = 0; k < 2; k++) {
      m = compile_defs(k ? fixed : dyn, &def, 1, &d);
      ck_assert_msg(m != NULL, "%s", diag_text(&d));
      ck_assert_int_eq(m->dyn_max, 128);
      ck_assert_int_eq(m->inputs[0].shape.dyn, 1);
      ck_assert_int_eq(m->inputs[0].shape.dim[0], 128);
      module_free(m);
      diag_fini(&d);
    }
  }
  const char *bad[] = {"",
                       "dynamic",
                       "dynamic()",
                       "dynamic(max=0)",
                       "dynamic(-3)",
                       "dynamic(max=4) x",
                       "dynamic(max=4.5)",
                       "dynamic(min=4)",
                       "12x",
                       "dynamic(max=99999999999)"};
  for (int i = 0; i < 10; i++)
    ck_assert_msg(!frontend_define_value(bad[i], &def), "accepted '%s'", bad[i]);
}
END_TEST

/* shape variables bound from a dynamic axis are symbolic: the library's `B` follows N (its
 * types, shape lists and zeros() carries are dynamic too), and a fn's declared types compare
 * k * N exactly */
START_TEST(test_symbolic_in_fns) {
  Diag d;
  Module *m = compile("const N = dynamic(max = 16)\n"
                      "fn same(x: f32[B, D]) -> f32[B, D] {\n"
                      "  return relu(x)\n"
                      "}\n"
                      "fn shapes(x: f32[B, D]) -> f32[B, D] {\n"
                      "  twice = reshape(x, [B * 2, D / 2])\n"
                      "  flat = flatten(x)\n"
                      "  back = reshape(x, [-1, D])\n"
                      "  return x\n"
                      "}\n"
                      "fn fixed(x: f32[N, D]) -> f32[N, D] {\n"
                      "  return x\n"
                      "}\n"
                      "model m(x: f32[N, 6], x3: f32[3 * N, 2]) {\n"
                      "  a = same(x)\n"
                      "  b = shapes(x)\n"
                      "  c = fixed(x)\n"
                      "  e = same(x3)\n"
                      "  z = relu(fill([N, 1], 0.5))\n"
                      "  r = relu(randn([2 * N, 3]))\n"
                      "  output y = a\n"
                      "}\n",
                      &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  const Node *a = node_named(m->model, "a");
  ck_assert_int_eq(a->shape.dyn, 1);
  ck_assert_int_eq(a->shape.dim[0], 16);
  const Node *twice = node_named(m->model, "twice"); /* reshape(x, [B * 2, D / 2]) */
  ck_assert_int_eq(twice->op, OP_RESHAPE);
  ck_assert_int_eq(twice->attr.reshape.shape.dyn, 2);
  ck_assert_int_eq(twice->shape.dyn, 2);
  ck_assert_int_eq(twice->shape.dim[0], 32);
  ck_assert_int_eq(twice->shape.dim[1], 3);
  ck_assert_int_eq(node_named(m->model, "flat")->shape.dyn, 1);
  const Node *back = node_named(m->model, "back"); /* reshape(x, [-1, D]) */
  ck_assert_int_eq(back->shape.dyn, 1);
  ck_assert_int_eq(back->shape.dim[0], 16);
  ck_assert_int_eq(node_named(m->model, "z")->shape.dyn, 1); /* a splat as large as N */
  ck_assert_int_eq(node_named(m->model, "r")->shape.dyn, 2);
  ck_assert_int_eq(node_named(m->model, "r")->shape.dim[0], 32);
  const Node *e = node_named(m->model, "e");
  ck_assert_int_eq(e->shape.dyn, 3);
  ck_assert_int_eq(e->shape.dim[0], 48);
  module_free(m);
  diag_fini(&d);
  /* a static axis of the same size is not N */
  expect_error("const N = dynamic(max = 16)\n"
               "fn fixed(x: f32[N, D]) -> f32[N, D] {\n  return x\n}\n"
               "model m(x: f32[16, 6]) {\n  output y = fixed(x)\n}\n",
               "t.lathe:6:20: error: in call to 'fixed': argument 'x' must be f32[n<=16, D], got "
               "f32[16, 6]");
  expect_error("const N = dynamic(max = 16)\n"
               "fn fixed(x: f32[2 * N, D]) -> f32[2 * N, D] {\n  return x\n}\n"
               "model m(x: f32[N, 6]) {\n  output y = fixed(x)\n}\n",
               "t.lathe:6:20: error: in call to 'fixed': argument 'x' must be f32[2n<=32, D], "
               "got f32[n<=16, 6]");
}
END_TEST

/* the example models with their batch const made dynamic by -D: every input whose first
 * axis is the batch is n<=64 (dim 64, dyn 1), the others (none today) static; params and
 * the loss stay static (gru.lathe and lstm.lathe: the scans' carries and slices too). */
START_TEST(test_examples_dynamic) {
  static const struct {
    const char *file, *batch;
  } examples[] = {{"examples/mlp.lathe", "N"},
                  {"examples/cnn.lathe", "N"},
                  {"examples/gan.lathe", "B"},
                  {"examples/vae.lathe", "B"},
                  {"examples/transformer.lathe", "B"},
                  {"examples/lstm.lathe", "N"},
                  {"examples/gru.lathe", "N"}};
  for (int e = 0; e < 7; e++) {
    char *text = test_read_file(examples[e].file);
    ck_assert_ptr_nonnull(text);
    Define def = {.name = examples[e].batch, .value = 64, .dynamic = true};
    Diag d;
    Module *m = compile_defs(text, &def, 1, &d);
    ck_assert_msg(m != NULL, "%s: %s", examples[e].file, diag_text(&d));
    ck_assert_int_eq(m->dyn_max, 64);
    ck_assert_str_eq(m->dyn_name, examples[e].batch);
    for (int i = 0; i < m->n_inputs; i++) {
      ck_assert_msg(m->inputs[i].shape.dyn == 1 && m->inputs[i].shape.dim[0] == 64, "%s: input %s",
                    examples[e].file, m->inputs[i].name);
      ck_assert_int_eq(node_named(m->model, m->inputs[i].name)->shape.dyn, 1);
    }
    for (int i = 0; i < m->n_params; i++)
      ck_assert_int_eq(m->params[i].shape.dyn, 0);
    for (int i = 0; i < m->model->n_outputs; i++) { /* probs, samples: per sample; losses: 0 */
      const GraphOutput *o = &m->model->outputs[i];
      const Node *n = graph_node(m->model, o->node);
      if (o->kind == OUT_LOSS) ck_assert_int_eq(n->shape.dyn, 0);
      if (o->kind == OUT_VALUE)
        ck_assert_msg(n->shape.dyn == 1, "%s: output %s", examples[e].file, o->name);
    }
    module_free(m);
    diag_fini(&d);
    free(text);
  }
}
END_TEST

START_TEST(test_declaration_errors) {
  expect_error("const N = dynamic(max = 64)\nconst M = dynamic(max = 8)\n"
               "model m(x: f32[N, 2]) {\n  output y = x\n}\n",
               "t.lathe:2:7: error: const 'M' is a second dynamic dimension; a module has at "
               "most one, and 'N' (declared at t.lathe:1:7) is already dynamic");
  expect_error("const N = dynamic(max = 0)\nmodel m(x: f32[2]) {\n  output y = x\n}\n",
               "t.lathe:1:25: error: the bound of dynamic() must be an integer from 1 to "
               "2147483647, got 0");
  expect_error("const N = dynamic(max = 2.5)\nmodel m(x: f32[2]) {\n  output y = x\n}\n",
               "t.lathe:1:25: error: the bound of dynamic() must be a compile-time int, got "
               "the number 2.5");
  expect_error("const N = dynamic()\nmodel m(x: f32[2]) {\n  output y = x\n}\n",
               "t.lathe:1:11: error: dynamic() needs its bound, as in 'const N = dynamic(max = "
               "64)'");
  expect_error("const N = dynamic(min = 3)\nmodel m(x: f32[2]) {\n  output y = x\n}\n",
               "t.lathe:1:19: error: 'dynamic' has no argument 'min'");
  expect_error("model m(x: f32[2]) {\n  n = dynamic(max = 4)\n  output y = x\n}\n",
               "t.lathe:2:7: error: dynamic(max = M) can only be the whole value of a top-level "
               "const, as in 'const N = dynamic(max = 64)'");
  Define two = {.name = "M", .value = 4, .dynamic = true};
  expect_error_defs("const N = dynamic(max = 64)\nconst M = 3\n"
                    "model m(x: f32[N, 2]) {\n  output y = x\n}\n",
                    &two, 1, "t.lathe:2:7: error: const 'M' is a second dynamic dimension (by -D)");
  Define lr = {.name = "lr", .value = 4, .dynamic = true};
  expect_error_defs("const lr = 0.5\nmodel m(x: f32[2]) {\n  output y = x\n}\n", &lr, 1,
                    "t.lathe:1:7: error: -D lr=dynamic(max = 4): const 'lr' is the number 0.5; "
                    "only an int const can become the dynamic dimension");
}
END_TEST

#define RULE                                                                                       \
  "the dynamic dimension N (<= 64) can only be the first axis of a shape, written N or k * N; "    \
  "here it is used as "

/* every place N cannot go, at the line:col of the offending expression */
START_TEST(test_misuse_errors) {
  const char *head = "import nn\nconst N = dynamic(max = 64)\n";
  struct {
    const char *body, *message;
  } cases[] = {
      {"model m(x: f32[4, N]) {\n  output y = x\n}\n", "t.lathe:3:19: error: " RULE "axis 1"},
      {"model m(x: f32[N + 1, 2]) {\n  output y = x\n}\n",
       "t.lathe:3:18: error: " RULE "an operand of '+'"},
      {"model m(x: f32[N / 2, 2]) {\n  output y = x\n}\n",
       "t.lathe:3:18: error: " RULE "an operand of '/'"},
      {"model m(x: f32[N * 0, 2]) {\n  output y = x\n}\n",
       "t.lathe:3:18: error: " RULE "k * N with k = 0 (k must be an int >= 1)"},
      {"model m(x: f32[N * N, 2]) {\n  output y = x\n}\n",
       "t.lathe:3:18: error: " RULE "an operand of '*'"},
      {"model m(x: f32[N, 2]) {\n  c = N < 3\n  output y = x\n}\n",
       "t.lathe:4:9: error: " RULE "an operand of '<'"},
      {"model m(x: f32[N, 2]) {\n  c = -N\n  output y = x\n}\n",
       "t.lathe:4:7: error: " RULE "the operand of unary '-'"},
      {"model m(x: f32[N, 2]) {\n  output y = x * N\n}\n",
       "t.lathe:4:16: error: " RULE "an operand of '*'"},
      {"model m(x: f32[N, 2]) {\n  output y = dense(x, N)\n}\n",
       "t.lathe:4:23: error: " RULE "argument 'units' of 'dense'"},
      {"model m(x: f32[N, 2]) {\n  output y = sum(x, axis = [N])\n}\n",
       "t.lathe:4:29: error: " RULE "'axis'"},
      {"model m(x: f32[N, 2]) {\n  output y = reshape(x, [2, N])\n}\n",
       "t.lathe:4:29: error: " RULE "entry 1 of a list (axis 1 of a shape)"},
      {"model m(x: f32[N, 2]) {\n  output y = x[:, 0:N]\n}\n",
       "t.lathe:4:21: error: " RULE "a slice bound"},
      {"model m(x: f32[N, 2]) {\n  output y = split(x, [N], axis = 0)\n}\n",
       "t.lathe:4:24: error: " RULE "a part size of split"},
      {"model m(x: f32[N, 2]) {\n  output y = pad(x, [N, 0, 0, 0])\n}\n",
       "t.lathe:4:22: error: " RULE "a padding of pad"},
      {"fn f(x: f32[B, D]) -> f32[B, D] {\n  param p: f32[B, D] = zeros\n  return x + p\n}\n"
       "model m(x: f32[N, 2]) {\n  output y = f(x)\n}\n",
       "t.lathe:4:16: error: " RULE "the first axis of a param's type (params have a fixed "
       "shape)"},
      {"fn f(x: f32[B, D]) -> f32[B, D] {\n"
       "  return scan t in 0..B with (h = zeros(f32[B, D])) {\n    h = h + x\n  }\n}\n"
       "model m(x: f32[N, 2]) {\n  output y = f(x)\n}\n",
       "t.lathe:4:23: error: " RULE "the end of a scan range"},
      {"model m(x: f32[N, 2]) {\n  output y = x[0]\n}\n",
       "t.lathe:4:16: error: index: axis 0 of [n<=64, 2] is the dynamic dimension N (<= 64), "
       "which cannot be cut, padded or joined along; only ':' keeps it whole"},
      {"model m(x: f32[N, 2]) {\n  output y = concat([x, x], axis = 0)\n}\n",
       "t.lathe:4:14: error: concat: axis 0 of [n<=64, 2]"},
      {"model m(x: f32[N, 2]) {\n  a, b = split(x, 2, axis = 0)\n  output y = a\n}\n",
       "t.lathe:4:10: error: split: axis 0 of [n<=64, 2]"},
      {"fn f(x: f32[B, D], n: int) -> f32[B, D] {\n  return x\n}\n"
       "model m(x: f32[N, 2]) {\n  output y = f(x, N)\n}\n",
       "t.lathe:7:19: error: " RULE "argument 'n' of 'f'"},
      {"fn f(x: f32[3, D]) -> f32[3, D] {\n  return x\n}\n"
       "model m(x: f32[N, 2]) {\n  output y = f(x)\n}\n",
       "t.lathe:7:16: error: in call to 'f': argument 'x' must be f32[3, D], got f32[n<=64, 2]"},
  };
  int n = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n; i++) {
    char text[1024];
    snprintf(text, sizeof text, "%s%s", head, cases[i].body);
    expect_error(text, cases[i].message);
  }
}
END_TEST

static Suite *dyn_suite(void) {
  Suite *s = suite_create("frontend_dyn");
  TCase *t = tcase_create("core");
  tcase_add_test(t, test_declare);
  tcase_add_test(t, test_defines);
  tcase_add_test(t, test_symbolic_in_fns);
  tcase_add_test(t, test_examples_dynamic);
  tcase_add_test(t, test_declaration_errors);
  tcase_add_test(t, test_misuse_errors);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(dyn_suite());
}
