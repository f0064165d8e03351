/* tests/unit/test_passes_opt.c — the optimizing pipeline on the whole MLP train step.
 *
 * Differential: examples/mlp.lathe compiled at -O0 and -O3 (every entry: forward, train,
 * grad, evaluate) gives the same outputs, loss, gradients and parameter/state updates as the
 * reference evaluator on the -O0 graph, both as IR (ir_eval of the optimized graph) and as
 * generated C built by gcc (and by clang with --exhaustive: test_passes_opt_exhaustive).
 * Structural: the fusion schedule is a topological order,
 * the memory plan never overlaps two live buffers (except an elementwise kernel's in-place
 * output over the input dying in it) and fits the planned size; and the targets of the
 * optimizing passes hold: at -O3 the train step has at most half the kernels of -O0 and an
 * arena at most 40% of the sum of its intermediates.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_harness.h"
#include "frontend/frontend.h"
#include "plan_check.h"
#include "testutil.h"

enum { BATCH = 4 };

static Module *build_mlp(int level) {
  char *text = test_read_file("examples/mlp.lathe");
  ck_assert_ptr_nonnull(text);
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  Define def = {.name = "N", .value = BATCH};
  fo.defines = &def;
  fo.n_defines = 1;
  Module *m = frontend_compile("examples/mlp.lathe", text, &fo, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.opt_level = level;
  c.verify = true;
  c.want_grad = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "passes at -O%d: %s", level, diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  free(text);
  return m;
}

typedef struct Data {
  Tensor inputs[8], params[16], states[32];
} Data;

static void data_init(Data *t, const Module *m) {
  memset(t, 0, sizeof *t);
  ck_assert_int_le(m->n_inputs, 8);
  ck_assert_int_le(m->n_params, 16);
  ck_assert_int_le(m->n_states, 32);
  for (int i = 0; i < m->n_inputs; i++) {
    tensor_alloc(&t->inputs[i], m->inputs[i].dtype, &m->inputs[i].shape);
    bool labels = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&t->inputs[i], 11 + (uint64_t)i, labels ? 0 : -1, labels ? 10 : 1);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 7, &t->params[i]);
  for (int i = 0; i < m->n_states; i++) { /* moments > 0, so Adam's sqrt and divide matter */
    tensor_alloc(&t->states[i], m->states[i].dtype, &m->states[i].shape);
    cgh_fill(&t->states[i], 100 + (uint64_t)i, 0.001, 0.01);
  }
}

static void data_fini(Data *t) {
  for (int i = 0; i < 8; i++)
    tensor_free(&t->inputs[i]);
  for (int i = 0; i < 16; i++)
    tensor_free(&t->params[i]);
  for (int i = 0; i < 32; i++)
    tensor_free(&t->states[i]);
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry %s", name);
  return NULL;
}

/* ir_eval of the optimized graph matches ir_eval of the -O0 graph, output by output */
static void check_same_values(const Graph *ref, const Graph *opt, const Data *t) {
  Diag d;
  diag_init(&d);
  ck_assert_int_eq(ref->n_outputs, opt->n_outputs);
  Tensor *a = calloc((size_t)ref->n_outputs, sizeof *a),
         *b = calloc((size_t)ref->n_outputs, sizeof *b);
  ck_assert_msg(ir_eval(ref, t->inputs, t->params, t->states, a, NULL, &d), "%s", diag_text(&d));
  ck_assert_msg(ir_eval(opt, t->inputs, t->params, t->states, b, NULL, &d), "%s", diag_text(&d));
  for (int o = 0; o < ref->n_outputs; o++) {
    ck_assert_str_eq(ref->outputs[o].name, opt->outputs[o].name);
    cgh_expect_close(ref->outputs[o].name, a[o].dtype, b[o].data, &a[o], 1e-5);
    tensor_free(&a[o]);
    tensor_free(&b[o]);
  }
  free(a);
  free(b);
  diag_fini(&d);
}

