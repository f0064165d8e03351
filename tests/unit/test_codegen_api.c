/* tests/unit/test_codegen_api.c — the generated interface and the planning passes.
 *
 * Generated <model>_init equals ir_init_tensor bit for bit; the header carries model_info.h
 * verbatim; pass_dce keeps order and remaps outputs; pass_memplan never overlaps two buffers
 * that are live at the same time (checked against an independent liveness computation) and
 * the planned code still matches ir_eval; #line output compiles and resyncs to the right
 * lines; awkward names are renamed; unplanned graphs are refused with a diagnostic; a symbol
 * prefix renames every exported name, and an invalid one is refused.
 */
#include "codegen_harness.h"

static const SrcLoc LOC = {"api.lathe", 2, 1};

static Shape shp2(int64_t a, int64_t b) {
  return shape_make(2, (int64_t[]){a, b});
}

/* ---- init ----------------------------------------------------------------------------------- */

START_TEST(test_init_bit_exact) {
  Module *m = module_new("initm");
  m->source_file = "api.lathe";
  const Shape shapes[3] = {shape_make(1, (int64_t[]){7}), shp2(5, 3),
                           shape_make(4, (int64_t[]){4, 3, 2, 3})};
  for (int kind = 0; kind < INIT_COUNT; kind++) {
    for (int si = 0; si < 3; si++) {
      for (int t = 0; t < 2; t++) {
        char name[64];
        snprintf(name, sizeof name, "layer%d.%s.s%d", kind, t ? "d" : "f", si);
        InitSpec init = {(InitKind)kind, -0.5, 1.75};
        module_add_param(m, name, t ? DT_F64 : DT_F32, &shapes[si], init, LOC);
      }
    }
  }
  module_add_state(m, "moment.w", DT_F32, &shapes[1], (InitSpec){INIT_ONES, 0, 0}, LOC);
  module_add_state(m, "count", DT_I32, &shapes[0], (InitSpec){INIT_CONSTANT, 3, 0}, LOC);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text); /* no entries: only init and the descriptor */
  CghBuild b;
  cgh_setup(&b, "initm", c_text, h_text);
  for (int k = 0; k < CGH_N_COMPILERS; k++) {
    cgh_build(&b, cgh_compilers[k]);
    const lathe_model_info *info = b.info;
    ck_assert_int_eq(info->n_params, m->n_params);
    ck_assert_int_eq(info->n_states, m->n_states);
    const uint64_t seeds[2] = {0, 0xdeadbeefcafeull};
    for (int s = 0; s < 2; s++) {
      unsigned char *p = malloc(info->params_bytes), *st = malloc(info->state_bytes);
      memset(p, 0xAB, info->params_bytes);
      memset(st, 0xCD, info->state_bytes);
      info->init(p, st, seeds[s]);
      for (int k2 = 0; k2 < 2; k2++) {
        const TensorDecl *decls = k2 ? m->states : m->params;
        const lathe_tensor_info *ti = k2 ? info->states : info->params;
        for (int i = 0; i < (k2 ? m->n_states : m->n_params); i++) {
          Tensor ref;
          ir_init_tensor(&decls[i], seeds[s], &ref);
          ck_assert_str_eq(ti[i].name, decls[i].name);
          ck_assert_msg(memcmp((k2 ? st : p) + ti[i].offset, ref.data, ti[i].bytes) == 0,
                        "%s: generated init differs from ir_init_tensor (seed %llu, %s)",
                        decls[i].name, (unsigned long long)seeds[s], cgh_compilers[k]);
          tensor_free(&ref);
        }
      }
      free(p);
      free(st);
    }
    cgh_unload(&b);
  }
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  module_free(m);
}
END_TEST

/* ---- header ---------------------------------------------------------------------------------- */

