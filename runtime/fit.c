/* runtime/fit.c — the training loop of lathe/train.h: epochs of shuffled batches through the
 * train step(s), validation metrics after each epoch, early stopping with the best weights
 * restored, per-epoch and best checkpoints, and an epoch log (CSV or JSON lines).
 *
 * Reproducibility: epoch e's order is a Fisher-Yates shuffle seeded by (seed, e) and
 * augmentation draws from (seed, e) too, so a run resumed from a checkpoint after epoch e
 * continues exactly as the uninterrupted one. Files (checkpoints, the log) are rewritten
 * whole and atomically, so they only ever appear complete.
 *
 * Data-parallel (o->dist, runtime/dist.c): the same loop on every rank over the model's split
 * step, each rank taking its part of every global batch of the same shuffled order (size x
 * batch samples, or global_batch); a run-time batch's last partial global batch is split
 * evenly over the ranks. Only rank 0 prints and writes files.
 */
#include "dist.h"
#include "eval_internal.h"

#include <stdlib.h>
#include <string.h>

enum { FIT_MAX_STEPS = 8, SAMPLE_EVERY = 16 };

typedef struct Fit {
  const lathe_model_info *info;
  void *params, *state;
  const lathe_dataset *train, *val;
  const lathe_fit_options *o;
  const lathe_entry_info *steps[FIT_MAX_STEPS];
  const char *step_names[FIT_MAX_STEPS];
  int n_steps;
  RtFeed feeds[FIT_MAX_STEPS];
  int64_t batch;  /* the model's batch (the bound of a run-time batch) */
  int64_t per;    /* samples per rank in a full step (global_batch / ranks, else batch) */
  RtFeed eval;    /* bound to val, when there is one */
  RtFeed sampler; /* the evaluate entry on training batches (classification): the progress
                   * bar's accuracy, sampled every SAMPLE_EVERY steps; batch 0 = off */
  RtTask task;
  lathe_epoch_result *hist; /* one per epoch run */
  double *step_loss;        /* FIT_MAX_STEPS per epoch */
  int n_hist;
  lathe_early_stop stop;
  lathe_epoch_result best_r; /* the epoch of the monitored metric's best */
  lathe_early_stop plateau;  /* reduce-lr-on-plateau's own patience on the same metric */
  double lr_scale;
  const char *monitor; /* without its "val_" prefix */
  bool monitor_val;
  void *best_params, *best_state;
  RtDist dist; /* o->dist: the split step (dist.grad bound to feeds[0]) */
} Fit;

void lathe_fit_options_init(lathe_fit_options *o) {
  memset(o, 0, sizeof *o);
  o->epochs = 1;
  o->monitor = "val_loss";
  o->restore_best = 1;
  o->val_name = "val";
  o->reduce_lr_factor = 0.1;
}

static void shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch) {
  uint64_t state = rt_mix64(seed ^ rt_mix64(epoch + 1));
  for (int64_t i = 0; i < n; i++)
    order[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    state = rt_mix64(state);
    int64_t j = (int64_t)(state % (uint64_t)(i + 1)), t = order[i];
    order[i] = order[j], order[j] = t;
  }
}

/* data-parallel: the one train step's grad entry bound to the training set (feeds[0]) */
static bool bind_dist(Fit *f, Diag *d) {
  if (!rt_dist_bind(&f->dist, f->o->dist, f->info, d)) return false;
  for (int k = 0; k < f->info->n_entries; k++)
    if (f->info->entries[k].kind == LATHE_ENTRY_TRAIN)
      f->steps[f->n_steps++] = &f->info->entries[k];
  if (f->n_steps != 1) {
    rt_error(d, "data-parallel training supports a train block of one step; '%s' has %d",
             f->info->name, f->n_steps);
    return false;
  }
  f->step_names[0] = f->steps[0]->name;
  if (!rt_feed_bind(&f->feeds[0], f->dist.grad, f->train, d)) return false;
  rt_dist_adopt(&f->dist, &f->feeds[0]);
  f->feeds[0].flip = f->o->augment_flip, f->feeds[0].crop_pad = f->o->augment_crop_pad;
  f->batch = f->feeds[0].batch;
  if (!f->batch) rt_error(d, "the grad entry of '%s' takes no samples", f->info->name);
  return f->batch != 0;
}

