/* tests/faults/enospc.c — an LD_PRELOAD shim that makes the disk look full: write() to any file
 * under the directory $LATHE_ENOSPC_DIR fails with ENOSPC (other descriptors, stdout and
 * stderr included, are untouched). Used by tests/checkpoint_faults.sh.
 *   cc -shared -fPIC tests/faults/enospc.c -o enospc.so -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* whether fd is a file under dir (its path as the kernel reports it) */
static int under(int fd, const char *dir) {
  char link[64], path[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = '\0';
  size_t len = strlen(dir);
  return strncmp(path, dir, len) == 0 && path[len] == '/';
}

ssize_t write(int fd, const void *buf, size_t count) {
  static ssize_t (*real_write)(int, const void *, size_t);
  if (!real_write) *(void **)&real_write = dlsym(RTLD_NEXT, "write");
  const char *dir = getenv("LATHE_ENOSPC_DIR");
  if (fd > 2 && dir && *dir && under(fd, dir)) {
    errno = ENOSPC;
    return -1;
  }
  return real_write(fd, buf, count);
}
