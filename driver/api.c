/* driver/api.c — the public embedding API (include/lathe/lathe.h): the compile driver
 * (driver/driver.h: .lathe or .onnx → passes → C → JIT or cc) behind a handful of calls, and
 * tensors passed by name.
 *
 * Invariants: a lathe_model always has its code loaded, its params/state/workspace allocated
 * (64-byte aligned) and its Diag `err` holding only the messages of the last failed call.
 * Nothing here prints or exits; every failure is a diagnostic in `err` (or `*errors`).
 */
#include "lathe/lathe.h"

#include <stdlib.h>
#include <string.h>

#include "driver/api_model.h"
#include "driver/driver.h"

enum { API_MAX_ARGS = 256 };

void lathe_options_init(lathe_options *o) {
  memset(o, 0, sizeof *o);
  o->dtype = LATHE_F32;
  o->opt_level = 2;
  o->want_train = 1;
  o->threads = 1;
}

char *api_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

/* forget the messages of earlier calls, keep the registered sources */
static void api_clear(Diag *d) {
  d->len = 0;
  if (d->buf) d->buf[0] = '\0';
  d->n_errors = d->n_warnings = 0;
}

static int api_fail(lathe_model *m, const char *fmt, const char *a, const char *b) {
  diag_error(&m->err, (SrcLoc){0}, fmt, a, b);
  return -1;
}

/* "NAME=VALUE" strings to Defines; names are copied into the model (they must outlive it) */
static bool parse_defines(const lathe_options *o, DriverOptions *dro, lathe_model *m) {
  Diag *d = &m->err;
  if (o->n_defines > DRIVER_MAX_DEFINES) {
    diag_error(d, (SrcLoc){0}, "too many defines (%d, at most %d)", o->n_defines,
               DRIVER_MAX_DEFINES);
    return false;
  }
  for (int i = 0; i < o->n_defines; i++) {
    const char *s = o->defines[i], *eq = strchr(s, '=');
    Define def = {0};
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof m->define_names[i] ||
        !frontend_define_value(eq + 1, &def)) {
      diag_error(d, (SrcLoc){0}, "define '%s': expected NAME=INTEGER or NAME=dynamic(max=M)", s);
      return false;
    }
    memcpy(m->define_names[i], s, (size_t)(eq - s));
    m->define_names[i][eq - s] = '\0';
    def.name = m->define_names[i];
    dro->defines[i] = def;
  }
  dro->n_defines = o->n_defines;
  return true;
}

/* The public options as the driver's. */
static bool api_driver_options(lathe_model *m, const lathe_options *o, DriverOptions *dro) {
  driver_options_init(dro);
  if (o->dtype != LATHE_F32 && o->dtype != LATHE_F64) {
    diag_error(&m->err, (SrcLoc){0}, "dtype must be LATHE_F32 or LATHE_F64, got %d", o->dtype);
    return false;
  }
  dro->file = m->path;
  dro->lib_dir = o->lib_dir;
  dro->dtype = o->dtype == LATHE_F64 ? DT_F64 : DT_F32;
  dro->model_name = o->model_name;
  dro->opt_level = o->opt_level;
  dro->want_grad = o->want_grad != 0;
  dro->want_train = o->want_train != 0;
  dro->want_eval = o->want_eval != 0;
  dro->prefix = o->prefix;
  dro->want_split = o->want_split != 0;
  return parse_defines(o, dro, m);
}

/* Frontend and passes into m->module (source: the text of m->path, or NULL to read it). */
static bool api_build_module(lathe_model *m, const lathe_options *o, const char *source,
                             RtTensorSet *weights) {
  DriverOptions dro;
  if (!api_driver_options(m, o, &dro)) return false;
  DriverResult r;
  bool ok = driver_build(&dro, source, &r, &m->err);
  m->module = r.module;
  r.module = NULL;
  *weights = r.weights; /* an ONNX file's initializers, loaded after init */
  rt_set_init(&r.weights);
  driver_result_fini(&r);
  return ok;
}

bool api_buffers(lathe_model *m, uint64_t seed) {
  const lathe_model_info *info = m->loaded.info;
  size_t ws = info->workspace_bytes;
  for (int i = 0; i < info->n_entries; i++)
    if (info->entries[i].workspace_bytes > ws) ws = info->entries[i].workspace_bytes;
  m->params = rt_aligned_alloc(info->params_bytes);
  m->state = rt_aligned_alloc(info->state_bytes);
  m->ws = rt_aligned_alloc(ws);
  if (!m->params || !m->state || !m->ws) {
    diag_error(&m->err, (SrcLoc){0}, "out of memory allocating the buffers of '%s'", info->name);
    return false;
  }
  info->init(m->params, m->state, seed);
  return true;
}

