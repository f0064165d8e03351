/* bench/drive.c — times one entry point of a model compiled by `lathe compile`.
 *
 * Built together with the generated code: cc -O3 -march=native -I DIR
 *   -DMODEL_HEADER='"mm.h"' -DMODEL_INFO=mm_info bench/drive.c DIR/mm.c -lm
 * It needs nothing from lathe itself: it reads the generated descriptor (<model>_info from
 * <model>.h) for the sizes of the params and state structs, the workspace and every argument,
 * allocates them 64-byte aligned, runs <model>_init, fills the inputs (f32 uniform in [0, 1),
 * integers uniform in [0, --int-range)), and calls the entry through the descriptor's `call`
 * wrapper, which forwards to <model>_<entry> with the arguments in the generated order.
 *
 * Timing: one warm-up call, a calibration that doubles the number of calls until a batch
 * lasts --min-time / 4 (more warm-up), then reps timed runs of enough calls to last
 * --min-time each; prints the median seconds per call. Train entries
 * update params and state in place on every call, as a training loop would.
 *
 * --images FILE feeds the first f32 input real images instead: FILE is an IDX image file
 * (uncompressed, e.g. Fashion-MNIST's t10k-images-idx3-ubyte), its pixels scaled as
 * `lathe train --data` scales them (an f32 division by 255), and every call reads the next
 * batch of them (the input's element count / rows x cols images), cycling through the file:
 * the entry sees the zeros real images have, in a different pattern at every call.
 *
 * --check-matmul verifies a forward entry `c = a @ b` (inputs [M, K] and [K, N], output
 * [M, N]) on 256 sampled elements against a double-precision dot product, so a wrong kernel
 * is reported instead of timed. Exit status 1 on a failed check or bad entry, 2 on usage.
 *
 * Output (stdout): `seconds <median> calls <n> reps <r>` and, for entries returning a loss,
 * `loss <last loss>`.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include MODEL_HEADER

enum { MAX_ARGS = 64, MAX_REPS = 64 };

typedef struct Options {
  const char *entry;
  int reps;
  double min_time;
  int int_range;
  int check_matmul;
  int64_t batch; /* --batch: the run-time batch n of a dynamic model (0: its bound) */
  const char *images; /* --images: an IDX image file for the first f32 input, or NULL */
} Options;

/* --images: batches of real images, one after another, for the argument `arg` */
typedef struct ImagePool {
  int arg;          /* the argument they feed (-1: none) */
  float *pixels;    /* batches * per_call floats */
  long batches;     /* whole batches in the file */
  int64_t per_call; /* floats per call: the input's element count */
} ImagePool;

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
  return *s;
}

static void *alloc64(size_t bytes) { /* posix_memalign: C99 builds have no aligned_alloc */
  void *p = NULL;
  if (posix_memalign(&p, 64, (bytes + 63) / 64 * 64 + 64) != 0) {
    fprintf(stderr, "drive: out of memory (%zu bytes)\n", bytes);
    exit(1);
  }
  memset(p, 0, bytes + 64);
  return p;
}

static int64_t elements(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->shape[i];
  return n;
}

static void fill_input(void *data, const lathe_tensor_info *t, int int_range, uint64_t *rng) {
  int64_t n = elements(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = rng_next(rng);
    switch (t->dtype) {
    case LATHE_F32: ((float *)data)[i] = (float)(r >> 40) / (float)(1 << 24); break;
    case LATHE_F64: ((double *)data)[i] = (double)(r >> 11) / 9007199254740992.0; break;
    case LATHE_I32: ((int32_t *)data)[i] = (int32_t)(r % (uint64_t)int_range); break;
    case LATHE_I64: ((int64_t *)data)[i] = (int64_t)(r % (uint64_t)int_range); break;
    default: ((uint8_t *)data)[i] = (uint8_t)(r % (uint64_t)int_range); break;
    }
  }
}

