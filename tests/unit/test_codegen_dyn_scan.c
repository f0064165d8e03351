/* tests/unit/test_codegen_dyn_scan.c — recurrences (SCAN, its VJP's reverse scan, PACK,
 * UNPACK) at a run-time batch (docs/dynamic-batch.md "Scans").
 *
 * examples/lstm.lathe and examples/gru.lathe (the last state) and
 * tests/fixtures/lstm/bilstm_seq.lathe (a forward and a reversed scan, every state stacked)
 * with -D N=dynamic(max=64) (and a short sequence, a small hidden size, so the reference
 * evaluator stays quick), through the frontend and the passes. Checked for every entry (forward,
 * evaluate, the Adam train step) at n = 1, 7 and the bound: the generated C, built by gcc (and
 * clang for the LSTM), run in a workspace of exactly the header's <ENTRY>_WORKSPACE_BYTES(n) bytes
 * (malloc'd: the sanitizer build sees a byte past it), equals ir_eval of graph_specialize(entry, n)
 * and the same entry of the fixed-batch build (-D N=n) on the same inputs, parameters and moments.
 * The memory plan (plan_check.h) and the scan bodies' buffers (aligned, inside the arena, apart
 * from each other and from the parent's buffers) are checked at n = 1, 2, 7 and the bound.
 */
#include "codegen_harness.h"
#include "frontend/frontend.h"
#include "ir/scan.h"
#include "plan_check.h"

enum { MAX = 64, T = 5, H = 24 };

