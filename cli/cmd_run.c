/* cli/cmd_run.c — `lathe run FILE --input NAME=FILE.npy ...`: compile, JIT (or build into a
 * temporary shared object), run the forward entry point, write or summarize the outputs.
 * FILE may also be a shared object from `lathe build`: its entry is called through libffi.
 *
 * Inputs are matched to the entry's arguments by name and checked for dtype and shape before
 * the call; outputs are written atomically as DIR/<output>.npy.
 */
#include "cli.h"
#include "driver/load.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *help =
    "usage: lathe run [OPTIONS] FILE --input NAME=FILE.npy ... [--out DIR]\n"
    "\n"
    "Compile FILE (a .lathe model, JIT-compiled in-process or built with the system C\n"
    "compiler), or load FILE.so built by `lathe build`, run its forward entry point on the\n"
    "inputs, and write each output as DIR/<output>.npy (without --out, print a summary).\n"
    "\n"
    "options:\n"
    "  -i, --input NAME=FILE.npy  a model input (repeat for each)\n"
    "  -o, --out DIR              write outputs here (created if missing)\n"
    "  -w, --weights CKPT         params from a safetensors checkpoint\n"
    "  --seed N                   seed of <model>_init when there is no --weights (default 0)\n"
    "  --reference                run the IR reference evaluator instead of compiled code\n"
    "  --backend jit|cc           LLVM/Clang JIT in-process, or cc + dlopen (default: jit\n"
    "                             when this lathe has LLVM, else cc)\n"
    "  -D NAME=VALUE              override a `const` of the model\n"
    "  --max-batch M              a .onnx FILE's symbolic batch: dynamic, 1 to M (default 64)\n"
    "  --dtype f32|f64            compile every f32 as f64\n"
    "  -O0 .. -O3                 optimization level (default -O2)\n"
    "  -h, --help                 this help\n";

typedef struct RunOptions {
  CliCompile c;
  CliInputs in;
  const char *out_dir, *weights;
  uint64_t seed;
  bool reference; /* --reference: evaluate the IR instead of running generated code */
  DriverBackend backend;
} RunOptions;

static int parse_args(RunOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "run", argc, argv);
  while (!cli_args_done(&a)) {
    if (cli_flag(&a, "--help", "-h")) {
      fputs(help, stdout);
      return -1;
    }
    if (cli_input_option(&a, &o->in)) {
      continue;
    } else if (cli_option(&a, "--out", "-o")) {
      o->out_dir = a.value;
    } else if (cli_option(&a, "--weights", "-w")) {
      o->weights = a.value;
    } else if (cli_option(&a, "--backend", NULL)) {
      if (!driver_backend_from_name(a.value, &o->backend))
        return cli_usage_error(&a, "--backend expects jit, cc or auto, got '%s'", a.value);
    } else if (cli_flag(&a, "--reference", NULL)) {
      o->reference = true;
    } else if (cli_option(&a, "--seed", NULL)) {
      if (!cli_parse_u64(a.value, &o->seed))
        return cli_usage_error(&a, "--seed expects a non-negative integer, got '%s'", a.value);
    } else if (!cli_compile_option(&a, &o->c)) {
      if (cli_positional(&a, &o->c.file) != EXIT_OK) return EXIT_USAGE;
    }
  }
  if (a.failed) return EXIT_USAGE;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  return EXIT_OK;
}

static void summarize(const char *name, const Tensor *t) {
  char s[200];
  int64_t n = shape_numel(&t->shape);
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = tensor_get(t, i);
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
    sum += v;
  }
  printf("%s: %s%s  min %.6g  max %.6g  mean %.6g\n  [", name, dtype_name(t->dtype),
         shape_str(&t->shape, s, sizeof s), lo, hi, n ? sum / (double)n : 0.0);
  for (int64_t i = 0; i < n && i < 8; i++)
    printf("%s%.6g", i ? ", " : "", tensor_get(t, i));
  printf("%s]\n", n > 8 ? ", ..." : "");
}