static uint32_t big_endian32(const unsigned char *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads the IDX image file for the first f32 input of e; 0 (and a message) on bad input. */
static int load_images(const char *path, const lathe_entry_info *e, ImagePool *pool) {
  pool->arg = -1;
  for (int i = 0; i < e->n_args && pool->arg < 0; i++)
    if (e->args[i].role == LATHE_ARG_INPUT && e->args[i].tensor->dtype == LATHE_F32) pool->arg = i;
  FILE *f = fopen(path, "rb");
  unsigned char head[16];
  if (pool->arg < 0 || !f || fread(head, 1, 16, f) != 16 || big_endian32(head) != 0x803) {
    fprintf(stderr, "drive: %s: %s\n", path,
            pool->arg < 0 ? "the entry has no f32 input"
                          : "expected an uncompressed IDX image file (magic 0x00000803)");
    if (f) fclose(f);
    return 0;
  }
  int64_t count = big_endian32(head + 4);
  int64_t image = (int64_t)big_endian32(head + 8) * big_endian32(head + 12);
  pool->per_call = elements(e->args[pool->arg].tensor);
  if (image > 0 && pool->per_call % image == 0)
    pool->batches = (long)(count / (pool->per_call / image));
  size_t bytes_n = (size_t)(count * image);
  unsigned char *bytes = malloc(bytes_n);
  int ok = pool->batches > 0 && bytes && fread(bytes, 1, bytes_n, f) == bytes_n;
  fclose(f);
  if (!ok) {
    fprintf(stderr,
            "drive: %s: expected %lld images of %lld pixels, a whole number per call of %lld "
            "floats\n",
            path, (long long)count, (long long)image, (long long)pool->per_call);
    free(bytes);
    return 0;
  }
  int64_t n = pool->batches * pool->per_call;
  pool->pixels = alloc64(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) pool->pixels[i] = (float)bytes[i] / 255.0f;
  free(bytes);
  return 1;
}

/* call number i of the entry: with --images, the input points at the next batch */
static void call(const lathe_entry_info *e, void **args, double *loss, const ImagePool *pool,
                 long i) {
  if (pool->arg >= 0) args[pool->arg] = pool->pixels + (i % pool->batches) * pool->per_call;
  e->call(args, loss);
}

static const lathe_entry_info *find_entry(const lathe_model_info *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i].name, name) == 0) return &m->entries[i];
  fprintf(stderr, "drive: model '%s' has no entry '%s'; it has:", m->name, name);
  for (int i = 0; i < m->n_entries; i++) fprintf(stderr, " %s", m->entries[i].name);
  fputc('\n', stderr);
  return NULL;
}

/* Points args[i] at storage for argument i of e. */
static void bind_args(const lathe_model_info *m, const lathe_entry_info *e, const Options *o,
                      void **args) {
  void *params = alloc64(m->params_bytes), *state = alloc64(m->state_bytes);
  m->init(params, state, 0);
  uint64_t rng = 0x2545F4914F6CDD1Dull;
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    switch (a->role) {
    case LATHE_ARG_PARAMS: args[i] = params; break;
    case LATHE_ARG_STATE: args[i] = state; break;
    case LATHE_ARG_WORKSPACE: args[i] = alloc64(e->workspace_bytes); break;
    case LATHE_ARG_HOOKS: args[i] = NULL; break; /* one replica */
    case LATHE_ARG_BATCH: /* a dynamic model: n rows of the buffers (planned at the bound) */
      args[i] = alloc64(sizeof(int64_t));
      *(int64_t *)args[i] = o->batch;
      break;
    default:
      args[i] = alloc64(a->tensor->bytes);
      if (a->role == LATHE_ARG_INPUT) fill_input(args[i], a->tensor, o->int_range, &rng);
    }
  }
}

/* 256 sampled elements of c = a @ b against double-precision dot products. */
static int check_matmul(const lathe_entry_info *e, void *const *args) {
  const lathe_tensor_info *t[3];
  void *d[3];
  int n = 0;
  for (int i = 0; i < e->n_args; i++)
    if ((e->args[i].role == LATHE_ARG_INPUT || e->args[i].role == LATHE_ARG_OUTPUT) && n < 3)
      t[n] = e->args[i].tensor, d[n++] = args[i];
  if (n != 3 || t[0]->dtype != LATHE_F32 || t[0]->rank != 2 || t[1]->rank != 2 ||
      t[2]->rank != 2 || t[0]->shape[1] != t[1]->shape[0] || t[2]->shape[0] != t[0]->shape[0] ||
      t[2]->shape[1] != t[1]->shape[1]) {
    fprintf(stderr, "drive: --check-matmul needs inputs [M,K], [K,N] and output [M,N]\n");
    return 0;
  }
  int64_t M = t[0]->shape[0], K = t[0]->shape[1], N = t[1]->shape[1];
  const float *a = d[0], *b = d[1], *c = d[2];
  uint64_t rng = 12345;
  for (int s = 0; s < 256; s++) {
    int64_t i = (int64_t)(rng_next(&rng) % (uint64_t)M);
    int64_t j = (int64_t)(rng_next(&rng) % (uint64_t)N);
    double want = 0;
    for (int64_t k = 0; k < K; k++) want += (double)a[i * K + k] * (double)b[k * N + j];
    if (!(fabs(c[i * N + j] - want) <= 1e-4 * want + 1e-4)) {
      fprintf(stderr, "drive: matmul check failed at c[%lld][%lld]: got %.9g, want %.9g\n",
              (long long)i, (long long)j, (double)c[i * N + j], want);
      return 0;
    }
  }
  return 1;
}

