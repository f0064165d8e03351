/* import/import.c — onnx_import: decodes the ModelProto, declares the graph inputs (dynamic
 * dims fixed by defines), registers the initializers as constants, maps every node in order,
 * and assembles the .lathe text: consts, the param helper fns, `model NAME(inputs) {...}`,
 * and with a loss a `train` block.
 *
 * Invariants: every node is visited even after a failure, so all problems are reported at
 * once; a node reading a poisoned value (the output of a failed node) is skipped silently;
 * on failure the result is empty.
 */
#include "import/imp.h"

#include <stdlib.h>
#include <string.h>

void import_options_init(ImportOptions *o) {
  memset(o, 0, sizeof *o);
  o->max_batch = IMPORT_DEFAULT_MAX_BATCH;
}

void import_result_fini(ImportResult *r) {
  free(r->text);
  rt_set_fini(&r->weights);
  for (int i = 0; i < r->n_outputs; i++)
    free(r->output_names[i]);
  for (int i = 0; i < r->n_inputs; i++)
    free(r->input_names[i]), free(r->input_onnx[i]);
  free(r->output_names);
  free(r->input_names);
  free(r->input_onnx);
  memset(r, 0, sizeof *r);
}

static int64_t opset_of(const Onnx__ModelProto *m) {
  int64_t v = 0;
  for (size_t i = 0; i < m->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    if ((!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0) && o->has_version)
      v = o->version;
  }
  return v;
}

static const Define *find_define(const ImportOptions *o, const char *name) {
  for (int i = 0; i < o->n_defines; i++)
    if (strcmp(o->defines[i].name, name) == 0) return &o->defines[i];
  return NULL;
}

static const Tensor *find_const_input(const ImportOptions *o, const char *name) {
  for (int i = 0; i < o->n_consts; i++)
    if (strcmp(o->const_names[i], name) == 0) return &o->const_values[i];
  return NULL;
}

/* A symbolic axis 0 of a graph input (named nm, "" when unnamed) not fixed by a define: the
 * model's dynamic batch, declared once as `const batch = dynamic(max = M)`. Returns its name
 * (NULL, reported, when the graph has two differently named batches). */
static const char *dynamic_batch(Imp *im, const Onnx__ValueInfoProto *vi, const char *nm,
                                 const Define *def, FILE *consts) {
  if (im->dyn_ident) {
    if (*nm && *im->dyn_param && strcmp(nm, im->dyn_param) != 0) {
      imp_fail(im,
               "graph input '%s': axis 0 is a second symbolic batch ('%s'; the first is "
               "'%s'); a model has one dynamic dimension: fix one with -D %s=VALUE",
               vi->name, nm, im->dyn_param, nm);
      return NULL;
    }
    return im->dyn_ident;
  }
  im->dyn_max = def                    ? def->value
                : im->o->max_batch > 0 ? im->o->max_batch
                                       : IMPORT_DEFAULT_MAX_BATCH;
  im->dyn_param = arena_strdup(&im->arena, nm);
  im->dyn_ident = imp_ident(im, "", *nm ? nm : "batch");
  fprintf(consts,
          "const %s = dynamic(max = %lld)  # the batch: any size up to this bound at "
          "run time (--max-batch); -D %s=N fixes it\n",
          im->dyn_ident, (long long)im->dyn_max, *nm ? nm : im->dyn_ident);
  return im->dyn_ident;
}

/* axis 0 given as dim_param, unnamed, or dim_value 0 / -1 (exporters' "any") */
static bool symbolic_batch(const Onnx__TensorShapeProto__Dimension *dm) {
  if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
    return dm->dim_value == 0 || dm->dim_value == -1;
  return true;
}

