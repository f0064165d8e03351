/* cli/cmd_train.c — `lathe train FILE --data SPEC`: a thin caller of the runtime's training
 * loop (lathe/train.h): opens the datasets and splits, loads weights or a checkpoint to resume,
 * runs lathe_fit, and draws the plot and samples from its epoch callback.
 *
 * The named datasets (fashion-mnist, reverse, sort) validate on their test split unless told
 * otherwise, and their epoch lines say "test", as before the runtime took the loop over; a
 * text=FILE validates on its last 10% ("val").
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cli_data_help[] =
    "  --data SPEC                 X.npy[,Y.npy...] | DIR of .npy | X.npz | X.csv | X.tsv |\n"
    "                              X.safetensors | fashion-mnist[=DIR] |\n"
    "                              reverse|sort[=LEN,VOCAB] | text=FILE\n"
    "                              arrays bind to model inputs by name (x.npy -> input x)\n"
    "                              text=FILE: characters; x and target are windows of T bytes\n"
    "                              (T: dim 1 of the model's first integer input) and the same\n"
    "                              shifted by one, one every T/2 bytes; ids are the file's\n"
    "                              sorted bytes (at most V: the model's output classes and\n"
    "                              embed table rows), saved as CKPT.vocab (read by eval and\n"
    "                              predict); its last 10% is the validation (--val) split\n"
    "  --features COLS             CSV: feature columns, 'a,b,c' or '0:8' (default: all but the\n"
    "                              target); they form the array x\n"
    "  --target COL                CSV: the target column (default: the last; '' for none);\n"
    "                              string values are class names mapped to ids in sorted\n"
    "                              order (saved as CKPT.classes, read by eval and predict)\n"
    "  --task T                    classification|sequence|multilabel|regression|none (default:\n"
    "                              inferred from the evaluate entry's target and outputs)\n"
    "  --loss L, --optimizer O     for a .onnx FILE: the loss and optimizer of its train block\n";

static const char *help_head =
    "usage: lathe train [OPTIONS] FILE --data SPEC\n"
    "\n"
    "Train FILE's `train` block on a dataset: shuffle, batch to the model's batch size, run the\n"
    "compiled train step, and evaluate on the validation set after each epoch. The last partial\n"
    "batch of an epoch is dropped, unless the batch is a run-time one (-D 'N=dynamic(max=64)'):\n"
    "then it trains too (on one rank, a last batch of 1 is evened with the one before it).\n"
    "Under `mpirun -np K` it trains data-parallel on K ranks: global batch K x the batch (or\n"
    "--global-batch), gradients averaged every step, only rank 0 prints and writes\n"
    "(docs/distributed.md).\n"
    "\n"
    "options:\n";

static const char *help_tail =
    "  --val SPEC                  validation data (named datasets: their test split)\n"
    "  --val-split F               hold out fraction F of --data (seeded, stratified by class)\n"
    "  --test SPEC                 after training, print the full report on this data\n"
    "  --epochs N                  epochs to train to (default 1)\n"
    "  --lr X                      learning rate of every train step (overrides the train block)\n"
    "  --batch B                   batch size (overrides the `const` that is the first input's\n"
    "                              dim 0, as -D NAME=B would)\n"
    "  --global-batch G            samples per step over all ranks (G / K per rank under\n"
    "                              `mpirun -np K`): a multiple of K; G / K must be the model's\n"
    "                              batch, or at most the bound of a run-time batch\n"
    "  --buckets BYTES             under `mpirun`: reduce the gradients in buckets of ~BYTES\n"
    "                              as the backward pass finishes them (MPI_Iallreduce)\n"
    "  --seed N                    init, shuffle, split and augmentation seed (default 0)\n"
    "  --limit N                   use only the first N training samples\n"
    "  --early-stop PATIENCE       stop when --monitor has not improved for PATIENCE epochs and\n"
    "                              restore the best epoch's weights\n"
    "  --monitor M                 val_loss (default), val_accuracy, val_f1, val_r2, val_mse,\n"
    "                              val_mae, val_rmse, val_precision, val_recall, or loss\n"
    "  --min-delta X               an improvement must exceed X (default 0)\n"
    "  --reduce-lr-on-plateau P    multiply the learning rate by --reduce-lr-factor (default\n"
    "                              0.1) when --monitor has not improved for P epochs (the\n"
    "                              step is recompiled with the new rate; weights carry over)\n"
    "  --checkpoint CKPT           write params + optimizer state after every epoch\n"
    "  --best CKPT                 write them whenever the monitored metric improves\n"
    "  --resume CKPT               continue from a checkpoint written by --checkpoint\n"
    "  --log FILE.csv|FILE.jsonl   every epoch's metrics (rewritten atomically each epoch)\n"
    "  --flip                      augment: random horizontal flip of [.., H, W] samples\n"
    "  --crop-pad P                augment: random crop after zero padding by P pixels\n"
    "  --plot FILE.svg             plot loss and accuracy per epoch\n"
    "  --samples DIR               write DIR/epoch<k>.png: the model's image output on the\n"
    "                              first validation batch (VAE reconstructions, GAN samples)\n"
    "  -D NAME=VALUE               override a `const` of the model (e.g. -D N=128, the batch)\n"
    "  --max-batch M               a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64             compile every f32 as f64\n"
    "  -h, --help                  this help\n";

typedef struct TrainOptions {
  CliCompile c;
  lathe_data_options data;
  const char *spec, *val, *test, *checkpoint, *resume, *best, *plot, *samples, *log, *monitor;
  const char *task;
  double val_split, min_delta, reduce_factor;
  uint64_t epochs, seed, limit, early_stop, crop_pad, batch, reduce_patience;
  uint64_t global_batch; /* --global-batch: samples per step over all ranks; 0 = K x batch */
  bool flip, batch_set, lr_set;
} TrainOptions;

