/* frontend/elab_prune.c — the `prune` statements of a train step (issue 20,
 * docs/compression.md "In the model file") into TrainStep.prunes.
 *
 *   prune GLOB {, GLOB} magnitude(sparsity, begin = 0, end = begin, every = 100, initial = 0,
 *                                 global = false)
 *                       channels(sparsity, norm = l1|l2, begin, end, every, initial)
 *                       n_of_m(n, m, begin, end, every)
 *
 * Arguments are compile-time numbers, positional in that order or named. Everything a user
 * can get wrong is reported here, at the statement: a glob that matches no param, a param
 * pruned twice, a sparsity outside [0, 1), a schedule that ends before it begins, a
 * structured kind on a param that no dense layer or conv2d reads as its weight, an N:M whose
 * reduction axis is not a multiple of m. The masks and the schedule are built into the train
 * step by passes/prune_train.c.
 */
#include "elab.h"
#include "ir/prune.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

enum { ARG_MAX = 6 };

/* the arguments of each kind, in positional order; `required` leading ones have no default */
static const struct PruneKindInfo {
  const char *name;
  PruneKind kind;
  int required;
  const char *args[ARG_MAX + 1];
} kind_table[] = {
    {"magnitude",
     PRUNE_MAGNITUDE,
     1,
     {"sparsity", "begin", "end", "every", "initial", "global", NULL}},
    {"channels", PRUNE_CHANNELS, 1, {"sparsity", "norm", "begin", "end", "every", "initial"}},
    {"n_of_m", PRUNE_N_OF_M, 2, {"n", "m", "begin", "end", "every", NULL}},
};
enum { KIND_TABLE_COUNT = sizeof kind_table / sizeof kind_table[0] };
_Static_assert((int)KIND_TABLE_COUNT == (int)PRUNE_KIND_COUNT, "one row per PruneKind of ir.h");

typedef struct PruneArgs {
  double v[ARG_MAX];
  bool given[ARG_MAX];
  SrcLoc at[ARG_MAX];
} PruneArgs;

static int arg_index(const struct PruneKindInfo *k, const char *name) {
  for (int i = 0; i < ARG_MAX && k->args[i]; i++)
    if (strcmp(k->args[i], name) == 0) return i;
  return -1;
}

/* one argument's value: a number, true/false, or (channels' norm) l1/l2 */
static bool arg_value(Elab *E, const char *name, const Expr *e, double *out) {
  if (strcmp(name, "norm") == 0) {
    bool l1 = e->kind == EX_NAME && strcmp(e->name, "l1") == 0;
    bool l2 = e->kind == EX_NAME && strcmp(e->name, "l2") == 0;
    if (!l1 && !l2) diag_error(E->d, e->loc, "norm must be l1 or l2");
    *out = l1 ? 1 : 2;
    return l1 || l2;
  }
  Scope empty = {.prefix = ""};
  Value v = elab_expr(E, &empty, e);
  bool want_bool = strcmp(name, "global") == 0;
  if (want_bool ? v.kind == VAL_BOOL : v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    *out = v.kind == VAL_FLOAT ? v.f : (double)v.i;
    return true;
  }
  if (v.kind != VAL_NONE)
    diag_error(E->d, e->loc, "prune argument '%s' must be %s, got %s", name,
               want_bool ? "true or false" : "a number", elab_value_str(E, v));
  return false;
}

static bool read_args(Elab *E, const struct PruneKindInfo *k, const Expr *call, PruneArgs *a) {
  bool ok = true;
  for (int i = 0; call->kind == EX_CALL && i < call->n_args; i++) {
    const char *name = call->arg_names[i];
    int id = name ? arg_index(k, name) : i < ARG_MAX && k->args[i] ? i : -1;
    if (id < 0) {
      char list[200] = "";
      for (int j = 0; j < ARG_MAX && k->args[j]; j++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                 k->args[j]);
      if (name)
        diag_error(E->d, call->arg_locs[i], "%s has no argument '%s'; expected one of %s", k->name,
                   name, list);
      else
        diag_error(E->d, call->arg_locs[i], "%s takes at most the arguments %s", k->name, list);
      ok = false;
      continue;
    }
    if (a->given[id]) {
      diag_error(E->d, call->arg_locs[i], "%s: argument '%s' given twice", k->name, k->args[id]);
      ok = false;
      continue;
    }
    a->given[id] = arg_value(E, k->args[id], call->args[i], &a->v[id]);
    a->at[id] = call->arg_locs[i];
    ok &= a->given[id];
  }
  for (int i = 0; ok && i < k->required; i++)
    if (!a->given[i]) {
      diag_error(E->d, call->loc, "%s needs %s, e.g. %s", k->name, k->args[i],
                 k->kind == PRUNE_N_OF_M ? "n_of_m(n = 2, m = 4)" : "magnitude(sparsity = 0.9)");
      ok = false;
    }
  return ok;
}

