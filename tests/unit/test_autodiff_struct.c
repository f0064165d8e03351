/* tests/unit/test_autodiff_struct.c — VJP rules of the issue-4 ops against central finite
 * differences in f64, at two levels:
 *   - IR: loss = sum(op(params...) * R) for erf, where, slice, unslice, gather, scatter_add
 *     (same method as test_autodiff_gradcheck.c);
 *   - lathe: small models compiled with frontend_compile at --dtype f64, the "grad" entry of
 *     passes_run_module checked against finite differences of its own loss output. These
 *     cover the composite builtins (gelu, elu, softplus, leaky_relu, clamp, concat, split,
 *     pad, indexing, embedding) and the lib/nn.lathe losses and Transformer blocks.
 * Error measure: |a - b| / max(1, |a|, |b|) <= 1e-6 (see test_autodiff_gradcheck.c).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

#define H 1e-6
#define TOL 1e-6
#define MAXP 3

static const SrcLoc L = {"struct.lathe", 4, 2};
static Diag *D;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64, [0, 1) */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* ---- IR level ---- */

static NodeId const_data(Graph *g, DType t, const Shape *s, const double *values) {
  int64_t n = shape_numel(s);
  double *data = arena_alloc(&g->arena, sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) data[i] = values ? values[i] : 2.0 * urand() - 1.0;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  at.constant.shape = *s;
  at.constant.data = data;
  return graph_add(g, OP_CONST, NULL, 0, &at, L, D);
}

static NodeId add(Graph *g, OpKind op, const NodeId *in, int n, const NodeAttr *attr) {
  return graph_add(g, op, in, n, attr, L, D);
}

static NodeAttr window(int rank, const int *begin, const int *step, const int *dim) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  for (int i = 0; i < rank; i++)
    a.slice.begin[i] = begin[i], a.slice.step[i] = step[i], a.slice.dim[i] = dim[i];
  return a;
}

static const double IDS[6] = {3, 0, 3, 4, 1, 3}; /* repeats: scatter_add must sum them */

typedef NodeId (*BuildFn)(Graph *g, const NodeId *p);
typedef struct Case {
  const char *name;
  int n;
  int rank[MAXP];
  int64_t dims[MAXP][4];
  BuildFn build;
} Case;

static NodeId c_erf(Graph *g, const NodeId *p) { return add(g, OP_ERF, p, 1, NULL); }
static NodeId c_where(Graph *g, const NodeId *p) {
  Shape cs = shape_make(2, (int64_t[]){3, 1});
  NodeId c = const_data(g, DT_F64, &cs, (double[]){1, 0, -2});
  return add(g, OP_WHERE, (NodeId[]){c, p[0], p[1]}, 3, NULL); /* [3,1] ? [3,4] : [4] */
}
static NodeId c_slice(Graph *g, const NodeId *p) {
  NodeAttr a = window(2, (int[]){1, 0}, (int[]){2, 3}, (int[]){2, 2});
  return add(g, OP_SLICE, p, 1, &a); /* [5,6] rows 1,3 cols 0,3 */
}
static NodeId c_unslice(Graph *g, const NodeId *p) {
  NodeAttr a = window(2, (int[]){0, 1}, (int[]){2, 2}, (int[]){5, 7});
  return add(g, OP_UNSLICE, p, 1, &a); /* [3,3] into [5,7] */
}
static NodeId c_gather(Graph *g, const NodeId *p) {
  Shape is = shape_make(2, (int64_t[]){2, 3});
  NodeId ids = const_data(g, DT_I32, &is, IDS);
  return add(g, OP_GATHER, (NodeId[]){p[0], ids}, 2, NULL); /* [5,3] -> [2,3,3] */
}
static NodeId c_scatter(Graph *g, const NodeId *p) {
  Shape is = shape_make(2, (int64_t[]){2, 3});
  NodeId ids = const_data(g, DT_I64, &is, IDS);
  NodeAttr a = {.gather = {5}};
  return add(g, OP_SCATTER_ADD, (NodeId[]){p[0], ids}, 2, &a); /* [2,3,2] -> [5,2] */
}
/* slice then unslice then slice: adjoints of adjoints */
static NodeId c_chain(Graph *g, const NodeId *p) {
  NodeAttr u = window(2, (int[]){1, 1}, (int[]){1, 2}, (int[]){4, 8});
  NodeId big = add(g, OP_UNSLICE, p, 1, &u); /* [3,4] -> [4,8] */
  NodeAttr s = window(2, (int[]){0, 1}, (int[]){3, 1}, (int[]){2, 6});
  NodeId e = add(g, OP_EXP, &big, 1, NULL);
  return add(g, OP_SLICE, &e, 1, &s);
}

