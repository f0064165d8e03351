/* tests/unit/test_api_model.c — the embedding API (lathe/lathe.h): compile errors as text,
 * calls checked by name/dtype/shape, training through the generated train step, checkpoints,
 * and agreement of the JIT and cc backends. The JIT half also runs an entry through libffi
 * (runtime/ffi.h) and checks it against the descriptor's `call` wrapper. A symbol prefix
 * (lathe_options.prefix) renames the generated C and still loads under both backends.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/jit.h"
#include "lathe/lathe.h"
#include "runtime/ffi.h"
#include "tests/unit/testutil.h"

static const char *tiny =
    "fn lin(x: f32[B, I], units: int) -> f32[B, units] {\n"
    "  param w: f32[I, units] = glorot_uniform\n"
    "  return x @ w\n"
    "}\n"
    "model tiny(x: f32[4, 3], t: f32[4, 2]) {\n"
    "  output y = lin(x, 2)\n"
    "  loss = mean((y - t) * (y - t))\n"
    "}\n"
    "train tiny {\n"
    "  minimize loss\n"
    "  optimizer sgd(lr = 0.1)\n"
    "}\n";

static const int64_t x_shape[] = {4, 3}, t_shape[] = {4, 2};
static float xs[12], ts[8], ys[8];

static lathe_model *compile_tiny(int backend) {
  lathe_options o;
  lathe_options_init(&o);
  o.backend = backend;
  o.seed = 7;
  char *err = NULL;
  lathe_model *m = lathe_compile_string("tiny.lathe", tiny, &o, &err);
  ck_assert_msg(m != NULL, "compile: %s", err ? err : "");
  for (int i = 0; i < 12; i++) xs[i] = (float)(i % 5) * 0.25f - 0.5f;
  for (int i = 0; i < 8; i++) ts[i] = (float)(i % 3) * 0.5f;
  return m;
}

START_TEST(compile_error_is_text) {
  char *err = NULL;
  lathe_model *m = lathe_compile_string("bad.lathe", "model m(x: f32[2]) {\n  output y = x +\n}\n",
                                        NULL, &err);
  ck_assert_ptr_null(m);
  ck_assert_ptr_nonnull(err);
  ck_assert_msg(strstr(err, "bad.lathe:") && strstr(err, "error") && strchr(err, '^'),
                "diagnostic: %s", err);
  lathe_string_free(err);
  m = lathe_compile_file("/nonexistent/x.lathe", NULL, &err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "/nonexistent/x.lathe") != NULL, "%s", err);
  lathe_string_free(err);
  const char *bad_define[] = {"N"};
  lathe_options o;
  lathe_options_init(&o);
  o.defines = bad_define;
  o.n_defines = 1;
  m = lathe_compile_string("tiny.lathe", tiny, &o, &err);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(err, "NAME=INTEGER") != NULL, "%s", err);
  lathe_string_free(err);
}
END_TEST

START_TEST(call_checks_tensors) {
  lathe_model *m = compile_tiny(LATHE_BACKEND_AUTO);
  const int64_t bad_shape[] = {4, 2};
  lathe_tensor x = {"x", LATHE_F32, 2, x_shape, xs}, y = {"y", LATHE_F32, 2, t_shape, ys};
  lathe_tensor wrong_name = {"z", LATHE_F32, 2, x_shape, xs};
  lathe_tensor wrong_dtype = {"x", LATHE_F64, 2, x_shape, xs};
  lathe_tensor wrong_shape = {"x", LATHE_F32, 2, bad_shape, xs};
  ck_assert_int_eq(lathe_call(m, "forward", &wrong_name, 1, &y, 1, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "no input 'z'") != NULL, "%s", lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "forward", &wrong_dtype, 1, &y, 1, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "is f64[4, 3], but the model expects f32[4, 3]"), "%s",
                lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "forward", &wrong_shape, 1, &y, 1, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "f32[4, 2], but the model expects f32[4, 3]"), "%s",
                lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "forward", NULL, 0, &y, 1, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "missing input 'x'") != NULL, "%s", lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "backward", &x, 1, NULL, 0, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "no entry point 'backward'"), "%s", lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "forward", &x, 1, &y, 1, NULL), 0);
  ck_assert_str_eq(lathe_error(m), "");
  /* y = x @ w, checked against the params the model holds */
  const lathe_tensor_info *wi = NULL;
  const float *w = lathe_tensor_data(m, "y.w", &wi);
  ck_assert_ptr_nonnull(w);
  ck_assert_int_eq(wi->rank, 2);
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 2; j++) {
      float want = 0;
      for (int k = 0; k < 3; k++) want += xs[i * 3 + k] * w[k * 2 + j];
      ck_assert_float_eq_tol(ys[i * 2 + j], want, 1e-5f);
    }
  ck_assert_ptr_null(lathe_tensor_data(m, "nosuch", NULL));
  lathe_free(m);
}
END_TEST

