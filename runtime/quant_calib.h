/* runtime/quant_calib.h — post-training quantization's numbers (issue 19, docs/int8.md): the
 * observers that pick an activation range from calibration values, and TFLite's rules that
 * turn ranges and float weights into scales, zero points, int8 weights, int32 biases and Q31
 * multipliers. Private to the runtime and the CLI (`lathe quantize`).
 *
 * Each rule is the function of the same name in the oracle, tests/int8/tflite_ref.py
 * (choose_params, symmetric_weight_scales, quantize_multiplier, quantize_bias): same
 * arithmetic, same double/float32 roundings, same refusals.
 *
 * An observer sees a tensor in one or two passes over the calibration data: pass 1 records
 * the min and max (all that minmax needs); percentile and entropy then need pass 2, a
 * histogram of RT_OBSERVE_BINS bins over what pass 1 saw.
 */
#ifndef LATHE_RUNTIME_QUANT_CALIB_H
#define LATHE_RUNTIME_QUANT_CALIB_H

#include "rt_internal.h"

typedef enum RtObserveKind {
  RT_OBSERVE_MINMAX,     /* the observed min and max */
  RT_OBSERVE_PERCENTILE, /* the p-th and (100 - p)-th percentiles (p = 99.99 by default) */
  RT_OBSERVE_ENTROPY,    /* TensorRT's KL-divergence threshold of |x| */
  RT_OBSERVE_COUNT
} RtObserveKind;

enum { RT_OBSERVE_BINS = 2048 };

typedef struct RtObserver {
  RtObserveKind kind;
  double percentile; /* PERCENTILE: in (50, 100] */
  double lo, hi;     /* pass 1: the min and max seen (lo > hi before any value) */
  int64_t count;     /* values seen in pass 1 */
  int64_t nonfinite; /* NaN or infinite values seen in pass 1 (they break the range) */
  int64_t *hist;     /* pass 2: RT_OBSERVE_BINS counts (PERCENTILE: x over [lo, hi];
                      * ENTROPY: |x| over [0, max(|lo|, |hi|)], exact zeros left
                      * out), or NULL */
} RtObserver;

/* "minmax", "percentile", "entropy"; rt_observe_kind_parse: false if none */
const char *rt_observe_kind_name(RtObserveKind k);
bool rt_observe_kind_parse(const char *name, RtObserveKind *out);

void rt_observer_init(RtObserver *o, RtObserveKind kind, double percentile);
void rt_observer_fini(RtObserver *o);
/* whether the kind needs pass 2 (a histogram) */
bool rt_observer_two_pass(const RtObserver *o);
void rt_observe_minmax(RtObserver *o, const float *x, int64_t n);    /* pass 1 */
bool rt_observe_histogram(RtObserver *o, const float *x, int64_t n); /* pass 2; false: OOM */
/* The range the observer chooses (after its passes); not yet widened to contain 0. */
void rt_observer_range(const RtObserver *o, double *lo, double *hi);
/* TensorRT's entropy calibration: the bin count i in [levels, n] of a histogram of |x| whose
 * clipped distribution (bins past i folded into bin i - 1) has the least KL divergence from
 * its quantization to `levels` levels; the threshold is i bin widths. */
int rt_entropy_threshold_bins(const int64_t *hist, int n, int levels);

/* ---- TFLite's parameter rules (the oracle's functions of the same names) ---- */

/* An activation range -> scale, zero point (int8 [-128, 127]): the range widened to contain 0,
 * scale = float32((hi - lo) / 255), the zero point where real 0 lands, rounded half away and
 * clamped. false with why set on a non-finite or empty (all-zero) range. */
bool rt_quant_choose_params(double lo, double hi, float *scale, int32_t *zp, const char **why);
/* Symmetric weight scales: max|w| / 127 over each channel (a channel of zeros gets scale 1).
 * w is [outer, channels, inner] in C order (dense [I, O]: outer I, inner 1; conv
 * [O, C, kh, kw]: outer 1, inner C*kh*kw); per_channel false: one scale, in scales[0]. */
void rt_quant_weight_scales(const float *w, int64_t outer, int64_t channels, int64_t inner,
                            bool per_channel, float *scales);
/* the same for weights in [-wmax, wmax]: amax / float32(wmax) (63: 7-bit, --reduce-range) */
void rt_quant_weight_scales_max(const float *w, int64_t outer, int64_t channels, int64_t inner,
                                bool per_channel, int32_t wmax, float *scales);
/* real >= 0 -> (M, shift), real ~ M * 2^(shift - 31), M in [2^30, 2^31) or 0 (TFLite's
 * QuantizeMultiplier: frexp, round half away, tiny values flushed to 0). false if real is
 * negative, not finite, or needs shift > 30. */
bool rt_quant_multiplier(double real, int32_t *m, int32_t *shift);
/* float -> int8 by the contract: clamp(round_half_away(x / scale) + zp, qmin, qmax), the
 * division in float32 */
int32_t rt_quant_value(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax);
/* bias -> int32 at scale in_scale * w_scale (in double), rounded half away; false if it
 * leaves int32 */
bool rt_quant_bias(double b, float in_scale, float w_scale, int32_t *out);

#endif
