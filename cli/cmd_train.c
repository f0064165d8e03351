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
    "usage: lathe train [OPTIONS] FILE --data fashion-mnist[=DIR]|reverse|sort\n"
    "\n"
    "Train FILE's `train` block on a dataset: shuffle, batch to the model's batch size, run\n"
    "the compiled train step, evaluate on the test split after each epoch.\n"
    "\n"
    "options:\n"
    "  --data fashion-mnist[=DIR]  IDX files (plain or .gz); default DIR\n"
    "                              /usr/share/datasets/fashion-mnist\n"
    "  --data reverse|sort[=LEN,VOCAB]  generated token sequences (default 16,16): input\n"
    "                              i32[N, LEN] ids, labels i32[N, LEN] = ids reversed/sorted;\n"
    "                              accuracy is per token (argmax of an [N, LEN, V] output)\n"
    "  --epochs N                  epochs to train to (default 1)\n"
    "  --seed N                    init and shuffle seed (default 0)\n"
    "  --limit N                   use only the first N training samples\n"
    "  --checkpoint CKPT           write params + optimizer state after every epoch\n"
    "  --resume CKPT               continue from a checkpoint written by --checkpoint\n"
    "  --plot FILE.svg             plot loss and accuracy per epoch\n"
    "  --samples DIR               write DIR/epoch<k>.png: the model's image output on the\n"
    "                              first test batch (VAE reconstructions, GAN samples)\n"
    "  -D NAME=VALUE               override a `const` of the model (e.g. -D N=128)\n"
    "  --dtype f32|f64             compile every f32 as f64\n"
    "  -h, --help                  this help\n";

typedef struct TrainOptions {
  CliCompile c;
  const char *data, *checkpoint, *resume, *plot, *samples;
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
    else if (cli_option(&a, "--samples", NULL))
      o->samples = a.value;
    else if (cli_option(&a, "--epochs", NULL))
      num = &o->epochs;
    else if (cli_option(&a, "--seed", NULL))
      num = &o->seed;
    else if (cli_option(&a, "--limit", NULL))
      num = &o->limit;
    else if (!cli_compile_option(&a, &o->c)) {
      if (cli_positional(&a, &o->c.file) != EXIT_OK) return EXIT_USAGE;
    }
    if (num && !cli_parse_u64(a.value, num))
      return cli_usage_error(&a, "expected a non-negative integer, got '%s'", a.value);
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->data) return cli_usage_error(&a, "expected --data fashion-mnist[=DIR] or reverse|sort");
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

enum { MAX_STEPS = 8 };

