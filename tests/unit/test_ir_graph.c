/* tests/unit/test_ir_graph.c — shapes, dtypes, the op table, graph construction and shape
 * inference, including the diagnostics inference errors produce. */
#include <check.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/unit/testutil.h"

static const SrcLoc LOC = {"t.lathe", 3, 7};

static Shape sh(int rank, int64_t d0, int64_t d1, int64_t d2) {
  int64_t dims[3] = {d0, d1, d2};
  return shape_make(rank, dims);
}

/* a module with inputs x: f32[s] and y: dtype[t] and a model graph */
static Module *two_inputs(Shape s, DType t, Shape u) {
  Module *m = module_new("t");
  module_add_input(m, "x", DT_F32, &s, LOC);
  module_add_input(m, "y", t, &u, LOC);
  m->model = graph_new(m, "model");
  graph_add_source(m->model, OP_INPUT, 0, LOC);
  graph_add_source(m->model, OP_INPUT, 1, LOC);
  return m;
}

START_TEST(test_dtypes) {
  DType t;
  ck_assert(dtype_from_name("i64", &t) && t == DT_I64);
  ck_assert(!dtype_from_name("f16", &t));
  ck_assert_str_eq(dtype_name(DT_U8), "u8");
  ck_assert(dtype_from_name("i8", &t) && t == DT_I8 && dtype_size(DT_I8) == 1);
  ck_assert_str_eq(dtype_c_name(DT_I8), "int8_t");
  ck_assert_str_eq(dtype_c_name(DT_F64), "double");
  ck_assert_int_eq(dtype_size(DT_I32), 4);
  ck_assert(dtype_is_float(DT_F32) && !dtype_is_float(DT_I32));
}
END_TEST

START_TEST(test_shapes) {
  char buf[200];
  Shape a = sh(2, 64, 784, 0), b = sh(1, 784, 0, 0), c = sh(3, 5, 1, 3), out;
  ck_assert_str_eq(shape_str(&a, buf, sizeof buf), "[64, 784]");
  Shape s0 = shape_make(0, NULL);
  ck_assert_str_eq(shape_str(&s0, buf, sizeof buf), "[]");
  ck_assert_int_eq(shape_numel(&a), 64 * 784);
  ck_assert_int_eq(shape_numel(&s0), 1);
  ck_assert(shape_broadcast(&a, &b, &out) && shape_equal(&out, &a));
  Shape d = sh(2, 4, 1, 0);
  ck_assert(shape_broadcast(&c, &d, &out));
  ck_assert_str_eq(shape_str(&out, buf, sizeof buf), "[5, 4, 3]");
  Shape e = sh(1, 3, 0, 0), f = sh(1, 4, 0, 0);
  ck_assert(!shape_broadcast(&e, &f, &out));
  ck_assert(shape_broadcast(&s0, &a, &out) && shape_equal(&out, &a));
}
END_TEST

START_TEST(test_op_table) {
  OpKind op;
  ck_assert(op_from_name("matmul", &op) && op == OP_MATMUL);
  ck_assert(op_from_name("stop_gradient", &op) && op == OP_STOP_GRAD);
  ck_assert(!op_from_name("conv9d", &op));
  ck_assert_int_eq(ir_ops[OP_ADD].arity, 2);
  ck_assert_int_eq(ir_ops[OP_MATMUL].fusion, FUSE_OUT_EWISE);
  InitKind k;
  ck_assert(init_from_name("he_normal", &k) && k == INIT_HE_NORMAL);
  ck_assert_str_eq(init_name(INIT_GLOROT_UNIFORM), "glorot_uniform");
  ck_assert(!init_from_name("orthogonal9", &k));
}
END_TEST

