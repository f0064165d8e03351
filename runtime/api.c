/* runtime/api.c — the public embedding API (include/lathe/lathe.h): the whole pipeline
 * (frontend → passes → C → JIT or cc) behind a handful of calls, and tensors passed by name.
 *
 * Invariants: a lathe_model always has its code loaded, its params/state/workspace allocated
 * (64-byte aligned) and its Diag `err` holding only the messages of the last failed call.
 * Nothing here prints or exits; every failure is a diagnostic in `err` (or `*errors`).
 */
#include "lathe/lathe.h"

#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/model_load.h"

enum { API_MAX_DEFINES = 64, API_MAX_ARGS = 256 };

struct lathe_model {
  Module *module;            /* after the pass pipeline: for lathe_ir_text */
  RtLoaded loaded;           /* the code and its descriptor */
  char *c_text;              /* the generated C */
  char *path, *source;       /* copies: diagnostics may point at them */
  void *params, *state, *ws; /* ws: the largest workspace of any entry */
  Diag err;                  /* diagnostics of the last failed call */
};

void lathe_options_init(lathe_options *o) {
  memset(o, 0, sizeof *o);
  o->dtype = LATHE_F32;
  o->opt_level = 2;
  o->want_train = 1;
}

static char *api_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

static void *api_alloc(size_t bytes) {
  size_t n = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, n ? n : 64);
  if (p) memset(p, 0, n ? n : 64);
  return p;
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

/* "NAME=VALUE" strings to Defines; names point into the option strings */
static bool parse_defines(const lathe_options *o, Define *out, char names[][128], Diag *d) {
  if (o->n_defines > API_MAX_DEFINES) {
    diag_error(d, (SrcLoc){0}, "too many defines (%d, at most %d)", o->n_defines, API_MAX_DEFINES);
    return false;
  }
  for (int i = 0; i < o->n_defines; i++) {
    const char *s = o->defines[i], *eq = strchr(s, '=');
    char *end = NULL;
    long long v = eq ? strtoll(eq + 1, &end, 10) : 0;
    if (!eq || eq == s || (size_t)(eq - s) >= 128 || !eq[1] || *end) {
      diag_error(d, (SrcLoc){0}, "define '%s': expected NAME=INTEGER", s);
      return false;
    }
    memcpy(names[i], s, (size_t)(eq - s));
    names[i][eq - s] = '\0';
    out[i] = (Define){names[i], (int64_t)v};
  }
  return true;
}

/* Frontend and passes into m->module. */
static bool api_build_module(lathe_model *m, const lathe_options *o) {
  Define defines[API_MAX_DEFINES];
  char names[API_MAX_DEFINES][128];
  if (o->dtype != LATHE_F32 && o->dtype != LATHE_F64) {
    diag_error(&m->err, (SrcLoc){0}, "dtype must be LATHE_F32 or LATHE_F64, got %d", o->dtype);
    return false;
  }
  if (!parse_defines(o, defines, names, &m->err)) return false;
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = o->lib_dir;
  fo.defines = defines;
  fo.n_defines = o->n_defines;
  fo.float_dtype = o->dtype == LATHE_F64 ? DT_F64 : DT_F32;
  fo.model_name = o->model_name;
  m->module = frontend_compile(m->path, m->source, &fo, &m->err);
  if (!m->module) return false;
  PassCtx pc;
  pass_ctx_init(&pc, &m->err);
  pc.opt_level = o->opt_level;
  pc.want_grad = o->want_grad != 0;
  pc.want_train = o->want_train != 0;
  bool ok = passes_run_module(m->module, &pc);
  pass_ctx_fini(&pc);
  return ok;
}

/* C, load, buffers, init. */
static bool api_load(lathe_model *m, const lathe_options *o) {
  CgOptions co;
  cg_options_init(&co);
  char *h_text = NULL;
  if (!cg_emit_c(m->module, &co, &m->c_text, &h_text, &m->err)) return false;
  RtBackend b = o->backend == LATHE_BACKEND_CC    ? RT_BACKEND_CC
                : o->backend == LATHE_BACKEND_JIT ? RT_BACKEND_JIT
                                                  : RT_BACKEND_AUTO;
  bool ok = rt_loaded_open_source(&m->loaded, b, m->module->name, m->c_text, h_text, &m->err);
  free(h_text);
  if (!ok) return false;
  const lathe_model_info *info = m->loaded.info;
  size_t ws = info->workspace_bytes;
  for (int i = 0; i < info->n_entries; i++)
    if (info->entries[i].workspace_bytes > ws) ws = info->entries[i].workspace_bytes;
  m->params = api_alloc(info->params_bytes);
  m->state = api_alloc(info->state_bytes);
  m->ws = api_alloc(ws);
  if (!m->params || !m->state || !m->ws) {
    diag_error(&m->err, (SrcLoc){0}, "out of memory allocating the buffers of '%s'", info->name);
    return false;
  }
  info->init(m->params, m->state, o->seed);
  return true;
}

lathe_model *lathe_compile_string(const char *name, const char *source, const lathe_options *o,
                                  char **errors) {
  lathe_options defaults;
  if (!o) lathe_options_init(&defaults), o = &defaults;
  if (errors) *errors = NULL;
  lathe_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  diag_init(&m->err);
  m->path = api_strdup(name ? name : "<string>");
  m->source = api_strdup(source ? source : "");
  bool ok = m->path && m->source && api_build_module(m, o) && api_load(m, o);
  if (ok) return m;
  if (errors) *errors = api_strdup(m->err.n_errors ? diag_text(&m->err) : "out of memory\n");
  lathe_free(m);
  return NULL;
}

