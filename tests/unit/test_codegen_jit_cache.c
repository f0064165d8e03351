/* tests/unit/test_codegen_jit_cache.c — the JIT's on-disk object cache (codegen/jit.cpp):
 * a second compile of the same C loads the stored object (JIT_CACHE_HIT) and computes exactly
 * what the first did; other C is another entry; a corrupt, truncated, foreign or empty entry is
 * ignored, compiled over and replaced by a valid one; over its budget a store keeps the entry it
 * wrote and drops others; an unwritable cache directory and
 * LATHE_NO_CACHE=1 compile as without a cache; the entry points' pipeline (LATHE_JIT_ENTRY_OPT)
 * is part of the key and does not change a result. Every case runs in its own temporary
 * LATHE_CACHE_DIR. In a build without LLVM the suite checks instead that jit_compile refuses
 * with the "built without LLVM" error.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/jit_testutil.h"

static const char *model_text = "const N = 8\n"
                                "fn lin(x: f32[B, I], units: int) -> f32[B, units] {\n"
                                "  param w: f32[I, units] = glorot_uniform\n"
                                "  param b: f32[units] = uniform(-1, 1)\n"
                                "  return x @ w + b\n"
                                "}\n"
                                "model cachet(x: f32[N, 24]) {\n"
                                "  output y = softmax(relu(lin(x, 16)))\n"
                                "}\n";

static char cache_dir[64];

/* the C of cachet at batch n, as `lathe compile -D N=n` writes it */
static Emitted emit(int n) {
  return jit_test_emit("cachet.lathe", model_text, n);
}

static JitModel *compile(const Emitted *e, JitCacheOutcome expected) {
  Diag d;
  diag_init(&d);
  JitModel *j = jit_compile(e->c, "cachet.h", e->h, "cachet", &d);
  ck_assert_msg(j != NULL, "%s", diag_text(&d));
  diag_fini(&d);
  ck_assert_int_eq(jit_cache_outcome(j), expected);
  return j;
}

/* run forward on a fixed input; out gets n x 16 floats */
static void run_forward(const JitModel *j, int n, float *out) {
  jit_test_run(j, n, 24, 42, out);
}

/* how many files cache_dir/jit holds; path gets the name of one that is not `except` */
static int entries(char *path, size_t size, const char *except) {
  return jit_test_files(cache_dir, "jit", path, size, except);
}

static void remove_tree(void) {
  char path[256];
  while (entries(path, sizeof path, NULL) > 0)
    ck_assert_int_eq(unlink(path), 0);
  snprintf(path, sizeof path, "%s/jit", cache_dir);
  rmdir(path);
  snprintf(path, sizeof path, "rm -rf '%s/jit-kernels' '%s/jit-pch'", cache_dir,
           cache_dir); /* the kernel library, the PCH */
  ck_assert_int_eq(system(path), 0);
  rmdir(cache_dir);
}

