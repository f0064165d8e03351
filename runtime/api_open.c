/* runtime/api_open.c — lathe_open (include/lathe/lathe.h): a lathe_model from a shared object
 * built by `lathe build`, so the embedding API (and the Python package over it) calls, trains
 * and checkpoints a prebuilt model exactly like one it compiled.
 *
 * The object is opened by runtime/model_load.c (descriptor through `lathe_model` or the file
 * name; entries called through libffi). The model has no Module and no C text: the API
 * functions that need them report that instead.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/api_model.h"

static void *open_alloc(size_t bytes) {
  size_t n = (bytes + 63) / 64 * 64;
  void *p = aligned_alloc(64, n ? n : 64);
  if (p) memset(p, 0, n ? n : 64);
  return p;
}

static char *open_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

/* params, state and the largest workspace of any entry, then the initializers */
static bool open_buffers(lathe_model *m, uint64_t seed) {
  const lathe_model_info *info = m->loaded.info;
  size_t ws = info->workspace_bytes;
  for (int i = 0; i < info->n_entries; i++)
    if (info->entries[i].workspace_bytes > ws) ws = info->entries[i].workspace_bytes;
  m->params = open_alloc(info->params_bytes);
  m->state = open_alloc(info->state_bytes);
  m->ws = open_alloc(ws);
  if (!m->params || !m->state || !m->ws) {
    diag_error(&m->err, (SrcLoc){0}, "out of memory allocating the buffers of '%s'", info->name);
    return false;
  }
  info->init(m->params, m->state, seed);
  return true;
}

lathe_model *lathe_open(const char *so_path, uint64_t seed, char **errors) {
  if (errors) *errors = NULL;
  lathe_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  diag_init(&m->err);
  m->path = open_strdup(so_path ? so_path : "");
  m->source = open_strdup("");
  bool ok = m->path && m->source;
  if (ok && !*m->path) {
    diag_error(&m->err, (SrcLoc){0}, "lathe_open: expected the path of a shared object");
    ok = false;
  }
  ok = ok && rt_loaded_open_so(&m->loaded, m->path, &m->err) && open_buffers(m, seed);
  if (ok) return m;
  if (errors) *errors = open_strdup(m->err.n_errors ? diag_text(&m->err) : "out of memory\n");
  lathe_free(m);
  return NULL;
}