static double arg_or(const struct PruneKindInfo *k, const PruneArgs *a, const char *name,
                     double def) {
  int i = arg_index(k, name);
  return i >= 0 && a->given[i] ? a->v[i] : def;
}

static SrcLoc arg_loc(const struct PruneKindInfo *k, const PruneArgs *a, const char *name,
                      SrcLoc def) {
  int i = arg_index(k, name);
  return i >= 0 && a->given[i] ? a->at[i] : def;
}

/* the numbers of spec from its arguments, each checked at its own location */
static bool fill_spec(Elab *E, const struct PruneKindInfo *k, const PruneArgs *a, SrcLoc loc,
                      PruneSpec *ps) {
  bool ok = true;
  ps->sparsity = arg_or(k, a, "sparsity", 0);
  ps->initial = arg_or(k, a, "initial", 0);
  for (int i = 0; i < 2; i++) {
    const char *name = i ? "initial" : "sparsity";
    double s = i ? ps->initial : ps->sparsity;
    if (!(s >= 0 && s < 1)) {
      diag_error(E->d, arg_loc(k, a, name, loc), "%s = %g is outside [0, 1)", name, s);
      ok = false;
    }
  }
  double begin = arg_or(k, a, "begin", 0), end = arg_or(k, a, "end", begin);
  double every = arg_or(k, a, "every", 100);
  const char *names[3] = {"begin", "end", "every"};
  double vals[3] = {begin, end, every}, lows[3] = {0, begin, 1};
  for (int i = 0; i < 3; i++)
    if (vals[i] != floor(vals[i]) || vals[i] < lows[i] || vals[i] > 1e15) {
      diag_error(E->d, arg_loc(k, a, names[i], loc), "%s = %g must be an integer >= %s", names[i],
                 vals[i],
                 i == 0   ? "0"
                 : i == 1 ? "begin"
                          : "1");
      ok = false;
    }
  ps->begin = (int64_t)begin, ps->end = (int64_t)end, ps->every = (int64_t)every;
  ps->global = arg_or(k, a, "global", 0) != 0;
  ps->norm = (int32_t)arg_or(k, a, "norm", 1);
  double n = arg_or(k, a, "n", 1), m = arg_or(k, a, "m", 1);
  if (k->kind == PRUNE_N_OF_M && (n != floor(n) || m != floor(m) || n < 1 || n > m || m > 64)) {
    diag_error(E->d, arg_loc(k, a, "n", loc),
               "n_of_m needs integers 1 <= n <= m <= 64, got "
               "n = %g, m = %g",
               n, m);
    ok = false;
  }
  ps->n = (int32_t)n, ps->m = (int32_t)m;
  return ok;
}

/* where param p is already pruned (a statement of this or an earlier step), or NULL */
static const PruneSpec *pruned_by(const Module *m, const TrainStep *ts, int32_t p) {
  for (int s = 0; s < m->n_steps; s++)
    for (int i = 0; i < m->steps[s].n_prunes; i++)
      for (int j = 0; j < m->steps[s].prunes[i].n_params; j++)
        if (m->steps[s].prunes[i].params[j] == p) return &m->steps[s].prunes[i];
  for (int i = 0; i < ts->n_prunes; i++)
    for (int j = 0; j < ts->prunes[i].n_params; j++)
      if (ts->prunes[i].params[j] == p) return &ts->prunes[i];
  return NULL;
}

/* a structured kind needs a weight with output channels (and N:M a reduction axis that m
 * divides): the rules of `lathe prune`, with the param named */
