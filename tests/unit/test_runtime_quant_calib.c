/* tests/unit/test_runtime_quant_calib.c — the observers and TFLite's parameter rules of
 * runtime/quant_calib.c (issue 19). The rules' expected values are the oracle's
 * (tests/int8/tflite_ref.py: choose_params, quantize_multiplier, quantize, ...), worked out
 * by hand here; tests/int8_quantize.sh checks whole models against the oracle itself.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/quant_calib.h"
#include "tests/unit/testutil.h"

START_TEST(test_minmax) {
  RtObserver o;
  rt_observer_init(&o, RT_OBSERVE_MINMAX, 0);
  float x[] = {0.5f, -2.0f, NAN, 3.0f, INFINITY};
  rt_observe_minmax(&o, x, 5);
  double lo, hi;
  rt_observer_range(&o, &lo, &hi);
  ck_assert(lo == -2.0 && hi == 3.0);
  ck_assert_int_eq(o.nonfinite, 2);
  ck_assert(!rt_observer_two_pass(&o));
  rt_observer_fini(&o);
}
END_TEST

/* 0..9999 and one outlier at 1e6: the 99.99th percentile drops the outlier only */
START_TEST(test_percentile) {
  enum { N = 10001 };
  float *x = malloc(N * sizeof *x);
  for (int i = 0; i < N - 1; i++)
    x[i] = (float)i;
  x[N - 1] = 1e6f;
  RtObserver o;
  rt_observer_init(&o, RT_OBSERVE_PERCENTILE, 99.99);
  rt_observe_minmax(&o, x, N);
  ck_assert(rt_observer_two_pass(&o));
  ck_assert(rt_observe_histogram(&o, x, N));
  double lo, hi, width = 1e6 / RT_OBSERVE_BINS;
  rt_observer_range(&o, &lo, &hi);
  ck_assert(lo == 0);
  ck_assert_msg(hi >= 9999 && hi <= 9999 + width, "hi %g", hi);
  rt_observer_fini(&o);
  rt_observer_init(&o, RT_OBSERVE_PERCENTILE, 100); /* the 100th: the max itself */
  rt_observe_minmax(&o, x, N);
  ck_assert(rt_observe_histogram(&o, x, N));
  rt_observer_range(&o, &lo, &hi);
  ck_assert(lo == 0 && hi == 1e6);
  rt_observer_fini(&o);
  free(x);
}
END_TEST

/* uniform counts over the first 500 of 2048 bins: no clipping of real data (KL 0 first at
 * i = 500); any cut below folds mass into the last bin and costs divergence. (Clipping pays
 * off for a long sparse tail, test_entropy_observer.) */
START_TEST(test_entropy_bins) {
  int64_t *h = calloc(2048, sizeof *h);
  for (int i = 0; i < 500; i++)
    h[i] = 100;
  ck_assert_int_eq(rt_entropy_threshold_bins(h, 2048, 128), 500);
  ck_assert_int_eq(rt_entropy_threshold_bins(h, 2048, 255), 500);
  h[700] = 1; /* a lone bin is represented exactly by Q: no reason to clip it */
  ck_assert_int_eq(rt_entropy_threshold_bins(h, 2048, 128), 701);
  free(h);
}
END_TEST

/* a bell of |x| <= ~4 (sums of uniforms) with outliers at +-20: entropy clips the outliers
 * but keeps the bell */
START_TEST(test_entropy_observer) {
  enum { N = 200000 };
  float *x = malloc(N * sizeof *x);
  uint64_t s = 19;
  for (int i = 0; i < N; i++) {
    double v = 0;
    for (int k = 0; k < 4; k++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      v += (double)(s >> 11) / 9007199254740992.0 - 0.5;
    }
    x[i] = (float)(v * 1.7);
  }
  x[0] = 20, x[1] = -20;
  RtObserver o;
  rt_observer_init(&o, RT_OBSERVE_ENTROPY, 0);
  rt_observe_minmax(&o, x, N);
  ck_assert(rt_observe_histogram(&o, x, N));
  double lo, hi;
  rt_observer_range(&o, &lo, &hi);
  ck_assert_msg(hi > 2.0 && hi < 10.0 && lo == -hi, "range [%g, %g]", lo, hi);
  rt_observer_fini(&o);
  free(x);
}
END_TEST

