/* tests/unit/test_codegen_dyn_examples.c — every example model with a run-time batch (issue 17,
 * docs/dynamic-batch.md), through the frontend, the passes and the generated C.
 *
 * Each examples/<model>.lathe is compiled with its batch constant `dynamic(max = 64)` and built
 * by gcc (with -fsanitize=address in the sanitizer build); its plan passes the overlap checker
 * (plan_check.h at n = 1, 2, 7, 64). Then at n = 1, 7 and 64 every entry (forward, train,
 * evaluate, the GAN's train_disc and train_gen) is called with a workspace of exactly the
 * header's <ENTRY>_WORKSPACE_BYTES(n) bytes, from the same inputs, parameters and states as
 *   - ir_eval of graph_specialize(entry, n), the reference evaluator at n, and
 *   - the same entry of the fixed-batch build (`-D <batch>=n`), built by gcc;
 * outputs, loss and updated parameters and states must match both. The GAN's fixed build
 * starts at n = 2 (a rank-2 batch norm needs two samples); "ops" is a small model of the
 * structural ops no example holds, with their gradients. `test_codegen_dyn_examples NAME`
 * runs one row.
 *
 * lstm and gru hold recurrences (scans), which take a run-time batch (docs/dynamic-batch.md
 * "Scans"; SCANS_TAKE_THE_BATCH is on).
 */
#include "codegen_harness.h"
#include "frontend/frontend.h"
#include "plan_check.h"

enum { MAX = 64 };
/* the dynamic build against the fixed one: the same kernels with another extent */
static const double FIXED_RTOL = 1e-5;
/* against the evaluator (doubles): the GAN's convolution weight gradients at n = 64 sum
 * 64 * 14 * 14 f32 products, and the worst ends 1.1e-4 off, as in the fixed-batch build */
static const double EVAL_RTOL = 2e-4;
enum { MAX_OUTPUTS = 256 }; /* of an entry (the transformer's train step has 110) */

/* Switch on (1) once recurrences take a run-time batch (the scan work, docs/dynamic-batch.md):
 * the lstm and gru rows then run like every other example. Off, they must be refused. */
enum { SCANS_TAKE_THE_BATCH = 1 };

typedef struct Example {
  const char *name;      /* examples/<name>.lathe */
  const char *source;    /* the model's text instead of that file, or NULL */
  const char *batch;     /* its batch constant */
  int64_t int_hi;        /* integer inputs (token ids, labels) drawn from [0, int_hi) */
  bool scan;             /* holds a recurrence: runs only with SCANS_TAKE_THE_BATCH */
  int64_t min_fixed;     /* the smallest fixed batch the frontend accepts (a rank-2 batch norm
                            needs two samples, like PyTorch's); below it only the evaluator */
  const char *zero_grad; /* " name name ": params whose gradient is zero in exact arithmetic
                            (a bias feeding a batch norm, tests/e2e_gan.sh; attention's key
                            bias, which shifts a softmax row): Adam turns its rounding noise
                            into a whole step of either sign, so their update is checked to
                            within two steps (2 lr) */
  double lr;             /* the example's learning rate */
} Example;

/* The ops no example holds at a run-time batch, with their gradients: slice (pad's VJP, and
 * a strided window), unslice (pad), where, transpose, dropout, rand, and gather/scatter_add. */
static const char *const OPS_SOURCE =
    "import nn\n"
    "const B = 64\n"
    "model ops(x: f32[B, 3, 4], ids: i32[B, 2], label: i32[B]) {\n"
    "  h = dense(x, 4)\n"
    "  e = dropout(embed(ids, 5, 4), 0.25)\n"
    "  t = transpose(h, perm = [0, 2, 1])\n"
    "  p = pad(h, [0, 0, 1, 1, 0, 2], value = 0.5)\n"
    "  s = p[:, 1:4:2, ::2]\n"
    "  w = where(s > 0.0, s, 0.1 * s)\n"
    "  f = concat([reshape(w, [B, 6]), reshape(e, [B, 8]), reshape(t, [B, 12])], axis = 1)\n"
    "  logits = dense(f, 3)\n"
    "  output probs = softmax(logits)\n"
    "  loss = cross_entropy(logits + 0.1 * rand([B, 3]), label)\n"
    "}\n"
    "train ops {\n  minimize loss\n  optimizer sgd(lr = 0.1)\n}\n";

