/* examples/mpi/main.c — data-parallel training of a lathe model on MPI, in plain C.
 *
 * The generated C knows nothing of MPI: compiled with `lathe compile --split-step`, a model's
 * train step is also two entry points, "grad" (the gradients of the loss on this rank's
 * shard, written into one contiguous <model>_grads region) and "apply" (the optimizer update
 * from given gradients). Between them each rank sums the region across ranks with ONE
 * MPI_Allreduce and divides by the number of ranks K: the loss is a batch mean, so the mean
 * of the ranks' gradients is the gradient of the global batch of K x N samples, and every
 * rank applies the same update to the same weights. A model with batch norm normalizes by the
 * statistics of the whole global batch (synchronized batch norm): its "grad" takes a
 * `const lathe_grad_hooks *` (an argument of role LATHE_ARG_HOOKS) and calls its sum_f32
 * (sum_f64) on a few per-channel buffers, which this program sums over the ranks with
 * MPI_Allreduce; the running statistics then agree on every rank. With --no-hooks it passes
 * NULL instead: each rank normalizes by its own batch (one replica's view) and the running
 * statistics (state that "grad" updates) are averaged after the step. A hash of the params
 * and state is compared across ranks after every step.
 *
 * The program drives the model through its descriptor (<model>_info, lathe/model_info.h), so
 * it runs any model compiled with --split-step: build it with -DLATHE_MODEL_H='"cnn.h"'
 * -DLATHE_MODEL_INFO=cnn_info for another one. The data is synthetic and the same on every
 * rank: step t's global batch of K x N samples comes from a generator seeded with (seed, t)
 * and rank r trains on samples [r N, (r + 1) N), so K ranks at batch N see exactly what one
 * rank at batch K N sees (tests/mpi_train.sh checks that).
 *
 *   mpirun -np 2 ./lathe_mpi_example [--steps S] [--seed X] [--classes C] [--out params.bin]
 *                                    [--check-train] [--no-hooks] [--time]
 *
 * --out writes the final params (rank 0, raw <model>_params bytes); --check-train also runs
 * the fused train entry on a copy and requires train == grad, allreduce, apply bit for bit
 * (exactly what one rank computes; with K > 1 the reduced gradient differs from the local).
 */
#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LATHE_MODEL_H
#define LATHE_MODEL_H "mlp.h"
#define LATHE_MODEL_INFO mlp_info
#endif
#include LATHE_MODEL_H

typedef struct Run {
  const lathe_model_info *info;
  const lathe_entry_info *grad, *apply, *train;
  int rank, ranks;
  int classes;                       /* integer inputs (labels) are drawn from [0, classes) */
  void *params, *state, *grads, *ws; /* the model's memory; grads: info->grads_bytes */
  void **inputs;                     /* per argument of grad: this rank's shard, or NULL */
  float *loss_sum;
  lathe_grad_hooks hooks; /* grad's replica sums: MPI_Allreduce */
  bool use_hooks;         /* pass them (not --no-hooks) */
  MPI_Request *requests;  /* --overlap: one MPI_Iallreduce per ready bucket */
  int n_requests;
  unsigned char *snapshot, *covered;   /* --check-buckets: the buckets' bytes when ready, and
                                        * how many buckets each byte of <model>_grads was in */
  bool timed;                          /* --time */
  double reduce_seconds, step_seconds; /* --time: in the allreduces, in whole steps */
  double wait_seconds;                 /* --time: waiting for the slowest rank's grad */
} Run;

