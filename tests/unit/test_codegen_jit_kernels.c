/* tests/unit/test_codegen_jit_kernels.c — the JIT's kernel library (codegen/jit.cpp): the
 * routines the C marks noinline (here the GEMM) are compiled one by one into objects cached
 * in jit-kernels/, which another model with the same kernels links instead of compiling them
 * (and the precompiled header of the standard headers in jit-pch/, made once and reused);
 * a corrupt or missing kernel entry is compiled again and replaced; two models sharing the
 * kernels run side by side in one process, and freeing one leaves the other working. Every
 * result is compared bit for bit with the same C compiled with the cache off. Each case runs
 * in its own temporary LATHE_CACHE_DIR. Without LLVM the suite checks jit_kernel_counts of
 * nothing instead.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/jit_testutil.h"

static const char *model_text = "const N = 8\n"
                                "fn lin(x: f32[B, I], units: int) -> f32[B, units] {\n"
                                "  param w: f32[I, units] = glorot_uniform\n"
                                "  param b: f32[units] = uniform(-1, 1)\n"
                                "  return x @ w + b\n"
                                "}\n"
                                "model kern(x: f32[N, 40]) {\n"
                                "  output y = lin(relu(lin(x, 48)), 16)\n"
                                "}\n";

static char cache_dir[64];

/* the C of kern at batch n; `extra` appended (another model's text, the same kernels) */
static Emitted emit(int n, const char *extra) {
  return jit_test_emit_with("kern.lathe", model_text, n, extra);
}

/* compile e; its outcome must be `expected` and it must have compiled `compiled` kernels
 * (-1: any, > 0) and taken `cached` from the cache */
static JitModel *compile(const Emitted *e, JitCacheOutcome expected, int compiled, int cached) {
  Diag d;
  diag_init(&d);
  JitModel *j = jit_compile(e->c, "kern.h", e->h, "kern", &d);
  ck_assert_msg(j != NULL, "%s", diag_text(&d));
  diag_fini(&d);
  ck_assert_int_eq(jit_cache_outcome(j), expected);
  int c = -1, k = -1;
  jit_kernel_counts(j, &c, &k);
  if (compiled < 0)
    ck_assert_int_gt(c, 0);
  else
    ck_assert_int_eq(c, compiled);
  ck_assert_int_eq(k, cached);
  return j;
}

static int kernels_of(const JitModel *j) {
  int c, k;
  jit_kernel_counts(j, &c, &k);
  return c + k;
}

/* run forward on a fixed input; out gets n x 16 floats */
static void run_forward(const JitModel *j, int n, float *out) {
  jit_test_run(j, n, 40, 7, out);
}

/* the outputs of e compiled without the cache (every kernel compiled in this process) */
static void reference(const Emitted *e, int n, float *out) {
  setenv("LATHE_NO_CACHE", "1", 1);
  JitModel *j = compile(e, JIT_CACHE_OFF, -1, 0);
  run_forward(j, n, out);
  jit_free(j);
  unsetenv("LATHE_NO_CACHE");
}

/* the files in cache_dir/sub; path gets the name of the last one */
static int files(const char *sub, char *path, size_t size) {
  return jit_test_files(cache_dir, sub, path, size, NULL);
}

static void clear(const char *sub) {
  char path[256];
  while (files(sub, path, sizeof path) > 0)
    ck_assert_int_eq(unlink(path), 0);
  snprintf(path, sizeof path, "%s/%s", cache_dir, sub);
  rmdir(path);
}

