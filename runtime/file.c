/* runtime/file.c — whole-file reads and atomic writes.
 *
 * rt_write_file_atomic never leaves a partial target: the bytes go to a temp file created
 * with mkstemp in the target's directory (so rename cannot cross file systems), which is
 * fsync'd and renamed over the target; on any failure the temp file is removed and the
 * previous target, if any, is untouched. The new file gets the usual 0666 & ~umask mode (or
 * the mode of the file it replaces). Errors name the path and the system's reason.
 */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool rt_read_file(const char *path, char **data, size_t *len, Diag *d) {
  *data = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    rt_error(d, "cannot open '%s': %s", path, strerror(errno));
    return false;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  bool ok = buf != NULL;
  while (ok) {
    if (n + 1 >= cap) { /* keep room for the NUL */
      char *b = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (!b) {
        ok = false;
        break;
      }
      buf = b;
      cap *= 2;
    }
    size_t got = fread(buf + n, 1, cap - 1 - n, f);
    n += got;
    if (got == 0) break;
  }
  if (!ok) {
    rt_error(d, "cannot read '%s': out of memory", path);
  } else if (ferror(f)) {
    rt_error(d, "cannot read '%s': %s", path, strerror(errno ? errno : EIO));
    ok = false;
  }
  fclose(f);
  if (!ok) {
    free(buf);
    return false;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return true;
}

/* The mode a newly created file would get: 0666 & ~umask, or the mode of the file being
 * replaced. (umask can only be read by setting it; it is restored at once.) */
static mode_t target_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return st.st_mode & 07777;
  mode_t mask = umask(022);
  umask(mask);
  return 0666 & ~mask;
}

/* dir of path ("." if none) and the temp template "<dir>/.<base>.tmp-XXXXXX" */
static bool temp_template(const char *path, char **tmpl, char **dir) {
  const char *slash = strrchr(path, '/');
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  const char *base = slash ? slash + 1 : path;
  *dir = malloc(dlen + 2);
  *tmpl = malloc(strlen(path) + 32);
  if (!*dir || !*tmpl) return false;
  if (slash) {
    memcpy(*dir, path, dlen ? dlen : 1); /* "/x" -> "/" */
    (*dir)[dlen ? dlen : 1] = '\0';
  } else {
    strcpy(*dir, ".");
  }
  sprintf(*tmpl, "%.*s%s.%s.tmp-XXXXXX", (int)dlen, path, slash ? "/" : "", base);
  return true;
}

static bool write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t w = write(fd, p, len > (size_t)1 << 30 ? (size_t)1 << 30 : len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    p += w;
    len -= (size_t)w;
  }
  return true;
}

/* Best effort: make the rename itself durable. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

bool rt_write_parts_atomic(const char *path, const RtPart *parts, int n_parts, Diag *d) {
  if (!path || !*path) {
    rt_error(d, "cannot write a file with an empty name");
    return false;
  }
  char *tmpl = NULL, *dir = NULL;
  if (!temp_template(path, &tmpl, &dir)) {
    free(tmpl);
    free(dir);
    rt_error(d, "cannot write '%s': out of memory", path);
    return false;
  }
  mode_t mode = target_mode(path);
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    rt_error(d, "cannot create a temporary file next to '%s': %s", path, strerror(errno));
    free(tmpl);
    free(dir);
    return false;
  }
  const char *what = "write";
  bool ok = true;
  for (int i = 0; ok && i < n_parts; i++)
    ok = write_all(fd, parts[i].data, parts[i].len);
  if (ok && !(ok = fchmod(fd, mode) == 0)) what = "set the mode of";
  if (ok && !(ok = fsync(fd) == 0)) what = "sync";
  int err = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && !(ok = rename(tmpl, path) == 0)) {
    what = "rename the temporary file onto";
    err = errno;
  }
  if (!ok) {
    unlink(tmpl);
    rt_error(d, "cannot %s '%s': %s", what, path, strerror(err));
  } else {
    sync_dir(dir);
  }
  free(tmpl);
  free(dir);
  return ok;
}

bool rt_write_file_atomic(const char *path, const void *data, size_t len, Diag *d) {
  RtPart part = {data, len};
  return rt_write_parts_atomic(path, &part, 1, d);
}

bool rt_shape_bytes(const char *path, const Shape *s, size_t elem_size, int64_t *numel,
                    size_t *bytes, Diag *d) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->dim[i] <= 0) {
      rt_error(d, "%s: dimension %d of the shape is %lld; lathe tensors need dimensions >= 1", path,
               i, (long long)s->dim[i]);
      return false;
    }
    if (n > INT64_MAX / s->dim[i]) {
      rt_error(d, "%s: the shape's element count overflows 64 bits", path);
      return false;
    }
    n *= s->dim[i];
  }
  if ((uint64_t)n > SIZE_MAX / elem_size || (uint64_t)n > (uint64_t)INT64_MAX / elem_size) {
    rt_error(d, "%s: the tensor's byte size overflows", path);
    return false;
  }
  *numel = n;
  *bytes = (size_t)n * elem_size;
  return true;
}
