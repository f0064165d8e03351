/* cli/cmd_check.c — `lathe check FILE`: diagnostics only, nothing written. */
#include "cli.h"

#include <string.h>

static const char *help =
    "usage: lathe check [OPTIONS] FILE\n"
    "\n"
    "Parse and elaborate FILE and run the pass pipeline; print every diagnostic.\n"
    "Exit status 0 when the model is valid, 1 when it has errors.\n"
    "\n"
    "options:\n"
    "  -D NAME=VALUE     override a `const` of the model\n"
    "  --max-batch M     a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64   compile every f32 as f64\n"
    "  --lib DIR         where `import` finds library files (default: lathe's lib/)\n"
    "  -h, --help        this help\n";

int cmd_check(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  cli_args_init(&a, "check", argc, argv);
  cli_compile_init(&c);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return EXIT_OK;
    }
    if (cli_compile_option(&a, &c)) continue;
    if (cli_positional(&a, &c.file) != EXIT_OK) return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!c.file) return cli_usage_error(&a, "expected a model FILE");
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  module_free(m);
  return EXIT_OK;
}