static bool write_output(const RunOptions *o, const char *name, const Tensor *t, Diag *d) {
  if (!o->out_dir) {
    summarize(name, t);
    return true;
  }
  if (mkdir(o->out_dir, 0777) != 0 && errno != EEXIST) {
    diag_error(d, (SrcLoc){0}, "cannot create directory '%s': %s", o->out_dir, strerror(errno));
    return false;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s.npy", o->out_dir, name);
  if (!rt_npy_write(path, t, d)) return false;
  fprintf(stderr, "wrote %s\n", path);
  return true;
}

static bool invoke_loaded(void *ctx, const lathe_entry_info *e, void *const *args, double *ret,
                          Diag *d) {
  return driver_loaded_call(ctx, e, args, ret, d);
}

/* Calls the forward entry and writes or prints each output. */
static bool run_forward(const RunOptions *o, DriverLoaded *l, const lathe_entry_info *e,
                        CliWeights *w, Diag *d) {
  Tensor tensors[CLI_MAX_ARGS];
  double ret = 0;
  bool ok = cli_call_entry_with(e, w, &o->in, tensors, &ret, invoke_loaded, l, d);
  for (int k = 0; ok && k < e->n_args; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT)
      ok = write_output(o, e->args[k].tensor->name, &tensors[k], d);
  cli_call_free(e, tensors);
  return ok;
}

/* Params (required) and states (optional: RNG counters, running statistics) for the
 * reference evaluator, as the compiled run loads them: from the checkpoint, else an imported
 * .onnx file's initializers, else the host initializers (the same algorithm as the generated
 * <model>_init). */
static bool reference_tensors(const RunOptions *o, const TensorDecl *decls, int n, bool required,
                              Tensor *out, Diag *d) {
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = !o->weights || rt_safetensors_read(o->weights, &set, d);
  const RtTensorSet *src = o->weights ? &set : cli_onnx_weights();
  const char *from = o->weights ? o->weights : "the ONNX model";
  for (int i = 0; ok && i < n; i++) {
    const TensorDecl *p = &decls[i];
    const Tensor *t = src ? rt_set_find(src, p->name) : NULL;
    if (!t && (!src || !required)) {
      ir_init_tensor(p, o->seed, &out[i]);
      continue;
    }
    char a[200], b[200];
    /* a float tensor of the other float type converts, as the compiled run loads it
     * (driver/weights.c): an f32 checkpoint serves --dtype f64 and the reverse */
    bool convert =
        t && t->dtype != p->dtype && dtype_is_float(t->dtype) && dtype_is_float(p->dtype);
    if (!t) {
      diag_error(d, (SrcLoc){0}, "%s: no tensor '%s'", from, p->name);
      ok = false;
    } else if ((t->dtype != p->dtype && !convert) || !shape_equal(&t->shape, &p->shape)) {
      diag_error(d, (SrcLoc){0}, "%s: tensor '%s' is %s%s, but the model expects %s%s", from,
                 p->name, dtype_name(t->dtype), shape_str(&t->shape, a, sizeof a),
                 dtype_name(p->dtype), shape_str(&p->shape, b, sizeof b));
      ok = false;
    } else {
      ok = tensor_alloc(&out[i], p->dtype, &t->shape);
      int64_t numel = shape_numel(&t->shape);
      if (ok && !convert) memcpy(out[i].data, t->data, (size_t)numel * dtype_size(t->dtype));
      for (int64_t k = 0; ok && convert && k < numel; k++)
        tensor_set(&out[i], k, tensor_get(t, k));
    }
  }
  rt_set_fini(&set);
  return ok;
}

/* `lathe run --reference`: the forward graph through ir_eval. */
static bool run_reference(const RunOptions *o, Module *m, Diag *d) {
  Graph *g = NULL;
  for (int i = 0; i < m->n_entries; i++)
    if (m->entries[i]->kind == ENTRY_FORWARD) g = m->entries[i];
  if (!g) {
    diag_error(d, (SrcLoc){0}, "%s: the model has no forward entry point (no `output`)", o->c.file);
    return false;
  }
  Tensor *inputs = calloc((size_t)m->n_inputs + 1, sizeof *inputs);
  Tensor *params = calloc((size_t)m->n_params + 1, sizeof *params);
  Tensor *states = calloc((size_t)m->n_states + 1, sizeof *states);
  Tensor *outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  bool ok = inputs && params && states && outs &&
            reference_tensors(o, m->params, m->n_params, true, params, d) &&
            reference_tensors(o, m->states, m->n_states, false, states, d);
  int64_t batch = 0; /* a run-time batch: the graph is evaluated fixed at the inputs' n */
  for (int i = 0; ok && i < o->in.n; i++) {
    int k = 0;
    while (k < m->n_inputs && strcmp(m->inputs[k].name, o->in.names[i]) != 0)
      k++;
    if (k == m->n_inputs) {
      diag_error(d, (SrcLoc){0}, "the model has no input '%s'", o->in.names[i]);
      ok = false;
      break;
    }
    lathe_tensor_info ti = {m->inputs[k].name,
                            (int)m->inputs[k].dtype,
                            m->inputs[k].shape.rank,
                            m->inputs[k].shape.dim,
                            0,
                            0,
                            m->inputs[k].shape.dyn};
    ok = cli_load_input(&o->in, &ti, &inputs[k], &batch, d);
  }
  Graph *fixed = ok && m->dyn_max > 0 ? graph_specialize(g, batch, d) : NULL;
  if (m->dyn_max > 0) ok = ok && fixed;
  ok = ok && ir_eval(fixed ? fixed : g, inputs, params, states, outs, NULL, d);
  if (fixed) graph_free(fixed);
  for (int i = 0; ok && i < g->n_outputs; i++)
    ok = write_output(o, g->outputs[i].name, &outs[i], d);
  for (int i = 0; outs && i < g->n_outputs; i++)
    tensor_free(&outs[i]);
  for (int i = 0; inputs && i < m->n_inputs; i++)
    tensor_free(&inputs[i]);
  for (int i = 0; params && i < m->n_params; i++)
    tensor_free(&params[i]);
  for (int i = 0; states && i < m->n_states; i++)
    tensor_free(&states[i]);
  free(inputs), free(params), free(states), free(outs);
  return ok;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The model of o->c.file: a .so opened by path, or a .lathe compiled with o->backend. */
static bool load_model(const RunOptions *o, DriverLoaded *l) {
  Diag d;
  diag_init(&d);
  bool ok;
  if (ends_with(o->c.file, ".so")) {
    ok = driver_loaded_open_so(l, o->c.file, &d);
  } else {
    Module *m = cli_build_module(&o->c);
    char *c_text = NULL, *h_text = NULL;
    ok = m && cli_emit(m, &o->c, &c_text, &h_text);
    const char *prefix = m ? driver_prefix(m, &o->c) : NULL;
    ok = ok && driver_loaded_open_source(l, o->backend, prefix, c_text, h_text, &d);
    if (ok && l->fell_back)
      fprintf(stderr, "lathe: note: this lathe was built without LLVM (LATHE_JIT=OFF); "
                      "using cc + dlopen\n");
    free(c_text);
    free(h_text);
    if (m) module_free(m);
  }
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok;
}

/* `lathe run --reference`: compile, then ir_eval the forward graph. */
static int run_reference_cmd(const RunOptions *o) {
  Module *m = cli_build_module(&o->c);
  if (!m) return EXIT_USER;
  Diag d;
  diag_init(&d);
  bool ok = run_reference(o, m, &d);
  diag_flush(&d, stderr);
  diag_fini(&d);
  module_free(m);
  return ok ? EXIT_OK : EXIT_USER;
}

int cmd_run(int argc, char **argv) {
  RunOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  o.c.want_train = false;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) return rc < 0 ? EXIT_OK : rc;
  if (o.reference && ends_with(o.c.file, ".so")) {
    fprintf(stderr, "lathe run: --reference needs the .lathe model, not a shared object\n");
    return EXIT_USAGE;
  }
  if (o.reference) return run_reference_cmd(&o);
  DriverLoaded model;
  if (!load_model(&o, &model)) return EXIT_USER;
  Diag d;
  diag_init(&d);
  const lathe_entry_info *e = driver_loaded_entry(&model, "forward");
  CliWeights w = {0};
  bool ok = true;
  if (!e) {
    diag_error(&d, (SrcLoc){0}, "%s: the model has no forward entry point (no `output`)", o.c.file);
    ok = false;
  }
  ok = ok && cli_weights_init(&w, model.info, o.weights, o.seed, &d);
  ok = ok && run_forward(&o, &model, e, &w, &d);
  cli_weights_fini(&w);
  driver_loaded_close(&model);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
