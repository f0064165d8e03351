/* tests/unit/test_ir_dyn.c — the run-time batch in the IR (docs/dynamic-batch.md): shapes carry
 * a dynamic axis 0 through inference, the IR text round-trips it, every entry derived by the
 * passes (forward, the Adam train step with its batch-averaged losses) evaluated at batch n
 * through graph_specialize equals the same module written with a fixed batch n, and the
 * uses a dynamic batch cannot take are errors at their node. A recurrence (SCAN, its reverse
 * scan, PACK/UNPACK) carries the batch the same way. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

/* a dense-tanh-dense model whose loss averages over the batch (a mean of squares and a
 * cross-entropy) and also sums over it; '@' stands for axis 0 */
static const char *MODEL = "module t\n"
                           "input x: f32[@, 3]\n"
                           "input y: f32[@, 2]\n"
                           "input label: i32[@]\n"
                           "param h.w: f32[3, 5] = glorot_uniform\n"
                           "param h.b: f32[5] = uniform(-0.5, 0.5)\n"
                           "param z.w: f32[5, 2] = glorot_uniform\n"
                           "param z.b: f32[2] = uniform(-0.5, 0.5)\n"
                           "train minimize loss %26 optimizer adam(lr=0.1)\n"
                           "graph model {\n"
                           "  %0 = input 0 : f32[@, 3]\n"
                           "  %1 = input 1 : f32[@, 2]\n"
                           "  %2 = input 2 : i32[@]\n"
                           "  %3 = param 0 : f32[3, 5]\n"
                           "  %4 = param 1 : f32[5]\n"
                           "  %5 = matmul %0, %3 : f32[@, 5]\n"
                           "  %6 = add %5, %4 : f32[@, 5]\n"
                           "  %7 = tanh %6 : f32[@, 5]\n"
                           "  %8 = param 2 : f32[5, 2]\n"
                           "  %9 = param 3 : f32[2]\n"
                           "  %10 = matmul %7, %8 : f32[@, 2]\n"
                           "  %11 = add %10, %9 : f32[@, 2]\n"
                           "  %12 = softmax %11 {axis=1} : f32[@, 2]\n"
                           "  %13 = sub %11, %1 : f32[@, 2]\n"
                           "  %14 = sub %11, %1 : f32[@, 2]\n"
                           "  %15 = mul %13, %14 : f32[@, 2]\n"
                           "  %16 = mean %15 {axes=[0, 1], keepdims=false} : f32[]\n"
                           "  %17 = one_hot %2 {depth=2} : f32[@, 2]\n"
                           "  %18 = log_softmax %11 {axis=1} : f32[@, 2]\n"
                           "  %19 = mul %17, %18 : f32[@, 2]\n"
                           "  %20 = sum %19 {axes=[1], keepdims=false} : f32[@]\n"
                           "  %21 = mean %20 {axes=[0], keepdims=false} : f32[]\n"
                           "  %22 = neg %21 : f32[]\n"
                           "  %23 = add %16, %22 : f32[]\n"
                           "  %24 = sum %7 {axes=[0], keepdims=false} : f32[5]\n"
                           "  %25 = mean %24 {axes=[0], keepdims=false} : f32[]\n"
                           "  %26 = add %23, %25 : f32[]\n"
                           "  output p = %12 value\n"
                           "  output loss = %26 loss\n"
                           "}\n";

enum { MAX = 8 };

/* MODEL with '@' replaced by dim (and a `dynamic` line when dyn); malloc'd */
static char *model_text(const char *dim, bool dyn) {
  size_t len = strlen(MODEL) + 64 * strlen(dim) + 64;
  char *out = malloc(len), *o = out;
  const char *head = "module t\n";
  o += sprintf(o, "%s", head);
  if (dyn) o += sprintf(o, "dynamic N max=%d\n", MAX);
  for (const char *p = MODEL + strlen(head); *p; p++) {
    if (*p == '@')
      o += sprintf(o, "%s", dim);
    else
      *o++ = *p;
  }
  *o = '\0';
  return out;
}

static Module *parse_run(const char *text, Diag *d) {
  Module *m = ir_parse(text, "t.ir", d);
  ck_assert_msg(m, "%s", diag_text(d));
  ck_assert_msg(ir_verify(m->model, d), "%s", diag_text(d));
  PassCtx c;
  pass_ctx_init(&c, d);
  c.verify = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(d));
  pass_ctx_fini(&c);
  return m;
}

