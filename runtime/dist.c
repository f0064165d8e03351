/* runtime/dist.c — one data-parallel train step over a model's split step (docs/distributed.md).
 *
 * Every rank holds the same params and state. A global step: each rank runs "grad" on its
 * shard of the global batch, writing every gradient into the one contiguous <model>_grads
 * region; one sum over the ranks of that region (lathe_dist.sum_f32), scaled by 1/K, is the
 * gradient of the global batch (the losses are batch means); a step whose ranks have different
 * rows (the last partial batch of a run-time batch, some ranks perhaps with none) weights each
 * rank's gradient by rows / total before the sum instead; then "apply" runs the optimizer
 * update, the same on every rank. A model with batch norm sums its statistics over the ranks
 * inside "grad" (synchronized batch norm: lathe_grad_hooks.sum_f32 / _f64 -> lathe_dist's
 * sums), so its running statistics agree on their own; otherwise, and on a step where a rank
 * had no rows, the state tensors "grad" updated are averaged like the gradients. A model
 * compiled with --buckets starts each bucket's sum as "grad" calls it ready (lathe_dist.start,
 * waited before "apply") on full steps. The sums give every rank the same bits, so the
 * replicas stay bitwise identical; rt_dist_check verifies it with a hash.
 * Invariant: r->grad and r->apply belong to r->info (rebound after reduce-lr-on-plateau).
 */
#include "dist.h"

#include <stdlib.h>
#include <string.h>

static bool reduce_f32(const RtDist *r, float *data, int64_t n, Diag *d) {
  char *err = NULL;
  if (r->dist->sum_f32(r->dist->ctx, data, n, &err) == 0) return true;
  rt_error(d, "data-parallel training: %s", err ? err : "the gradient reduction failed");
  free(err);
  return false;
}

static bool reduce_f64(const RtDist *r, double *v, int64_t n, Diag *d) {
  char *err = NULL;
  if (r->dist->sum_f64(r->dist->ctx, v, n, &err) == 0) return true;
  rt_error(d, "data-parallel training: %s", err ? err : "a reduction failed");
  free(err);
  return false;
}

bool rt_dist_mean(const RtDist *r, double *v, int n, Diag *d) {
  if (!reduce_f64(r, v, n, d)) return false;
  for (int i = 0; i < n; i++)
    v[i] /= r->dist->size;
  return true;
}

static bool is_gradient(const lathe_entry_info *e, int k) {
  int role = e->args[k].role;
  return (e->kind == LATHE_ENTRY_GRAD && role == LATHE_ARG_OUTPUT) ||
         (e->kind == LATHE_ENTRY_APPLY && role == LATHE_ARG_INPUT);
}

/* the one dtype of every gradient (f32, or f64 under --dtype f64): the region is reduced as
 * an array of it */
static bool grads_dtype(RtDist *r, Diag *d) {
  r->grads_dtype = -1;
  for (int k = 0; k < r->grad->n_args; k++) {
    if (!is_gradient(r->grad, k)) continue;
    int dt = r->grad->args[k].tensor->dtype;
    if ((dt != LATHE_F32 && dt != LATHE_F64) || (r->grads_dtype >= 0 && dt != r->grads_dtype)) {
      rt_error(d, "data-parallel training: the gradients of '%s' are not all f32 or all f64",
               r->info->name);
      return false;
    }
    r->grads_dtype = dt;
  }
  return true;
}

/* v[0, n) x scale, in v's dtype */
static void scale_values(void *v, int64_t n, int dtype, double scale) {
  if (dtype == LATHE_F64) {
    for (int64_t i = 0; i < n; i++)
      ((double *)v)[i] *= scale;
    return;
  }
  const float s = (float)scale;
  for (int64_t i = 0; i < n; i++)
    ((float *)v)[i] *= s;
}

/* lathe_grad_hooks.sum_f32/_f64 of grad: the sum over the ranks in place. grad's loss is a
 * mean over this rank's rows and its gradient is scaled by `weight` after it (rt_dist_step);
 * on a step whose ranks have different rows the sums of cotangents must then be
 * sum_r weight_r g_r / weight (the cotangents of the weighted loss, divided by this rank's
 * weight again), so that the scaled gradients add up to the global batch's. Even steps sum
 * plainly (the weights are all 1/K). A rank without rows sums zeros and ignores the result. */
