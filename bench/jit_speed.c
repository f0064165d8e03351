/* bench/jit_speed.c — the speed of JIT-compiled code against the same C built by cc:
 * one model compiled twice through the public API (lathe.h), once by the in-process JIT
 * (LATHE_BACKEND_JIT) and once by the cc backend (`cc -std=c99 -O3 -march=native
 * -fno-math-errno -shared -fPIC`, runtime/loader.c), then one entry of each timed, the two
 * alternated run by run so that a change of load hits both, in thread CPU time (which other
 * processes on the machine inflate much less than wall time). Inputs are uniform in [0, 1),
 * integer inputs uniform in [0, 10). Both models start from the same seed; a train entry keeps
 * training, which does not change its cost.
 *
 * The JIT side is its optimized tier (lathe_wait_optimized); with --baseline 1 (and the cache
 * off, LATHE_NO_CACHE=1, so that the compile is tiered) its baseline tier instead.
 * Usage: jit_speed FILE ENTRY [-D NAME=VALUE]... [--reps R] [--min-time SECONDS] [--baseline 1]
 * Output: `jit_seconds <median> cc_seconds <median> jit_over_cc <ratio>` (CPU seconds per call;
 * ratio > 1: the JIT's code is slower). CC picks the cc backend's compiler (runtime/loader.c).
 * Built by bench/jit_speed.sh. Measurement only: nothing is asserted.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/jit.h" /* jit_tier_hold */
#include "lathe/lathe.h"

enum { MAX_DEFINES = 16, MAX_ARGS = 32, MAX_REPS = 64 };

typedef struct Bench {
  lathe_model *model;
  lathe_tensor inputs[MAX_ARGS];
  int n_inputs;
} Bench;

/* CPU time of this thread: a busy machine inflates it much less than wall time */
static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static const lathe_entry_info *find_entry(const lathe_model_info *info, const char *name) {
  for (int i = 0; i < info->n_entries; i++)
    if (strcmp(info->entries[i].name, name) == 0) return &info->entries[i];
  return NULL;
}

/* Allocate and fill every input of the entry (floats in [0, 1), integers in [0, 10)). */
static int fill_inputs(Bench *b, const lathe_entry_info *e) {
  unsigned state = 12345;
  for (int a = 0; a < e->n_args; a++) {
    const lathe_tensor_info *t = e->args[a].tensor;
    if (e->args[a].role != LATHE_ARG_INPUT || b->n_inputs == MAX_ARGS) continue;
    unsigned char *data = malloc(t->bytes ? t->bytes : 1);
    if (!data) return -1;
    size_t count = t->dtype == LATHE_F64 || t->dtype == LATHE_I64 ? t->bytes / 8
                   : t->dtype == LATHE_U8                         ? t->bytes
                                                                  : t->bytes / 4;
    for (size_t i = 0; i < count; i++) {
      state = state * 1103515245u + 12345u;
      double u = (double)(state >> 8) / 16777216.0;
      if (t->dtype == LATHE_F32)
        ((float *)data)[i] = (float)u;
      else if (t->dtype == LATHE_F64)
        ((double *)data)[i] = u;
      else if (t->dtype == LATHE_I32)
        ((int *)data)[i] = (int)(u * 10);
      else if (t->dtype == LATHE_I64)
        ((long long *)data)[i] = (long long)(u * 10);
      else
        data[i] = (unsigned char)(u * 10);
    }
    b->inputs[b->n_inputs++] = (lathe_tensor){t->name, t->dtype, t->rank, t->shape, data};
  }
  return 0;
}

/* CPU seconds per call of `calls` calls of the entry, or -1 when a call fails. */
static double time_run(Bench *b, const char *entry, long calls) {
  double t0 = cpu_seconds();
  for (long i = 0; i < calls; i++)
    if (lathe_call(b->model, entry, b->inputs, b->n_inputs, NULL, 0, NULL) != 0) return -1;
  return (cpu_seconds() - t0) / (double)calls;
}

/* --baseline 1: time the JIT's baseline tier (the model's code at -O0, what runs while the
 * optimized tier compiles: jit_tier_hold keeps it from being swapped in) */
