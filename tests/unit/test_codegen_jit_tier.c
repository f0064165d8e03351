/* tests/unit/test_codegen_jit_tier.c — the JIT's tiered compile (codegen/jit.cpp, docs/jit.md
 * "The tiered compile"): a compile that misses the cache returns the baseline tier (the model's
 * module at -O0) and compiles the optimized tier on a background thread, which stores it in the
 * cache and swaps it in. Checked: the baseline and the optimized tier compute, bit for bit, what
 * the same C compiled in one tier (LATHE_JIT_TIERED=0) computes; the object the background
 * thread stores is byte for byte the one-tier compile's, and the next compile loads it from the
 * cache (a hit, no tier); a model freed while its background compile runs, or a process that
 * exits then, finishes and stores it; a forked child keeps the baseline without hanging; two
 * tiered models side by side. jit_tier_hold keeps the
 * background compiles from starting, so that the baseline is what runs when a test says so.
 * Each case runs in its own temporary LATHE_CACHE_DIR. Without LLVM the suite checks that the
 * model counts as optimized.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/jit_testutil.h"

static const char *model_text = "const N = 8\n"
                                "fn lin(x: f32[B, I], units: int) -> f32[B, units] {\n"
                                "  param w: f32[I, units] = glorot_uniform\n"
                                "  param b: f32[units] = uniform(-1, 1)\n"
                                "  return x @ w + b\n"
                                "}\n"
                                "model tier(x: f32[N, 40]) {\n"
                                "  a = relu(lin(x, 48))\n"
                                "  b = tanh(lin(x, 48))\n"
                                "  output y = exp(lin(a * 0.5 + b, 16) * 0.25) - 1.0\n"
                                "}\n";

static char cache_dir[64];

/* the C of tier at batch n; `extra` appended (another model's text) */
static Emitted emit(int n, const char *extra) {
  return jit_test_emit_with("tier.lathe", model_text, n, extra);
}

static JitModel *compile(const Emitted *e) {
  Diag d;
  diag_init(&d);
  JitModel *j = jit_compile(e->c, "tier.h", e->h, "tier", &d);
  ck_assert_msg(j != NULL, "%s", diag_text(&d));
  diag_fini(&d);
  return j;
}

/* run forward on a fixed input (params from the model's init); out gets n x 16 floats */
static void run_forward(const JitModel *j, int n, float *out) {
  jit_test_run(j, n, 40, 7, out);
}

/* the outputs of e compiled in one tier without the cache */
static void reference(const Emitted *e, int n, float *out) {
  setenv("LATHE_NO_CACHE", "1", 1);
  setenv("LATHE_JIT_TIERED", "0", 1);
  JitModel *j = compile(e);
  ck_assert(jit_optimized(j));
  JitPhaseTimes t;
  jit_phase_times(j, &t);
  ck_assert(t.baseline == 0 && t.background == 0);
  run_forward(j, n, out);
  jit_free(j);
  unsetenv("LATHE_NO_CACHE");
  unsetenv("LATHE_JIT_TIERED");
}

static int files(const char *dir, const char *sub, char *path, size_t size) {
  return jit_test_files(dir, sub, path, size, NULL);
}

static void clear(const char *dir, const char *sub) {
  char path[256];
  while (files(dir, sub, path, sizeof path) > 0)
    ck_assert_int_eq(unlink(path), 0);
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  rmdir(path);
}

static void clear_all(const char *dir) {
  clear(dir, "jit");
  clear(dir, "jit-kernels");
  clear(dir, "jit-pch");
  rmdir(dir);
}

