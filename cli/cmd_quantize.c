/* cli/cmd_quantize.c — `lathe quantize FILE --weights W --calibrate DATA -o OUT`: calibrated
 * post-training quantization (issue 19, docs/int8.md "The passes and commands").
 *
 * 1. the float model is elaborated and planned (quantize_plan.c: which layers become int8,
 *    which tensors to observe);
 * 2. its forward pass is compiled with every observed tensor as an extra output ("probes")
 *    and run over the calibration data: once for the ranges, once more for the histograms of
 *    the percentile and entropy observers (runtime/quant_calib.c);
 * 3. scales and zero points are chosen (TFLite's rules), and the int8 model is written as
 *    .lathe text with its weights (quantize_write.c);
 * 4. that model is compiled (with its layers' results as probes) and run beside the float
 *    one over the calibration data: the report's per-layer error and output agreement;
 * 5. only then OUT.lathe and OUT.safetensors are written, each atomically. Any error before
 *    leaves no output.
 * A model with a `quantize` statement (quantization-aware training) skips step 2: the ranges
 * are the checkpoint's range states (qplan_qat_ranges), and the reference of step 4 (run only
 * when --calibrate names data) is the model's own fake-quantized forward (passes/qat.c).
 */
#include "quantize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/quant_match.h"
#include "runtime/quant_calib.h"

static const char *help =
    "usage: lathe quantize [OPTIONS] FILE --weights CKPT --calibrate SPEC -o OUT\n"
    "\n"
    "Post-training int8 quantization (TFLite's arithmetic, docs/int8.md): run FILE's float\n"
    "forward pass with the weights CKPT over the calibration data, choose each activation's\n"
    "scale and zero point, and write the int8 model OUT.lathe (qdense/qconv2d layers) and its\n"
    "weights OUT.safetensors (int8 weights, int32 biases, Q31 multipliers and shifts). Prints\n"
    "each observed tensor's range, scale and zero point, and each layer's error against float\n"
    "on the calibration data. `lathe compile --bake OUT.lathe --weights OUT.safetensors` then\n"
    "gives integer-only C for the int8 layers.\n"
    "A model trained with a `quantize` statement (quantization-aware training) needs no\n"
    "calibration: the ranges are CKPT's, tracked in training; --calibrate SPEC then only gives\n"
    "the data the int8 model is compared on (against the fake-quantized model).\n"
    "\n"
    "options:\n"
    "  -w, --weights CKPT      the trained float params (safetensors)\n"
    "  --calibrate SPEC        calibration data: any --data SPEC of lathe train (named datasets:\n"
    "                          their training split)\n"
    "  -o, --out OUT           writes OUT.lathe and OUT.safetensors (atomically)\n"
    "  --observer K            minmax (default) | percentile | entropy (TensorRT's KL method)\n"
    "  --percentile P          the percentile observer's P, in (50, 100] (default 99.99)\n"
    "  --per-channel           weights: one scale per output channel (the default)\n"
    "  --per-tensor            weights: one scale per tensor\n"
    "  --reduce-range          7-bit weights in [-63, 63] (as FBGEMM and oneDNN on AVX2: the\n"
    "                          faster u8 x s8 tile cannot saturate)\n"
    "  --keep-float NAME,...   layers (by name: the binding, as in h1.w) that stay float\n"
    "  --quantize-last         the last layer is int8 too (by default it stays float)\n"
    "  --limit N               calibrate on the first N samples (default 2048)\n"
    "  --report-json FILE      the report as JSON: every number at full precision\n"
    "  --features COLS, --target COL   CSV columns (as in lathe train)\n"
    "  -D NAME=VALUE           override a `const` of the model\n"
    "  -h, --help              this help\n";

#define MAX_KEEP 64

typedef struct QuantizeOptions {
  CliCompile c;
  lathe_data_options data;
  const char *weights, *spec, *out, *json, *keep[MAX_KEEP];
  char *keep_text;
  int n_keep;
  RtObserveKind observer;
  double percentile;
  uint64_t limit;
  bool per_tensor, quantize_last, reduce_range;
} QuantizeOptions;

static int parse_keep(CliArgs *a, QuantizeOptions *o) {
  free(o->keep_text);
  char *copy = o->keep_text = strdup(a->value);
  o->n_keep = 0;
  for (char *s = copy, *save = NULL, *g; copy && (g = strtok_r(s, ",", &save)); s = NULL) {
    if (o->n_keep == MAX_KEEP)
      return cli_usage_error(a, "--keep-float: at most %d names", MAX_KEEP);
    o->keep[o->n_keep++] = g;
  }
  return o->n_keep ? EXIT_OK : cli_usage_error(a, "--keep-float expects NAME[,NAME...]");
}

