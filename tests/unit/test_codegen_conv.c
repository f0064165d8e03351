/* tests/unit/test_codegen_conv.c — the conv and pooling lowerings (codegen/lower_conv.c),
 * compiled by gcc and clang at -Werror, against ir_eval.
 *
 * One module per dtype with many outputs: conv2d over strides, asymmetric padding, dilation,
 * groups and depthwise, with weights from a param, a splat constant (a literal in C, as
 * avg_pool2d makes) and a data constant; conv_transpose2d with output_padding and groups;
 * conv2d_grad_weight; max_pool2d with padding and dilation and its gradient (overlapping
 * windows, so gradients add up). Stride-1 unpadded conv_transpose2d cases take lower_conv.c's
 * fast path (literal weights too), the others the general one. rtol 1e-5 for f32, 1e-12 for
 * f64.
 */
#include "conv_fixture.h"

static NodeId splat(Fixture *fx, DType t, Shape s, double v, const double *data) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  at.constant.shape = s;
  at.constant.value = v;
  at.constant.data = data;
  return graph_add(fx->g, OP_CONST, NULL, 0, &at, LOC, &fx->d);
}

static void conv_outputs(Fixture *fx, DType t) {
  NodeId x = input(fx, "x", t, s4(2, 4, 9, 8));
  NodeId w = param(fx, "w", t, s4(6, 4, 3, 3));
  NodeId wg = param(fx, "wg", t, s4(6, 2, 2, 3));
  NodeId wd = param(fx, "wd", t, s4(4, 1, 3, 3));
  out(fx, "basic", add(fx, OP_CONV2D, x, w, (Attr){0}));
  out(fx, "stride2_pad1", add(fx, OP_CONV2D, x, w, (Attr){.stride = {2, 2}, .pad = {1, 1, 1, 1}}));
  out(fx, "asym", add(fx, OP_CONV2D, x, w, (Attr){.stride = {1, 3}, .pad = {0, 2, 1, 0}}));
  out(fx, "dilated", add(fx, OP_CONV2D, x, w, (Attr){.dil = {2, 3}, .pad = {2, 2, 2, 2}}));
  out(fx, "groups2", add(fx, OP_CONV2D, x, wg, (Attr){.stride = {2, 1}, .groups = 2}));
  out(fx, "depthwise", add(fx, OP_CONV2D, x, wd, (Attr){.pad = {1, 1, 1, 1}, .groups = 4}));
  NodeId avg = splat(fx, t, s4(4, 1, 2, 2), 0.25, NULL);
  out(fx, "avg_literal", add(fx, OP_CONV2D, x, avg, (Attr){.stride = {2, 2}, .groups = 4}));
  out(fx, "literal_fast", add(fx, OP_CONV2D, x, avg, (Attr){.dil = {2, 1}, .groups = 4}));
  static const double k[4] = {1, -2, 0.5, 3};
  NodeId table = splat(fx, t, s4(1, 4, 1, 1), 0, k);
  out(fx, "table_weights", add(fx, OP_CONV2D, x, table, (Attr){0}));
}

static void transpose_outputs(Fixture *fx, DType t) {
  NodeId y = input(fx, "y", t, s4(2, 6, 4, 3));
  NodeId w = param(fx, "wt", t, s4(6, 2, 3, 3));
  out(fx, "convT", add(fx, OP_CONV_TRANSPOSE2D, y, w, (Attr){0}));
  NodeId ws = splat(fx, t, s4(6, 1, 2, 2), -0.5, NULL);
  out(fx, "convT_literal_fast", add(fx, OP_CONV_TRANSPOSE2D, y, ws, (Attr){.groups = 3}));
  out(fx, "convT_s2", add(fx, OP_CONV_TRANSPOSE2D, y, w,
                          (Attr){.stride = {2, 2}, .pad = {1, 1, 1, 1}, .out_pad = {1, 1}}));
  out(fx, "convT_groups", add(fx, OP_CONV_TRANSPOSE2D, y, w,
                              (Attr){.stride = {3, 1}, .dil = {1, 2}, .pad = {0, 1, 2, 0},
                                     .out_pad = {2, 0}, .groups = 3}));
}

static void grad_weight_outputs(Fixture *fx, DType t) {
  NodeId x = input(fx, "gx", t, s4(3, 4, 7, 6));
  NodeId g1 = input(fx, "g1", t, s4(3, 5, 5, 4));
  NodeId g2 = input(fx, "g2", t, s4(3, 6, 4, 3));
  out(fx, "gw", add(fx, OP_CONV2D_GRAD_WEIGHT, x, g1, (Attr){.kernel = {3, 3}}));
  out(fx, "gw_s2_groups", add(fx, OP_CONV2D_GRAD_WEIGHT, x, g2,
                              (Attr){.stride = {2, 2}, .pad = {1, 1, 1, 0}, .kernel = {3, 3},
                                     .groups = 2}));
}

