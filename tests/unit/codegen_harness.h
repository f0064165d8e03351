/* tests/unit/codegen_harness.h — build generated C, load it, and compare with ir_eval.
 *
 * Header-only (static inline) so each codegen test links it without a CMake change. The
 * harness plans every entry (pass_dce + pass_memplan), emits C, compiles it with a given
 * compiler at `-std=c99 -Wall -Wextra -Werror -O1 -shared -fPIC`, dlopens the result, calls
 * entries through the descriptor's `call` wrapper, and compares every output, the loss and
 * every parameter/state update with the reference evaluator.
 * Tolerance: |got - ref| <= rtol * max(1, |ref|); NaN must match NaN.
 */
#ifndef LATHE_TESTS_CODEGEN_HARNESS_H
#define LATHE_TESTS_CODEGEN_HARNESS_H

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "lathe/model_info.h"
#include "passes/passes.h"
#include "testutil.h"

static const char *const cgh_compilers[] = {"gcc", "clang"};
enum { CGH_N_COMPILERS = 2 };
/* how many of cgh_compilers cgh_check_module builds with (cgh_parse_args) */
static int cgh_n_compilers = CGH_N_COMPILERS;

/* For a test with a quick run (label fast: the generated C built by gcc only) and an exhaustive
 * one (`--exhaustive`, its *_exhaustive twin in CMakeLists.txt, label slow: gcc and clang):
 * reads main's arguments. False, with the usage printed, on anything else. */
static inline bool cgh_parse_args(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && strcmp(argv[1], "--exhaustive") != 0)) {
    fprintf(stderr, "usage: %s [--exhaustive]\n", argv[0]);
    return false;
  }
  cgh_n_compilers = argc == 2 ? CGH_N_COMPILERS : 1;
  return true;
}

/* dce + memplan on every entry; ck_assert on failure with the diagnostics */
static inline void cgh_plan(Module *m) {
  Diag d;
  diag_init(&d);
  PassCtx c;
  pass_ctx_init(&c, &d);
  for (int i = 0; i < m->n_entries; i++) {
    ck_assert_msg(pass_dce(m->entries[i], &c), "dce: %s", diag_text(&d));
    ck_assert_msg(ir_verify(m->entries[i], &d), "verify after dce: %s", diag_text(&d));
    ck_assert_msg(pass_memplan(m->entries[i], &c), "memplan: %s", diag_text(&d));
  }
  pass_ctx_fini(&c);
  diag_fini(&d);
}

static inline void cgh_emit(const Module *m, bool line_directives, char **c_text, char **h_text) {
  Diag d;
  diag_init(&d);
  CgOptions o;
  cg_options_init(&o);
  o.line_directives = line_directives;
  ck_assert_msg(cg_emit_c(m, &o, c_text, h_text, &d), "cg_emit_c: %s", diag_text(&d));
  diag_fini(&d);
}

static inline void cgh_write(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  fputs(text, f);
  fclose(f);
}

static inline void cgh_print_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    fwrite(buf, 1, n, stderr);
  fclose(f);
}

typedef struct CghBuild {
  char dir[128];
  char model[64];
  void *handle;
  const lathe_model_info *info;
} CghBuild;

/* Writes <dir>/<model>.c and .h, runs `cc <flags>`, and returns the exit status. */
static inline int cgh_compile(CghBuild *b, const char *cc, const char *flags, const char *out) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "%s -std=c99 -Wall -Wextra -Werror %s -o %s/%s %s/%s.c > %s/cc.log 2>&1", cc, flags,
           b->dir, out, b->dir, b->model, b->dir);
  int rc = system(cmd);
  if (rc != 0) {
    char path[256];
    fprintf(stderr, "---- %s failed; generated source:\n", cmd);
    snprintf(path, sizeof path, "%s/%s.c", b->dir, b->model);
    cgh_print_file(path);
    fprintf(stderr, "---- compiler output:\n");
    snprintf(path, sizeof path, "%s/cc.log", b->dir);
    cgh_print_file(path);
  }
  return rc;
}

