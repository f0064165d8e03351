/* passes/pipeline.c — the pass manager: derives entry graphs and runs passes.def on each.
 *
 * A Module arrives with its elaborated model graph. The entry points are clones of it,
 * trimmed to what each needs: "forward" keeps the OUT_VALUE outputs; each train step keeps
 * its OUT_LOSS ("train" for a single-step block, "train_<step>" otherwise); "grad" (on
 * request) keeps steps[0]'s loss and gets OUT_GRAD outputs from autodiff; "evaluate" (on
 * request) keeps the outputs and steps[0]'s loss, for test-set evaluation. A split step
 * (want_split, for data-parallel training) is "grad", which then also keeps the step's state
 * updates (batch-norm running statistics), plus "apply": the optimizer update of the step's
 * train entry built by the same builder (optim.c), so train == grad then apply, bit for bit.
 * Then every pass of passes.def runs on every entry, in order, with verification between
 * passes when asked.
 */
#include "autodiff_internal.h" /* optim_apply_entry */
#include "mode.h"              /* train vs inference entries: TRAIN_SELECT, running-stat updates */
#include "passes.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef bool (*PassFn)(Graph *, PassCtx *);

static const struct {
  const char *name;
  int min_level;
  const char *description;
  PassFn fn;
} pass_table[] = {
#define PASS(name, level, desc) {#name, level, desc, pass_##name},
#include "passes.def"
#undef PASS
};

enum { PASS_TABLE_COUNT = sizeof pass_table / sizeof pass_table[0] };
_Static_assert(PASS_TABLE_COUNT <= 32, "PassCtx.timings holds 32 passes");

int passes_count(void) {
  return PASS_TABLE_COUNT;
}
const char *passes_name(int i) {
  return pass_table[i].name;
}
const char *passes_description(int i) {
  return pass_table[i].description;
}

void pass_ctx_init(PassCtx *c, Diag *d) {
  memset(c, 0, sizeof *c);
  c->diag = d;
  c->opt_level = 2;
  c->want_train = true;
#ifndef NDEBUG
  c->verify = true;
#endif
  arena_init(&c->scratch);
}

void pass_ctx_fini(PassCtx *c) {
  free(c->dump);
  arena_fini(&c->scratch);
}

static bool pass_disabled(const PassCtx *c, const char *name) {
  for (int i = 0; i < c->n_disabled; i++)
    if (strcmp(c->disabled[i], name) == 0) return true;
  return false;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Appends the IR of g after pass `name` to c->dump. */
static void capture_dump(PassCtx *c, const Graph *g, const char *name) {
  char *text = ir_print(g);
  if (!text) return;
  size_t old = c->dump ? strlen(c->dump) : 0;
  size_t add = strlen(text) + strlen(name) + strlen(g->name) + 64;
  char *grown = realloc(c->dump, old + add);
  if (grown) {
    c->dump = grown;
    snprintf(c->dump + old, add, "; after %s, entry %s\n%s", name, g->name, text);
  }
  free(text);
}

static bool run_pipeline(Graph *g, PassCtx *c) {
  for (int i = 0; i < PASS_TABLE_COUNT; i++) {
    if (c->opt_level < pass_table[i].min_level || pass_disabled(c, pass_table[i].name)) continue;
    double t0 = c->time_passes ? now_seconds() : 0;
    bool ok = pass_table[i].fn(g, c);
    if (c->time_passes) c->timings[i] += now_seconds() - t0;
    if (!ok) return false;
    if (c->verify && !ir_verify(g, c->diag)) {
      diag_error(c->diag, (SrcLoc){0}, "internal error: IR invalid after pass '%s' on '%s'",
                 pass_table[i].name, g->name);
      return false;
    }
    if (c->dump_after && strcmp(c->dump_after, pass_table[i].name) == 0)
      capture_dump(c, g, pass_table[i].name);
  }
  return true;
}

/* Clones the model graph as entry `name` (its kind follows the name, ir.h) differentiating
 * step `step` (-1: none), keeping the OUT_VALUE outputs if `values`, the OUT_LOSS output
 * of the step's loss (of steps[0] for evaluate) and the state updates: in train entries (and
 * a split step's grad entry when `updates`) all, in the others those of a model's `update`
 * (GraphOutput.inference). Returns NULL when nothing is left. */
static Graph *derive_entry(Module *m, const char *name, bool values, int step, bool updates) {
  Graph *g = graph_clone(m->model, name);
  if (g->kind == ENTRY_TRAIN || g->kind == ENTRY_GRAD) g->step = step;
  NodeId loss = step >= 0 ? m->steps[step].loss_node : IR_NONE;
  int kept = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    GraphOutput o = g->outputs[i];
    bool keep = (o.kind == OUT_VALUE && values) || (o.kind == OUT_LOSS && o.node == loss) ||
                (o.kind == OUT_STATE_UPDATE && (g->kind == ENTRY_TRAIN || updates || o.inference));
    if (keep) g->outputs[kept++] = o;
  }
  g->n_outputs = kept;
  if (kept == 0) {
    graph_free(g);
    return NULL;
  }
  return g;
}

