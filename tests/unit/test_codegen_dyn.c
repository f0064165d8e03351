/* tests/unit/test_codegen_dyn.c — the run-time batch (docs/dynamic-batch.md) in the memory
 * plan and the generated C.
 *
 * The graphs are built by hand: a module bounded at MAX samples whose inputs are dynamic in
 * axis 0 (Shape.dyn = 1), every batch-proportional node marked dynamic the way the infer hooks
 * carry it. Checked: the plan (plan_check.h) at n = 1, 2, 7 and the bound — aligned, inside
 * workspace_bytes_n * n + workspace_bytes, no two live buffers sharing a byte — with the
 * dynamic buffers in the per-n pool and the static ones above it.
 */
#include "codegen_harness.h"
#include "plan_check.h"

enum { MAX = 64, FEAT = 12, HID = 16, CLASSES = 5 };

static const SrcLoc LOC = {"dyn.lathe", 3, 1};

/* marks node id dynamic (k = 1) where infer has not: axis 0 is the batch */
static NodeId dyn(Graph *g, NodeId id) {
  ck_assert(id != IR_NONE);
  Node *n = graph_node(g, id);
  ck_assert_int_eq(n->shape.dim[0], MAX);
  n->shape.dyn = 1;
  return id;
}

/* mlp(x: f32[n<=64, 12]) -> probs = softmax(relu(x @ w1 + b1) @ w2 + b2), and colsum, the
 * static sum of the logits over the batch */
static Module *dyn_mlp(void) {
  Module *m = module_new("dmlp");
  m->source_file = "dyn.lathe";
  m->dyn_max = MAX;
  m->dyn_name = "N";
  Shape xs = {.rank = 2, .dim = {MAX, FEAT}, .dyn = 1};
  module_add_input(m, "x", DT_F32, &xs, LOC);
  InitSpec glorot = {INIT_GLOROT_UNIFORM, 0, 0}, small = {INIT_UNIFORM, -0.5, 0.5};
  module_add_param(m, "h.w", DT_F32, &(Shape){.rank = 2, .dim = {FEAT, HID}}, glorot, LOC);
  module_add_param(m, "h.b", DT_F32, &(Shape){.rank = 1, .dim = {HID}}, small, LOC);
  module_add_param(m, "o.w", DT_F32, &(Shape){.rank = 2, .dim = {HID, CLASSES}}, glorot, LOC);
  module_add_param(m, "o.b", DT_F32, &(Shape){.rank = 1, .dim = {CLASSES}}, small, LOC);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  NodeId w1 = graph_add_source(g, OP_PARAM, 0, LOC), b1 = graph_add_source(g, OP_PARAM, 1, LOC);
  NodeId w2 = graph_add_source(g, OP_PARAM, 2, LOC), b2 = graph_add_source(g, OP_PARAM, 3, LOC);
  graph_node(g, x)->shape.dyn = 1;
  NodeId h = dyn(g, graph_add_binary(g, OP_MATMUL, x, w1, LOC, &d));
  h = dyn(g, graph_add_binary(g, OP_ADD, h, b1, LOC, &d));
  h = dyn(g, graph_add_unary(g, OP_RELU, h, LOC, &d));
  NodeId z = dyn(g, graph_add_binary(g, OP_MATMUL, h, w2, LOC, &d));
  z = dyn(g, graph_add_binary(g, OP_ADD, z, b2, LOC, &d));
  NodeAttr ax = {.softmax = {1}};
  NodeId probs = dyn(g, graph_add(g, OP_SOFTMAX, &z, 1, &ax, LOC, &d));
  NodeAttr sum0 = {.reduce = {1u, false}};
  NodeId colsum = graph_add(g, OP_SUM, &z, 1, &sum0, LOC, &d);
  ck_assert_msg(colsum != IR_NONE, "%s", diag_text(&d));
  NodeId twice = graph_add_binary(g, OP_ADD, colsum, colsum, LOC, &d);
  graph_add_output(g, "probs", probs, OUT_VALUE, -1);
  graph_add_output(g, "colsum", twice, OUT_VALUE, -1);
  graph_add_output(g, "hidden", h, OUT_LOSS, -1); /* kept in a buffer: not a direct output */
  diag_fini(&d);
  return m;
}

/* dce + memplan (the hand-marked shapes are what infer will give; verify follows the merge) */
static void plan(Module *m) {
  Diag d;
  diag_init(&d);
  PassCtx c;
  pass_ctx_init(&c, &d);
  for (int i = 0; i < m->n_entries; i++) {
    ck_assert_msg(pass_dce(m->entries[i], &c), "dce: %s", diag_text(&d));
    ck_assert_msg(pass_memplan(m->entries[i], &c), "memplan: %s", diag_text(&d));
  }
  pass_ctx_fini(&c);
  diag_fini(&d);
}

START_TEST(test_plan_two_pools) {
  Module *m = dyn_mlp();
  plan(m);
  const Graph *g = m->entries[0];
  ck_assert_int_gt(plan_check(g), 0);
  ck_assert_int_gt(g->workspace_bytes_n, 0);
  ck_assert_int_eq(g->workspace_bytes_n % 64, 0);
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    if (n->offset < 0 || graph_op_is_view(n->op)) continue;
    if (n->shape.dyn) { /* per-n pool: whole aligned rows of n samples */
      ck_assert_int_eq(n->offset, 0);
      ck_assert_int_eq(n->offset_n % 64, 0);
      int64_t per = shape_numel(&n->shape) / MAX * (int64_t)dtype_size(n->dtype);
      ck_assert_int_le(n->offset_n + per, g->workspace_bytes_n);
    } else { /* static pool above it */
      ck_assert_int_eq(n->offset_n, g->workspace_bytes_n);
    }
  }
  module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen_dyn");
  TCase *tc = tcase_create("dyn");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_plan_two_pools);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
