/* runtime/feed.c — feeding a dataset to a compiled entry point: binding arrays to the entry's
 * inputs by name (data.h states the rule), gathering batches with dtype conversion, image
 * augmentation, and the call itself.
 *
 * Everything a user's data can get wrong is checked when binding (dtype, per-sample size,
 * a missing array); gathering then cannot fail.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void *rt_aligned_alloc(size_t bytes) {
  size_t n = (size_t)ir_workspace_align((int64_t)(bytes ? bytes : 1));
  void *p = aligned_alloc(LATHE_WORKSPACE_ALIGN, n);
  if (p) memset(p, 0, n);
  return p;
}

static bool is_float_dt(DType t) {
  return t == DT_F32 || t == DT_F64;
}

static int64_t info_per(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int k = 1; k < t->rank; k++)
    n *= t->shape[k];
  return n;
}

static char *info_sample_str(const lathe_tensor_info *t, char *buf, size_t size) {
  Shape s = {0};
  for (int k = 1; k < t->rank; k++)
    s.dim[s.rank++] = t->shape[k];
  return shape_str(&s, buf, size);
}

/* an integer input takes a float array only when every value is a whole number */
static bool whole_numbers(const RtArray *a, const lathe_tensor_info *t, const char *entry,
                          const char *want, const char *have, Diag *d) {
  for (int64_t i = 0; i < a->n * a->per; i++) {
    double v = a->dtype == DT_F32 ? ((const float *)a->data)[i] : ((const double *)a->data)[i];
    if (v == floor(v) && fabs(v) < 2147483647.0) continue;
    rt_error(d,
             "%s: input '%s' of entry '%s' takes %s%s per sample (integers) but array '%s' "
             "has %s%s with %g at sample %lld; expected integers, or floats that are all whole "
             "numbers",
             a->file, t->name, entry, dtype_name((DType)t->dtype), want, a->name,
             dtype_name(a->dtype), have, v, (long long)(i / a->per));
    return false;
  }
  return true;
}

/* whether array a fits input t (reported if not) */
static bool fits(const RtArray *a, const lathe_tensor_info *t, const char *entry, Diag *d) {
  char want[128], have[128];
  info_sample_str(t, want, sizeof want);
  shape_str(&a->sample, have, sizeof have);
  if (info_per(t) != a->per) {
    rt_error(d,
             "%s: input '%s' of entry '%s' takes %s%s per sample (%lld values) but array "
             "'%s' has %s%s (%lld values)",
             a->file, t->name, entry, dtype_name((DType)t->dtype), want, (long long)info_per(t),
             a->name, dtype_name(a->dtype), have, (long long)a->per);
    return false;
  }
  if (!is_float_dt((DType)t->dtype) && is_float_dt(a->dtype))
    return whole_numbers(a, t, entry, want, have, d);
  return true;
}

static bool assign(RtFeed *f, const lathe_dataset *ds, Diag *d) {
  const lathe_entry_info *e = f->e;
  bool used[RT_MAX_ARGS] = {0};
  for (int k = 0; k < e->n_args; k++) {
    f->src[k] = -1;
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    int a = rt_data_find(ds, e->args[k].tensor->name);
    if (a >= 0 && a < RT_MAX_ARGS) f->src[k] = a, used[a] = true;
  }
  int next = 0, n_arrays = ds->store->n_arrays;
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_INPUT || f->src[k] >= 0) continue;
    while (next < n_arrays && used[next])
      next++;
    if (next == n_arrays) {
      char names[512] = "";
      for (int a = 0; a < n_arrays && strlen(names) < 400; a++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s'%s'", a ? ", " : "",
                 ds->store->arrays[a].name);
      rt_error(d,
               "%s: no array for input '%s' of entry '%s' (the dataset has %s; name a file "
               "after the input, e.g. %s.npy)",
               ds->source, e->args[k].tensor->name, e->name, names, e->args[k].tensor->name);
      return false;
    }
    f->src[k] = next;
    used[next] = true;
  }
  return true;
}

int rt_feed_source(const lathe_entry_info *e, int arg, const lathe_dataset *ds, Diag *d) {
  RtFeed f = {.e = e};
  return e->n_args <= RT_MAX_ARGS && assign(&f, ds, d) ? f.src[arg] : -1;
}

bool rt_feed_bind(RtFeed *f, const lathe_entry_info *e, const lathe_dataset *ds, Diag *d) {
  memset(f, 0, sizeof *f);
  f->e = e;
  f->augment_arg = -1;
  if (e->n_args > RT_MAX_ARGS) {
    rt_error(d, "entry '%s' has more than %d arguments", e->name, RT_MAX_ARGS);
    return false;
  }
  if (!assign(f, ds, d)) return false;
  for (int k = 0; k < e->n_args; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    if (e->args[k].role == LATHE_ARG_INPUT) {
      if (t->rank < 1 || (f->batch && t->shape[0] != f->batch)) {
        rt_error(d, "entry '%s': input '%s' has no batch dimension shared with the others", e->name,
                 t->name);
        return false;
      }
      f->batch = t->shape[0];
      f->n = f->batch;
      if (!fits(&ds->store->arrays[f->src[k]], t, e->name, d)) return false;
      if (f->augment_arg < 0 && is_float_dt((DType)t->dtype) && t->rank >= 3) f->augment_arg = k;
    }
    if (e->args[k].role == LATHE_ARG_BATCH) f->dynamic = true;
    if ((e->args[k].role == LATHE_ARG_INPUT || e->args[k].role == LATHE_ARG_OUTPUT) &&
        !(f->buf[k] = rt_aligned_alloc(t->bytes)))
      return false;
  }
  return (f->ws = rt_aligned_alloc(e->workspace_bytes)) != NULL;
}

