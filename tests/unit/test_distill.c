/* tests/unit/test_distill.c — the `distill` statement (docs/compression.md) against PyTorch.
 *
 * tests/distill/student.lathe distills from tests/distill/teacher.lathe (weights baked from
 * a checkpoint) at T = 4, alpha = 0.9; tests/distill/student_onnx.lathe from the same teacher
 * exported to ONNX. Through the driver (as every lathe command compiles), the grad entry's
 * loss and student gradients from the reference evaluator equal PyTorch's
 * (tests/fixtures/make_distill_fixture.py): relative error (max |got - want| / max |want| per
 * tensor) <= 1e-5 in f32 and <= 1e-9 in f64. Then every entry's generated C (built with gcc;
 * gcc and clang with --exhaustive) equals the evaluator: outputs, loss, gradients and the
 * params after a train step. The teacher adds no param and no state to the student, and the
 * backward pass never enters it (check_no_teacher_backward).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver/driver.h"
#include "tests/unit/codegen_harness.h"

#define FIX "tests/fixtures/distill/"

static char *src_path(const char *rel) {
  static char buf[4][4096];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", test_source_dir(), rel);
  return p;
}

/* The module of model file rel (its text, or source when not NULL) compiled through the
 * driver with a grad entry, in dtype. */
static Module *build_source(const char *rel, const char *source, DType dtype) {
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  DriverOptions o;
  driver_options_init(&o);
  o.file = src_path(rel);
  o.lib_dir = lib;
  o.dtype = dtype;
  o.want_grad = true;
  Diag d;
  diag_init(&d);
  DriverResult r;
  bool ok = driver_build(&o, source, &r, &d);
  ck_assert_msg(ok, "%s: %s", rel, diag_text(&d));
  Module *m = r.module;
  r.module = NULL;
  driver_result_fini(&r);
  diag_fini(&d);
  return m;
}

static Module *build(const char *rel, DType dtype) {
  return build_source(rel, NULL, dtype);
}

/* t converted to dtype (a fresh tensor) */
static Tensor as_dtype(const Tensor *t, DType dtype) {
  Tensor out;
  ck_assert(tensor_alloc(&out, dtype, &t->shape));
  for (int64_t i = 0; i < shape_numel(&t->shape); i++)
    tensor_set(&out, i, tensor_get(t, i));
  return out;
}

/* inputs (x, label) and params of m from the fixture, in m's dtypes */
static void load_fixture(const Module *m, Tensor *inputs, Tensor *params) {
  Diag d;
  diag_init(&d);
  for (int i = 0; i < m->n_inputs; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, FIX "%s.npy", m->inputs[i].name);
    Tensor t;
    ck_assert_msg(rt_npy_read(src_path(rel), &t, &d), "%s", diag_text(&d));
    inputs[i] = as_dtype(&t, m->inputs[i].dtype);
    tensor_free(&t);
  }
  RtTensorSet w;
  rt_set_init(&w);
  ck_assert_msg(rt_safetensors_read(src_path(FIX "student.safetensors"), &w, &d), "%s",
                diag_text(&d));
  ck_assert_int_eq(m->n_params, w.n); /* the student's params only: no teacher.* */
  for (int p = 0; p < m->n_params; p++) {
    const Tensor *t = rt_set_find(&w, m->params[p].name);
    ck_assert_msg(t != NULL, "fixture lacks %s", m->params[p].name);
    params[p] = as_dtype(t, m->params[p].dtype);
  }
  rt_set_fini(&w);
  diag_fini(&d);
}

static double rel_error(const Tensor *got, const Tensor *want) {
  double err = 0, scale = 0;
  ck_assert_int_eq(shape_numel(&got->shape), shape_numel(&want->shape));
  for (int64_t i = 0; i < shape_numel(&want->shape); i++) {
    err = fmax(err, fabs(tensor_get(got, i) - tensor_get(want, i)));
    scale = fmax(scale, fabs(tensor_get(want, i)));
  }
  return err / fmax(scale, 1e-300);
}

static const Graph *entry(const Module *m, EntryKind kind) {
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == kind) return m->entries[i];
  ck_abort_msg("no entry of kind %d", (int)kind);
  return NULL;
}