static const Example EXAMPLES[] = {
    {"mlp", NULL, "N", 10, false, 1, "", 0},
    {"cnn", NULL, "N", 10, false, 1, "", 0},
    {"transformer", NULL, "B", 16, false, 1, " enc1.attn.key.b enc2.attn.key.b ", 1e-3},
    {"gan", NULL, "B", 1, false, 2, " gen.h.b gen.u1.b ", 2e-4},
    {"vae", NULL, "B", 1, false, 1, "", 0},
    {"ops", OPS_SOURCE, "B", 3, false, 1, "", 0},
    {"lstm", NULL, "N", 10, true, 1, "", 0},
    {"gru", NULL, "N", 10, true, 1, "", 0},
};
enum { N_EXAMPLES = sizeof EXAMPLES / sizeof EXAMPLES[0] };

static const char *read_example(const Example *ex, char *path, size_t size) {
  if (ex->source) {
    snprintf(path, size, "%s.lathe", ex->name);
    return ex->source;
  }
  snprintf(path, size, "%s/examples/%s.lathe", test_source_dir(), ex->name);
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp, "cannot open %s", path);
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[len] = '\0';
  return text;
}

/* the example with its batch dynamic (batch 0) or fixed at batch, through the passes; NULL
 * with the diagnostics in d when it is refused */
static Module *example_module(const Example *ex, int64_t batch, Diag *d) {
  char path[4096], lib[4096];
  const char *text = read_example(ex, path, sizeof path);
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  const Define def = {ex->batch, batch ? batch : MAX, batch == 0};
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  o.defines = &def;
  o.n_defines = 1;
  Module *m = frontend_compile(path, text, &o, d);
  if (!m) return NULL;
  PassCtx c;
  pass_ctx_init(&c, d);
  c.verify = true;
  c.want_eval = true;
  bool ok = passes_run_module(m, &c);
  pass_ctx_fini(&c);
  if (!ok) {
    module_free(m);
    return NULL;
  }
  return m;
}

/* A and B of `#define <UPPER>_WORKSPACE_BYTES(n) ((size_t)A * (size_t)(n) + (size_t)B)` */
static void header_workspace(const char *h, const char *model, const char *entry, int64_t *a,
                             int64_t *b) {
  char upper[128], key[256];
  snprintf(upper, sizeof upper, "%s_%s", model, entry);
  for (char *p = upper; *p; p++)
    *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  snprintf(key, sizeof key, "#define %s_WORKSPACE_BYTES(n) ((size_t)", upper);
  const char *p = strstr(h, key);
  ck_assert_msg(p, "no %s in the header", key);
  long long aa, bb;
  ck_assert_int_eq(sscanf(p + strlen(key), "%lld * (size_t)(n) + (size_t)%lld)", &aa, &bb), 2);
  *a = aa, *b = bb;
}

/* a built model: the dynamic one (batch 0) or a fixed-batch one */
typedef struct Built {
  Module *m;
  char *h_text;
  CghBuild b;
} Built;

static void build(Built *bt, const Example *ex, int64_t batch) {
  Diag d;
  diag_init(&d);
  bt->m = example_module(ex, batch, &d);
  ck_assert_msg(bt->m, "%s at batch %lld: %s", ex->name, (long long)batch, diag_text(&d));
  diag_fini(&d);
  for (int i = 0; i < bt->m->n_entries; i++)
    plan_check(bt->m->entries[i]);
  char *c_text;
  cgh_emit(bt->m, false, &c_text, &bt->h_text);
  cgh_setup(&bt->b, bt->m->name, c_text, bt->h_text);
  free(c_text);
  const char *flags = "-O1 -shared -fPIC -lm";
#if defined(__SANITIZE_ADDRESS__) /* the sanitizer build (make test): the generated code too */
  flags = "-O1 -shared -fPIC -fsanitize=address -lm";
#endif
  cgh_build_with(&bt->b, "gcc", flags);
}