/* "[batch, 784]" with dynamic dims by their const name; records the consts in `consts` */
static bool input_type(Imp *im, const Onnx__ValueInfoProto *vi, DType *dt, Shape *s,
                       FILE *consts, const char **dims) {
  const Onnx__TypeProto *tp = vi->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type ||
      !imp_dtype_from_onnx(tp->tensor_type->elem_type, dt))
    return imp_fail(im, "graph input '%s' is not a tensor of a supported element type", vi->name);
  const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
  memset(s, 0, sizeof *s);
  if (!sp) return imp_fail(im, "graph input '%s' has no shape", vi->name);
  if (sp->n_dim > IR_MAX_RANK) return imp_fail(im, "graph input '%s': rank too high", vi->name);
  s->rank = (int)sp->n_dim;
  char buf[512];
  int k = snprintf(buf, sizeof buf, "[");
  for (int i = 0; i < s->rank; i++) {
    const Onnx__TensorShapeProto__Dimension *dm = sp->dim[i];
    const char *txt;
    if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
        dm->dim_value > 0) {
      s->dim[i] = dm->dim_value;
      txt = imp_printf(im, "%lld", (long long)dm->dim_value);
    } else {
      const char *nm = dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                           ? dm->dim_param : "";
      const Define *def = nm && *nm ? find_define(im->o, nm) : NULL;
      if (i == 0 && (!def || def->dynamic) && symbolic_batch(dm)) {
        if (!(txt = dynamic_batch(im, vi, nm ? nm : "", def, consts))) return false;
        s->dim[0] = im->dyn_max, s->dyn = 1;
        k += snprintf(buf + k, sizeof buf - (size_t)k, "%s", txt);
        continue;
      }
      if (def && def->dynamic)
        return imp_fail(im,
                        "graph input '%s': dimension %d ('%s') cannot be dynamic; only axis "
                        "0 (the batch) can: fix it with -D %s=VALUE",
                        vi->name, i, nm, nm);
      if (dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
        return imp_fail(im, "graph input '%s': dimension %d has size %lld (lathe has no empty "
                            "tensors)", vi->name, i, (long long)dm->dim_value);
      if (!nm || !*nm)
        return imp_fail(im, "graph input '%s': dimension %d is dynamic and unnamed; export the "
                            "model with a static shape", vi->name, i);
      if (!def || def->value < 1)
        return imp_fail(im, "graph input '%s': dimension %d is dynamic ('%s'); fix it with "
                            "-D %s=VALUE", vi->name, i, nm, nm);
      s->dim[i] = def->value;
      const char *key = imp_printf(im, "\x04dim:%s", nm);
      ImpVal *known = imp_find(im, key);
      txt = known ? known->ident : imp_ident(im, "", nm);
      ImpVal *reg = known ? NULL : imp_new_val(im, key, DT_I64, &(Shape){0});
      if (reg) reg->ident = txt; /* one const per dim_param, shared by every input */
      if (reg)
        fprintf(consts, "const %s = %lld  # fixed at import: re-import with -D %s=N to change it\n",
                txt, (long long)def->value, nm);
    }
    k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%s", i ? ", " : "", txt);
    if (k > 480) return imp_fail(im, "graph input '%s': type too long", vi->name);
  }
  snprintf(buf + k, sizeof buf - (size_t)k, "]");
  *dims = arena_strdup(&im->arena, buf);
  return imp_shape_ok(im, s);
}

static bool is_initializer(const Onnx__GraphProto *g, const char *name) {
  for (size_t i = 0; i < g->n_initializer; i++)
    if (g->initializer[i]->name && strcmp(g->initializer[i]->name, name) == 0) return true;
  return false;
}

/* the model's argument list; integer inputs known at import time become constants */
static bool declare_inputs(Imp *im, const Onnx__GraphProto *g, FILE *args, FILE *consts,
                           ImportResult *r) {
  bool ok = true;
  for (size_t i = 0; i < g->n_input; i++) {
    const Onnx__ValueInfoProto *vi = g->input[i];
    if (!vi->name || is_initializer(g, vi->name)) continue;
    const Tensor *c = find_const_input(im->o, vi->name);
    if (c) {
      ImpVal *v = imp_new_val(im, vi->name, c->dtype, &c->shape);
      if (!v || !tensor_alloc(&v->konst, c->dtype, &c->shape)) return false;
      memcpy(v->konst.data, c->data, (size_t)shape_numel(&c->shape) * dtype_size(c->dtype));
      v->has_const = true;
      continue;
    }
    DType dt;
    Shape s;
    const char *dims = NULL;
    if (!input_type(im, vi, &dt, &s, consts, &dims)) {
      ImpVal *v = imp_new_val(im, vi->name, DT_F32, &(Shape){0});
      if (v) v->poisoned = true; /* its readers are not reported again */
      ok = false;
      continue;
    }
    int32_t et = vi->type->tensor_type->elem_type;
    if (et == ONNX__TENSOR_PROTO__DATA_TYPE__INT8) dt = DT_I8; /* quantized: i8 as it is */
    ImpVal *v = imp_new_val(im, vi->name, dt, &s);
    if (!v) return false;
    v->ident = imp_ident(im, "", vi->name);
    v->onnx_type = et;
    fprintf(args, "%s%s: %s%s", r->n_inputs ? ", " : "", v->ident, dtype_name(dt), dims);
    r->input_names = realloc(r->input_names, (size_t)(r->n_inputs + 1) * sizeof(char *));
    r->input_onnx = realloc(r->input_onnx, (size_t)(r->n_inputs + 1) * sizeof(char *));
    if (!r->input_names || !r->input_onnx) return false;
    r->input_names[r->n_inputs] = strdup(v->ident);
    r->input_onnx[r->n_inputs++] = strdup(vi->name);
  }
  return ok;
}