static bool add_entry(Module *m, Graph *g, PassCtx *c) {
  module_add_entry(m, g); /* the module owns it from here, even on failure */
  return passes_resolve_mode(g, entry_kind_is_training(g->kind), c) && run_pipeline(g, c);
}

/* The step named c->grad_step (the first when NULL); NULL after a diagnostic naming the steps */
static const TrainStep *grad_step(const Module *m, const PassCtx *c) {
  if (!c->grad_step) return &m->steps[0];
  char names[512] = "";
  for (int i = 0; i < m->n_steps; i++) {
    const char *name = m->steps[i].name ? m->steps[i].name : "(unnamed)";
    if (m->steps[i].name && strcmp(name, c->grad_step) == 0) return &m->steps[i];
    size_t n = strlen(names);
    snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", name);
  }
  diag_error(c->diag, m->steps[0].loc, "no train step named '%s'; the train block has: %s",
             c->grad_step, names);
  return NULL;
}

/* "apply" of step `step`, from its train entry (which ran its pipeline already) */
static bool add_apply(Module *m, int step, PassCtx *c) {
  const Graph *train = NULL;
  for (int i = 0; i < m->n_entries && !train; i++)
    if (m->entries[i]->kind == ENTRY_TRAIN && m->entries[i]->step == step) train = m->entries[i];
  if (!train) {
    diag_error(c->diag, m->steps[step].loc,
               "a split train step needs its train entry: compile the train entries too");
    return false;
  }
  Graph *g = optim_apply_entry(m, train, c->diag);
  return g && add_entry(m, g, c);
}

/* A step whose `distill` teacher was not built (driver/distill.c) cannot be derived: its
 * loss would silently be the hard loss alone. */
static bool step_ready(const Module *m, int step, PassCtx *c) {
  const TrainDistill *td = m->steps[step].distill;
  if (!td || td->built) return true;
  diag_error(c->diag, td->loc,
             "this 'distill' statement's teacher was not built: compile the model through the "
             "driver (lathe's commands, the API), which merges the teacher");
  return false;
}

bool passes_run_module(Module *m, PassCtx *c) {
  Graph *fwd = derive_entry(m, "forward", true, -1, false);
  if (fwd && !add_entry(m, fwd, c)) return false;
  for (int i = 0; c->want_train && i < m->n_steps; i++) {
    const TrainStep *s = &m->steps[i];
    char name[256];
    if (s->name)
      snprintf(name, sizeof name, "train_%s", s->name);
    else
      snprintf(name, sizeof name, "train");
    if (!step_ready(m, i, c)) return false;
    Graph *g = derive_entry(m, name, false, i, false);
    if (g && !add_entry(m, g, c)) return false;
  }
  if ((c->want_grad || c->want_split) && m->n_steps > 0) {
    const TrainStep *s = grad_step(m, c);
    if (s && !step_ready(m, (int)(s - m->steps), c)) return false;
    Graph *g = s ? derive_entry(m, "grad", false, (int)(s - m->steps), c->want_split) : NULL;
    if (!s || (g && !add_entry(m, g, c))) return false;
    if (c->want_split && !add_apply(m, (int)(s - m->steps), c)) return false;
  }
  if (c->want_eval && m->n_steps > 0) {
    if (!step_ready(m, 0, c)) return false;
    Graph *g = derive_entry(m, "evaluate", true, 0, false);
    if (g && !add_entry(m, g, c)) return false;
  }
  if (m->n_entries == 0) {
    diag_error(c->diag, (SrcLoc){m->source_file, 1, 1},
               "model '%s' computes nothing: expected an `output` binding or a train block",
               m->name);
    return false;
  }
  return true;
}
