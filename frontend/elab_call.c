/* frontend/elab_call.c — inlining `fn` calls: argument binding, shape unification, params.
 *
 * A call is elaborated by evaluating its arguments in the caller, binding `int` arguments,
 * then unifying each tensor argument's static shape with its declared type: a dimension
 * that is a bare name not yet bound (a shape variable) is bound to the actual size; any
 * other dimension is evaluated and compared; a leading `...` stands for the same leading
 * dims in every argument and the return type. The body is then elaborated in a fresh scope
 * (which sees the consts of the fn's own file, not the caller's bindings), and the result
 * checked against the return type.
 *
 * Naming rule for layer instances (a "layer" is a fn that declares params, directly or via
 * the fns it calls), applied per statement in evaluation order (arguments before the call):
 *   - `f(x) as NAME` is instance PREFIX.NAME; a later `as NAME` reuses its params;
 *   - otherwise, in a binding `b = ...`, the first layer call is instance PREFIX.b, and a
 *     later call of fn F is PREFIX.b.F<k>, k = the number of earlier calls of F there;
 *   - in a `return`, the call of fn F is PREFIX.F<k>.
 * PREFIX is the enclosing instance ("" in the model), so params read `enc.attn.q.w`.
 */
#include "frontend/elab.h"

#include <stdlib.h>
#include <string.h>

static const char *join(Elab *E, const char *prefix, const char *name) {
  if (!prefix || !*prefix) return arena_strdup(&E->scratch, name);
  return arena_printf(&E->scratch, "%s.%s", prefix, name);
}

/* ---- layers and instance names ------------------------------------------------------------ */

/* The search for a param behind a fn's calls: each fn is looked into once per search (a
 * fn seen before had none, or the search would have stopped), so the time is linear in the
 * program even when fns call fns twice; the trees are walked without recursion. */
typedef struct LayerSearch {
  Elab *E;
  const Decl **seen; /* fns looked into (malloc'd) */
  int n_seen, cap_seen;
  int depth;  /* fns entered now */
  bool found; /* a param */
} LayerSearch;

static bool fn_has_param(LayerSearch *ls, const Decl *fn);

static bool visit_call(void *ctx, const Expr *e, int level) {
  LayerSearch *ls = ctx;
  const Decl *fn = e->kind == EX_CALL ? elab_find_decl(ls->E, DECL_FN, e->name) : NULL;
  return !(fn && fn_has_param(ls, fn));
}

static bool seen_before(LayerSearch *ls, const Decl *fn) {
  for (int i = 0; i < ls->n_seen; i++)
    if (ls->seen[i] == fn) return true;
  if (ls->n_seen == ls->cap_seen) {
    int cap = ls->cap_seen ? 2 * ls->cap_seen : 16;
    const Decl **seen = realloc(ls->seen, (size_t)cap * sizeof *seen);
    if (!seen) return true; /* out of memory: look no further (the answer may be "no") */
    ls->seen = seen, ls->cap_seen = cap;
  }
  ls->seen[ls->n_seen++] = fn;
  return false;
}

/* the statements of a body, and of both branches of its `if`s (nested at most 64 deep) */
static void stmts_have_param(LayerSearch *ls, Stmt *const *body, int n) {
  for (int i = 0; i < n && !ls->found; i++) {
    const Stmt *st = body[i];
    ls->found = st->kind == ST_PARAM;
    if (!ls->found && st->value) ast_walk(st->value, false, visit_call, ls);
    if (!ls->found && st->kind == ST_IF) {
      stmts_have_param(ls, st->body, st->n_body);
      stmts_have_param(ls, st->else_body, st->n_else);
    }
  }
}

static bool fn_has_param(LayerSearch *ls, const Decl *fn) {
  /* recursion is reported when the call is elaborated */
  if (ls->found || ls->depth >= 64 || seen_before(ls, fn)) return ls->found;
  ls->depth++;
  stmts_have_param(ls, fn->body, fn->n_body);
  ls->depth--;
  return ls->found;
}

bool elab_fn_is_layer(Elab *E, const Decl *fn) {
  LayerSearch ls = {.E = E};
  bool found = fn_has_param(&ls, fn);
  free(ls.seen);
  return found;
}

static Instance *find_instance(Elab *E, const char *name) {
  for (Instance *i = E->instances; i; i = i->next)
    if (strcmp(i->name, name) == 0) return i;
  return NULL;
}

