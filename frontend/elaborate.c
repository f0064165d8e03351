/* frontend/elaborate.c — a parsed Program to a Module: consts, -D overrides, the model's
 * inputs and bindings, outputs, and the train block.
 *
 * Order: collect fns and consts (checking duplicates), apply -D overrides, pick the model
 * (FrontendOptions.model_name or the last one), declare its inputs, elaborate its body
 * statement by statement (calls are inlined by elab_call.c), then turn the matching train
 * block into TrainSteps with a loss output per loss. Errors never stop at the first one:
 * a failed binding is bound to VAL_NONE, which silences follow-up errors that depend on it.
 *
 * Invariants: every string and location stored in the Module points into the Module's arena
 * (elab_loc copies file names there), so the Module outlives the Program and the Diag.
 */
#include "frontend/elab.h"

#include <string.h>

/* 2^40 elements (4 TiB of f32) per tensor: far above any real model, low enough that a typo'd
 * or hostile dim is an error here rather than a failed allocation at run time */
enum { ELAB_SHIFT_MAX_NUMEL = 40 };
#define ELAB_MAX_NUMEL ((int64_t)1 << ELAB_SHIFT_MAX_NUMEL)

/* ---- small shared helpers ----------------------------------------------------------------- */

SrcLoc elab_loc(Elab *E, SrcLoc loc) {
  if (!loc.file) return loc;
  for (int i = 0; i < E->n_files; i++) {
    if (E->files[i] == loc.file) {
      loc.file = E->file_copies[i];
      return loc;
    }
  }
  const char *copy = arena_strdup(&E->m->arena, loc.file);
  if (E->n_files < (int)(sizeof E->files / sizeof E->files[0])) {
    E->files[E->n_files] = loc.file;
    E->file_copies[E->n_files++] = copy;
  }
  loc.file = copy;
  return loc;
}

Builder elab_builder(Elab *E, SrcLoc loc) {
  return build_init(E->g, E->d, elab_loc(E, loc));
}

Binding *elab_lookup(const Scope *s, const char *name) {
  for (Binding *b = s->head; b; b = b->next)
    if (strcmp(b->name, name) == 0) return b;
  return NULL;
}

Binding *elab_const(const Elab *E, const Scope *s, const char *name) {
  const char *file = s->fn ? s->fn->loc.file : NULL;
  for (Binding *c = E->consts; c; c = c->next)
    if (strcmp(c->name, name) == 0 && (!file || !c->loc.file || strcmp(c->loc.file, file) == 0))
      return c;
  return NULL;
}

void elab_bind(Elab *E, Scope *s, const char *name, Value v, SrcLoc loc) {
  Binding *b = arena_alloc(&E->scratch, sizeof *b);
  *b = (Binding){name, v, loc, s->head};
  s->head = b;
}

const Decl *elab_find_decl(const Elab *E, DeclKind kind, const char *name) {
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *d = E->prog->decls[i];
    if (d->kind == kind && strcmp(d->name, name) == 0) return d;
  }
  return NULL;
}

bool elab_int(Elab *E, Value v, SrcLoc loc, const char *what, int64_t *out) {
  if (v.kind == VAL_NONE) return false;
  if (v.kind == VAL_INT) {
    *out = v.i;
    return true;
  }
  if (v.kind == VAL_DYN || (v.kind == VAL_LIST && v.dyn)) {
    elab_dyn_misuse(E, loc, what);
    return false;
  }
  diag_error(E->d, loc, "%s must be a compile-time int, got %s", what, elab_value_str(E, v));
  return false;
}

DType elab_float_dtype(const Elab *E) {
  return E->o->float_dtype == DT_F64 ? DT_F64 : DT_F32;
}

