/* tests/unit/test_runtime_progress.c — the progress bar (runtime/progress.c) and the SVG
 * training plot (runtime/plot.c).
 *
 * The bar's text is checked exactly through rt_progress_format; the non-terminal mode through
 * a temp file (a line per tenth, then the final line); the terminal mode through a
 * pseudo-terminal ('\r' redraws, one final newline). The plot is parsed by Python's XML
 * parser and must contain both panels, the three series, ticks and the legend.
 */
#define _XOPEN_SOURCE 600 /* posix_openpt, grantpt, unlockpt, ptsname */
#include <check.h>
#include <fcntl.h>
#include <math.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

START_TEST(test_format) {
  RtProgress p;
  rt_progress_start(&p, NULL, 1, 3, 60000);
  p.done = 30000;
  p.loss = 0.43121;
  p.acc = 0.851;
  char buf[256];
  rt_progress_format(&p, 2.0, buf, sizeof buf);
  ck_assert_str_eq(buf, "epoch 1/3 [==========>         ] 30000/60000 loss 0.4312 acc 85.1% "
                        "15000 samples/s ETA 0:02");
  p.done = 60;
  p.acc = -1; /* accuracy not known: not shown */
  rt_progress_format(&p, 1.0, buf, sizeof buf);
  ck_assert_str_eq(buf, "epoch 1/3 [>                   ] 60/60000 loss 0.4312 60 samples/s "
                        "ETA 16:39");
  p.done = 1;
  rt_progress_format(&p, 1.0, buf, sizeof buf);
  ck_assert_msg(strstr(buf, "ETA 16:39:59") != NULL, "%s", buf);
  p.done = 0;
  rt_progress_format(&p, 0.0, buf, sizeof buf);
  ck_assert_msg(strstr(buf, "ETA --:--") != NULL, "%s", buf);
  p.done = 60000;
  rt_progress_format(&p, 4.0, buf, sizeof buf);
  ck_assert_msg(strstr(buf, "[====================]") && strstr(buf, "ETA 0:00"), "%s", buf);
}
END_TEST

static int count_char(const char *s, char c) {
  int n = 0;
  for (; *s; s++)
    n += *s == c;
  return n;
}

START_TEST(test_plain_lines_every_tenth) {
  FILE *f = tmpfile();
  ck_assert_ptr_nonnull(f);
  RtProgress p;
  rt_progress_start(&p, f, 2, 5, 1000);
  ck_assert(!p.tty);
  for (int done = 10; done <= 1000; done += 10)
    rt_progress_update(&p, done, 0.5, 0.9);
  rt_progress_update(&p, 5000, 0.5, 0.9); /* clamped to total */
  rt_progress_finish(&p);
  long n = ftell(f);
  rewind(f);
  char *text = calloc((size_t)n + 1, 1);
  ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  ck_assert_int_eq(count_char(text, '\n'), 10); /* 10%..90%, then the final line */
  ck_assert_int_eq(count_char(text, '\r'), 0);
  ck_assert_msg(strncmp(text, "epoch 2/5 [==>", 14) == 0, "%s", text);
  ck_assert_msg(strstr(text, "1000/1000 loss 0.5000 acc 90.0%") != NULL, "%s", text);
  free(text);
}
END_TEST

START_TEST(test_terminal_redraws_in_place) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_int_ge(master, 0);
  ck_assert_int_eq(grantpt(master), 0);
  ck_assert_int_eq(unlockpt(master), 0);
  FILE *tty = fopen(ptsname(master), "w");
  ck_assert_ptr_nonnull(tty);
  RtProgress p;
  rt_progress_start(&p, tty, 1, 1, 100);
  ck_assert(p.tty);
  rt_progress_update(&p, 10, 1.0, 0.5); /* first update draws */
  rt_progress_update(&p, 20, 1.0, 0.5); /* within 0.1 s: skipped */
  rt_progress_update(&p, 30, 1.0, 0.5); /* skipped too, but finish draws it */
  rt_progress_finish(&p);
  fclose(tty);
  char buf[2048] = {0};
  size_t got = 0;
  for (int tries = 0; tries < 50 && got < sizeof buf - 1; tries++) {
    ssize_t r = read(master, buf + got, sizeof buf - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    if (memchr(buf, '\n', got)) break;
  }
  close(master);
  ck_assert_msg(count_char(buf, '\r') >= 2, "no in-place redraw: %s", buf);
  ck_assert_msg(strstr(buf, "10/100") && strstr(buf, "30/100"), "%s", buf);
  ck_assert_msg(count_char(buf, '\n') == 1, "one final newline expected: %s", buf);
  ck_assert_msg(strstr(buf, "20/100") == NULL, "redrawn faster than 10 Hz: %s", buf);
}
END_TEST

static const char *svg_checker =
    "import sys, xml.etree.ElementTree as ET\n"
    "ns = '{http://www.w3.org/2000/svg}'\n"
    "root = ET.parse(sys.argv[1] + '/curves.svg').getroot()\n"
    "assert root.tag == ns + 'svg'\n"
    "texts = [t.text for t in root.iter(ns + 'text')]\n"
    "for want in ['train loss', 'test loss', 'test accuracy', 'epoch', 'loss',\n"
    "             'test accuracy (%)', 'a <b> & c']:\n"
    "    assert want in texts, (want, texts)\n"
    "lines = list(root.iter(ns + 'polyline'))\n"
    "assert len(lines) == 4, len(lines)  # train, test split by the NaN, accuracy\n"
    "pts = [len(l.get('points').split()) for l in lines]\n"
    "assert pts == [6, 2, 3, 6], pts\n"
    "assert '6' in texts and '1' in texts  # epoch ticks\n";

START_TEST(test_plot) {
  char *dir = rtt_mkdtemp();
  const double train[] = {2.3, 1.1, 0.7, 0.5, 0.45, 0.4};
  const double test[] = {2.0, 1.2, NAN, 0.6, 0.55, 0.52};
  const double acc[] = {0.3, 0.6, 0.7, 0.8, 0.84, 0.86};
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_plot_write(rtt_path(dir, "curves.svg"), "a <b> & c", train, test, acc, 6, &d),
                "%s", diag_text(&d));
  rtt_python(svg_checker, dir);
  /* one epoch and missing series still give a valid plot */
  ck_assert(rt_plot_write(rtt_path(dir, "one.svg"), NULL, train, NULL, NULL, 1, &d));
  rtt_expect_error(rt_plot_write(rtt_path(dir, "none.svg"), "t", train, test, acc, 0, &d), &d,
                   "no epochs", "n = 0");
  rtt_expect_error(rt_plot_write("/nonexistent-lathe/p.svg", "t", train, test, acc, 6, &d), &d,
                   "/nonexistent-lathe/p.svg", "bad dir");
  ck_assert_int_eq(rtt_count_entries(dir), 2);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

static Suite *progress_suite(void) {
  Suite *s = suite_create("runtime_progress");
  TCase *tc = tcase_create("progress");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_format);
  tcase_add_test(tc, test_plain_lines_every_tenth);
  tcase_add_test(tc, test_terminal_redraws_in_place);
  tcase_add_test(tc, test_plot);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(progress_suite());
}
