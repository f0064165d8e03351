/* cli/cmd_predict.c — `lathe predict FILE --weights CKPT --data SPEC --out preds.npy|csv`:
 * the forward pass over a whole dataset of any length (lathe_predict of the runtime). */
#include "cli.h"

#include <string.h>

static const char *help_head =
    "usage: lathe predict [OPTIONS] FILE --weights CKPT --data SPEC --out PREDS.npy|PREDS.csv\n"
    "\n"
    "Run FILE's forward pass with the weights of CKPT over every sample of a dataset, in\n"
    "batches of the model's batch size, and write its first output for each sample: .npy as\n"
    "it is ([n, ...]); .csv with class scores [n, C] as label,p0..p{C-1} (the argmax label,\n"
    "by name when training had string labels: CKPT.classes), else one column per value.\n"
    "A CSV whose columns are exactly the model's features needs no target column.\n"
    "\n"
    "options:\n"
    "  -w, --weights CKPT          safetensors checkpoint\n"
    "  -o, --out FILE              where the predictions go (written atomically)\n";

static const char *help_tail = "  -D NAME=VALUE               override a `const` of the model\n"
                               "  --max-batch M               a .onnx FILE's symbolic batch: "
                               "dynamic, 1 to M (default 64)\n"
                               "  --dtype f32|f64             compile every f32 as f64\n"
                               "  -h, --help                  this help\n";

typedef struct PredictOptions {
  CliCompile c;
  lathe_data_options data;
  const char *weights, *spec, *out;
} PredictOptions;

static int parse_args(PredictOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "predict", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      printf("%s%s%s", help_head, cli_data_help, help_tail);
      return -1;
    }
    if (cli_option(&a, "--weights", "-w"))
      o->weights = a.value;
    else if (cli_option(&a, "--data", NULL))
      o->spec = a.value;
    else if (cli_option(&a, "--out", "-o"))
      o->out = a.value;
    else if (!cli_data_option(&a, &o->data) && !cli_compile_option(&a, &o->c) &&
             cli_positional(&a, &o->c.file) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->weights) return cli_usage_error(&a, "expected --weights CKPT");
  if (!o->spec) return cli_usage_error(&a, "expected --data SPEC (see --help)");
  if (!o->out) return cli_usage_error(&a, "expected --out PREDS.npy|PREDS.csv");
  return EXIT_OK;
}

static bool single_csv(const char *spec) {
  size_t n = strlen(spec);
  bool ext = n > 4 && (strcmp(spec + n - 4, ".csv") == 0 || strcmp(spec + n - 4, ".tsv") == 0 ||
                       strcmp(spec + n - 4, ".txt") == 0);
  return !strchr(spec, ',') && (ext || strncmp(spec, "csv:", 4) == 0);
}

/* The dataset of --data. New data to predict often has no target column: when neither
 * --target nor --features is given and the default (the last column is the target) leaves
 * the forward entry's first input one value short, every column is a feature. */
static lathe_dataset *open_data(PredictOptions *o, const RtModel *model, Diag *d) {
  lathe_dataset *ds = rt_data_open(o->spec, &o->data, d);
  const lathe_entry_info *e = rt_model_entry(model, "forward");
  if (!ds || !e || o->data.target || o->data.features || !single_csv(o->spec)) return ds;
  int x = rt_data_find(ds, o->data.x_name);
  for (int k = 0; x >= 0 && k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    int64_t per = 1;
    for (int j = 1; j < e->args[k].tensor->rank; j++)
      per *= e->args[k].tensor->shape[j];
    if (per != ds->store->arrays[x].per + 1) break;
    lathe_dataset_free(ds);
    o->data.target = ""; /* no target: every column is a feature */
    return rt_data_open(o->spec, &o->data, d);
  }
  return ds;
}

/* cli_with_model's run: ctx is the PredictOptions */
static bool predict(void *ctx, RtModel *model, Diag *d) {
  PredictOptions *o = ctx;
  CliWeights w = {0};
  char *err = NULL;
  o->data.test_split = 1;
  cli_image_options(model->info, &o->data);
  lathe_data_options_for_model(&o->data, model->info);
  lathe_dataset *ds = open_data(o, model, d);
  bool ok = ds && cli_checkpoint_classes(ds, o->weights, d) &&
            cli_checkpoint_vocab(ds, o->weights, &o->data, d) &&
            cli_weights_init(&w, model->info, o->weights, 0, d);
  if (ok && lathe_predict(model->info, w.params, w.state, ds, o->out, &err) != 0) {
    cli_api_error(d, err);
    ok = false;
  }
  if (ok) fprintf(stderr, "wrote %lld predictions to %s\n", (long long)ds->n, o->out);
  cli_weights_fini(&w);
  lathe_dataset_free(ds);
  return ok;
}

int cmd_predict(int argc, char **argv) {
  PredictOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  lathe_data_options_init(&o.data);
  o.c.want_train = false;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  return cli_with_model(&o.c, predict, &o);
}