const char *elab_value_str(Elab *E, Value v) {
  char buf[200];
  switch (v.kind) {
  case VAL_TENSOR: {
    const Node *n = graph_node(E->g, v.node);
    return arena_printf(&E->scratch, "%s%s", dtype_name(n->dtype),
                        shape_str(&n->shape, buf, sizeof buf));
  }
  case VAL_INT:
    return arena_printf(&E->scratch, "the int %lld", (long long)v.i);
  case VAL_FLOAT:
    return arena_printf(&E->scratch, "the number %g", v.f);
  case VAL_BOOL:
    return v.i ? "true" : "false";
  case VAL_DTYPE:
    return arena_printf(&E->scratch, "the dtype %s", dtype_name((DType)v.i));
  case VAL_LIST:
    return "a list";
  case VAL_TUPLE:
    return arena_printf(&E->scratch, "a tuple of %d tensors", v.n_items);
  case VAL_DYN:
    return arena_printf(&E->scratch,
                        "the dynamic dimension %s%s%s (<= %lld), which can only be the first "
                        "axis of a shape (written %s or k * %s)",
                        v.dyn > 1 ? arena_printf(&E->scratch, "%lld", (long long)v.dyn) : "",
                        v.dyn > 1 ? " * " : "", E->dyn_name, (long long)v.i, E->dyn_name,
                        E->dyn_name);
  default:
    return "an invalid value";
  }
}

const char *elab_suggest(const char *name, const char *const *candidates, int n) {
  const char *best = NULL;
  int best_d = 0;
  int limit = (int)strlen(name) / 3 + 1; /* allow ~1 typo per 3 characters */
  for (int i = 0; i < n; i++) {
    if (!candidates[i] || strcmp(candidates[i], name) == 0) continue;
    int d = diag_edit_distance(name, candidates[i]);
    bool close = d <= limit && d < (int)strlen(candidates[i]); /* not a whole rewrite */
    if (close && (!best || d < best_d)) best = candidates[i], best_d = d;
  }
  return best;
}

bool elab_dtype(Elab *E, const char *name, SrcLoc loc, DType *out) {
  static const char *const names[] = {"f32", "f64", "i32", "i64", "u8", "i8"};
  if (!dtype_from_name(name, out)) {
    const char *hint = elab_suggest(name, names, 6);
    diag_error(E->d, loc, "unknown dtype '%s'%s%s%s; expected f32, f64, i32, i64, u8 or i8", name,
               hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
    return false;
  }
  if (*out == DT_F32) *out = elab_float_dtype(E);
  return true;
}

void elab_dyn_misuse(Elab *E, SrcLoc loc, const char *what) {
  const char *n = E->dyn_name ? E->dyn_name : "N";
  diag_error(E->d, loc,
             "the dynamic dimension %s (<= %lld) can only be the first axis of a shape, written "
             "%s or k * %s; here it is used as %s",
             n, (long long)E->dyn_max, n, n, what);
}

bool elab_dim(Elab *E, Scope *s, const Expr *d, int axis, bool allow_dyn, int64_t *dim,
              int64_t *dyn) {
  Value v = elab_expr(E, s, d);
  *dyn = 0;
  if (v.kind == VAL_DYN && axis == 0 && allow_dyn) {
    *dim = v.i, *dyn = v.dyn;
    return true;
  }
  if (v.kind == VAL_DYN) {
    elab_dyn_misuse(E, d->loc,
                    axis ? arena_printf(&E->scratch, "axis %d of a shape", axis)
                         : "the first axis of a param's type (params have a fixed shape)");
    return false;
  }
  if (!elab_int(E, v, d->loc, "a dimension", dim)) return false;
  if (*dim < 1) {
    diag_error(E->d, d->loc, "dimensions must be positive, got %lld", (long long)*dim);
    return false;
  }
  return true;
}

bool elab_static_list(Elab *E, Value v, const Expr *e, const char *what) {
  if (v.kind != VAL_LIST || !v.dyn) return true;
  elab_dyn_misuse(E, e->kind == EX_LIST && e->n_args ? e->args[0]->loc : e->loc, what);
  return false;
}

bool elab_type(Elab *E, Scope *s, const TypeExpr *t, bool allow_dyn, DType *dtype, Shape *shape) {
  if (type_is_scalar(t)) {
    const char *kind = t->is_int ? "int" : t->is_float ? "float" : "bool";
    diag_error(E->d, t->loc, "expected a tensor type such as f32[N, 784], got '%s'", kind);
    return false;
  }
  if (!elab_dtype(E, t->dtype, t->loc, dtype)) return false;
  if (t->n_dims > IR_MAX_RANK) {
    diag_error(E->d, t->loc, "rank %d exceeds the maximum of %d", t->n_dims, IR_MAX_RANK);
    return false;
  }
  int64_t dims[IR_MAX_RANK], dyn = 0, ignored;
  for (int i = 0; i < t->n_dims; i++) {
    const Expr *d = t->dims[i];
    if (d->kind == EX_ELLIPSIS) {
      diag_error(E->d, d->loc, "'...' is only allowed in the argument types of a fn");
      return false;
    }
    if (!elab_dim(E, s, d, i, allow_dyn, &dims[i], i ? &ignored : &dyn)) return false;
  }
  *shape = shape_make(t->n_dims, dims);
  shape->dyn = dyn;
  int64_t numel = 1;
  for (int i = 0; i < t->n_dims; i++) {
    if (__builtin_mul_overflow(numel, dims[i], &numel) || numel > ELAB_MAX_NUMEL) {
      diag_error(E->d, t->loc, "tensor type has too many elements (more than 2^%d)",
                 ELAB_SHIFT_MAX_NUMEL);
      return false;
    }
  }
  return true;
}

/* ---- consts, fns, -D ---------------------------------------------------------------------- */

static const char *decl_what(DeclKind k) {
  return k == DECL_CONST ? "const" : k == DECL_FN ? "fn" : k == DECL_MODEL ? "model" : "train";
}

/* Duplicate fns, models, consts and train blocks (the same import twice is fine). */
static bool check_duplicates(Elab *E) {
  bool ok = true;
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *a = E->prog->decls[i];
    if (a->kind == DECL_IMPORT) continue;
    for (int j = 0; j < i; j++) {
      const Decl *b = E->prog->decls[j];
      bool clash = b->kind == a->kind && strcmp(a->name, b->name) == 0 &&
                   !(a->kind == DECL_FN && elab_struct_overloads(a, b));
      if (!clash) continue;
      diag_error(E->d, a->name_loc, "%s '%s' is already defined at %s:%u:%u", decl_what(a->kind),
                 a->name, b->name_loc.file, b->name_loc.line, b->name_loc.col);
      ok = false;
      break;
    }
    if (a->kind == DECL_FN && elab_is_builtin(a->name)) {
      diag_error(E->d, a->name_loc, "fn '%s' has the name of a builtin", a->name);
      ok = false;
    }
  }
  return ok;
}