static bool check_structured(Elab *E, const PruneSpec *ps, int32_t p, SrcLoc loc) {
  const TensorDecl *d = &E->m->params[p];
  int axis = prune_output_axis(E->m->model, p);
  const char *kind = ps->kind == PRUNE_CHANNELS ? "channels" : "n_of_m";
  if (axis < 0) {
    diag_error(E->d, loc,
               "prune %s: '%s' is not the weight of a dense layer or a conv2d, so it "
               "has no output channels",
               kind, d->name);
    return false;
  }
  int64_t size = shape_numel(&d->shape);
  int64_t channels = axis == 1 ? d->shape.dim[d->shape.rank - 1] : d->shape.dim[0];
  int64_t length = size / channels;
  if (ps->kind == PRUNE_N_OF_M && length % ps->m != 0) {
    diag_error(E->d, loc,
               "prune n_of_m(%d, %d): '%s' reduces over %lld weights per output "
               "channel, not a multiple of %d",
               ps->n, ps->m, d->name, (long long)length, ps->m);
    return false;
  }
  return true;
}

/* the params the globs match, each once, in module order */
static bool match_params(Elab *E, const PruneAst *pa, const TrainStep *ts, PruneSpec *ps) {
  Module *m = E->m;
  bool ok = true;
  ps->params = arena_alloc(&m->arena, sizeof *ps->params * (size_t)(m->n_params + 1));
  for (int i = 0; i < pa->n_globs; i++) {
    bool hit = false;
    for (int32_t p = 0; p < m->n_params; p++)
      hit |= fnmatch(pa->globs[i], m->params[p].name, 0) == 0;
    if (!hit) {
      diag_error(E->d, pa->glob_locs[i], "'prune %s' matches no parameter of the model",
                 pa->globs[i]);
      ok = false;
    }
  }
  for (int32_t p = 0; ok && p < m->n_params; p++) {
    bool hit = false;
    for (int i = 0; i < pa->n_globs && !hit; i++)
      hit = fnmatch(pa->globs[i], m->params[p].name, 0) == 0;
    if (!hit) continue;
    const PruneSpec *before = pruned_by(m, ts, p);
    if (before) {
      diag_error(E->d, pa->loc, "'%s' is already pruned by the statement at %u:%u",
                 m->params[p].name, before->loc.line, before->loc.col);
      ok = false;
    }
    if (ps->kind != PRUNE_MAGNITUDE && !check_structured(E, ps, p, pa->loc)) ok = false;
    ps->params[ps->n_params++] = p;
  }
  return ok;
}

static const struct PruneKindInfo *find_kind(Elab *E, const Expr *e) {
  static const char *const names[] = {"magnitude", "channels", "n_of_m"};
  for (int i = 0; e->name && (e->kind == EX_CALL || e->kind == EX_NAME) && i < KIND_TABLE_COUNT;
       i++)
    if (strcmp(e->name, kind_table[i].name) == 0) return &kind_table[i];
  const char *hint = e->name ? elab_suggest(e->name, names, KIND_TABLE_COUNT) : NULL;
  diag_error(E->d, e->loc,
             "unknown pruning kind%s%s%s; expected magnitude(...), channels(...) "
             "or n_of_m(...)%s%s%s",
             e->name ? " '" : "", e->name ? e->name : "", e->name ? "'" : "",
             hint ? "; did you mean '" : "", hint ? hint : "", hint ? "'?" : "");
  return NULL;
}

bool elab_prunes(Elab *E, const StepAst *sa, TrainStep *ts) {
  bool ok = true;
  ts->prunes = arena_alloc(&E->m->arena, sizeof *ts->prunes * (size_t)(sa->n_prunes + 1));
  for (int i = 0; i < sa->n_prunes; i++) {
    const PruneAst *pa = &sa->prunes[i];
    const struct PruneKindInfo *k = find_kind(E, pa->kind);
    PruneArgs args;
    memset(&args, 0, sizeof args);
    if (!k || !read_args(E, k, pa->kind, &args)) {
      ok = false;
      continue;
    }
    PruneSpec ps;
    memset(&ps, 0, sizeof ps);
    ps.kind = k->kind;
    ps.loc = elab_loc(E, pa->loc);
    if (!fill_spec(E, k, &args, pa->kind->loc, &ps) || !match_params(E, pa, ts, &ps)) {
      ok = false;
      continue;
    }
    for (int j = 0; j < ps.n_params; j++) { /* the masks: states, so checkpoints carry them */
      const TensorDecl *d = &E->m->params[ps.params[j]];
      module_add_state(E->m, arena_printf(&E->m->arena, "%s.mask", d->name), d->dtype, &d->shape,
                       (InitSpec){INIT_ONES, 0, 0}, ps.loc);
    }
    ts->prunes[ts->n_prunes++] = ps;
  }
  return ok;
}