/* every train entry ("train" or each "train_<step>"), each bound to the training set */
static bool bind_steps(Fit *f, Diag *d) {
  if (f->o->dist) return bind_dist(f, d);
  for (int k = 0; k < f->info->n_entries && f->n_steps < FIT_MAX_STEPS; k++) {
    const lathe_entry_info *e = &f->info->entries[k];
    if (e->kind != LATHE_ENTRY_TRAIN) continue;
    f->step_names[f->n_steps] = e->name;
    f->steps[f->n_steps] = e;
    RtFeed *feed = &f->feeds[f->n_steps++];
    if (!rt_feed_bind(feed, e, f->train, d)) return false;
    feed->flip = f->o->augment_flip, feed->crop_pad = f->o->augment_crop_pad;
    if (feed->batch && f->batch && feed->batch != f->batch) {
      rt_error(d, "train steps '%s' and '%s' have different batch sizes", f->steps[0]->name,
               e->name);
      return false;
    }
    if (!f->batch) f->batch = feed->batch;
  }
  if (!f->n_steps)
    rt_error(d, "model '%s' has no train entry (no train block)", f->info->name);
  else if (!f->batch)
    rt_error(d, "no train step of '%s' takes the dataset's samples", f->info->name);
  return f->n_steps && f->batch;
}

/* Out-of-range labels fail with or without a validation set. Classification keeps the feed
 * as the sampler of the progress line's running accuracy; multi-label only checks. */
static bool check_train_labels(Fit *f, const lathe_entry_info *e, Diag *d) {
  bool cls = f->task.kind == LATHE_TASK_CLASSIFY || f->task.kind == LATHE_TASK_SEQUENCE;
  if (!e || (!cls && f->task.kind != LATHE_TASK_MULTILABEL)) return true;
  RtFeed probe, *feed = cls ? &f->sampler : &probe;
  bool ok = rt_feed_bind(feed, e, f->train, d) && rt_task_check_labels(&f->task, feed, f->train, d);
  if (!cls) rt_feed_fini(&probe);
  return ok;
}

static bool bind_val(Fit *f, Diag *d) {
  const lathe_entry_info *e = rt_entry(f->info, "evaluate");
  if (!rt_task_infer(&f->task, e ? e : f->steps[0], e ? f->o->task : LATHE_TASK_NONE, d))
    return false;
  if (!check_train_labels(f, e, d)) return false;
  if (!f->val) return true;
  if (!e) {
    rt_error(d, "model '%s' has no evaluate entry to validate with (it needs an `output`)",
             f->info->name);
    return false;
  }
  if (!rt_feed_bind(&f->eval, e, f->val, d)) return false;
  return rt_task_check_labels(&f->task, &f->eval, f->val, d);
}

