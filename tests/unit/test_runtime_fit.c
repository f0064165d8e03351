/* tests/unit/test_runtime_fit.c — the training loop, evaluation and prediction of
 * lathe/train.h through the C API alone, on a model written by hand here (its descriptor and
 * entry points in plain C, as generated code would export them): linear regression
 * pred = x·w + b, batch 4, trained by SGD inside the "train" entry.
 *
 * Checks: lathe_fit on in-memory arrays (lathe_dataset_wrap) with a split reaches R² ≈ 1;
 * early stopping restores the best epoch's weights; the epoch log and checkpoints are written
 * (and a checkpoint holds lathe.epoch); lathe_evaluate's metrics and lathe_predict's .npy agree
 * with the weights; a dataset whose arrays do not fit the inputs is an error naming both.
 */
#include <check.h>
#include <math.h>

#include "runtime/data.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

enum { B = 4 };

typedef struct Params {
  float w[2], b;
} Params;

static double lr = 0.1; /* the "compiled" learning rate */

/* pred and the mean squared error of a batch */
static double forward(const Params *p, const float *x, const float *y, float *pred) {
  double loss = 0;
  for (int i = 0; i < B; i++) {
    pred[i] = x[2 * i] * p->w[0] + x[2 * i + 1] * p->w[1] + p->b;
    if (y) loss += (pred[i] - y[i]) * (double)(pred[i] - y[i]) / B;
  }
  return loss;
}

static void call_train(void *const *args, double *ret) {
  Params *p = args[0];
  const float *x = args[1], *y = args[2];
  float pred[B];
  *ret = forward(p, x, y, pred);
  for (int i = 0; i < B; i++) {
    double g = 2.0 * (pred[i] - y[i]) / B;
    p->w[0] -= (float)(lr * g * x[2 * i]), p->w[1] -= (float)(lr * g * x[2 * i + 1]);
    p->b -= (float)(lr * g);
  }
}

static void call_evaluate(void *const *args, double *ret) {
  *ret = forward(args[0], args[1], args[2], args[3]);
}

static void call_forward(void *const *args, double *ret) {
  *ret = forward(args[0], args[1], NULL, args[2]);
}

static void init(void *params, void *state, uint64_t seed) {
  memset(params, 0, sizeof(Params));
}

static const int64_t xs[] = {B, 2}, ys[] = {B, 1}, ws[] = {2}, bs[] = {1};
static const lathe_tensor_info x_t = {"x", LATHE_F32, 2, xs, 0, 32, 0};
static const lathe_tensor_info y_t = {"y", LATHE_F32, 2, ys, 0, 16, 0};
static const lathe_tensor_info pred_t = {"pred", LATHE_F32, 2, ys, 0, 16, 0};
static const lathe_tensor_info params_t[] = {{"w", LATHE_F32, 1, ws, 0, 8, 0},
                                             {"b", LATHE_F32, 1, bs, 8, 4, 0}};
static const lathe_arg_info train_args[] = {
    {LATHE_ARG_PARAMS, NULL}, {LATHE_ARG_INPUT, &x_t}, {LATHE_ARG_INPUT, &y_t}};
static const lathe_arg_info eval_args[] = {{LATHE_ARG_PARAMS, NULL},
                                           {LATHE_ARG_INPUT, &x_t},
                                           {LATHE_ARG_INPUT, &y_t},
                                           {LATHE_ARG_OUTPUT, &pred_t}};
static const lathe_arg_info fwd_args[] = {
    {LATHE_ARG_PARAMS, NULL}, {LATHE_ARG_INPUT, &x_t}, {LATHE_ARG_OUTPUT, &pred_t}};