static int baseline;

static int compile(Bench *b, const char *file, const char *entry, int backend,
                   const char *const *defines, int n_defines) {
  lathe_options o;
  lathe_options_init(&o);
  o.backend = backend;
  o.defines = defines, o.n_defines = n_defines;
  char *err = NULL;
  b->model = lathe_compile_file(file, &o, &err);
  if (!b->model) {
    fprintf(stderr, "jit_speed: %s", err ? err : "compile failed\n");
    lathe_string_free(err);
    return -1;
  }
  /* the JIT's optimized tier, not the baseline its compile returns first (docs/jit.md),
   * unless the baseline is what is measured */
  if (!baseline && lathe_wait_optimized(b->model) != 0) {
    fprintf(stderr, "jit_speed: the optimized tier of %s failed\n", file);
    return -1;
  }
  const lathe_entry_info *e = find_entry(lathe_info(b->model), entry);
  if (!e) {
    fprintf(stderr, "jit_speed: %s has no entry '%s'\n", file, entry);
    return -1;
  }
  return fill_inputs(b, e);
}

static void bench_free(Bench *b) {
  for (int i = 0; i < b->n_inputs; i++) free(b->inputs[i].data);
  lathe_free(b->model);
}

/* Calls per run so that one run of b takes about min_time (doubles as the warm-up). */
static long calibrate(Bench *b, const char *entry, double min_time) {
  long calls = 1;
  for (;;) {
    double per_call = time_run(b, entry, calls);
    if (per_call < 0) return -1;
    if (per_call * (double)calls >= min_time / 4 || calls > (1L << 30)) break;
    calls *= 2;
  }
  return calls * 4;
}

int main(int argc, char **argv) {
  const char *defines[MAX_DEFINES];
  int n_defines = 0, reps = 5;
  double min_time = 0.2;
  if (argc < 3) {
    fprintf(stderr, "usage: jit_speed FILE ENTRY [-D NAME=VALUE]... [--reps R] "
                    "[--min-time SECONDS]\n");
    return 2;
  }
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "-D") == 0 && n_defines < MAX_DEFINES)
      defines[n_defines++] = argv[i + 1];
    else if (strcmp(argv[i], "--reps") == 0)
      reps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--min-time") == 0)
      min_time = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--baseline") == 0)
      baseline = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "jit_speed: unexpected argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (argc % 2 == 0 || reps < 1 || reps > MAX_REPS || !(min_time > 0)) {
    fprintf(stderr, "jit_speed: give options as pairs; --reps 1..%d, --min-time > 0\n", MAX_REPS);
    return 2;
  }
  Bench jit = {0}, cc = {0};
  jit_tier_hold(baseline != 0);
  if (compile(&jit, argv[1], argv[2], LATHE_BACKEND_JIT, defines, n_defines) != 0 ||
      compile(&cc, argv[1], argv[2], LATHE_BACKEND_CC, defines, n_defines) != 0)
    return 1;
  long jit_calls = calibrate(&jit, argv[2], min_time), cc_calls = calibrate(&cc, argv[2], min_time);
  double jit_times[MAX_REPS], cc_times[MAX_REPS];
  for (int r = 0; r < reps && jit_calls > 0 && cc_calls > 0; r++) {
    jit_times[r] = time_run(&jit, argv[2], jit_calls);
    cc_times[r] = time_run(&cc, argv[2], cc_calls);
    if (jit_times[r] < 0 || cc_times[r] < 0) jit_calls = -1;
  }
  if (jit_calls <= 0 || cc_calls <= 0) {
    fprintf(stderr, "jit_speed: %s\n", lathe_error(jit_calls <= 0 ? jit.model : cc.model));
    return 1;
  }
  qsort(jit_times, (size_t)reps, sizeof(double), compare_doubles);
  qsort(cc_times, (size_t)reps, sizeof(double), compare_doubles);
  double j = jit_times[reps / 2], c = cc_times[reps / 2];
  jit_tier_hold(false);
  printf("jit_seconds %.9f cc_seconds %.9f jit_over_cc %.3f\n", j, c, j / c);
  bench_free(&jit), bench_free(&cc);
  return 0;
}
