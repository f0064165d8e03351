/* tests/unit/test_codegen_dyn.c — the run-time batch (docs/dynamic-batch.md) in the memory
 * plan and the generated C.
 *
 * The graphs are built by hand: a module bounded at MAX samples whose inputs are dynamic in
 * axis 0 (Shape.dyn = 1), every batch-proportional node marked dynamic the way the infer hooks
 * carry it. Checked: the plan (plan_check.h) at n = 1, 2, 7 and the bound — aligned, inside
 * workspace_bytes_n * n + workspace_bytes, no two live buffers sharing a byte — with the
 * dynamic buffers in the per-n pool and the static ones above it.
 *
 * Generated C: an MLP module in the IR text (a batch-averaged loss, an Adam train step) through
 * the pipeline at -O1 and -O3 (fused), built by gcc and clang, every entry called at n = 1, 7 and
 * the bound with a workspace of exactly the header's <ENTRY>_WORKSPACE_BYTES(n) bytes (malloc'd, so
 * the sanitizer build catches a byte past it), equals ir_eval of graph_specialize(entry, n):
 * outputs, loss and updated parameters and moments. n = 0 and n = bound + 1 write nothing.
 * The same for examples/cnn.lathe with -D N=dynamic(max=64) (convolutions, max-pooling and
 * their gradients, an Adam train step) with every convolution algorithm: the one
 * passes/layout.c chooses (direct / Winograd), the implicit GEMM and the plain loops.
 */
#include "codegen_harness.h"
#include "frontend/frontend.h"
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

/* ---- generated C at n ------------------------------------------------------------------- */

static const char *DMLP = "module dmlp\n"
                          "dynamic N max=64\n"
                          "input x: f32[n<=64, 12]\n"
                          "input label: i32[n<=64]\n"
                          "param h.w: f32[12, 16] = glorot_uniform\n"
                          "param h.b: f32[16] = uniform(-0.5, 0.5)\n"
                          "param z.w: f32[16, 5] = glorot_uniform\n"
                          "param z.b: f32[5] = uniform(-0.5, 0.5)\n"
                          "train minimize loss %17 optimizer adam(lr=0.1)\n"
                          "graph model {\n"
                          "  %0 = input 0 : f32[n<=64, 12]\n"
                          "  %1 = input 1 : i32[n<=64]\n"
                          "  %2 = param 0 : f32[12, 16]\n"
                          "  %3 = param 1 : f32[16]\n"
                          "  %4 = matmul %0, %2 : f32[n<=64, 16]\n"
                          "  %5 = add %4, %3 : f32[n<=64, 16]\n"
                          "  %6 = relu %5 : f32[n<=64, 16]\n"
                          "  %7 = param 2 : f32[16, 5]\n"
                          "  %8 = param 3 : f32[5]\n"
                          "  %9 = matmul %6, %7 : f32[n<=64, 5]\n"
                          "  %10 = add %9, %8 : f32[n<=64, 5]\n"
                          "  %11 = softmax %10 {axis=1} : f32[n<=64, 5]\n"
                          "  %12 = one_hot %1 {depth=5} : f32[n<=64, 5]\n"
                          "  %13 = log_softmax %10 {axis=1} : f32[n<=64, 5]\n"
                          "  %14 = mul %12, %13 : f32[n<=64, 5]\n"
                          "  %15 = sum %14 {axes=[1], keepdims=false} : f32[n<=64]\n"
                          "  %16 = mean %15 {axes=[0], keepdims=false} : f32[]\n"
                          "  %17 = neg %16 : f32[]\n"
                          "  output probs = %11 value\n"
                          "  output loss = %17 loss\n"
                          "}\n";

static Module *dmlp_module(int level) {
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(DMLP, "dmlp.ir", &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.opt_level = level;
  c.verify = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

/* A and B of `#define <UPPER>_WORKSPACE_BYTES(n) ((size_t)A * (size_t)(n) + (size_t)B)` */
static void header_workspace(const char *h, const char *upper, int64_t *a, int64_t *b) {
  char key[128];
  snprintf(key, sizeof key, "#define %s_WORKSPACE_BYTES(n) ((size_t)", upper);
  const char *p = strstr(h, key);
  ck_assert_msg(p, "no %s in the header", key);
  long long aa, bb;
  ck_assert_int_eq(sscanf(p + strlen(key), "%lld * (size_t)(n) + (size_t)%lld)", &aa, &bb), 2);
  *a = aa, *b = bb;
}

static void fill_inputs(const Module *m, int64_t n, Tensor *in) {
  for (int i = 0; i < m->n_inputs; i++) {
    Shape s = m->inputs[i].shape;
    s.dim[0] = s.dyn * n, s.dyn = 0;
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &s));
    cgh_fill(&in[i], 3 + (uint64_t)i, i == 1 ? 0 : -1, i == 1 ? 5 : 1);
  }
}

