/* tests/unit/test_codegen_gemm.c — the packed GEMM (codegen/gemm.c) against ir_eval.
 *
 * Every case is a 2-D f32 matmul (plain, transposed operands, with fused epilogues) whose
 * shape exercises the edges: sizes below, at and just above the micro-tile and the K block.
 * Each module runs dce, fuse and memplan, is emitted for every target this machine can run
 * (generic C99, the vector targets, and the target-independent vector fallback of aarch64's
 * tile), built with gcc and clang at -std=c99 -Wall -Wextra -Werror (gcc under ASan when the
 * test itself is, so a scratch overrun is caught) and compared with the reference evaluator.
 *
 * Two ctest entries run this file: test_codegen_gemm, the quick sweep (label fast: every
 * case, emitted for the native target and built once with gcc), and
 * test_codegen_gemm_exhaustive (`--exhaustive`, label slow: every target this machine runs,
 * both compilers, the scalar twins). Assertions are the same in both.
 */
#include <stdarg.h>

#include "codegen/gemm.h"
#include "codegen_harness.h"
#include "ir/scan.h"

static const SrcLoc LOC = {"gemm.lathe", 1, 1};

/* --exhaustive: every target and compiler; otherwise the quick sweep (see the head comment) */
static bool exhaustive;

typedef struct Case {
  Module *m;
  Graph *g;
  Diag d;
  Tensor inputs[6];
  Tensor params[6];
  Tensor states[1];
} Case;

static void case_init(Case *c) {
  memset(c, 0, sizeof *c);
  c->m = module_new("gm");
  c->m->source_file = "gemm.lathe";
  c->g = graph_new(c->m, "forward");
  module_add_entry(c->m, c->g);
  diag_init(&c->d);
}

static NodeId input(Case *c, const char *name, int64_t r, int64_t k) {
  int64_t dims[2] = {r, k};
  Shape s = shape_make(2, dims);
  int32_t i = module_add_input(c->m, name, DT_F32, &s, LOC);
  ck_assert(tensor_alloc(&c->inputs[i], DT_F32, &s));
  cgh_fill(&c->inputs[i], (uint64_t)i + 7, -1, 1);
  return graph_add_source(c->g, OP_INPUT, i, LOC);
}

static NodeId param(Case *c, const char *name, int rank, int64_t r, int64_t k) {
  int64_t dims[2] = {rank == 1 ? k : r, k};
  Shape s = shape_make(rank, dims);
  InitSpec init = {INIT_UNIFORM, -1, 1};
  int32_t i = module_add_param(c->m, name, DT_F32, &s, init, LOC);
  ck_assert(tensor_alloc(&c->params[i], DT_F32, &s));
  cgh_fill(&c->params[i], (uint64_t)i + 101, -1, 1);
  return graph_add_source(c->g, OP_PARAM, i, LOC);
}

static NodeId add(Case *c, OpKind op, NodeId a, NodeId b, const NodeAttr *attr) {
  NodeId in[2] = {a, b};
  NodeId id = graph_add(c->g, op, in, b == IR_NONE ? 1 : 2, attr, LOC, &c->d);
  ck_assert_msg(id != IR_NONE, "graph_add %s: %s", ir_ops[op].name, diag_text(&c->d));
  return id;
}

static NodeId matmul(Case *c, NodeId a, NodeId b, bool ta, bool tb) {
  NodeAttr attr = {.matmul = {ta, tb}};
  return add(c, OP_MATMUL, a, b, &attr);
}

/* dce, fuse, memplan */
static void plan(Module *m) {
  Diag d;
  diag_init(&d);
  PassCtx pc;
  pass_ctx_init(&pc, &d);
  Graph *g = m->entries[0];
  ck_assert_msg(pass_dce(g, &pc) && pass_fuse(g, &pc) && ir_verify(g, &d), "%s", diag_text(&d));
  ck_assert_msg(pass_memplan(g, &pc), "memplan: %s", diag_text(&d));
  pass_ctx_fini(&pc);
  diag_fini(&d);
}

static bool target_runs(CgTarget t) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (t == CG_TARGET_X86_64_V4) return __builtin_cpu_supports("avx512f");
  if (t == CG_TARGET_X86_64_V3)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true; /* aarch64's tile compiles to generic vectors here */