typedef struct Run {
  TrainOptions *o;
  RtModel model;
  const lathe_entry_info *steps[MAX_STEPS]; /* "train" or each "train_<step>", in order */
  int n_steps;
  const lathe_entry_info *eval;             /* NULL: no evaluate entry (no `output`) */
  bool has_acc;                             /* scores and labels bound: accuracy reported */
  double step_loss[MAX_STEPS];              /* last epoch's mean loss of each step */
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
 * steps by running the evaluate entry on the batch about to be trained on. A train block of
 * several `step`s runs each step's entry on every batch, in order, and reports each loss. */
enum { SAMPLE_EVERY = 16 };

typedef struct Sampler {
  CliBatch b;               /* bound to the evaluate entry; out_arg -1 = not sampling */
  void *outs[CLI_MAX_ARGS]; /* its outputs */
  int64_t seen, correct;
} Sampler;

static bool sampler_init(Sampler *sp, Run *r, Diag *d) {
  memset(sp, 0, sizeof *sp);
  sp->b.out_arg = -1;
  if (!r->eval) return true;
  if (!cli_bind(&sp->b, r->eval, &r->train_ds, d)) return false;
  for (int k = 0; k < r->eval->n_args; k++)
    if (r->eval->args[k].role == LATHE_ARG_OUTPUT &&
        !(sp->outs[k] = cli_aligned_alloc(r->eval->args[k].tensor->bytes)))
      return false;
  return true;
}

static void sampler_fini(Sampler *sp) {
  cli_batch_fini(&sp->b);
  for (int k = 0; k < CLI_MAX_ARGS; k++)
    free(sp->outs[k]);
}

/* runs the evaluate entry on the samples index[0, batch) about to be trained on */
static void sample(Sampler *sp, Run *r, const int64_t *index, int64_t count) {
  if (sp->b.out_arg < 0 || sp->b.batch > count) return;
  cli_gather(&sp->b, &r->train_ds, index, sp->b.batch);
  cli_call_batch(r->eval, &sp->b, &r->w, sp->outs);
  sp->correct += cli_count_correct(&sp->b, r->eval->args[sp->b.out_arg].tensor,
                                   sp->outs[sp->b.out_arg], sp->b.batch);
  sp->seen += sp->b.batch * sp->b.y_per;
}

static int64_t epoch_order(Run *r, int64_t batch, int64_t **order, Diag *d) {
  int64_t n = r->train_ds.n;
  if (r->o->limit && (int64_t)r->o->limit < n) n = (int64_t)r->o->limit;
  if (batch <= 0 || n / batch == 0) {
    diag_error(d, (SrcLoc){0}, "%lld training samples make no full batch of %lld", (long long)n,
               (long long)batch);
    return 0;
  }
  *order = malloc((size_t)n * sizeof **order);
  if (!*order) return 0;
  shuffle(*order, n, r->o->seed, r->epoch);
  return n / batch;
}

typedef struct Steps {
  CliBatch b[MAX_STEPS];
  double sum[MAX_STEPS];
} Steps;

/* binds every step; the batch size is the first one taking samples */
static int64_t bind_steps(Steps *st, Run *r, Diag *d) {
  int64_t batch = 0;
  for (int k = 0; k < r->n_steps; k++) {
    if (!cli_bind(&st->b[k], r->steps[k], &r->train_ds, d)) return 0;
    if (st->b[k].batch && batch && st->b[k].batch != batch) {
      diag_error(d, (SrcLoc){0}, "train steps '%s' and '%s' have different batch sizes",
                 r->steps[0]->name, r->steps[k]->name);
      return 0;
    }
    if (!batch) batch = st->b[k].batch;
  }
  if (!batch) diag_error(d, (SrcLoc){0}, "no train step takes the dataset's samples");
  return batch;
}

static double train_batch(Steps *st, Run *r, const int64_t *index, int64_t batch) {
  double first = 0;
  for (int k = 0; k < r->n_steps; k++) {
    if (st->b[k].batch) cli_gather(&st->b[k], &r->train_ds, index, batch);
    double loss = cli_call_batch(r->steps[k], &st->b[k], &r->w, NULL);
    st->sum[k] += loss;
    if (k == 0) first = loss;
  }
  return first;
}

static bool run_epoch(Run *r, Diag *d) {
  Steps st;
  memset(&st, 0, sizeof st);
  Sampler sp;
  int64_t *order = NULL, steps = 0, batch = bind_steps(&st, r, d);
  bool ok = batch > 0 && sampler_init(&sp, r, d) &&
            (steps = epoch_order(r, batch, &order, d)) > 0;
  RtProgress p;
  if (ok) rt_progress_start(&p, stderr, (int)r->epoch + 1, (int)r->o->epochs, steps * batch);
  double ema = 0;
  for (int64_t s = 0; ok && s < steps; s++) {
    if (s % SAMPLE_EVERY == 0) sample(&sp, r, order + s * batch, batch);
    double loss = train_batch(&st, r, order + s * batch, batch);
    ema = s == 0 ? loss : 0.98 * ema + 0.02 * loss;
    rt_progress_update(&p, (s + 1) * batch, ema,
                       sp.b.out_arg < 0 ? -1 : sp.seen ? (double)sp.correct / (double)sp.seen : 0);
  }
  if (ok) {
    p.loss = st.sum[0] / (double)steps;
    rt_progress_finish(&p);
    for (int k = 0; k < r->n_steps; k++)
      r->step_loss[k] = st.sum[k] / (double)steps;
    r->train_loss[r->n_hist] = r->step_loss[0];
  }
  free(order);
  if (batch > 0) sampler_fini(&sp);
  for (int k = 0; k < r->n_steps; k++)
    cli_batch_fini(&st.b[k]);
  return ok;
}

static void print_epoch(Run *r, double tl, double ta) {
  fprintf(stderr, "epoch %llu/%llu: train loss", (unsigned long long)r->epoch,
          (unsigned long long)r->o->epochs);
  for (int k = 0; k < r->n_steps; k++) {
    const char *name = r->steps[k]->name;
    if (r->n_steps > 1) fprintf(stderr, " %s", name + (strncmp(name, "train_", 6) ? 0 : 6));
    fprintf(stderr, " %.4f", r->step_loss[k]);
  }
  if (r->eval) fprintf(stderr, "  test loss %.4f", tl);
  if (r->has_acc) fprintf(stderr, "  test accuracy %.2f%%", 100 * ta);
  fputc('\n', stderr);
}

static bool end_epoch(Run *r, Diag *d) {
  double tl = 0, ta = 0;
  if (r->eval && !cli_evaluate(r->eval, &r->w, &r->test_ds, &tl, &ta, d)) return false;
  r->test_loss[r->n_hist] = tl;
  r->test_acc[r->n_hist] = ta;
  r->epoch++;
  print_epoch(r, tl, ta);
  r->n_hist++;
  if (r->o->checkpoint && !save_checkpoint(r, d)) return false;
  if (r->o->samples &&
      !cli_write_samples(r->eval, &r->w, &r->test_ds, r->o->samples, r->epoch, d))
    return false;
  return !r->o->plot ||
         rt_plot_write(r->o->plot, r->model.info->name, r->train_loss,
                       r->eval ? r->test_loss : NULL,
                       r->has_acc ? r->test_acc : NULL, r->n_hist, d);
}

static bool train_loop(Run *r, Diag *d) {
  while (r->epoch < r->o->epochs && r->n_hist < 1024) {
    if (!run_epoch(r, d) || !end_epoch(r, d)) return false;
  }
  int h = r->n_hist - 1;
  if (r->has_acc)
    printf("test accuracy %.2f%%  test loss %.4f\n", 100 * r->test_acc[h], r->test_loss[h]);
  else if (r->eval)
    printf("test loss %.4f\n", r->test_loss[h]);
  else
    printf("train loss %.4f\n", r->train_loss[h]);
  return true;
}

/* "train" (one step) or every "train_<step>" entry, in the model's order */
static bool find_steps(Run *r, Diag *d) {
  const lathe_model_info *info = r->model.info;
  for (int k = 0; k < info->n_entries && r->n_steps < MAX_STEPS; k++) {
    if (info->entries[k].kind == LATHE_ENTRY_TRAIN) r->steps[r->n_steps++] = &info->entries[k];
  }
  r->eval = rt_model_entry(&r->model, "evaluate");
  if (!r->n_steps) {
    diag_error(d, (SrcLoc){0}, "%s: `lathe train` needs a train block", r->o->c.file);
    return false;
  }
  if (r->o->samples && !r->eval) {
    diag_error(d, (SrcLoc){0}, "%s: --samples needs an `output` (the images)", r->o->c.file);
    return false;
  }
  return true;
}

static bool load_data(Run *r, Diag *d) {
  if (cli_seq_task(r->o->data))
    return cli_seq_dataset(&r->train_ds, r->o->data, true, r->o->seed, d) &&
           cli_seq_dataset(&r->test_ds, r->o->data, false, r->o->seed, d);
  return rt_dataset_load(&r->train_ds, r->o->data, true, d) &&
         rt_dataset_load(&r->test_ds, r->o->data, false, d);
}

/* whether the evaluate entry binds scores to labels (accuracy is reported) */
static bool probe_accuracy(Run *r, Diag *d) {
  if (!r->eval) return true;
  CliBatch b;
  bool ok = cli_bind(&b, r->eval, &r->test_ds, d);
  r->has_acc = ok && b.out_arg >= 0;
  cli_batch_fini(&b);
  return ok;
}

static bool setup(Run *r, Diag *d) {
  if (!find_steps(r, d) || !load_data(r, d) || !probe_accuracy(r, d)) return false;
  if (r->o->samples && !cli_samples_check(r->eval, &r->test_ds, d)) return false;
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
