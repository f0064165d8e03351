/* tests/unit/test_api_onnx.c — lathe_compile_file on an .onnx file compiles it like the CLI
 * does (import → frontend → passes → code) with the file's initializers as the params, a
 * dynamic dimension fixed through lathe_options.defines; a malformed .onnx file gives the
 * importer's error, not the binary read as .lathe source.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lathe/lathe.h"
#include "onnx/onnx.pb-c.h"
#include "tests/unit/testutil.h"

static Onnx__TensorShapeProto__Dimension dim_batch, dim_three, dim_four;
static Onnx__TensorShapeProto__Dimension *x_dims[] = {&dim_batch, &dim_three};
static Onnx__TensorShapeProto__Dimension *y_dims[] = {&dim_batch, &dim_four};

/* a float value info of the given dims */
static Onnx__ValueInfoProto *value_info(const char *name, Onnx__TensorShapeProto__Dimension **dims,
                                        size_t rank) {
  Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
  Onnx__TypeProto *t = calloc(1, sizeof *t);
  Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
  Onnx__TensorShapeProto *s = calloc(1, sizeof *s);
  onnx__value_info_proto__init(v), onnx__type_proto__init(t);
  onnx__type_proto__tensor__init(tt), onnx__tensor_shape_proto__init(s);
  s->n_dim = rank, s->dim = dims;
  tt->has_elem_type = 1, tt->elem_type = 1, tt->shape = s;
  t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, t->tensor_type = tt;
  v->name = (char *)name, v->type = t;
  return v;
}

static void value_info_free(Onnx__ValueInfoProto *v) {
  free(v->type->tensor_type->shape), free(v->type->tensor_type), free(v->type), free(v);
}

static float weight[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bias[4] = {1, -1, 2, -20};

/* y = relu(x[batch, 3] @ fc.weight[3, 4] + fc.bias[4]), written to path */
static void write_model(const char *path) {
  onnx__tensor_shape_proto__dimension__init(&dim_batch);
  dim_batch.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
  dim_batch.dim_param = "batch";
  onnx__tensor_shape_proto__dimension__init(&dim_three);
  dim_three.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
  dim_three.dim_value = 3;
  dim_four = dim_three, dim_four.dim_value = 4;
  static int64_t wd[2] = {3, 4}, bd[1] = {4};
  Onnx__TensorProto w, b, *inits[2] = {&w, &b};
  onnx__tensor_proto__init(&w), onnx__tensor_proto__init(&b);
  w.name = "fc.weight", w.has_data_type = 1, w.data_type = 1, w.n_dims = 2, w.dims = wd;
  w.n_float_data = 12, w.float_data = weight;
  b.name = "fc.bias", b.has_data_type = 1, b.data_type = 1, b.n_dims = 1, b.dims = bd;
  b.n_float_data = 4, b.float_data = bias;
  static char *mm_in[] = {"x", "fc.weight"}, *mm_out[] = {"h"}, *add_in[] = {"h", "fc.bias"},
              *add_out[] = {"z"}, *relu_in[] = {"z"}, *relu_out[] = {"y"};
  char *ops[3] = {"MatMul", "Add", "Relu"}, **ins[3] = {mm_in, add_in, relu_in};
  char **outs[3] = {mm_out, add_out, relu_out};
  Onnx__NodeProto nodes[3], *node_ptrs[3];
  for (int i = 0; i < 3; i++) {
    onnx__node_proto__init(&nodes[i]);
    nodes[i].op_type = ops[i], nodes[i].n_input = i < 2 ? 2 : 1, nodes[i].input = ins[i];
    nodes[i].n_output = 1, nodes[i].output = outs[i], node_ptrs[i] = &nodes[i];
  }
  Onnx__ValueInfoProto *in = value_info("x", x_dims, 2), *out = value_info("y", y_dims, 2);
  Onnx__GraphProto g;
  onnx__graph_proto__init(&g);
  g.name = "g", g.n_node = 3, g.node = node_ptrs, g.n_initializer = 2, g.initializer = inits;
  g.n_input = 1, g.input = &in, g.n_output = 1, g.output = &out;
  Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
  onnx__operator_set_id_proto__init(&opset);
  opset.has_version = 1, opset.version = 13;
  Onnx__ModelProto m;
  onnx__model_proto__init(&m);
  m.graph = &g, m.n_opset_import = 1, m.opset_import = opsets;
  size_t len = onnx__model_proto__get_packed_size(&m);
  uint8_t *buf = malloc(len);
  onnx__model_proto__pack(&m, buf);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
  fclose(f);
  free(buf), value_info_free(in), value_info_free(out);
}

START_TEST(compiles_onnx_with_its_weights) {
  char dir[] = "/tmp/lathe-api-onnx-XXXXXX", path[200];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/small.onnx", dir);
  write_model(path);
  const char *defines[] = {"batch=2"};
  lathe_options o;
  lathe_options_init(&o);
  o.defines = defines, o.n_defines = 1;
  char *err = NULL;
  lathe_model *m = lathe_compile_file(path, &o, &err);
  ck_assert_msg(m != NULL, "compile %s: %s", path, err ? err : "");
  float x[6] = {1, 0, -1, 0.5f, 2, 1}, y[8] = {0};
  const int64_t xs[] = {2, 3}, ys[] = {2, 4};
  lathe_tensor in = {"x", LATHE_F32, 2, xs, x}, out = {"y", LATHE_F32, 2, ys, y};
  ck_assert_msg(lathe_call(m, "forward", &in, 1, &out, 1, NULL) == 0, "%s", lathe_error(m));
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++) { /* the file's weights, not the initializers' */
      float z = bias[j];
      for (int k = 0; k < 3; k++)
        z += x[i * 3 + k] * weight[k * 4 + j];
      ck_assert_msg(fabsf(y[i * 4 + j] - (z > 0 ? z : 0)) < 1e-5f, "y[%d][%d] = %g, want %g", i, j,
                    y[i * 4 + j], z > 0 ? z : 0);
    }
  lathe_free(m);
  unlink(path), rmdir(dir);
}
END_TEST

/* the dynamic dim with an invalid define, and bytes that are no ONNX model: the importer's
 * errors naming the file, never the bytes parsed as .lathe */
START_TEST(onnx_errors_are_the_importers) {
  char dir[] = "/tmp/lathe-api-onnx-XXXXXX", path[200];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/small.onnx", dir);
  write_model(path);
  char *err = NULL;
  const char *zero[] = {"batch=0"}; /* without a define the batch is dynamic, not an error */
  lathe_options o;
  lathe_options_init(&o);
  o.defines = zero, o.n_defines = 1;
  ck_assert_ptr_null(lathe_compile_file(path, &o, &err));
  ck_assert_msg(strstr(err, "-D batch=VALUE") != NULL, "%s", err);
  lathe_string_free(err);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fputs("model m(x: f32[2]) { output y = x }\n\xff\x01garbage", f);
  fclose(f);
  ck_assert_ptr_null(lathe_compile_file(path, NULL, &err));
  ck_assert_msg(strstr(err, path) && !strstr(err, "expected"), "%s", err);
  lathe_string_free(err);
  unlink(path), rmdir(dir);
}
END_TEST

static Suite *api_onnx_suite(void) {
  Suite *s = suite_create("api_onnx");
  TCase *tc = tcase_create("onnx");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, compiles_onnx_with_its_weights);
  tcase_add_test(tc, onnx_errors_are_the_importers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(api_onnx_suite());
}
