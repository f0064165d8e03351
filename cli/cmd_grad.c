/* cli/cmd_grad.c — `lathe grad FILE --weights CKPT --input ... --out DIR`: the gradient of
 * the train block's loss w.r.t. every param, computed by the compiled "grad" entry point
 * (the backward pass lathe derived), written as DIR/grads.safetensors with the params' keys.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static const char *help =
    "usage: lathe grad [OPTIONS] FILE --input NAME=FILE.npy ... --out DIR\n"
    "\n"
    "Compile FILE with its backward pass, run it on the inputs, print the loss of the\n"
    "(first, or --step) train step, and write DIR/grads.safetensors: d loss / d param for\n"
    "every param, under the same keys as the weights.\n"
    "\n"
    "options:\n"
    "  -i, --input NAME=FILE.npy  a model input (repeat for each)\n"
    "  -o, --out DIR              output directory (created if missing)\n"
    "  -w, --weights CKPT         params from a safetensors checkpoint\n"
    "  --step NAME                the train step whose loss to differentiate (a train block\n"
    "                             with several steps, e.g. a GAN's `step gen`)\n"
    "  --seed N                   seed of <model>_init when there is no --weights (default 0)\n"
    "  -D NAME=VALUE              override a `const` of the model\n"
    "  --max-batch M              a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64            compile every f32 as f64 (for gradient checks)\n"
    "  -h, --help                 this help\n";

typedef struct GradOptions {
  CliCompile c;
  CliInputs in;
  const char *out_dir, *weights;
  uint64_t seed;
} GradOptions;

static int parse_args(GradOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "grad", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_input_option(&a, &o->in)) continue;
    if (cli_option(&a, "--out", "-o")) {
      o->out_dir = a.value;
    } else if (cli_option(&a, "--weights", "-w")) {
      o->weights = a.value;
    } else if (cli_option(&a, "--step", NULL)) {
      o->c.grad_step = a.value;
    } else if (cli_option(&a, "--seed", NULL)) {
      if (!cli_parse_u64(a.value, &o->seed))
        return cli_usage_error(&a, "--seed expects a non-negative integer, got '%s'", a.value);
    } else if (!cli_compile_option(&a, &o->c)) {
      if (cli_positional(&a, &o->c.file) != EXIT_OK) return EXIT_USAGE;
    }
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->out_dir) return cli_usage_error(&a, "expected --out DIR");
  return EXIT_OK;
}

static bool write_grads(const GradOptions *o, const lathe_entry_info *e, const Tensor *tensors,
                        Diag *d) {
  if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
    diag_error(d, (SrcLoc){0}, "cannot create directory '%s': %s", o->out_dir, strerror(errno));
    return false;
  }
  RtTensorSet set;
  rt_set_init(&set);
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_OUTPUT) continue;
    Tensor *t = rt_set_add(&set, e->args[k].tensor->name, tensors[k].dtype, &tensors[k].shape);
    if (t) memcpy(t->data, tensors[k].data, e->args[k].tensor->bytes);
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/grads.safetensors", o->out_dir);
  bool ok = rt_safetensors_write(path, &set, d);
  if (ok) fprintf(stderr, "wrote %s (%d tensors)\n", path, set.n);
  rt_set_fini(&set);
  return ok;
}

/* The training-mode batch the model needs (Module.train_min_n, docs/dynamic-batch.md): a batch
 * norm with one value per channel per sample has no variance over a batch of 1, which
 * PyTorch refuses too; checked here, where the call's n is known, before the entry runs. */
typedef struct MinBatch {
  int64_t min;     /* Module.train_min_n */
  const char *why; /* its batch norm's name ("f") */
} MinBatch;

static bool invoke_checked(void *ctx, const lathe_entry_info *e, void *const *args, double *ret,
                           Diag *d) {
  const MinBatch *mb = ctx;
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_BATCH) continue;
    int64_t n = *(const int64_t *)args[k];
    if (n >= mb->min) break;
    diag_error(d, (SrcLoc){0},
               "a batch of %lld cannot train this model: batch norm '%s' sees one value per "
               "channel per sample, and its variance needs at least %lld samples (PyTorch: "
               "\"Expected more than 1 value per channel when training\")",
               (long long)n, mb->why ? mb->why : "?", (long long)mb->min);
    return false;
  }
  *ret = 0;
  e->call(args, ret);
  return true;
}

int cmd_grad(int argc, char **argv) {
  GradOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  o.c.want_train = false;
  o.c.want_grad = true;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  Module *m = cli_build_module(&o.c);
  if (!m) return EXIT_USER;
  bool has_steps = m->n_steps > 0;
  MinBatch mb = {m->train_min_n, NULL};
  char why[256] = "";
  if (m->train_min_why) snprintf(why, sizeof why, "%s", m->train_min_why), mb.why = why;
  if (strrchr(why, '.')) *strrchr(why, '.') = '\0'; /* "f.running_var": batch norm 'f' */
  RtModel model = {0};
  bool ok = has_steps && cli_load(m, &o.c, &model);
  if (!has_steps) fprintf(stderr, "%s: error: the model has no train block, so no loss to "
                                  "differentiate\n", o.c.file);
  module_free(m);
  if (!ok) return EXIT_USER;
  Diag d;
  diag_init(&d);
  const lathe_entry_info *e = rt_model_entry(&model, "grad");
  CliWeights w = {0};
  Tensor tensors[CLI_MAX_ARGS];
  double loss = 0;
  ok = e && cli_weights_init(&w, model.info, o.weights, o.seed, &d) &&
       cli_call_entry_with(e, &w, &o.in, tensors, &loss, invoke_checked, &mb, &d);
  if (ok) {
    printf("loss %.9g\n", loss);
    ok = write_grads(&o, e, tensors, &d);
    cli_call_free(e, tensors);
  }
  cli_weights_fini(&w);
  rt_model_close(&model);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
