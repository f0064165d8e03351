/* cli/cmd_prune.c — `lathe prune FILE --weights W --sparsity S -o OUT`: one-shot pruning of a
 * trained model's checkpoint (issue #20, docs/compression.md).
 *
 * The model is compiled only to learn its params and which op reads each one (a dense
 * layer's weight [I, O] has its output channels in columns, a conv2d's [O, C, kh, kw] in
 * rows); the selected weights are zeroed by the masks of ir/prune.c and the whole checkpoint
 * (every other tensor unchanged) is written atomically to OUT, with a per-tensor report.
 */
#include "cli.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "ir/prune.h"

static const char *help =
    "usage: lathe prune [OPTIONS] FILE --weights CKPT --sparsity S -o OUT\n"
    "\n"
    "Zero a fraction S of FILE's weights in the checkpoint CKPT (one-shot pruning of a\n"
    "trained model, e.g. before fine-tuning or `lathe compile --bake`) and write the whole\n"
    "checkpoint to OUT. Prints each pruned tensor's shape and sparsity.\n"
    "\n"
    "options:\n"
    "  -w, --weights CKPT    the trained params (safetensors)\n"
    "  -s, --sparsity S      the fraction of each selected tensor to zero, 0 <= S < 1\n"
    "                        (channels: of its output channels)\n"
    "  -o, --out OUT         the pruned checkpoint (written atomically)\n"
    "  --kind K              magnitude (default): the smallest |w|, unstructured;\n"
    "                        channels: whole output channels of smallest norm;\n"
    "                        N:M (e.g. 2:4): keep the N largest of every M weights\n"
    "                        along the reduction axis (the sparsity is 1 - N/M)\n"
    "  --params GLOB,...     which params (default: every param of rank >= 2, i.e. the\n"
    "                        weights of dense and conv layers, not biases or norms)\n"
    "  --global              magnitude: rank all selected params together, not per tensor\n"
    "  --norm l1|l2          channels: the norm that ranks channels (default l1)\n"
    "  -D NAME=VALUE         override a `const` of the model\n"
    "  --max-batch M         a .onnx FILE's symbolic batch bound (default 64)\n"
    "  -h, --help            this help\n";

enum { KIND_MAGNITUDE, KIND_CHANNELS, KIND_N_OF_M };
#define MAX_GLOBS 64

typedef struct PruneOptions {
  CliCompile c;
  const char *weights, *out, *globs[MAX_GLOBS];
  char *glob_text; /* the --params value the globs point into */
  int n_globs, kind, norm, n, m;
  double sparsity;
  bool has_sparsity, global;
} PruneOptions;

static int parse_kind(CliArgs *a, PruneOptions *o) {
  const char *v = a->value;
  char tail;
  if (strcmp(v, "magnitude") == 0) {
    o->kind = KIND_MAGNITUDE;
  } else if (strcmp(v, "channels") == 0) {
    o->kind = KIND_CHANNELS;
  } else if (sscanf(v, "%d:%d%c", &o->n, &o->m, &tail) == 2 && o->n >= 1 && o->n < o->m &&
             o->m <= 64) {
    o->kind = KIND_N_OF_M;
  } else {
    return cli_usage_error(a,
                           "--kind expects magnitude, channels or N:M with 1 <= N < M <= 64 "
                           "(e.g. 2:4), got '%s'",
                           v);
  }
  return EXIT_OK;
}

static int parse_globs(CliArgs *a, PruneOptions *o) {
  free(o->glob_text);
  char *copy = o->glob_text = strdup(a->value);
  o->n_globs = 0;
  for (char *s = copy, *save = NULL, *g; copy && (g = strtok_r(s, ",", &save)); s = NULL) {
    if (o->n_globs == MAX_GLOBS) return cli_usage_error(a, "--params: at most %d globs", MAX_GLOBS);
    o->globs[o->n_globs++] = g;
  }
  return o->n_globs ? EXIT_OK : cli_usage_error(a, "--params expects GLOB[,GLOB...]");
}

static int parse_option(CliArgs *a, void *opts) {
  PruneOptions *o = opts;
  if (cli_option(a, "--weights", "-w")) {
    o->weights = a->value;
  } else if (cli_option(a, "--out", "-o")) {
    o->out = a->value;
  } else if (cli_option(a, "--sparsity", "-s")) {
    char *end;
    o->sparsity = strtod(a->value, &end);
    o->has_sparsity = true;
    if (*end || end == a->value || !(o->sparsity >= 0 && o->sparsity < 1))
      return cli_usage_error(a, "--sparsity expects a number in [0, 1), got '%s'", a->value);
  } else if (cli_option(a, "--kind", NULL)) {
    return parse_kind(a, o);
  } else if (cli_option(a, "--params", NULL)) {
    return parse_globs(a, o);
  } else if (cli_flag(a, "--global", NULL)) {
    o->global = true;
  } else if (cli_option(a, "--norm", NULL)) {
    if (strcmp(a->value, "l1") && strcmp(a->value, "l2"))
      return cli_usage_error(a, "--norm expects l1 or l2, got '%s'", a->value);
    o->norm = a->value[1] - '0';
  } else if (!cli_compile_option(a, &o->c)) {
    return cli_positional(a, &o->c.file);
  }
  return EXIT_OK;
}