static void unbuild(Built *bt) {
  cgh_cleanup(&bt->b);
  free(bt->h_text);
  module_free(bt->m);
}

/* what one call of an entry gave: its output arguments, loss, parameters and states */
typedef struct Result {
  void *out[64]; /* per argument: the output buffer, or NULL */
  double loss;
  void *p, *s;
} Result;

/* entry `name` of bt at n (0: a fixed-batch model), from the given tensors; the dynamic
 * model's workspace is exactly its header's WORKSPACE_BYTES(n) */
static void call_entry(const Built *bt, const char *name, int64_t n, const Tensor *in,
                       const Tensor *params, const Tensor *states, Result *r) {
  const lathe_model_info *info = bt->b.info;
  const lathe_entry_info *e = cgh_entry(info, name);
  size_t bytes = e->workspace_bytes;
  if (n) {
    int64_t wa, wb;
    header_workspace(bt->h_text, bt->m->name, name, &wa, &wb);
    ck_assert_int_eq((long long)e->workspace_bytes, wa * MAX + wb);
    ck_assert_int_eq((long long)e->workspace_per_n, wa);
    bytes = (size_t)(wa * n + wb);
    ck_assert_int_eq(e->args[e->n_args - 1].role, LATHE_ARG_BATCH);
  }
  memset(r, 0, sizeof *r);
  r->p = cgh_pack(info->params_bytes, info->params, info->n_params, params);
  r->s = cgh_pack(info->state_bytes, info->states, info->n_states, states);
  void *args[64] = {0};
  void *ws = aligned_alloc(64, (size_t)ir_round_up((int64_t)bytes, 64) + (bytes ? 0 : 64));
  int64_t batch = n;
  ck_assert_int_le(e->n_args, 64);
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    if (a->role == LATHE_ARG_PARAMS) args[i] = r->p;
    if (a->role == LATHE_ARG_STATE) args[i] = r->s;
    if (a->role == LATHE_ARG_WORKSPACE) args[i] = ws;
    if (a->role == LATHE_ARG_BATCH) args[i] = &batch;
    for (int k = 0; a->role == LATHE_ARG_INPUT && k < bt->m->n_inputs; k++)
      if (strcmp(bt->m->inputs[k].name, a->tensor->name) == 0) args[i] = in[k].data;
    if (a->role == LATHE_ARG_INPUT) ck_assert_msg(args[i], "input %s", a->tensor->name);
    if (a->role == LATHE_ARG_OUTPUT) args[i] = r->out[i] = calloc(1, a->tensor->bytes);
  }
  r->loss = NAN;
  e->call(args, &r->loss);
  free(ws);
}

static void result_free(Result *r) {
  for (int i = 0; i < 64; i++)
    free(r->out[i]);
  free(r->p);
  free(r->s);
}