/* The instance name of a layer call by the naming rule above. */
static const char *derive_instance(Elab *E, Scope *s, const Decl *fn) {
  Naming *n = &s->naming;
  int k = 0;
  while (k < n->n_fns && strcmp(n->fn_names[k], fn->name) != 0)
    k++;
  if (k == n->n_fns) {
    const char **names = arena_alloc(&E->scratch, (size_t)(k + 1) * sizeof *names);
    int *counts = arena_alloc(&E->scratch, (size_t)(k + 1) * sizeof *counts);
    if (k) memcpy(names, n->fn_names, (size_t)k * sizeof *names);
    if (k) memcpy(counts, n->fn_counts, (size_t)k * sizeof *counts);
    names[k] = fn->name;
    n->fn_names = names, n->fn_counts = counts, n->n_fns = k + 1;
  }
  int index = n->fn_counts[k]++;
  const char *local;
  if (n->base && n->n_calls == 0)
    local = n->base;
  else if (n->base)
    local = arena_printf(&E->scratch, "%s.%s%d", n->base, fn->name, index);
  else
    local = arena_printf(&E->scratch, "%s%d", fn->name, index);
  n->n_calls++;
  return join(E, s->prefix, local);
}

/* Picks the instance of a layer call; *shared says its params already exist. */
static const char *call_instance(Elab *E, Scope *s, const Expr *call, const Decl *fn,
                                 bool *shared) {
  *shared = false;
  const char *name = call->as_name ? join(E, s->prefix, call->as_name) : derive_instance(E, s, fn);
  Instance *old = find_instance(E, name);
  if (old && !call->as_name && !s->shared) {
    diag_error(E->d, call->loc,
               "layer instance '%s' already exists (made by '%s' at %u:%u); "
               "write 'as NAME' to share its params or bind to another name",
               name, old->fn->name, old->loc.line, old->loc.col);
    return NULL;
  }
  if (old && old->fn != fn) {
    diag_error(E->d, call->as_name ? call->as_loc : call->loc,
               "'as %s' shares the params of instance '%s', made by '%s' "
               "at %u:%u, but this call is to '%s'",
               call->as_name ? call->as_name : name, name, old->fn->name, old->loc.line,
               old->loc.col, fn->name);
    return NULL;
  }
  if (old) {
    *shared = true;
    return name;
  }
  Instance *i = arena_alloc(&E->scratch, sizeof *i);
  *i = (Instance){name, fn, call->loc, E->instances};
  E->instances = i;
  return name;
}

/* ---- shape unification -------------------------------------------------------------------- */

static bool is_shape_var(Elab *E, Scope *fs, const Expr *d);

/* true if d is an int expression whose names are all bound (so evaluating cannot fail) */
static bool dim_known(Elab *E, Scope *fs, const Expr *d) {
  switch (d->kind) {
  case EX_INT:
    return true;
  case EX_NAME: /* a dotted name is a param's path, never an int: evaluating it fails */
    return !strchr(d->name, '.') && !is_shape_var(E, fs, d);
  case EX_UNARY:
    return dim_known(E, fs, d->lhs);
  case EX_BINARY:
    return d->op != TK_SLASH && d->op != TK_AT && dim_known(E, fs, d->lhs) &&
           dim_known(E, fs, d->rhs);
  default:
    return false;
  }
}

/* A dim as source-like text: "I", "4*hidden", "?" */
static const char *dim_text(Elab *E, const Expr *d) {
  static const char *ops[TK_COUNT] = {[TK_PLUS] = " + ", [TK_MINUS] = " - ", [TK_STAR] = "*"};
  if (d->kind == EX_NAME) return d->name;
  if (d->kind == EX_INT) return arena_printf(&E->scratch, "%lld", (long long)d->ival);
  if (d->kind == EX_BINARY && ops[d->op])
    return arena_printf(&E->scratch, "%s%s%s", dim_text(E, d->lhs), ops[d->op],
                        dim_text(E, d->rhs));
  return "?";
}