static inline void cgh_setup(CghBuild *b, const char *model, const char *c_text,
                             const char *h_text) {
  memset(b, 0, sizeof *b);
  snprintf(b->dir, sizeof b->dir, "/tmp/lathe-cgtest-XXXXXX");
  ck_assert_msg(mkdtemp(b->dir) != NULL, "mkdtemp failed");
  snprintf(b->model, sizeof b->model, "%s", model);
  char path[256];
  snprintf(path, sizeof path, "%s/%s.c", b->dir, model);
  cgh_write(path, c_text);
  snprintf(path, sizeof path, "%s/%s.h", b->dir, model);
  cgh_write(path, h_text);
}

/* compile with cc and flags into a shared object and dlopen it */
static inline void cgh_build_with(CghBuild *b, const char *cc, const char *flags) {
  char so[160], path[320], sym[128];
  snprintf(so, sizeof so, "%s-%s.so", b->model, cc);
  ck_assert_msg(cgh_compile(b, cc, flags, so) == 0, "%s %s rejected the C", cc, flags);
  snprintf(path, sizeof path, "%s/%s", b->dir, so);
  b->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(b->handle != NULL, "dlopen: %s", dlerror());
  snprintf(sym, sizeof sym, "%s_info", b->model);
  b->info = (const lathe_model_info *)dlsym(b->handle, sym);
  ck_assert_msg(b->info != NULL, "no symbol %s", sym);
  ck_assert_int_eq(b->info->version, LATHE_MODEL_INFO_VERSION);
}

/* compile with cc (-O1) into a shared object and dlopen it */
static inline void cgh_build(CghBuild *b, const char *cc) {
  cgh_build_with(b, cc, "-O1 -shared -fPIC -lm");
}

static inline void cgh_unload(CghBuild *b) {
  if (b->handle) dlclose(b->handle);
  b->handle = NULL;
  b->info = NULL;
}

/* removes the build directory, unless LATHE_CG_KEEP is set (then it says where it is) */
static inline void cgh_cleanup(CghBuild *b) {
  cgh_unload(b);
  if (getenv("LATHE_CG_KEEP")) {
    fprintf(stderr, "kept generated code in %s\n", b->dir);
    return;
  }
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", b->dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", b->dir);
}

/* deterministic values in [lo, hi) (integers: truncated) */
static inline void cgh_fill(Tensor *t, uint64_t seed, double lo, double hi) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < shape_numel(&t->shape); i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tensor_set(t, i, lo + (hi - lo) * (double)(x >> 11) * (1.0 / 9007199254740992.0));
  }
}

static inline double cgh_get(DType t, const void *data, int64_t i) {
  Tensor view = {.dtype = t, .data = (void *)data};
  return tensor_get(&view, i);
}

static inline void cgh_expect_close(const char *what, DType t, const void *got, const Tensor *ref,
                                    double rtol) {
  for (int64_t i = 0; i < shape_numel(&ref->shape); i++) {
    double g = cgh_get(t, got, i), r = tensor_get(ref, i);
    if (isnan(r) && isnan(g)) continue;
    double scale = fabs(r) > 1 ? fabs(r) : 1;
    ck_assert_msg(fabs(g - r) <= rtol * scale, "%s[%lld]: generated %.17g, reference %.17g", what,
                  (long long)i, g, r);
  }
}

static inline const lathe_entry_info *cgh_entry(const lathe_model_info *info, const char *name) {
  for (int i = 0; i < info->n_entries; i++)
    if (strcmp(info->entries[i].name, name) == 0) return &info->entries[i];
  ck_abort_msg("no entry '%s' in the descriptor", name);
  return NULL;
}

/* params/state structs filled from tensors through the descriptor's offsets */
static inline void *cgh_pack(size_t bytes, const lathe_tensor_info *infos, int n,
                             const Tensor *tensors) {
  unsigned char *blob = calloc(1, bytes + 64);
  ck_assert(blob != NULL);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq((long long)infos[i].bytes, (long long)(shape_numel(&tensors[i].shape) *
                                                            (int64_t)dtype_size(tensors[i].dtype)));
    memcpy(blob + infos[i].offset, tensors[i].data, infos[i].bytes);
  }
  return blob;
}