static Graph *entry(Module *m, EntryKind kind) {
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == kind) return m->entries[i];
  ck_abort_msg("no entry of kind %d", (int)kind);
  return NULL;
}

static void fill(Tensor *t, DType dt, const Shape *s, uint64_t seed, int classes) {
  ck_assert(tensor_alloc(t, dt, s));
  for (int64_t i = 0; i < shape_numel(s); i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    double u = (double)(seed >> 11) / 9007199254740992.0;
    tensor_set(t, i, classes ? (double)(int)(u * classes) : 2 * u - 1);
  }
}

/* the module's inputs at batch n, params and states from their initializers */
typedef struct Args {
  Tensor in[3], params[8], states[16];
  int n_in, n_params, n_states;
} Args;

static void args_make(Args *a, const Module *m, int64_t n) {
  memset(a, 0, sizeof *a);
  a->n_in = m->n_inputs, a->n_params = m->n_params, a->n_states = m->n_states;
  for (int i = 0; i < m->n_inputs; i++) {
    Shape s = m->inputs[i].shape;
    if (s.dyn) s.dim[0] = s.dyn * n, s.dyn = 0;
    fill(&a->in[i], m->inputs[i].dtype, &s, 17 + (uint64_t)i, i == 2 ? 2 : 0);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 5, &a->params[i]);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 5, &a->states[i]);
}

static void args_free(Args *a) {
  for (int i = 0; i < a->n_in; i++)
    tensor_free(&a->in[i]);
  for (int i = 0; i < a->n_params; i++)
    tensor_free(&a->params[i]);
  for (int i = 0; i < a->n_states; i++)
    tensor_free(&a->states[i]);
}

static void expect_close(const Tensor *x, const Tensor *y, const char *what, int64_t n) {
  char sx[64], sy[64];
  ck_assert_msg(shape_equal(&x->shape, &y->shape), "%s at n=%lld: shapes differ: %s vs %s", what,
                (long long)n, shape_str(&x->shape, sx, sizeof sx),
                shape_str(&y->shape, sy, sizeof sy));
  for (int64_t i = 0; i < shape_numel(&x->shape); i++) {
    double a = tensor_get(x, i), b = tensor_get(y, i);
    ck_assert_msg(fabs(a - b) <= 1e-6 * (1 + fabs(b)), "%s at n=%lld, element %lld: %.9g vs %.9g",
                  what, (long long)n, (long long)i, a, b);
  }
}

/* entry `kind` of the dynamic module at n against the static module built for n */
static void check_entry(Module *dyn, EntryKind kind, int64_t n, Diag *d) {
  char dim[32];
  snprintf(dim, sizeof dim, "%lld", (long long)n);
  char *text = model_text(dim, false);
  Module *fixed = parse_run(text, d);
  free(text);
  Graph *gs = graph_specialize(entry(dyn, kind), n, d);
  ck_assert_msg(gs, "%s", diag_text(d));
  Graph *gf = entry(fixed, kind);
  Args a;
  args_make(&a, fixed, n);
  Tensor od[32], of[32];
  ck_assert_int_le(gf->n_outputs, 32);
  ck_assert_msg(ir_eval(gs, a.in, a.params, a.states, od, NULL, d), "%s", diag_text(d));
  ck_assert_msg(ir_eval(gf, a.in, a.params, a.states, of, NULL, d), "%s", diag_text(d));
  ck_assert_int_eq(gs->n_outputs, gf->n_outputs);
  for (int i = 0; i < gf->n_outputs; i++) {
    expect_close(&od[i], &of[i], gf->outputs[i].name, n);
    tensor_free(&od[i]);
    tensor_free(&of[i]);
  }
  args_free(&a);
  graph_free(gs);
  module_free(fixed);
}

START_TEST(entries_match_fixed_batch) {
  Diag d;
  diag_init(&d);
  char *text = model_text("n<=8", true);
  Module *dyn = parse_run(text, &d);
  free(text);
  ck_assert_int_eq(dyn->dyn_max, MAX);
  ck_assert_int_eq(entry(dyn, ENTRY_FORWARD)->nodes[0].shape.dyn, 1);
  const int64_t ns[] = {1, 3, 7, MAX};
  for (int i = 0; i < 4; i++) {
    check_entry(dyn, ENTRY_FORWARD, ns[i], &d);
    check_entry(dyn, ENTRY_TRAIN, ns[i], &d);
    check_entry(dyn, ENTRY_EVALUATE, ns[i], &d);
  }
  ck_assert_ptr_null(graph_specialize(dyn->model, MAX + 1, &d));
  ck_assert_ptr_null(graph_specialize(dyn->model, 0, &d));
  module_free(dyn);
  diag_fini(&d);
}
END_TEST

