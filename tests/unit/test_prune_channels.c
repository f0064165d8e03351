/* tests/unit/test_prune_channels.c — passes/prune_channels.c: output channels whose baked
 * weights are all zero leave the producer, the chain after it and the consumer.
 *
 * Each case builds a small forward graph of constants (weights with chosen zero channels),
 * evaluates it with the reference evaluator on a fixed input, runs prune_channels then dce,
 * verifies the IR, checks the shapes and the recorded decision (`pruned=[before, folded]`),
 * and evaluates again: bit-for-bit equal when no constant was folded (the removed terms were
 * exact zeros), within 1e-6 relative when one was (the folded bias is rounded once). Cases:
 * conv -> bias -> batch-norm scale/shift -> relu -> max_pool -> flatten -> dense; conv into
 * conv (a folded constant; kept instead when the second conv pads); an MLP; a sigmoid that
 * makes a zero channel 0.5; a residual add, a second reader and a concat (kept); nothing to
 * remove (the IR text unchanged); every channel zero (one stays).
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/build.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

typedef struct Case {
  Module *m;
  Builder b;
  Diag d;
} Case;

static void case_init(Case *t, int rank, const int64_t *dims) {
  diag_init(&t->d);
  t->m = module_new("t");
  t->m->model = graph_new(t->m, "forward");
  Shape s = shape_make(rank, dims);
  module_add_input(t->m, "x", DT_F32, &s, (SrcLoc){0});
  t->b = build_init(t->m->model, &t->d, (SrcLoc){0});
}

static void case_fini(Case *t) {
  module_free(t->m);
  diag_fini(&t->d);
}

/* a constant of the given shape: values[i] = f(i) with a few zeroed channel rules by caller */
static NodeId constant(Case *t, int rank, const int64_t *dims, const double *values) {
  Shape s = shape_make(rank, dims);
  return build_const_data(&t->b, DT_F32, &s, values);
}

/* deterministic values in [-1, 1), never 0 */
static double *pattern(int64_t n, int seed) {
  double *v = malloc(sizeof *v * (size_t)n);
  for (int64_t i = 0; i < n; i++)
    v[i] = ((double)((i * 37 + seed * 101) % 97) + 0.5) / 48.5 - 1.0;
  return v;
}

static NodeId conv(Case *t, NodeId x, NodeId w, int pad) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.conv.stride[0] = a.conv.stride[1] = 1;
  a.conv.dilation[0] = a.conv.dilation[1] = 1;
  for (int i = 0; i < 4; i++)
    a.conv.pad[i] = pad;
  a.conv.groups = 1;
  NodeId in[2] = {x, w};
  return build_node(&t->b, OP_CONV2D, in, 2, &a);
}

static NodeId max_pool(Case *t, NodeId x) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.conv.stride[0] = a.conv.stride[1] = 2;
  a.conv.dilation[0] = a.conv.dilation[1] = 1;
  a.conv.kernel[0] = a.conv.kernel[1] = 2;
  a.conv.groups = 1;
  return build_node(&t->b, OP_MAX_POOL2D, &x, 1, &a);
}

/* evaluates the module's forward graph on its input x (pattern 7); outs[0] */
static Tensor eval_output(Case *t) {
  const Graph *g = t->m->model;
  Tensor in;
  tensor_alloc(&in, DT_F32, &t->m->inputs[0].shape);
  double *v = pattern(shape_numel(&in.shape), 7);
  for (int64_t i = 0; i < shape_numel(&in.shape); i++)
    tensor_set(&in, i, v[i]);
  free(v);
  Tensor outs[4];
  ck_assert_msg(ir_eval(g, &in, NULL, NULL, outs, NULL, &t->d), "%s", diag_text(&t->d));
  for (int i = 1; i < g->n_outputs; i++)
    tensor_free(&outs[i]);
  tensor_free(&in);
  return outs[0];
}

