/* cli/repl_session.c — REPL session state and evaluation: the synthetic model around each
 * input, compiling it (lathe/lathe.h, JIT by default), and moving param values between the
 * session and each compiled model.
 *
 * The synthetic model for an expression E, after the definitions:
 *
 *   fn __repl_w() -> f32[3, 2] {        # one per `param`/`data`: the value is a param
 *     param value: f32[3, 2] = glorot_uniform
 *     return value
 *   }
 *   model repl() {
 *     w = __repl_w()                     # params, data and bindings, in entry order
 *     h = x @ w
 *     output _ = E
 *     __loss = LOSS                      # only for :train / :grad, with a train block
 *   }
 *
 * A `data` tensor whose axis 0 is a run-time batch (docs/dynamic-batch.md) is an input of the
 * model instead (`model repl(x: f32[N, 784])`): each call passes the rows of its value, so the
 * entry runs at that n, 1 <= n <= the bound (:set refuses more rows).
 *
 * Invariant: a failed input changes nothing (definitions are validated before they are kept);
 * values are keyed by the model's param names ("w.value").
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frontend/frontend.h"
#include "repl.h"

void repl_text_add(ReplText *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = (t->len + (size_t)n + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s) return;
    t->s = s, t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

void repl_text_free(ReplText *t) {
  free(t->s);
  memset(t, 0, sizeof *t);
}

void repl_session_init(ReplSession *s, FILE *out) {
  memset(s, 0, sizeof *s);
  s->out = out;
  rt_set_init(&s->values);
  rt_set_init(&s->states);
  repl_text_add(&s->defs, "%s", "");
}

static void free_vars(ReplSession *s) {
  for (int i = 0; i < s->n_vars; i++) free(s->vars[i].name), free(s->vars[i].text);
  free(s->vars);
  s->vars = NULL;
  s->n_vars = s->cap_vars = 0;
}

void repl_session_fini(ReplSession *s) {
  free_vars(s);
  repl_text_free(&s->defs);
  rt_set_fini(&s->values);
  rt_set_fini(&s->states);
}

int repl_open_depth(const char *text) {
  int depth = 0;
  for (const char *p = text; *p; p++) {
    if (*p == '#')
      while (p[1] && p[1] != '\n') p++;
    else if (*p == '{' || *p == '(' || *p == '[') depth++;
    else if (*p == '}' || *p == ')' || *p == ']') depth--;
  }
  return depth;
}

/* ---- the synthetic model ---------------------------------------------------------------- */

typedef struct ReplTrain {
  const char *loss;      /* expression minimized, or NULL */
  const char *params;    /* "w.value, b.value"; NULL = every `param` */
  const char *optimizer; /* "sgd(lr = 0.1)" */
} ReplTrain;

/* "<input>" for the var being entered, "<name>" for one entered before */
static const char *var_label(const ReplVar *v, const ReplVar *extra, char *buf, size_t size) {
  if (v == extra) return "<input>";
  snprintf(buf, size, "<%s>", v->name);
  return buf;
}

/* Source text of the synthetic model; `extra` is one more var not yet in the session. Lines
 * holding user text are recorded in map (may be NULL) for repl_print_diags. */
