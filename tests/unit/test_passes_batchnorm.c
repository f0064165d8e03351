/* tests/unit/test_passes_batchnorm.c — batch_norm's two modes and its running statistics,
 * end to end through the frontend and the pass pipeline, evaluated with ir_eval in f64.
 *
 * The train entry must normalize with the batch statistics and return the running-statistic
 * updates (momentum as given, unbiased variance, like torch.nn.BatchNorm2d); the forward
 * entry must normalize with the running statistics and update nothing; the grad entry runs in
 * training mode. Expected values are computed here with plain loops. Also: the conv/pool
 * builtins' shape errors name the op and both shapes, and bad uses of batch_norm are
 * diagnosed.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

enum { NB = 4, NC = 2, NH = 2, NW = 3, PER = NB * NH * NW };

static const char *const SRC =
    "fn bn(x: f32[B, C, H, W]) -> f32[B, C, H, W] {\n"
    "  param gamma: f32[C] = ones\n"
    "  param beta: f32[C] = zeros\n"
    "  return batch_norm(x, gamma, beta, momentum = 0.2, eps = 0.001)\n"
    "}\n"
    "model m(x: f32[4, 2, 2, 3]) {\n"
    "  y = bn(x)\n"
    "  output out = y\n"
    "  loss = mean(y * x)\n"
    "}\n"
    "train m { minimize loss  optimizer sgd(lr = 0.1) }\n";

static Module *compile(const char *src, Diag *d, bool want_grad) {
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = DT_F64;
  Module *m = frontend_compile("bn.lathe", src, &o, d);
  if (!m) return NULL;
  PassCtx c;
  pass_ctx_init(&c, d);
  c.want_grad = want_grad;
  bool ok = passes_run_module(m, &c);
  pass_ctx_fini(&c);
  if (!ok) {
    module_free(m);
    return NULL;
  }
  return m;
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry %s", name);
  return NULL;
}

static int output_of(const Graph *g, const char *name) {
  for (int i = 0; i < g->n_outputs; i++)
    if (strcmp(g->outputs[i].name, name) == 0) return i;
  return -1;
}

typedef struct Data {
  Tensor in[1], params[2], *states;
  double mean[NC], var[NC]; /* batch statistics (biased variance) */
} Data;

static double x_at(const Data *v, int b, int c, int k) {
  return tensor_get(&v->in[0], (b * NC + c) * NH * NW + k);
}

static void fill(Data *v, const Module *m) {
  Shape xs = shape_make(4, (int64_t[]){NB, NC, NH, NW});
  tensor_alloc(&v->in[0], DT_F64, &xs);
  for (int64_t i = 0; i < shape_numel(&xs); i++)
    tensor_set(&v->in[0], i, sin(1.7 * (double)i) + 0.1 * (double)(i % 5));
  for (int p = 0; p < 2; p++) {
    ir_init_tensor(&m->params[p], 0, &v->params[p]);
    for (int c = 0; c < NC; c++) tensor_set(&v->params[p], c, 0.5 + p + 0.25 * c);
  }
  v->states = calloc((size_t)m->n_states, sizeof *v->states);
  for (int s = 0; s < m->n_states; s++) ir_init_tensor(&m->states[s], 0, &v->states[s]);
  for (int c = 0; c < NC; c++) { /* running_mean, running_var: states 0 and 1 */
    tensor_set(&v->states[0], c, 0.3 - 0.2 * c);
    tensor_set(&v->states[1], c, 1.5 + c);
    double s = 0, q = 0;
    for (int b = 0; b < NB; b++)
      for (int k = 0; k < NH * NW; k++) s += x_at(v, b, c, k);
    v->mean[c] = s / PER;
    for (int b = 0; b < NB; b++)
      for (int k = 0; k < NH * NW; k++) q += pow(x_at(v, b, c, k) - v->mean[c], 2);
    v->var[c] = q / PER;
  }
}

static void free_data(Data *v, const Module *m) {
  tensor_free(&v->in[0]);
  tensor_free(&v->params[0]);
  tensor_free(&v->params[1]);
  for (int s = 0; s < m->n_states; s++) tensor_free(&v->states[s]);
  free(v->states);
}

/* y[b, c, k] = (x - mu) / sqrt(var + eps) * gamma + beta */
static void check_normalized(const Data *v, const Tensor *y, const double *mu,
                             const double *var) {
  for (int b = 0; b < NB; b++)
    for (int c = 0; c < NC; c++)
      for (int k = 0; k < NH * NW; k++) {
        double want = (x_at(v, b, c, k) - mu[c]) / sqrt(var[c] + 0.001) *
                          tensor_get(&v->params[0], c) + tensor_get(&v->params[1], c);
        double got = tensor_get(y, (b * NC + c) * NH * NW + k);
        ck_assert_msg(fabs(got - want) < 1e-12, "y[%d,%d,%d] = %.15g, want %.15g", b, c, k,
                      got, want);
      }
}