/* Runs entry `index` of m through the loaded model and compares with ir_eval. */
static inline void cgh_check_entry(const CghBuild *b, const Module *m, int index,
                                   const Tensor *inputs, const Tensor *params, const Tensor *states,
                                   double rtol) {
  const Graph *g = m->entries[index];
  Diag d;
  diag_init(&d);
  Tensor *outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  ck_assert_msg(ir_eval(g, inputs, params, states, outs, NULL, &d), "ir_eval: %s", diag_text(&d));
  const lathe_model_info *info = b->info;
  const lathe_entry_info *e = cgh_entry(info, g->name);
  void *p = cgh_pack(info->params_bytes, info->params, info->n_params, params);
  void *s = cgh_pack(info->state_bytes, info->states, info->n_states, states);
  void **args = calloc((size_t)e->n_args + 1, sizeof *args);
  void **out_bufs = calloc((size_t)e->n_args + 1, sizeof *out_bufs);
  void *ws = aligned_alloc(64, e->workspace_bytes ? (e->workspace_bytes + 63) / 64 * 64 : 64);
  int n_in = 0, n_out = 0;
  for (int i = 0; i < e->n_args; i++) {
    const lathe_arg_info *a = &e->args[i];
    if (a->role == LATHE_ARG_PARAMS) args[i] = p;
    if (a->role == LATHE_ARG_STATE) args[i] = s;
    if (a->role == LATHE_ARG_WORKSPACE) args[i] = ws;
    if (a->role == LATHE_ARG_INPUT) {
      while (n_in < m->n_inputs && strcmp(m->inputs[n_in].name, a->tensor->name) != 0)
        n_in++;
      ck_assert_msg(n_in < m->n_inputs, "input %s", a->tensor->name);
      args[i] = inputs[n_in].data;
    }
    if (a->role == LATHE_ARG_OUTPUT) args[i] = out_bufs[i] = calloc(1, a->tensor->bytes + 8);
  }
  double loss = NAN;
  e->call(args, &loss);
  for (int o = 0, i = 0; o < g->n_outputs; o++) {
    const GraphOutput *go = &g->outputs[o];
    const Tensor *ref = &outs[o];
    if (go->kind == OUT_VALUE || go->kind == OUT_GRAD) {
      while (e->args[i].role != LATHE_ARG_OUTPUT)
        i++;
      ck_assert_str_eq(e->args[i].tensor->name, go->name);
      cgh_expect_close(go->name, ref->dtype, out_bufs[i], ref, rtol);
      i++;
      n_out++;
    } else if (go->kind == OUT_LOSS) {
      ck_assert_int_eq(e->returns_loss, 1);
      double r = tensor_get(ref, 0), scale = fabs(r) > 1 ? fabs(r) : 1;
      ck_assert_msg(fabs(loss - r) <= rtol * scale, "loss %.17g vs %.17g", loss, r);
    } else {
      bool param = go->kind == OUT_PARAM_UPDATE;
      const lathe_tensor_info *ti = param ? &info->params[go->target] : &info->states[go->target];
      unsigned char *base = param ? p : s;
      cgh_expect_close(ti->name, ref->dtype, base + ti->offset, ref, rtol);
    }
  }
  (void)n_out;
  for (int o = 0; o < g->n_outputs; o++)
    tensor_free(&outs[o]);
  for (int i = 0; i < e->n_args; i++)
    free(out_bufs[i]);
  free(outs);
  free(out_bufs);
  free(args);
  free(ws);
  free(p);
  free(s);
  diag_fini(&d);
}

/* emit, then for gcc and clang (gcc only in a quick run, cgh_parse_args): build, load, check
 * every entry */
static inline void cgh_check_module(Module *m, const Tensor *inputs, const Tensor *params,
                                    const Tensor *states, double rtol) {
  cgh_plan(m);
  char *c_text, *h_text;
  cgh_emit(m, false, &c_text, &h_text);
  CghBuild b;
  cgh_setup(&b, m->name, c_text, h_text);
  for (int k = 0; k < cgh_n_compilers; k++) {
    cgh_build(&b, cgh_compilers[k]);
    for (int i = 0; i < m->n_entries; i++)
      cgh_check_entry(&b, m, i, inputs, params, states, rtol);
    cgh_unload(&b);
  }
  cgh_cleanup(&b);
  free(c_text);
  free(h_text);
}

#endif