static int parse_option(CliArgs *a, void *opts) {
  QuantizeOptions *o = opts;
  char *end;
  if (cli_option(a, "--weights", "-w")) {
    o->weights = a->value;
  } else if (cli_option(a, "--calibrate", NULL)) {
    o->spec = a->value;
  } else if (cli_option(a, "--out", "-o")) {
    o->out = a->value;
  } else if (cli_option(a, "--observer", NULL)) {
    if (!rt_observe_kind_parse(a->value, &o->observer))
      return cli_usage_error(a, "--observer expects minmax, percentile or entropy, got '%s'",
                             a->value);
  } else if (cli_option(a, "--percentile", NULL)) {
    o->percentile = strtod(a->value, &end);
    if (*end || end == a->value || !(o->percentile > 50 && o->percentile <= 100))
      return cli_usage_error(a, "--percentile expects a number in (50, 100], got '%s'", a->value);
  } else if (cli_option(a, "--limit", NULL)) {
    if (!cli_parse_u64(a->value, &o->limit) || o->limit == 0)
      return cli_usage_error(a, "--limit expects a positive integer, got '%s'", a->value);
  } else if (cli_option(a, "--report-json", NULL)) {
    o->json = a->value;
  } else if (cli_option(a, "--keep-float", NULL)) {
    return parse_keep(a, o);
  } else if (cli_flag(a, "--per-channel", NULL)) {
    o->per_tensor = false;
  } else if (cli_flag(a, "--per-tensor", NULL)) {
    o->per_tensor = true;
  } else if (cli_flag(a, "--quantize-last", NULL)) {
    o->quantize_last = true;
  } else if (cli_flag(a, "--reduce-range", NULL)) {
    o->reduce_range = true;
  } else if (!cli_data_option(a, &o->data) && !cli_compile_option(a, &o->c)) {
    return cli_positional(a, &o->c.file);
  }
  return EXIT_OK;
}

static int parse_args(QuantizeOptions *o, int argc, char **argv) {
  CliArgs a;
  cli_args_init(&a, "quantize", argc, argv);
  int rc = cli_args_parse(&a, help, parse_option, o);
  if (rc != EXIT_OK) return rc;
  if (!o->c.file) return cli_usage_error(&a, "expected a model FILE");
  if (driver_is_onnx(o->c.file))
    return cli_usage_error(&a, "expected a .lathe model (import an ONNX file first)");
  if (!o->weights) return cli_usage_error(&a, "expected --weights CKPT");
  if (!o->out) return cli_usage_error(&a, "expected --out OUT");
  return EXIT_OK;
}

/* ---- compiled models with probes ------------------------------------------------------------ */

/* A compiled forward pass with weights, fed from a dataset; probe k is output "probe<k>". */
typedef struct Runner {
  RtModel model;
  CliWeights w;
  RtFeed feed;
  bool bound;
  int probe_arg[4096]; /* argument index of probe k */
  int n_probes;
} Runner;

static int arg_named(const lathe_entry_info *e, const char *name) {
  for (int k = 0; k < e->n_args; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT && strcmp(e->args[k].tensor->name, name) == 0) return k;
  return -1;
}

/* m (elaborated, before the passes) gets outputs probe<k> = nodes[k]; its forward entry is
 * compiled and loaded, with params from ckpt (a file) or set, and bound to ds */
static bool runner_open(Runner *r, Module *m, const CliCompile *c, const NodeId *nodes, int n,
                        const char *ckpt, const RtTensorSet *set, const lathe_dataset *ds,
                        Diag *d) {
  memset(r, 0, sizeof *r);
  for (int k = 0; k < n; k++)
    graph_add_output(m->model, arena_printf(&m->model->arena, "probe%d", k), nodes[k], OUT_VALUE,
                     -1);
  PassCtx pc;
  pass_ctx_init(&pc, d);
  pc.opt_level = c->opt_level;
  pc.want_train = false;
  bool ok = passes_run_module(m, &pc);
  pass_ctx_fini(&pc);
  if (!ok || !cli_load(m, c, &r->model)) return false;
  const lathe_entry_info *e = NULL;
  for (int k = 0; k < r->model.info->n_entries; k++)
    if (strcmp(r->model.info->entries[k].name, "forward") == 0) e = &r->model.info->entries[k];
  if (!e) diag_error(d, (SrcLoc){0}, "internal: the probed model has no forward entry");
  if (!e || !cli_weights_init(&r->w, r->model.info, ckpt, 0, d)) return false;
  if (set &&
      !driver_weights_load(r->model.info, r->w.params, r->w.state, set, "the quantized weights", d))
    return false;
  if (!(r->bound = rt_feed_bind(&r->feed, e, ds, d))) return false;
  r->n_probes = n;
  for (int k = 0; k < n; k++) {
    char name[32];
    snprintf(name, sizeof name, "probe%d", k);
    r->probe_arg[k] = arg_named(e, name);
  }
  return true;
}

