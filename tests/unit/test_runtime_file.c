/* tests/unit/test_runtime_file.c — whole-file reads and atomic writes (runtime/file.c). */
#include <check.h>
#include <sys/stat.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

START_TEST(test_write_then_read) {
  char *dir = rtt_mkdtemp();
  const char *path = rtt_path(dir, "a.txt");
  Diag d;
  diag_init(&d);
  static const char text[] = "hello\0world"; /* embedded NUL: binary safe */
  ck_assert_msg(rt_write_file_atomic(path, text, sizeof text, &d), "%s", diag_text(&d));
  char *data = NULL;
  size_t len = 0;
  ck_assert(rt_read_file(path, &data, &len, &d));
  ck_assert_uint_eq(len, sizeof text);
  ck_assert_int_eq(memcmp(data, text, sizeof text), 0);
  ck_assert_int_eq(data[len], '\0');
  free(data);
  /* overwrite with something shorter: the old content is fully replaced */
  ck_assert(rt_write_file_atomic(path, "xy", 2, &d));
  ck_assert(rt_read_file(path, &data, &len, &d));
  ck_assert_uint_eq(len, 2);
  ck_assert_str_eq(data, "xy");
  free(data);
  /* an empty file */
  ck_assert(rt_write_file_atomic(path, "", 0, &d));
  ck_assert(rt_read_file(path, &data, &len, &d));
  ck_assert_uint_eq(len, 0);
  ck_assert_str_eq(data, "");
  free(data);
  ck_assert_int_eq(rtt_count_entries(dir), 1); /* no temp files left behind */
  ck_assert_int_eq(d.n_errors, 0);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_large_file) {
  char *dir = rtt_mkdtemp();
  size_t n = 3 * 1000 * 1000 + 7; /* several read-buffer doublings */
  unsigned char *buf = malloc(n);
  ck_assert_ptr_nonnull(buf);
  for (size_t i = 0; i < n; i++)
    buf[i] = (unsigned char)(i * 31 + 1);
  Diag d;
  diag_init(&d);
  const char *path = rtt_path(dir, "big.bin");
  ck_assert(rt_write_file_atomic(path, buf, n, &d));
  char *data = NULL;
  size_t len = 0;
  ck_assert(rt_read_file(path, &data, &len, &d));
  ck_assert_uint_eq(len, n);
  ck_assert_int_eq(memcmp(data, buf, n), 0);
  free(data);
  free(buf);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_mode_follows_umask) {
  char *dir = rtt_mkdtemp();
  const char *path = rtt_path(dir, "m.txt");
  Diag d;
  diag_init(&d);
  mode_t old = umask(022);
  ck_assert(rt_write_file_atomic(path, "x", 1, &d));
  umask(old);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644); /* not mkstemp's 0600 */
  ck_assert_int_eq(chmod(path, 0600), 0);    /* an existing file keeps its mode */
  ck_assert(rt_write_file_atomic(path, "y", 1, &d));
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0600);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_errors_name_the_path) {
  Diag d;
  diag_init(&d);
  char *data = (char *)1;
  size_t len = 1;
  rtt_expect_error(rt_read_file("/nonexistent-lathe/in.txt", &data, &len, &d), &d,
                   "/nonexistent-lathe/in.txt", "read missing");
  ck_assert_ptr_null(data);
  rtt_expect_error(rt_write_file_atomic("/nonexistent-lathe/out.txt", "x", 1, &d), &d,
                   "/nonexistent-lathe/out.txt", "write into missing dir");
  rtt_expect_error(rt_write_file_atomic("", "x", 1, &d), &d, "empty name", "empty path");
  /* renaming onto a directory fails after the temp file was written: it must be removed */
  char *dir = rtt_mkdtemp();
  char sub[4400];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  rtt_write(rtt_path(sub, "keep"), "k", 1);
  rtt_expect_error(rt_write_file_atomic(sub, "x", 1, &d), &d, "sub", "rename onto a dir");
  ck_assert_int_eq(rtt_count_entries(dir), 1); /* only sub/ itself */
  unlink(rtt_path(sub, "keep"));
  rmdir(sub);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

static Suite *file_suite(void) {
  Suite *s = suite_create("runtime_file");
  TCase *tc = tcase_create("file");
  tcase_add_test(tc, test_write_then_read);
  tcase_add_test(tc, test_large_file);
  tcase_add_test(tc, test_mode_follows_umask);
  tcase_add_test(tc, test_errors_name_the_path);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(file_suite());
}
