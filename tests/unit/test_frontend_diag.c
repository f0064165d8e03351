/* tests/unit/test_frontend_diag.c — the diagnostic sink (ir/diag.c): rendering with source
 * line and caret, tabs, notes, the error limit, edit distance. */
#include <check.h>
#include <string.h>

#include "ir/diag.h"
#include "tests/unit/testutil.h"

START_TEST(test_render_caret) {
  Diag d;
  diag_init(&d);
  diag_add_source(&d, "m.lathe", "const N = 4\n  h = relu(x\n");
  diag_error(&d, (SrcLoc){"m.lathe", 2, 12}, "expected ')' to close '(' at %d:%d", 2, 10);
  ck_assert_str_eq(diag_text(&d), "m.lathe:2:12: error: expected ')' to close '(' at 2:10\n"
                                  "    h = relu(x\n"
                                  "             ^\n");
  ck_assert_int_eq(d.n_errors, 1);
  diag_fini(&d);
}
END_TEST

START_TEST(test_tabs_and_levels) {
  Diag d;
  diag_init(&d);
  diag_add_source(&d, "t.lathe", "\tx = y\n");
  diag_report(&d, DIAG_WARNING, (SrcLoc){"t.lathe", 1, 6}, "w");
  diag_note(&d, (SrcLoc){0}, "plain note");
  diag_error(&d, (SrcLoc){"other.lathe", 3, 1}, "no source");
  ck_assert_str_eq(diag_text(&d), "t.lathe:1:6: warning: w\n"
                                  "  \tx = y\n"
                                  "  \t    ^\n"
                                  "note: plain note\n"
                                  "other.lathe:3:1: error: no source\n");
  ck_assert_int_eq(d.n_warnings, 1);
  ck_assert_int_eq(d.n_errors, 1);
  diag_fini(&d);
}
END_TEST

START_TEST(test_error_limit) {
  Diag d;
  diag_init(&d);
  d.max_errors = 3;
  for (int i = 0; i < 5; i++) {
    ck_assert(!diag_full(&d) || i >= 3);
    diag_error(&d, (SrcLoc){0}, "e%d", i);
  }
  ck_assert(diag_full(&d));
  ck_assert_int_eq(d.n_errors, 5);
  ck_assert_str_eq(diag_text(&d), "error: e0\nerror: e1\nerror: e2\n"
                                  "error: too many errors; stopping\n");
  FILE *f = tmpfile();
  diag_flush(&d, f);
  ck_assert_str_eq(diag_text(&d), "");
  ck_assert_int_eq((int)ftell(f), (int)strlen("error: e0\nerror: e1\nerror: e2\n"
                                              "error: too many errors; stopping\n"));
  fclose(f);
  diag_fini(&d);
}
END_TEST

START_TEST(test_edit_distance) {
  ck_assert_int_eq(diag_edit_distance("relu", "relu"), 0);
  ck_assert_int_eq(diag_edit_distance("rleu", "relu"), 2);
  ck_assert_int_eq(diag_edit_distance("dens", "dense"), 1);
  ck_assert_int_eq(diag_edit_distance("", "abc"), 3);
  ck_assert_int_eq(diag_edit_distance("kitten", "sitting"), 3);
}
END_TEST

static Suite *diag_suite(void) {
  Suite *s = suite_create("diag");
  TCase *t = tcase_create("core");
  tcase_add_test(t, test_render_caret);
  tcase_add_test(t, test_tabs_and_levels);
  tcase_add_test(t, test_error_limit);
  tcase_add_test(t, test_edit_distance);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(diag_suite());
}