static void runner_close(Runner *r) {
  if (r->bound) rt_feed_fini(&r->feed);
  cli_weights_fini(&r->w);
  if (r->model.info) rt_model_close(&r->model);
}

static const float *probe(const Runner *r, int k) {
  return r->feed.buf[r->probe_arg[k]];
}

static int64_t probe_per(const Runner *r, int k) {
  const lathe_tensor_info *t = r->feed.e->args[r->probe_arg[k]].tensor;
  int64_t per = 1;
  for (int i = 1; i < t->rank; i++)
    per *= t->shape[i];
  return per;
}

/* runs batch b (samples [b * batch, ...) of ds) on r; the samples in it */
static int64_t run_batch(Runner *r, const lathe_dataset *ds, int64_t start, int64_t *index) {
  int64_t count = ds->n - start < r->feed.batch ? ds->n - start : r->feed.batch;
  for (int64_t i = 0; i < count; i++)
    index[i] = start + i;
  rt_feed_gather(&r->feed, ds, index, count);
  rt_feed_call(&r->feed, r->w.params, r->w.state);
  return count;
}

/* ---- calibration --------------------------------------------------------------------------- */

static bool observe(Runner *r, const lathe_dataset *ds, RtObserver *ob, int n, bool pass2,
                    Diag *d) {
  int64_t *index = malloc((size_t)r->feed.batch * sizeof *index);
  bool ok = index != NULL;
  for (int64_t start = 0; ok && start < ds->n; start += r->feed.batch) {
    int64_t count = run_batch(r, ds, start, index);
    for (int k = 0; ok && k < n; k++) {
      int64_t values = count * probe_per(r, k);
      if (pass2)
        ok = rt_observe_histogram(&ob[k], probe(r, k), values);
      else
        rt_observe_minmax(&ob[k], probe(r, k), values);
    }
  }
  if (!ok) diag_error(d, (SrcLoc){0}, "out of memory observing the calibration data");
  free(index);
  return ok;
}

static bool choose_all(QPlan *p, RtObserver *ob, Diag *d) {
  bool ok = true;
  for (int k = 0; k < p->n_obs; k++) {
    QObs *o = &p->obs[k];
    const char *why = NULL;
    o->min = ob[k].lo, o->max = ob[k].hi;
    if (o->rule != QMR_OBSERVED) { /* a softmax's or concat's: by its rule, from the ones before */
      ok = qplan_derive(p, k, d) && ok;
      continue;
    }
    rt_observer_range(&ob[k], &o->lo, &o->hi);
    if (ob[k].nonfinite) why = "it holds NaN or infinite values";
    if (why || !rt_quant_choose_params(o->lo, o->hi, &o->scale, &o->zp, &why)) {
      diag_error(d, graph_node(p->m->model, o->node)->loc,
                 "cannot quantize '%s' (range [%g, %g] on the calibration data): %s", o->what,
                 o->min, o->max, why);
      ok = false;
    }
  }
  return ok;
}

/* the probes of the float model: every observed tensor, then every float layer's result */
static int float_probes(const QPlan *p, NodeId *nodes) {
  int n = 0;
  for (int k = 0; k < p->n_obs; k++)
    nodes[n++] = p->obs[k].node;
  for (int l = 0; l < p->n_layers; l++)
    if (p->layers[l].keep_float) nodes[n++] = p->layers[l].out;
  return n;
}

static bool calibrate(QPlan *p, const QuantizeOptions *o, const lathe_dataset *ds, Runner *r,
                      Diag *d) {
  NodeId *nodes = calloc((size_t)(p->n_obs + p->n_layers + 1), sizeof *nodes);
  RtObserver *ob = calloc((size_t)p->n_obs + 1, sizeof *ob);
  bool ok = nodes && ob;
  for (int k = 0; ok && k < p->n_obs; k++)
    rt_observer_init(&ob[k], o->observer, o->percentile);
  int n = ok ? float_probes(p, nodes) : 0;
  ok = ok && n <= 4096 && runner_open(r, p->m, &o->c, nodes, n, o->weights, NULL, ds, d);
  ok = ok && observe(r, ds, ob, p->n_obs, false, d);
  if (ok && rt_observer_two_pass(&ob[0])) ok = observe(r, ds, ob, p->n_obs, true, d);
  ok = ok && choose_all(p, ob, d);
  for (int k = 0; ob && k < p->n_obs; k++)
    rt_observer_fini(&ob[k]);
  free(ob), free(nodes);
  return ok;
}

