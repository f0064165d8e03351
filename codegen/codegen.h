/* codegen/codegen.h — lowering entry graphs to C; the public header of codegen/.
 *
 * emit.c is the indentation-aware printf-style emitter (separate declaration and body
 * streams, fresh names); lower.c lowers each node (later: each fused group) to a loop nest,
 * gemm.c 2-D f32 matmuls to a packed, register-blocked GEMM tuned for CgOptions.target;
 * c_backend.c assembles <model>.c and <model>.h: params/state structs, the workspace size,
 * <model>_init, one function per entry graph, and the <model>_info descriptor. Every exported
 * name starts with the symbol prefix (CgOptions.prefix, by default the model's name), so
 * models compiled with different prefixes link into one program.
 */
#ifndef LATHE_CODEGEN_CODEGEN_H
#define LATHE_CODEGEN_CODEGEN_H

#include "ir/ir.h"
#include "passes/passes.h"

/* What the generated matmul kernels are tuned for (codegen/gemm.c): the micro-tile and vector
 * width. NATIVE = the machine lathe runs on; GENERIC = portable C99 without extensions. */
typedef enum CgTarget {
  CG_TARGET_NATIVE,
  CG_TARGET_GENERIC,
  CG_TARGET_X86_64_V3, /* AVX2 + FMA: 6x16 tile of 8-float vectors */
  CG_TARGET_X86_64_V4, /* AVX-512: 8x32 tile of 16-float vectors */
  CG_TARGET_AARCH64,   /* NEON: 8x12 tile of 4-float vectors */
  CG_TARGET_COUNT
} CgTarget;

typedef struct CgOptions {
  bool line_directives;    /* emit #line so debuggers step through the .lathe file */
  const char *header_name; /* the #include in the .c; NULL = "<model>.h" */
  CgTarget target;         /* matmul kernels; cg_options_init: CG_TARGET_NATIVE */
  int threads;             /* OpenMP threads for the large kernels (--threads); 1 = no pragmas.
                            * The pragmas are inert without -fopenmp, so the output still
                            * builds and runs single-threaded anywhere. */
  const char *prefix;      /* --prefix: the name of every exported symbol, type and macro
                            * (<prefix>_forward, <prefix>_params, <PREFIX>_WORKSPACE_BYTES,
                            * <prefix>_info) and of the files; NULL = the model's name.
                            * Must pass cg_prefix_error. */
  int64_t buckets;         /* --buckets: a split step's "grad" calls hooks->ready after each
                            * bucket of about this many gradient bytes is final; 0 = never */
} CgOptions;

enum { CG_PREFIX_MAX = 100 }; /* the longest --prefix, in characters */

void cg_options_init(CgOptions *o);
/* "native", "generic", "x86-64-v3", "x86-64-v4", "aarch64" -> *t; false if unknown */
bool cg_target_parse(const char *name, CgTarget *t);
/* NULL when name can prefix the exported symbols of generated C: a C identifier of at most
 * CG_PREFIX_MAX characters, not a C keyword, not starting with '_' (reserved at file scope);
 * else why not, as a clause ("it is a C keyword") for the caller's message */
const char *cg_prefix_error(const char *name);

/* The target side of passes/schedule.c's cost model (SchedConfig: the resolved target's name,
 * micro-tile and measured blocks; codegen/gemm.c); leaves cpu and lookup untouched. */
void cg_sched_target(const CgOptions *o, SchedConfig *out);

/* Emit the C translation unit and header for every entry graph of m (memory planning must
 * have run). *c_text and *h_text are malloc'd. */
bool cg_emit_c(const Module *m, const CgOptions *o, char **c_text, char **h_text, Diag *d);

#endif
