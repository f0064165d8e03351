/* runtime/npy.c — NumPy .npy files (format versions 1.0, 2.0 and 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.0, u32 LE for 2.0/3.0),
 * then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a '\n', then the raw C-order data.
 *
 * Supported dtypes: '<f4' '<f8' '<i4' '<i8' '|u1' (and the '=' native / single-byte
 * spellings of them). Reading rejects, with a message naming the file: a wrong magic or
 * version, a truncated header, a header that is not the expected dict (unknown, missing or
 * duplicated keys, bad literals), Fortran order, big-endian or unsupported dtypes, shapes
 * with zero dims, too many dims or an overflowing element count, and data shorter or longer
 * than the shape says. The header is parsed from a bounded, NUL-terminated copy; nothing is
 * allocated from the shape until the file size has confirmed it. Writing always uses version
 * 1.0 (a rank-8 header is a few hundred bytes, far below its 64 KiB limit) and is atomic.
 */
#include "data.h"
#include "rt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { NPY_MAX_HEADER = 1 << 20 }; /* generous: numpy writes < 200 bytes for rank <= 8 */

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header dict parser ----------------------------------------------------------------- */

typedef struct NpyParser {
  const char *p;    /* cursor in the NUL-terminated header */
  const char *path; /* for messages */
  Diag *d;
} NpyParser;

typedef struct NpyHeader {
  char descr[16];
  bool fortran_order;
  Shape shape;
  unsigned seen; /* bit 0 descr, 1 fortran_order, 2 shape */
} NpyHeader;

static void skip_space(NpyParser *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
    ps->p++;
}

static bool expect_char(NpyParser *ps, char c, const char *what) {
  skip_space(ps);
  if (*ps->p != c) {
    rt_error(ps->d, "%s: malformed .npy header: expected '%c' %s", ps->path, c, what);
    return false;
  }
  ps->p++;
  return true;
}

/* 'text' or "text" without escapes, into out[size] */
static bool parse_string(NpyParser *ps, char *out, size_t size, const char *what) {
  skip_space(ps);
  char q = *ps->p;
  if (q != '\'' && q != '"') {
    rt_error(ps->d, "%s: malformed .npy header: expected a quoted string for %s", ps->path, what);
    return false;
  }
  const char *s = ++ps->p;
  while (*ps->p && *ps->p != q && *ps->p != '\\')
    ps->p++;
  size_t n = (size_t)(ps->p - s);
  if (*ps->p != q || n >= size) {
    rt_error(ps->d, "%s: malformed .npy header: bad or overlong string for %s", ps->path, what);
    return false;
  }
  memcpy(out, s, n);
  out[n] = '\0';
  ps->p++;
  return true;
}

/* a non-negative decimal integer (Python 2 files may add an 'L') */
static bool parse_dim(NpyParser *ps, int64_t *out) {
  skip_space(ps);
  if (!isdigit((unsigned char)*ps->p)) {
    rt_error(ps->d, "%s: malformed .npy header: expected an integer in 'shape'", ps->path);
    return false;
  }
  int64_t v = 0;
  while (isdigit((unsigned char)*ps->p)) {
    int digit = *ps->p++ - '0';
    if (v > (INT64_MAX - digit) / 10) {
      rt_error(ps->d, "%s: .npy shape dimension does not fit in 64 bits", ps->path);
      return false;
    }
    v = v * 10 + digit;
  }
  if (*ps->p == 'L') ps->p++;
  *out = v;
  return true;
}

/* shape := '(' (int (',' int)* ','?)? ')' */
static bool parse_shape(NpyParser *ps, Shape *s) {
  memset(s, 0, sizeof *s);
  if (!expect_char(ps, '(', "to open the 'shape' tuple")) return false;
  for (;;) {
    skip_space(ps);
    if (*ps->p == ')') break;
    if (s->rank == IR_MAX_RANK) {
      rt_error(ps->d, "%s: .npy shape has more than %d dimensions", ps->path, IR_MAX_RANK);
      return false;
    }
    if (!parse_dim(ps, &s->dim[s->rank++])) return false;
    skip_space(ps);
    if (*ps->p == ',')
      ps->p++;
    else if (*ps->p != ')')
      return expect_char(ps, ')', "to close the 'shape' tuple");
  }
  ps->p++;
  return true;
}