/* ---- the int8 model against float ---------------------------------------------------------- */

typedef struct ErrStat {
  double err2, ref2; /* sums of squared error and squared float value */
  double max_err;    /* the largest absolute error */
  int64_t agree, rows;
} ErrStat;

static void add_error(ErrStat *s, const float *ref, const void *got, const QObs *q, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double g = q ? (double)q->scale * (((const int8_t *)got)[i] - q->zp) : ((const float *)got)[i];
    s->err2 += (g - ref[i]) * (g - ref[i]);
    s->max_err = fmax(s->max_err, fabs(g - ref[i]));
    s->ref2 += (double)ref[i] * ref[i];
  }
}

static int64_t argmax(const float *v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    best = v[i] > v[best] ? i : best;
  return best;
}

static void add_agreement(ErrStat *s, const float *ref, const float *got, int64_t rows,
                          int64_t classes) {
  for (int64_t r = 0; classes > 1 && r < rows; r++)
    s->agree += argmax(ref + r * classes, classes) == argmax(got + r * classes, classes);
  s->rows += rows;
}

static double rel_rms(const ErrStat *s) {
  return s->ref2 > 0 ? sqrt(s->err2 / s->ref2) : sqrt(s->err2);
}

typedef struct Compare {
  ErrStat *layer;  /* per layer */
  ErrStat *output; /* per model value output */
  ErrStat *tensor; /* per observed tensor (QPlan.obs): its int8 form against its float one */
  int *probe;      /* per observed tensor: its probe of the written model, or -1 */
} Compare;

static void compare_batch(const QPlan *p, Runner *fr, Runner *qr, int64_t count, Compare *c) {
  for (int l = 0, f = 0; l < p->n_layers; l++) {
    const QLayer *L = &p->layers[l];
    int fk = L->keep_float ? p->n_obs + f++ : L->y_obs;
    add_error(&c->layer[l], probe(fr, fk), probe(qr, l), L->keep_float ? NULL : &p->obs[L->y_obs],
              count * probe_per(qr, l));
  }
  for (int k = 0; k < p->n_obs; k++)
    if (c->probe[k] >= 0)
      add_error(&c->tensor[k], probe(fr, k), probe(qr, c->probe[k]), &p->obs[k],
                count * probe_per(qr, c->probe[k]));
  const lathe_entry_info *fe = fr->feed.e, *qe = qr->feed.e;
  for (int o = 0; o < p->n_outputs; o++) {
    const GraphOutput *out = &p->m->model->outputs[o];
    int fa = arg_named(fe, out->name), qa = arg_named(qe, out->name);
    if (out->kind != OUT_VALUE || fa < 0 || qa < 0) continue;
    const lathe_tensor_info *t = fe->args[fa].tensor;
    if (t->dtype != LATHE_F32) continue;
    int64_t per = (int64_t)(t->bytes / sizeof(float)) / t->shape[0];
    add_error(&c->output[o], fr->feed.buf[fa], qr->feed.buf[qa], NULL, count * per);
    add_agreement(&c->output[o], fr->feed.buf[fa], qr->feed.buf[qa], count,
                  t->rank >= 2 ? t->shape[t->rank - 1] : 1);
  }
}

static bool compare_all(const QPlan *p, Runner *fr, Runner *qr, const lathe_dataset *ds,
                        Compare *c) {
  int64_t *index = malloc((size_t)fr->feed.batch * sizeof *index);
  for (int64_t start = 0; index && start < ds->n; start += fr->feed.batch) {
    int64_t count = run_batch(fr, ds, start, index);
    run_batch(qr, ds, start, index);
    compare_batch(p, fr, qr, count, c);
  }
  free(index);
  return index != NULL;
}

/* the last node of g bound to name, or IR_NONE */
static NodeId bound_node(const Graph *g, const char *name) {
  for (NodeId id = g->n_nodes; id-- > 0;)
    if (graph_node(g, id)->name && strcmp(graph_node(g, id)->name, name) == 0) return id;
  return IR_NONE;
}