/* The declared type with what is known substituted: "f32[..., 784]". */
static const char *type_str(Elab *E, Scope *fs, const TypeExpr *t) {
  if (type_is_scalar(t)) return t->is_int ? "int" : t->is_float ? "float" : "bool";
  DType dt;
  const char *dname = t->dtype;
  if (dtype_from_name(t->dtype, &dt)) {
    if (dt == DT_F32) dt = elab_float_dtype(E);
    dname = dtype_name(dt);
  }
  char *out = arena_printf(&E->scratch, "%s[", dname);
  for (int i = 0; i < t->n_dims; i++) {
    const Expr *d = t->dims[i];
    const char *ds = d->kind == EX_ELLIPSIS ? "..." : dim_text(E, d);
    if (d->kind != EX_ELLIPSIS && dim_known(E, fs, d)) {
      Value v = elab_expr(E, fs, d);
      if (v.kind == VAL_INT) ds = arena_printf(&E->scratch, "%lld", (long long)v.i);
      if (v.kind == VAL_DYN && v.dyn == 1) /* as shape_str prints it: n<=64, 28n<=1792 */
        ds = arena_printf(&E->scratch, "n<=%lld", (long long)v.i);
      else if (v.kind == VAL_DYN)
        ds = arena_printf(&E->scratch, "%lldn<=%lld", (long long)v.dyn, (long long)v.i);
    }
    out = arena_printf(&E->scratch, "%s%s%s", out, i ? ", " : "", ds);
  }
  return arena_printf(&E->scratch, "%s]", out);
}

static bool is_shape_var(Elab *E, Scope *fs, const Expr *d) { /* dotted: a param's path */
  return d->kind == EX_NAME && !strchr(d->name, '.') && !elab_lookup(fs, d->name) &&
         !elab_const(E, fs, d->name);
}

/* One declared dim d against the actual size (dyn: the actual is dyn * n, at the bound). A
 * shape variable is bound to it, symbolic when dynamic (so `zeros(f32[B, H])` in a layer
 * follows a dynamic batch); anything else must evaluate to the same int, or the same k * N. */
static bool unify_dim(Elab *E, Scope *fs, const Expr *d, int64_t actual, int64_t dyn) {
  if (is_shape_var(E, fs, d)) {
    Value v = {.kind = dyn ? VAL_DYN : VAL_INT, .i = actual, .dyn = dyn};
    elab_bind(E, fs, d->name, v, d->loc);
    return true;
  }
  Value v = elab_expr(E, fs, d);
  if (v.kind == VAL_DYN) return v.dyn == dyn && v.i == actual;
  int64_t want;
  if (!elab_int(E, v, d->loc, "a dimension", &want)) return false;
  return dyn == 0 && want == actual;
}

/* Unifies the declared dims of t with the actual shape; binds shape variables in fs. Only
 * axis 0 of s can be dynamic: it is in the leading `...` when that has an axis, else it is
 * the first declared dim. */
static bool unify_dims(Elab *E, Scope *fs, const TypeExpr *t, const Shape *s) {
  int first = 0, n_fixed = t->n_dims;
  if (t->n_dims > 0 && t->dims[0]->kind == EX_ELLIPSIS) {
    first = 1, n_fixed--;
    if (s->rank < n_fixed) return false;
    Shape lead = shape_make(s->rank - n_fixed, s->dim);
    lead.dyn = lead.rank ? s->dyn : 0;
    if (fs->has_ellipsis && !shape_equal(&lead, &fs->ellipsis)) return false;
    fs->has_ellipsis = true, fs->ellipsis = lead;
  } else if (s->rank != n_fixed) {
    return false;
  }
  int offset = s->rank - n_fixed;
  for (int i = first; i < t->n_dims; i++) {
    int axis = offset + i - first;
    if (!unify_dim(E, fs, t->dims[i], s->dim[axis], axis == 0 ? s->dyn : 0)) return false;
  }
  return true;
}

static bool check_ellipsis_first(Elab *E, const TypeExpr *t) {
  for (int i = 1; i < t->n_dims; i++) {
    if (t->dims[i]->kind == EX_ELLIPSIS) {
      diag_error(E->d, t->dims[i]->loc, "'...' may only be the first dimension of a type");
      return false;
    }
  }
  return true;
}