static void model_text(const ReplSession *s, const ReplVar *extra, const char *expr,
                       const ReplTrain *tr, ReplText *t, ReplMap *map) {
  char label[80];
  repl_text_add(t, "%s", s->defs.s);
  for (int i = 0; i <= s->n_vars; i++) {
    const ReplVar *v = i < s->n_vars ? &s->vars[i] : extra;
    if (!v || v->kind == REPL_BINDING || v->shape.dyn) continue;
    const char *eq = strstr(v->text, " = ");
    const char *l = var_label(v, extra, label, sizeof label);
    repl_map_add(map, t, (int)strlen(v->name) + 16, l, v->text);
    repl_text_add(t, "fn __repl_%s() -> %.*s {\n", v->name, (int)(eq - v->text), v->text);
    repl_map_add(map, t, 15, l, v->text);
    repl_text_add(t, "  param value: %s\n  return value\n}\n", v->text);
  }
  repl_text_add(t, "model repl(");
  int inputs = 0; /* data with a run-time batch: inputs, `x: f32[N, 4]` */
  for (int i = 0; i <= s->n_vars; i++) {
    const ReplVar *v = i < s->n_vars ? &s->vars[i] : extra;
    if (!v || !v->shape.dyn) continue;
    const char *eq = strstr(v->text, " = ");
    repl_text_add(t, "%s%s: %.*s", inputs++ ? ", " : "", v->name,
                  (int)(eq ? eq - v->text : (long)strlen(v->text)), v->text);
  }
  repl_text_add(t, ") {\n");
  for (int i = 0; i <= s->n_vars; i++) {
    const ReplVar *v = i < s->n_vars ? &s->vars[i] : extra;
    if (!v || v->shape.dyn) continue;
    if (v->kind == REPL_BINDING) {
      repl_map_add(map, t, (int)strlen(v->name) + 5, var_label(v, extra, label, sizeof label),
                   v->text);
      repl_text_add(t, "  %s = %s\n", v->name, v->text);
    } else {
      repl_text_add(t, "  %s = __repl_%s()\n", v->name, v->name);
    }
  }
  if (expr && !(extra && expr == extra->name)) repl_map_add(map, t, 13, "<input>", expr);
  if (expr) repl_text_add(t, "  output _ = %s\n", expr);
  if (tr && tr->loss) {
    repl_map_add(map, t, 11, "<input>", tr->loss);
    repl_text_add(t, "  __loss = %s\n", tr->loss);
  }
  repl_text_add(t, "}\n");
  if (tr && tr->loss) {
    repl_text_add(t, "train repl {\n  minimize __loss\n  params %s\n", tr->params);
    repl_map_add(map, t, 12, "<input>", tr->optimizer);
    repl_text_add(t, "  optimizer %s\n}\n", tr->optimizer);
  }
}

/* ---- values between the session and a model --------------------------------------------- */

static void sync_in(ReplSession *s, lathe_model *m) {
  const lathe_model_info *info = lathe_info(m);
  for (int i = 0; i < info->n_params + info->n_states; i++) {
    bool is_param = i < info->n_params;
    const lathe_tensor_info *ti = is_param ? &info->params[i] : &info->states[i - info->n_params];
    RtTensorSet *set = is_param ? &s->values : &s->states;
    void *data = lathe_tensor_data(m, ti->name, NULL);
    const Tensor *have = rt_set_find(set, ti->name);
    Shape want = shape_make(ti->rank, ti->shape);
    if (have && (int)have->dtype == ti->dtype && shape_equal(&have->shape, &want)) {
      memcpy(data, have->data, ti->bytes);
    } else if (is_param) { /* new (or re-declared) param: keep its fresh init */
      Tensor *t = rt_set_add(set, ti->name, (DType)ti->dtype, &want);
      if (t) memcpy(t->data, data, ti->bytes);
    }
  }
}

static void sync_out(ReplSession *s, lathe_model *m) {
  const lathe_model_info *info = lathe_info(m);
  for (int i = 0; i < info->n_params + info->n_states; i++) {
    bool is_param = i < info->n_params;
    const lathe_tensor_info *ti = is_param ? &info->params[i] : &info->states[i - info->n_params];
    Shape shape = shape_make(ti->rank, ti->shape);
    Tensor *t = rt_set_add(is_param ? &s->values : &s->states, ti->name, (DType)ti->dtype, &shape);
    if (t) memcpy(t->data, lathe_tensor_data(m, ti->name, NULL), ti->bytes);
  }
}

/* The session with `output _ = expr`, elaborated only (for param names); NULL after
 * printing the errors. */
static Module *elaborate(ReplSession *s, const char *expr) {
  ReplText src = {0};
  ReplMap map = {.n = 0};
  model_text(s, NULL, expr, NULL, &src, &map);
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  Module *m = frontend_compile("<repl>", src.s, &fo, &d);
  if (!m) repl_print_diags(s->out, &map, diag_text(&d));
  diag_fini(&d);
  repl_text_free(&src);
  return m;
}

