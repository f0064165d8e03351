/* cli/cmd_import.c — `lathe import MODEL.onnx [-o MODEL.lathe] [--weights-out CKPT]`: an ONNX
 * model to readable .lathe source plus a safetensors file of its initializers. (compile,
 * build, run and train take a .onnx FILE directly through the driver: driver/driver.c.)
 *
 * Both outputs are written atomically (temp file + rename): no partial outputs.
 */
#include "cli.h"
#include "import/import.h"

#include <stdlib.h>
#include <string.h>

static const char *help =
    "usage: lathe import [OPTIONS] MODEL.onnx\n"
    "\n"
    "Convert an ONNX model (opsets 7 to 18) to a readable .lathe model (one binding per ONNX\n"
    "node) and a safetensors file of its initializers (the model's params). compile, build,\n"
    "run and train also accept MODEL.onnx directly.\n"
    "\n"
    "options:\n"
    "  -o, --out FILE.lathe        the model (default: MODEL.lathe next to MODEL.onnx)\n"
    "  --weights-out CKPT          the weights (default: the model's name + .safetensors)\n"
    "  -D NAME=VALUE               fix the dynamic dimension NAME (ONNX dim_param); a batch\n"
    "                              NAME=dynamic(max=M) stays dynamic with the bound M\n"
    "  --max-batch M               a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --loss cross_entropy|mse    add a label/target input, a loss and a train block\n"
    "  --optimizer EXPR            the train block's optimizer (default adam)\n"
    "  --name NAME                 the model's name (default: from the file name)\n"
    "  -h, --help                  this help\n";

static bool import_file(const CliCompile *c, const char *name, ImportResult *r, Diag *d) {
  char *data = NULL;
  size_t len = 0;
  if (!rt_read_file(c->file, &data, &len, d)) return false;
  ImportOptions o;
  import_options_init(&o);
  o.defines = c->defines;
  o.n_defines = c->n_defines;
  o.loss = c->onnx_loss;
  o.optimizer = c->onnx_optimizer;
  o.model_name = name;
  if (c->onnx_max_batch) o.max_batch = c->onnx_max_batch;
  bool ok = onnx_import(c->file, (const uint8_t *)data, len, &o, r, d);
  free(data);
  return ok;
}

typedef struct ImportCmd {
  CliCompile c;
  const char *out, *weights_out, *name;
} ImportCmd;

static int parse_args(ImportCmd *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "import", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_option(&a, "--out", "-o"))
      o->out = a.value;
    else if (cli_option(&a, "--weights-out", NULL))
      o->weights_out = a.value;
    else if (cli_option(&a, "--name", NULL))
      o->name = a.value;
    else if (!cli_compile_option(&a, &o->c) && cli_positional(&a, &o->c.file) != EXIT_OK)
      return EXIT_USAGE;
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a MODEL.onnx FILE");
  return EXIT_OK;
}

/* "dir/model.onnx" → "dir/model<ext>" */
static char *replace_ext(const char *path, const char *ext) {
  size_t n = strlen(path);
  const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
  if (dot && (!slash || dot > slash)) n = (size_t)(dot - path);
  char *s = malloc(n + strlen(ext) + 1);
  if (s) memcpy(s, path, n), strcpy(s + n, ext);
  return s;
}

int cmd_import(int argc, char **argv) {
  ImportCmd o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  char *out = o.out ? strdup(o.out) : replace_ext(o.c.file, ".lathe");
  char *wout = o.weights_out ? strdup(o.weights_out) : replace_ext(out ? out : "", ".safetensors");
  Diag d;
  diag_init(&d);
  ImportResult r;
  memset(&r, 0, sizeof r);
  bool ok = out && wout && import_file(&o.c, o.name, &r, &d);
  ok = ok && rt_safetensors_write(wout, &r.weights, &d);
  ok = ok && rt_write_file_atomic(out, r.text, strlen(r.text), &d);
  if (ok)
    fprintf(stderr, "wrote %s and %s (%d params, %d inputs, %d outputs)\n", out, wout,
            r.weights.n, r.n_inputs, r.n_outputs);
  if (ok) {
    fprintf(stderr, "run it with: lathe run %s --weights %s", out, wout);
    for (int i = 0; i < r.n_inputs; i++)
      fprintf(stderr, " --input %s=FILE.npy", r.input_names[i]);
    fprintf(stderr, "\n");
  }
  import_result_fini(&r);
  diag_flush(&d, stderr);
  diag_fini(&d);
  free(out);
  free(wout);
  return ok ? EXIT_OK : EXIT_USER;
}