bool cli_data_option(CliArgs *a, lathe_data_options *o) {
  if (cli_option(a, "--features", NULL))
    o->features = a->value;
  else if (cli_option(a, "--target", NULL))
    o->target = a->value;
  else
    return false;
  return true;
}

void cli_image_options(const lathe_model_info *info, lathe_data_options *o) {
  const lathe_entry_info *e = NULL;
  for (int k = 0; k < info->n_entries && !e; k++)
    if (strcmp(info->entries[k].name, "forward") == 0) e = &info->entries[k];
  for (int k = 0; e && k < e->n_args; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    if (t->rank == 4 && (t->shape[1] == 1 || t->shape[1] == 3))
      o->image_channels = (int)t->shape[1], o->image_h = t->shape[2], o->image_w = t->shape[3];
    else if (t->rank == 3)
      o->image_channels = 1, o->image_h = t->shape[1], o->image_w = t->shape[2];
    return; /* the first input only */
  }
}

/* the forward entry, else the first one */
bool cli_checkpoint_vocab(lathe_dataset *ds, const char *ckpt, const lathe_data_options *o,
                          Diag *d) {
  char path[4096];
  rt_vocab_path(path, sizeof path, ckpt);
  if (!ds->store->vocab || access(path, F_OK) != 0) return true;
  RtVocab v;
  return rt_vocab_read(&v, path, d) && rt_data_use_vocab(ds, &v, path, o->vocab_max, d);
}

static bool parse_double(const char *s, double *out) {
  char *end = NULL;
  *out = strtod(s, &end);
  return end != s && *end == '\0';
}

