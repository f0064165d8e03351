/* cli/driver.c — the compile pipeline as the CLI runs it: file → Module → passes → C → .so,
 * and the params/state buffers of a loaded model (from a checkpoint or <model>_init).
 *
 * Every failure prints its diagnostics to stderr here, so commands only map false → exit 1.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void cli_compile_init(CliCompile *c) {
  memset(c, 0, sizeof *c);
  c->dtype = DT_F32;
  c->opt_level = 2;
  c->want_train = true;
  c->threads = 1;
}

static bool check_disabled(const CliCompile *c, Diag *d) {
  for (int i = 0; i < c->n_disabled; i++) {
    bool known = false;
    for (int p = 0; p < passes_count(); p++)
      known |= strcmp(passes_name(p), c->disabled[i]) == 0;
    if (!known) diag_error(d, (SrcLoc){0}, "--disable: unknown pass '%s'", c->disabled[i]);
  }
  if (c->dump_after) {
    bool known = false;
    for (int p = 0; p < passes_count(); p++)
      known |= strcmp(passes_name(p), c->dump_after) == 0;
    if (!known) diag_error(d, (SrcLoc){0}, "--dump-after: unknown pass '%s'", c->dump_after);
  }
  return d->n_errors == 0;
}

static void print_timings(const PassCtx *pc) {
  fprintf(stderr, "pass timings:\n");
  for (int p = 0; p < passes_count(); p++)
    fprintf(stderr, "  %-12s %8.3f ms\n", passes_name(p), pc->timings[p] * 1e3);
}

Module *cli_build_module(const CliCompile *c) {
  Diag d;
  diag_init(&d);
  char *text = NULL;
  size_t len = 0;
  Module *m = NULL;
  if ((c->onnx_loss || c->onnx_optimizer) && !cli_is_onnx(c->file))
    diag_error(&d, (SrcLoc){0}, "--loss and --optimizer apply to .onnx models (a .lathe model "
               "has its own train block)");
  bool read = check_disabled(c, &d) && (cli_is_onnx(c->file)
                                            ? cli_onnx_source(c, &text, &len, &d)
                                            : rt_read_file(c->file, &text, &len, &d));
  if (read) {
    FrontendOptions fo;
    frontend_options_init(&fo);
    fo.lib_dir = c->lib_dir;
    fo.defines = c->defines;
    fo.n_defines = c->n_defines;
    fo.float_dtype = c->dtype;
    m = frontend_compile(c->file, text, &fo, &d);
  }
  if (m && ((c->bake && !cli_bake_weights(m, c->bake, &d)) ||
            ((c->lr > 0 || c->lr_scale > 0) && !cli_set_lr(m, c, &d)))) {
    module_free(m);
    m = NULL;
  }
  if (m) {
    PassCtx pc;
    pass_ctx_init(&pc, &d);
    pc.opt_level = c->opt_level;
    pc.disabled = (const char **)c->disabled;
    pc.n_disabled = c->n_disabled;
    pc.dump_after = c->dump_after;
    pc.time_passes = c->time_passes;
    pc.want_grad = c->want_grad;
    pc.want_train = c->want_train;
    pc.want_eval = c->want_eval;
    pc.grad_step = c->grad_step;
    if (!passes_run_module(m, &pc)) {
      module_free(m);
      m = NULL;
    } else {
      if (pc.dump) fputs(pc.dump, stdout);
      if (c->time_passes) print_timings(&pc);
    }
    pass_ctx_fini(&pc);
  }
  diag_flush(&d, stderr);
  diag_fini(&d);
  free(text);
  return m;
}

bool cli_emit(const Module *m, const CliCompile *c, char **c_text, char **h_text) {
  Diag d;
  diag_init(&d);
  CgOptions o;
  cg_options_init(&o);
  o.line_directives = c->line_directives;
  o.target = c->target;
  o.threads = c->threads;
  bool ok = cg_emit_c(m, &o, c_text, h_text, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok;
}

bool cli_load(const Module *m, const CliCompile *c, RtModel *out) {
  char *c_text = NULL, *h_text = NULL;
  if (!cli_emit(m, c, &c_text, &h_text)) return false;
  Diag d;
  diag_init(&d);
  bool ok = rt_model_open_source(out, m->name, c_text, h_text, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  free(c_text);
  free(h_text);
  return ok;
}

void *cli_aligned_alloc(size_t bytes) {
  size_t n = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, n ? n : 64);
  if (p) memset(p, 0, n ? n : 64);
  return p;
}

/* Copies one checkpoint tensor into its slot after checking dtype and shape. */
static bool load_one(const lathe_tensor_info *ti, const Tensor *t, char *base, const char *ckpt,
                     Diag *d) {
  Shape want = {0};
  want.rank = ti->rank;
  for (int k = 0; k < ti->rank; k++)
    want.dim[k] = ti->shape[k];
  if ((int)t->dtype != ti->dtype || !shape_equal(&t->shape, &want)) {
    char a[200], b[200];
    diag_error(d, (SrcLoc){0}, "%s: tensor '%s' is %s%s, but the model expects %s%s", ckpt,
               ti->name, dtype_name(t->dtype), shape_str(&t->shape, a, sizeof a),
               dtype_name((DType)ti->dtype), shape_str(&want, b, sizeof b));
    return false;
  }
  memcpy(base + ti->offset, t->data, ti->bytes);
  return true;
}