/* The grad entry through ir_eval equals PyTorch's loss and gradients within tol. */
static void check_against_torch(const Module *m, const Tensor *inputs, const Tensor *params,
                                const char *suffix, double tol) {
  const Graph *g = entry(m, ENTRY_GRAD);
  Diag d;
  diag_init(&d);
  Tensor *outs = calloc((size_t)g->n_outputs, sizeof *outs);
  ck_assert_msg(ir_eval(g, inputs, params, NULL, outs, NULL, &d), "%s", diag_text(&d));
  char rel[256];
  snprintf(rel, sizeof rel, FIX "grads_%s.safetensors", suffix);
  RtTensorSet want;
  rt_set_init(&want);
  ck_assert_msg(rt_safetensors_read(src_path(rel), &want, &d), "%s", diag_text(&d));
  snprintf(rel, sizeof rel, FIX "loss_%s.npy", suffix);
  Tensor loss;
  ck_assert_msg(rt_npy_read(src_path(rel), &loss, &d), "%s", diag_text(&d));
  int n_grads = 0;
  for (int o = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    double err;
    if (go->kind == OUT_LOSS) {
      err = rel_error(&outs[o], &loss);
      printf("%s %s loss %.17g: relative error %.3g\n", m->source_file, suffix,
             tensor_get(&outs[o], 0), err);
    } else {
      ck_assert_int_eq(go->kind, OUT_GRAD);
      const char *name = m->params[go->target].name;
      const Tensor *w = rt_set_find(&want, name);
      ck_assert_msg(w != NULL, "fixture has no gradient of %s", name);
      err = rel_error(&outs[o], w);
      printf("%s %s d/d%s: relative error %.3g\n", m->source_file, suffix, name, err);
      n_grads++;
    }
    ck_assert_msg(err <= tol, "%s: relative error %.3g > %.3g", go->name, err, tol);
  }
  ck_assert_int_eq(n_grads, want.n);
  for (int o = 0; o < g->n_outputs; o++)
    tensor_free(&outs[o]);
  free(outs);
  tensor_free(&loss);
  rt_set_fini(&want);
  diag_fini(&d);
}

static int count_op(const Graph *g, OpKind op) {
  int n = 0;
  for (NodeId id = 0; id < g->n_nodes; id++)
    n += graph_node(g, id)->op == op;
  return n;
}

/* The model file rel without its `distill` line, compiled like build() */
static Module *build_without_distill(const char *rel, DType dtype) {
  char *text = test_read_file(rel);
  ck_assert(text != NULL);
  char *line = strstr(text, "  distill ");
  ck_assert(line != NULL);
  char *end = strchr(line, '\n');
  memmove(line, end, strlen(end) + 1);
  Module *m = build_source(rel, text, dtype);
  free(text);
  return m;
}

/* The backward pass never enters the teacher: the distilled grad entry has as many matmuls
 * as the student's own grad entry plus the teacher's forward entry (a backward pass through
 * the teacher would add two per teacher layer); no teacher param exists. */
static void check_no_teacher_backward(const Module *m, const char *model, const char *teacher,
                                      DType dtype) {
  Module *plain = build_without_distill(model, dtype);
  Module *t = build(teacher, dtype);
  int got = count_op(entry(m, ENTRY_GRAD), OP_MATMUL);
  int student = count_op(entry(plain, ENTRY_GRAD), OP_MATMUL);
  int forward = count_op(entry(t, ENTRY_FORWARD), OP_MATMUL);
  printf("%s: grad entry %d matmuls = student's grad %d + teacher's forward %d\n", model, got,
         student, forward);
  ck_assert_int_gt(forward, 0);
  ck_assert_int_eq(got, student + forward);
  ck_assert_int_eq(m->n_params, plain->n_params);
  ck_assert_int_eq(m->n_states, plain->n_states);
  module_free(plain);
  module_free(t);
}

static void run_case(const char *model, const char *teacher, DType dtype, const char *suffix,
                     double tol, double codegen_rtol) {
  Module *m = build(model, dtype);
  Tensor inputs[4] = {0}, params[8] = {0}, states[4] = {0};
  ck_assert_int_le(m->n_inputs, 4);
  ck_assert_int_le(m->n_params, 8);
  ck_assert_int_le(m->n_states, 4);
  for (int i = 0; i < m->n_states; i++) { /* the optimizer's (the step count), at 0 */
    ck_assert_msg(strncmp(m->states[i].name, "teacher.", 8) != 0, "%s", m->states[i].name);
    ck_assert(tensor_alloc(&states[i], m->states[i].dtype, &m->states[i].shape));
  }
  load_fixture(m, inputs, params);
  check_against_torch(m, inputs, params, suffix, tol);
  check_no_teacher_backward(m, model, teacher, dtype);
  cgh_check_module(m, inputs, params, states, codegen_rtol);
  for (int i = 0; i < m->n_states; i++)
    tensor_free(&states[i]);
  for (int i = 0; i < m->n_inputs; i++)
    tensor_free(&inputs[i]);
  for (int p = 0; p < m->n_params; p++)
    tensor_free(&params[p]);
  module_free(m);
}

