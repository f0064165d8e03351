/* tests/unit/test_codegen_struct.c — lowerings of erf, where, slice, unslice, gather and
 * scatter_add (issue 4), compiled by gcc and clang, against ir_eval (codegen_harness.h).
 * Covers broadcast and literal operands of where, strided windows with elided extent-1 loops,
 * and out-of-range indices (gather gives 0, scatter_add skips them).
 */
#include <stdarg.h>

#include "codegen_harness.h"
#include "frontend/frontend.h"

static const SrcLoc LOC = {"struct.lathe", 2, 1};

static Shape shp(int rank, ...) {
  int64_t dims[IR_MAX_RANK] = {0};
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) dims[i] = va_arg(ap, int);
  va_end(ap);
  return shape_make(rank, dims);
}

typedef struct Fixture {
  Module *m;
  Graph *g;
  Diag d;
  Tensor inputs[8];
} Fixture;

static void fx_init(Fixture *fx, const char *name) {
  memset(fx, 0, sizeof *fx);
  fx->m = module_new(name);
  fx->m->source_file = "struct.lathe";
  fx->g = graph_new(fx->m, "forward");
  module_add_entry(fx->m, fx->g);
  diag_init(&fx->d);
}

static NodeId fx_input(Fixture *fx, const char *name, DType t, Shape s, double lo, double hi) {
  int32_t i = module_add_input(fx->m, name, t, &s, LOC);
  ck_assert(tensor_alloc(&fx->inputs[i], t, &s));
  cgh_fill(&fx->inputs[i], (uint64_t)i + 31, lo, hi);
  return graph_add_source(fx->g, OP_INPUT, i, LOC);
}

static NodeId fx_add(Fixture *fx, OpKind op, const NodeId *in, int n, const NodeAttr *attr) {
  NodeId id = graph_add(fx->g, op, in, n, attr, LOC, &fx->d);
  ck_assert_msg(id != IR_NONE, "graph_add %s: %s", ir_ops[op].name, diag_text(&fx->d));
  return id;
}

static void fx_out(Fixture *fx, const char *name, NodeId id) {
  graph_add_output(fx->g, name, id, OUT_VALUE, -1);
}

static void fx_check(Fixture *fx, double rtol) {
  Tensor none[1];
  memset(none, 0, sizeof none);
  cgh_check_module(fx->m, fx->inputs, none, none, rtol);
  for (int i = 0; i < 8; i++) tensor_free(&fx->inputs[i]);
  module_free(fx->m);
  diag_fini(&fx->d);
}

static NodeAttr window(int rank, const int *begin, const int *step, const int *dim) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  for (int i = 0; i < rank; i++)
    a.slice.begin[i] = begin[i], a.slice.step[i] = step[i], a.slice.dim[i] = dim[i];
  return a;
}

static void struct_case(DType t, double rtol) {
  Fixture fx;
  fx_init(&fx, t == DT_F32 ? "st32" : "st64");
  NodeId x = fx_input(&fx, "x", t, shp(3, 4, 6, 5), -2, 2);
  NodeId c = fx_input(&fx, "c", t, shp(2, 6, 1), -1, 1);
  NodeId y = fx_input(&fx, "y", t, shp(1, 5), -3, 3);
  NodeId ids = fx_input(&fx, "ids", DT_I32, shp(2, 3, 2), -1, 7); /* some out of [0, 6) */
  fx_out(&fx, "erf", fx_add(&fx, OP_ERF, &x, 1, NULL));
  NodeId cond = fx_add(&fx, OP_GT, (NodeId[]){c, graph_add_scalar(fx.g, t, 0, LOC)}, 2, NULL);
  fx_out(&fx, "where", fx_add(&fx, OP_WHERE, (NodeId[]){cond, x, y}, 3, NULL));
  NodeId lit = graph_add_scalar(fx.g, t, -7.5, LOC);
  fx_out(&fx, "where_lit", fx_add(&fx, OP_WHERE, (NodeId[]){c, lit, y}, 3, NULL));
  NodeAttr sl = window(3, (int[]){1, 0, 1}, (int[]){2, 3, 1}, (int[]){2, 2, 3});
  NodeId s = fx_add(&fx, OP_SLICE, &x, 1, &sl);
  fx_out(&fx, "slice", s);
  NodeAttr one = window(3, (int[]){3, 2, 0}, (int[]){1, 1, 1}, (int[]){1, 1, 5});
  fx_out(&fx, "slice_row", fx_add(&fx, OP_SLICE, &x, 1, &one));
  NodeAttr us = window(3, (int[]){0, 1, 2}, (int[]){3, 2, 1}, (int[]){4, 4, 6});
  fx_out(&fx, "unslice", fx_add(&fx, OP_UNSLICE, &s, 1, &us));
  NodeId table = fx_add(&fx, OP_RESHAPE, &x, 1, &(NodeAttr){.reshape = {shp(2, 6, 20)}});
  fx_out(&fx, "gather", fx_add(&fx, OP_GATHER, (NodeId[]){table, ids}, 2, NULL));
  NodeId src = fx_input(&fx, "src", t, shp(3, 3, 2, 4), -1, 1);
  NodeAttr rows = {.gather = {6}};
  fx_out(&fx, "scatter", fx_add(&fx, OP_SCATTER_ADD, (NodeId[]){src, ids}, 2, &rows));
  NodeId vec = fx_input(&fx, "vec", t, shp(1, 6), -1, 1);
  fx_out(&fx, "gather_scalars", fx_add(&fx, OP_GATHER, (NodeId[]){vec, ids}, 2, NULL));
  fx_check(&fx, rtol);
}