static bool setup_monitor(Fit *f, Diag *d) {
  const char *m = f->o->monitor ? f->o->monitor : "val_loss";
  f->monitor_val = strncmp(m, "val_", 4) == 0;
  f->monitor = m + (f->monitor_val ? 4 : 0);
  lathe_metrics probe = {.task = f->task.kind};
  double v;
  int higher = 0;
  bool known =
      strcmp(f->monitor, "loss") == 0 || lathe_metrics_get(&probe, f->monitor, &v, &higher) == 0;
  if (!known || (f->monitor_val && !f->val && (f->o->early_stop || f->o->best_checkpoint))) {
    rt_error(d,
             known ? "--monitor %s needs a validation set (--val or --val-split)"
                   : "--monitor %s: not a metric of this %s model (expected loss, "
                     "val_loss, or val_ with accuracy/f1/precision/recall or mse/rmse/mae/r2)",
             m, lathe_task_name(f->task.kind));
    return false;
  }
  lathe_early_stop_init(&f->stop, f->o->early_stop, f->o->min_delta, higher);
  lathe_early_stop_init(&f->plateau, f->o->reduce_lr_patience, f->o->min_delta, higher);
  f->lr_scale = 1;
  if (f->o->reduce_lr_patience &&
      (!f->o->reduce_lr || !(f->o->reduce_lr_factor > 0 && f->o->reduce_lr_factor < 1))) {
    rt_error(d, "reduce-lr-on-plateau needs a reduce_lr callback and a factor in (0, 1)");
    return false;
  }
  if (f->o->early_stop && f->o->restore_best) {
    f->best_params = malloc(f->info->params_bytes ? f->info->params_bytes : 1);
    f->best_state = malloc(f->info->state_bytes ? f->info->state_bytes : 1);
    if (!f->best_params || !f->best_state) return false;
  }
  return true;
}

/* the progress bar's training accuracy: the evaluate entry on the rows about to be trained
 * (all of the model's batch, or fewer when the entry takes its batch at run time) */
static void sample(Fit *f, const int64_t *index, int64_t rows, int64_t acc[2]) {
  if (!f->sampler.batch || !f->o->progress) return;
  if (rows != f->sampler.batch && !f->sampler.dynamic) return;
  rt_feed_gather(&f->sampler, f->train, index, rows);
  rt_feed_call(&f->sampler, f->params, f->state);
  acc[0] += rt_count_correct(&f->task, &f->sampler, rows);
  acc[1] += rows * f->task.per;
}

static double sampled(const int64_t acc[2]) {
  return acc[1] ? (double)acc[0] / (double)acc[1] : -1;
}

/* The samples of step s of a one-rank epoch of a model with a run-time batch: batches of B in
 * order, the last one partial. A last batch of 1 is never trained alone (a batch norm with
 * one value per channel per sample has no variance over it: docs/dynamic-batch.md): the two
 * last batches become B - 1 and 2 samples; with B <= 2 the lone sample waits for the next
 * epoch's order (dynamic_steps leaves that step out). Returns the rows; *start the first. */
static int64_t dynamic_step(int64_t n, int64_t b, int64_t steps, int64_t s, int64_t *start) {
  bool lone = n % b == 1 && n > b && b >= 3;
  *start = s * b;
  if (lone && s == steps - 1) return *start -= 1, 2;
  if (lone && s == steps - 2) return b - 1;
  return n - *start < b ? n - *start : b;
}

static int64_t dynamic_steps(int64_t n, int64_t b) {
  return n % b == 1 && n > b && b < 3 ? n / b : (n + b - 1) / b;
}

/* The samples per step (f->per per rank): a multiple of the ranks, each rank's share the
 * model's batch or, for a run-time batch, at most its bound. */
static bool check_global_batch(Fit *f, Diag *d) {
  int64_t g = f->o->global_batch, ranks = f->o->dist ? f->o->dist->size : 1;
  bool dynamic = f->feeds[0].dynamic;
  f->per = g ? g / ranks : f->batch;
  if (!g) return true;
  if (g < 0 || g % ranks) {
    int64_t lo = g / ranks * ranks;
    rt_error(d,
             "global batch %lld: expected a positive multiple of the %lld ranks (each rank "
             "trains the same share), e.g. %lld or %lld",
             (long long)g, (long long)ranks, (long long)(lo ? lo : ranks), (long long)(lo + ranks));
    return false;
  }
  if (!dynamic && f->per != f->batch) {
    rt_error(d,
             "global batch %lld over %lld rank(s) is %lld samples per rank, but '%s' has a "
             "fixed batch of %lld: compile it with a run-time batch (-D N='dynamic(max=M)', "
             "docs/dynamic-batch.md) or at batch %lld (--batch)",
             (long long)g, (long long)ranks, (long long)f->per, f->info->name, (long long)f->batch,
             (long long)f->per);
    return false;
  }
  if (f->per > f->batch) {
    rt_error(d,
             "global batch %lld over %lld rank(s) is %lld samples per rank, more than the "
             "bound %lld of the run-time batch of '%s': use more ranks or a larger bound",
             (long long)g, (long long)ranks, (long long)f->per, (long long)f->batch, f->info->name);
    return false;
  }
  return true;
}

