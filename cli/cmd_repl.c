/* cli/cmd_repl.c — `lathe repl [FILE]`: the interactive session. Reads inputs (libedit line
 * editing and history on a terminal, plain lines otherwise), joins the lines of a multi-line
 * input (an open `{`, `(` or `[`), classifies each input and hands it to repl_session.c.
 *
 * Invariant: no input ends the session except :quit and end of input; an error prints a
 * diagnostic and the loop continues.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "repl.h"
#include "driver/load.h"

#ifdef LATHE_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

static const char *help =
    "usage: lathe repl [--backend jit|cc] [--echo] [FILE]\n"
    "\n"
    "An interactive session: definitions and expressions line by line; each expression is\n"
    "compiled (JIT by default) and its value printed. FILE is loaded first (:load).\n"
    "With --echo, each input is printed after its prompt (for transcripts of piped input).\n";

static const char *commands_help =
    "inputs:\n"
    "  import nn | const N = 4 | fn f(...) -> T { ... }   definitions (multi-line ok)\n"
    "  param w: f32[3, 2] = glorot_uniform               a trainable tensor (value persists)\n"
    "  data x: f32[4, 3] = uniform(-1, 1)                a fixed tensor (not trained); with\n"
    "                                                    const N = dynamic(max = 64), data\n"
    "                                                    x: f32[N, 3] runs at :set's rows\n"
    "  h = x @ w                                         a binding\n"
    "  relu(h) * 2.0                                     an expression: compiled and printed\n"
    "commands:\n"
    "  :load FILE              run the inputs of FILE (definitions, params, bindings)\n"
    "  :ir EXPR | :c EXPR      the optimized IR / the generated C of an expression\n"
    "  :grad LOSS wrt PARAM    d LOSS / d PARAM from the compiled backward pass\n"
    "  :train LOSS STEPS [OPT] run the train step STEPS times; LOSS is a binding (or an\n"
    "                          expression without spaces); OPT: sgd(lr = 0.1) by default\n"
    "  :time EXPR              compile time and median run time\n"
    "  :set NAME FILE.npy      the value of a param or data tensor\n"
    "  :save FILE | :restore FILE   params and data as safetensors\n"
    "  :vars                   what is defined\n"
    "  :backend jit|cc         how expressions are compiled\n"
    "  :reset                  forget everything\n"
    "  :help | :quit\n";

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
  return s;
}

/* the first word of *p (NUL-terminated in place); *p moves past it */
static char *next_word(char **p) {
  char *s = *p;
  while (isspace((unsigned char)*s)) s++;
  char *w = s;
  while (*s && !isspace((unsigned char)*s)) s++;
  if (*s) *s++ = '\0';
  *p = s;
  return w;
}

static bool starts_with_word(const char *s, const char *word) {
  size_t n = strlen(word);
  return strncmp(s, word, n) == 0 && (isspace((unsigned char)s[n]) || !s[n]);
}

static bool load_file(ReplSession *s, const char *path);

/* `param NAME: TYPE = INIT` / `data NAME: TYPE = INIT` (the init defaults to zeros) */
static void eval_tensor_decl(ReplSession *s, char *rest, int kind) {
  char *colon = strchr(rest, ':');
  if (!colon) {
    fprintf(s->out, "error: expected `%s NAME: TYPE = INIT`\n",
            kind == REPL_PARAM ? "param" : "data");
    return;
  }
  *colon = '\0';
  char *name = trim(rest), *type = trim(colon + 1), text[4096];
  if (strstr(type, " = ")) snprintf(text, sizeof text, "%s", type);
  else snprintf(text, sizeof text, "%s = zeros", type);
  repl_define_var(s, name, text, kind);
}

static void show_vars(ReplSession *s) {
  static const char *const kinds[] = {"param", "data", "binding"};
  for (int i = 0; i < s->n_vars; i++)
    fprintf(s->out, "  %-7s %s%s%s\n", kinds[s->vars[i].kind], s->vars[i].name,
            s->vars[i].kind == REPL_BINDING ? " = " : ": ", s->vars[i].text);
  if (s->n_vars == 0) fprintf(s->out, "  (nothing defined)\n");
}

