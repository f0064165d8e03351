/* cli/cli.h — private to cli/: argument parsing, the shared compile driver, the commands.
 *
 * Exit status everywhere: 0 success, 1 user error (bad model, bad input file), 2 usage.
 */
#ifndef LATHE_CLI_CLI_H
#define LATHE_CLI_CLI_H

#include "driver/driver.h"
#include "runtime/data.h"

enum { EXIT_OK = 0, EXIT_USER = 1, EXIT_USAGE = 2 };

#define CLI_MAX_DEFINES DRIVER_MAX_DEFINES
#define CLI_MAX_INPUTS 64
#define CLI_MAX_DISABLED DRIVER_MAX_DISABLED

/* Options shared by every command that compiles a model: the driver's (driver/driver.h). */
typedef DriverOptions CliCompile;

/* A tiny getopt_long-like cursor: handles `--name value`, `--name=value`, `-Dx=1`, `-D x=1`. */
typedef struct CliArgs {
  int argc;
  char **argv;
  int i;             /* next argument */
  const char *cmd;   /* command name, for messages */
  const char *value; /* value of the last matched option */
  bool failed;       /* a usage error was printed */
} CliArgs;

void cli_args_init(CliArgs *a, const char *cmd, int argc, char **argv);
bool cli_args_done(const CliArgs *a);
/* The option loop of a command: `--help`/`-h` prints help and returns -1; every other
 * argument goes to option(a, o), which returns EXIT_OK or a reported EXIT_USAGE. Returns
 * EXIT_OK when every argument was taken, EXIT_USAGE after a usage error. */
int cli_args_parse(CliArgs *a, const char *help, int (*option)(CliArgs *a, void *o), void *o);
/* matches a flag without value */
bool cli_flag(CliArgs *a, const char *long_name, const char *short_name);
/* matches an option with a value, stored in a->value */
bool cli_option(CliArgs *a, const char *long_name, const char *short_name);
/* matches a compile option (-D, -O, --dtype, --lib, ...) into c */
bool cli_compile_option(CliArgs *a, CliCompile *c);
int cli_usage_error(const CliArgs *a, const char *fmt, ...);
/* consumes the next argument as the one positional FILE; EXIT_USAGE (reported) for an
 * unknown option or a second FILE */
int cli_positional(CliArgs *a, const char **file);
bool cli_parse_u64(const char *s, uint64_t *out);
/* train and eval of a .onnx FILE need --loss (the imported graph has no loss); EXIT_USAGE
 * (reported) without it */
int cli_onnx_loss_check(const CliArgs *a, const CliCompile *c);
/* the initializers of the .onnx file cli_build_module imported last; NULL when it built a
 * .lathe model */
const RtTensorSet *cli_onnx_weights(void);

void cli_compile_init(CliCompile *c);
/* driver_build with the diagnostics, the --dump-after text and the pass timings printed.
 * Returns NULL on error (diagnostics already printed). An imported .onnx file's weights are
 * kept for cli_weights_init. */
Module *cli_build_module(const CliCompile *c);
/* Emits C for m; prints diagnostics on error. */
bool cli_emit(const Module *m, const CliCompile *c, char **c_text, char **h_text);
/* Compiles m to a temporary shared object and loads it. */
bool cli_load(const Module *m, const CliCompile *c, RtModel *out);
/* The whole of a command that runs a compiled model once: build c's module, load it, call
 * run(ctx, model, d), close it and print the diagnostics; the command's exit status. */
int cli_with_model(const CliCompile *c, bool (*run)(void *ctx, RtModel *model, Diag *d),
                   void *ctx);

/* Params and state of a loaded model, with weights from a checkpoint or from <model>_init. */
typedef struct CliWeights {
  void *params, *state; /* aligned, info->params_bytes / state_bytes */
} CliWeights;
/* ckpt NULL: an imported .onnx file's initializers if cli_build_module imported one */
bool cli_weights_init(CliWeights *w, const lathe_model_info *info, const char *ckpt,
                      uint64_t seed, Diag *d);
void cli_weights_fini(CliWeights *w);
bool cli_weights_save(const CliWeights *w, const lathe_model_info *info, const char *path,
                      bool with_state, Diag *d);