/* Step s of an epoch of n samples: this rank's first position in the order and its rows;
 * *total: the step's samples over all ranks, *end: where the step ends in the order. The
 * steps over all ranks are those of one rank at the global batch (dynamic_step for a
 * run-time batch: the last one partial, a lone last sample evened with the step before it),
 * so K ranks train what one rank at K times the batch trains; each step is split evenly
 * over the ranks (a full step gives rank r the r-th f->per of it; a partial one may leave a
 * rank none). */
static int64_t shard(const Fit *f, int64_t n, int64_t s, int64_t steps, int64_t *rows,
                     int64_t *total, int64_t *end) {
  int64_t ranks = f->o->dist ? f->o->dist->size : 1, rank = f->o->dist ? f->o->dist->rank : 0;
  int64_t span = f->per * ranks, start = s * span;
  *total = f->feeds[0].dynamic ? dynamic_step(n, span, steps, s, &start) : span;
  *end = start + *total;
  int64_t base = *total / ranks, extra = *total % ranks;
  *rows = base + (rank < extra);
  return start + rank * base + (rank < extra ? rank : extra);
}

/* the step's training loss from this rank's: weighted by its rows so that the mean over the
 * ranks (rt_dist_mean) is the loss of the whole step */
static double step_share(const Fit *f, double loss, int64_t rows, int64_t total) {
  int64_t ranks = f->o->dist ? f->o->dist->size : 1;
  return rows * ranks == total ? loss : loss * (double)(rows * ranks) / (double)total;
}

/* the train step(s) on this rank's rows, index[0, rows); false (reported) on an error */
static bool train_rows(Fit *f, const int64_t *index, int64_t rows, int64_t total, uint64_t *rng,
                       double *sum, double *ema, bool first, lathe_epoch_result *r, Diag *d) {
  for (int k = 0; k < f->n_steps; k++) {
    double g0 = rt_progress_now();
    if (f->feeds[k].batch && rows > 0) {
      rt_feed_gather(&f->feeds[k], f->train, index, rows);
      rt_feed_augment(&f->feeds[k], rng);
    }
    r->data_seconds += rt_progress_now() - g0;
    double loss = 0;
    if (f->o->dist) {
      if (!rt_dist_step(&f->dist, &f->feeds[k], rows, total, f->params, f->state, &loss, d))
        return false;
    } else {
      loss = rt_feed_call(&f->feeds[k], f->params, f->state);
    }
    sum[k] += step_share(f, loss, rows, total);
    if (k == 0 && rows > 0) *ema = first ? loss : 0.98 * *ema + 0.02 * loss;
  }
  return true;
}