/* entry `index` of the loaded model at n against ir_eval(graph_specialize(entry, n)) */
static void check_at(const CghBuild *b, const Module *m, int index, int64_t n, const char *h,
                     const char *model_upper) {
  const Graph *g = m->entries[index];
  Diag d;
  diag_init(&d);
  Graph *gs = graph_specialize(g, n, &d);
  ck_assert_msg(gs, "%s", diag_text(&d));
  Tensor in[4], params[16], states[40], outs[64];
  ck_assert(m->n_params <= 16 && m->n_states <= 40 && g->n_outputs <= 64);
  fill_inputs(m, n, in);
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 9, &params[i]);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 9, &states[i]);
  ck_assert_msg(ir_eval(gs, in, params, states, outs, NULL, &d), "%s", diag_text(&d));
  const lathe_entry_info *e = cgh_entry(b->info, g->name);
  int64_t wa, wb;
  char upper[64];
  snprintf(upper, sizeof upper, "%s_%s", model_upper, g->name);
  for (char *p = upper; *p; p++)
    *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  header_workspace(h, upper, &wa, &wb);
  ck_assert_int_eq(wa, g->workspace_bytes_n);
  ck_assert_int_ge(wb, g->workspace_bytes);
  ck_assert_int_eq((long long)e->workspace_bytes, wa * MAX + wb);
  void *p = cgh_pack(b->info->params_bytes, b->info->params, m->n_params, params);
  void *s = cgh_pack(b->info->state_bytes, b->info->states, m->n_states, states);
  void *args[64] = {0}, *out_bufs[64] = {0};
  void *ws = aligned_alloc(64, (size_t)ir_round_up(wa * n + wb, 64));
  int64_t batch = n;
  ck_assert_int_le(e->n_args, 64);
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    if (a->role == LATHE_ARG_PARAMS) args[i] = p;
    if (a->role == LATHE_ARG_STATE) args[i] = s;
    if (a->role == LATHE_ARG_WORKSPACE) args[i] = ws;
    if (a->role == LATHE_ARG_BATCH) args[i] = &batch;
    for (int k = 0; a->role == LATHE_ARG_INPUT && k < m->n_inputs; k++)
      if (strcmp(m->inputs[k].name, a->tensor->name) == 0) args[i] = in[k].data;
    if (a->role == LATHE_ARG_OUTPUT) args[i] = out_bufs[i] = calloc(1, a->tensor->bytes);
  }
  ck_assert_int_eq(e->args[e->n_args - 1].role, LATHE_ARG_BATCH);
  double loss = NAN;
  e->call(args, &loss);
  for (int o = 0, i = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    if (go->kind == OUT_VALUE || go->kind == OUT_GRAD) {
      while (e->args[i].role != LATHE_ARG_OUTPUT)
        i++;
      cgh_expect_close(go->name, outs[o].dtype, out_bufs[i++], &outs[o], 1e-4);
    } else if (go->kind == OUT_LOSS) {
      double r = tensor_get(&outs[o], 0);
      ck_assert_msg(fabs(loss - r) <= 1e-4 * (1 + fabs(r)), "n=%lld: loss %.9g vs %.9g",
                    (long long)n, loss, r);
    } else {
      bool param = go->kind == OUT_PARAM_UPDATE;
      const lathe_tensor_info *ti =
          param ? &b->info->params[go->target] : &b->info->states[go->target];
      cgh_expect_close(ti->name, outs[o].dtype, (char *)(param ? p : s) + ti->offset, &outs[o],
                       1e-4);
    }
  }
  for (int o = 0; o < gs->n_outputs; o++)
    tensor_free(&outs[o]);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&states[i]);
  for (int i = 0; i < 64; i++)
    free(out_bufs[i]);
  free(ws);
  free(p);
  free(s);
  graph_free(gs);
  diag_fini(&d);
}

/* n outside [1, bound]: the entry returns at once (a loss entry NAN), writing nothing */
static void check_out_of_range(const CghBuild *b, int64_t n) {
  const lathe_entry_info *e = cgh_entry(b->info, "train");
  void *args[16] = {0};
  int64_t batch = n;
  for (int i = 0; i < e->n_args; i++)
    args[i] = e->args[i].role == LATHE_ARG_BATCH ? (void *)&batch : NULL;
  double loss = 0;
  e->call(args, &loss); /* every pointer NULL: any write would crash */
  ck_assert(isnan(loss));
}

/* at -O1 (one kernel per node) and -O3 (fused: matmul epilogues, row kernels) */
START_TEST(test_generated_at_n) {
  Module *m = dmlp_module(_i ? 3 : 1);
  ck_assert_int_eq(m->dyn_max, MAX);
  for (int i = 0; i < m->n_entries; i++)
    plan_check(m->entries[i]);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  ck_assert_msg(strstr(h_text, "#define DMLP_MAX_N 64"), "no bound in the header");
  CghBuild b;
  cgh_setup(&b, "dmlp", c_text, h_text);
  const int64_t ns[] = {1, 7, MAX};
  for (int k = 0; k < CGH_N_COMPILERS; k++) {
    const char *flags = "-O1 -shared -fPIC -lm";
#if defined(__SANITIZE_ADDRESS__) /* the sanitizer build (make test): the generated code too */
    if (strcmp(cgh_compilers[k], "gcc") == 0) flags = "-O1 -shared -fPIC -fsanitize=address -lm";
#endif
    cgh_build_with(&b, cgh_compilers[k], flags);
    for (int i = 0; i < m->n_entries; i++)
      for (int j = 0; j < 3; j++)
        check_at(&b, m, i, ns[j], h_text, "DMLP");
    check_out_of_range(&b, 0);
    check_out_of_range(&b, MAX + 1);
    cgh_unload(&b);
  }
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  module_free(m);
}
END_TEST

