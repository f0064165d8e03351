/* tests/unit/test_gpt_step.c — the KV-cache decode step of examples/gpt.lathe (issue 22):
 * `gpt_step` fed a prompt token by token gives, at every position, the logits of the
 * full-sequence `gpt` forward over the whole prompt (the same params: both models name them
 * alike and the initializers are keyed by name, so one seed gives both the same weights).
 *
 * - Generated C through the embedding API (lathe_compile_string, the JIT or cc): the example
 *   at its own sizes (T 64, D 128, 4 blocks) with B = STEP_B = 2 (two random prompts), in
 *   f32 (|step - full| <= 1e-5 * max(1, |full|)) and in f64 (1e-12).
 * - The reference evaluator (ir_eval on the elaborated graphs, f64) at small sizes, with the
 *   state carried from call to call by hand (the update outputs).
 * gpt has no `logits` output (its output is probs): the test adds `output logits` to a copy
 * of the file's text, the one change it makes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/frontend.h"
#include "lathe/lathe.h"
#include "tests/unit/testutil.h"

enum { SEQ = 64, VOCAB = 96, ROWS = 2 };

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t next_id(uint32_t bound) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 33) % bound;
}

/* examples/gpt.lathe with `output logits` after gpt's probs (malloc'd) */
static char *gpt_text(void) {
  char *text = test_read_file("examples/gpt.lathe");
  ck_assert_ptr_nonnull(text);
  const char *anchor = "  output probs = softmax(logits)\n";
  char *at = strstr(text, anchor);
  ck_assert_msg(at != NULL, "examples/gpt.lathe: gpt's '%s' moved", anchor);
  const char *add = "  output logits\n";
  size_t head = (size_t)(at - text) + strlen(anchor), len = strlen(text);
  char *out = malloc(len + strlen(add) + 1);
  memcpy(out, text, head);
  strcpy(out + head, add);
  strcat(out, text + head);
  free(text);
  return out;
}

static lathe_model *compile(const char *text, const char *model, int dtype, uint64_t seed) {
  static char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  static const char *const defines[] = {"B=2", "STEP_B=2"};
  lathe_options o;
  lathe_options_init(&o);
  o.lib_dir = lib;
  o.model_name = model;
  o.dtype = dtype;
  o.defines = defines;
  o.n_defines = 2;
  o.seed = seed;
  o.want_train = 0;
  char *err = NULL;
  lathe_model *m = lathe_compile_string("gpt.lathe", text, &o, &err);
  ck_assert_msg(m != NULL, "%s: %s", model, err ? err : "");
  return m;
}

static double get(const void *data, int dtype, int64_t i) {
  return dtype == LATHE_F64 ? ((const double *)data)[i] : ((const float *)data)[i];
}

/* the step fed prompt[r][t] at pos t, t = 0 .. SEQ-1, against full[r, t, :]; the step's
 * params from the same seed, or (f32) from a checkpoint of the full model's (lathe_load) */
static void check_api(int dtype, double rtol) {
  char *text = gpt_text();
  bool load = dtype == LATHE_F32;
  lathe_model *full = compile(text, "gpt", dtype, 11);
  lathe_model *step = compile(text, "gpt_step", dtype, load ? 12 : 11);
  if (load) {
    char path[] = "/tmp/gpt_step_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_msg(lathe_save(full, path, 0) == 0, "%s", lathe_error(full));
    ck_assert_msg(lathe_load(step, path) == 0, "%s", lathe_error(step));
    unlink(path);
  }
  size_t es = dtype == LATHE_F64 ? sizeof(double) : sizeof(float);
  static int32_t prompt[ROWS * SEQ];
  for (int i = 0; i < ROWS * SEQ; i++)
    prompt[i] = (int32_t)next_id(VOCAB);
  const int64_t xs[] = {ROWS, SEQ}, ls[] = {ROWS, SEQ, VOCAB}, ts[] = {ROWS}, ss[] = {ROWS, VOCAB};
  void *want = calloc(ROWS * SEQ * VOCAB, es), *got = calloc(ROWS * VOCAB, es);
  lathe_tensor x = {"x", LATHE_I32, 2, xs, prompt}, lf = {"logits", dtype, 3, ls, want};
  ck_assert_msg(lathe_call(full, "forward", &x, 1, &lf, 1, NULL) == 0, "%s", lathe_error(full));
  double worst = 0;
  for (int t = 0; t < SEQ; t++) {
    int32_t tok[ROWS], pos = t;
    for (int r = 0; r < ROWS; r++)
      tok[r] = prompt[r * SEQ + t];
    lathe_tensor in[2] = {{"tok", LATHE_I32, 1, ts, tok}, {"pos", LATHE_I32, 0, NULL, &pos}};
    lathe_tensor out = {"logits", dtype, 2, ss, got};
    ck_assert_msg(lathe_call(step, "forward", in, 2, &out, 1, NULL) == 0, "%s", lathe_error(step));
    for (int r = 0; r < ROWS; r++)
      for (int v = 0; v < VOCAB; v++) {
        double a = get(got, dtype, r * VOCAB + v);
        double b = get(want, dtype, ((int64_t)r * SEQ + t) * VOCAB + v);
        double err = fabs(a - b) / fmax(1.0, fabs(b));
        worst = fmax(worst, err);
        ck_assert_msg(err <= rtol, "row %d position %d logit %d: step %.9g, full %.9g", r, t, v, a,
                      b);
      }
  }
  fprintf(stderr, "gpt_step %s: worst relative difference %.3g over %d positions\n",
          dtype == LATHE_F64 ? "f64" : "f32", worst, SEQ);
  free(want);
  free(got);
  lathe_free(full);
  lathe_free(step);
  free(text);
}