static int parse_args(PruneOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "prune", argc, argv);
  int rc = cli_args_parse(&a, help, parse_option, o);
  if (rc != EXIT_OK) return rc;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (!o->weights) return cli_usage_error(&a, "expected --weights CKPT");
  if (!o->out) return cli_usage_error(&a, "expected --out OUT");
  if (o->kind == KIND_N_OF_M && o->has_sparsity)
    return cli_usage_error(&a, "--kind N:M fixes the sparsity at 1 - N/M; drop --sparsity");
  if (o->kind != KIND_N_OF_M && !o->has_sparsity)
    return cli_usage_error(&a, "expected --sparsity S");
  if (o->global && o->kind != KIND_MAGNITUDE)
    return cli_usage_error(&a, "--global ranks magnitudes; it does not apply to --kind %s",
                           o->kind == KIND_CHANNELS ? "channels" : "N:M");
  return EXIT_OK;
}

/* ---- which params, and where their output channels are ---------------------------------- */

typedef struct Target {
  const TensorDecl *decl;
  Tensor *t; /* in the checkpoint */
  int axis;  /* output channels: 1 = columns (dense [I, O]), 0 = rows (conv) */
  int64_t rows, cols;
  uint8_t *mask;
} Target;

static bool selected(const PruneOptions *o, const TensorDecl *p) {
  if (!o->n_globs) return p->shape.rank >= 2 && dtype_is_float(p->dtype);
  for (int g = 0; g < o->n_globs; g++)
    if (fnmatch(o->globs[g], p->name, 0) == 0) return true;
  return false;
}

static bool check_globs(const PruneOptions *o, const Module *m, Diag *d) {
  bool ok = true;
  for (int g = 0; g < o->n_globs; g++) {
    bool hit = false;
    for (int p = 0; p < m->n_params && !hit; p++)
      hit = fnmatch(o->globs[g], m->params[p].name, 0) == 0;
    if (!hit) {
      diag_error(d, (SrcLoc){0}, "--params: '%s' matches no param of %s", o->globs[g], o->c.file);
      ok = false;
    }
  }
  return ok;
}

static Tensor *find_tensor(RtTensorSet *s, const char *name) {
  for (int k = 0; k < s->n; k++)
    if (strcmp(s->items[k].name, name) == 0) return &s->items[k].t;
  return NULL;
}

static bool bind_target(const PruneOptions *o, const Module *m, int p, RtTensorSet *ckpt, Target *t,
                        Diag *d) {
  const TensorDecl *decl = &m->params[p];
  char want[160], got[160];
  *t = (Target){.decl = decl, .t = find_tensor(ckpt, decl->name)};
  if (!t->t) {
    diag_error(d, (SrcLoc){0}, "%s has no tensor '%s' (a param of %s)", o->weights, decl->name,
               o->c.file);
    return false;
  }
  if (!shape_equal(&t->t->shape, &decl->shape) || !dtype_is_float(t->t->dtype)) {
    diag_error(d, (SrcLoc){0}, "'%s' is %s%s in %s, the model wants %s%s", decl->name,
               dtype_name(t->t->dtype), shape_str(&t->t->shape, got, sizeof got), o->weights,
               dtype_name(decl->dtype), shape_str(&decl->shape, want, sizeof want));
    return false;
  }
  int64_t numel = shape_numel(&decl->shape);
  t->axis = o->kind == KIND_MAGNITUDE ? 1 : prune_output_axis(m->model, p);
  if (t->axis < 0) {
    diag_error(d, decl->loc,
               "--kind %s: '%s' is not the weight of a dense layer or a conv2d, "
               "so it has no output channels to prune; leave it out with --params",
               o->kind == KIND_CHANNELS ? "channels" : "N:M", decl->name);
    return false;
  }
  t->rows = t->axis == 1 ? numel / decl->shape.dim[decl->shape.rank - 1] : decl->shape.dim[0];
  t->cols = numel / t->rows;
  int64_t length = t->axis == 1 ? t->rows : t->cols;
  if (o->kind == KIND_N_OF_M && length % o->m) {
    diag_error(d, decl->loc,
               "--kind %d:%d: '%s' reduces over %lld weights per output "
               "channel, not a multiple of %d",
               o->n, o->m, decl->name, (long long)length, o->m);
    return false;
  }
  t->mask = malloc((size_t)numel);
  if (!t->mask) diag_error(d, (SrcLoc){0}, "out of memory");
  return t->mask != NULL;
}