START_TEST(text_round_trip) {
  Diag d;
  diag_init(&d);
  char *text = model_text("n<=8", true);
  Module *m = ir_parse(text, "t.ir", &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  char *once = ir_print(m->model);
  ck_assert_ptr_nonnull(strstr(once, "dynamic N max=8\n"));
  ck_assert_ptr_nonnull(strstr(once, "= matmul %0, %3 : f32[n<=8, 5]"));
  ck_assert_ptr_nonnull(strstr(once, "= sum %7 {axes=[0], keepdims=false} : f32[5]"));
  Module *again = ir_parse(once, "t2.ir", &d);
  ck_assert_msg(again, "%s", diag_text(&d));
  char *twice = ir_print(again->model);
  ck_assert_str_eq(once, twice);
  free(once);
  free(twice);
  free(text);
  module_free(m);
  module_free(again);
  diag_fini(&d);
}
END_TEST

/* a one-node graph over input x: `text` is the node line; its error must mention `want` */
static void expect_error(const char *x_type, const char *line, const char *want) {
  char text[1024];
  snprintf(text, sizeof text,
           "module e\ndynamic N max=8\ninput x: %s\nparam w: f32[8, 8] = zeros\n"
           "graph model {\n  %%0 = input 0 : %s\n  %%1 = param 0 : f32[8, 8]\n%s\n"
           "  output o = %%2 value\n}\n",
           x_type, x_type, line);
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "e.ir", &d);
  ck_assert_msg(!m, "accepted:\n%s", text);
  ck_assert_msg(strstr(diag_text(&d), want), "for\n%s\nexpected '%s' in: %s", line, want,
                diag_text(&d));
  diag_fini(&d);
}

START_TEST(unsupported_uses_are_errors) {
  expect_error("f32[n<=8, 8]", "  %2 = transpose %0 {perm=[1, 0]} : f32[8, 8]", "must stay axis 0");
  expect_error("f32[n<=8, 8]", "  %2 = add %0, %1 : f32[n<=8, 8]", "cannot be broadcast");
  expect_error("f32[n<=8, 8]", "  %2 = reshape %0 : f32[64]", "must stay in axis 0");
  expect_error("f32[n<=8, 8]", "  %2 = matmul %1, %0 {trans_b} : f32[8, 8]",
               "would become the result's columns");
  expect_error("f32[n<=8, 8]", "  %2 = matmul %1, %0 : f32[8, 8]",
               "must be contracted with the same dynamic axis");
}
END_TEST

