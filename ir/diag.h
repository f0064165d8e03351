/* ir/diag.h — the diagnostic sink every stage reports to.
 *
 * Library code never prints or exits: it reports here, and the caller decides (the CLI
 * prints and exits non-zero, the REPL prints and continues). A report with a location is
 * rendered chibicc-style:
 *
 *   model.lathe:3:7: error: expected ')' to close '(' at 3:2
 *     h = relu(dense(x, 256)
 *         ^
 *
 * The source line is found through the sources registered with diag_add_source.
 */
#ifndef LATHE_IR_DIAG_H
#define LATHE_IR_DIAG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* A position in a model file. file == NULL means "no source location". The file string must
 * outlive every use (intern it in a graph/module arena or use a registered source name). */
typedef struct SrcLoc {
  const char *file;
  uint32_t line; /* 1-based */
  uint32_t col;  /* 1-based, in bytes */
} SrcLoc;

typedef enum DiagLevel { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE, DIAG_LEVEL_COUNT } DiagLevel;

typedef struct DiagSource {
  char *name; /* owned copy */
  char *text; /* owned copy, NUL-terminated */
} DiagSource;

typedef struct Diag {
  char *buf;           /* rendered messages, owned; NUL-terminated when len > 0 */
  size_t len, cap;
  int n_errors;        /* errors reported (including ones past max_errors) */
  int n_warnings;
  int max_errors;      /* stop rendering after this many errors; 0 = default (20) */
  DiagSource *sources; /* registered source texts for caret lines */
  int n_sources, cap_sources;
  /* While site.file is set (the frontend inlining a fn of another file, e.g. lib/nn.lathe,
   * for a call in the user's file): errors and warnings located in another file than site's
   * are reported at site, followed by a note at their own location inside site_fn. */
  SrcLoc site;
  const char *site_fn;
} Diag;

void diag_init(Diag *d);
void diag_fini(Diag *d);
/* register a source text so that reports in `name` show the line and a caret */
void diag_add_source(Diag *d, const char *name, const char *text);
void diag_report(Diag *d, DiagLevel level, SrcLoc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define diag_error(d, ...) diag_report((d), DIAG_ERROR, __VA_ARGS__) /* (d, loc, fmt, ...) */
#define diag_note(d, ...) diag_report((d), DIAG_NOTE, __VA_ARGS__)
/* true once the error limit is reached: parsers stop recovering */
bool diag_full(const Diag *d);
/* write rendered messages (and a "N errors" summary line if any were cut) to f, then clear */
void diag_flush(Diag *d, FILE *f);
/* the rendered text so far (empty string if none) */
const char *diag_text(const Diag *d);

/* Damerau-free Levenshtein distance, for "did you mean" suggestions */
int diag_edit_distance(const char *a, const char *b);

/* internal invariant check with file and line; never reachable from user input */
void ir_assert_fail(const char *expr, const char *file, int line);
#define IR_ASSERT(e) ((e) ? (void)0 : ir_assert_fail(#e, __FILE__, __LINE__))

#endif