static bool parse_bool(NpyParser *ps, bool *out) {
  skip_space(ps);
  if (strncmp(ps->p, "True", 4) == 0)
    *out = true;
  else if (strncmp(ps->p, "False", 5) == 0)
    *out = false;
  else {
    rt_error(ps->d, "%s: malformed .npy header: 'fortran_order' must be True or False", ps->path);
    return false;
  }
  ps->p += *out ? 4 : 5;
  return true;
}

static bool parse_entry(NpyParser *ps, NpyHeader *h) {
  char key[32];
  if (!parse_string(ps, key, sizeof key, "a header key")) return false;
  if (!expect_char(ps, ':', "after a header key")) return false;
  unsigned bit = strcmp(key, "descr") == 0           ? 1u
                 : strcmp(key, "fortran_order") == 0 ? 2u
                 : strcmp(key, "shape") == 0         ? 4u
                                                     : 0u;
  if (bit == 0 || (h->seen & bit)) {
    rt_error(ps->d,
             "%s: malformed .npy header: %s key '%s' (expected descr, fortran_order, "
             "shape once each)",
             ps->path, bit ? "duplicate" : "unexpected", key);
    return false;
  }
  h->seen |= bit;
  if (bit == 1) {
    skip_space(ps);
    if (*ps->p == '[') {
      rt_error(ps->d, "%s: structured (record) dtypes are not supported", ps->path);
      return false;
    }
    return parse_string(ps, h->descr, sizeof h->descr, "'descr'");
  }
  if (bit == 2) return parse_bool(ps, &h->fortran_order);
  return parse_shape(ps, &h->shape);
}

/* dict := '{' (entry (',' entry)* ','?)? '}' followed only by spaces */
static bool parse_header(NpyParser *ps, NpyHeader *h) {
  memset(h, 0, sizeof *h);
  if (!expect_char(ps, '{', "at the start of the header dict")) return false;
  for (;;) {
    skip_space(ps);
    if (*ps->p == '}') break;
    if (!parse_entry(ps, h)) return false;
    skip_space(ps);
    if (*ps->p == ',')
      ps->p++;
    else if (*ps->p != '}')
      return expect_char(ps, '}', "to close the header dict");
  }
  ps->p++;
  skip_space(ps);
  if (*ps->p != '\0') {
    rt_error(ps->d, "%s: malformed .npy header: unexpected text after the dict", ps->path);
    return false;
  }
  if (h->seen != 7u) {
    rt_error(ps->d, "%s: malformed .npy header: missing key '%s'", ps->path,
             !(h->seen & 1u)   ? "descr"
             : !(h->seen & 2u) ? "fortran_order"
                               : "shape");
    return false;
  }
  return true;
}

/* ---- dtypes ------------------------------------------------------------------------------ */

static const char *npy_descr(DType t) {
  switch (t) {
  case DT_F32:
    return "<f4";
  case DT_F64:
    return "<f8";
  case DT_I32:
    return "<i4";
  case DT_I64:
    return "<i8";
  case DT_U8:
    return "|u1";
  case DT_I8:
    return "|i1";
  case DT_COUNT:
    break;
  }
  return NULL;
}

static bool descr_dtype(const char *path, const char *descr, DType *out, Diag *d) {
  char order = descr[0];
  const char *code = descr + (order == '<' || order == '>' || order == '|' || order == '=');
  static const struct {
    const char *code;
    DType t;
  } table[] = {{"f4", DT_F32}, {"f8", DT_F64}, {"i4", DT_I32}, {"i8", DT_I64}, {"u1", DT_U8}, {"i1", DT_I8}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(code, table[i].code) != 0) continue;
    if (order == '>' && dtype_size(table[i].t) > 1) {
      rt_error(d,
               "%s: big-endian dtype '%s' is not supported; save it little-endian, e.g. "
               "arr.astype('<%s')",
               path, descr, code);
      return false;
    }
    *out = table[i].t;
    return true;
  }
  rt_error(d, "%s: unsupported .npy dtype '%s': expected one of <f4 <f8 <i4 <i8 |u1", path, descr);
  return false;
}

