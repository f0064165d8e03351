/* tests/unit/test_codegen_conv_direct.c — the direct NCHWc convolutions (codegen/conv_direct.c)
 * that passes/layout.c chooses, against ir_eval: output channels that fill no vector, one
 * vector, and an odd number of vectors (the single-vector micro-kernel path); rows cut into
 * several blocks of pixels with a shorter last one; padding (the zero-bordered copy), stride
 * and dilation; several images; transposed convolutions of stride 1 (flipped weights, uneven
 * zero borders); weight gradients (groups of kernel rows, a partial vector, padding, stride
 * and dilation); a bias + relu epilogue and a residual one, fused into the convolution
 * (per image on the direct path, through a staging buffer on the generic target), and a
 * relu epilogue on rows wider than its local block (chunks of columns); max-pools fused after
 * the epilogue (windows that leave rows and columns uncovered, a stored member, chunks of
 * pooled columns); 3x3 convolutions by Winograd's F(2x2, 3x3), alone (padded, a partial
 * vector, odd rows) and fused with a pool. Each for the native target (AVX-512 here), for x86-64-v3
 * (8-float vectors, 16 registers: other block sizes) and with --threads 2 (built with
 * -fopenmp too), compiled by gcc and clang at -Werror, and once more with
 * -DLATHE_NO_VECTOR_EXTENSIONS, which builds the scalar C99 twins of the micro-kernels. The generic
 * target keeps the implicit GEMM. rtol 1e-4: sums of up to ~600 f32 products.
 */
#include "conv_fixture.h"

/* an elementwise node */
static NodeId ew(Fixture *fx, OpKind op, NodeId a, NodeId b) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  NodeId in[2] = {a, b};
  NodeId id = graph_add(fx->g, op, in, b == IR_NONE ? 1 : 2, &at, LOC, &fx->d);
  ck_assert_msg(id != IR_NONE, "%s: %s", ir_ops[op].name, diag_text(&fx->d));
  return id;
}

