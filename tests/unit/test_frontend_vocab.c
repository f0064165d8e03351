/* tests/unit/test_frontend_vocab.c — the issue-22 builtins of frontend/elab_conv1d.c,
 * elab_einsum.c and elab_gather.c (1-D conv and conv_transpose, max_pool1d, avg_pool1d, einsum,
 * gather and scatter_add along an axis, topk, upsample, interpolate; lib/nn.lathe conv1d) against
 * PyTorch: tests/fixtures/vocab/vocab.txt (made by tests/fixtures/make_vocab_fixtures.py)
 * holds the leaves, torch's f64 outputs and the gradients of loss = sum(out * out) / 2 over
 * all outputs. The model below is compiled at --dtype f64; its outputs are evaluated with
 * ir_eval on the model graph and its gradients on the "grad" entry after the whole pipeline
 * (tolerance 1e-10 relative). The generated C of every entry is then checked against the
 * evaluator at f32 (codegen_harness.h, gcc), and malformed calls against their messages.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "tests/unit/codegen_harness.h"

static const char *const src =
    "import nn\n"
    "fn leaf(a: int, b: int, c: int) -> f32[a, b, c] {\n"
    "  param v: f32[a, b, c] = zeros\n"
    "  return v\n"
    "}\n"
    "model vocab(gi: i32[3, 2, 5], si: i32[2, 4, 3]) {\n"
    "  x = leaf(2, 4, 9)\n"
    "  w = leaf(6, 2, 3)\n"
    "  ws = leaf(3, 4, 4)\n"
    "  wt = leaf(4, 3, 3)\n"
    "  a = leaf(2, 3, 4)\n"
    "  b = leaf(2, 4, 5)\n"
    "  c = leaf(2, 5, 4)\n"
    "  u = leaf(1, 3, 1)\n"
    "  v = leaf(1, 1, 5)\n"
    "  g = leaf(3, 4, 5)\n"
    "  sx = leaf(3, 4, 5)\n"
    "  sv = leaf(2, 4, 3)\n"
    "  tk = leaf(3, 4, 6)\n"
    "  im = reshape(leaf(2, 3, 20), [2, 3, 4, 5])\n"
    "  output c1 = conv(x, w, stride = 2, padding = 1, dilation = 2, groups = 2)\n"
    "  output c_same = conv(x, ws, padding = same)\n"
    "  output ct = conv_transpose(x, wt, stride = 2, padding = 1, output_padding = 1)\n"
    "  output mp = max_pool1d(x, 3, stride = 2, padding = 1)\n"
    "  output mp_dil = max_pool1d(x, 2, stride = 1, dilation = 3)\n"
    "  output ap = avg_pool1d(x, 4, stride = 2, padding = 2)\n"
    "  output ap_excl = avg_pool1d(x, 4, stride = 3, padding = 1, count_include_pad = false)\n"
    "  output bmm = einsum(\"bij,bjk->bik\", a, b)\n"
    "  output mixed = einsum(\"bij,bkj->kbi\", a, c)\n"
    "  output outer = einsum(\"i,j->ij\", reshape(u, [3]), reshape(v, [5]))\n"
    "  output inner = einsum(\"bij,bij->\", a, a)\n"
    "  output implicit = einsum(\"bij,bjk\", a, b)\n"
    "  output summed = einsum(\"bij->j\", a)\n"
    "  output perm = einsum(\"b i j -> j b i\", a)\n"
    "  output partial = einsum(equation = \"bij,bjk->ik\", a = a, b = b)\n"
    "  output ell = einsum(\"...ij,...jk->...ik\", a, b)\n"
    "  output ell_sum = einsum(\"b...->...b\", a)\n"
    "  output ell_implicit = einsum(\"b...j,bjk\", a, b)\n"
    "  output ga = gather(g, 1, gi)\n"
    "  output sa = scatter_add(sx, -1, si, sv)\n"
    "  top, top_i = topk(tk, 3, axis = 1)\n"
    "  low, low_i = topk(tk, 2, largest = false)\n"
    "  output tv = top\n"
    "  output sv2 = low\n"
    "  output ti = top_i\n"
    "  output si2 = topk_indices(tk, 2, axis = -1, largest = false)\n"
    "  output cl = conv1d(x, 5, 3, stride = 2, padding = 1)\n"
    "  output up_n2 = upsample(im, 2)\n"
    "  output up_n13 = upsample(im, [1, 3], mode = \"nearest\")\n"
    "  output up_nsize = interpolate(im, size = [7, 3])\n"
    "  output up_n15 = upsample(im, 1.5)\n"
    "  output up_b2 = upsample(im, 2, mode = \"bilinear\")\n"
    "  output up_bac = upsample(im, 2, mode = \"bilinear\", align_corners = true)\n"
    "  output up_bsize = interpolate(im, size = [3, 8], mode = \"bilinear\")\n"
    "  output up_bsize_ac = interpolate(im, [6, 2], mode = \"bilinear\", align_corners = true)\n"
    "  loss = (sum(c1 * c1) + sum(c_same * c_same) + sum(ct * ct) + sum(mp * mp) +\n"
    "          sum(mp_dil * mp_dil) + sum(ap * ap) + sum(ap_excl * ap_excl) + sum(bmm * bmm) +\n"
    "          sum(mixed * mixed) + sum(outer * outer) + inner * inner +\n"
    "          sum(implicit * implicit) + sum(summed * summed) + sum(perm * perm) +\n"
    "          sum(partial * partial) + sum(ga * ga) + sum(sa * sa) +\n"
    "          sum(ell * ell) + sum(ell_sum * ell_sum) + sum(ell_implicit * ell_implicit) +\n"
    "          sum(tv * tv) + sum(sv2 * sv2) + sum(up_n2 * up_n2) + sum(up_n13 * up_n13) +\n"
    "          sum(up_nsize * up_nsize) + sum(up_n15 * up_n15) + sum(up_b2 * up_b2) +\n"
    "          sum(up_bac * up_bac) + sum(up_bsize * up_bsize) +\n"
    "          sum(up_bsize_ac * up_bsize_ac) + sum(cl * cl)) / 2\n"
    "  output total = loss\n"
    "}\n"
    "train vocab {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

typedef struct Entry {
  char name[32];
  int n;
  double *v;
} Entry;

enum { MAX_ENTRIES = 128 };

static int read_fixture(Entry *e) {
  char *text = test_read_file("tests/fixtures/vocab/vocab.txt");
  ck_assert_msg(text != NULL, "missing tests/fixtures/vocab/vocab.txt");
  int count = 0;
  char *p = text;
  while (*p && count < MAX_ENTRIES) {
    char kind[8];
    int used = 0;
    ck_assert(sscanf(p, "%31s %7s %d%n", e[count].name, kind, &e[count].n, &used) == 3);
    p += used;
    e[count].v = malloc(sizeof(double) * (size_t)e[count].n);
    for (int i = 0; i < e[count].n; i++)
      e[count].v[i] = strtod(p, &p);
    while (*p == '\n' || *p == ' ')
      p++;
    count++;
  }
  ck_assert_msg(!*p, "vocab.txt has more than %d tensors", MAX_ENTRIES);
  free(text);
  return count;
}

static const Entry *find(const Entry *e, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(e[i].name, name) == 0) return &e[i];
  ck_abort_msg("fixture has no '%s'", name);
  return NULL;
}

static void expect_entry(const Entry *e, const Tensor *t) {
  ck_assert_msg(e->n == shape_numel(&t->shape), "%s: %d values in torch, %lld in lathe", e->name,
                e->n, (long long)shape_numel(&t->shape));
  for (int k = 0; k < e->n; k++) {
    double got = tensor_get(t, k), want = e->v[k];
    ck_assert_msg(fabs(got - want) <= 1e-10 * fmax(1.0, fabs(want)),
                  "%s[%d]: lathe %.17g vs torch %.17g", e->name, k, got, want);
  }
}

static Module *compile(const char *name, const char *text, DType t, Diag *d) {
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = t;
  char lib[1024];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  o.lib_dir = lib;
  return frontend_compile(name, text, &o, d);
}

static const Graph *entry(const Module *m, const char *name) {
  for (int i = 0; i < m->n_entries; i++)
    if (strcmp(m->entries[i]->name, name) == 0) return m->entries[i];
  ck_abort_msg("no entry '%s'", name);
  return NULL;
}

/* the outputs of the model graph, then the gradients of the grad entry */
static void check_against_torch(Module *m, const Entry *fx, int n_fx, const Tensor *in,
                                const Tensor *params) {
  Diag d;
  diag_init(&d);
  Tensor outs[64];
  ck_assert(m->model->n_outputs <= 64);
  ck_assert_msg(ir_eval(m->model, in, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  for (int i = 0; i < m->model->n_outputs; i++) {
    const char *name = m->model->outputs[i].name;
    expect_entry(find(fx, n_fx, strcmp(name, "total") == 0 ? "loss" : name), &outs[i]);
    tensor_free(&outs[i]);
  }
  const Graph *g = entry(m, "grad");
  ck_assert(g->n_outputs <= 64);
  ck_assert_msg(ir_eval(g, in, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  int n_grads = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind == OUT_GRAD) {
      char name[48];
      snprintf(name, sizeof name, "grad.%s", m->params[g->outputs[i].target].name);
      expect_entry(find(fx, n_fx, name), &outs[i]);
      n_grads++;
    }
    tensor_free(&outs[i]);
  }
  ck_assert_int_eq(n_grads, m->n_params);
  diag_fini(&d);
}

START_TEST(test_vocab_matches_torch) {
  static Entry fx[MAX_ENTRIES];
  int n_fx = read_fixture(fx);
  Diag d;
  diag_init(&d);
  Module *m = compile("vocab.lathe", src, DT_F64, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_grad = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  Tensor in[2], params[16];
  ck_assert(m->n_inputs == 2 && m->n_params == 16);
  for (int i = 0; i < m->n_inputs; i++) {
    const Entry *e = find(fx, n_fx, m->inputs[i].name);
    ck_assert(tensor_alloc(&in[i], DT_I32, &m->inputs[i].shape));
    for (int k = 0; k < e->n; k++)
      tensor_set(&in[i], k, e->v[k]);
  }
  for (int i = 0; i < m->n_params; i++) {
    const Entry *e = find(fx, n_fx, m->params[i].name);
    ck_assert(tensor_alloc(&params[i], DT_F64, &m->params[i].shape));
    ck_assert_int_eq(e->n, shape_numel(&m->params[i].shape));
    for (int k = 0; k < e->n; k++)
      tensor_set(&params[i], k, e->v[k]);
  }
  check_against_torch(m, fx, n_fx, in, params);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  pass_ctx_fini(&c);
  module_free(m);
  for (int i = 0; i < n_fx; i++)
    free(fx[i].v);
  diag_fini(&d);
}
END_TEST

/* the same builtins at f32 through the optimizing pipeline: the generated C (fused,
 * vectorized convolution kernels of a 1-row image) against the evaluator */
START_TEST(test_vocab_f32_codegen) {
  Diag d;
  diag_init(&d);
  Module *m = compile("vocab.lathe", src, DT_F32, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.want_grad = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  Tensor in[2], params[16];
  for (int i = 0; i < m->n_inputs; i++) { /* indices from -6 to 6: some out of range */
    ck_assert(tensor_alloc(&in[i], DT_I32, &m->inputs[i].shape));
    for (int64_t k = 0; k < shape_numel(&in[i].shape); k++)
      tensor_set(&in[i], k, (double)((k * 7 + i) % 13) - 6);
  }
  for (int i = 0; i < m->n_params; i++) {
    ck_assert(tensor_alloc(&params[i], DT_F32, &m->params[i].shape));
    cgh_fill(&params[i], (uint64_t)i + 11, -1, 1);
  }
  Tensor states[4];
  ck_assert(m->n_states <= 4);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 1, &states[i]);
  cgh_check_module(m, in, params, states, 1e-4);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&states[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* each malformed call gives its message (and no crash) */
START_TEST(test_vocab_errors) {
  static const struct {
    const char *body, *message;
  } cases[] = {
      {"einsum(\"ii->i\", x)", "a letter repeated within one term"},
      {"einsum(\"...ij..->...ji\", x)", "a '.' outside one ellipsis '...' per term"},
      {"einsum(\"ij,jk->ik\", x)", "the equation has 2 terms but 1 operands"},
      {"einsum(\"...j->j\", x, y)", "the equation has 1 terms but 2 operands"},
      {"einsum(\"ijk...->i\", x)", "operand 1 has 3 letters but shape [2, 3]"},
      {"einsum(\"ij,jk->ik\", x, y)", "letter 'j' is 3 in one operand but 5"},
      {"einsum(\"ijk->i\", x)", "operand 1 has 3 letters but shape [2, 3]"},
      {"einsum(\"ij->q\", x)", "output letter 'q' is in no operand"},
      {"einsum(\"i+j->i\", x)", "expected letters, ',' and '->'"},
      {"einsum(x, y)", "expected einsum(\"equation\", a[, b])"},
      {"x + \"ij\"", "a string is only allowed as einsum's equation or a resize mode"},
      {"max_pool1d(x, 2)", "expected x [N, C, L] of rank 3"},
      {"avg_pool1d(z, 2, padding = 2)", "padding must be at most half the kernel"},
      {"max_pool1d(z, 2, count_include_pad = true)", "takes no argument 'count_include_pad'"},
      {"avg_pool1d(z, 2, dilation = 2)", "takes no argument 'dilation'"},
      {"conv(z, reshape(y, [5, 1, 2, 3]))", "expected weights [O, C/groups, k] for x [N, C, L]"},
      {"conv(z, reshape(y, [5, 1, 6]), stride = [1, 2])", "must be ints"},
      {"upsample(x, 2)", "expected a floating-point NCHW tensor"},
      {"upsample(w, 2, mode = \"cubic\")", "'mode' must be \"nearest\" or \"bilinear\""},
      {"upsample(w, 2, align_corners = true)", "align_corners = true needs mode"},
      {"interpolate(w, size = [2, 2], scale = 2)", "needs x and one of size or scale"},
      {"interpolate(w, size = [0, 2])", "'size' must be [h, w] of positive ints"},
      {"upsample(w, 0.1)", "'scale' 0.1 gives an output of 0 from 3"},
      {"topk(x, 4)", "topk: k = 4 must be in [1, 3]"},
      {"topk(x, 2, axis = 2)", "'axis' must be in [-2, 2)"},
      {"gather(x, 0, z)", "expected an integer index of x's rank"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "model e(x: f32[2, 3], y: f32[5, 6], z: f32[1, 1, 8], w: f32[1, 2, 3, 3]) {\n"
             "  output r = %s\n}\n",
             cases[i].body);
    Diag d;
    diag_init(&d);
    Module *m = compile("e.lathe", text, DT_F32, &d);
    ck_assert_msg(m == NULL, "'%s' compiled", cases[i].body);
    ck_assert_msg(strstr(diag_text(&d), cases[i].message) != NULL, "'%s': got %s", cases[i].body,
                  diag_text(&d));
    diag_fini(&d);
  }
  Diag d; /* an unterminated string is a lexical error at its opening quote */
  diag_init(&d);
  ck_assert(compile("s.lathe", "model s(x: f32[2]) {\n  output r = einsum(\"i->i, x)\n}\n", DT_F32,
                    &d) == NULL);
  ck_assert_msg(strstr(diag_text(&d), "s.lathe:2:21: error: expected '\"' to close the string"),
                "%s", diag_text(&d));
  diag_fini(&d);
}
END_TEST

static Suite *vocab_suite(void) {
  Suite *s = suite_create("frontend_vocab");
  TCase *tc = tcase_create("torch");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_vocab_matches_torch);
  tcase_add_test(tc, test_vocab_f32_codegen);
  tcase_add_test(tc, test_vocab_errors);
  suite_add_tcase(s, tc);
  return s;
}

/* the generated C built by gcc; `--exhaustive`: by gcc and clang */
int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return 2;
  return test_run_suite(vocab_suite());
}