START_TEST(test_header_has_model_info_verbatim) {
  Module *m = module_new("hdr");
  Shape s = shp2(2, 3);
  module_add_param(m, "a.b", DT_F32, &s, (InitSpec){INIT_ZEROS, 0, 0}, LOC);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  char *mi = test_read_file("include/lathe/model_info.h");
  ck_assert(mi != NULL);
  char *start = strstr(mi, "#ifndef LATHE_MODEL_INFO_DEFINED");
  char *end = strrchr(mi, '#'); /* the final #endif */
  ck_assert(start && end && end > start);
  end[6] = '\0';
  ck_assert_msg(strstr(h_text, start) != NULL, "model_info.h is not copied verbatim");
  ck_assert(strstr(h_text, "float a_b[2 * 3]; /* a.b: f32[2, 3] */") != NULL);
  ck_assert(strstr(h_text, "uint64_t step;") != NULL);
  ck_assert(strstr(h_text, "enum { HDR_WORKSPACE_BYTES = 0 };") != NULL);
  ck_assert(strstr(h_text, "void hdr_init(hdr_params *p, hdr_state *s, uint64_t seed);") != NULL);
  ck_assert(strstr(h_text, "extern const lathe_model_info hdr_info;") != NULL);
  free(mi);
  free(c_text);
  free(h_text);
  module_free(m);
}
END_TEST

/* ---- dce ------------------------------------------------------------------------------------- */

START_TEST(test_dce_compacts_in_order) {
  Module *m = module_new("dce");
  Shape s = shp2(2, 2);
  module_add_input(m, "x", DT_F32, &s, LOC);
  module_add_input(m, "unused", DT_F32, &s, LOC);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId u = graph_add_source(g, OP_INPUT, 1, LOC);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  graph_add_unary(g, OP_EXP, u, LOC, &d);                /* dead */
  NodeId a = graph_add_unary(g, OP_NEG, x, LOC, &d);     /* live */
  graph_add_binary(g, OP_ADD, a, a, LOC, &d);            /* dead */
  NodeId b = graph_add_binary(g, OP_MUL, a, x, LOC, &d); /* live */
  graph_add_output(g, "y", b, OUT_VALUE, -1);
  graph_add_output(g, "z", a, OUT_VALUE, -1);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert(pass_dce(g, &c));
  ck_assert_int_eq(g->n_nodes, 3);
  ck_assert_int_eq(g->nodes[0].op, OP_INPUT);
  ck_assert_int_eq(g->nodes[0].attr.source.index, 0);
  ck_assert_int_eq(g->nodes[1].op, OP_NEG);
  ck_assert_int_eq(g->nodes[1].in[0], 0);
  ck_assert_int_eq(g->nodes[2].op, OP_MUL);
  ck_assert_int_eq(g->nodes[2].in[0], 1);
  ck_assert_int_eq(g->nodes[2].in[1], 0);
  ck_assert_int_eq(g->outputs[0].node, 2);
  ck_assert_int_eq(g->outputs[1].node, 1);
  ck_assert(ir_verify(g, &d));
  ck_assert(pass_dce(g, &c)); /* idempotent */
  ck_assert_int_eq(g->n_nodes, 3);
  pass_ctx_fini(&c);
  diag_fini(&d);
  module_free(m);
}
END_TEST

/* ---- memplan -----------------------------------------------------------------------------------
 */

/* Independent check: no two buffers whose live ranges [def, last use] intersect may overlap;
 * offsets are 64-aligned and inside the arena; RESHAPE shares its root's offset. Returns the
 * sum of all buffer sizes. */