static void hook_sum(RtDistHook *h, void *buf, size_t count, int dtype, int cotangent) {
  if (h->error) return; /* the step fails after grad; MPI's own errors abort the job */
  bool weigh = cotangent && !h->even && h->weight > 0;
  if (weigh) scale_values(buf, (int64_t)count, dtype, h->weight);
  char *err = NULL;
  int rc = dtype == LATHE_F64 ? h->dist->sum_f64(h->dist->ctx, buf, (int64_t)count, &err)
                              : h->dist->sum_f32(h->dist->ctx, buf, (int64_t)count, &err);
  if (rc != 0) {
    h->error = err ? err : strdup("a batch-norm statistic's sum over the ranks failed");
    return;
  }
  if (weigh) scale_values(buf, (int64_t)count, dtype, 1.0 / h->weight);
}

static void hook_sum_f32(void *ctx, float *buf, size_t count, int cotangent) {
  hook_sum(ctx, buf, count, LATHE_F32, cotangent);
}

static void hook_sum_f64(void *ctx, double *buf, size_t count, int cotangent) {
  hook_sum(ctx, buf, count, LATHE_F64, cotangent);
}

/* lathe_grad_hooks.ready (--buckets, an even step): the bucket's sum over the ranks starts
 * while grad goes on; rt_dist_step waits for all before dividing by K, the arithmetic of one
 * sum after grad (the same bits on 2 ranks; with more, the order of a collective's additions
 * may differ between the two, the replicas still agree). Uneven steps sum after grad on every
 * rank, since a rank without rows calls no hook. */
static void hook_ready(void *ctx, size_t offset, size_t bytes) {
  RtDistHook *h = ctx;
  if (h->error) return;
  size_t size = h->dtype == LATHE_F64 ? sizeof(double) : sizeof(float);
  char *err = NULL;
  if (h->dist->start(h->dist->ctx, (char *)h->grads + offset, (int64_t)(bytes / size), h->dtype,
                     &err) != 0)
    h->error = err ? err : strdup("a bucket's sum over the ranks could not start");
}

bool rt_dist_bind(RtDist *r, const lathe_dist *dist, const lathe_model_info *info, Diag *d) {
  memset(r, 0, sizeof *r);
  r->dist = dist, r->info = info;
  for (int i = 0; i < info->n_entries; i++) {
    if (info->entries[i].kind == LATHE_ENTRY_GRAD) r->grad = &info->entries[i];
    if (info->entries[i].kind == LATHE_ENTRY_APPLY) r->apply = &info->entries[i];
  }
  if (!r->grad || !r->apply || !info->grads_bytes) {
    rt_error(d,
             "data-parallel training needs the train step of '%s' split into grad and "
             "apply (compile it with --split-step)",
             info->name);
    return false;
  }
  if (dist->size < 1 || dist->rank < 0 || dist->rank >= dist->size) {
    rt_error(d, "data-parallel training: rank %d of %d ranks", dist->rank, dist->size);
    return false;
  }
  if (!grads_dtype(r, d)) return false;
  r->synced = r->grad->n_replica_sums > 0;
  r->overlap = r->grad->n_buckets > 0 && dist->start && dist->wait;
  r->hooks = (lathe_grad_hooks){NULL, hook_sum_f32, hook_sum_f64, NULL};
  r->grads = rt_aligned_alloc(info->grads_bytes);
  r->apply_ws = rt_aligned_alloc(r->apply->workspace_bytes);
  r->before = rt_aligned_alloc(info->state_bytes);
  r->averaged = malloc((size_t)info->n_states + 1);
  if (!r->grads || !r->apply_ws || !r->before || !r->averaged) return false;
  memset(r->grads, 0, info->grads_bytes);
  memset(r->averaged, -1, (size_t)info->n_states + 1);
  return true;
}

void rt_dist_fini(RtDist *r) {
  free(r->grads), free(r->apply_ws), free(r->before), free(r->averaged);
  memset(r, 0, sizeof *r);
}

void rt_dist_adopt(const RtDist *r, RtFeed *feed) {
  for (int k = 0; k < r->grad->n_args; k++)
    if (is_gradient(r->grad, k)) free(feed->buf[k]), feed->buf[k] = NULL;
}

