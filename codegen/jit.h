/* codegen/jit.h — in-process JIT of emitted C: Clang compiles the C text from memory to an
 * LLVM module as `clang -O3 -march=native` would (the entry points with a cheaper pipeline,
 * docs/jit.md; LATHE_JIT_ENTRY_OPT=3: -O3 too), LLVM makes an object of it for the host CPU,
 * LLVM ORC LLJIT links it into this process, and the model's `<model>_info` descriptor is
 * returned. Objects are cached on disk (~/.cache/lathe/jit, see jit.cpp), so compiling the same
 * C again on the same machine only loads and links. C-callable; implemented in jit.cpp when
 * lathe is built with LLVM 19 (LATHE_JIT), otherwise by jit_none.c, which reports that the
 * JIT is unavailable so callers fall back to cc + dlopen (rt_model_open_source).
 *
 * No subprocess; the only files are the cache's. A JitModel owns the JIT'd code: every pointer
 * reached from jit_info() (names, shapes, entry functions) is valid until jit_free().
 *
 * Tiers: a compile that misses the cache returns as soon as the model's own code is compiled
 * at -O0 (the baseline tier; the kernel library is always optimized) and compiles the
 * optimized tier on a background thread, which stores it in the cache and swaps it in: the
 * descriptor's entry points call the optimized code from then on (a call already running
 * finishes in the baseline). Both tiers compute the same results. LATHE_JIT_TIERED=0 compiles
 * the optimized code before returning. jit_free and process exit wait for the background
 * compile to finish and store its object (docs/jit.md, "The tiered compile").
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

/* What jit_compile did with the on-disk object cache. */
typedef enum JitCacheOutcome {
  JIT_CACHE_OFF,      /* no cache: LATHE_NO_CACHE is set, or no cache directory (no $HOME) */
  JIT_CACHE_HIT,      /* a valid entry was loaded: nothing was compiled */
  JIT_CACHE_STORED,   /* no entry: compiled, and the object stored */
  JIT_CACHE_REPLACED, /* an unusable entry (corrupt, truncated, another key): compiled, replaced */
  JIT_CACHE_UNSTORED, /* compiled, but the object could not be stored (read-only, disk full) */
  JIT_CACHE_COUNT
} JitCacheOutcome;

/* true when this build has the LLVM/Clang JIT */
bool jit_available(void);

/* Compile c_text (which #includes "h_name", whose contents are h_text) and look up
 * `<model_name>_info` (model_name: the symbol prefix the C was generated with). Returns NULL with
 * the compiler's messages in d on failure. Cache directory: $LATHE_CACHE_DIR, else
 * $XDG_CACHE_HOME/lathe, else ~/.cache/lathe (objects in its jit/ subdirectory); LATHE_NO_CACHE=1
 * turns the cache off, LATHE_CACHE_MAX_MB bounds it (default 256). A cache that cannot be used is
 * never an error. */
JitModel *jit_compile(const char *c_text, const char *h_name, const char *h_text,
                      const char *model_name, Diag *d);
const lathe_model_info *jit_info(const JitModel *j);
/* (waits for a tiered compile's background thread, which stores the object) */
JitCacheOutcome jit_cache_outcome(const JitModel *j);
/* How many objects of the kernel library (the GEMM, convolution and transpose routines the C
 * marks noinline, compiled one by one and cached in jit-kernels/) this compile built, and how
 * many it took from the cache. */
void jit_kernel_counts(const JitModel *j, int *compiled, int *cached);

/* Where the jit_compile that made a JitModel spent its time: CPU time of the calling thread, in
 * ms, per phase (zero for a phase it skipped: a cache hit only loads). */
typedef struct JitPhaseTimes {
  double parse;    /* Clang: the C text to an unoptimized LLVM module */
  double split;    /* the kernel library split out of it, hashed, cached kernels read */
  double kernels;  /* the kernels not in the cache: -O3 pipeline and code generation */
  double pipeline; /* the model's own module: its IR pipeline (the entry pipeline) */
  double codegen;  /* the model's own module: code generation to an object */
  double load;     /* reading the cache entries (a hit), linking by LLJIT, the lookup */
  double store;    /* writing the cache entries and pruning */
  double baseline; /* a tiered compile: the model's module at -O0, on the calling thread */
  double background; /* a tiered compile: all of the background thread's CPU time */
} JitPhaseTimes;
/* For a tiered compile, pipeline, codegen and store are the background thread's (and wait for
 * it to finish); the others are the calling thread's. */
void jit_phase_times(const JitModel *j, JitPhaseTimes *t);
/* Wait until the optimized tier runs (at once when the compile was not tiered: a cache hit,
 * LATHE_JIT_TIERED=0); false when it failed to compile and the baseline stays. Thread-safe. */
bool jit_wait_optimized(JitModel *j);
/* Whether the optimized tier runs now (no waiting). Thread-safe. */
bool jit_optimized(const JitModel *j);
/* For tests: while held, background compiles (of this process's later and earlier tiered
 * compiles) wait before they start, so the baseline is what runs; jit_free and process exit
 * still finish their model's. */
void jit_tier_hold(bool hold);
/* address of a JIT'd symbol (e.g. an entry point's `symbol`), or NULL */
void *jit_symbol(const JitModel *j, const char *name);
void jit_free(JitModel *j);

#ifdef __cplusplus
}
#endif

#endif
