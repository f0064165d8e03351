/* tests/unit/test_codegen_ops.c — every lowering, compiled by gcc and clang, against ir_eval.
 *
 * Each test builds a small module with the builder API, runs dce + memplan, emits C, builds it
 * as a shared object with both compilers at -Werror, calls the entries through the descriptor
 * and compares with the reference evaluator (rtol 1e-5 for f32, 1e-12 for f64).
 */
#include <stdarg.h>

#include "codegen_harness.h"

static const SrcLoc LOC = {"ops.lathe", 3, 5};

static Shape shp(int rank, ...) {
  int64_t dims[IR_MAX_RANK] = {0};
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++)
    dims[i] = va_arg(ap, int);
  va_end(ap);
  return shape_make(rank, dims);
}

/* a module whose inputs are (name, dtype, shape) and one "forward" entry graph */
typedef struct Fixture {
  Module *m;
  Graph *g;
  Diag d;
  Tensor inputs[8];
  Tensor params[8];
  Tensor states[8];
} Fixture;

static void fx_init(Fixture *fx, const char *name, const char *entry) {
  memset(fx, 0, sizeof *fx);
  fx->m = module_new(name);
  fx->m->source_file = "ops.lathe";
  fx->g = graph_new(fx->m, entry);
  module_add_entry(fx->m, fx->g);
  diag_init(&fx->d);
}

static NodeId fx_input(Fixture *fx, const char *name, DType t, Shape s, double lo, double hi) {
  int32_t i = module_add_input(fx->m, name, t, &s, LOC);
  ck_assert(tensor_alloc(&fx->inputs[i], t, &s));
  cgh_fill(&fx->inputs[i], (uint64_t)i + 11, lo, hi);
  return graph_add_source(fx->g, OP_INPUT, i, LOC);
}

static NodeId fx_param(Fixture *fx, const char *name, DType t, Shape s) {
  InitSpec init = {INIT_UNIFORM, -1, 1};
  int32_t i = module_add_param(fx->m, name, t, &s, init, LOC);
  ck_assert(tensor_alloc(&fx->params[i], t, &s));
  cgh_fill(&fx->params[i], (uint64_t)i + 101, -1, 1);
  return graph_add_source(fx->g, OP_PARAM, i, LOC);
}

static NodeId fx_state(Fixture *fx, const char *name, DType t, Shape s) {
  InitSpec init = {INIT_ZEROS, 0, 0};
  int32_t i = module_add_state(fx->m, name, t, &s, init, LOC);
  ck_assert(tensor_alloc(&fx->states[i], t, &s));
  cgh_fill(&fx->states[i], (uint64_t)i + 201, -1, 1);
  return graph_add_source(fx->g, OP_STATE, i, LOC);
}

static NodeId fx_add(Fixture *fx, OpKind op, NodeId a, NodeId b, const NodeAttr *attr) {
  NodeId in[2] = {a, b};
  NodeId id = graph_add(fx->g, op, in, b == IR_NONE ? 1 : 2, attr, LOC, &fx->d);
  ck_assert_msg(id != IR_NONE, "graph_add %s: %s", ir_ops[op].name, diag_text(&fx->d));
  return id;
}

static void fx_out(Fixture *fx, const char *name, NodeId id) {
  graph_add_output(fx->g, name, id, OUT_VALUE, -1);
}

static void fx_check(Fixture *fx, double rtol) {
  cgh_check_module(fx->m, fx->inputs, fx->params, fx->states, rtol);
  for (int i = 0; i < 8; i++) {
    tensor_free(&fx->inputs[i]);
    tensor_free(&fx->params[i]);
    tensor_free(&fx->states[i]);
  }
  module_free(fx->m);
  diag_fini(&fx->d);
}

static const OpKind binary_ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MAXIMUM, OP_MINIMUM, OP_POW,
                                    OP_LT,  OP_LE,  OP_GT,  OP_GE,  OP_EQ,      OP_NE};