/* calls e with the gradient arguments in r->grads, the others from feed (grad); a run-time
 * batch is feed's rows for grad, the bound for apply (which has no batch-sized tensor) */
static double call(RtDist *r, const lathe_entry_info *e, const RtFeed *feed, void *params,
                   void *state) {
  void *args[RT_MAX_ARGS] = {0};
  int64_t bound = r->info->dyn_max;
  for (int k = 0; k < e->n_args && k < RT_MAX_ARGS; k++) {
    int role = e->args[k].role;
    if (role == LATHE_ARG_PARAMS)
      args[k] = params;
    else if (role == LATHE_ARG_STATE)
      args[k] = state;
    else if (role == LATHE_ARG_WORKSPACE)
      args[k] = feed ? feed->ws : r->apply_ws;
    else if (role == LATHE_ARG_BATCH)
      args[k] = feed ? (void *)&feed->n : (void *)&bound;
    else if (role == LATHE_ARG_HOOKS)
      args[k] = (void *)&r->hooks;
    else if (is_gradient(e, k))
      args[k] = (char *)r->grads + e->args[k].tensor->offset;
    else
      args[k] = feed->buf[k];
  }
  double ret = 0;
  e->call(args, &ret);
  return ret;
}

/* The weighted mean over the ranks of the f32 or f64 values v[0, n): each rank's v x weight
 * (its rows / the step's), summed. A step whose ranks all have the same rows (even) sums
 * first and divides by K after, the rounding of a plain mean; the replicas get the same bits
 * either way (the sum is one collective). */
static bool mean_values(const RtDist *r, void *v, int64_t n, int dtype, bool even, double weight,
                        Diag *d) {
  if (!even) scale_values(v, n, dtype, weight);
  bool ok = dtype == LATHE_F64 ? reduce_f64(r, v, n, d) : reduce_f32(r, v, n, d);
  if (ok && even)
    scale_values(v, n, dtype,
                 dtype == LATHE_F64 ? 1.0 / r->dist->size : (double)(1.0f / (float)r->dist->size));
  return ok;
}

/* Which state tensors grad updates, decided on the first step (the same on every rank: the
 * flags are summed), then averaged after every grad like the gradients. A rank without rows
 * did not run grad: its weight is 0. */
static bool average_state(RtDist *r, void *state, bool even, double weight, Diag *d) {
  const lathe_model_info *info = r->info;
  if (info->n_states > 0 && r->averaged[0] < 0) {
    double *changed = calloc((size_t)info->n_states, sizeof *changed);
    if (!changed) return false;
    for (int i = 0; i < info->n_states; i++) {
      const lathe_tensor_info *t = &info->states[i];
      changed[i] = memcmp((char *)state + t->offset, (char *)r->before + t->offset, t->bytes) != 0;
    }
    bool ok = reduce_f64(r, changed, info->n_states, d);
    for (int i = 0; ok && i < info->n_states; i++)
      r->averaged[i] = changed[i] > 0;
    free(changed);
    if (!ok) return false;
  }
  for (int i = 0; i < info->n_states; i++) {
    const lathe_tensor_info *t = &info->states[i];
    if (!r->averaged[i]) continue;
    if (t->dtype != LATHE_F32 && t->dtype != LATHE_F64) {
      rt_error(d, "data-parallel training: state '%s' updated by grad is not f32 or f64", t->name);
      return false;
    }
    int64_t n = (int64_t)(t->bytes / (t->dtype == LATHE_F64 ? 8 : 4));
    if (!mean_values(r, (char *)state + t->offset, n, t->dtype, even, weight, d)) return false;
  }
  return true;
}

/* A rank without rows does not call grad (a run-time batch is at least 1) but takes part in
 * its replica sums, in the descriptor's order, with zeros (a zero count, a zero share). */
static bool absent_sums(RtDist *r, Diag *d) {
  size_t most = 0;
  for (int i = 0; i < r->grad->n_replica_sums; i++)
    if (r->grad->replica_sums[i] > most) most = r->grad->replica_sums[i];
  size_t size = r->grads_dtype == LATHE_F64 ? sizeof(double) : sizeof(float);
  void *zeros = calloc(most + 1, size);
  if (!zeros) return rt_error(d, "data-parallel training: out of memory"), false;
  for (int i = 0; i < r->grad->n_replica_sums; i++) {
    memset(zeros, 0, (most + 1) * size);
    hook_sum(&r->hook, zeros, r->grad->replica_sums[i], r->grads_dtype, 0);
  }
  free(zeros);
  return true;
}

