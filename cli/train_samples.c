/* cli/train_samples.c — `lathe train --samples DIR`: after each epoch, runs the evaluate
 * entry on the first test batch and writes DIR/epoch<k>.png, a grid of the first image-shaped
 * output (per-sample size rows*cols of the dataset) — reconstructions of a VAE, samples of a
 * GAN. When the samples input has the same size, rows of inputs alternate with rows of
 * outputs. Every further image-shaped output k gets its own grid, DIR/epoch<k>_<output>.png,
 * without input rows (a VAE's samples decoded from the prior). Outputs with negative values
 * (tanh) are drawn from [-1, 1], others from [0, 1].
 */
#include "cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_COLS = 8, GRID_MAX = 32 };

static int64_t per_sample(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int k = 1; k < t->rank; k++)
    n *= t->shape[k];
  return n;
}

static double elem(const void *data, bool f64, int64_t i) {
  return f64 ? ((const double *)data)[i] : ((const float *)data)[i];
}

/* the first image-shaped output argument at index >= from, or -1 */
static int find_image_output(const lathe_entry_info *e, int64_t px, int from) {
  for (int k = from; k < e->n_args; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    if (e->args[k].role == LATHE_ARG_OUTPUT && t->rank >= 2 &&
        (t->dtype == LATHE_F32 || t->dtype == LATHE_F64) && per_sample(t) == px)
      return k;
  }
  return -1;
}

/* copies image i of data (px values) into dst scaled to [0, 1] from [lo, lo + 1 or 2] */
static void put_tile(float *dst, const void *data, bool f64, int64_t i, int64_t px, bool tanh) {
  for (int64_t j = 0; j < px; j++) {
    double v = elem(data, f64, i * px + j);
    dst[j] = (float)(tanh ? (v + 1) / 2 : v);
  }
}

/* the first input argument of f (the samples), or -1 */
static int sample_arg(const RtFeed *f) {
  for (int k = 0; k < f->e->n_args; k++)
    if (f->e->args[k].role == LATHE_ARG_INPUT) return k;
  return -1;
}

static bool draw(const char *path, const RtFeed *b, const lathe_tensor_info *t, const void *out,
                 bool with_inputs, const lathe_dataset *ds, Diag *d) {
  int64_t rows = ds->store->image_h, cols = ds->store->image_w;
  int64_t px = rows * cols, n = b->batch < GRID_MAX ? b->batch : GRID_MAX;
  int xa = sample_arg(b);
  const lathe_tensor_info *xt = xa >= 0 ? b->e->args[xa].tensor : NULL;
  bool f64 = t->dtype == LATHE_F64, tanh = false;
  bool pairs = with_inputs && xt && (xt->dtype == LATHE_F32 || xt->dtype == LATHE_F64);
  for (int64_t j = 0; j < n * px; j++)
    tanh = tanh || elem(out, f64, j) < -1e-3;
  float *tiles = malloc((size_t)(2 * n * px) * sizeof *tiles);
  if (!tiles) return false;
  int64_t k = 0;
  for (int64_t r = 0; r < n; r += GRID_COLS) {
    for (int64_t i = r; pairs && i < r + GRID_COLS && i < n; i++)
      put_tile(tiles + px * k++, b->buf[xa], xt->dtype == LATHE_F64, i, px, false);
    for (int64_t i = r; i < r + GRID_COLS && i < n; i++)
      put_tile(tiles + px * k++, out, f64, i, px, tanh);
  }
  bool ok = rt_image_grid_png(path, tiles, k, rows, cols, GRID_COLS, 0.0f, 1.0f, d);
  free(tiles);
  return ok;
}

/* DIR/epoch<k>.png, or DIR/epoch<k>_<output>.png with the output name's characters other than
 * letters, digits, '-' and '.' replaced by '_' */
static void grid_path(char *path, size_t size, const char *dir, uint64_t epoch,
                      const char *output) {
  char name[256] = "";
  if (output) {
    size_t n = 0;
    name[n++] = '_';
    for (const char *c = output; *c && n < sizeof name - 1; c++)
      name[n++] = isalnum((unsigned char)*c) || *c == '-' || *c == '.' ? *c : '_';
    name[n] = '\0';
  }
  snprintf(path, size, "%s/epoch%llu%s.png", dir, (unsigned long long)epoch, name);
}

bool cli_samples_check(const lathe_entry_info *e, const lathe_dataset *ds, Diag *d) {
  int64_t rows = ds->store->image_h, cols = ds->store->image_w;
  if (rows && find_image_output(e, rows * cols, 0) >= 0) return true;
  diag_error(d, (SrcLoc){0}, "--samples: entry '%s' has no output of %s", e->name,
             rows ? "the dataset's image size" : "images (the dataset holds none)");
  return false;
}

bool cli_write_samples(const lathe_entry_info *e, CliWeights *w, const lathe_dataset *ds,
                       const char *dir, uint64_t epoch, Diag *d) {
  int64_t px = ds->store->image_h * ds->store->image_w;
  int first = px ? find_image_output(e, px, 0) : -1;
  if (first < 0) return cli_samples_check(e, ds, d);
  RtFeed b;
  bool ok = rt_feed_bind(&b, e, ds, d) && b.batch > 0;
  int64_t *index = ok ? malloc((size_t)b.batch * sizeof *index) : NULL;
  if (index) {
    for (int64_t i = 0; i < b.batch; i++)
      index[i] = i % ds->n;
    rt_feed_gather(&b, ds, index, b.batch);
    rt_feed_call(&b, w->params, w->state);
    char path[4096];
    for (int k = first; ok && k >= 0; k = find_image_output(e, px, k + 1)) {
      grid_path(path, sizeof path, dir, epoch, k == first ? NULL : e->args[k].tensor->name);
      ok = draw(path, &b, e->args[k].tensor, b.buf[k], k == first, ds, d);
    }
  }
  ok = ok && index;
  free(index);
  rt_feed_fini(&b);
  return ok;
}