/* <file> (under the source root) with N dynamic (n = 0) or fixed at n, T and H small */
static Module *example(const char *file, int64_t n) {
  char path[4096], lib[4096];
  snprintf(path, sizeof path, "%s/%s", test_source_dir(), file);
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp, "cannot open %s", path);
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof text - 1, fp);
  fclose(fp);
  text[len] = '\0';
  const Define defs[3] = {{"N", n ? n : MAX, n == 0}, {"T", T, false}, {"H", H, false}};
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  o.defines = defs;
  o.n_defines = 3;
  Diag d;
  diag_init(&d);
  Module *m = frontend_compile(path, text, &o, &d);
  ck_assert_msg(m, "%s", diag_text(&d));
  ck_assert_int_eq(m->dyn_max, n ? 0 : MAX);
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.verify = true;
  c.want_eval = true;
  ck_assert_msg(passes_run_module(m, &c), "%s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

/* ---- the plan of the scan bodies ---------------------------------------------------------- */

typedef struct Span {
  int64_t at, size;
} Span;

static Span span_at(const Node *b, int64_t n) {
  int64_t per_n, fixed;
  scan_affine(&b->shape, &per_n, &fixed);
  int64_t bytes = (per_n * n + fixed) * (int64_t)dtype_size(b->dtype);
  return (Span){b->offset_n * n + b->offset, bytes};
}

static bool overlap(Span a, Span b) {
  return a.at < b.at + b.size && b.at < a.at + a.size;
}

/* every body buffer at n: aligned, in the arena, apart from the other body buffers (all live
 * while the loop runs; the SCAN_ARGs of one index share one) and from the parent's */
static void check_bodies_at(const Graph *g, const PlanBuffer *pb, int count, int64_t n) {
  int64_t arena = g->workspace_bytes_n * n + g->workspace_bytes;
  for (NodeId s = 0; s < g->n_nodes; s++) {
    const Node *scan = graph_node(g, s);
    const Graph *body = scan->op == OP_SCAN ? scan_body(g, scan) : NULL;
    for (NodeId i = 0; body && i < body->n_nodes; i++) {
      const Node *b = graph_node(body, i);
      if (b->offset < 0) continue;
      Span x = span_at(b, n);
      ck_assert_msg(x.at % 64 == 0 && x.at + x.size <= arena,
                    "%s: body %%%u [%lld, +%lld) at n = %lld (arena %lld)", g->name, i,
                    (long long)x.at, (long long)x.size, (long long)n, (long long)arena);
      for (int k = 0; k < count; k++) {
        Span p = {pb[k].offset_n * n + pb[k].offset, pb[k].bytes_n * n + pb[k].bytes};
        ck_assert_msg(!overlap(x, p), "%s: body %%%u overlaps %%%u at n = %lld", g->name, i,
                      pb[k].node, (long long)n);
      }
      for (NodeId j = 0; j < i; j++) {
        const Node *o = graph_node(body, j);
        bool shared = b->op == OP_SCAN_ARG && o->op == OP_SCAN_ARG &&
                      b->attr.scan_arg.index == o->attr.scan_arg.index;
        ck_assert_msg(o->offset < 0 || shared || !overlap(x, span_at(o, n)),
                      "%s: body %%%u and %%%u overlap at n = %lld", g->name, j, i, (long long)n);
      }
    }
  }
}

static void check_plan(const Graph *g) {
  plan_check(g);
  PlanBuffer *pb = malloc((g->n_nodes + 1) * sizeof *pb);
  ck_assert_ptr_nonnull(pb);
  int count = graph_fill_buffers(g, pb, NULL);
  const int64_t ns[] = {1, 2, 7, MAX};
  for (int k = 0; k < 4; k++)
    check_bodies_at(g, pb, count, ns[k]);
  free(pb);
}

/* ---- running an entry --------------------------------------------------------------------- */

/* A and B of `#define <UPPER>_WORKSPACE_BYTES(n) ((size_t)A * (size_t)(n) + (size_t)B)` */
static void header_workspace(const char *h, const char *model, const char *entry, int64_t *a,
                             int64_t *b) {
  char upper[128], key[192];
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

/* The values one call of an entry produced, output by output (loss: one element; updated
 * params and moments: read back from the structs), as tensors shaped like the reference. */
typedef struct Results {
  Tensor t[64];
  int n;
} Results;

/* runs g's entry of the loaded build on in/params/states at batch n (0: a static build) with
 * a workspace of ws_bytes; ref gives each output's shape */
static void run_entry(const CghBuild *b, const Module *m, const Graph *g, int64_t n,
                      const Tensor *in, const Tensor *params, const Tensor *states, size_t ws_bytes,
                      const Tensor *ref, Results *r) {
  const lathe_entry_info *e = cgh_entry(b->info, g->name);
  void *p = cgh_pack(b->info->params_bytes, b->info->params, m->n_params, params);
  void *s = cgh_pack(b->info->state_bytes, b->info->states, m->n_states, states);
  void *args[64] = {0}, *out_bufs[64] = {0};
  void *ws = aligned_alloc(64, ws_bytes ? (ws_bytes + 63) / 64 * 64 : 64);
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
  ck_assert_int_eq(e->args[e->n_args - 1].role == LATHE_ARG_BATCH, n > 0);
  double loss = NAN;
  e->call(args, &loss);
  r->n = g->n_outputs;
  for (int o = 0, i = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    ck_assert(tensor_alloc(&r->t[o], ref[o].dtype, &ref[o].shape));
    const void *src = NULL;
    if (go->kind == OUT_VALUE || go->kind == OUT_GRAD) {
      while (e->args[i].role != LATHE_ARG_OUTPUT)
        i++;
      src = out_bufs[i++];
    } else if (go->kind == OUT_LOSS) {
      tensor_set(&r->t[o], 0, loss);
      continue;
    } else {
      bool param = go->kind == OUT_PARAM_UPDATE;
      const lathe_tensor_info *ti =
          param ? &b->info->params[go->target] : &b->info->states[go->target];
      src = (char *)(param ? p : s) + ti->offset;
    }
    for (int64_t k = 0; k < shape_numel(&ref[o].shape); k++)
      tensor_set(&r->t[o], k, cgh_get(ref[o].dtype, src, k));
  }
  for (int i = 0; i < 64; i++)
    free(out_bufs[i]);
  free(ws);
  free(p);
  free(s);
}

static void results_free(Results *r) {
  for (int o = 0; o < r->n; o++)
    tensor_free(&r->t[o]);
  r->n = 0;
}

static void expect_results(const Graph *g, int64_t n, const char *what, const Results *got,
                           const Tensor *want, double rtol) {
  for (int o = 0; o < g->n_outputs; o++) {
    char name[160];
    snprintf(name, sizeof name, "%s %s at n = %lld vs %s", g->name, g->outputs[o].name,
             (long long)n, what);
    cgh_expect_close(name, want[o].dtype, got->t[o].data, &want[o], rtol);
  }
}

/* One model at batch n: inputs, parameters and moments (deterministic), the reference outputs
 * of each entry, and the fixed-batch build. */
typedef struct AtN {
  int64_t n;
  Tensor in[4], params[16], states[40];
} AtN;

static void at_n_init(AtN *a, const Module *m, int64_t n) {
  a->n = n;
  ck_assert(m->n_inputs <= 4 && m->n_params <= 16 && m->n_states <= 40);
  for (int i = 0; i < m->n_inputs; i++) {
    Shape s = m->inputs[i].shape;
    s.dim[0] = s.dyn * n, s.dyn = 0;
    ck_assert(tensor_alloc(&a->in[i], m->inputs[i].dtype, &s));
    bool label = m->inputs[i].dtype == DT_I32;
    cgh_fill(&a->in[i], 3 + (uint64_t)i, label ? 0 : -1, label ? 10 : 1);
  }
  for (int i = 0; i < m->n_params; i++)
    ir_init_tensor(&m->params[i], 9, &a->params[i]);
  for (int i = 0; i < m->n_states; i++) {
    ir_init_tensor(&m->states[i], 9, &a->states[i]);
    cgh_fill(&a->states[i], 40 + (uint64_t)i, 0, 0.01); /* moments past a first step */
  }
}

static void at_n_fini(AtN *a, const Module *m) {
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&a->in[i]);
  for (int i = 0; i < m->n_params; i++)
    tensor_free(&a->params[i]);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&a->states[i]);
}