START_TEST(step_matches_full_f32) {
  check_api(LATHE_F32, 1e-5);
}
END_TEST

START_TEST(step_matches_full_f64) {
  check_api(LATHE_F64, 1e-12);
}
END_TEST

/* ---- the reference evaluator, at small sizes ---- */

static const Define small[] = {{"B", 1, false},      {"STEP_B", 1, false}, {"T", 6, false},
                               {"D", 16, false},     {"HEADS", 4, false},  {"KV_HEADS", 2, false},
                               {"HIDDEN", 24, false}};
enum { S_T = 6, S_V = 96 };

static Module *elaborate(const char *text, const char *model, Diag *d) {
  static char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  o.float_dtype = DT_F64;
  o.model_name = model;
  o.defines = small;
  o.n_defines = (int)(sizeof small / sizeof small[0]);
  Module *m = frontend_compile("gpt.lathe", text, &o, d);
  ck_assert_msg(m != NULL, "%s: %s", model, diag_text(d));
  return m;
}

static Tensor *init_params(const Module *m) {
  Tensor *p = calloc((size_t)m->n_params + 1, sizeof *p);
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 5, &p[i]);
  return p;
}

static int output_named(const Graph *g, const char *name, OutputKind kind) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].kind == kind && strcmp(g->outputs[i].name, name) == 0) return i;
  ck_abort_msg("no output '%s'", name);
  return -1;
}

START_TEST(step_matches_full_evaluator) {
  char *text = gpt_text();
  Diag d;
  diag_init(&d);
  Module *full = elaborate(text, "gpt", &d), *step = elaborate(text, "gpt_step", &d);
  ck_assert_int_eq(full->n_params, step->n_params);
  Tensor *pf = init_params(full), *ps = init_params(step);
  Tensor in[2], outs[8], states[2];
  ck_assert(tensor_alloc(&in[0], full->inputs[0].dtype, &full->inputs[0].shape));
  ck_assert(tensor_alloc(&in[1], full->inputs[1].dtype, &full->inputs[1].shape));
  for (int t = 0; t < S_T; t++)
    tensor_set(&in[0], t, (double)next_id(S_V));
  ck_assert_msg(ir_eval(full->model, in, pf, NULL, outs, NULL, &d), "%s", diag_text(&d));
  int lo = output_named(full->model, "logits", OUT_VALUE);
  Tensor want = outs[lo];
  for (int i = 0; i < full->model->n_outputs; i++)
    if (i != lo) tensor_free(&outs[i]);
  for (int k = 0; k < 2; k++)
    ck_assert(tensor_alloc(&states[k], DT_F64, &step->states[k].shape));
  const Graph *g = step->model;
  for (int t = 0; t < S_T; t++) {
    Tensor si[2];
    ck_assert(tensor_alloc(&si[0], step->inputs[0].dtype, &step->inputs[0].shape));
    ck_assert(tensor_alloc(&si[1], step->inputs[1].dtype, &step->inputs[1].shape));
    tensor_set(&si[0], 0, tensor_get(&in[0], t));
    tensor_set(&si[1], 0, t);
    ck_assert_msg(ir_eval(g, si, ps, states, outs, NULL, &d), "%s", diag_text(&d));
    const Tensor *got = &outs[output_named(g, "logits", OUT_VALUE)];
    for (int v = 0; v < S_V; v++) {
      double a = tensor_get(got, v), b = tensor_get(&want, t * S_V + v);
      ck_assert_msg(fabs(a - b) <= 1e-12 * fmax(1.0, fabs(b)), "position %d logit %d: %.17g %.17g",
                    t, v, a, b);
    }
    for (int i = 0; i < g->n_outputs; i++) { /* the updates become the next call's state */
      if (g->outputs[i].kind == OUT_STATE_UPDATE) {
        tensor_free(&states[g->outputs[i].target]);
        states[g->outputs[i].target] = outs[i];
      } else {
        tensor_free(&outs[i]);
      }
    }
    tensor_free(&si[0]);
    tensor_free(&si[1]);
  }
  for (int k = 0; k < 2; k++)
    tensor_free(&states[k]);
  tensor_free(&want);
  tensor_free(&in[0]);
  tensor_free(&in[1]);
  for (int i = 0; i < full->n_params; i++)
    tensor_free(&pf[i]);
  for (int i = 0; i < step->n_params; i++)
    tensor_free(&ps[i]);
  free(pf);
  free(ps);
  module_free(full);
  module_free(step);
  diag_fini(&d);
  free(text);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gpt_step");
  TCase *t = tcase_create("gpt_step");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, step_matches_full_evaluator);
  tcase_add_test(t, step_matches_full_f32);
  tcase_add_test(t, step_matches_full_f64);
  suite_add_tcase(s, t);
  return test_run_suite(s);
}
