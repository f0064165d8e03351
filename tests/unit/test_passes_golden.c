/* tests/unit/test_passes_golden.c — golden pass tests: the .ir files of tests/passes/.
 *
 * Each file is IR text with a `; RUN: pass pass...` line naming the passes to run on its
 * graph, in order, and an `; EXPECT:` block: the IR after them (as ir_print writes it), each
 * line prefixed by "; ". After `fuse`, the fusion groups follow the IR as `; group G: %a %b`
 * lines (ir_print does not show Node.group). The verifier runs after every pass. Set
 * LATHE_GOLDEN_PRINT=1 to print what a file actually produces.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "testutil.h"

typedef bool (*PassFn)(Graph *, PassCtx *);

static PassFn pass_by_name(const char *name) {
#define PASS(n, level, desc)                                                                       \
  if (strcmp(name, #n) == 0) return pass_##n;
#include "passes/passes.def"
#undef PASS
  return NULL;
}

/* the IR after the passes, plus group lines; malloc'd */
static char *golden_actual(Graph *g, bool groups) {
  char *ir = ir_print(g);
  size_t cap = strlen(ir) + 64 * (g->n_nodes + 1), len = strlen(ir);
  char *out = malloc(cap);
  memcpy(out, ir, len + 1);
  free(ir);
  for (uint32_t s = 0; groups && s < g->n_nodes; s++) {
    if (g->nodes[s].group != (int32_t)s) continue;
    len += (size_t)snprintf(out + len, cap - len, "; group %u:", s);
    for (uint32_t id = s; id < g->n_nodes; id++)
      if (g->nodes[id].group == (int32_t)s)
        len += (size_t)snprintf(out + len, cap - len, " %%%u", id);
    len += (size_t)snprintf(out + len, cap - len, "\n");
  }
  return out;
}

/* the EXPECT block without its "; " prefixes; malloc'd */
static char *golden_expected(const char *text) {
  const char *p = strstr(text, "; EXPECT:\n");
  ck_assert_msg(p != NULL, "no '; EXPECT:' block");
  p += strlen("; EXPECT:\n");
  char *out = calloc(strlen(p) + 1, 1), *w = out;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    if (n >= 2 && p[0] == ';' && p[1] == ' ') {
      memcpy(w, p + 2, n - 2);
      w += n - 2;
    } else if (!(n == 1 && p[0] == ';')) {
      ck_abort_msg("EXPECT lines start with '; '");
    }
    *w++ = '\n';
    p += n + (eol ? 1 : 0);
  }
  return out;
}

static void run_golden(const char *name) {
  char path[512];
  snprintf(path, sizeof path, "tests/passes/%s", name);
  char *text = test_read_file(path);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  const char *run = strstr(text, "; RUN:");
  ck_assert_msg(run != NULL, "%s: no '; RUN:' line", name);
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, path, &d);
  ck_assert_msg(m != NULL, "%s: %s", name, diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  bool fused = false;
  char word[64];
  for (const char *p = run + 6; sscanf(p, " %63[a-z_]", word) == 1;) {
    PassFn fn = pass_by_name(word);
    ck_assert_msg(fn != NULL, "%s: unknown pass '%s'", name, word);
    ck_assert_msg(fn(m->model, &c), "%s: %s failed: %s", name, word, diag_text(&d));
    ck_assert_msg(ir_verify(m->model, &d), "%s: after %s: %s", name, word, diag_text(&d));
    fused |= strcmp(word, "fuse") == 0;
    p = strstr(p, word) + strlen(word);
    if (*p == '\n') break;
  }
  char *actual = golden_actual(m->model, fused);
  if (getenv("LATHE_GOLDEN_PRINT")) fprintf(stderr, "=== %s\n%s", name, actual);
  char *expected = golden_expected(text);
  ck_assert_msg(strcmp(actual, expected) == 0, "%s:\n--- expected\n%s--- actual\n%s", name,
                expected, actual);
  free(actual);
  free(expected);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
  free(text);
}

START_TEST(test_golden_files) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tests/passes", test_source_dir());
  DIR *dp = opendir(dir);
  ck_assert_msg(dp != NULL, "cannot open %s", dir);
  int count = 0;
  for (struct dirent *e; (e = readdir(dp)) != NULL;) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".ir") != 0) continue;
    run_golden(e->d_name);
    count++;
  }
  closedir(dp);
  ck_assert_int_ge(count, 3);
}
END_TEST

static Suite *golden_suite(void) {
  Suite *s = suite_create("passes_golden");
  TCase *tc = tcase_create("golden");
  tcase_add_test(tc, test_golden_files);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(golden_suite()); }