static bool is_data(const ReplSession *s, const char *param) {
  for (int i = 0; i < s->n_vars; i++) {
    size_t n = strlen(s->vars[i].name);
    if (s->vars[i].kind == REPL_DATA && strncmp(param, s->vars[i].name, n) == 0 &&
        strcmp(param + n, ".value") == 0)
      return true;
  }
  return false;
}

/* A loss must be a scalar: said in the user's words here, before the train block is made
 * (whose own error would name the synthetic `__loss` and a line of the generated model). */
static bool scalar_loss(ReplSession *s, Module *m, const char *loss) {
  Graph *g = m->model;
  for (int i = 0; g && i < g->n_outputs; i++) {
    const Node *n = graph_node(g, g->outputs[i].node);
    if (strcmp(g->outputs[i].name, "_") != 0 || n->shape.rank == 0) continue;
    char shape[200];
    fprintf(s->out, "error: the loss '%s' must be a scalar, got %s%s; reduce it, e.g. "
            "sum(%s) or mean(%s)\n", loss, dtype_name(n->dtype),
            shape_str(&n->shape, shape, sizeof shape), loss, loss);
    module_free(m);
    return false;
  }
  return true;
}

/* ", "-separated trainable params of the model computing expr: all but `data` */
static bool trainable(ReplSession *s, const char *expr, ReplText *globs) {
  Module *m = elaborate(s, expr);
  if (m && !scalar_loss(s, m, expr)) return false;
  for (int i = 0; m && i < m->n_params; i++)
    if (!is_data(s, m->params[i].name))
      repl_text_add(globs, "%s%s", globs->len ? ", " : "", m->params[i].name);
  if (m && !globs->len)
    fprintf(s->out, "error: nothing to train: '%s' depends on no param\n", expr);
  if (m) module_free(m);
  return globs->len > 0;
}

/* the model's name of a param the user calls `name`: "w" → "w.value", "h.w" → "h.w" */
static bool resolve_param(ReplSession *s, const char *expr, const char *name, char *out,
                          size_t size) {
  Module *m = elaborate(s, expr);
  if (m && !scalar_loss(s, m, expr)) return false;
  char value[300];
  snprintf(value, sizeof value, "%s.value", name);
  bool found = false;
  for (int i = 0; m && i < m->n_params && !found; i++)
    if (strcmp(m->params[i].name, value) == 0 || strcmp(m->params[i].name, name) == 0)
      found = true, snprintf(out, size, "%s", m->params[i].name);
  if (m && !found) {
    fprintf(s->out, "error: '%s' has no param '%s'; its params:", expr, name);
    for (int i = 0; i < m->n_params; i++) {
      const char *p = m->params[i].name;
      size_t n = strlen(p);
      bool value_suffix = n > 6 && strcmp(p + n - 6, ".value") == 0;
      fprintf(s->out, " %.*s", (int)(value_suffix ? n - 6 : n), p);
    }
    fprintf(s->out, "\n");
  }
  if (m) module_free(m);
  return found;
}

/* ---- compiling and running -------------------------------------------------------------- */

/* Compiles expr (and the train block of tr) with the session's values loaded. */
static lathe_model *compile(ReplSession *s, const char *expr, const ReplTrain *tr, bool grad) {
  ReplText src = {0};
  ReplMap map = {.n = 0};
  model_text(s, NULL, expr, tr, &src, &map);
  lathe_options o;
  lathe_options_init(&o);
  o.backend = s->backend;
  o.want_grad = grad;
  o.want_train = tr && tr->loss;
  char *err = NULL;
  lathe_model *m = lathe_compile_string("<repl>", src.s, &o, &err);
  repl_text_free(&src);
  if (!m) {
    repl_print_diags(s->out, &map, err ? err : "error: out of memory\n");
    lathe_string_free(err);
    return NULL;
  }
  sync_in(s, m);
  return m;
}

/* The inputs of a call: the data tensors with a run-time batch (ReplVar.shape.dyn) that the
 * entry reads, each at the rows of its value, so the call runs at that n (1..the bound,
 * checked by :set); zeros at the bound until a :set (or when the value no longer fits a
 * redefinition). The zeros live in zeros[] until repl_inputs_free. */
