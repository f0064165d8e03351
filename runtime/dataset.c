/* runtime/dataset.c — the named dataset `fashion-mnist[=DIR]`.
 *
 * Reads one split's two IDX files (plain or .gz) from DIR (default: Debian's
 * dataset-fashion-mnist location), checks that images and labels agree, and adds the arrays
 * "x" (f32 [rows, cols] per sample, pixels scaled to [0, 1]) and "label" (i32 class ids).
 */
#include "data.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Finds DIR/base or DIR/base.gz. */
static bool find_file(const char *dir, const char *base, char *out, size_t size, Diag *d) {
  snprintf(out, size, "%s/%s", dir, base);
  if (access(out, R_OK) == 0) return true;
  snprintf(out, size, "%s/%s.gz", dir, base);
  if (access(out, R_OK) == 0) return true;
  diag_error(d, (SrcLoc){0},
             "dataset file '%s/%s' (or .gz) not found; install Debian's dataset-fashion-mnist "
             "or pass --data fashion-mnist=DIR",
             dir, base);
  return false;
}

/* moves t (owned) into ds as array name, per-sample shape = t's dims after the first */
static bool add_owned(lathe_dataset *ds, const char *name, const char *file, Tensor *t, Diag *d) {
  RtArray a = {.dtype = t->dtype, .n = t->shape.dim[0], .per = 1, .owned = *t};
  memset(t, 0, sizeof *t);
  a.sample.rank = a.owned.shape.rank - 1;
  for (int k = 1; k < a.owned.shape.rank; k++)
    a.sample.dim[k - 1] = a.owned.shape.dim[k], a.per *= a.owned.shape.dim[k];
  a.row_bytes = (size_t)a.per * dtype_size(a.dtype);
  a.data = a.owned.data;
  a.name = strdup(name);
  a.file = strdup(file);
  if (!a.name || !a.file) {
    rt_array_fini(&a);
    return false;
  }
  return rt_data_add(ds, &a, d);
}

static bool load_split(lathe_dataset *ds, const char *dir, const char *prefix, Diag *d) {
  char ipath[4096], lpath[4096], base[128];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
  if (!find_file(dir, base, ipath, sizeof ipath, d)) return false;
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
  if (!find_file(dir, base, lpath, sizeof lpath, d)) return false;
  Tensor img = {0}, lab = {0}, x = {0}, y = {0};
  bool ok = rt_idx_read(ipath, &img, d) && rt_idx_read(lpath, &lab, d);
  if (ok && (img.shape.rank != 3 || lab.shape.rank != 1)) {
    diag_error(d, (SrcLoc){0}, "%s: expected images [n, rows, cols] and labels [n]", ipath);
    ok = false;
  }
  if (ok && img.shape.dim[0] != lab.shape.dim[0]) {
    diag_error(d, (SrcLoc){0}, "%s has %lld images but %s has %lld labels", ipath,
               (long long)img.shape.dim[0], lpath, (long long)lab.shape.dim[0]);
    ok = false;
  }
  if (ok) {
    int64_t n = img.shape.dim[0], per = img.shape.dim[1] * img.shape.dim[2];
    ok = tensor_alloc(&x, DT_F32, &img.shape) && tensor_alloc(&y, DT_I32, &lab.shape);
    const uint8_t *px = img.data, *lb = lab.data;
    float *fx = x.data;
    int32_t *il = y.data;
    for (int64_t i = 0; ok && i < n * per; i++)
      fx[i] = (float)px[i] / 255.0f;
    for (int64_t i = 0; ok && i < n; i++)
      il[i] = lb[i];
    ds->store->image_h = img.shape.dim[1];
    ds->store->image_w = img.shape.dim[2];
  }
  ok = ok && add_owned(ds, "x", ipath, &x, d) && add_owned(ds, "label", lpath, &y, d);
  tensor_free(&img), tensor_free(&lab), tensor_free(&x), tensor_free(&y);
  return ok;
}

bool rt_data_read_fashion_mnist(lathe_dataset *ds, const char *spec, bool test_split, Diag *d) {
  const char *dir = spec[13] == '=' ? spec + 14 : FASHION_MNIST_DIR;
  return load_split(ds, dir, test_split ? "t10k" : "train", d);
}