static bool declare_initializers(Imp *im, const Onnx__GraphProto *g) {
  bool ok = true;
  for (size_t i = 0; i < g->n_initializer; i++) {
    const Onnx__TensorProto *p = g->initializer[i];
    const char *what = imp_printf(im, "%s: initializer '%s'", im->path, p->name ? p->name : "");
    Tensor t;
    if (!p->name || !imp_tensor_from_proto(p, &t, im->d, what)) {
      ok = false;
      im->n_problems++;
      continue;
    }
    ImpVal *v = imp_new_val(im, p->name, t.dtype, &t.shape);
    if (!v) {
      tensor_free(&t);
      return false;
    }
    v->has_const = true;
    v->initializer = true;
    v->konst = t;
    v->onnx_type = p->data_type;
  }
  return ok;
}

static ImpOpFn find_op(const char *op) {
  ImpOpFn f = imp_op_basic(op);
  if (!f) f = imp_op_shape(op);
  if (!f) f = imp_op_nn(op);
  if (!f) f = imp_op_rnn(op);
  if (!f) f = imp_op_resize(op);
  if (!f) f = imp_op_vocab(op);
  if (!f) f = imp_op_math(op);
  if (!f) f = imp_op_quant(op);
  return f;
}

static void poison_outputs(Imp *im, const Onnx__NodeProto *n) {
  for (size_t k = 0; k < n->n_output; k++) {
    if (!n->output[k] || !*n->output[k] || imp_find(im, n->output[k])) continue;
    ImpVal *v = imp_new_val(im, n->output[k], DT_F32, &(Shape){0});
    if (v) v->poisoned = true;
  }
}

/* maps one node; false if it (or an input) failed */
static bool map_node(Imp *im, const Onnx__NodeProto *n) {
  im->node = n;
  if (!n->op_type || !*n->op_type) return imp_fail(im, "the node has no op_type");
  for (size_t k = 0; k < n->n_input; k++) {
    if (!n->input[k] || !*n->input[k]) continue;
    ImpVal *v = imp_find(im, n->input[k]);
    if (v && v->poisoned) return false;
    if (!v) return imp_fail(im, "input '%s' is not defined before this node", n->input[k]);
  }
  if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") != 0)
    return imp_fail(im, "operator domain '%s' is not supported", n->domain);
  bool folded = false;
  int before = im->n_problems;
  if (imp_fold(im, n, &folded) && folded) return true;
  if (im->n_problems != before) return false;
  ImpOpFn f = find_op(n->op_type);
  if (!f) return imp_fail(im, "operator '%s' is not supported", n->op_type);
  before = im->n_problems;
  if (!f(im, n)) /* a mapper that failed without a report: a node without outputs */
    return im->n_problems != before || imp_fail(im, "the node has no usable outputs");
  for (size_t k = 0; k < n->n_output; k++)
    if (n->output[k] && *n->output[k] && !imp_find(im, n->output[k]))
      return imp_fail(im, "output %zu ('%s') is not supported", k, n->output[k]);
  return true;
}

