/* cli/cmd_eval.c — `lathe eval FILE --weights CKPT --data SPEC`: the loss and the task's
 * metrics of trained weights (lathe_evaluate of the runtime): for classification the
 * per-class precision/recall/F1 table, macro and weighted averages and the confusion matrix
 * (scikit-learn's classification_report and confusion_matrix), for regression MSE, RMSE, MAE
 * and R², for sequence tasks per-token accuracy.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *help_head =
    "usage: lathe eval [OPTIONS] FILE --weights CKPT --data SPEC\n"
    "\n"
    "Print the loss and metrics of FILE with the weights of CKPT on a dataset (the test split\n"
    "of a named dataset).\n"
    "\n"
    "options:\n"
    "  -w, --weights CKPT          safetensors checkpoint (e.g. from lathe train --checkpoint)\n";

static const char *help_tail =
    "  --plot FILE.svg             classification: the confusion matrix as an SVG heat map\n"
    "  --metrics-json FILE         every metric at full precision, as JSON\n"
    "  -D NAME=VALUE               override a `const` of the model\n"
    "  --max-batch M               a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64             compile every f32 as f64\n"
    "  -h, --help                  this help\n";

void cli_api_error(Diag *d, char *err) {
  const char *msg = err ? err : "failed";
  if (strncmp(msg, "error: ", 7) == 0) msg += 7;
  size_t n = strlen(msg);
  while (n && msg[n - 1] == '\n')
    n--;
  diag_error(d, (SrcLoc){0}, "%.*s", (int)n, msg);
  free(err);
}

bool cli_checkpoint_classes(lathe_dataset *ds, const char *ckpt, Diag *d) {
  char path[4096];
  snprintf(path, sizeof path, "%s.classes", ckpt);
  if (access(path, F_OK) != 0) return true;
  char **names;
  int n;
  if (!rt_classes_read(path, &names, &n, d)) return false;
  bool ok = rt_data_use_classes(ds, names, n, path, d);
  rt_classes_free(names, n);
  return ok;
}

static const char **class_names(const lathe_dataset *ds, int n) {
  if (!lathe_dataset_class_name(ds, 0)) return NULL;
  const char **names = calloc((size_t)n, sizeof *names);
  for (int c = 0; names && c < n; c++)
    names[c] = lathe_dataset_class_name(ds, c);
  return names;
}

void cli_print_evaluation(const lathe_evaluation *ev, const lathe_dataset *ds, const char *v) {
  const lathe_metrics *m = &ev->m;
  if (m->task == LATHE_TASK_CLASSIFY || m->task == LATHE_TASK_SEQUENCE) {
    printf("%s loss %.4f  %s accuracy %.2f%%  (%lld samples)\n", v, m->loss, v, 100 * m->accuracy,
           (long long)m->n);
    if (m->task == LATHE_TASK_CLASSIFY) {
      const char **names = class_names(ds, ev->report.n_classes);
      char *text = lathe_classification_report(&ev->report, names);
      if (text) printf("\n%s", text);
      free(text);
      free(names);
    }
  } else if (m->task == LATHE_TASK_MULTILABEL) {
    printf("%s loss %.4f  exact-match accuracy %.2f%%  macro f1 %.4f  (%lld samples)\n", v, m->loss,
           100 * m->accuracy, m->f1, (long long)m->n);
    for (int j = 0; j < ev->n_labels; j++)
      printf("  label %d f1 %.4f\n", j, ev->label_f1[j]);
  } else if (m->task == LATHE_TASK_REGRESS) {
    printf("%s loss %.4f  mse %.6g  rmse %.6g  mae %.6g  r2 %.6f  (%lld samples)\n", v, m->loss,
           m->mse, m->rmse, m->mae, m->r2, (long long)m->n);
  } else {
    printf("%s loss %.4f  (%lld samples)\n", v, m->loss, (long long)m->n);
  }
}

static bool write_json(const lathe_evaluation *ev, const char *path, Diag *d) {
  const lathe_metrics *m = &ev->m;
  const lathe_classification *c = &ev->report;
  size_t size = 4096 + (size_t)c->n_classes * (200 + 24 * (size_t)c->n_classes) +
                (size_t)ev->n_labels * 32,
         n = 0;
  char *b = malloc(size);
  if (!b) return false;
  n += (size_t)snprintf(b, size,
                        "{\"task\": \"%s\", \"n\": %lld, \"loss\": %.17g, "
                        "\"accuracy\": %.17g, \"precision\": %.17g, \"recall\": %.17g, "
                        "\"f1\": %.17g, \"mse\": %.17g, \"rmse\": %.17g, \"mae\": %.17g, "
                        "\"r2\": %.17g",
                        lathe_task_name(m->task), (long long)m->n, m->loss, m->accuracy,
                        m->precision, m->recall, m->f1, m->mse, m->rmse, m->mae, m->r2);
  if (c->n_classes) {
    n += (size_t)snprintf(b + n, size - n, ", \"weighted\": [%.17g, %.17g, %.17g], \"classes\": [",
                          c->weighted.precision, c->weighted.recall, c->weighted.f1);
    for (int k = 0, first = 1; k < c->n_classes; k++)
      if (c->present[k]) {
        n += (size_t)snprintf(b + n, size - n, "%s[%d, %.17g, %.17g, %.17g, %lld]",
                              first ? "" : ", ", k, c->classes[k].precision, c->classes[k].recall,
                              c->classes[k].f1, (long long)c->classes[k].support);
        first = 0;
      }
    n += (size_t)snprintf(b + n, size - n, "], \"confusion\": [");
    for (int64_t i = 0; i < (int64_t)c->n_classes * c->n_classes; i++)
      n += (size_t)snprintf(b + n, size - n, "%s%lld", i ? ", " : "", (long long)c->confusion[i]);
    n += (size_t)snprintf(b + n, size - n, "]");
  }
  if (ev->n_labels) { /* multi-label: per-label F1 */
    n += (size_t)snprintf(b + n, size - n, ", \"label_f1\": [");
    for (int j = 0; j < ev->n_labels; j++)
      n += (size_t)snprintf(b + n, size - n, "%s%.17g", j ? ", " : "", ev->label_f1[j]);
    n += (size_t)snprintf(b + n, size - n, "]");
  }
  n += (size_t)snprintf(b + n, size - n, "}\n");
  bool ok = n < size && rt_write_file_atomic(path, b, n, d);
  free(b);
  return ok;
}