/* Binds argument k of fn (already evaluated) into the fn scope. */
static bool bind_arg(Elab *E, Scope *fs, const Expr *call, const Arg *arg, Value v, SrcLoc loc) {
  const Decl *fn = fs->fn;
  if (v.kind == VAL_NONE) return false;
  if (arg->type->is_int) {
    int64_t i;
    if (!elab_int(E, v, loc,
                  arena_printf(&E->scratch, "argument '%s' of '%s'", arg->name, fn->name), &i))
      return false;
    elab_bind(E, fs, arg->name, (Value){.kind = VAL_INT, .i = i}, arg->loc);
    return true;
  }
  if (arg->type->is_float || arg->type->is_bool) {
    bool ok = arg->type->is_bool ? v.kind == VAL_BOOL : v.kind == VAL_INT || v.kind == VAL_FLOAT;
    if (!ok) {
      diag_error(E->d, loc, "argument '%s' of '%s' must be %s, got %s", arg->name, fn->name,
                 arg->type->is_bool ? "true or false" : "a number", elab_value_str(E, v));
      return false;
    }
    if (v.kind == VAL_INT && arg->type->is_float) v = (Value){.kind = VAL_FLOAT, .f = (double)v.i};
    elab_bind(E, fs, arg->name, v, arg->loc);
    return true;
  }
  DType want;
  if (!check_ellipsis_first(E, arg->type) ||
      !elab_dtype(E, arg->type->dtype, arg->type->loc, &want))
    return false;
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT)
    v = elab_tensor_value(elab_scalar_node(E, v, want, loc));
  if (v.kind != VAL_TENSOR) {
    diag_error(E->d, loc, "argument '%s' of '%s' must be a tensor %s, got %s", arg->name, fn->name,
               type_str(E, fs, arg->type), elab_value_str(E, v));
    return false;
  }
  const Node *n = graph_node(E->g, v.node);
  if (n->dtype != want || !unify_dims(E, fs, arg->type, &n->shape)) {
    diag_error(E->d, loc, "in call to '%s': argument '%s' must be %s, got %s", fn->name, arg->name,
               type_str(E, fs, arg->type), elab_value_str(E, v));
    diag_note(E->d, elab_loc(E, arg->loc), "'%s' is declared here as %s", arg->name,
              type_str(E, &(Scope){0}, arg->type));
    return false;
  }
  elab_bind(E, fs, arg->name, v, arg->loc);
  (void)call;
  return true;
}

typedef struct BoundCheck {
  Elab *E;
  const Scope *fs;
} BoundCheck;

/* true if every name e reads is bound in fs (a default that can be evaluated now) */
static bool names_bound(void *ctx, const Expr *e, int depth) {
  const BoundCheck *bc = ctx;
  (void)depth;
  return e->kind != EX_NAME || elab_lookup(bc->fs, e->name) || elab_const(bc->E, bc->fs, e->name);
}

/* Evaluates and binds the default of argument i (omitted in the call) in the fn's scope. */
static bool bind_default(Elab *E, Scope *fs, const Expr *call, int i) {
  const Arg *arg = &fs->fn->args[i];
  Value v = elab_expr(E, fs, arg->def);
  return v.kind != VAL_NONE && bind_arg(E, fs, call, arg, v, arg->def->loc);
}

/* The given arguments are evaluated in the caller and bound: scalars first, so that tensor
 * types may mention them, then tensors. An omitted argument's default is evaluated in the
 * fn's scope: a scalar's before the tensors when the names it reads are bound by then (so a
 * tensor type may mention it), else after them (so it may read a shape variable,
 * `hidden: int = 4 * D`); a tensor's last. */
static bool bind_args(Elab *E, Scope *caller, Scope *fs, const Expr *call) {
  const Decl *fn = fs->fn;
  const char **names = arena_alloc(&E->scratch, (size_t)(fn->n_args + 1) * sizeof *names);
  const Expr **args = arena_alloc(&E->scratch, (size_t)(fn->n_args + 1) * sizeof *args);
  Value *vals = arena_alloc(&E->scratch, (size_t)(fn->n_args + 1) * sizeof *vals);
  for (int i = 0; i < fn->n_args; i++)
    names[i] = fn->args[i].name;
  if (!elab_match_args(E, call, names, fn->n_args, args)) return false;
  bool ok = true;
  for (int i = 0; i < fn->n_args; i++) {
    if (!args[i] && !fn->args[i].def) {
      diag_error(E->d, call->loc, "missing argument '%s' in call to '%s'", names[i], fn->name);
      return false;
    }
    if (args[i]) vals[i] = elab_expr(E, caller, args[i]);
    ok &= !args[i] || vals[i].kind != VAL_NONE;
  }
  /* pass 0: given scalars; 1: defaulted scalars that can be evaluated now; 2: given tensors;
   * 3: the other defaulted scalars; 4: defaulted tensors */
  for (int pass = 0; ok && pass < 5; pass++) {
    for (int i = 0; ok && i < fn->n_args; i++) {
      bool scalar = type_is_scalar(fn->args[i].type), given = args[i] != NULL;
      if (given && (pass == 0 || pass == 2) && scalar == (pass == 0)) {
        ok = bind_arg(E, fs, call, &fn->args[i], vals[i], args[i]->loc);
      } else if (!given && !elab_lookup(fs, names[i])) {
        BoundCheck bc = {E, fs};
        bool now = pass == 4 || (scalar && pass == 3) ||
                   (scalar && pass == 1 && ast_walk(fn->args[i].def, false, names_bound, &bc));
        if (now) ok = bind_default(E, fs, call, i);
      }
    }
  }
  return ok;
}

