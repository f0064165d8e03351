/* driver/driver.c — the compile pipeline once, for the API and the CLI: read (or import) the
 * model, frontend, optional baked weights, the pass pipeline, then C. See driver/driver.h.
 *
 * Invariant: a failed step leaves its diagnostics in the caller's Diag and nothing allocated
 * behind (DriverResult.module is NULL; weights may hold an import's tensors, freed by
 * driver_result_fini).
 */
#include "driver/driver.h"
#include "driver/tune.h"

#include <stdlib.h>
#include <string.h>

#include "import/import.h"

void driver_options_init(DriverOptions *o) {
  memset(o, 0, sizeof *o);
  o->dtype = DT_F32;
  o->opt_level = 2;
  o->want_train = true;
  o->threads = 1;
}

void driver_result_fini(DriverResult *r) {
  if (r->module) module_free(r->module);
  rt_set_fini(&r->weights);
  free(r->dump);
  memset(r, 0, sizeof *r);
  rt_set_init(&r->weights);
}

bool driver_is_onnx(const char *file) {
  size_t n = file ? strlen(file) : 0;
  return n >= 5 && strcmp(file + n - 5, ".onnx") == 0;
}

/* o->file's ONNX bytes to .lathe text and its initializers */
static bool import_onnx(const DriverOptions *o, char **text, RtTensorSet *weights, Diag *d) {
  char *data = NULL;
  size_t len = 0;
  if (!rt_read_file(o->file, &data, &len, d)) return false;
  ImportOptions io;
  import_options_init(&io);
  io.defines = o->defines;
  io.n_defines = o->n_defines;
  io.loss = o->onnx_loss;
  io.optimizer = o->onnx_optimizer;
  if (o->onnx_max_batch) io.max_batch = o->onnx_max_batch;
  io.model_name = o->model_name;
  ImportResult r;
  bool ok = onnx_import(o->file, (const uint8_t *)data, len, &io, &r, d);
  free(data);
  if (!ok) return false;
  *text = r.text;
  r.text = NULL;
  rt_set_fini(weights);
  *weights = r.weights; /* moved: the result keeps an empty set */
  rt_set_init(&r.weights);
  import_result_fini(&r);
  return true;
}

bool driver_read_source(const DriverOptions *o, char **text, RtTensorSet *weights, Diag *d) {
  *text = NULL;
  if (!o->file) {
    diag_error(d, (SrcLoc){0}, "no model file given");
    return false;
  }
  if ((o->onnx_loss || o->onnx_optimizer) && !driver_is_onnx(o->file)) {
    diag_error(d, (SrcLoc){0},
               "--loss and --optimizer apply to .onnx models (a .lathe model "
               "has its own train block)");
    return false;
  }
  if (driver_is_onnx(o->file)) return import_onnx(o, text, weights, d);
  size_t len = 0;
  if (!rt_read_file(o->file, text, &len, d)) return false;
  if (frontend_check_text(o->file, *text, len, d)) return true;
  free(*text);
  *text = NULL;
  return false;
}

/* every --disable and --dump-after name must be a pass; --prefix a valid one (checked before
 * the passes run rather than after, in codegen) */
static bool check_names(const DriverOptions *o, Diag *d) {
  const char *why = o->prefix ? cg_prefix_error(o->prefix) : NULL;
  if (why) diag_error(d, (SrcLoc){0}, "invalid symbol prefix '%s': %s", o->prefix, why);
  for (int i = 0; i <= o->n_disabled; i++) {
    const char *name = i < o->n_disabled ? o->disabled[i] : o->dump_after;
    if (!name) continue;
    bool known = false;
    for (int p = 0; p < passes_count(); p++)
      known |= strcmp(passes_name(p), name) == 0;
    if (!known)
      diag_error(d, (SrcLoc){0}, "%s: unknown pass '%s'",
                 i < o->n_disabled ? "--disable" : "--dump-after", name);
  }
  return d->n_errors == 0;
}