#else
  return t == CG_TARGET_GENERIC || t == CG_TARGET_NATIVE;
#endif
}

/* scalar: built with -DLATHE_NO_VECTOR_EXTENSIONS (the scalar C99 twins of the kernels);
 * flags: the compiler flags, NULL for the default ones */
static void build_and_check(Case *c, CghBuild *b, const char *cc, double rtol, bool scalar,
                            const char *flags) {
  if (!flags) {
    flags = scalar ? "-O1 -DLATHE_NO_VECTOR_EXTENSIONS -shared -fPIC -lm" : "-O1 -shared -fPIC -lm";
#if defined(__SANITIZE_ADDRESS__)
    if (strcmp(cc, "gcc") == 0 && !scalar) flags = "-O1 -shared -fPIC -fsanitize=address -lm";
#endif
  }
  cgh_build_with(b, cc, flags);
  cgh_check_entry(b, c->m, 0, c->inputs, c->params, c->states, rtol);
  cgh_unload(b);
}

/* emit for every target, build with both compilers, compare; then free the case. M = 1
 * (a vector-matrix product) keeps the simple loop nest: packing B would cost more than it.
 * The tolerance is 1e-5, and 1e-4 for sums over hundreds of terms, which f32 rounds
 * differently in the blocked order than ir_eval does. With threads > 1, also the C of
 * --threads N on the native target, built with -fopenmp. */
static void check_threads(Case *c, bool want_gemm, double rtol, int threads) {
  plan(c->m);
  for (int t = 0; t < CG_TARGET_COUNT + (threads > 1); t++) {
    bool omp = t == CG_TARGET_COUNT;
    if (!omp && !target_runs((CgTarget)t)) continue;
    if (!omp && !exhaustive && t != CG_TARGET_NATIVE) continue;
    CgOptions o;
    cg_options_init(&o);
    o.target = omp ? CG_TARGET_NATIVE : (CgTarget)t;
    o.threads = omp ? threads : 1;
    char *c_text, *h_text;
    ck_assert_msg(cg_emit_c(c->m, &o, &c_text, &h_text, &c->d), "%s", diag_text(&c->d));
    bool gemm = strstr(c_text, "lathe_gemm_kernel(") || strstr(c_text, "lathe_gemm_direct_kernel(");
    ck_assert_msg(gemm == want_gemm, "GEMM path: %d", want_gemm);
    ck_assert(t != CG_TARGET_GENERIC || strstr(c_text, "__attribute__") == NULL);
    CghBuild b;
    cgh_setup(&b, "gm", c_text, h_text);
    if (omp) {
      ck_assert(strstr(c_text, "omp parallel for") != NULL);
      ck_assert_msg(dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL) != NULL, "%s", dlerror());
      build_and_check(c, &b, "gcc", rtol, false, "-O1 -fopenmp -shared -fPIC -lm");
    } else {
      for (int k = 0; k < (exhaustive ? CGH_N_COMPILERS : 1); k++)
        build_and_check(c, &b, cgh_compilers[k], rtol, false, NULL);
      if (exhaustive && want_gemm && t != CG_TARGET_GENERIC)
        build_and_check(c, &b, "clang", rtol, true, NULL);
    }
    cgh_cleanup(&b);
    free(c_text);
    free(h_text);
  }
  for (int i = 0; i < 6; i++) {
    tensor_free(&c->inputs[i]);
    tensor_free(&c->params[i]);
  }
  diag_fini(&c->d);
  module_free(c->m);
}

static void check(Case *c, bool want_gemm, double rtol) {
  check_threads(c, want_gemm, rtol, 1);
}

