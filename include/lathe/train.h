/* lathe/train.h — datasets, metrics and the training loop of a compiled model, from C.
 *
 *   char *err = NULL;
 *   lathe_data_options d;
 *   lathe_data_options_init(&d);
 *   lathe_dataset *train = lathe_dataset_open("data/train", &d, &err);    // x.npy, label.npy
 *   lathe_dataset *val = NULL, *fit = NULL;
 *   lathe_dataset_split(train, 0.1, 42, &fit, &val, &err);                 // seeded, stratified
 *   lathe_fit_options o;
 *   lathe_fit_options_init(&o);
 *   o.epochs = 20, o.early_stop = 3, o.monitor = "val_loss";
 *   if (lathe_fit(info, params, state, fit, val, &o, NULL, &err) != 0) fputs(err, stderr);
 *
 * A dataset is a set of named arrays with the same number of samples; each has a per-sample
 * shape and dtype and is accessed at random. Arrays bind to an entry point's inputs by name
 * (`x.npy` → input `x`); inputs whose name no array has take the remaining arrays in order.
 * Sources: .npy files (memory-mapped) and directories of them, .npz, CSV/TSV with a header,
 * safetensors, image folders (DIR/<class>/NAME.png|jpg: arrays "x" and "label"),
 * `fashion-mnist[=DIR]` (IDX), `reverse|sort[=LEN,VOCAB]` (generated sequences), `text=FILE`
 * (character-level windows "x" and "target" of seq_len bytes, docs/training.md);
 * several sources joined with ',' form one dataset.
 *
 * The model side is the descriptor of a compiled model (lathe/model_info.h) and its params and
 * state buffers: from lathe_info() and lathe_tensor_data() of lathe.h, or from a loaded
 * shared object. Functions return 0 on success, or -1 and, if error != NULL, a malloc'd
 * message (release it with free()) naming the file (and row for CSV) and what was
 * expected. Nothing here prints unless given a FILE to report progress to.
 */
#ifndef LATHE_TRAIN_H
#define LATHE_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "lathe/model_info.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- datasets ------------------------------------------------------------------------------ */

typedef struct lathe_dataset lathe_dataset;

typedef struct lathe_data_options {
  const char *features;     /* CSV: feature columns, "a,b,c" by name or "0:8" by 0-based position
                             * range (end exclusive); NULL = every column but the target */
  const char *target;       /* CSV: the target column's name; NULL = the last column */
  const char *x_name;       /* CSV: name of the features array (default "x") */
  int test_split;           /* fashion-mnist, sequence tasks: 1 = their test split; text: 1 =
                             * its validation split (the last 10%) */
  uint64_t seed;            /* sequence tasks: generator seed */
  int image_channels;       /* image folders: 1 (gray) or 3 (RGB, default) */
  int64_t image_h, image_w; /* image folders: size to resize to; 0 = the first image's */
  int64_t seq_len;          /* text=FILE: T, the window of x and target (the model's first
                             * integer input [N, T]; `lathe train` sets it) */
  int64_t vocab_max;        /* text=FILE: at most this many distinct bytes (the model's
                             * vocabulary bound V); 0 = 256 */
} lathe_data_options;

/* One array of a dataset: per-sample dtype and shape. */
typedef struct lathe_array_info {
  const char *name;
  int dtype;            /* LATHE_F32, LATHE_F64, LATHE_I32, LATHE_I64, LATHE_U8, LATHE_I8 */
  int rank;             /* rank of one sample (0 for a scalar per sample) */
  const int64_t *shape; /* rank dims */
  int64_t per;          /* values per sample */
} lathe_array_info;

void lathe_data_options_init(lathe_data_options *o);
/* The options a model implies for its data: text=FILE takes T (seq_len) from dim 1 of the
 * model's first integer input, and its bound V (vocab_max) from the forward entry's first
 * output [N, ..., V] (the scores over the next byte) and the rows of every `embed` table
 * (params named table or *.table), the smallest. */
void lathe_data_options_for_model(lathe_data_options *o, const lathe_model_info *info);
lathe_dataset *lathe_dataset_open(const char *spec, const lathe_data_options *o, char **error);
/* A dataset over arrays already in memory (borrowed: they must outlive the dataset): n_arrays
 * arrays described by info (name, dtype, per-sample rank and shape), data[i] holding
 * n_samples samples of array i in C order. Float arrays must be finite. */
lathe_dataset *lathe_dataset_wrap(const lathe_array_info *info, const void *const *data,
                                  int n_arrays, int64_t n_samples, char **error);
