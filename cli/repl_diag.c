/* cli/repl_diag.c — diagnostics of the synthetic REPL model, shown on what the user typed.
 *
 * The frontend reports into the synthetic model (`<repl>:14:18`, under `  output _ = x +`).
 * model_text records, for each synthetic line that holds user text, where that text starts
 * (ReplMap); repl_print_diags rewrites each report on such a line to the user's input:
 *
 *   <input>:1:4: error: expected an expression, got end of line
 *     x +
 *        ^
 *
 * `<input>` is the line being entered; a report in an earlier binding or param names it
 * (`<h>:1:9`). Reports elsewhere (a `fn` of the definitions) are printed as they are.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

void repl_map_add(ReplMap *map, const ReplText *t, int col_shift, const char *label,
                  const char *text) {
  if (!map || map->n == REPL_MAP_MAX) return;
  ReplMapLine *m = &map->lines[map->n++];
  m->line = 1;
  for (size_t i = 0; i < t->len; i++)
    m->line += t->s[i] == '\n';
  m->col_shift = col_shift;
  snprintf(m->label, sizeof m->label, "%s", label);
  m->text = text;
}

static const ReplMapLine *find(const ReplMap *map, long line) {
  for (int i = 0; map && i < map->n; i++)
    if (map->lines[i].line == line) return &map->lines[i];
  return NULL;
}

/* col of synthetic line m as a column of the user's text */
static long user_col(const ReplMapLine *m, long col) {
  long c = col - m->col_shift;
  long len = (long)strcspn(m->text, "\n");
  return c < 1 ? 1 : c > len + 1 ? len + 1 : c;
}

/* The message with "at LINE:COL" references to mapped lines rewritten ("at 1:COL"). */
static void print_message(FILE *out, const ReplMap *map, const char *msg) {
  for (const char *p = msg; *p;) {
    long line, col;
    int used = 0;
    const ReplMapLine *m = NULL;
    if (strncmp(p, " at ", 4) == 0 && sscanf(p + 4, "%ld:%ld%n", &line, &col, &used) == 2)
      m = find(map, line);
    if (m) {
      fprintf(out, " at 1:%ld", user_col(m, col));
      p += 4 + used;
    } else {
      fputc(*p++, out);
    }
  }
}

/* Prints one report header on a mapped line, then the user's text with a caret. */
static void print_mapped(FILE *out, const ReplMap *map, const ReplMapLine *m, long col,
                         const char *rest) {
  long c = user_col(m, col);
  long len = (long)strcspn(m->text, "\n");
  fprintf(out, "%s:1:%ld: ", m->label, c);
  print_message(out, map, rest);
  fprintf(out, "\n  %.*s\n  ", (int)len, m->text);
  for (long i = 0; i < c - 1; i++)
    fputc(m->text[i] == '\t' ? '\t' : ' ', out);
  fputs("^\n", out);
}

/* the length of the line at p, without its newline */
static size_t line_len(const char *p) { return strcspn(p, "\n"); }

static const char *next_line(const char *p) {
  p += line_len(p);
  return *p ? p + 1 : p;
}

void repl_print_diags(FILE *out, const ReplMap *map, const char *text) {
  static const char prefix[] = "<repl>:";
  for (const char *p = text; *p;) {
    long line = 0, col = 0;
    int used = 0;
    const ReplMapLine *m = NULL;
    if (strncmp(p, prefix, sizeof prefix - 1) == 0 &&
        sscanf(p + sizeof prefix - 1, "%ld:%ld: %n", &line, &col, &used) == 2 && used > 0)
      m = find(map, line);
    if (!m) {
      fprintf(out, "%.*s\n", (int)line_len(p), p);
      p = next_line(p);
      continue;
    }
    const char *rest = p + sizeof prefix - 1 + used;
    char *msg = strndup(rest, line_len(rest));
    print_mapped(out, map, m, col, msg ? msg : "error");
    free(msg);
    p = next_line(p);
    /* skip the synthetic source line and its caret, which print_mapped replaced */
    for (int k = 0; k < 2 && strncmp(p, "  ", 2) == 0; k++)
      p = next_line(p);
  }
}