static void write_param_fns(const Imp *im, FILE *f) {
  for (int r = 0; r <= IR_MAX_RANK; r++) {
    for (int f64 = 0; f64 < 2; f64++) {
      if (!((f64 ? im->param_f64 : im->param_ranks) >> r & 1)) continue;
      char args[200] = "", dims[200] = "";
      int ka = 0, kd = 0;
      for (int i = 0; i < r; i++) {
        ka += snprintf(args + ka, sizeof args - (size_t)ka, "%sd%d: int", i ? ", " : "", i);
        kd += snprintf(dims + kd, sizeof dims - (size_t)kd, "%sd%d", i ? ", " : "", i);
      }
      const char *dt = f64 ? "f64" : "f32";
      fprintf(f, "fn param%s_%d(%s) -> %s[%s] {\n  param w: %s[%s] = zeros\n  return w\n}\n\n",
              f64 ? "64" : "", r, args, dt, dims, dt, dims);
    }
  }
}

static const char *model_name(Imp *im) {
  const char *base = im->o->model_name;
  if (!base) {
    const char *slash = strrchr(im->path, '/');
    base = slash ? slash + 1 : im->path;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) base = arena_strndup(&im->arena, base, (size_t)(dot - base));
  }
  static const char *const reserved[] = {"const", "import", "fn", "param", "model", "output",
                                         "return", "train", "as", "true", "false", "scan"};
  const char *id = imp_ident(im, "", base);
  bool bad = !*id || (id[0] >= '0' && id[0] <= '9');
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
    bad |= strcmp(id, reserved[i]) == 0;
  return bad ? imp_printf(im, "onnx_%s", id) : id;
}

/* `output` lines; the names go to r */
static bool declare_outputs(Imp *im, const Onnx__GraphProto *g, ImportResult *r) {
  im->node = NULL;
  r->output_names = calloc(g->n_output + 1, sizeof(char *));
  if (!r->output_names) return false;
  for (size_t i = 0; i < g->n_output; i++) {
    const char *nm = g->output[i]->name ? g->output[i]->name : "";
    ImpVal *v = imp_find(im, nm);
    if (!v) return imp_fail(im, "graph output '%s' is never computed", nm);
    if (v->poisoned) return false;
    const char *ref = imp_ref_tensor(im, v);
    if (!ref || !(ref = imp_quant_output(im, v, ref))) return false;
    const char *id = imp_ident(im, "", nm);
    ImpVal *o = imp_new_val(im, imp_printf(im, "\x01output:%s", nm),
                            v->u8_shifted ? DT_U8 : v->dtype, &v->shape);
    if (!o) return false;
    o->ident = id;
    fprintf(im->out, "  output %s = %s\n", id, ref);
    r->output_names[r->n_outputs++] = strdup(id);
  }
  return r->n_outputs > 0 || imp_fail(im, "the graph has no outputs");
}

/* `--loss`: a label/target input, the loss binding and the train block */
static bool add_loss(Imp *im, const ImportResult *r, FILE *args, FILE *train) {
  const char *loss = im->o->loss;
  ImpVal *out = NULL;
  for (int i = 0; i < im->n_vals; i++)
    if (im->vals[i]->onnx[0] == 1 && strcmp(im->vals[i]->ident, r->output_names[0]) == 0)
      out = im->vals[i];
  if (!out) return false;
  if (strcmp(loss, "cross_entropy") == 0) {
    if (out->shape.rank != 2)
      return imp_fail(im, "--loss cross_entropy needs a [N, C] first output");
    Shape ls = {.rank = 1, .dim = {out->shape.dim[0]}, .dyn = out->shape.dyn};
    fprintf(args, "%slabel: i32%s", r->n_inputs ? ", " : "", imp_dims(im, &ls));
    fprintf(im->out, "  loss = cross_entropy(%s, label)\n", out->ident);
  } else if (strcmp(loss, "mse") == 0) {
    fprintf(args, "%starget: %s%s", r->n_inputs ? ", " : "", dtype_name(out->dtype),
            imp_dims(im, &out->shape));
    fprintf(im->out, "  loss = mse(%s, target)\n", out->ident);
  } else {
    return imp_fail(im, "--loss: expected cross_entropy or mse, got '%s'", loss);
  }
  const char *opt = im->o->optimizer ? im->o->optimizer : "adam";
  fprintf(train, "\ntrain %%s {\n  minimize loss\n  optimizer %s\n}\n", opt);
  return true;
}