static void setup(void) {
  snprintf(cache_dir, sizeof cache_dir, "/tmp/lathe-jit-kernels-test.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(cache_dir));
  setenv("LATHE_CACHE_DIR", cache_dir, 1);
  unsetenv("LATHE_NO_CACHE");
  unsetenv("LATHE_CACHE_MAX_MB");
}

static void teardown(void) {
  clear("jit");
  clear("jit-kernels");
  clear("jit-pch");
  rmdir(cache_dir);
}

/* Another model's C with the same kernels links the cached kernel objects. */
START_TEST(kernels_cached_and_reused) {
  Emitted a = emit(8, NULL), b = emit(8, "/* another model */\n");
  float want[8 * 16], got_a[8 * 16], got_b[8 * 16];
  reference(&a, 8, want);
  JitModel *j = compile(&a, JIT_CACHE_STORED, -1, 0);
  int k = kernels_of(j);
  run_forward(j, 8, got_a);
  jit_free(j);
  ck_assert_int_eq(files("jit-kernels", NULL, 0), k);
  ck_assert_int_eq(files("jit", NULL, 0), 1);
  j = compile(&b, JIT_CACHE_STORED, 0, k); /* a new model entry, no kernel compiled */
  run_forward(j, 8, got_b);
  jit_free(j);
  ck_assert_int_eq(files("jit-kernels", NULL, 0), k);
  ck_assert_int_eq(files("jit", NULL, 0), 2);
  jit_free(compile(&a, JIT_CACHE_HIT, 0, k));
  ck_assert_mem_eq(want, got_a, sizeof want);
  ck_assert_mem_eq(want, got_b, sizeof want);
  jit_test_emitted_free(&a), jit_test_emitted_free(&b);
}
END_TEST

/* A kernel entry that is corrupt (how 0), truncated (1) or missing (2): the model that needs
 * it is compiled again, its kernels too, and the entries are replaced. */
START_TEST(bad_kernel_entry_is_replaced) {
  Emitted a = emit(8, NULL);
  float want[8 * 16], got[8 * 16];
  reference(&a, 8, want);
  JitModel *j = compile(&a, JIT_CACHE_STORED, -1, 0);
  int k = kernels_of(j);
  jit_free(j);
  char path[256];
  ck_assert_int_gt(files("jit-kernels", path, sizeof path), 0);
  if (_i == 2) {
    ck_assert_int_eq(unlink(path), 0);
  } else {
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    ck_assert_int_eq(fseek(f, _i == 0 ? n / 2 : 0, SEEK_SET), 0);
    ck_assert_int_eq(fputc(0x5a, f) == EOF, 0);
    ck_assert_int_eq(fclose(f), 0);
    if (_i == 1) ck_assert_int_eq(truncate(path, n - 3), 0);
  }
  j = compile(&a, JIT_CACHE_REPLACED, -1, k - 1);
  ck_assert_int_eq(kernels_of(j), k);
  run_forward(j, 8, got);
  jit_free(j);
  ck_assert_mem_eq(want, got, sizeof want);
  jit_free(compile(&a, JIT_CACHE_HIT, 0, k));
  ck_assert_int_eq(files("jit-kernels", NULL, 0), k);
  jit_test_emitted_free(&a);
}
END_TEST

/* Two models (batch 8 and 4) share the kernel objects and live side by side; freeing the
 * first leaves the second's code intact. */
START_TEST(two_models_share_kernels) {
  Emitted a = emit(8, NULL), b = emit(4, NULL);
  float want_a[8 * 16], want_b[4 * 16], got_a[8 * 16], got_b[4 * 16], again[4 * 16];
  reference(&a, 8, want_a);
  reference(&b, 4, want_b);
  JitModel *ja = compile(&a, JIT_CACHE_STORED, -1, 0);
  int k = kernels_of(ja);
  JitModel *jb = compile(&b, JIT_CACHE_STORED, 0, k);
  run_forward(ja, 8, got_a);
  run_forward(jb, 4, got_b);
  jit_free(ja);
  run_forward(jb, 4, again);
  jit_free(jb);
  ck_assert_mem_eq(want_a, got_a, sizeof want_a);
  ck_assert_mem_eq(want_b, got_b, sizeof want_b);
  ck_assert_mem_eq(want_b, again, sizeof want_b);
  ck_assert_int_eq(files("jit-kernels", NULL, 0), k);
  jit_test_emitted_free(&a), jit_test_emitted_free(&b);
}
END_TEST

/* the inode of the one entry in jit-pch/ (a new PCH is a new file, renamed into place) */
static ino_t pch_inode(void) {
  char path[256];
  ck_assert_int_eq(files("jit-pch", path, sizeof path), 1);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  return st.st_ino;
}

/* The first compile makes the precompiled header of the standard headers; another model's
 * compile uses it (not made again), and both compute what the C does without it. */
START_TEST(pch_made_and_reused) {
  Emitted a = emit(8, NULL), b = emit(8, "/* another model */\n");
  float want[8 * 16], got_a[8 * 16], got_b[8 * 16];
  reference(&a, 8, want); /* cache off: no PCH */
  ck_assert_int_eq(files("jit-pch", NULL, 0), 0);
  JitModel *j = compile(&a, JIT_CACHE_STORED, -1, 0);
  int k = kernels_of(j);
  run_forward(j, 8, got_a);
  jit_free(j);
  ino_t made = pch_inode();
  j = compile(&b, JIT_CACHE_STORED, 0, k);
  run_forward(j, 8, got_b);
  jit_free(j);
  ck_assert_uint_eq(pch_inode(), made);
  ck_assert_mem_eq(want, got_a, sizeof want);
  ck_assert_mem_eq(want, got_b, sizeof want);
  jit_test_emitted_free(&a), jit_test_emitted_free(&b);
}
END_TEST

/* A PCH entry that is corrupt (how 0) or truncated (1) is never handed to Clang: the next
 * compile makes the PCH again (a new file) and computes the same results. */
START_TEST(bad_pch_is_remade) {
  Emitted a = emit(8, NULL), b = emit(8, "/* another model */\n");
  float want[8 * 16], got[8 * 16];
  reference(&a, 8, want);
  JitModel *j = compile(&a, JIT_CACHE_STORED, -1, 0);
  int k = kernels_of(j);
  jit_free(j);
  ino_t made = pch_inode();
  char path[256];
  ck_assert_int_eq(files("jit-pch", path, sizeof path), 1);
  FILE *f = fopen(path, "r+b");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  ck_assert_int_eq(fseek(f, n / 2, SEEK_SET), 0);
  ck_assert_int_eq(fputc(0x5a, f) == EOF, 0);
  ck_assert_int_eq(fclose(f), 0);
  if (_i == 1) ck_assert_int_eq(truncate(path, n / 3), 0);
  j = compile(&b, JIT_CACHE_STORED, 0, k);
  run_forward(j, 8, got);
  jit_free(j);
  ck_assert_uint_ne(pch_inode(), made);
  ck_assert_mem_eq(want, got, sizeof want);
  jit_test_emitted_free(&a), jit_test_emitted_free(&b);
}
END_TEST

START_TEST(without_llvm_no_kernels) {
  ck_assert(!jit_available());
}
END_TEST

static Suite *jit_kernels_suite(void) {
  Suite *s = suite_create("jit_kernels");
  TCase *tc = tcase_create("kernels");
  tcase_set_timeout(tc, 300);
  if (jit_available()) {
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, kernels_cached_and_reused);
    tcase_add_loop_test(tc, bad_kernel_entry_is_replaced, 0, 3);
    tcase_add_test(tc, two_models_share_kernels);
    tcase_add_test(tc, pch_made_and_reused);
    tcase_add_loop_test(tc, bad_pch_is_remade, 0, 2);
  } else {
    tcase_add_test(tc, without_llvm_no_kernels);
  }
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(jit_kernels_suite());
}
