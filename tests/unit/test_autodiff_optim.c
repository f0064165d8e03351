/* tests/unit/test_autodiff_optim.c — the optimizer steps appended by pass_autodiff, run with
 * the reference evaluator, against torch.optim (tests/fixtures/optim/, written by
 * tests/fixtures/make_optim_fixtures.py; see its docstring for the file format).
 *
 * Each case compiles  loss = mean((tanh(x @ W + b) - y)^2)  as a "train" entry with the
 * case's optimizer and arguments, runs STEPS steps (writing OUT_PARAM_UPDATE/OUT_STATE_UPDATE
 * back like the generated code does) and compares the loss of each step and the params after
 * it. Param error is measured relative to how far the params moved from their initial value
 * (|a - b| / max |b - p0|), so a wrong update is caught even though it is small next to the
 * params themselves; f64 agreement is ~1e-13, the bound is 1e-6.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "tests/unit/testutil.h"

static const SrcLoc L = {"optim.lathe", 12, 3};

/* ---- the fixture reader ---- */

typedef struct Lines {
  char *text;
  char **line;
  int n;
} Lines;

static Lines read_lines(const char *rel) {
  Lines ls = {test_read_file(rel), NULL, 0};
  ck_assert_msg(ls.text != NULL, "cannot read %s (run make_optim_fixtures.py)", rel);
  int cap = 0;
  for (char *save = NULL, *l = strtok_r(ls.text, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    if (l[0] == '#') continue;
    if (ls.n == cap) ls.line = realloc(ls.line, sizeof(char *) * (size_t)(cap = 2 * cap + 16));
    ls.line[ls.n++] = l;
  }
  return ls;
}

static void lines_free(Lines *ls) {
  free(ls->line);
  free(ls->text);
}

/* "tensor NAME RANK DIMS... VALUES..." into t (allocated); returns NAME (in the line) */
static const char *parse_tensor(char *line, Tensor *t) {
  char *save = NULL;
  char *tok = strtok_r(line, " ", &save);
  ck_assert_str_eq(tok, "tensor");
  const char *name = strtok_r(NULL, " ", &save);
  int rank = atoi(strtok_r(NULL, " ", &save));
  int64_t dims[IR_MAX_RANK];
  for (int i = 0; i < rank; i++) dims[i] = atoll(strtok_r(NULL, " ", &save));
  Shape s = shape_make(rank, dims);
  tensor_alloc(t, DT_F64, &s);
  for (int64_t i = 0; i < shape_numel(&s); i++) {
    tok = strtok_r(NULL, " ", &save);
    ck_assert_msg(tok != NULL, "tensor %s: too few values", name);
    tensor_set(t, i, strtod(tok, NULL));
  }
  return name;
}

/* "ARG=VALUE" tokens from save into the step's optimizer arguments */
static void parse_args(Module *m, TrainStep *s, char **save) {
  s->optim_args = arena_alloc(&m->arena, sizeof(OptimArg) * 32);
  for (char *tok; (tok = strtok_r(NULL, " ", save)) != NULL;) {
    char *eq = strchr(tok, '=');
    ck_assert(eq != NULL);
    *eq = '\0';
    OptimArg *a = &s->optim_args[s->n_optim_args++];
    a->name = arena_strdup(&m->arena, tok);
    a->value = strtod(eq + 1, NULL);
    a->loc = L;
  }
}

/* ---- the problem ---- */

typedef struct Problem {
  Tensor w0, b0, x, y;
} Problem;

static NodeId data_const(Graph *g, const Tensor *t) {
  int64_t n = shape_numel(&t->shape);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) data[i] = tensor_get(t, i);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = DT_F64;
  at.constant.shape = t->shape;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, L, NULL);
}

/* loss = mean((tanh(x @ W + b) - y)^2) over params h1.w, h1.b */
static Graph *build_problem(Module *m, const Problem *p, const char *entry, Diag *d) {
  InitSpec z = {INIT_ZEROS, 0, 0};
  int32_t wi = module_add_param(m, "h1.w", DT_F64, &p->w0.shape, z, L);
  int32_t bi = module_add_param(m, "h1.b", DT_F64, &p->b0.shape, z, L);
  Graph *g = graph_new(m, entry);
  NodeId w = graph_add_source(g, OP_PARAM, wi, L), b = graph_add_source(g, OP_PARAM, bi, L);
  NodeId xw = graph_add(g, OP_MATMUL, (NodeId[]){data_const(g, &p->x), w}, 2, NULL, L, d);
  NodeId h = graph_add_unary(g, OP_TANH, graph_add_binary(g, OP_ADD, xw, b, L, d), L, d);
  NodeId e = graph_add_binary(g, OP_SUB, h, data_const(g, &p->y), L, d);
  NodeAttr all = {.reduce = {3, false}};
  NodeId sq = graph_add_binary(g, OP_MUL, e, e, L, d);
  NodeId loss = graph_add(g, OP_MEAN, &sq, 1, &all, L, d);
  ck_assert_msg(loss != IR_NONE, "%s", diag_text(d));
  graph_add_output(g, "loss", loss, OUT_LOSS, -1);
  return g;
}