START_TEST(test_struct_f32) { struct_case(DT_F32, 1e-6); }
END_TEST

START_TEST(test_struct_f64) { struct_case(DT_F64, 1e-12); }
END_TEST

/* rand/randn/dropout: generated code reproduces the evaluator bit for bit (rtol 0) */
static void random_case(DType t) {
  Fixture fx;
  fx_init(&fx, t == DT_F32 ? "rng32" : "rng64");
  NodeId seed = fx_input(&fx, "seed", DT_F64, shp(0), 0, 4294967296.0);
  NodeId step = fx_input(&fx, "step", DT_F64, shp(0), 0, 1000);
  NodeId x = fx_input(&fx, "x", t, shp(2, 7, 9), -2, 2);
  NodeAttr u = {.random = {0, 0, 0, t, shp(2, 5, 8)}};
  fx_out(&fx, "uniform", fx_add(&fx, OP_RANDOM, (NodeId[]){seed, step}, 2, &u));
  NodeAttr g = {.random = {1, 1, 0, t, shp(3, 2, 3, 4)}};
  fx_out(&fx, "normal", fx_add(&fx, OP_RANDOM, (NodeId[]){seed, step}, 2, &g));
  NodeAttr one = {.random = {2, 1, 0, t, shp(0)}};
  fx_out(&fx, "normal_scalar", fx_add(&fx, OP_RANDOM, (NodeId[]){seed, step}, 2, &one));
  NodeAttr dr = {.random = {3, 0, 0.3, DT_F32, shp(0)}};
  fx_out(&fx, "dropped", fx_add(&fx, OP_DROPOUT, (NodeId[]){x, seed, step}, 3, &dr));
  fx_check(&fx, 0.0);
}

/* only uniform draws: the normal helper is not emitted (clang -Werror rejects unused ones) */
START_TEST(test_dropout_only) {
  Fixture fx;
  fx_init(&fx, "drop");
  NodeId seed = fx_input(&fx, "seed", DT_F64, shp(0), 0, 4294967296.0);
  NodeId step = fx_input(&fx, "step", DT_F64, shp(0), 0, 1000);
  NodeId x = fx_input(&fx, "x", DT_F32, shp(2, 3, 5), -2, 2);
  NodeAttr dr = {.random = {0, 0, 0.5, DT_F32, shp(0)}};
  fx_out(&fx, "dropped", fx_add(&fx, OP_DROPOUT, (NodeId[]){x, seed, step}, 3, &dr));
  fx_check(&fx, 0.0);
}
END_TEST

START_TEST(test_random_f32) { random_case(DT_F32); }
END_TEST

START_TEST(test_random_f64) { random_case(DT_F64); }
END_TEST