/* a run-time batch (docs/dynamic-batch.md): tiny with `const N = dynamic(max = 4)` called at
 * n = 3 and 1; the loss of a partial batch averages over its n rows; n out of range, or an
 * output that does not match the inputs' n, is an error */
START_TEST(dynamic_batch_calls) {
  const char *src =
      "const N = dynamic(max = 4)\n"
      "fn lin(x: f32[B, I], units: int) -> f32[B, units] {\n"
      "  param w: f32[I, units] = glorot_uniform\n"
      "  return x @ w\n"
      "}\n"
      "model tiny(x: f32[N, 3], t: f32[N, 2]) {\n"
      "  output y = lin(x, 2)\n"
      "  loss = mean((y - t) * (y - t))\n"
      "}\n"
      "train tiny {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";
  lathe_options o;
  lathe_options_init(&o);
  o.seed = 7;
  char *err = NULL;
  lathe_model *m = lathe_compile_string("tiny.lathe", src, &o, &err);
  ck_assert_msg(m != NULL, "compile: %s", err ? err : "");
  for (int i = 0; i < 12; i++) xs[i] = (float)(i % 5) * 0.25f - 0.5f;
  for (int i = 0; i < 8; i++) ts[i] = (float)(i % 3) * 0.5f;
  const float *w = lathe_tensor_data(m, "y.w", NULL);
  ck_assert_ptr_nonnull(w);
  for (int64_t n = 1; n <= 3; n += 2) {
    const int64_t xsh[] = {n, 3}, ysh[] = {n, 2};
    lathe_tensor x = {"x", LATHE_F32, 2, xsh, xs}, y = {"y", LATHE_F32, 2, ysh, ys};
    lathe_tensor t = {"t", LATHE_F32, 2, ysh, ts};
    memset(ys, 0, sizeof ys);
    ck_assert_msg(lathe_call(m, "forward", &x, 1, &y, 1, NULL) == 0, "%s", lathe_error(m));
    double want_loss = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < 2; j++) {
        float want = 0;
        for (int k = 0; k < 3; k++) want += xs[i * 3 + k] * w[k * 2 + j];
        ck_assert_float_eq_tol(ys[i * 2 + j], want, 1e-5f);
        want_loss += ((double)want - ts[i * 2 + j]) * ((double)want - ts[i * 2 + j]);
      }
    ck_assert_float_eq(ys[n * 2], 0.0f); /* nothing written past n rows */
    want_loss /= (double)(n * 2);
    double loss = -1;
    ck_assert_msg(lathe_call(m, "train", (lathe_tensor[]){x, t}, 2, NULL, 0, &loss) == 0, "%s",
                  lathe_error(m));
    ck_assert_msg(fabs(loss - want_loss) <= 1e-5 * (1 + want_loss), "n=%lld: loss %g, want %g",
                  (long long)n, loss, want_loss);
  }
  const int64_t big[] = {5, 3}, three[] = {3, 3}, four[] = {4, 2};
  float buf[15] = {0};
  lathe_tensor x5 = {"x", LATHE_F32, 2, big, buf}, x3 = {"x", LATHE_F32, 2, three, xs};
  lathe_tensor y4 = {"y", LATHE_F32, 2, four, ys};
  ck_assert_int_eq(lathe_call(m, "forward", &x5, 1, NULL, 0, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "at most 4"), "%s", lathe_error(m));
  ck_assert_int_eq(lathe_call(m, "forward", &x3, 1, &y4, 1, NULL), -1);
  ck_assert_msg(strstr(lathe_error(m), "tensor 'y' is f32[4, 2]"), "%s", lathe_error(m));
  lathe_free(m);
}
END_TEST