/* C, load, buffers, init, then the given weights (an imported ONNX file's). */
static bool api_load(lathe_model *m, const lathe_options *o, const RtTensorSet *weights) {
  DriverOptions dro;
  driver_options_init(&dro);
  dro.threads = o->threads > 1 ? o->threads : 1;
  dro.prefix = o->prefix;
  char *h_text = NULL;
  if (!driver_emit(m->module, &dro, &m->c_text, &h_text, &m->err)) return false;
  DriverBackend b = o->backend == LATHE_BACKEND_CC    ? DRIVER_BACKEND_CC
                    : o->backend == LATHE_BACKEND_JIT ? DRIVER_BACKEND_JIT
                                                      : DRIVER_BACKEND_AUTO;
  const char *prefix = driver_prefix(m->module, &dro);
  bool ok = driver_loaded_open_source(&m->loaded, b, prefix, m->c_text, h_text, &m->err);
  free(h_text);
  if (!ok) return false;
  const lathe_model_info *info = m->loaded.info;
  return api_buffers(m, o->seed) && (weights->n == 0 ||
         driver_weights_load(info, m->params, m->state, weights, m->path, &m->err));
}

/* source NULL: read (or import) the file path */
static lathe_model *api_compile(const char *path, const char *source, const lathe_options *o,
                                char **errors) {
  lathe_options defaults;
  if (!o) lathe_options_init(&defaults), o = &defaults;
  if (errors) *errors = NULL;
  lathe_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  diag_init(&m->err);
  RtTensorSet weights;
  rt_set_init(&weights);
  m->path = api_strdup(path);
  bool ok = m->path && api_build_module(m, o, source, &weights) && api_load(m, o, &weights);
  rt_set_fini(&weights);
  if (ok) return m;
  if (errors) *errors = api_strdup(m->err.n_errors ? diag_text(&m->err) : "out of memory\n");
  lathe_free(m);
  return NULL;
}

lathe_model *lathe_compile_string(const char *name, const char *source, const lathe_options *o,
                                  char **errors) {
  return api_compile(name ? name : "<string>", source ? source : "", o, errors);
}

lathe_model *lathe_compile_file(const char *path, const lathe_options *o, char **errors) {
  return api_compile(path ? path : "", NULL, o, errors);
}
void lathe_free(lathe_model *m) {
  if (!m) return;
  driver_loaded_close(&m->loaded);
  if (m->module) module_free(m->module);
  free(m->c_text), free(m->path);
  free(m->params), free(m->state), free(m->ws);
  diag_fini(&m->err);
  free(m);
}

void lathe_string_free(char *s) {
  free(s);
}

const lathe_model_info *lathe_info(const lathe_model *m) {
  return m->loaded.info;
}

const char *lathe_backend(const lathe_model *m) {
  return driver_backend_name(m->loaded.backend);
}

int lathe_wait_optimized(lathe_model *m) {
  return m->loaded.jit && !jit_wait_optimized(m->loaded.jit) ? -1 : 0;
}

/* The whole params and state buffers, laid out as lathe_info(m) says: what the runtime
 * trainer of lathe/train.h (lathe_fit, lathe_evaluate, lathe_predict) takes beside the info.
 * Accessors rather than lathe_model_fit/... wrappers, so train.h stays the one trainer API
 * (the Python package calls it directly) and nothing of its options is mirrored here. */
void *lathe_params(lathe_model *m) {
  return m->params;
}

void *lathe_state(lathe_model *m) {
  return m->state;
}

const char *lathe_error(const lathe_model *m) {
  return diag_text(&m->err);
}

void lathe_init(lathe_model *m, uint64_t seed) {
  m->loaded.info->init(m->params, m->state, seed);
}

void *lathe_tensor_data(lathe_model *m, const char *name, const lathe_tensor_info **info) {
  const lathe_model_info *mi = m->loaded.info;
  for (int i = 0; i < mi->n_params; i++)
    if (strcmp(mi->params[i].name, name) == 0) {
      if (info) *info = &mi->params[i];
      return (char *)m->params + mi->params[i].offset;
    }
  for (int i = 0; i < mi->n_states; i++)
    if (strcmp(mi->states[i].name, name) == 0) {
      if (info) *info = &mi->states[i];
      return (char *)m->state + mi->states[i].offset;
    }
  return NULL;
}