START_TEST(test_choose_params) {
  float scale;
  int32_t zp;
  const char *why = NULL;
  ck_assert(rt_quant_choose_params(0, 1, &scale, &zp, &why));
  ck_assert(scale == (float)(1.0 / 255) && zp == -128);
  ck_assert(rt_quant_choose_params(2, 5, &scale, &zp, &why)); /* widened to [0, 5] */
  ck_assert(scale == (float)(5.0 / 255) && zp == -128);
  ck_assert(rt_quant_choose_params(-1, 1, &scale, &zp, &why)); /* -128 + 127.5: half away */
  ck_assert(scale == (float)(2.0 / 255) && zp == -1);
  ck_assert(rt_quant_choose_params(-3, 0, &scale, &zp, &why));
  ck_assert_int_eq(zp, 127);
  ck_assert(!rt_quant_choose_params(0, 0, &scale, &zp, &why));
  ck_assert_ptr_nonnull(strstr(why, "degenerate"));
  ck_assert(!rt_quant_choose_params(-INFINITY, 1, &scale, &zp, &why));
  ck_assert_ptr_nonnull(strstr(why, "non-finite"));
}
END_TEST

START_TEST(test_weight_scales) {
  /* dense [I = 2, O = 3]: channel 1 all zero */
  float w[] = {0.5f, 0, -1.27f, -0.25f, 0, 0.1f}, s[3];
  rt_quant_weight_scales(w, 2, 3, 1, true, s);
  ck_assert(s[0] == 0.5f / 127.0f && s[1] == 1.0f && s[2] == 1.27f / 127.0f);
  rt_quant_weight_scales(w, 2, 3, 1, false, s);
  ck_assert(s[0] == 1.27f / 127.0f);
  /* conv [O = 2, C*kh*kw = 2] */
  float c[] = {0.1f, -0.2f, 0.3f, 0.05f};
  rt_quant_weight_scales(c, 1, 2, 2, true, s);
  ck_assert(s[0] == 0.2f / 127.0f && s[1] == 0.3f / 127.0f);
}
END_TEST

START_TEST(test_multiplier_value_bias) {
  int32_t m, sh;
  ck_assert(rt_quant_multiplier(0.5, &m, &sh) && m == 1 << 30 && sh == 0);
  ck_assert(rt_quant_multiplier(1.0, &m, &sh) && m == 1 << 30 && sh == 1);
  ck_assert(rt_quant_multiplier(1e-12, &m, &sh) && m == 0 && sh == 0);
  ck_assert(rt_quant_multiplier(0.0, &m, &sh) && m == 0);
  ck_assert(!rt_quant_multiplier(2147483648.0, &m, &sh)); /* shift 32 */
  ck_assert(!rt_quant_multiplier(-0.5, &m, &sh));
  ck_assert(!rt_quant_multiplier(NAN, &m, &sh));
  ck_assert(rt_quant_multiplier(0.3, &m, &sh)); /* frexp: 0.6 * 2^-1 */
  ck_assert(sh == -1 && m == 1288490189);       /* round(0.6 * 2^31), half away */
  ck_assert_int_eq(rt_quant_value(0.5f, 1, 0, -128, 127), 1);
  ck_assert_int_eq(rt_quant_value(-0.5f, 1, 0, -128, 127), -1);
  ck_assert_int_eq(rt_quant_value(2.5f, 1, 3, -128, 127), 6);
  ck_assert_int_eq(rt_quant_value(0.49999997f, 1, 0, -128, 127), 0);
  ck_assert_int_eq(rt_quant_value(1000, 1, 0, -127, 127), 127);
  ck_assert_int_eq(rt_quant_value(-1e30f, 0.1f, 5, -128, 127), -128);
  ck_assert_int_eq(rt_quant_value(NAN, 1, 0, -128, 127), -128);
  int32_t b;
  ck_assert(rt_quant_bias(0.75, 0.5f, 1.0f, &b) && b == 2); /* 1.5: half away */
  ck_assert(rt_quant_bias(-0.75, 0.5f, 1.0f, &b) && b == -2);
  ck_assert(!rt_quant_bias(1e10, 1e-3f, 1e-3f, &b));
}
END_TEST

START_TEST(test_kind_names) {
  RtObserveKind k;
  ck_assert(rt_observe_kind_parse("entropy", &k) && k == RT_OBSERVE_ENTROPY);
  ck_assert(!rt_observe_kind_parse("kl", &k));
  ck_assert_str_eq(rt_observe_kind_name(RT_OBSERVE_PERCENTILE), "percentile");
}
END_TEST

static Suite *calib_suite(void) {
  Suite *s = suite_create("runtime_quant_calib");
  TCase *tc = tcase_create("calib");
  tcase_add_test(tc, test_minmax);
  tcase_add_test(tc, test_percentile);
  tcase_add_test(tc, test_entropy_bins);
  tcase_add_test(tc, test_entropy_observer);
  tcase_add_test(tc, test_choose_params);
  tcase_add_test(tc, test_weight_scales);
  tcase_add_test(tc, test_multiplier_value_bias);
  tcase_add_test(tc, test_kind_names);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(calib_suite());
}
