/* cli/cmd_train.c — `lathe train FILE --data fashion-mnist`: epochs of the compiled train
 * step over a shuffled dataset, test evaluation per epoch, checkpoints, resume, plot.
 *
 * Reproducibility: epoch e's order is a Fisher-Yates shuffle seeded by (seed, e), and the
 * checkpoint holds params, optimizer state and the epoch count, so `--resume` continues
 * exactly where the checkpointed run would have.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: lathe train [OPTIONS] FILE --data fashion-mnist[=DIR]\n"
    "\n"
    "Train FILE's `train` block on a dataset: shuffle, batch to the model's batch size, run\n"
    "the compiled train step, evaluate on the test split after each epoch.\n"
    "\n"
    "options:\n"
    "  --data fashion-mnist[=DIR]  IDX files (plain or .gz); default DIR\n"
    "                              /usr/share/datasets/fashion-mnist\n"
    "  --epochs N                  epochs to train to (default 1)\n"
    "  --seed N                    init and shuffle seed (default 0)\n"
    "  --limit N                   use only the first N training samples\n"
    "  --checkpoint CKPT           write params + optimizer state after every epoch\n"
    "  --resume CKPT               continue from a checkpoint written by --checkpoint\n"
    "  --plot FILE.svg             plot loss and accuracy per epoch\n"
    "  -D NAME=VALUE               override a `const` of the model (e.g. -D N=128)\n"
    "  --dtype f32|f64             compile every f32 as f64\n"
    "  -h, --help                  this help\n";

typedef struct TrainOptions {
  CliCompile c;
  const char *data, *checkpoint, *resume, *plot;
  uint64_t epochs, seed, limit;
} TrainOptions;

static int parse_args(TrainOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "train", argc, argv);
  while (!cli_args_done(&a)) {
    uint64_t *num = NULL;
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_option(&a, "--data", NULL))
      o->data = a.value;
    else if (cli_option(&a, "--checkpoint", NULL))
      o->checkpoint = a.value;
    else if (cli_option(&a, "--resume", NULL))
      o->resume = a.value;
    else if (cli_option(&a, "--plot", NULL))
      o->plot = a.value;
    else if (cli_option(&a, "--epochs", NULL))
      num = &o->epochs;
    else if (cli_option(&a, "--seed", NULL))
      num = &o->seed;
    else if (cli_option(&a, "--limit", NULL))
      num = &o->limit;
    else if (!cli_compile_option(&a, &o->c)) {
      const char *arg = a.argv[a.i++];
      if (arg[0] == '-') return cli_usage_error(&a, "unknown option '%s'", arg);
      if (o->c.file)
        return cli_usage_error(&a, "expected one FILE, got '%s' and '%s'", o->c.file, arg);
      o->c.file = arg;
    }
    if (num && !cli_parse_u64(a.value, num))
      return cli_usage_error(&a, "expected a non-negative integer, got '%s'", a.value);
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->data) return cli_usage_error(&a, "expected --data fashion-mnist[=DIR]");
  if (o->epochs == 0 || o->epochs > 100000)
    return cli_usage_error(&a, "--epochs must be 1..100000");
  return EXIT_OK;
}

static uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static void shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch) {
  uint64_t state = mix(seed ^ mix(epoch + 1));
  for (int64_t i = 0; i < n; i++)
    order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    state = mix(state);
    int64_t j = (int64_t)(state % (uint64_t)(i + 1));
    int64_t t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

typedef struct Run {
  TrainOptions *o;
  RtModel model;
  const lathe_entry_info *train, *eval;
  CliWeights w;
  RtDataset train_ds, test_ds;
  double train_loss[1024], test_loss[1024], test_acc[1024]; /* per epoch, for the plot */
  int n_hist;
  uint64_t epoch; /* epochs completed */
} Run;