static int64_t check_plan(const Graph *g) {
  uint32_t n = g->n_nodes;
  NodeId *root = malloc(n * sizeof *root);
  uint32_t *last = malloc(n * sizeof *last);
  int64_t total = 0;
  for (uint32_t i = 0; i < n; i++) {
    const Node *node = &g->nodes[i];
    root[i] = node->op == OP_RESHAPE ? root[node->in[0]] : i;
    last[i] = i;
    for (int k = 0; k < node->n_in; k++)
      last[root[node->in[k]]] = i;
    if (node->op == OP_RESHAPE) ck_assert_int_eq(node->offset, g->nodes[root[i]].offset);
  }
  for (int o = 0; o < g->n_outputs; o++)
    last[root[g->outputs[o].node]] = n;
  for (uint32_t i = 0; i < n; i++) {
    const Node *a = &g->nodes[i];
    if (root[i] != i || a->offset < 0) continue;
    int64_t sa = shape_numel(&a->shape) * (int64_t)dtype_size(a->dtype);
    total += (sa + 63) / 64 * 64;
    ck_assert_int_eq(a->offset % 64, 0);
    ck_assert(a->offset + sa <= g->workspace_bytes);
    for (uint32_t j = i + 1; j < n; j++) {
      const Node *b = &g->nodes[j];
      if (root[j] != j || b->offset < 0 || j > last[i]) continue; /* b born after a died */
      int64_t sb = shape_numel(&b->shape) * (int64_t)dtype_size(b->dtype);
      bool disjoint = a->offset + sa <= b->offset || b->offset + sb <= a->offset;
      /* memplan's in-place rule: an elementwise kernel's output may take the buffer of a
       * same-sized input that dies in that very kernel (read at the same element only) */
      bool elementwise = b->op == OP_BROADCAST ||
                         (ir_ops[b->op].fusion == FUSE_ELEMWISE && b->op != OP_CONST);
      bool in_place = j == last[i] && elementwise && a->offset == b->offset && sa == sb;
      ck_assert_msg(disjoint || in_place, "%%%u [%lld, +%lld) and %%%u [%lld, +%lld) are live together", i,
                    (long long)a->offset, (long long)sa, j, (long long)b->offset, (long long)sb);
    }
  }
  free(root);
  free(last);
  return total;
}

/* a diamond-rich chain with reshapes, reused values and outputs of every kind */
static Module *plan_module(Tensor *inputs) {
  Module *m = module_new("plan");
  m->source_file = "api.lathe";
  Shape s = shp2(6, 10);
  module_add_input(m, "x", DT_F32, &s, LOC);
  ck_assert(tensor_alloc(&inputs[0], DT_F32, &s));
  cgh_fill(&inputs[0], 5, -1, 1);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  NodeId keep = graph_add_unary(g, OP_TANH, x, LOC, &d); /* live to the end */
  NodeId cur = x;
  for (int i = 0; i < 12; i++) {
    NodeId a = graph_add_unary(g, i % 2 ? OP_SIGMOID : OP_NEG, cur, LOC, &d);
    NodeId b = graph_add_binary(g, OP_MUL, a, cur, LOC, &d);
    if (i % 3 == 0) {
      NodeAttr rs = {.reshape = {shape_make(1, (int64_t[]){60})}};
      NodeId r = graph_add(g, OP_RESHAPE, &b, 1, &rs, LOC, &d);
      NodeAttr back = {.reshape = {s}};
      b = graph_add(g, OP_RESHAPE, (NodeId[]){graph_add_unary(g, OP_ABS, r, LOC, &d)}, 1, &back,
                    LOC, &d);
    }
    NodeAttr sum = {.reduce = {2u, true}};
    NodeId red = graph_add(g, OP_SUM, &b, 1, &sum, LOC, &d);
    cur = graph_add_binary(g, OP_SUB, b, red, LOC, &d);
    ck_assert_msg(cur != IR_NONE, "%s", diag_text(&d));
  }
  graph_add_output(g, "y", graph_add_binary(g, OP_ADD, cur, keep, LOC, &d), OUT_VALUE, -1);
  graph_add_output(g, "mid", keep, OUT_VALUE, -1);
  diag_fini(&d);
  return m;
}

START_TEST(test_memplan_no_overlap) {
  Tensor inputs[1];
  Module *m = plan_module(inputs);
  cgh_plan(m);
  const Graph *g = m->entries[0];
  int64_t total = check_plan(g);
  ck_assert_msg(g->workspace_bytes < total / 2, "no reuse: %lld bytes of %lld",
                (long long)g->workspace_bytes, (long long)total);
  for (uint32_t i = 0; i < g->n_nodes; i++) /* outputs are written in place */
    if (i == g->outputs[0].node || i == g->outputs[1].node)
      ck_assert_int_eq(g->nodes[i].offset, -1);
  module_free(m);
  tensor_free(&inputs[0]);
  m = plan_module(inputs);
  cgh_check_module(m, inputs, NULL, NULL, 1e-5); /* the reuse is also correct when run */
  module_free(m);
  tensor_free(&inputs[0]);
}
END_TEST