typedef struct EvalOptions {
  CliCompile c;
  lathe_data_options data;
  const char *weights, *spec, *plot, *json, *task;
} EvalOptions;

static int parse_args(EvalOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "eval", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      printf("%s%s%s", help_head, cli_data_help, help_tail);
      return -1;
    }
    if (cli_option(&a, "--weights", "-w"))
      o->weights = a.value;
    else if (cli_option(&a, "--data", NULL))
      o->spec = a.value;
    else if (cli_option(&a, "--plot", NULL))
      o->plot = a.value;
    else if (cli_option(&a, "--metrics-json", NULL))
      o->json = a.value;
    else if (cli_option(&a, "--task", NULL))
      o->task = a.value;
    else if (!cli_data_option(&a, &o->data) && !cli_compile_option(&a, &o->c) &&
             cli_positional(&a, &o->c.file) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->weights) return cli_usage_error(&a, "expected --weights CKPT");
  if (!o->spec) return cli_usage_error(&a, "expected --data SPEC (see --help)");
  if (cli_onnx_loss_check(&a, &o->c) != EXIT_OK) return EXIT_USAGE;
  if (o->task && lathe_task_parse(o->task) < 0)
    return cli_usage_error(&a,
                           "--task %s: expected classification, sequence, multilabel, "
                           "regression or none",
                           o->task);
  return EXIT_OK;
}

/* cli_with_model's run: ctx is the EvalOptions */
static bool evaluate(void *ctx, RtModel *model, Diag *d) {
  EvalOptions *o = ctx;
  CliWeights w = {0};
  lathe_evaluation ev = {0};
  char *err = NULL;
  o->data.test_split = 1;
  cli_image_options(model->info, &o->data);
  lathe_data_options_for_model(&o->data, model->info);
  lathe_dataset *ds = rt_data_open(o->spec, &o->data, d);
  bool ok = ds && cli_checkpoint_classes(ds, o->weights, d) &&
            cli_checkpoint_vocab(ds, o->weights, &o->data, d) &&
            cli_weights_init(&w, model->info, o->weights, 0, d);
  if (ok && lathe_evaluate(model->info, w.params, w.state, ds,
                           o->task ? lathe_task_parse(o->task) : LATHE_TASK_AUTO, &ev, &err)) {
    cli_api_error(d, err);
    ok = false;
  }
  if (ok) cli_print_evaluation(&ev, ds, "test");
  ok = ok && (!o->json || write_json(&ev, o->json, d));
  if (ok && o->plot && ev.report.n_classes) {
    const char **names = class_names(ds, ev.report.n_classes);
    if (lathe_confusion_svg(&ev.report, names, o->plot, &err) != 0)
      cli_api_error(d, err), ok = false;
    free(names);
  }
  lathe_evaluation_free(&ev);
  cli_weights_fini(&w);
  lathe_dataset_free(ds);
  return ok;
}

int cmd_eval(int argc, char **argv) {
  EvalOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  lathe_data_options_init(&o.data);
  o.c.want_train = false;
  o.c.want_eval = true;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  return cli_with_model(&o.c, evaluate, &o);
}