/* one output per transpose variant of op(A)[m x k] op(B)[k x n] */
static void variants_case(int64_t m, int64_t k, int64_t n) {
  Case c;
  case_init(&c);
  NodeId a = input(&c, "a", m, k), at = input(&c, "at", k, m);
  NodeId b = input(&c, "b", k, n), bt = input(&c, "bt", n, k);
  graph_add_output(c.g, "nn", matmul(&c, a, b, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "tn", matmul(&c, at, b, true, false), OUT_VALUE, -1);
  graph_add_output(c.g, "nt", matmul(&c, a, bt, false, true), OUT_VALUE, -1);
  graph_add_output(c.g, "tt", matmul(&c, at, bt, true, true), OUT_VALUE, -1);
  check(&c, m > 1, k > 256 ? 1e-4 : 1e-5);
}

START_TEST(test_tiny) {
  variants_case(1, 1, 1);
  variants_case(2, 1, 1);
}
END_TEST

START_TEST(test_odd) {
  variants_case(7, 13, 5);
}
END_TEST

START_TEST(test_above_tile) {
  variants_case(65, 129, 33);
}
END_TEST

START_TEST(test_k_blocks) {
  variants_case(9, 1100, 17);
} /* K in several blocks */
END_TEST

START_TEST(test_m_blocks) {
  variants_case(300, 3, 40);
} /* M in several blocks */
END_TEST

START_TEST(test_n_panels) {
  variants_case(3, 5, 1100);
} /* N in several packed panels */
END_TEST

/* lathe_gemm_direct's B blocks (256 columns x 150 rows, then 32 columns), a column edge of
 * 12 and a row edge of 3; the transposed B made row-major first */
START_TEST(test_direct_blocks) {
  variants_case(19, 300, 300);
}
END_TEST

/* relu(x @ w + bias) with the matmul in registers (K in several blocks: the scratch partial
 * sums), a second layer through a transposed weight, a residual, and a stored matmul. */
static void epilogue_case(int64_t m, int64_t k, int64_t n, double rtol, int threads) {
  Case c;
  case_init(&c);
  NodeId x = input(&c, "x", m, k), r = input(&c, "r", m, n);
  NodeId w = param(&c, "w", 2, k, n), bias = param(&c, "bias", 1, 1, n);
  NodeId w2 = param(&c, "w2", 2, n, n);
  NodeId h =
      add(&c, OP_RELU, add(&c, OP_ADD, matmul(&c, x, w, false, false), bias, NULL), IR_NONE, NULL);
  NodeId y = add(&c, OP_ADD, matmul(&c, h, w2, false, true), r, NULL);
  NodeId z = matmul(&c, x, w, false, false);
  graph_add_output(c.g, "y", add(&c, OP_TANH, y, IR_NONE, NULL), OUT_VALUE, -1);
  graph_add_output(c.g, "z", z, OUT_VALUE, -1);
  graph_add_output(c.g, "zs", add(&c, OP_MUL, z, r, NULL), OUT_VALUE, -1);
  check_threads(&c, true, rtol, threads);
}

START_TEST(test_epilogue_small) {
  epilogue_case(7, 13, 5, 1e-5, 1);
}
END_TEST

START_TEST(test_epilogue_k_blocks) {
  epilogue_case(33, 1100, 37, 1e-4, 1);
}
END_TEST

/* y chains two 1030-term sums that cancel to O(1): f32 rounding alone reaches ~1e-4 */
START_TEST(test_epilogue_n_panels) {
  epilogue_case(9, 1030, 1030, 1e-3, 1);
}
END_TEST

/* --threads 2: the tiles of the unpacked GEMM (x @ w: 7 row blocks x 6 slivers, 21 tiles each,
 * split inside a row block, and the column edge's row blocks 3 + 4) and the B slivers of the
 * packed one (h @ w2ᵀ) shared out by OpenMP, every call large enough to run in parallel */
START_TEST(test_threads) {
  epilogue_case(40, 300, 100, 1e-4, 2);
}
END_TEST

/* dW = Xᵀ dY and dX = dY Wᵀ, the shapes of a backward pass, with an SGD-like epilogue */
START_TEST(test_backward_shapes) {
  Case c;
  case_init(&c);
  NodeId x = input(&c, "x", 19, 70), dy = input(&c, "dy", 19, 45);
  NodeId w = param(&c, "w", 2, 70, 45);
  NodeId dw = matmul(&c, x, dy, true, false);
  graph_add_output(c.g, "w_new", add(&c, OP_SUB, w, dw, NULL), OUT_VALUE, -1);
  graph_add_output(c.g, "dx", matmul(&c, dy, w, false, true), OUT_VALUE, -1);
  check(&c, true, 1e-5);
}
END_TEST

static NodeId input_nd(Case *c, const char *name, int rank, const int64_t *dims) {
  Shape s = shape_make(rank, dims);
  int32_t i = module_add_input(c->m, name, DT_F32, &s, LOC);
  ck_assert(tensor_alloc(&c->inputs[i], DT_F32, &s));
  cgh_fill(&c->inputs[i], (uint64_t)i + 7, -1, 1);
  return graph_add_source(c->g, OP_INPUT, i, LOC);
}

/* A[3, 5, 7] @ B[7, 6] (and @ Bᵀ): one GEMM over the 15 rows of all batches */
START_TEST(test_rows_of_batch) {
  Case c;
  case_init(&c);
  int64_t ad[] = {3, 5, 7}, bd[] = {7, 6}, btd[] = {6, 7};
  NodeId a = input_nd(&c, "a", 3, ad), b = input_nd(&c, "b", 2, bd);
  NodeId bt = input_nd(&c, "bt", 2, btd);
  graph_add_output(c.g, "nn", matmul(&c, a, b, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "nt", matmul(&c, a, bt, false, true), OUT_VALUE, -1);
  check(&c, true, 1e-5);
}
END_TEST

/* A[2, 3, 5, 7] @ B[2, 3, 7, 6] in every transpose variant: one GEMM per batch */
START_TEST(test_per_batch) {
  Case c;
  case_init(&c);
  int64_t ad[] = {2, 3, 5, 7}, atd[] = {2, 3, 7, 5}, bd[] = {2, 3, 7, 6}, btd[] = {2, 3, 6, 7};
  NodeId a = input_nd(&c, "a", 4, ad), at = input_nd(&c, "at", 4, atd);
  NodeId b = input_nd(&c, "b", 4, bd), bt = input_nd(&c, "bt", 4, btd);
  graph_add_output(c.g, "nn", matmul(&c, a, b, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "tn", matmul(&c, at, b, true, false), OUT_VALUE, -1);
  graph_add_output(c.g, "nt", matmul(&c, a, bt, false, true), OUT_VALUE, -1);
  graph_add_output(c.g, "tt", matmul(&c, at, bt, true, true), OUT_VALUE, -1);
  check(&c, true, 1e-5);
}
END_TEST

/* A scan whose body GEMMs read captured weights on either side (h [150, 5] carry, x_t [5, 1100]
 * a slice along axis 0; W [150, 1100], V, V2 [150, 150], U [5, 1100], U2 [1100, 5]):
 *   h' = tanh(W @ x_t^T + V @ h + V2^T @ h),  y_t = h' @ U,  z_t = h' @ U2^T
 * The GEMMs with a transposed B run packed, M and K in several blocks for W, N in two panels
 * for U2: those captured weights are packed once before the loop (lathe_gemm_prepack_a/_b)
 * and read in place. The others run unpacked (lathe_gemm_direct) and read V, V2 and U where
 * they are: nothing to pack. */
static NodeId body_arg(Graph *b, int index, int64_t r, int64_t k) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan_arg.index = index;
  at.scan_arg.dtype = DT_F32;
  at.scan_arg.shape = shape_make(2, (int64_t[]){r, k});
  return graph_add(b, OP_SCAN_ARG, NULL, 0, &at, LOC, NULL);
}

static NodeId body_op(Graph *b, OpKind op, NodeId x, NodeId y, bool ta, bool tb) {
  NodeAttr at = {.matmul = {ta, tb}};
  NodeId in[2] = {x, y};
  NodeId id = graph_add(b, op, in, y == IR_NONE ? 1 : 2, op == OP_MATMUL ? &at : NULL, LOC, NULL);
  ck_assert(id != IR_NONE);
  return id;
}

START_TEST(test_scan_prepacked) {
  enum { T = 3, H = 150, X = 1100, B = 5 };
  Case c;
  case_init(&c);
  Shape xs = shape_make(3, (int64_t[]){T, B, X});
  int32_t xi = module_add_input(c.m, "xs", DT_F32, &xs, LOC);
  ck_assert(tensor_alloc(&c.inputs[xi], DT_F32, &xs));
  cgh_fill(&c.inputs[xi], 3, -1, 1);
  NodeId x = graph_add_source(c.g, OP_INPUT, xi, LOC);
  NodeId h0 = input(&c, "h0", H, B);
  NodeId w = param(&c, "w", 2, H, X), v = param(&c, "v", 2, H, H), v2 = param(&c, "v2", 2, H, H);
  NodeId u = param(&c, "u", 2, B, X), u2 = param(&c, "u2", 2, X, B);
  for (int i = 0; i < 5; i++) /* small weights: tanh stays off its flat ends */
    for (int64_t e = 0; e < shape_numel(&c.params[i].shape); e++)
      ((float *)c.params[i].data)[e] *= 0.05f;
  Graph *b = graph_new(c.m, "body");
  NodeId h = body_arg(b, 0, H, B), xt = body_arg(b, 1, B, X);
  NodeId bw = body_arg(b, 2, H, X), bv = body_arg(b, 3, H, H), bv2 = body_arg(b, 4, H, H);
  NodeId bu = body_arg(b, 5, B, X), bu2 = body_arg(b, 6, X, B);
  NodeId pre = body_op(b, OP_ADD, body_op(b, OP_MATMUL, bw, xt, false, true),
                       body_op(b, OP_MATMUL, bv, h, false, false), false, false);
  pre = body_op(b, OP_ADD, pre, body_op(b, OP_MATMUL, bv2, h, true, false), false, false);
  NodeId h2 = body_op(b, OP_TANH, pre, IR_NONE, false, false);
  graph_add_output(b, "h", h2, OUT_VALUE, -1);
  graph_add_output(b, "y", body_op(b, OP_MATMUL, h2, bu, false, false), OUT_VALUE, -1);
  graph_add_output(b, "z", body_op(b, OP_MATMUL, h2, bu2, false, true), OUT_VALUE, -1);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(c.g, b);
  at.scan.length = T;
  at.scan.n_carry = 1;
  at.scan.n_seq = 1;
  NodeId in[7] = {h0, x, w, v, v2, u, u2};
  NodeId scan = graph_add(c.g, OP_SCAN, in, 7, &at, LOC, &c.d);
  ck_assert_msg(scan != IR_NONE, "%s", diag_text(&c.d));
  const char *names[3] = {"hT", "ys", "zs"};
  for (int k = 0; k < 3; k++) {
    int64_t off;
    Shape piece = scan_piece(c.g, graph_node(c.g, scan), k, &off);
    NodeAttr ua;
    memset(&ua, 0, sizeof ua);
    ua.unpack.offset = off;
    ua.unpack.shape = piece;
    graph_add_output(c.g, names[k], add(&c, OP_UNPACK, scan, IR_NONE, &ua), OUT_VALUE, -1);
  }
  /* the C: two packs before the loop, none in it, the body's GEMMs reading them; three
   * unpacked GEMMs reading the weights in place */
  plan(c.m);
  CgOptions o;
  cg_options_init(&o);
  char *c_text, *h_text;
  ck_assert_msg(cg_emit_c(c.m, &o, &c_text, &h_text, &c.d), "%s", diag_text(&c.d));
  const char *loop = strstr(c_text, "for (int64_t step");
  ck_assert(loop != NULL);
  int before = 0, after = 0;
  for (const char *p = strstr(c_text, "  lathe_gemm_prepack_"); p;
       p = strstr(p + 1, "  lathe_gemm_prepack_"))
    *(p < loop ? &before : &after) += 1;
  ck_assert_int_eq(before, 2);
  ck_assert_int_eq(after, 0);
  int direct = 0;
  for (const char *p = strstr(loop, "  lathe_gemm_direct("); p;
       p = strstr(p + 1, "  lathe_gemm_direct("))
    direct++;
  ck_assert_int_eq(direct, 3);
  ck_assert_ptr_nonnull(strstr(loop, "{NULL, "));          /* B read in place */
  ck_assert_ptr_nonnull(strstr(loop, ".a_rs = 0, .a_cs = 0,")); /* A read in place */
  free(c_text);
  free(h_text);
  check(&c, true, 1e-4); /* every target, both compilers, against ir_eval */
}
END_TEST

/* a data constant (a baked weight) r x k of values in [-1, 1) */
static NodeId const_matrix(Case *c, int64_t r, int64_t k, uint64_t seed) {
  double *data = arena_alloc(&c->g->arena, sizeof(double) * (size_t)(r * k));
  for (int64_t i = 0; i < r * k; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    data[i] = (double)(seed >> 11) / 9007199254740992.0 * 2.0 - 1.0;
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = DT_F32;
  at.constant.shape = shape_make(2, (int64_t[]){r, k});
  at.constant.data = data;
  NodeId id = graph_add(c->g, OP_CONST, NULL, 0, &at, LOC, &c->d);
  ck_assert_msg(id != IR_NONE, "%s", diag_text(&c->d));
  return id;
}

/* Constant weights on either side, transposed or not, are packed into static tables at
 * compile time in the layout lathe_gemm reads in place (K in several blocks, ragged M and N,
 * N in two panels); a constant also read by an elementwise op keeps its plain table too. */
START_TEST(test_const_prepacked) {
  Case c;
  case_init(&c);
  NodeId x = input(&c, "x", 9, 1100), y = input(&c, "y", 1100, 5), z = input(&c, "z", 3, 5);
  NodeId w = const_matrix(&c, 1100, 40, 1), wt = const_matrix(&c, 40, 1100, 2);
  NodeId a = const_matrix(&c, 20, 1100, 3), at = const_matrix(&c, 1100, 20, 4);
  NodeId wide = const_matrix(&c, 5, 1100, 5);
  graph_add_output(c.g, "xw", matmul(&c, x, w, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "xwt", matmul(&c, x, wt, false, true), OUT_VALUE, -1);
  graph_add_output(c.g, "ay", matmul(&c, a, y, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "aty", matmul(&c, at, y, true, false), OUT_VALUE, -1);
  graph_add_output(c.g, "zw", matmul(&c, z, wide, false, false), OUT_VALUE, -1);
  graph_add_output(c.g, "neg_w", add(&c, OP_NEG, w, IR_NONE, NULL), OUT_VALUE, -1);
  plan(c.m);
  CgOptions o;
  cg_options_init(&o);
  char *c_text, *h_text;
  ck_assert_msg(cg_emit_c(c.m, &o, &c_text, &h_text, &c.d), "%s", diag_text(&c.d));
  int tables = 0;
  for (const char *p = strstr(c_text, "packed at compile time"); p;
       p = strstr(p + 1, "packed at compile time"))
    tables++;
  ck_assert_int_eq(tables, 5);
  int arrays = 0; /* the five packed tables and w's plain one, for neg */
  for (const char *p = strstr(c_text, "static const float "); p;
       p = strstr(p + 1, "static const float "))
    arrays++;
  ck_assert_int_eq(arrays, 6);
  free(c_text);
  free(h_text);
  check(&c, true, 1e-4);
}
END_TEST

/* --target parses every name and rejects others */
START_TEST(test_target_names) {
  const char *names[] = {"native", "generic", "x86-64-v3", "x86-64-v4", "aarch64"};
  for (int i = 0; i < 5; i++) {
    CgTarget t = CG_TARGET_COUNT;
    ck_assert(cg_target_parse(names[i], &t));
    ck_assert_int_eq(t, i);
  }
  CgTarget t;
  ck_assert(!cg_target_parse("x86-64-v5", &t));
  CgOptions o;
  cg_options_init(&o);
  ck_assert_int_ne(cg_target_resolve(&o), CG_TARGET_NATIVE);
}
END_TEST

static Suite *codegen_gemm_suite(void) {
  Suite *s = suite_create("codegen_gemm");
  TCase *tc = tcase_create("gemm");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, test_target_names);
  tcase_add_test(tc, test_tiny);
  tcase_add_test(tc, test_odd);
  tcase_add_test(tc, test_above_tile);
  tcase_add_test(tc, test_k_blocks);
  tcase_add_test(tc, test_m_blocks);
  tcase_add_test(tc, test_n_panels);
  tcase_add_test(tc, test_direct_blocks);
  tcase_add_test(tc, test_epilogue_small);
  tcase_add_test(tc, test_epilogue_k_blocks);
  tcase_add_test(tc, test_epilogue_n_panels);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_backward_shapes);
  tcase_add_test(tc, test_rows_of_batch);
  tcase_add_test(tc, test_per_batch);
  tcase_add_test(tc, test_scan_prepacked);
  tcase_add_test(tc, test_const_prepacked);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && strcmp(argv[1], "--exhaustive") != 0)) {
    fprintf(stderr, "usage: %s [--exhaustive]\n", argv[0]);
    return 2;
  }
  exhaustive = argc == 2;
  return test_run_suite(codegen_gemm_suite());
}