/* runs prune_channels and dce, verified; returns whether the IR text changed */
static bool run_pass(Case *t) {
  ck_assert_msg(!t->b.failed, "%s", diag_text(&t->d));
  char *before = ir_print(t->m->model);
  PassCtx c;
  pass_ctx_init(&c, &t->d);
  ck_assert_msg(pass_prune_channels(t->m->model, &c), "%s", diag_text(&t->d));
  ck_assert_msg(ir_verify(t->m->model, &t->d), "%s", diag_text(&t->d));
  ck_assert_msg(pass_dce(t->m->model, &c), "%s", diag_text(&t->d));
  ck_assert_msg(ir_verify(t->m->model, &t->d), "%s", diag_text(&t->d));
  pass_ctx_fini(&c);
  char *after = ir_print(t->m->model);
  bool changed = strcmp(before, after) != 0;
  free(before);
  free(after);
  return changed;
}

/* exact: bit-for-bit; else within rel relative (of the largest magnitude) */
static void assert_same(const Tensor *a, const Tensor *b, double rel) {
  ck_assert(shape_equal(&a->shape, &b->shape));
  int64_t n = shape_numel(&a->shape);
  double scale = 0;
  for (int64_t i = 0; i < n; i++)
    scale = fmax(scale, fabs(tensor_get(a, i)));
  for (int64_t i = 0; i < n; i++) {
    double x = tensor_get(a, i), y = tensor_get(b, i);
    if (rel == 0)
      ck_assert_msg(x == y, "element %lld: %.9g vs %.9g", (long long)i, x, y);
    else
      ck_assert_msg(fabs(x - y) <= rel * scale, "element %lld: %.9g vs %.9g", (long long)i, x, y);
  }
}

/* the first node of op `op` (counting from 0: which = 0, 1, ...) */
static const Node *nth(const Case *t, OpKind op, int which) {
  const Graph *g = t->m->model;
  for (NodeId id = 0; id < g->n_nodes; id++)
    if (g->nodes[id].op == op && which-- == 0) return &g->nodes[id];
  ck_abort_msg("no %s number %d", ir_ops[op].name, which);
  return NULL;
}

/* x [2, 2, 6, 6] -> conv 4 (channels 1 and 3 zero) + bias -> * scale + shift (batch norm's
 * inference form) -> relu -> max_pool -> flatten [2, 16] -> dense 3. The bias and shift make
 * channel 1 relu(-0.5 * 2 + 0.25) = 0 and channel 3 relu(0.4 * 2 + shift3), which is 0 when
 * `fold` is false and 0.9 otherwise. */
static void build_conv_chain(Case *t, bool fold) {
  int64_t xd[4] = {2, 2, 6, 6}, wd[4] = {4, 2, 3, 3}, bd[3] = {4, 1, 1}, sd[4] = {1, 4, 1, 1};
  case_init(t, 4, xd);
  Builder *b = &t->b;
  NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
  double *w = pattern(72, 1);
  for (int i = 0; i < 18; i++)
    w[18 + i] = 0, w[54 + i] = i % 2 ? 0.0 : -0.0; /* rows 1 and 3 */
  double bias[4] = {0.1, -0.5, 0.2, 0.4}, scale[4] = {1.5, 2, 0.5, 2};
  double shift[4] = {0.05, 0.25, -0.1, fold ? 0.1 : -0.9};
  NodeId y = conv(t, x, constant(t, 4, wd, w), 0);
  y = build_binary(b, OP_ADD, y, constant(t, 3, bd, bias));
  y = build_binary(b, OP_MUL, y, constant(t, 4, sd, scale));
  y = build_binary(b, OP_ADD, constant(t, 4, sd, shift), y); /* the constant on the left */
  y = max_pool(t, build_unary(b, OP_RELU, y));
  Shape flat = shape_make(2, (int64_t[]){2, 16});
  y = build_reshape(b, y, &flat);
  double *w2 = pattern(48, 2), b2[3] = {0.3, -0.2, 0.1};
  y = build_matmul(b, y, constant(t, 2, (int64_t[]){16, 3}, w2), false, false);
  y = build_binary(b, OP_ADD, y, constant(t, 1, (int64_t[]){3}, b2));
  graph_add_output(b->g, "y", y, OUT_VALUE, -1);
  free(w);
  free(w2);
}

