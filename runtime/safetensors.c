/* runtime/safetensors.c — named tensor sets and the safetensors checkpoint format.
 *
 * Layout: u64 LE header length N, N bytes of JSON (padded with spaces to a multiple of 8),
 * then the byte buffer. The JSON maps each tensor name to
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} (offsets relative to the
 * buffer) plus an optional "__metadata__" object of string values, which is checked and
 * ignored.
 *
 * Reading validates everything the reference implementation does, with a message naming the
 * file and tensor: N <= 100 MB and inside the file, well-formed UTF-8, a JSON object, known dtypes
 * (F32 F64 I32 I64 U8), integer shapes with dims >= 1 and rank <= IR_MAX_RANK, offsets with
 * end - begin == numel * dtype size, unique names, and offsets that tile the buffer exactly
 * (sorted by offset: the first starts at 0, each starts where the previous ends, the last
 * ends at the end of the file), so no two tensors overlap and no byte is unaccounted for.
 *
 * Writing matches the Python/Rust implementation byte for byte: tensors sorted by dtype
 * alignment (descending) then name, data laid out in that order, compact JSON in the same
 * key order, header padded to 8 bytes; the write is atomic.
 */
#include "rt_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ST_MAX_HEADER = 100000000 }; /* the reference implementation's MAX_HEADER_SIZE */

/* ---- tensor sets ------------------------------------------------------------------------- */

void rt_set_init(RtTensorSet *s) {
  memset(s, 0, sizeof *s);
}

void rt_set_fini(RtTensorSet *s) {
  for (int i = 0; i < s->n; i++) {
    free(s->items[i].name);
    tensor_free(&s->items[i].t);
  }
  free(s->items);
  memset(s, 0, sizeof *s);
}

static int set_index(const RtTensorSet *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->items[i].name, name) == 0) return i;
  return -1;
}

Tensor *rt_set_add(RtTensorSet *s, const char *name, DType t, const Shape *shape) {
  int i = set_index(s, name);
  if (i >= 0) { /* replace: the set is a map */
    Tensor fresh;
    if (!tensor_alloc(&fresh, t, shape)) return NULL;
    tensor_free(&s->items[i].t);
    s->items[i].t = fresh;
    return &s->items[i].t;
  }
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    RtNamed *items = realloc(s->items, (size_t)cap * sizeof *items);
    if (!items) return NULL;
    s->items = items;
    s->cap = cap;
  }
  RtNamed *it = &s->items[s->n];
  size_t len = strlen(name) + 1;
  it->name = malloc(len);
  if (!it->name) return NULL;
  memcpy(it->name, name, len);
  if (!tensor_alloc(&it->t, t, shape)) {
    free(it->name);
    return NULL;
  }
  s->n++;
  return &it->t;
}

const Tensor *rt_set_find(const RtTensorSet *s, const char *name) {
  int i = set_index(s, name);
  return i >= 0 ? &s->items[i].t : NULL;
}

/* ---- dtypes ------------------------------------------------------------------------------ */

static const char *const st_dtype_names[DT_COUNT] = {"F32", "F64", "I32", "I64", "U8", "I8"};
/* the reference implementation's Dtype order (U8 < I8 < I32 < F32 < F64 < I64), for sorting */
static const int st_dtype_rank[DT_COUNT] = {3, 4, 2, 5, 0, 1};
_Static_assert(DT_COUNT == 6, "update the safetensors dtype tables");