START_TEST(test_o0_o3_same_values) {
  Module *m0 = build_mlp(0), *m3 = build_mlp(3);
  ck_assert_int_eq(m0->n_states, m3->n_states);
  ck_assert_int_eq(m0->n_entries, m3->n_entries);
  Data t;
  data_init(&t, m0);
  for (int i = 0; i < m0->n_entries; i++)
    check_same_values(m0->entries[i], entry(m3, m0->entries[i]->name), &t);
  data_fini(&t);
  module_free(m0);
  module_free(m3);
}
END_TEST

/* generated C at -O<level> (cgh_check_module's compilers) matches the evaluator on every entry */
static void check_codegen(int level) {
  Module *m = build_mlp(level);
  Data t;
  data_init(&t, m);
  cgh_check_module(m, t.inputs, t.params, t.states, 2e-4);
  data_fini(&t);
  module_free(m);
}

START_TEST(test_codegen_o0) {
  check_codegen(0);
}
END_TEST

START_TEST(test_codegen_o3) {
  check_codegen(3);
}
END_TEST

static bool elementwise(OpKind op) {
  return op == OP_BROADCAST || (ir_ops[op].fusion == FUSE_ELEMWISE && op != OP_CONST);
}

/* Every input is computed by an earlier kernel or by the node's own group. */
static void check_schedule(const Graph *g) {
  int32_t *k = malloc((g->n_nodes + 1) * sizeof *k);
  ck_assert_int_ge(graph_fill_kernels(g, k), 0);
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    for (int j = 0; j < n->n_in && k[id] >= 0; j++) {
      NodeId x = n->in[j];
      ck_assert_msg(k[x] <= k[id], "%s: %%%u (kernel %d) reads %%%u (kernel %d)", g->name, id,
                    k[id], x, k[x]);
      if (k[x] == k[id]) ck_assert_int_eq(g->nodes[x].group, n->group);
    }
    if (n->group >= 0) {
      const Node *seed = &g->nodes[n->group];
      ck_assert_int_eq(seed->group, n->group);
      bool row_op = n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX || n->op == OP_SUM ||
                    n->op == OP_MEAN || n->op == OP_MAX || n->op == OP_ONE_HOT; /* row groups */
      ck_assert(n->op == OP_MATMUL || elementwise(n->op) || row_op);
    }
  }
  free(k);
}

START_TEST(test_schedule_and_plan_valid) {
  for (int level = 0; level <= 3; level++) {
    Module *m = build_mlp(level);
    for (int i = 0; i < m->n_entries; i++) {
      check_schedule(m->entries[i]);
      plan_check(m->entries[i]); /* plan_check.h */
    }
    module_free(m);
  }
}
END_TEST

START_TEST(test_targets) {
  Module *m0 = build_mlp(0), *m3 = build_mlp(3);
  const Graph *g0 = entry(m0, "train"), *g3 = entry(m3, "train");
  int32_t *k = malloc((g0->n_nodes + 1) * sizeof *k);
  int32_t kernels0 = graph_fill_kernels(g0, k), kernels3 = graph_fill_kernels(g3, k);
  PlanBuffer *b = malloc((g0->n_nodes + 1) * sizeof *b);
  int64_t intermediates = 0;
  graph_fill_buffers(g0, b, &intermediates);
  ck_assert_msg(2 * kernels3 <= kernels0, "kernels: -O0 %d, -O3 %d", kernels0, kernels3);
  ck_assert_msg(g3->workspace_bytes * 10 <= intermediates * 4,
                "arena %lld bytes vs %lld bytes of intermediates", (long long)g3->workspace_bytes,
                (long long)intermediates);
  free(k);
  free(b);
  module_free(m0);
  module_free(m3);
}
END_TEST

static Suite *passes_opt_suite(void) {
  Suite *s = suite_create("passes_opt");
  TCase *tc = tcase_create("mlp");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_o0_o3_same_values);
  tcase_add_test(tc, test_schedule_and_plan_valid);
  tcase_add_test(tc, test_targets);
  tcase_add_test(tc, test_codegen_o0);
  tcase_add_test(tc, test_codegen_o3);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return 2;
  return test_run_suite(passes_opt_suite());
}