START_TEST(test_conv_chain_exact) {
  Case t;
  build_conv_chain(&t, false);
  Tensor want = eval_output(&t);
  ck_assert(run_pass(&t));
  const Node *c = nth(&t, OP_CONV2D, 0), *mm = nth(&t, OP_MATMUL, 0);
  ck_assert_int_eq(c->shape.dim[1], 2);
  ck_assert_int_eq(c->attr.conv.pruned[0], 4);
  ck_assert_int_eq(c->attr.conv.pruned[1], 0);
  ck_assert_int_eq(graph_node(t.m->model, mm->in[0])->shape.dim[1], 8);
  ck_assert_int_eq(graph_node(t.m->model, mm->in[1])->shape.dim[0], 8);
  Tensor got = eval_output(&t);
  assert_same(&want, &got, 0);
  char *text = ir_print(t.m->model);
  ck_assert_msg(strstr(text, "pruned=[4, 0]") != NULL, "%s", text);
  free(text);
  tensor_free(&want);
  tensor_free(&got);
  case_fini(&t);
}
END_TEST

START_TEST(test_conv_chain_fold) {
  Case t;
  build_conv_chain(&t, true);
  Tensor want = eval_output(&t);
  ck_assert(run_pass(&t));
  const Node *c = nth(&t, OP_CONV2D, 0);
  ck_assert_int_eq(c->shape.dim[1], 2);
  ck_assert_int_eq(c->attr.conv.pruned[0], 4);
  ck_assert_int_eq(c->attr.conv.pruned[1], 1); /* channel 3's 0.9 went into the bias */
  Tensor got = eval_output(&t);
  assert_same(&want, &got, 1e-6);
  tensor_free(&want);
  tensor_free(&got);
  case_fini(&t);
}
END_TEST

/* x [1, 3, 7, 7] -> conv 4 (channels 0 and 2 zero; biases 0.5 and -1: relu gives 0.5 and 0)
 * -> relu -> conv 2 with padding `pad` -> + bias -> output */
static void build_conv_conv(Case *t, int pad) {
  int64_t xd[4] = {1, 3, 7, 7};
  case_init(t, 4, xd);
  Builder *b = &t->b;
  NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
  double *w = pattern(108, 3), bias[4] = {0.5, 0.2, -1, 0.3}, *w2 = pattern(72, 4);
  for (int i = 0; i < 27; i++)
    w[i] = w[54 + i] = 0;
  NodeId y = conv(t, x, constant(t, 4, (int64_t[]){4, 3, 3, 3}, w), 0);
  y = build_binary(b, OP_ADD, y, constant(t, 3, (int64_t[]){4, 1, 1}, bias));
  y = build_unary(b, OP_RELU, y);
  y = conv(t, y, constant(t, 4, (int64_t[]){2, 4, 3, 3}, w2), pad);
  y = build_binary(b, OP_ADD, y, constant(t, 3, (int64_t[]){2, 1, 1}, (double[]){0.1, 0.2}));
  graph_add_output(b->g, "y", y, OUT_VALUE, -1);
  free(w);
  free(w2);
}

START_TEST(test_conv_into_conv) {
  for (int pad = 0; pad <= 1; pad++) {
    Case t;
    build_conv_conv(&t, pad);
    Tensor want = eval_output(&t);
    ck_assert(run_pass(&t));
    const Node *c1 = nth(&t, OP_CONV2D, 0), *c2 = nth(&t, OP_CONV2D, 1);
    /* pad 0: both go, channel 0's 0.5 folded; pad 1: the border would read 0, so it stays */
    ck_assert_int_eq(c1->shape.dim[1], pad ? 3 : 2);
    ck_assert_int_eq(c1->attr.conv.pruned[1], pad ? 0 : 1);
    ck_assert_int_eq(graph_node(t.m->model, c2->in[1])->shape.dim[1], pad ? 3 : 2);
    Tensor got = eval_output(&t);
    assert_same(&want, &got, pad ? 0 : 1e-6);
    tensor_free(&want);
    tensor_free(&got);
    case_fini(&t);
  }
}
END_TEST

/* x [3, 5] -> dense 6 (columns 1, 4 zero) -> relu -> dense 4 (column 2 zero) -> act ->
 * dense 2 -> output; biases zero where the columns are */
