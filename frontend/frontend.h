/* frontend/frontend.h — .lathe source to an elaborated Module; the public header of frontend/.
 *
 * Pipeline inside: lex.c (tokens) → parse.c (AST, ast.h) → elaborate.c (fn inlining, shape
 * unification, params with hierarchical names, -D overrides) → Module with its model graph
 * and train steps. Errors go to the Diag with file:line:col.
 */
#ifndef LATHE_FRONTEND_FRONTEND_H
#define LATHE_FRONTEND_FRONTEND_H

#include "ir/ir.h"

typedef struct Define {
  const char *name; /* a `const` of the model file */
  int64_t value;    /* the const's value, or the bound when dynamic */
  bool dynamic;     /* -D N=dynamic(max = M): the const becomes the dynamic dimension */
} Define;

/* The VALUE of -D NAME=VALUE into out->value and out->dynamic: an integer, or
 * `dynamic(max = M)` (spaces allowed, M >= 1). false if it is neither. */
bool frontend_define_value(const char *text, Define *out);

typedef struct FrontendOptions {
  const char *lib_dir;    /* where `import nn` finds nn.lathe; NULL = $LATHE_LIB, built-in */
  const Define *defines;  /* -D NAME=VALUE overrides */
  int n_defines;
  DType float_dtype;      /* DT_F32, or DT_F64 to compile every f32 in the model as f64 */
  const char *model_name; /* which `model` to elaborate when a file has several; NULL = the
                             one its train block names, else the last */
  bool defines_optional;  /* a define naming no const is ignored, not an error (a distill
                             teacher gets the student's -D overrides: driver/distill.c) */
} FrontendOptions;

void frontend_options_init(FrontendOptions *o); /* lib_dir NULL, f32, no defines */

/* Parse and elaborate. The source is registered with d for caret lines. Returns NULL (with
 * every error reported) on failure. */
Module *frontend_compile(const char *path, const char *text, const FrontendOptions *o, Diag *d);

/* Source text must be text: a NUL byte among its len bytes (a binary file) is an error at its
 * line and column, since everything after it would silently be ignored. */
bool frontend_check_text(const char *path, const char *text, size_t len, Diag *d);

/* Parse only (lathe check reports parse and elaboration errors; this is the parse half). */
bool frontend_parse_only(const char *path, const char *text, Diag *d);

#endif