static bool st_dtype_from_name(const char *name, DType *out) {
  for (int i = 0; i < DT_COUNT; i++) {
    if (strcmp(st_dtype_names[i], name) == 0) {
      *out = (DType)i;
      return true;
    }
  }
  return false;
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct StEntry {
  const char *name; /* points into the cJSON tree */
  DType dtype;
  Shape shape;
  uint64_t begin, end;
} StEntry;

/* a JSON number that is an exact non-negative integer below 2^53 */
static bool json_uint(const cJSON *j, uint64_t *out) {
  if (!cJSON_IsNumber(j)) return false;
  double v = j->valuedouble;
  if (!isfinite(v) || v < 0 || v > 9007199254740992.0 || floor(v) != v) return false;
  *out = (uint64_t)v;
  return true;
}

static bool parse_shape(const cJSON *j, Shape *s) {
  if (!cJSON_IsArray(j)) return false;
  memset(s, 0, sizeof *s);
  for (const cJSON *e = j->child; e; e = e->next) {
    uint64_t v;
    if (s->rank == IR_MAX_RANK || !json_uint(e, &v)) return false;
    s->dim[s->rank++] = (int64_t)v;
  }
  return true;
}

/* Parses one "name": {...} entry; messages name the tensor. */
static bool parse_entry(const char *path, const cJSON *j, StEntry *e, Diag *d) {
  e->name = j->string;
  if (!cJSON_IsObject(j)) {
    rt_error(d, "%s: tensor '%.200s': expected an object with dtype, shape, data_offsets", path,
             j->string);
    return false;
  }
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(j, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
  if (!cJSON_IsString(dt) || !st_dtype_from_name(dt->valuestring, &e->dtype)) {
    rt_error(d,
             "%s: tensor '%.200s': unsupported or missing dtype %s%s%s (expected F32, F64, I32, "
             "I64 or U8)",
             path, e->name, cJSON_IsString(dt) ? "'" : "",
             cJSON_IsString(dt) ? dt->valuestring : "", cJSON_IsString(dt) ? "'" : "");
    return false;
  }
  if (!parse_shape(sh, &e->shape)) {
    rt_error(d, "%s: tensor '%.200s': 'shape' must be a list of at most %d non-negative integers",
             path, e->name, IR_MAX_RANK);
    return false;
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_uint(off->child, &e->begin) ||
      !json_uint(off->child->next, &e->end) || e->end < e->begin) {
    rt_error(d, "%s: tensor '%.200s': 'data_offsets' must be [begin, end] with begin <= end", path,
             e->name);
    return false;
  }
  char what[512];
  snprintf(what, sizeof what, "%s: tensor '%.200s'", path, e->name);
  int64_t numel;
  size_t bytes;
  if (!rt_shape_bytes(what, &e->shape, dtype_size(e->dtype), &numel, &bytes, d)) return false;
  if (e->end - e->begin != bytes) {
    rt_error(d, "%s: data_offsets [%llu, %llu] hold %llu bytes but the %s shape needs %zu", what,
             (unsigned long long)e->begin, (unsigned long long)e->end,
             (unsigned long long)(e->end - e->begin), st_dtype_names[e->dtype], bytes);
    return false;
  }
  return true;
}

static bool check_metadata(const char *path, const cJSON *j, Diag *d) {
  bool ok = cJSON_IsObject(j);
  for (const cJSON *e = ok ? j->child : NULL; e; e = e->next)
    ok = ok && cJSON_IsString(e);
  if (!ok) rt_error(d, "%s: '__metadata__' must be an object of string values", path);
  return ok;
}

static int cmp_by_name(const void *a, const void *b) {
  return strcmp(((const StEntry *)a)->name, ((const StEntry *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
  const StEntry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

/* Names unique; offsets tile [0, buffer_len) exactly. Sorts entries by offset. */
static bool check_layout(const char *path, StEntry *es, int n, uint64_t buffer_len, Diag *d) {
  if (n > 1) qsort(es, (size_t)n, sizeof *es, cmp_by_name);
  for (int i = 1; i < n; i++) {
    if (strcmp(es[i - 1].name, es[i].name) == 0) {
      rt_error(d, "%s: tensor '%.200s' appears twice in the header", path, es[i].name);
      return false;
    }
  }
  if (n > 1) qsort(es, (size_t)n, sizeof *es, cmp_by_offset);
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    if (es[i].begin != at) {
      rt_error(d,
               "%s: tensor '%.200s' starts at byte %llu of the data but %s ends at %llu "
               "(tensors must be contiguous and must not overlap)",
               path, es[i].name, (unsigned long long)es[i].begin,
               i ? "the previous tensor" : "nothing", (unsigned long long)at);
      return false;
    }
    at = es[i].end;
  }
  if (at != buffer_len) {
    rt_error(d, "%s: the tensors cover %llu data bytes but the file has %llu after the header",
             path, (unsigned long long)at, (unsigned long long)buffer_len);
    return false;
  }
  return true;
}

/* Parses the header into entries (sorted by offset); *n_out entries, malloc'd. */
static bool parse_header(const char *path, const cJSON *root, uint64_t buffer_len, StEntry **out,
                         int *n_out, Diag *d) {
  int n = cJSON_GetArraySize(root);
  StEntry *es = calloc((size_t)(n ? n : 1), sizeof *es);
  if (!es) {
    rt_error(d, "%s: out of memory", path);
    return false;
  }
  int k = 0;
  bool ok = true;
  for (const cJSON *j = root->child; ok && j; j = j->next) {
    if (strcmp(j->string, "__metadata__") == 0)
      ok = check_metadata(path, j, d);
    else
      ok = parse_entry(path, j, &es[k++], d);
  }
  ok = ok && check_layout(path, es, k, buffer_len, d);
  if (!ok) {
    free(es);
    return false;
  }
  *out = es;
  *n_out = k;
  return true;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as the
 * reference implementation requires of the header. */
static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    int extra = c < 0x80             ? 0
                : (c & 0xE0) == 0xC0 ? 1
                : (c & 0xF0) == 0xE0 ? 2
                : (c & 0xF8) == 0xF0 ? 3
                                     : -1;
    if (extra < 0 || n - i <= (size_t)extra) return false; /* bad lead or cut short */
    uint32_t cp = extra ? c & (0x3Fu >> extra) : c;
    for (int k = 1; k <= extra; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (s[i + k] & 0x3Fu);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += (size_t)extra + 1;
  }
  return true;
}

/* The header as JSON: an object starting at its first byte, followed only by whitespace.
 * Parsed from a NUL-terminated copy so that cJSON never reads past it. */
static cJSON *parse_json(const char *text, size_t n) {
  if (n == 0 || text[0] != '{' || memchr(text, '\0', n) ||
      !valid_utf8((const unsigned char *)text, n))
    return NULL;
  char *copy = malloc(n + 1);
  if (!copy) return NULL;
  memcpy(copy, text, n);
  copy[n] = '\0';
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(copy, &end, false);
  while (root && (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r'))
    end++;
  if (root && *end != '\0') {
    cJSON_Delete(root);
    root = NULL;
  }
  free(copy);
  return root;
}

static bool read_tensors(const char *path, const char *data, size_t len, RtTensorSet *out,
                         Diag *d) {
  if (len < 8) {
    rt_error(d, "%s: not a safetensors file (shorter than the 8-byte header length)", path);
    return false;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = n << 8 | (unsigned char)data[i];
  if (n > ST_MAX_HEADER || n > len - 8) {
    rt_error(d, "%s: safetensors header length %llu is %s (file is %zu bytes)", path,
             (unsigned long long)n, n > ST_MAX_HEADER ? "over the 100 MB limit" : "truncated", len);
    return false;
  }
  cJSON *root = parse_json(data + 8, (size_t)n);
  if (!cJSON_IsObject(root)) {
    rt_error(d, "%s: the safetensors header is not a JSON object", path);
    cJSON_Delete(root);
    return false;
  }
  StEntry *es = NULL;
  int k = 0;
  bool ok = parse_header(path, root, len - 8 - n, &es, &k, d);
  const char *buffer = data + 8 + n;
  for (int i = 0; ok && i < k; i++) {
    Tensor *t = rt_set_add(out, es[i].name, es[i].dtype, &es[i].shape);
    if (!t)
      rt_error(d, "%s: out of memory for tensor '%.200s'", path, es[i].name);
    else
      memcpy(t->data, buffer + es[i].begin, (size_t)(es[i].end - es[i].begin));
    ok = t != NULL;
  }
  free(es);
  cJSON_Delete(root);
  return ok;
}

bool rt_safetensors_read(const char *path, RtTensorSet *out, Diag *d) {
  char *data = NULL;
  size_t len = 0;
  if (!rt_read_file(path, &data, &len, d)) return false;
  int before = out->n;
  bool ok = read_tensors(path, data, len, out, d);
  free(data);
  if (!ok) { /* leave the set as it was (new names only; replaced ones stay replaced) */
    for (int i = before; i < out->n; i++) {
      free(out->items[i].name);
      tensor_free(&out->items[i].t);
    }
    out->n = before;
  }
  return ok;
}

/* ---- writing ----------------------------------------------------------------------------- */

static int cmp_for_write(const void *a, const void *b) {
  const RtNamed *x = *(const RtNamed *const *)a, *y = *(const RtNamed *const *)b;
  int rx = st_dtype_rank[x->t.dtype], ry = st_dtype_rank[y->t.dtype];
  if (rx != ry) return ry - rx; /* larger alignment first */
  return strcmp(x->name, y->name);
}

static int cmp_named_by_name(const void *a, const void *b) {
  return strcmp((*(const RtNamed *const *)a)->name, (*(const RtNamed *const *)b)->name);
}

static cJSON *uint_array(const int64_t *v, int n) {
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i < n; i++) {
    cJSON *num = cJSON_CreateNumber((double)v[i]);
    if (!num || !cJSON_AddItemToArray(a, num)) {
      cJSON_Delete(num);
      cJSON_Delete(a);
      return NULL;
    }
  }
  return a;
}

/* {"dtype":..,"shape":[..],"data_offsets":[b,e]}; NULL on out of memory */
static cJSON *entry_json(const Tensor *t, int64_t begin, int64_t end) {
  cJSON *o = cJSON_CreateObject();
  int64_t offs[2] = {begin, end};
  cJSON *shape = uint_array(t->shape.dim, t->shape.rank), *off = uint_array(offs, 2);
  bool ok = o && shape && off && cJSON_AddStringToObject(o, "dtype", st_dtype_names[t->dtype]);
  ok = ok && cJSON_AddItemToObject(o, "shape", shape);
  if (ok) shape = NULL;
  ok = ok && cJSON_AddItemToObject(o, "data_offsets", off);
  if (ok) return o;
  cJSON_Delete(shape);
  cJSON_Delete(off);
  cJSON_Delete(o);
  return NULL;
}

/* Validates the set and returns its items in write order (malloc'd). */
static const RtNamed **write_order(const char *path, const RtTensorSet *s, Diag *d) {
  const RtNamed **order = malloc((size_t)(s->n ? s->n : 1) * sizeof *order);
  if (!order) {
    rt_error(d, "cannot write '%s': out of memory", path);
    return NULL;
  }
  for (int i = 0; i < s->n; i++) {
    const Tensor *t = &s->items[i].t;
    if ((unsigned)t->dtype >= DT_COUNT || t->shape.rank < 0 || t->shape.rank > IR_MAX_RANK) {
      rt_error(d, "cannot write '%s': tensor '%.200s' has an invalid dtype or rank", path,
               s->items[i].name);
      free(order);
      return NULL;
    }
    const char *name = s->items[i].name;
    if (!valid_utf8((const unsigned char *)name, strlen(name))) {
      rt_error(d, "cannot write '%s': tensor name '%.200s' is not valid UTF-8", path, name);
      free(order);
      return NULL;
    }
    order[i] = &s->items[i];
  }
  if (s->n > 1) qsort(order, (size_t)s->n, sizeof *order, cmp_named_by_name);
  for (int i = 1; i < s->n; i++) {
    if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
      rt_error(d, "cannot write '%s': tensor name '%.200s' is used twice", path, order[i]->name);
      free(order);
      return NULL;
    }
  }
  if (s->n > 1) qsort(order, (size_t)s->n, sizeof *order, cmp_for_write);
  return order;
}

/* Builds the padded JSON header; fills parts[1..n] with the data in write order. */
static char *build_header(const char *path, const RtNamed **order, int n, RtPart *parts,
                          size_t *hlen, Diag *d) {
  cJSON *root = cJSON_CreateObject();
  bool ok = root != NULL;
  int64_t at = 0;
  for (int i = 0; ok && i < n; i++) {
    int64_t numel;
    size_t bytes;
    if (!rt_shape_bytes(path, &order[i]->t.shape, dtype_size(order[i]->t.dtype), &numel, &bytes,
                        d)) {
      cJSON_Delete(root);
      return NULL;
    }
    cJSON *e = entry_json(&order[i]->t, at, at + (int64_t)bytes);
    ok = e && cJSON_AddItemToObject(root, order[i]->name, e);
    if (!ok) cJSON_Delete(e);
    parts[1 + i] = (RtPart){order[i]->t.data, bytes};
    at += (int64_t)bytes;
    if (at >= (int64_t)1e15) { /* cJSON would print larger integers in exponent form */
      rt_error(d, "cannot write '%s': more than 10^15 bytes of tensors", path);
      cJSON_Delete(root);
      return NULL;
    }
  }
  char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
  cJSON_Delete(root);
  char *padded = NULL;
  if (json) {
    size_t len = strlen(json), plen = (len + 7) / 8 * 8;
    padded = malloc(plen + 8);
    if (padded) {
      for (int i = 0; i < 8; i++)
        padded[i] = (char)((uint64_t)plen >> (8 * i) & 0xff);
      memcpy(padded + 8, json, len);
      memset(padded + 8 + len, ' ', plen - len);
      *hlen = plen + 8;
    }
    free(json);
  }
  if (!padded) rt_error(d, "cannot write '%s': out of memory", path);
  return padded;
}

bool rt_safetensors_write(const char *path, const RtTensorSet *s, Diag *d) {
  const RtNamed **order = write_order(path, s, d);
  if (!order) return false;
  RtPart *parts = calloc((size_t)s->n + 1, sizeof *parts);
  size_t hlen = 0;
  if (!parts) rt_error(d, "cannot write '%s': out of memory", path);
  char *header = parts ? build_header(path, order, s->n, parts, &hlen, d) : NULL;
  bool ok = header != NULL;
  if (ok) {
    parts[0] = (RtPart){header, hlen};
    ok = rt_write_parts_atomic(path, parts, s->n + 1, d);
  }
  free(header);
  free(parts);
  free(order);
  return ok;
}
