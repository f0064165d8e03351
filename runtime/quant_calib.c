/* runtime/quant_calib.c — observers and TFLite's quantization parameter rules (see
 * quant_calib.h; the oracle is tests/int8/tflite_ref.py).
 *
 * Invariants: a histogram bin b of an observer holds the values v with
 * floor((v - origin) / width) == b, clamped to the last bin (so the top value lands in it);
 * origin/width are fixed by pass 1, so pass 2 must see the same values as pass 1.
 */
#include "quant_calib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[RT_OBSERVE_COUNT] = {"minmax", "percentile", "entropy"};

const char *rt_observe_kind_name(RtObserveKind k) {
  return k < RT_OBSERVE_COUNT ? kind_names[k] : "?";
}

bool rt_observe_kind_parse(const char *name, RtObserveKind *out) {
  for (int k = 0; k < RT_OBSERVE_COUNT; k++)
    if (strcmp(kind_names[k], name) == 0) {
      *out = (RtObserveKind)k;
      return true;
    }
  return false;
}

void rt_observer_init(RtObserver *o, RtObserveKind kind, double percentile) {
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->percentile = percentile;
  o->lo = INFINITY;
  o->hi = -INFINITY;
}

void rt_observer_fini(RtObserver *o) {
  free(o->hist);
  o->hist = NULL;
}

bool rt_observer_two_pass(const RtObserver *o) {
  return o->kind != RT_OBSERVE_MINMAX;
}

void rt_observe_minmax(RtObserver *o, const float *x, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double v = x[i];
    if (!isfinite(v)) {
      o->nonfinite++;
      continue;
    }
    o->lo = v < o->lo ? v : o->lo;
    o->hi = v > o->hi ? v : o->hi;
  }
  o->count += n;
}

/* the histogram's origin and bin width */
static void hist_frame(const RtObserver *o, double *origin, double *width) {
  if (o->kind == RT_OBSERVE_ENTROPY) {
    double amax = fmax(fabs(o->lo), fabs(o->hi));
    *origin = 0;
    *width = amax / RT_OBSERVE_BINS;
  } else {
    *origin = o->lo;
    *width = (o->hi - o->lo) / RT_OBSERVE_BINS;
  }
}

bool rt_observe_histogram(RtObserver *o, const float *x, int64_t n) {
  if (!o->hist && !(o->hist = calloc(RT_OBSERVE_BINS, sizeof *o->hist))) return false;
  double origin, width;
  hist_frame(o, &origin, &width);
  for (int64_t i = 0; i < n; i++) {
    double v = o->kind == RT_OBSERVE_ENTROPY ? fabs((double)x[i]) : (double)x[i];
    /* entropy: exact zeros (half of a ReLU's outputs) are exact at any threshold; counted,
     * they outweigh the tail whose clipping the divergence is meant to judge */
    if (!isfinite(v) || (o->kind == RT_OBSERVE_ENTROPY && v == 0)) continue;
    double b = width > 0 ? floor((v - origin) / width) : 0;
    int bin = b < 0 ? 0 : b >= RT_OBSERVE_BINS ? RT_OBSERVE_BINS - 1 : (int)b;
    o->hist[bin]++;
  }
  return true;
}

/* PERCENTILE: the bin edges where the counts from each end first reach (100 - p)% */
static void percentile_range(const RtObserver *o, double *lo, double *hi) {
  double origin, width, total = 0;
  hist_frame(o, &origin, &width);
  for (int b = 0; b < RT_OBSERVE_BINS; b++)
    total += (double)o->hist[b];
  double tail = total * (100.0 - o->percentile) / 100.0, seen = 0;
  int top = RT_OBSERVE_BINS - 1, bottom = 0;
  while (top > 0 && seen + (double)o->hist[top] <= tail)
    seen += (double)o->hist[top--];
  for (seen = 0; bottom < top && seen + (double)o->hist[bottom] <= tail;)
    seen += (double)o->hist[bottom++];
  *lo = bottom == 0 ? o->lo : origin + bottom * width;
  *hi = top == RT_OBSERVE_BINS - 1 ? o->hi : origin + (top + 1) * width;
}

/* KL(P || Q) of two unnormalized distributions over n bins; INFINITY where Q misses P */
static double kl_divergence(const double *p, const double *q, int n) {
  double sp = 0, sq = 0, kl = 0;
  for (int i = 0; i < n; i++)
    sp += p[i], sq += q[i];
  for (int i = 0; i < n; i++) {
    if (p[i] == 0) continue;
    if (q[i] == 0) return INFINITY;
    kl += p[i] / sp * log((p[i] / sp) / (q[i] / sq));
  }
  return kl;
}

/* Q of TensorRT's method: hist[0, i) merged into `levels` groups (the last takes the
 * remainder), each group's count spread evenly over its nonzero bins */
static void quantized_distribution(const int64_t *hist, int i, int levels, double *q) {
  int merged = i / levels;
  for (int j = 0; j < levels; j++) {
    int start = j * merged, stop = j == levels - 1 ? i : start + merged, nonzero = 0;
    double sum = 0;
    for (int k = start; k < stop; k++)
      sum += (double)hist[k], nonzero += hist[k] != 0;
    for (int k = start; k < stop; k++)
      q[k] = hist[k] != 0 ? sum / nonzero : 0;
  }
}