/* ---- the masks -------------------------------------------------------------------------- */

static double *values_of(const Tensor *t) {
  int64_t n = shape_numel(&t->shape);
  double *v = malloc(sizeof *v * (size_t)(n > 0 ? n : 1));
  for (int64_t i = 0; v && i < n; i++)
    v[i] = tensor_get(t, i);
  return v;
}

static bool make_masks(const PruneOptions *o, Target *ts, int n, Diag *d) {
  double **v = calloc((size_t)n, sizeof *v);
  const double **cv = calloc((size_t)n, sizeof *cv);
  int64_t *len = calloc((size_t)n, sizeof *len);
  uint8_t **masks = calloc((size_t)n, sizeof *masks);
  bool ok = v && cv && len && masks;
  for (int k = 0; ok && k < n; k++) {
    ok = (v[k] = values_of(ts[k].t)) != NULL;
    cv[k] = v[k];
    len[k] = ts[k].rows * ts[k].cols;
    masks[k] = ts[k].mask;
  }
  if (ok && o->kind == KIND_MAGNITUDE && o->global)
    ok = prune_magnitude(cv, len, n, o->sparsity, masks);
  for (int k = 0; ok && k < n && !(o->kind == KIND_MAGNITUDE && o->global); k++) {
    if (o->kind == KIND_MAGNITUDE)
      ok = prune_magnitude(&cv[k], &len[k], 1, o->sparsity, &masks[k]);
    else if (o->kind == KIND_CHANNELS)
      ok = prune_channels(v[k], ts[k].rows, ts[k].cols, ts[k].axis, o->norm, o->sparsity, masks[k]);
    else
      prune_n_of_m(v[k], ts[k].rows, ts[k].cols, ts[k].axis, o->n, o->m, masks[k]);
  }
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory");
  for (int k = 0; k < n && v; k++)
    free(v[k]);
  free(v), free(cv), free(len), free(masks);
  return ok;
}

static void apply_and_report(Target *ts, int n) {
  int64_t all = 0, all_zero = 0;
  printf("%-32s %-18s %10s %10s\n", "param", "shape", "before", "after");
  for (int k = 0; k < n; k++) {
    int64_t numel = ts[k].rows * ts[k].cols, before = 0, after = 0;
    for (int64_t i = 0; i < numel; i++) {
      before += tensor_get(ts[k].t, i) == 0.0;
      if (!ts[k].mask[i]) tensor_set(ts[k].t, i, 0.0);
      after += tensor_get(ts[k].t, i) == 0.0;
    }
    char shape[160];
    shape_str(&ts[k].t->shape, shape, sizeof shape);
    printf("%-32s %-18s %9.2f%% %9.2f%%\n", ts[k].decl->name, shape,
           100.0 * (double)before / (double)numel, 100.0 * (double)after / (double)numel);
    all += numel, all_zero += after;
  }
  printf("%d tensors, %lld weights, %.2f%% zero\n", n, (long long)all,
         all ? 100.0 * (double)all_zero / (double)all : 0.0);
}

static bool prune_checkpoint(const PruneOptions *o, const Module *m, Diag *d) {
  RtTensorSet ckpt;
  rt_set_init(&ckpt);
  Target *ts = calloc((size_t)(m->n_params > 0 ? m->n_params : 1), sizeof *ts);
  int n = 0;
  bool ok = ts && check_globs(o, m, d) && rt_safetensors_read(o->weights, &ckpt, d);
  for (int p = 0; ok && p < m->n_params; p++)
    if (selected(o, &m->params[p])) ok = bind_target(o, m, p, &ckpt, &ts[n++], d);
  if (ok && n == 0) {
    diag_error(d, (SrcLoc){0}, "%s has no param of rank >= 2 to prune; name some with --params",
               o->c.file);
    ok = false;
  }
  if (ok && (ok = make_masks(o, ts, n, d))) apply_and_report(ts, n);
  if (ok && (ok = rt_safetensors_write(o->out, &ckpt, d))) fprintf(stderr, "wrote %s\n", o->out);
  for (int k = 0; ts && k < n; k++)
    free(ts[k].mask);
  free(ts);
  rt_set_fini(&ckpt);
  return ok;
}

int cmd_prune(int argc, char **argv) {
  PruneOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c); /* the train entries too: a model may have no `output` */
  o.norm = 1;
  int rc = parse_args(&o, argc, argv);
  Module *m = rc == EXIT_OK ? cli_build_module(&o.c) : NULL;
  if (!m) {
    free(o.glob_text);
    return rc != EXIT_OK ? (rc < 0 ? EXIT_OK : rc) : EXIT_USER;
  }
  Diag d;
  diag_init(&d);
  bool ok = prune_checkpoint(&o, m, &d);
  module_free(m);
  free(o.glob_text);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