enum { REPL_MAX_INPUTS = 16 };
typedef struct ReplInputs {
  lathe_tensor t[REPL_MAX_INPUTS];
  Tensor zeros[REPL_MAX_INPUTS];
  int n;
  int64_t batch; /* the run-time batch of the call: rows / k of the first input; 0 if none */
} ReplInputs;

static const ReplVar *find_var(const ReplSession *s, const char *name) {
  for (int i = 0; i < s->n_vars; i++)
    if (strcmp(s->vars[i].name, name) == 0) return &s->vars[i];
  return NULL;
}

/* whether value t fits dynamic data v: its dtype, trailing dims, and k * n rows, 1 <= n <= max */
static bool fits_rows(const ReplVar *v, const Tensor *t) {
  bool ok = t->dtype == v->dtype && t->shape.rank == v->shape.rank && t->shape.dim[0] > 0 &&
            t->shape.dim[0] % v->shape.dyn == 0 && t->shape.dim[0] <= v->shape.dim[0];
  for (int k = 1; ok && k < v->shape.rank; k++) ok = t->shape.dim[k] == v->shape.dim[k];
  return ok;
}

static bool repl_inputs(ReplSession *s, lathe_model *m, const char *entry, ReplInputs *in) {
  memset(in, 0, sizeof *in);
  const lathe_model_info *info = lathe_info(m);
  for (int i = 0; i < info->n_entries; i++) {
    const lathe_entry_info *e = &info->entries[i];
    for (int k = 0; strcmp(e->name, entry) == 0 && k < e->n_args; k++) {
      const ReplVar *v = e->args[k].role == LATHE_ARG_INPUT ? find_var(s, e->args[k].tensor->name)
                                                            : NULL;
      if (!v || !v->shape.dyn || in->n == REPL_MAX_INPUTS) continue;
      char key[300];
      snprintf(key, sizeof key, "%s.value", v->name);
      const Tensor *t = rt_set_find(&s->values, key);
      if (!t || !fits_rows(v, t)) {
        Shape at_bound = v->shape;
        at_bound.dyn = 0;
        if (!tensor_alloc(&in->zeros[in->n], v->dtype, &at_bound)) return false;
        t = &in->zeros[in->n];
      }
      in->t[in->n++] = (lathe_tensor){v->name, (int)t->dtype, t->shape.rank, t->shape.dim, t->data};
      if (!in->batch) in->batch = t->shape.dim[0] / v->shape.dyn;
    }
  }
  return true;
}

static void repl_inputs_free(ReplInputs *in) {
  for (int i = 0; i < in->n; i++) tensor_free(&in->zeros[i]);
}

/* Runs forward and returns output `_` in out (tensor_alloc'd); a dynamic output has the
 * inputs' rows. */
static bool run_forward(ReplSession *s, lathe_model *m, Tensor *out) {
  const lathe_entry_info *e = NULL;
  const lathe_model_info *info = lathe_info(m);
  for (int i = 0; i < info->n_entries; i++)
    if (strcmp(info->entries[i].name, "forward") == 0) e = &info->entries[i];
  const lathe_tensor_info *ti = NULL;
  for (int k = 0; e && k < e->n_args; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT) ti = e->args[k].tensor;
  ReplInputs in;
  bool ok = repl_inputs(s, m, "forward", &in);
  Shape shape = ti ? shape_make(ti->rank, ti->shape) : (Shape){0};
  if (ti && ti->dyn && in.batch) shape.dim[0] = ti->dyn * in.batch;
  if (!ok || !ti || !tensor_alloc(out, (DType)ti->dtype, &shape)) {
    fprintf(s->out, "error: the expression has no value to print\n");
    repl_inputs_free(&in);
    return false;
  }
  lathe_tensor o = {"_", ti->dtype, ti->rank, out->shape.dim, out->data};
  ok = lathe_call(m, "forward", in.t, in.n, &o, 1, NULL) == 0;
  repl_inputs_free(&in);
  if (!ok) {
    fprintf(s->out, "%s", lathe_error(m));
    tensor_free(out);
  }
  return ok;
}

bool repl_show(ReplSession *s, const char *expr) {
  lathe_model *m = compile(s, expr, NULL, false);
  Tensor t = {0};
  bool ok = m && run_forward(s, m, &t);
  if (ok) repl_print_tensor(s->out, NULL, &t);
  tensor_free(&t);
  lathe_free(m);
  return ok;
}

