/* tests/unit/test_import_diag.c — the ONNX importer on models built here with protobuf-c:
 * a small graph imports to the expected .lathe text and weights; every unsupported node is
 * listed at once with its name, op and reason; a symbolic batch is the dynamic dimension and
 * other dynamic dims need -D; malformed, truncated
 * and empty inputs are rejected with a clear error, never a crash.
 */
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "import/import.h"
#include "onnx/onnx.pb-c.h"
#include "tests/unit/testutil.h"

/* ---- building models ---- */

typedef struct Builder {
  Onnx__ModelProto model;
  Onnx__GraphProto graph;
  Onnx__OperatorSetIdProto opset, *opsets[1];
  Onnx__NodeProto nodes[8], *node_ptrs[8];
  Onnx__ValueInfoProto ins[4], outs[4], *in_ptrs[4], *out_ptrs[4];
  Onnx__TypeProto types[8];
  Onnx__TypeProto__Tensor tts[8];
  Onnx__TensorShapeProto shapes[8];
  Onnx__TensorShapeProto__Dimension dims[8][4], *dim_ptrs[8][4];
  Onnx__TensorProto inits[4], *init_ptrs[4];
  int n_types;
} Builder;

static void builder_init(Builder *b, int64_t opset) {
  memset(b, 0, sizeof *b);
  onnx__model_proto__init(&b->model);
  onnx__graph_proto__init(&b->graph);
  onnx__operator_set_id_proto__init(&b->opset);
  b->opset.has_version = 1, b->opset.version = opset;
  b->opsets[0] = &b->opset;
  b->model.n_opset_import = 1, b->model.opset_import = b->opsets;
  b->model.graph = &b->graph;
  b->graph.node = b->node_ptrs, b->graph.input = b->in_ptrs, b->graph.output = b->out_ptrs;
  b->graph.initializer = b->init_ptrs;
}

/* a float tensor value info; a dim of -1 is dynamic, named `param` */
static Onnx__ValueInfoProto *value(Builder *b, Onnx__ValueInfoProto *v, char *name, int rank,
                                   const int64_t *dims, char *param) {
  int t = b->n_types++;
  onnx__value_info_proto__init(v);
  onnx__type_proto__init(&b->types[t]);
  onnx__type_proto__tensor__init(&b->tts[t]);
  onnx__tensor_shape_proto__init(&b->shapes[t]);
  for (int i = 0; i < rank; i++) {
    Onnx__TensorShapeProto__Dimension *d = &b->dims[t][i];
    onnx__tensor_shape_proto__dimension__init(d);
    if (dims[i] < 0)
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, d->dim_param = param;
    else
      d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, d->dim_value = dims[i];
    b->dim_ptrs[t][i] = d;
  }
  b->shapes[t].n_dim = (size_t)rank, b->shapes[t].dim = b->dim_ptrs[t];
  b->tts[t].has_elem_type = 1, b->tts[t].elem_type = 1, b->tts[t].shape = &b->shapes[t];
  b->types[t].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
  b->types[t].tensor_type = &b->tts[t];
  v->name = name, v->type = &b->types[t];
  return v;
}

static void add_input(Builder *b, char *name, int rank, const int64_t *dims, char *param) {
  size_t k = b->graph.n_input++;
  b->in_ptrs[k] = value(b, &b->ins[k], name, rank, dims, param);
}

static void add_output(Builder *b, char *name, int rank, const int64_t *dims) {
  size_t k = b->graph.n_output++;
  b->out_ptrs[k] = value(b, &b->outs[k], name, rank, dims, NULL);
}

static void add_node(Builder *b, char *op, char *name, char **in, int n_in, char **out) {
  size_t k = b->graph.n_node++;
  Onnx__NodeProto *n = &b->nodes[k];
  onnx__node_proto__init(n);
  n->op_type = op, n->name = name;
  n->n_input = (size_t)n_in, n->input = in;
  n->n_output = 1, n->output = out;
  b->node_ptrs[k] = n;
}

static void add_init(Builder *b, char *name, int rank, int64_t *dims, float *data, size_t n) {
  size_t k = b->graph.n_initializer++;
  Onnx__TensorProto *t = &b->inits[k];
  onnx__tensor_proto__init(t);
  t->name = name, t->has_data_type = 1, t->data_type = 1;
  t->n_dims = (size_t)rank, t->dims = dims;
  t->n_float_data = n, t->float_data = data;
  b->init_ptrs[k] = t;
}

static uint8_t *pack(const Builder *b, size_t *len) {
  *len = onnx__model_proto__get_packed_size(&b->model);
  uint8_t *buf = malloc(*len + 1);
  onnx__model_proto__pack(&b->model, buf);
  return buf;
}