static void binary_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, "bin", "forward");
  NodeId x = fx_input(&fx, "x", t, shp(3, 4, 1, 3), 0.5, 2);
  NodeId y = fx_input(&fx, "y", t, shp(2, 5, 3), 0.5, 2);
  NodeId z = fx_input(&fx, "z", t, shp(3, 4, 5, 3), 0.5, 2);
  for (size_t i = 0; i < sizeof binary_ops / sizeof binary_ops[0]; i++) {
    char name[32];
    snprintf(name, sizeof name, "bcast_%s", ir_ops[binary_ops[i]].name);
    fx_out(&fx, name, fx_add(&fx, binary_ops[i], x, y, NULL)); /* [4,1,3] . [5,3] */
    snprintf(name, sizeof name, "same_%s", ir_ops[binary_ops[i]].name);
    fx_out(&fx, name, fx_add(&fx, binary_ops[i], z, z, NULL)); /* fast path, equal shapes */
  }
  NodeId two = graph_add_scalar(fx.g, t, 2.0, LOC);
  fx_out(&fx, "scaled", fx_add(&fx, OP_MUL, z, two, NULL));  /* literal operand */
  fx_out(&fx, "rscaled", fx_add(&fx, OP_SUB, two, y, NULL)); /* literal on the left */
  fx_out(&fx, "eq_mixed", fx_add(&fx, OP_EQ, x, x, NULL));
  fx_check(&fx, rtol);
}

START_TEST(test_binary_f32) {
  binary_case(DT_F32, 1e-5);
}
END_TEST

START_TEST(test_binary_f64) {
  binary_case(DT_F64, 1e-12);
}
END_TEST

static const OpKind unary_ops[] = {OP_NEG,  OP_EXP,  OP_LOG,     OP_SQRT, OP_ABS,
                                   OP_SIGN, OP_RELU, OP_SIGMOID, OP_TANH, OP_STOP_GRAD};

static void unary_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, "un", "forward");
  NodeId x = fx_input(&fx, "x", t, shp(2, 3, 7), -3, 3);
  NodeId pos = fx_input(&fx, "pos", t, shp(2, 3, 7), 0.1, 4);
  for (size_t i = 0; i < sizeof unary_ops / sizeof unary_ops[0]; i++) {
    OpKind op = unary_ops[i];
    bool needs_positive = op == OP_LOG || op == OP_SQRT;
    fx_out(&fx, ir_ops[op].name, fx_add(&fx, op, needs_positive ? pos : x, IR_NONE, NULL));
  }
  NodeAttr cast = {.cast = {t == DT_F32 ? DT_F64 : DT_F32}};
  fx_out(&fx, "cast_float", fx_add(&fx, OP_CAST, x, IR_NONE, &cast));
  NodeAttr to_int = {.cast = {DT_I32}};
  fx_out(&fx, "cast_int", fx_add(&fx, OP_CAST, x, IR_NONE, &to_int));
  NodeAttr to_u8 = {.cast = {DT_U8}}; /* saturates below 0 like the evaluator */
  NodeId big = fx_add(&fx, OP_EXP, fx_add(&fx, OP_MUL, x, x, NULL), IR_NONE, NULL);
  fx_out(&fx, "cast_u8", fx_add(&fx, OP_CAST, x, IR_NONE, &to_u8));
  fx_out(&fx, "cast_u8_big", fx_add(&fx, OP_CAST, big, IR_NONE, &to_u8)); /* up to e^9 */
  NodeAttr to_i64 = {.cast = {DT_I64}};
  fx_out(&fx, "cast_i64", fx_add(&fx, OP_CAST, big, IR_NONE, &to_i64));
  fx_check(&fx, rtol);
}

START_TEST(test_unary_f32) {
  unary_case(DT_F32, 1e-5);
}
END_TEST

START_TEST(test_unary_f64) {
  unary_case(DT_F64, 1e-12);
}
END_TEST

static NodeId matmul(Fixture *fx, NodeId a, NodeId b, bool ta, bool tb) {
  NodeAttr attr = {.matmul = {ta, tb}};
  return fx_add(fx, OP_MATMUL, a, b, &attr);
}

static void matmul_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, "mm", "forward");
  NodeId a = fx_input(&fx, "a", t, shp(2, 5, 7), -1, 1);
  NodeId at = fx_input(&fx, "at", t, shp(2, 7, 5), -1, 1);
  NodeId b = fx_input(&fx, "b", t, shp(2, 7, 3), -1, 1);
  NodeId bt = fx_input(&fx, "bt", t, shp(2, 3, 7), -1, 1);
  NodeId ba = fx_input(&fx, "ba", t, shp(3, 2, 5, 7), -1, 1);
  NodeId bb = fx_input(&fx, "bb", t, shp(4, 2, 3, 7, 4), -1, 1);
  NodeId bc = fx_input(&fx, "bc", t, shp(4, 2, 1, 5, 7), -1, 1);
  fx_out(&fx, "nn", matmul(&fx, a, b, false, false));
  fx_out(&fx, "tn", matmul(&fx, at, b, true, false));
  fx_out(&fx, "nt", matmul(&fx, a, bt, false, true));
  fx_out(&fx, "tt", matmul(&fx, at, bt, true, true));
  fx_out(&fx, "batched", matmul(&fx, ba, b, false, false));    /* [2,5,7] @ [7,3] */
  fx_out(&fx, "broadcast", matmul(&fx, bc, bb, false, false)); /* [2,1,5,7] @ [2,3,7,4] */
  fx_check(&fx, rtol);
}