/* r (a call of entry g's generated code) against the reference outputs of g at n */
static void expect_result(const Example *ex, const Built *bt, const Graph *g, const Result *r,
                          const Tensor *ref, double rtol, const char *what) {
  const lathe_model_info *info = bt->b.info;
  const lathe_entry_info *e = cgh_entry(info, g->name);
  char label[256];
  for (int o = 0, i = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    snprintf(label, sizeof label, "%s: %s %s", what, g->name, go->name);
    if (go->kind == OUT_VALUE || go->kind == OUT_GRAD) {
      while (e->args[i].role != LATHE_ARG_OUTPUT)
        i++;
      cgh_expect_close(label, ref[o].dtype, r->out[i++], &ref[o], rtol);
    } else if (go->kind == OUT_LOSS) {
      double v = tensor_get(&ref[o], 0);
      ck_assert_msg(fabs(r->loss - v) <= rtol * (1 + fabs(v)), "%s: loss %.9g vs %.9g", label,
                    r->loss, v);
    } else {
      bool param = go->kind == OUT_PARAM_UPDATE;
      const lathe_tensor_info *ti = param ? &info->params[go->target] : &info->states[go->target];
      snprintf(label, sizeof label, "%s: %s %s", what, g->name, ti->name);
      char key[80];
      snprintf(key, sizeof key, " %s ", ti->name);
      bool noise = param && strstr(ex->zero_grad, key);
      cgh_expect_close(label, ref[o].dtype, (char *)(param ? r->p : r->s) + ti->offset, &ref[o],
                       noise ? 2 * ex->lr : rtol);
    }
  }
}

/* the outputs of a fixed-batch call as tensors, in g's output order (the reference for the
 * dynamic call) */
static void result_tensors(const Built *bt, const Graph *g, const Result *r, const Tensor *shape,
                           Tensor *out) {
  const lathe_model_info *info = bt->b.info;
  const lathe_entry_info *e = cgh_entry(info, g->name);
  for (int o = 0, i = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    ck_assert(tensor_alloc(&out[o], shape[o].dtype, &shape[o].shape));
    const void *src = NULL;
    if (go->kind == OUT_VALUE || go->kind == OUT_GRAD) {
      while (e->args[i].role != LATHE_ARG_OUTPUT)
        i++;
      src = r->out[i++];
    } else if (go->kind == OUT_LOSS) {
      tensor_set(&out[o], 0, r->loss);
      continue;
    } else {
      bool param = go->kind == OUT_PARAM_UPDATE;
      const lathe_tensor_info *ti = param ? &info->params[go->target] : &info->states[go->target];
      src = (const char *)(param ? r->p : r->s) + ti->offset;
    }
    memcpy(out[o].data, src, (size_t)shape_numel(&out[o].shape) * (size_t)dtype_size(out[o].dtype));
  }
}

static void fill_inputs(const Module *m, const Example *ex, int64_t n, Tensor *in) {
  for (int i = 0; i < m->n_inputs; i++) {
    Shape s = m->inputs[i].shape;
    s.dim[0] = s.dyn * n, s.dyn = 0;
    ck_assert(tensor_alloc(&in[i], m->inputs[i].dtype, &s));
    bool ints = !dtype_is_float(m->inputs[i].dtype);
    cgh_fill(&in[i], 3 + (uint64_t)i, ints ? 0 : -1, ints ? (double)ex->int_hi - 0.001 : 1);
    if (ints) /* cgh_fill stores through tensor_set, which truncates toward zero */
      for (int64_t k = 0; k < shape_numel(&s); k++)
        ck_assert(tensor_get(&in[i], k) >= 0 && tensor_get(&in[i], k) < (double)ex->int_hi);
  }
}

/* the dynamic build's entry g at n against the evaluator at n and, when fixed is not NULL,
 * the fixed-batch build's entry */
