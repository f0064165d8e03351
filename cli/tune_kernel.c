/* cli/tune_kernel.c — one kernel of `lathe tune` (cli/cmd_tune.c) as a micro-program: its
 * source text, built with a given schedule forced on it (DriverOptions.tune_key), loaded by
 * the backend of the day (JIT, else cc) and timed.
 *
 * A micro-program is a model of one op over inputs of the kernel's shapes: `a @ b` (with
 * transpose() where the kernel reads an operand transposed, which the layout pass folds into
 * the matmul's flags) or `conv(x, w, ...)`; its forward entry must hold a node with the
 * kernel's key (checked), so what is timed is what a compile of the whole model will emit.
 * Timing: thread CPU time (CLOCK_THREAD_CPUTIME_ID) of back-to-back calls, a sample being
 * enough calls for about 2 ms, the median of the samples.
 */
#include "tune.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* matmul: `model tune(a, b) { output c = a @ b }`, operands stored as the kernel reads them */
static void matmul_source(const Graph *g, const Node *n, char *buf, size_t size) {
  const Shape *a = &g->nodes[n->in[0]].shape, *b = &g->nodes[n->in[1]].shape;
  snprintf(buf, size,
           "model tune(a: f32[%lld, %lld], b: f32[%lld, %lld]) {\n"
           "  output c = %s @ %s\n}\n",
           (long long)a->dim[0], (long long)a->dim[1], (long long)b->dim[0], (long long)b->dim[1],
           n->attr.matmul.trans_a ? "transpose(a)" : "a",
           n->attr.matmul.trans_b ? "transpose(b)" : "b");
}

bool tune_kernel_source(const Graph *g, NodeId id, char *buf, size_t size) {
  const Node *n = &g->nodes[id];
  if (n->op == OP_MATMUL) {
    matmul_source(g, n, buf, size);
    return true;
  }
  if (n->op != OP_CONV2D) return false; /* the backward convolutions: no micro-program yet */
  const Shape *x = &g->nodes[n->in[0]].shape, *w = &g->nodes[n->in[1]].shape;
  const struct IrConvAttr *a = &n->attr.conv;
  snprintf(buf, size,
           "model tune(x: f32[%lld, %lld, %lld, %lld], w: f32[%lld, %lld, %lld, %lld]) {\n"
           "  output y = conv(x, w, stride = [%d, %d], padding = [%d, %d, %d, %d], "
           "dilation = [%d, %d], groups = %d)\n}\n",
           (long long)x->dim[0], (long long)x->dim[1], (long long)x->dim[2], (long long)x->dim[3],
           (long long)w->dim[0], (long long)w->dim[1], (long long)w->dim[2], (long long)w->dim[3],
           a->stride[0], a->stride[1], a->pad[0], a->pad[1], a->pad[2], a->pad[3], a->dilation[0],
           a->dilation[1], a->groups);
  return true;
}

/* whether m's forward entry has a node keyed key whose schedule is the tuned one */
static bool applied(const Module *m, const DriverTune *t, const char *key) {
  for (int e = 0; e < m->n_entries; e++) {
    const Graph *g = m->entries[e];
    for (NodeId id = 0; id < g->n_nodes; id++) {
      char k[TUNE_KEY_MAX];
      if (!passes_sched_key(g, id, &t->config, k, sizeof k) || strcmp(k, key) != 0) continue;
      const Node *n = &g->nodes[id];
      return n->op == OP_MATMUL ? n->attr.matmul.sched.from == IR_SCHED_TUNED
                                : n->attr.conv.algo_from == IR_SCHED_TUNED;
    }
  }
  return false;
}