START_TEST(test_matmul_f32) {
  matmul_case(DT_F32, 1e-5);
}
END_TEST

START_TEST(test_matmul_f64) {
  matmul_case(DT_F64, 1e-12);
}
END_TEST

static NodeId softmax(Fixture *fx, OpKind op, NodeId x, int axis) {
  NodeAttr attr = {.softmax = {axis}};
  return fx_add(fx, op, x, IR_NONE, &attr);
}

static void softmax_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, "sm", "forward");
  NodeId x = fx_input(&fx, "x", t, shp(2, 4, 6), -20, 20);
  NodeId y = fx_input(&fx, "y", t, shp(3, 2, 3, 4), -5, 5);
  fx_out(&fx, "softmax_last", softmax(&fx, OP_SOFTMAX, x, 1));
  fx_out(&fx, "softmax_first", softmax(&fx, OP_SOFTMAX, x, 0));
  fx_out(&fx, "softmax_mid", softmax(&fx, OP_SOFTMAX, y, 1));
  fx_out(&fx, "log_softmax_last", softmax(&fx, OP_LOG_SOFTMAX, x, 1));
  fx_out(&fx, "log_softmax_mid", softmax(&fx, OP_LOG_SOFTMAX, y, 1));
  fx_check(&fx, rtol);
}

START_TEST(test_softmax_f32) {
  softmax_case(DT_F32, 1e-5);
}
END_TEST

START_TEST(test_softmax_f64) {
  softmax_case(DT_F64, 1e-12);
}
END_TEST

static NodeId reduce(Fixture *fx, OpKind op, NodeId x, uint32_t axes, bool keep) {
  NodeAttr attr = {.reduce = {axes, keep}};
  return fx_add(fx, op, x, IR_NONE, &attr);
}

static void reduce_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, "red", "forward");
  NodeId x = fx_input(&fx, "x", t, shp(3, 3, 4, 5), -2, 2);
  fx_out(&fx, "sum_1_keep", reduce(&fx, OP_SUM, x, 1u << 1, true));
  fx_out(&fx, "sum_1", reduce(&fx, OP_SUM, x, 1u << 1, false));
  fx_out(&fx, "mean_02", reduce(&fx, OP_MEAN, x, 1u | 4u, false));
  fx_out(&fx, "mean_02_keep", reduce(&fx, OP_MEAN, x, 1u | 4u, true));
  fx_out(&fx, "max_all", reduce(&fx, OP_MAX, x, 7u, false));
  fx_out(&fx, "max_2_keep", reduce(&fx, OP_MAX, x, 4u, true));
  fx_out(&fx, "sum_all", reduce(&fx, OP_SUM, x, 7u, false));
  fx_out(&fx, "sum_none", reduce(&fx, OP_SUM, x, 0u, false));
  /* trailing reduced rows of >= 64 elements take the lane-by-lane partial sums (lower.c
   * reduce_rows): 7 * 11 = 77 per row (a remainder past the 16-lane blocks), a bias gradient's
   * axes (0, 2, 3), a mean over the last two, everything */
  NodeId r = fx_input(&fx, "r", t, shp(4, 2, 3, 7, 11), -2, 2);
  fx_out(&fx, "rows_023_keep", reduce(&fx, OP_SUM, r, 1u | 4u | 8u, true));
  fx_out(&fx, "rows_mean_23", reduce(&fx, OP_MEAN, r, 4u | 8u, false));
  fx_out(&fx, "rows_all", reduce(&fx, OP_SUM, r, 15u, false));
  fx_check(&fx, rtol);
}

START_TEST(test_reduce_f32) {
  reduce_case(DT_F32, 1e-5);
}
END_TEST

