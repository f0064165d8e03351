/* runtime/dataset.c — named datasets for `lathe train` / `lathe eval`.
 *
 * `fashion-mnist[=DIR]` reads the four IDX files (plain or .gz) from DIR (default: Debian's
 * dataset-fashion-mnist location), checks that images and labels agree, and scales pixels to
 * [0, 1] as f32. Samples are stored flat: images [n, 784], labels i32 [n].
 */
#include "runtime.h"

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

static bool load_split(RtDataset *ds, const char *dir, const char *prefix, Diag *d) {
  char ipath[4096], lpath[4096], base[128];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
  if (!find_file(dir, base, ipath, sizeof ipath, d)) return false;
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
  if (!find_file(dir, base, lpath, sizeof lpath, d)) return false;
  Tensor img = {0}, lab = {0};
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
    Shape si = {2, {n, per}}, sl = {1, {n}};
    ok = tensor_alloc(&ds->images, DT_F32, &si) && tensor_alloc(&ds->labels, DT_I32, &sl);
    const uint8_t *px = img.data, *lb = lab.data;
    float *fx = ds->images.data;
    int32_t *il = ds->labels.data;
    for (int64_t i = 0; ok && i < n * per; i++) fx[i] = (float)px[i] / 255.0f;
    for (int64_t i = 0; ok && i < n; i++) il[i] = lb[i];
    ds->n = n;
    ds->sample_numel = per;
    ds->n_classes = 10;
    ds->rows = img.shape.dim[1];
    ds->cols = img.shape.dim[2];
  }
  tensor_free(&img);
  tensor_free(&lab);
  return ok;
}

bool rt_dataset_load(RtDataset *ds, const char *spec, bool train_split, Diag *d) {
  memset(ds, 0, sizeof *ds);
  const char *dir = FASHION_MNIST_DIR;
  if (strncmp(spec, "fashion-mnist", 13) == 0 && (spec[13] == '\0' || spec[13] == '=')) {
    if (spec[13] == '=') dir = spec + 14;
  } else {
    diag_error(d, (SrcLoc){0}, "unknown dataset '%s': expected fashion-mnist[=DIR]", spec);
    return false;
  }
  bool ok = load_split(ds, dir, train_split ? "train" : "t10k", d);
  if (!ok) rt_dataset_fini(ds);
  return ok;
}

void rt_dataset_fini(RtDataset *ds) {
  tensor_free(&ds->images);
  tensor_free(&ds->labels);
  memset(ds, 0, sizeof *ds);
}
