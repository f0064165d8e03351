/* cli/cmd_compile.c — `lathe compile FILE -o DIR`: writes DIR/<model>.c and DIR/<model>.h
 * (DIR/<prefix>.c and .h with --prefix, which names their symbols too). With --weights W
 * --bake, W's weights are built into the C (driver/bake.c).
 *
 * Both files are written atomically (temp + rename); on any error neither is left behind.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *help =
    "usage: lathe compile [OPTIONS] FILE [-o DIR]\n"
    "\n"
    "Compile FILE to standalone C: DIR/<model>.c and DIR/<model>.h (default DIR: .).\n"
    "The output builds with any C99 compiler and needs only libm.\n"
    "\n"
    "options:\n"
    "  -o, --out DIR        output directory (created if missing)\n"
    "  -D NAME=VALUE        override a `const` of the model\n"
    "  --model NAME         which model of a file with several (default: the one its\n"
    "                       train block names, else the last)\n"
    "  --max-batch M        a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --prefix NAME        prefix of the files and of every exported symbol, type and macro\n"
    "                       (NAME.c, NAME_forward, NAME_info, NAME_WORKSPACE_BYTES in\n"
    "                       capitals) instead of the model's name: two models, or one built\n"
    "                       twice with different -D, then link into one program\n"
    "  --dtype f32|f64      compile every f32 as f64\n"
    "  -O0 .. -O3           optimization level (default -O2)\n"
    "  --line-directives    emit #line so debuggers step through the .lathe file\n"
    "  --target T           matmul kernels for native (default), generic (portable C99),\n"
    "                       x86-64-v3, x86-64-v4 or aarch64\n"
    "  --threads N          large kernels run on N OpenMP threads when the C is built\n"
    "                       with -fopenmp (default 1: no pragmas)\n"
    "  --no-tune-cache      kernel schedules from the cost model alone, not from what\n"
    "                       `lathe tune` measured (docs/tuning.md)\n"
    "  -w, --weights W      with --bake: a safetensors checkpoint (lathe train --checkpoint)\n"
    "  --bake               build W's weights into the C, in the matmuls' packed layout:\n"
    "                       only the inference entry, which then takes no weights\n"
    "  --split-step         also emit the train step split at the gradient exchange:\n"
    "                       <model>_grad and <model>_apply over <model>_grads\n"
    "                       (data-parallel training, docs/distributed.md)\n"
    "  --buckets BYTES      with --split-step: <model>_grad calls hooks->ready as each\n"
    "                       bucket of ~BYTES of gradients is final (docs/distributed.md)\n"
    "  --dump-after PASS    print the IR after PASS\n"
    "  --disable PASS       do not run PASS\n"
    "  --time-passes        print the time spent in each pass\n"
    "  --lib DIR            where `import` finds library files\n"
    "  -h, --help           this help\n";

static bool write_outputs(const char *dir, const char *name, const char *c_text,
                          const char *h_text) {
  Diag d;
  diag_init(&d);
  if (mkdir(dir, 0777) != 0 && errno != EEXIST)
    diag_error(&d, (SrcLoc){0}, "cannot create directory '%s': %s", dir, strerror(errno));
  char c_path[4096], h_path[4096];
  snprintf(c_path, sizeof c_path, "%s/%s.c", dir, name);
  snprintf(h_path, sizeof h_path, "%s/%s.h", dir, name);
  bool ok = d.n_errors == 0 && rt_write_file_atomic(h_path, h_text, strlen(h_text), &d);
  if (ok && !rt_write_file_atomic(c_path, c_text, strlen(c_text), &d)) {
    unlink(h_path); /* leave no half of the pair behind */
    ok = false;
  }
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok;
}

int cmd_compile(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  const char *out = ".", *weights = NULL;
  bool bake = false;
  cli_args_init(&a, "compile", argc, argv);
  cli_compile_init(&c);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return EXIT_OK;
    }
    if (cli_option(&a, "--out", "-o")) {
      out = a.value;
      continue;
    }
    if (cli_option(&a, "--weights", "-w")) {
      weights = a.value;
      continue;
    }
    if (cli_flag(&a, "--bake", NULL)) {
      bake = true;
      continue;
    }
    if (cli_compile_option(&a, &c)) continue;
    if (cli_positional(&a, &c.file) != EXIT_OK) return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!c.file) return cli_usage_error(&a, "expected a model FILE");
  if (bake != (weights != NULL))
    return cli_usage_error(&a, bake ? "--bake needs --weights W" : "--weights needs --bake");
  if (bake) { /* inference only: no train, grad or evaluate entries */
    c.bake = weights;
    c.want_train = c.want_grad = c.want_eval = false;
  }
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  char *c_text = NULL, *h_text = NULL;
  const char *name = driver_prefix(m, &c);
  bool ok = cli_emit(m, &c, &c_text, &h_text) && write_outputs(out, name, c_text, h_text);
  if (ok) fprintf(stderr, "wrote %s/%s.c and %s/%s.h\n", out, name, out, name);
  free(c_text);
  free(h_text);
  module_free(m);
  return ok ? EXIT_OK : EXIT_USER;
}
