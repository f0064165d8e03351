/* tests/unit/test_passes_rows.c — row-wise fusion (passes/fuse.c, codegen/lower_rows.c).
 *
 * Small lathe models (softmax, log-softmax, cross-entropy with integer and soft labels, NLL,
 * layer norm, max and mean over the last axis, MSE, a Transformer encoder block whose
 * attention transposes become matmul flags in passes/layout.c, a convolution whose inference
 * batch norm folds into its weights in passes/layout_bn.c) are compiled at -O3 and at -O0
 * with their forward, grad, evaluate and train entries. For each:
 *   - at -O3 the loss chain is one kernel: the train entry has a fusion group holding the
 *     log-softmax, its per-row sum and the scalar loss, and fewer kernels than at -O0;
 *   - the generated C (-Werror; gcc, and clang too with --exhaustive) of every entry equals
 *     the reference evaluator on the same graph (outputs, loss, gradients, parameter and
 *     state updates);
 *   - the reference evaluator gives the same outputs for the -O0 and the -O3 graphs (fusion
 *     and the cleanups keep the semantics), within rtol.
 * f32 with rtol 1e-4 and f64 with rtol 1e-10. Also issue 5's kernel and arena targets on the
 * CNN's train step.
 */
#include "codegen_harness.h"
#include "frontend/frontend.h"

typedef struct Case {
  const char *name;
  const char *source;
} Case;

static const Case cases[] = {
    {"ce",
     "import nn\n"
     "model ce(x: f32[6, 5], label: i32[6]) {\n"
     "  logits = dense(x, 4)\n"
     "  output probs = softmax(logits)\n"
     "  loss = cross_entropy(logits, label)\n"
     "}\n"
     "train ce {\n  minimize loss\n  optimizer adam(lr = 0.01)\n}\n"},
    {"soft",
     "import nn\n"
     "model soft(x: f32[2, 3, 8], t: f32[6, 4]) {\n"
     "  h = layer_norm(dense(x, 8))\n"
     "  logits = reshape(dense(h, 4), [6, 4])\n"
     "  output lp = log_softmax(logits)\n"
     "  output m = max(logits, axis = 1)\n"
     "  loss = cross_entropy(logits, softmax(t)) + 0.5 * mse(h, x)"
     " + 0.1 * mean(max(h, axis = -1))\n"
     "}\n"
     "train soft {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n"},
    {"nll",
     "import nn\n"
     "model nll(x: f32[5, 3], label: i32[5]) {\n"
     "  lp = log_softmax(dense(x, 3) * 2.0)\n"
     "  output p = exp(lp)\n"
     "  loss = nll(lp, label) + mean(sum(softmax(x) * x, axis = 1))\n"
     "}\n"
     "train nll {\n  minimize loss\n  optimizer momentum(lr = 0.1, momentum = 0.9)\n}\n"},
    {"attn",
     "import nn\n"
     "model attn(x: f32[2, 3, 4], label: i32[6]) {\n"
     "  h = transformer_encoder_block(x, 2, 8, causal_mask(3))\n"
     "  logits = reshape(dense(h, 3), [6, 3])\n"
     "  output probs = softmax(logits)\n"
     "  loss = cross_entropy(logits, label)\n"
     "}\n"
     /* sgd, not adam: the key bias has a zero gradient (softmax is shift invariant), and
      * adam would scale its f32 rounding noise up to the learning rate */
     "train attn {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n"},
    {"bn",
     "import nn\n"
     "model bn(x: f32[2, 3, 6, 6], label: i32[2]) {\n"
     "  c = relu(batchnorm(conv2d(x, 4, 3)))\n"
     "  logits = dense(reshape(c, [2, 64]), 5)\n"
     "  output probs = softmax(logits)\n"
     "  loss = cross_entropy(logits, label)\n"
     "}\n"
     "train bn {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n"},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static Module *compile(const Case *k, int opt, bool f64) {
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  if (f64) o.float_dtype = DT_F64;
  Module *m = frontend_compile("rows.lathe", k->source, &o, &d);
  ck_assert_msg(m != NULL, "%s: %s", k->name, diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.opt_level = opt;
  c.want_grad = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s: %s", k->name, diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry %s", name);
  return NULL;
}

/* whether some group of g holds a log_softmax, a reduction and a rank-0 member */
static bool has_loss_kernel(const Graph *g) {
  for (uint32_t grp = 0; grp < g->n_nodes; grp++) {
    bool lsm = false, red = false, scal = false;
    for (uint32_t id = grp; id < g->n_nodes; id++) {
      const Node *n = &g->nodes[id];
      if (n->group != (int32_t)grp) continue;
      lsm |= n->op == OP_LOG_SOFTMAX;
      red |= n->op == OP_SUM && n->shape.rank > 0;
      scal |= n->shape.rank == 0;
    }
    if (lsm && red && scal) return true;
  }
  return false;
}

typedef struct Data {
  Tensor in[4], params[64], states[128];
} Data;

static void data_init(Data *x, const Module *m) {
  memset(x, 0, sizeof *x);
  ck_assert(m->n_inputs <= 4 && m->n_params <= 64 && m->n_states <= 128);
  for (int i = 0; i < m->n_inputs; i++) {
    ck_assert(tensor_alloc(&x->in[i], m->inputs[i].dtype, &m->inputs[i].shape));
    bool ints = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&x->in[i], (uint64_t)i + 5, ints ? 0 : -2, ints ? 2.99 : 2);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 7, &x->params[i]);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 7, &x->states[i]);
}

static void data_fini(Data *x, const Module *m) {
  for (int i = 0; i < m->n_inputs; i++) tensor_free(&x->in[i]);
  for (int i = 0; i < m->n_params; i++) tensor_free(&x->params[i]);
  for (int i = 0; i < m->n_states; i++) tensor_free(&x->states[i]);
}

