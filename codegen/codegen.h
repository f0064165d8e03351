/* codegen/codegen.h — lowering entry graphs to C; the public header of codegen/.
 *
 * emit.c is the indentation-aware printf-style emitter (separate declaration and body
 * streams, fresh names); lower.c lowers each node (later: each fused group) to a loop nest;
 * c_backend.c assembles <model>.c and <model>.h: params/state structs, the workspace size,
 * <model>_init, one function per entry graph, and the <model>_info descriptor.
 */
#ifndef LATHE_CODEGEN_CODEGEN_H
#define LATHE_CODEGEN_CODEGEN_H

#include "ir/ir.h"

typedef struct CgOptions {
  bool line_directives;    /* emit #line so debuggers step through the .lathe file */
  const char *header_name; /* the #include in the .c; NULL = "<model>.h" */
} CgOptions;

void cg_options_init(CgOptions *o);

/* Emit the C translation unit and header for every entry graph of m (memory planning must
 * have run). *c_text and *h_text are malloc'd. */
bool cg_emit_c(const Module *m, const CgOptions *o, char **c_text, char **h_text, Diag *d);

#endif