/* ---- calling entry points with named .npy inputs (call.c) ---- */
#define CLI_MAX_ARGS 256

typedef struct CliInputs {
  const char *names[CLI_MAX_INPUTS]; /* --input NAME=FILE pairs */
  const char *files[CLI_MAX_INPUTS];
  int n;
} CliInputs;

bool cli_input_option(CliArgs *a, CliInputs *in); /* matches -i/--input NAME=FILE.npy */
Shape cli_info_shape(const lathe_tensor_info *t);
/* reads the input of t from its --input file and checks its dtype and shape; a dynamic t
 * takes any batch in its bound, which sets *batch (or must equal it when already set) */
bool cli_load_input(const CliInputs *in, const lathe_tensor_info *t, Tensor *out, int64_t *batch,
                    Diag *d);
/* Loads inputs, allocates outputs (tensors[k] for argument k; CLI_MAX_ARGS entries), calls e.
 * On success the caller reads the outputs and releases them with cli_call_free. */
bool cli_call_entry(const lathe_entry_info *e, CliWeights *w, const CliInputs *in,
                    Tensor *tensors, double *ret, Diag *d);
void cli_call_free(const lathe_entry_info *e, Tensor *tensors);
/* cli_call_entry, with the call made by invoke(ctx, ...) (e.g. libffi) instead of e->call */
typedef bool (*CliInvoke)(void *ctx, const lathe_entry_info *e, void *const *args, double *ret,
                          Diag *d);
bool cli_call_entry_with(const lathe_entry_info *e, CliWeights *w, const CliInputs *in,
                         Tensor *tensors, double *ret, CliInvoke invoke, void *ctx, Diag *d);

/* `--samples DIR`: DIR/epoch<epoch>.png of e's image output on ds's first batch
 * (train_samples.c); ds must hold images (store image_h x image_w) */
bool cli_write_samples(const lathe_entry_info *e, CliWeights *w, const lathe_dataset *ds,
                       const char *dir, uint64_t epoch, Diag *d);
bool cli_samples_check(const lathe_entry_info *e, const lathe_dataset *ds, Diag *d); /* early */
/* train --batch (trainer.c): the batch as a define of the const that is dim 0 of the first
 * input (--lr is DriverOptions.lr, set by the driver before the passes) */
bool cli_batch_define(CliCompile *c, uint64_t batch, Diag *d);
/* --data/--val/--test options shared by train, eval and predict (cmd_train.c) */
bool cli_data_option(CliArgs *a, lathe_data_options *o);
extern const char cli_data_help[];
/* image folders are read at the size and channels of the model's first input [N, C, H, W] */
void cli_image_options(const lathe_model_info *info, lathe_data_options *o);
/* CKPT.vocab, when training wrote one beside the checkpoint: a text dataset's ids numbered as
 * in training (eval, predict, train --resume) */
bool cli_checkpoint_vocab(lathe_dataset *ds, const char *ckpt, const lathe_data_options *o,
                          Diag *d);
/* reports a lathe/train.h error message (malloc'd, "error: ..." text) in d and frees it */
void cli_api_error(Diag *d, char *err);
/* prints an evaluation: loss, metrics, and for classification the per-class table and the
 * confusion matrix (cmd_eval.c); split names the data ("test") */
void cli_print_evaluation(const lathe_evaluation *ev, const lathe_dataset *ds, const char *split);
/* CKPT.classes, when training wrote one beside the checkpoint: ds's string labels numbered
 * and named as in training (cmd_eval.c; eval and predict) */
bool cli_checkpoint_classes(lathe_dataset *ds, const char *ckpt, Diag *d);

/* data-parallel training under mpirun (cli/dist_mpi.c): *active when an MPI launcher started
 * this process, with dist the MPI transport; false (reported) when lathe has no MPI then */
bool cli_dist_start(lathe_dist *dist, bool *active, Diag *d);
/* MPI_Finalize, or on failure with several ranks MPI_Abort (the other ranks stop too) */
void cli_dist_stop(const lathe_dist *dist, bool failed);

int cmd_check(int argc, char **argv);
int cmd_compile(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_repl(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif
