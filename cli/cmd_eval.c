/* cli/cmd_eval.c — `lathe eval FILE --weights CKPT --data fashion-mnist`: test loss and
 * accuracy of trained weights, through the compiled "evaluate" entry point. */
#include "cli.h"

#include <string.h>

static const char *help =
    "usage: lathe eval [OPTIONS] FILE --weights CKPT --data fashion-mnist[=DIR]\n"
    "\n"
    "Print the loss and accuracy of FILE with the weights of CKPT on the test split.\n"
    "\n"
    "options:\n"
    "  -w, --weights CKPT          safetensors checkpoint (e.g. from lathe train --checkpoint)\n"
    "  --data fashion-mnist[=DIR]  dataset (default DIR /usr/share/datasets/fashion-mnist)\n"
    "  -D NAME=VALUE               override a `const` of the model\n"
    "  --dtype f32|f64             compile every f32 as f64\n"
    "  -h, --help                  this help\n";

int cmd_eval(int argc, char **argv) {
  CliArgs a;
  CliCompile c;
  const char *weights = NULL, *data = NULL;
  cli_args_init(&a, "eval", argc, argv);
  cli_compile_init(&c);
  c.want_train = false;
  c.want_eval = true;
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return EXIT_OK;
    }
    if (cli_option(&a, "--weights", "-w")) weights = a.value;
    else if (cli_option(&a, "--data", NULL)) data = a.value;
    else if (!cli_compile_option(&a, &c)) {
      if (cli_positional(&a, &c.file) != EXIT_OK) return EXIT_USAGE;
    }
  }
  if (a.failed) return EXIT_USAGE;
  if (!c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!weights) return cli_usage_error(&a, "expected --weights CKPT");
  if (!data) return cli_usage_error(&a, "expected --data fashion-mnist[=DIR]");
  Module *m = cli_build_module(&c);
  if (!m) return EXIT_USER;
  RtModel model = {0};
  bool ok = cli_load(m, &c, &model);
  module_free(m);
  if (!ok) return EXIT_USER;
  Diag d;
  diag_init(&d);
  RtDataset ds = {0};
  CliWeights w = {0};
  double loss = 0, acc = 0;
  const lathe_entry_info *e = rt_model_entry(&model, "evaluate");
  if (!e)
    diag_error(&d, (SrcLoc){0}, "%s: `lathe eval` needs a train block (its loss) and an `output`",
               c.file);
  ok = e && rt_dataset_load(&ds, data, false, &d) &&
       cli_weights_init(&w, model.info, weights, 0, &d) &&
       cli_evaluate(e, &w, &ds, &loss, &acc, &d);
  if (ok) printf("test loss %.4f  test accuracy %.2f%%  (%lld samples)\n", loss, 100 * acc,
                 (long long)ds.n);
  cli_weights_fini(&w);
  rt_dataset_fini(&ds);
  rt_model_close(&model);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