void lathe_dataset_free(lathe_dataset *ds);
int64_t lathe_dataset_len(const lathe_dataset *ds);
int lathe_dataset_n_arrays(const lathe_dataset *ds);
int lathe_dataset_array(const lathe_dataset *ds, int i, lathe_array_info *out); /* 0 or -1 */
/* sample i of array a: per values of its dtype; NULL when out of range */
const void *lathe_dataset_sample(const lathe_dataset *ds, int a, int64_t i);
/* names of class ids (string labels of a CSV target); NULL when id has no name */
const char *lathe_dataset_class_name(const lathe_dataset *ds, int id);
/* Splits ds into *train and *val (views sharing the data): fraction of the samples go to val,
 * chosen by a seeded shuffle; when stratify names an integer array with one value per sample
 * each class is split in the same proportion (at least one sample of every class of >= 2). */
int lathe_dataset_split(const lathe_dataset *ds, double fraction, uint64_t seed,
                        const char *stratify, lathe_dataset **train, lathe_dataset **val,
                        char **error);

/* ---- metrics ------------------------------------------------------------------------------- */

/* What the model predicts: inferred from the evaluate entry (an integer target input and an
 * output [N, ..., C] of scores: classification, per token when the target has more than one
 * value per sample; a float target input other than the first and an output of its shape:
 * regression) unless set explicitly. */
enum {
  LATHE_TASK_AUTO = 0,
  LATHE_TASK_NONE,       /* loss only (autoencoders, GANs) */
  LATHE_TASK_CLASSIFY,   /* one class id per sample */
  LATHE_TASK_SEQUENCE,   /* one class id per token */
  LATHE_TASK_MULTILABEL, /* 0/1 per label; a score > 0.5 (probability) predicts 1 */
  LATHE_TASK_REGRESS,
  LATHE_TASK_COUNT
};
const char *lathe_task_name(int task);  /* "classification", ... */
int lathe_task_parse(const char *name); /* -1 if unknown */

typedef struct lathe_class_metrics {
  double precision, recall, f1;
  int64_t support; /* samples whose true class this is */
} lathe_class_metrics;

/* As scikit-learn's classification_report / confusion_matrix (zero_division = 0): the
 * labels are those that occur in y_true or y_pred; macro averages are over them, weighted ones
 * by support. */
typedef struct lathe_classification {
  int n_classes; /* ids 0..n_classes-1 */
  int64_t n;     /* samples */
  double accuracy;
  lathe_class_metrics *classes; /* n_classes; present[c] says whether c is a label */
  unsigned char *present;
  lathe_class_metrics macro, weighted;
  int64_t *confusion; /* n_classes x n_classes: row = true class, column = predicted */
} lathe_classification;

int lathe_classification_compute(const int32_t *y_true, const int32_t *y_pred, int64_t n,
                                 int n_classes, lathe_classification *out, char **error);
void lathe_classification_free(lathe_classification *m);
/* the per-class table and the confusion matrix as text; names may be NULL (ids are shown) */
char *lathe_classification_report(const lathe_classification *m, const char *const *names);
/* the confusion matrix as an SVG heat map, written atomically */
int lathe_confusion_svg(const lathe_classification *m, const char *const *names, const char *path,
                        char **error);

/* As scikit-learn's mean_squared_error, mean_absolute_error, r2_score with multioutput
 * 'uniform_average' over the outputs columns; rmse is each column's sqrt(mse) averaged. */
typedef struct lathe_regression {
  double mse, rmse, mae, r2;
  int64_t n;
} lathe_regression;
int lathe_regression_compute(const double *y_true, const double *y_pred, int64_t n, int64_t outputs,
                             lathe_regression *out, char **error);

/* Multi-label (0/1 per label, n rows of labels values): f1 per label (f1 has labels entries),
 * their mean (macro) and the micro F1 over every decision, as scikit-learn's f1_score. */
int lathe_multilabel_compute(const int32_t *y_true, const int32_t *y_pred, int64_t n, int labels,
                             double *f1, double *f1_macro, double *f1_micro, char **error);

/* The summary of one evaluation: what the epoch line, the log and early stopping use. */
typedef struct lathe_metrics {
  int task;                     /* LATHE_TASK_* */
  int64_t n;                    /* samples evaluated */
  double loss;                  /* the model's loss, mean over samples */
  double accuracy;              /* classification, sequence (per token), multilabel (exact) */
  double precision, recall, f1; /* classification: macro averages; multilabel: macro f1 */
  double mse, rmse, mae, r2;    /* regression */
} lathe_metrics;

/* "loss", "accuracy", "f1", "precision", "recall", "mse", "rmse", "mae", "r2" of m; sets
 * *higher_better; -1 if the name is unknown or not measured for m's task */
