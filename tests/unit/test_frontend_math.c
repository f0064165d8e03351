/* tests/unit/test_frontend_math.c — the issue-22 math builtins (sin, cos, silu, logsumexp,
 * min, var, std, argmax, argmin, cumsum, broadcast_to, expand, tensor literals),
 * cross_entropy's label_smoothing and avg_pool2d's count_include_pad:
 *   - against PyTorch: tests/fixtures/math/math.txt (tests/fixtures/make_math_fixtures.py)
 *     holds the inputs and torch's f64 results; the model is compiled at --dtype f64 and
 *     evaluated with ir_eval (tolerance 1e-12 relative, both sides f64; ties of argmax/argmin
 *     and a row of -inf in logsumexp included);
 *   - the generated C: the same builtins in an f32 model with a train step, every entry
 *     compiled by gcc and compared with the evaluator (codegen_harness.h);
 *   - a run-time batch: the builtins along other axes, generated C at n = 3 and the bound
 *     against the evaluator of the entry specialized at n;
 *   - fusion: silu, and sin/cos/silu chains, are one kernel;
 *   - errors: ragged literals, an out-of-range correction, a cumsum along the dynamic axis.
 * Their gradients are checked against finite differences in test_autodiff_struct.c.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/codegen_harness.h"
#include "tests/unit/testutil.h"

static const char *const src =
    "import nn\n"
    "model math(x: f32[3, 4], t: f32[3, 4], ninf: f32[2, 3], img: f32[1, 2, 5, 5],\n"
    "           label: i32[3], probs: f32[3, 4]) {\n"
    "  output o_sin = sin(x)\n"
    "  output o_cos = cos(x)\n"
    "  output o_silu = silu(x)\n"
    "  output lse1 = logsumexp(x, axis = 1)\n"
    "  output lse_all = logsumexp(x)\n"
    "  output lse_keep = logsumexp(x, 0, keepdims = true)\n"
    "  output lse_inf = logsumexp(ninf, axis = 1)\n"
    "  output min0 = min(x, 0)\n"
    "  output min_all = min(x)\n"
    "  output var1 = var(x, 1)\n"
    "  output var0c0 = var(x, 0, correction = 0)\n"
    "  output var_all = var(x)\n"
    "  output std1k = std(x, axis = 1, keepdims = true)\n"
    "  output amax1 = argmax(t, 1)\n"
    "  output amin0 = argmin(t, axis = 0, keepdims = true)\n"
    "  output amax_all = argmax(t)\n"
    "  output amin_all = argmin(t)\n"
    "  output amax_last = argmax(t, 1, last = true)\n"
    "  output amin_last = argmin(t, axis = 0, last = true)\n"
    "  output cs1 = cumsum(x, 1)\n"
    "  output cs0_ex = cumsum(x, 0, exclusive = true)\n"
    "  output cs1_rev = cumsum(x, axis = -1, reverse = true)\n"
    "  output cs1_rev_ex = cumsum(x, 1, exclusive = true, reverse = true)\n"
    "  output bc = broadcast_to(x[0], [2, 3, 4])\n"
    "  output ex = expand(reshape(x[:, 0], [3, 1]), [-1, 5])\n"
    "  output lit = x * [1.0, -2.0, 0.5, 3.0]\n"
    "  output lit2 = x[:2, :2] @ [[1, 2], [3, 4.5]]\n"
    "  output ce_ls = cross_entropy(x, label, label_smoothing = 0.1)\n"
    "  output soft_ls = cross_entropy(x, probs, label_smoothing = 0.2)\n"
    "  output pool_ex = avg_pool2d(img, 3, stride = 2, padding = 1, count_include_pad = false)\n"
    "  output pool_in = avg_pool2d(img, 3, stride = 2, padding = 1)\n"
    "}\n";

typedef struct Entry {
  char name[32];
  int n;
  double v[64];
} Entry;

static int read_fixture(Entry *e, int max) {
  char *text = test_read_file("tests/fixtures/math/math.txt");
  ck_assert_msg(text != NULL, "missing tests/fixtures/math/math.txt");
  int count = 0;
  char *p = text;
  while (*p && count < max) {
    char kind[8];
    int used = 0;
    ck_assert(sscanf(p, "%31s %7s %d%n", e[count].name, kind, &e[count].n, &used) == 3);
    ck_assert(e[count].n <= 64);
    p += used;
    for (int i = 0; i < e[count].n; i++)
      e[count].v[i] = strtod(p, &p);
    while (*p == '\n' || *p == ' ')
      p++;
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

static Module *compile(const char *name, const char *text, DType float_dtype, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = float_dtype;
  static char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  return frontend_compile(name, text, &o, d);
}

static bool same(double got, double want) {
  if (isinf(want)) return got == want;
  return fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want));
}

START_TEST(test_math_match_torch) {
  static Entry fx[48];
  int n_fx = read_fixture(fx, 48);
  Diag d;
  diag_init(&d);
  Module *m = compile("math.lathe", src, DT_F64, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Tensor in[8], outs[48];
  ck_assert(m->n_inputs == 6 && m->n_params == 0 && m->model->n_outputs <= 48);
  for (int i = 0; i < m->n_inputs; i++) {
    const Entry *e = find(fx, n_fx, m->inputs[i].name);
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    ck_assert_int_eq(e->n, shape_numel(&m->inputs[i].shape));
    for (int k = 0; k < e->n; k++)
      tensor_set(&in[i], k, e->v[k]);
  }
  ck_assert_msg(ir_eval(m->model, in, NULL, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < m->model->n_outputs; i++) {
    const char *name = m->model->outputs[i].name;
    const Entry *e = find(fx, n_fx, name);
    ck_assert_msg(e->n == shape_numel(&outs[i].shape), "%s: %lld elements, torch %d", name,
                  (long long)shape_numel(&outs[i].shape), e->n);
    if (strncmp(name, "am", 2) == 0) ck_assert_int_eq(outs[i].dtype, DT_I32);
    for (int k = 0; k < e->n; k++) {
      double got = tensor_get(&outs[i], k), want = e->v[k];
      ck_assert_msg(same(got, want), "%s[%d]: lathe %.17g vs torch %.17g", name, k, got, want);
    }
    tensor_free(&outs[i]);
  }
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* the builtins in a model with params and a train step: every entry's generated C (gcc)
 * against the evaluator, forward and backward */
