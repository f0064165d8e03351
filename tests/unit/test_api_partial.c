/* tests/unit/test_api_partial.c — a partial batch trains exactly (issue 17, docs/dynamic-
 * batch.md): examples/mlp.lathe, examples/cnn.lathe and tests/fixtures/cnn_bn.lathe (batch
 * norm over [N, 4, 12, 12] and [N, 6]) compiled through the embedding API with
 * `-D N=dynamic(max=64)` and called at n = 37 equal PyTorch on those 37 samples
 * (tests/fixtures/make_partial_fixture.py): the loss and the gradient of every param, and
 * for batch norm the running statistics after one train step, relative error <= 1e-5 (of the
 * tensor's largest magnitude; lathe in f32 against PyTorch in f64). A batch of 1 cannot
 * train the [N, 6] batch norm (one value per channel; PyTorch raises "Expected more than 1
 * value per channel when training"): lathe_call refuses train and grad and leaves the model
 * unchanged; forward at n = 1 runs, and so does a train step of the MLP (no batch norm).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lathe/lathe.h"
#include "runtime/runtime.h"
#include "tests/unit/testutil.h"

#define MAX_GRADS 16
#define TOL 1e-5

typedef struct Case {
  const char *model;   /* relative to the repository root */
  const char *weights; /* tests/fixtures/<weights>/weights.safetensors */
  const char *fixture; /* tests/fixtures/partial/<fixture>/ */
} Case;

static const Case cases[] = {
    {"examples/mlp.lathe", "mlp", "mlp"},
    {"examples/cnn.lathe", "cnn", "cnn"},
    {"tests/fixtures/cnn_bn.lathe", "cnn_bn", "bn"},
};

static char *path_of(const char *fmt, const char *a, const char *b) {
  static char buf[4][4096];
  static int next;
  char *p = buf[next++ % 4];
  char rel[1024];
  snprintf(rel, sizeof rel, fmt, a, b);
  snprintf(p, sizeof buf[0], "%s/%s", test_source_dir(), rel);
  return p;
}

static lathe_model *compile_dynamic(const Case *c) {
  static const char *defines[] = {"N=dynamic(max=64)"};
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  lathe_options o;
  lathe_options_init(&o);
  o.defines = defines;
  o.n_defines = 1;
  o.lib_dir = lib;
  o.want_grad = 1;
  char *err = NULL;
  lathe_model *m = lathe_compile_file(path_of("%s%s", c->model, ""), &o, &err);
  ck_assert_msg(m != NULL, "%s: %s", c->model, err ? err : "");
  ck_assert_int_eq(lathe_info(m)->dyn_max, 64);
  ck_assert_msg(lathe_load(m, path_of("tests/fixtures/%s/%s", c->weights, "weights.safetensors")) ==
                    0,
                "%s", lathe_error(m));
  return m;
}

static void read_npy(const char *path, Tensor *t) {
  Diag d;
  diag_init(&d);
  bool ok = rt_npy_read(path, t, &d);
  ck_assert_msg(ok, "cannot read %s", path);
  diag_fini(&d);
}

static void read_set(const char *path, RtTensorSet *set) {
  Diag d;
  diag_init(&d);
  rt_set_init(set);
  bool ok = rt_safetensors_read(path, set, &d);
  ck_assert_msg(ok, "cannot read %s", path);
  diag_fini(&d);
}

/* |got - want| <= TOL * max |want| over the tensor (and at least TOL * 1e-3 absolute, for a
 * tensor of zeros) */
static double check_close(const char *what, const char *name, const float *got,
                          const Tensor *want) {
  int64_t n = shape_numel(&want->shape);
  double scale = 1e-3, worst = 0;
  for (int64_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(tensor_get(want, i)));
  for (int64_t i = 0; i < n; i++)
    worst = fmax(worst, fabs((double)got[i] - tensor_get(want, i)));
  ck_assert_msg(worst <= TOL * scale, "%s %s: max |got - PyTorch| %.3g, %.3g of max |PyTorch| %.3g",
                what, name, worst, worst / scale, scale);
  return worst / scale;
}

static lathe_tensor as_arg(const char *name, const Tensor *t) {
  return (lathe_tensor){name, (int)t->dtype, t->shape.rank, t->shape.dim, t->data};
}

/* the grad entry at n = 37: the loss and d loss / d param for every param in the fixture */
static void check_grads(lathe_model *m, const Case *c, const lathe_tensor in[2]) {
  RtTensorSet want;
  read_set(path_of("tests/fixtures/partial/%s/%s", c->fixture, "grads.safetensors"), &want);
  ck_assert_int_le(want.n, MAX_GRADS);
  lathe_tensor out[MAX_GRADS];
  float *bufs[MAX_GRADS];
  for (int i = 0; i < want.n; i++) {
    const Tensor *w = &want.items[i].t;
    bufs[i] = calloc((size_t)shape_numel(&w->shape), sizeof(float));
    out[i] = (lathe_tensor){want.items[i].name, LATHE_F32, w->shape.rank, w->shape.dim, bufs[i]};
  }
  double loss = 0;
  ck_assert_msg(lathe_call(m, "grad", in, 2, out, want.n, &loss) == 0, "%s", lathe_error(m));
  Tensor want_loss;
  read_npy(path_of("tests/fixtures/partial/%s/%s", c->fixture, "loss.npy"), &want_loss);
  double wl = tensor_get(&want_loss, 0);
  ck_assert_msg(fabs(loss - wl) <= TOL * fabs(wl), "%s: loss %.9g, PyTorch %.9g", c->model, loss,
                wl);
  double worst = 0;
  for (int i = 0; i < want.n; i++) {
    worst = fmax(worst, check_close(c->model, want.items[i].name, bufs[i], &want.items[i].t));
    free(bufs[i]);
  }
  printf("%s at n = 37: loss %.7g (PyTorch %.7g), %d gradients within %.2g of PyTorch\n", c->model,
         loss, wl, want.n, worst);
  tensor_free(&want_loss);
  rt_set_fini(&want);
}