static void pool_outputs(Fixture *fx, DType t) {
  NodeId x = input(fx, "px", t, s4(2, 3, 7, 6));
  Attr a2 = {.stride = {2, 2}, .kernel = {2, 2}};
  Attr a3 = {.stride = {2, 1}, .pad = {1, 1, 1, 1}, .kernel = {3, 3}};
  Attr ad = {.dil = {2, 2}, .kernel = {2, 2}};
  NodeId p2 = add(fx, OP_MAX_POOL2D, x, IR_NONE, a2);
  NodeId p3 = add(fx, OP_MAX_POOL2D, x, IR_NONE, a3);
  NodeId pd = add(fx, OP_MAX_POOL2D, x, IR_NONE, ad);
  out(fx, "pool2", p2);
  out(fx, "pool3_pad", p3);
  out(fx, "pool_dil", pd);
  NodeId g3 = input(fx, "pg", t, graph_node(fx->g, p3)->shape);
  out(fx, "pool2_grad", add(fx, OP_MAX_POOL2D_GRAD, x, p2, a2));
  out(fx, "pool3_grad", add(fx, OP_MAX_POOL2D_GRAD, x, g3, a3)); /* overlapping windows */
  out(fx, "pool_dil_grad", add(fx, OP_MAX_POOL2D_GRAD, x, pd, ad));
  /* windows that tile the image (lower_conv.c's branch-free path), a row and a column past
   * the last window, ties and NaNs: the first maximum / the first NaN wins */
  NodeId tx = input(fx, "tx", t, s4(2, 2, 5, 7));
  Tensor *tt = &fx->inputs[graph_node(fx->g, tx)->attr.source.index];
  static const int64_t nans[] = {1, 7, 8, 15, 23, 29, 30, 37};
  for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) tensor_set(tt, nans[i], NAN);
  tensor_set(tt, 70, 0.5), tensor_set(tt, 71, 0.5), tensor_set(tt, 77, 0.5); /* a tie */
  tensor_set(tt, 78, 0.25);
  tensor_set(tt, 72, 0.0), tensor_set(tt, 73, 0.0), tensor_set(tt, 79, 0.0); /* relu-like */
  tensor_set(tt, 80, 0.0);
  Attr at = {.stride = {2, 2}, .kernel = {2, 2}};
  Attr at3 = {.stride = {2, 3}, .kernel = {2, 3}};
  NodeId tp = add(fx, OP_MAX_POOL2D, tx, IR_NONE, at);
  NodeId tp3 = add(fx, OP_MAX_POOL2D, tx, IR_NONE, at3);
  out(fx, "tile2", tp);
  out(fx, "tile2x3", tp3);
  out(fx, "tile2_grad", add(fx, OP_MAX_POOL2D_GRAD, tx, tp, at));
  out(fx, "tile2x3_grad", add(fx, OP_MAX_POOL2D_GRAD, tx, tp3, at3));
}

/* train_select left in a graph (pipeline.c normally resolves it) copies its choice */
static void select_outputs(Fixture *fx, DType t) {
  NodeId a = input(fx, "sa", t, s4(2, 3, 1, 2)), b = input(fx, "sb", t, s4(2, 3, 1, 2));
  NodeAttr at;
  memset(&at, 0, sizeof at);
  NodeId in[2] = {a, b};
  out(fx, "select_inference", graph_add(fx->g, OP_TRAIN_SELECT, in, 2, &at, LOC, &fx->d));
  at.mode.train = true;
  out(fx, "select_train", graph_add(fx->g, OP_TRAIN_SELECT, in, 2, &at, LOC, &fx->d));
}

static void run(DType t, double rtol) {
  Fixture fx;
  memset(&fx, 0, sizeof fx);
  fx.m = module_new(t == DT_F32 ? "conv32" : "conv64");
  fx.m->source_file = "conv.lathe";
  fx.g = graph_new(fx.m, "forward");
  module_add_entry(fx.m, fx.g);
  diag_init(&fx.d);
  conv_outputs(&fx, t);
  transpose_outputs(&fx, t);
  grad_weight_outputs(&fx, t);
  pool_outputs(&fx, t);
  select_outputs(&fx, t);
  cgh_check_module(fx.m, fx.inputs, fx.params, NULL, rtol);
  for (int i = 0; i < 12; i++) tensor_free(&fx.inputs[i]);
  for (int i = 0; i < 8; i++) tensor_free(&fx.params[i]);
  module_free(fx.m);
  diag_fini(&fx.d);
}

START_TEST(test_conv_f32) { run(DT_F32, 1e-5); }
END_TEST

START_TEST(test_conv_f64) { run(DT_F64, 1e-12); }
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("codegen_conv");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_conv_f32);
  tcase_add_test(tc, test_conv_f64);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return test_run_suite(conv_suite()); }