/* Doubles the number of calls (all warm-up) until a batch lasts min_time / 4; returns the
 * number of calls that lasts about min_time. */
static long calibrate(const lathe_entry_info *e, void **args, double *loss, double min_time,
                      const ImagePool *pool) {
  for (long calls = 1;; calls *= 2) {
    double t0 = now_seconds();
    for (long i = 0; i < calls; i++) call(e, args, loss, pool, i);
    double elapsed = now_seconds() - t0;
    if (elapsed >= min_time / 4 || calls >= (1L << 40)) {
      long n = (long)((double)calls * min_time / (elapsed > 1e-9 ? elapsed : 1e-9));
      return n > 0 ? n : 1;
    }
  }
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int parse_options(Options *o, int argc, char **argv) {
  *o = (Options){NULL, 5, 0.2, 10, 0, 0, NULL};
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--check-matmul") == 0) o->check_matmul = 1;
    else if (strcmp(argv[i], "--reps") == 0 && v) o->reps = atoi(v), i++;
    else if (strcmp(argv[i], "--min-time") == 0 && v) o->min_time = atof(v), i++;
    else if (strcmp(argv[i], "--int-range") == 0 && v) o->int_range = atoi(v), i++;
    else if (strcmp(argv[i], "--batch") == 0 && v) o->batch = atoll(v), i++;
    else if (strcmp(argv[i], "--images") == 0 && v) o->images = v, i++;
    else if (argv[i][0] != '-' && !o->entry) o->entry = argv[i];
    else return 0;
  }
  return o->entry && o->reps >= 1 && o->reps <= MAX_REPS && o->min_time > 0 && o->int_range >= 1;
}

int main(int argc, char **argv) {
  Options o;
  if (!parse_options(&o, argc, argv)) {
    fprintf(stderr, "usage: drive ENTRY [--reps 1..64] [--min-time SECONDS] "
                    "[--int-range K] [--check-matmul] [--batch N] [--images IDX]\n");
    return 2;
  }
  const lathe_model_info *m = &MODEL_INFO;
  if (!o.batch) o.batch = m->dyn_max;
  if (o.batch < 0 || o.batch > m->dyn_max) {
    fprintf(stderr, "drive: --batch %lld is not in [1, %lld] (the model's run-time batch)\n",
            (long long)o.batch, (long long)m->dyn_max);
    return 2;
  }
  const lathe_entry_info *e = find_entry(m, o.entry);
  if (!e || e->n_args > MAX_ARGS) return 1;
  void *args[MAX_ARGS];
  bind_args(m, e, &o, args);
  ImagePool pool = {-1, NULL, 0, 0};
  if (o.images && !load_images(o.images, e, &pool)) return 1;
  double loss = 0;
  e->call(args, &loss); /* first warm-up call: page faults, cold caches */
  if (o.check_matmul && !check_matmul(e, args)) return 1;
  long calls = calibrate(e, args, &loss, o.min_time, &pool);
  double per_call[MAX_REPS];
  for (int r = 0; r < o.reps; r++) {
    double t0 = now_seconds();
    for (long i = 0; i < calls; i++) call(e, args, &loss, &pool, i);
    per_call[r] = (now_seconds() - t0) / (double)calls;
  }
  qsort(per_call, (size_t)o.reps, sizeof per_call[0], compare_doubles);
  printf("seconds %.9g calls %ld reps %d\n", per_call[o.reps / 2], calls, o.reps);
  if (e->returns_loss) printf("loss %.6g\n", loss);
  return 0;
}