static void build_mlp(Case *t, OpKind act) {
  int64_t xd[2] = {3, 5};
  case_init(t, 2, xd);
  Builder *b = &t->b;
  NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
  double *w1 = pattern(30, 5), *w2 = pattern(24, 6), *w3 = pattern(8, 7);
  for (int r = 0; r < 5; r++)
    w1[r * 6 + 1] = w1[r * 6 + 4] = 0;
  for (int r = 0; r < 6; r++)
    w2[r * 4 + 2] = 0;
  double b1[6] = {0.1, 0, 0.2, 0.3, 0, 0.1}, b2[4] = {0.2, 0.1, 0, 0.3};
  NodeId y = build_matmul(b, x, constant(t, 2, (int64_t[]){5, 6}, w1), false, false);
  y = build_unary(b, OP_RELU, build_binary(b, OP_ADD, y, constant(t, 1, (int64_t[]){6}, b1)));
  y = build_matmul(b, y, constant(t, 2, (int64_t[]){6, 4}, w2), false, false);
  y = build_unary(b, act, build_binary(b, OP_ADD, y, constant(t, 1, (int64_t[]){4}, b2)));
  y = build_matmul(b, y, constant(t, 2, (int64_t[]){4, 2}, w3), false, false);
  y = build_binary(b, OP_ADD, y, constant(t, 1, (int64_t[]){2}, (double[]){0.5, -0.5}));
  graph_add_output(b->g, "y", y, OUT_VALUE, -1);
  free(w1);
  free(w2);
  free(w3);
}

START_TEST(test_mlp_exact) {
  Case t;
  build_mlp(&t, OP_RELU);
  Tensor want = eval_output(&t);
  ck_assert(run_pass(&t));
  const Node *m0 = nth(&t, OP_MATMUL, 0), *m1 = nth(&t, OP_MATMUL, 1), *m2 = nth(&t, OP_MATMUL, 2);
  ck_assert_int_eq(m0->shape.dim[1], 4);
  ck_assert_int_eq(m0->attr.matmul.pruned[0], 6);
  ck_assert_int_eq(m1->shape.dim[1], 3);
  ck_assert_int_eq(graph_node(t.m->model, m1->in[1])->shape.dim[0], 4);
  ck_assert_int_eq(graph_node(t.m->model, m2->in[1])->shape.dim[0], 3);
  ck_assert_int_eq(m2->attr.matmul.pruned[0], 0); /* its output is the graph's */
  Tensor got = eval_output(&t);
  assert_same(&want, &got, 0);
  tensor_free(&want);
  tensor_free(&got);
  case_fini(&t);
}
END_TEST

/* sigmoid(0) = 0.5: the zero column of the second dense carries a constant, folded */
START_TEST(test_sigmoid_folds) {
  Case t;
  build_mlp(&t, OP_SIGMOID);
  Tensor want = eval_output(&t);
  ck_assert(run_pass(&t));
  const Node *m1 = nth(&t, OP_MATMUL, 1);
  ck_assert_int_eq(m1->shape.dim[1], 3);
  ck_assert_int_eq(m1->attr.matmul.pruned[1], 1);
  Tensor got = eval_output(&t);
  assert_same(&want, &got, 1e-6);
  tensor_free(&want);
  tensor_free(&got);
  case_fini(&t);
}
END_TEST

/* columns [at, at + 4) of a [2, 8] zero tensor hold x [2, 4] (concat's unslice) */
static NodeId unslice(Case *t, NodeId x, int at) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.slice.begin[1] = at;
  a.slice.step[0] = a.slice.step[1] = 1;
  a.slice.dim[0] = 2;
  a.slice.dim[1] = 8;
  return build_node(&t->b, OP_UNSLICE, &x, 1, &a);
}

/* h = relu(x @ w1) with a zero column, then h + x @ w2 (a residual add of two computed
 * values), h + h (read twice), or concat([h, x @ w2]) (the frontend's unslice + add): the
 * channels would have to leave every branch, so they stay */
