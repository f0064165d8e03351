/* driver/load.h — one loaded model, whichever backend made it: the LLVM/Clang JIT
 * (codegen/jit.h) or cc + dlopen (rt_model_open_source), plus calls through libffi
 * (runtime/ffi.h) for shared objects opened by path. Used by the CLI, the REPL and the
 * public API (driver/api.c). In driver/ because the JIT is codegen's: runtime/ stays below it.
 */
#ifndef LATHE_DRIVER_LOAD_H
#define LATHE_DRIVER_LOAD_H

#include "codegen/jit.h"
#include "runtime/runtime.h"

typedef enum DriverBackend {
  DRIVER_BACKEND_AUTO, /* the JIT when this build has it, else cc */
  DRIVER_BACKEND_CC,   /* cc -shared + dlopen */
  DRIVER_BACKEND_JIT,  /* in-process LLVM/Clang */
  DRIVER_BACKEND_COUNT
} DriverBackend;

typedef struct DriverLoaded {
  RtModel so;                   /* cc backend or a .so opened by path (handle != NULL) */
  JitModel *jit;                /* JIT backend, or NULL */
  const lathe_model_info *info; /* the descriptor, from either */
  DriverBackend backend;        /* the one actually used */
  bool fell_back;               /* JIT asked for but unavailable in this build: used cc */
  bool ffi;                     /* opened by path: call entry symbols through libffi */
} DriverLoaded;

bool driver_backend_from_name(const char *name, DriverBackend *out); /* "cc", "jit", "auto" */
const char *driver_backend_name(DriverBackend b);

/* Builds c_text/h_text (header "<prefix>.h") with backend b and loads it; prefix: the one
 * the C was generated with (driver_prefix), which names its descriptor `<prefix>_info`. */
bool driver_loaded_open_source(DriverLoaded *l, DriverBackend b, const char *prefix,
                               const char *c_text, const char *h_text, Diag *d);
/* Opens a shared object built by `lathe build`: its descriptor `<prefix>_info` is found through
 * the exported `lathe_model` function (whose descriptor's name is the prefix), or else by the
 * file name (libPREFIX.so or PREFIX.so). */
bool driver_loaded_open_so(DriverLoaded *l, const char *so_path, Diag *d);
void driver_loaded_close(DriverLoaded *l);
const lathe_entry_info *driver_loaded_entry(const DriverLoaded *l, const char *name);
/* Calls e with args (roles as in e->args): through libffi and e->symbol for a .so opened by
 * path, through the descriptor's `call` wrapper otherwise. */
bool driver_loaded_call(const DriverLoaded *l, const lathe_entry_info *e, void *const *args,
                        double *ret, Diag *d);

#endif