lathe_model *lathe_compile_file(const char *path, const lathe_options *o, char **errors) {
  Diag d;
  diag_init(&d);
  char *text = NULL;
  size_t len = 0;
  lathe_model *m = NULL;
  if (rt_read_file(path, &text, &len, &d))
    m = lathe_compile_string(path, text, o, errors);
  else if (errors)
    *errors = api_strdup(diag_text(&d));
  free(text);
  diag_fini(&d);
  return m;
}

void lathe_free(lathe_model *m) {
  if (!m) return;
  rt_loaded_close(&m->loaded);
  if (m->module) module_free(m->module);
  free(m->c_text), free(m->path), free(m->source);
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
  return rt_backend_name(m->loaded.backend);
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
static bool api_check_tensor(lathe_model *m, const lathe_tensor *t, const lathe_tensor_info *ti) {
  bool same = t->dtype == ti->dtype && t->rank == ti->rank && t->data != NULL;
  for (int k = 0; same && k < ti->rank; k++)
    same = t->shape && t->shape[k] == ti->shape[k];
  if (same) return true;
  char got[200] = "", want[200] = "";
  int n = 0;
  for (int k = 0; k < ti->rank && n < 180; k++)
    n += snprintf(want + n, sizeof want - (size_t)n, "%s%lld", k ? ", " : "",
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

/* Points args[k] at each argument's storage; outputs the caller did not ask for get scratch
 * buffers in scratch[k]. */
static bool api_bind(lathe_model *m, const lathe_entry_info *e, const lathe_tensor *in, int n_in,
                     const lathe_tensor *out, int n_out, void **args, void **scratch) {
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
      if (!api_check_tensor(m, t, a->tensor)) return false;
      args[k] = t->data;
      break;
    case LATHE_ARG_OUTPUT:
      t = api_find(out, n_out, a->tensor->name);
      if (t && !api_check_tensor(m, t, a->tensor)) return false;
      args[k] = t ? t->data : (scratch[k] = api_alloc(a->tensor->bytes));
      if (!args[k])
        return api_fail(m, "entry '%s': out of memory for '%s'", e->name, a->tensor->name) == 0;
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
  const lathe_entry_info *e = rt_loaded_entry(&m->loaded, entry ? entry : "");
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
  bool ok = api_check_names(m, e, inputs, n_inputs, LATHE_ARG_INPUT) &&
            api_check_names(m, e, outputs, n_outputs, LATHE_ARG_OUTPUT) &&
            api_bind(m, e, inputs, n_inputs, outputs, n_outputs, args, scratch);
  double ret = 0;
  ok = ok && rt_loaded_call(&m->loaded, e, args, &ret, &m->err);
  if (ok && loss) *loss = ret;
  for (int k = 0; k < e->n_args; k++)
    free(scratch[k]);
  return ok ? 0 : -1;
}

/* Copies one checkpoint tensor into its slot after checking dtype and shape. */
static bool api_load_one(lathe_model *m, const lathe_tensor_info *ti, const Tensor *t, char *base,
                         const char *path) {
  lathe_tensor view = {ti->name, (int)t->dtype, t->shape.rank, t->shape.dim, t->data};
  if (!api_check_tensor(m, &view, ti)) {
    diag_note(&m->err, (SrcLoc){0}, "in checkpoint '%s'", path);
    return false;
  }
  memcpy(base + ti->offset, t->data, ti->bytes);
  return true;
}

int lathe_load(lathe_model *m, const char *path) {
  api_clear(&m->err);
  const lathe_model_info *info = m->loaded.info;
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(path, &set, &m->err);
  for (int i = 0; ok && i < info->n_params; i++) {
    const Tensor *t = rt_set_find(&set, info->params[i].name);
    ok = t ? api_load_one(m, &info->params[i], t, m->params, path)
           : api_fail(m, "%s: no tensor '%s'", path, info->params[i].name) == 0;
  }
  for (int i = 0; ok && i < info->n_states; i++) { /* optional: present → exact resume */
    const Tensor *t = rt_set_find(&set, info->states[i].name);
    if (t) ok = api_load_one(m, &info->states[i], t, m->state, path);
  }
  rt_set_fini(&set);
  return ok ? 0 : -1;
}

static bool api_add(RtTensorSet *set, const lathe_tensor_info *ts, int n, const char *base) {
  for (int i = 0; i < n; i++) {
    Shape s = shape_make(ts[i].rank, ts[i].shape);
    Tensor *t = rt_set_add(set, ts[i].name, (DType)ts[i].dtype, &s);
    if (!t) return false;
    memcpy(t->data, base + ts[i].offset, ts[i].bytes);
  }
  return true;
}

int lathe_save(lathe_model *m, const char *path, int with_state) {
  api_clear(&m->err);
  const lathe_model_info *info = m->loaded.info;
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = api_add(&set, info->params, info->n_params, m->params) &&
            (!with_state || api_add(&set, info->states, info->n_states, m->state));
  if (!ok) diag_error(&m->err, (SrcLoc){0}, "out of memory saving '%s'", path);
  ok = ok && rt_safetensors_write(path, &set, &m->err);
  rt_set_fini(&set);
  return ok ? 0 : -1;
}

char *lathe_c_source(const lathe_model *m) {
  return api_strdup(m->c_text);
}

char *lathe_ir_text(lathe_model *m, const char *entry) {
  api_clear(&m->err);
  for (int i = 0; i < m->module->n_entries; i++)
    if (strcmp(m->module->entries[i]->name, entry) == 0) return ir_print(m->module->entries[i]);
  api_fail(m, "model '%s' has no entry point '%s'", m->module->name, entry);
  return NULL;
}