START_TEST(test_train_and_forward_modes) {
  Diag d;
  diag_init(&d);
  Module *m = compile(SRC, &d, false);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_ge(m->n_states, 2);
  ck_assert_str_eq(m->states[0].name, "y.running_mean");
  ck_assert_str_eq(m->states[1].name, "y.running_var");
  Data v;
  fill(&v, m);
  const Graph *tr = entry(m, "train");
  int rm = output_of(tr, "y.running_mean"), rv = output_of(tr, "y.running_var");
  ck_assert(rm >= 0 && rv >= 0);
  ck_assert_int_eq(tr->outputs[rm].kind, OUT_STATE_UPDATE);
  Tensor outs[16];
  ck_assert_int_le(tr->n_outputs, 16);
  ck_assert_msg(ir_eval(tr, v.in, v.params, v.states, outs, NULL, &d), "%s", diag_text(&d));
  for (int c = 0; c < NC; c++) {
    double want_m = 0.8 * (0.3 - 0.2 * c) + 0.2 * v.mean[c];
    double want_v = 0.8 * (1.5 + c) + 0.2 * v.var[c] * PER / (PER - 1);
    ck_assert_double_eq_tol(tensor_get(&outs[rm], c), want_m, 1e-12);
    ck_assert_double_eq_tol(tensor_get(&outs[rv], c), want_v, 1e-12);
  }
  for (int i = 0; i < tr->n_outputs; i++) tensor_free(&outs[i]);
  const Graph *fw = entry(m, "forward");
  ck_assert_int_eq(fw->n_outputs, 1);
  ck_assert_msg(ir_eval(fw, v.in, v.params, v.states, outs, NULL, &d), "%s", diag_text(&d));
  double run_m[NC], run_v[NC];
  for (int c = 0; c < NC; c++) run_m[c] = 0.3 - 0.2 * c, run_v[c] = 1.5 + c;
  check_normalized(&v, &outs[0], run_m, run_v);
  tensor_free(&outs[0]);
  for (uint32_t i = 0; i < fw->n_nodes; i++) /* inference: no batch statistics left */
    ck_assert(fw->nodes[i].op != OP_MEAN && fw->nodes[i].op != OP_TRAIN_SELECT);
  free_data(&v, m);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* the grad entry normalizes with batch statistics (PyTorch's .train()) and updates nothing */
START_TEST(test_grad_entry_is_training) {
  Diag d;
  diag_init(&d);
  const char *src =
      "fn bn(x: f32[B, C, H, W]) -> f32[B, C, H, W] {\n"
      "  param gamma: f32[C] = ones\n"
      "  param beta: f32[C] = zeros\n"
      "  return batch_norm(x, gamma, beta, momentum = 0.2, eps = 0.001)\n"
      "}\n"
      "model m(x: f32[4, 2, 2, 3]) {\n"
      "  y = bn(x)\n"
      "  loss = sum(y)\n"
      "}\n"
      "train m { minimize loss  optimizer sgd(lr = 0.1) }\n";
  Module *m = compile(src, &d, true);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  const Graph *g = entry(m, "grad");
  for (int i = 0; i < g->n_outputs; i++) ck_assert(g->outputs[i].kind != OUT_STATE_UPDATE);
  Data v;
  fill(&v, m);
  Tensor outs[8];
  ck_assert_msg(ir_eval(g, v.in, v.params, v.states, outs, NULL, &d), "%s", diag_text(&d));
  /* sum of y over a channel = PER * beta under batch statistics: d/dgamma = sum(xhat) = 0 */
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_GRAD) continue;
    bool is_gamma = strcmp(m->params[g->outputs[i].target].name, "y.gamma") == 0;
    for (int c = 0; c < NC; c++)
      ck_assert_double_eq_tol(tensor_get(&outs[i], c), is_gamma ? 0.0 : PER, 1e-9);
  }
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  free_data(&v, m);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static void expect_error(const char *src, const char *what) {
  Diag d;
  diag_init(&d);
  Module *m = compile(src, &d, false);
  ck_assert_msg(m == NULL, "expected an error for:\n%s", src);
  ck_assert_msg(strstr(diag_text(&d), what) != NULL, "wanted '%s' in: %s", what, diag_text(&d));
  diag_fini(&d);
}

START_TEST(test_diagnostics) {
  expect_error("model m(x: f32[2, 3, 8, 8], w: f32[4, 2, 3, 3]) {\n  output y = conv(x, w)\n}\n",
               "conv2d: channels do not match the weights [O, C/groups, kh, kw]: [2, 3, 8, 8] "
               "and [4, 2, 3, 3]");
  expect_error("model m(x: f32[2, 3, 4, 4], w: f32[4, 3, 5, 5]) {\n  output y = conv(x, w)\n}\n",
               "kernel is larger than the padded input");
  expect_error("model m(x: f32[2, 3, 4, 4]) {\n  output y = max_pool2d(x, 2, padding = 2)\n}\n",
               "at most half the kernel");
  expect_error("model m(x: f32[2, 3, 4, 4], w: f32[4, 3, 3, 3]) {\n"
               "  output y = conv(x, w, stride = 2, padding = same)\n}\n",
               "padding = same needs stride 1");
  expect_error("model m(x: f32[2, 3, 4, 4], g: f32[2]) {\n"
               "  output y = batch_norm(x, g, g)\n}\n",
               "batch_norm: expected x [N, C] or [N, C, H, W]");
  expect_error("model m(x: f32[1, 3]) {\n"
               "  output y = batch_norm(x, x[0], x[0])\n}\n",
               "more than one value per channel");
}
END_TEST

static Suite *bn_suite(void) {
  Suite *s = suite_create("passes_batchnorm");
  TCase *tc = tcase_create("batchnorm");
  tcase_add_test(tc, test_train_and_forward_modes);
  tcase_add_test(tc, test_grad_entry_is_training);
  tcase_add_test(tc, test_diagnostics);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(bn_suite()); }
