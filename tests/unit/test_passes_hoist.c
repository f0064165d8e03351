/* tests/unit/test_passes_hoist.c — the recurrence hoist (passes/hoist.c).
 *
 * One model stacks every recurrent layer of lib/nn.lathe (rnn, gru, lstm_reverse, lstm_last;
 * each later layer's sequence is differentiated, so the backward scans also return dX) plus a
 * hand-written tanh RNN scanning along axis 0. Compiled in f64 with the hoist on and off:
 *   - every entry (forward, train, grad, evaluate) gives the same outputs, loss, gradients and
 *     parameter/state updates under the reference evaluator (the rewrite only reorders sums);
 *   - with the hoist, no scan body keeps a projection x_t @ W of a sequence slice by a captured
 *     weight, nor a weight-gradient sum acc + x_t^T @ dG or bias-gradient sum acc +
 *     sum(dG_t, axis 0), and no backward scan recomputes the
 *     recurrent h_{t-1} @ U of its forward scan; without it, there are some (so the
 *     structural checks can fail);
 *   - the generated C of the hoisted module matches the evaluator (gcc and clang).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen_harness.h"
#include "frontend/frontend.h"
#include "ir/scan.h"
#include "testutil.h"

static const char *SRC =
    "import nn\n"
    "const N = 3\n"
    "const T = 4\n"
    "fn rnn0(xs: f32[T, B, I], hidden: int) -> f32[B, hidden] {\n"
    "  param w: f32[I, hidden]      = glorot_uniform\n"
    "  param u: f32[hidden, hidden] = orthogonal\n"
    "  return scan t in 0..T with (h = zeros(f32[B, hidden])) {\n"
    "    h = tanh(xs[t] @ w + h @ u)\n"
    "  }\n"
    "}\n"
    "model stack(x: f32[N, T, 5], y: f32[T, N, 3], label: i32[N]) {\n"
    "  a = rnn(x, 4)\n"
    "  b = gru(a, 3)\n"
    "  c = lstm_reverse(b, 3)\n"
    "  d = lstm_last(c, 4)\n"
    "  e = rnn0(y, 3)\n"
    "  logits = dense(d, 3) + dense(e, 3)\n"
    "  output probs = softmax(logits)\n"
    "  loss = cross_entropy(logits, label)\n"
    "}\n"
    "train stack {\n"
    "  minimize loss\n"
    "  optimizer adam(lr = 1e-2)\n"
    "}\n";

static Module *build(bool hoist, DType t) {
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.float_dtype = t;
  Module *m = frontend_compile("stack.lathe", SRC, &fo, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  const char *off[] = {"hoist"};
  c.disabled = off;
  c.n_disabled = hoist ? 0 : 1;
  c.verify = true;
  c.want_grad = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "passes: %s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

typedef struct Data {
  Tensor inputs[4], params[32], states[64];
} Data;

static void data_init(Data *t, const Module *m) {
  memset(t, 0, sizeof *t);
  ck_assert_int_le(m->n_inputs, 4);
  ck_assert_int_le(m->n_params, 32);
  ck_assert_int_le(m->n_states, 64);
  for (int i = 0; i < m->n_inputs; i++) {
    tensor_alloc(&t->inputs[i], m->inputs[i].dtype, &m->inputs[i].shape);
    bool labels = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&t->inputs[i], 21 + (uint64_t)i, labels ? 0 : -1, labels ? 3 : 1);
  }
  for (int i = 0; i < m->n_params; i++) ir_init_tensor(&m->params[i], 5, &t->params[i]);
  for (int i = 0; i < m->n_states; i++) {
    tensor_alloc(&t->states[i], m->states[i].dtype, &m->states[i].shape);
    cgh_fill(&t->states[i], 300 + (uint64_t)i, 0.001, 0.01);
  }
}

static void data_fini(Data *t) {
  for (int i = 0; i < 4; i++) tensor_free(&t->inputs[i]);
  for (int i = 0; i < 32; i++) tensor_free(&t->params[i]);
  for (int i = 0; i < 64; i++) tensor_free(&t->states[i]);
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry %s", name);
  return NULL;
}

static void check_same_values(const Graph *ref, const Graph *opt, const Data *t) {
  Diag d;
  diag_init(&d);
  ck_assert_int_eq(ref->n_outputs, opt->n_outputs);
  Tensor *a = calloc((size_t)ref->n_outputs, sizeof *a);
  Tensor *b = calloc((size_t)ref->n_outputs, sizeof *b);
  ck_assert_msg(ir_eval(ref, t->inputs, t->params, t->states, a, NULL, &d), "%s", diag_text(&d));
  ck_assert_msg(ir_eval(opt, t->inputs, t->params, t->states, b, NULL, &d), "%s", diag_text(&d));
  for (int o = 0; o < ref->n_outputs; o++) {
    ck_assert_str_eq(ref->outputs[o].name, opt->outputs[o].name);
    cgh_expect_close(ref->outputs[o].name, a[o].dtype, b[o].data, &a[o], 1e-10);
    tensor_free(&a[o]);
    tensor_free(&b[o]);
  }
  free(a);
  free(b);
  diag_fini(&d);
}

/* the scan-input kind of body node b of scan n, or -1 when it is not a SCAN_ARG */
static int arg_kind(const Node *n, const Graph *body, NodeId b) {
  const Node *bn = graph_node(body, b);
  return bn->op == OP_SCAN_ARG ? scan_input_kind(n, bn->attr.scan_arg.index) : -1;
}