static const char *const train_src =
    "import nn\n"
    "model m(x: f32[4, 5], label: i32[4], img: f32[2, 1, 6, 6]) {\n"
    "  h = dense(x, 6)\n"
    "  a = sin(h) * cos(h) + silu(h) + logsumexp(h, axis = 1, keepdims = true)\n"
    "  b = min(h, 1, keepdims = true) * std(h, 1, keepdims = true) + var(h, 0, correction = 0)\n"
    "  c = cumsum(a, 1) + cumsum(b, 0, exclusive = true, reverse = true)\n"
    "  k = cast(argmax(h, 1, keepdims = true), f32) + cast(argmin(h, 0), f32)\n"
    "  d = c + broadcast_to(reshape(h[:, 0], [4, 1]), [4, 6]) * k * [[1.0, 2, 3, 4, 5, 6]]\n"
    "  p = avg_pool2d(img, 3, stride = 2, padding = 1, count_include_pad = false)\n"
    "  output y = dense(d, 3)\n"
    "  loss = cross_entropy(y, label, label_smoothing = 0.1) + mean(p * dense(x, 1)[0, 0])\n"
    "}\n"
    "train m {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

START_TEST(test_math_codegen) {
  Diag d;
  diag_init(&d);
  Module *m = compile("train.lathe", train_src, DT_F32, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  Tensor in[3], params[16], states[8];
  ck_assert(m->n_inputs == 3 && m->n_params <= 16 && m->n_states <= 8);
  for (int i = 0; i < m->n_inputs; i++) {
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    bool ints = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&in[i], (uint64_t)i + 11, ints ? 0 : -1, ints ? 3 : 1);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 5, &params[i]);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 5, &states[i]);
  cgh_check_module(m, in, params, states, 1e-4);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&states[i]);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* the forward entry's kernels of a one-output model */
