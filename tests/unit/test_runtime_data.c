/* tests/unit/test_runtime_data.c — the dataset readers (runtime/data*.c), the split, the
 * metrics (runtime/metrics.c) and early stopping's decision.
 *
 * Readers: .npy files and directories (memory-mapped), .npz written by numpy (stored and
 * deflated), CSV with quoting edge cases, string labels, column selection; and malformed
 * inputs — ragged rows, non-numeric and non-finite values, unknown columns, arrays of
 * different lengths, NaN in a .npy, a corrupt archive, an empty file — each a clear error
 * naming the file (and line for CSV); image folders (PNG, JPEG, a truncated JPEG). Metrics are
 * checked against values worked out by hand (tests/data_metrics.sh checks them against scikit-learn
 * on a real model's predictions).
 */
#include <check.h>
#include <math.h>
#include <sys/stat.h>

#include "runtime/data.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

/* removes dir and everything under it (rtt_rmdir is one level deep) */
static void remove_tree(const char *dir) {
  DIR *h = opendir(dir);
  for (struct dirent *e; h && (e = readdir(h));) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char path[4352];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
      remove_tree(path);
    else
      unlink(path);
  }
  if (h) closedir(h);
  rmdir(dir);
}

static lathe_dataset *csv(const char *text, const char *features, const char *target, Diag *d) {
  lathe_dataset *ds = rt_data_new("t.csv");
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.features = features, o.target = target;
  if (rt_data_parse_csv(ds, "t.csv", text, strlen(text), ',', &o, d)) return ds;
  lathe_dataset_free(ds);
  return NULL;
}

START_TEST(test_csv_quoting_and_labels) {
  Diag d;
  diag_init(&d);
  const char *text = "a,\"b, with comma\",note,kind\r\n"
                     "1,2.5,\"say \"\"hi\"\"\",dog\r\n"
                     "3,-4e1,\"two\nlines\",cat\r\n"
                     "5,6,x,dog\r\n";
  lathe_dataset *ds = csv(text, "a,b, with comma", NULL, &d);
  ck_assert_ptr_null(ds); /* "a,b, with comma" splits at commas: ' with comma' is no column */
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "no column"));
  diag_fini(&d), diag_init(&d);
  ds = csv(text, "0:2", "kind", &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(ds->n, 3);
  int x = rt_data_find(ds, "x"), k = rt_data_find(ds, "kind");
  ck_assert_int_ge(x, 0);
  ck_assert_int_ge(k, 0);
  const float *row1 = rt_data_at(ds, x, 1);
  ck_assert(row1[0] == 3.0f && row1[1] == -40.0f);
  ck_assert_int_eq(ds->store->arrays[k].dtype, DT_I32);
  const int32_t *ids = (const int32_t *)ds->store->arrays[k].data;
  ck_assert(ids[0] == 1 && ids[1] == 0 && ids[2] == 1); /* cat = 0, dog = 1, sorted */
  ck_assert_str_eq(lathe_dataset_class_name(ds, 0), "cat");
  lathe_dataset_free(ds);
  diag_fini(&d);
}
END_TEST