static const Define *find_define(const Elab *E, const char *name) {
  for (int i = 0; i < E->o->n_defines; i++)
    if (strcmp(E->o->defines[i].name, name) == 0) return &E->o->defines[i];
  return NULL;
}

/* dynamic(max = M) as the value of const c: the dynamic dimension at its bound, k = 1 */
static Value dynamic_const(Elab *E, const Decl *c) {
  static const char *const names[] = {"max"};
  const Expr *arg[1];
  Scope empty = {.prefix = ""};
  int64_t max;
  if (!elab_match_args(E, c->value, names, 1, arg)) return (Value){0};
  if (!arg[0]) {
    diag_error(E->d, c->value->loc,
               "dynamic() needs its bound, as in 'const %s = dynamic(max "
               "= 64)'",
               c->name);
    return (Value){0};
  }
  if (!elab_int(E, elab_expr(E, &empty, arg[0]), arg[0]->loc, "the bound of dynamic()", &max))
    return (Value){0};
  if (max < 1 || max > INT32_MAX) {
    diag_error(E->d, arg[0]->loc,
               "the bound of dynamic() must be an integer from 1 to %d, got "
               "%lld",
               INT32_MAX, (long long)max);
    return (Value){0};
  }
  return (Value){.kind = VAL_DYN, .dyn = 1, .i = max};
}

/* Records c as the module's dynamic const; a second one is an error at its name. */
static bool declare_dynamic(Elab *E, const Decl *c, const Define *def) {
  if (E->dyn_max) {
    diag_error(E->d, c->name_loc,
               "const '%s' is a second dynamic dimension%s; a module has at most one, and '%s' "
               "(declared at %s:%u:%u) is already dynamic",
               c->name, def && def->dynamic ? " (by -D)" : "", E->dyn_name,
               E->dyn_loc.file ? E->dyn_loc.file : "?", E->dyn_loc.line, E->dyn_loc.col);
    return false;
  }
  return true;
}