/* compiles the written model (its layers as probes) and compares it with fr over ds */
static bool check_written(const QPlan *p, const QuantizeOptions *o, const char *path,
                          const char *text, const RtTensorSet *set, const lathe_dataset *ds,
                          Runner *fr, Compare *c, Diag *d) {
  FrontendOptions fo;
  frontend_options_init(&fo);
  fo.lib_dir = o->c.lib_dir;
  Module *qm = frontend_compile(path, text, &fo, d);
  NodeId *nodes = malloc((size_t)(p->n_layers + p->n_obs + 1) * sizeof *nodes);
  bool ok = qm && nodes;
  int n = 0;
  for (int l = 0; ok && l < p->n_layers; l++)
    if ((nodes[n++] = bound_node(qm->model, p->layers[l].name)) == IR_NONE) {
      diag_error(d, (SrcLoc){0}, "internal: no binding '%s' in the written model",
                 p->layers[l].name);
      ok = false;
    }
  for (int k = 0; ok && k < p->n_obs; k++) { /* each int8 tensor's binding, when it has one */
    NodeId id = p->obs[k].binding ? bound_node(qm->model, p->obs[k].binding) : IR_NONE;
    c->probe[k] = id == IR_NONE ? -1 : n;
    if (id != IR_NONE) nodes[n++] = id;
  }
  Runner qr;
  memset(&qr, 0, sizeof qr);
  ok = ok && n <= 4096 && runner_open(&qr, qm, &o->c, nodes, n, NULL, set, ds, d) &&
       compare_all(p, fr, &qr, ds, c);
  runner_close(&qr);
  if (qm) module_free(qm);
  free(nodes);
  return ok;
}

/* ---- the report ---------------------------------------------------------------------------- */

/* the report's op of a layer: dense, conv2d, or a grouped conv2d (depthwise: groups = C) */
static const char *layer_op(const QPlan *p, const QLayer *L) {
  if (!L->conv) return "dense";
  const Node *op = graph_node(p->m->model, L->op);
  int groups = op->attr.conv.groups;
  if (groups == 1) return "conv2d";
  return groups == graph_node(p->m->model, op->in[0])->shape.dim[1] ? "dwconv" : "gconv";
}

static void print_report(const QPlan *p, const Compare *c, int64_t samples) {
  printf("%-20s %-28s %-28s %12s %5s\n", "tensor", "observed", "range", "scale", "zp");
  for (int k = 0; k < p->n_obs; k++) {
    const QObs *q = &p->obs[k];
    char seen[64], used[64];
    snprintf(seen, sizeof seen, "[%.6g, %.6g]", q->min, q->max);
    snprintf(used, sizeof used, "[%.6g, %.6g]", fmin(q->lo, 0), fmax(q->hi, 0));
    printf("%-20s %-28s %-28s %12.6g %5d%s\n", q->what, seen, used, q->scale, q->zp,
           q->rule == QMR_SOFTMAX  ? "  (int8 softmax: fixed)"
           : q->rule == QMR_CONCAT ? "  (int8 concat: its inputs' union)"
                                   : "");
  }
  for (int k = 0; k < p->n_float_ops; k++)
    printf("%s %s stays float: %s\n", p->float_ops[k].op, p->float_ops[k].what,
           p->float_ops[k].why);
  printf("\n%-20s %-7s %-6s %-26s %14s\n", "layer", "op", "kind", "weight scales",
         "rel. RMS error");
  for (int l = 0; l < p->n_layers; l++) {
    const QLayer *L = &p->layers[l];
    char ws[64] = "-";
    if (!L->keep_float) snprintf(ws, sizeof ws, "[%.3g, %.3g]", L->w_scale_min, L->w_scale_max);
    char err[32] = "-"; /* not compared without data */
    if (samples) snprintf(err, sizeof err, "%.6f", rel_rms(&c->layer[l]));
    printf("%-20s %-7s %-6s %-26s %14s\n", L->name, layer_op(p, L),
           L->keep_float ? "float" : "int8", ws, err);
  }
  for (int o = 0; o < p->n_outputs; o++) {
    const ErrStat *s = &c->output[o];
    if (!s->rows) continue;
    printf("output %s: relative RMS error %.6f, top-1 agreement %.2f%% (%lld samples)\n",
           p->m->model->outputs[o].name, rel_rms(s), 100.0 * (double)s->agree / (double)s->rows,
           (long long)samples);
  }
}

/* the rest of a tensor's JSON object: its rule, and the tensors a softmax's or concat's
 * parameters follow (indices into "tensors") */
static void json_rule(FILE *f, const QPlan *p, const QObs *q) {
  NodeId in[64];
  int axis, n = 0;
  if (q->rule == QMR_SOFTMAX) in[n++] = graph_node(p->m->model, q->node)->in[0];
  if (q->rule == QMR_CONCAT) n = qmatch_concat_inputs(p->m->model, NULL, q->node, in, 64, &axis);
  fprintf(f, ", \"rule\": \"%s\", \"inputs\": [",
          q->rule == QMR_SOFTMAX  ? "softmax"
          : q->rule == QMR_CONCAT ? "concat"
                                  : "observed");
  for (int k = 0; k < n; k++)
    fprintf(f, "%s%d", k ? ", " : "", p->obs_of[in[k]]);
  fprintf(f, "]}");
}