/* per-step matmuls over all scans of g: projections of a sequence slice by a captured
 * weight, carry updates acc + x_t^T @ dG of a sequence slice x_t, per-step outputs dG @ W of
 * a captured W (sequence gradients) */
static void count_patterns(const Graph *g, int *proj, int *accum, int *dseq, int *matmuls) {
  *proj = *accum = *dseq = *matmuls = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (n->op != OP_SCAN) continue;
    const Graph *body = scan_body(g, n);
    for (NodeId b = 0; b < body->n_nodes; b++) {
      const Node *m = graph_node(body, b);
      if (m->op != OP_MATMUL) continue;
      (*matmuls)++;
      if (!m->attr.matmul.trans_a && arg_kind(n, body, m->in[0]) == 1 &&
          arg_kind(n, body, m->in[1]) == 2)
        (*proj)++;
    }
    for (int k = n->attr.scan.n_carry; k < body->n_outputs; k++) {
      const Node *m = graph_node(body, body->outputs[k].node);
      if (m->op == OP_MATMUL && arg_kind(n, body, m->in[1]) == 2) (*dseq)++;
    }
    for (int k = 0; k < n->attr.scan.n_carry; k++) {
      const Node *o = graph_node(body, body->outputs[k].node);
      for (int s = 0; o->op == OP_ADD && s < 2; s++) {
        const Node *m = graph_node(body, o->in[s]);
        if (m->op == OP_MATMUL && m->attr.matmul.trans_a && arg_kind(n, body, m->in[0]) == 1)
          (*accum)++;
      }
    }
  }
}

/* x, or what the RESHAPE x is of */
static NodeId unreshape(const Graph *g, NodeId x) {
  while (graph_node(g, x)->op == OP_RESHAPE) x = graph_node(g, x)->in[0];
  return x;
}

/* whether parent node x is an UNPACK of a scan's stacked carry argument (a saved h_{t-1}) */
static bool saved_carry(const Graph *g, NodeId x) {
  const Node *u = graph_node(g, unreshape(g, x));
  if (u->op != OP_UNPACK || graph_node(g, u->in[0])->op != OP_SCAN) return false;
  const Node *s = graph_node(g, u->in[0]);
  const Graph *body = scan_body(g, s);
  for (int k = s->attr.scan.n_carry; k < body->n_outputs; k++) {
    int64_t off;
    scan_piece(g, s, k, &off);
    if (off == u->attr.unpack.offset)
      return arg_kind(s, body, body->outputs[k].node) == 0;
  }
  return false;
}

/* matmuls that recompute a forward scan's value from its saved carries: in a body, with a
 * sequence slice of them as an operand; in the parent, over all of them (hoisted) */