/* one epoch of training; r gets the losses and timings */
static bool run_epoch(Fit *f, int epoch, lathe_epoch_result *r, Diag *d) {
  int64_t n = f->train->n;
  if (f->o->limit > 0 && f->o->limit < n) n = f->o->limit;
  int ranks = f->o->dist ? f->o->dist->size : 1;
  if (n < ranks) {
    rt_error(d, "%s: %lld training samples for %d ranks: every rank needs samples",
             f->train->source, (long long)n, ranks);
    return false;
  }
  /* a model with a run-time batch trains the last partial global batch too */
  bool dynamic = f->feeds[0].dynamic;
  int64_t span = f->per * ranks; /* the samples of one full step over all ranks */
  int64_t steps = !dynamic ? n / span : dynamic_steps(n, span);
  int64_t seen = !dynamic || steps * span < n ? steps * span : n;
  if (steps == 0) {
    rt_error(d,
             "%s: %lld training samples make no full batch of %lld (the model's batch "
             "size x %d ranks)",
             f->train->source, (long long)n, (long long)span, ranks);
    return false;
  }
  int64_t *order = malloc((size_t)n * sizeof *order);
  if (!order) return false;
  shuffle(order, n, f->o->seed, (uint64_t)epoch);
  uint64_t rng = rt_mix64(f->o->seed ^ rt_mix64(0x61756775ull + (uint64_t)epoch));
  RtProgress p;
  rt_progress_start(&p, f->o->progress, epoch + 1, f->o->epochs, seen);
  double *sum = f->step_loss + (size_t)f->n_hist * FIT_MAX_STEPS, ema = 0, t0 = rt_progress_now();
  int64_t acc[2] = {0, 0}; /* sampled targets right, seen */
  bool ok = true;
  for (int64_t s = 0; s < steps && ok; s++) {
    int64_t rows, total, end, at = shard(f, n, s, steps, &rows, &total, &end);
    if (s % SAMPLE_EVERY == 0 && rows > 0) sample(f, order + at, rows, acc);
    ok = train_rows(f, order + at, rows, total, &rng, sum, &ema, s == 0, r, d);
    if (f->o->progress) rt_progress_update(&p, end, ema, sampled(acc));
  }
  r->seconds = rt_progress_now() - t0;
  for (int k = 0; k < f->n_steps; k++)
    sum[k] /= (double)steps;
  if (ok && f->o->dist) ok = rt_dist_mean(&f->dist, sum, f->n_steps, d); /* over the ranks */
  free(order);
  if (!ok) return false;
  r->train_loss = sum[0];
  r->step_loss = sum;
  r->steps = f->step_names;
  r->n_steps = f->n_steps;
  if (f->o->progress) p.loss = sum[0], rt_progress_finish(&p);
  return true;
}

static bool validate(Fit *f, lathe_epoch_result *r, Diag *d) {
  if (!f->val) return true;
  RtCollect c;
  lathe_evaluation ev;
  double loss = 0;
  bool ok = rt_eval_pass(&f->eval, &f->task, f->params, f->state, f->val, &c, &loss, d) &&
            rt_eval_metrics(&f->task, &c, loss, &ev, false, d);
  rt_collect_fini(&c);
  if (!ok) return false;
  r->has_val = 1;
  r->val = ev.m;
  lathe_evaluation_free(&ev);
  return true;
}

static void print_epoch(const Fit *f, const lathe_epoch_result *r) {
  FILE *out = f->o->progress;
  const char *v = f->o->val_name ? f->o->val_name : "val";
  if (!out) return;
  fprintf(out, "epoch %d/%d: train loss", r->epoch, f->o->epochs);
  for (int k = 0; k < r->n_steps; k++) {
    const char *name = r->steps[k];
    if (r->n_steps > 1) fprintf(out, " %s", name + (strncmp(name, "train_", 6) ? 0 : 6));
    fprintf(out, " %.4f", r->step_loss[k]);
  }
  if (r->has_val) {
    const lathe_metrics *m = &r->val;
    fprintf(out, "  %s loss %.4f", v, m->loss);
    if (m->task == LATHE_TASK_CLASSIFY || m->task == LATHE_TASK_SEQUENCE)
      fprintf(out, "  %s accuracy %.2f%%  %s f1 %.4f", v, 100 * m->accuracy, v, m->f1);
    if (m->task == LATHE_TASK_MULTILABEL)
      fprintf(out, "  %s accuracy %.2f%%  %s f1 %.4f", v, 100 * m->accuracy, v, m->f1);
    if (m->task == LATHE_TASK_REGRESS)
      fprintf(out, "  %s mse %.6g  rmse %.6g  mae %.6g  r2 %.4f", v, m->mse, m->rmse, m->mae,
              m->r2);
  }
  fputc('\n', out);
}