/* Elaborates the session plus v (without running it): rejects a bad definition early. */
static bool validate(ReplSession *s, const ReplVar *v, const char *defs) {
  ReplText src = {0};
  ReplSession view = *s;
  view.defs.s = (char *)defs;
  ReplMap map = {.n = 0};
  model_text(&view, v, v ? v->name : NULL, NULL, &src, &map);
  Diag d;
  diag_init(&d);
  bool ok;
  if (v) {
    FrontendOptions fo;
    frontend_options_init(&fo);
    Module *m = frontend_compile("<repl>", src.s, &fo, &d);
    ok = m != NULL;
    if (m) module_free(m);
  } else {
    ok = frontend_parse_only("<repl>", src.s, &d);
  }
  if (!ok) repl_print_diags(s->out, &map, diag_text(&d));
  diag_fini(&d);
  repl_text_free(&src);
  return ok;
}

static bool valid_name(ReplSession *s, const char *name) {
  bool ok = (isalpha((unsigned char)name[0]) || name[0] == '_') && strncmp(name, "__", 2) != 0 &&
            strcmp(name, "_") != 0;
  for (const char *p = name; ok && *p; p++) ok = isalnum((unsigned char)*p) || *p == '_';
  if (!ok)
    fprintf(s->out, "error: '%s' is not a name the REPL can bind (no '_' or '__' names)\n",
            name);
  return ok;
}

/* Adds (or redefines) a var after validating it. */
/* whether name occurs in text as a whole word */
static bool mentions(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
    bool before = p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.');
    bool after = isalnum((unsigned char)p[n]) || p[n] == '_';
    if (!before && !after) return true;
  }
  return false;
}

/* Whether data `name: TYPE` has the run-time batch as axis 0 (docs/dynamic-batch.md): TYPE
 * elaborated as the input of a one-line model after the definitions; sets v->dtype and
 * v->shape when it does (v->shape.dyn stays 0 otherwise, and a TYPE that does not elaborate
 * is left to validate to report). Such a tensor starts as zeros: another init is refused. */
static bool probe_dynamic(ReplSession *s, ReplVar *v) {
  const char *eq = strstr(v->text, " = ");
  ReplText src = {0};
  repl_text_add(&src, "%smodel probe(v: %.*s) {\n  output o = v\n}\n", s->defs.s,
                (int)(eq ? eq - v->text : (long)strlen(v->text)), v->text);
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  Module *m = frontend_compile("<repl>", src.s, &fo, &d);
  bool ok = true;
  if (m && m->n_inputs == 1 && m->inputs[0].shape.dyn > 0) {
    v->dtype = m->inputs[0].dtype, v->shape = m->inputs[0].shape;
    if (eq && strcmp(eq + 3, "zeros") != 0) {
      fprintf(s->out, "error: data '%s' has a run-time batch (%.*s): it starts as zeros, "
              "not '%s'; give its rows with :set %s FILE.npy\n", v->name,
              (int)(eq - v->text), v->text, eq + 3, v->name);
      ok = false;
    }
  }
  if (m) module_free(m);
  diag_fini(&d);
  repl_text_free(&src);
  return ok;
}