START_TEST(test_csv_errors) {
  Diag d;
  diag_init(&d);
  static const struct {
    const char *text, *features, *target, *want;
  } cases[] = {
      {"a,b,y\n1,2,3\n4,5\n", NULL, NULL, "t.csv:3: 2 fields, expected 3"},
      {"a,b,y\n1,2,3\n4,5,6,7\n", NULL, NULL, "t.csv:3: 4 fields"},
      {"a,b,y\n1,oops,3\n", NULL, NULL,
       "t.csv:2: column 'b': expected a finite number, got 'oops'"},
      {"a,b,y\n1,nan,3\n", NULL, NULL, "column 'b': expected a finite number"},
      {"a,b,y\n1,inf,3\n", NULL, NULL, "column 'b'"},
      {"a,b,y\n1,,3\n", NULL, NULL, "got ''"},
      {"a,b,y\n1,2,3\n", NULL, "z", "no column 'z' (--target)"},
      {"a,b,y\n1,2,3\n", "a,q", NULL, "no column 'q' (--features)"},
      {"a,b,y\n1,2,3\n", "0:9", NULL, "expected a range within 0:3"},
      {"", NULL, NULL, "empty file"},
      {"a,b,y\n", NULL, NULL, "no data rows"},
      {"a,b,y\n1,\"2,3\n", NULL, NULL, "unterminated quoted field"},
      {"a,b,y\n1,2\"x\",3\n", NULL, NULL, "malformed CSV"},
      {"y\n1\n", NULL, NULL, "no feature columns"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    lathe_dataset *ds = csv(cases[i].text, cases[i].features, cases[i].target, &d);
    rtt_expect_error(ds != NULL, &d, cases[i].want, cases[i].text);
    lathe_dataset_free(ds);
  }
  diag_fini(&d);
}
END_TEST

/* a file with a subset of training's classes keeps training's ids; an unknown class fails */
START_TEST(test_csv_training_classes) {
  Diag d;
  diag_init(&d);
  char *names[] = {"ant", "bee", "cat"};
  lathe_dataset *ds = csv("a,kind\n1,cat\n2,bee\n3,cat\n", NULL, NULL, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  int k = rt_data_find(ds, "kind");
  const int32_t *ids = (const int32_t *)ds->store->arrays[k].data;
  ck_assert(ids[0] == 1 && ids[1] == 0); /* file-local: bee = 0, cat = 1 */
  ck_assert(rt_data_use_classes(ds, names, 3, "train.csv", &d));
  ck_assert(ids[0] == 2 && ids[1] == 1 && ids[2] == 2); /* training's: bee = 1, cat = 2 */
  ck_assert_str_eq(lathe_dataset_class_name(ds, 0), "ant");
  ck_assert(rt_data_use_classes(ds, names, 3, "train.csv", &d)); /* idempotent */
  ck_assert(ids[0] == 2 && ids[1] == 1);
  lathe_dataset_free(ds);
  ds = csv("a,kind\n1,cat\n2,dog\n", NULL, NULL, &d);
  rtt_expect_error(rt_data_use_classes(ds, names, 3, "train.csv", &d), &d,
                   "t.csv: class 'dog' is not one of the 3 classes of train.csv", "unknown class");
  lathe_dataset_free(ds);
  ds = csv("a,b\n1,2\n", NULL, "", &d); /* no target: the names only */
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert(rt_data_use_classes(ds, names, 3, "train.csv", &d));
  ck_assert_str_eq(lathe_dataset_class_name(ds, 2), "cat");
  ck_assert_int_eq(((const float *)rt_data_at(ds, rt_data_find(ds, "x"), 0))[1], 2);
  lathe_dataset_free(ds);
  diag_fini(&d);
}
END_TEST

static const char *numpy_files =
    "import numpy as np, sys, zipfile\n"
    "d = sys.argv[1]\n"
    "np.save(d + '/dir/x.npy', np.arange(12, dtype=np.float32).reshape(4, 3))\n"
    "np.save(d + '/dir/label.npy', np.array([0, 1, 2, 1], dtype=np.int64))\n"
    "np.savez(d + '/plain.npz', x=np.ones((4, 2, 2)), label=np.arange(4, dtype=np.int32))\n"
    "np.savez_compressed(d + '/zipped.npz', x=np.ones((5, 2), np.float32))\n"
    "np.save(d + '/short/x.npy', np.zeros((4, 3), np.float32))\n"
    "np.save(d + '/short/label.npy', np.zeros(3, np.int32))\n"
    "a = np.zeros((3, 2), np.float32); a[2, 1] = np.nan\n"
    "np.save(d + '/nan.npy', a)\n"
    "open(d + '/bad.npz', 'wb').write(open(d + '/zipped.npz', 'rb').read()[:-30])\n"
    "z = zipfile.ZipFile(d + '/other.npz', 'w'); z.writestr('readme.txt', 'hi'); z.close()\n";

START_TEST(test_npy_npz_and_errors) {
  char *dir = rtt_mkdtemp();
  ck_assert_int_eq(mkdir(rtt_path(dir, "dir"), 0700), 0);
  ck_assert_int_eq(mkdir(rtt_path(dir, "short"), 0700), 0);
  rtt_python(numpy_files, dir);
  Diag d;
  diag_init(&d);
  lathe_dataset *ds = rt_data_open(rtt_path(dir, "dir"), NULL, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(ds->n, 4);
  int x = rt_data_find(ds, "x"), y = rt_data_find(ds, "label");
  ck_assert_ptr_nonnull(ds->store->arrays[x].map); /* memory-mapped, not copied */
  ck_assert_int_eq(ds->store->arrays[x].per, 3);
  ck_assert(((const float *)rt_data_at(ds, x, 2))[1] == 7.0f);
  ck_assert_int_eq(*(const int64_t *)rt_data_at(ds, y, 3), 1);
  lathe_dataset_free(ds);
  ds = rt_data_open(rtt_path(dir, "plain.npz"), NULL, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(ds->store->arrays[rt_data_find(ds, "x")].sample.rank, 2);
  lathe_dataset_free(ds);
  ds = rt_data_open(rtt_path(dir, "zipped.npz"), NULL, &d);
  ck_assert_msg(ds != NULL && ds->n == 5, "%s", diag_text(&d));
  lathe_dataset_free(ds);
  rtt_expect_error(rt_data_open(rtt_path(dir, "short"), NULL, &d) != NULL, &d,
                   "label.npy has 3: arrays of a dataset must have the same length",
                   "lengths differ");
  rtt_expect_error(rt_data_open(rtt_path(dir, "nan.npy"), NULL, &d) != NULL, &d,
                   "sample 2 of 'nan' has a NaN", "NaN feature");
  rtt_expect_error(rt_data_open(rtt_path(dir, "bad.npz"), NULL, &d) != NULL, &d, "bad.npz",
                   "truncated npz");
  rtt_expect_error(rt_data_open(rtt_path(dir, "other.npz"), NULL, &d) != NULL, &d,
                   "not a .npy member", "npz of text");
  rtt_expect_error(rt_data_open(rtt_path(dir, "missing.npy"), NULL, &d) != NULL, &d, "not found",
                   "missing file");
  rtt_expect_error(rt_data_open("data.parquet", NULL, &d) != NULL, &d, "not found", "type");
  diag_fini(&d);
  remove_tree(dir);
  free(dir);
}
END_TEST

static const char *image_files = "import numpy as np, os, sys\n"
                                 "from PIL import Image\n"
                                 "d = sys.argv[1]\n"
                                 "for c in ('b_cls', 'a_cls', 'bad'):\n"
                                 "    os.makedirs(f'{d}/imgs/{c}', exist_ok=True)\n"
                                 "a = np.zeros((6, 8, 3), np.uint8); a[:, :4] = 255\n"
                                 "Image.fromarray(a).save(d + '/imgs/a_cls/1.png')\n"
                                 "Image.fromarray(a).save(d + '/imgs/b_cls/2.jpg', quality=100)\n"
                                 "Image.fromarray(a[:, :, 0]).save(d + '/imgs/b_cls/3.PNG')\n"
                                 "os.rmdir(d + '/imgs/bad')\n"
                                 "os.makedirs(d + '/cut/x')\n"
                                 "j = open(d + '/imgs/b_cls/2.jpg', 'rb').read()\n"
                                 "open(d + '/cut/x/c.jpg', 'wb').write(j[: len(j) // 2])\n"
                                 "os.makedirs(d + '/empty/x')\n";

/* an image folder: classes in sorted order, PNG (RGB and gray) and JPEG, resized */
START_TEST(test_image_folder) {
  char *dir = rtt_mkdtemp();
  rtt_python(image_files, dir);
  Diag d;
  diag_init(&d);
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.image_channels = 3, o.image_h = 3, o.image_w = 4; /* half size */
  lathe_dataset *ds = rt_data_open(rtt_path(dir, "imgs"), &o, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(ds->n, 3);
  ck_assert_str_eq(lathe_dataset_class_name(ds, 0), "a_cls");
  int x = rt_data_find(ds, "x"), y = rt_data_find(ds, "label");
  ck_assert_int_eq(ds->store->arrays[x].per, 3 * 3 * 4);
  const int32_t *labels = (const int32_t *)ds->store->arrays[y].data;
  ck_assert(labels[0] == 0 && labels[1] == 1 && labels[2] == 1);
  for (int64_t i = 0; i < 3; i++) { /* left half white, right half black, in every channel */
    const float *px = rt_data_at(ds, x, i);
    for (int c = 0; c < 3; c++)
      ck_assert_msg(px[c * 12 + 0] > 0.95f && px[c * 12 + 3] < 0.05f, "image %lld", (long long)i);
  }
  lathe_dataset_free(ds);
  rtt_expect_error(rt_data_open(rtt_path(dir, "cut"), &o, &d) != NULL, &d,
                   "c.jpg: corrupt or truncated JPEG", "truncated jpeg");
  rtt_expect_error(rt_data_open(rtt_path(dir, "empty"), &o, &d) != NULL, &d, "no .png or .jpg",
                   "no images");
  diag_fini(&d);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_split_stratified) {
  Diag d;
  diag_init(&d);
  char text[8192] = "a,y\n";
  for (int i = 0; i < 100; i++) /* classes of 60, 30 and 10 samples */
    snprintf(text + strlen(text), sizeof text - strlen(text), "%d,%d\n", i,
             i < 60   ? 0
             : i < 90 ? 1
                      : 2);
  lathe_dataset *ds = csv(text, NULL, NULL, &d), *tr = NULL, *va = NULL, *tr2 = NULL, *va2 = NULL;
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  char *err = NULL;
  ck_assert_int_eq(lathe_dataset_split(ds, 0.2, 7, "y", &tr, &va, &err), 0);
  ck_assert_int_eq(va->n, 20);
  ck_assert_int_eq(tr->n, 80);
  int counts[3] = {0}, y = rt_data_find(ds, "y");
  for (int64_t i = 0; i < va->n; i++)
    counts[*(const int32_t *)rt_data_at(va, y, i)]++;
  ck_assert(counts[0] == 12 && counts[1] == 6 && counts[2] == 2);
  ck_assert_int_eq(lathe_dataset_split(ds, 0.2, 7, "y", &tr2, &va2, &err), 0);
  for (int64_t i = 0; i < va->n; i++) /* the same seed, the same split */
    ck_assert_int_eq(va->rows[i], va2->rows[i]);
  lathe_dataset_free(tr2), lathe_dataset_free(va2);
  ck_assert_int_ne(lathe_dataset_split(ds, 1.5, 7, NULL, &tr2, &va2, &err), 0);
  ck_assert_ptr_nonnull(strstr(err, "between 0 and 1"));
  free(err);
  lathe_dataset_free(tr), lathe_dataset_free(va), lathe_dataset_free(ds);
  diag_fini(&d);
}
END_TEST

START_TEST(test_classification_metrics) {
  /* y_true 0 0 1 1 2 2 3(absent from both?) — 3 never occurs: not a label */
  const int32_t t[] = {0, 0, 1, 1, 2, 2, 0}, p[] = {0, 1, 1, 1, 0, 2, 0};
  lathe_classification m;
  ck_assert_int_eq(lathe_classification_compute(t, p, 7, 4, &m, NULL), 0);
  ck_assert_double_eq_tol(m.accuracy, 5.0 / 7, 1e-12);
  ck_assert(!m.present[3]);
  /* class 0: tp 2, predicted 3, true 3 → p = r = f1 = 2/3 */
  ck_assert_double_eq_tol(m.classes[0].precision, 2.0 / 3, 1e-12);
  /* class 1: tp 2, predicted 3, true 2 → p 2/3, r 1, f1 0.8 */
  ck_assert_double_eq_tol(m.classes[1].f1, 0.8, 1e-12);
  /* class 2: tp 1, predicted 1, true 2 → p 1, r 0.5, f1 2/3 */
  ck_assert_double_eq_tol(m.macro.f1, (2.0 / 3 + 0.8 + 2.0 / 3) / 3, 1e-12);
  ck_assert_double_eq_tol(m.weighted.recall, (3 * 2.0 / 3 + 2 * 1.0 + 2 * 0.5) / 7, 1e-12);
  ck_assert_int_eq(m.confusion[0 * 4 + 1], 1);
  char *text = lathe_classification_report(&m, NULL);
  ck_assert_ptr_nonnull(strstr(text, "macro avg"));
  free(text);
  lathe_classification_free(&m);
  const int32_t bad[] = {5};
  char *err = NULL;
  ck_assert_int_ne(lathe_classification_compute(bad, bad, 1, 3, &m, &err), 0);
  free(err);
}
END_TEST

START_TEST(test_regression_metrics) {
  const double t[] = {3, -0.5, 2, 7}, p[] = {2.5, 0.0, 2, 8}; /* sklearn's docstring example */
  lathe_regression r;
  ck_assert_int_eq(lathe_regression_compute(t, p, 4, 1, &r, NULL), 0);
  ck_assert_double_eq_tol(r.mse, 0.375, 1e-12);
  ck_assert_double_eq_tol(r.mae, 0.5, 1e-12);
  ck_assert_double_eq_tol(r.r2, 0.9486081370449679, 1e-12);
  ck_assert_double_eq_tol(r.rmse, sqrt(0.375), 1e-12);
  const double c[] = {1, 1}, q[] = {1, 2};
  ck_assert_int_eq(lathe_regression_compute(c, c, 2, 1, &r, NULL), 0);
  ck_assert_double_eq(r.r2, 1.0); /* constant target, perfect: 1 */
  ck_assert_int_eq(lathe_regression_compute(c, q, 2, 1, &r, NULL), 0);
  ck_assert_double_eq(r.r2, 0.0); /* constant target, imperfect: 0 */
}
END_TEST

START_TEST(test_multilabel_metrics) {
  const int32_t t[] = {1, 0, 1, 1, 0, 1}, p[] = {1, 0, 0, 1, 1, 1}; /* 3 rows of 2 labels */
  double f1[2], macro = 0, micro = 0;
  ck_assert_int_eq(lathe_multilabel_compute(t, p, 3, 2, f1, &macro, &micro, NULL), 0);
  ck_assert_double_eq_tol(f1[0], 0.5, 1e-12); /* tp 1, predicted 2, true 2 */
  ck_assert_double_eq_tol(f1[1], 1.0, 1e-12); /* tp 2, predicted 2, true 2 */
  ck_assert_double_eq_tol(macro, 0.75, 1e-12);
  ck_assert_double_eq_tol(micro, 0.75, 1e-12); /* tp 3 of 4 predicted, 4 true */
}
END_TEST

/* a recorded validation-loss curve: best at epoch 3, patience 2 stops after epoch 5 */
START_TEST(test_early_stop_on_recorded_curve) {
  const double loss[] = {0.9, 0.5, 0.41, 0.43, 0.42, 0.30};
  lathe_early_stop s;
  lathe_early_stop_init(&s, 2, 0.0, 0);
  int stop = 0, e = 0;
  for (; e < 6 && !stop; e++)
    lathe_early_stop_update(&s, e + 1, loss[e], &stop);
  ck_assert_int_eq(e, 5);
  ck_assert_int_eq(s.best_epoch, 3);
  ck_assert_double_eq(s.best, 0.41);
  /* an accuracy curve with min_delta: 0.905 is no improvement over 0.90 by more than 0.01 */
  const double acc[] = {0.80, 0.90, 0.905, 0.95};
  lathe_early_stop_init(&s, 1, 0.01, 1);
  lathe_early_stop_update(&s, 1, acc[0], &stop);
  lathe_early_stop_update(&s, 2, acc[1], &stop);
  ck_assert(!stop);
  ck_assert_int_eq(lathe_early_stop_update(&s, 3, acc[2], &stop), 0);
  ck_assert(stop);
  ck_assert_int_eq(s.best_epoch, 2);
}
END_TEST

static Suite *data_suite(void) {
  Suite *s = suite_create("runtime_data");
  TCase *tc = tcase_create("data");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_csv_quoting_and_labels);
  tcase_add_test(tc, test_csv_errors);
  tcase_add_test(tc, test_csv_training_classes);
  tcase_add_test(tc, test_npy_npz_and_errors);
  tcase_add_test(tc, test_image_folder);
  tcase_add_test(tc, test_split_stratified);
  tcase_add_test(tc, test_classification_metrics);
  tcase_add_test(tc, test_regression_metrics);
  tcase_add_test(tc, test_multilabel_metrics);
  tcase_add_test(tc, test_early_stop_on_recorded_curve);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(data_suite());
}
