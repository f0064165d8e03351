/* cli/driver.c — the compile driver (driver/driver.h) as the CLI runs it: every failure prints
 * its diagnostics to stderr here, so commands only map false → exit 1; and the params/state
 * buffers of a loaded model (from a checkpoint, an imported .onnx file or <model>_init).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* the initializers of the .onnx file cli_build_module imported last (empty otherwise) */
static RtTensorSet onnx_weights;

void cli_compile_init(CliCompile *c) {
  driver_options_init(c);
}

static void print_timings(const DriverResult *r) {
  fprintf(stderr, "pass timings:\n");
  for (int p = 0; p < passes_count(); p++)
    fprintf(stderr, "  %-12s %8.3f ms\n", passes_name(p), r->timings[p] * 1e3);
}

static void forget_onnx_weights(void) {
  rt_set_fini(&onnx_weights);
}

Module *cli_build_module(const CliCompile *c) {
  Diag d;
  diag_init(&d);
  DriverResult r;
  bool ok = driver_build(c, NULL, &r, &d);
  if (ok && r.dump) fputs(r.dump, stdout);
  if (ok && c->time_passes) print_timings(&r);
  if (r.weights.n) {
    static bool registered;
    if (!registered) registered = atexit(forget_onnx_weights) == 0;
    rt_set_fini(&onnx_weights);
    onnx_weights = r.weights;
    rt_set_init(&r.weights);
  }
  Module *m = r.module;
  r.module = NULL;
  driver_result_fini(&r);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return m;
}

bool cli_emit(const Module *m, const CliCompile *c, char **c_text, char **h_text) {
  Diag d;
  diag_init(&d);
  bool ok = driver_emit(m, c, c_text, h_text, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok;
}

int cli_with_model(const CliCompile *c, bool (*run)(void *ctx, RtModel *model, Diag *d),
                   void *ctx) {
  Module *m = cli_build_module(c);
  if (!m) return EXIT_USER;
  RtModel model = {0};
  bool ok = cli_load(m, c, &model);
  module_free(m);
  if (!ok) return EXIT_USER;
  Diag d;
  diag_init(&d);
  ok = run(ctx, &model, &d);
  rt_model_close(&model);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}

bool cli_load(const Module *m, const CliCompile *c, RtModel *out) {
  char *c_text = NULL, *h_text = NULL;
  if (!cli_emit(m, c, &c_text, &h_text)) return false;
  Diag d;
  diag_init(&d);
  bool ok = rt_model_open_source(out, driver_prefix(m, c), c_text, h_text, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  free(c_text);
  free(h_text);
  return ok;
}

static bool load_checkpoint(CliWeights *w, const lathe_model_info *info, const char *ckpt,
                            Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(ckpt, &set, d) &&
            driver_weights_load(info, w->params, w->state, &set, ckpt, d);
  rt_set_fini(&set);
  return ok;
}

const RtTensorSet *cli_onnx_weights(void) {
  return onnx_weights.n ? &onnx_weights : NULL;
}

bool cli_weights_init(CliWeights *w, const lathe_model_info *info, const char *ckpt, uint64_t seed,
                      Diag *d) {
  w->params = rt_aligned_alloc(info->params_bytes);
  w->state = rt_aligned_alloc(info->state_bytes);
  if (!w->params || !w->state) {
    diag_error(d, (SrcLoc){0}, "out of memory allocating %zu bytes of params", info->params_bytes);
    return false;
  }
  info->init(w->params, w->state, seed);
  if (ckpt) return load_checkpoint(w, info, ckpt, d);
  if (onnx_weights.n) /* an imported .onnx: its initializers */
    return driver_weights_load(info, w->params, w->state, &onnx_weights, "the ONNX model", d);
  return true;
}

void cli_weights_fini(CliWeights *w) {
  free(w->params);
  free(w->state);
  w->params = w->state = NULL;
}

bool cli_weights_save(const CliWeights *w, const lathe_model_info *info, const char *path,
                      bool with_state, Diag *d) {
  return driver_weights_save(info, w->params, w->state, with_state, path, d);
}