static void direct_outputs(Fixture *fx) {
  DType t = DT_F32;
  /* 20 output channels: a vector and a partial one (16 lanes) or three of 8; 31 columns:
   * rows of two or more blocks (on 16 registers 6 + ... + 1: the last columns of 6 rows a
   * call, of rows 0-5 and 1-6, lathe_dconv_tile's g[LATHE_DC_RL]) */
  NodeId x = input(fx, "x", t, s4(3, 5, 9, 33));
  NodeId w = param(fx, "w", t, s4(20, 5, 3, 3));
  out(fx, "ragged", add(fx, OP_CONV2D, x, w, (Attr){0}));
  /* 8 channels (under one 16-float vector), padded, strided, dilated */
  NodeId xs = input(fx, "xs", t, s4(2, 3, 17, 21));
  NodeId ws = param(fx, "ws", t, s4(8, 3, 3, 2));
  out(fx, "strided",
      add(fx, OP_CONV2D, xs, ws, (Attr){.stride = {2, 2}, .pad = {1, 2, 0, 1}, .dil = {2, 1}}));
  /* 48 channels: three vectors of 16, the last one alone; 5 x 5 kernel, "same" padding */
  NodeId xb = input(fx, "xb", t, s4(2, 7, 12, 12));
  NodeId wb = param(fx, "wb", t, s4(48, 7, 5, 5));
  out(fx, "same", add(fx, OP_CONV2D, xb, wb, (Attr){.pad = {2, 2, 2, 2}}));
  /* transposed, stride 1: the input gradient of "ragged" (zero border of 2 on every side),
   * and of a padded, dilated convolution with output padding (uneven borders) */
  NodeId gy = input(fx, "gy", t, s4(3, 20, 7, 31));
  out(fx, "ragged_dx", add(fx, OP_CONV_TRANSPOSE2D, gy, w, (Attr){0}));
  NodeId gz = input(fx, "gz", t, s4(2, 8, 6, 9));
  out(fx, "dilated_dx", add(fx, OP_CONV_TRANSPOSE2D, gz, ws,
                            (Attr){.pad = {1, 0, 2, 1}, .dil = {2, 2}, .out_pad = {1, 0}}));
  /* weight gradients: of "ragged" (20 channels, two groups of tap rows on 16 registers), and
   * of the padded, strided, dilated one (8 channels, a partial vector) */
  out(fx, "ragged_dw", add(fx, OP_CONV2D_GRAD_WEIGHT, x, gy, (Attr){.kernel = {3, 3}}));
  /* and of 4 input channels (on 16 registers the last kernel row of two channels a call,
   * lathe_dconv_wimage's g[LATHE_DC_RL]) */
  NodeId xc = input(fx, "xc", t, s4(2, 4, 8, 10)), gc = input(fx, "gc", t, s4(2, 20, 6, 8));
  out(fx, "paired_dw", add(fx, OP_CONV2D_GRAD_WEIGHT, xc, gc, (Attr){.kernel = {3, 3}}));
  NodeId gs = input(fx, "gs", t, s4(2, 8, 7, 12));
  out(fx, "strided_dw", add(fx, OP_CONV2D_GRAD_WEIGHT, xs, gs,
                            (Attr){.stride = {2, 2}, .pad = {1, 2, 0, 1}, .dil = {2, 1},
                                   .kernel = {3, 2}}));
  for (NodeId id = 0; id < fx->g->n_nodes; id++)
    if (fx->g->nodes[id].op != OP_INPUT && fx->g->nodes[id].op != OP_PARAM)
      fx->g->nodes[id].attr.conv.layout = IR_CONV_NCHWC;
  /* epilogues (passes/fuse.c): relu(conv + bias), the conv read only inside its kernel; and
   * conv + residual with the conv an output too (stored), 20 channels: a partial vector */
  NodeId bias = param(fx, "bias", t, shape_make(3, (int64_t[]){20, 1, 1}));
  NodeId c1 = add(fx, OP_CONV2D, x, w, (Attr){0});
  NodeId c2 = add(fx, OP_CONV2D, x, w, (Attr){0});
  fx->g->nodes[c1].attr.conv.layout = fx->g->nodes[c2].attr.conv.layout = IR_CONV_NCHWC;
  out(fx, "bias_relu", ew(fx, OP_RELU, ew(fx, OP_ADD, c1, bias), IR_NONE));
  out(fx, "conv_stored", c2);
  out(fx, "residual", ew(fx, OP_ADD, c2, input(fx, "res", t, s4(3, 20, 7, 31))));
  /* rows of 298 columns: wider than one block of the epilogue with 16-float vectors */
  NodeId xw = input(fx, "xw", t, s4(1, 2, 4, 300)), ww = param(fx, "ww", t, s4(20, 2, 3, 3));
  NodeId c3 = add(fx, OP_CONV2D, xw, ww, (Attr){0});
  fx->g->nodes[c3].attr.conv.layout = IR_CONV_NCHWC;
  out(fx, "wide_relu", ew(fx, OP_RELU, c3, IR_NONE));
  /* max-pools ending the group (passes/fuse.c): 2x2 on 7 x 31 (a row and a column no window
   * covers); 3x3 after a member that is stored (an output: the uncovered elements still get
   * their epilogue); 2x2 on rows of 298 columns (chunks of pooled columns) */
  NodeId c4 = add(fx, OP_CONV2D, x, w, (Attr){0}), c5 = add(fx, OP_CONV2D, x, w, (Attr){0});
  NodeId c6 = add(fx, OP_CONV2D, xw, ww, (Attr){0});
  fx->g->nodes[c4].attr.conv.layout = fx->g->nodes[c5].attr.conv.layout = IR_CONV_NCHWC;
  fx->g->nodes[c6].attr.conv.layout = IR_CONV_NCHWC;
  Attr pool2 = {.stride = {2, 2}, .kernel = {2, 2}}, pool3 = {.stride = {3, 3}, .kernel = {3, 3}};
  NodeId p4 =
      add(fx, OP_MAX_POOL2D, ew(fx, OP_RELU, ew(fx, OP_ADD, c4, bias), IR_NONE), IR_NONE, pool2);
  out(fx, "pooled", p4);
  NodeId a5 = ew(fx, OP_ADD, c5, bias);
  out(fx, "pre_pool", a5);
  NodeId p5 = add(fx, OP_MAX_POOL2D, ew(fx, OP_RELU, a5, IR_NONE), IR_NONE, pool3);
  out(fx, "pooled_rest", p5);
  NodeId p6 = add(fx, OP_MAX_POOL2D, ew(fx, OP_RELU, c6, IR_NONE), IR_NONE, pool2);
  out(fx, "wide_pooled", p6);
  /* Winograd's F(2x2, 3x3) (conv_winograd.c, 3x3 stride 1, >= 16 channels): "same" padding
   * with 20 output channels (a partial vector; 9 rows, an odd number: half a row of tiles)
   * unfused, and 32 channels (7 x 8 output) with relu and a 2x2 pool fused */
  NodeId xq = input(fx, "xq", t, s4(4, 16, 9, 10)); /* >= 4 images: Winograd */
  NodeId wq = param(fx, "wq", t, s4(20, 16, 3, 3)), wq2 = param(fx, "wq2", t, s4(32, 16, 3, 3));
  NodeId c7 = add(fx, OP_CONV2D, xq, wq, (Attr){.pad = {1, 1, 1, 1}});
  NodeId c8 = add(fx, OP_CONV2D, xq, wq2, (Attr){0});
  fx->g->nodes[c7].attr.conv.layout = fx->g->nodes[c8].attr.conv.layout = IR_CONV_NCHWC;
  out(fx, "wino_same", c7);
  out(fx, "wino_pooled", add(fx, OP_MAX_POOL2D, ew(fx, OP_RELU, c8, IR_NONE), IR_NONE, pool2));
  Diag d;
  diag_init(&d);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert_msg(pass_fuse(fx->g, &c), "fuse: %s", diag_text(&d));
  ck_assert(fx->g->nodes[c1].group == (int32_t)c1 && fx->g->nodes[c2].group == (int32_t)c2);
  ck_assert(fx->g->nodes[p4].group == (int32_t)c4 && fx->g->nodes[p5].group == (int32_t)c5 &&
            fx->g->nodes[p6].group == (int32_t)c6);
  pass_ctx_fini(&c);
  diag_fini(&d);
}

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
  bool direct = strstr(c_text, "lathe_dconv_image(") != NULL;
  ck_assert_msg(direct == (t != CG_TARGET_GENERIC), "direct convolution %s",
                direct ? "on the generic target" : "missing");
  ck_assert(!direct || strstr(c_text, "lathe_dconv_pack_wt(") != NULL); /* the transposed */
  ck_assert(!direct || strstr(c_text, "lathe_dconv_wimage(") != NULL);  /* weight gradients */
  ck_assert(!direct || strstr(c_text, "lathe_dconv_tile(x + ") != NULL); /* with epilogues */
  ck_assert(direct || strstr(c_text, "into a staging buffer") != NULL);
  const char *fused = strstr(c_text, "fused kernel: 3 nodes, convolution + epilogue");
  ck_assert_msg(fused && strstr(c_text, "fused kernel: 2 nodes, convolution + epilogue"),
                "the conv epilogues are not fused");
  ck_assert(strstr(c_text, "fused kernel: 4 nodes, convolution + epilogue + max-pool"));
  ck_assert(strstr(c_text, "fused kernel: 3 nodes, convolution + epilogue + max-pool"));
  ck_assert(!direct || strstr(c_text, "lathe_dconv_image(lathe_wino_tile, xq + "));
  ck_assert(!direct || strstr(c_text, "lathe_wino_tile(xq + "));
  ck_assert(t != CG_TARGET_GENERIC || strstr(c_text, "__attribute__") == NULL);
  /* on 16 registers: the last columns of 6 rows of "ragged" (33 floats apart in x, 31 pixels
   * in the tile) and the last kernel rows of 2 of paired_dw's channels (80 floats apart) */
  ck_assert(t != CG_TARGET_X86_64_V3 || strstr(c_text, "lathe_dconv_k1s1_r6x33_248("));
  ck_assert(t != CG_TARGET_X86_64_V3 || strstr(c_text, "lathe_dconv_w2x3_80_1_1_a72("));
  ck_assert((strstr(c_text, "LATHE_OMP_FOR") != NULL) == (threads > 1));
  /* the scalar twins too, as a compiler without vector extensions builds them */
  fx_check_builds(m, inputs, params, c_text, h_text, direct && threads == 1, threads);
  free(c_text);
  free(h_text);
  diag_fini(&d);
}