/* the fixed build of `name` at n, loaded */
static Module *fixed_build(const char *name, int64_t n, CghBuild *b) {
  Module *m = example(name, n);
  char *c_text, *h_text, model[64];
  cgh_emit(m, false, &c_text, &h_text);
  snprintf(model, sizeof model, "%s", m->name);
  cgh_setup(b, model, c_text, h_text);
  cgh_build_with(b, "gcc", "-O1 -shared -fPIC -lm");
  free(c_text);
  free(h_text);
  return m;
}

/* every entry of the dynamic build b (header h) at n: vs ir_eval at n and vs the fixed build */
static void check_model_at(const char *name, const CghBuild *b, const Module *m, const char *h,
                           int64_t n) {
  AtN a;
  at_n_init(&a, m, n);
  CghBuild fb;
  Module *fm = fixed_build(name, n, &fb);
  ck_assert_int_eq(fm->n_entries, m->n_entries);
  for (int i = 0; i < m->n_entries; i++) {
    const Graph *g = m->entries[i];
    Diag d;
    diag_init(&d);
    Graph *gs = graph_specialize(g, n, &d);
    ck_assert_msg(gs, "%s", diag_text(&d));
    Tensor want[64];
    ck_assert_int_le(g->n_outputs, 64);
    ck_assert_msg(ir_eval(gs, a.in, a.params, a.states, want, NULL, &d), "%s", diag_text(&d));
    int64_t wa, wb;
    header_workspace(h, m->name, g->name, &wa, &wb);
    ck_assert_int_eq(wa, g->workspace_bytes_n);
    ck_assert_int_ge(wb, g->workspace_bytes);
    Results dyn, fixed;
    run_entry(b, m, g, n, a.in, a.params, a.states, (size_t)(wa * n + wb), want, &dyn);
    expect_results(g, n, "the reference evaluator", &dyn, want, 1e-4);
    const Graph *fg = fm->entries[i];
    ck_assert_str_eq(fg->name, g->name);
    size_t fws = cgh_entry(fb.info, fg->name)->workspace_bytes;
    run_entry(&fb, fm, fg, 0, a.in, a.params, a.states, fws, want, &fixed);
    expect_results(g, n, "the fixed-batch build", &dyn, fixed.t, 1e-5);
    results_free(&dyn);
    results_free(&fixed);
    for (int o = 0; o < gs->n_outputs; o++)
      tensor_free(&want[o]);
    graph_free(gs);
    diag_fini(&d);
  }
  cgh_cleanup(&fb);
  module_free(fm);
  at_n_fini(&a, m);
}

/* _i: 0 the LSTM (gcc and clang), 1 the GRU, 2 the bidirectional LSTM stacking (gcc) */
START_TEST(test_recurrence_at_n) {
  static const char *const files[] = {"examples/lstm.lathe", "examples/gru.lathe",
                                      "tests/fixtures/lstm/bilstm_seq.lathe"};
  const char *name = files[_i];
  Module *m = example(name, 0);
  int scans = 0;
  for (int i = 0; i < m->n_entries; i++) {
    check_plan(m->entries[i]);
    for (NodeId id = 0; id < m->entries[i]->n_nodes; id++)
      scans += m->entries[i]->nodes[id].op == OP_SCAN;
  }
  ck_assert_int_ge(scans, _i == 2 ? 6 : 3); /* forward, evaluate; train: forward and reverse */
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  CghBuild b;
  cgh_setup(&b, m->name, c_text, h_text);
  const int64_t ns[] = {1, 7, MAX};
  for (int k = 0; k < (_i == 0 ? CGH_N_COMPILERS : 1); k++) {
    const char *flags = "-O1 -shared -fPIC -lm";
#if defined(__SANITIZE_ADDRESS__) /* the sanitizer build (make test): the generated code too */
    if (strcmp(cgh_compilers[k], "gcc") == 0) flags = "-O1 -shared -fPIC -fsanitize=address -lm";
#endif
    cgh_build_with(&b, cgh_compilers[k], flags);
    for (int j = 0; j < 3; j++)
      check_model_at(name, &b, m, h_text, ns[j]);
    cgh_unload(&b);
  }
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
  module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen_dyn_scan");
  TCase *tc = tcase_create("dyn_scan");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_recurrence_at_n, 0, 3);
  suite_add_tcase(s, tc);
  SRunner *r = srunner_create(s);
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
