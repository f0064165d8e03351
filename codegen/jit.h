/* codegen/jit.h — in-process JIT of emitted C: Clang compiles the C text from memory to an
 * LLVM module at -O3 for the host CPU, LLVM ORC LLJIT links it into this process, and the
 * model's `<model>_info` descriptor is returned. C-callable; implemented in jit.cpp when
 * lathe is built with LLVM 19 (LATHE_JIT), otherwise by jit_none.c, which reports that the
 * JIT is unavailable so callers fall back to cc + dlopen (rt_model_open_source).
 *
 * No temp files, no subprocess. A JitModel owns the JIT'd code: every pointer reached from
 * jit_info() (names, shapes, entry functions) is valid until jit_free().
 */
#ifndef LATHE_CODEGEN_JIT_H
#define LATHE_CODEGEN_JIT_H

#include <stdbool.h>

#include "ir/diag.h"
#include "lathe/model_info.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct JitModel JitModel;

/* true when this build has the LLVM/Clang JIT */
bool jit_available(void);

/* Compile c_text (which #includes "h_name", whose contents are h_text) and look up
 * `<model_name>_info`. Returns NULL with the compiler's messages in d on failure. */
JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                      const char *model_name, Diag *d);
const lathe_model_info *jit_info(const JitModel *j);
/* address of a JIT'd symbol (e.g. an entry point's `symbol`), or NULL */
void *jit_symbol(const JitModel *j, const char *name);
void jit_free(JitModel *j);

#ifdef __cplusplus
}
#endif

#endif
