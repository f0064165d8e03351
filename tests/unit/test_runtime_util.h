/* tests/unit/test_runtime_util.h — helpers for the runtime suites: scratch directories,
 * raw file writes, and running the reference Python (numpy) to make or check fixtures.
 *
 * Python is part of the test environment (python3-numpy is a listed dependency): a suite
 * that needs it fails loudly, with the reason, when /usr/bin/python3 or numpy is missing.
 */
#ifndef LATHE_TESTS_TEST_RUNTIME_UTIL_H
#define LATHE_TESTS_TEST_RUNTIME_UTIL_H

#include <check.h>
#include <dirent.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ir/diag.h"

extern char **environ;

#define RT_TEST_PYTHON "/usr/bin/python3"

/* a fresh directory under $TMPDIR or /tmp; malloc'd path */
static inline char *rtt_mkdtemp(void) {
  const char *tmp = getenv("TMPDIR");
  char *dir = malloc(4096);
  ck_assert_ptr_nonnull(dir);
  snprintf(dir, 4096, "%s/lathe-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  ck_assert_msg(mkdtemp(dir) != NULL, "mkdtemp failed for %s", dir);
  return dir;
}

/* number of entries in dir, excluding . and .. */
static inline int rtt_count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* removes the files in dir and dir itself, then frees the path */
static inline void rtt_rmdir(char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[4352];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
  free(dir);
}

/* dir/name into a static rotating buffer (valid for the next 7 calls) */
static inline const char *rtt_path(const char *dir, const char *name) {
  static char bufs[8][8704]; /* a PATH_MAX dir, a name, slack */
  static int k;
  char *b = bufs[k++ & 7];
  snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
  return b;
}

static inline void rtt_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  ck_assert_int_eq(fclose(f), 0);
}

/* whole file (malloc'd), length in *len */
static inline unsigned char *rtt_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* Runs `/usr/bin/python3 -c script dir`; fails the test loudly if python or numpy is
 * missing or the script fails. */
static inline void rtt_python(const char *script, const char *dir) {
  ck_assert_msg(access(RT_TEST_PYTHON, X_OK) == 0,
                RT_TEST_PYTHON " is required for the numpy reference fixtures (install python3 "
                               "and python3-numpy)");
  char *argv[] = {"python3", "-c", (char *)script, (char *)dir, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, RT_TEST_PYTHON, NULL, NULL, argv, environ);
  ck_assert_msg(rc == 0, "cannot run " RT_TEST_PYTHON ": %s", strerror(rc));
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "the Python reference script failed (is python3-numpy installed? exit status "
                "%d); its stderr is above",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* asserts that a reader rejected its input with at least one error whose text contains
 * `want` (NULL: any error), then clears the Diag */
static inline void rtt_expect_error(bool ok, Diag *d, const char *want, const char *what) {
  ck_assert_msg(!ok, "%s: reader accepted malformed input", what);
  ck_assert_msg(d->n_errors > 0, "%s: rejected without an error message", what);
  ck_assert_msg(!want || strstr(diag_text(d), want) != NULL,
                "%s: expected an error mentioning '%s', got: %s", what, want, diag_text(d));
  diag_fini(d);
  diag_init(d);
}

#endif