int lathe_metrics_get(const lathe_metrics *m, const char *name, double *value, int *higher_better);

/* ---- evaluating and predicting ------------------------------------------------------------- */

/* Full evaluation of the "evaluate" entry on ds: the summary, and for classification the
 * complete report (free with lathe_evaluation_free). */
typedef struct lathe_evaluation {
  lathe_metrics m;
  lathe_classification report; /* task CLASSIFY or SEQUENCE: per class (per token) */
  double *label_f1;            /* MULTILABEL: f1 per label (n_labels) */
  int n_labels;
} lathe_evaluation;

int lathe_evaluate(const lathe_model_info *info, void *params, void *state, const lathe_dataset *ds,
                   int task, lathe_evaluation *out, char **error);
void lathe_evaluation_free(lathe_evaluation *e);

/* Runs the "forward" entry over every sample of ds, in batches (the last one at its own
 * rows for a run-time batch, else padded by repeating samples), and
 * writes its first output for each sample to out_path: .npy (the outputs as they are,
 * [n, ...]) or .csv (with scores [n, C], C > 1: "label,p0..p{C-1}" with the argmax label,
 * named when ds has class names; otherwise one column per output value). Atomic. */
int lathe_predict(const lathe_model_info *info, void *params, void *state, const lathe_dataset *ds,
                  const char *out_path, char **error);

/* ---- the training loop --------------------------------------------------------------------- */

/* Early stopping's decision, on its own so it can be replayed on a recorded curve. */
typedef struct lathe_early_stop {
  int patience;      /* epochs without improvement before stopping */
  double min_delta;  /* an improvement must exceed this */
  int higher_better; /* 1: the metric should rise (accuracy), 0: fall (loss) */
  double best;       /* best value so far */
  int best_epoch;    /* epoch of best (1-based); 0 = none yet */
  int wait;          /* epochs since best */
} lathe_early_stop;
void lathe_early_stop_init(lathe_early_stop *s, int patience, double min_delta, int higher_better);
/* Feeds epoch's value; returns 1 if it is a new best, and sets *stop when patience ran out. */
int lathe_early_stop_update(lathe_early_stop *s, int epoch, double value, int *stop);

typedef struct lathe_epoch_result {
  int epoch;                /* 1-based */
  double train_loss;        /* first step's mean loss */
  const double *step_loss;  /* every step's mean loss (train blocks of several steps) */
  const char *const *steps; /* their entry names */
  int n_steps;
  int has_val;
  lathe_metrics val;   /* on the validation set, when has_val */
  double lr_scale;     /* learning rate relative to the model's (reduce-lr-on-plateau) */
  double seconds;      /* the epoch's training time */
  double data_seconds; /* of which gathering batches (the data pipeline) */
} lathe_epoch_result;

/* Data-parallel training (docs/distributed.md): `size` replicas of the model, one per process,
 * each training on its shard of every global batch. The transport is the caller's (the CLI's
 * is MPI, cli/dist_mpi.c), so the runtime stays free of it. Both reductions are in place over
 * every rank and must give every rank the same bits; they return 0, or non-zero with a
 * malloc'd message in *error (then the job ends). */
typedef struct lathe_dist {
  int rank, size; /* this process, and the number of replicas (>= 1) */
  int (*sum_f32)(void *ctx, float *data, int64_t n, char **error);
  int (*sum_f64)(void *ctx, double *data, int64_t n, char **error);
  void *ctx;
  /* optional: hold(ctx, 1) before rank 0 writes its files after an epoch, hold(ctx, 0) after:
   * a job ended meanwhile (the launcher's SIGTERM when a rank died) ends after the rename, so
   * no temp file is left (cli/dist_mpi.c) */
  void (*hold)(void *ctx, int on);
  /* optional, for a model compiled with --buckets (docs/distributed.md): start(ctx, data, n,
   * dtype, error) begins a non-blocking sum over the ranks of data[0, n) (LATHE_F32 or
   * LATHE_F64) in place, as grad calls a bucket ready; wait(ctx, error) completes every
   * started one. Both return 0, or non-zero with *error (malloc'd). NULL: one sum after grad. */
  int (*start)(void *ctx, void *data, int64_t n, int dtype, char **error);
  int (*wait)(void *ctx, char **error);
} lathe_dist;

