/* tests/unit/test_passes_schedule.c — kernel schedules (passes/schedule.c) and the tune cache
 * (driver/tune.c); docs/tuning.md.
 *
 *   - the cost model on fixed fake CPUs: the reference caches give the target's measured
 *     blocks (what codegen planned before the pass existed), smaller caches shrink them by
 *     the analytical bounds; direct below the 512 cube, packed from it;
 *   - a tuned choice (SchedConfig.lookup) replaces the model's when it fits the node, and is
 *     ignored when it does not (blocks beyond the product, an algorithm the conv cannot take);
 *   - the schedule survives ir_print / ir_parse;
 *   - tuned choices change the generated C (it says so) and the result still matches the
 *     reference evaluator (gcc, and clang in the exhaustive run);
 *   - the cache: an entry written is read back for its key only; another CPU's key, a damaged
 *     entry or a foreign file read as missing.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen_harness.h"
#include "driver/tune.h"
#include "frontend/frontend.h"
#include "testutil.h"

static const char *SRC = "model sched(x: f32[64, 784], a: f32[512, 512], b: f32[512, 512],\n"
                         "            img: f32[4, 16, 10, 10], k: f32[16, 16, 3, 3]) {\n"
                         "  param w: f32[784, 256] = glorot_uniform\n"
                         "  output h = x @ w\n"
                         "  output cube = a @ b\n"
                         "  output y = conv(img, k, padding = 1)\n"
                         "}\n";

/* the x86-64-v3 target as codegen/gemm.c describes it, on a CPU with the given caches */
static SchedConfig fake_config(int64_t l1, int64_t l2, int64_t l3) {
  return (SchedConfig){.target = "x86-64-v3",
                       .vec = 8,
                       .mr = 6,
                       .nr = 16,
                       .kc_ref = 256,
                       .mc_ref = 96,
                       .nc_max = 1024,
                       .cpu = {.model = "Fake CPU 9000", .l1d = l1, .l2 = l2, .l3 = l3}};
}