static bool run_passes(const DriverOptions *o, DriverResult *r, Diag *d) {
  PassCtx pc;
  pass_ctx_init(&pc, d);
  DriverTune tune; /* kernel schedules: the CPU, the target, the tune cache (driver/tune.c) */
  driver_tune_init(&tune, o->target, o->no_tune_cache, o->tune_key, o->tune_choice);
  pc.sched = &tune.config;
  pc.opt_level = o->opt_level;
  pc.disabled = (const char **)o->disabled;
  pc.n_disabled = o->n_disabled;
  pc.dump_after = o->dump_after;
  pc.time_passes = o->time_passes;
  pc.want_grad = o->want_grad;
  pc.want_train = o->want_train;
  pc.want_eval = o->want_eval;
  pc.grad_step = o->grad_step;
  pc.want_split = o->want_split;
  bool ok = passes_run_module(r->module, &pc);
  _Static_assert(sizeof r->timings == sizeof pc.timings, "DriverResult.timings: PassCtx's");
  memcpy(r->timings, pc.timings, sizeof r->timings);
  r->dump = pc.dump;
  pc.dump = NULL;
  pass_ctx_fini(&pc);
  return ok;
}

/* train --lr / --reduce-lr-on-plateau: every step's optimizer learning rate in the Module's
 * train block, set (o->lr) or scaled (o->lr_scale) before the passes derive the step */
static bool set_lr(Module *m, const DriverOptions *c, Diag *d) {
  if (m->n_steps == 0) {
    diag_error(d, (SrcLoc){0}, "--lr: %s has no train block", m->source_file);
    return false;
  }
  for (int s = 0; s < m->n_steps; s++) {
    TrainStep *ts = &m->steps[s];
    int k = 0;
    while (k < ts->n_optim_args && strcmp(ts->optim_args[k].name, "lr") != 0)
      k++;
    if (k == ts->n_optim_args && c->lr <= 0) {
      diag_error(d, ts->loc,
                 "--reduce-lr-on-plateau needs the learning rate: give --lr or "
                 "write it in the train block (optimizer adam(lr = 1e-3))");
      return false;
    }
    if (k == ts->n_optim_args) { /* the optimizer's default lr: add an explicit one */
      OptimArg *args = arena_alloc(&m->arena, (size_t)(k + 1) * sizeof *args);
      if (!args) return false;
      if (k) memcpy(args, ts->optim_args, (size_t)k * sizeof *args);
      args[k] = (OptimArg){.name = "lr", .loc = ts->loc};
      ts->optim_args = args;
      ts->n_optim_args = k + 1;
    }
    if (c->lr > 0) ts->optim_args[k].value = c->lr;
    if (c->lr_scale > 0) ts->optim_args[k].value *= c->lr_scale;
  }
  return true;
}

bool driver_build(const DriverOptions *o, const char *text, DriverResult *r, Diag *d) {
  memset(r, 0, sizeof *r);
  rt_set_init(&r->weights);
  char *owned = NULL;
  if (!check_names(o, d)) return false;
  if (!text && !driver_read_source(o, &owned, &r->weights, d)) return false;
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = o->lib_dir;
  fo.defines = o->defines;
  fo.n_defines = o->n_defines;
  fo.float_dtype = o->dtype;
  fo.model_name = driver_is_onnx(o->file) ? NULL : o->model_name;
  r->module = frontend_compile(o->file ? o->file : "<string>", text ? text : owned, &fo, d);
  free(owned); /* frontend_compile keeps its own copy for diagnostics */
  bool distill = !o->bake && (o->want_train || o->want_grad || o->want_eval || o->want_split);
  bool ok = r->module && (!distill || driver_distill(r->module, o, d)) &&
            (!o->bake || driver_bake_weights(r->module, o->bake, d)) &&
            ((o->lr <= 0 && o->lr_scale <= 0) || set_lr(r->module, o, d)) && run_passes(o, r, d);
  if (!ok && r->module) module_free(r->module), r->module = NULL;
  return ok;
}

const char *driver_prefix(const Module *m, const DriverOptions *o) {
  return o->prefix ? o->prefix : m->name;
}

bool driver_emit(const Module *m, const DriverOptions *o, char **c_text, char **h_text, Diag *d) {
  CgOptions co;
  cg_options_init(&co);
  co.line_directives = o->line_directives;
  co.target = o->target;
  co.threads = o->threads;
  co.prefix = o->prefix;
  co.buckets = o->buckets;
  return cg_emit_c(m, &co, c_text, h_text, d);
}