/* ---- the epoch log ------------------------------------------------------------------------ */

static const char *const log_cols[] = {"loss", "accuracy", "precision", "recall", "f1",
                                       "mse",  "rmse",     "mae",       "r2"};
enum { N_LOG_COLS = sizeof log_cols / sizeof log_cols[0] };

static void log_row(char *buf, size_t size, size_t *len, const lathe_epoch_result *r, bool json) {
  size_t n = *len;
  n += (size_t)snprintf(buf + n, size - n,
                        json ? "{\"epoch\": %d, \"train_loss\": %.17g" : "%d,%.17g", r->epoch,
                        r->train_loss);
  for (int c = 0; c < N_LOG_COLS; c++) {
    double v = 0;
    int hi = 0;
    bool has = r->has_val && lathe_metrics_get(&r->val, log_cols[c], &v, &hi) == 0;
    if (json && has)
      n += (size_t)snprintf(buf + n, size - n, ", \"val_%s\": %.17g", log_cols[c], v);
    if (!json)
      n += (size_t)(has ? snprintf(buf + n, size - n, ",%.17g", v)
                        : snprintf(buf + n, size - n, ","));
  }
  const char *tail = json ? ", \"lr_scale\": %.6g, \"seconds\": %.6g, \"data_seconds\": %.6g}\n"
                          : ",%.6g,%.6g,%.6g\n";
  n += (size_t)snprintf(buf + n, size - n, tail, r->lr_scale, r->seconds, r->data_seconds);
  *len = n < size ? n : size - 1;
}

static bool write_log(const Fit *f, Diag *d) {
  const char *path = f->o->log_path;
  size_t plen = strlen(path), size = 1024 + (size_t)f->n_hist * 768, len = 0;
  bool json = !(plen > 4 && strcmp(path + plen - 4, ".csv") == 0);
  char *buf = malloc(size);
  if (!buf) return false;
  if (!json) {
    len += (size_t)snprintf(buf, size, "epoch,train_loss");
    for (int c = 0; c < N_LOG_COLS; c++)
      len += (size_t)snprintf(buf + len, size - len, ",val_%s", log_cols[c]);
    len += (size_t)snprintf(buf + len, size - len, ",lr_scale,seconds,data_seconds\n");
  }
  for (int i = 0; i < f->n_hist; i++)
    log_row(buf, size, &len, &f->hist[i], json);
  bool ok = rt_write_file_atomic(path, buf, len, d);
  free(buf);
  return ok;
}

/* ---- checkpoints -------------------------------------------------------------------------- */

static bool add_tensors(RtTensorSet *set, const lathe_tensor_info *ts, int n, const void *base) {
  for (int i = 0; i < n; i++) {
    Shape s = {0};
    s.rank = ts[i].rank;
    for (int k = 0; k < s.rank; k++)
      s.dim[k] = ts[i].shape[k];
    Tensor *t = rt_set_add(set, ts[i].name, (DType)ts[i].dtype, &s);
    if (!t) return false;
    memcpy(t->data, (const char *)base + ts[i].offset, ts[i].bytes);
  }
  return true;
}

static bool save_weights(const lathe_model_info *info, const void *params, const void *state,
                         bool with_state, int64_t epoch, const char *path, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = add_tensors(&set, info->params, info->n_params, params) &&
            (!with_state || add_tensors(&set, info->states, info->n_states, state));
  Shape scalar = {0};
  Tensor *t = ok && epoch >= 0 ? rt_set_add(&set, "lathe.epoch", DT_I64, &scalar) : NULL;
  if (t) ((int64_t *)t->data)[0] = epoch;
  if (!ok || (epoch >= 0 && !t)) rt_error(d, "out of memory writing %s", path);
  ok = ok && (epoch < 0 || t) && rt_safetensors_write(path, &set, d);
  rt_set_fini(&set);
  return ok;
}