START_TEST(test_reduce_f64) {
  reduce_case(DT_F64, 1e-12);
}
END_TEST

/* --threads 2: a sum over a large tensor shares its outermost loop out, with per-thread partial
 * sums when that dim is reduced (a bias gradient's axes 0, 2, 3) and straight into the output
 * when it is kept; a sum over everything stays serial. Built with -fopenmp, against ir_eval. */
START_TEST(test_reduce_threads) {
  Fixture fx;
  fx_init(&fx, "redt", "forward");
  NodeId x = fx_input(&fx, "x", DT_F32, shp(4, 9, 16, 20, 23), -2, 2);
  fx_out(&fx, "bias_grad", reduce(&fx, OP_SUM, x, 1u | 4u | 8u, true));
  fx_out(&fx, "per_image", reduce(&fx, OP_SUM, x, 4u | 8u, false));
  fx_out(&fx, "all", reduce(&fx, OP_SUM, x, 15u, false));
  cgh_plan(fx.m);
  CgOptions o;
  cg_options_init(&o);
  o.threads = 2;
  char *c_text, *h_text;
  ck_assert_msg(cg_emit_c(fx.m, &o, &c_text, &h_text, &fx.d), "%s", diag_text(&fx.d));
  ck_assert_msg(strstr(c_text, "float tpart[2][16]") != NULL, "per-thread partial sums");
  const char *first = strstr(c_text, "LATHE_OMP_FOR\n");
  ck_assert(first && strstr(first + 1, "LATHE_OMP_FOR\n") != NULL); /* two parallel loops */
  ck_assert_msg(dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL) != NULL, "%s", dlerror());
  CghBuild b;
  cgh_setup(&b, "redt", c_text, h_text);
  cgh_build_with(&b, "gcc", "-O1 -fopenmp -shared -fPIC -lm");
  cgh_check_entry(&b, fx.m, 0, fx.inputs, fx.params, fx.states, 1e-5);
  cgh_unload(&b);
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  fx_check(&fx, 1e-5); /* and the serial C, with both compilers */
}
END_TEST

START_TEST(test_structure) {
  Fixture fx;
  fx_init(&fx, "st", "forward");
  NodeId x = fx_input(&fx, "x", DT_F32, shp(3, 2, 3, 4), -2, 2);
  NodeId labels = fx_input(&fx, "label", DT_I32, shp(1, 6), 0, 4);
  NodeAttr rs = {.reshape = {shp(2, 6, 4)}};
  NodeId r = fx_add(&fx, OP_RESHAPE, x, IR_NONE, &rs);
  fx_out(&fx, "reshaped_relu", fx_add(&fx, OP_RELU, r, IR_NONE, NULL)); /* reads the alias */
  fx_out(&fx, "reshaped", r);                                           /* copied out */
  NodeAttr tp = {.transpose = {{2, 0, 1}}};
  fx_out(&fx, "transposed", fx_add(&fx, OP_TRANSPOSE, x, IR_NONE, &tp));
  NodeAttr tp2 = {.transpose = {{1, 0}}};
  NodeId r2 = fx_add(&fx, OP_RESHAPE, fx_add(&fx, OP_EXP, x, IR_NONE, NULL), IR_NONE, &rs);
  fx_out(&fx, "transposed_view", fx_add(&fx, OP_TRANSPOSE, r2, IR_NONE, &tp2));
  NodeId v = fx_input(&fx, "v", DT_F32, shp(2, 1, 4), -2, 2);
  NodeAttr bc = {.reshape = {shp(3, 3, 5, 4)}};
  fx_out(&fx, "broadcast", fx_add(&fx, OP_BROADCAST, v, IR_NONE, &bc));
  NodeAttr oh = {.one_hot = {4, DT_F32}};
  fx_out(&fx, "one_hot", fx_add(&fx, OP_ONE_HOT, labels, IR_NONE, &oh));
  NodeAttr k = {.constant = {0, NULL, DT_F32, shp(2, 3, 4)}};
  double *data = arena_alloc(&fx.g->arena, 12 * sizeof *data);
  for (int i = 0; i < 12; i++)
    data[i] = 0.25 * i - 1;
  k.constant.data = data;
  NodeId table = graph_add(fx.g, OP_CONST, NULL, 0, &k, LOC, &fx.d);
  ck_assert(table != IR_NONE);
  fx_out(&fx, "plus_table", fx_add(&fx, OP_ADD, x, table, NULL));
  NodeAttr splat = {.constant = {1.5, NULL, DT_F32, shp(2, 3, 4)}};
  NodeId fill = graph_add(fx.g, OP_CONST, NULL, 0, &splat, LOC, &fx.d);
  fx_out(&fx, "splat", fill);
  fx_out(&fx, "times_splat", fx_add(&fx, OP_MUL, x, fill, NULL));
  fx_out(&fx, "splat_again", fill); /* the same node twice */
  NodeId dup = fx_add(&fx, OP_NEG, x, IR_NONE, NULL);
  fx_out(&fx, "dup1", dup);
  fx_out(&fx, "dup2", dup);
  fx_check(&fx, 1e-5);
}
END_TEST

