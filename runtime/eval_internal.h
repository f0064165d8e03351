/* runtime/eval_internal.h — the task, prediction collection and evaluation pass shared by
 * runtime/evaluate.c, predict.c and fit.c; private to the runtime. */
#ifndef LATHE_RUNTIME_EVAL_INTERNAL_H
#define LATHE_RUNTIME_EVAL_INTERNAL_H

#include "data.h"

typedef struct RtTask {
  int kind;        /* LATHE_TASK_* (never AUTO) */
  int target_arg;  /* input argument holding the targets, or -1 */
  int pred_arg;    /* output argument predicting them, or -1 */
  int64_t classes; /* classification: C; regression / multilabel: outputs per sample */
  int64_t per;     /* targets per sample (tokens, outputs) */
} RtTask;

/* predictions and truths of an evaluation pass: ids (classification, sequence) or values */
typedef struct RtCollect {
  int64_t n; /* samples */
  int32_t *true_id, *pred_id;
  double *true_v, *pred_v;
} RtCollect;

/* infers the task from e's inputs and outputs (forced: LATHE_TASK_AUTO or an explicit one) */
bool rt_task_infer(RtTask *t, const lathe_entry_info *e, int forced, Diag *d);
/* every class id of ds's target array (bound as for f's entry) in [0, classes) */
bool rt_task_check_labels(const RtTask *t, const RtFeed *f, const lathe_dataset *ds, Diag *d);
bool rt_collect_init(RtCollect *c, const RtTask *t, int64_t n);
void rt_collect_fini(RtCollect *c);
/* one pass of f (bound to the evaluate entry) over ds: mean loss, and predictions in c */
bool rt_eval_pass(RtFeed *f, const RtTask *t, void *params, void *state, const lathe_dataset *ds,
                  RtCollect *c, double *loss, Diag *d);
/* targets of the first count samples of f's batch (classification) that argmax predicts */
int64_t rt_count_correct(const RtTask *t, const RtFeed *f, int64_t count);
/* the metrics of a pass; report (may be NULL) gets the full classification report */
bool rt_eval_metrics(const RtTask *t, const RtCollect *c, double loss, lathe_evaluation *out,
                     bool full, Diag *d);
/* the evaluate entry of info, or NULL (reported) */
const lathe_entry_info *rt_entry(const lathe_model_info *info, const char *name);

#endif