static void setup(void) {
  snprintf(cache_dir, sizeof cache_dir, "/tmp/lathe-jit-tier-test.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(cache_dir));
  setenv("LATHE_CACHE_DIR", cache_dir, 1);
  unsetenv("LATHE_NO_CACHE");
  unsetenv("LATHE_CACHE_MAX_MB");
  unsetenv("LATHE_JIT_TIERED");
  jit_tier_hold(false);
}

static void teardown(void) {
  jit_tier_hold(false);
  clear_all(cache_dir);
}

/* The same model again: a hit, loaded whole from the cache (no tiers: optimized at once, no
 * baseline compiled), computing what the one-tier compile computes. */
static void expect_hit(const Emitted *e, const float *want) {
  JitModel *j = compile(e);
  ck_assert_int_eq(jit_cache_outcome(j), JIT_CACHE_HIT);
  ck_assert(jit_optimized(j));
  JitPhaseTimes t;
  jit_phase_times(j, &t);
  ck_assert(t.baseline == 0 && t.pipeline == 0 && t.codegen == 0 && t.background == 0);
  float got[8 * 16];
  run_forward(j, 8, got);
  jit_free(j);
  ck_assert_mem_eq(want, got, sizeof got);
}

/* The baseline runs first (held), then the optimized tier is swapped in: both compute the
 * one-tier results bit for bit; the optimized object is stored and the next compile hits. */
START_TEST(baseline_then_optimized) {
  Emitted a = emit(8, NULL);
  float want[8 * 16], base[8 * 16], opt[8 * 16];
  reference(&a, 8, want);
  jit_tier_hold(true);
  JitModel *j = compile(&a);
  ck_assert(!jit_optimized(j));
  run_forward(j, 8, base);
  ck_assert(!jit_optimized(j)); /* what ran was the baseline */
  ck_assert_int_eq(files(cache_dir, "jit", NULL, 0), 0);
  jit_tier_hold(false);
  ck_assert(jit_wait_optimized(j));
  ck_assert(jit_optimized(j));
  run_forward(j, 8, opt);
  ck_assert_int_eq(jit_cache_outcome(j), JIT_CACHE_STORED);
  JitPhaseTimes t;
  jit_phase_times(j, &t);
  ck_assert(t.baseline > 0 && t.pipeline > 0 && t.codegen > 0 && t.background > 0);
  jit_free(j);
  ck_assert_mem_eq(want, base, sizeof want);
  ck_assert_mem_eq(want, opt, sizeof want);
  ck_assert_int_eq(files(cache_dir, "jit", NULL, 0), 1);
  expect_hit(&a, want);
  jit_test_emitted_free(&a);
}
END_TEST

/* the bytes of the one file in dir/jit; its name (the key) into name */
static char *entry_bytes(const char *dir, long *size, char *name, size_t name_size) {
  char path[256];
  ck_assert_int_eq(files(dir, "jit", path, sizeof path), 1);
  snprintf(name, name_size, "%s", strrchr(path, '/') + 1);
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  rewind(f);
  char *b = malloc((size_t)*size);
  ck_assert_int_eq(fread(b, 1, (size_t)*size, f), (size_t)*size);
  fclose(f);
  return b;
}

/* The entry the background thread stores is the one a one-tier compile stores: the same key,
 * the same bytes (the optimized tier is that compile, moved to another thread). */
START_TEST(stored_object_is_the_one_tier_object) {
  Emitted a = emit(8, NULL);
  jit_free(compile(&a)); /* tiered; jit_free waits for the store */
  char one_dir[64], name[128], one_name[128];
  snprintf(one_dir, sizeof one_dir, "/tmp/lathe-jit-tier-one.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(one_dir));
  setenv("LATHE_CACHE_DIR", one_dir, 1);
  setenv("LATHE_JIT_TIERED", "0", 1);
  JitModel *j = compile(&a);
  ck_assert_int_eq(jit_cache_outcome(j), JIT_CACHE_STORED);
  jit_free(j);
  unsetenv("LATHE_JIT_TIERED");
  setenv("LATHE_CACHE_DIR", cache_dir, 1);
  long size, one_size;
  char *tiered = entry_bytes(cache_dir, &size, name, sizeof name);
  char *one = entry_bytes(one_dir, &one_size, one_name, sizeof one_name);
  ck_assert_str_eq(name, one_name);
  ck_assert_int_eq(size, one_size);
  ck_assert_mem_eq(tiered, one, (size_t)size);
  free(tiered), free(one);
  clear_all(one_dir);
  jit_test_emitted_free(&a);
}
END_TEST

/* A model freed while its background compile has not even started (held) or runs: jit_free
 * finishes it, stores the object and frees everything (the ASan build checks the leaks). */
START_TEST(free_during_background) {
  Emitted a = emit(8, NULL);
  float want[8 * 16], got[8 * 16];
  reference(&a, 8, want);
  jit_tier_hold(_i == 0);
  JitModel *j = compile(&a);
  run_forward(j, 8, got);
  jit_free(j);
  ck_assert_mem_eq(want, got, sizeof want);
  jit_tier_hold(false);
  expect_hit(&a, want);
  jit_test_emitted_free(&a);
}
END_TEST

static JitModel *kept; /* reachable at exit: the process leaves it to exit, not to jit_free */

/* A process that exits while its background compile is held or running: exit finishes it and
 * stores the object (the next process hits), and exits cleanly. */
START_TEST(exit_during_background) {
  Emitted a = emit(8, NULL);
  float want[8 * 16];
  reference(&a, 8, want);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    jit_tier_hold(_i == 0);
    kept = compile(&a);
    exit(jit_optimized(kept) && _i == 0 ? 3 : 0);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  expect_hit(&a, want);
  jit_test_emitted_free(&a);
}
END_TEST

/* A process forked while its background compile is held: the child has no such thread, so it
 * keeps the baseline (it neither waits for nor joins the parent's thread: no hang) and computes
 * the same results; the parent's tier goes on. */
START_TEST(fork_during_background) {
  Emitted a = emit(8, NULL);
  float want[8 * 16], got[8 * 16];
  reference(&a, 8, want);
  jit_tier_hold(true);
  JitModel *j = compile(&a);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    bool waited = jit_wait_optimized(j); /* returns at once: false */
    run_forward(j, 8, got);
    jit_free(j);
    /* _exit: a child forked from a threaded process may find a runtime lock (ASan's leak
     * checker at exit) held by a thread it does not have */
    _exit(!waited && memcmp(want, got, sizeof got) == 0 ? 0 : 3);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  ck_assert_int_eq(WEXITSTATUS(status), 0);
  jit_tier_hold(false);
  ck_assert(jit_wait_optimized(j));
  run_forward(j, 8, got);
  jit_free(j);
  ck_assert_mem_eq(want, got, sizeof want);
  jit_test_emitted_free(&a);
}
END_TEST

/* Two models (batch 8 and 4) tiered side by side, each background compile running while the
 * other model computes; freed in the order they were made. */
START_TEST(two_tiered_models) {
  Emitted a = emit(8, NULL), b = emit(4, NULL);
  float want_a[8 * 16], want_b[4 * 16], got_a[8 * 16], got_b[4 * 16], again[4 * 16];
  reference(&a, 8, want_a);
  reference(&b, 4, want_b);
  JitModel *ja = compile(&a), *jb = compile(&b);
  run_forward(ja, 8, got_a);
  run_forward(jb, 4, got_b);
  ck_assert(jit_wait_optimized(ja));
  jit_free(ja);
  ck_assert(jit_wait_optimized(jb));
  run_forward(jb, 4, again);
  jit_free(jb);
  ck_assert_mem_eq(want_a, got_a, sizeof want_a);
  ck_assert_mem_eq(want_b, got_b, sizeof want_b);
  ck_assert_mem_eq(want_b, again, sizeof want_b);
  ck_assert_int_eq(files(cache_dir, "jit", NULL, 0), 2);
  jit_test_emitted_free(&a), jit_test_emitted_free(&b);
}
END_TEST

START_TEST(without_llvm_always_optimized) {
  ck_assert(!jit_available());
  ck_assert(jit_wait_optimized(NULL));
}
END_TEST

static Suite *jit_tier_suite(void) {
  Suite *s = suite_create("jit_tier");
  TCase *tc = tcase_create("tier");
  tcase_set_timeout(tc, 300);
  if (jit_available()) {
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, baseline_then_optimized);
    tcase_add_test(tc, stored_object_is_the_one_tier_object);
    tcase_add_loop_test(tc, free_during_background, 0, 2);
    tcase_add_loop_test(tc, exit_during_background, 0, 2);
    tcase_add_test(tc, fork_during_background);
    tcase_add_test(tc, two_tiered_models);
  } else {
    tcase_add_test(tc, without_llvm_always_optimized);
  }
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(jit_tier_suite());
}