/* one option of train's own; false if it is not one */
static bool train_option(CliArgs *a, TrainOptions *o, uint64_t **num, double **real) {
  static const struct {
    const char *name;
    size_t offset;
  } strs[] = {{"--data", offsetof(TrainOptions, spec)},
              {"--val", offsetof(TrainOptions, val)},
              {"--test", offsetof(TrainOptions, test)},
              {"--checkpoint", offsetof(TrainOptions, checkpoint)},
              {"--resume", offsetof(TrainOptions, resume)},
              {"--best", offsetof(TrainOptions, best)},
              {"--plot", offsetof(TrainOptions, plot)},
              {"--samples", offsetof(TrainOptions, samples)},
              {"--log", offsetof(TrainOptions, log)},
              {"--monitor", offsetof(TrainOptions, monitor)},
              {"--task", offsetof(TrainOptions, task)}};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    if (cli_option(a, strs[i].name, NULL)) {
      *(const char **)((char *)o + strs[i].offset) = a->value;
      return true;
    }
  static const struct {
    const char *name;
    size_t offset;
    bool real; /* a double, else a uint64_t */
  } nums[] = {{"--epochs", offsetof(TrainOptions, epochs), false},
              {"--seed", offsetof(TrainOptions, seed), false},
              {"--limit", offsetof(TrainOptions, limit), false},
              {"--early-stop", offsetof(TrainOptions, early_stop), false},
              {"--crop-pad", offsetof(TrainOptions, crop_pad), false},
              {"--batch", offsetof(TrainOptions, batch), false},
              {"--global-batch", offsetof(TrainOptions, global_batch), false},
              {"--reduce-lr-on-plateau", offsetof(TrainOptions, reduce_patience), false},
              {"--val-split", offsetof(TrainOptions, val_split), true},
              {"--min-delta", offsetof(TrainOptions, min_delta), true},
              {"--reduce-lr-factor", offsetof(TrainOptions, reduce_factor), true},
              {"--lr", offsetof(TrainOptions, c) + offsetof(CliCompile, lr), true}};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
    if (!cli_option(a, nums[i].name, NULL)) continue;
    if (nums[i].real)
      *real = (double *)((char *)o + nums[i].offset);
    else
      *num = (uint64_t *)((char *)o + nums[i].offset);
    o->batch_set = o->batch_set || strcmp(nums[i].name, "--batch") == 0;
    o->lr_set = o->lr_set || strcmp(nums[i].name, "--lr") == 0;
    return true;
  }
  if (cli_flag(a, "--flip", NULL))
    o->flip = true;
  else
    return cli_data_option(a, &o->data);
  return true;
}

static int parse_args(TrainOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "train", argc, argv);
  while (!cli_args_done(&a)) {
    uint64_t *num = NULL;
    double *real = NULL;
    if (cli_flag(&a, "--help", "-h")) {
      printf("%s%s%s", help_head, cli_data_help, help_tail);
      return -1;
    }
    if (!train_option(&a, o, &num, &real) && !cli_compile_option(&a, &o->c) &&
        cli_positional(&a, &o->c.file) != EXIT_OK)
      return EXIT_USAGE;
    if (num && !cli_parse_u64(a.value, num))
      return cli_usage_error(&a, "expected a non-negative integer, got '%s'", a.value);
    if (real && !parse_double(a.value, real))
      return cli_usage_error(&a, "expected a number, got '%s'", a.value);
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->spec) return cli_usage_error(&a, "expected --data SPEC (see --help)");
  if (cli_onnx_loss_check(&a, &o->c) != EXIT_OK) return EXIT_USAGE;
  if (o->epochs == 0 || o->epochs > 100000)
    return cli_usage_error(&a, "--epochs must be 1..100000");
  if (o->val && o->val_split > 0)
    return cli_usage_error(&a, "--val and --val-split exclude each other");
  if (o->val_split < 0 || o->val_split >= 1)
    return cli_usage_error(&a, "--val-split must be in (0, 1)");
  if (o->task && lathe_task_parse(o->task) < 0)
    return cli_usage_error(&a,
                           "--task %s: expected classification, sequence, multilabel, "
                           "regression or none",
                           o->task);
  if ((o->lr_set && !(o->c.lr > 0)) || (o->batch_set && o->batch == 0))
    return cli_usage_error(&a, "--lr and --batch must be positive");
  if (o->reduce_factor < 0 || o->reduce_factor >= 1)
    return cli_usage_error(&a, "--reduce-lr-factor must be in (0, 1)");
  if (o->reduce_patience) o->c.lr_scale = 1; /* checks now that the model has a rate to scale */
  return EXIT_OK;
}

enum { MAX_RETIRED = 32 };