static bool load_checkpoint(CliWeights *w, const lathe_model_info *info, const char *ckpt,
                            Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(ckpt, &set, d);
  for (int i = 0; ok && i < info->n_params; i++) {
    const Tensor *t = rt_set_find(&set, info->params[i].name);
    if (!t) {
      diag_error(d, (SrcLoc){0}, "%s: no tensor '%s' (the model has %d params)", ckpt,
                 info->params[i].name, info->n_params);
      ok = false;
    } else {
      ok = load_one(&info->params[i], t, w->params, ckpt, d);
    }
  }
  /* optimizer state is optional in a checkpoint: present → exact resume */
  for (int i = 0; ok && i < info->n_states; i++) {
    const Tensor *t = rt_set_find(&set, info->states[i].name);
    if (t) ok = load_one(&info->states[i], t, w->state, ckpt, d);
  }
  rt_set_fini(&set);
  return ok;
}

bool cli_weights_init(CliWeights *w, const lathe_model_info *info, const char *ckpt, uint64_t seed,
                      Diag *d) {
  w->params = cli_aligned_alloc(info->params_bytes);
  w->state = cli_aligned_alloc(info->state_bytes);
  if (!w->params || !w->state) {
    diag_error(d, (SrcLoc){0}, "out of memory allocating %zu bytes of params", info->params_bytes);
    return false;
  }
  info->init(w->params, w->state, seed);
  if (!ckpt) ckpt = cli_onnx_weights(); /* an imported .onnx: its initializers */
  return ckpt ? load_checkpoint(w, info, ckpt, d) : true;
}

void cli_weights_fini(CliWeights *w) {
  free(w->params);
  free(w->state);
  w->params = w->state = NULL;
}

static void add_tensors(RtTensorSet *set, const lathe_tensor_info *ts, int n, const char *base) {
  for (int i = 0; i < n; i++) {
    Shape s = {0};
    s.rank = ts[i].rank;
    for (int k = 0; k < s.rank; k++)
      s.dim[k] = ts[i].shape[k];
    Tensor *t = rt_set_add(set, ts[i].name, (DType)ts[i].dtype, &s);
    if (t) memcpy(t->data, base + ts[i].offset, ts[i].bytes);
  }
}

bool cli_weights_save(const CliWeights *w, const lathe_model_info *info, const char *path,
                      bool with_state, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  add_tensors(&set, info->params, info->n_params, w->params);
  if (with_state) add_tensors(&set, info->states, info->n_states, w->state);
  bool ok = rt_safetensors_write(path, &set, d);
  rt_set_fini(&set);
  return ok;
}
