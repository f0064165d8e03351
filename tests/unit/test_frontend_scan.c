/* tests/unit/test_frontend_scan.c — `scan` in the language, end to end through the
 * frontend, the pass pipeline and the reference evaluator, in f64:
 *   - lib/nn.lathe's lstm, gru and rnn (split gates, stacked outputs), lstm_last (no
 *     yield), bilstm and bigru (a reversed scan, concat): every param gradient of the "grad" entry against central finite differences
 *     of its loss (relative error <= 1e-6, measure of test_autodiff_gradcheck.c);
 *     This runs the default pipeline (fold, simplify, cse, ...), so it also checks that no
 *     pass conflates scan pieces (cse once merged unpacks of different offsets);
 *   - diagnostics: a param declared inside a scan body, the step variable used as a value,
 *     a carried value whose type changes, a sequence without the indexed axis.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

#define STEP 1e-6
#define TOL 1e-6

static Module *compile(const char *text, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  char lib[512];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  o.float_dtype = DT_F64;
  return frontend_compile("scan_test.lathe", text, &o, d);
}

static double loss_of(const Graph *g, const Tensor *in, const Tensor *params, Diag *d) {
  Tensor *outs = calloc((size_t)g->n_outputs, sizeof *outs);
  ck_assert_msg(ir_eval(g, in, params, NULL, outs, NULL, d), "eval: %s", diag_text(d));
  double l = NAN;
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind == OUT_LOSS) l = tensor_get(&outs[i], 0);
    tensor_free(&outs[i]);
  }
  free(outs);
  return l;
}

static void gradcheck_model(const char *text) {
  Diag d;
  diag_init(&d);
  Module *m = compile(text, &d);
  ck_assert_msg(m != NULL, "compile: %s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_grad = true;
  c.verify = true;
  ck_assert_msg(passes_run_module(m, &c), "passes: %s", diag_text(&d));
  const Graph *g = NULL;
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, "grad") == 0) g = m->entries[i];
  ck_assert(g != NULL);
  Tensor in[2], *params = calloc((size_t)m->n_params + 1, sizeof *params);
  ck_assert(tensor_alloc(&in[0], m->inputs[0].dtype, &m->inputs[0].shape));
  ck_assert(tensor_alloc(&in[1], m->inputs[1].dtype, &m->inputs[1].shape));
  for (int64_t i = 0; i < shape_numel(&in[0].shape); i++) tensor_set(&in[0], i, sin(0.7 * i));
  for (int64_t i = 0; i < shape_numel(&in[1].shape); i++) tensor_set(&in[1], i, (i * 7) % 5);
  for (int p = 0; p < m->n_params; p++) ir_init_tensor(&m->params[p], 3, &params[p]);
  Tensor *outs = calloc((size_t)g->n_outputs, sizeof *outs);
  ck_assert_msg(ir_eval(g, in, params, NULL, outs, NULL, &d), "eval: %s", diag_text(&d));
  for (int o = 0; o < g->n_outputs; o++) {
    if (g->outputs[o].kind != OUT_GRAD) continue;
    Tensor *pt = &params[g->outputs[o].target];
    int64_t n = shape_numel(&pt->shape);
    for (int64_t e = 0; e < n; e += 1 + n / 23) { /* a spread of elements per param */
      double x = tensor_get(pt, e);
      tensor_set(pt, e, x + STEP);
      double up = loss_of(g, in, params, &d);
      tensor_set(pt, e, x - STEP);
      double down = loss_of(g, in, params, &d);
      tensor_set(pt, e, x);
      double fd = (up - down) / (2 * STEP), an = tensor_get(&outs[o], e);
      double err = fabs(an - fd) / fmax(1.0, fmax(fabs(an), fabs(fd)));
      ck_assert_msg(err <= TOL, "d loss / d %s[%lld]: autodiff %.12g, finite difference %.12g",
                    g->outputs[o].name, (long long)e, an, fd);
    }
  }
  for (int o = 0; o < g->n_outputs; o++) tensor_free(&outs[o]);
  for (int p = 0; p < m->n_params; p++) tensor_free(&params[p]);
  tensor_free(&in[0]);
  tensor_free(&in[1]);
  free(outs);
  free(params);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}