typedef struct Run {
  TrainOptions *o;
  RtModel model;
  CliWeights w;
  RtModel retired[MAX_RETIRED]; /* models replaced by reduce-lr-on-plateau, closed at the end */
  CliWeights retired_w[MAX_RETIRED];
  int n_retired;
  lathe_dataset *all, *train, *val, *test;                /* train and val may be views of all */
  double train_loss[1024], val_loss[1024], val_acc[1024]; /* per epoch, for the plot */
  int n_hist;
  bool has_acc;
  int start_epoch;
  const lathe_dist *dist; /* under mpirun (cli/dist_mpi.c), else NULL */
  bool quiet;             /* a rank but 0: prints and writes nothing */
  int64_t min_batch;      /* Module.train_min_n: a batch norm needs steps of 2 samples or more */
  bool beside_written;    /* CKPT.classes / CKPT.vocab are written (on_epoch) */
} Run;

static bool named_dataset(const char *spec) {
  return strncmp(spec, "fashion-mnist", 13) == 0 || rt_data_is_seq_task(spec) ||
         rt_data_is_text(spec); /* its validation split: the last 10% */
}

static lathe_dataset *open_data(const char *spec, const lathe_data_options *base, bool test,
                                uint64_t seed, Diag *d) {
  lathe_data_options o = *base;
  o.test_split = test;
  o.seed = seed;
  return rt_data_open(spec, &o, d);
}

/* the target array to stratify by: the evaluate entry's integer target, else none */
static const char *stratify_name(Run *r) {
  const lathe_entry_info *e = rt_model_entry(&r->model, "evaluate");
  RtFeed f = {0};
  const char *name = NULL;
  Diag quiet;
  diag_init(&quiet);
  if (e && rt_feed_bind(&f, e, r->all, &quiet)) {
    for (int k = 0, n_in = 0; k < e->n_args && !name; k++)
      if (e->args[k].role == LATHE_ARG_INPUT && n_in++ > 0 &&
          e->args[k].tensor->dtype != LATHE_F32 && e->args[k].tensor->dtype != LATHE_F64 &&
          r->all->store->arrays[f.src[k]].per == 1)
        name = r->all->store->arrays[f.src[k]].name;
  }
  rt_feed_fini(&f);
  diag_fini(&quiet);
  return name;
}

/* --val and --test files number their string labels (and text bytes) as the training file
 * does */
static bool training_classes(Run *r, lathe_dataset *ds, Diag *d) {
  RtStore *s = r->all->store;
  return (!s->classes || rt_data_use_classes(ds, s->classes, s->n_classes, r->o->spec, d)) &&
         (!s->vocab || rt_data_use_vocab(ds, s->vocab, r->o->spec, r->o->data.vocab_max, d));
}

static bool load_data(Run *r, Diag *d) {
  TrainOptions *o = r->o;
  cli_image_options(r->model.info, &o->data);
  lathe_data_options_for_model(&o->data, r->model.info);
  if (o->val_split > 0 && rt_data_is_text(o->spec)) {
    diag_error(d, (SrcLoc){0},
               "--val-split: %s has its own validation split (its last 10%%; windows overlap, "
               "so a random split would validate on training bytes): expected no --val-split",
               o->spec);
    return false;
  }
  if (!(r->all = open_data(o->spec, &o->data, false, o->seed, d))) return false;
  /* a resumed run keeps the ids of the run it continues */
  if (o->resume && !cli_checkpoint_vocab(r->all, o->resume, &o->data, d)) return false;
  r->train = r->all;
  if (o->val_split > 0) {
    char *err = NULL;
    if (lathe_dataset_split(r->all, o->val_split, o->seed, stratify_name(r), &r->train, &r->val,
                            &err) != 0) {
      cli_api_error(d, err);
      return false;
    }
  } else if (o->val || named_dataset(o->spec)) {
    const char *spec = o->val ? o->val : o->spec; /* a named dataset validates on its test split */
    r->val = open_data(spec, &o->data, named_dataset(spec), o->seed, d);
    if (!r->val || !training_classes(r, r->val, d)) return false;
  }
  return !o->test || ((r->test = open_data(o->test, &o->data, true, o->seed, d)) != NULL &&
                      training_classes(r, r->test, d));
}

