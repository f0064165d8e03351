/* runtime/idx.c — IDX dataset files (the MNIST / Fashion-MNIST format), plain or gzip.
 *
 * Layout: magic 0x00 0x00 <type> <ndims>, then ndims big-endian u32 dims, then the data in
 * C order. Only type 0x08 (unsigned byte) is supported: 0x00000801 is a label file [n],
 * 0x00000803 an image file [n, rows, cols]. zlib's gzread reads both plain and gzip files.
 *
 * Invariants: the result is a u8 tensor whose shape is the file's dims; a wrong magic, an
 * unsupported type, a zero dim, too many dims, a truncated or corrupt file and trailing bytes
 * each give an error naming the file. Since a gzip file's uncompressed size is unknown until
 * it is read, the data goes through a buffer that grows as bytes actually arrive, so a
 * header claiming huge dims cannot make us allocate more than the file really holds.
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IDX_TYPE_U8 = 0x08, IDX_CHUNK = 1 << 20 };

/* Reads exactly n bytes; returns the count read (< n at EOF), or -1 on error. */
static long long gz_read_full(gzFile f, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    size_t want = n - got > (size_t)1 << 30 ? (size_t)1 << 30 : n - got;
    int r = gzread(f, (char *)buf + got, (unsigned)want);
    if (r < 0) return -1;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long long)got;
}

static void gz_fail(gzFile f, const char *path, const char *what, Diag *d) {
  int code = 0;
  const char *msg = gzerror(f, &code);
  if (code == Z_ERRNO) msg = strerror(errno);
  rt_error(d, "%s: %s: %s", path, what,
           code != Z_OK && msg && *msg ? msg : "unexpected end of file");
}

static bool read_idx_header(gzFile f, const char *path, Shape *s, Diag *d) {
  unsigned char magic[4];
  long long r = gz_read_full(f, magic, 4);
  if (r != 4 || magic[0] != 0 || magic[1] != 0) {
    if (r < 0)
      gz_fail(f, path, "cannot read", d);
    else
      rt_error(d,
               "%s: not an IDX file (bad magic; expected 0x00000801 labels or "
               "0x00000803 images)",
               path);
    return false;
  }
  if (magic[2] != IDX_TYPE_U8) {
    rt_error(d, "%s: unsupported IDX element type 0x%02x (only 0x08, unsigned byte)", path,
             magic[2]);
    return false;
  }
  if (magic[3] < 1 || magic[3] > IR_MAX_RANK) {
    rt_error(d, "%s: IDX file has %d dimensions (expected 1 to %d)", path, magic[3], IR_MAX_RANK);
    return false;
  }
  memset(s, 0, sizeof *s);
  s->rank = magic[3];
  unsigned char dims[4 * IR_MAX_RANK];
  size_t need = 4 * (size_t)s->rank;
  r = gz_read_full(f, dims, need);
  if (r != (long long)need) {
    gz_fail(f, path, "truncated IDX header", d);
    return false;
  }
  for (int i = 0; i < s->rank; i++) {
    const unsigned char *p = dims + 4 * i;
    s->dim[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
  }
  return true;
}

/* Reads exactly `bytes` data bytes into a growing buffer, then checks nothing follows. */
static unsigned char *read_idx_data(gzFile f, const char *path, size_t bytes, Diag *d) {
  size_t cap = bytes < IDX_CHUNK ? bytes : IDX_CHUNK, got = 0;
  unsigned char *buf = malloc(cap ? cap : 1);
  while (buf && got < bytes) {
    if (got == cap) {
      size_t ncap = cap > bytes / 2 ? bytes : cap * 2;
      unsigned char *b = realloc(buf, ncap);
      if (!b) break;
      buf = b;
      cap = ncap;
    }
    long long r = gz_read_full(f, buf + got, cap - got);
    if (r <= 0) {
      if (r < 0)
        gz_fail(f, path, "cannot read the data", d);
      else
        rt_error(d, "%s: truncated IDX data: the dims need %zu bytes but the file has %zu", path,
                 bytes, got);
      free(buf);
      return NULL;
    }
    got += (size_t)r;
  }
  if (!buf || got < bytes) {
    rt_error(d, "%s: out of memory reading %zu bytes", path, bytes);
    free(buf);
    return NULL;
  }
  unsigned char extra;
  long long r = gz_read_full(f, &extra, 1);
  int code = Z_OK;
  if (r == 0) gzerror(f, &code); /* a gzip stream cut before its trailer: Z_BUF_ERROR */
  if (r != 0 || code != Z_OK) {
    if (r < 0 || code != Z_OK)
      gz_fail(f, path, "cannot read the data", d);
    else
      rt_error(d, "%s: IDX file has bytes after the %zu the dims describe", path, bytes);
    free(buf);
    return NULL;
  }
  return buf;
}

bool rt_idx_read(const char *path, Tensor *out, Diag *d) {
  memset(out, 0, sizeof *out);
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f) {
    rt_error(d, "cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
    return false;
  }
  Shape s;
  int64_t numel = 0;
  size_t bytes = 0;
  unsigned char *data = NULL;
  bool ok = read_idx_header(f, path, &s, d) && rt_shape_bytes(path, &s, 1, &numel, &bytes, d) &&
            (data = read_idx_data(f, path, bytes, d)) != NULL;
  gzclose(f);
  if (ok && !tensor_alloc(out, DT_U8, &s)) {
    rt_error(d, "%s: out of memory for %zu bytes", path, bytes);
    ok = false;
  }
  if (ok) memcpy(out->data, data, bytes);
  free(data);
  return ok;
}