static const lathe_entry_info entries[] = {
    {"forward", "lin_forward", LATHE_ENTRY_FORWARD, 0, 3, fwd_args, 0, call_forward, 0, 0, 0,
     NULL, 0, NULL},
    {"train", "lin_train", LATHE_ENTRY_TRAIN, 1, 3, train_args, 0, call_train, 0, 0, 0, NULL,
     0, NULL},
    {"evaluate", "lin_evaluate", LATHE_ENTRY_FORWARD, 1, 4, eval_args, 0, call_evaluate, 0, 0,
     0, NULL, 0, NULL},
};
static const lathe_model_info lin = {.version = LATHE_MODEL_INFO_VERSION,
                                     .name = "lin",
                                     .source = "test",
                                     .params_bytes = sizeof(Params),
                                     .n_params = 2,
                                     .params = params_t,
                                     .n_entries = 3,
                                     .entries = entries,
                                     .init = init};

enum { N = 64 };
static float data_x[N * 2], data_y[N];

static lathe_dataset *make_data(void) {
  for (int i = 0; i < N; i++) {
    data_x[2 * i] = (float)sin(i * 1.3), data_x[2 * i + 1] = (float)cos(i * 0.7);
    data_y[i] = 2.0f * data_x[2 * i] - 3.0f * data_x[2 * i + 1] + 0.5f;
  }
  const int64_t one[] = {1}, two[] = {2};
  lathe_array_info info[] = {{"x", LATHE_F32, 1, two, 2}, {"y", LATHE_F32, 1, one, 1}};
  const void *data[] = {data_x, data_y};
  char *err = NULL;
  lathe_dataset *ds = lathe_dataset_wrap(info, data, 2, N, &err);
  ck_assert_msg(ds != NULL, "%s", err ? err : "");
  return ds;
}

START_TEST(test_fit_evaluate_predict) {
  char *dir = rtt_mkdtemp(), *err = NULL;
  lathe_dataset *ds = make_data(), *train = NULL, *val = NULL;
  ck_assert_int_eq(lathe_dataset_split(ds, 0.25, 1, NULL, &train, &val, &err), 0);
  Params p;
  init(&p, NULL, 0);
  lathe_fit_options o;
  lathe_fit_options_init(&o);
  o.epochs = 40;
  o.log_path = rtt_path(dir, "log.jsonl");
  o.checkpoint = rtt_path(dir, "last.safetensors");
  lathe_fit_result res;
  ck_assert_msg(lathe_fit(&lin, &p, NULL, train, val, &o, &res, &err) == 0, "%s", err);
  ck_assert_int_eq(res.epochs, 40);
  ck_assert_int_eq(res.last.val.task, LATHE_TASK_REGRESS);
  ck_assert_msg(res.last.val.r2 > 0.999, "r2 %g", res.last.val.r2);
  ck_assert(fabs(p.w[0] - 2) < 0.05 && fabs(p.w[1] + 3) < 0.05 && fabs(p.b - 0.5) < 0.05);
  size_t len;
  unsigned char *log = rtt_read(o.log_path, &len);
  int lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += log[i] == '\n';
  ck_assert_int_eq(lines, 40);
  ck_assert_ptr_nonnull(strstr((char *)log, "\"val_r2\""));
  free(log);
  RtTensorSet set;
  rt_set_init(&set);
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_safetensors_read(o.checkpoint, &set, &d), "%s", diag_text(&d));
  const Tensor *e = rt_set_find(&set, "lathe.epoch");
  ck_assert(e && ((const int64_t *)e->data)[0] == 40 && rt_set_find(&set, "w"));
  rt_set_fini(&set);
  lathe_evaluation ev;
  ck_assert_int_eq(lathe_evaluate(&lin, &p, NULL, ds, LATHE_TASK_AUTO, &ev, &err), 0);
  ck_assert_int_eq(ev.m.n, N);
  ck_assert(ev.m.r2 > 0.999 && fabs(ev.m.mse - ev.m.loss) < 1e-9);
  lathe_evaluation_free(&ev);
  const char *out = rtt_path(dir, "pred.npy");
  ck_assert_msg(lathe_predict(&lin, &p, NULL, ds, out, &err) == 0, "%s", err);
  Tensor t;
  ck_assert_msg(rt_npy_read(out, &t, &d), "%s", diag_text(&d));
  ck_assert(t.shape.rank == 2 && t.shape.dim[0] == N && t.shape.dim[1] == 1);
  for (int i = 0; i < N; i++) /* the padded last batch does not leak into row N-1 */
    ck_assert(fabs(((float *)t.data)[i] -
                   (data_x[2 * i] * p.w[0] + data_x[2 * i + 1] * p.w[1] + p.b)) < 1e-5);
  tensor_free(&t);
  diag_fini(&d);
  lathe_dataset_free(train), lathe_dataset_free(val), lathe_dataset_free(ds);
  rtt_rmdir(dir);
}
END_TEST

