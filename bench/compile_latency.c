/* bench/compile_latency.c — compile latency of the in-process JIT (median of repeated runs):
 *
 *   1. the MLP train step (examples/mlp.lathe with its train block: forward + train entries)
 *   2. the MLP forward only
 *   3. the CNN train step (examples/cnn.lathe)
 *   4. a one-line REPL expression (the synthetic model the REPL builds for `relu(x @ w) * 2.0`)
 *
 * For each: "nothing cached" = jit_compile of the emitted C with the object cache off
 * (LATHE_NO_CACHE=1: Clang -O3 to LLVM IR, code generation of the model and of its kernel
 * library, ORC LLJIT link, symbol lookup), "kernels cached" = jit_compile of another model's C
 * (the same C with a comment appended) whose kernel library is in the cache (what a new or
 * edited model compiles; it must compile no kernel), "cached" = the same
 * call when the object is in the cache (a fresh temporary LATHE_CACHE_DIR, filled by one compile
 * first: hash the C, read and check the entry, link), and "total" = the whole path from source
 * text (frontend, passes, C emitter, JIT) through the public API, without the cache and from it
 * (the frontend, passes and emitter run either way); "cpu" = the thread CPU time of jit_compile
 * (a busy machine inflates wall time far more than it). The first compile of the process (LLVM
 * initialization) is reported separately as "cold". Under each model: the medians of each phase
 * of the "nothing cached" and "kernels cached" compiles (jit_phase_times, thread CPU time).
 * A compile that misses the cache is tiered (docs/jit.md, "The tiered compile"): its time is
 * until the baseline tier runs, its "baseline" phase the model's module at -O0; "pipeline",
 * "codegen", "store" and "background" (all of it) are the background thread's, which compiles
 * the optimized tier after jit_compile returned (jit_free waits for it, outside the timing).
 * LATHE_JIT_TIERED=0 in the environment: one tier, as before.
 * Usage: compile_latency ROOT [RUNS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "codegen/jit.h"
#include "frontend/frontend.h"
#include "lathe/lathe.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

static const char *repl_text =
    "fn __repl_w() -> f32[16, 16] {\n  param value: f32[16, 16] = glorot_uniform\n"
    "  return value\n}\n"
    "fn __repl_x() -> f32[4, 16] {\n  param value: f32[4, 16] = uniform(-1, 1)\n"
    "  return value\n}\n"
    "model repl() {\n  w = __repl_w()\n  x = __repl_x()\n  output _ = relu(x @ w) * 2.0\n}\n";

static double clock_ms(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static double now_ms(void) {
  return clock_ms(CLOCK_MONOTONIC);
}
/* CPU time of this thread (the JIT compiles on it): less sensitive to a busy machine */
static double cpu_ms(void) {
  return clock_ms(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* source → C text (frontend, passes, emitter), as the CLI does */
static bool emit(const char *name, const char *text, bool train, char **c, char **h, char **model) {
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  Module *m = frontend_compile(name, text, &fo, &d);
  PassCtx pc;
  pass_ctx_init(&pc, &d);
  pc.want_train = train;
  CgOptions co;
  cg_options_init(&co);
  bool ok = m && passes_run_module(m, &pc) && cg_emit_c(m, &co, c, h, &d);
  if (ok) *model = strdup(m->name);
  pass_ctx_fini(&pc);
  if (!ok) fprintf(stderr, "%s", diag_text(&d));
  if (m) module_free(m);
  diag_fini(&d);
  return ok;
}

typedef struct Timing {
  double *wall, *cpu;    /* per run, ms */
  JitPhaseTimes *phases; /* per run, as jit_phase_times reports them; NULL: not kept */
} Timing;

/* One jit_compile, timed into run i of t; its cache outcome must be `want` (JIT_CACHE_COUNT:
 * any, for the compile that fills the cache, which an earlier measurement may have done). */
static bool time_jit(const char *c, const char *hname, const char *h, const char *model,
                     JitCacheOutcome want, Timing *t, int i) {
  Diag d;
  diag_init(&d);
  double t0 = now_ms(), c0 = cpu_ms();
  JitModel *j = jit_compile(c, hname, h, model, &d);
  t->wall[i] = now_ms() - t0;
  t->cpu[i] = cpu_ms() - c0;
  if (j && t->phases) jit_phase_times(j, &t->phases[i]);
  bool ok = j != NULL;
  if (!j)
    fprintf(stderr, "%s", diag_text(&d));
  else if (want != JIT_CACHE_COUNT && jit_cache_outcome(j) != want)
    fprintf(stderr, "compile_latency: cache outcome %d, expected %d\n", jit_cache_outcome(j), want),
        ok = false;
  jit_free(j);
  diag_fini(&d);
  return ok;
}

/* One whole compile through the API, timed into total[i]. */
static bool time_total(const char *name, const char *text, bool train, double *total, int i) {
  lathe_options o;
  lathe_options_init(&o);
  o.backend = LATHE_BACKEND_JIT;
  o.want_train = train;
  char *err = NULL;
  double t0 = now_ms();
  lathe_model *m = lathe_compile_string(name, text, &o, &err);
  total[i] = now_ms() - t0;
  if (!m) fprintf(stderr, "%s", err);
  lathe_string_free(err);
  lathe_free(m);
  return m != NULL;
}

/* c with a comment that makes it another model's C (another object-cache key), the same
 * kernel library: what a new model, or an edited one, compiles */
static char *variant(const char *c, int i) {
  size_t n = strlen(c) + 64;
  char *v = malloc(n);
  if (v) snprintf(v, n, "%s/* compile_latency variant %d */\n", c, i);
  return v;
}

/* One jit_compile of a variant of c (a new model entry) with the kernel library from the
 * cache: it must store the model and compile no kernel. */
static bool time_first(const char *c, const char *hname, const char *h, const char *model,
                       Timing *t, int i) {
  static int serial;
  char *v = variant(c, serial++);
  bool ok = v && time_jit(v, hname, h, model, JIT_CACHE_STORED, t, i);
  free(v);
  Diag d;
  diag_init(&d);
  JitModel *j = ok ? jit_compile(c, hname, h, model, &d) : NULL; /* a hit: counts the kernels */
  int compiled = -1, cached = -1;
  if (j) jit_kernel_counts(j, &compiled, &cached);
  jit_free(j);
  diag_fini(&d);
  return ok && compiled == 0 && cached >= 0;
}

static double phase(const JitPhaseTimes *p, int k) {
  const double v[] = {p->parse,   p->split, p->kernels, p->baseline,  p->pipeline,
                      p->codegen, p->load,  p->store,   p->background};
  return v[k];
}

/* the median of each phase over runs, on one line */
static void print_phases(const char *what, const JitPhaseTimes *p, int runs, double *tmp) {
  static const char *names[] = {"parse",   "split", "kernels", "baseline",  "pipeline",
                                "codegen", "load",  "store",   "background"};
  printf("  %-16s", what);
  for (int k = 0; k < 9; k++) {
    for (int i = 0; i < runs; i++)
      tmp[i] = phase(&p[i], k);
    printf(" %s %6.1f", names[k], median(tmp, runs));
  }
  printf("  (cpu ms, medians)\n");
}

/* median ms of `runs` uncached, first (kernel library cached) and cached jit_compile calls,
 * and of `runs` whole compiles through the API, interleaved so that load changes hit all */
static bool measure(const char *label, const char *name, const char *text, bool train, int runs,
                    const char *cache_dir) {
  char *c = NULL, *h = NULL, *model = NULL, hname[256];
  if (!emit(name, text, train, &c, &h, &model)) return false;
  snprintf(hname, sizeof hname, "%s.h", model);
  size_t n = (size_t)runs;
  double *all = malloc(sizeof(double) * 9 * n);
  JitPhaseTimes *phases = calloc(2 * n, sizeof *phases);
  Timing jit = {all, all + n, phases}, cached = {all + 2 * n, all + 3 * n, NULL};
  Timing first = {all + 6 * n, all + 7 * n, phases + n};
  double *total = all + 4 * n, *total_cached = all + 5 * n;
  setenv("LATHE_CACHE_DIR", cache_dir, 1);
  bool ok = all && phases && time_jit(c, hname, h, model, JIT_CACHE_COUNT, &cached, 0);
  for (int i = 0; ok && i < runs; i++) {
    setenv("LATHE_NO_CACHE", "1", 1);
    ok = time_jit(c, hname, h, model, JIT_CACHE_OFF, &jit, i) &&
         time_total(name, text, train, total, i);
    unsetenv("LATHE_NO_CACHE");
    ok = ok && time_first(c, hname, h, model, &first, i) &&
         time_jit(c, hname, h, model, JIT_CACHE_HIT, &cached, i) &&
         time_total(name, text, train, total_cached, i);
  }
  if (ok)
    printf("%-26s C %6zu bytes   nothing cached %7.1f ms (cpu %7.1f)   kernels cached %7.1f ms"
           " (cpu %7.1f)   cached %5.1f ms (cpu %5.1f)   total %7.1f ms, cached %6.1f ms"
           "   (%d runs)\n",
           label, strlen(c), median(jit.wall, runs), median(jit.cpu, runs),
           median(first.wall, runs), median(first.cpu, runs), median(cached.wall, runs),
           median(cached.cpu, runs), median(total, runs), median(total_cached, runs), runs);
  if (ok) print_phases("nothing cached:", jit.phases, runs, all + 8 * n);
  if (ok) print_phases("kernels cached:", first.phases, runs, all + 8 * n);
  free(all), free(phases), free(c), free(h), free(model);
  return ok;
}

/* a fresh cache directory for this run: the first compile of each model stores its object */
static bool make_cache_dir(char *dir, size_t size) {
  snprintf(dir, size, "%s/lathe-compile-latency.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(dir) != NULL;
}

static void remove_cache_dir(const char *dir) {
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "compile_latency: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s ROOT [RUNS]\n", argv[0]);
    return 2;
  }
  if (!jit_available()) {
    fprintf(stderr, "compile_latency: this lathe was built without LLVM (LATHE_JIT=OFF)\n");
    return 1;
  }
  int runs = argc > 2 ? atoi(argv[2]) : 11;
  if (runs < 1) runs = 1;
  char path[4096], cnn_path[4096], *mlp = NULL, *cnn = NULL;
  size_t len;
  snprintf(path, sizeof path, "%s/examples/mlp.lathe", argv[1]);
  snprintf(cnn_path, sizeof cnn_path, "%s/examples/cnn.lathe", argv[1]);
  Diag d;
  diag_init(&d);
  if (!rt_read_file(path, &mlp, &len, &d) || !rt_read_file(cnn_path, &cnn, &len, &d)) {
    fprintf(stderr, "%s", diag_text(&d));
    return 1;
  }
  diag_fini(&d);
  char cache[4096];
  if (!make_cache_dir(cache, sizeof cache)) {
    fprintf(stderr, "compile_latency: cannot make a temporary cache directory\n");
    return 1;
  }
  double t0 = now_ms();
  bool ok = measure("cold (first, REPL line)", "<repl>", repl_text, false, 1, cache);
  printf("  (cold includes LLVM initialization: %.1f ms for jit + cached + total)\n",
         now_ms() - t0);
  ok = ok && measure("MLP train step", path, mlp, true, runs, cache);
  ok = ok && measure("MLP forward", path, mlp, false, runs, cache);
  ok = ok && measure("CNN train step", cnn_path, cnn, true, runs, cache);
  ok = ok && measure("one-line REPL expression", "<repl>", repl_text, false, runs, cache);
  remove_cache_dir(cache);
  free(mlp);
  free(cnn);
  return ok ? 0 : 1;
}