static int forward_kernels(const char *text) {
  Diag d;
  diag_init(&d);
  Module *m = compile("fuse.lathe", text, DT_F32, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  int kernels = -1;
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == ENTRY_FORWARD) kernels = m->entries[i]->n_kernels;
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
  return kernels;
}

START_TEST(test_math_fusion) {
  ck_assert_int_eq(forward_kernels("model f(x: f32[8, 16]) {\n  output y = silu(x)\n}\n"), 1);
  ck_assert_int_eq(
      forward_kernels("model f(x: f32[8, 16]) {\n  output y = sin(x) * cos(x) + silu(x)\n}\n"), 1);
}
END_TEST

static void expect_error(const char *text, const char *want) {
  Diag d;
  diag_init(&d);
  Module *m = compile("bad.lathe", text, DT_F32, &d);
  ck_assert_msg(m == NULL, "compiled: %s", text);
  ck_assert_msg(strstr(diag_text(&d), want) != NULL, "expected '%s' in:\n%s", want, diag_text(&d));
  diag_fini(&d);
}

START_TEST(test_math_errors) {
  expect_error("model e(x: f32[2]) {\n  output y = x + [[1.0, 2.0], [3.0]]\n}\n",
               "bad.lathe:2:31: error: tensor literal: this row has 1 entries, expected 2");
  expect_error("model e(x: f32[2]) {\n  output y = x + [1.0, x]\n}\n",
               "tensor literal: expected a number, got");
  expect_error("model e(x: f32[2, 3]) {\n  output y = var(x, 1, correction = 3)\n}\n",
               "'var': correction must be in [0, 3) for the 3 elements reduced, got 3");
  expect_error("const N = dynamic(max = 8)\nmodel e(x: f32[N, 3]) {\n"
               "  output y = cumsum(x, 0)\n}\n",
               "cumsum: axis 0 is the dynamic dimension N");
  expect_error("model e(x: f32[2, 3]) {\n  output y = broadcast_to(x, [4, 3, 0])\n}\n",
               "broadcast_to: size 0 at axis 2");
  expect_error("model e(x: f32[2, 3]) {\n  output y = broadcast_to(x, [4, 3])\n}\n",
               "cannot be broadcast to [4, 3]");
  expect_error("model e(x: f32[2, 3000]) {\n  output y = cumsum(x, 1)\n}\n",
               "cumsum: axis 1 has 3000 elements");
  expect_error("model e(x: i32[2, 3]) {\n  output y = logsumexp(x)\n}\n",
               "'logsumexp' expects a floating-point tensor");
}
END_TEST

/* at a run-time batch (docs/dynamic-batch.md): the builtins along other axes compile (no
 * refused op: where and transpose are avoided) and the forward entry, called at n = 3 and at
 * the bound, equals ir_eval of the entry specialized at n */
static const char *const dyn_src =
    "const N = dynamic(max = 8)\n"
    "model d(x: f32[N, 4, 3]) {\n"
    "  h = sin(x) + cos(x) * silu(x)\n"
    "  a = logsumexp(h, axis = 2, keepdims = true) + min(h, 1, keepdims = true)\n"
    "  b = var(h, (1, 2), keepdims = true) + std(h, 2, keepdims = true, correction = 0)\n"
    "  k = cast(argmax(h, 2, keepdims = true), f32) + cast(argmin(h, 1, keepdims = true), f32)\n"
    "  c = cumsum(h, 1) + cumsum(h, 2, exclusive = true, reverse = true)\n"
    "  e = broadcast_to(min(h, 1, keepdims = true), [-1, 4, 3])\n"
    "  output y = a * b + k + c * [1.0, 2.0, 3.0] + e\n"
    "}\n";