/* One returned value v against the declared type t (of item `item` of a tuple, or -1). */
static bool check_return_type(Elab *E, Scope *fs, const Expr *call, const TypeExpr *t, Value v,
                              int item) {
  const Decl *fn = fs->fn;
  if (t->is_int) {
    int64_t i;
    return elab_int(E, v, call->loc, arena_printf(&E->scratch, "the result of '%s'", fn->name),
                    &i);
  }
  if (type_is_scalar(t)) {
    diag_error(E->d, t->loc, "a fn returns tensors or an int, not a %s",
               t->is_bool ? "bool" : "float");
    return false;
  }
  DType want;
  if (!check_ellipsis_first(E, t) || !elab_dtype(E, t->dtype, t->loc, &want)) return false;
  for (int i = 0; i < t->n_dims; i++) {
    if (is_shape_var(E, fs, t->dims[i])) {
      diag_error(E->d, t->dims[i]->loc,
                 "the return type of '%s' uses '%s', which no argument "
                 "binds",
                 fn->name, t->dims[i]->name);
      return false;
    }
  }
  Scope probe = *fs; /* unify a copy so that the return type cannot bind anything */
  bool ok = v.kind == VAL_TENSOR && graph_node(E->g, v.node)->dtype == want &&
            unify_dims(E, &probe, t, &graph_node(E->g, v.node)->shape);
  if (!ok) {
    const char *what = item < 0 ? "" : arena_printf(&E->scratch, " as item %d", item);
    diag_error(E->d, call->loc, "'%s' returns %s%s, but its declared return type is %s",
               fn->name, elab_value_str(E, v), what, type_str(E, fs, t));
    diag_note(E->d, elab_loc(E, t->loc), "return type declared here");
  }
  return ok;
}

static bool check_return(Elab *E, Scope *fs, const Expr *call, Value ret) {
  const Decl *fn = fs->fn;
  if (ret.kind == VAL_NONE) return false;
  if (!fn->n_rets) return check_return_type(E, fs, call, fn->ret, ret, -1);
  if (ret.kind != VAL_TUPLE || ret.n_items != fn->n_rets) {
    diag_error(E->d, call->loc, "'%s' returns %s, but its declared return type is a tuple of %d",
               fn->name, elab_value_str(E, ret), fn->n_rets);
    return false;
  }
  bool ok = true;
  for (int i = 0; i < fn->n_rets && ok; i++)
    ok = check_return_type(E, fs, call, fn->rets[i], elab_tensor_value((NodeId)ret.items[i]), i);
  return ok;
}

Value elab_fn_call(Elab *E, Scope *s, const Expr *call, const Decl *fn) {
  for (int i = 0; i < E->depth; i++) {
    if (E->stack[i] == fn) {
      diag_error(E->d, call->loc,
                 "'%s' calls itself; fns are inlined, so recursion is not "
                 "allowed",
                 fn->name);
      return (Value){0};
    }
  }
  if (E->depth == (int)(sizeof E->stack / sizeof E->stack[0])) {
    diag_error(E->d, call->loc, "fn calls nested too deeply (limit %d)",
               (int)(sizeof E->stack / sizeof E->stack[0]));
    return (Value){0};
  }
  if (++E->n_inlined > ELAB_MAX_INLINED) { /* fns calling fns twice grow exponentially */
    if (E->n_inlined == ELAB_MAX_INLINED + 1)
      diag_error(E->d, call->loc, "too many fn calls to inline (limit %d): the model would be "
                 "too large", ELAB_MAX_INLINED);
    return (Value){0};
  }
  Scope fs = {.fn = fn, .prefix = ""};
  bool layer = elab_fn_is_layer(E, fn);
  bool shared = false;
  if (!layer && call->as_name) {
    diag_error(E->d, call->as_loc, "'as %s' needs a call to a fn with params; '%s' has none",
               call->as_name, fn->name);
    return (Value){0};
  }
  if (!bind_args(E, s, &fs, call)) return (Value){0};
  if (layer) fs.prefix = call_instance(E, s, call, fn, &shared);
  if (!fs.prefix) return (Value){0};
  fs.shared = shared;
  /* a fn of another file (the library) called from the user's: its errors belong at this call,
   * with a note inside the fn (ir/diag.h: Diag.site) */
  SrcLoc outer_site = E->d->site;
  const char *outer_fn = E->d->site_fn;
  if (!outer_site.file && call->loc.file && fn->loc.file && strcmp(call->loc.file, fn->loc.file))
    E->d->site = elab_loc(E, call->loc), E->d->site_fn = fn->name;
  E->stack[E->depth++] = fn;
  Value ret = {0};
  bool ok = elab_stmts(E, &fs, fn->body, fn->n_body, &ret);
  bool returned = fs.returned;
  E->depth--;
  E->d->site = outer_site, E->d->site_fn = outer_fn;
  if (!returned && ok && !diag_full(E->d)) {
    diag_error(E->d, fn->name_loc, "fn '%s' has no 'return'", fn->name);
    return (Value){0};
  }
  if (!ok || !check_return(E, &fs, call, ret)) return (Value){0};
  return ret;
}