static int count_recomputed(const Graph *g) {
  int count = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (n->op == OP_MATMUL && (saved_carry(g, n->in[0]) || saved_carry(g, n->in[1]))) {
      count += !n->attr.matmul.trans_a && !n->attr.matmul.trans_b; /* not a gradient */
      continue;
    }
    if (n->op != OP_SCAN) continue;
    const Graph *body = scan_body(g, n);
    for (NodeId b = 0; b < body->n_nodes; b++) {
      const Node *m = graph_node(body, b);
      if (m->op != OP_MATMUL || m->attr.matmul.trans_a || m->attr.matmul.trans_b) continue;
      for (int j = 0; j < 2; j++) {
        const Node *a = graph_node(body, m->in[j]);
        if (arg_kind(n, body, m->in[j]) == 1 && saved_carry(g, n->in[a->attr.scan_arg.index])) {
          count++;
          break;
        }
      }
    }
  }
  return count;
}

/* carry updates acc + sum(dG_t, axis 0) (bias gradients) over all scans of g */
static int count_bias_sums(const Graph *g) {
  int count = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    if (n->op != OP_SCAN) continue;
    const Graph *body = scan_body(g, n);
    for (int k = 0; k < n->attr.scan.n_carry; k++) {
      const Node *o = graph_node(body, body->outputs[k].node);
      for (int s = 0; o->op == OP_ADD && s < 2; s++) {
        const Node *t = graph_node(body, o->in[s]);
        if (t->op == OP_RESHAPE) t = graph_node(body, t->in[0]);
        count += t->op == OP_SUM && t->attr.reduce.axes == 1u;
      }
    }
  }
  return count;
}

START_TEST(test_same_values) {
  Module *on = build(true, DT_F64), *off = build(false, DT_F64);
  ck_assert_int_eq(on->n_entries, off->n_entries);
  Data t;
  data_init(&t, off);
  for (int i = 0; i < off->n_entries; i++)
    check_same_values(off->entries[i], entry(on, off->entries[i]->name), &t);
  data_fini(&t);
  module_free(on);
  module_free(off);
}
END_TEST

START_TEST(test_structure) {
  Module *on = build(true, DT_F32), *off = build(false, DT_F32);
  int proj, accum, dseq, mm, proj0, accum0, dseq0, mm0;
  /* forward: 5 layers, one projection each (the gru's one matmul covers its 3 gates) */
  count_patterns(entry(off, "forward"), &proj0, &accum0, &dseq0, &mm0);
  count_patterns(entry(on, "forward"), &proj, &accum, &dseq, &mm);
  ck_assert_int_eq(proj0, 5);
  ck_assert_int_eq(proj, 0);
  ck_assert_int_eq(mm, mm0 - 5);
  /* train: backward scans also recompute the projections, sum x_t^T dG into dW and (the
   * three layers reading another layer's output) return dX_t = dG_t W^T */
  count_patterns(entry(off, "train"), &proj0, &accum0, &dseq0, &mm0);
  count_patterns(entry(on, "train"), &proj, &accum, &dseq, &mm);
  ck_assert_int_ge(proj0, 10);
  ck_assert_int_ge(accum0, 5);
  ck_assert_int_eq(dseq0, 3);
  ck_assert_int_eq(proj, 0);
  ck_assert_int_eq(accum, 0);
  ck_assert_int_eq(dseq, 0);
  ck_assert_int_lt(mm, mm0 / 2);
  /* the backward scans recompute each layer's recurrent h_{t-1} @ U from the saved h; with
   * the hoist they read the forward scan's own value, stacked out of it, instead */
  int re0 = count_recomputed(entry(off, "train")), re = count_recomputed(entry(on, "train"));
  ck_assert_int_ge(re0, 5);
  ck_assert_int_eq(re, 0);
  /* the bias gradients: summed over the stacked dG after the scans */
  ck_assert_int_ge(count_bias_sums(entry(off, "train")), 4);
  ck_assert_int_eq(count_bias_sums(entry(on, "train")), 0);
  module_free(on);
  module_free(off);
}
END_TEST

START_TEST(test_codegen) {
  Module *m = build(true, DT_F64);
  Data t;
  data_init(&t, m);
  cgh_check_module(m, t.inputs, t.params, t.states, 1e-9);
  data_fini(&t);
  module_free(m);
}
END_TEST

static Suite *hoist_suite(void) {
  Suite *s = suite_create("passes_hoist");
  TCase *tc = tcase_create("hoist");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_same_values);
  tcase_add_test(tc, test_structure);
  tcase_add_test(tc, test_codegen);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(hoist_suite()); }