/* A running train entry: the module's params and states, updated after every step. */
typedef struct Run {
  Tensor params[4];
  Tensor states[32];
  int n_states;
} Run;

static void run_init(Run *r, const Module *m) {
  memset(r, 0, sizeof *r);
  ck_assert_int_le(m->n_states, 32);
  r->n_states = m->n_states;
  for (int i = 0; i < m->n_states; i++) {
    const TensorDecl *s = &m->states[i];
    tensor_alloc(&r->states[i], s->dtype, &s->shape);
    ck_assert(s->init.kind == INIT_ZEROS || s->init.kind == INIT_CONSTANT);
    double v = s->init.kind == INIT_CONSTANT ? s->init.a : 0.0;
    for (int64_t e = 0; e < shape_numel(&s->shape); e++) tensor_set(&r->states[i], e, v);
  }
}

static void run_fini(Run *r, int n_params) {
  for (int i = 0; i < n_params; i++) tensor_free(&r->params[i]);
  for (int i = 0; i < r->n_states; i++) tensor_free(&r->states[i]);
}

/* one train step; returns the loss */
static double run_step(Run *r, const Graph *g, Diag *d) {
  Tensor outs[64];
  ck_assert_int_le(g->n_outputs, 64);
  ck_assert_msg(ir_eval(g, NULL, r->params, r->states, outs, NULL, d), "%s", diag_text(d));
  double loss = NAN;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    Tensor *dst = o->kind == OUT_PARAM_UPDATE ? &r->params[o->target]
                  : o->kind == OUT_STATE_UPDATE ? &r->states[o->target] : NULL;
    if (o->kind == OUT_LOSS) loss = tensor_get(&outs[i], 0);
    if (dst) {
      ck_assert(shape_equal(&dst->shape, &outs[i].shape));
      tensor_free(dst);
      *dst = outs[i];
    } else {
      tensor_free(&outs[i]);
    }
  }
  return loss;
}

static void check_close(const char *what, const Tensor *got, const Tensor *want,
                        const Tensor *start, int step) {
  double moved = 0;
  for (int64_t i = 0; i < shape_numel(&want->shape); i++)
    moved = fmax(moved, fabs(tensor_get(want, i) - tensor_get(start, i)));
  ck_assert_msg(moved > 1e-9, "%s: the reference did not move", what);
  for (int64_t i = 0; i < shape_numel(&want->shape); i++) {
    double a = tensor_get(got, i), b = tensor_get(want, i);
    ck_assert_msg(fabs(a - b) / moved <= 1e-6, "%s step %d [%lld]: lathe %.15g torch %.15g",
                  what, step, (long long)i, a, b);
  }
}

/* Runs the case starting at ls->line[*at] ("case ..."), advancing *at past it. */
static void run_case(Lines *ls, int *at, const Problem *p) {
  char *save = NULL;
  strtok_r(ls->line[(*at)++], " ", &save);
  const char *name = strtok_r(NULL, " ", &save);
  Diag d;
  diag_init(&d);
  Module *m = module_new("opt");
  TrainStep *s = module_add_step(m);
  s->optimizer = arena_strdup(&m->arena, strtok_r(NULL, " ", &save));
  s->loc = L;
  int steps = atoi(strtok_r(NULL, " ", &save));
  parse_args(m, s, &save);
  Graph *g = build_problem(m, p, "train", &d);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: %s", name, diag_text(&d));
  Run r;
  run_init(&r, m);
  tensor_alloc(&r.params[0], DT_F64, &p->w0.shape);
  tensor_alloc(&r.params[1], DT_F64, &p->b0.shape);
  memcpy(r.params[0].data, p->w0.data, sizeof(double) * (size_t)shape_numel(&p->w0.shape));
  memcpy(r.params[1].data, p->b0.data, sizeof(double) * (size_t)shape_numel(&p->b0.shape));
  for (int k = 1; k <= steps; k++) {
    double loss = run_step(&r, g, &d);
    char *save2 = NULL;
    strtok_r(ls->line[(*at)++], " ", &save2);
    ck_assert_int_eq(atoi(strtok_r(NULL, " ", &save2)), k);
    double want = strtod(strtok_r(NULL, " ", &save2), NULL);
    ck_assert_msg(fabs(loss - want) <= 1e-9 * fabs(want), "%s step %d: loss %.15g vs %.15g",
                  name, k, loss, want);
    Tensor w, b;
    parse_tensor(ls->line[(*at)++], &w);
    parse_tensor(ls->line[(*at)++], &b);
    char what[128];
    snprintf(what, sizeof what, "%s: h1.w", name);
    check_close(what, &r.params[0], &w, &p->w0, k);
    snprintf(what, sizeof what, "%s: h1.b", name);
    check_close(what, &r.params[1], &b, &p->b0, k);
    tensor_free(&w);
    tensor_free(&b);
  }
  run_fini(&r, 2);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}