/* ---- statements --------------------------------------------------------------------------- */

/* The statements of a fn body or of a taken `if` branch, up to a `return` (s->returned). A
 * statement right after a `return` in the same block is an error; one after an `if` whose
 * taken branch returned is simply not reached. */
bool elab_stmts(Elab *E, Scope *s, Stmt *const *body, int n, Value *ret) {
  bool ok = true;
  for (int i = 0; i < n && !s->returned; i++) {
    ok &= elab_stmt(E, s, body[i], ret);
    if (body[i]->kind == ST_RETURN) s->returned = true;
    if (body[i]->kind == ST_RETURN && i + 1 < n) {
      diag_error(E->d, body[i + 1]->loc, "statement after 'return' in '%s'",
                 s->fn ? s->fn->name : "the model");
      ok = false;
    }
    if (diag_full(E->d)) break;
  }
  return ok;
}

/* `if cond { ... } else { ... }`: cond is a compile-time bool (a bool argument, a comparison
 * of ints); only the branch taken is elaborated, in the enclosing scope, so its bindings and
 * params are visible after the `if` and the other branch may be ill-typed for these
 * arguments (like C++'s `if constexpr`). */
static bool elab_if(Elab *E, Scope *s, const Stmt *st, Value *ret) {
  if (E->scan_depth > 0) {
    diag_error(E->d, st->loc, "'if' is not allowed in a scan body; choose before the scan");
    return false;
  }
  Value c = elab_expr(E, s, st->value);
  if (c.kind == VAL_NONE) return false;
  if (c.kind != VAL_BOOL) {
    diag_error(E->d, st->value->loc,
               "the condition of 'if' must be a compile-time bool (true, false, a bool "
               "argument or a comparison of numbers), got %s",
               elab_value_str(E, c));
    return false;
  }
  return c.i ? elab_stmts(E, s, st->body, st->n_body, ret)
             : elab_stmts(E, s, st->else_body, st->n_else, ret);
}