static void fail(const Run *r, const char *what) {
  fprintf(stderr, "rank %d: %s\n", r->rank, what);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

static const lathe_entry_info *entry(const lathe_model_info *info, const char *name) {
  for (int i = 0; i < info->n_entries; i++)
    if (strcmp(info->entries[i].name, name) == 0) return &info->entries[i];
  return NULL;
}

static void *aligned(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64 + 64;
  void *p = aligned_alloc(64, rounded);
  return p ? memset(p, 0, rounded) : NULL;
}

/* splitmix64: the data generator, one stream per (seed, step, sample, element) */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

static int64_t numel(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    n *= t->shape[i];
  return n;
}

/* This rank's shard of step t's global batch for input tensor t: floats in [0, 1), labels
 * in [0, classes); sample (r N + i) of the global batch is the same on every K. */
static void fill_input(const Run *r, const lathe_tensor_info *t, void *data, uint64_t seed,
                       int step) {
  int64_t n = t->rank > 0 ? t->shape[0] : 1, per = numel(t) / (n ? n : 1);
  for (int64_t i = 0; i < n; i++) {
    uint64_t sample = (uint64_t)(r->rank * n + i);
    uint64_t base = mix(seed ^ mix((uint64_t)step * 1000003u + sample));
    for (int64_t k = 0; k < per; k++) {
      uint64_t u = mix(base + (uint64_t)k);
      if (t->dtype == LATHE_F32)
        ((float *)data)[i * per + k] = (float)(u >> 40) / 16777216.0f;
      else if (t->dtype == LATHE_F64) /* the same values as f32 */
        ((double *)data)[i * per + k] = (double)((float)(u >> 40) / 16777216.0f);
      else if (t->dtype == LATHE_I32)
        ((int32_t *)data)[i * per + k] = (int32_t)(u % (uint64_t)r->classes);
      else
        fail(r, "this example feeds f32, f64 and i32 inputs only");
    }
  }
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3u;
  return h;
}

/* Every rank must hold the same params and state: compare a hash (min == max). */
static void check_replicas(const Run *r, const char *when) {
  uint64_t h = hash_bytes(0xcbf29ce484222325u, r->params, r->info->params_bytes);
  h = hash_bytes(h, r->state, r->info->state_bytes);
  uint64_t lo, hi;
  MPI_Allreduce(&h, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(&h, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  if (lo != hi) {
    char msg[200];
    snprintf(msg, sizeof msg, "the ranks' params and state differ %s (hash %016llx)", when,
             (unsigned long long)h);
    fail(r, msg);
  }
}

/* The argument array of entry e: gradients at their offsets in r->grads (the outputs of
 * "grad", the inputs of "apply"), the data shard for the other inputs. */
static void **entry_args(const Run *r, const lathe_entry_info *e, void *params, void *state) {
  void **a = calloc((size_t)e->n_args + 1, sizeof *a);
  if (!a) fail(r, "out of memory");
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *arg = &e->args[i];
    bool gradient = (e->kind == LATHE_ENTRY_GRAD && arg->role == LATHE_ARG_OUTPUT) ||
                    (e->kind == LATHE_ENTRY_APPLY && arg->role == LATHE_ARG_INPUT);
    if (arg->role == LATHE_ARG_PARAMS) a[i] = params;
    if (arg->role == LATHE_ARG_STATE) a[i] = state;
    if (arg->role == LATHE_ARG_WORKSPACE) a[i] = r->ws;
    if (arg->role == LATHE_ARG_HOOKS) { /* NULL under --no-hooks: each rank its own batch norm */
      a[i] = r->use_hooks ? (void *)&r->hooks : NULL;
      continue;
    }
    if (gradient) a[i] = (char *)r->grads + arg->tensor->offset;
    if (arg->role == LATHE_ARG_INPUT && !gradient) /* the shard made for grad's same input */
      for (int k = 0; k < r->grad->n_args; k++)
        if (r->grad->args[k].role == LATHE_ARG_INPUT &&
            strcmp(r->grad->args[k].tensor->name, arg->tensor->name) == 0)
          a[i] = r->inputs[k];
    if (!a[i]) fail(r, "an entry point has an argument this example cannot feed");
  }
  return a;
}

/* x 1/K (in place, f32 or f64): the mean of the summed values */
static void scale_mean(void *data, int64_t count, int dtype, int ranks) {
  if (dtype == LATHE_F64) {
    for (int64_t i = 0; i < count; i++)
      ((double *)data)[i] /= ranks;
    return;
  }
  const float scale = 1.0f / (float)ranks;
  for (int64_t i = 0; i < count; i++)
    ((float *)data)[i] *= scale;
}

/* sum over the ranks, then / K: the mean (in place, f32 or f64) */
static void allreduce_mean(void *data, int64_t count, int dtype, int ranks) {
  MPI_Allreduce(MPI_IN_PLACE, data, (int)count, dtype == LATHE_F64 ? MPI_DOUBLE : MPI_FLOAT,
                MPI_SUM, MPI_COMM_WORLD);
  scale_mean(data, count, dtype, ranks);
}

/* The hooks of "grad" for a model with batch norm (lathe_grad_hooks): its statistics, and in
 * the backward pass two per-channel sums, summed over the ranks in place, so K ranks at batch
 * N normalize by the statistics of the global batch of K N. Every rank has N samples here, so
 * `cotangent` needs no weighting (runtime/dist.c weights it for ranks with different rows). */
static void sum_f32(void *ctx, float *buf, size_t count, int cotangent) {
  (void)ctx, (void)cotangent;
  MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

static void sum_f64(void *ctx, double *buf, size_t count, int cotangent) {
  (void)ctx, (void)cotangent;
  MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

/* the dtype of the gradients (all f32, or all f64 for a model compiled with --dtype f64) */
static int grads_dtype(const Run *r) {
  for (int i = 0; i < r->grad->n_args; i++)
    if (r->grad->args[i].role == LATHE_ARG_OUTPUT) return r->grad->args[i].tensor->dtype;
  return LATHE_F32;
}

/* --overlap, a model compiled with --buckets: "grad" calls this as soon as a bucket of its
 * gradients is final; its sum over the ranks starts at once (non-blocking) while the backward
 * pass goes on, and MPI_Testall on the requests already started lets Open MPI move them
 * forward (it progresses non-blocking collectives only inside MPI calls). */
static void ready_overlap(void *ctx, size_t offset, size_t bytes) {
  Run *r = ctx;
  int dt = grads_dtype(r);
  size_t size = dt == LATHE_F64 ? sizeof(double) : sizeof(float);
  if (r->n_requests >= r->grad->n_buckets) fail(r, "more ready buckets than the descriptor has");
  MPI_Iallreduce(MPI_IN_PLACE, (char *)r->grads + offset, (int)(bytes / size),
                 dt == LATHE_F64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD,
                 &r->requests[r->n_requests++]);
  int done = 0;
  MPI_Testall(r->n_requests, r->requests, &done, MPI_STATUSES_IGNORE);
}

/* --check-buckets: keeps the bucket's bytes as they are when it is called ready */
static void ready_snapshot(void *ctx, size_t offset, size_t bytes) {
  Run *r = ctx;
  if (offset + bytes > r->info->grads_bytes) fail(r, "a bucket outside <model>_grads");
  memcpy(r->snapshot + offset, (char *)r->grads + offset, bytes);
  for (size_t i = offset; i < offset + bytes; i++)
    r->covered[i]++;
}

/* --check-buckets, after grad: every byte of <model>_grads was in exactly one bucket, whose
 * bytes were final when it was called ready; the descriptor's table says the same */
static void check_buckets(Run *r) {
  size_t at = 0;
  for (int i = 0; i < r->grad->n_buckets; i++) {
    if (r->grad->buckets[i].offset != at) fail(r, "the descriptor's buckets leave a gap");
    at += r->grad->buckets[i].bytes;
  }
  if (at != r->info->grads_bytes) fail(r, "the descriptor's buckets do not cover <model>_grads");
  for (size_t i = 0; i < r->info->grads_bytes; i++)
    if (r->covered[i] != 1) fail(r, "a byte of <model>_grads is not in exactly one ready bucket");
  if (memcmp(r->snapshot, r->grads, r->info->grads_bytes) != 0)
    fail(r, "a bucket changed after grad called it ready");
  memset(r->covered, 0, r->info->grads_bytes);
}

/* Batch-norm running statistics: the state tensors "grad" changed (on any rank), averaged.
 * With the hooks they are the global batch's on every rank already: nothing to do. */
static void average_updated_state(const Run *r, const void *before) {
  if (r->use_hooks && r->grad->n_replica_sums > 0) return;
  for (int i = 0; i < r->info->n_states; i++) {
    const lathe_tensor_info *t = &r->info->states[i];
    char *now = (char *)r->state + t->offset;
    int changed = memcmp(now, (const char *)before + t->offset, t->bytes) != 0, any = 0;
    MPI_Allreduce(&changed, &any, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    if (!any) continue;
    if (t->dtype != LATHE_F32 && t->dtype != LATHE_F64)
      fail(r, "a state tensor that is not f32 or f64 changed in grad");
    allreduce_mean(now, numel(t), t->dtype, r->ranks);
  }
}

static void train_step(Run *r, void **grad_args, void **apply_args, void *before) {
  memcpy(before, r->state, r->info->state_bytes);
  double loss = 0, t0 = MPI_Wtime();
  r->grad->call(grad_args, &loss);
  double t1 = MPI_Wtime();
  if (r->timed) { /* so that the allreduce time is the transfer, not the wait for a rank */
    MPI_Barrier(MPI_COMM_WORLD);
    r->wait_seconds += MPI_Wtime() - t1, t1 = MPI_Wtime();
  }
  int dt = grads_dtype(r);
  int64_t count = (int64_t)(r->info->grads_bytes / (dt == LATHE_F64 ? 8 : 4));
  if (r->hooks.ready == ready_overlap) { /* the buckets' sums, started inside grad; then / K */
    MPI_Waitall(r->n_requests, r->requests, MPI_STATUSES_IGNORE);
    if (r->n_requests != r->grad->n_buckets) fail(r, "grad did not call every bucket ready");
    r->n_requests = 0;
    scale_mean(r->grads, count, dt, r->ranks); /* the same arithmetic as allreduce_mean's */
  } else { /* the one collective of the step: every gradient, one contiguous region */
    if (r->hooks.ready == ready_snapshot) check_buckets(r);
    allreduce_mean(r->grads, count, dt, r->ranks);
  }
  average_updated_state(r, before);
  double t2 = MPI_Wtime();
  r->apply->call(apply_args, NULL);
  r->reduce_seconds += t2 - t1, r->step_seconds += MPI_Wtime() - t0;
  *r->loss_sum += (float)loss;
}

typedef struct Options {
  int steps;
  uint64_t seed;
  const char *out;
  bool check_train;
  int classes;
  bool time;          /* print samples/s and the allreduce time per step (bench/mpi_scaling.sh) */
  bool no_hooks;      /* call grad with NULL hooks: each rank normalizes by its own batch */
  bool overlap;       /* a model with buckets: reduce each as soon as grad calls it ready */
  bool check_buckets; /* a model with buckets: check the buckets grad calls ready */
} Options;

static void parse_options(const Run *r, int argc, char **argv, Options *o) {
  *o = (Options){20, 1, NULL, false, 10, false, false, false, false};
  for (int i = 1; i < argc; i++) {
    bool more = i + 1 < argc;
    if (strcmp(argv[i], "--steps") == 0 && more)
      o->steps = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seed") == 0 && more)
      o->seed = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--out") == 0 && more)
      o->out = argv[++i];
    else if (strcmp(argv[i], "--classes") == 0 && more)
      o->classes = atoi(argv[++i]);
    else if (strcmp(argv[i], "--time") == 0)
      o->time = true;
    else if (strcmp(argv[i], "--check-train") == 0)
      o->check_train = true;
    else if (strcmp(argv[i], "--no-hooks") == 0)
      o->no_hooks = true;
    else if (strcmp(argv[i], "--overlap") == 0)
      o->overlap = true;
    else if (strcmp(argv[i], "--check-buckets") == 0)
      o->check_buckets = true;
    else
      fail(r, "usage: lathe_mpi_example [--steps S] [--seed X] [--classes C] [--out FILE] "
              "[--check-train] [--no-hooks] [--overlap | --check-buckets] [--time]");
    if (o->steps < 1 || o->classes < 1) fail(r, "--steps and --classes expect positive numbers");
  }
  if (o->check_train && r->ranks != 1)
    fail(r, "--check-train compares with the fused train step: run it on one rank");
}

/* rank 0 writes the params, atomically (temp file, fsync, rename) */
static void write_params(const Run *r, const char *path) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  bool ok = f && fwrite(r->params, 1, r->info->params_bytes, f) == r->info->params_bytes;
  ok = f && fflush(f) == 0 && ok;
  if (f && fclose(f) != 0) ok = false;
  if (!ok || rename(tmp, path) != 0) fail(r, "cannot write the params file");
}

static void setup(Run *r) {
  r->info = &LATHE_MODEL_INFO;
  r->grad = entry(r->info, "grad");
  r->apply = entry(r->info, "apply");
  r->train = entry(r->info, "train");
  if (!r->grad || !r->apply || !r->info->grads_bytes)
    fail(r, "the model has no split train step: compile it with `lathe compile --split-step`");
  r->params = aligned(r->info->params_bytes);
  r->state = aligned(r->info->state_bytes);
  r->grads = aligned(r->info->grads_bytes);
  r->ws = aligned(r->info->workspace_bytes);
  r->inputs = calloc((size_t)r->grad->n_args + 1, sizeof *r->inputs);
  if (!r->params || !r->state || !r->grads || !r->ws || !r->inputs) fail(r, "out of memory");
  for (int i = 0; i < r->grad->n_args; i++)
    if (r->grad->args[i].role == LATHE_ARG_INPUT)
      if (!(r->inputs[i] = aligned(r->grad->args[i].tensor->bytes))) fail(r, "out of memory");
}

static void fill_inputs(const Run *r, uint64_t seed, int step) {
  for (int i = 0; i < r->grad->n_args; i++)
    if (r->grad->args[i].role == LATHE_ARG_INPUT)
      fill_input(r, r->grad->args[i].tensor, r->inputs[i], seed, step);
}

/* the fused train step on copies of the params and state: the same bits as grad + apply */
static void check_fused(Run *r, void *params, void *state, int step) {
  if (!r->train) fail(r, "--check-train: the model has no \"train\" entry");
  void **a = entry_args(r, r->train, params, state);
  r->train->call(a, NULL);
  free(a);
  if (memcmp(params, r->params, r->info->params_bytes) != 0 ||
      memcmp(state, r->state, r->info->state_bytes) != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "step %d: train and grad + apply disagree", step + 1);
    fail(r, msg);
  }
}

/* the leading dimension of grad's first input: the per-rank batch */
static int64_t batch_size(const Run *r) {
  for (int i = 0; i < r->grad->n_args; i++)
    if (r->grad->args[i].role == LATHE_ARG_INPUT && r->grad->args[i].tensor->rank > 0)
      return r->grad->args[i].tensor->shape[0];
  return 1;
}

/* --time: the slowest rank's step and allreduce times (the data generation excluded) */
static void report_time(const Run *r, int steps) {
  double mine[3] = {r->step_seconds, r->reduce_seconds, r->wait_seconds}, worst[3];
  MPI_Reduce(mine, worst, 3, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (r->rank != 0) return;
  int64_t batch = batch_size(r) * r->ranks;
  printf("time: %d ranks, global batch %lld: %.1f samples/s, step %.3f ms, allreduce %.3f ms "
         "of %zu bytes, wait %.3f ms\n",
         r->ranks, (long long)batch, (double)batch * steps / worst[0], 1e3 * worst[0] / steps,
         1e3 * worst[1] / steps, r->info->grads_bytes, 1e3 * worst[2] / steps);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  Run r = {0};
  float loss_sum = 0;
  r.loss_sum = &loss_sum;
  MPI_Comm_rank(MPI_COMM_WORLD, &r.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &r.ranks);
  Options o;
  parse_options(&r, argc, argv, &o);
  r.classes = o.classes, r.timed = o.time, r.use_hooks = !o.no_hooks;
  r.hooks = (lathe_grad_hooks){&r, sum_f32, sum_f64, NULL};
  setup(&r);
  if ((o.overlap || o.check_buckets) && r.grad->n_buckets == 0)
    fail(&r, "--overlap and --check-buckets need a model compiled with --buckets BYTES");
  if (o.overlap) r.hooks.ready = ready_overlap;
  if (o.check_buckets) r.hooks.ready = ready_snapshot;
  r.requests = calloc((size_t)r.grad->n_buckets + 1, sizeof *r.requests);
  r.snapshot = aligned(r.info->grads_bytes), r.covered = aligned(r.info->grads_bytes);
  if (!r.requests || !r.snapshot || !r.covered) fail(&r, "out of memory");
  r.info->init(r.params, r.state, o.seed); /* the same seed on every rank */
  check_replicas(&r, "after init (different models or seeds?)");
  void *before = aligned(r.info->state_bytes), *p2 = aligned(r.info->params_bytes),
       *s2 = aligned(r.info->state_bytes);
  if (!before || !p2 || !s2) fail(&r, "out of memory");
  void **grad_args = entry_args(&r, r.grad, r.params, r.state);
  void **apply_args = entry_args(&r, r.apply, r.params, r.state);
  for (int t = 0; t < o.steps; t++) {
    fill_inputs(&r, o.seed, t);
    memcpy(p2, r.params, r.info->params_bytes);
    memcpy(s2, r.state, r.info->state_bytes);
    train_step(&r, grad_args, apply_args, before);
    if (o.check_train) check_fused(&r, p2, s2, t);
    check_replicas(&r, "after a step");
  }
  float total = 0;
  MPI_Reduce(&loss_sum, &total, 1, MPI_FLOAT, MPI_SUM, 0, MPI_COMM_WORLD);
  if (r.rank == 0) {
    printf("%s: %d steps on %d rank(s) of batch %lld, mean loss %.6f; replicas identical\n",
           r.info->name, o.steps, r.ranks, (long long)batch_size(&r),
           total / (float)(o.steps * r.ranks));
    if (o.out) write_params(&r, o.out);
  }
  if (o.time) report_time(&r, o.steps);
  free(grad_args);
  free(apply_args);
  MPI_Finalize();
  return 0;
}
