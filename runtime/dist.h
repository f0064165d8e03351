/* runtime/dist.h — data-parallel training steps for runtime/fit.c (lathe_fit_options.dist);
 * private to the runtime. The transport is lathe_dist's callbacks: nothing here knows MPI. */
#ifndef LATHE_RUNTIME_DIST_H
#define LATHE_RUNTIME_DIST_H

#include "data.h"

typedef struct RtDist {
  const lathe_dist *dist;
  const lathe_model_info *info;
  const lathe_entry_info *grad, *apply; /* the split train step */
  void *grads;                          /* <model>_grads: grads_bytes, 64-byte aligned */
  void *apply_ws;                       /* apply's workspace */
  void *before;                         /* the state before the first step (state_bytes) */
  signed char *averaged;                /* per state tensor: 1 = grad updates it (batch-norm
                                         * statistics: averaged too), 0 = not, -1 = unknown */
} RtDist;

/* The split step of info ("grad" and "apply"), or false (reported) when it has none. */
bool rt_dist_bind(RtDist *r, const lathe_dist *dist, const lathe_model_info *info, Diag *d);
void rt_dist_fini(RtDist *r);
/* the feed bound to r->grad no longer owns the gradient outputs: they live in r->grads */
void rt_dist_adopt(const RtDist *r, RtFeed *feed);
/* One global step: grad on this rank's batch (gathered in feed), the gradients and the
 * running statistics averaged over the ranks, apply. *loss: the mean of the ranks' losses. */
bool rt_dist_step(RtDist *r, const RtFeed *feed, void *params, void *state, double *loss, Diag *d);
/* Every rank holds the model and weights of rank 0 (a hash compare); `when` ends the error. */
bool rt_dist_check(const RtDist *r, const void *params, const void *state, const char *when,
                   Diag *d);
/* v[0, n) summed over the ranks and divided by their number */
bool rt_dist_mean(const RtDist *r, double *v, int n, Diag *d);

#endif