/* The value of const c after its -D override, if any. */
static Value const_value(Elab *E, const Decl *c, const Define *def) {
  Scope empty = {.prefix = ""};
  bool dyn_call =
      c->value->kind == EX_CALL && strcmp(c->value->name, "dynamic") == 0 && !c->value->as_name;
  Value v = dyn_call ? dynamic_const(E, c) : elab_expr(E, &empty, c->value);
  if (!def) return v;
  if (!def->dynamic) return (Value){.kind = VAL_INT, .i = def->value};
  if (v.kind == VAL_INT || v.kind == VAL_DYN)
    return (Value){.kind = VAL_DYN, .dyn = 1, .i = def->value};
  if (v.kind != VAL_NONE)
    diag_error(E->d, c->name_loc,
               "-D %s=dynamic(max = %lld): const '%s' is %s; only an int "
               "const can become the dynamic dimension",
               c->name, (long long)def->value, c->name, elab_value_str(E, v));
  return (Value){0};
}

static bool elab_consts(Elab *E) {
  bool ok = true;
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *c = E->prog->decls[i];
    if (c->kind != DECL_CONST) continue;
    const Define *def = find_define(E, c->name);
    Value v = const_value(E, c, def);
    if (v.kind == VAL_DYN && !declare_dynamic(E, c, def)) v = (Value){0};
    if (v.kind == VAL_DYN) E->dyn_max = v.i, E->dyn_name = c->name, E->dyn_loc = c->name_loc;
    if (v.kind != VAL_INT && v.kind != VAL_FLOAT && v.kind != VAL_DYN && v.kind != VAL_NONE) {
      diag_error(E->d, c->value->loc, "const '%s' must be a number, got %s", c->name,
                 elab_value_str(E, v));
      v = (Value){0};
    }
    ok &= v.kind != VAL_NONE;
    Binding *b = arena_alloc(&E->scratch, sizeof *b);
    *b = (Binding){c->name, v, c->name_loc, E->consts};
    E->consts = b;
  }
  return ok;
}

static bool check_defines(Elab *E) {
  bool ok = true;
  int n = 0;
  const char **names = arena_alloc(&E->scratch, (size_t)(E->prog->n_decls + 1) * sizeof *names);
  for (int i = 0; i < E->prog->n_decls; i++)
    if (E->prog->decls[i]->kind == DECL_CONST) names[n++] = E->prog->decls[i]->name;
  for (int i = 0; i < E->o->n_defines; i++) {
    const char *name = E->o->defines[i].name;
    if (elab_find_decl(E, DECL_CONST, name) || E->o->defines_optional) continue;
    const char *hint = elab_suggest(name, names, n);
    diag_error(E->d, (SrcLoc){0}, "-D %s=%lld: the model has no const '%s'%s%s%s", name,
               (long long)E->o->defines[i].value, name, hint ? "; did you mean '" : "",
               hint ? hint : "", hint ? "'?" : "");
    ok = false;
  }
  return ok;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* The model a `train` block of the main file names, if any: the default of a file whose
 * trained model is followed by others (examples/gpt.lathe: gpt, then its decode step). */
static const char *trained_model(const Elab *E, const char *main_file) {
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *t = E->prog->decls[i];
    if (t->kind != DECL_TRAIN || t->name_loc.file != main_file) continue;
    for (int k = 0; k < E->prog->n_decls; k++) {
      const Decl *d = E->prog->decls[k];
      if (d->kind == DECL_MODEL && d->name_loc.file == main_file && strcmp(d->name, t->name) == 0)
        return t->name;
    }
  }
  return NULL;
}

/* FrontendOptions.model_name, else the model of the file's train block, else its last */
static const Decl *pick_model(Elab *E, const char *main_file) {
  const Decl *model = NULL;
  const char *want = E->o->model_name ? E->o->model_name : trained_model(E, main_file);
  int n = 0;
  const char **names = arena_alloc(&E->scratch, (size_t)(E->prog->n_decls + 1) * sizeof *names);
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *d = E->prog->decls[i];
    if (d->kind != DECL_MODEL) continue;
    names[n++] = d->name;
    bool in_main = d->name_loc.file == main_file; /* imported files do not compete */
    if (want ? strcmp(d->name, want) == 0 : in_main) model = d;
  }
  if (model) return model;
  if (E->o->model_name) {
    const char *hint = elab_suggest(E->o->model_name, names, n);
    diag_error(E->d, (SrcLoc){0}, "%s has no model '%s'%s%s%s", main_file, E->o->model_name,
               hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  } else { /* at the first declaration of the file, else at its end */
    const Decl *first = NULL;
    for (int i = 0; i < E->prog->n_decls && !first; i++)
      if (E->prog->decls[i]->loc.file == main_file) first = E->prog->decls[i];
    SrcLoc at = first ? first->loc : E->prog->main_end;
    if (!at.file) at = (SrcLoc){main_file, 0, 0};
    diag_error(E->d, at, first ? "no 'model' declaration in this file (this is its first "
                                 "declaration; a model file needs 'model NAME(inputs) { ... }')"
                               : "no 'model' declaration in this file: expected 'model NAME("
                                 "inputs) { ... }', got end of file");
  }
  return NULL;
}