static bool read_epoch(const char *ckpt, int *epoch, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(ckpt, &set, d);
  const Tensor *t = ok ? rt_set_find(&set, "lathe.epoch") : NULL;
  if (ok && (!t || t->dtype != DT_I64 || t->shape.rank != 0)) {
    diag_error(d, (SrcLoc){0}, "%s: not a training checkpoint (no i64 'lathe.epoch')", ckpt);
    ok = false;
  }
  if (ok) *epoch = (int)((int64_t *)t->data)[0];
  rt_set_fini(&set);
  return ok;
}

/* what the ids of the training data mean, beside the checkpoint: CKPT.classes (the names of
 * string labels, one per line) and CKPT.vocab (the bytes of a text's ids, rt_vocab_write);
 * written with the first epoch's checkpoint (on_epoch), so that every checkpoint of the run has
 * them and a run that fails before it writes nothing */
static bool save_beside(Run *r, const char *ckpt, Diag *d) {
  RtStore *s = r->all->store;
  char vocab[4096];
  if (ckpt && s->vocab) {
    rt_vocab_path(vocab, sizeof vocab, ckpt);
    if (!rt_vocab_write(s->vocab, vocab, d)) return false;
  }
  if (!ckpt || !s->n_classes) return true;
  size_t len = 0, size = 1;
  for (int i = 0; i < s->n_classes; i++)
    size += strlen(s->classes[i]) + 1;
  char *text = malloc(size), path[4096];
  for (int i = 0; text && i < s->n_classes; i++)
    len += (size_t)sprintf(text + len, "%s\n", s->classes[i]);
  snprintf(path, sizeof path, "%s.classes", ckpt);
  bool ok = text && rt_write_file_atomic(path, text, len, d);
  free(text);
  return ok;
}

static int on_epoch(void *ctx, const lathe_epoch_result *e, char **error) {
  Run *r = ctx;
  Diag d;
  diag_init(&d);
  int h = r->n_hist < 1024 ? r->n_hist++ : 1023;
  r->train_loss[h] = e->train_loss;
  r->val_loss[h] = e->val.loss;
  r->val_acc[h] = e->val.accuracy;
  r->has_acc =
      e->has_val && (e->val.task == LATHE_TASK_CLASSIFY || e->val.task == LATHE_TASK_SEQUENCE);
  const lathe_entry_info *ev = rt_model_entry(&r->model, "evaluate");
  bool ok =
      r->beside_written || (save_beside(r, r->o->checkpoint, &d) && save_beside(r, r->o->best, &d));
  r->beside_written = ok;
  ok = ok && (!r->o->samples ||
              cli_write_samples(ev, &r->w, r->val, r->o->samples, (uint64_t)e->epoch, &d));
  ok = ok && (!r->o->plot || rt_plot_write(r->o->plot, r->model.info->name, r->train_loss,
                                           e->has_val ? r->val_loss : NULL,
                                           r->has_acc ? r->val_acc : NULL, r->n_hist, &d));
  int rc = ok ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  return rc;
}

/* reduce-lr-on-plateau: the model recompiled with its learning rate scaled, the weights
 * (params and optimizer state) copied over */
static int reduce_lr(void *ctx, double scale, const lathe_model_info **info, void **params,
                     void **state, char **error) {
  Run *r = ctx;
  if (r->n_retired == MAX_RETIRED) {
    *error = strdup("the learning rate was reduced too many times");
    return -1;
  }
  r->o->c.lr_scale = scale;
  Module *m = cli_build_module(&r->o->c);
  RtModel nm = {0};
  bool ok = m && cli_load(m, &r->o->c, &nm);
  if (m) module_free(m);
  CliWeights w = {0};
  const lathe_model_info *ni = ok ? nm.info : NULL;
  ok = ok && (w.params = rt_aligned_alloc(ni->params_bytes)) &&
       (w.state = rt_aligned_alloc(ni->state_bytes));
  if (!ok) {
    cli_weights_fini(&w);
    if (nm.handle) rt_model_close(&nm);
    *error = strdup("could not recompile the model with the reduced learning rate");
    return -1;
  }
  memcpy(w.params, *params, ni->params_bytes);
  memcpy(w.state, *state, ni->state_bytes);
  r->retired[r->n_retired] = r->model, r->retired_w[r->n_retired++] = r->w;
  r->model = nm, r->w = w;
  *info = ni, *params = w.params, *state = w.state;
  return 0;
}

