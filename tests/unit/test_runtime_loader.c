/* tests/unit/test_runtime_loader.c — building and loading models (runtime/loader.c).
 *
 * A tiny hand-written "model" exports a lathe_model_info descriptor laid out like generated
 * code does (its header is a verbatim copy of include/lathe/model_info.h); it is built with
 * the system C compiler, opened, and its entries are called through `call`. Failures: a
 * syntax error (the Diag carries the compiler's message), a missing descriptor, a wrong
 * descriptor version, a compiler that does not exist, and a bad model name.
 */
#include <check.h>
#include <sys/stat.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

/* y = 2x + 1 on 4 floats ("forward"); "train" returns a loss of 42.5 + x[0] */
static const char *tiny_c =
    "#include \"tiny.h\"\n"
    "static void tiny_forward(const float *x, float *y) {\n"
    "  for (int i = 0; i < 4; i++) y[i] = 2 * x[i] + 1;\n"
    "}\n"
    "static float tiny_train(const float *x) { return 42.5f + x[0]; }\n"
    "static void call_forward(void *const *args, double *ret) {\n"
    "  (void)ret;\n"
    "  tiny_forward((const float *)args[0], (float *)args[1]);\n"
    "}\n"
    "static void call_train(void *const *args, double *ret) {\n"
    "  *ret = tiny_train((const float *)args[0]);\n"
    "}\n"
    "static const int64_t shape4[] = {4};\n"
    "static const lathe_tensor_info x_info = {\"x\", LATHE_F32, 1, shape4, 0, 16};\n"
    "static const lathe_tensor_info y_info = {\"y\", LATHE_F32, 1, shape4, 0, 16};\n"
    "static const lathe_arg_info fwd_args[] = {{LATHE_ARG_INPUT, &x_info},\n"
    "                                          {LATHE_ARG_OUTPUT, &y_info}};\n"
    "static const lathe_arg_info train_args[] = {{LATHE_ARG_INPUT, &x_info}};\n"
    "static const lathe_entry_info entries[] = {\n"
    "  {\"forward\", \"tiny_forward\", LATHE_ENTRY_FORWARD, 0, 2, fwd_args, 0, call_forward},\n"
    "  {\"train\", \"tiny_train\", LATHE_ENTRY_TRAIN, 1, 1, train_args, 0, call_train},\n"
    "};\n"
    "const lathe_model_info tiny_info = {\n"
    "  TINY_VERSION, \"tiny\", \"tiny.lathe\", 0, 0, 0, 0, 0, 0, 0, 2, entries, 0};\n";

/* model_info.h plus the version the descriptor claims */
static char *tiny_h(int version) {
  char *info = test_read_file("include/lathe/model_info.h");
  ck_assert_msg(info != NULL, "cannot read include/lathe/model_info.h (LATHE_SOURCE_DIR=%s)",
                test_source_dir());
  size_t n = strlen(info) + 128;
  char *h = malloc(n);
  ck_assert_ptr_nonnull(h);
  snprintf(h, n, "%s\n#define TINY_VERSION %d\n", info, version);
  free(info);
  return h;
}

static void check_calls(const RtModel *m) {
  ck_assert_ptr_nonnull(m->info);
  ck_assert_str_eq(m->info->name, "tiny");
  const lathe_entry_info *fwd = rt_model_entry(m, "forward");
  const lathe_entry_info *train = rt_model_entry(m, "train");
  ck_assert_ptr_nonnull(fwd);
  ck_assert_ptr_nonnull(train);
  ck_assert_ptr_null(rt_model_entry(m, "backward"));
  float x[4] = {1, 2, 3, 4}, y[4] = {0};
  void *args[2] = {x, y};
  double ret = -1;
  fwd->call(args, &ret);
  for (int i = 0; i < 4; i++)
    ck_assert(y[i] == 2 * x[i] + 1);
  ck_assert(ret == -1); /* forward returns nothing */
  train->call(args, &ret);
  ck_assert(ret == 43.5);
  ck_assert_int_eq(fwd->args[1].role, LATHE_ARG_OUTPUT);
}

