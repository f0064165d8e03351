/* tests/unit/test_frontend_params.c — the language features of issue 22 for params and layers:
 * `param` in a model, a param named by its path (`tok.table`, weight tying), `bool` and
 * `float` fn arguments, compile-time `if` (an optional bias declares no param), defaults
 * that read earlier arguments and shape variables, and fns returning tuples. The numerics of the layers built on them
 * are checked against PyTorch by tests/e2e_nnlib.sh. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

static Module *compile(const char *text, Diag *d) {
  static char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  diag_init(d);
  return frontend_compile("t.lathe", text, &o, d);
}

/* the params' names, space-separated */
static const char *param_names(const Module *m) {
  static char buf[4096];
  buf[0] = '\0';
  for (int i = 0; i < m->n_params; i++) {
    strncat(buf, m->params[i].name, sizeof buf - strlen(buf) - 2);
    if (i + 1 < m->n_params) strcat(buf, " ");
  }
  return buf;
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (uint32_t i = 0; i < g->n_nodes; i++)
    n += g->nodes[i].op == op;
  return n;
}

/* the consumers of node id */
static int uses_of(const Graph *g, NodeId id) {
  int n = 0;
  for (uint32_t i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++)
      n += g->nodes[i].in[k] == id;
  return n;
}

START_TEST(test_model_param_and_tying) {
  const char *text = "import nn\n"
                     "model m(ids: i32[2, 3]) {\n"
                     "  param scale: f32[4] = ones\n"
                     "  tok = embed(ids, 7, 4)\n"
                     "  logits = (tok * scale) @ transpose(tok.table)\n"
                     "  output logits\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(param_names(m), "scale tok.table");
  ck_assert_int_eq(count_op(m->model, OP_PARAM), 2); /* the tied table is one node */
  NodeId table = IR_NONE;
  for (uint32_t i = 0; i < m->model->n_nodes; i++)
    if (m->model->nodes[i].op == OP_PARAM && m->model->nodes[i].name &&
        strcmp(m->model->nodes[i].name, "tok.table") == 0)
      table = (NodeId)i;
  ck_assert(table != IR_NONE);
  ck_assert_int_eq(uses_of(m->model, table), 2); /* the embedding and the output projection */
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* inside a fn, a path is relative to the fn's instance */
START_TEST(test_param_path_in_fn) {
  const char *text = "import nn\n"
                     "fn autoencoder(x: f32[B, D], k: int) -> f32[B, D] {\n"
                     "  code = dense(x, k, bias = false)\n"
                     "  return code @ transpose(code.w)\n"
                     "}\n"
                     "model m(x: f32[2, 6]) {\n"
                     "  output y = autoencoder(x, 3)\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(param_names(m), "y.code.w");
  ck_assert_int_eq(m->params[0].shape.dim[0], 6);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_optional_bias) {
  const char *text = "import nn\n"
                     "model m(x: f32[2, 3, 8, 8]) {\n"
                     "  a = conv2d(x, 4, 3, bias = false)\n"
                     "  b = conv_transpose2d(a, 2, 2, stride = 2, bias = false)\n"
                     "  c = dense(flatten(b), 5, bias = false)\n"
                     "  d = dense(c, 5)\n"
                     "  output d\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(param_names(m), "a.w b.w c.w d.w d.b");
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* only the branch taken is elaborated (the other may not even fit these shapes); else-if
 * chains; float and bool arguments; a comparison of ints as a condition */
START_TEST(test_if_branches) {
  const char *text = "fn pick(x: f32[N], mode: int, s: float = 2, neg: bool = false) -> f32[N] {\n"
                     "  if mode == 0 {\n"
                     "    y = x * s\n"
                     "  } else if mode == 1 {\n"
                     "    y = x @ x\n" /* a rank error if it were elaborated */
                     "  } else {\n"
                     "    y = x + s\n"
                     "  }\n"
                     "  if neg {\n"
                     "    return -y\n"
                     "  }\n"
                     "  return y\n"
                     "}\n"
                     "model m(x: f32[3]) {\n"
                     "  output a = pick(x, 0, s = 0.5)\n"
                     "  output b = pick(x, 2, neg = true)\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(count_op(m->model, OP_MATMUL), 0);
  ck_assert_int_eq(count_op(m->model, OP_MUL), 1);
  ck_assert_int_eq(count_op(m->model, OP_ADD), 1);
  ck_assert_int_eq(count_op(m->model, OP_NEG), 1);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a default reads earlier arguments (kv_heads = heads) and shape variables (4 * D) */
START_TEST(test_defaults_read_arguments) {
  const char *text = "import nn\n"
                     "fn mlp(x: f32[..., D], hidden: int = 4 * D) -> f32[..., D] {\n"
                     "  h = dense(x, hidden)\n"
                     "  return dense(h, D)\n"
                     "}\n"
                     "model m(x: f32[2, 5, 8]) {\n"
                     "  a = attention(x, x, 4)\n"
                     "  g = attention(a, a, 4, kv_heads = 2, causal = true, rope = true,\n"
                     "                bias = false)\n"
                     "  output y = mlp(g)\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(param_names(m), "a.query.w a.query.b a.key.w a.key.b a.value.w a.value.b "
                                   "a.out.w a.out.b g.query.w g.key.w g.value.w g.out.w "
                                   "y.h.w y.h.b y.dense0.w y.dense0.b");
  ck_assert_int_eq(m->params[8].shape.dim[1], 8); /* g.key.w: [8, kv_heads * 2] = [8, 4] */
  ck_assert_int_eq(m->params[9].shape.dim[1], 4);
  ck_assert_int_eq(m->params[12].shape.dim[1], 32); /* hidden = 4 * D */
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a fn returns a tuple, destructured by the binding; the layer's params are named after the
 * binding's first name */
START_TEST(test_tuple_return) {
  const char *text = "import nn\n"
                     "model m(x: f32[2, 5, 3], mask: f32[2, 5]) {\n"
                     "  ys, h, c = lstm_state(x, 4, mask = mask)\n"
                     "  output ys\n"
                     "  output h\n"
                     "  output c\n"
                     "}\n";
  Diag d;
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_str_eq(param_names(m), "ys.wx ys.wh ys.b");
  ck_assert_int_eq(m->model->n_outputs, 3);
  const Shape *h = &graph_node(m->model, m->model->outputs[1].node)->shape;
  ck_assert_int_eq(h->rank, 2);
  ck_assert_int_eq(h->dim[1], 4);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* rotary_bthd on [B, T, H, Dh] is rotary on the heads-first transpose (rotary itself is checked
 * against PyTorch by e2e_nnlib); position 0 is not rotated */
START_TEST(test_rotary_layouts_agree) {
  const char *text = "import nn\n"
                     "model m(x: f32[2, 5, 3, 4]) {\n"
                     "  output a = rotary_bthd(x)\n"
                     "  output b = transpose(rotary(transpose(x, [0, 2, 1, 3])), [0, 2, 1, 3])\n"
                     "}\n";
  Diag d;
  static char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  o.float_dtype = DT_F64;
  diag_init(&d);
  Module *m = frontend_compile("t.lathe", text, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Tensor in, outs[2];
  ck_assert(tensor_alloc(&in, m->inputs[0].dtype, &m->inputs[0].shape));
  int64_t n = shape_numel(&m->inputs[0].shape);
  for (int64_t k = 0; k < n; k++) tensor_set(&in, k, (double)((k * 37) % 19) / 7.0 - 1.3);
  ck_assert_msg(ir_eval(m->model, &in, NULL, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int64_t k = 0; k < n; k++) {
    double a = tensor_get(&outs[0], k), b = tensor_get(&outs[1], k);
    ck_assert_msg(a == b || (a - b) * (a - b) < 1e-24, "element %lld: %g vs %g", (long long)k, a,
                  b);
    if ((k / 12) % 5 == 0) ck_assert(a == tensor_get(&in, k)); /* t = 0: [B, T, H, Dh] */
  }
  for (int i = 0; i < 2; i++) tensor_free(&outs[i]);
  tensor_free(&in);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *params_suite(void) {
  Suite *s = suite_create("frontend_params");
  TCase *t = tcase_create("params");
  tcase_add_test(t, test_model_param_and_tying);
  tcase_add_test(t, test_param_path_in_fn);
  tcase_add_test(t, test_optional_bias);
  tcase_add_test(t, test_if_branches);
  tcase_add_test(t, test_defaults_read_arguments);
  tcase_add_test(t, test_tuple_return);
  tcase_add_test(t, test_rotary_layouts_agree);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(params_suite());
}