/* x -> dense -> relu -> dense -> softmax, plus dead code DCE must drop */
START_TEST(test_mlp_chain) {
  Fixture fx;
  fx_init(&fx, "mlp", "forward");
  NodeId x = fx_input(&fx, "x", DT_F32, shp(2, 8, 20), -1, 1);
  NodeId w1 = fx_param(&fx, "h1.w", DT_F32, shp(2, 20, 16));
  NodeId b1 = fx_param(&fx, "h1.b", DT_F32, shp(1, 16));
  NodeId w2 = fx_param(&fx, "out.w", DT_F32, shp(2, 16, 10));
  NodeId b2 = fx_param(&fx, "out.b", DT_F32, shp(1, 10));
  NodeId h = fx_add(&fx, OP_RELU, fx_add(&fx, OP_ADD, matmul(&fx, x, w1, false, false), b1, NULL),
                    IR_NONE, NULL);
  fx_add(&fx, OP_EXP, h, IR_NONE, NULL); /* dead */
  NodeId logits = fx_add(&fx, OP_ADD, matmul(&fx, h, w2, false, false), b2, NULL);
  fx_out(&fx, "probs", softmax(&fx, OP_SOFTMAX, logits, 1));
  fx_out(&fx, "logp", softmax(&fx, OP_LOG_SOFTMAX, logits, 1));
  fx_check(&fx, 1e-5);
}
END_TEST

/* A train entry: loss returned, params and state updated in place (after every kernel read
 * them), step incremented; and a grad entry with one output array per gradient. */
START_TEST(test_train_and_grad_entries) {
  Fixture fx;
  fx_init(&fx, "tr", "train");
  NodeId x = fx_input(&fx, "x", DT_F32, shp(2, 4, 3), -1, 1);
  NodeId w = fx_param(&fx, "w", DT_F32, shp(2, 3, 2));
  NodeId v = fx_param(&fx, "v", DT_F32, shp(1, 2));
  NodeId m = fx_state(&fx, "m.w", DT_F32, shp(2, 3, 2));
  NodeId y = fx_add(&fx, OP_ADD, matmul(&fx, x, w, false, false), v, NULL);
  NodeId loss = reduce(&fx, OP_SUM, fx_add(&fx, OP_MUL, y, y, NULL), 3u, false);
  NodeId lr = graph_add_scalar(fx.g, DT_F32, 0.1, LOC);
  NodeId m_new = fx_add(&fx, OP_ADD, fx_add(&fx, OP_MUL, m, lr, NULL), w, NULL);
  NodeId w_new = fx_add(&fx, OP_SUB, w, fx_add(&fx, OP_MUL, m_new, lr, NULL), NULL);
  NodeId v_new = fx_add(&fx, OP_SUB, v, fx_add(&fx, OP_MUL, v, lr, NULL), NULL);
  graph_add_output(fx.g, "loss", loss, OUT_LOSS, -1);
  graph_add_output(fx.g, "w", w_new, OUT_PARAM_UPDATE, 0);
  graph_add_output(fx.g, "v", v_new, OUT_PARAM_UPDATE, 1);
  graph_add_output(fx.g, "m.w", m_new, OUT_STATE_UPDATE, 0);
  Graph *g2 = graph_new(fx.m, "grad");
  module_add_entry(fx.m, g2);
  NodeId x2 = graph_add_source(g2, OP_INPUT, 0, LOC), w2 = graph_add_source(g2, OP_PARAM, 0, LOC);
  NodeId in[2] = {x2, w2};
  NodeAttr mm = {.matmul = {false, false}};
  NodeId y2 = graph_add(g2, OP_MATMUL, in, 2, &mm, LOC, &fx.d);
  NodeAttr all = {.reduce = {3u, false}};
  NodeId l2 = graph_add(g2, OP_SUM, &y2, 1, &all, LOC, &fx.d);
  NodeAttr tr = {.matmul = {true, false}};
  NodeId sq = graph_add(g2, OP_MUL, (NodeId[]){y2, y2}, 2, NULL, LOC, &fx.d);
  NodeId gw = graph_add(g2, OP_MATMUL, (NodeId[]){x2, sq}, 2, &tr, LOC, &fx.d);
  ck_assert(l2 != IR_NONE && gw != IR_NONE);
  graph_add_output(g2, "loss", l2, OUT_LOSS, -1);
  graph_add_output(g2, "grad.w", gw, OUT_GRAD, 0);
  fx_check(&fx, 1e-5);
}
END_TEST

