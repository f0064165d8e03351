/* cli/cmd_tune.c — `lathe tune FILE [--entry E] [--budget SECONDS]`: measure the kernel
 * schedules of a model on this CPU and keep the fastest in the tune cache (docs/tuning.md).
 *
 * The model is compiled as `lathe compile` would (its options, the cost model alone); every
 * kernel the schedule pass chooses for (f32 2-D matmuls, convolutions with a choice of
 * algorithm) is collected once per distinct key (op, shapes, target, CPU). For each, a few
 * candidates around the cost model's choice — the other GEMM kind, K/M/N blocks halved and
 * doubled, every algorithm the convolution may take — are built as micro-programs
 * (cli/tune_kernel.c) and timed; a candidate whose result differs from the cost model's is
 * dropped. The fastest is written to the cache (driver/tune.c) even when it is the cost
 * model's own, so a later compile says `from the tune cache`. The budget is shared out over
 * the kernels not yet tuned; what it leaves untuned is listed.
 */
#include "tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *help =
    "usage: lathe tune [OPTIONS] FILE\n"
    "\n"
    "Time the kernel schedules of FILE's GEMMs and convolutions on this CPU (micro-programs\n"
    "around the cost model's choice) and keep the fastest in the tune cache, which every\n"
    "later compile of a model with those kernels on this CPU and target reads.\n"
    "\n"
    "options:\n"
    "  --entry E            only the kernels of entry E (forward, train, ...; default all)\n"
    "  --budget SECONDS     stop measuring after about this long (default 60)\n"
    "  --samples N          timed samples per candidate, the median kept (default 7)\n"
    "  -D NAME=VALUE, --target T, --model NAME, -O0..-O3, --lib DIR: as for lathe compile\n"
    "  -h, --help           this help\n"
    "\n"
    "The cache: $LATHE_CACHE_DIR/tune, else $XDG_CACHE_HOME/lathe/tune, else\n"
    "~/.cache/lathe/tune; LATHE_NO_TUNE_CACHE=1 turns it off (docs/tuning.md).\n";

enum { TUNE_MAX_KERNELS = 256, TUNE_MAX_CANDIDATES = 8 };

typedef struct Kernel {
  char key[TUNE_KEY_MAX];
  char source[1024];                    /* the micro-program */
  SchedChoice model;                    /* the cost model's choice */
  bool conv;                            /* a convolution (else a matmul) */
  IrConvAlgo algos[IR_CONV_ALGO_COUNT]; /* conv: the algorithms it may take */
  int n_algos;
  const char *what; /* the op and its shape, for the progress lines (inside key) */
} Kernel;

typedef struct Tuner {
  const DriverOptions *o;
  DriverTune t;
  Kernel kernels[TUNE_MAX_KERNELS];
  int n_kernels, samples;
  int n_untimed; /* distinct kernels with no micro-program (the backward convolutions) */
  double budget, start;
} Tuner;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* adds node id of g unless its key is known, or it has no micro-program */
static void collect_node(Tuner *u, const Graph *g, NodeId id) {
  char key[TUNE_KEY_MAX];
  if (!passes_sched_key(g, id, &u->t.config, key, sizeof key)) return;
  for (int i = 0; i < u->n_kernels; i++)
    if (strcmp(u->kernels[i].key, key) == 0) return;
  if (u->n_kernels == TUNE_MAX_KERNELS) return;
  Kernel *k = &u->kernels[u->n_kernels];
  if (!tune_kernel_source(g, id, k->source, sizeof k->source)) {
    u->n_untimed++; /* counted once per node: the keys are not kept */
    return;
  }
  if (!passes_sched_model(g, id, &u->t.config, &k->model)) return;
  snprintf(k->key, sizeof k->key, "%s", key);
  const char *op = strrchr(k->key, ';'); /* "...; target T; OP": the op part */
  k->what = op ? op + 2 : k->key;
  k->conv = g->nodes[id].op != OP_MATMUL;
  k->n_algos = k->conv ? passes_sched_conv_algos(g, id, k->algos) : 0;
  u->n_kernels++;
}

static bool collect(Tuner *u, const Module *m, const char *entry) {
  bool found = !entry;
  for (int e = 0; e < m->n_entries; e++) {
    const Graph *g = m->entries[e];
    if (entry && strcmp(g->name, entry) != 0) continue;
    found = true;
    for (NodeId id = 0; id < g->n_nodes; id++)
      collect_node(u, g, id);
  }
  return found;
}

