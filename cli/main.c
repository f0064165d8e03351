/* cli/main.c — `lathe COMMAND ...`: dispatch and top-level help.
 *
 * Exit status: 0 success, 1 user error (the model or an input file is wrong), 2 usage.
 */
#include "cli.h"

#include <string.h>

typedef struct Command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
    {"check", cmd_check, "parse and elaborate a model; print diagnostics only"},
    {"compile", cmd_compile, "compile a model to standalone C (<model>.c, <model>.h)"},
    {"dump", cmd_dump, "print the IR of a model (text or Graphviz dot)"},
    {"run", cmd_run, "compile, build and run a model's forward pass on .npy inputs"},
    {"grad", cmd_grad, "gradients of the loss w.r.t. every param, as safetensors"},
    {"train", cmd_train, "train a model on a dataset; checkpoints, progress, plot"},
    {"eval", cmd_eval, "loss and metrics (per-class report, R^2, ...) of trained weights"},
    {"predict", cmd_predict, "predictions of trained weights over a dataset (.npy/.csv)"},
    {"build", cmd_build, "compile a model to a self-describing shared object (or .o)"},
    {"repl", cmd_repl, "interactive session: define, evaluate (JIT), inspect, train"},
    {"import", cmd_import, "convert an ONNX model to a .lathe model and its weights"},
    {"prune", cmd_prune, "zero a fraction of a trained model's weights (one-shot pruning)"},
    {"quantize", cmd_quantize, "int8 post-training quantization of a trained model"},
    {"generate", cmd_generate, "sample text from a decode step with a KV cache (gpt_step)"},
    {"tune", cmd_tune, "time a model's kernel schedules on this CPU; keep the fastest (cache)"},
};

static void print_help(FILE *f) {
  fprintf(f,
          "lathe — a deep-learning graph compiler: .lathe models to specialized C\n"
          "\n"
          "usage: lathe COMMAND [OPTIONS] FILE\n"
          "\n"
          "commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fprintf(f,
          "\n"
          "Run 'lathe COMMAND --help' for the options of a command.\n"
          "Exit status: 0 success, 1 error in the model or inputs, 2 usage error.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    print_help(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("lathe 0.1.0\n");
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "lathe: unknown command '%s'\n\n", argv[1]);
  print_help(stderr);
  return EXIT_USAGE;
}
