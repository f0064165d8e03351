/* tests/unit/testutil.h — helpers shared by the Check suites. */
#ifndef LATHE_TESTS_TESTUTIL_H
#define LATHE_TESTS_TESTUTIL_H

#include <check.h>

/* the repository root (LATHE_SOURCE_DIR, set by ctest) */
const char *test_source_dir(void);
/* read a whole file relative to the repository root; malloc'd, NUL-terminated; NULL on error */
char *test_read_file(const char *relpath);
/* run one suite, return the process exit status */
int test_run_suite(Suite *s);

#endif
