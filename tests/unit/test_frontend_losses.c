/* tests/unit/test_frontend_losses.c — lib/nn.lathe losses and the issue-4 activations against
 * PyTorch: tests/fixtures/losses/losses.txt (made by tests/fixtures/make_loss_fixtures.py)
 * holds the inputs and torch's f64 results; the model below is compiled by frontend_compile
 * at --dtype f64 and evaluated with ir_eval. Tolerance 1e-12 relative (both sides are f64).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

static const char *const src =
    "import nn\n"
    "model losses(logits: f32[4, 3], label: i32[4], probs: f32[4, 3], p: f32[4, 3],\n"
    "             t: f32[4, 3], mu: f32[4, 3], logvar: f32[4, 3]) {\n"
    "  big = logits * 30\n"
    "  output ce = cross_entropy(logits, label)\n"
    "  output soft_ce = cross_entropy(logits, probs)\n"
    "  output soft_ce2 = soft_cross_entropy(logits, target = probs)\n"
    "  output nll_loss = nll(log_softmax(logits), label)\n"
    "  output bce = binary_cross_entropy(p, t)\n"
    "  output bce_logits = binary_cross_entropy_with_logits(logits, t)\n"
    "  output bce_logits_big = binary_cross_entropy_with_logits(big, t)\n"
    "  output kl = kl_normal(mu, logvar)\n"
    "  output mse_loss = mse(logits, probs)\n"
    "  output gelu_erf = gelu(logits)\n"
    "  output gelu_tanh = gelu(logits, approximate = true)\n"
    "  output elu = elu(logits, alpha = 1.5)\n"
    "  output leaky = leaky_relu(logits, alpha = 0.2)\n"
    "  output softplus = softplus(logits * 4)\n"
    "  output clamped = clamp(logits, min = -0.5, max = 0.7)\n"
    "  output norm = layer_norm(logits)\n"
    "  output pe = sinusoidal_positions(5, 6)\n"
    "}\n";

typedef struct Entry {
  char name[32];
  int n;
  double v[64];
} Entry;

static int read_fixture(Entry *e, int max) {
  char *text = test_read_file("tests/fixtures/losses/losses.txt");
  ck_assert_msg(text != NULL, "missing tests/fixtures/losses/losses.txt");
  int count = 0;
  char *p = text;
  while (*p && count < max) {
    char kind[8];
    int used = 0;
    ck_assert(sscanf(p, "%31s %7s %d%n", e[count].name, kind, &e[count].n, &used) == 3);
    ck_assert(e[count].n <= 64);
    p += used;
    for (int i = 0; i < e[count].n; i++) e[count].v[i] = strtod(p, &p);
    while (*p == '\n' || *p == ' ') p++;
    count++;
  }
  free(text);
  return count;
}

static const Entry *find(const Entry *e, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(e[i].name, name) == 0) return &e[i];
  ck_abort_msg("fixture has no '%s'", name);
  return NULL;
}

START_TEST(test_losses_match_torch) {
  static Entry fx[32];
  int n_fx = read_fixture(fx, 32);
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = DT_F64;
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  Module *m = frontend_compile("losses.lathe", src, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Tensor in[8], params[8], outs[32];
  ck_assert(m->n_inputs == 7 && m->n_params <= 8 && m->model->n_outputs <= 32);
  for (int i = 0; i < m->n_inputs; i++) {
    const Entry *e = find(fx, n_fx, m->inputs[i].name);
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    ck_assert_int_eq(e->n, shape_numel(&m->inputs[i].shape));
    for (int k = 0; k < e->n; k++) tensor_set(&in[i], k, e->v[k]);
  }
  for (int i = 0; i < m->n_params; i++) ir_init_tensor(&m->params[i], 1, &params[i]);
  ck_assert_msg(ir_eval(m->model, in, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < m->model->n_outputs; i++) {
    const Entry *e = find(fx, n_fx, m->model->outputs[i].name);
    ck_assert_int_eq(e->n, shape_numel(&outs[i].shape));
    for (int k = 0; k < e->n; k++) {
      double got = tensor_get(&outs[i], k), want = e->v[k];
      ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)),
                    "%s[%d]: lathe %.17g vs torch %.17g", e->name, k, got, want);
    }
    tensor_free(&outs[i]);
  }
  for (int i = 0; i < m->n_inputs; i++) tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++) tensor_free(&params[i]);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* overloads by argument dtype: each argument (a layer call here) is elaborated once */
START_TEST(test_overload_evaluates_arguments_once) {
  static const char *const ov =
      "import nn\n"
      "model ov(x: f32[4, 3], label: i32[4], t: f32[4, 2]) {\n"
      "  h = relu(dense(x, 5))\n"
      "  a = cross_entropy(dense(h, 2), label)\n"
      "  b = cross_entropy(dense(h, 2), target = t)\n"
      "  output loss = a + b\n"
      "}\n";
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  Module *m = frontend_compile("ov.lathe", ov, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(m->n_params, 6); /* h.w h.b a.w a.b b.w b.b */
  ck_assert_str_eq(m->params[4].name, "b.w");
  int one_hots = 0;
  for (uint32_t i = 0; i < m->model->n_nodes; i++) one_hots += m->model->nodes[i].op == OP_ONE_HOT;
  ck_assert_int_eq(one_hots, 1); /* only the integer-label overload one-hot encodes */
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *losses_suite(void) {
  Suite *s = suite_create("frontend_losses");
  TCase *tc = tcase_create("torch");
  tcase_add_test(tc, test_losses_match_torch);
  tcase_add_test(tc, test_overload_evaluates_arguments_once);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(losses_suite()); }