static void eval_train(ReplSession *s, char *rest) {
  char *loss = next_word(&rest), *steps_text = next_word(&rest), *end = NULL;
  long steps = strtol(steps_text, &end, 10);
  if (!*loss || !*steps_text || *end || steps <= 0 || steps > 10000000)
    fprintf(s->out, "error: expected `:train LOSS STEPS [OPTIMIZER]`, e.g. :train loss 100 "
                    "adam(lr = 0.01)\n");
  else
    repl_train(s, loss, steps, trim(rest));
}

static void eval_grad(ReplSession *s, char *rest) {
  char *wrt = strstr(rest, " wrt ");
  if (!wrt) {
    fprintf(s->out, "error: expected `:grad LOSS wrt PARAM`\n");
    return;
  }
  *wrt = '\0';
  repl_grad(s, trim(rest), trim(wrt + 5));
}

/* ":cmd args"; returns false on :quit */
static bool eval_command(ReplSession *s, char *line) {
  char *rest = line + 1, *cmd = next_word(&rest);
  rest = trim(rest);
  if (!strcmp(cmd, "quit") || !strcmp(cmd, "q") || !strcmp(cmd, "exit")) return false;
  if (!strcmp(cmd, "help")) fputs(commands_help, s->out);
  else if (!strcmp(cmd, "load")) load_file(s, rest);
  else if (!strcmp(cmd, "ir") || !strcmp(cmd, "c")) repl_print_ir(s, rest, cmd[0] == 'c');
  else if (!strcmp(cmd, "time")) repl_time(s, rest);
  else if (!strcmp(cmd, "grad")) eval_grad(s, rest);
  else if (!strcmp(cmd, "train")) eval_train(s, rest);
  else if (!strcmp(cmd, "save")) repl_save(s, rest);
  else if (!strcmp(cmd, "restore")) repl_restore(s, rest);
  else if (!strcmp(cmd, "vars")) show_vars(s);
  else if (!strcmp(cmd, "reset")) repl_reset(s), fprintf(s->out, "session cleared\n");
  else if (!strcmp(cmd, "set")) {
    char *name = next_word(&rest);
    repl_set(s, name, trim(rest));
  } else if (!strcmp(cmd, "backend")) {
    DriverBackend b;
    if (driver_backend_from_name(rest, &b)) s->backend = (int)b;
    else fprintf(s->out, "error: expected `:backend jit` or `:backend cc`\n");
  } else {
    fprintf(s->out, "error: unknown command ':%s' (:help lists them)\n", cmd);
  }
  return true;
}

/* NAME = EXPR (not ==) */
static bool split_binding(char *line, char **name, char **expr) {
  char *p = line;
  if (!isalpha((unsigned char)*p) && *p != '_') return false;
  while (isalnum((unsigned char)*p) || *p == '_') p++;
  char *end = p;
  while (*p == ' ' || *p == '\t') p++;
  if (*p != '=' || p[1] == '=') return false;
  *end = '\0';
  *name = line;
  *expr = trim(p + 1);
  return true;
}

bool repl_eval(ReplSession *s, const char *input) {
  char *copy = strdup(input), *line = copy ? trim(copy) : NULL, *name, *expr;
  bool go_on = true;
  if (!line || !*line || *line == '#') {
    /* nothing */
  } else if (*line == ':') {
    go_on = eval_command(s, line);
  } else if (starts_with_word(line, "import") || starts_with_word(line, "const") ||
             starts_with_word(line, "fn")) {
    repl_define_text(s, line);
  } else if (starts_with_word(line, "param") || starts_with_word(line, "data")) {
    bool is_param = line[0] == 'p';
    eval_tensor_decl(s, line + strlen(is_param ? "param" : "data"),
                     is_param ? REPL_PARAM : REPL_DATA);
  } else if (s->depth > 0 && starts_with_word(line, "model")) { /* from a file */
    repl_load_model(s, line);
  } else if (s->depth > 0 && starts_with_word(line, "train")) {
    fprintf(s->out, "note: the file's train block is skipped; train with :train LOSS STEPS "
                    "OPTIMIZER\n");
  } else if (starts_with_word(line, "model") || starts_with_word(line, "train")) {
    fprintf(s->out, "error: `model`/`train` blocks are for files; in the REPL, bind values "
                    "and use :train\n");
  } else if (split_binding(line, &name, &expr)) {
    repl_define_var(s, name, expr, REPL_BINDING);
  } else {
    repl_show(s, line);
  }
  fflush(s->out);
  free(copy);
  return go_on;
}