static NodeId c_dropout(Graph *g, const NodeId *p) {
  NodeAttr a;
  memset(&a, 0, sizeof a);
  a.random.stream = 5;
  a.random.p = 0.4;
  NodeId seed = graph_add_scalar(g, DT_F64, 977, L), step = graph_add_scalar(g, DT_F64, 2, L);
  NodeId e = add(g, OP_EXP, p, 1, NULL);
  return add(g, OP_DROPOUT, (NodeId[]){e, seed, step}, 3, &a);
}

static const Case cases[] = {
    {"erf", 1, {2}, {{3, 4}}, c_erf},
    {"where broadcast", 2, {2, 1}, {{3, 4}, {4}}, c_where},
    {"slice strided", 1, {2}, {{5, 6}}, c_slice},
    {"unslice strided", 1, {2}, {{3, 3}}, c_unslice},
    {"gather repeated ids", 1, {2}, {{5, 3}}, c_gather},
    {"scatter_add", 1, {3}, {{2, 3, 2}}, c_scatter},
    {"unslice-exp-slice", 1, {2}, {{3, 4}}, c_chain},
    {"dropout", 1, {2}, {{4, 5}}, c_dropout},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

static const Tensor *states_now; /* the model's states during a lathe-level check */

static double loss_of(const Graph *g, const Tensor *in, const Tensor *params, int loss_out) {
  Tensor outs[64];
  ck_assert_int_le(g->n_outputs, 64);
  ck_assert_msg(ir_eval(g, in, params, states_now, outs, NULL, D), "eval: %s", diag_text(D));
  double l = tensor_get(&outs[loss_out], 0);
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  return l;
}

/* compares output `grad_out` of g (gradient of params[i]) with finite differences */
static void check_grad(const char *name, const Graph *g, const Tensor *in, Tensor *params, int i,
                       int loss_out, const Tensor *grad) {
  for (int64_t e = 0; e < shape_numel(&params[i].shape); e++) {
    double x = tensor_get(&params[i], e);
    tensor_set(&params[i], e, x + H);
    double up = loss_of(g, in, params, loss_out);
    tensor_set(&params[i], e, x - H);
    double down = loss_of(g, in, params, loss_out);
    tensor_set(&params[i], e, x);
    double fd = (up - down) / (2 * H), an = tensor_get(grad, e);
    double err = fabs(an - fd) / fmax(1.0, fmax(fabs(an), fabs(fd)));
    ck_assert_msg(err <= TOL, "%s: d/dparam%d[%lld]: autodiff %.12g vs finite difference %.12g",
                  name, i, (long long)e, an, fd);
  }
}

START_TEST(test_ir_gradcheck) {
  const Case *k = &cases[_i];
  Diag d;
  diag_init(&d);
  D = &d;
  Module *m = module_new("t");
  Tensor params[MAXP];
  for (int i = 0; i < k->n; i++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", i);
    Shape s = shape_make(k->rank[i], k->dims[i]);
    module_add_param(m, name, DT_F64, &s, (InitSpec){INIT_ZEROS, 0, 0}, L);
    tensor_alloc(&params[i], DT_F64, &s);
    for (int64_t e = 0; e < shape_numel(&s); e++) tensor_set(&params[i], e, 2 * urand() - 1);
  }
  Graph *g = graph_new(m, "grad");
  NodeId p[MAXP];
  for (int i = 0; i < k->n; i++) p[i] = graph_add_source(g, OP_PARAM, i, L);
  NodeId y = k->build(g, p);
  ck_assert_msg(y != IR_NONE, "%s: %s", k->name, diag_text(&d));
  Shape ys = graph_node(g, y)->shape;
  NodeId prod = graph_add_binary(g, OP_MUL, y, const_data(g, DT_F64, &ys, NULL), L, &d);
  NodeAttr r;
  memset(&r, 0, sizeof r);
  r.reduce.axes = (1u << ys.rank) - 1;
  graph_add_output(g, "loss", add(g, OP_SUM, &prod, 1, &r), OUT_LOSS, -1);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_autodiff(g, &c), "%s: autodiff: %s", k->name, diag_text(&d));
  ck_assert_msg(ir_verify(g, &d), "%s: %s", k->name, diag_text(&d));
  Tensor outs[MAXP + 1];
  ck_assert_msg(ir_eval(g, NULL, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < k->n; i++) {
    ck_assert(shape_equal(&outs[1 + i].shape, &params[i].shape));
    check_grad(k->name, g, NULL, params, i, 0, &outs[1 + i]);
  }
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  for (int i = 0; i < k->n; i++) tensor_free(&params[i]);
  pass_ctx_fini(&c);
  graph_free(g);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* ---- lathe level ---- */

typedef struct LatheCase {
  const char *name;
  const char *source; /* a model with inputs, params, a `loss` and a train block */
  int label_mod;      /* integer inputs are filled with values in [0, label_mod) */
} LatheCase;

#define TRAIN "\ntrain m {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n"

static const LatheCase lathe_cases[] = {
    {"activations",
     "import nn\nmodel m(x: f32[3, 4]) {\n"
     "  h = dense(x, 5)\n"
     "  a = gelu(h) + gelu(h, approximate = true) + 0.5 * elu(h, alpha = 1.5)\n"
     "  b = softplus(h) + leaky_relu(h, alpha = 0.2) + clamp(h, min = -0.3, max = 0.4)\n"
     "  c = where(h > 0.1, h * h, erf(h)) + step(h) * h\n"
     "  loss = mean((a + b + c) * (a - b))\n}" TRAIN, 0},
    {"concat split index pad",
     "import nn\nmodel m(x: f32[2, 6]) {\n"
     "  h = tanh(dense(x, 6))\n"
     "  a, b, c = split(h, 3)\n"
     "  p, q = split(h, [4, 2], axis = 1)\n"
     "  j = concat([a * b, c, q, h[:, 1:6:2]], axis = 1)\n"
     "  k = pad(j, [1, 0, 0, 2], value = 0.5) * pad(j, [0, 1, 2, 0])\n"
     "  r = h[1, ::2] * h[0, 1::2] + sum(p[-1:, :3])\n"
     "  loss = sum(k * k) + sum(r * r) + sum(concat([h, x], axis = 0))\n}" TRAIN, 0},
    {"embedding and gather indexing",
     "import nn\nmodel m(ids: i32[2, 3], x: f32[5, 3]) {\n"
     "  e = embed(ids, 5, 4)\n"
     "  t = dense(x, 4)\n"
     "  g = t[ids] * e\n"
     "  loss = sum(tanh(dense(g, 3)))\n}" TRAIN, 5},
    {"losses",
     "import nn\nmodel m(x: f32[4, 3], label: i32[4]) {\n"
     "  z = dense(x, 3)\n"
     "  t = softmax(dense(x, 3))\n"
     "  a = cross_entropy(z, label) + soft_cross_entropy(z, t) + nll(log_softmax(z), label)\n"
     "  b = binary_cross_entropy(sigmoid(z), t) + binary_cross_entropy_with_logits(z, t)\n"
     "  loss = a + b + kl_normal(z, t) + mse(z, t)\n}" TRAIN, 3},
    {"dropout and noise (training-mode gradient)",
     "import nn\nmodel m(x: f32[3, 4]) {\n"
     "  h = dropout(tanh(dense(x, 5)), 0.3) + 0.1 * randn([3, 5]) * rand([5])\n"
     "  loss = mean(h * h)\n}" TRAIN, 0},
    {"transformer encoder and decoder blocks",
     "import nn\nmodel m(x: f32[2, 3, 4], y: f32[2, 3, 4]) {\n"
     "  pe = positional_embedding(x)\n"
     "  enc = transformer_encoder_block(pe, 2, 6, fill([3, 3], 0.0))\n"
     "  dec = transformer_decoder_block(y, enc, 2, 6, causal_mask(3))\n"
     "  norm = layer_norm(dec)\n"
     "  loss = mse(dense(norm, 4), x)\n}" TRAIN, 0},
    /* issue 22 (ops1): the math builtins, cross_entropy's label_smoothing, avg_pool2d's
     * count_include_pad (argmax/argmin feed a product: their own derivative is zero) */
    {"sin cos silu logsumexp min var std",
     "import nn\nmodel m(x: f32[3, 4]) {\n"
     "  h = dense(x, 5)\n"
     "  a = sin(h) * cos(2 * h) + silu(h) + logsumexp(h, axis = 1, keepdims = true)\n"
     "  b = logsumexp(h) + min(h, 0) * var(h, 0) + std(h, axis = 1, keepdims = true)\n"
     "  c = min(h) + var(h, (0, 1), correction = 0)\n"
     "  loss = mean(a * b) + c\n}" TRAIN, 0},
    {"cumsum argmax broadcast_to literals",
     "import nn\nmodel m(x: f32[3, 4]) {\n"
     "  h = tanh(dense(x, 5))\n"
     "  a = cumsum(h, 1) * cumsum(h, 0, exclusive = true) + cumsum(h, 1, reverse = true)\n"
     "  b = cumsum(h, -1, exclusive = true, reverse = true) * [1.0, -2, 0.5, 3, 1]\n"
     "  k = cast(argmax(h, 1, keepdims = true), f32) + cast(argmin(h, axis = 0), f32)\n"
     "  e = broadcast_to(reshape(h[:, 1], [3, 1]), [2, 3, 5]) + expand(h[0], [-1])\n"
     "  loss = mean(a * b * k) + mean(e * e)\n}" TRAIN, 0},
    {"label smoothing and count_include_pad",
     "import nn\nmodel m(x: f32[4, 3], label: i32[4], img: f32[2, 1, 5, 5]) {\n"
     "  z = dense(x, 3)\n"
     "  t = softmax(dense(x, 3))\n"
     "  p = avg_pool2d(tanh(conv2d(img, 2, 3, padding = 1)), 3, stride = 2, padding = 1,\n"
     "                 count_include_pad = false)\n"
     "  loss = (cross_entropy(z, label, label_smoothing = 0.1) +\n"
     "          cross_entropy(z, t, label_smoothing = 0.3) + mean(p * p))\n}" TRAIN, 3},
};
enum { N_LATHE = sizeof lathe_cases / sizeof lathe_cases[0] };

static void fill_inputs(const Module *m, Tensor *in, int label_mod) {
  for (int i = 0; i < m->n_inputs; i++) {
    const TensorDecl *dcl = &m->inputs[i];
    ck_assert(tensor_alloc(&in[i], dcl->dtype, &dcl->shape));
    for (int64_t e = 0; e < shape_numel(&dcl->shape); e++) {
      double u = urand();
      tensor_set(&in[i], e, dtype_is_float(dcl->dtype) ? 2 * u - 1 : floor(u * label_mod));
    }
  }
}

static void lathe_gradcheck(const LatheCase *k) {
  Diag d;
  diag_init(&d);
  D = &d;
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = DT_F64;
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  Module *m = frontend_compile("case.lathe", k->source, &o, &d);
  ck_assert_msg(m != NULL, "%s: %s", k->name, diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_grad = true;
  c.want_train = false;
  ck_assert_msg(passes_run_module(m, &c), "%s: %s", k->name, diag_text(&d));
  Graph *g = NULL;
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, "grad") == 0) g = m->entries[i];
  ck_assert_msg(g != NULL, "%s: no grad entry", k->name);
  Tensor in[16], params[64], states[8], outs[64];
  ck_assert(m->n_inputs <= 16 && m->n_params <= 64 && m->n_states <= 8 && g->n_outputs <= 64);
  fill_inputs(m, in, k->label_mod);
  for (int i = 0; i < m->n_params; i++) ir_init_tensor(&m->params[i], 7, &params[i]);
  for (int i = 0; i < m->n_states; i++) ir_init_tensor(&m->states[i], 7, &states[i]);
  states_now = states;
  ck_assert_msg(ir_eval(g, in, params, states, outs, NULL, &d), "%s: %s", k->name,
                diag_text(&d));
  int loss_out = -1, n_grads = 0;
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].kind == OUT_LOSS) loss_out = i;
  ck_assert_int_ge(loss_out, 0);
  ck_assert(isfinite(tensor_get(&outs[loss_out], 0)));
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_GRAD) continue;
    n_grads++;
    check_grad(k->name, g, in, params, g->outputs[i].target, loss_out, &outs[i]);
  }
  ck_assert_int_eq(n_grads, m->n_params);
  for (int i = 0; i < g->n_outputs; i++) tensor_free(&outs[i]);
  for (int i = 0; i < m->n_inputs; i++) tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++) tensor_free(&params[i]);
  for (int i = 0; i < m->n_states; i++) tensor_free(&states[i]);
  states_now = NULL;
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}

START_TEST(test_lathe_gradcheck) { lathe_gradcheck(&lathe_cases[_i]); }
END_TEST

static Suite *autodiff_struct_suite(void) {
  Suite *s = suite_create("autodiff_struct");
  TCase *tc = tcase_create("gradcheck");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_ir_gradcheck, 0, N_CASES);
  tcase_add_loop_test(tc, test_lathe_gradcheck, 0, N_LATHE);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(autodiff_struct_suite()); }
