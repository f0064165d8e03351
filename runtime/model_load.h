/* runtime/model_load.h — one loaded model, whichever backend made it: the LLVM/Clang JIT
 * (codegen/jit.h) or cc + dlopen (rt_model_open_source), plus calls through libffi
 * (runtime/ffi.h) for shared objects opened by path. Used by the CLI, the REPL and the
 * public API (runtime/api.c).
 */
#ifndef LATHE_RUNTIME_MODEL_LOAD_H
#define LATHE_RUNTIME_MODEL_LOAD_H

#include "codegen/jit.h"
#include "runtime/runtime.h"

typedef enum RtBackend {
  RT_BACKEND_AUTO, /* the JIT when this build has it, else cc */
  RT_BACKEND_CC,   /* cc -shared + dlopen */
  RT_BACKEND_JIT,  /* in-process LLVM/Clang */
  RT_BACKEND_COUNT
} RtBackend;

typedef struct RtLoaded {
  RtModel so;                    /* cc backend or a .so opened by path (handle != NULL) */
  JitModel *jit;                 /* JIT backend, or NULL */
  const lathe_model_info *info;  /* the descriptor, from either */
  RtBackend backend;             /* the one actually used */
  bool fell_back;                /* JIT asked for but unavailable in this build: used cc */
  bool ffi;                      /* opened by path: call entry symbols through libffi */
} RtLoaded;

bool rt_backend_from_name(const char *name, RtBackend *out); /* "cc", "jit", "auto" */
const char *rt_backend_name(RtBackend b);

/* Builds c_text/h_text (header "<model>.h") with backend b and loads it. */
bool rt_loaded_open_source(RtLoaded *l, RtBackend b, const char *model, const char *c_text,
                           const char *h_text, Diag *d);
/* Opens a shared object built by `lathe build`: the model is found through the exported
 * `lathe_model` function, or else named by the file (libNAME.so or NAME.so). */
bool rt_loaded_open_so(RtLoaded *l, const char *so_path, Diag *d);
void rt_loaded_close(RtLoaded *l);
const lathe_entry_info *rt_loaded_entry(const RtLoaded *l, const char *name);
/* Calls e with args (roles as in e->args): through libffi and e->symbol for a .so opened by
 * path, through the descriptor's `call` wrapper otherwise. */
bool rt_loaded_call(const RtLoaded *l, const lathe_entry_info *e, void *const *args,
                    double *ret, Diag *d);

#endif
