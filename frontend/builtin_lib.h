/* frontend/builtin_lib.h — the standard layer library (lib/NAME.lathe) built into lathe at build
 * time (scripts/embed_lib.cmake), so `import nn` needs no file where lathe runs. Private to
 * frontend/.
 */
#ifndef LATHE_FRONTEND_BUILTIN_LIB_H
#define LATHE_FRONTEND_BUILTIN_LIB_H

typedef struct BuiltinLib {
  const char *name; /* "nn": what `import nn` names */
  const char *text; /* the file's bytes, NUL-terminated */
} BuiltinLib;

extern const BuiltinLib frontend_builtin_libs[];
extern const int frontend_n_builtin_libs;

#endif