START_TEST(test_optimizers_match_torch) {
  Lines ls = read_lines("tests/fixtures/optim/cases.txt");
  Problem p;
  Tensor *slots[4] = {&p.w0, &p.b0, &p.x, &p.y};
  for (int i = 0; i < 4; i++) parse_tensor(ls.line[i], slots[i]);
  int at = 4, n_cases = 0;
  while (at < ls.n) {
    ck_assert_msg(strncmp(ls.line[at], "case ", 5) == 0, "bad line: %s", ls.line[at]);
    run_case(&ls, &at, &p);
    n_cases++;
  }
  ck_assert_int_ge(n_cases, 10);
  for (int i = 0; i < 4; i++) tensor_free(slots[i]);
  lines_free(&ls);
}
END_TEST

/* ---- schedules: with loss = sum(w), an SGD step moves w by exactly -lr ---- */

static void run_schedule(char *head, char *lrs) {
  char *save = NULL;
  strtok_r(head, " ", &save);
  const char *name = strtok_r(NULL, " ", &save);
  int n = atoi(strtok_r(NULL, " ", &save));
  Diag d;
  diag_init(&d);
  Module *m = module_new("sched");
  TrainStep *s = module_add_step(m);
  s->optimizer = "sgd";
  parse_args(m, s, &save);
  Shape one = shape_make(1, (int64_t[]){1});
  module_add_param(m, "w", DT_F64, &one, (InitSpec){INIT_ZEROS, 0, 0}, L);
  Graph *g = graph_new(m, "train");
  NodeAttr all = {.reduce = {1, false}};
  NodeId w = graph_add_source(g, OP_PARAM, 0, L);
  graph_add_output(g, "loss", graph_add(g, OP_SUM, &w, 1, &all, L, &d), OUT_LOSS, -1);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: %s", name, diag_text(&d));
  Run r;
  run_init(&r, m);
  tensor_alloc(&r.params[0], DT_F64, &one);
  char *save2 = NULL;
  strtok_r(lrs, " ", &save2);
  for (int k = 0; k < n; k++) {
    double before = tensor_get(&r.params[0], 0);
    run_step(&r, g, &d);
    double lr = before - tensor_get(&r.params[0], 0);
    double want = strtod(strtok_r(NULL, " ", &save2), NULL);
    ck_assert_msg(fabs(lr - want) <= 1e-6 * fmax(fabs(want), 1e-6),
                  "%s: step %d: lr %.15g, torch %.15g", name, k, lr, want);
  }
  run_fini(&r, 1);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}

START_TEST(test_schedules_match_torch) {
  Lines ls = read_lines("tests/fixtures/optim/schedules.txt");
  ck_assert_int_ge(ls.n, 8);
  for (int i = 0; i + 1 < ls.n; i += 2) run_schedule(ls.line[i], ls.line[i + 1]);
  lines_free(&ls);
}
END_TEST

/* ---- structure and errors ---- */

static Problem small_problem(void) {
  Problem p;
  Shape sw = shape_make(2, (int64_t[]){3, 2}), sb = shape_make(1, (int64_t[]){2});
  Shape sx = shape_make(2, (int64_t[]){4, 3}), sy = shape_make(2, (int64_t[]){4, 2});
  tensor_alloc(&p.w0, DT_F64, &sw);
  tensor_alloc(&p.b0, DT_F64, &sb);
  tensor_alloc(&p.x, DT_F64, &sx);
  tensor_alloc(&p.y, DT_F64, &sy);
  return p;
}

static void problem_free(Problem *p) {
  tensor_free(&p->w0);
  tensor_free(&p->b0);
  tensor_free(&p->x);
  tensor_free(&p->y);
}

/* Compiles the problem with `optimizer` and one argument (name may be NULL); returns the
 * pass result, leaving the module and diagnostics for inspection. */