typedef struct lathe_fit_options {
  int epochs;          /* train until this many epochs are done (default 1) */
  int start_epoch;     /* epochs already done (a resumed checkpoint); shuffles continue */
  uint64_t seed;       /* shuffling and augmentation */
  int64_t limit;       /* use only the first limit training samples; 0 = all */
  int task;            /* LATHE_TASK_AUTO */
  int early_stop;      /* patience in epochs; 0 = off (needs a validation set) */
  const char *monitor; /* "val_loss" (default), "val_accuracy", "val_f1", "val_r2", ..., or
                        * "loss" (the training loss) */
  double min_delta;
  int restore_best;            /* with early_stop: end with the best epoch's weights (default 1) */
  const char *checkpoint;      /* after every epoch: params, state and lathe.epoch */
  const char *best_checkpoint; /* whenever the monitored metric improves */
  const char *log_path;        /* every epoch's figures: .csv, else JSON lines; atomic */
  const char *val_name;        /* label of validation figures in the epoch line (default "val") */
  /* reduce-lr-on-plateau: after reduce_lr_patience epochs without improvement of the monitored
   * metric, reduce_lr(ctx, scale, ...) is asked for the model with its learning rate scaled by
   * scale (reduce_lr_factor, default 0.1, compounded; the rate is a compile-time constant of
   * the generated step, so the caller recompiles and copies the weights across); it replaces
   * *info, *params and *state (the old ones stay the caller's) and returns 0, or non-zero with
   * a malloc'd message in *error */
  int reduce_lr_patience; /* 0 = off */
  double reduce_lr_factor;
  int (*reduce_lr)(void *ctx, double scale, const lathe_model_info **info, void **params,
                   void **state, char **error);
  int augment_flip;     /* random horizontal flip of [.., H, W] float samples */
  int augment_crop_pad; /* random crop after zero padding by this many pixels */
  FILE *progress;       /* progress bar and epoch lines; NULL = silent */
  /* called after each epoch (e.g. to plot); a non-zero return stops with that error text
   * in *error (the callback's malloc'd message, or a generic one if it sets none) */
  int (*on_epoch)(void *ctx, const lathe_epoch_result *r, char **error);
  void *ctx;
  /* data-parallel training, or NULL: the model needs a split train step ("grad" and
   * "apply", lathe_options.want_split); epoch e's shuffled order is cut into global batches of
   * size x the model's batch (or global_batch) and rank r trains on the r-th part of each (a
   * run-time batch's last partial one is split evenly, a rank may get no rows); the gradients
   * are averaged over the ranks with one sum per step, weighted by rows on a partial step,
   * batch-norm running statistics too;
   * params and state are compared across ranks (a hash) at the start and after every epoch.
   * Every rank validates (the same metrics); only rank 0 reports progress, writes checkpoints
   * and the log and calls on_epoch. */
  const lathe_dist *dist;
  /* samples per step over all ranks; 0 = dist->size (1 without dist) x the model's batch.
   * A multiple of the number of ranks; each rank's share must be the model's batch, or at
   * most the bound of a run-time batch (docs/distributed.md) */
  int64_t global_batch;
} lathe_fit_options;

typedef struct lathe_fit_result {
  int epochs;     /* epochs done (including start_epoch) */
  int best_epoch; /* of the monitored metric; 0 without validation */
  int stopped_early;
  lathe_epoch_result last;
  lathe_epoch_result best;      /* the best epoch's figures (last's without validation) */
  const lathe_model_info *info; /* the model trained last (another after reduce_lr) */
  void *params, *state;         /* its weights: the caller's buffers or reduce_lr's */
} lathe_fit_result;

void lathe_fit_options_init(lathe_fit_options *o);
/* Trains the model's train entry ("train", or every "train_<step>" in order) on train,
 * evaluating on val (may be NULL) after each epoch. The last partial batch of an epoch is
 * dropped (the batch is the model's compile-time batch dimension), unless the model has a
 * run-time batch (info->dyn_max > 0): then it trains too — data-parallel, split over the
 * ranks; on one rank, a last batch of 1 is evened with the one before it (B - 1 and 2
 * samples; with a bound B <= 2 that sample waits for the next epoch), so no step sees a
 * single sample (docs/dynamic-batch.md). */
int lathe_fit(const lathe_model_info *info, void *params, void *state, const lathe_dataset *train,
              const lathe_dataset *val, const lathe_fit_options *o, lathe_fit_result *result,
              char **error);

/* Writes params (and state, if with_state) to a safetensors checkpoint, atomically; extra
 * i64 scalar "lathe.epoch" = epoch when epoch >= 0. */
int lathe_checkpoint_save(const lathe_model_info *info, const void *params, const void *state,
                          int with_state, int64_t epoch, const char *path, char **error);

#ifdef __cplusplus
}
#endif

#endif
