/* tests/unit/test_qat.c — the `quantize` statement (quantization-aware training, issue 19,
 * docs/int8.md "Quantization-aware training") in the IR and the generated C.
 *
 *   - tests/int8/qat_small.lathe through the frontend and the passes: every entry (forward,
 *     train, evaluate) built by gcc (gcc and clang with --exhaustive) equals the reference
 *     evaluator — outputs, loss, updated params and the updated range states — with the
 *     ranges not yet observed (zeros: the train step takes the batch's) and observed (the
 *     moving average);
 *   - the same for tests/int8/qat_residual.lathe (two residual adds of int8 tensors, each
 *     fake-quantized with a range of its own);
 *   - the rewrite: the fake_quant ops of each entry (two weights, three activation ranges),
 *     the range updates only in the train entry, the states lathe quantize reads (an `except`
 *     layer's float input gets a range of its own), and none of it without the statement;
 *     the residual model's qadd ranges, and none for an add one of whose branches is float.
 * Its values against PyTorch: tests/int8_qat.sh.
 */
#include "codegen_harness.h"
#include "frontend/frontend.h"

#include <string.h>

static const double RTOL = 1e-4;

static const char *const SMALL = "tests/int8/qat_small.lathe";
static const char *const RESIDUAL = "tests/int8/qat_residual.lathe";

/* the model file's text with `quantize` replaced by `repl` */
static char *model_text(const char *file, const char *repl) {
  char *text = test_read_file(file);
  ck_assert_ptr_nonnull(text);
  char *at = strstr(text, "  quantize\n");
  ck_assert_ptr_nonnull(at);
  size_t head = (size_t)(at - text), tail = strlen(at + 11);
  char *out = malloc(head + strlen(repl) + tail + 1);
  memcpy(out, text, head);
  strcpy(out + head, repl);
  strcat(out, at + 11);
  free(text);
  return out;
}