/* ---- reading ----------------------------------------------------------------------------- */

static uint32_t read_le(const unsigned char *p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; i--)
    v = v << 8 | p[i];
  return v;
}

/* Reads magic, version and header; leaves f at the data. *data_size = bytes after header. */
static bool read_header(FILE *f, const char *path, uint64_t file_size, NpyHeader *h,
                        uint64_t *data_size, Diag *d) {
  unsigned char pre[12];
  if (file_size < 10 || fread(pre, 1, 10, f) != 10 || memcmp(pre, npy_magic, 6) != 0) {
    rt_error(d, "%s: not a .npy file (missing the \\x93NUMPY magic)", path);
    return false;
  }
  int major = pre[6], minor = pre[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    rt_error(d, "%s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)", path, major,
             minor);
    return false;
  }
  uint64_t start = major == 1 ? 10 : 12;
  if (major != 1 && (file_size < 12 || fread(pre + 10, 1, 2, f) != 2)) {
    rt_error(d, "%s: truncated .npy header", path);
    return false;
  }
  uint32_t hlen = major == 1 ? read_le(pre + 8, 2) : read_le(pre + 8, 4);
  if (hlen > NPY_MAX_HEADER || start + hlen > file_size) {
    rt_error(d,
             "%s: truncated or oversized .npy header (%u bytes declared, file is %llu "
             "bytes)",
             path, hlen, (unsigned long long)file_size);
    return false;
  }
  char *text = malloc((size_t)hlen + 1);
  bool ok = text && fread(text, 1, hlen, f) == hlen;
  if (!ok) rt_error(d, "%s: cannot read the .npy header", path);
  if (ok && memchr(text, '\0', hlen)) {
    rt_error(d, "%s: malformed .npy header: NUL byte in the header text", path);
    ok = false;
  }
  if (ok) {
    text[hlen] = '\0';
    NpyParser ps = {text, path, d};
    ok = parse_header(&ps, h);
  }
  free(text);
  *data_size = file_size - start - hlen;
  return ok;
}

static bool read_body(FILE *f, const char *path, const NpyHeader *h, uint64_t data_size,
                      Tensor *out, Diag *d) {
  DType t;
  if (!descr_dtype(path, h->descr, &t, d)) return false;
  if (h->fortran_order) {
    rt_error(d,
             "%s: Fortran-order arrays are not supported; save a C-order copy "
             "(np.ascontiguousarray)",
             path);
    return false;
  }
  int64_t numel;
  size_t bytes;
  if (!rt_shape_bytes(path, &h->shape, dtype_size(t), &numel, &bytes, d)) return false;
  if (data_size != bytes) {
    char sbuf[200];
    rt_error(d, "%s: the shape %s of dtype %s needs %zu data bytes but the file has %llu%s", path,
             shape_str(&h->shape, sbuf, sizeof sbuf), dtype_name(t), bytes,
             (unsigned long long)data_size, data_size < bytes ? " (truncated)" : "");
    return false;
  }
  if (!tensor_alloc(out, t, &h->shape)) {
    rt_error(d, "%s: out of memory for %zu bytes", path, bytes);
    return false;
  }
  if (fread(out->data, 1, bytes, f) != bytes) {
    rt_error(d, "%s: cannot read the data: %s", path, ferror(f) ? strerror(errno) : "EOF");
    tensor_free(out);
    return false;
  }
  return true;
}

bool rt_npy_read(const char *path, Tensor *out, Diag *d) {
  memset(out, 0, sizeof *out);
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_error(d, "cannot open '%s': %s", path, strerror(errno));
    return false;
  }
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    rt_error(d, "%s: not a regular file", path);
    fclose(f);
    return false;
  }
  NpyHeader h;
  uint64_t data_size = 0;
  bool ok = read_header(f, path, (uint64_t)st.st_size, &h, &data_size, d) &&
            read_body(f, path, &h, data_size, out, d);
  fclose(f);
  return ok;
}

/* ---- parsing a file image in memory (memory-mapped files, .npz members) --------------------- */

