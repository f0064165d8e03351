/* runtime/data_npy.c — dataset readers for NumPy and safetensors arrays: a .npy file
 * (memory-mapped, never copied), a directory of them, a .npz archive (each member read through
 * libzip, stored or deflated) and a safetensors file. Dim 0 of every array is the sample
 * axis; the rest is the per-sample shape. An array is named after its file (x.npy → x) or its
 * member / tensor name.
 */
#include "data.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

static char *dup_n(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (c) memcpy(c, s, n), c[n] = '\0';
  return c;
}

/* fills a's name, file, shape fields from a whole-array shape; false (reported) for rank 0 */
static bool array_shape(RtArray *a, const char *file, const char *name, size_t name_len, DType t,
                        const Shape *s, Diag *d) {
  if (s->rank < 1) {
    rt_error(d, "%s: array '%.*s' is a scalar; a dataset array needs a sample axis (dim 0)", file,
             (int)name_len, name);
    return false;
  }
  a->name = dup_n(name, name_len);
  a->file = dup_n(file, strlen(file));
  a->dtype = t;
  a->n = s->dim[0];
  a->sample.rank = s->rank - 1;
  a->per = 1;
  for (int k = 1; k < s->rank; k++)
    a->sample.dim[k - 1] = s->dim[k], a->per *= s->dim[k];
  a->row_bytes = (size_t)a->per * dtype_size(t);
  return a->name && a->file;
}

static const char *base_name(const char *path, size_t *len) {
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  const char *dot = strrchr(b, '.');
  *len = dot && dot != b ? (size_t)(dot - b) : strlen(b);
  return b;
}

bool rt_data_read_npy(lathe_dataset *ds, const char *path, Diag *d) {
  int fd = open(path, O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    rt_error(d, "cannot read '%s': %s", path, fd < 0 ? strerror(errno) : "not a non-empty file");
    if (fd >= 0) close(fd);
    return false;
  }
  size_t len = (size_t)st.st_size;
  void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    rt_error(d, "cannot map '%s': %s", path, strerror(errno));
    return false;
  }
  RtArray a = {.map = map, .map_len = len};
  DType t;
  Shape s;
  size_t off = 0, nlen = 0;
  const char *name = base_name(path, &nlen);
  bool ok =
      rt_npy_parse(path, map, len, &t, &s, &off, d) && array_shape(&a, path, name, nlen, t, &s, d);
  if (!ok) {
    rt_array_fini(&a);
    return false;
  }
  a.data = (const unsigned char *)map + off;
  madvise(map, len, MADV_WILLNEED);
  return rt_data_add(ds, &a, d);
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* the .npy files of dir, sorted by name (so the order of unnamed bindings is stable) */
bool rt_data_read_npy_dir(lathe_dataset *ds, const char *dir, Diag *d) {
  DIR *h = opendir(dir);
  if (!h) {
    rt_error(d, "cannot open directory '%s': %s", dir, strerror(errno));
    return false;
  }
  char **names = NULL;
  int n = 0, cap = 0;
  bool ok = true;
  for (struct dirent *e; ok && (e = readdir(h));) {
    size_t k = strlen(e->d_name);
    if (k < 5 || strcmp(e->d_name + k - 4, ".npy") != 0 || e->d_name[0] == '.') continue;
    if (n == cap) {
      char **grown = realloc(names, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *grown);
      if (!grown)
        ok = false;
      else
        names = grown;
    }
    if (ok) ok = (names[n++] = dup_n(e->d_name, k)) != NULL;
  }
  closedir(h);
  if (ok && n == 0) {
    rt_error(d,
             "directory '%s' has no .npy files (expected one per model input, e.g. x.npy "
             "and label.npy)",
             dir);
    ok = false;
  }
  if (ok) qsort(names, (size_t)n, sizeof *names, cmp_str);
  for (int i = 0; ok && i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    ok = rt_data_read_npy(ds, path, d);
  }
  for (int i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return ok;
}

/* ---- .npz --------------------------------------------------------------------------------- */

enum { NPZ_MAX_MEMBER = 1 << 30 }; /* 1 GiB per member: larger arrays belong in .npy (mapped) */

/* member i of z into a (a copy: members may be compressed) */
static bool npz_member(zip_t *z, zip_int64_t i, const char *path, RtArray *a, Diag *d) {
  zip_stat_t st;
  char where[4096];
  if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE) ||
      !(st.valid & ZIP_STAT_NAME)) {
    rt_error(d, "%s: cannot read member %lld of the archive", path, (long long)i);
    return false;
  }
  snprintf(where, sizeof where, "%s:%s", path, st.name);
  size_t nlen = strlen(st.name);
  if (nlen < 5 || strcmp(st.name + nlen - 4, ".npy") != 0) {
    rt_error(d, "%s: not a .npy member (an .npz holds only NAME.npy files)", where);
    return false;
  }
  if (st.size > NPZ_MAX_MEMBER || st.size == 0) {
    rt_error(d, "%s: member of %llu bytes (expected 1 byte .. 1 GiB; store large arrays as .npy)",
             where, (unsigned long long)st.size);
    return false;
  }
  unsigned char *buf = malloc((size_t)st.size);
  zip_file_t *f = buf ? zip_fopen_index(z, (zip_uint64_t)i, 0) : NULL;
  bool ok = f && zip_fread(f, buf, st.size) == (zip_int64_t)st.size;
  if (f) zip_fclose(f);
  if (!ok) rt_error(d, "%s: cannot decompress the member (corrupt or truncated archive)", where);
  DType t;
  Shape s;
  size_t off = 0;
  ok = ok && rt_npy_parse(where, buf, (size_t)st.size, &t, &s, &off, d) &&
       array_shape(a, where, st.name, nlen - 4, t, &s, d);
  ok = ok && tensor_alloc(&a->owned, t, &s);
  if (ok) memcpy(a->owned.data, buf + off, (size_t)st.size - off);
  a->data = a->owned.data;
  free(buf);
  return ok;
}

bool rt_data_read_npz(lathe_dataset *ds, const char *path, Diag *d) {
  int err = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &err);
  if (!z) {
    zip_error_t ze;
    zip_error_init_with_code(&ze, err);
    rt_error(d, "%s: not a readable .npz (zip) archive: %s", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return false;
  }
  zip_int64_t n = zip_get_num_entries(z, 0);
  bool ok = n > 0;
  if (!ok) rt_error(d, "%s: the archive has no arrays", path);
  for (zip_int64_t i = 0; ok && i < n; i++) {
    RtArray a = {0};
    ok = npz_member(z, i, path, &a, d);
    if (ok)
      ok = rt_data_add(ds, &a, d);
    else
      rt_array_fini(&a);
  }
  zip_discard(z);
  return ok;
}

/* ---- safetensors -------------------------------------------------------------------------- */

bool rt_data_read_safetensors(lathe_dataset *ds, const char *path, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(path, &set, d);
  if (ok && set.n == 0) {
    rt_error(d, "%s: no tensors", path);
    ok = false;
  }
  for (int i = 0; ok && i < set.n; i++) {
    RtArray a = {0};
    const char *name = set.items[i].name;
    ok = array_shape(&a, path, name, strlen(name), set.items[i].t.dtype, &set.items[i].t.shape, d);
    if (ok) {
      a.owned = set.items[i].t; /* take it over */
      memset(&set.items[i].t, 0, sizeof set.items[i].t);
      a.data = a.owned.data;
      ok = rt_data_add(ds, &a, d);
    } else {
      rt_array_fini(&a);
    }
  }
  rt_set_fini(&set);
  return ok;
}
