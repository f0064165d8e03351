/* tests/unit/test_frontend_scope.c — where consts are visible: in the models and train blocks
 * and in the fns of the file that declares them, never in the fns of another file. A library
 * fn's signature `f32[N, C]` therefore keeps N and C as shape variables local to the call even
 * when the model declares `const N` (the bug: the model's N pinned nn's cross_entropy). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "tests/unit/testutil.h"

static Module *compile_with_lib(const char *text, const char *lib, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  diag_init(d);
  return frontend_compile("t.lathe", text, &o, d);
}

static const char *nn_dir(void) {
  static char dir[4096];
  snprintf(dir, sizeof dir, "%s/lib", test_source_dir());
  return dir;
}

/* the shape of the model output or loss called `name` */
static Shape output_shape(const Module *m, const char *name) {
  const Graph *g = m->model;
  for (int i = 0; i < g->n_outputs; i++)
    if (strcmp(g->outputs[i].name, name) == 0) return graph_node(g, g->outputs[i].node)->shape;
  ck_abort_msg("no output %s", name);
  return (Shape){0};
}

/* The transformer's pattern: batch N = 32 and sequence T = 4 flattened to N * T rows for nn's
 * cross_entropy(logits: f32[N, C], label: i32[N]); with the model's N leaking into that
 * signature the call failed with "argument 'logits' must be f32[32, C], got f32[128, 8]". */
START_TEST(test_model_const_does_not_pin_library_shape_vars) {
  const char *text = "import nn\nconst N = 32\nconst T = 4\nconst C = 3\n"
                     "model m(x: f32[N, T, 8], y: i32[N, T]) {\n"
                     "  logits = dense(x, 8)\n"
                     "  loss = cross_entropy(reshape(logits, [N * T, 8]), reshape(y, [N * T]))\n"
                     "  output logits\n}\n"
                     "train m { minimize loss optimizer sgd }\n";
  Diag d;
  Module *m = compile_with_lib(text, nn_dir(), &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Shape s = output_shape(m, "logits");
  ck_assert_int_eq(s.rank, 3);
  ck_assert_int_eq(s.dim[0], 32);
  ck_assert_int_eq(s.dim[2], 8);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a const still constrains the signatures of the fns in its own file */
START_TEST(test_same_file_const_still_checks) {
  const char *text = "const B = 4\nfn f(x: f32[B]) -> f32[B] {\n  return x * 2.0\n}\n"
                     "model m(x: f32[3]) {\n  output y = f(x)\n}\n";
  Diag d;
  Module *m = compile_with_lib(text, nn_dir(), &d);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(diag_text(&d), "in call to 'f': argument 'x' must be f32[4], got f32[3]"),
                "%s", diag_text(&d));
  diag_fini(&d);
  m = compile_with_lib("const B = 4\nfn f(x: f32[B]) -> f32[B] {\n  return x * B\n}\n"
                       "model m(x: f32[B]) {\n  output y = f(x)\n}\n",
                       nn_dir(), &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a library file of its own: its fns neither see the model's consts in their signature (K is
 * a shape variable) nor in their body (M is unknown there) */
START_TEST(test_library_fn_body_does_not_see_model_consts) {
  char dir[] = "/tmp/lathe_scope_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[4200];
  snprintf(path, sizeof path, "%s/mylib.lathe", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("fn twice(x: f32[K]) -> f32[K] {\n  return x * 2.0\n}\n"
        "fn scale(x: f32[K]) -> f32[K] {\n  return x * M\n}\n",
        f);
  fclose(f);
  Diag d;
  Module *m = compile_with_lib("import mylib\nconst K = 7\nconst M = 3\n"
                               "model m(x: f32[5]) {\n  output y = twice(x)\n}\n",
                               dir, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(output_shape(m, "y").dim[0], 5);
  module_free(m);
  diag_fini(&d);
  m = compile_with_lib(
      "import mylib\nconst M = 3\nmodel m(x: f32[5]) {\n  output y = scale(x)\n}\n", dir, &d);
  ck_assert_ptr_null(m);
  /* reported at the user's call, with a note at the library line */
  ck_assert_msg(strstr(diag_text(&d), "t.lathe:4:14: error: unknown name 'M'") &&
                    strstr(diag_text(&d), "mylib.lathe:5:14: note: inside 'scale'"),
                "%s", diag_text(&d));
  diag_fini(&d);
  unlink(path);
  rmdir(dir);
}
END_TEST

static Suite *scope_suite(void) {
  Suite *s = suite_create("frontend_scope");
  TCase *t = tcase_create("consts");
  tcase_add_test(t, test_model_const_does_not_pin_library_shape_vars);
  tcase_add_test(t, test_same_file_const_still_checks);
  tcase_add_test(t, test_library_fn_body_does_not_see_model_consts);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(scope_suite());
}
