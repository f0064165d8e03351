/* tests/fuzz/fuzz_image.c — libFuzzer target: arbitrary bytes as the one image of an
 * ImageFolder dataset (runtime/data_image.c: libpng's simplified API or libjpeg, conversion
 * to gray or RGB, bilinear resize, the dataset's arrays).
 *
 * The first byte chooses the decoder (bit 0: .png or .jpg), the channels (bit 1: gray or
 * RGB) and whether a target size is given (bits 2-3: none, 1x1, 7x5, 64x64); the rest is
 * the file, written to one per-process folder DIR/c/img.EXT and read by path as the CLI
 * does. Properties checked by the sanitizers: no crash, no undefined behaviour, no leak, no
 * allocation driven by a header beyond the reader's limits; every rejection leaves an error
 * in the Diag; an accepted folder has one sample of the requested shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_dir[4096], fuzz_sub[4200], fuzz_png[4300], fuzz_jpg[4300];

static void remove_fuzz_dir(void) {
  unlink(fuzz_png), unlink(fuzz_jpg), rmdir(fuzz_sub), rmdir(fuzz_dir);
}

static void make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(fuzz_dir, sizeof fuzz_dir, "%s/lathe-fuzz-image-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(fuzz_dir)) abort();
  snprintf(fuzz_sub, sizeof fuzz_sub, "%s/c", fuzz_dir);
  if (mkdir(fuzz_sub, 0700) != 0) abort();
  snprintf(fuzz_png, sizeof fuzz_png, "%s/img.png", fuzz_sub);
  snprintf(fuzz_jpg, sizeof fuzz_jpg, "%s/img.jpg", fuzz_sub);
  atexit(remove_fuzz_dir);
}

static void write_image(const char *path, const uint8_t *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (!fuzz_dir[0]) make_dir();
  static const int64_t sizes[4][2] = {{0, 0}, {1, 1}, {7, 5}, {64, 64}};
  uint8_t mode = data[0];
  bool png = mode & 1;
  unlink(png ? fuzz_jpg : fuzz_png); /* the folder holds exactly one image */
  write_image(png ? fuzz_png : fuzz_jpg, data + 1, size - 1);
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.image_channels = mode & 2 ? 3 : 1;
  o.image_h = sizes[(mode >> 2) & 3][0], o.image_w = sizes[(mode >> 2) & 3][1];
  Diag d;
  diag_init(&d);
  lathe_dataset *ds = rt_data_new(fuzz_dir);
  if (!ds) abort();
  bool ok = rt_data_read_image_folder(ds, fuzz_dir, &o, &d);
  if (!ok && d.n_errors == 0) abort(); /* a rejection must say why */
  if (ok && (ds->n != 1 || ds->store->n_arrays != 2)) abort();
  if (ok && o.image_h && ds->store->arrays[0].per != o.image_channels * o.image_h * o.image_w)
    abort();
  lathe_dataset_free(ds);
  diag_fini(&d);
  return 0;
}