START_TEST(test_residual_concat_kept) {
  for (int kind = 0; kind < 3; kind++) {
    Case t;
    int64_t xd[2] = {2, 4};
    case_init(&t, 2, xd);
    Builder *b = &t.b;
    NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
    double *w1 = pattern(16, 1), *w2 = pattern(16, 2), *w3 = pattern(16, 3);
    for (int r = 0; r < 4; r++)
      w1[r * 4 + 2] = 0;
    NodeId h = build_matmul(b, x, constant(&t, 2, (int64_t[]){4, 4}, w1), false, false);
    h = build_unary(b, OP_RELU, h);
    NodeId xw = kind == 1
                    ? IR_NONE /* unused: dce would remove it */
                    : build_matmul(b, x, constant(&t, 2, (int64_t[]){4, 4}, w2), false, false);
    NodeId y = kind == 0   ? build_binary(b, OP_ADD, h, xw)
               : kind == 1 ? build_binary(b, OP_ADD, h, h)
                           : build_binary(b, OP_ADD, unslice(&t, h, 0), unslice(&t, xw, 4));
    int64_t rows = kind == 2 ? 8 : 4;
    y = build_matmul(b, y, constant(&t, 2, (int64_t[]){rows, 2}, w3), false, false);
    graph_add_output(b->g, "y", y, OUT_VALUE, -1);
    free(w1);
    free(w2);
    free(w3);
    Tensor want = eval_output(&t);
    ck_assert_msg(!run_pass(&t), "kind %d changed", kind);
    Tensor got = eval_output(&t);
    assert_same(&want, &got, 0);
    tensor_free(&want);
    tensor_free(&got);
    case_fini(&t);
  }
}
END_TEST

/* no zero channel anywhere: the IR text is unchanged */
START_TEST(test_nothing_to_remove) {
  Case t;
  int64_t xd[4] = {1, 2, 5, 5};
  case_init(&t, 4, xd);
  Builder *b = &t.b;
  NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
  double *w = pattern(36, 1), *w2 = pattern(18, 2);
  NodeId y = build_unary(b, OP_RELU, conv(&t, x, constant(&t, 4, (int64_t[]){2, 2, 3, 3}, w), 0));
  y = conv(&t, y, constant(&t, 4, (int64_t[]){1, 2, 3, 3}, w2), 0);
  graph_add_output(b->g, "y", y, OUT_VALUE, -1);
  free(w);
  free(w2);
  ck_assert(!run_pass(&t));
  case_fini(&t);
}
END_TEST

/* every channel zero: one stays (no empty axis), the rest go */
START_TEST(test_all_zero_keeps_one) {
  Case t;
  int64_t xd[2] = {2, 3};
  case_init(&t, 2, xd);
  Builder *b = &t.b;
  NodeId x = graph_add_source(b->g, OP_INPUT, 0, (SrcLoc){0});
  double w1[15] = {0}, *w2 = pattern(10, 2);
  NodeId y = build_matmul(b, x, constant(&t, 2, (int64_t[]){3, 5}, w1), false, false);
  y = build_unary(b, OP_RELU, y);
  y = build_matmul(b, y, constant(&t, 2, (int64_t[]){5, 2}, w2), false, false);
  graph_add_output(b->g, "y", y, OUT_VALUE, -1);
  free(w2);
  Tensor want = eval_output(&t);
  ck_assert(run_pass(&t));
  ck_assert_int_eq(nth(&t, OP_MATMUL, 0)->shape.dim[1], 1);
  Tensor got = eval_output(&t);
  assert_same(&want, &got, 0);
  tensor_free(&want);
  tensor_free(&got);
  case_fini(&t);
}
END_TEST

/* the decision survives the text form: ir_parse(ir_print(g)) prints the same */
START_TEST(test_decision_round_trips) {
  Case t;
  build_conv_chain(&t, true);
  ck_assert(run_pass(&t));
  char *text = ir_print(t.m->model);
  ck_assert_msg(strstr(text, "pruned=[4, 1]") != NULL, "%s", text);
  Module *back = ir_parse(text, "t.ir", &t.d);
  ck_assert_msg(back != NULL, "%s", diag_text(&t.d));
  char *again = ir_print(back->model);
  ck_assert_str_eq(text, again);
  free(again);
  free(text);
  module_free(back);
  case_fini(&t);
}
END_TEST

static Suite *prune_channels_suite(void) {
  Suite *s = suite_create("prune_channels");
  TCase *tc = tcase_create("pass");
  tcase_add_test(tc, test_conv_chain_exact);
  tcase_add_test(tc, test_conv_chain_fold);
  tcase_add_test(tc, test_conv_into_conv);
  tcase_add_test(tc, test_mlp_exact);
  tcase_add_test(tc, test_sigmoid_folds);
  tcase_add_test(tc, test_residual_concat_kept);
  tcase_add_test(tc, test_nothing_to_remove);
  tcase_add_test(tc, test_all_zero_keeps_one);
  tcase_add_test(tc, test_decision_round_trips);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(prune_channels_suite());
}