bool repl_define_var(ReplSession *s, const char *name, const char *text, int kind) {
  if (!valid_name(s, name)) return false;
  int at = -1;
  for (int i = 0; i < s->n_vars; i++)
    if (strcmp(s->vars[i].name, name) == 0) at = i;
  if (at >= 0 && kind == REPL_BINDING && s->vars[at].kind != REPL_BINDING && mentions(text, name)) {
    /* the binding would replace the tensor its own expression reads */
    fprintf(s->out, "error: '%s' is a %s tensor (%s); a binding of that name cannot use it: "
            "bind '%s' to a new name\n", name, s->vars[at].kind == REPL_DATA ? "data" : "param",
            s->vars[at].text, text);
    return false;
  }
  ReplVar v = {(char *)name, (char *)text, kind, DT_F32, {0}};
  if (kind == REPL_DATA && !probe_dynamic(s, &v)) return false;
  ReplSession view = *s;
  if (at >= 0) { /* redefinition: validate without the old one, then replace it at the end */
    ReplVar *copy = malloc(sizeof *copy * (size_t)(s->n_vars + 1));
    if (!copy) return false;
    int n = 0;
    for (int i = 0; i < s->n_vars; i++)
      if (i != at) copy[n++] = s->vars[i];
    view.vars = copy, view.n_vars = n;
    bool ok = validate(&view, &v, s->defs.s);
    if (ok) {
      free(s->vars[at].name), free(s->vars[at].text);
      memcpy(s->vars, copy, sizeof *copy * (size_t)n);
      s->n_vars = n;
    }
    free(copy);
    if (!ok) return false;
  } else if (!validate(s, &v, s->defs.s)) {
    return false;
  }
  if (s->n_vars == s->cap_vars) {
    int cap = s->cap_vars ? 2 * s->cap_vars : 16;
    ReplVar *vars = realloc(s->vars, sizeof *vars * (size_t)cap);
    if (!vars) return false;
    s->vars = vars, s->cap_vars = cap;
  }
  s->vars[s->n_vars++] = (ReplVar){strdup(name), strdup(text), kind, v.dtype, v.shape};
  return true;
}

bool repl_define_text(ReplSession *s, const char *text) {
  ReplText defs = {0};
  repl_text_add(&defs, "%s%s\n", s->defs.s, text);
  bool ok = validate(s, NULL, defs.s);
  if (ok) {
    repl_text_free(&s->defs);
    s->defs = defs;
  } else {
    repl_text_free(&defs);
  }
  return ok;
}

void repl_reset(ReplSession *s) {
  FILE *out = s->out;
  int backend = s->backend, depth = s->depth;
  repl_session_fini(s);
  repl_session_init(s, out);
  s->backend = backend, s->depth = depth;
}

/* ---- commands that compile ---------------------------------------------------------------- */