/* transpose (refused until the struct ops took the run-time batch) keeps axis 0 first and
 * runs it to n: a tiny module at n = 1, 3 and the bound against the evaluator. Every example
 * model and the other struct ops are checked by test_codegen_dyn_examples.c. */
START_TEST(test_transpose_at_n) {
  static const char *TRANSPOSE = "module dtrans\n"
                                 "dynamic N max=64\n"
                                 "input x: f32[n<=64, 2, 3]\n"
                                 "graph model {\n"
                                 "  %0 = input 0 : f32[n<=64, 2, 3]\n"
                                 "  %1 = transpose %0 {perm=[0, 2, 1]} : f32[n<=64, 3, 2]\n"
                                 "  output y = %1 value\n"
                                 "}\n";
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(TRANSPOSE, "dtrans.ir", &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  pass_ctx_fini(&c);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  ck_assert_msg(strstr(c_text, "< n;"), "no loop to n:\n%s", c_text);
  CghBuild b;
  cgh_setup(&b, "dtrans", c_text, h_text);
  cgh_build(&b, "gcc");
  const int64_t ns[] = {1, 3, MAX};
  for (int i = 0; i < m->n_entries; i++)
    for (int j = 0; j < 3; j++)
      check_at(&b, m, i, ns[j], h_text, "DTRANS");
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* examples/cnn.lathe with -D N=dynamic(max=64), through the frontend and the passes */
static Module *cnn_module(void) {
  char path[4096], lib[4096];
  snprintf(path, sizeof path, "%s/examples/cnn.lathe", test_source_dir());
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp, "cannot open %s", path);
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[len] = '\0';
  const Define def = {"N", MAX, true};
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  o.defines = &def;
  o.n_defines = 1;
  Diag d;
  diag_init(&d);
  Module *m = frontend_compile(path, text, &o, &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  ck_assert_int_eq(m->dyn_max, MAX);
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.verify = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

/* every convolution of m takes algorithm algo (UNSET: the one passes/layout.c chose); returns
 * how many there are */
static int force_conv_algo(Module *m, IrConvAlgo algo) {
  int convs = 0;
  for (int e = 0; e < m->n_entries; e++)
    for (NodeId id = 0; id < m->entries[e]->n_nodes; id++) {
      Node *n = &m->entries[e]->nodes[id];
      if (n->op != OP_CONV2D && n->op != OP_CONV_TRANSPOSE2D && n->op != OP_CONV2D_GRAD_WEIGHT)
        continue;
      convs++;
      if (algo != IR_CONV_ALGO_UNSET) n->attr.conv.algo = algo;
    }
  return convs;
}

/* _i: 0 the chosen algorithms (gcc and clang), 1 the implicit GEMM, 2 the plain loops (gcc) */
START_TEST(test_cnn_at_n) {
  static const IrConvAlgo algos[] = {IR_CONV_ALGO_UNSET, IR_CONV_ALGO_GEMM, IR_CONV_ALGO_NAIVE};
  Module *m = cnn_module();
  ck_assert_int_ge(force_conv_algo(m, algos[_i]), 5); /* 2 forward, their input/weight grads */
  for (int i = 0; i < m->n_entries; i++)
    plan_check(m->entries[i]);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  ck_assert_msg(strstr(h_text, "#define CNN_MAX_N 64"), "no bound in the header");
  CghBuild b;
  cgh_setup(&b, "cnn", c_text, h_text);
  const int64_t ns[] = {1, 7, MAX};
  for (int k = 0; k < (_i == 0 ? CGH_N_COMPILERS : 1); k++) {
    const char *flags = "-O1 -shared -fPIC -lm";
#if defined(__SANITIZE_ADDRESS__) /* the sanitizer build (make test): the generated code too */
    if (strcmp(cgh_compilers[k], "gcc") == 0) flags = "-O1 -shared -fPIC -fsanitize=address -lm";
#endif
    cgh_build_with(&b, cgh_compilers[k], flags);
    for (int i = 0; i < m->n_entries; i++)
      for (int j = 0; j < 3; j++)
        check_at(&b, m, i, ns[j], h_text, "CNN");
    cgh_unload(&b);
  }
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen_dyn");
  TCase *tc = tcase_create("dyn");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_plan_two_pools);
  tcase_add_loop_test(tc, test_generated_at_n, 0, 2);
  tcase_add_loop_test(tc, test_cnn_at_n, 0, 3);
  tcase_add_test(tc, test_transpose_at_n);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