static bool elab_inputs(Elab *E, Scope *s, const Decl *model) {
  bool ok = true;
  for (int i = 0; i < model->n_args; i++) {
    const Arg *a = &model->args[i];
    DType t;
    Shape shape;
    if (elab_lookup(s, a->name)) {
      diag_error(E->d, a->loc, "duplicate input '%s'", a->name);
      ok = false;
      continue;
    }
    if (!elab_type(E, s, a->type, true, &t, &shape)) {
      ok = false;
      elab_bind(E, s, a->name, (Value){0}, a->loc);
      continue;
    }
    int32_t idx = module_add_input(E->m, a->name, t, &shape, elab_loc(E, a->loc));
    NodeId id = graph_add_source(E->g, OP_INPUT, idx, elab_loc(E, a->loc));
    graph_node(E->g, id)->name = E->m->inputs[idx].name;
    graph_node(E->g, id)->shape.dyn = shape.dyn; /* the declared type, dynamic axis included */
    elab_bind(E, s, a->name, elab_tensor_value(id), a->loc);
  }
  return ok;
}

static bool elab_model_body(Elab *E, Scope *s, const Decl *model) {
  bool ok = true;
  for (int i = 0; i < model->n_body && !diag_full(E->d); i++) {
    const Stmt *st = model->body[i];
    Value ignored;
    ok &= elab_stmt(E, s, st, &ignored);
  }
  return ok;
}

/* ---- the train block ---------------------------------------------------------------------- */

/* `*` matches any run of characters (dots included); everything else matches itself.
 * Iterative, retrying only from the last `*` seen: linear stack, O(|g| * |s|) time for any
 * pattern (backtracking over every `*` would be exponential). */
static bool glob_match(const char *g, const char *s) {
  const char *star = NULL, *resume = NULL;
  while (*s) {
    if (*g == '*') {
      star = g++, resume = s;
    } else if (*g == *s) {
      g++, s++;
    } else if (star) {
      g = star + 1, s = ++resume;
    } else {
      return false;
    }
  }
  while (*g == '*') g++;
  return *g == '\0';
}

