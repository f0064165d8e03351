/* cli/call.c — calling a loaded entry point with tensors named on the command line.
 *
 * `--input NAME=FILE.npy` options are matched to the entry's INPUT arguments by name and
 * checked for dtype and shape before the call; OUTPUT arguments are allocated here.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

bool cli_input_option(CliArgs *a, CliInputs *in) {
  if (!cli_option(a, "--input", "-i")) return false;
  char *eq = strchr(a->value, '=');
  if (!eq || eq == a->value || !eq[1]) {
    cli_usage_error(a, "expected --input NAME=FILE.npy, got '%s'", a->value);
    a->failed = true;
  } else if (in->n == CLI_MAX_INPUTS) {
    cli_usage_error(a, "too many inputs (at most %d)", CLI_MAX_INPUTS);
    a->failed = true;
  } else {
    *eq = '\0';
    in->names[in->n] = a->value;
    in->files[in->n++] = eq + 1;
  }
  return true;
}

Shape cli_info_shape(const lathe_tensor_info *t) {
  Shape s = {0};
  s.rank = t->rank;
  for (int k = 0; k < t->rank; k++) s.dim[k] = t->shape[k];
  return s;
}

/* The run-time batch of a dynamic input t read from file: its rows over t->dyn, which must
 * lie in [1, bound] and agree with *batch when an earlier input set it (docs/dynamic-batch.md) */
static bool input_batch(const lathe_tensor_info *t, const char *file, const Tensor *x,
                        int64_t *batch, Diag *d) {
  int64_t rows = x->shape.rank >= 1 ? x->shape.dim[0] : 0, bound = t->shape[0] / t->dyn;
  if (x->shape.rank != t->rank || rows % t->dyn || rows < t->dyn || rows > t->shape[0]) {
    diag_error(d, (SrcLoc){0},
               "input '%s' (%s) has %lld rows; the model takes a multiple of %lld, at most "
               "%lld (its run-time batch is 1 to %lld)",
               t->name, file, (long long)rows, (long long)t->dyn, (long long)t->shape[0],
               (long long)bound);
    return false;
  }
  if (*batch && rows / t->dyn != *batch) {
    diag_error(d, (SrcLoc){0}, "input '%s' (%s) is a batch of %lld, the inputs before it of %lld",
               t->name, file, (long long)(rows / t->dyn), (long long)*batch);
    return false;
  }
  *batch = rows / t->dyn;
  return true;
}

bool cli_load_input(const CliInputs *in, const lathe_tensor_info *t, Tensor *out, int64_t *batch,
                    Diag *d) {
  for (int i = 0; i < in->n; i++) {
    if (strcmp(in->names[i], t->name) != 0) continue;
    if (!rt_npy_read(in->files[i], out, d)) return false;
    if (t->dyn && !input_batch(t, in->files[i], out, batch, d)) return false;
    Shape want = cli_info_shape(t);
    if (t->dyn) want.dim[0] = t->dyn * *batch;
    if (out->dtype != (DType)t->dtype || !shape_equal(&out->shape, &want)) {
      char a[200], b[200];
      diag_error(d, (SrcLoc){0}, "input '%s' (%s) is %s%s, but the model expects %s%s", t->name,
                 in->files[i], dtype_name(out->dtype), shape_str(&out->shape, a, sizeof a),
                 dtype_name((DType)t->dtype), shape_str(&want, b, sizeof b));
      return false;
    }
    return true;
  }
  diag_error(d, (SrcLoc){0}, "missing input '%s': pass --input %s=FILE.npy", t->name, t->name);
  return false;
}

static bool check_input_names(const CliInputs *in, const lathe_entry_info *e, Diag *d) {
  for (int i = 0; i < in->n; i++) {
    bool found = false;
    for (int k = 0; k < e->n_args; k++)
      found |= e->args[k].role == LATHE_ARG_INPUT &&
               strcmp(e->args[k].tensor->name, in->names[i]) == 0;
    if (!found) {
      diag_error(d, (SrcLoc){0}, "the entry point '%s' has no input '%s'; it takes:", e->name,
                 in->names[i]);
      for (int k = 0; k < e->n_args; k++)
        if (e->args[k].role == LATHE_ARG_INPUT)
          diag_note(d, (SrcLoc){0}, "input '%s'", e->args[k].tensor->name);
    }
  }
  return d->n_errors == 0;
}

bool cli_call_entry(const lathe_entry_info *e, CliWeights *w, const CliInputs *in,
                    Tensor *tensors, double *ret, Diag *d) {
  return cli_call_entry_with(e, w, in, tensors, ret, NULL, NULL, d);
}

bool cli_call_entry_with(const lathe_entry_info *e, CliWeights *w, const CliInputs *in,
                         Tensor *tensors, double *ret, CliInvoke invoke, void *ctx, Diag *d) {
  void *args[CLI_MAX_ARGS] = {0};
  memset(tensors, 0, sizeof(Tensor) * CLI_MAX_ARGS);
  if (e->n_args > CLI_MAX_ARGS) {
    diag_error(d, (SrcLoc){0}, "entry '%s' has %d arguments; lathe calls at most %d", e->name,
               e->n_args, CLI_MAX_ARGS);
    return false;
  }
  void *ws = rt_aligned_alloc(e->workspace_bytes);
  bool ok = ws && check_input_names(in, e, d);
  int64_t batch = 0; /* a dynamic entry's n, from its inputs (which come before its outputs) */
  for (int k = 0; ok && k < e->n_args; k++) {
    const lathe_arg_info *arg = &e->args[k];
    Shape s = arg->tensor ? cli_info_shape(arg->tensor) : (Shape){0};
    if (arg->tensor && arg->tensor->dyn) s.dim[0] = arg->tensor->dyn * batch;
    switch (arg->role) {
    case LATHE_ARG_PARAMS: args[k] = w->params; break;
    case LATHE_ARG_STATE: args[k] = w->state; break;
    case LATHE_ARG_WORKSPACE: args[k] = ws; break;
    case LATHE_ARG_BATCH: args[k] = &batch; break;
    case LATHE_ARG_HOOKS: args[k] = NULL; break; /* one replica */
    case LATHE_ARG_INPUT: ok = cli_load_input(in, arg->tensor, &tensors[k], &batch, d); break;
    case LATHE_ARG_OUTPUT: ok = tensor_alloc(&tensors[k], (DType)arg->tensor->dtype, &s); break;
    default:
      diag_error(d, (SrcLoc){0}, "entry '%s': unknown argument role %d", e->name, arg->role);
      ok = false;
    }
    if (arg->tensor) args[k] = tensors[k].data;
  }
  if (ok && invoke) ok = invoke(ctx, e, args, ret, d);
  else if (ok) e->call(args, ret);
  free(ws);
  if (!ok) cli_call_free(e, tensors);
  return ok;
}

void cli_call_free(const lathe_entry_info *e, Tensor *tensors) {
  for (int k = 0; k < e->n_args && k < CLI_MAX_ARGS; k++) tensor_free(&tensors[k]);
}