START_TEST(train_and_checkpoint) {
  lathe_model *m = compile_tiny(LATHE_BACKEND_AUTO);
  lathe_tensor in[] = {{"x", LATHE_F32, 2, x_shape, xs}, {"t", LATHE_F32, 2, t_shape, ts}};
  double first = 0, loss = 0;
  for (int step = 0; step < 20; step++) {
    ck_assert_msg(lathe_call(m, "train", in, 2, NULL, 0, &loss) == 0, "%s", lathe_error(m));
    if (step == 0) first = loss;
  }
  ck_assert_msg(isfinite(loss) && loss < first * 0.9, "loss %g -> %g", first, loss);
  char path[] = "/tmp/lathe-api-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_msg(lathe_save(m, path, 1) == 0, "%s", lathe_error(m));
  float saved[6];
  memcpy(saved, lathe_tensor_data(m, "y.w", NULL), sizeof saved);
  lathe_init(m, 99);
  ck_assert(memcmp(saved, lathe_tensor_data(m, "y.w", NULL), sizeof saved) != 0);
  ck_assert_msg(lathe_load(m, path) == 0, "%s", lathe_error(m));
  ck_assert(memcmp(saved, lathe_tensor_data(m, "y.w", NULL), sizeof saved) == 0);
  unlink(path);
  ck_assert_int_eq(lathe_load(m, path), -1);
  ck_assert_msg(strstr(lathe_error(m), path) != NULL, "%s", lathe_error(m));
  char *ir = lathe_ir_text(m, "train");
  ck_assert_msg(ir && strstr(ir, "matmul"), "%s", ir ? ir : lathe_error(m));
  lathe_string_free(ir);
  char *c = lathe_c_source(m);
  ck_assert_ptr_nonnull(strstr(c, "tiny_train"));
  lathe_string_free(c);
  lathe_free(m);
}
END_TEST

/* JIT and cc give the same forward values and the same first training loss */
START_TEST(backends_agree) {
  if (!jit_available()) return;
  lathe_model *a = compile_tiny(LATHE_BACKEND_JIT), *b = compile_tiny(LATHE_BACKEND_CC);
  ck_assert_str_eq(lathe_backend(a), "jit");
  ck_assert_str_eq(lathe_backend(b), "cc");
  float ya[8], yb[8];
  lathe_tensor x = {"x", LATHE_F32, 2, x_shape, xs};
  lathe_tensor oa = {"y", LATHE_F32, 2, t_shape, ya}, ob = {"y", LATHE_F32, 2, t_shape, yb};
  ck_assert_int_eq(lathe_call(a, "forward", &x, 1, &oa, 1, NULL), 0);
  ck_assert_int_eq(lathe_call(b, "forward", &x, 1, &ob, 1, NULL), 0);
  for (int i = 0; i < 8; i++) ck_assert_float_eq_tol(ya[i], yb[i], 1e-6f);
  lathe_free(a);
  lathe_free(b);
}
END_TEST

/* lathe_options.prefix names the generated C's symbols and the descriptor; the model it loads
 * (found by `<prefix>_info`, JIT and cc alike) computes what the default-named one does */
