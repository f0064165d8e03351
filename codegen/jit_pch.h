/* codegen/jit_pch.h — the JIT's precompiled header (C++, internal to codegen/jit*.cpp): the
 * standard headers every generated C file includes, parsed once per machine and cc1 arguments
 * instead of once per model (docs/jit.md, "The precompiled header").
 */
#ifndef LATHE_CODEGEN_JIT_PCH_H
#define LATHE_CODEGEN_JIT_PCH_H

#include "codegen/jit_cache.h"

#include <memory>
#include <string>
#include <vector>

namespace clang {
class CompilerInstance;
}

/* What the PCH holds: the #includes the C backend writes at the top of every model's C
 * (codegen/c_backend.c). Part of the PCH's cache key. */
extern const char jit_pch_prelude[];

/* The PCH for a model compiled with args (jit_cc1_args: its last three are "-x", "c" and the
 * file name): the valid cache entry at path (key: jit_cache_key of the arguments and the
 * prelude) when there is one, else made now and stored there (a temporary file in dir, then
 * jit_cache_write; not storing it is not an error). *made says which; NULL if none could be
 * made. */
std::unique_ptr<llvm::MemoryBuffer> jit_pch_get(const std::vector<std::string> &args,
                                                const std::string &dir, const std::string &path,
                                                const CacheKey &key, bool *made);

/* Make ci (not yet run) include pch first (held in memory: pch must outlive the run),
 * validating the system headers it was made from (their size and time: after a libc upgrade
 * the parse fails instead of using stale declarations). */
void jit_pch_use(clang::CompilerInstance &ci, const llvm::MemoryBuffer &pch);

#endif