START_TEST(distill_f32) {
  run_case("tests/distill/student.lathe", "tests/distill/teacher.lathe", DT_F32, "f32", 1e-5, 1e-5);
}
END_TEST

START_TEST(distill_f64) {
  run_case("tests/distill/student.lathe", "tests/distill/teacher.lathe", DT_F64, "f64", 1e-9,
           1e-12);
}
END_TEST

START_TEST(distill_onnx_teacher) {
  run_case("tests/distill/student_onnx.lathe", FIX "teacher.onnx", DT_F32, "f32", 1e-5, 1e-5);
}
END_TEST

/* decls[i] from the safetensors file rel (each must be there but the optimizer's step count,
 * 0), converted to their dtypes */
static void tensors_from_file(const char *rel, const TensorDecl *decls, int n, Tensor *out) {
  Diag d;
  diag_init(&d);
  RtTensorSet w;
  rt_set_init(&w);
  ck_assert_msg(rt_safetensors_read(src_path(rel), &w, &d), "%s", diag_text(&d));
  for (int i = 0; i < n; i++) {
    const Tensor *t = rt_set_find(&w, decls[i].name);
    if (!t && strncmp(decls[i].name, "train.", 6) == 0) { /* the optimizer's step count */
      ck_assert(tensor_alloc(&out[i], decls[i].dtype, &decls[i].shape));
      continue;
    }
    ck_assert_msg(t != NULL, "%s lacks %s", rel, decls[i].name);
    out[i] = as_dtype(t, decls[i].dtype);
  }
  rt_set_fini(&w);
  diag_fini(&d);
}

/* A batch-norm teacher runs in inference mode (running statistics, as PyTorch's .eval()):
 * the distillation loss of the train step equals the KL computed here from the probabilities
 * of the teacher's own forward entry (tests/fixtures/cnn_bn.lathe, whose running statistics
 * differ from the batch's, so the training-mode teacher would give another loss). */