static Module *build(const SchedConfig *sc) {
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  Module *m = frontend_compile("sched.lathe", SRC, &fo, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  PassCtx c;
  pass_ctx_init(&c, &d);
  c.verify = true;
  c.sched = sc;
  ck_assert_msg(passes_run_module(m, &c), "passes: %s", diag_text(&d));
  pass_ctx_fini(&c);
  diag_fini(&d);
  return m;
}

/* the first node of op in the forward entry whose output has dim[0] == rows */
static const Node *find(const Module *m, OpKind op, int64_t rows) {
  const Graph *g = m->entries[0];
  for (NodeId id = 0; id < g->n_nodes; id++)
    if (g->nodes[id].op == op && g->nodes[id].shape.dim[0] == rows) return &g->nodes[id];
  ck_abort_msg("no such node");
  return NULL;
}

static void expect_sched(const Node *n, IrSchedGemm gemm, int kc, int mc, int nc,
                         IrSchedFrom from) {
  const IrSched *s = &n->attr.matmul.sched;
  ck_assert_int_eq(s->gemm, gemm);
  ck_assert_int_eq(s->kc, kc);
  ck_assert_int_eq(s->mc, mc);
  ck_assert_int_eq(s->nc, nc);
  ck_assert_int_eq(s->from, from);
}

START_TEST(test_model_reference_cpu) {
  SchedConfig sc = fake_config(32 << 10, 1 << 20, 32 << 20);
  Module *m = build(&sc);
  /* K = 784 in 4 balanced blocks of at most 256; mc = all 64 rows; nc = all 256 columns */
  expect_sched(find(m, OP_MATMUL, 64), IR_SCHED_GEMM_DIRECT, 196, 64, 256, IR_SCHED_MODEL);
  expect_sched(find(m, OP_MATMUL, 512), IR_SCHED_GEMM_PACKED, 256, 96, 512, IR_SCHED_MODEL);
  const Node *conv = find(m, OP_CONV2D, 4);
  ck_assert_int_eq(conv->attr.conv.algo, IR_CONV_ALGO_WINOGRAD); /* layout.c's rule kept */
  ck_assert_int_eq(conv->attr.conv.algo_from, IR_SCHED_MODEL);
  module_free(m);
  /* unknown caches (zeros) are the reference CPU's */
  sc = fake_config(0, 0, 0);
  m = build(&sc);
  expect_sched(find(m, OP_MATMUL, 512), IR_SCHED_GEMM_PACKED, 256, 96, 512, IR_SCHED_MODEL);
  module_free(m);
}
END_TEST

START_TEST(test_model_small_caches) {
  /* L1 16 KiB: kc 256 * 16/32 = 128; L2 32 KiB: 96 x 128 floats (48 KiB) do not fit, so
   * mc = 32768 / (128 * 4) = 64 rounded down to MR = 6: 60; L3 512 KiB: a 128 x 1024 panel
   * (512 KiB) exceeds half of it, nc = 262144 / 512 = 512 */
  SchedConfig sc = fake_config(16 << 10, 32 << 10, 512 << 10);
  Module *m = build(&sc);
  expect_sched(find(m, OP_MATMUL, 512), IR_SCHED_GEMM_PACKED, 128, 60, 512, IR_SCHED_MODEL);
  /* 784 in 7 blocks of at most 128: 112 */
  expect_sched(find(m, OP_MATMUL, 64), IR_SCHED_GEMM_DIRECT, 112, 60 < 64 ? 60 : 64, 256,
               IR_SCHED_MODEL);
  module_free(m);
}
END_TEST

/* the tuned choices of the lookup below: the dense product packed with odd blocks, the cube
 * with a K block beyond K (invalid: ignored), the convolution as an implicit GEMM */
static bool lookup(void *ctx, const char *key, SchedChoice *out) {
  int *calls = ctx;
  ++*calls;
  ck_assert_msg(strstr(key, "cpu Fake CPU 9000; target x86-64-v3; ") != NULL, "key: %s", key);
  if (strstr(key, "matmul m=64 k=784 n=256 ta=0 tb=0")) {
    *out = (SchedChoice){.gemm = IR_SCHED_GEMM_PACKED, .kc = 100, .mc = 30, .nc = 64};
    return true;
  }
  if (strstr(key, "matmul m=512")) {
    *out = (SchedChoice){.gemm = IR_SCHED_GEMM_PACKED, .kc = 4096, .mc = 96, .nc = 512};
    return true;
  }
  if (strstr(key, "conv2d x=[4,16,10,10] w=[16,16,3,3]")) {
    *out = (SchedChoice){.algo = IR_CONV_ALGO_GEMM};
    return true;
  }
  return false;
}

static SchedConfig tuned_config(int *calls) {
  SchedConfig sc = fake_config(32 << 10, 1 << 20, 32 << 20);
  sc.lookup = lookup;
  sc.lookup_ctx = calls;
  return sc;
}

START_TEST(test_tuned_choices) {
  int calls = 0;
  SchedConfig sc = tuned_config(&calls);
  Module *m = build(&sc);
  ck_assert_int_ge(calls, 3);
  expect_sched(find(m, OP_MATMUL, 64), IR_SCHED_GEMM_PACKED, 100, 30, 64, IR_SCHED_TUNED);
  expect_sched(find(m, OP_MATMUL, 512), IR_SCHED_GEMM_PACKED, 256, 96, 512, IR_SCHED_MODEL);
  const Node *conv = find(m, OP_CONV2D, 4);
  ck_assert_int_eq(conv->attr.conv.algo, IR_CONV_ALGO_GEMM);
  ck_assert_int_eq(conv->attr.conv.algo_from, IR_SCHED_TUNED);
  /* the text form carries the schedule and reads back */
  char *text = ir_print(m->entries[0]);
  ck_assert_msg(strstr(text, "gemm=packed, blocks=[100, 30, 64], from=tuned") != NULL, "%s", text);
  ck_assert_msg(strstr(text, "algo=gemm, from=tuned") || strstr(text, "from=tuned, algo=gemm"),
                "%s", text);
  Diag d;
  diag_init(&d);
  Module *back = ir_parse(text, "sched.ir", &d);
  ck_assert_msg(back != NULL, "ir_parse: %s\n%s", diag_text(&d), text);
  const Graph *g = back->model ? back->model : back->entries[0];
  bool seen = false;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const IrSched *s = &g->nodes[id].attr.matmul.sched;
    if (g->nodes[id].op != OP_MATMUL || g->nodes[id].shape.dim[0] != 64) continue;
    ck_assert(s->gemm == IR_SCHED_GEMM_PACKED && s->kc == 100 && s->mc == 30 && s->nc == 64 &&
              s->from == IR_SCHED_TUNED);
    seen = true;
  }
  ck_assert(seen);
  module_free(back);
  diag_fini(&d);
  free(text);
  module_free(m);
}
END_TEST

static void fill_decls(Tensor *out, const TensorDecl *decls, int n, uint64_t seed) {
  for (int i = 0; i < n; i++) {
    ck_assert(tensor_alloc(&out[i], decls[i].dtype, &decls[i].shape));
    cgh_fill(&out[i], seed + (uint64_t)i, -1.0, 1.0);
  }
}

START_TEST(test_tuned_codegen_matches_evaluator) {
  int calls = 0;
  SchedConfig model = fake_config(32 << 10, 1 << 20, 32 << 20), tuned = tuned_config(&calls);
  Module *mm = build(&model), *mt = build(&tuned);
  char *c_model, *h_model, *c_tuned, *h_tuned;
  cgh_plan(mm), cgh_plan(mt);
  cgh_emit(mm, false, &c_model, &h_model);
  cgh_emit(mt, false, &c_tuned, &h_tuned);
  ck_assert_msg(strstr(c_model, "from the cost model") && !strstr(c_model, "from the tune cache"),
                "the model's C states its schedules");
  ck_assert(strstr(c_tuned, "/* schedule: packed, blocks kc x mc x nc = 100 x 30 x 64, from the "
                            "tune cache */") != NULL);
  ck_assert(strstr(c_tuned, ": gemm, from the tune cache */") != NULL);
  ck_assert(strstr(c_model, "/* schedule: direct (unpacked), from the cost model */") != NULL);
  ck_assert_str_ne(c_model, c_tuned);
  free(c_model), free(h_model), free(c_tuned), free(h_tuned);
  Tensor inputs[6], params[1];
  fill_decls(inputs, mt->inputs, mt->n_inputs, 7);
  fill_decls(params, mt->params, mt->n_params, 70);
  cgh_check_module(mt, inputs, params, NULL, 1e-4);
  for (int i = 0; i < mt->n_inputs; i++)
    tensor_free(&inputs[i]);
  tensor_free(&params[0]);
  module_free(mm);
  module_free(mt);
}
END_TEST

