/* tests/unit/test_frontend_state.c — a model's own state (issue 22): `state` and `update` in a
 * model body, kept by the forward entry (GraphOutput.inference, `state_update N inference` in
 * the IR text), and the write_at builtin: its reference semantics on a hand-computed case
 * (the index clamped to [0, n - k]), and the generated C called three times through the
 * embedding API, the state carried between the calls and written in place.
 * (examples/gpt.lathe's decode step on top of them: test_gpt_step.c; the diagnostics:
 * tests/diagnostics/state_update.lathe, write_at_args.lathe.)
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/driver.h"
#include "frontend/frontend.h"
#include "lathe/lathe.h"
#include "tests/unit/testutil.h"

/* x [2, 4, 3] with rows 1..2 of axis 1 (or the clamped start) replaced by v [2, 2, 3] */
static const char *write_text = "model m(x: f32[2, 4, 3], v: f32[2, 2, 3], i: i32[]) {\n"
                                "  output y = write_at(x, v, axis = 1, index = i)\n"
                                "}\n";

static void check_write_at(int32_t index, int64_t start) {
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = DT_F64;
  Module *m = frontend_compile("w.lathe", write_text, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  Tensor in[3], out;
  for (int k = 0; k < 3; k++)
    ck_assert(tensor_alloc(&in[k], m->inputs[k].dtype, &m->inputs[k].shape));
  for (int64_t e = 0; e < 24; e++)
    tensor_set(&in[0], e, (double)e);
  for (int64_t e = 0; e < 12; e++)
    tensor_set(&in[1], e, -1.0 - (double)e);
  tensor_set(&in[2], 0, index);
  ck_assert_msg(ir_eval(m->model, in, NULL, NULL, &out, NULL, &d), "%s", diag_text(&d));
  for (int64_t a = 0; a < 2; a++)
    for (int64_t r = 0; r < 4; r++)
      for (int64_t c = 0; c < 3; c++) {
        bool written = r >= start && r < start + 2;
        double want =
            written ? -1.0 - (double)(a * 6 + (r - start) * 3 + c) : (double)(a * 12 + r * 3 + c);
        ck_assert_msg(tensor_get(&out, a * 12 + r * 3 + c) == want, "index %d [%lld, %lld, %lld]",
                      index, (long long)a, (long long)r, (long long)c);
      }
  for (int k = 0; k < 3; k++)
    tensor_free(&in[k]);
  tensor_free(&out);
  module_free(m);
  diag_fini(&d);
}

START_TEST(write_at_reference) {
  check_write_at(1, 1);
  check_write_at(0, 0);
  check_write_at(2, 2);
  check_write_at(-3, 0); /* clamped like dynamic_update_slice */
  check_write_at(9, 2);
}
END_TEST

/* buf keeps the rows written so far; before sums them before this call's write (its kernel
 * runs first, so the write goes straight into the state), total after it */
static const char *acc_text = "model acc(x: f32[4], pos: i32[]) {\n"
                              "  state buf: f32[3, 4] = zeros\n"
                              "  output before = sum(buf)\n"
                              "  new = write_at(buf, reshape(x, [1, 4]), axis = 0, index = pos)\n"
                              "  update buf = new\n"
                              "  output total = sum(new, axis = 0)\n"
                              "}\n";

START_TEST(forward_keeps_update) {
  DriverOptions o;
  driver_options_init(&o);
  DriverResult r;
  memset(&r, 0, sizeof r);
  Diag d;
  diag_init(&d);
  ck_assert_msg(driver_build(&o, acc_text, &r, &d), "%s", diag_text(&d));
  const Graph *fwd = NULL;
  for (int i = 0; i < r.module->n_entries; i++)
    if (r.module->entries[i]->kind == ENTRY_FORWARD) fwd = r.module->entries[i];
  ck_assert_ptr_nonnull(fwd);
  int updates = 0;
  for (int i = 0; i < fwd->n_outputs; i++)
    updates += fwd->outputs[i].kind == OUT_STATE_UPDATE && fwd->outputs[i].inference;
  ck_assert_int_eq(updates, 1);
  char *text = ir_print(fwd);
  ck_assert_msg(strstr(text, "state_update 0 inference") != NULL, "%s", text);
  free(text);
  driver_result_fini(&r);
  diag_fini(&d);
}
END_TEST

START_TEST(generated_c_carries_state) {
  lathe_options o;
  lathe_options_init(&o);
  char *err = NULL;
  lathe_model *m = lathe_compile_string("acc.lathe", acc_text, &o, &err);
  ck_assert_msg(m != NULL, "%s", err ? err : "");
  char *c = lathe_c_source(m);
  bool in_place = strstr(c, "/* update buf */") == NULL;
  lathe_string_free(c);
  ck_assert_msg(in_place, "the update of buf is copied after the kernels, not written in place");
  const int64_t xs[] = {4}, ts[] = {4};
  float x[4], total[4], before;
  for (int32_t pos = 0; pos < 4; pos++) { /* pos 3 is clamped to row 2 */
    for (int k = 0; k < 4; k++)
      x[k] = (float)(pos * 10 + k);
    lathe_tensor in[2] = {{"x", LATHE_F32, 1, xs, x}, {"pos", LATHE_I32, 0, NULL, &pos}};
    lathe_tensor out[2] = {{"total", LATHE_F32, 1, ts, total},
                           {"before", LATHE_F32, 0, NULL, &before}};
    ck_assert_msg(lathe_call(m, "forward", in, 2, out, 2, NULL) == 0, "%s", lathe_error(m));
    /* rows: 0 + k, 10 + k, then 20 + k and at pos 3 30 + k in row 2 */
    for (int k = 0; k < 4; k++) {
      float want = (float)(k + (pos >= 1 ? 10 + k : 0) + (pos >= 2 ? (pos == 3 ? 30 : 20) + k : 0));
      ck_assert_msg(total[k] == want, "pos %d total[%d] = %g, expected %g", pos, k, total[k], want);
    }
    float sum_before = 0;
    for (int r = 0; r < pos && r < 3; r++)
      for (int k = 0; k < 4; k++)
        sum_before += (float)(r * 10 + k);
    ck_assert_msg(before == sum_before, "pos %d: before %g, expected %g", pos, before, sum_before);
  }
  const lathe_tensor_info *info = NULL;
  const float *buf = lathe_tensor_data(m, "buf", &info);
  ck_assert_ptr_nonnull(buf);
  ck_assert(buf[0] == 0 && buf[4] == 10 && buf[8] == 30 && buf[11] == 33);
  lathe_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("frontend_state");
  TCase *t = tcase_create("state");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, write_at_reference);
  tcase_add_test(t, forward_keeps_update);
  tcase_add_test(t, generated_c_carries_state);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