bool elab_init(Elab *E, Scope *s, const Expr *e, InitSpec *out) {
  static const char *const inits[] = {"zeros",         "ones",       "constant",
                                      "uniform",       "normal",     "glorot_uniform",
                                      "glorot_normal", "he_uniform", "he_normal",
                                      "orthogonal"};
  int n_inits = (int)(sizeof inits / sizeof inits[0]);
  memset(out, 0, sizeof *out);
  if ((e->kind != EX_NAME && e->kind != EX_CALL) || !init_from_name(e->name, &out->kind)) {
    const char *hint = e->name ? elab_suggest(e->name, inits, n_inits) : NULL;
    diag_error(E->d, e->loc,
               "unknown initializer%s%s%s; expected zeros, ones, constant(v), "
               "uniform(lo, hi), normal(mean, std), glorot_uniform, glorot_normal, he_uniform, "
               "he_normal or orthogonal%s%s%s",
               e->name ? " '" : "", e->name ? e->name : "", e->name ? "'" : "",
               hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
    return false;
  }
  int want = out->kind == INIT_CONSTANT                              ? 1
             : out->kind == INIT_UNIFORM || out->kind == INIT_NORMAL ? 2
                                                                     : 0;
  int got = e->kind == EX_CALL ? e->n_args : 0;
  if (got != want) {
    diag_error(E->d, e->loc, "initializer '%s' takes %d argument%s, got %d", e->name, want,
               want == 1 ? "" : "s", got);
    return false;
  }
  double *slots[2] = {&out->a, &out->b};
  for (int i = 0; i < got; i++) {
    Value v = elab_expr(E, s, e->args[i]);
    if (v.kind == VAL_NONE) return false;
    if (v.kind != VAL_INT && v.kind != VAL_FLOAT) {
      diag_error(E->d, e->args[i]->loc, "initializer arguments must be numbers, got %s",
                 elab_value_str(E, v));
      return false;
    }
    *slots[i] = v.kind == VAL_FLOAT ? v.f : (double)v.i;
  }
  return true;
}

/* `param NAME: TYPE = INIT` in a fn (named PREFIX.NAME) or in a model (named NAME). */
static bool elab_param(Elab *E, Scope *s, const Stmt *st) {
  DType t;
  Shape shape;
  InitSpec init;
  if (!elab_type(E, s, st->type, false, &t, &shape) || !elab_init(E, s, st->value, &init))
    return false;
  const char *name = join(E, s->prefix, st->names[0]);
  if (E->scan_depth > 0) {
    diag_error(E->d, st->loc, "parameter '%s' is declared inside a scan body; declare it "
               "before the scan and use it inside", name);
    return false;
  }
  int32_t idx = module_find_param(E->m, name);
  if (idx >= 0 && !s->shared) {
    SrcLoc at = E->m->params[idx].loc;
    diag_error(E->d, st->loc, "parameter '%s' is already declared (at %s:%u:%u)", name,
               at.file ? at.file : "?", at.line, at.col);
    return false;
  }
  if (idx >= 0) {
    const TensorDecl *p = &E->m->params[idx];
    if (p->dtype != t || !shape_equal(&p->shape, &shape)) {
      char a[200], b[200];
      diag_error(E->d, st->loc, "shared parameter '%s' is %s%s, but this call needs %s%s", name,
                 dtype_name(p->dtype), shape_str(&p->shape, a, sizeof a), dtype_name(t),
                 shape_str(&shape, b, sizeof b));
      return false;
    }
  } else {
    idx = module_add_param(E->m, name, t, &shape, init, elab_loc(E, st->loc));
    if (idx >= E->cap_param_nodes) {
      int cap = E->cap_param_nodes ? 2 * E->cap_param_nodes : 16;
      NodeId *p = arena_alloc(&E->scratch, (size_t)cap * sizeof *p);
      if (E->cap_param_nodes) memcpy(p, E->param_nodes, (size_t)idx * sizeof *p);
      E->param_nodes = p, E->cap_param_nodes = cap;
    }
    E->param_nodes[idx] = graph_add_source(E->g, OP_PARAM, idx, elab_loc(E, st->loc));
    graph_node(E->g, E->param_nodes[idx])->name = E->m->params[idx].name;
  }
  elab_bind(E, s, st->names[0], elab_tensor_value(E->param_nodes[idx]), st->name_locs[0]);
  return true;
}

NodeId elab_param_path(Elab *E, const Scope *s, const char *path, SrcLoc loc) {
  const char *name = join(E, s->prefix, path);
  if (E->scan_depth > 0) {
    diag_error(E->d, loc,
               "the param '%s' is named inside a scan body; bind it before the scan "
               "('w = %s') and use that name inside",
               name, path);
    return IR_NONE;
  }
  int32_t idx = module_find_param(E->m, name);
  if (idx >= 0) return E->param_nodes[idx];
  const char **names = arena_alloc(&E->scratch, (size_t)(E->m->n_params + 1) * sizeof *names);
  for (int i = 0; i < E->m->n_params; i++)
    names[i] = E->m->params[i].name;
  const char *hint = elab_suggest(name, names, E->m->n_params);
  diag_error(E->d, loc,
             "no param '%s' (yet): a dotted name refers to a param made by an "
             "earlier statement, as in 'tok.table' after 'tok = embed(...)'%s%s%s",
             name, hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  return IR_NONE;
}

/* Names the node of a binding (unless it already has a name: `a = b` keeps b's). */
static void name_node(Elab *E, Scope *s, const char *name, Value v) {
  if (v.kind != VAL_TENSOR) return;
  Node *n = graph_node(E->g, v.node);
  if (n->name || n->op == OP_CONST) return;
  n->name = arena_strdup(&E->g->arena, s->fn && *s->prefix
                                           ? arena_printf(&E->scratch, "%s.%s", s->prefix, name)
                                           : name);
}

static bool check_new_name(Elab *E, Scope *s, const char *name, SrcLoc loc) {
  Binding *b = elab_lookup(s, name);
  if (!b) return true;
  diag_error(E->d, loc, "'%s' is already defined at %u:%u", name, b->loc.line, b->loc.col);
  return false;
}

static bool elab_stmt_inner(Elab *E, Scope *s, const Stmt *st, Value *ret);

/* On failure, names the statement would have bound are bound to VAL_NONE, so that later
 * uses stay silent instead of reporting "unknown name". */
bool elab_stmt(Elab *E, Scope *s, const Stmt *st, Value *ret) {
  if (elab_stmt_inner(E, s, st, ret)) return true;
  bool binds = st->kind == ST_BIND || st->kind == ST_PARAM || st->kind == ST_STATE ||
               (st->kind == ST_OUTPUT && st->value);
  for (int k = 0; binds && k < st->n_names; k++)
    if (!elab_lookup(s, st->names[k])) elab_bind(E, s, st->names[k], (Value){0}, st->name_locs[k]);
  return false;
}

static bool elab_stmt_inner(Elab *E, Scope *s, const Stmt *st, Value *ret) {
  memset(&s->naming, 0, sizeof s->naming);
  if (st->kind == ST_IF) return elab_if(E, s, st, ret);
  if (st->kind == ST_PARAM)
    return check_new_name(E, s, st->names[0], st->name_locs[0]) && elab_param(E, s, st);
  if (st->kind == ST_STATE)
    return check_new_name(E, s, st->names[0], st->name_locs[0]) && elab_state_stmt(E, s, st);
  if (st->kind == ST_UPDATE) return elab_update_stmt(E, s, st);
  if (st->kind == ST_RETURN) {
    if (!s->fn) {
      diag_error(E->d, st->loc, "'return' is only allowed in a fn; a model uses 'output'");
      return false;
    }
    *ret = elab_expr(E, s, st->value);
    return ret->kind != VAL_NONE;
  }
  if (st->kind == ST_OUTPUT && s->fn) {
    diag_error(E->d, st->loc, "'output' is only allowed in a model; a fn uses 'return'");
    return false;
  }
  bool is_alias = st->kind == ST_OUTPUT && !st->value;
  for (int i = 0; i < st->n_names && !is_alias; i++)
    if (!check_new_name(E, s, st->names[i], st->name_locs[i])) return false;
  Value v;
  if (is_alias) { /* `output a` of an existing binding */
    Expr e = {.kind = EX_NAME, .loc = st->name_locs[0], .name = st->names[0]};
    v = elab_expr(E, s, &e);
  } else {
    s->naming.base = st->names[0];
    v = elab_expr(E, s, st->value);
  }
  if (st->kind == ST_BIND && st->n_names > 1 && v.kind == VAL_TUPLE &&
      v.n_items == st->n_names) {
    for (int i = 0; i < st->n_names; i++) { /* a, b = split(x, 2) */
      Value part = elab_tensor_value((NodeId)v.items[i]);
      elab_bind(E, s, st->names[i], part, st->name_locs[i]);
      name_node(E, s, st->names[i], part);
    }
    return true;
  }
  if (st->n_names > 1 && v.kind != VAL_NONE) {
    diag_error(E->d, st->loc,
               "cannot destructure %s into %d names: expected a tuple of %d tensors "
               "(as returned by split)",
               elab_value_str(E, v), st->n_names, st->n_names);
    v = (Value){0};
  }
  if (st->kind == ST_OUTPUT && v.kind != VAL_NONE && v.kind != VAL_TENSOR) {
    diag_error(E->d, st->loc, "output '%s' must be a tensor, got %s", st->names[0],
               elab_value_str(E, v));
    v = (Value){0};
  }
  for (int i = 0; i < st->n_names; i++) {
    if (!is_alias) elab_bind(E, s, st->names[i], v, st->name_locs[i]);
    name_node(E, s, st->names[i], v);
  }
  if (st->kind == ST_OUTPUT && v.kind == VAL_TENSOR)
    graph_add_output(E->g, st->names[0], v.node, OUT_VALUE, -1);
  return v.kind != VAL_NONE;
}