/* the generator's statistics, and distinct streams/steps give different numbers */
START_TEST(test_random_statistics) {
  Module *m = module_new("stats");
  Graph *g = graph_new(m, "forward");
  Diag d;
  diag_init(&d);
  NodeId seed = graph_add_scalar(g, DT_F64, 12345, LOC), step = graph_add_scalar(g, DT_F64, 3, LOC);
  NodeId step2 = graph_add_scalar(g, DT_F64, 4, LOC);
  NodeAttr u = {.random = {0, 0, 0, DT_F64, shp(1, 20000)}};
  NodeAttr n = {.random = {1, 1, 0, DT_F64, shp(1, 20000)}};
  NodeAttr dr = {.random = {0, 0, 0.25, DT_F64, shp(0)}};
  NodeId ones = graph_add(g, OP_CONST, NULL, 0,
                          &(NodeAttr){.constant = {1.0, NULL, DT_F64, shp(1, 20000)}}, LOC, &d);
  graph_add_output(g, "u", graph_add(g, OP_RANDOM, (NodeId[]){seed, step}, 2, &u, LOC, &d),
                   OUT_VALUE, -1);
  graph_add_output(g, "n", graph_add(g, OP_RANDOM, (NodeId[]){seed, step}, 2, &n, LOC, &d),
                   OUT_VALUE, -1);
  graph_add_output(g, "u2", graph_add(g, OP_RANDOM, (NodeId[]){seed, step2}, 2, &u, LOC, &d),
                   OUT_VALUE, -1);
  graph_add_output(g, "d",
                   graph_add(g, OP_DROPOUT, (NodeId[]){ones, seed, step}, 3, &dr, LOC, &d),
                   OUT_VALUE, -1);
  Tensor o[4];
  ck_assert_msg(ir_eval(g, NULL, NULL, NULL, o, NULL, &d), "%s", diag_text(&d));
  double su = 0, sn = 0, sn2 = 0, kept = 0, same = 0, corr = 0;
  for (int i = 0; i < 20000; i++) {
    double a = tensor_get(&o[0], i), b = tensor_get(&o[1], i), c = tensor_get(&o[2], i);
    ck_assert(a >= 0 && a < 1);
    su += a, sn += b, sn2 += b * b, same += a == c, corr += (a - 0.5) * (c - 0.5);
    double v = tensor_get(&o[3], i);
    ck_assert(v == 0 || v == 1 / 0.75);
    kept += v != 0;
  }
  ck_assert_msg(fabs(su / 20000 - 0.5) < 0.01, "uniform mean %g", su / 20000);
  ck_assert_msg(fabs(sn / 20000) < 0.03 && fabs(sn2 / 20000 - 1) < 0.04, "normal %g %g",
                sn / 20000, sn2 / 20000);
  ck_assert_msg(fabs(kept / 20000 - 0.75) < 0.015, "dropout kept %g", kept / 20000);
  ck_assert_msg(same < 5 && fabs(corr / 20000) < 0.003, "steps 3 and 4 are not independent");
  for (int i = 0; i < 4; i++) tensor_free(&o[i]);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* the ops survive the text form: print, parse, print again */
START_TEST(test_struct_text_roundtrip) {
  Fixture fx;
  fx_init(&fx, "rt");
  NodeId x = fx_input(&fx, "x", DT_F32, shp(2, 6, 5), -2, 2);
  NodeId ids = fx_input(&fx, "ids", DT_I64, shp(1, 3), 0, 6);
  NodeAttr sl = window(2, (int[]){1, 2}, (int[]){2, 1}, (int[]){3, 2});
  NodeId s = fx_add(&fx, OP_SLICE, &x, 1, &sl);
  NodeAttr us = window(2, (int[]){1, 2}, (int[]){2, 1}, (int[]){6, 5});
  fx_out(&fx, "u", fx_add(&fx, OP_UNSLICE, &s, 1, &us));
  NodeId gt = fx_add(&fx, OP_GATHER, (NodeId[]){x, ids}, 2, NULL);
  NodeAttr rows = {.gather = {6}};
  fx_out(&fx, "sc", fx_add(&fx, OP_SCATTER_ADD, (NodeId[]){gt, ids}, 2, &rows));
  fx_out(&fx, "w", fx_add(&fx, OP_WHERE, (NodeId[]){s, s, s}, 3, NULL));
  char *text = ir_print(fx.g);
  Diag d;
  diag_init(&d);
  Module *m2 = ir_parse(text, "rt.ir", &d);
  ck_assert_msg(m2 != NULL, "parse: %s\n%s", diag_text(&d), text);
  char *again = ir_print(m2->model ? m2->model : m2->entries[0]);
  ck_assert_str_eq(text, again);
  free(text);
  free(again);
  module_free(m2);
  diag_fini(&d);
  module_free(fx.m);
  diag_fini(&fx.d);
  for (int i = 0; i < 8; i++) tensor_free(&fx.inputs[i]);
}
END_TEST

/* A tiny Transformer (embedding, positions, encoder and decoder blocks, losses) written in
 * lathe: every entry (forward, train, grad) generated as C and compared with ir_eval. */
static const char *const transformer_src =
    "import nn\n"
    "model tiny(ids: i32[2, 4], x: f32[2, 3, 4], label: i32[2]) {\n"
    "  e = dropout(positional_embedding(embed(ids, 7, 4)), 0.2)\n"
    "  enc = transformer_encoder_block(e, 2, 8, fill([4, 4], 0.0))\n"
    "  dec = transformer_decoder_block(x, enc, 2, 8, causal_mask(3))\n"
    "  a, b, c = split(dec, 3, axis = 1)\n"
    "  pooled = reshape(concat([a, c], axis = 2), [2, 8])\n"
    "  logits = dense(gelu(pooled), 3)\n"
    "  output probs = softmax(logits)\n"
    "  noise = 0.01 * randn([2, 2, 2]) + 0.01 * rand([2, 2])\n"
    "  loss = cross_entropy(logits, label) + 0.1 * mse(dec[:, 1:, ::2], x[:, :2, 1::2] + noise)\n"
    "}\n"
    "train tiny {\n  minimize loss\n  optimizer sgd(lr = 0.05)\n}\n";

START_TEST(test_transformer_model) {
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  Module *m = frontend_compile("tiny.lathe", transformer_src, &o, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_grad = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  for (int i = 0; i < m->n_entries; i++) { /* dropout only where training */
    const Graph *g = m->entries[i];
    int drops = 0, step_updates = 0;
    for (uint32_t id = 0; id < g->n_nodes; id++) drops += g->nodes[id].op == OP_DROPOUT;
    for (int k = 0; k < g->n_outputs; k++)
      step_updates += g->outputs[k].kind == OUT_STATE_UPDATE &&
                      strcmp(m->states[g->outputs[k].target].name, "rng.step") == 0;
    bool train = strcmp(g->name, "train") == 0, grad = strcmp(g->name, "grad") == 0;
    ck_assert_msg((drops > 0) == (train || grad), "%s: %d dropout nodes", g->name, drops);
    ck_assert_int_eq(step_updates, train ? 1 : 0);
  }
  Tensor in[4], params[64], states[16];
  memset(states, 0, sizeof states);
  ck_assert(m->n_inputs == 3 && m->n_params <= 64 && m->n_states <= 16);
  for (int i = 0; i < m->n_inputs; i++) {
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    bool ints = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&in[i], (uint64_t)i + 5, ints ? 0 : -1, ints ? (i == 0 ? 7 : 3) : 1);
  }
  for (int i = 0; i < m->n_params; i++) ir_init_tensor(&m->params[i], 3, &params[i]);
  for (int i = 0; i < m->n_states; i++) ir_init_tensor(&m->states[i], 3, &states[i]);
  cgh_check_module(m, in, params, states, 1e-4);
  for (int i = 0; i < m->n_inputs; i++) tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++) tensor_free(&params[i]);
  for (int i = 0; i < m->n_states; i++) tensor_free(&states[i]);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* pad with a large fill value keeps x exactly (it once computed (x - v) + v, which rounds x
 * away next to v = -1e9), in the evaluator and in the generated C */
START_TEST(test_pad_value_exact) {
  Diag d;
  diag_init(&d);
  const char *src = "model p(x: f32[2, 3]) {\n"
                    "  output y = pad(x, [1, 0, 0, 2], value = -1e9)\n}\n";
  Module *m = frontend_compile("pad.lathe", src, NULL, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  Tensor in[1], out[1];
  memset(out, 0, sizeof out);
  ck_assert(tensor_alloc(&in[0], DT_F32, &m->inputs[0].shape));
  const float xs[6] = {1.5f, -2.0f, 3.0f, 4.0f, 5e-3f, -6.0f};
  memcpy(in[0].data, xs, sizeof xs);
  ck_assert_msg(ir_eval(m->entries[0], in, NULL, NULL, out, NULL, &d), "%s", diag_text(&d));
  const float *y = out[0].data; /* [3, 5]: row 0 and columns 3, 4 are the fill */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 5; j++) {
      float want = i == 0 || j >= 3 ? -1e9f : xs[(i - 1) * 3 + j];
      ck_assert_msg(y[i * 5 + j] == want, "y[%d, %d] = %g, want %g", i, j, y[i * 5 + j], want);
    }
  cgh_check_module(m, in, NULL, NULL, 0);
  tensor_free(&in[0]);
  tensor_free(&out[0]);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}
END_TEST

static Suite *codegen_struct_suite(void) {
  Suite *s = suite_create("codegen_struct");
  TCase *tc = tcase_create("struct");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_struct_f32);
  tcase_add_test(tc, test_struct_f64);
  tcase_add_test(tc, test_struct_text_roundtrip);
  tcase_add_test(tc, test_transformer_model);
  tcase_add_test(tc, test_pad_value_exact);
  tcase_add_test(tc, test_random_f32);
  tcase_add_test(tc, test_dropout_only);
  tcase_add_test(tc, test_random_f64);
  tcase_add_test(tc, test_random_statistics);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(codegen_struct_suite()); }