void rt_feed_fini(RtFeed *f) {
  for (int k = 0; k < RT_MAX_ARGS; k++)
    free(f->buf[k]);
  free(f->ws);
  memset(f, 0, sizeof *f);
}

static double load_value(DType t, const void *p, int64_t i) {
  switch (t) {
  case DT_F32:
    return ((const float *)p)[i];
  case DT_F64:
    return ((const double *)p)[i];
  case DT_I32:
    return ((const int32_t *)p)[i];
  case DT_I64:
    return (double)((const int64_t *)p)[i];
  case DT_U8:
    return ((const uint8_t *)p)[i];
  case DT_I8:
    return ((const int8_t *)p)[i];
  default:
    return 0;
  }
}

static void store_value(int t, void *p, int64_t i, double v) {
  switch (t) {
  case LATHE_F32:
    ((float *)p)[i] = (float)v;
    break;
  case LATHE_F64:
    ((double *)p)[i] = v;
    break;
  case LATHE_I32:
    ((int32_t *)p)[i] = (int32_t)v;
    break;
  case LATHE_I64:
    ((int64_t *)p)[i] = (int64_t)v;
    break;
  case LATHE_U8:
    ((uint8_t *)p)[i] = (uint8_t)v;
    break;
  case LATHE_I8:
    ((int8_t *)p)[i] = (int8_t)v;
    break;
  default:
    break;
  }
}

void rt_feed_gather(RtFeed *f, const lathe_dataset *ds, const int64_t *index, int64_t count) {
  const lathe_entry_info *e = f->e;
  f->n = f->dynamic && count < f->batch ? count : f->batch;
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    const RtArray *a = &ds->store->arrays[f->src[k]];
    int dt = e->args[k].tensor->dtype;
    unsigned char *dst = f->buf[k];
    for (int64_t i = 0; i < f->n; i++) {
      const void *src = rt_data_at(ds, f->src[k], index[i < count ? i : i % count]);
      if ((int)a->dtype == dt) {
        memcpy(dst + (size_t)i * a->row_bytes, src, a->row_bytes);
        continue;
      }
      for (int64_t j = 0; j < a->per; j++)
        store_value(dt, dst, i * a->per + j, load_value(a->dtype, src, j));
    }
  }
}

/* one [C.., H, W] sample: shift by (dy, dx) with zeros outside, optionally mirrored */
static void move_sample(float *x, float *tmp, int64_t planes, int64_t h, int64_t w, int64_t dy,
                        int64_t dx, bool flip) {
  for (int64_t p = 0; p < planes; p++) {
    float *s = x + p * h * w;
    memcpy(tmp, s, (size_t)(h * w) * sizeof *tmp);
    for (int64_t y = 0; y < h; y++)
      for (int64_t c = 0; c < w; c++) {
        int64_t sy = y + dy, sc = (flip ? w - 1 - c : c) + dx;
        s[y * w + c] = sy >= 0 && sy < h && sc >= 0 && sc < w ? tmp[sy * w + sc] : 0.0f;
      }
  }
}

void rt_feed_augment(RtFeed *f, uint64_t *rng) {
  if (f->augment_arg < 0 || (!f->flip && !f->crop_pad)) return;
  const lathe_tensor_info *t = f->e->args[f->augment_arg].tensor;
  if (t->dtype != LATHE_F32) return;
  int64_t h = t->shape[t->rank - 2], w = t->shape[t->rank - 1], per = info_per(t);
  float *tmp = malloc((size_t)(h * w) * sizeof *tmp);
  if (!tmp) return;
  for (int64_t i = 0; i < f->batch; i++) {
    *rng = rt_mix64(*rng);
    uint64_t r = *rng;
    int64_t span = 2 * f->crop_pad + 1;
    int64_t dy = f->crop_pad ? (int64_t)(r % (uint64_t)span) - f->crop_pad : 0;
    int64_t dx = f->crop_pad ? (int64_t)((r >> 20) % (uint64_t)span) - f->crop_pad : 0;
    bool flip = f->flip && (r >> 40) & 1;
    move_sample((float *)f->buf[f->augment_arg] + i * per, tmp, per / (h * w), h, w, dy, dx, flip);
  }
  free(tmp);
}

double rt_feed_call(const RtFeed *f, void *params, void *state) {
  void *args[RT_MAX_ARGS] = {0};
  const lathe_entry_info *e = f->e;
  for (int k = 0; k < e->n_args; k++) {
    switch (e->args[k].role) {
    case LATHE_ARG_PARAMS:
      args[k] = params;
      break;
    case LATHE_ARG_STATE:
      args[k] = state;
      break;
    case LATHE_ARG_WORKSPACE:
      args[k] = f->ws;
      break;
    case LATHE_ARG_BATCH:
      args[k] = (void *)&f->n;
      break;
    default:
      args[k] = f->buf[k];
      break;
    }
  }
  double ret = 0;
  e->call(args, &ret);
  return ret;
}
