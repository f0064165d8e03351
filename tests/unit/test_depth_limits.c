/* tests/unit/test_depth_limits.c — readers whose recursion the input shapes stop at a bound
 * with a located error: the IR text reader on 10^4 nested bodies, the frontend on a 10^6-term
 * chain (the CLI's version of these, at every stage, is tests/depth_limits.sh).
 */
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "ir/ir.h"
#include "tests/unit/testutil.h"

/* text + n copies of open + n copies of close + tail (malloc'd) */
static char *repeat(const char *head, const char *open, const char *close, int n,
                    const char *tail) {
  size_t len = strlen(head) + (strlen(open) + strlen(close)) * (size_t)n + strlen(tail) + 1;
  char *s = malloc(len), *p = s;
  p = stpcpy(p, head);
  for (int i = 0; i < n; i++)
    p = stpcpy(p, open);
  for (int i = 0; i < n; i++)
    p = stpcpy(p, close);
  stpcpy(p, tail);
  return s;
}

START_TEST(ir_text_nested_bodies) {
  char *text = repeat("module t\ngraph g {\n", "body 0 {\n", "}\n", 10000, "}\n");
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "deep.ir", &d);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(diag_text(&d), "deep.ir:19:5: error: bodies nested too deeply (limit 16)"),
                "%s", diag_text(&d));
  diag_fini(&d);
  free(text);
  text = repeat("module t\ngraph g {\n", "body 0 {\n", "}\n", 3, "}\n"); /* within the limit */
  diag_init(&d);
  m = ir_parse(text, "ok.ir", &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  module_free(m);
  diag_fini(&d);
  free(text);
}
END_TEST

START_TEST(frontend_million_term_chain) {
  char *text = repeat("model m(a: f32[2]) {\n  output y = a", " + a", "", 1000000, "\n}\n");
  Diag d;
  diag_init(&d);
  ck_assert_ptr_null(frontend_compile("chain.lathe", text, NULL, &d));
  ck_assert_msg(strstr(diag_text(&d), "chain.lathe:2:") &&
                    strstr(diag_text(&d), "error: expression nested too deeply (limit 1000"),
                "%.500s", diag_text(&d));
  ck_assert_int_eq(d.n_errors, 1);
  diag_fini(&d);
  free(text);
}
END_TEST

static Suite *depth_suite(void) {
  Suite *s = suite_create("depth_limits");
  TCase *tc = tcase_create("readers");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, ir_text_nested_bodies);
  tcase_add_test(tc, frontend_million_term_chain);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(depth_suite());
}