static void check_entry(const Example *ex, const Built *dyn, const Built *fixed, const Graph *g,
                        int64_t n, const Tensor *in, const Tensor *params, const Tensor *states) {
  Diag d;
  diag_init(&d);
  Graph *gs = graph_specialize(g, n, &d);
  ck_assert_msg(gs, "%s", diag_text(&d));
  Tensor ref[MAX_OUTPUTS];
  ck_assert_int_le(g->n_outputs, MAX_OUTPUTS);
  ck_assert_msg(ir_eval(gs, in, params, states, ref, NULL, &d), "%s", diag_text(&d));
  char what[64];
  snprintf(what, sizeof what, "%s n=%lld", ex->name, (long long)n);
  Result rd;
  call_entry(dyn, g->name, n, in, params, states, &rd);
  expect_result(ex, dyn, g, &rd, ref, EVAL_RTOL, what);
  if (fixed) {
    Tensor fix[MAX_OUTPUTS];
    Result rf;
    call_entry(fixed, g->name, 0, in, params, states, &rf);
    result_tensors(fixed, g, &rf, ref, fix);
    snprintf(what, sizeof what, "%s n=%lld vs -D %s=%lld", ex->name, (long long)n, ex->batch,
             (long long)n);
    expect_result(ex, dyn, g, &rd, fix, FIXED_RTOL, what);
    for (int o = 0; o < g->n_outputs; o++)
      tensor_free(&fix[o]);
    result_free(&rf);
  }
  for (int o = 0; o < g->n_outputs; o++)
    tensor_free(&ref[o]);
  result_free(&rd);
  graph_free(gs);
  diag_fini(&d);
}

/* every entry of the dynamic build at n against the evaluator at n and the fixed build (from
 * ex->min_fixed on) */
static void check_at(const Example *ex, const Built *dyn, int64_t n) {
  Built fixed;
  bool with_fixed = n >= ex->min_fixed;
  if (with_fixed) build(&fixed, ex, n);
  const Module *m = dyn->m;
  ck_assert(!with_fixed || (m->n_params == fixed.m->n_params && m->n_states == fixed.m->n_states));
  ck_assert(m->n_inputs <= 4 && m->n_params <= 64 && m->n_states <= 160);
  Tensor in[4], params[64], states[160];
  fill_inputs(m, ex, n, in);
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 9, &params[i]);
  for (int i = 0; i < m->n_states; i++)
    ir_init_tensor(&m->states[i], 9, &states[i]);
  for (int k = 0; k < m->n_entries; k++)
    check_entry(ex, dyn, with_fixed ? &fixed : NULL, m->entries[k], n, in, params, states);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&in[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&states[i]);
  if (with_fixed) unbuild(&fixed);
}

/* a recurrence before the scan work: refused with a clear error at its source line */
static void check_refused(const Example *ex) {
  Diag d;
  diag_init(&d);
  Module *m = example_module(ex, 0, &d);
  ck_assert_msg(!m, "%s compiles with a dynamic batch: switch SCANS_TAKE_THE_BATCH on", ex->name);
  char where[64];
  snprintf(where, sizeof where, "examples/%s.lathe:", ex->name);
  ck_assert_msg(strstr(diag_text(&d), where) && strstr(diag_text(&d), "dynamic batch"), "%s",
                diag_text(&d));
  diag_fini(&d);
}

START_TEST(test_example_at_n) {
  const Example *ex = &EXAMPLES[_i];
  if (ex->scan && !SCANS_TAKE_THE_BATCH) {
    check_refused(ex);
    return;
  }
  Built dyn;
  build(&dyn, ex, 0);
  ck_assert_int_eq(dyn.m->dyn_max, MAX);
  const int64_t ns[] = {1, 7, MAX};
  for (int j = 0; j < 3; j++)
    check_at(ex, &dyn, ns[j]);
  unbuild(&dyn);
}
END_TEST

/* `test_codegen_dyn_examples [NAME]`: every example, or only examples/NAME.lathe */
int main(int argc, char **argv) {
  int lo = 0, hi = N_EXAMPLES;
  for (int i = 0; argc == 2 && i < N_EXAMPLES; i++)
    if (strcmp(argv[1], EXAMPLES[i].name) == 0) lo = i, hi = i + 1;
  if (argc > 2 || (argc == 2 && hi - lo != 1)) {
    fprintf(stderr, "usage: %s [example name]\n", argv[0]);
    return EXIT_FAILURE;
  }
  Suite *s = suite_create("codegen_dyn_examples");
  TCase *tc = tcase_create("examples");
  tcase_set_timeout(tc, 900);
  tcase_add_loop_test(tc, test_example_at_n, lo, hi);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
