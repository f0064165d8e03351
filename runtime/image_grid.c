/* runtime/image_grid.c — writes a batch of grayscale images as one PNG grid (8-bit gray,
 * zlib-compressed IDAT, 2-pixel black gutters).
 *
 * Pixel values map linearly from [lo, hi] to 0..255 and are clamped; a NaN becomes 0.
 * Invariant: the file is either written completely or an error is reported in d.
 */
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { GRID_GAP = 2 };

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static bool write_chunk(FILE *f, const char *type, const unsigned char *data, size_t len) {
  unsigned char head[8];
  put_be32(head, (uint32_t)len);
  memcpy(head + 4, type, 4);
  uLong crc = crc32(0L, head + 4, 4);
  if (len) crc = crc32(crc, data, (uInt)len);
  unsigned char tail[4];
  put_be32(tail, (uint32_t)crc);
  return fwrite(head, 1, 8, f) == 8 && (len == 0 || fwrite(data, 1, len, f) == len) &&
         fwrite(tail, 1, 4, f) == 4;
}

static unsigned char to_byte(float v, float lo, float hi) {
  if (!(v == v)) return 0;
  float t = (v - lo) / (hi - lo);
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  return (unsigned char)lrintf(t * 255.0f);
}

/* raw scanlines (filter byte 0 + pixels) of the grid */
static unsigned char *render(const float *pix, int64_t n, int64_t h, int64_t w, int64_t cols,
                             float lo, float hi, int64_t *gw, int64_t *gh) {
  int64_t rows = (n + cols - 1) / cols;
  *gw = cols * (w + GRID_GAP) + GRID_GAP, *gh = rows * (h + GRID_GAP) + GRID_GAP;
  unsigned char *raw = calloc((size_t)((*gw + 1) * *gh), 1);
  if (!raw) return NULL;
  for (int64_t k = 0; k < n; k++) {
    int64_t x0 = GRID_GAP + (k % cols) * (w + GRID_GAP);
    int64_t y0 = GRID_GAP + (k / cols) * (h + GRID_GAP);
    for (int64_t y = 0; y < h; y++)
      for (int64_t x = 0; x < w; x++)
        raw[(y0 + y) * (*gw + 1) + 1 + x0 + x] = to_byte(pix[(k * h + y) * w + x], lo, hi);
  }
  return raw;
}

bool rt_image_grid_png(const char *path, const float *pix, int64_t n, int64_t h, int64_t w,
                       int64_t cols, float lo, float hi, Diag *d) {
  if (n < 1 || h < 1 || w < 1 || cols < 1 || !(hi > lo) || h * w > (1 << 24) || n > 65536) {
    diag_error(d, (SrcLoc){0}, "%s: cannot draw %lld images of %lldx%lld as a grid", path,
               (long long)n, (long long)h, (long long)w);
    return false;
  }
  if (cols > n) cols = n;
  int64_t gw = 0, gh = 0;
  unsigned char *raw = render(pix, n, h, w, cols, lo, hi, &gw, &gh);
  uLongf zlen = raw ? compressBound((uLong)((gw + 1) * gh)) : 0;
  unsigned char *z = raw ? malloc(zlen) : NULL;
  bool ok = z && compress2(z, &zlen, raw, (uLong)((gw + 1) * gh), 6) == Z_OK;
  free(raw);
  FILE *f = ok ? fopen(path, "wb") : NULL;
  if (ok && !f) diag_error(d, (SrcLoc){0}, "%s: cannot open for writing", path);
  unsigned char ihdr[13] = {0};
  put_be32(ihdr, (uint32_t)gw), put_be32(ihdr + 4, (uint32_t)gh);
  ihdr[8] = 8; /* bit depth; color type 0 = gray; no interlace */
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  bool wr = f && fwrite(sig, 1, 8, f) == 8 && write_chunk(f, "IHDR", ihdr, 13) &&
            write_chunk(f, "IDAT", z, zlen) && write_chunk(f, "IEND", NULL, 0);
  if (f && fclose(f) != 0) wr = false;
  if (f && !wr) diag_error(d, (SrcLoc){0}, "%s: write failed", path);
  if (!z || (!ok && z)) diag_error(d, (SrcLoc){0}, "%s: out of memory compressing the grid", path);
  free(z);
  return wr;
}