static bool same_choice(const SchedChoice *a, const SchedChoice *b) {
  return a->gemm == b->gemm && a->kc == b->kc && a->mc == b->mc && a->nc == b->nc &&
         a->algo == b->algo;
}

/* adds c to out[*n] unless it is there already */
static void add(SchedChoice *out, int *n, SchedChoice c) {
  for (int i = 0; i < *n; i++)
    if (same_choice(&out[i], &c)) return;
  if (*n < TUNE_MAX_CANDIDATES) out[(*n)++] = c;
}

/* the candidates of a matmul m x k x n (from its key) around the model's choice; [0] = it */
static int matmul_candidates(const Kernel *kn, SchedChoice *out) {
  long long m = 0, k = 0, n = 0;
  const char *at = strstr(kn->what, "m=");
  if (!at || sscanf(at, "m=%lld k=%lld n=%lld", &m, &k, &n) != 3) return 0;
  int count = 0;
  SchedChoice base = kn->model, c;
  add(out, &count, base);
  c = base,
  c.gemm = base.gemm == IR_SCHED_GEMM_DIRECT ? IR_SCHED_GEMM_PACKED : IR_SCHED_GEMM_DIRECT;
  add(out, &count, c);
  SchedChoice packed = base;
  packed.gemm = IR_SCHED_GEMM_PACKED;
  if (base.kc / 2 >= 16) c = packed, c.kc = base.kc / 2, add(out, &count, c);
  if (base.kc * 2 <= k) c = packed, c.kc = base.kc * 2, add(out, &count, c);
  if (base.mc * 2 <= m) c = packed, c.mc = base.mc * 2, add(out, &count, c);
  if (base.mc / 2 >= 8) c = packed, c.mc = base.mc / 2, add(out, &count, c);
  if (base.nc / 2 >= 64) c = packed, c.nc = base.nc / 2, add(out, &count, c);
  return count;
}

static int candidates(const Kernel *kn, SchedChoice *out) {
  if (!kn->conv) return matmul_candidates(kn, out);
  int count = 0;
  add(out, &count, kn->model);
  for (int i = 0; i < kn->n_algos; i++)
    add(out, &count, (SchedChoice){.algo = kn->algos[i]});
  return count;
}

static void describe(const Kernel *kn, const SchedChoice *c, char *buf, size_t size) {
  if (kn->conv)
    snprintf(buf, size, "%s", ir_conv_algo_name((IrConvAlgo)c->algo));
  else
    snprintf(buf, size, "%s %dx%dx%d", ir_sched_gemm_name((IrSchedGemm)c->gemm), c->kc, c->mc,
             c->nc);
}

/* one candidate: built, timed, checked against ref (the model's result; set by the first) */
static bool measure(Tuner *u, const Kernel *kn, const SchedChoice *c, double *us, float **ref,
                    size_t *n_ref) {
  Diag d;
  diag_init(&d);
  DriverLoaded l;
  memset(&l, 0, sizeof l);
  float *got = NULL;
  size_t n_got = 0;
  bool ok = tune_kernel_build(u->o, kn->source, kn->key, c, &l, &d) &&
            tune_kernel_time(&l, u->samples, us, &got, &n_got, &d);
  if (l.info) driver_loaded_close(&l);
  if (ok && !*ref) {
    *ref = got, *n_ref = n_got, got = NULL;
  } else if (ok && (n_got != *n_ref || !tune_kernel_agrees(*ref, got, n_got))) {
    char what[128];
    describe(kn, c, what, sizeof what);
    fprintf(stderr, "    %s: result differs from the cost model's; dropped\n", what);
    ok = false;
  }
  free(got);
  if (d.n_errors) diag_flush(&d, stderr);
  diag_fini(&d);
  return ok;
}