static bool save_checkpoint(Run *r, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  const lathe_model_info *info = r->model.info;
  bool ok = cli_weights_save(&r->w, info, r->o->checkpoint, true, d); /* params + state */
  if (!ok) return false;
  ok = rt_safetensors_read(r->o->checkpoint, &set, d);
  Shape scalar = {0};
  Tensor *t = ok ? rt_set_add(&set, "lathe.epoch", DT_I64, &scalar) : NULL;
  if (t) ((int64_t *)t->data)[0] = (int64_t)r->epoch;
  ok = t && rt_safetensors_write(r->o->checkpoint, &set, d);
  rt_set_fini(&set);
  return ok;
}

static bool read_epoch(const char *ckpt, uint64_t *epoch, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(ckpt, &set, d);
  const Tensor *t = ok ? rt_set_find(&set, "lathe.epoch") : NULL;
  if (ok && (!t || t->dtype != DT_I64 || t->shape.rank != 0)) {
    diag_error(d, (SrcLoc){0}, "%s: not a training checkpoint (no i64 'lathe.epoch')", ckpt);
    ok = false;
  }
  if (ok) *epoch = (uint64_t)((int64_t *)t->data)[0];
  rt_set_fini(&set);
  return ok;
}

/* The train step returns only the loss; training accuracy is sampled every SAMPLE_EVERY
 * steps by running the evaluate entry on the batch about to be trained on. */
enum { SAMPLE_EVERY = 16 };

typedef struct Sampler {
  CliBatch b;               /* bound to the evaluate entry, sharing the train batch buffers */
  void *outs[CLI_MAX_ARGS]; /* its outputs */
  int64_t seen, correct;
} Sampler;

static bool sampler_init(Sampler *sp, Run *r, CliBatch *train, Diag *d) {
  memset(sp, 0, sizeof *sp);
  if (!cli_bind(&sp->b, r->eval, &r->train_ds, d)) return false;
  free(sp->b.x), free(sp->b.y);
  sp->b.x = train->x, sp->b.y = train->y;
  for (int k = 0; k < r->eval->n_args; k++)
    if (r->eval->args[k].role == LATHE_ARG_OUTPUT &&
        !(sp->outs[k] = cli_aligned_alloc(r->eval->args[k].tensor->bytes)))
      return false;
  return true;
}

static void sampler_fini(Sampler *sp) {
  sp->b.x = sp->b.y = NULL; /* owned by the train batch */
  cli_batch_fini(&sp->b);
  for (int k = 0; k < CLI_MAX_ARGS; k++)
    free(sp->outs[k]);
}

static void sample(Sampler *sp, Run *r) {
  if (sp->b.out_arg < 0) return;
  cli_call_batch(r->eval, &sp->b, &r->w, sp->outs);
  sp->correct += cli_count_correct(&sp->b, r->eval->args[sp->b.out_arg].tensor,
                                   sp->outs[sp->b.out_arg], sp->b.batch);
  sp->seen += sp->b.batch;
}

static int64_t epoch_order(Run *r, int64_t batch, int64_t **order, Diag *d) {
  int64_t n = r->train_ds.n;
  if (r->o->limit && (int64_t)r->o->limit < n) n = (int64_t)r->o->limit;
  if (n / batch == 0) {
    diag_error(d, (SrcLoc){0}, "%lld training samples make no full batch of %lld", (long long)n,
               (long long)batch);
    return 0;
  }
  *order = malloc((size_t)n * sizeof **order);
  if (!*order) return 0;
  shuffle(*order, n, r->o->seed, r->epoch);
  return n / batch;
}

