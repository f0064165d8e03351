/* tests/unit/jit_testutil.h — what the JIT tests (test_codegen_jit_cache.c,
 * test_codegen_jit_kernels.c, test_codegen_jit_tier.c) share: a model's C as `lathe compile
 * -D N=n` writes it, a run of its one entry on a fixed input, and the files of a cache
 * directory.
 */
#ifndef LATHE_TESTS_UNIT_JIT_TESTUTIL_H
#define LATHE_TESTS_UNIT_JIT_TESTUTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "codegen/jit.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tests/unit/testutil.h"

typedef struct Emitted {
  char *c, *h;
} Emitted;

/* the C and header of the model `text` (read as `file`) at -D N=n */
static inline Emitted jit_test_emit(const char *file, const char *text, int n) {
  const Define defines[] = {{.name = "N", .value = n}};
  Diag d;
  diag_init(&d);
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.defines = defines, fo.n_defines = 1;
  Module *m = frontend_compile(file, text, &fo, &d);
  PassCtx pc;
  pass_ctx_init(&pc, &d);
  CgOptions co;
  cg_options_init(&co);
  Emitted e = {0};
  bool ok = m && passes_run_module(m, &pc) && cg_emit_c(m, &co, &e.c, &e.h, &d);
  ck_assert_msg(ok, "%s", diag_text(&d));
  pass_ctx_fini(&pc);
  module_free(m);
  diag_fini(&d);
  return e;
}

/* jit_test_emit with `extra` (another model's text, or NULL) appended to the C */
static inline Emitted jit_test_emit_with(const char *file, const char *text, int n,
                                         const char *extra) {
  Emitted e = jit_test_emit(file, text, n);
  if (extra) {
    size_t len = strlen(e.c) + strlen(extra) + 1;
    e.c = realloc(e.c, len);
    strcat(e.c, extra);
  }
  return e;
}

static inline void jit_test_emitted_free(Emitted *e) {
  free(e->c), free(e->h);
}

/* the model's one entry on a fixed input of n x features floats, params from its init at
 * seed; out gets the output */
static inline void jit_test_run(const JitModel *j, int n, int features, uint64_t seed, float *out) {
  const lathe_model_info *info = jit_info(j);
  ck_assert_int_eq(info->n_entries, 1);
  const lathe_entry_info *e = &info->entries[0];
  void *params = calloc(1, info->params_bytes + 1), *state = calloc(1, info->state_bytes + 1);
  void *ws = aligned_alloc(64, (e->workspace_bytes + 63) / 64 * 64 + 64);
  float *x = malloc(sizeof(float) * (size_t)n * (size_t)features);
  for (int i = 0; i < n * features; i++)
    x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
  info->init(params, state, seed);
  void *args[8];
  ck_assert_int_le(e->n_args, 8);
  for (int a = 0; a < e->n_args; a++) {
    int role = e->args[a].role;
    args[a] = role == LATHE_ARG_PARAMS   ? params
              : role == LATHE_ARG_STATE  ? state
              : role == LATHE_ARG_INPUT  ? (void *)x
              : role == LATHE_ARG_OUTPUT ? (void *)out
                                         : ws;
  }
  double ret = 0;
  e->call(args, &ret);
  free(params), free(state), free(ws), free(x);
}

/* how many files dir/sub holds; path (when not NULL) gets the name of the last one that is
 * not `except` */
static inline int jit_test_files(const char *dir, const char *sub, char *path, size_t size,
                                 const char *except) {
  char at[128], name[sizeof at + sizeof((struct dirent *)0)->d_name + 1];
  snprintf(at, sizeof at, "%s/%s", dir, sub);
  DIR *dp = opendir(at);
  if (!dp) return 0;
  int count = 0;
  for (struct dirent *de; (de = readdir(dp));) {
    if (de->d_name[0] == '.') continue;
    count++;
    snprintf(name, sizeof name, "%s/%s", at, de->d_name);
    if (path && (!except || strcmp(name, except) != 0) &&
        snprintf(path, size, "%s", name) >= (int)size)
      abort(); /* path too long */
  }
  closedir(dp);
  return count;
}

#endif