bool repl_print_ir(ReplSession *s, const char *expr, bool c_source) {
  lathe_model *m = compile(s, expr, NULL, false);
  if (!m) return false;
  char *text = c_source ? lathe_c_source(m) : lathe_ir_text(m, "forward");
  fprintf(s->out, "%s", text ? text : lathe_error(m));
  lathe_string_free(text);
  lathe_free(m);
  return true;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "12.345 ms", "3.210 us", "85 ns": a small expression's run is not "0.000 ms" */
static const char *duration_str(double seconds, char *buf, size_t size) {
  if (seconds >= 1.0) snprintf(buf, size, "%.3f s", seconds);
  else if (seconds >= 1e-3) snprintf(buf, size, "%.3f ms", seconds * 1e3);
  else if (seconds >= 1e-6) snprintf(buf, size, "%.3f us", seconds * 1e6);
  else snprintf(buf, size, "%.0f ns", seconds * 1e9);
  return buf;
}

/* :time EXPR — compile time, then the median of repeated runs (>= 5 runs, ~0.3 s) */
bool repl_time(ReplSession *s, const char *expr) {
  double t0 = now_seconds();
  lathe_model *m = compile(s, expr, NULL, false);
  double compiled = now_seconds() - t0;
  if (!m) return false;
  /* a JIT compile returns its -O0 baseline first (docs/jit.md "The tiered compile"): time the
   * optimized code, and say when it was ready */
  bool tiered = lathe_wait_optimized(m) == 0;
  double optimized = now_seconds() - t0;
  enum { MAX_RUNS = 1000 };
  static double runs[MAX_RUNS];
  int n = 0;
  Tensor t = {0};
  bool ok = true;
  for (double start = now_seconds(); ok && n < MAX_RUNS && (n < 5 || now_seconds() - start < 0.3);
       n++) {
    double a = now_seconds();
    ok = run_forward(s, m, &t);
    runs[n] = now_seconds() - a;
    tensor_free(&t);
  }
  if (ok) {
    qsort(runs, (size_t)n, sizeof runs[0], cmp_double);
    char median[32], min[32];
    char ready[64] = "";
    if (tiered && optimized - compiled > 1e-3)
      snprintf(ready, sizeof ready, ", optimized after %.1f ms", optimized * 1e3);
    fprintf(s->out, "compile %.1f ms (%s%s); run: median %s of %d (min %s)\n", compiled * 1e3,
            lathe_backend(m), ready, duration_str(runs[n / 2], median, sizeof median), n,
            duration_str(runs[0], min, sizeof min));
  }
  lathe_free(m);
  return ok;
}

/* :grad LOSS wrt PARAM — the gradient from the compiled backward pass */
bool repl_grad(ReplSession *s, const char *loss, const char *param) {
  char glob[300];
  if (!resolve_param(s, loss, param, glob, sizeof glob)) return false;
  ReplTrain tr = {loss, glob, "sgd(lr = 0.0)"};
  lathe_model *m = compile(s, NULL, &tr, true);
  if (!m) return false;
  const lathe_tensor_info *ti = NULL;
  lathe_tensor_data(m, glob, &ti);
  Shape shape = shape_make(ti->rank, ti->shape);
  Tensor g = {0};
  double value = 0;
  bool ok = tensor_alloc(&g, (DType)ti->dtype, &shape);
  lathe_tensor out = {glob, ti->dtype, ti->rank, ti->shape, g.data};
  ReplInputs in;
  ok = ok && repl_inputs(s, m, "grad", &in);
  if (ok && lathe_call(m, "grad", in.t, in.n, &out, 1, &value) != 0) {
    fprintf(s->out, "%s", lathe_error(m));
    ok = false;
  }
  repl_inputs_free(&in);
  if (ok) {
    fprintf(s->out, "loss = %.6g\n", value);
    char name[320];
    snprintf(name, sizeof name, "d(%s)/d(%s)", loss, param);
    repl_print_tensor(s->out, name, &g);
  }
  tensor_free(&g);
  lathe_free(m);
  return ok;
}

/* :train LOSS STEPS [OPTIMIZER] — runs the generated train step; params persist */
bool repl_train(ReplSession *s, const char *loss, long steps, const char *optimizer) {
  ReplText globs = {0};
  if (!trainable(s, loss, &globs)) {
    repl_text_free(&globs);
    return false;
  }
  ReplTrain tr = {loss, globs.s, optimizer && *optimizer ? optimizer : "sgd(lr = 0.1)"};
  lathe_model *m = compile(s, NULL, &tr, false);
  if (!m) {
    repl_text_free(&globs);
    return false;
  }
  double loss_value = 0, t0 = now_seconds();
  ReplInputs in;
  bool ok = repl_inputs(s, m, "train", &in);
  for (long i = 0; ok && i < steps; i++) {
    ok = lathe_call(m, "train", in.t, in.n, NULL, 0, &loss_value) == 0;
    if (!ok) fprintf(s->out, "%s", lathe_error(m));
    else if (i == 0 || i + 1 == steps || (steps > 10 && (i + 1) % (steps / 5) == 0))
      fprintf(s->out, "step %ld: %s = %.6g\n", i + 1, loss, loss_value);
  }
  repl_inputs_free(&in);
  if (ok) {
    sync_out(s, m);
    fprintf(s->out, "trained %ld steps with %s in %.1f ms\n", steps, tr.optimizer,
            (now_seconds() - t0) * 1e3);
  }
  lathe_free(m);
  repl_text_free(&globs);
  return ok;
}

/* ---- checkpoints: user names ("w"), not model names ("w.value") -------------------------- */

bool repl_save(ReplSession *s, const char *path) {
  RtTensorSet set;
  rt_set_init(&set);
  for (int i = 0; i < s->values.n; i++) {
    const RtNamed *v = &s->values.items[i];
    char name[300];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(v->name) - strlen(".value")), v->name);
    Tensor *t = rt_set_add(&set, name, v->t.dtype, &v->t.shape);
    if (t) memcpy(t->data, v->t.data, (size_t)shape_numel(&v->t.shape) * dtype_size(v->t.dtype));
  }
  Diag d;
  diag_init(&d);
  bool ok = rt_safetensors_write(path, &set, &d);
  if (ok) fprintf(s->out, "saved %d tensors to %s\n", set.n, path);
  else fprintf(s->out, "%s", diag_text(&d));
  diag_fini(&d);
  rt_set_fini(&set);
  return ok;
}