/* a conv2d layer's geometry in the JSON report (the oracle runs it; groups: depthwise = C) */
static void conv_json(FILE *f, const Node *op) {
  const struct IrConvAttr *c = &op->attr.conv;
  fprintf(f, ", \"groups\": %d, \"stride\": %d, \"padding\": %d, \"dilation\": %d", c->groups,
          c->stride[0], c->pad[0], c->dilation[0]);
}

/* the report as JSON (numbers at full precision, for tools and tests/int8/quantize_ref.py) */
static char *report_json(const QPlan *p, const Compare *c, bool per_channel) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f, "{\"per_channel\": %s, \"weight_max\": %d,\n\"tensors\": [",
          per_channel ? "true" : "false", (int)p->weight_max);
  for (int k = 0; k < p->n_obs; k++) {
    const QObs *q = &p->obs[k];
    fprintf(f,
            "%s\n  {\"name\": \"%s\", \"min\": %.17g, \"max\": %.17g, \"lo\": %.17g, "
            "\"hi\": %.17g, \"scale\": %.9g, \"zp\": %d, \"max_abs_err\": %.17g",
            k ? "," : "", q->what, q->min, q->max, q->lo, q->hi, q->scale, q->zp,
            c->tensor[k].max_err);
    json_rule(f, p, q);
  }
  fprintf(f, "],\n\"float_ops\": [");
  for (int k = 0; k < p->n_float_ops; k++)
    fprintf(f, "%s\n  {\"name\": \"%s\", \"op\": \"%s\", \"why\": \"%s\"}", k ? "," : "",
            p->float_ops[k].what, p->float_ops[k].op, p->float_ops[k].why);
  fprintf(f, "],\n\"layers\": [");
  for (int l = 0; l < p->n_layers; l++) {
    const QLayer *L = &p->layers[l];
    fprintf(f,
            "%s\n  {\"name\": \"%s\", \"op\": \"%s\", \"int8\": %s, \"relu\": %s, "
            "\"weight\": \"%s\", \"bias\": \"%s\", \"x\": %d, \"y\": %d, \"rel_rms\": %.17g, "
            "\"max_abs_err\": %.17g",
            l ? "," : "", L->name, L->conv ? "conv2d" : "dense", L->keep_float ? "false" : "true",
            L->relu ? "true" : "false", p->m->params[L->w_param].name,
            L->b_param >= 0 ? p->m->params[L->b_param].name : "", L->x_obs, L->y_obs,
            rel_rms(&c->layer[l]), c->layer[l].max_err);
    fprintf(f, ", \"x_name\": \"%s\"", L->x_name ? L->x_name : "");
    if (L->conv) conv_json(f, graph_node(p->m->model, L->op));
    fputc('}', f);
  }
  fprintf(f, "],\n\"outputs\": [");
  for (int o = 0, first = 1; o < p->n_outputs; o++)
    if (c->output[o].rows) {
      fprintf(f,
              "%s\n  {\"name\": \"%s\", \"rel_rms\": %.17g, \"max_abs_err\": %.17g, "
              "\"top1_agreement\": %.17g}",
              first ? "" : ",", p->m->model->outputs[o].name, rel_rms(&c->output[o]),
              c->output[o].max_err, (double)c->output[o].agree / (double)c->output[o].rows);
      first = 0;
    }
  fprintf(f, "]}\n");
  return fclose(f) == 0 ? text : (free(text), NULL);
}

/* ---- the command --------------------------------------------------------------------------- */

/* OUT (a trailing ".lathe" dropped) + ext */
static char *out_path(const char *out, const char *ext) {
  size_t n = strlen(out);
  if (n > 6 && strcmp(out + n - 6, ".lathe") == 0) n -= 6;
  char *s = malloc(n + strlen(ext) + 1);
  if (s) memcpy(s, out, n), strcpy(s + n, ext);
  return s;
}