static char *assemble(Imp *im, const char *consts, const char *args, const char *train,
                      const char *name) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f, "# imported from %s by `lathe import` (ONNX opset %lld)\n", im->path,
          (long long)im->opset);
  fprintf(f, "# params are initializers; their values are in the weights file\n");
  if (im->o->loss) fprintf(f, "import nn\n");
  if (*consts) fprintf(f, "%s", consts);
  fprintf(f, "\n");
  write_param_fns(im, f);
  fprintf(f, "model %s(%s) {\n%s}\n", name, args, im->body);
  if (*train) fprintf(f, train, name);
  fclose(f);
  return text;
}

typedef struct Streams {
  char *args, *consts, *train;
  size_t n_args, n_consts, n_train;
  FILE *fa, *fc, *ft;
} Streams;

static bool streams_open(Streams *s) {
  memset(s, 0, sizeof *s);
  s->fa = open_memstream(&s->args, &s->n_args);
  s->fc = open_memstream(&s->consts, &s->n_consts);
  s->ft = open_memstream(&s->train, &s->n_train);
  return s->fa && s->fc && s->ft;
}

static void streams_close(Streams *s) {
  if (s->fa) fclose(s->fa);
  if (s->fc) fclose(s->fc);
  if (s->ft) fclose(s->ft);
  s->fa = s->fc = s->ft = NULL;
}

static void streams_free(Streams *s) {
  streams_close(s);
  free(s->args), free(s->consts), free(s->train);
}

static bool import_graph(Imp *im, const Onnx__GraphProto *g, ImportResult *r) {
  Streams s;
  bool ok = streams_open(&s);
  ok = ok && declare_initializers(im, g);
  ok = declare_inputs(im, g, s.fa, s.fc, r) && ok;
  for (size_t i = 0; i < g->n_node; i++) {
    if (map_node(im, g->node[i])) continue;
    poison_outputs(im, g->node[i]);
    ok = false;
  }
  ok = ok && im->n_problems == 0 && declare_outputs(im, g, r);
  if (ok && im->o->loss) ok = add_loss(im, r, s.fa, s.ft);
  fflush(im->out);
  streams_close(&s);
  if (ok && im->n_problems == 0) {
    r->text = assemble(im, s.consts, s.args, s.train, model_name(im));
    ok = r->text != NULL;
  }
  streams_free(&s);
  return ok && im->n_problems == 0;
}

static void imp_fini(Imp *im) {
  if (im->out) fclose(im->out);
  free(im->body);
  for (int i = 0; i < im->n_vals; i++)
    if (im->vals[i]->has_const) tensor_free(&im->vals[i]->konst);
  for (int i = 0; i < im->n_vals; i++)
    free(im->vals[i]);
  free(im->vals);
  arena_fini(&im->arena);
}

bool onnx_import(const char *path, const uint8_t *data, size_t len, const ImportOptions *o,
                 ImportResult *r, Diag *d) {
  memset(r, 0, sizeof *r);
  rt_set_init(&r->weights);
  Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, data);
  if (!m || !m->graph) {
    diag_error(d, (SrcLoc){0}, "%s: not a valid ONNX model (malformed or truncated protobuf)",
               path);
    if (m) onnx__model_proto__free_unpacked(m, NULL);
    return false;
  }
  Imp im;
  memset(&im, 0, sizeof im);
  im.o = o, im.d = d, im.path = path, im.weights = &r->weights;
  arena_init(&im.arena);
  im.opset = opset_of(m);
  im.out = open_memstream(&im.body, &im.body_len);
  bool ok = im.out != NULL;
  if (ok && (im.opset < 7 || im.opset > 19))
    ok = imp_fail(&im, "ONNX opset %lld is not supported (lathe imports opsets 7 to 19)",
                  (long long)im.opset);
  ok = ok && import_graph(&im, m->graph, r);
  imp_fini(&im);
  onnx__model_proto__free_unpacked(m, NULL);
  if (!ok && d->n_errors == 0)
    diag_error(d, (SrcLoc){0}, "%s: import failed (out of memory)", path);
  if (!ok) import_result_fini(r), rt_set_init(&r->weights);
  return ok;
}
