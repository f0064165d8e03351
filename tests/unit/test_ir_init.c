/* tests/unit/test_ir_init.c — initializers: reproducible, per-name streams, statistics within
 * tolerance, fan conventions, and the exact reference algorithm for a few values. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/unit/testutil.h"

static TensorDecl decl(const char *name, DType t, int rank, int64_t d0, int64_t d1,
                       InitKind k, double a, double b) {
  int64_t dims[2] = {d0, d1};
  TensorDecl dc;
  memset(&dc, 0, sizeof dc);
  dc.name = name;
  dc.dtype = t;
  dc.shape = shape_make(rank, dims);
  dc.init = (InitSpec){k, a, b};
  return dc;
}

static void stats(const Tensor *t, double *mean, double *var, double *lo, double *hi) {
  int64_t n = shape_numel(&t->shape);
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double v = tensor_get(t, i);
    s += v;
    s2 += v * v;
    *lo = fmin(*lo, v);
    *hi = fmax(*hi, v);
  }
  *mean = s / (double)n;
  *var = s2 / (double)n - *mean * *mean;
}

/* the documented algorithm, written independently of ir/init.c */
static uint64_t sm64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

START_TEST(test_reference_values) {
  TensorDecl dc = decl("h1.w", DT_F64, 1, 5, 0, INIT_UNIFORM, -2, 3);
  Tensor t;
  ir_init_tensor(&dc, 42, &t);
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char *p = "h1.w"; *p; p++) {
    h ^= (unsigned char)*p;
    h *= 0x100000001b3ull;
  }
  uint64_t key = sm64(42 ^ h);
  for (int i = 0; i < 5; i++) {
    double u = (double)(sm64(key + (uint64_t)i) >> 11) * 0x1.0p-53;
    ck_assert(tensor_get(&t, i) == -2 + 5 * u);
  }
  tensor_free(&t);
  dc.init = (InitSpec){INIT_NORMAL, 1, 2};
  ir_init_tensor(&dc, 42, &t);
  for (int i = 0; i < 5; i++) {
    int j = i & ~1;
    double u0 = (double)(sm64(key + (uint64_t)j) >> 11) * 0x1.0p-53;
    double u1 = (double)(sm64(key + (uint64_t)j + 1) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(1.0 - u0)), th = 6.283185307179586 * u1;
    ck_assert(tensor_get(&t, i) == 1 + 2 * ((i & 1) ? r * sin(th) : r * cos(th)));
  }
  tensor_free(&t);
}
END_TEST

START_TEST(test_reproducible_and_distinct) {
  TensorDecl a = decl("enc.w", DT_F32, 2, 30, 40, INIT_GLOROT_NORMAL, 0, 0);
  TensorDecl b = decl("dec.w", DT_F32, 2, 30, 40, INIT_GLOROT_NORMAL, 0, 0);
  Tensor t1, t2, t3, t4;
  ir_init_tensor(&a, 7, &t1);
  ir_init_tensor(&a, 7, &t2);
  ir_init_tensor(&b, 7, &t3);
  ir_init_tensor(&a, 8, &t4);
  size_t bytes = 30 * 40 * sizeof(float);
  ck_assert(memcmp(t1.data, t2.data, bytes) == 0);
  ck_assert(memcmp(t1.data, t3.data, bytes) != 0);
  ck_assert(memcmp(t1.data, t4.data, bytes) != 0);
  int same = 0;
  for (int i = 0; i < 1200; i++) same += tensor_get(&t1, i) == tensor_get(&t3, i);
  ck_assert_int_lt(same, 5);
  tensor_free(&t1);
  tensor_free(&t2);
  tensor_free(&t3);
  tensor_free(&t4);
}
END_TEST

START_TEST(test_constant_kinds) {
  Tensor t;
  TensorDecl z = decl("z", DT_I32, 1, 7, 0, INIT_ZEROS, 0, 0);
  ir_init_tensor(&z, 1, &t);
  for (int i = 0; i < 7; i++) ck_assert(tensor_get(&t, i) == 0);
  tensor_free(&t);
  TensorDecl o = decl("o", DT_F32, 2, 2, 3, INIT_ONES, 0, 0);
  ir_init_tensor(&o, 1, &t);
  for (int i = 0; i < 6; i++) ck_assert(tensor_get(&t, i) == 1);
  tensor_free(&t);
  TensorDecl c = decl("c", DT_F32, 0, 0, 0, INIT_CONSTANT, 0.1, 0);
  ir_init_tensor(&c, 1, &t);
  ck_assert(tensor_get(&t, 0) == (double)(float)0.1);
  tensor_free(&t);
}
END_TEST

/* checks mean, std and range of an initializer over a large tensor */
static void check_dist(InitKind k, double a, double b, int64_t d0, int64_t d1, double want_mean,
                       double want_std, double bound) {
  TensorDecl dc = decl("layer.w", DT_F64, 2, d0, d1, k, a, b);
  Tensor t;
  ir_init_tensor(&dc, 1234, &t);
  double mean, var, lo, hi;
  stats(&t, &mean, &var, &lo, &hi);
  double n = (double)(d0 * d1);
  ck_assert_msg(fabs(mean - want_mean) < 5 * want_std / sqrt(n), "%s mean %g want %g",
                init_name(k), mean, want_mean);
  ck_assert_msg(fabs(sqrt(var) - want_std) < 0.02 * want_std, "%s std %g want %g", init_name(k),
                sqrt(var), want_std);
  if (bound > 0) {
    ck_assert(lo >= want_mean - bound && hi < want_mean + bound);
    ck_assert(lo < want_mean - 0.99 * bound && hi > want_mean + 0.99 * bound);
  }
  tensor_free(&t);
}

START_TEST(test_distributions) {
  check_dist(INIT_UNIFORM, -1, 3, 200, 100, 1, 4 / sqrt(12), 2);
  check_dist(INIT_NORMAL, 0.5, 2, 200, 100, 0.5, 2, 0);
  double l = sqrt(6.0 / (300 + 100));
  check_dist(INIT_GLOROT_UNIFORM, 0, 0, 300, 100, 0, l / sqrt(3), l);
  check_dist(INIT_GLOROT_NORMAL, 0, 0, 300, 100, 0, sqrt(2.0 / 400), 0);
  l = sqrt(6.0 / 300);
  check_dist(INIT_HE_UNIFORM, 0, 0, 300, 100, 0, l / sqrt(3), l);
  check_dist(INIT_HE_NORMAL, 0, 0, 300, 100, 0, sqrt(2.0 / 300), 0);
}
END_TEST

START_TEST(test_fans) {
  double fi, fo;
  int64_t d1[1] = {10}, d2[2] = {784, 256}, d4[4] = {32, 3, 5, 5};
  Shape s = shape_make(1, d1);
  ir_init_fans(&s, &fi, &fo);
  ck_assert(fi == 10 && fo == 10);
  s = shape_make(2, d2);
  ir_init_fans(&s, &fi, &fo);
  ck_assert(fi == 784 && fo == 256);
  s = shape_make(4, d4);
  ir_init_fans(&s, &fi, &fo);
  ck_assert(fi == 75 && fo == 800);
}
END_TEST

static Suite *ir_init_suite(void) {
  Suite *s = suite_create("ir_init");
  TCase *tc = tcase_create("init");
  tcase_add_test(tc, test_reference_values);
  tcase_add_test(tc, test_reproducible_and_distinct);
  tcase_add_test(tc, test_constant_kinds);
  tcase_add_test(tc, test_distributions);
  tcase_add_test(tc, test_fans);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(ir_init_suite()); }
