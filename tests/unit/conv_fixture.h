/* tests/unit/conv_fixture.h — a graph under construction for the convolution codegen tests
 * (test_codegen_conv.c, test_codegen_conv_gemm.c): inputs and params filled with
 * deterministic values in [-1, 1], conv/pool nodes from a compact attribute struct whose
 * zero fields mean the defaults (stride 1, dilation 1, groups 1); its lifecycle (fx_open,
 * fx_close) and the build-load-compare step of a generated file (fx_build_and_check). */
#ifndef LATHE_TESTS_CONV_FIXTURE_H
#define LATHE_TESTS_CONV_FIXTURE_H

#include "codegen_harness.h"

static const SrcLoc LOC = {"conv.lathe", 2, 1};

typedef struct Fixture {
  Module *m;
  Graph *g;
  Diag d;
  Tensor inputs[12];
  Tensor params[8];
  int n_in, n_par;
} Fixture;

static inline Shape s4(int64_t a, int64_t b, int64_t c, int64_t d) {
  return shape_make(4, (int64_t[]){a, b, c, d});
}

static inline NodeId input(Fixture *fx, const char *name, DType t, Shape s) {
  int32_t i = module_add_input(fx->m, name, t, &s, LOC);
  ck_assert(tensor_alloc(&fx->inputs[i], t, &s));
  cgh_fill(&fx->inputs[i], (uint64_t)i + 11, -1, 1);
  return graph_add_source(fx->g, OP_INPUT, i, LOC);
}

static inline NodeId param(Fixture *fx, const char *name, DType t, Shape s) {
  int32_t i = module_add_param(fx->m, name, t, &s, (InitSpec){INIT_UNIFORM, -1, 1}, LOC);
  ck_assert(tensor_alloc(&fx->params[i], t, &s));
  cgh_fill(&fx->params[i], (uint64_t)i + 101, -1, 1);
  return graph_add_source(fx->g, OP_PARAM, i, LOC);
}

typedef struct Attr {
  int stride[2], pad[4], dil[2], out_pad[2], kernel[2], groups;
} Attr;

static inline NodeId add(Fixture *fx, OpKind op, NodeId a, NodeId b, Attr k) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  for (int i = 0; i < 2; i++) {
    at.conv.stride[i] = k.stride[i] ? k.stride[i] : 1;
    at.conv.dilation[i] = k.dil[i] ? k.dil[i] : 1;
    at.conv.out_pad[i] = k.out_pad[i];
    at.conv.kernel[i] = k.kernel[i];
  }
  for (int i = 0; i < 4; i++) at.conv.pad[i] = k.pad[i];
  at.conv.groups = k.groups ? k.groups : 1;
  NodeId in[2] = {a, b};
  NodeId id = graph_add(fx->g, op, in, b == IR_NONE ? 1 : 2, &at, LOC, &fx->d);
  ck_assert_msg(id != IR_NONE, "%s: %s", ir_ops[op].name, diag_text(&fx->d));
  return id;
}

static inline void out(Fixture *fx, const char *name, NodeId id) {
  graph_add_output(fx->g, name, id, OUT_VALUE, -1);
}

/* a module `name` with one entry, forward, to add nodes to; fx_close frees it all */
static inline void fx_open(Fixture *fx, const char *name) {
  memset(fx, 0, sizeof *fx);
  fx->m = module_new(name);
  fx->m->source_file = "conv.lathe";
  fx->g = graph_new(fx->m, "forward");
  module_add_entry(fx->m, fx->g);
  diag_init(&fx->d);
}

static inline void fx_close(Fixture *fx) {
  for (int i = 0; i < 12; i++) tensor_free(&fx->inputs[i]);
  for (int i = 0; i < 8; i++) tensor_free(&fx->params[i]);
  module_free(fx->m);
  diag_fini(&fx->d);
}

/* builds b's C with cc and flags into a shared object, loads it, compares its forward entry
 * with ir_eval (rtol 1e-4: sums of hundreds of f32 products), unloads it */
static inline void fx_build_and_check(CghBuild *b, Module *m, const Tensor *inputs,
                                      const Tensor *params, const char *cc, const char *flags) {
  cgh_build_with(b, cc, flags);
  cgh_check_entry(b, m, 0, inputs, params, NULL, 1e-4);
  cgh_unload(b);
}

/* the generated C of m checked with every compiler; with `scalar` also its scalar twins
 * (-DLATHE_NO_VECTOR_EXTENSIONS), with threads > 1 also built with -fopenmp */
static inline void fx_check_builds(Module *m, const Tensor *inputs, const Tensor *params,
                                   const char *c_text, const char *h_text, bool scalar,
                                   int threads) {
  CghBuild b;
  cgh_setup(&b, m->name, c_text, h_text);
  for (int k = 0; k < CGH_N_COMPILERS; k++)
    fx_build_and_check(&b, m, inputs, params, cgh_compilers[k], "-O1 -shared -fPIC -lm");
  if (scalar)
    fx_build_and_check(&b, m, inputs, params, "gcc",
                       "-O1 -DLATHE_NO_VECTOR_EXTENSIONS -shared -fPIC -lm");
  if (threads > 1) {
    /* libgomp's idle threads outlive the model: keep it loaded after the model's dlclose */
    ck_assert_msg(dlopen("libgomp.so.1", RTLD_NOW | RTLD_GLOBAL) != NULL, "%s", dlerror());
    fx_build_and_check(&b, m, inputs, params, "gcc", "-O1 -shared -fPIC -fopenmp -lm");
  }
  cgh_cleanup(&b);
}

#endif