/* one train step at n = 37 moves every running statistic as PyTorch's train-mode forward does */
static void check_running_stats(lathe_model *m, const Case *c, const lathe_tensor in[2]) {
  RtTensorSet want;
  read_set(path_of("tests/fixtures/partial/%s/%s", c->fixture, "state.safetensors"), &want);
  ck_assert_int_eq(want.n, 4);
  ck_assert_msg(lathe_call(m, "train", in, 2, NULL, 0, NULL) == 0, "%s", lathe_error(m));
  for (int i = 0; i < want.n; i++) {
    const float *got = lathe_tensor_data(m, want.items[i].name, NULL);
    ck_assert_msg(got != NULL, "no state '%s'", want.items[i].name);
    check_close(c->model, want.items[i].name, got, &want.items[i].t);
  }
  rt_set_fini(&want);
}

START_TEST(partial_batch_equals_pytorch) {
  const Case *c = &cases[_i];
  lathe_model *m = compile_dynamic(c);
  Tensor x, label;
  read_npy(path_of("tests/fixtures/partial/%s/%s", c->fixture, "x.npy"), &x);
  read_npy(path_of("tests/fixtures/partial/%s/%s", c->fixture, "label.npy"), &label);
  ck_assert_int_eq(x.shape.dim[0], 37);
  lathe_tensor in[2] = {as_arg("x", &x), as_arg("label", &label)};
  check_grads(m, c, in);
  if (strcmp(c->fixture, "bn") == 0) check_running_stats(m, c, in);
  tensor_free(&x);
  tensor_free(&label);
  lathe_free(m);
}
END_TEST

/* a batch of 1 at the [N, 6] batch norm: train and grad refused before anything changes (the
 * running statistics and params stay bit for bit), forward runs; the MLP (no batch norm)
 * trains on one sample */
START_TEST(batch_of_one_cannot_train_batch_norm) {
  lathe_model *m = compile_dynamic(&cases[2]);
  const lathe_model_info *info = lathe_info(m);
  size_t pb = info->params_bytes, sb = info->state_bytes;
  void *params = malloc(pb), *state = malloc(sb);
  memcpy(params, lathe_params(m), pb);
  memcpy(state, lathe_state(m), sb);
  static float x[144], probs[3];
  for (int i = 0; i < 144; i++)
    x[i] = (float)(i % 7) / 7.0f;
  int32_t label[1] = {2};
  const int64_t xs[] = {1, 1, 12, 12}, ls[] = {1}, ps[] = {1, 3};
  lathe_tensor in[2] = {{"x", LATHE_F32, 4, xs, x}, {"label", LATHE_I32, 1, ls, label}};
  const char *entries[] = {"train", "grad"};
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(lathe_call(m, entries[i], in, 2, NULL, 0, NULL), -1);
    const char *err = lathe_error(m);
    ck_assert_msg(strstr(err, "a batch of 1 cannot train this model: batch norm 'f'") &&
                      strstr(err, "Expected more than 1 value per channel when training"),
                  "%s", err);
  }
  ck_assert(memcmp(params, lathe_params(m), pb) == 0 && memcmp(state, lathe_state(m), sb) == 0);
  lathe_tensor out = {"probs", LATHE_F32, 2, ps, probs};
  ck_assert_msg(lathe_call(m, "forward", in, 1, &out, 1, NULL) == 0, "%s", lathe_error(m));
  ck_assert(isfinite(probs[0]) && fabsf(probs[0] + probs[1] + probs[2] - 1.0f) < 1e-5f);
  const int64_t two[] = {2, 1, 12, 12}, ls2[] = {2};
  static float x2[288];
  int32_t label2[2] = {2, 0};
  memcpy(x2, x, sizeof x), memcpy(x2 + 144, x, sizeof x);
  x2[144] = 0.5f;
  lathe_tensor in2[2] = {{"x", LATHE_F32, 4, two, x2}, {"label", LATHE_I32, 1, ls2, label2}};
  ck_assert_msg(lathe_call(m, "train", in2, 2, NULL, 0, NULL) == 0, "%s", lathe_error(m));
  const float *rv = lathe_tensor_data(m, "f.running_var", NULL);
  for (int c = 0; c < 6; c++)
    ck_assert_msg(isfinite(rv[c]), "f.running_var[%d] = %g after a batch of 2", c, rv[c]);
  free(params), free(state);
  lathe_free(m);

  m = compile_dynamic(&cases[0]); /* no batch norm: one sample trains */
  static float xm[784];
  const int64_t xms[] = {1, 784};
  lathe_tensor inm[2] = {{"x", LATHE_F32, 2, xms, xm}, {"label", LATHE_I32, 1, ls, label}};
  double loss = 0;
  ck_assert_msg(lathe_call(m, "train", inm, 2, NULL, 0, &loss) == 0, "%s", lathe_error(m));
  ck_assert(isfinite(loss));
  lathe_free(m);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("api_partial");
  TCase *tc = tcase_create("partial");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, partial_batch_equals_pytorch, 0, (int)(sizeof cases / sizeof *cases));
  tcase_add_test(tc, batch_of_one_cannot_train_batch_norm);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(suite());
}
