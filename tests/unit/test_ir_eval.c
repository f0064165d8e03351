/* tests/unit/test_ir_eval.c — the reference evaluator, op by op, against hand-computed values
 * (broadcasting, batched and transposed matmul, reductions, softmax, rounding to dtypes). */
#include <check.h>
#include <math.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/unit/testutil.h"

static const SrcLoc LOC = {"t.lathe", 1, 1};

typedef struct Fixture {
  Module *m;
  Tensor in[4];
  int n_in;
  Diag d;
} Fixture;

/* declares input n_in with the given values and adds its INPUT node; returns the node id */
static NodeId fx_input(Fixture *f, DType t, int rank, const int64_t *dims, const double *vals) {
  Shape s = shape_make(rank, dims);
  int32_t idx = module_add_input(f->m, "in", t, &s, LOC);
  ck_assert(tensor_alloc(&f->in[idx], t, &s));
  for (int64_t i = 0; i < shape_numel(&s); i++) tensor_set(&f->in[idx], i, vals[i]);
  f->n_in++;
  return graph_add_source(f->m->model, OP_INPUT, idx, LOC);
}

static void fx_init(Fixture *f) {
  memset(f, 0, sizeof *f);
  f->m = module_new("t");
  f->m->model = graph_new(f->m, "model");
  diag_init(&f->d);
}

static void fx_fini(Fixture *f) {
  for (int i = 0; i < f->n_in; i++) tensor_free(&f->in[i]);
  diag_fini(&f->d);
  module_free(f->m);
}

/* evaluates node `id` as the single output and compares it with want[] (exact unless tol) */
static void fx_expect(Fixture *f, NodeId id, const double *want, int64_t n, double tol) {
  ck_assert_msg(id != IR_NONE, "node not built: %s", diag_text(&f->d));
  Graph *g = f->m->model;
  g->n_outputs = 0;
  graph_add_output(g, "out", id, OUT_VALUE, -1);
  Tensor out;
  ck_assert_msg(ir_eval(g, f->in, NULL, NULL, &out, NULL, &f->d), "%s", diag_text(&f->d));
  ck_assert_int_eq(shape_numel(&out.shape), n);
  ck_assert_int_eq(out.dtype, graph_node(g, id)->dtype);
  for (int64_t i = 0; i < n; i++) {
    double got = tensor_get(&out, i);
    ck_assert_msg(fabs(got - want[i]) <= tol, "element %lld: got %.17g want %.17g",
                  (long long)i, got, want[i]);
  }
  tensor_free(&out);
}