/* whether a checkpoint tensor fits the var it names (a name not declared now is kept for a
 * later declaration); a mismatch is reported */
static bool restorable(ReplSession *s, const Module *m, const char *var, const char *key,
                       const Tensor *t) {
  for (int i = 0; m && i < m->n_params; i++) {
    const TensorDecl *p = &m->params[i];
    if (strcmp(p->name, key) != 0) continue;
    if (p->dtype == t->dtype && shape_equal(&p->shape, &t->shape)) return true;
    char a[200], b[200];
    fprintf(s->out, "error: '%s' is %s%s in the checkpoint, but the session declares %s%s; "
            "not restored\n", var, dtype_name(t->dtype), shape_str(&t->shape, a, sizeof a),
            dtype_name(p->dtype), shape_str(&p->shape, b, sizeof b));
    return false;
  }
  return true;
}

bool repl_restore(ReplSession *s, const char *path) {
  RtTensorSet set;
  rt_set_init(&set);
  Diag d;
  diag_init(&d);
  bool ok = rt_safetensors_read(path, &set, &d);
  if (!ok) fprintf(s->out, "%s", diag_text(&d));
  /* the session's declarations, to refuse a tensor of another type than its var's */
  Module *m = ok && s->n_vars ? elaborate(s, s->vars[0].name) : NULL;
  int skipped = 0;
  for (int i = 0; ok && i < set.n; i++) {
    char name[300];
    snprintf(name, sizeof name, "%s.value", set.items[i].name);
    const Tensor *src = &set.items[i].t;
    if (!restorable(s, m, set.items[i].name, name, src)) {
      skipped++;
      continue;
    }
    Tensor *t = rt_set_add(&s->values, name, src->dtype, &src->shape);
    if (t) memcpy(t->data, src->data, (size_t)shape_numel(&src->shape) * dtype_size(src->dtype));
  }
  if (m) module_free(m);
  if (ok && skipped) ok = false;
  if (ok) fprintf(s->out, "restored %d tensors from %s\n", set.n, path);
  else if (skipped)
    fprintf(s->out, "restored %d of %d tensors from %s\n", set.n - skipped, set.n, path);
  diag_fini(&d);
  rt_set_fini(&set);
  return ok;
}

/* :set NAME FILE.npy — the value of a param or data tensor */
bool repl_set(ReplSession *s, const char *name, const char *path) {
  Diag d;
  diag_init(&d);
  Tensor t = {0};
  char key[300];
  snprintf(key, sizeof key, "%s.value", name);
  bool ok = rt_npy_read(path, &t, &d);
  if (!ok) fprintf(s->out, "%s", diag_text(&d));
  const ReplVar *v = find_var(s, name);
  if (ok && v && v->shape.dyn && !fits_rows(v, &t)) { /* data with a run-time batch */
    char got[200], want[200];
    int64_t bound = v->shape.dim[0] / v->shape.dyn;
    char rows[64] = "";
    if (v->shape.dyn > 1) snprintf(rows, sizeof rows, "%lld * ", (long long)v->shape.dyn);
    fprintf(s->out, "error: %s is %s%s, but '%s' is %s%s: %sn rows for a run-time batch n from "
            "1 to %lld\n", path, dtype_name(t.dtype), shape_str(&t.shape, got, sizeof got), name,
            dtype_name(v->dtype), shape_str(&v->shape, want, sizeof want), rows,
            (long long)bound);
    ok = false;
  }
  Tensor *slot = ok ? rt_set_add(&s->values, key, t.dtype, &t.shape) : NULL;
  if (slot) memcpy(slot->data, t.data, (size_t)shape_numel(&t.shape) * dtype_size(t.dtype));
  if (ok && v && v->shape.dyn)
    fprintf(s->out, "%s <- %s (a run-time batch of %lld)\n", name, path,
            (long long)(t.shape.dim[0] / v->shape.dyn));
  else if (ok)
    fprintf(s->out, "%s <- %s (used where its type matches)\n", name, path);
  tensor_free(&t);
  diag_fini(&d);
  return ok;
}