/* grad on this rank's rows (with its replica sums), or none: a zero gradient, weight 0 */
static bool run_grad(RtDist *r, const RtFeed *feed, int64_t rows, double weight, bool even,
                     void *params, void *state, double *loss, Diag *d) {
  r->hook = (RtDistHook){r->dist, even, weight, NULL, r->grads, r->grads_dtype};
  r->hooks.ctx = &r->hook;
  r->hooks.ready = even && r->overlap ? hook_ready : NULL;
  *loss = 0;
  bool ok = true;
  if (rows > 0)
    *loss = call(r, r->grad, feed, params, state);
  else
    memset(r->grads, 0, r->info->grads_bytes), ok = absent_sums(r, d);
  if (r->hook.error) {
    rt_error(d, "data-parallel training: %s", r->hook.error);
    free(r->hook.error), r->hook.error = NULL;
    return false;
  }
  return ok;
}

bool rt_dist_step(RtDist *r, const RtFeed *feed, int64_t rows, int64_t total, void *params,
                  void *state, double *loss, Diag *d) {
  if (r->info->n_states > 0 && r->averaged[0] < 0) memcpy(r->before, state, r->info->state_bytes);
  /* the losses are means over the rows: the global batch's gradient is sum_r rows_r g_r / total */
  bool even = rows * r->dist->size == total;
  double weight = (double)rows / (double)total;
  if (!run_grad(r, feed, rows, weight, even, params, state, loss, d)) return false;
  int dt = r->grads_dtype;
  int64_t n = (int64_t)(r->info->grads_bytes / (dt == LATHE_F64 ? 8 : 4));
  if (r->hooks.ready) { /* the buckets' sums, started inside grad: the mean once they are done */
    char *err = NULL;
    if (r->dist->wait(r->dist->ctx, &err) != 0) {
      rt_error(d, "data-parallel training: %s", err ? err : "a bucket's sum failed");
      free(err);
      return false;
    }
    scale_values(r->grads, n, dt,
                 dt == LATHE_F64 ? 1.0 / r->dist->size : (double)(1.0f / (float)r->dist->size));
  } else if (!mean_values(r, r->grads, n, dt, even, weight, d)) { /* the one collective */
    return false;
  }
  /* synchronized batch norm: the running statistics are the global batch's on every rank
   * already (the same sums), unless a rank had no rows to update them */
  if (!(r->synced && even) && !average_state(r, state, even, weight, d)) return false;
  call(r, r->apply, NULL, params, state);
  return true;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

/* the model (names, shapes) and its weights, as one number */
static uint64_t model_hash(const lathe_model_info *info, const void *params, const void *state) {
  uint64_t h = fnv(0xcbf29ce484222325u, info->name, strlen(info->name));
  for (int i = 0; i < info->n_params; i++) {
    const lathe_tensor_info *t = &info->params[i];
    h = fnv(h, t->name, strlen(t->name));
    h = fnv(h, t->shape, (size_t)t->rank * sizeof *t->shape);
  }
  h = fnv(h, params, info->params_bytes);
  return fnv(h, state, info->state_bytes);
}

bool rt_dist_check(const RtDist *r, const void *params, const void *state, const char *when,
                   Diag *d) {
  int k = r->dist->size;
  double *all = calloc((size_t)(2 * k), sizeof *all); /* each rank's hash, in 32-bit halves */
  if (!all) return false;
  uint64_t h = model_hash(r->info, params, state);
  all[2 * r->dist->rank] = (double)(h >> 32),
          all[2 * r->dist->rank + 1] = (double)(h & 0xffffffffu);
  bool ok = reduce_f64(r, all, 2 * k, d);
  for (int i = 1; ok && i < k; i++) {
    if (all[2 * i] == all[0] && all[2 * i + 1] == all[1]) continue;
    rt_error(d, "data-parallel training: rank %d's model or weights differ from rank 0's %s", i,
             when);
    ok = false;
  }
  free(all);
  return ok;
}
