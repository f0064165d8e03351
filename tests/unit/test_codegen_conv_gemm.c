/* tests/unit/test_codegen_conv_gemm.c — the implicit-GEMM convolutions (codegen/conv_gemm.c)
 * at sizes that exercise the shared lathe_gemm routine's blocking: M above the M block,
 * K above the K block (several K blocks accumulate), N above the N panel, ragged edges
 * everywhere (odd sizes), batches > 1 with groups, padding, stride and dilation; conv2d,
 * conv_transpose2d (with stride: the divisibility test of the gather) and
 * conv2d_grad_weight (accumulated over the images). Compiled by gcc and clang at -Werror for
 * the native target and for the portable generic one, and with --threads 2 (also built
 * with -fopenmp), against ir_eval. rtol 1e-4: the sums
 * run over up to ~1500 products in f32.
 */
#include "conv_fixture.h"

static void gemm_outputs(Fixture *fx) {
  DType t = DT_F32;
  /* conv2d: M = 130 (> the M block), K = 121 * 9 = 1089 (> the K block), N = 13 * 11 */
  NodeId x = input(fx, "x", t, s4(2, 121, 13, 11));
  NodeId w = param(fx, "w", t, s4(130, 121, 3, 3));
  out(fx, "big_k", add(fx, OP_CONV2D, x, w, (Attr){.pad = {1, 1, 1, 1}}));
  /* N = 37 * 31 = 1147 output pixels (> the N panel), odd channel counts, stride 1 */
  NodeId xw = input(fx, "xw", t, s4(3, 3, 39, 33));
  NodeId ww = param(fx, "ww", t, s4(5, 3, 3, 3));
  NodeId wide = add(fx, OP_CONV2D, xw, ww, (Attr){0});
  out(fx, "wide", wide);
  /* grad weight over the same: K = 37 * 31 pixels per image, 3 images accumulate */
  NodeId gy = input(fx, "gy", t, graph_node(fx->g, wide)->shape);
  out(fx, "wide_gw", add(fx, OP_CONV2D_GRAD_WEIGHT, xw, gy, (Attr){.kernel = {3, 3}}));
  /* its input gradient: N = 39 * 33 X pixels (> the N panel) */
  out(fx, "wide_dx", add(fx, OP_CONV_TRANSPOSE2D, gy, ww, (Attr){0}));
  /* strided, padded, dilated, grouped: each path's index arithmetic at odd sizes */
  NodeId xs = input(fx, "xs", t, s4(2, 6, 17, 15));
  NodeId wsg = param(fx, "wsg", t, s4(9, 2, 3, 2));
  Attr sa = {.stride = {2, 3}, .pad = {1, 2, 0, 1}, .dil = {2, 1}, .groups = 3};
  NodeId ys = add(fx, OP_CONV2D, xs, wsg, sa);
  out(fx, "strided", ys);
  NodeId gys = input(fx, "gys", t, graph_node(fx->g, ys)->shape);
  Attr sk = sa;
  sk.kernel[0] = 3, sk.kernel[1] = 2;
  out(fx, "strided_gw", add(fx, OP_CONV2D_GRAD_WEIGHT, xs, gys, sk));
  const Shape *ysh = &graph_node(fx->g, ys)->shape;
  Attr st = sa; /* the output padding that gives back xs's 17 x 15 */
  st.out_pad[0] = (int)(17 - ((ysh->dim[2] - 1) * 2 - 1 + 2 * 2 + 1));
  st.out_pad[1] = (int)(15 - ((ysh->dim[3] - 1) * 3 - 3 + 1 * 1 + 1));
  out(fx, "strided_dx", add(fx, OP_CONV_TRANSPOSE2D, gys, wsg, st));
}

/* emit for target (and --threads), check the implicit GEMM is used, build with gcc and clang
 * (and, with threads, gcc -fopenmp: the blocks then really run on two threads), compare */
static void check_target(Module *m, const Tensor *inputs, const Tensor *params, CgTarget t,
                         int threads) {
  Diag d;
  diag_init(&d);
  CgOptions o;
  cg_options_init(&o);
  o.target = t;
  o.threads = threads;
  char *c_text, *h_text;
  ck_assert_msg(cg_emit_c(m, &o, &c_text, &h_text, &d), "cg_emit_c: %s", diag_text(&d));
  ck_assert(strstr(c_text, "lathe_conv_pack_im2col(") != NULL);
  ck_assert(strstr(c_text, "lathe_conv_pack_im2col_t(") != NULL);
  ck_assert(strstr(c_text, "lathe_conv_pack_gather(") != NULL);
  ck_assert(t != CG_TARGET_GENERIC || strstr(c_text, "__attribute__") == NULL);
  ck_assert((strstr(c_text, "LATHE_GEMM_OMP\n") != NULL) == (threads > 1));
  fx_check_builds(m, inputs, params, c_text, h_text, false, threads);
  free(c_text);
  free(h_text);
  diag_fini(&d);
}

static void run(CgTarget target, int threads) {
  Fixture fx;
  fx_open(&fx, "convgemm");
  gemm_outputs(&fx);
  cgh_plan(fx.m);
  check_target(fx.m, fx.inputs, fx.params, target, threads);
  fx_close(&fx);
}

START_TEST(test_native) { run(CG_TARGET_NATIVE, 1); }
END_TEST

START_TEST(test_generic) { run(CG_TARGET_GENERIC, 1); }
END_TEST

START_TEST(test_threads) { run(CG_TARGET_NATIVE, 2); }
END_TEST

static Suite *conv_gemm_suite(void) {
  Suite *s = suite_create("codegen_conv_gemm");
  TCase *tc = tcase_create("implicit_gemm");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_native);
  tcase_add_test(tc, test_generic);
  tcase_add_test(tc, test_threads);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(conv_gemm_suite()); }