static bool parse_memory_header(const char *name, const unsigned char *buf, size_t len,
                                NpyHeader *h, size_t *start, Diag *d) {
  if (len < 10 || memcmp(buf, npy_magic, 6) != 0) {
    rt_error(d, "%s: not a .npy file (missing the \\x93NUMPY magic)", name);
    return false;
  }
  int major = buf[6], minor = buf[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0) {
    rt_error(d, "%s: unsupported .npy format version %d.%d (expected 1.0, 2.0 or 3.0)", name, major,
             minor);
    return false;
  }
  size_t pre = major == 1 ? 10 : 12;
  if (len < pre) {
    rt_error(d, "%s: truncated .npy header", name);
    return false;
  }
  uint32_t hlen = major == 1 ? read_le(buf + 8, 2) : read_le(buf + 8, 4);
  if (hlen > NPY_MAX_HEADER || pre + hlen > len) {
    rt_error(d, "%s: truncated or oversized .npy header (%u bytes declared, %zu available)", name,
             hlen, len);
    return false;
  }
  if (memchr(buf + pre, '\0', hlen)) {
    rt_error(d, "%s: malformed .npy header: NUL byte in the header text", name);
    return false;
  }
  char *text = malloc((size_t)hlen + 1);
  if (!text) return false;
  memcpy(text, buf + pre, hlen);
  text[hlen] = '\0';
  NpyParser ps = {text, name, d};
  bool ok = parse_header(&ps, h);
  free(text);
  *start = pre + hlen;
  return ok;
}

bool rt_npy_parse(const char *name, const unsigned char *buf, size_t len, DType *dtype,
                  Shape *shape, size_t *data_offset, Diag *d) {
  NpyHeader h;
  size_t start = 0;
  if (!parse_memory_header(name, buf, len, &h, &start, d)) return false;
  if (!descr_dtype(name, h.descr, dtype, d)) return false;
  if (h.fortran_order) {
    rt_error(d,
             "%s: Fortran-order arrays are not supported; save a C-order copy "
             "(np.ascontiguousarray)",
             name);
    return false;
  }
  int64_t numel;
  size_t bytes;
  if (!rt_shape_bytes(name, &h.shape, dtype_size(*dtype), &numel, &bytes, d)) return false;
  if (len - start != bytes) {
    char sbuf[200];
    rt_error(d, "%s: the shape %s of dtype %s needs %zu data bytes but there are %zu%s", name,
             shape_str(&h.shape, sbuf, sizeof sbuf), dtype_name(*dtype), bytes, len - start,
             len - start < bytes ? " (truncated)" : "");
    return false;
  }
  *shape = h.shape;
  *data_offset = start;
  return true;
}

/* ---- writing ----------------------------------------------------------------------------- */

bool rt_npy_write(const char *path, const Tensor *t, Diag *d) {
  const char *descr = (unsigned)t->dtype < DT_COUNT ? npy_descr(t->dtype) : NULL;
  if (!descr || t->shape.rank < 0 || t->shape.rank > IR_MAX_RANK) {
    rt_error(d, "cannot write '%s': invalid tensor dtype or rank", path);
    return false;
  }
  int64_t numel;
  size_t bytes;
  if (!rt_shape_bytes(path, &t->shape, dtype_size(t->dtype), &numel, &bytes, d)) return false;
  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < t->shape.rank; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                  (long long)t->shape.dim[i]);
  n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", t->shape.rank == 1 ? "," : "");
  /* pad with spaces so that magic + version + length + dict + '\n' is a multiple of 64 */
  size_t pre = 10, total = (pre + (size_t)n + 1 + 63) / 64 * 64;
  unsigned char head[640];
  memcpy(head, npy_magic, 6);
  head[6] = 1;
  head[7] = 0;
  size_t hlen = total - pre;
  head[8] = (unsigned char)(hlen & 0xff);
  head[9] = (unsigned char)(hlen >> 8);
  memcpy(head + pre, dict, (size_t)n);
  memset(head + pre + n, ' ', total - pre - (size_t)n - 1);
  head[total - 1] = '\n';
  RtPart parts[2] = {{head, total}, {t->data, bytes}};
  return rt_write_parts_atomic(path, parts, 2, d);
}