START_TEST(test_open_source_and_call) {
  char *h = tiny_h(LATHE_MODEL_INFO_VERSION);
  RtModel m;
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_model_open_source(&m, "tiny", tiny_c, h, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(m.dir);
  char *dir = strdup(m.dir);
  struct stat st;
  ck_assert_int_eq(stat(dir, &st), 0);
  check_calls(&m);
  rt_model_close(&m);
  ck_assert_ptr_null(m.handle);
  ck_assert_int_ne(stat(dir, &st), 0); /* the build directory is gone */
  rt_model_close(&m);                  /* closing twice is harmless */
  free(dir);
  free(h);
  diag_fini(&d);
}
END_TEST

START_TEST(test_build_shared_with_flags) {
  char *dir = rtt_mkdtemp();
  char flags[4400];
  snprintf(flags, sizeof flags, "-I%s/include  -DTINY_VERSION=LATHE_MODEL_INFO_VERSION",
           test_source_dir());
  const char *c_path = rtt_path(dir, "tiny.c"), *so_path = rtt_path(dir, "tiny.so");
  rtt_write(rtt_path(dir, "tiny.h"), "#include \"lathe/model_info.h\"\n", 30);
  rtt_write(c_path, tiny_c, strlen(tiny_c));
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_build_shared(c_path, so_path, flags, &d), "%s", diag_text(&d));
  RtModel m;
  ck_assert_msg(rt_model_open(&m, so_path, "tiny", &d), "%s", diag_text(&d));
  ck_assert_ptr_null(m.dir);
  check_calls(&m);
  rt_model_close(&m);
  /* the same library under the wrong model name: no such descriptor */
  rtt_expect_error(rt_model_open(&m, so_path, "other", &d), &d, "other_info", "wrong name");
  ck_assert_ptr_null(m.handle);
  rtt_expect_error(rt_model_open(&m, "no-such.so", "tiny", &d), &d, "no-such.so", "no file");
  rtt_expect_error(rt_model_open(&m, so_path, "../x", &d), &d, "C identifier", "bad name");
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_syntax_error_reports_compiler_output) {
  RtModel m;
  Diag d;
  diag_init(&d);
  char *h = tiny_h(LATHE_MODEL_INFO_VERSION);
  const char *bad = "#include \"broken.h\"\nint broken_fn(void) { return 1 +; }\n";
  bool ok = rt_model_open_source(&m, "broken", bad, h, &d);
  ck_assert(!ok);
  ck_assert_int_gt(d.n_errors, 0);
  const char *text = diag_text(&d);
  ck_assert_msg(strstr(text, "broken.c") != NULL, "no file name in: %s", text);
  ck_assert_msg(strstr(text, "expected") != NULL, "the compiler's message is missing: %s", text);
  ck_assert_msg(strstr(text, "error:") != NULL, "no compiler error in: %s", text);
  ck_assert_ptr_null(m.handle);
  free(h);
  diag_fini(&d);
}
END_TEST

START_TEST(test_version_mismatch) {
  RtModel m;
  Diag d;
  diag_init(&d);
  char *h = tiny_h(LATHE_MODEL_INFO_VERSION + 98);
  char want[64];
  snprintf(want, sizeof want, "version %d", LATHE_MODEL_INFO_VERSION + 98);
  rtt_expect_error(rt_model_open_source(&m, "tiny", tiny_c, h, &d), &d, want, "version");
  ck_assert_ptr_null(m.dir);
  free(h);
  diag_fini(&d);
}
END_TEST

/* a descriptor whose cpu_supported() says no (a CPU without the target's instructions): the
 * loader refuses it, naming the target, and never calls an entry point */
START_TEST(test_cpu_unsupported) {
  const char *tail = "0, 2, entries, 0};\n";
  const char *at = strstr(tiny_c, tail);
  ck_assert_ptr_nonnull(at);
  size_t n = strlen(tiny_c) + 256;
  char *c = malloc(n);
  ck_assert_ptr_nonnull(c);
  snprintf(c, n,
           "static int tiny_cpu_no(void) { return 0; }\n%.*s"
           "0, 2, entries, 0, tiny_cpu_no, \"x86-64-v4\"};\n",
           (int)(at - tiny_c), tiny_c);
  char *h = tiny_h(LATHE_MODEL_INFO_VERSION);
  RtModel m;
  Diag d;
  diag_init(&d);
  rtt_expect_error(rt_model_open_source(&m, "tiny", c, h, &d), &d,
                   "model 'tiny' was compiled for x86-64-v4, and this CPU lacks", "cpu check");
  ck_assert_ptr_null(m.dir);
  free(c);
  free(h);
  diag_fini(&d);
}
END_TEST

START_TEST(test_missing_compiler) {
  const char *old = getenv("CC");
  char *saved = old ? strdup(old) : NULL;
  setenv("CC", "lathe-no-such-compiler --flag", 1);
  char *h = tiny_h(LATHE_MODEL_INFO_VERSION);
  RtModel m;
  Diag d;
  diag_init(&d);
  bool ok = rt_model_open_source(&m, "tiny", tiny_c, h, &d);
  if (saved)
    setenv("CC", saved, 1);
  else
    unsetenv("CC");
  rtt_expect_error(ok, &d, "lathe-no-such-compiler", "no compiler");
  rtt_expect_error(rt_model_open_source(&m, "bad name", tiny_c, h, &d), &d, "C identifier",
                   "bad model name");
  free(saved);
  free(h);
  diag_fini(&d);
}
END_TEST

static Suite *loader_suite(void) {
  Suite *s = suite_create("runtime_loader");
  TCase *tc = tcase_create("loader");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_open_source_and_call);
  tcase_add_test(tc, test_build_shared_with_flags);
  tcase_add_test(tc, test_syntax_error_reports_compiler_output);
  tcase_add_test(tc, test_version_mismatch);
  tcase_add_test(tc, test_cpu_unsupported);
  tcase_add_test(tc, test_missing_compiler);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(loader_suite());
}