#define MODEL(layer, reduce)                                                                   \
  "import nn\n"                                                                                \
  "model m(x: f32[3, 4, 5], label: i32[3]) {\n"                                                \
  "  hs = " layer "(x, 6)\n"                                                                   \
  "  loss = cross_entropy(dense(" reduce ", 4), label)\n"                                      \
  "}\n"                                                                                        \
  "train m { minimize loss  optimizer sgd }\n"

START_TEST(test_lstm) { gradcheck_model(MODEL("lstm", "mean(hs, axis = 1)")); }
END_TEST
START_TEST(test_lstm_last) { gradcheck_model(MODEL("lstm_last", "hs")); }
END_TEST
START_TEST(test_gru) { gradcheck_model(MODEL("gru", "mean(hs, axis = 1)")); }
END_TEST
START_TEST(test_rnn) { gradcheck_model(MODEL("rnn", "mean(hs, axis = 1)")); }
END_TEST
START_TEST(test_bilstm) { gradcheck_model(MODEL("bilstm", "mean(hs, axis = 1)")); }
END_TEST
START_TEST(test_bigru) { gradcheck_model(MODEL("bigru", "hs[:, 0]")); }
END_TEST

static void expect_error(const char *text, const char *needle) {
  Diag d;
  diag_init(&d);
  Module *m = compile(text, &d);
  ck_assert_msg(m == NULL, "compiled, expected an error containing '%s'", needle);
  ck_assert_msg(strstr(diag_text(&d), needle), "expected '%s' in:\n%s", needle, diag_text(&d));
  diag_fini(&d);
}

#define BODY_MODEL(body)                                                                       \
  "model m(x: f32[2, 3, 4]) {\n"                                                               \
  "  output y = scan t in 0..3 with (h = zeros(f32[2, 4])) {\n" body "\n  }\n"               \
  "}\n"

START_TEST(test_diagnostics) {
  expect_error(BODY_MODEL("    param w: f32[4, 4] = zeros\n    h = h @ w"),
               "only bindings (name = expr) are allowed in a scan body");
  expect_error("import nn\n" BODY_MODEL("    h = dense(h, 4)"), "declared inside a scan body");
  expect_error(BODY_MODEL("    h = h * t"), "can only index a sequence");
  expect_error(BODY_MODEL("    h = sum(h + x[:, t])"), "'h' is carried as f64[2, 4]");
  expect_error(BODY_MODEL("    h = h + sum(x[t])"), "no axis 0 of length 3");
}
END_TEST

/* orthogonal init: the rows (wide) or columns (tall) are orthonormal, in f64 to 1e-12 */
START_TEST(test_orthogonal_init) {
  const int64_t dims[3][2] = {{4, 12}, {12, 4}, {5, 5}};
  for (int c = 0; c < 3; c++) {
    TensorDecl decl = {"rnn.wh", DT_F64, shape_make(2, dims[c]), {INIT_ORTHOGONAL, 0, 0}, {0}};
    Tensor w;
    ir_init_tensor(&decl, 7, &w);
    int64_t r = dims[c][0], n = dims[c][1], vecs = r <= n ? r : n, len = r <= n ? n : r;
    for (int64_t i = 0; i < vecs; i++) {
      for (int64_t j = 0; j < vecs; j++) {
        double dot = 0;
        for (int64_t k = 0; k < len; k++)
          dot += r <= n ? tensor_get(&w, i * n + k) * tensor_get(&w, j * n + k)
                        : tensor_get(&w, k * n + i) * tensor_get(&w, k * n + j);
        ck_assert_msg(fabs(dot - (i == j)) < 1e-12, "[%lld, %lld]: <v%lld, v%lld> = %.17g",
                      (long long)r, (long long)n, (long long)i, (long long)j, dot);
      }
    }
    tensor_free(&w);
  }
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("frontend_scan");
  TCase *tc = tcase_create("scan");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_lstm);
  tcase_add_test(tc, test_lstm_last);
  tcase_add_test(tc, test_gru);
  tcase_add_test(tc, test_rnn);
  tcase_add_test(tc, test_bilstm);
  tcase_add_test(tc, test_bigru);
  tcase_add_test(tc, test_diagnostics);
  tcase_add_test(tc, test_orthogonal_init);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(suite()); }
