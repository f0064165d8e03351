/* cli/dump.c — `lathe dump FILE`: the IR of the model or of an entry point after a pass. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: lathe dump [OPTIONS] FILE\n"
    "\n"
    "Print the IR of FILE. Without --after, the elaborated model graph; with --after PASS,\n"
    "every entry point (forward, train...) after PASS.\n"
    "\n"
    "options:\n"
    "  --format text|dot   IR text (default) or Graphviz dot\n"
    "  --after PASS        print the entry graphs after PASS (see below)\n"
    "  --entry NAME        only this entry point (forward, train, ...)\n"
    "  -D NAME=VALUE       override a `const` of the model\n"
    "  --dtype f32|f64     compile every f32 as f64\n"
    "  -O0 .. -O3          optimization level (default -O2)\n"
    "  -h, --help          this help\n"
    "\n"
    "passes, in order:\n";

static void print_help(void) {
  fputs(help, stdout);
  for (int p = 0; p < passes_count(); p++)
    printf("  %-10s %s\n", passes_name(p), passes_description(p));
}

static void print_graph(const Graph *g, bool dot) {
  char *text = dot ? ir_print_dot(g) : ir_print(g);
  if (text) fputs(text, stdout);
  free(text);
}

int cmd_dump(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  bool dot = false;
  const char *after = NULL, *entry = NULL;
  cli_args_init(&a, "dump", argc, argv);
  cli_compile_init(&c);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      print_help();
      return EXIT_OK;
    }
    if (cli_option(&a, "--format", NULL)) {
      if (strcmp(a.value, "dot") != 0 && strcmp(a.value, "text") != 0)
        return cli_usage_error(&a, "--format expects text or dot, got '%s'", a.value);
      dot = strcmp(a.value, "dot") == 0;
      continue;
    }
    if (cli_option(&a, "--after", NULL)) {
      after = a.value;
      continue;
    }
    if (cli_option(&a, "--entry", NULL)) {
      entry = a.value;
      continue;
    }
    if (cli_compile_option(&a, &c)) continue;
    const char *arg = a.argv[a.i++];
    if (arg[0] == '-') return cli_usage_error(&a, "unknown option '%s'", arg);
    if (c.file) return cli_usage_error(&a, "expected one FILE, got '%s' and '%s'", c.file, arg);
    c.file = arg;
  }
  if (a.failed) return EXIT_USAGE;
  if (!c.file) return cli_usage_error(&a, "expected a model FILE");
  if (after) {
    bool known = false;
    for (int p = 0; p < passes_count(); p++) known |= strcmp(passes_name(p), after) == 0;
    if (!known) return cli_usage_error(&a, "--after: unknown pass '%s'", after);
    /* stop the pipeline right after the requested pass */
    bool past = false;
    for (int p = 0; p < passes_count(); p++) {
      if (past && c.n_disabled < CLI_MAX_DISABLED) c.disabled[c.n_disabled++] = passes_name(p);
      past |= strcmp(passes_name(p), after) == 0;
    }
  } else {
    for (int p = 0; p < passes_count() && c.n_disabled < CLI_MAX_DISABLED; p++)
      c.disabled[c.n_disabled++] = passes_name(p);
  }
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  if (!after) {
    print_graph(m->model, dot);
  } else {
    int shown = 0;
    for (int i = 0; i < m->n_entries; i++) {
      if (entry && strcmp(entry, m->entries[i]->name) != 0) continue;
      print_graph(m->entries[i], dot);
      shown++;
    }
    if (entry && !shown) {
      fprintf(stderr, "lathe dump: model '%s' has no entry point '%s'\n", m->name, entry);
      module_free(m);
      return EXIT_USER;
    }
  }
  module_free(m);
  return EXIT_OK;
}