static char *header_text(const QPlan *p, const QuantizeOptions *o, const char *lathe_path,
                         const char *st_path, int64_t samples) {
  char *text = NULL, floats[512] = "";
  size_t len = 0;
  for (int l = 0; l < p->n_layers; l++)
    if (p->layers[l].keep_float && strlen(floats) + strlen(p->layers[l].name) + 3 < sizeof floats)
      snprintf(floats + strlen(floats), sizeof floats - strlen(floats), "%s%s", *floats ? ", " : "",
               p->layers[l].name);
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f, "# %s — the int8 model of %s, written by `lathe quantize` (docs/int8.md)\n",
          lathe_path, o->c.file);
  if (p->m->qat)
    fprintf(f, "# ranges: tracked by quantization-aware training (the range states of %s)",
            o->weights);
  else
    fprintf(f, "# calibration: %s, %lld samples, observer %s", o->spec, (long long)samples,
            rt_observe_kind_name(o->observer));
  if (!p->m->qat && o->observer == RT_OBSERVE_PERCENTILE) fprintf(f, " (%g)", o->percentile);
  bool per_tensor = p->m->qat ? p->m->qat->per_tensor : o->per_tensor;
  fprintf(f, "; weights symmetric per %s%s\n", per_tensor ? "tensor" : "output channel",
          o->reduce_range ? ", 7-bit ([-63, 63], --reduce-range)" : "");
  fprintf(f, "# weights: %s (i8 weights, i32 biases, Q31 multipliers m and shifts s)\n", st_path);
  fprintf(f, "# float layers: %s\n", *floats ? floats : "none");
  return fclose(f) == 0 ? text : (free(text), NULL);
}

static lathe_dataset *open_data(QuantizeOptions *o, Diag *d) {
  lathe_dataset *all = rt_data_open(o->spec, &o->data, d);
  if (!all || (uint64_t)all->n <= o->limit) return all;
  int64_t *rows = malloc((size_t)o->limit * sizeof *rows);
  for (uint64_t i = 0; rows && i < o->limit; i++)
    rows[i] = (int64_t)i;
  lathe_dataset *view = rows ? rt_data_view(all, rows, (int64_t)o->limit) : NULL;
  free(rows);
  lathe_dataset_free(all);
  if (!view) diag_error(d, (SrcLoc){0}, "out of memory");
  return view;
}

static bool write_outputs(const QuantizeOptions *o, const char *lathe_path, const char *st_path,
                          const char *text, const char *json, const RtTensorSet *set, Diag *d) {
  if (o->json && !rt_write_file_atomic(o->json, json, strlen(json), d)) return false;
  if (rt_safetensors_write(st_path, set, d) &&
      rt_write_file_atomic(lathe_path, text, strlen(text), d))
    return true;
  remove(st_path); /* not half a model */
  if (o->json) remove(o->json);
  return false;
}

/* A model with a `quantize` statement: the statement chose the float layers and the weight
 * scales; the options that choose them are refused rather than silently overruled. */
static bool qat_options(const QuantizeOptions *o, Module *m, QPlanOptions *po, Diag *d) {
  const char *given = o->n_keep          ? "--keep-float"
                      : o->quantize_last ? "--quantize-last"
                      : o->per_tensor    ? "--per-tensor"
                      : o->reduce_range  ? "--reduce-range"
                                         : NULL;
  if (given) {
    diag_error(d, m->qat->loc,
               "%s: this model's quantize statement chooses the float layers and the weight "
               "scales (edit it: 'quantize [per_tensor] [except NAME, ...]')",
               given);
    return false;
  }
  const char **keep = arena_alloc(&m->arena, sizeof *keep * (size_t)(m->qat->n_float + 1));
  for (int k = 0; k < m->qat->n_float; k++) { /* quantize_plan.c's names: "enc.q" -> "enc_q" */
    char *name = arena_strdup(&m->arena, m->qat->float_layers[k]);
    for (char *c = name; *c; c++)
      *c = *c == '.' ? '_' : *c;
    keep[k] = name;
  }
  *po = (QPlanOptions){.keep = keep, .n_keep = m->qat->n_float, .per_channel = !m->qat->per_tensor};
  return true;
}

/* QAT: the ranges from the checkpoint; with data, the fake-quantized model runs as fr */
static bool qat_ranges(QPlan *p, const QuantizeOptions *o, const RtTensorSet *fw,
                       const lathe_dataset *ds, Runner *fr, Diag *d) {
  fprintf(stderr,
          "taking the ranges of %d tensors of %d layers from %s (quantization-aware "
          "training)\n",
          p->n_obs, p->n_layers, o->weights);
  if (!qplan_qat_ranges(p, fw, o->weights, d)) return false;
  if (!ds) return true;
  NodeId *nodes = calloc((size_t)(p->n_obs + p->n_layers + 1), sizeof *nodes);
  int n = nodes ? float_probes(p, nodes) : 0;
  bool ok = nodes && n <= 4096 && runner_open(fr, p->m, &o->c, nodes, n, o->weights, NULL, ds, d);
  free(nodes);
  return ok;
}

