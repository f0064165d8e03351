/* cli/repl_model.c — a `model` block of a file loaded into the REPL (`lathe repl FILE`,
 * `:load FILE`) becomes REPL definitions: each input a `data` tensor (zeros until :set), each
 * binding and `output NAME = EXPR` a binding, so the model's values can be shown, timed,
 * differentiated and trained line by line. A `train` block is skipped with a note (the REPL
 * trains with :train).
 *
 * The block is taken apart as text: the argument list at top-level commas, the body into
 * statements at line breaks outside parentheses (repl_open_depth), comments dropped.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "repl.h"

/* the index of the bracket closing the one at text[open], or -1 */
static long matching(const char *text, long open) {
  int depth = 0;
  for (long i = open; text[i]; i++) {
    if (text[i] == '(' || text[i] == '[' || text[i] == '{') depth++;
    if ((text[i] == ')' || text[i] == ']' || text[i] == '}') && --depth == 0) return i;
  }
  return -1;
}

static char *trim_span(char *s, char *end) {
  while (s < end && isspace((unsigned char)*s))
    s++;
  while (end > s && isspace((unsigned char)end[-1]))
    end--;
  *end = '\0';
  return s;
}

/* `x: f32[N, 784]` → data x: f32[N, 784] (zeros) */
static int define_inputs(ReplSession *s, char *args) {
  int n = 0, depth = 0;
  for (char *start = args, *p = args;; p++) {
    if (*p == '(' || *p == '[') depth++;
    if (*p == ')' || *p == ']') depth--;
    if (*p && (*p != ',' || depth > 0)) continue;
    bool last = *p == '\0';
    char *arg = trim_span(start, p), *colon = strchr(arg, ':');
    if (colon) {
      char text[4096];
      snprintf(text, sizeof text, "%s = zeros", trim_span(colon + 1, colon + strlen(colon)));
      n += repl_define_var(s, trim_span(arg, colon), text, REPL_DATA);
    }
    if (last) break;
    start = p + 1;
  }
  return n;
}

/* one statement of the body: NAME = EXPR or output NAME = EXPR */
static int define_statement(ReplSession *s, char *stmt) {
  for (char *h = strchr(stmt, '#'); h; h = strchr(h, '#')) { /* comments to line ends */
    char *nl = strchr(h, '\n');
    memset(h, ' ', nl ? (size_t)(nl - h) : strlen(h));
  }
  char *line = trim_span(stmt, stmt + strlen(stmt));
  if (strncmp(line, "output", 6) == 0 && isspace((unsigned char)line[6])) line += 7;
  char *eq = strchr(line, '=');
  while (eq && (eq[1] == '=' || (eq > line && strchr("<>!=", eq[-1]))))
    eq = strchr(eq + 2, '=');
  if (!*line || !eq) return 0; /* `output NAME` of an existing binding */
  char *name = trim_span(line, eq);
  return repl_define_var(s, name, trim_span(eq + 1, eq + 1 + strlen(eq + 1)), REPL_BINDING);
}

/* the body between its braces, statement by statement */
static int define_body(ReplSession *s, char *body) {
  int n = 0;
  ReplText stmt = {0};
  for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
    repl_text_add(&stmt, "%s%s", stmt.len ? "\n" : "", line);
    if (repl_open_depth(stmt.s) > 0) continue;
    n += define_statement(s, stmt.s);
    stmt.len = 0;
    stmt.s[0] = '\0';
  }
  repl_text_free(&stmt);
  return n;
}

bool repl_load_model(ReplSession *s, const char *text) {
  char *copy = strdup(text);
  long open = copy ? (long)strcspn(copy, "(") : 0,
       close = copy && copy[open] ? matching(copy, open) : -1;
  long brace = close > 0 ? close + (long)strcspn(copy + close, "{") : -1;
  long end = brace > 0 && copy[brace] ? matching(copy, brace) : -1;
  if (end < 0) {
    fprintf(s->out, "error: expected `model NAME(INPUTS) { ... }`\n");
    free(copy);
    return false;
  }
  copy[close] = '\0', copy[end] = '\0';
  char *name = trim_span(copy + 5, copy + open);
  int inputs = define_inputs(s, copy + open + 1);
  int bindings = define_body(s, copy + brace + 1);
  fprintf(s->out, "model '%s': %d inputs as data (zeros until :set), %d bindings\n", name, inputs,
          bindings);
  free(copy);
  return true;
}