static bool run_epoch(Run *r, Diag *d) {
  CliBatch b;
  Sampler sp;
  memset(&sp, 0, sizeof sp);
  int64_t *order = NULL, steps = 0;
  bool ok = cli_bind(&b, r->train, &r->train_ds, d) && sampler_init(&sp, r, &b, d) &&
            (steps = epoch_order(r, b.batch, &order, d)) > 0;
  RtProgress p;
  if (ok) rt_progress_start(&p, stderr, (int)r->epoch + 1, (int)r->o->epochs, steps * b.batch);
  double loss_sum = 0, ema = 0;
  for (int64_t s = 0; ok && s < steps; s++) {
    cli_gather(&b, &r->train_ds, order + s * b.batch, b.batch);
    if (s % SAMPLE_EVERY == 0) sample(&sp, r);
    double loss = cli_call_batch(r->train, &b, &r->w, NULL);
    loss_sum += loss;
    ema = s == 0 ? loss : 0.98 * ema + 0.02 * loss;
    rt_progress_update(&p, (s + 1) * b.batch, ema,
                       sp.seen ? (double)sp.correct / (double)sp.seen : 0);
  }
  if (ok) {
    p.loss = loss_sum / (double)steps;
    rt_progress_finish(&p);
    r->train_loss[r->n_hist] = loss_sum / (double)steps;
  }
  free(order);
  sampler_fini(&sp);
  cli_batch_fini(&b);
  return ok;
}

static bool train_loop(Run *r, Diag *d) {
  while (r->epoch < r->o->epochs && r->n_hist < 1024) {
    if (!run_epoch(r, d)) return false;
    double tl = 0, ta = 0;
    if (!cli_evaluate(r->eval, &r->w, &r->test_ds, &tl, &ta, d)) return false;
    r->test_loss[r->n_hist] = tl;
    r->test_acc[r->n_hist] = ta;
    r->epoch++;
    fprintf(stderr, "epoch %llu/%llu: train loss %.4f  test loss %.4f  test accuracy %.2f%%\n",
            (unsigned long long)r->epoch, (unsigned long long)r->o->epochs,
            r->train_loss[r->n_hist], tl, 100 * ta);
    r->n_hist++;
    if (r->o->checkpoint && !save_checkpoint(r, d)) return false;
    if (r->o->plot && !rt_plot_write(r->o->plot, r->model.info->name, r->train_loss, r->test_loss,
                                     r->test_acc, r->n_hist, d))
      return false;
  }
  printf("test accuracy %.2f%%  test loss %.4f\n", 100 * r->test_acc[r->n_hist - 1],
         r->test_loss[r->n_hist - 1]);
  return true;
}

static bool setup(Run *r, Diag *d) {
  r->train = rt_model_entry(&r->model, "train");
  r->eval = rt_model_entry(&r->model, "evaluate");
  if (!r->train || !r->eval) {
    diag_error(d, (SrcLoc){0},
               "%s: `lathe train` needs a single-step train block and an "
               "`output` (the class scores)",
               r->o->c.file);
    return false;
  }
  if (!rt_dataset_load(&r->train_ds, r->o->data, true, d) ||
      !rt_dataset_load(&r->test_ds, r->o->data, false, d))
    return false;
  if (!cli_weights_init(&r->w, r->model.info, r->o->resume, r->o->seed, d)) return false;
  if (r->o->resume && !read_epoch(r->o->resume, &r->epoch, d)) return false;
  if (r->o->resume)
    fprintf(stderr, "resuming from %s after epoch %llu\n", r->o->resume,
            (unsigned long long)r->epoch);
  if (r->epoch >= r->o->epochs) {
    diag_error(d, (SrcLoc){0}, "%s already has %llu epochs; ask for more with --epochs",
               r->o->resume, (unsigned long long)r->epoch);
    return false;
  }
  return true;
}

int cmd_train(int argc, char **argv) {
  TrainOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  o.c.want_eval = true;
  o.epochs = 1;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  Module *m = cli_build_module(&o.c);
  if (!m) return EXIT_USER;
  Run *r = calloc(1, sizeof *r);
  bool ok = r && cli_load(m, &o.c, &r->model);
  module_free(m);
  if (!ok) {
    free(r);
    return EXIT_USER;
  }
  r->o = &o;
  Diag d;
  diag_init(&d);
  ok = setup(r, &d) && train_loop(r, &d);
  cli_weights_fini(&r->w);
  rt_dataset_fini(&r->train_ds);
  rt_dataset_fini(&r->test_ds);
  rt_model_close(&r->model);
  free(r);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
