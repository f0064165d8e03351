/* runtime/api_model.h — the insides of a lathe_model (include/lathe/lathe.h), private to the
 * files implementing the embedding API: runtime/api.c (compile, call, checkpoints) and
 * runtime/api_open.c (a model opened from a `lathe build` shared object).
 *
 * Invariants: a lathe_model always has its code loaded, its params/state/workspace allocated
 * (64-byte aligned) and its Diag `err` holding only the messages of the last failed call.
 * `module` and `c_text` are NULL for a model opened from a shared object (no source).
 */
#ifndef LATHE_RUNTIME_API_MODEL_H
#define LATHE_RUNTIME_API_MODEL_H

#include "lathe/lathe.h"
#include "runtime/model_load.h"

struct lathe_model {
  Module *module;            /* after the pass pipeline: for lathe_ir_text; NULL if opened */
  RtLoaded loaded;           /* the code and its descriptor */
  char *c_text;              /* the generated C; NULL if opened from a shared object */
  char *path, *source;       /* copies: diagnostics may point at them */
  void *params, *state, *ws; /* ws: the largest workspace of any entry */
  Diag err;                  /* diagnostics of the last failed call */
};

#endif