/* ---- #line, names, errors ---------------------------------------------------------------------
 */

START_TEST(test_line_directives) {
  Module *m = module_new("lined");
  m->source_file = "mlp.lathe";
  Shape s = shp2(3, 4);
  module_add_input(m, "x", DT_F32, &s, LOC);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  NodeId e = graph_add_unary(g, OP_EXP, x, (SrcLoc){"mlp.lathe", 7, 14}, &d);
  NodeId r = graph_add_unary(g, OP_RELU, e, (SrcLoc){"mlp.lathe", 9, 3}, &d);
  g->nodes[r].name = "h1";
  graph_add_output(g, "y", graph_add_binary(g, OP_ADD, r, e, (SrcLoc){0}, &d), OUT_VALUE, -1);
  cgh_plan(m);
  char *c_text, *h_text;
  cgh_emit(m, true, &c_text, &h_text);
  ck_assert(strstr(c_text, "#line 7 \"mlp.lathe\"") != NULL);
  ck_assert(strstr(c_text, "#line 9 \"mlp.lathe\"") != NULL);
  ck_assert(strstr(c_text, "-- h1  (mlp.lathe:9:3)") != NULL);
  int line = 1, resyncs = 0;
  for (const char *p = c_text; *p; p = strchr(p, '\n') + 1, line++) {
    int n, end = 0;
    if (sscanf(p, "#line %d \"lined.c\"%n", &n, &end) == 1 && end > 0) {
      ck_assert_int_eq(n, line + 1);
      resyncs++;
    }
    if (!strchr(p, '\n')) break;
  }
  ck_assert_int_eq(resyncs, 2);
  CghBuild b;
  cgh_setup(&b, "lined", c_text, h_text);
  for (int k = 0; k < CGH_N_COMPILERS; k++)
    ck_assert_int_eq(cgh_compile(&b, cgh_compilers[k], "-O1 -c", "lined.o"), 0);
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  diag_fini(&d);
  module_free(m);
}
END_TEST

/* inputs and outputs named like C keywords, libm functions or the fixed arguments */
START_TEST(test_awkward_names) {
  Module *m = module_new("names");
  Shape s = shp2(2, 3);
  Tensor inputs[3];
  const char *in_names[3] = {"p", "exp", "ws"};
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId in[3];
  for (int i = 0; i < 3; i++) {
    module_add_input(m, in_names[i], DT_F32, &s, LOC);
    ck_assert(tensor_alloc(&inputs[i], DT_F32, &s));
    cgh_fill(&inputs[i], (uint64_t)i, -1, 1);
    in[i] = graph_add_source(g, OP_INPUT, i, LOC);
  }
  NodeId a =
      graph_add_unary(g, OP_EXP, graph_add_binary(g, OP_ADD, in[0], in[1], LOC, &d), LOC, &d);
  graph_add_output(g, "int", graph_add_binary(g, OP_MUL, a, in[2], LOC, &d), OUT_VALUE, -1);
  graph_add_output(g, "i0", a, OUT_VALUE, -1);
  cgh_check_module(m, inputs, NULL, NULL, 1e-5);
  for (int i = 0; i < 3; i++)
    tensor_free(&inputs[i]);
  diag_fini(&d);
  module_free(m);
}
END_TEST

