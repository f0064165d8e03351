/* frontend/frontend.c — the frontend's entry points: parse a file, load its imports, elaborate.
 *
 * `import NAME` loads NAME.lathe from FrontendOptions.lib_dir (--lib) alone when given, else
 * from $LATHE_LIB when it has the file, else the copy of lib/NAME.lathe built into lathe
 * (builtin_lib.h; messages call it "lib/NAME.lathe"): no path of the building machine is
 * needed, so an installed lathe, and a program linking liblathe, work wherever they are put.
 * Imports are transitive and each library is
 * loaded once; its decls are appended to the same Program, so fns from every file share one
 * namespace. Each loaded text is registered with the Diag so its errors get caret lines too.
 */
#include "frontend/ast.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/builtin_lib.h"

void frontend_options_init(FrontendOptions *o) {
  memset(o, 0, sizeof *o);
  o->float_dtype = DT_F32;
}

/* skips spaces, then the word w; NULL if it is not there */
static const char *define_word(const char *p, const char *w) {
  while (isspace((unsigned char)*p))
    p++;
  size_t n = strlen(w);
  return strncmp(p, w, n) == 0 ? p + n : NULL;
}

/* an integer (decimal, optional sign) then only spaces up to `end` */
static bool define_int(const char *p, const char *end, int64_t *out) {
  char *stop;
  errno = 0;
  long long v = strtoll(p, &stop, 10);
  if (errno || stop == p || isspace((unsigned char)*p)) return false;
  while (stop < end && isspace((unsigned char)*stop))
    stop++;
  *out = v;
  return stop == end;
}

/* VALUE = INTEGER | "dynamic" "(" ["max" "="] INTEGER ")" */
bool frontend_define_value(const char *text, Define *out) {
  out->dynamic = false;
  if (define_int(text, text + strlen(text), &out->value)) return true;
  const char *p = define_word(text, "dynamic");
  p = p ? define_word(p, "(") : NULL;
  if (!p) return false;
  const char *kw = define_word(p, "max");
  if (kw && (kw = define_word(kw, "="))) p = kw;
  const char *close = strchr(p, ')');
  if (!close || *define_word(close + 1, "") != '\0') return false;
  while (isspace((unsigned char)*p))
    p++;
  if (!define_int(p, close, &out->value) || out->value < 1 || out->value > INT32_MAX) return false;
  out->dynamic = true;
  return true;
}

/* Reads a whole file into a malloc'd NUL-terminated buffer; NULL if unreadable. */
static char *frontend_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
    if (len + 1 == cap) {
      char *b = realloc(buf, cap * 2);
      if (!b) free(buf);
      buf = b;
      cap *= 2;
    }
  }
  bool failed = ferror(f);
  fclose(f);
  if (!buf || failed) {
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  return buf;
}

static bool already_imported(const Program *p, int upto, const char *name) {
  for (int i = 0; i < upto; i++)
    if (p->decls[i]->kind == DECL_IMPORT && strcmp(p->decls[i]->name, name) == 0) return true;
  return false;
}

/* The built-in libraries, each parsed once per process (the first time any is imported) and
 * shared, read-only, by every later compile: the AST is never written after parsing, and
 * elaboration copies what the Module keeps. Parsing lib/nn.lathe was most of the time of a
 * small compile (a REPL line, a fuzz input). A library that does not parse (never in a
 * release: tests/frontend) is parsed again by each import, which reports its errors. */
typedef struct ParsedLib {
  Program prog;
  const char *path; /* "lib/NAME.lathe", in prog's arena */
  bool ok;
} ParsedLib;

static ParsedLib *parsed_libs;
static pthread_once_t parsed_libs_once = PTHREAD_ONCE_INIT;

static void parse_builtin_libs(void) {
  ParsedLib *libs = calloc((size_t)frontend_n_builtin_libs, sizeof *libs);
  for (int i = 0; libs && i < frontend_n_builtin_libs; i++) {
    ParsedLib *l = &libs[i];
    program_init(&l->prog);
    l->path = arena_printf(&l->prog.arena, "lib/%s.lathe", frontend_builtin_libs[i].name);
    Diag quiet;
    diag_init(&quiet);
    l->ok = parse_program(&l->prog, l->path, frontend_builtin_libs[i].text, &quiet);
    diag_fini(&quiet);
  }
  parsed_libs = libs;
}