static void dyn_check_at(const CghBuild *b, const Module *m, int64_t n) {
  Diag d;
  diag_init(&d);
  const Graph *g = NULL;
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == ENTRY_FORWARD) g = m->entries[i];
  ck_assert(g != NULL && g->n_outputs == 1);
  Graph *gs = graph_specialize(g, n, &d);
  ck_assert_msg(gs, "%s", diag_text(&d));
  Tensor in, out;
  Shape s = m->inputs[0].shape;
  s.dim[0] = n, s.dyn = 0;
  ck_assert(tensor_alloc(&in, DT_F32, &s));
  cgh_fill(&in, 17, -2, 2);
  ck_assert_msg(ir_eval(gs, &in, NULL, NULL, &out, NULL, &d), "%s", diag_text(&d));
  const lathe_entry_info *e = cgh_entry(b->info, "forward");
  void *args[16] = {0}, *ws = aligned_alloc(64, (size_t)ir_round_up(e->workspace_bytes, 64));
  void *y = NULL;
  int64_t batch = n;
  ck_assert_int_le(e->n_args, 16);
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    if (a->role == LATHE_ARG_WORKSPACE) args[i] = ws;
    if (a->role == LATHE_ARG_BATCH) args[i] = &batch;
    if (a->role == LATHE_ARG_INPUT) args[i] = in.data;
    if (a->role == LATHE_ARG_OUTPUT) args[i] = y = calloc(1, a->tensor->bytes);
  }
  double loss;
  e->call(args, &loss);
  cgh_expect_close("y", out.dtype, y, &out, 1e-4);
  free(y);
  free(ws);
  tensor_free(&in);
  tensor_free(&out);
  graph_free(gs);
  diag_fini(&d);
}

START_TEST(test_math_dynamic_batch) {
  Diag d;
  diag_init(&d);
  Module *m = compile("dyn.lathe", dyn_src, DT_F32, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  char *c_text = NULL, *h_text = NULL;
  cgh_emit(m, false, &c_text, &h_text);
  CghBuild b;
  cgh_setup(&b, m->name, c_text, h_text);
  cgh_build(&b, "gcc");
  dyn_check_at(&b, m, 3);
  dyn_check_at(&b, m, 8);
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* integer inputs: min and argmin negate, so u8 goes through i32 (no wrap-around) */
START_TEST(test_math_integers) {
  Diag d;
  diag_init(&d);
  Module *m = compile("ints.lathe",
                      "model i(x: u8[5], k: i32[5]) {\n"
                      "  output a = min(x)\n  output b = argmin(x)\n  output c = argmax(x)\n"
                      "  output e = min(k)\n  output f = argmin(k, last = true)\n}\n",
                      DT_F32, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Tensor in[2], out[5];
  const double xs[5] = {3, 200, 0, 7, 0}, ks[5] = {4, -9, 2, -9, 5};
  for (int i = 0; i < 2; i++)
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
  for (int i = 0; i < 5; i++)
    tensor_set(&in[0], i, xs[i]), tensor_set(&in[1], i, ks[i]);
  ck_assert_msg(ir_eval(m->model, in, NULL, NULL, out, NULL, &d), "%s", diag_text(&d));
  const double want[5] = {0, 2, 1, -9, 3};
  ck_assert_int_eq(out[0].dtype, DT_U8);
  for (int i = 0; i < 5; i++) {
    ck_assert_msg(tensor_get(&out[i], 0) == want[i], "output %d: %g, want %g", i,
                  tensor_get(&out[i], 0), want[i]);
    tensor_free(&out[i]);
  }
  for (int i = 0; i < 2; i++)
    tensor_free(&in[i]);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *math_suite(void) {
  Suite *s = suite_create("frontend_math");
  TCase *tc = tcase_create("math");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_math_match_torch);
  tcase_add_test(tc, test_math_codegen);
  tcase_add_test(tc, test_math_fusion);
  tcase_add_test(tc, test_math_integers);
  tcase_add_test(tc, test_math_dynamic_batch);
  tcase_add_test(tc, test_math_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(math_suite());
}