static bool quantize_model(QuantizeOptions *o, Module *m, Diag *d) {
  QPlan p = {0};
  QPlanOptions po = {.keep = o->keep,
                     .n_keep = o->n_keep,
                     .quantize_last = o->quantize_last,
                     .per_channel = !o->per_tensor,
                     .reduce_range = o->reduce_range};
  Runner fr;
  memset(&fr, 0, sizeof fr);
  RtTensorSet fw, qw;
  rt_set_init(&fw), rt_set_init(&qw);
  char *lathe_path = out_path(o->out, ".lathe"), *st_path = out_path(o->out, ".safetensors");
  char *header = NULL, *text = NULL, *json = NULL;
  lathe_dataset *ds = NULL;
  Compare c = {0};
  bool qat = m->qat != NULL;
  if (!qat && !o->spec)
    diag_error(d, (SrcLoc){0},
               "expected --calibrate SPEC (see lathe train --help): %s has no "
               "quantize statement, so its ranges must be observed",
               o->c.file);
  bool ok = (qat || o->spec) && (!qat || qat_options(o, m, &po, d)) && lathe_path && st_path &&
            qplan_build(&p, m, &po, d) && rt_safetensors_read(o->weights, &fw, d) &&
            (!o->spec || (ds = open_data(o, d)) != NULL);
  if (ok && qat) {
    ok = qat_ranges(&p, o, &fw, ds, &fr, d) &&
         (header = header_text(&p, o, lathe_path, st_path, 0)) != NULL &&
         qplan_write(&p, &po, header, &fw, o->weights, &text, &qw, d);
  } else if (ok) {
    fprintf(stderr, "calibrating %d tensors of %d layers on %lld samples of %s (%s)\n", p.n_obs,
            p.n_layers, (long long)ds->n, o->spec, rt_observe_kind_name(o->observer));
    ok = calibrate(&p, o, ds, &fr, d) &&
         (header = header_text(&p, o, lathe_path, st_path, ds->n)) != NULL &&
         qplan_write(&p, &po, header, &fw, o->weights, &text, &qw, d);
  }
  c.layer = calloc((size_t)p.n_layers + 1, sizeof *c.layer);
  c.output = calloc((size_t)p.n_outputs + 1, sizeof *c.output);
  c.tensor = calloc((size_t)p.n_obs + 1, sizeof *c.tensor);
  c.probe = calloc((size_t)p.n_obs + 1, sizeof *c.probe);
  ok = ok && c.layer && c.output && c.tensor && c.probe &&
       (!ds || check_written(&p, o, lathe_path, text, &qw, ds, &fr, &c, d));
  if (ok) print_report(&p, &c, ds ? ds->n : 0);
  if (ok && o->json && !(json = report_json(&p, &c, po.per_channel))) {
    diag_error(d, (SrcLoc){0}, "out of memory");
    ok = false;
  }
  if (ok && (ok = write_outputs(o, lathe_path, st_path, text, json, &qw, d)))
    fprintf(stderr, "wrote %s and %s\n", lathe_path, st_path);
  runner_close(&fr);
  free(c.layer), free(c.output), free(c.tensor), free(c.probe), free(header), free(text),
      free(json), free(lathe_path);
  free(st_path);
  lathe_dataset_free(ds);
  rt_set_fini(&fw), rt_set_fini(&qw);
  qplan_fini(&p);
  return ok;
}

/* the float model, elaborated only (the plan reads its model graph before any pass) */
static Module *elaborate(const QuantizeOptions *o, Diag *d) {
  char *text = NULL;
  RtTensorSet unused;
  rt_set_init(&unused);
  Module *m = NULL;
  if (driver_read_source(&o->c, &text, &unused, d)) {
    FrontendOptions fo;
    frontend_options_init(&fo);
    fo.lib_dir = o->c.lib_dir;
    fo.defines = o->c.defines;
    fo.n_defines = o->c.n_defines;
    fo.model_name = o->c.model_name;
    m = frontend_compile(o->c.file, text, &fo, d);
  }
  free(text);
  rt_set_fini(&unused);
  return m;
}

int cmd_quantize(int argc, char **argv) {
  QuantizeOptions o;
  memset(&o, 0, sizeof o);
  cli_compile_init(&o.c);
  lathe_data_options_init(&o.data);
  o.observer = RT_OBSERVE_MINMAX;
  o.percentile = 99.99;
  o.limit = 2048;
  int rc = parse_args(&o, argc, argv);
  if (rc != EXIT_OK) {
    free(o.keep_text);
    return rc < 0 ? EXIT_OK : rc;
  }
  Diag d;
  diag_init(&d);
  Module *m = elaborate(&o, &d);
  bool ok = m && quantize_model(&o, m, &d);
  if (m) module_free(m);
  free(o.keep_text);
  diag_flush(&d, stderr);
  diag_fini(&d);
  return ok ? EXIT_OK : EXIT_USER;
}