/* A forward entry that reads state (running statistics) gets a const state argument; a named
 * train step gets its own symbol and workspace constant; f64 throughout. */
START_TEST(test_state_reader_and_named_step) {
  Fixture fx;
  fx_init(&fx, "bn", "forward");
  NodeId x = fx_input(&fx, "x", DT_F64, shp(2, 5, 4), -1, 1);
  NodeId mean = fx_state(&fx, "bn.mean", DT_F64, shp(1, 4));
  NodeId scale = fx_param(&fx, "bn.scale", DT_F64, shp(1, 4));
  NodeId y = fx_add(&fx, OP_MUL, fx_add(&fx, OP_SUB, x, mean, NULL), scale, NULL);
  fx_out(&fx, "y", y);
  Graph *fwd = fx.g;
  fx.g = graph_new(fx.m, "train_disc");
  module_add_entry(fx.m, fx.g);
  x = graph_add_source(fx.g, OP_INPUT, 0, LOC);
  mean = graph_add_source(fx.g, OP_STATE, 0, LOC);
  scale = graph_add_source(fx.g, OP_PARAM, 0, LOC);
  NodeAttr cols = {.reduce = {1u, false}};
  NodeId batch_mean = fx_add(&fx, OP_MEAN, x, IR_NONE, &cols);
  NodeId centered = fx_add(&fx, OP_SUB, x, batch_mean, NULL);
  NodeId loss = reduce(&fx, OP_MEAN, fx_add(&fx, OP_MUL, centered, scale, NULL), 3u, false);
  NodeId half = graph_add_scalar(fx.g, DT_F64, 0.5, LOC);
  NodeId new_mean = fx_add(&fx, OP_ADD, fx_add(&fx, OP_MUL, mean, half, NULL),
                           fx_add(&fx, OP_MUL, batch_mean, half, NULL), NULL);
  graph_add_output(fx.g, "loss", loss, OUT_LOSS, -1);
  graph_add_output(fx.g, "bn.mean", new_mean, OUT_STATE_UPDATE, 0);
  fx.g = fwd;
  cgh_plan(fx.m);
  char *c_text, *h_text;
  cgh_emit(fx.m, false, &c_text, &h_text);
  ck_assert(strstr(h_text, "void bn_forward(const bn_params *p, const bn_state *s,") != NULL);
  ck_assert(strstr(h_text, "double bn_train_disc(const bn_params *p, bn_state *s,") != NULL);
  ck_assert(strstr(h_text, "enum { BN_TRAIN_DISC_WORKSPACE_BYTES = ") != NULL);
  free(c_text);
  free(h_text);
  fx_check(&fx, 1e-12);
}
END_TEST

static Suite *codegen_ops_suite(void) {
  Suite *s = suite_create("codegen_ops");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_binary_f32);
  tcase_add_test(tc, test_binary_f64);
  tcase_add_test(tc, test_unary_f32);
  tcase_add_test(tc, test_unary_f64);
  tcase_add_test(tc, test_matmul_f32);
  tcase_add_test(tc, test_matmul_f64);
  tcase_add_test(tc, test_softmax_f32);
  tcase_add_test(tc, test_softmax_f64);
  tcase_add_test(tc, test_reduce_f32);
  tcase_add_test(tc, test_reduce_f64);
  tcase_add_test(tc, test_reduce_threads);
  tcase_add_test(tc, test_structure);
  tcase_add_test(tc, test_mlp_chain);
  tcase_add_test(tc, test_train_and_grad_entries);
  tcase_add_test(tc, test_state_reader_and_named_step);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(codegen_ops_suite());
}
