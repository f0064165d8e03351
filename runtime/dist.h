/* runtime/dist.h — data-parallel training steps for runtime/fit.c (lathe_fit_options.dist);
 * private to the runtime. The transport is lathe_dist's callbacks: nothing here knows MPI. */
#ifndef LATHE_RUNTIME_DIST_H
#define LATHE_RUNTIME_DIST_H

#include "data.h"

/* the state of the replica sums of one grad call (lathe_grad_hooks.ctx) */
typedef struct RtDistHook {
  const lathe_dist *dist;
  bool even;     /* every rank has the step's rows / K */
  double weight; /* this rank's rows / the step's rows */
  char *error;   /* the first failed sum's message (malloc'd), or NULL */
  void *grads;   /* <model>_grads, whose buckets hooks->ready starts reducing */
  int dtype;     /* the gradients' */
} RtDistHook;

typedef struct RtDist {
  const lathe_dist *dist;
  const lathe_model_info *info;
  const lathe_entry_info *grad, *apply; /* the split train step */
  void *grads;                          /* <model>_grads: grads_bytes, 64-byte aligned */
  int grads_dtype;                      /* LATHE_F32 or LATHE_F64 (--dtype f64): every gradient's */
  void *apply_ws;                       /* apply's workspace */
  void *before;                         /* the state before the first step (state_bytes) */
  signed char *averaged;                /* per state tensor: 1 = grad updates it (batch-norm
                                         * statistics: averaged too), 0 = not, -1 = unknown */
  bool synced;            /* grad sums its batch-norm statistics over the ranks (replica sums) */
  bool overlap;           /* grad has buckets and dist can start and wait: on an even step,
                           * each bucket's sum starts as grad calls it ready */
  lathe_grad_hooks hooks; /* grad's transport: sums through dist, ctx = &hook */
  RtDistHook hook;
} RtDist;

/* The split step of info ("grad" and "apply"), or false (reported) when it has none. */
bool rt_dist_bind(RtDist *r, const lathe_dist *dist, const lathe_model_info *info, Diag *d);
void rt_dist_fini(RtDist *r);
/* the feed bound to r->grad no longer owns the gradient outputs: they live in r->grads */
void rt_dist_adopt(const RtDist *r, RtFeed *feed);
/* One global step of `total` samples: grad on this rank's `rows` of them (gathered in feed;
 * 0 rows: the rank takes part with a zero gradient and zeros in grad's replica sums), the
 * gradients (and the running statistics, unless batch norm is synchronized and every rank
 * has rows / K) averaged over the ranks weighted by their rows, apply. *loss: this rank's
 * loss (0 without rows); the step's loss is the sum over the ranks of *loss x rows / total. */
bool rt_dist_step(RtDist *r, const RtFeed *feed, int64_t rows, int64_t total, void *params,
                  void *state, double *loss, Diag *d);
/* Every rank holds the model and weights of rank 0 (a hash compare); `when` ends the error. */
bool rt_dist_check(const RtDist *r, const void *params, const void *state, const char *when,
                   Diag *d);
/* v[0, n) summed over the ranks and divided by their number */
bool rt_dist_mean(const RtDist *r, double *v, int n, Diag *d);

#endif