int lathe_checkpoint_save(const lathe_model_info *info, const void *params, const void *state,
                          int with_state, int64_t epoch, const char *path, char **error) {
  Diag d;
  diag_init(&d);
  int rc =
      save_weights(info, params, state, with_state, epoch, path, &d) ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  return rc;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void unbind(Fit *f) {
  for (int k = 0; k < FIT_MAX_STEPS; k++)
    rt_feed_fini(&f->feeds[k]);
  rt_feed_fini(&f->eval);
  rt_feed_fini(&f->sampler);
  rt_dist_fini(&f->dist);
  f->n_steps = 0;
  f->batch = 0;
}

/* the model with the learning rate scaled down; the feeds are bound to its entries anew */
static bool reduce_lr(Fit *f, Diag *d) {
  double scale = f->lr_scale * f->o->reduce_lr_factor;
  const lathe_model_info *info = f->info;
  void *params = f->params, *state = f->state;
  char *err = NULL;
  if (f->o->reduce_lr(f->o->ctx, scale, &info, &params, &state, &err) != 0) {
    rt_error(d, "reduce-lr-on-plateau: %s", err ? err : "the callback failed");
    free(err);
    return false;
  }
  if (info->params_bytes != f->info->params_bytes || info->state_bytes != f->info->state_bytes) {
    rt_error(d, "reduce-lr-on-plateau: the new model's weights differ in size");
    return false;
  }
  unbind(f);
  f->info = info, f->params = params, f->state = state, f->lr_scale = scale;
  f->plateau.wait = 0;
  if (f->o->progress) fprintf(f->o->progress, "plateau: learning rate x%g of the model's\n", scale);
  return bind_steps(f, d) && check_global_batch(f, d) && bind_val(f, d);
}

/* early stopping and the best checkpoint after epoch r; *stop when patience ran out */
static bool track_best(Fit *f, const lathe_epoch_result *r, bool *stop, Diag *d) {
  double v = r->train_loss;
  int hi = 0, halt = 0;
  if (f->monitor_val && !r->has_val) return true;
  if (f->monitor_val) lathe_metrics_get(&r->val, f->monitor, &v, &hi);
  int better = lathe_early_stop_update(&f->stop, r->epoch, v, &halt), flat = 0;
  if (f->o->reduce_lr_patience) lathe_early_stop_update(&f->plateau, r->epoch, v, &flat);
  if (flat && r->epoch < f->o->epochs && !reduce_lr(f, d)) return false; /* not after the last */
  if (better) f->best_r = *r;
  if (better && f->best_params) {
    memcpy(f->best_params, f->params, f->info->params_bytes);
    if (f->info->state_bytes) memcpy(f->best_state, f->state, f->info->state_bytes);
  }
  if (better && f->o->best_checkpoint &&
      !save_weights(f->info, f->params, f->state, true, r->epoch, f->o->best_checkpoint, d))
    return false;
  *stop = f->o->early_stop && halt;
  return true;
}

/* the files and callbacks of epoch r: the log, the checkpoints, on_epoch */
static bool write_epoch(Fit *f, lathe_epoch_result *r, bool *stop, Diag *d) {
  if (f->o->log_path && !write_log(f, d)) return false;
  if (f->o->checkpoint &&
      !save_weights(f->info, f->params, f->state, true, r->epoch, f->o->checkpoint, d))
    return false;
  if (!track_best(f, r, stop, d)) return false;
  char *err = NULL;
  if (f->o->on_epoch && f->o->on_epoch(f->o->ctx, r, &err) != 0) {
    rt_error(d, "%s", err ? err : "stopped by the epoch callback");
    free(err);
    return false;
  }
  return true;
}

/* Data-parallel: the transport may hold back the end of the job while the files are written
 * (lathe_dist.hold: a rank died and the launcher ends the others), so that every checkpoint
 * on disk is a complete epoch and no temp file is left. */
static bool write_epoch_whole(Fit *f, lathe_epoch_result *r, bool *stop, Diag *d) {
  const lathe_dist *dist = f->o->dist;
  if (!dist || !dist->hold) return write_epoch(f, r, stop, d);
  dist->hold(dist->ctx, 1);
  bool ok = write_epoch(f, r, stop, d);
  dist->hold(dist->ctx, 0);
  return ok;
}

static bool end_epoch(Fit *f, lathe_epoch_result *r, bool *stop, Diag *d) {
  if (f->o->dist && !rt_dist_check(&f->dist, f->params, f->state, "after an epoch", d))
    return false;
  if (!validate(f, r, d)) return false;
  print_epoch(f, r);
  f->n_hist++;
  return write_epoch_whole(f, r, stop, d);
}

static bool fit_loop(Fit *f, lathe_fit_result *res, Diag *d) {
  int total = f->o->epochs - f->o->start_epoch;
  f->hist = calloc((size_t)(total > 0 ? total : 1), sizeof *f->hist);
  f->step_loss = calloc((size_t)(total > 0 ? total : 1) * FIT_MAX_STEPS, sizeof *f->step_loss);
  if (!f->hist || !f->step_loss) return false;
  bool stop = false;
  for (int e = f->o->start_epoch; e < f->o->epochs && !stop; e++) {
    lathe_epoch_result *r = &f->hist[f->n_hist];
    r->epoch = e + 1;
    r->lr_scale = f->lr_scale;
    if (!run_epoch(f, e, r, d) || !end_epoch(f, r, &stop, d)) return false;
  }
  if (stop && f->best_params) {
    memcpy(f->params, f->best_params, f->info->params_bytes);
    if (f->info->state_bytes) memcpy(f->state, f->best_state, f->info->state_bytes);
    if (f->o->progress)
      fprintf(f->o->progress, "early stop after epoch %d: restored the weights of epoch %d\n",
              f->hist[f->n_hist - 1].epoch, f->stop.best_epoch);
  }
  if (res) {
    res->epochs = f->n_hist ? f->hist[f->n_hist - 1].epoch : f->o->start_epoch;
    res->best_epoch = f->stop.best_epoch;
    res->stopped_early = stop;
    res->info = f->info, res->params = f->params, res->state = f->state;
    if (f->n_hist) res->last = f->hist[f->n_hist - 1];
    res->best = f->stop.best_epoch ? f->best_r : res->last;
    res->last.step_loss = res->best.step_loss = NULL; /* they die with the loop */
    res->last.steps = res->best.steps = NULL;
  }
  return true;
}

int lathe_fit(const lathe_model_info *info, void *params, void *state, const lathe_dataset *train,
              const lathe_dataset *val, const lathe_fit_options *o, lathe_fit_result *result,
              char **error) {
  Diag d;
  diag_init(&d);
  Fit *f = calloc(1, sizeof *f);
  lathe_fit_options defaults;
  if (!o) lathe_fit_options_init(&defaults), o = &defaults;
  if (o->dist && o->dist->rank != 0) { /* ranks but 0 train silently and write nothing */
    defaults = *o, o = &defaults;
    defaults.progress = NULL, defaults.on_epoch = NULL, defaults.log_path = NULL;
    defaults.checkpoint = defaults.best_checkpoint = NULL;
  }
  if (result) memset(result, 0, sizeof *result);
  bool ok = f != NULL;
  if (ok) {
    *f = (Fit){.info = info, .params = params, .state = state, .train = train, .val = val, .o = o};
    ok = bind_steps(f, &d) && check_global_batch(f, &d) && bind_val(f, &d) &&
         setup_monitor(f, &d) &&
         (!o->dist || rt_dist_check(&f->dist, params, state, "at the start", &d)) &&
         fit_loop(f, result, &d);
  }
  if (!ok && !d.n_errors) rt_error(&d, "out of memory training '%s'", info->name);
  if (f) {
    unbind(f);
    free(f->hist), free(f->step_loss), free(f->best_params), free(f->best_state);
  }
  free(f);
  int rc = ok ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  return rc;
}
