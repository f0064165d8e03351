/* driver/api_open.c — lathe_open (include/lathe/lathe.h): a lathe_model from a shared object
 * built by `lathe build`, so the embedding API (and the Python package over it) calls, trains
 * and checkpoints a prebuilt model exactly like one it compiled.
 *
 * The object is opened by driver/load.c (descriptor through `lathe_model` or the file
 * name; entries called through libffi). The model has no Module and no C text: the API
 * functions that need them report that instead.
 */
#include <stdlib.h>
#include <string.h>

#include "driver/api_model.h"

lathe_model *lathe_open(const char *so_path, uint64_t seed, char **errors) {
  if (errors) *errors = NULL;
  lathe_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  diag_init(&m->err);
  m->path = api_strdup(so_path ? so_path : "");
  bool ok = m->path != NULL;
  if (ok && !*m->path) {
    diag_error(&m->err, (SrcLoc){0}, "lathe_open: expected the path of a shared object");
    ok = false;
  }
  ok = ok && driver_loaded_open_so(&m->loaded, m->path, &m->err) && api_buffers(m, seed);
  if (ok) return m;
  if (errors) *errors = api_strdup(m->err.n_errors ? diag_text(&m->err) : "out of memory\n");
  lathe_free(m);
  return NULL;
}