/* the reference evaluator on entry `name` of a and of b: same outputs (by name) */
static void expect_same_eval(const Module *a, const Module *b, const char *name, const Data *x,
                             double rtol) {
  const Graph *ga = entry(a, name), *gb = entry(b, name);
  ck_assert_int_eq(ga->n_outputs, gb->n_outputs);
  Diag d;
  diag_init(&d);
  Tensor *oa = calloc((size_t)ga->n_outputs, sizeof *oa);
  Tensor *ob = calloc((size_t)gb->n_outputs, sizeof *ob);
  ck_assert_msg(ir_eval(ga, x->in, x->params, x->states, oa, NULL, &d), "%s", diag_text(&d));
  ck_assert_msg(ir_eval(gb, x->in, x->params, x->states, ob, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < ga->n_outputs; i++) {
    int j = 0;
    while (j < gb->n_outputs && (strcmp(ga->outputs[i].name, gb->outputs[j].name) != 0 ||
                                 ga->outputs[i].kind != gb->outputs[j].kind))
      j++;
    ck_assert_msg(j < gb->n_outputs, "%s: output %s", name, ga->outputs[i].name);
    ck_assert_int_eq(shape_numel(&oa[i].shape), shape_numel(&ob[j].shape));
    for (int64_t e = 0; e < shape_numel(&oa[i].shape); e++) {
      double u = tensor_get(&oa[i], e), v = tensor_get(&ob[j], e);
      double scale = fabs(u) > 1 ? fabs(u) : 1;
      ck_assert_msg(fabs(u - v) <= rtol * scale, "%s %s[%lld]: -O0 %.17g, -O3 %.17g", name,
                    ga->outputs[i].name, (long long)e, u, v);
    }
  }
  for (int i = 0; i < ga->n_outputs; i++) tensor_free(&oa[i]);
  for (int i = 0; i < gb->n_outputs; i++) tensor_free(&ob[i]);
  free(oa);
  free(ob);
  diag_fini(&d);
}

static void check_case(const Case *k, bool f64) {
  double rtol = f64 ? 1e-10 : 1e-4;
  Module *o3 = compile(k, 3, f64), *o0 = compile(k, 0, f64);
  const Graph *t3 = entry(o3, "train"), *t0 = entry(o0, "train");
  ck_assert_msg(has_loss_kernel(t3), "%s: no fused loss kernel at -O3", k->name);
  ck_assert(!has_loss_kernel(t0));
  if (strcmp(k->name, "bn") == 0) { /* folded: forward has no division at the conv's shape */
    const Graph *f = entry(o3, "forward");
    for (uint32_t id = 0; id < f->n_nodes; id++)
      ck_assert(f->nodes[id].op != OP_DIV || f->nodes[id].shape.rank != 4 ||
                f->nodes[id].shape.dim[0] != 2);
  }
  int32_t *ko = malloc((t0->n_nodes + t3->n_nodes + 2) * sizeof *ko);
  int32_t k0 = graph_fill_kernels(t0, ko), k3 = graph_fill_kernels(t3, ko);
  free(ko);
  ck_assert_msg(k3 * 2 <= k0, "%s: %d kernels at -O3, %d at -O0", k->name, k3, k0);
  Data x;
  data_init(&x, o3);
  const char *names[] = {"forward", "grad", "evaluate", "train"};
  for (int i = 0; i < 4; i++)
    expect_same_eval(o0, o3, names[i], &x, rtol);
  cgh_check_module(o3, x.in, x.params, x.states, rtol);
  data_fini(&x, o3);
  module_free(o3);
  module_free(o0);
}

START_TEST(test_rows_f32) { check_case(&cases[_i], false); }
END_TEST

START_TEST(test_rows_f64) { check_case(&cases[_i], true); }
END_TEST

/* Issue 5's targets on examples/cnn.lathe's train step: at least 2x fewer kernels at -O3 than
 * at -O0, and an -O3 workspace of at most half the intermediates of the step (every buffer
 * the -O0 plan places). */
START_TEST(test_cnn_targets) {
  char *src = test_read_file("examples/cnn.lathe");
  ck_assert(src != NULL);
  Case k = {"cnn", src};
  Module *m3 = compile(&k, 3, false), *m0 = compile(&k, 0, false);
  const Graph *g0 = entry(m0, "train"), *g3 = entry(m3, "train");
  int32_t *kk = malloc((g0->n_nodes + g3->n_nodes + 2) * sizeof *kk);
  int32_t k0 = graph_fill_kernels(g0, kk), k3 = graph_fill_kernels(g3, kk);
  PlanBuffer *b = malloc((g0->n_nodes + 1) * sizeof *b);
  int64_t intermediates = 0;
  graph_fill_buffers(g0, b, &intermediates);
  ck_assert_msg(2 * k3 <= k0, "kernels: -O0 %d, -O3 %d", k0, k3);
  ck_assert_msg(g3->workspace_bytes * 2 <= intermediates, "arena %lld vs %lld intermediates",
                (long long)g3->workspace_bytes, (long long)intermediates);
  ck_assert(has_loss_kernel(g3));
  free(kk);
  free(b);
  free(src);
  module_free(m3);
  module_free(m0);
}
END_TEST

static Suite *rows_suite(void) {
  Suite *s = suite_create("passes_rows");
  TCase *tc = tcase_create("rows");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_rows_f32, 0, N_CASES);
  tcase_add_loop_test(tc, test_rows_f64, 0, N_CASES);
  tcase_add_test(tc, test_cnn_targets);
  suite_add_tcase(s, tc);
  return s;
}

int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return 2;
  return test_run_suite(rows_suite());
}