/* val is the training set with the targets negated: every epoch of training makes it worse,
 * so patience 2 stops after epoch 3 and restores epoch 1's weights */
START_TEST(test_early_stop_restores_best) {
  lathe_dataset *ds = make_data();
  static float neg_y[N];
  for (int i = 0; i < N; i++)
    neg_y[i] = -data_y[i];
  const int64_t one[] = {1}, two[] = {2};
  lathe_array_info info[] = {{"x", LATHE_F32, 1, two, 2}, {"y", LATHE_F32, 1, one, 1}};
  const void *data[] = {data_x, neg_y};
  char *err = NULL;
  lathe_dataset *val = lathe_dataset_wrap(info, data, 2, N, &err);
  Params p, first;
  init(&p, NULL, 0);
  lathe_fit_options o;
  lathe_fit_options_init(&o);
  o.epochs = 20, o.early_stop = 2, o.monitor = "val_mse";
  lathe_fit_result res;
  ck_assert_int_eq(lathe_fit(&lin, &p, NULL, ds, val, &o, &res, &err), 0);
  ck_assert(res.stopped_early);
  ck_assert_int_eq(res.epochs, 3);
  ck_assert_int_eq(res.best_epoch, 1);
  init(&first, NULL, 0); /* replay one epoch: the restored weights are epoch 1's */
  o.epochs = 1, o.early_stop = 0;
  ck_assert_int_eq(lathe_fit(&lin, &first, NULL, ds, val, &o, NULL, &err), 0);
  ck_assert(memcmp(&p, &first, sizeof p) == 0);
  lathe_dataset_free(val), lathe_dataset_free(ds);
}
END_TEST

START_TEST(test_bad_binding) {
  const int64_t three[] = {3}, one[] = {1};
  float x[8 * 3] = {0}, y[8] = {0};
  lathe_array_info info[] = {{"y", LATHE_F32, 1, one, 1}, {"x", LATHE_F32, 1, three, 3}};
  const void *data[] = {y, x};
  char *err = NULL;
  lathe_dataset *ds = lathe_dataset_wrap(info, data, 2, 8, &err);
  Params p;
  init(&p, NULL, 0);
  ck_assert_int_ne(lathe_fit(&lin, &p, NULL, ds, NULL, NULL, NULL, &err), 0);
  ck_assert_msg(strstr(err, "input 'x' of entry 'train' takes f32[2] per sample") &&
                    strstr(err, "has f32[3]"),
                "%s", err);
  free(err);
  x[5] = NAN;
  ck_assert_ptr_null(lathe_dataset_wrap(info, data, 2, 8, &err));
  ck_assert_msg(strstr(err, "has a NaN"), "%s", err);
  free(err);
  lathe_dataset_free(ds);
}
END_TEST

static Suite *fit_suite(void) {
  Suite *s = suite_create("runtime_fit");
  TCase *tc = tcase_create("fit");
  tcase_add_test(tc, test_fit_evaluate_predict);
  tcase_add_test(tc, test_early_stop_restores_best);
  tcase_add_test(tc, test_bad_binding);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(fit_suite());
}