static Module *compile(const char *file, const char *repl) {
  char lib[4096], *text = model_text(file, repl);
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  Module *m = frontend_compile(strrchr(file, '/') + 1, text, &o, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.verify = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "passes: %s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  free(text);
  return m;
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry %s", name);
  return NULL;
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (NodeId id = 0; id < g->n_nodes; id++)
    n += graph_node(g, id)->op == op;
  return n;
}

static int range_updates(const Graph *g) {
  int n = 0;
  for (int o = 0; o < g->n_outputs; o++)
    n += g->outputs[o].kind == OUT_STATE_UPDATE && strstr(g->outputs[o].name, ".qat_");
  return n;
}

static void check_states(const Module *m, const char *const *names, int n) {
  int found = 0;
  for (int i = 0; i < m->n_states; i++)
    found += strstr(m->states[i].name, ".qat_") != NULL;
  ck_assert_int_eq(found, n);
  for (int k = 0; k < n; k++)
    ck_assert_msg(module_find_state(m, names[k]) >= 0, "no state %s", names[k]);
}

START_TEST(test_rewrite) {
  Module *m = compile(SMALL, "  quantize\n");
  static const char *const states[] = {"c1.qat_in", "c1.qat_out", "h.qat_out"};
  check_states(m, states, 3);
  ck_assert_int_eq(m->qat->n_layers, 2);
  ck_assert_int_eq(m->qat->n_float, 1);
  ck_assert_str_eq(m->qat->float_layers[0], "logits");
  ck_assert_int_eq(count_op(entry(m, "forward"), OP_FAKE_QUANT), 5);
  ck_assert_int_eq(count_op(entry(m, "train"), OP_FAKE_QUANT), 5);
  ck_assert_int_eq(range_updates(entry(m, "train")), 3);
  ck_assert_int_eq(range_updates(entry(m, "forward")), 0);
  ck_assert_int_eq(range_updates(entry(m, "evaluate")), 0);
  module_free(m);

  m = compile(SMALL, "  quantize per_tensor except c1\n"); /* h's input is float now */
  static const char *const except[] = {"h.qat_in", "h.qat_out"};
  check_states(m, except, 2);
  ck_assert_int_eq(m->qat->n_layers, 1);
  ck_assert_int_eq(count_op(entry(m, "forward"), OP_FAKE_QUANT), 3);
  module_free(m);

  m = compile(SMALL, "");
  ck_assert_ptr_null(m->qat);
  check_states(m, NULL, 0);
  ck_assert_int_eq(count_op(entry(m, "train"), OP_FAKE_QUANT), 0);
  module_free(m);
}
END_TEST

/* residual adds: each qadd's result fake-quantized once, with a range of its own; with one
 * branch's layer kept float the add is a float add and has none */
START_TEST(test_rewrite_residual) {
  Module *m = compile(RESIDUAL, "  quantize\n");
  static const char *const states[] = {"c1.qat_in",  "c1.qat_out", "c2.qat_out", "r.qat_add",
                                       "c3.qat_out", "s.qat_add",  "h.qat_out"};
  check_states(m, states, 7);
  ck_assert_int_eq(m->qat->n_layers, 4);
  ck_assert_int_eq(m->qat->n_adds, 2);
  ck_assert_int_eq(count_op(entry(m, "forward"), OP_FAKE_QUANT), 4 + 7);
  ck_assert_int_eq(count_op(entry(m, "train"), OP_FAKE_QUANT), 4 + 7);
  ck_assert_int_eq(range_updates(entry(m, "train")), 7);
  ck_assert_int_eq(range_updates(entry(m, "evaluate")), 0);
  module_free(m);

  m = compile(RESIDUAL, "  quantize except c2\n"); /* c2 float: both adds are float adds */
  static const char *const except[] = {"c1.qat_in",  "c1.qat_out", "c3.qat_in",
                                       "c3.qat_out", "h.qat_in",   "h.qat_out"};
  check_states(m, except, 6);
  ck_assert_int_eq(m->qat->n_adds, 0);
  module_free(m);
}
END_TEST

/* every entry's C against the evaluator; observed: the range states hold earlier ranges */
static void check_codegen(const char *file, const char *repl, bool observed) {
  Module *m = compile(file, repl);
  Tensor *in = calloc((size_t)m->n_inputs, sizeof *in);
  Tensor *p = calloc((size_t)m->n_params, sizeof *p);
  Tensor *s = calloc((size_t)m->n_states + 1, sizeof *s);
  for (int i = 0; i < m->n_inputs; i++) {
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    cgh_fill(&in[i], 11 + (uint64_t)i, m->inputs[i].dtype == DT_I32 ? 0 : -0.5,
             m->inputs[i].dtype == DT_I32 ? 5 : 1.5);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 7, &p[i]);
  for (int i = 0; i < m->n_states; i++) {
    ck_assert(tensor_alloc(&s[i], m->states[i].dtype, &m->states[i].shape));
    if (observed && strstr(m->states[i].name, ".qat_")) {
      bool in_range = strstr(m->states[i].name, ".qat_in") != NULL;
      tensor_set(&s[i], 0, in_range ? -0.4 : 0.0);
      tensor_set(&s[i], 1, in_range ? 1.3 : 0.7 + 0.1 * i);
    }
  }
  cgh_check_module(m, in, p, s, RTOL);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&p[i]);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&s[i]);
  free(in), free(p), free(s);
  module_free(m);
}

START_TEST(test_codegen_first_step) {
  check_codegen(SMALL, "  quantize\n", false);
  check_codegen(RESIDUAL, "  quantize\n", false);
}
END_TEST

START_TEST(test_codegen_observed) {
  check_codegen(SMALL, "  quantize\n", true);
  check_codegen(SMALL, "  quantize per_tensor except c1\n", true);
  check_codegen(RESIDUAL, "  quantize\n", true);
}
END_TEST

int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return EXIT_FAILURE;
  Suite *s = suite_create("qat");
  TCase *tc = tcase_create("qat");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_rewrite);
  tcase_add_test(tc, test_rewrite_residual);
  tcase_add_test(tc, test_codegen_first_step);
  tcase_add_test(tc, test_codegen_observed);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