static void setup(void) {
  snprintf(cache_dir, sizeof cache_dir, "/tmp/lathe-jit-cache-test.XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(cache_dir));
  setenv("LATHE_CACHE_DIR", cache_dir, 1);
  unsetenv("LATHE_NO_CACHE");
  unsetenv("LATHE_CACHE_MAX_MB");
  unsetenv("LATHE_JIT_ENTRY_OPT");
}

static void teardown(void) {
  remove_tree();
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  ck_assert_int_eq(fclose(f), 0);
}

static char *read_whole(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  char *p = malloc(*n + 1);
  ck_assert_uint_eq(fread(p, 1, *n, f), *n);
  fclose(f);
  return p;
}

START_TEST(second_compile_hits) {
  Emitted e = emit(8);
  float first[8 * 16], second[8 * 16], uncached[8 * 16];
  JitModel *j = compile(&e, JIT_CACHE_STORED);
  run_forward(j, 8, first);
  jit_free(j);
  ck_assert_int_eq(entries(NULL, 0, NULL), 1);
  j = compile(&e, JIT_CACHE_HIT);
  run_forward(j, 8, second);
  jit_free(j);
  ck_assert_int_eq(entries(NULL, 0, NULL), 1);
  setenv("LATHE_NO_CACHE", "1", 1);
  j = compile(&e, JIT_CACHE_OFF);
  run_forward(j, 8, uncached);
  jit_free(j);
  ck_assert_mem_eq(first, second, sizeof first);
  ck_assert_mem_eq(first, uncached, sizeof first);
  float sum = 0;
  for (int i = 0; i < 16; i++)
    sum += first[i];
  ck_assert_float_eq_tol(sum, 1.0f, 1e-5f); /* a softmax row: the code ran */
  free(e.c), free(e.h);
}
END_TEST

START_TEST(other_c_is_another_entry) {
  Emitted a = emit(8), b = emit(4);
  jit_free(compile(&a, JIT_CACHE_STORED));
  jit_free(compile(&b, JIT_CACHE_STORED));
  ck_assert_int_eq(entries(NULL, 0, NULL), 2);
  jit_free(compile(&a, JIT_CACHE_HIT));
  jit_free(compile(&b, JIT_CACHE_HIT));
  free(a.c), free(a.h), free(b.c), free(b.h);
}
END_TEST

/* The entry points' pipeline (the fast default, or -O3 with LATHE_JIT_ENTRY_OPT=3) is part of
 * the model's key, the kernels' entries are shared, and both compute bit-identical results. */
START_TEST(entry_pipeline_is_in_the_key) {
  Emitted e = emit(8);
  float fast[8 * 16], o3[8 * 16];
  JitModel *j = compile(&e, JIT_CACHE_STORED);
  int compiled = 0, cached = 0;
  jit_kernel_counts(j, &compiled, &cached);
  ck_assert_int_gt(compiled, 0);
  run_forward(j, 8, fast);
  jit_free(j);
  setenv("LATHE_JIT_ENTRY_OPT", "3", 1);
  j = compile(&e, JIT_CACHE_STORED); /* not the fast pipeline's object */
  jit_kernel_counts(j, &compiled, &cached);
  ck_assert_int_eq(compiled, 0); /* the kernels are -O3 either way: their entries are reused */
  ck_assert_int_gt(cached, 0);
  run_forward(j, 8, o3);
  jit_free(j);
  ck_assert_int_eq(entries(NULL, 0, NULL), 2);
  jit_free(compile(&e, JIT_CACHE_HIT));
  unsetenv("LATHE_JIT_ENTRY_OPT");
  jit_free(compile(&e, JIT_CACHE_HIT));
  ck_assert_mem_eq(fast, o3, sizeof fast);
  free(e.c), free(e.h);
}
END_TEST

/* the bytes of a valid entry of another model, stored beside `keep` */
static char *other_entry(const char *keep, size_t *n) {
  Emitted other = emit(4);
  jit_free(compile(&other, JIT_CACHE_STORED));
  free(other.c), free(other.h);
  char path[256];
  ck_assert_int_eq(entries(path, sizeof path, keep), 2);
  return read_whole(path, n);
}

/* Damage the stored entry in one of several ways; the next compile must ignore it, give the
 * same results, and leave a valid entry that the compile after hits. */
static void damaged_entry_is_replaced(int how) {
  Emitted e = emit(8);
  float before[8 * 16], after[8 * 16];
  char path[256];
  JitModel *j = compile(&e, JIT_CACHE_STORED);
  run_forward(j, 8, before);
  jit_free(j);
  ck_assert_int_eq(entries(path, sizeof path, NULL), 1);
  size_t n;
  char *bytes = read_whole(path, &n);
  if (how == 0) bytes[n / 2] ^= 0x10; /* a flipped bit inside the object */
  if (how == 6) bytes[n - 7] ^= 0x5a; /* near its end (ELF section headers) */
  if (how == 1) n = 40;               /* truncated inside the header */
  if (how == 2) n = n - 1;            /* truncated by one byte */
  if (how == 3) memcpy(bytes, "NOTLATHE", 8);
  if (how == 4) n = 0;
  if (how == 5) { /* another model's valid entry under this name */
    free(bytes);
    bytes = other_entry(path, &n);
  }
  write_file(path, bytes, n);
  free(bytes);
  j = compile(&e, JIT_CACHE_REPLACED);
  run_forward(j, 8, after);
  jit_free(j);
  ck_assert_mem_eq(before, after, sizeof before);
  jit_free(compile(&e, JIT_CACHE_HIT));
  free(e.c), free(e.h);
}

START_TEST(damaged_entries_are_replaced) {
  damaged_entry_is_replaced(_i);
}
END_TEST

/* Over budget, a store removes the least recently used entries but never the one it wrote. */
START_TEST(budget_keeps_the_newest) {
  Emitted a = emit(8), b = emit(4);
  jit_free(compile(&a, JIT_CACHE_STORED));
  jit_free(compile(&b, JIT_CACHE_STORED));
  ck_assert_int_eq(entries(NULL, 0, NULL), 2); /* the default budget holds both */
  setenv("LATHE_CACHE_MAX_MB", "0.000001", 1); /* one byte: only the newest entry stays */
  jit_free(compile(&a, JIT_CACHE_HIT));        /* a hit does not prune */
  ck_assert_int_eq(entries(NULL, 0, NULL), 2);
  Emitted c = emit(2);
  jit_free(compile(&c, JIT_CACHE_STORED));
  ck_assert_int_eq(entries(NULL, 0, NULL), 1);
  jit_free(compile(&c, JIT_CACHE_HIT));
  jit_free(compile(&a, JIT_CACHE_STORED)); /* pruned */
  ck_assert_int_eq(entries(NULL, 0, NULL), 1);
  free(a.c), free(a.h), free(b.c), free(b.h), free(c.c), free(c.h);
}
END_TEST

START_TEST(unwritable_dir_still_compiles) {
  char file[128];
  snprintf(file, sizeof file, "%s/jit", cache_dir);
  write_file(file, "x", 1); /* jit/ is a file: the cache directory cannot be made */
  Emitted e = emit(4);
  jit_free(compile(&e, JIT_CACHE_UNSTORED));
  jit_free(compile(&e, JIT_CACHE_UNSTORED));
  ck_assert_int_eq(unlink(file), 0);
  setenv("LATHE_NO_CACHE", "1", 1);
  jit_free(compile(&e, JIT_CACHE_OFF));
  ck_assert_int_eq(entries(NULL, 0, NULL), 0);
  free(e.c), free(e.h);
}
END_TEST

START_TEST(without_llvm_jit_refuses) {
  Diag d;
  diag_init(&d);
  ck_assert_ptr_null(jit_compile("int x;", "t.h", "", "t", &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "without LLVM"));
  diag_fini(&d);
}
END_TEST

static Suite *jit_cache_suite(void) {
  Suite *s = suite_create("jit_cache");
  TCase *tc = tcase_create("cache");
  tcase_set_timeout(tc, 300);
  if (jit_available()) {
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, second_compile_hits);
    tcase_add_test(tc, other_c_is_another_entry);
    tcase_add_test(tc, entry_pipeline_is_in_the_key);
    tcase_add_loop_test(tc, damaged_entries_are_replaced, 0, 7);
    tcase_add_test(tc, budget_keeps_the_newest);
    tcase_add_test(tc, unwritable_dir_still_compiles);
  } else {
    tcase_add_test(tc, without_llvm_jit_refuses);
  }
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(jit_cache_suite());
}