bool tune_kernel_build(const DriverOptions *base, const char *source, const char *key,
                       const SchedChoice *choice, DriverLoaded *l, Diag *d) {
  DriverOptions o = *base;
  o.file = "tune-kernel.lathe";
  o.want_train = o.want_grad = o.want_eval = o.want_split = false;
  o.bake = NULL, o.prefix = NULL, o.dump_after = NULL, o.time_passes = false;
  o.no_tune_cache = true, o.tune_key = key, o.tune_choice = *choice;
  o.threads = 1; /* timed on one thread (thread CPU time); the key does not name threads */
  DriverResult r;
  char *c_text = NULL, *h_text = NULL;
  DriverTune t;
  driver_tune_init(&t, o.target, o.no_tune_cache, o.tune_key, o.tune_choice);
  bool ok = driver_build(&o, source, &r, d);
  if (ok && !applied(r.module, &t, key)) {
    diag_error(d, (SrcLoc){0}, "internal error: the micro-program of '%s' lost its schedule", key);
    ok = false;
  }
  ok = ok && driver_emit(r.module, &o, &c_text, &h_text, d) &&
       driver_loaded_open_source(l, DRIVER_BACKEND_AUTO, driver_prefix(r.module, &o), c_text,
                                 h_text, d);
  /* time the JIT's optimized tier, never its -O0 baseline (docs/jit.md "The tiered compile") */
  if (ok && l->jit && !jit_wait_optimized(l->jit)) {
    diag_error(d, (SrcLoc){0}, "the micro-program of '%s' did not compile optimized", key);
    ok = false;
  }
  free(c_text);
  free(h_text);
  driver_result_fini(&r);
  return ok;
}

/* ---- timing ---------------------------------------------------------------------------------- */

static double thread_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* the arguments of e: inputs filled from a fixed generator, everything 64-byte aligned;
 * out: the output's buffer and its float count */
static bool make_args(const lathe_model_info *info, const lathe_entry_info *e, void **args,
                      float **out, size_t *n_out) {
  uint32_t s = 12345;
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    size_t bytes = a->tensor                        ? a->tensor->bytes
                   : a->role == LATHE_ARG_WORKSPACE ? e->workspace_bytes
                   : a->role == LATHE_ARG_PARAMS    ? info->params_bytes
                   : a->role == LATHE_ARG_STATE     ? info->state_bytes
                                                    : 0;
    args[i] = aligned_alloc(64, (bytes + 64) / 64 * 64);
    if (!args[i]) return false;
    memset(args[i], 0, (bytes + 64) / 64 * 64);
    if (a->role == LATHE_ARG_INPUT && a->tensor->dtype == LATHE_F32)
      for (size_t k = 0; k < bytes / 4; k++) {
        s = s * 1664525u + 1013904223u;
        ((float *)args[i])[k] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
      }
    if (a->role == LATHE_ARG_OUTPUT) *out = args[i], *n_out = bytes / 4;
  }
  return true;
}

bool tune_kernel_time(const DriverLoaded *l, int samples, double *median_us, float **result,
                      size_t *n_result, Diag *d) {
  const lathe_entry_info *e = driver_loaded_entry(l, "forward");
  void *args[TUNE_MAX_ARGS] = {0};
  float *out = NULL;
  size_t n_out = 0;
  bool ok = e && e->n_args <= TUNE_MAX_ARGS && make_args(l->info, e, args, &out, &n_out) && out;
  double times[TUNE_MAX_SAMPLES];
  if (samples > TUNE_MAX_SAMPLES) samples = TUNE_MAX_SAMPLES;
  double ret = 0;
  ok = ok && driver_loaded_call(l, e, args, &ret, d); /* warm: caches, pages, the JIT's lazy */
  double t0 = thread_seconds();
  ok = ok && driver_loaded_call(l, e, args, &ret, d);
  double once = thread_seconds() - t0;
  int reps = once > 2e-3 ? 1 : once <= 1e-7 ? 1000 : (int)(2e-3 / once) + 1;
  for (int s = 0; ok && s < samples; s++) {
    t0 = thread_seconds();
    for (int r = 0; ok && r < reps; r++)
      ok = driver_loaded_call(l, e, args, &ret, d);
    times[s] = (thread_seconds() - t0) / reps;
  }
  if (ok) {
    qsort(times, (size_t)samples, sizeof times[0], compare_doubles);
    *median_us = times[samples / 2] * 1e6;
    *result = malloc(n_out * sizeof **result);
    ok = *result != NULL;
    if (ok) memcpy(*result, out, n_out * sizeof **result), *n_result = n_out;
  } else if (!e) {
    diag_error(d, (SrcLoc){0}, "internal error: the micro-program has no forward entry");
  }
  for (int i = 0; e && i < e->n_args && i < TUNE_MAX_ARGS; i++)
    free(args[i]);
  return ok;
}

bool tune_kernel_agrees(const float *ref, const float *got, size_t n) {
  double scale = 1.0, worst = 0.0;
  for (size_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(ref[i]));
  for (size_t i = 0; i < n; i++) {
    double diff = fabs((double)ref[i] - (double)got[i]);
    if (!(diff <= worst)) worst = diff; /* NaN stays the worst */
  }
  return worst <= 1e-3 * scale;
}