START_TEST(test_broadcast_infer) {
  Module *m = two_inputs(sh(2, 64, 10, 0), DT_F32, sh(1, 10, 0, 0));
  Diag d;
  diag_init(&d);
  NodeId s = graph_add_binary(m->model, OP_ADD, 0, 1, LOC, &d);
  ck_assert_uint_eq(s, 2);
  char buf[200];
  ck_assert_str_eq(shape_str(&graph_node(m->model, s)->shape, buf, sizeof buf), "[64, 10]");
  ck_assert_int_eq(graph_node(m->model, s)->dtype, DT_F32);
  NodeId c = graph_add_binary(m->model, OP_LT, 1, 0, LOC, &d);
  ck_assert_uint_eq(graph_node(m->model, c)->shape.rank, 2);
  ck_assert_int_eq(d.n_errors, 0);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_broadcast_error) {
  Module *m = two_inputs(sh(2, 64, 10, 0), DT_F32, sh(1, 9, 0, 0));
  Diag d;
  diag_init(&d);
  ck_assert_uint_eq(graph_add_binary(m->model, OP_MUL, 0, 1, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 1);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "mul"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "[64, 10]"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "[9]"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "t.lathe:3:7"));
  ck_assert_uint_eq(m->model->n_nodes, 2); /* the failed node was not added */
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_dtype_mismatch) {
  Module *m = two_inputs(sh(1, 4, 0, 0), DT_I32, sh(1, 4, 0, 0));
  Diag d;
  diag_init(&d);
  ck_assert_uint_eq(graph_add_binary(m->model, OP_ADD, 0, 1, LOC, &d), IR_NONE);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "add"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "f32"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "i32"));
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_matmul_infer) {
  Module *m = two_inputs(sh(2, 64, 784, 0), DT_F32, sh(2, 784, 256, 0));
  Diag d;
  diag_init(&d);
  NodeId r = graph_add_binary(m->model, OP_MATMUL, 0, 1, LOC, &d);
  char buf[200];
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[64, 256]");
  /* trans_b: [64, 784] @ [784, 256]^T fails; [64,784]^T... use x^T @ x */
  NodeAttr at = {.matmul = {.trans_a = true, .trans_b = false}};
  NodeId in[2] = {0, 0};
  r = graph_add(m->model, OP_MATMUL, in, 2, &at, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[784, 784]");
  at.matmul.trans_a = false;
  at.matmul.trans_b = true;
  r = graph_add(m->model, OP_MATMUL, in, 2, &at, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[64, 64]");
  ck_assert_int_eq(d.n_errors, 0);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_matmul_batched) {
  Module *m = two_inputs(sh(3, 5, 2, 3), DT_F32, sh(3, 1, 3, 4));
  Diag d;
  diag_init(&d);
  NodeId r = graph_add_binary(m->model, OP_MATMUL, 0, 1, LOC, &d);
  char buf[200];
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[5, 2, 4]");
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_matmul_error) {
  Module *m = two_inputs(sh(2, 64, 784, 0), DT_F32, sh(2, 700, 256, 0));
  Diag d;
  diag_init(&d);
  ck_assert_uint_eq(graph_add_binary(m->model, OP_MATMUL, 0, 1, LOC, &d), IR_NONE);
  ck_assert_ptr_nonnull(
      strstr(diag_text(&d), "matmul: inner dimensions do not match: [64, 784] @ [700, 256] "
                            "(784 vs 700)"));
  Module *m2 = two_inputs(sh(1, 4, 0, 0), DT_F32, sh(2, 4, 4, 0));
  ck_assert_uint_eq(graph_add_binary(m2->model, OP_MATMUL, 0, 1, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 2);
  diag_fini(&d);
  module_free(m);
  module_free(m2);
}
END_TEST

START_TEST(test_reduce_infer) {
  Module *m = two_inputs(sh(3, 2, 3, 4), DT_F32, sh(1, 4, 0, 0));
  Diag d;
  diag_init(&d);
  NodeAttr at = {.reduce = {.axes = 0x5, .keepdims = false}};
  NodeId in = 0;
  char buf[200];
  NodeId r = graph_add(m->model, OP_SUM, &in, 1, &at, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[3]");
  at.reduce.keepdims = true;
  r = graph_add(m->model, OP_MAX, &in, 1, &at, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[1, 3, 1]");
  at.reduce.axes = 0x7;
  at.reduce.keepdims = false;
  r = graph_add(m->model, OP_MEAN, &in, 1, &at, LOC, &d);
  ck_assert_int_eq(graph_node(m->model, r)->shape.rank, 0);
  ck_assert_int_eq(d.n_errors, 0);
  at.reduce.axes = 0x8; /* axis 3 of a rank-3 tensor */
  ck_assert_uint_eq(graph_add(m->model, OP_SUM, &in, 1, &at, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 1);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_structural_infer) {
  Module *m = two_inputs(sh(3, 2, 3, 4), DT_F32, sh(1, 4, 0, 0));
  Diag d;
  diag_init(&d);
  char buf[200];
  NodeId x = 0, y = 1;
  NodeAttr at = {.reshape = {.shape = sh(2, 6, 4, 0)}};
  NodeId r = graph_add(m->model, OP_RESHAPE, &x, 1, &at, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[6, 4]");
  at.reshape.shape = sh(2, 5, 5, 0);
  ck_assert_uint_eq(graph_add(m->model, OP_RESHAPE, &x, 1, &at, LOC, &d), IR_NONE);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "[2, 3, 4]"));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "[5, 5]"));
  NodeAttr tp = {.transpose = {.perm = {2, 0, 1}}};
  r = graph_add(m->model, OP_TRANSPOSE, &x, 1, &tp, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[4, 2, 3]");
  tp.transpose.perm[1] = 2;
  ck_assert_uint_eq(graph_add(m->model, OP_TRANSPOSE, &x, 1, &tp, LOC, &d), IR_NONE);
  NodeAttr bc = {.reshape = {.shape = sh(2, 5, 4, 0)}};
  r = graph_add(m->model, OP_BROADCAST, &y, 1, &bc, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[5, 4]");
  bc.reshape.shape = sh(1, 1, 0, 0);
  ck_assert_uint_eq(graph_add(m->model, OP_BROADCAST, &y, 1, &bc, LOC, &d), IR_NONE);
  NodeAttr sm = {.softmax = {.axis = 3}};
  ck_assert_uint_eq(graph_add(m->model, OP_SOFTMAX, &x, 1, &sm, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 4);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_one_hot_cast_infer) {
  Module *m = two_inputs(sh(1, 8, 0, 0), DT_I32, sh(1, 8, 0, 0));
  Diag d;
  diag_init(&d);
  char buf[200];
  NodeId x = 0, y = 1;
  NodeAttr oh = {.one_hot = {.depth = 10, .dtype = DT_F32}};
  NodeId r = graph_add(m->model, OP_ONE_HOT, &y, 1, &oh, LOC, &d);
  ck_assert_str_eq(shape_str(&graph_node(m->model, r)->shape, buf, sizeof buf), "[8, 10]");
  ck_assert_int_eq(graph_node(m->model, r)->dtype, DT_F32);
  ck_assert_uint_eq(graph_add(m->model, OP_ONE_HOT, &x, 1, &oh, LOC, &d), IR_NONE);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "one_hot"));
  NodeAttr c = {.cast = {.dtype = DT_F32}};
  r = graph_add(m->model, OP_CAST, &y, 1, &c, LOC, &d);
  ck_assert_int_eq(graph_node(m->model, r)->dtype, DT_F32);
  ck_assert_uint_eq(graph_add_unary(m->model, OP_EXP, y, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 2);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_arity_and_ids) {
  Module *m = two_inputs(sh(1, 8, 0, 0), DT_F32, sh(1, 8, 0, 0));
  Diag d;
  diag_init(&d);
  NodeId in[3] = {0, 1, 0};
  ck_assert_uint_eq(graph_add(m->model, OP_ADD, in, 3, NULL, LOC, &d), IR_NONE);
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "add: expected 2 inputs, got 3"));
  ck_assert_uint_eq(graph_add_unary(m->model, OP_NEG, 99, LOC, &d), IR_NONE);
  NodeAttr src = {.source = {.index = 5}};
  ck_assert_uint_eq(graph_add(m->model, OP_PARAM, NULL, 0, &src, LOC, &d), IR_NONE);
  ck_assert_int_eq(d.n_errors, 3);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_module_and_clone) {
  Module *m = module_new("mlp");
  Shape s = sh(2, 3, 4, 0);
  InitSpec init = {INIT_GLOROT_UNIFORM, 0, 0};
  ck_assert_int_eq(module_add_param(m, "h1.w", DT_F32, &s, init, LOC), 0);
  ck_assert_int_eq(module_add_param(m, "h1.b", DT_F32, &s, init, LOC), 1);
  ck_assert_int_eq(module_add_state(m, "step", DT_I64, &s, init, LOC), 0);
  ck_assert_int_eq(module_find_param(m, "h1.b"), 1);
  ck_assert_int_eq(module_find_param(m, "h2.b"), -1);
  m->model = graph_new(m, "model");
  Graph *g = m->model;
  NodeId p = graph_add_source(g, OP_PARAM, 0, LOC);
  NodeId c = graph_add_scalar(g, DT_F32, 2.5, LOC);
  Diag d;
  diag_init(&d);
  NodeId r = graph_add_binary(g, OP_MUL, p, c, LOC, &d);
  graph_node(g, r)->name = arena_strdup(&g->arena, "scaled");
  graph_add_output(g, "y", r, OUT_VALUE, -1);
  Graph *cl = graph_clone(g, "forward");
  module_add_entry(m, cl);
  ck_assert_str_eq(cl->name, "forward");
  ck_assert_uint_eq(cl->n_nodes, 3);
  ck_assert_str_eq(graph_node(cl, r)->name, "scaled");
  ck_assert_ptr_ne(graph_node(cl, r)->name, graph_node(g, r)->name);
  ck_assert_int_eq(cl->n_outputs, 1);
  ck_assert_str_eq(cl->outputs[0].name, "y");
  TrainStep *st = module_add_step(m);
  ck_assert_uint_eq(st->loss_node, IR_NONE);
  ck_assert_int_eq(m->n_steps, 1);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_arena) {
  Arena a;
  arena_init(&a);
  char *s = arena_printf(&a, "%s.%d", "h", 12);
  ck_assert_str_eq(s, "h.12");
  unsigned char *big = arena_alloc(&a, 1 << 20);
  ck_assert_int_eq((uintptr_t)big % 16, 0);
  ck_assert_int_eq(big[12345], 0);
  for (int i = 0; i < 10000; i++) {
    unsigned char *p = arena_alloc(&a, 7);
    ck_assert_int_eq((uintptr_t)p % 16, 0);
    ck_assert_int_eq(p[6], 0);
  }
  ck_assert_str_eq(arena_strndup(&a, "abcdef", 3), "abc");
  arena_fini(&a);
}
END_TEST

static Suite *ir_graph_suite(void) {
  Suite *s = suite_create("ir_graph");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_dtypes);
  tcase_add_test(tc, test_shapes);
  tcase_add_test(tc, test_op_table);
  tcase_add_test(tc, test_broadcast_infer);
  tcase_add_test(tc, test_broadcast_error);
  tcase_add_test(tc, test_dtype_mismatch);
  tcase_add_test(tc, test_matmul_infer);
  tcase_add_test(tc, test_matmul_batched);
  tcase_add_test(tc, test_matmul_error);
  tcase_add_test(tc, test_reduce_infer);
  tcase_add_test(tc, test_structural_infer);
  tcase_add_test(tc, test_one_hot_cast_infer);
  tcase_add_test(tc, test_arity_and_ids);
  tcase_add_test(tc, test_module_and_clone);
  tcase_add_test(tc, test_arena);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(ir_graph_suite()); }