int rt_entropy_threshold_bins(const int64_t *hist, int n, int levels) {
  double *p = malloc((size_t)n * sizeof *p), *q = malloc((size_t)n * sizeof *q);
  double best = INFINITY, outliers = 0;
  int best_i = n;
  if (!p || !q) {
    free(p), free(q);
    return n; /* out of memory: no clipping, the minmax range */
  }
  for (int i = n; i >= levels; i--) { /* from the top: outliers accumulate */
    for (int k = 0; k < i; k++)
      p[k] = (double)hist[k];
    if (i < n) outliers += (double)hist[i];
    p[i - 1] += outliers;
    quantized_distribution(hist, i, levels, q);
    double kl = kl_divergence(p, q, i);
    if (kl <= best) best = kl, best_i = i; /* ties: the smaller threshold, as TensorRT's scan */
  }
  free(p), free(q);
  return best_i;
}

void rt_observer_range(const RtObserver *o, double *lo, double *hi) {
  *lo = o->lo, *hi = o->hi;
  if (o->count == o->nonfinite || !o->hist) return; /* nothing seen, or minmax */
  if (o->kind == RT_OBSERVE_PERCENTILE) {
    percentile_range(o, lo, hi);
  } else if (o->kind == RT_OBSERVE_ENTROPY) {
    /* all of int8's 255 steps cover [0, T] of a non-negative tensor, half of them otherwise */
    int levels = o->lo >= 0 ? 255 : 128;
    double origin, width;
    hist_frame(o, &origin, &width);
    double t = rt_entropy_threshold_bins(o->hist, RT_OBSERVE_BINS, levels) * width;
    *lo = fmax(o->lo, -t);
    *hi = fmin(o->hi, t);
  }
}

/* ---- TFLite's rules ------------------------------------------------------------------------ */

/* the oracle's _round_half_away (std::round as floor(|v| + 0.5)), for the zero point */
static double round_half_away_floor(double v) {
  return v < 0 ? -floor(-v + 0.5) : floor(v + 0.5);
}

/* the oracle's round_half_away: exact in v's precision (no 0.5 is added) */
static double round_half_away(double v) {
  double t = trunc(v);
  return fabs(v - t) >= 0.5 ? t + (v < 0 ? -1 : 1) : t;
}

bool rt_quant_choose_params(double lo, double hi, float *scale, int32_t *zp, const char **why) {
  lo = fmin(lo, 0.0), hi = fmax(hi, 0.0);
  if (!isfinite(lo) || !isfinite(hi)) {
    *why = "non-finite range";
    return false;
  }
  if (hi == lo) {
    *why = "degenerate range: every observed value is 0";
    return false;
  }
  double s = (hi - lo) / 255.0;
  double z = round_half_away_floor(-128.0 - lo / s);
  *zp = (int32_t)(z < -128 ? -128 : z > 127 ? 127 : z);
  *scale = (float)s;
  if (!(*scale > 0)) {
    *why = "range too small for a float32 scale";
    return false;
  }
  return true;
}

void rt_quant_weight_scales(const float *w, int64_t outer, int64_t channels, int64_t inner,
                            bool per_channel, float *scales) {
  rt_quant_weight_scales_max(w, outer, channels, inner, per_channel, 127, scales);
}

void rt_quant_weight_scales_max(const float *w, int64_t outer, int64_t channels, int64_t inner,
                                bool per_channel, int32_t wmax, float *scales) {
  int64_t n_scales = per_channel ? channels : 1;
  for (int64_t c = 0; c < n_scales; c++)
    scales[c] = 0;
  for (int64_t a = 0; a < outer; a++)
    for (int64_t c = 0; c < channels; c++)
      for (int64_t b = 0; b < inner; b++) {
        float v = fabsf(w[(a * channels + c) * inner + b]);
        float *s = &scales[per_channel ? c : 0];
        *s = v > *s ? v : *s;
      }
  for (int64_t c = 0; c < n_scales; c++) /* amax / float32(wmax), in float32 */
    scales[c] = scales[c] > 0 ? scales[c] / (float)wmax : 1.0f;
}

bool rt_quant_multiplier(double real, int32_t *m, int32_t *shift) {
  *m = 0, *shift = 0;
  if (!(real >= 0) || !isfinite(real)) return false;
  if (real == 0) return true;
  int e;
  double q = frexp(real, &e);
  double fixed = round_half_away(q * 2147483648.0);
  if (fixed == 2147483648.0) fixed /= 2, e++;
  if (e < -31) return true; /* flushed to zero */
  if (e > 30) return false;
  *m = (int32_t)fixed, *shift = e;
  return true;
}

int32_t rt_quant_value(float x, float scale, int32_t zp, int32_t qmin, int32_t qmax) {
  float r = x / scale;
  if (isnan(r)) return qmin;
  double v = round_half_away((double)r); /* exact: r is a float32, |r| < 2^128 */
  v = v < -1099511627776.0 ? -1099511627776.0 : v > 1099511627776.0 ? 1099511627776.0 : v;
  v += zp;
  return (int32_t)(v < qmin ? qmin : v > qmax ? qmax : v);
}

bool rt_quant_bias(double b, float in_scale, float w_scale, int32_t *out) {
  double v = round_half_away(b / ((double)in_scale * (double)w_scale));
  if (!(v >= -2147483648.0 && v <= 2147483647.0)) return false;
  *out = (int32_t)v;
  return true;
}