/* x[2, 3] @ w[3, 4] + bias, relu */
static uint8_t *mlp_model(size_t *len, int64_t batch) {
  static int64_t xd[2], yd[2] = {2, 4}, wd[2] = {3, 4}, bd[1] = {4};
  static float w[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bias[4] = {1, -1, 2, -2};
  static char *mm_in[] = {"x", "fc.weight"}, *mm_out[] = {"h"}, *add_in[] = {"h", "fc.bias"},
              *add_out[] = {"z"}, *relu_in[] = {"z"}, *relu_out[] = {"y"};
  xd[0] = batch, xd[1] = 3;
  Builder b;
  builder_init(&b, 13);
  add_input(&b, "x", 2, xd, "batch");
  add_output(&b, "y", 2, yd);
  add_init(&b, "fc.weight", 2, wd, w, 12);
  add_init(&b, "fc.bias", 1, bd, bias, 4);
  add_node(&b, "MatMul", "/fc/MatMul", mm_in, 2, mm_out);
  add_node(&b, "Add", "/fc/Add", add_in, 2, add_out);
  add_node(&b, "Relu", "/act", relu_in, 1, relu_out);
  return pack(&b, len);
}

static bool run_import(const uint8_t *data, size_t len, const Define *defs, int n_defs,
                       ImportResult *r, Diag *d) {
  ImportOptions o;
  import_options_init(&o);
  o.defines = defs, o.n_defines = n_defs;
  return onnx_import("m.onnx", data, len, &o, r, d);
}

START_TEST(imports_small_graph) {
  size_t len;
  uint8_t *data = mlp_model(&len, 2);
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert_msg(run_import(data, len, NULL, 0, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(x: f32[2, 3])"));
  ck_assert_ptr_nonnull(strstr(r.text, "t_h = x @ p_fc_weight  # MatMul /fc/MatMul"));
  ck_assert_ptr_nonnull(strstr(r.text, "output y = t_y"));
  ck_assert_int_eq(r.weights.n, 2);
  const Tensor *w = rt_set_find(&r.weights, "p_fc_weight.w");
  ck_assert_ptr_nonnull(w);
  ck_assert_int_eq(w->shape.rank, 2);
  ck_assert(tensor_get(w, 11) == 12.0);
  ck_assert_int_eq(r.n_outputs, 1);
  ck_assert_str_eq(r.output_names[0], "y");
  import_result_fini(&r);
  diag_fini(&d);
  free(data);
}
END_TEST

/* the imported text elaborates; its input x has the expected axis 0 */
static void check_elaborates(const char *text, const Define *def, int64_t dim0, int64_t dyn) {
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.defines = def, fo.n_defines = def ? 1 : 0;
  Module *m = frontend_compile("m.lathe", text, &fo, &d);
  ck_assert_msg(m != NULL, "%s\n%s", diag_text(&d), text);
  ck_assert_int_eq(m->inputs[0].shape.dim[0], dim0);
  ck_assert_int_eq(m->inputs[0].shape.dyn, dyn);
  ck_assert_int_eq(m->dyn_max, dyn ? dim0 : 0);
  module_free(m);
  diag_fini(&d);
}

/* a symbolic batch (axis 0) is the dynamic dimension, bounded by max_batch (default 64);
 * -D batch=N still fixes it, -D batch=dynamic(max=M) changes the bound */
START_TEST(dynamic_batch) {
  size_t len;
  uint8_t *data = mlp_model(&len, -1);
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert_msg(run_import(data, len, NULL, 0, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const batch = dynamic(max = 64)"));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(x: f32[batch, 3])"));
  check_elaborates(r.text, NULL, 64, 1);
  import_result_fini(&r);
  ImportOptions o;
  import_options_init(&o);
  ck_assert_int_eq(o.max_batch, 64);
  o.max_batch = 8;
  ck_assert_msg(onnx_import("m.onnx", data, len, &o, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const batch = dynamic(max = 8)"));
  check_elaborates(r.text, NULL, 8, 1);
  import_result_fini(&r);
  Define def = {.name = "batch", .value = 2};
  ck_assert_msg(run_import(data, len, &def, 1, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const batch = 2"));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(x: f32[batch, 3])"));
  check_elaborates(r.text, &def, 2, 0);
  import_result_fini(&r);
  Define bound = {.name = "batch", .value = 16, .dynamic = true};
  ck_assert_msg(run_import(data, len, &bound, 1, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const batch = dynamic(max = 16)"));
  check_elaborates(r.text, NULL, 16, 1);
  import_result_fini(&r);
  free(data);
  data = mlp_model(&len, 0); /* dim_value 0 on axis 0: an unnamed batch */
  ck_assert_msg(run_import(data, len, NULL, 0, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const batch = dynamic(max = 64)"));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(x: f32[batch, 3])"));
  import_result_fini(&r);
  ck_assert_int_eq(d.n_errors, 0);
  diag_fini(&d);
  free(data);
}
END_TEST

/* x[batch, 2, 3] -> Flatten -> Gemm(w[6, 4], bias[4]) -> y */
static uint8_t *flatten_model(size_t *len) {
  static int64_t xd[3] = {-1, 2, 3}, yd[2] = {-1, 4}, wd[2] = {6, 4}, bd[1] = {4};
  static float w[24], bias[4];
  static char *fl_in[] = {"x"}, *fl_out[] = {"f"}, *g_in[] = {"f", "w", "bias"}, *g_out[] = {"y"};
  Builder b;
  builder_init(&b, 13);
  add_input(&b, "x", 3, xd, "N");
  add_output(&b, "y", 2, yd);
  add_init(&b, "w", 2, wd, w, 24);
  add_init(&b, "bias", 1, bd, bias, 4);
  add_node(&b, "Flatten", "flat", fl_in, 1, fl_out);
  add_node(&b, "Gemm", "fc", g_in, 3, g_out);
  return pack(&b, len);
}

/* the batch flows through Flatten and Gemm as the dynamic axis 0 of their shapes */
START_TEST(dynamic_batch_through_ops) {
  size_t len;
  uint8_t *data = flatten_model(&len);
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert_msg(run_import(data, len, NULL, 0, &r, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(strstr(r.text, "const N = dynamic(max = 64)"));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(x: f32[N, 2, 3])"));
  ck_assert_msg(strstr(r.text, "reshape(x, [N, 6])") != NULL, "%s", r.text);
  check_elaborates(r.text, NULL, 64, 1);
  import_result_fini(&r);
  diag_fini(&d);
  free(data);
}
END_TEST

static uint8_t *two_input_model(size_t *len, int64_t *ad, char *ap, int64_t *bd, char *bp) {
  static char *in[] = {"a", "b"}, *out[] = {"y"};
  static int64_t yd[2] = {2, 3};
  Builder b;
  builder_init(&b, 14);
  add_input(&b, "a", 2, ad, ap);
  add_input(&b, "b", 2, bd, bp);
  add_output(&b, "y", 2, yd);
  add_node(&b, "Add", "add", in, 2, out);
  return pack(&b, len);
}

/* only axis 0 can be dynamic, and only one batch: the rest still needs -D */
START_TEST(other_dynamic_dims_need_defines) {
  static int64_t lead[2] = {-1, 3}, second[2] = {2, -1};
  size_t len;
  uint8_t *data = two_input_model(&len, lead, "batch", second, "width");
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert(!run_import(data, len, NULL, 0, &r, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "graph input 'b': dimension 1 is dynamic ('width'); "
                                              "fix it with -D width=VALUE"));
  ck_assert_ptr_null(r.text);
  diag_fini(&d);
  diag_init(&d);
  Define dyn_width = {.name = "width", .value = 4, .dynamic = true};
  ck_assert(!run_import(data, len, &dyn_width, 1, &r, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "graph input 'b': dimension 1 ('width') cannot be "
                                              "dynamic; only axis 0 (the batch) can"));
  diag_fini(&d);
  free(data);
  diag_init(&d);
  data = two_input_model(&len, lead, "batch", lead, "other");
  ck_assert(!run_import(data, len, NULL, 0, &r, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "graph input 'b': axis 0 is a second symbolic "
                                              "batch ('other'; the first is 'batch')"));
  diag_fini(&d);
  free(data);
  static int64_t bound[2] = {64, 3}; /* a static axis of the bound's size is not the batch */
  diag_init(&d);
  data = two_input_model(&len, lead, "batch", bound, NULL);
  ck_assert(!run_import(data, len, NULL, 0, &r, &d));
  ck_assert_msg(strstr(diag_text(&d), "node 'add' (Add): shapes [n<=64, 3] and [64, 3] do not "
                                      "broadcast with the dynamic batch 'batch'") != NULL,
                "%s", diag_text(&d));
  diag_fini(&d);
  free(data);
}
END_TEST

START_TEST(shared_dynamic_dim_is_one_const) {
  static int64_t xd[2] = {-1, 3};
  static char *in[] = {"a", "b"}, *out[] = {"y"};
  Builder b;
  builder_init(&b, 14);
  add_input(&b, "a", 2, xd, "batch");
  add_input(&b, "b", 2, xd, "batch");
  add_output(&b, "y", 2, xd);
  add_node(&b, "Add", "add", in, 2, out);
  size_t len;
  uint8_t *data = pack(&b, &len);
  Diag d;
  diag_init(&d);
  ImportResult r;
  Define def = {.name = "batch", .value = 5};
  ck_assert_msg(run_import(data, len, &def, 1, &r, &d), "%s", diag_text(&d));
  const char *first = strstr(r.text, "const batch = 5");
  ck_assert_ptr_nonnull(first);
  ck_assert_ptr_null(strstr(first + 1, "const batch"));
  ck_assert_ptr_nonnull(strstr(r.text, "model m(a: f32[batch, 3], b: f32[batch, 3])"));
  FrontendOptions fo; /* the text is a valid model, with the same -D */
  frontend_options_init(&fo);
  fo.defines = &def, fo.n_defines = 1;
  Module *m = frontend_compile("m.lathe", r.text, &fo, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  module_free(m);
  import_result_fini(&r);
  diag_fini(&d);
  free(data);
}
END_TEST

START_TEST(lists_every_unsupported_node) {
  static int64_t xd[2] = {2, 3};
  static char *a_in[] = {"x"}, *a_out[] = {"a"}, *b_in[] = {"a"}, *b_out[] = {"b"},
              *c_in[] = {"x"}, *c_out[] = {"c"}, *d_in[] = {"b", "c"}, *d_out[] = {"y"};
  Builder b;
  builder_init(&b, 17);
  add_input(&b, "x", 2, xd, NULL);
  add_output(&b, "y", 2, xd);
  add_node(&b, "Asin", "first_bad", a_in, 1, a_out);
  add_node(&b, "Relu", "after_bad", b_in, 1, b_out); /* reads a failed value: not listed */
  add_node(&b, "Atan", "second_bad", c_in, 1, c_out);
  add_node(&b, "Add", "sum", d_in, 2, d_out);
  size_t len;
  uint8_t *data = pack(&b, &len);
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert(!run_import(data, len, NULL, 0, &r, &d));
  const char *t = diag_text(&d);
  ck_assert_ptr_nonnull(strstr(t, "node 'first_bad' (Asin): operator 'Asin' is not supported"));
  ck_assert_ptr_nonnull(strstr(t, "node 'second_bad' (Atan): operator 'Atan' is not supported"));
  ck_assert_ptr_null(strstr(t, "after_bad"));
  ck_assert_int_eq(d.n_errors, 2);
  diag_fini(&d);
  free(data);
}
END_TEST

START_TEST(rejects_malformed_and_truncated) {
  size_t len;
  uint8_t *data = mlp_model(&len, 2);
  int rejected = 0;
  for (size_t cut = 0; cut < len; cut++) { /* every truncation: an error or a valid import */
    Diag d;
    diag_init(&d);
    ImportResult r;
    bool ok = run_import(data, cut, NULL, 0, &r, &d);
    ck_assert_msg(ok || d.n_errors > 0, "rejected without an error at %zu bytes", cut);
    if (ok) import_result_fini(&r);
    rejected += !ok;
    diag_fini(&d);
  }
  ck_assert_int_gt(rejected, (int)len / 2);
  Diag d;
  diag_init(&d);
  ImportResult r;
  const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99};
  ck_assert(!run_import(junk, sizeof junk, NULL, 0, &r, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "not a valid ONNX model"));
  diag_fini(&d);
  diag_init(&d);
  ck_assert(!run_import(data, 0, NULL, 0, &r, &d));
  ck_assert_int_gt(d.n_errors, 0);
  diag_fini(&d);
  free(data);
}
END_TEST

START_TEST(rejects_unsupported_opset) {
  static int64_t xd[2] = {2, 3};
  static char *in[] = {"x"}, *out[] = {"y"};
  Builder b;
  builder_init(&b, 3);
  add_input(&b, "x", 2, xd, NULL);
  add_output(&b, "y", 2, xd);
  add_node(&b, "Relu", "r", in, 1, out);
  size_t len;
  uint8_t *data = pack(&b, &len);
  Diag d;
  diag_init(&d);
  ImportResult r;
  ck_assert(!run_import(data, len, NULL, 0, &r, &d));
  ck_assert_ptr_nonnull(strstr(diag_text(&d), "opset 3 is not supported"));
  diag_fini(&d);
  free(data);
}
END_TEST

static Suite *import_diag_suite(void) {
  Suite *s = suite_create("import_diag");
  TCase *tc = tcase_create("import");
  tcase_add_test(tc, imports_small_graph);
  tcase_add_test(tc, dynamic_batch);
  tcase_add_test(tc, other_dynamic_dims_need_defines);
  tcase_add_test(tc, dynamic_batch_through_ops);
  tcase_add_test(tc, shared_dynamic_dim_is_one_const);
  tcase_add_test(tc, lists_every_unsupported_node);
  tcase_add_test(tc, rejects_malformed_and_truncated);
  tcase_add_test(tc, rejects_unsupported_opset);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(import_diag_suite());
}