/* ---- reading inputs ------------------------------------------------------------------------ */

typedef struct Reader {
  FILE *in;
  bool tty;  /* libedit */
  bool echo; /* print prompt + input (transcripts) */
} Reader;

/* one line, malloc'd without its newline; NULL at end of input */
static char *read_line(Reader *r, const char *prompt, FILE *out) {
#ifdef LATHE_HAVE_LIBEDIT
  if (r->tty) {
    char *line = readline(prompt);
    if (line && *line) add_history(line);
    return line;
  }
#endif
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, r->in);
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  if (r->echo) fprintf(out, "%s%s\n", prompt, line);
  return line;
}

/* Reads and evaluates inputs until end of input or :quit; false on :quit. */
static bool run_inputs(ReplSession *s, Reader *r) {
  ReplText buf = {0};
  bool go_on = true;
  for (;;) {
    char *line = read_line(r, buf.len ? "  ...> " : "lathe> ", s->out);
    if (!line) break;
    repl_text_add(&buf, "%s%s", buf.len ? "\n" : "", line);
    free(line);
    if (repl_open_depth(buf.s) > 0) continue;
    go_on = repl_eval(s, buf.s);
    buf.len = 0;
    buf.s[0] = '\0';
    if (!go_on) break;
  }
  if (buf.len) go_on = repl_eval(s, buf.s); /* an unfinished input: report its error */
  repl_text_free(&buf);
  return go_on;
}

static bool load_file(ReplSession *s, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(s->out, "error: cannot open '%s'\n", path);
    return false;
  }
  if (s->depth >= 8) {
    fclose(f);
    fprintf(s->out, "error: :load nested too deeply at '%s'\n", path);
    return false;
  }
  Reader r = {f, false, false};
  s->depth++;
  run_inputs(s, &r);
  s->depth--;
  fclose(f);
  return true;
}

int cmd_repl(int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "repl", argc, argv);
  const char *file = NULL;
  DriverBackend backend = DRIVER_BACKEND_AUTO;
  bool echo = false;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      fputs(commands_help, stdout);
      return EXIT_OK;
    }
    if (cli_flag(&a, "--echo", NULL)) {
      echo = true;
    } else if (cli_option(&a, "--backend", NULL)) {
      if (!driver_backend_from_name(a.value, &backend))
        return cli_usage_error(&a, "--backend expects jit, cc or auto, got '%s'", a.value);
    } else {
      if (cli_positional(&a, &file) != EXIT_OK) return EXIT_USAGE;
    }
  }
  if (a.failed) return EXIT_USAGE;
  ReplSession s;
  repl_session_init(&s, stdout);
  s.backend = (int)backend;
  Reader r = {stdin, isatty(STDIN_FILENO) != 0, echo};
#ifndef LATHE_HAVE_LIBEDIT
  r.tty = false;
#endif
  char history[4096] = "";
  if (r.tty && getenv("HOME")) {
    snprintf(history, sizeof history, "%s/.lathe_history", getenv("HOME"));
#ifdef LATHE_HAVE_LIBEDIT
    read_history(history);
#endif
    printf("lathe %s — :help for commands, :quit or Ctrl-D to leave\n",
           jit_available() ? "(JIT)" : "(cc backend)");
  }
  if (file) load_file(&s, file);
  run_inputs(&s, &r);
#ifdef LATHE_HAVE_LIBEDIT
  if (*history) write_history(history);
#endif
  repl_session_fini(&s);
  return EXIT_OK;
}