/* dtype and shape of a caller's tensor against the descriptor's */
/* t against argument ti at run-time batch `batch` (a dynamic axis 0 is ti->dyn * batch) */
static bool api_check_tensor(lathe_model *m, const lathe_tensor *t, const lathe_tensor_info *ti,
                             int64_t batch) {
  bool same = t->dtype == ti->dtype && t->rank == ti->rank && t->data != NULL;
  for (int k = 0; same && k < ti->rank; k++)
    same = t->shape && t->shape[k] == (k == 0 && ti->dyn ? ti->dyn * batch : ti->shape[k]);
  if (same) return true;
  char got[200] = "", want[200] = "";
  int n = 0;
  for (int k = 0; k < ti->rank && n < 180; k++)
    n += k == 0 && ti->dyn
             ? snprintf(want + n, sizeof want - (size_t)n, "%lld (%lld n, n <= %lld)",
                        (long long)(ti->dyn * batch), (long long)ti->dyn,
                        (long long)(ti->shape[0] / ti->dyn))
             : snprintf(want + n, sizeof want - (size_t)n, "%s%lld", k ? ", " : "",
                        (long long)ti->shape[k]);
  n = 0;
  for (int k = 0; t->shape && k < t->rank && k < IR_MAX_RANK && n < 180; k++)
    n += snprintf(got + n, sizeof got - (size_t)n, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
  const char *gd = t->dtype >= 0 && t->dtype < DT_COUNT ? dtype_name((DType)t->dtype) : "?";
  diag_error(&m->err, (SrcLoc){0}, "tensor '%s' is %s[%s]%s, but the model expects %s[%s]",
             ti->name, gd, got, t->data ? "" : " with no data", dtype_name((DType)ti->dtype), want);
  return false;
}

static const lathe_tensor *api_find(const lathe_tensor *ts, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (ts[i].name && strcmp(ts[i].name, name) == 0) return &ts[i];
  return NULL;
}

/* every caller tensor must name an argument of the entry with that role */
static bool api_check_names(lathe_model *m, const lathe_entry_info *e, const lathe_tensor *ts,
                            int n, int role) {
  for (int i = 0; i < n; i++) {
    bool found = false;
    for (int k = 0; k < e->n_args && !found; k++)
      found =
          e->args[k].role == role && ts[i].name && strcmp(e->args[k].tensor->name, ts[i].name) == 0;
    if (!found)
      api_fail(m,
               role == LATHE_ARG_INPUT ? "entry '%s' has no input '%s'"
                                       : "entry '%s' has no output '%s'",
               e->name, ts[i].name ? ts[i].name : "(null)");
  }
  return m->err.n_errors == 0;
}

/* The run-time batch n of a call (docs/dynamic-batch.md): the leading extent of the first
 * dynamic input over its k, within [1, bound]; 0 for a static entry. The other tensors are
 * then checked against it. */
static bool api_batch(lathe_model *m, const lathe_entry_info *e, const lathe_tensor *in, int n_in,
                      int64_t *batch) {
  *batch = 0;
  for (int k = 0; k < e->n_args; k++) {
    const lathe_tensor_info *ti = e->args[k].tensor;
    if (e->args[k].role != LATHE_ARG_INPUT || !ti->dyn) continue;
    const lathe_tensor *t = api_find(in, n_in, ti->name);
    if (!t || t->rank < 1 || !t->shape) return true; /* api_bind reports it */
    int64_t bound = ti->shape[0] / ti->dyn;
    if (t->shape[0] % ti->dyn || t->shape[0] < ti->dyn || t->shape[0] > ti->shape[0]) {
      diag_error(&m->err, (SrcLoc){0},
                 "entry '%s': input '%s' has %lld rows; the model takes a multiple of %lld, "
                 "at most %lld (the bound %lld of its run-time batch)",
                 e->name, ti->name, (long long)t->shape[0], (long long)ti->dyn,
                 (long long)ti->shape[0], (long long)bound);
      return false;
    }
    *batch = t->shape[0] / ti->dyn;
    return true;
  }
  return true;
}

/* A training entry (train, grad) at a batch too small for the model (Module.train_min_n):
 * a batch norm with one value per channel per sample has no variance over one sample, and
 * the generated code would divide by n - 1 = 0 (its running variance turning NaN), so the
 * call is refused before it changes anything, as PyTorch refuses it. A model opened from a
 * shared object has no Module and no such check (docs/dynamic-batch.md). */
static bool api_train_batch(lathe_model *m, const lathe_entry_info *e, int64_t batch) {
  const Module *mod = m->module;
  if (!mod || batch == 0 || batch >= mod->train_min_n ||
      (e->kind != LATHE_ENTRY_TRAIN && e->kind != LATHE_ENTRY_GRAD))
    return true;
  const char *why = mod->train_min_why ? mod->train_min_why : "?";
  const char *dot = strrchr(why, '.');
  diag_error(&m->err, (SrcLoc){0},
             "entry '%s': a batch of %lld cannot train this model: batch norm '%.*s' sees one "
             "value per channel per sample, and its variance needs at least %lld samples "
             "(PyTorch: \"Expected more than 1 value per channel when training\"); train on %lld "
             "or more rows, or call forward",
             e->name, (long long)batch, (int)(dot ? dot - why : (long)strlen(why)), why,
             (long long)mod->train_min_n, (long long)mod->train_min_n);
  return false;
}

/* Points args[k] at each argument's storage; outputs the caller did not ask for get scratch
 * buffers in scratch[k]. `batch` is the run-time batch (0: static), passed by address. */
static bool api_bind(lathe_model *m, const lathe_entry_info *e, const lathe_tensor *in, int n_in,
                     const lathe_tensor *out, int n_out, void **args, void **scratch,
                     int64_t *batch) {
  for (int k = 0; k < e->n_args; k++) {
    const lathe_arg_info *a = &e->args[k];
    const lathe_tensor *t = NULL;
    switch (a->role) {
    case LATHE_ARG_PARAMS:
      args[k] = m->params;
      break;
    case LATHE_ARG_STATE:
      args[k] = m->state;
      break;
    case LATHE_ARG_WORKSPACE:
      args[k] = m->ws;
      break;
    case LATHE_ARG_INPUT:
      t = api_find(in, n_in, a->tensor->name);
      if (!t) return api_fail(m, "entry '%s': missing input '%s'", e->name, a->tensor->name) == 0;
      if (!api_check_tensor(m, t, a->tensor, *batch)) return false;
      args[k] = t->data;
      break;
    case LATHE_ARG_OUTPUT:
      t = api_find(out, n_out, a->tensor->name);
      if (t && !api_check_tensor(m, t, a->tensor, *batch)) return false;
      args[k] = t ? t->data : (scratch[k] = rt_aligned_alloc(a->tensor->bytes));
      if (!args[k])
        return api_fail(m, "entry '%s': out of memory for '%s'", e->name, a->tensor->name) == 0;
      break;
    case LATHE_ARG_BATCH:
      args[k] = batch;
      break;
    case LATHE_ARG_HOOKS: /* no data-parallel transport: one replica */
      args[k] = NULL;
      break;
    default:
      return api_fail(m, "entry '%s': unknown argument role of '%s'", e->name, "") == 0;
    }
  }
  return true;
}

int lathe_call(lathe_model *m, const char *entry, const lathe_tensor *inputs, int n_inputs,
               const lathe_tensor *outputs, int n_outputs, double *loss) {
  api_clear(&m->err);
  const lathe_entry_info *e = driver_loaded_entry(&m->loaded, entry ? entry : "");
  if (!e) {
    diag_error(&m->err, (SrcLoc){0},
               "model '%s' has no entry point '%s'; it has:", m->loaded.info->name,
               entry ? entry : "(null)");
    for (int i = 0; i < m->loaded.info->n_entries; i++)
      diag_note(&m->err, (SrcLoc){0}, "entry '%s'", m->loaded.info->entries[i].name);
    return -1;
  }
  if (e->n_args > API_MAX_ARGS)
    return api_fail(m, "entry '%s' has too many arguments%s", e->name, "");
  void *args[API_MAX_ARGS] = {0}, *scratch[API_MAX_ARGS] = {0};
  int64_t batch = 0;
  bool ok = api_check_names(m, e, inputs, n_inputs, LATHE_ARG_INPUT) &&
            api_check_names(m, e, outputs, n_outputs, LATHE_ARG_OUTPUT) &&
            api_batch(m, e, inputs, n_inputs, &batch) && api_train_batch(m, e, batch) &&
            api_bind(m, e, inputs, n_inputs, outputs, n_outputs, args, scratch, &batch);
  double ret = 0;
  ok = ok && driver_loaded_call(&m->loaded, e, args, &ret, &m->err);
  if (ok && loss) *loss = ret;
  for (int k = 0; k < e->n_args; k++)
    free(scratch[k]);
  return ok ? 0 : -1;
}

int lathe_load(lathe_model *m, const char *path) {
  api_clear(&m->err);
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(path, &set, &m->err) &&
            driver_weights_load(m->loaded.info, m->params, m->state, &set, path, &m->err);
  rt_set_fini(&set);
  return ok ? 0 : -1;
}

int lathe_save(lathe_model *m, const char *path, int with_state) {
  api_clear(&m->err);
  return driver_weights_save(m->loaded.info, m->params, m->state, with_state != 0, path, &m->err)
             ? 0
             : -1;
}

char *lathe_c_source(const lathe_model *m) {
  return m->c_text ? api_strdup(m->c_text) : NULL;
}

char *lathe_ir_text(lathe_model *m, const char *entry) {
  api_clear(&m->err);
  for (int i = 0; m->module && i < m->module->n_entries; i++)
    if (strcmp(m->module->entries[i]->name, entry) == 0) return ir_print(m->module->entries[i]);
  api_fail(m, "model '%s' has no entry point '%s'", m->loaded.info->name, entry);
  return NULL;
}