/* ---- the cache ---- */

static char cache_dir[256];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  fputs(text, f);
  fclose(f);
}

START_TEST(test_cache_entries) {
  snprintf(cache_dir, sizeof cache_dir, "/tmp/lathe-tune-test-%d/a/tune", (int)getpid());
  Diag d;
  diag_init(&d);
  const char *key = "lathe-tune 1; cpu Fake; target x86-64-v3; matmul m=8 k=9 n=10 ta=0 tb=1";
  SchedChoice c = {.gemm = IR_SCHED_GEMM_PACKED, .kc = 9, .mc = 8, .nc = 10}, r;
  ck_assert_msg(driver_tune_write(cache_dir, key, &c, 12.5, &d), "%s", diag_text(&d));
  ck_assert(driver_tune_read(cache_dir, key, &r));
  ck_assert(r.gemm == c.gemm && r.kc == 9 && r.mc == 8 && r.nc == 10 && r.algo == 0);
  /* another CPU: another key, no entry; and a foreign key in this key's file is not used */
  const char *other = "lathe-tune 1; cpu Other; target x86-64-v3; matmul m=8 k=9 n=10 ta=0 tb=1";
  ck_assert(!driver_tune_read(cache_dir, other, &r));
  char path[512], text[1024];
  driver_tune_path(cache_dir, key, path, sizeof path);
  snprintf(text, sizeof text,
           "lathe tune entry 1\nkey %s\nchoice gemm=direct kc=9 mc=8 nc=10 "
           "algo=none\n",
           other);
  write_file(path, text);
  ck_assert(!driver_tune_read(cache_dir, key, &r));
  /* damaged: truncated, garbage, a bad word, another format version */
  snprintf(text, sizeof text, "lathe tune entry 1\nkey %s\nchoice gemm=dir", key);
  write_file(path, text);
  ck_assert(!driver_tune_read(cache_dir, key, &r));
  write_file(path, "\x01\x02garbage\n");
  ck_assert(!driver_tune_read(cache_dir, key, &r));
  snprintf(text, sizeof text,
           "lathe tune entry 1\nkey %s\nchoice gemm=fast kc=9 mc=8 nc=10 "
           "algo=none\n",
           key);
  write_file(path, text);
  ck_assert(!driver_tune_read(cache_dir, key, &r));
  snprintf(text, sizeof text,
           "lathe tune entry 2\nkey %s\nchoice gemm=direct kc=9 mc=8 nc=10 "
           "algo=none\n",
           key);
  write_file(path, text);
  ck_assert(!driver_tune_read(cache_dir, key, &r));
  /* and a well-formed one reads again */
  snprintf(text, sizeof text,
           "lathe tune entry 1\nkey %s\nchoice gemm=direct kc=9 mc=8 nc=10 "
           "algo=none\n",
           key);
  write_file(path, text);
  ck_assert(driver_tune_read(cache_dir, key, &r) && r.gemm == IR_SCHED_GEMM_DIRECT);
  unlink(path);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/lathe-tune-test-%d", (int)getpid());
  ck_assert_int_eq(system(cmd), 0);
  diag_fini(&d);
}
END_TEST

/* the environment: LATHE_CACHE_DIR places the cache, LATHE_NO_TUNE_CACHE turns it off */
START_TEST(test_cache_dir) {
  char buf[512];
  setenv("LATHE_CACHE_DIR", "/tmp/somewhere", 1);
  unsetenv("LATHE_NO_TUNE_CACHE");
  unsetenv("LATHE_NO_CACHE");
  ck_assert(driver_tune_dir(buf, sizeof buf));
  ck_assert_str_eq(buf, "/tmp/somewhere/tune");
  setenv("LATHE_NO_TUNE_CACHE", "1", 1);
  ck_assert(!driver_tune_dir(buf, sizeof buf));
  setenv("LATHE_NO_TUNE_CACHE", "0", 1);
  ck_assert(driver_tune_dir(buf, sizeof buf));
  unsetenv("LATHE_NO_TUNE_CACHE");
}
END_TEST

int main(int argc, char **argv) {
  cgh_parse_args(argc, argv);
  Suite *s = suite_create("schedule");
  TCase *tc = tcase_create("schedule");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_model_reference_cpu);
  tcase_add_test(tc, test_model_small_caches);
  tcase_add_test(tc, test_tuned_choices);
  tcase_add_test(tc, test_tuned_codegen_matches_evaluator);
  tcase_add_test(tc, test_cache_entries);
  tcase_add_test(tc, test_cache_dir);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