static bool compile(Module *m, Diag *d, const char *entry, const char *optimizer,
                    const char *arg, double value) {
  Problem p = small_problem();
  TrainStep *s = m->n_steps ? &m->steps[m->n_steps - 1] : module_add_step(m);
  s->optimizer = optimizer;
  s->loc = L;
  if (arg) {
    s->optim_args = arena_alloc(&m->arena, sizeof(OptimArg));
    s->optim_args[0] = (OptimArg){arg, value, (SrcLoc){"optim.lathe", 14, 20}};
    s->n_optim_args = 1;
  }
  Graph *g = build_problem(m, &p, entry, d);
  module_add_entry(m, g);
  PassCtx c;
  pass_ctx_init(&c, d);
  bool ok = pass_autodiff(g, &c);
  pass_ctx_fini(&c);
  problem_free(&p);
  return ok;
}

static int find_state(const Module *m, const char *name) {
  for (int i = 0; i < m->n_states; i++)
    if (strcmp(m->states[i].name, name) == 0) return i;
  return -1;
}

START_TEST(test_adam_state_and_outputs) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("opt");
  ck_assert_msg(compile(m, &d, "train", "adam", NULL, 0), "%s", diag_text(&d));
  const char *names[] = {"adam.h1.w.m", "adam.h1.w.v", "adam.h1.b.m", "adam.h1.b.v",
                         "train.step_count"};
  for (int i = 0; i < 5; i++) ck_assert_msg(find_state(m, names[i]) >= 0, "%s", names[i]);
  ck_assert_int_eq(m->n_states, 5);
  const Graph *g = m->entries[0];
  int loss = 0, params = 0, states = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    loss += o->kind == OUT_LOSS;
    params += o->kind == OUT_PARAM_UPDATE;
    states += o->kind == OUT_STATE_UPDATE;
    if (o->kind == OUT_PARAM_UPDATE) ck_assert_str_eq(o->name, m->params[o->target].name);
    if (o->kind == OUT_STATE_UPDATE) ck_assert_str_eq(o->name, m->states[o->target].name);
  }
  ck_assert_int_eq(loss, 1);
  ck_assert_int_eq(params, 2);
  ck_assert_int_eq(states, 5);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* a named step: "train_<name>" picks it; its state names carry the step name */
START_TEST(test_named_step) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("gan");
  module_add_step(m)->name = "gen";
  TrainStep *s = module_add_step(m);
  s->name = "disc";
  ck_assert_msg(compile(m, &d, "train_disc", "momentum", NULL, 0), "%s", diag_text(&d));
  ck_assert_int_ge(find_state(m, "disc.momentum.h1.w.buf"), 0);
  ck_assert_int_ge(find_state(m, "train_disc.step_count"), 0);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_unknown_argument_lists_valid_ones) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("opt");
  ck_assert(!compile(m, &d, "train", "adam", "betta1", 0.5));
  const char *t = diag_text(&d);
  ck_assert_msg(strstr(t, "optim.lathe:14:20") && strstr(t, "'betta1'"), "%s", t);
  ck_assert_msg(strstr(t, "beta1") && strstr(t, "eps") && strstr(t, "clip_norm"), "%s", t);
  ck_assert_msg(!strstr(t, "dampening"), "sgd-only args are not valid for adam: %s", t);
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_unknown_optimizer) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("opt");
  ck_assert(!compile(m, &d, "train", "adamax", NULL, 0));
  ck_assert_msg(strstr(diag_text(&d), "'adamax'") && strstr(diag_text(&d), "rmsprop"), "%s",
                diag_text(&d));
  module_free(m);
  diag_fini(&d);
}
END_TEST

START_TEST(test_bad_argument_value) {
  Diag d;
  diag_init(&d);
  Module *m = module_new("opt");
  ck_assert(!compile(m, &d, "train", "adam", "beta2", 1.5));
  ck_assert_msg(strstr(diag_text(&d), "beta2"), "%s", diag_text(&d));
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("autodiff_optim");
  TCase *tc = tcase_create("torch");
  tcase_add_test(tc, test_optimizers_match_torch);
  tcase_add_test(tc, test_schedules_match_torch);
  suite_add_tcase(s, tc);
  TCase *ts = tcase_create("structure");
  tcase_add_test(ts, test_adam_state_and_outputs);
  tcase_add_test(ts, test_named_step);
  tcase_add_test(ts, test_unknown_argument_lists_valid_ones);
  tcase_add_test(ts, test_unknown_optimizer);
  tcase_add_test(ts, test_bad_argument_value);
  suite_add_tcase(s, ts);
  return s;
}

int main(void) { return test_run_suite(optim_suite()); }