static bool setup(Run *r, Diag *d) {
  if (!load_data(r, d)) return false;
  const lathe_entry_info *ev = rt_model_entry(&r->model, "evaluate");
  if (r->o->samples && (!ev || !r->val || !cli_samples_check(ev, r->val, d))) {
    if (!ev || !r->val)
      diag_error(d, (SrcLoc){0}, "--samples needs an `output` (the images) and validation data");
    return false;
  }
  if (!cli_weights_init(&r->w, r->model.info, r->o->resume, r->o->seed, d)) return false;
  if (r->o->resume && !read_epoch(r->o->resume, &r->start_epoch, d)) return false;
  if (r->o->resume && !r->quiet)
    fprintf(stderr, "resuming from %s after epoch %d\n", r->o->resume, r->start_epoch);
  if ((uint64_t)r->start_epoch >= r->o->epochs) {
    diag_error(d, (SrcLoc){0}, "%s already has %d epochs; ask for more with --epochs", r->o->resume,
               r->start_epoch);
    return false;
  }
  return true;
}

static void fit_options(Run *r, lathe_fit_options *f) {
  TrainOptions *o = r->o;
  lathe_fit_options_init(f);
  f->epochs = (int)o->epochs;
  f->start_epoch = r->start_epoch;
  f->seed = o->seed;
  f->limit = (int64_t)o->limit;
  f->task = o->task ? lathe_task_parse(o->task) : LATHE_TASK_AUTO;
  f->early_stop = (int)o->early_stop;
  if (o->monitor) f->monitor = o->monitor;
  f->min_delta = o->min_delta;
  f->checkpoint = o->checkpoint;
  f->best_checkpoint = o->best;
  f->log_path = o->log;
  f->val_name = r->val && !o->val && !o->val_split && !rt_data_is_text(o->spec) ? "test" : "val";
  f->reduce_lr_patience = (int)o->reduce_patience;
  if (o->reduce_factor > 0) f->reduce_lr_factor = o->reduce_factor;
  f->reduce_lr = reduce_lr;
  f->augment_flip = o->flip;
  f->augment_crop_pad = (int)o->crop_pad;
  f->progress = stderr;
  f->on_epoch = on_epoch;
  f->ctx = r;
  f->dist = r->dist; /* lathe_fit silences the ranks but 0 */
  f->global_batch = (int64_t)o->global_batch;
}

static void print_final(const Run *r, const lathe_fit_result *res, const char *v) {
  bool restored = res->stopped_early && r->o->early_stop;
  const lathe_epoch_result *e = restored ? &res->best : &res->last;
  const lathe_metrics *m = &e->val;
  if (restored) printf("best epoch %d: ", e->epoch);
  if (e->has_val && r->has_acc)
    printf("%s accuracy %.2f%%  %s loss %.4f\n", v, 100 * m->accuracy, v, m->loss);
  else if (e->has_val && m->task == LATHE_TASK_MULTILABEL)
    printf("%s exact-match accuracy %.2f%%  %s f1 %.4f  %s loss %.4f\n", v, 100 * m->accuracy, v,
           m->f1, v, m->loss);
  else if (e->has_val && m->task == LATHE_TASK_REGRESS)
    printf("%s r2 %.4f  %s mse %.6g  %s loss %.4f\n", v, m->r2, v, m->mse, v, m->loss);
  else if (e->has_val)
    printf("%s loss %.4f\n", v, m->loss);
  else
    printf("train loss %.4f\n", e->train_loss);
}

/* --test: the full report of the trained weights */
static bool report_test(Run *r, int task, Diag *d) {
  lathe_evaluation ev;
  char *err = NULL;
  if (lathe_evaluate(r->model.info, r->w.params, r->w.state, r->test, task, &ev, &err) != 0) {
    cli_api_error(d, err);
    return false;
  }
  cli_print_evaluation(&ev, r->test, "test");
  lathe_evaluation_free(&ev);
  return true;
}

