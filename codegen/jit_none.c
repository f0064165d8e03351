/* codegen/jit_none.c — codegen/jit.h for builds without LLVM 19 (LATHE_JIT off): the JIT is
 * reported as unavailable, so callers take the cc + dlopen path. With LATHE_JIT on, jit.cpp
 * defines these functions and this file compiles to nothing.
 */
#include "codegen/jit.h"

#ifndef LATHE_HAVE_JIT

#include <stddef.h>

struct JitModel {
  const lathe_model_info *info; /* never created in this build */
};

bool jit_available(void) {
  return false;
}

JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                      const char *model_name, Diag *d) {
  (void)c_text, (void)h_name, (void)h_text;
  diag_error(d, (SrcLoc){0},
             "this lathe was built without LLVM 19 (LATHE_JIT=OFF): no JIT for '%s'; "
             "use the cc backend",
             model_name);
  return NULL;
}

const lathe_model_info *jit_info(const JitModel *j) {
  return j->info;
}

JitCacheOutcome jit_cache_outcome(const JitModel *j) {
  (void)j;
  return JIT_CACHE_OFF;
}

void jit_kernel_counts(const JitModel *j, int *compiled, int *cached) {
  (void)j;
  *compiled = *cached = 0;
}

void jit_phase_times(const JitModel *j, JitPhaseTimes *t) {
  (void)j;
  *t = (JitPhaseTimes){0};
}

bool jit_wait_optimized(JitModel *j) {
  (void)j;
  return true;
}

bool jit_optimized(const JitModel *j) {
  (void)j;
  return true;
}

void jit_tier_hold(bool hold) {
  (void)hold;
}

void *jit_symbol(const JitModel *j, const char *name) {
  (void)j, (void)name;
  return NULL;
}

void jit_free(JitModel *j) {
  (void)j;
}

#else
typedef int jit_none_empty; /* ISO C forbids an empty translation unit */
#endif