START_TEST(prefix_names_symbols) {
  lathe_model *ref = compile_tiny(LATHE_BACKEND_AUTO);
  float want[8];
  lathe_tensor x = {"x", LATHE_F32, 2, x_shape, xs}, y = {"y", LATHE_F32, 2, t_shape, want};
  ck_assert_int_eq(lathe_call(ref, "forward", &x, 1, &y, 1, NULL), 0);
  ck_assert_str_eq(lathe_info(ref)->name, "tiny");
  lathe_free(ref);
  for (int backend = LATHE_BACKEND_CC; backend <= LATHE_BACKEND_JIT; backend++) {
    if (backend == LATHE_BACKEND_JIT && !jit_available()) continue;
    lathe_options o;
    lathe_options_init(&o);
    o.backend = backend;
    o.seed = 7;
    o.prefix = "tiny_b4";
    char *err = NULL;
    lathe_model *m = lathe_compile_string("tiny.lathe", tiny, &o, &err);
    ck_assert_msg(m != NULL, "compile: %s", err ? err : "");
    const lathe_model_info *info = lathe_info(m);
    ck_assert_str_eq(info->name, "tiny_b4");
    ck_assert_str_eq(info->entries[0].symbol, "tiny_b4_forward");
    char *c = lathe_c_source(m);
    ck_assert_ptr_nonnull(strstr(c, "const lathe_model_info tiny_b4_info = {"));
    ck_assert_ptr_nonnull(strstr(c, "void tiny_b4_init(tiny_b4_params *p, tiny_b4_state *s"));
    ck_assert_msg(!strstr(c, "tiny_forward") && !strstr(c, "tiny_params"), "unprefixed names");
    lathe_string_free(c);
    float got[8];
    lathe_tensor out = {"y", LATHE_F32, 2, t_shape, got};
    ck_assert_int_eq(lathe_call(m, "forward", &x, 1, &out, 1, NULL), 0);
    for (int i = 0; i < 8; i++)
      ck_assert_float_eq(got[i], want[i]);
    lathe_free(m);
  }
  const char *bad[] = {"9lives", "double", "_Tiny", "a b"};
  for (int i = 0; i < 4; i++) {
    lathe_options o;
    lathe_options_init(&o);
    o.prefix = bad[i];
    char *err = NULL;
    ck_assert_ptr_null(lathe_compile_string("tiny.lathe", tiny, &o, &err));
    ck_assert_msg(err && strstr(err, "invalid symbol prefix"), "%s: %s", bad[i], err ? err : "");
    lathe_string_free(err);
  }
}
END_TEST

/* libffi call of the real symbol == the generated `call` wrapper */
START_TEST(ffi_matches_wrapper) {
  if (!jit_available()) return;
  /* a hand-written model in the descriptor's format: one entry, float return */
  const char *src =
      "#include \"t.h\"\n"
      "float t_sum(const float *a, float *out) { out[0] = a[0] + a[1]; return a[0] * a[1]; }\n"
      "static const lathe_tensor_info a_info = {\"a\", LATHE_F32, 0, 0, 0, 8};\n"
      "static const lathe_arg_info args[] = {{LATHE_ARG_INPUT, &a_info},"
      " {LATHE_ARG_OUTPUT, &a_info}};\n"
      "static void call(void *const *a, double *r) { *r = t_sum(a[0], a[1]); }\n"
      "static const lathe_entry_info entries[] = {{\"sum\", \"t_sum\", 0, 1, 2, args, 0, call}};\n"
      "const lathe_model_info t_info = {LATHE_MODEL_INFO_VERSION, \"t\", \"\", 0, 0, 0, 0, 0,"
      " 0, 0, 1, entries, 0};\n";
  Diag d;
  diag_init(&d);
  char hdr[4096];
  snprintf(hdr, sizeof hdr, "#include \"%s/include/lathe/model_info.h\"\n", test_source_dir());
  JitModel *j = jit_compile(src, "t.h", hdr, "t", &d);
  ck_assert_msg(j != NULL, "%s", diag_text(&d));
  const lathe_model_info *info = jit_info(j);
  float a[2] = {3, 4}, out[1] = {0};
  void *args[2] = {a, out};
  double via_ffi = 0, via_call = 0;
  ck_assert(rt_ffi_call(info, &info->entries[0], jit_symbol(j, "t_sum"), args, &via_ffi, &d));
  ck_assert_float_eq(out[0], 7.0f);
  info->entries[0].call(args, &via_call);
  ck_assert_double_eq(via_ffi, 12.0);
  ck_assert_double_eq(via_call, 12.0);
  ck_assert(!rt_ffi_call(info, &info->entries[0], NULL, args, &via_ffi, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "no symbol 't_sum'"));
  jit_free(j);
  diag_fini(&d);
}
END_TEST

static Suite *api_suite(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("model");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, compile_error_is_text);
  tcase_add_test(tc, call_checks_tensors);
  tcase_add_test(tc, train_and_checkpoint);
  tcase_add_test(tc, backends_agree);
  tcase_add_test(tc, ffi_matches_wrapper);
  tcase_add_test(tc, prefix_names_symbols);
  tcase_add_test(tc, dynamic_batch_calls);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(api_suite()); }