static bool train(Run *r, Diag *d) {
  lathe_fit_options f;
  lathe_fit_result res;
  char *err = NULL;
  fit_options(r, &f);
  int64_t n = lathe_dataset_len(r->train);
  if (f.limit > 0 && f.limit < n) n = f.limit;
  if (n < r->min_batch) { /* lathe_fit evens a last batch of 1, but one sample is all there is */
    diag_error(d, (SrcLoc){0},
               "%lld training sample: a batch of 1 cannot train this model (a batch norm with "
               "one value per channel per sample needs %lld; docs/dynamic-batch.md)",
               (long long)n, (long long)r->min_batch);
    return false;
  }
  if (lathe_fit(r->model.info, r->w.params, r->w.state, r->train, r->val, &f, &res, &err) != 0) {
    cli_api_error(d, err);
    return false;
  }
  if (r->quiet) return true;
  print_final(r, &res, f.val_name);
  return !r->test || report_test(r, f.task, d);
}

/* the command after its options: build, load, train; dist: under mpirun, else NULL */
static int train_command(TrainOptions *o_, const lathe_dist *dist) {
  TrainOptions o = *o_;
  Diag d;
  diag_init(&d);
  if (dist) o.c.want_split = true; /* data-parallel: the step split at the gradient exchange */
  bool batch_ok = !o.batch || cli_batch_define(&o.c, o.batch, &d);
  diag_flush(&d, stderr);
  Module *m = batch_ok ? cli_build_module(&o.c) : NULL;
  if (!m) {
    diag_fini(&d);
    return EXIT_USER;
  }
  Run *r = calloc(1, sizeof *r);
  bool ok = r && cli_load(m, &o.c, &r->model);
  if (r) r->min_batch = m->train_min_n;
  module_free(m);
  if (!ok) {
    free(r);
    diag_fini(&d);
    return EXIT_USER;
  }
  r->o = &o;
  r->dist = dist, r->quiet = dist && dist->rank != 0;
  ok = setup(r, &d) && train(r, &d);
  cli_weights_fini(&r->w);
  for (int i = 0; i < r->n_retired; i++)
    cli_weights_fini(&r->retired_w[i]), rt_model_close(&r->retired[i]);
  if (r->train != r->all) lathe_dataset_free(r->train);
  lathe_dataset_free(r->all), lathe_dataset_free(r->val), lathe_dataset_free(r->test);
  rt_model_close(&r->model);
  free(r);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}

/* --global-batch G on K ranks, before the model is compiled: G a multiple of K (lathe_fit
 * checks the per-rank share against the model) */
static int global_batch_check(const TrainOptions *o, int ranks, int rank) {
  uint64_t g = o->global_batch, k = (uint64_t)ranks, lo = g / k * k;
  if (!g || g % k == 0) return EXIT_OK;
  if (rank == 0)
    fprintf(stderr,
            "lathe train: --global-batch %llu on %d ranks: expected a multiple of %d (each rank "
            "trains G / %d samples per step), e.g. %llu or %llu\n",
            (unsigned long long)g, ranks, ranks, ranks, (unsigned long long)(lo ? lo : k),
            (unsigned long long)(lo + k));
  return EXIT_USAGE;
}

int cmd_train(int argc, char **argv) {
  TrainOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  lathe_data_options_init(&o.data);
  o.c.want_eval = true;
  o.epochs = 1;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  lathe_dist dist;
  bool parallel = false;
  Diag d;
  diag_init(&d);
  bool started = cli_dist_start(&dist, &parallel, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  if (!started) return EXIT_USER;
  rc = global_batch_check(&o, parallel ? dist.size : 1, dist.rank);
  if (rc != EXIT_OK) { /* every rank decides the same: they all stop, nothing to abort */
    cli_dist_stop(&dist, false);
    return rc;
  }
  rc = train_command(&o, parallel ? &dist : NULL);
  cli_dist_stop(&dist, rc != EXIT_OK);
  return rc;
}