START_TEST(weight_gradient_contracts_the_batch) {
  Diag d;
  diag_init(&d);
  const char *text = "module g\ndynamic N max=8\ninput x: f32[n<=8, 3]\ninput y: f32[n<=8, 2]\n"
                     "graph model {\n  %0 = input 0 : f32[n<=8, 3]\n  %1 = input 1 : f32[n<=8, 2]\n"
                     "  %2 = matmul %0, %1 {trans_a} : f32[3, 2]\n"
                     "  %3 = reshape %0 : f32[3n<=24]\n"
                     "  output w = %2 value\n  output f = %3 value\n}\n";
  Module *m = ir_parse(text, "g.ir", &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  ck_assert_int_eq(m->model->nodes[2].shape.dyn, 0);
  ck_assert_int_eq(m->model->nodes[3].shape.dyn, 3);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* ---- scans (docs/dynamic-batch.md "Scans") ------------------------------------------------ */

/* h' = tanh(x_t w + h u) over 4 steps of xs (axis 1) with a static counter carry k (so the
 * packed value mixes batch-sized and static pieces: static at the bound, [15 max + 1]), the
 * stacked h' as y; the loss is mean(y^2) * k. batch: the axis-0 text; m: the batch (the
 * bound when dynamic). With !counter the scan has only h and y: its value is [15n]. */
static char *scan_text(const char *batch, int64_t m, bool dyn, bool counter) {
  char *out = malloc(4096), *o = out;
  const char *B = batch;
  long long P = counter ? 15 * m + 1 : 15 * m, koff = 3 * m, yoff = counter ? 3 * m + 1 : 3 * m;
  o += sprintf(o, "module s\n%sinput xs: f32[%s, 4, 2]\n", dyn ? "dynamic N max=8\n" : "", B);
  o += sprintf(o, "param w: f32[2, 3] = glorot_uniform\nparam u: f32[3, 3] = glorot_uniform\n");
  o += sprintf(o, "train minimize loss %%%d optimizer adam(lr=0.1)\ngraph model {\n  body 0 {\n",
               counter ? 12 : 10);
  int a = 0;
  o += sprintf(o, "    %%%d = scan_arg 0 : f32[%s, 3]\n", a++, B);
  if (counter) o += sprintf(o, "    %%%d = scan_arg 1 : f32[1]\n", a++);
  int c = counter;
  o += sprintf(o, "    %%%d = scan_arg %d : f32[%s, 2]\n", a, 1 + c, B);
  o += sprintf(o, "    %%%d = scan_arg %d : f32[2, 3]\n", a + 1, 2 + c);
  o += sprintf(o, "    %%%d = scan_arg %d : f32[3, 3]\n", a + 2, 3 + c);
  o += sprintf(o, "    %%%d = matmul %%%d, %%%d : f32[%s, 3]\n", a + 3, a, a + 1, B);
  o += sprintf(o, "    %%%d = matmul %%0, %%%d : f32[%s, 3]\n", a + 4, a + 2, B);
  o += sprintf(o, "    %%%d = add %%%d, %%%d : f32[%s, 3]\n", a + 5, a + 3, a + 4, B);
  o += sprintf(o, "    %%%d = tanh %%%d : f32[%s, 3]\n", a + 6, a + 5, B);
  if (counter) o += sprintf(o, "    %%9 = const 1 : f32[]\n    %%10 = add %%1, %%9 : f32[1]\n");
  o += sprintf(o, "    output h = %%%d value\n", a + 6);
  if (counter) o += sprintf(o, "    output k = %%10 value\n");
  o += sprintf(o, "    output y = %%%d value\n  }\n", a + 6);
  o += sprintf(o, "  %%0 = input 0 : f32[%s, 4, 2]\n  %%1 = param 0 : f32[2, 3]\n", B);
  o += sprintf(o, "  %%2 = param 1 : f32[3, 3]\n  %%3 = const 0 : f32[%s, 3]\n", B);
  o += sprintf(o, "  %%4 = const 0 : f32[1]\n");
  o += sprintf(o,
               "  %%5 = scan %%3, %s%%0, %%1, %%2 {body=0, length=4, carries=%d, seqs=1, "
               "axis=1} : f32[%s%lld]\n",
               counter ? "%4, " : "", 1 + c, dyn && !counter ? "15n<=" : "", P);
  o += sprintf(o, "  %%6 = unpack %%5 {offset=0} : f32[%s, 3]\n", B);
  o += sprintf(o, "  %%7 = unpack %%5 {offset=%lld} : f32[%s, 4, 3]\n", yoff, B);
  o += sprintf(o, "  %%8 = mul %%7, %%7 : f32[%s, 4, 3]\n", B);
  o += sprintf(o, "  %%9 = mean %%8 {axes=[0, 1, 2], keepdims=false} : f32[]\n");
  if (counter)
    o += sprintf(o,
                 "  %%10 = unpack %%5 {offset=%lld} : f32[1]\n  %%11 = sum %%10 {axes=[0], "
                 "keepdims=false} : f32[]\n  %%12 = mul %%9, %%11 : f32[]\n",
                 koff);
  o += sprintf(o, "  output h = %%6 value\n  output loss = %%%d loss\n}\n", counter ? 12 : 9);
  return out;
}

/* entry `kind` of the dynamic scan module at n against the static one built for n */
static void check_scan_entry(Module *dyn, EntryKind kind, int64_t n, Diag *d) {
  char dim[32];
  snprintf(dim, sizeof dim, "%lld", (long long)n);
  char *text = scan_text(dim, n, false, true);
  Module *fixed = parse_run(text, d);
  free(text);
  Graph *gs = graph_specialize(entry(dyn, kind), n, d);
  ck_assert_msg(gs, "%s", diag_text(d));
  Graph *gf = entry(fixed, kind);
  Args a;
  args_make(&a, fixed, n);
  Tensor od[32], of[32];
  ck_assert_int_le(gf->n_outputs, 32);
  ck_assert_msg(ir_eval(gs, a.in, a.params, a.states, od, NULL, d), "%s", diag_text(d));
  ck_assert_msg(ir_eval(gf, a.in, a.params, a.states, of, NULL, d), "%s", diag_text(d));
  ck_assert_int_eq(gs->n_outputs, gf->n_outputs);
  for (int i = 0; i < gf->n_outputs; i++) {
    expect_close(&od[i], &of[i], gf->outputs[i].name, n);
    tensor_free(&od[i]);
    tensor_free(&of[i]);
  }
  args_free(&a);
  graph_free(gs);
  module_free(fixed);
}

/* the packed layout at n: piece k at offset_n * n + (offset - offset_n * max) */
START_TEST(scan_carries_the_batch) {
  Diag d;
  diag_init(&d);
  char *text = scan_text("n<=8", MAX, true, true);
  Module *m = ir_parse(text, "s.ir", &d);
  ck_assert_msg(m, "%s\n%s", diag_text(&d), text);
  const Graph *g = m->model;
  ck_assert_int_eq(g->nodes[5].shape.dyn, 0); /* mixed: static at the bound, 15 * 8 + 1 */
  ck_assert_int_eq(g->nodes[5].shape.dim[0], 121);
  ck_assert_int_eq(g->nodes[7].attr.unpack.offset_n, 3);  /* y after h: 3n + 1 */
  ck_assert_int_eq(g->nodes[10].attr.unpack.offset_n, 3); /* k after h: 3n */
  ck_assert_int_eq(g->nodes[7].shape.dyn, 1);
  ck_assert_int_eq(g->subgraphs[0]->nodes[0].shape.dyn, 1);
  char *once = ir_print(g);
  ck_assert_msg(strstr(once, "unpack %5 {offset=25, offset_n=3} : f32[n<=8, 4, 3]"), "%s", once);
  Module *again = ir_parse(once, "s2.ir", &d);
  ck_assert_msg(again, "%s", diag_text(&d));
  char *twice = ir_print(again->model);
  ck_assert_str_eq(once, twice);
  free(once);
  free(twice);
  module_free(again);
  module_free(m);
  free(text);
  text = scan_text("n<=8", MAX, true, false); /* every piece batch-sized: [15n] */
  m = ir_parse(text, "s3.ir", &d);
  ck_assert_msg(m, "%s\n%s", diag_text(&d), text);
  ck_assert_int_eq(m->model->nodes[5].shape.dyn, 15);
  module_free(m);
  free(text);
  diag_fini(&d);
}
END_TEST

/* forward, the Adam step (its reverse scan) and evaluate at n equal the fixed build at n */
START_TEST(scan_entries_match_fixed_batch) {
  Diag d;
  diag_init(&d);
  char *text = scan_text("n<=8", MAX, true, true);
  Module *dyn = parse_run(text, &d);
  free(text);
  const int64_t ns[] = {1, 3, MAX};
  for (int i = 0; i < 3; i++) {
    check_scan_entry(dyn, ENTRY_FORWARD, ns[i], &d);
    check_scan_entry(dyn, ENTRY_TRAIN, ns[i], &d);
    check_scan_entry(dyn, ENTRY_EVALUATE, ns[i], &d);
  }
  module_free(dyn);
  diag_fini(&d);
}
END_TEST

START_TEST(scan_over_the_batch_is_an_error) {
  Diag d;
  diag_init(&d);
  char *text = scan_text("n<=8", MAX, true, false);
  char *axis = strstr(text, "axis=1}");
  ck_assert_ptr_nonnull(axis);
  axis[5] = '0'; /* the sequence axis becomes the batch */
  Module *m = ir_parse(text, "s.ir", &d);
  ck_assert_ptr_null(m);
  ck_assert_msg(strstr(diag_text(&d), "a recurrence over the batch is not supported"), "%s",
                diag_text(&d));
  free(text);
  diag_fini(&d);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("ir_dyn");
  TCase *t = tcase_create("dyn");
  tcase_add_test(t, entries_match_fixed_batch);
  tcase_add_test(t, text_round_trip);
  tcase_add_test(t, unsupported_uses_are_errors);
  tcase_add_test(t, weight_gradient_contracts_the_batch);
  tcase_add_test(t, scan_carries_the_batch);
  tcase_add_test(t, scan_entries_match_fixed_batch);
  tcase_add_test(t, scan_over_the_batch_is_an_error);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(suite());
}
