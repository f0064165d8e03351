/* driver/api_model.h — the insides of a lathe_model (include/lathe/lathe.h), private to the
 * files implementing the embedding API: driver/api.c (compile, call, checkpoints) and
 * driver/api_open.c (a model opened from a `lathe build` shared object).
 *
 * Invariants: a lathe_model always has its code loaded, its params/state/workspace allocated
 * (64-byte aligned) and its Diag `err` holding only the messages of the last failed call.
 * `module` and `c_text` are NULL for a model opened from a shared object (no source).
 */
#ifndef LATHE_DRIVER_API_MODEL_H
#define LATHE_DRIVER_API_MODEL_H

#include "lathe/lathe.h"
#include "driver/driver.h"
#include "driver/load.h"

struct lathe_model {
  Module *module;                             /* after the pass pipeline; NULL if opened */
  DriverLoaded loaded;                        /* the code and its descriptor */
  char *c_text;                               /* the generated C; NULL if opened from a .so */
  char *path;                                 /* a copy: diagnostics may point at it */
  char define_names[DRIVER_MAX_DEFINES][128]; /* the NAMEs of the NAME=VALUE defines */
  void *params, *state, *ws;                  /* ws: the largest workspace of any entry */
  Diag err;                                   /* diagnostics of the last failed call */
};

/* params, state and the largest workspace of any entry of m's loaded code, allocated and
 * initialized from seed (driver/api.c); false with m->err set when out of memory */
bool api_buffers(lathe_model *m, uint64_t seed);
/* a malloc'd copy of s, or NULL (driver/api.c) */
char *api_strdup(const char *s);

#endif