/* times kn's candidates within its share of the budget; writes the winner. false: an error */
static bool tune_one(Tuner *u, int index) {
  const Kernel *kn = &u->kernels[index];
  SchedChoice cand[TUNE_MAX_CANDIDATES];
  int count = candidates(kn, cand), best = -1;
  double share = (u->budget - (now() - u->start)) / (u->n_kernels - index), t0 = now();
  double times[TUNE_MAX_CANDIDATES];
  float *ref = NULL;
  size_t n_ref = 0;
  fprintf(stderr, "[%d/%d] %s\n", index + 1, u->n_kernels, kn->what);
  /* the cost model's choice and one other at least, then while this kernel's share lasts;
   * never past the whole budget by more than the candidate under way */
  for (int i = 0;
       i < count && (i < 2 || now() - t0 < share) && (i == 0 || now() - u->start < u->budget);
       i++) {
    char what[128];
    describe(kn, &cand[i], what, sizeof what);
    if (!measure(u, kn, &cand[i], &times[i], &ref, &n_ref)) {
      if (i == 0) break; /* no reference: nothing to compare with */
      continue;
    }
    fprintf(stderr, "    %-28s %10.2f us%s\n", what, times[i], i == 0 ? "  (cost model)" : "");
    if (best < 0 || times[i] < times[best]) best = i;
  }
  free(ref);
  if (best < 0) {
    fprintf(stderr, "    not tuned: the cost model's choice did not build\n");
    return true;
  }
  Diag d;
  diag_init(&d);
  bool ok = driver_tune_write(u->t.dir, kn->key, &cand[best], times[best], &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  char what[128];
  describe(kn, &cand[best], what, sizeof what);
  if (ok)
    fprintf(stderr, "    kept %s: %.2f us, %.2fx the cost model's\n", what, times[best],
            times[0] / times[best]);
  return ok;
}

static int tune_all(Tuner *u) {
  int i = 0;
  for (; i < u->n_kernels && now() - u->start < u->budget; i++)
    if (!tune_one(u, i)) return EXIT_USER;
  if (i < u->n_kernels)
    fprintf(stderr, "budget spent: %d of %d kernels left on the cost model\n", u->n_kernels - i,
            u->n_kernels);
  if (u->n_untimed)
    fprintf(stderr, "%d backward convolution nodes left on the cost model (no micro-program)\n",
            u->n_untimed);
  fprintf(stderr, "tuned %d kernels in %.1f s; cache: %s\n", i, now() - u->start, u->t.dir);
  return EXIT_OK;
}

static int parse(CliArgs *a, DriverOptions *c, const char **entry, Tuner *u) {
  while (!cli_args_done(a)) {
    if (cli_flag(a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_option(a, "--entry", NULL)) {
      *entry = a->value;
      continue;
    }
    uint64_t n;
    if (cli_option(a, "--budget", NULL)) {
      if (!cli_parse_u64(a->value, &n) || n < 1 || n > 86400)
        return cli_usage_error(a, "--budget expects seconds from 1 to 86400, got '%s'", a->value);
      u->budget = (double)n;
      continue;
    }
    if (cli_option(a, "--samples", NULL)) {
      if (!cli_parse_u64(a->value, &n) || n < 1 || n > TUNE_MAX_SAMPLES)
        return cli_usage_error(a, "--samples expects a count from 1 to %d, got '%s'",
                               TUNE_MAX_SAMPLES, a->value);
      u->samples = (int)n;
      continue;
    }
    if (cli_compile_option(a, c)) continue;
    if (cli_positional(a, &c->file) != EXIT_OK) return EXIT_USAGE;
  }
  if (a->failed) return EXIT_USAGE;
  if (!c->file) return cli_usage_error(a, "expected a model FILE");
  return EXIT_OK;
}

int cmd_tune(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  const char *entry = NULL;
  static Tuner u; /* large: the kernels' keys and micro-programs */
  memset(&u, 0, sizeof u);
  u.budget = 60, u.samples = 7, u.start = now();
  cli_args_init(&a, "tune", argc, argv);
  cli_compile_init(&c);
  int status = parse(&a, &c, &entry, &u);
  if (status) return status < 0 ? EXIT_OK : status;
  c.no_tune_cache = true; /* start from the cost model, whatever was tuned before */
  c.want_eval = false;
  u.o = &c;
  driver_tune_init(&u.t, c.target, c.no_tune_cache, c.tune_key, c.tune_choice);
  if (!driver_tune_dir(u.t.dir, sizeof u.t.dir)) {
    fprintf(stderr, "lathe tune: the tune cache is off (LATHE_NO_TUNE_CACHE or LATHE_NO_CACHE "
                    "set, or no HOME): nothing to write to\n");
    return EXIT_USER;
  }
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  if (!collect(&u, m, entry)) {
    fprintf(stderr, "lathe tune: %s has no entry '%s'\n", c.file, entry);
    module_free(m);
    return EXIT_USER;
  }
  fprintf(stderr, "tuning %d kernels of %s for %s on %s (budget %.0f s)\n", u.n_kernels, c.file,
          u.t.config.target, u.t.model, u.budget);
  status = tune_all(&u);
  module_free(m);
  return status;
}