static bool elab_loss(Elab *E, Scope *s, const StepAst *sa, TrainStep *ts, SrcLoc tloc) {
  if (!sa->loss) {
    diag_error(E->d, sa->name ? sa->loc : tloc, "%s needs 'minimize LOSS'",
               sa->name ? "a train step" : "a train block");
    return false;
  }
  Binding *b = elab_lookup(s, sa->loss);
  if (!b) {
    const char **names = arena_alloc(&E->scratch, 64 * sizeof *names);
    int n = 0;
    for (Binding *c = s->head; c && n < 64; c = c->next)
      names[n++] = c->name;
    const char *hint = elab_suggest(sa->loss, names, n);
    diag_error(E->d, sa->loss_loc, "the model has no binding '%s' to minimize%s%s%s", sa->loss,
               hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
    return false;
  }
  if (b->value.kind == VAL_NONE) return false;
  const Node *n = b->value.kind == VAL_TENSOR ? graph_node(E->g, b->value.node) : NULL;
  if (!n || n->shape.rank != 0 || !dtype_is_float(n->dtype)) {
    diag_error(E->d, sa->loss_loc, "the loss '%s' must be a float scalar (f32[]), but it is %s",
               sa->loss, elab_value_str(E, b->value));
    return false;
  }
  ts->loss = arena_strdup(&E->m->arena, sa->loss);
  ts->loss_node = b->value.node;
  for (int i = 0; i < E->g->n_outputs; i++)
    if (E->g->outputs[i].kind == OUT_LOSS && E->g->outputs[i].node == ts->loss_node) return true;
  graph_add_output(E->g, sa->loss, ts->loss_node, OUT_LOSS, -1);
  return true;
}

/* Suggests an instance pattern "h1.*" (or a param name) close to a glob that matched nothing. */
static const char *suggest_glob(Elab *E, const char *glob) {
  int n = E->m->n_params;
  const char **names = arena_alloc(&E->scratch, (size_t)(2 * n + 1) * sizeof(char *));
  for (int p = 0; p < n; p++) {
    const char *name = E->m->params[p].name, *dot = strrchr(name, '.');
    names[2 * p] = name;
    names[2 * p + 1] = dot ? arena_printf(&E->scratch, "%.*s.*", (int)(dot - name), name) : NULL;
  }
  return elab_suggest(glob, names, 2 * n);
}

static bool elab_globs(Elab *E, const StepAst *sa, TrainStep *ts) {
  bool ok = true;
  ts->param_globs = arena_alloc(&E->m->arena, (size_t)(sa->n_globs + 1) * sizeof(char *));
  for (int i = 0; i < sa->n_globs; i++) {
    bool hit = false;
    for (int p = 0; p < E->m->n_params && !hit; p++)
      hit = glob_match(sa->globs[i], E->m->params[p].name);
    if (!hit) {
      const char *hint = suggest_glob(E, sa->globs[i]);
      diag_error(E->d, sa->glob_locs[i], "'params %s' matches no parameter of the model%s%s%s",
                 sa->globs[i], hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
      ok = false;
    }
    ts->param_globs[ts->n_globs++] = arena_strdup(&E->m->arena, sa->globs[i]);
  }
  return ok;
}

/* `schedule = constant|step|cosine` names the learning-rate schedule; passes/optim.c takes
 * it as the number 0|1|2. Returns VAL_NONE (reporting nothing) for anything else. */
static Value schedule_arg(Elab *E, const char *name, const Expr *e) {
  static const char *const kinds[] = {"constant", "step", "cosine"};
  if (strcmp(name, "schedule") != 0 || e->kind != EX_NAME) return (Value){0};
  for (int k = 0; k < 3; k++)
    if (strcmp(e->name, kinds[k]) == 0) return (Value){.kind = VAL_INT, .i = k};
  const char *hint = elab_suggest(e->name, kinds, 3);
  diag_error(E->d, e->loc, "unknown schedule '%s'; expected constant, step or cosine%s%s%s",
             e->name, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  return (Value){0};
}

/* `adam(lr = 1e-3, beta1 = 0.9)`: named compile-time numbers; their meaning is the
 * optimizer's business (passes/optim.c). */
static bool elab_optim_args(Elab *E, const Expr *o, TrainStep *ts) {
  ts->optim_args = arena_alloc(&E->m->arena, (size_t)(o->n_args + 1) * sizeof *ts->optim_args);
  Scope empty = {.prefix = ""};
  bool ok = true;
  for (int i = 0; i < o->n_args; i++) {
    const char *name = o->arg_names[i];
    int errors = E->d->n_errors;
    if (!name) {
      diag_error(E->d, o->arg_locs[i], "optimizer arguments are named, as in 'adam(lr = 1e-3)'");
      ok = false;
      continue;
    }
    for (int j = 0; j < i; j++) {
      if (o->arg_names[j] && strcmp(o->arg_names[j], name) == 0) {
        diag_error(E->d, o->arg_locs[i], "optimizer argument '%s' given twice", name);
        ok = false;
      }
    }
    Value v = schedule_arg(E, name, o->args[i]);
    if (v.kind == VAL_NONE && E->d->n_errors == errors) v = elab_expr(E, &empty, o->args[i]);
    if (v.kind != VAL_INT && v.kind != VAL_FLOAT) {
      if (v.kind != VAL_NONE)
        diag_error(E->d, o->args[i]->loc, "optimizer argument '%s' must be a number, got %s", name,
                   elab_value_str(E, v));
      ok = false;
      continue;
    }
    ts->optim_args[ts->n_optim_args++] =
        (OptimArg){arena_strdup(&E->m->arena, name), v.kind == VAL_FLOAT ? v.f : (double)v.i,
                   elab_loc(E, o->arg_locs[i])};
  }
  return ok;
}

static bool elab_optimizer(Elab *E, const StepAst *sa, TrainStep *ts, SrcLoc tloc) {
  static const char *const names[] = {"sgd",   "momentum", "nesterov", "adam",
                                      "adamw", "rmsprop",  "adagrad"};
  const Expr *o = sa->optimizer;
  if (!o) {
    diag_error(E->d, sa->name ? sa->loc : tloc,
               "missing 'optimizer', e.g. 'optimizer "
               "adam(lr = 1e-3)'");
    return false;
  }
  bool known = false;
  for (int i = 0; i < 7 && o->name; i++)
    known |= strcmp(o->name, names[i]) == 0;
  if (!known || (o->kind != EX_NAME && o->kind != EX_CALL)) {
    const char *hint = o->name ? elab_suggest(o->name, names, 7) : NULL;
    diag_error(E->d, o->loc,
               "unknown optimizer%s%s%s; expected sgd, momentum, nesterov, adam, "
               "adamw, rmsprop or adagrad%s%s%s",
               o->name ? " '" : "", o->name ? o->name : "", o->name ? "'" : "",
               hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
    return false;
  }
  ts->optimizer = arena_strdup(&E->m->arena, o->name);
  return o->kind != EX_CALL || elab_optim_args(E, o, ts);
}

static bool elab_train(Elab *E, Scope *s, const Decl *model) {
  bool ok = true, found = false;
  for (int i = 0; i < E->prog->n_decls; i++) {
    const Decl *t = E->prog->decls[i];
    if (t->kind != DECL_TRAIN) continue;
    if (strcmp(t->name, model->name) != 0) {
      if (!elab_find_decl(E, DECL_MODEL, t->name)) {
        diag_error(E->d, t->name_loc, "train block '%s' names no model; the model is '%s'", t->name,
                   model->name);
        ok = false;
      }
      continue;
    }
    found = true;
    for (int k = 0; k < t->n_steps; k++) {
      const StepAst *sa = &t->steps[k];
      for (int j = 0; j < k && sa->name; j++) {
        if (strcmp(t->steps[j].name, sa->name) == 0) {
          diag_error(E->d, sa->loc, "step '%s' is already defined at %u:%u", sa->name,
                     t->steps[j].loc.line, t->steps[j].loc.col);
          ok = false;
        }
      }
      TrainStep *ts = module_add_step(E->m);
      ts->name = sa->name ? arena_strdup(&E->m->arena, sa->name) : NULL;
      ts->loc = elab_loc(E, sa->loc);
      ok &= elab_loss(E, s, sa, ts, t->loc);
      ok &= elab_globs(E, sa, ts);
      ok &= elab_optimizer(E, sa, ts, t->loc);
      ok &= elab_prunes(E, sa, ts);
      if (sa->distill) ok &= elab_distill(E, s, sa->distill, ts);
      if (sa->quantize) ok &= elab_qat(E, sa->quantize);
    }
  }
  (void)found;
  return ok;
}

/* ---- entry -------------------------------------------------------------------------------- */

static bool elab_module(Elab *E, const char *main_file) {
  bool unique = check_duplicates(E);
  bool defines_ok = check_defines(E); /* report both kinds before giving up */
  if (!unique || !defines_ok) return false;
  if (!elab_consts(E)) return false;
  const Decl *model = pick_model(E, main_file);
  if (!model) return false;
  E->m = module_new(model->name);
  E->m->source_file = arena_strdup(&E->m->arena, main_file);
  E->g = E->m->model = graph_new(E->m, "model");
  if (E->dyn_max) {
    E->m->dyn_max = E->dyn_max;
    E->m->dyn_name = arena_strdup(&E->m->arena, E->dyn_name);
  }
  Scope s = {.prefix = ""};
  bool ok = elab_inputs(E, &s, model);
  ok &= elab_model_body(E, &s, model);
  if (!diag_full(E->d)) ok &= elab_train(E, &s, model);
  return ok;
}

Module *elab_program(const Program *p, const char *main_file, const FrontendOptions *o, Diag *d) {
  Elab E;
  memset(&E, 0, sizeof E);
  E.prog = p;
  E.o = o;
  E.d = d;
  arena_init(&E.scratch);
  int before = d->n_errors;
  bool ok = elab_module(&E, main_file);
  arena_fini(&E.scratch);
  if (!ok || d->n_errors > before) {
    module_free(E.m);
    return NULL;
  }
  return E.m;
}