START_TEST(test_refuses_unplanned_graph) {
  Module *m = module_new("raw");
  Shape s = shp2(2, 3);
  module_add_input(m, "x", DT_F32, &s, LOC);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  graph_add_output(g, "y",
                   graph_add_unary(g, OP_EXP, graph_add_unary(g, OP_NEG, x, LOC, &d), LOC, &d),
                   OUT_VALUE, -1);
  char *c_text = (char *)"x", *h_text = (char *)"x";
  ck_assert(!cg_emit_c(m, NULL, &c_text, &h_text, &d));
  ck_assert(c_text == NULL && h_text == NULL);
  ck_assert_msg(strstr(diag_text(&d), "memory-planned") != NULL, "%s", diag_text(&d));
  diag_fini(&d);
  module_free(m);
}
END_TEST

/* which names cg_prefix_error accepts, and that CgOptions.prefix renames every exported name
 * (no name of the model is left outside comments) or is refused with a diagnostic */
START_TEST(test_prefix) {
  char longest[CG_PREFIX_MAX + 2];
  memset(longest, 'a', sizeof longest);
  longest[CG_PREFIX_MAX] = '\0';
  const char *good[] = {"a", "mlp64", "A_b9", "Int", longest};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    ck_assert_msg(cg_prefix_error(good[i]) == NULL, "%s: %s", good[i], cg_prefix_error(good[i]));
  longest[CG_PREFIX_MAX] = 'a';
  longest[CG_PREFIX_MAX + 1] = '\0';
  const char *bad[] = {"",    "9a", "a-b", "a.b",   "a b",  "_a",
                       "__a", "_A", "int", "while", "bool", longest};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(cg_prefix_error(bad[i]) != NULL, "'%s' accepted", bad[i]);

  Module *m = module_new("net");
  Shape s = shp2(2, 3);
  module_add_input(m, "x", DT_F32, &s, LOC);
  Graph *g = graph_new(m, "forward");
  module_add_entry(m, g);
  Diag d;
  diag_init(&d);
  NodeId x = graph_add_source(g, OP_INPUT, 0, LOC);
  graph_add_output(g, "y", graph_add_unary(g, OP_EXP, x, LOC, &d), OUT_VALUE, -1);
  cgh_plan(m);
  CgOptions o;
  cg_options_init(&o);
  o.prefix = "net_b1";
  char *c_text, *h_text;
  ck_assert_msg(cg_emit_c(m, &o, &c_text, &h_text, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(h_text, "#define LATHE_GENERATED_NET_B1_H"));
  ck_assert_ptr_nonnull(strstr(h_text, "enum { NET_B1_FORWARD_WORKSPACE_BYTES = "));
  ck_assert_ptr_nonnull(strstr(h_text, "void net_b1_forward(const net_b1_params *p"));
  ck_assert_ptr_nonnull(strstr(c_text, "#include \"net_b1.h\""));
  ck_assert_ptr_nonnull(strstr(c_text, "const lathe_model_info net_b1_info = {"));
  ck_assert_ptr_nonnull(strstr(c_text, "LATHE_MODEL_INFO_VERSION, \"net_b1\""));
  ck_assert_msg(!strstr(c_text, "net_forward") && !strstr(h_text, "NET_WORKSPACE") &&
                    !strstr(h_text, "net_params"),
                "a name without the prefix is left");
  free(c_text);
  free(h_text);
  o.prefix = "_net";
  c_text = h_text = (char *)"x";
  ck_assert(!cg_emit_c(m, &o, &c_text, &h_text, &d));
  ck_assert(c_text == NULL && h_text == NULL);
  ck_assert_msg(strstr(diag_text(&d), "invalid symbol prefix '_net'") != NULL, "%s", diag_text(&d));
  diag_fini(&d);
  module_free(m);
}
END_TEST

static Suite *codegen_api_suite(void) {
  Suite *s = suite_create("codegen_api");
  TCase *tc = tcase_create("api");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_init_bit_exact);
  tcase_add_test(tc, test_header_has_model_info_verbatim);
  tcase_add_test(tc, test_dce_compacts_in_order);
  tcase_add_test(tc, test_memplan_no_overlap);
  tcase_add_test(tc, test_line_directives);
  tcase_add_test(tc, test_awkward_names);
  tcase_add_test(tc, test_refuses_unplanned_graph);
  tcase_add_test(tc, test_prefix);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(codegen_api_suite());
}