START_TEST(test_binary_broadcast) {
  Fixture f;
  fx_init(&f);
  int64_t d23[2] = {2, 3}, d3[1] = {3}, d21[2] = {2, 1};
  NodeId a = fx_input(&f, DT_F64, 2, d23, (double[]){1, 2, 3, 4, 5, 6});
  NodeId b = fx_input(&f, DT_F64, 1, d3, (double[]){10, 20, 30});
  NodeId c = fx_input(&f, DT_F64, 2, d21, (double[]){100, 200});
  Graph *g = f.m->model;
  fx_expect(&f, graph_add_binary(g, OP_ADD, a, b, LOC, &f.d), (double[]){11, 22, 33, 14, 25, 36},
            6, 0);
  fx_expect(&f, graph_add_binary(g, OP_SUB, c, a, LOC, &f.d),
            (double[]){99, 98, 97, 196, 195, 194}, 6, 0);
  fx_expect(&f, graph_add_binary(g, OP_MUL, b, c, LOC, &f.d),
            (double[]){1000, 2000, 3000, 2000, 4000, 6000}, 6, 0);
  fx_expect(&f, graph_add_binary(g, OP_DIV, a, c, LOC, &f.d),
            (double[]){0.01, 0.02, 0.03, 0.02, 0.025, 0.03}, 6, 1e-15);
  fx_expect(&f, graph_add_binary(g, OP_POW, a, a, LOC, &f.d),
            (double[]){1, 4, 27, 256, 3125, 46656}, 6, 0);
  NodeId k = graph_add_scalar(g, DT_F64, 3.5, LOC);
  fx_expect(&f, graph_add_binary(g, OP_MAXIMUM, a, k, LOC, &f.d),
            (double[]){3.5, 3.5, 3.5, 4, 5, 6}, 6, 0);
  fx_expect(&f, graph_add_binary(g, OP_MINIMUM, k, a, LOC, &f.d),
            (double[]){1, 2, 3, 3.5, 3.5, 3.5}, 6, 0);
  fx_expect(&f, graph_add_binary(g, OP_LT, a, k, LOC, &f.d), (double[]){1, 1, 1, 0, 0, 0}, 6, 0);
  fx_expect(&f, graph_add_binary(g, OP_GE, a, k, LOC, &f.d), (double[]){0, 0, 0, 1, 1, 1}, 6, 0);
  NodeId two = graph_add_scalar(g, DT_F64, 2, LOC);
  fx_expect(&f, graph_add_binary(g, OP_EQ, a, two, LOC, &f.d), (double[]){0, 1, 0, 0, 0, 0}, 6,
            0);
  fx_expect(&f, graph_add_binary(g, OP_NE, a, two, LOC, &f.d), (double[]){1, 0, 1, 1, 1, 1}, 6,
            0);
  fx_expect(&f, graph_add_binary(g, OP_LE, a, two, LOC, &f.d), (double[]){1, 1, 0, 0, 0, 0}, 6,
            0);
  fx_expect(&f, graph_add_binary(g, OP_GT, a, two, LOC, &f.d), (double[]){0, 0, 1, 1, 1, 1}, 6,
            0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_unary) {
  Fixture f;
  fx_init(&f);
  int64_t d4[1] = {4};
  NodeId x = fx_input(&f, DT_F64, 1, d4, (double[]){-2, -0.5, 0, 1.5});
  Graph *g = f.m->model;
  fx_expect(&f, graph_add_unary(g, OP_NEG, x, LOC, &f.d), (double[]){2, 0.5, 0, -1.5}, 4, 0);
  fx_expect(&f, graph_add_unary(g, OP_ABS, x, LOC, &f.d), (double[]){2, 0.5, 0, 1.5}, 4, 0);
  fx_expect(&f, graph_add_unary(g, OP_SIGN, x, LOC, &f.d), (double[]){-1, -1, 0, 1}, 4, 0);
  fx_expect(&f, graph_add_unary(g, OP_RELU, x, LOC, &f.d), (double[]){0, 0, 0, 1.5}, 4, 0);
  fx_expect(&f, graph_add_unary(g, OP_STOP_GRAD, x, LOC, &f.d), (double[]){-2, -0.5, 0, 1.5}, 4,
            0);
  fx_expect(&f, graph_add_unary(g, OP_EXP, x, LOC, &f.d),
            (double[]){0.1353352832366127, 0.6065306597126334, 1, 4.4816890703380645}, 4, 1e-15);
  fx_expect(&f, graph_add_unary(g, OP_SIGMOID, x, LOC, &f.d),
            (double[]){0.11920292202211755, 0.3775406687981454, 0.5, 0.8175744761936437}, 4,
            1e-15);
  fx_expect(&f, graph_add_unary(g, OP_TANH, x, LOC, &f.d),
            (double[]){-0.9640275800758169, -0.46211715726000974, 0, 0.9051482536448664}, 4,
            1e-15);
  NodeId ax = graph_add_unary(g, OP_ABS, x, LOC, &f.d);
  fx_expect(&f, graph_add_unary(g, OP_SQRT, ax, LOC, &f.d),
            (double[]){1.4142135623730951, 0.7071067811865476, 0, 1.224744871391589}, 4, 1e-15);
  NodeId e = graph_add_unary(g, OP_EXP, x, LOC, &f.d);
  fx_expect(&f, graph_add_unary(g, OP_LOG, e, LOC, &f.d), (double[]){-2, -0.5, 0, 1.5}, 4, 1e-15);
  fx_fini(&f);
}
END_TEST

START_TEST(test_cast_and_rounding) {
  Fixture f;
  fx_init(&f);
  int64_t d4[1] = {4};
  NodeId x = fx_input(&f, DT_F64, 1, d4, (double[]){-2.7, 0.1, 2.5, 300.9});
  Graph *g = f.m->model;
  NodeAttr c = {.cast = {.dtype = DT_I32}};
  fx_expect(&f, graph_add(g, OP_CAST, &x, 1, &c, LOC, &f.d), (double[]){-2, 0, 2, 300}, 4, 0);
  c.cast.dtype = DT_F32;
  fx_expect(&f, graph_add(g, OP_CAST, &x, 1, &c, LOC, &f.d),
            (double[]){(float)-2.7, (float)0.1, 2.5, (float)300.9}, 4, 0);
  c.cast.dtype = DT_U8;
  fx_expect(&f, graph_add(g, OP_CAST, &x, 1, &c, LOC, &f.d), (double[]){0, 0, 2, 255}, 4, 0);
  /* f32 arithmetic is rounded per node: 0.1f * 3 in double, then to float */
  NodeId xf = fx_input(&f, DT_F32, 1, d4, (double[]){0.1, 0.2, 0.3, 1e-8});
  NodeId one = graph_add_scalar(g, DT_F32, 1, LOC);
  double want[4];
  double in[4] = {0.1, 0.2, 0.3, 1e-8};
  for (int i = 0; i < 4; i++) want[i] = (double)(float)((double)(float)in[i] + 1.0);
  fx_expect(&f, graph_add_binary(g, OP_ADD, xf, one, LOC, &f.d), want, 4, 0);
  /* integer division truncates like C */
  NodeId xi = fx_input(&f, DT_I32, 1, d4, (double[]){7, -7, 9, 1});
  NodeId two = graph_add_scalar(g, DT_I32, 2, LOC);
  fx_expect(&f, graph_add_binary(g, OP_DIV, xi, two, LOC, &f.d), (double[]){3, -3, 4, 0}, 4, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_matmul) {
  Fixture f;
  fx_init(&f);
  int64_t d23[2] = {2, 3}, d32[2] = {3, 2};
  NodeId a = fx_input(&f, DT_F64, 2, d23, (double[]){1, 2, 3, 4, 5, 6});
  NodeId b = fx_input(&f, DT_F64, 2, d32, (double[]){7, 8, 9, 10, 11, 12});
  Graph *g = f.m->model;
  fx_expect(&f, graph_add_binary(g, OP_MATMUL, a, b, LOC, &f.d), (double[]){58, 64, 139, 154}, 4,
            0);
  /* a^T @ a: [3,2] @ [2,3] */
  NodeAttr at = {.matmul = {.trans_a = true}};
  NodeId aa[2] = {a, a};
  fx_expect(&f, graph_add(g, OP_MATMUL, aa, 2, &at, LOC, &f.d),
            (double[]){17, 22, 27, 22, 29, 36, 27, 36, 45}, 9, 0);
  /* a @ a^T: [2,3] @ [3,2] */
  at.matmul.trans_a = false;
  at.matmul.trans_b = true;
  fx_expect(&f, graph_add(g, OP_MATMUL, aa, 2, &at, LOC, &f.d), (double[]){14, 32, 32, 77}, 4, 0);
  /* b^T @ a^T = (a @ b)^T */
  at.matmul.trans_a = true;
  NodeId ba[2] = {b, a};
  fx_expect(&f, graph_add(g, OP_MATMUL, ba, 2, &at, LOC, &f.d), (double[]){58, 139, 64, 154}, 4,
            0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_matmul_batched) {
  Fixture f;
  fx_init(&f);
  /* a: [2, 1, 2, 2], b: [3, 2, 1] -> out [2, 3, 2, 1] */
  int64_t da[4] = {2, 1, 2, 2}, db[3] = {3, 2, 1};
  NodeId a = fx_input(&f, DT_F64, 4, da, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
  NodeId b = fx_input(&f, DT_F64, 3, db, (double[]){1, 0, 0, 1, 1, 1});
  Graph *g = f.m->model;
  NodeId r = graph_add_binary(g, OP_MATMUL, a, b, LOC, &f.d);
  ck_assert_int_eq(graph_node(g, r)->shape.rank, 4);
  ck_assert_int_eq(graph_node(g, r)->shape.dim[1], 3);
  /* batch 0 (a0=[[1,2],[3,4]]): b0=[1,0]->[1,3]; b1=[0,1]->[2,4]; b2=[1,1]->[3,7]
   * batch 1 (a1=[[5,6],[7,8]]): [5,7]; [6,8]; [11,15] */
  fx_expect(&f, r, (double[]){1, 3, 2, 4, 3, 7, 5, 7, 6, 8, 11, 15}, 12, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_reduce) {
  Fixture f;
  fx_init(&f);
  int64_t d23[2] = {2, 3};
  NodeId x = fx_input(&f, DT_F64, 2, d23, (double[]){1, 5, 3, 4, -2, 6});
  Graph *g = f.m->model;
  NodeAttr r = {.reduce = {.axes = 1, .keepdims = false}};
  fx_expect(&f, graph_add(g, OP_SUM, &x, 1, &r, LOC, &f.d), (double[]){5, 3, 9}, 3, 0);
  r.reduce.axes = 2;
  r.reduce.keepdims = true;
  fx_expect(&f, graph_add(g, OP_MEAN, &x, 1, &r, LOC, &f.d), (double[]){3, 8.0 / 3}, 2, 1e-15);
  fx_expect(&f, graph_add(g, OP_MAX, &x, 1, &r, LOC, &f.d), (double[]){5, 6}, 2, 0);
  r.reduce.axes = 3;
  r.reduce.keepdims = false;
  fx_expect(&f, graph_add(g, OP_SUM, &x, 1, &r, LOC, &f.d), (double[]){17}, 1, 0);
  fx_expect(&f, graph_add(g, OP_MAX, &x, 1, &r, LOC, &f.d), (double[]){6}, 1, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_softmax) {
  Fixture f;
  fx_init(&f);
  int64_t d23[2] = {2, 3};
  /* large values: a naive exp overflows, the max-subtracted form does not */
  NodeId x = fx_input(&f, DT_F64, 2, d23, (double[]){1, 2, 3, 1000, 1000, 1000});
  Graph *g = f.m->model;
  NodeAttr s = {.softmax = {.axis = 1}};
  double e1 = exp(-2), e2 = exp(-1), z = e1 + e2 + 1;
  fx_expect(&f, graph_add(g, OP_SOFTMAX, &x, 1, &s, LOC, &f.d),
            (double[]){e1 / z, e2 / z, 1 / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 6, 1e-15);
  double lz = log(z);
  fx_expect(&f, graph_add(g, OP_LOG_SOFTMAX, &x, 1, &s, LOC, &f.d),
            (double[]){-2 - lz, -1 - lz, -lz, -log(3), -log(3), -log(3)}, 6, 1e-13);
  /* along axis 0 */
  s.softmax.axis = 0;
  double p = 1 / (1 + exp(999.0)), q = 1 / (1 + exp(998.0)), r = 1 / (1 + exp(997.0));
  fx_expect(&f, graph_add(g, OP_SOFTMAX, &x, 1, &s, LOC, &f.d),
            (double[]){p, q, r, 1 - p, 1 - q, 1 - r}, 6, 1e-15);
  fx_fini(&f);
}
END_TEST

START_TEST(test_structure_ops) {
  Fixture f;
  fx_init(&f);
  int64_t d23[2] = {2, 3}, d2[1] = {2};
  NodeId x = fx_input(&f, DT_F64, 2, d23, (double[]){1, 2, 3, 4, 5, 6});
  NodeId col = fx_input(&f, DT_F64, 1, d2, (double[]){7, 8});
  Graph *g = f.m->model;
  int64_t d32[2] = {3, 2};
  NodeAttr rs = {.reshape = {.shape = shape_make(2, d32)}};
  fx_expect(&f, graph_add(g, OP_RESHAPE, &x, 1, &rs, LOC, &f.d), (double[]){1, 2, 3, 4, 5, 6}, 6,
            0);
  NodeAttr tp = {.transpose = {.perm = {1, 0}}};
  fx_expect(&f, graph_add(g, OP_TRANSPOSE, &x, 1, &tp, LOC, &f.d), (double[]){1, 4, 2, 5, 3, 6},
            6, 0);
  int64_t d221[3] = {2, 2, 1};
  NodeAttr bc = {.reshape = {.shape = shape_make(3, d221)}};
  /* [2] -> [2, 2, 1] is not a valid broadcast (trailing 1 vs 2) */
  ck_assert_uint_eq(graph_add(g, OP_BROADCAST, &col, 1, &bc, LOC, &f.d), IR_NONE);
  int64_t d32b[2] = {3, 2};
  bc.reshape.shape = shape_make(2, d32b);
  fx_expect(&f, graph_add(g, OP_BROADCAST, &col, 1, &bc, LOC, &f.d),
            (double[]){7, 8, 7, 8, 7, 8}, 6, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_transpose_3d) {
  Fixture f;
  fx_init(&f);
  int64_t d[3] = {2, 3, 2};
  double v[12];
  for (int i = 0; i < 12; i++) v[i] = i;
  NodeId x = fx_input(&f, DT_F64, 3, d, v);
  NodeAttr tp = {.transpose = {.perm = {2, 0, 1}}}; /* out[k][i][j] = x[i][j][k] */
  fx_expect(&f, graph_add(f.m->model, OP_TRANSPOSE, &x, 1, &tp, LOC, &f.d),
            (double[]){0, 2, 4, 6, 8, 10, 1, 3, 5, 7, 9, 11}, 12, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_one_hot_and_const) {
  Fixture f;
  fx_init(&f);
  int64_t d3[1] = {3};
  NodeId y = fx_input(&f, DT_I32, 1, d3, (double[]){2, -1, 3});
  Graph *g = f.m->model;
  NodeAttr oh = {.one_hot = {.depth = 3, .dtype = DT_F32}};
  fx_expect(&f, graph_add(g, OP_ONE_HOT, &y, 1, &oh, LOC, &f.d),
            (double[]){0, 0, 1, 0, 0, 0, 0, 0, 0}, 9, 0);
  static const double data[4] = {1.5, -2, 0.25, 8};
  int64_t d22[2] = {2, 2};
  NodeAttr c = {.constant = {.data = data, .dtype = DT_F64, .shape = shape_make(2, d22)}};
  fx_expect(&f, graph_add(g, OP_CONST, NULL, 0, &c, LOC, &f.d), data, 4, 0);
  c.constant.data = NULL;
  c.constant.value = 0.1;
  c.constant.dtype = DT_F32;
  fx_expect(&f, graph_add(g, OP_CONST, NULL, 0, &c, LOC, &f.d),
            (double[]){(float)0.1, (float)0.1, (float)0.1, (float)0.1}, 4, 0);
  fx_fini(&f);
}
END_TEST

START_TEST(test_eval_errors_and_values) {
  Fixture f;
  fx_init(&f);
  int64_t d2[1] = {2};
  NodeId x = fx_input(&f, DT_F64, 1, d2, (double[]){1, 2});
  Graph *g = f.m->model;
  Shape s = shape_make(1, d2);
  InitSpec zero = {INIT_ZEROS, 0, 0};
  module_add_param(f.m, "w", DT_F64, &s, zero, LOC);
  NodeId w = graph_add_source(g, OP_PARAM, 0, LOC);
  NodeId r = graph_add_binary(g, OP_MUL, x, w, LOC, &f.d);
  graph_add_output(g, "r", r, OUT_VALUE, -1);
  Tensor out;
  ck_assert(!ir_eval(g, f.in, NULL, NULL, &out, NULL, &f.d)); /* param missing */
  ck_assert_ptr_nonnull(strstr(diag_text(&f.d), "'w'"));
  Tensor p;
  int64_t d3[1] = {3};
  Shape s3 = shape_make(1, d3);
  tensor_alloc(&p, DT_F64, &s3);
  ck_assert(!ir_eval(g, f.in, &p, NULL, &out, NULL, &f.d)); /* wrong shape */
  ck_assert_ptr_nonnull(strstr(diag_text(&f.d), "f64[2]"));
  tensor_free(&p);
  tensor_alloc(&p, DT_F64, &s);
  tensor_set(&p, 0, 3);
  tensor_set(&p, 1, 4);
  Tensor *values;
  ck_assert(ir_eval(g, f.in, &p, NULL, &out, &values, &f.d));
  ck_assert(tensor_get(&out, 1) == 8);
  ck_assert(tensor_get(&values[w], 0) == 3);
  ck_assert(tensor_get(&values[r], 0) == 3);
  ir_eval_values_free(g, values);
  tensor_free(&out);
  tensor_free(&p);
  fx_fini(&f);
}
END_TEST

static Suite *ir_eval_suite(void) {
  Suite *s = suite_create("ir_eval");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_binary_broadcast);
  tcase_add_test(tc, test_unary);
  tcase_add_test(tc, test_cast_and_rounding);
  tcase_add_test(tc, test_matmul);
  tcase_add_test(tc, test_matmul_batched);
  tcase_add_test(tc, test_reduce);
  tcase_add_test(tc, test_softmax);
  tcase_add_test(tc, test_structure_ops);
  tcase_add_test(tc, test_transpose_3d);
  tcase_add_test(tc, test_one_hot_and_const);
  tcase_add_test(tc, test_eval_errors_and_values);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(ir_eval_suite()); }