START_TEST(distill_batchnorm_teacher_in_inference_mode) {
  static const char *student =
      "import nn\n"
      "model bn_student(x: f32[8, 1, 12, 12]) {\n"
      "  output logits = dense(flatten(x), 3)\n"
      "  loss = mean(logits * 0.0)\n"
      "}\n"
      "train bn_student {\n"
      "  minimize loss\n"
      "  optimizer sgd(lr = 0.1)\n"
      "  distill \"../fixtures/cnn_bn.lathe\" weights \"../fixtures/cnn_bn/weights.safetensors\" "
      "temperature 2 alpha 1 logits logits\n"
      "}\n";
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  DriverOptions o;
  driver_options_init(&o);
  o.file = src_path("tests/distill/bn_student.lathe"); /* names the text: paths from there */
  o.lib_dir = lib;
  o.dtype = DT_F64;
  o.want_grad = true;
  Diag d;
  diag_init(&d);
  DriverResult r;
  ck_assert_msg(driver_build(&o, student, &r, &d), "%s", diag_text(&d));
  Module *m = r.module;
  r.module = NULL;
  driver_result_fini(&r);
  Module *t = build("tests/fixtures/cnn_bn.lathe", DT_F64);
  Tensor x, tp[16], ts[8], sp[2];
  Tensor raw;
  ck_assert_msg(rt_npy_read(src_path("tests/fixtures/cnn_bn/x.npy"), &raw, &d), "%s",
                diag_text(&d));
  x = as_dtype(&raw, DT_F64);
  tensor_free(&raw);
  ck_assert_int_le(t->n_params, 16);
  ck_assert_int_le(t->n_states, 8);
  ck_assert_int_eq(m->n_params, 2);
  tensors_from_file("tests/fixtures/cnn_bn/weights.safetensors", t->params, t->n_params, tp);
  tensors_from_file("tests/fixtures/cnn_bn/weights.safetensors", t->states, t->n_states, ts);
  for (int p = 0; p < 2; p++) { /* the student's weights: any numbers */
    ck_assert(tensor_alloc(&sp[p], DT_F64, &m->params[p].shape));
    for (int64_t i = 0; i < shape_numel(&sp[p].shape); i++)
      tensor_set(&sp[p], i, sin(0.37 * (double)(i + 11 * p)));
  }
  Tensor label = {0}, inputs_t[2] = {x, label}, probs, logits, loss;
  const Graph *tf = entry(t, ENTRY_FORWARD), *sf = entry(m, ENTRY_FORWARD);
  const Graph *sg = entry(m, ENTRY_GRAD);
  ck_assert_msg(ir_eval(tf, inputs_t, tp, ts, &probs, NULL, &d), "%s", diag_text(&d));
  ck_assert_msg(ir_eval(sf, &x, sp, NULL, &logits, NULL, &d), "%s", diag_text(&d));
  Tensor *outs = calloc((size_t)sg->n_outputs, sizeof *outs);
  ck_assert_msg(ir_eval(sg, &x, sp, NULL, outs, NULL, &d), "%s", diag_text(&d));
  loss = outs[0];
  ck_assert_int_eq(sg->outputs[0].kind, OUT_LOSS);
  double T = 2, want = 0; /* T^2 * mean over rows of sum p_t (log p_t - log softmax(s/T)) */
  for (int row = 0; row < 8; row++) {
    double zt = 0, zs = 0, kl = 0, smax = -INFINITY;
    for (int c = 0; c < 3; c++) {
      zt += pow(tensor_get(&probs, row * 3 + c), 1 / T); /* softmax(t/T) from softmax(t) */
      smax = fmax(smax, tensor_get(&logits, row * 3 + c) / T);
    }
    for (int c = 0; c < 3; c++)
      zs += exp(tensor_get(&logits, row * 3 + c) / T - smax);
    for (int c = 0; c < 3; c++) {
      double pt = pow(tensor_get(&probs, row * 3 + c), 1 / T) / zt;
      double log_ps = tensor_get(&logits, row * 3 + c) / T - smax - log(zs);
      kl += pt * (log(pt) - log_ps);
    }
    want += T * T * kl / 8;
  }
  double got = tensor_get(&loss, 0);
  printf("batch-norm teacher: loss %.17g, from its forward entry %.17g\n", got, want);
  ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1, fabs(want)), "%.17g vs %.17g", got, want);
  for (int i = 0; i < sg->n_outputs; i++)
    tensor_free(&outs[i]);
  free(outs);
  for (int p = 0; p < t->n_params; p++)
    tensor_free(&tp[p]);
  for (int p = 0; p < t->n_states; p++)
    tensor_free(&ts[p]);
  tensor_free(&sp[0]), tensor_free(&sp[1]);
  tensor_free(&x), tensor_free(&probs), tensor_free(&logits);
  module_free(t);
  module_free(m);
  diag_fini(&d);
}
END_TEST

/* Compiled without the driver (as the REPL does), a step with a `distill` statement is
 * refused at the statement rather than trained on its hard loss alone. */
START_TEST(distill_without_driver_is_refused) {
  char *text = test_read_file("tests/distill/student.lathe");
  ck_assert(text != NULL);
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = lib;
  Diag d;
  diag_init(&d);
  Module *m = frontend_compile("student.lathe", text, &fo, &d);
  ck_assert_msg(m != NULL, "%s", diag_text(&d));
  ck_assert(m->steps[0].distill != NULL && !m->steps[0].distill->built);
  ck_assert(fabs(m->steps[0].distill->temperature - 4) < 1e-12);
  ck_assert(fabs(m->steps[0].distill->alpha - 0.9) < 1e-12);
  PassCtx c;
  pass_ctx_init(&c, &d);
  ck_assert(!passes_run_module(m, &c));
  ck_assert_msg(strstr(diag_text(&d), "student.lathe:16:3: error: this 'distill' statement's "
                                      "teacher was not built") != NULL,
                "%s", diag_text(&d));
  pass_ctx_fini(&c);
  module_free(m);
  diag_fini(&d);
  free(text);
}
END_TEST

int main(int argc, char **argv) {
  if (!cgh_parse_args(argc, argv)) return 2;
  Suite *s = suite_create("distill");
  TCase *tc = tcase_create("torch");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, distill_f32);
  tcase_add_test(tc, distill_f64);
  tcase_add_test(tc, distill_onnx_teacher);
  tcase_add_test(tc, distill_batchnorm_teacher_in_inference_mode);
  tcase_add_test(tc, distill_without_driver_is_refused);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