static int builtin_index(const char *name) {
  for (int i = 0; i < frontend_n_builtin_libs; i++)
    if (strcmp(frontend_builtin_libs[i].name, name) == 0) return i;
  return -1;
}

/* The built-in lib/NAME.lathe into p: the shared parse, or the text parsed here when the
 * shared one failed. False (nothing reported) when there is no such library. */
static bool import_builtin(Program *p, const char *name, Diag *d, bool *ok) {
  int i = builtin_index(name);
  if (i < 0) return false;
  pthread_once(&parsed_libs_once, parse_builtin_libs);
  const char *text = frontend_builtin_libs[i].text;
  p->lib_builtin = true;
  if (parsed_libs && parsed_libs[i].ok) {
    diag_add_source(d, parsed_libs[i].path, text);
    program_append(p, &parsed_libs[i].prog);
    return true;
  }
  const char *path = arena_printf(&p->arena, "lib/%s.lathe", name);
  diag_add_source(d, path, text);
  *ok &= parse_program(p, path, text, d);
  return true;
}

/* `import NAME` (see the head comment): $LATHE_LIB or --lib, then the built-in copy. */
static bool import_library(Program *p, const char *lib_dir, const Decl *imp, Diag *d) {
  const char *env = getenv("LATHE_LIB");
  const char *dir = lib_dir ? lib_dir : env && *env ? env : NULL;
  const char *tried = "";
  bool ok = true;
  if (dir) {
    const char *path = arena_printf(&p->arena, "%s/%s.lathe", dir, imp->name);
    char *text = frontend_read(path);
    if (text) {
      diag_add_source(d, path, text);
      ok = parse_program(p, path, text, d);
      free(text);
      return ok;
    }
    if (lib_dir) { /* an explicit --lib is the only place looked in */
      diag_error(d, imp->name_loc, "cannot import '%s': no file %s", imp->name, path);
      return false;
    }
    tried = arena_printf(&p->arena, "%s, ", path);
  }
  if (import_builtin(p, imp->name, d, &ok)) return ok;
  diag_error(d, imp->name_loc, "cannot import '%s': no file %slib/%s.lathe (built into lathe)",
             imp->name, tried, imp->name);
  return false;
}

/* Loads every import, including those of imported files (the decl list grows as we go). */
static bool frontend_load_imports(Program *p, const char *lib_dir, Diag *d) {
  bool ok = true;
  for (int i = 0; i < p->n_decls && !diag_full(d); i++) {
    const Decl *imp = p->decls[i];
    if (imp->kind != DECL_IMPORT || already_imported(p, i, imp->name)) continue;
    ok &= import_library(p, lib_dir, imp, d);
  }
  return ok;
}

Module *frontend_compile(const char *path, const char *text, const FrontendOptions *o, Diag *d) {
  FrontendOptions defaults;
  if (!o) {
    frontend_options_init(&defaults);
    o = &defaults;
  }
  Program p;
  program_init(&p);
  const char *file = arena_strdup(&p.arena, path ? path : "<input>");
  diag_add_source(d, file, text);
  bool ok = parse_program(&p, file, text, d);
  ok &= frontend_load_imports(&p, o->lib_dir, d);
  Module *m = ok ? elab_program(&p, file, o, d) : NULL;
  if (m) m->lib_builtin = p.lib_builtin;
  program_fini(&p);
  return m;
}

bool frontend_parse_only(const char *path, const char *text, Diag *d) {
  Program p;
  program_init(&p);
  const char *file = arena_strdup(&p.arena, path ? path : "<input>");
  diag_add_source(d, file, text);
  bool ok = parse_program(&p, file, text, d);
  program_fini(&p);
  return ok;
}

bool frontend_check_text(const char *path, const char *text, size_t len, Diag *d) {
  const char *nul = memchr(text, '\0', len);
  if (!nul) return true;
  uint32_t line = 1, col = 1;
  for (const char *p = text; p < nul; p++) {
    if (*p == '\n')
      line++, col = 1;
    else
      col++;
  }
  diag_add_source(d, path, text); /* the text up to the NUL: the caret line */
  diag_error(d, (SrcLoc){path, line, col},
             "unexpected byte 0x00: expected lathe source text (is this a binary file?)");
  return false;
}
