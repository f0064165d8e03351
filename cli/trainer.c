/* cli/trainer.c — `lathe train --batch B`: the batch is the `const` that is dim 0 of the
 * model's first input, found by elaborating once and overridden like `-D NAME=B`. (`--lr` is
 * DriverOptions.lr: driver/driver.c sets it in the train block before the passes.)
 */
#include "cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* the `const NAME = VALUE` lines of text whose value is v: the one name, or NULL (reported) */
static char *const_named(const char *text, int64_t v, const char *file, Diag *d) {
  char *found = NULL;
  int n = 0;
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (strncmp(p, "const", 5) != 0 || !isspace((unsigned char)p[5])) continue;
    const char *name = p + 5;
    while (isspace((unsigned char)*name))
      name++;
    size_t len = 0;
    while (isalnum((unsigned char)name[len]) || name[len] == '_')
      len++;
    const char *eq = name + len;
    while (*eq == ' ' || *eq == '\t')
      eq++;
    char *end = NULL;
    long long value = *eq == '=' ? strtoll(eq + 1, &end, 10) : -1;
    if (!len || !end || value != v) continue;
    if (!n++) found = strndup(name, len);
  }
  if (n == 1) return found;
  free(found);
  diag_error(d, (SrcLoc){0},
             "--batch: %s has %s `const` equal to the batch %lld of its first input; use "
             "-D NAME=B on the batch const instead",
             file, n ? "more than one" : "no", (long long)v);
  return NULL;
}

bool cli_batch_define(CliCompile *c, uint64_t batch, Diag *d) {
  if (driver_is_onnx(c->file)) {
    diag_error(d, (SrcLoc){0},
               "--batch applies to .lathe models (an imported ONNX model has "
               "the batch it was imported with)");
    return false;
  }
  char *text = NULL;
  size_t len = 0;
  if (!rt_read_file(c->file, &text, &len, d)) return false;
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = c->lib_dir;
  fo.defines = c->defines;
  fo.n_defines = c->n_defines;
  Module *m = frontend_compile(c->file, text, &fo, d);
  char *name = NULL;
  if (m && (m->n_inputs == 0 || m->inputs[0].shape.rank == 0))
    diag_error(d, (SrcLoc){0}, "--batch: the model's first input has no batch dimension");
  else if (m)
    name = const_named(text, m->inputs[0].shape.dim[0], c->file, d);
  module_free(m);
  free(text);
  static char batch_const[256]; /* defines hold their names for the whole command */
  bool ok = name && strlen(name) < sizeof batch_const && c->n_defines < CLI_MAX_DEFINES;
  if (ok) {
    strcpy(batch_const, name);
    c->defines[c->n_defines++] = (Define){.name = batch_const, .value = (int64_t)batch};
  } else if (name) {
    diag_error(d, (SrcLoc){0}, "--batch: cannot add a define for const '%s'", name);
  }
  free(name);
  return ok;
}