static void run(CgTarget target, int threads) {
  Fixture fx;
  fx_open(&fx, "convdirect");
  direct_outputs(&fx);
  cgh_plan(fx.m);
  check_target(fx.m, fx.inputs, fx.params, target, threads);
  fx_close(&fx);
}

START_TEST(test_native) { run(CG_TARGET_NATIVE, 1); }
END_TEST

START_TEST(test_avx2) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
    ck_abort_msg("this machine cannot run x86-64-v3 code; the test needs AVX2 and FMA");
  run(CG_TARGET_X86_64_V3, 1);
}
END_TEST

START_TEST(test_generic) { run(CG_TARGET_GENERIC, 1); }
END_TEST

START_TEST(test_threads) { run(CG_TARGET_NATIVE, 2); }
END_TEST

/* a forward convolution alone (inference): only the routines it uses are written (no
 * lathe_dconv_pack_wt, no unused static function under -Werror) */
START_TEST(test_forward_only) {
  Fixture fx;
  memset(&fx, 0, sizeof fx);
  fx.m = module_new("convfwd");
  fx.m->source_file = "conv.lathe";
  fx.g = graph_new(fx.m, "forward");
  module_add_entry(fx.m, fx.g);
  diag_init(&fx.d);
  NodeId c = add(&fx, OP_CONV2D, input(&fx, "x", DT_F32, s4(2, 3, 8, 9)),
                 param(&fx, "w", DT_F32, s4(16, 3, 3, 3)), (Attr){0});
  fx.g->nodes[c].attr.conv.layout = IR_CONV_NCHWC;
  out(&fx, "y", c);
  cgh_check_module(fx.m, fx.inputs, fx.params, NULL, 1e-4);
  tensor_free(&fx.inputs[0]);
  tensor_free(&fx.params[0]);
  module_free(fx.m);
  diag_fini(&fx.d);
}
END_TEST

static Suite *conv_direct_suite(void) {
  Suite *s = suite_create("codegen_conv_direct");
  TCase *tc = tcase_create("direct");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, test_native);
#if defined(__x86_64__)
  tcase_add_test(tc, test_avx2);
#endif
  tcase_add_test(tc, test_generic);
  tcase_add_test(tc, test_threads);
  tcase_add_test(tc, test_forward_only);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(conv_direct_suite()); }
