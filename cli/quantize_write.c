/* cli/quantize_write.c — the int8 model of a QPlan as readable .lathe text, and its weights.
 *
 * The text is the model graph written back one binding per node, in id order: a layer is
 * one call of a small fn defined at the top of the file (qdense_layer, qconv_layer,
 * qconv_group_layer for int8 layers; dense_layer, conv_layer for float ones), bound to the
 * layer's name so its params are `<name>.w`, `<name>.b` (and the int8 layers' `<name>.m`,
 * `<name>.s`: the Q31 multipliers and shifts); every other op is its builtin. Rank-0
 * constants are written as numbers where they are used. A node's float and int8 forms are
 * made when first needed: `<name>_f = dequantize(...)` after an int8 tensor, `<name>_q =
 * quantize(...)` before an int8 layer that reads a float one.
 *
 * Invariant: fname/qname of a node are set before any later node is written (id order is a
 * topological order), so every operand a line names is bound above it.
 */
#include "quantize_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/quant_calib.h"

enum {
  FN_QDENSE,
  FN_QCONV,
  FN_DENSE,
  FN_DENSE_NOBIAS,
  FN_CONV,
  FN_CONV_NOBIAS,
  FN_QCONV_GROUPS,
  FN_COUNT
};

static const char *const fn_text[FN_COUNT] = {
    "# An int8 dense layer, TFLite's arithmetic (docs/int8.md): w i8 [K, units] (symmetric),\n"
    "# b i32 at scale s_x * s_w, the sum requantized to the output scale by the Q31 multiplier\n"
    "# m and shift s of each output column; qmin = out_zp is a fused ReLU.\n"
    "fn qdense_layer(x: i8[..., K], units: int, x_zp: int, out_zp: int,\n"
    "                qmin: int) -> i8[..., units] {\n"
    "  param w: i8[K, units] = zeros\n  param b: i32[units] = zeros\n"
    "  param m: i32[units] = zeros\n  param s: i32[units] = zeros\n"
    "  return qdense(x, w, b, m, s, x_zp = x_zp, out_zp = out_zp, qmin = qmin)\n}\n",
    "# An int8 convolution (NCHW), the same epilogue per output channel.\n"
    "fn qconv_layer(x: i8[B, C, H, W], filters: int, kh: int, kw: int, stride: int, padding: int,\n"
    "               dilation: int, x_zp: int, out_zp: int, qmin: int) -> i8[...] {\n"
    "  param w: i8[filters, C, kh, kw] = zeros\n  param b: i32[filters] = zeros\n"
    "  param m: i32[filters] = zeros\n  param s: i32[filters] = zeros\n"
    "  return qconv2d(x, w, b, m, s, stride = stride, padding = padding, dilation = dilation,\n"
    "                 x_zp = x_zp, out_zp = out_zp, qmin = qmin)\n}\n",
    "# A float dense layer (kept float).\n"
    "fn dense_layer(x: f32[..., K], units: int) -> f32[..., units] {\n"
    "  param w: f32[K, units] = zeros\n  param b: f32[units] = zeros\n"
    "  return x @ w + b\n}\n",
    "# A float dense layer without bias (kept float).\n"
    "fn dense_layer_nobias(x: f32[..., K], units: int) -> f32[..., units] {\n"
    "  param w: f32[K, units] = zeros\n  return x @ w\n}\n",
    "# A float convolution (kept float).\n"
    "fn conv_layer(x: f32[B, C, H, W], filters: int, kh: int, kw: int, stride: int,\n"
    "              padding: int, dilation: int, groups: int) -> f32[...] {\n"
    "  param w: f32[filters, C / groups, kh, kw] = zeros\n  param b: f32[filters] = zeros\n"
    "  y = conv(x, w, stride = stride, padding = padding, dilation = dilation, groups = groups)\n"
    "  return y + reshape(b, [filters, 1, 1])\n}\n",
    "# A float convolution without bias (kept float).\n"
    "fn conv_layer_nobias(x: f32[B, C, H, W], filters: int, kh: int, kw: int, stride: int,\n"
    "                     padding: int, dilation: int, groups: int) -> f32[...] {\n"
    "  param w: f32[filters, C / groups, kh, kw] = zeros\n"
    "  return conv(x, w, stride = stride, padding = padding, dilation = dilation, groups = "
    "groups)\n"
    "}\n",
    "# An int8 grouped convolution (depthwise when groups = C): output channel o reads the\n"
    "# C / groups input channels of its group o / (filters / groups); the same epilogue.\n"
    "fn qconv_group_layer(x: i8[B, C, H, W], filters: int, kh: int, kw: int, stride: int,\n"
    "                     padding: int, dilation: int, groups: int, x_zp: int, out_zp: int,\n"
    "                     qmin: int) -> i8[...] {\n"
    "  param w: i8[filters, C / groups, kh, kw] = zeros\n  param b: i32[filters] = zeros\n"
    "  param m: i32[filters] = zeros\n  param s: i32[filters] = zeros\n"
    "  return qconv2d(x, w, b, m, s, stride = stride, padding = padding, dilation = dilation,\n"
    "                 groups = groups, x_zp = x_zp, out_zp = out_zp, qmin = qmin)\n}\n",
};

static const char *const fn_names[FN_COUNT] = {
    "qdense_layer", "qconv_layer",       "dense_layer",      "dense_layer_nobias",
    "conv_layer",   "conv_layer_nobias", "qconv_group_layer"};

/* names a binding must not take: keywords, builtins the text calls, the fns above */
static const char *const reserved[] = {
    "const",       "import",     "fn",        "param",      "model",        "output",
    "return",      "train",      "as",        "true",       "false",        "if",
    "else",        "scan",       "int",       "float",      "bool",         "step",
    "minimize",    "params",     "optimizer", "N",          "f32",          "f64",
    "i32",         "i64",        "u8",        "i8",         "relu",         "softmax",
    "log_softmax", "sum",        "mean",      "max",        "reshape",      "transpose",
    "one_hot",     "cast",       "quantize",  "dequantize", "qdense",       "qconv2d",
    "conv",        "max_pool2d", "exp",       "log",        "sqrt",         "abs",
    "sign",        "sigmoid",    "tanh",      "erf",        "sin",          "cos",
    "maximum",     "minimum",    "pow",       "where",      "broadcast_to", "stop_gradient",
    "fill",        "qadd",       "concat",    "qsoftmax",   "requantize"};

typedef struct Writer {
  QPlan *p;
  const Graph *g;
  FILE *f;            /* the model body */
  const char **fname; /* per node: its float form's binding (or literal), or NULL */
  const char **qname; /* per node: its int8 form's binding, or NULL */
  char **used;        /* binding names taken */
  int n_used;
  bool fn_used[FN_COUNT];
  int64_t batch; /* dim 0 of the first input: written as N */
  bool ok;       /* false after out of memory */
  bool failed;   /* a node's numbers do not fit TFLite's rules (reported) */
} Writer;

/* ---- names ----------------------------------------------------------------------------------- */

static bool taken(const Writer *w, const char *s) {
  for (size_t k = 0; k < sizeof reserved / sizeof reserved[0]; k++)
    if (strcmp(reserved[k], s) == 0) return true;
  for (int k = 0; k < w->n_used; k++)
    if (strcmp(w->used[k], s) == 0) return true;
  return false;
}

/* a fresh binding name from base (sanitized; "_<id>" added when taken); malloc'd, and kept */
static char *claim(Writer *w, const char *base, const char *suffix, NodeId id) {
  char s[200];
  snprintf(s, sizeof s, "%s%s%s", base && *base ? "" : "t", base ? base : "", suffix);
  for (char *c = s; *c; c++)
    if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
          (c > s && *c >= '0' && *c <= '9')))
      *c = '_';
  if (base && *base && taken(w, s))
    snprintf(s + strlen(s), sizeof s - strlen(s), "_%u", id);
  else if (!base || !*base)
    snprintf(s + strlen(s), sizeof s - strlen(s), "%u", id);
  char *name = strdup(s);
  if (!name) w->ok = false;
  w->used[w->n_used++] = name;
  return name;
}

/* a node's own name: the model output it is, else its binding name */
static const char *base_name(const Writer *w, NodeId id) {
  for (int o = 0; o < w->p->n_outputs; o++)
    if (w->g->outputs[o].node == id) return w->g->outputs[o].name;
  return graph_node(w->g, id)->name;
}

static void number(char *buf, size_t size, double v, DType t) {
  if (!dtype_is_float(t)) {
    snprintf(buf, size, "%lld", (long long)v);
    return;
  }
  snprintf(buf, size, "%.17g", v);
  if (!strpbrk(buf, ".eEn")) strncat(buf, ".0", size - strlen(buf) - 1);
  if (v < 0) { /* a negative literal as an operand: parenthesized */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "(%s)", buf);
    snprintf(buf, size, "%s", tmp);
  }
}

/* ---- float and int8 forms ------------------------------------------------------------------ */

static const QObs *obs_of(const Writer *w, NodeId id) {
  return &w->p->obs[w->p->obs_of[id]];
}

static const char *fform(Writer *w, NodeId id) {
  if (w->fname[id]) return w->fname[id];
  if (w->p->role[id] == QR_LITERAL) {
    char buf[64];
    const Node *n = graph_node(w->g, id);
    number(buf, sizeof buf, n->attr.constant.value, n->dtype);
    w->fname[id] = w->used[w->n_used++] = strdup(buf); /* freed with the names */
    if (!w->fname[id]) w->ok = false;
    return w->fname[id] ? w->fname[id] : "0";
  }
  const QObs *o = obs_of(w, id); /* an int8 tensor: dequantize it */
  w->fname[id] = claim(w, w->qname[id], "_f", id);
  fprintf(w->f, "  %s = dequantize(%s, %.9g, %d)\n", w->fname[id], w->qname[id], o->scale, o->zp);
  return w->fname[id];
}

static const char *qform(Writer *w, NodeId id) {
  if (w->qname[id]) return w->qname[id];
  const QObs *o = obs_of(w, id);
  const char *f = fform(w, id);
  w->qname[id] = claim(w, f, "_q", id);
  fprintf(w->f, "  %s = quantize(%s, %.9g, %d)  # %s: [%.6g, %.6g]\n", w->qname[id], f, o->scale,
          o->zp, o->what, o->lo, o->hi);
  return w->qname[id];
}

/* ---- ops ----------------------------------------------------------------------------------- */

static const char *binary_symbol(OpKind op) {
  switch (op) {
  case OP_ADD:
    return "+";
  case OP_SUB:
    return "-";
  case OP_MUL:
    return "*";
  case OP_DIV:
    return "/";
  case OP_LT:
    return "<";
  case OP_LE:
    return "<=";
  case OP_GT:
    return ">";
  case OP_GE:
    return ">=";
  case OP_EQ:
    return "==";
  case OP_NE:
    return "!=";
  default:
    return NULL;
  }
}

static const char *call_name(OpKind op) {
  switch (op) {
  case OP_EXP:
  case OP_LOG:
  case OP_SQRT:
  case OP_ABS:
  case OP_SIGN:
  case OP_RELU:
  case OP_SIGMOID:
  case OP_TANH:
  case OP_ERF:
  case OP_SIN:
  case OP_COS:
  case OP_MAXIMUM:
  case OP_MINIMUM:
  case OP_POW:
  case OP_WHERE:
    return ir_ops[op].name;
  case OP_STOP_GRAD:
    return "stop_gradient";
  default:
    return NULL;
  }
}

static bool pool_symmetric(const Node *n) {
  const struct IrConvAttr *c = &n->attr.conv;
  return c->kernel[0] == c->kernel[1] && c->stride[0] == c->stride[1] &&
         c->dilation[0] == c->dilation[1] && c->pad[0] == c->pad[1] && c->pad[1] == c->pad[2] &&
         c->pad[2] == c->pad[3];
}

const char *qwrite_op_unsupported(const Graph *g, NodeId id) {
  const Node *n = graph_node(g, id);
  if (binary_symbol(n->op) || call_name(n->op)) return NULL;
  switch (n->op) {
  case OP_NEG:
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
  case OP_RESHAPE:
  case OP_TRANSPOSE:
  case OP_BROADCAST:
  case OP_ONE_HOT:
  case OP_CAST:
    return NULL;
  case OP_MATMUL:
    return graph_node(g, n->in[0])->op == OP_PARAM || graph_node(g, n->in[1])->op == OP_PARAM
               ? "a product by a param that is not a dense layer (transposed, or shared)"
               : NULL;
  case OP_MAX_POOL2D:
    return pool_symmetric(n) ? NULL : "a pooling window that differs per axis";
  case OP_CONST:
    return n->attr.constant.data              ? "a constant tensor of several values"
           : isfinite(n->attr.constant.value) ? NULL
                                              : "a constant that is not finite";
  default:
    return "no builtin of the written model computes it";
  }
}

static void dims(const Writer *w, const Shape *s, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < s->rank && k < size; i++)
    k += (size_t)(i == 0 && s->dim[0] == w->batch && s->rank > 1
                      ? snprintf(buf + k, size - k, "N")
                      : snprintf(buf + k, size - k, "%s%lld", i ? ", " : "", (long long)s->dim[i]));
  if (k < size) snprintf(buf + k, size - k, "]");
}

static void axes(uint32_t bits, int rank, char *buf, size_t size) {
  int n = 0;
  size_t k = 0;
  for (int i = 0; i < rank; i++)
    n += (bits >> i) & 1;
  k += (size_t)snprintf(buf, size, "%s", n == 1 ? "" : "[");
  for (int i = 0, first = 1; i < rank && k < size; i++)
    if ((bits >> i) & 1)
      k += (size_t)snprintf(buf + k, size - k, "%s%d", first ? "" : ", ", i), first = 0;
  if (n != 1 && k < size) snprintf(buf + k, size - k, "]");
}

/* the expression of a generic float op over its operands' float forms */
static void op_expr(Writer *w, NodeId id, const char *in0, char *buf, size_t size) {
  const Node *n = graph_node(w->g, id);
  const char *a = in0, *b = n->n_in > 1 ? fform(w, n->in[1]) : "";
  char d[256];
  if (binary_symbol(n->op)) {
    snprintf(buf, size, "%s %s %s", a, binary_symbol(n->op), b);
  } else if (n->op == OP_WHERE) {
    snprintf(buf, size, "where(%s, %s, %s)", a, b, fform(w, n->in[2]));
  } else if (call_name(n->op)) {
    snprintf(buf, size, "%s(%s%s%s)", call_name(n->op), a, n->n_in > 1 ? ", " : "", b);
  } else if (n->op == OP_NEG) {
    snprintf(buf, size, "-%s", a);
  } else if (n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX) {
    snprintf(buf, size, "%s(%s, axis = %d)", ir_ops[n->op].name, a, n->attr.softmax.axis);
  } else if (n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_MAX) {
    axes(n->attr.reduce.axes, graph_node(w->g, n->in[0])->shape.rank, d, sizeof d);
    snprintf(buf, size, "%s(%s, axis = %s%s)", ir_ops[n->op].name, a, d,
             n->attr.reduce.keepdims ? ", keepdims = true" : "");
  } else if (n->op == OP_RESHAPE || n->op == OP_BROADCAST) {
    dims(w, &n->shape, d, sizeof d);
    snprintf(buf, size, "%s(%s, %s)", n->op == OP_RESHAPE ? "reshape" : "broadcast_to", a, d);
  } else if (n->op == OP_TRANSPOSE) {
    size_t k = (size_t)snprintf(buf, size, "transpose(%s, perm = [", a);
    for (int i = 0; i < n->shape.rank && k < size; i++)
      k += (size_t)snprintf(buf + k, size - k, "%s%d", i ? ", " : "", n->attr.transpose.perm[i]);
    if (k < size) snprintf(buf + k, size - k, "])");
  } else if (n->op == OP_ONE_HOT) {
    snprintf(buf, size, "one_hot(%s, %lld)", a, (long long)n->attr.one_hot.depth);
  } else if (n->op == OP_CAST) {
    snprintf(buf, size, "cast(%s, %s)", a, dtype_name(n->dtype));
  } else if (n->op == OP_MATMUL) {
    snprintf(buf, size, "%s%s%s @ %s%s%s", n->attr.matmul.trans_a ? "transpose(" : "", a,
             n->attr.matmul.trans_a ? ")" : "", n->attr.matmul.trans_b ? "transpose(" : "", b,
             n->attr.matmul.trans_b ? ")" : "");
  } else if (n->op == OP_MAX_POOL2D) {
    const struct IrConvAttr *c = &n->attr.conv;
    snprintf(buf, size, "max_pool2d(%s, %d, stride = %d, padding = %d, dilation = %d)", a,
             c->kernel[0], c->stride[0], c->pad[0], c->dilation[0]);
  } else if (n->op == OP_CONST) {
    dims(w, &n->shape, d, sizeof d);
    char v[64];
    number(v, sizeof v, n->attr.constant.value, n->dtype);
    snprintf(buf, size, "fill(%s, %s)", d, v);
  }
}

static void write_generic(Writer *w, NodeId id) {
  const Node *n = graph_node(w->g, id);
  char expr[1024];
  bool int8 = w->p->is_int8[id];
  const char *in0 = n->n_in == 0 ? "" : int8 ? qform(w, n->in[0]) : fform(w, n->in[0]);
  op_expr(w, id, in0, expr, sizeof expr);
  char *name = claim(w, base_name(w, id), "", id);
  if (int8) {
    w->qname[id] = name;
    fprintf(w->f, "  %s = %s%s\n", name, expr,
            n->op == OP_MAX_POOL2D ? "  # int8 max pooling (exact: the parameters stay)" : "");
    return;
  }
  w->fname[id] = name;
  fprintf(w->f, "  %s = %s\n", name, expr);
}

/* an int8 add (QR_QADD: the add, or the ReLU after it): TFLite's ADD parameters, each input
 * rescaled to 2 * max(s_a, s_b) with 20 bits of headroom, the sum to the output's scale
 * (tests/int8/tflite_ref.py add_params); a fused ReLU is the clamp's lower end */
static bool write_qadd(Writer *w, NodeId id, Diag *d) {
  const Node *n = graph_node(w->g, id);
  bool relu = n->op == OP_RELU;
  const Node *add = relu ? graph_node(w->g, n->in[0]) : n;
  const QObs *a = obs_of(w, add->in[0]), *b = obs_of(w, add->in[1]), *y = obs_of(w, id);
  double twice_max = 2.0 * fmax((double)a->scale, (double)b->scale);
  double real[3] = {(double)a->scale / twice_max, (double)b->scale / twice_max,
                    twice_max / ((double)(1 << 20) * (double)y->scale)};
  int32_t m[3], s[3];
  for (int k = 0; k < 3; k++)
    if (!rt_quant_multiplier(real[k], &m[k], &s[k])) {
      diag_error(d, n->loc, "the int8 add '%s': its multiplier %g needs a shift above 30", y->what,
                 real[k]);
      return false;
    }
  const char *qa = qform(w, add->in[0]), *qb = qform(w, add->in[1]);
  char *name = claim(w, base_name(w, id), "", id);
  w->qname[id] = name;
  fprintf(w->f,
          "  %s = qadd(%s, %s, %d, %d, %d, %d, %d, %d, %d, %d, %d%s)  # %s[%.6g, %.6g]: scale "
          "%.9g\n",
          name, qa, qb, a->zp, b->zp, y->zp, m[0], s[0], m[1], s[1], m[2], s[2],
          relu ? arena_printf(&w->p->m->arena, ", qmin = %d", y->zp > -128 ? y->zp : -128) : "",
          relu ? "relu " : "", y->lo, y->hi, y->scale);
  return true;
}

/* ---- softmax and concat of int8 tensors ---------------------------------------------------- */

/* TFLite's int8 softmax parameters of input scale s, beta 1 (softmax_params of
 * tests/int8/tflite_softmax.py): the Q31 multiplier and left shift of min(s * 2^26, 2^31 - 1),
 * and diff_min = -floor(31 * 2^26 / 2^shift); false when s * 2^26 <= 1 */
static bool softmax_params(float s, int32_t p[3]) {
  double real = fmin((double)s * 67108864.0, 2147483647.0);
  int32_t m, shift; /* the left shift may be 31: real / 2 has the same multiplier, shift - 1 */
  if (!(real > 1.0) || !rt_quant_multiplier(real / 2, &m, &shift)) return false;
  p[0] = m, p[1] = shift + 1;
  p[2] = -(int32_t)floor(31.0 * 67108864.0 / ldexp(1.0, p[1]));
  return true;
}

/* the int8 name of node id: its binding, `<output>_q` for a model output (whose name the
 * dequantized value takes) */
static char *int8_name(Writer *w, NodeId id) {
  for (int o = 0; o < w->p->n_outputs; o++)
    if (w->g->outputs[o].node == id) return claim(w, w->g->outputs[o].name, "_q", id);
  return claim(w, base_name(w, id), "", id);
}

/* an int8 softmax (its input int8, the last axis): qsoftmax, TFLite's reference kernel */
static bool write_qsoftmax(Writer *w, NodeId id, Diag *d) {
  const Node *n = graph_node(w->g, id);
  const QObs *x = obs_of(w, n->in[0]), *y = obs_of(w, id);
  int32_t p[3];
  if (!softmax_params(x->scale, p)) {
    diag_error(d, n->loc, "the int8 softmax '%s': its input scale %g is below 2^-26", y->what,
               (double)x->scale);
    return false;
  }
  const char *qx = qform(w, n->in[0]);
  w->qname[id] = int8_name(w, id);
  fprintf(w->f, "  %s = qsoftmax(%s, %d, %d, %d)  # int8 softmax: scale 1/256, zp -128\n",
          w->qname[id], qx, p[0], p[1], p[2]);
  return true;
}

/* one input of an int8 concat: copied when its parameters are the output's, else requantized
 * (TFLite's converter puts an int8 QUANTIZE before it); false when the ratio needs a shift > 30 */
static bool concat_input(Writer *w, NodeId in, const QObs *y, FILE *f, Diag *d) {
  const QObs *x = obs_of(w, in);
  const char *qx = qform(w, in);
  int32_t m, shift;
  if (x->scale == y->scale && x->zp == y->zp) {
    fputs(qx, f);
    return true;
  }
  if (!rt_quant_multiplier((double)x->scale / (double)y->scale, &m, &shift)) {
    diag_error(d, graph_node(w->g, y->node)->loc,
               "the int8 concat '%s': requantizing '%s' (scale %g) to %g needs a shift above 30",
               y->what, x->what, (double)x->scale, (double)y->scale);
    return false;
  }
  fprintf(f, "requantize(%s, %d, %d, x_zp = %d, out_zp = %d)", qx, m, shift, x->zp, y->zp);
  return true;
}

/* a concat: of int8 inputs (an int8 concat, is_int8) or of their float forms */
static bool write_concat(Writer *w, NodeId id, Diag *d) {
  NodeId in[64];
  int axis, n = qmatch_concat_inputs(w->g, NULL, id, in, 64, &axis);
  bool int8 = w->p->is_int8[id], ok = n >= 2;
  const QObs *y = int8 ? obs_of(w, id) : NULL;
  char *list = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&list, &len);
  if (!f) return w->ok = false;
  for (int k = 0; ok && k < n; k++) {
    fputs(k ? ", " : "", f);
    ok = int8 ? concat_input(w, in[k], y, f, d) : fputs(fform(w, in[k]), f) >= 0;
  }
  if (fclose(f) != 0) ok = w->ok = false;
  if (ok && int8) {
    w->qname[id] = int8_name(w, id);
    fprintf(w->f, "  %s = concat([%s], axis = %d)  # int8 [%.6g, %.6g]: scale %.9g\n", w->qname[id],
            list, axis, y->lo, y->hi, y->scale);
  } else if (ok) {
    w->fname[id] = claim(w, base_name(w, id), "", id);
    fprintf(w->f, "  %s = concat([%s], axis = %d)\n", w->fname[id], list, axis);
  }
  free(list);
  return ok;
}

/* ---- layers -------------------------------------------------------------------------------- */

static void write_layer(Writer *w, QLayer *L) {
  const Node *op = graph_node(w->g, L->op), *wt = graph_node(w->g, op->in[1]);
  const struct IrConvAttr *c = &op->attr.conv;
  const char *name = L->name; /* claimed by claim_names */
  const char *x = L->keep_float ? fform(w, L->x) : qform(w, L->x);
  L->x_name = arena_strdup(&w->p->m->arena, x);
  int64_t units = L->conv ? wt->shape.dim[0] : wt->shape.dim[1];
  if (L->keep_float) {
    int fn = (L->conv ? FN_CONV : FN_DENSE) + (L->b_param < 0);
    w->fn_used[fn] = true;
    fprintf(w->f, "  %s = %s%s(%s, %lld", name, L->relu ? "relu(" : "", fn_names[fn], x,
            (long long)units);
    if (L->conv)
      fprintf(w->f, ", %lld, %lld, stride = %d, padding = %d, dilation = %d, groups = %d",
              (long long)wt->shape.dim[2], (long long)wt->shape.dim[3], c->stride[0], c->pad[0],
              c->dilation[0], c->groups);
    fprintf(w->f, ")%s  # float\n", L->relu ? ")" : "");
    w->fname[L->out] = name;
    return;
  }
  const QObs *xo = &w->p->obs[L->x_obs], *yo = &w->p->obs[L->y_obs];
  int qmin = L->relu ? (yo->zp > -128 ? yo->zp : -128) : -128;
  int fn = !L->conv ? FN_QDENSE : c->groups != 1 ? FN_QCONV_GROUPS : FN_QCONV;
  w->fn_used[fn] = true;
  fprintf(w->f, "  %s = %s(%s, %lld, ", name, fn_names[fn], x, (long long)units);
  if (L->conv)
    fprintf(w->f, "%lld, %lld, stride = %d, padding = %d, dilation = %d, ",
            (long long)wt->shape.dim[2], (long long)wt->shape.dim[3], c->stride[0], c->pad[0],
            c->dilation[0]);
  if (fn == FN_QCONV_GROUPS) fprintf(w->f, "groups = %d, ", c->groups);
  fprintf(w->f, "x_zp = %d, out_zp = %d, qmin = %d)  # %s[%.6g, %.6g]: scale %.9g\n", xo->zp,
          yo->zp, qmin, L->relu ? "relu " : "", yo->lo, yo->hi, yo->scale);
  w->qname[L->out] = name;
}

/* ---- the weights --------------------------------------------------------------------------- */

static float *float_values(const Tensor *t) {
  int64_t n = shape_numel(&t->shape);
  float *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; v && i < n; i++)
    v[i] = (float)tensor_get(t, i);
  return v;
}

static const Tensor *trained(const QPlan *p, const RtTensorSet *fw, int param, const char *what,
                             Diag *d) {
  const TensorDecl *decl = &p->m->params[param];
  const Tensor *t = rt_set_find(fw, decl->name);
  char want[200], got[200];
  if (!t)
    diag_error(d, (SrcLoc){0}, "%s has no tensor '%s' (a param of %s)", what, decl->name,
               p->m->name);
  else if (!shape_equal(&t->shape, &decl->shape) || !dtype_is_float(t->dtype))
    diag_error(d, (SrcLoc){0}, "'%s' is %s%s in %s, the model wants %s%s", decl->name,
               dtype_name(t->dtype), shape_str(&t->shape, got, sizeof got), what,
               dtype_name(decl->dtype), shape_str(&decl->shape, want, sizeof want));
  else
    return t;
  return NULL;
}

static Tensor *add_tensor(RtTensorSet *out, const char *layer, const char *field, DType t,
                          const Shape *s) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", layer, field);
  return rt_set_add(out, name, t, s);
}

static bool copy_float(const QLayer *L, const Tensor *wt, const Tensor *bt, RtTensorSet *out) {
  Tensor *w = add_tensor(out, L->name, "w", DT_F32, &wt->shape);
  Tensor *b = bt ? add_tensor(out, L->name, "b", DT_F32, &bt->shape) : NULL;
  for (int64_t i = 0; w && i < shape_numel(&wt->shape); i++)
    tensor_set(w, i, tensor_get(wt, i));
  for (int64_t i = 0; b && i < shape_numel(&bt->shape); i++)
    tensor_set(b, i, tensor_get(bt, i));
  return w && (b || !bt);
}

/* the int8 weights, int32 bias, multipliers and shifts of one layer */
static bool quantize_layer(const QPlan *p, QLayer *L, const float *wf, const Shape *ws,
                           const Tensor *bt, bool per_channel, RtTensorSet *out, Diag *d) {
  int64_t o = L->conv ? ws->dim[0] : ws->dim[1], numel = shape_numel(ws);
  int64_t outer = L->conv ? 1 : ws->dim[0], inner = numel / o / outer;
  float *sw = malloc((size_t)o * sizeof *sw);
  Shape vs = shape_make(1, &o);
  Tensor *qw = add_tensor(out, L->name, "w", DT_I8, ws),
         *qb = add_tensor(out, L->name, "b", DT_I32, &vs);
  Tensor *qm = add_tensor(out, L->name, "m", DT_I32, &vs),
         *qs = add_tensor(out, L->name, "s", DT_I32, &vs);
  if (!sw || !qw || !qb || !qm || !qs) {
    free(sw);
    diag_error(d, (SrcLoc){0}, "out of memory");
    return false;
  }
  int32_t wmax = p->weight_max;
  rt_quant_weight_scales_max(wf, outer, o, inner, per_channel, wmax, sw);
  for (int64_t c = 1; !per_channel && c < o; c++)
    sw[c] = sw[0];
  float sx = p->obs[L->x_obs].scale, sy = p->obs[L->y_obs].scale;
  L->w_scale_min = INFINITY, L->w_scale_max = 0;
  bool ok = true;
  for (int64_t c = 0; c < o && ok; c++) {
    L->w_scale_min = fminf(L->w_scale_min, sw[c]), L->w_scale_max = fmaxf(L->w_scale_max, sw[c]);
    int32_t m, s, b = 0;
    double real = (double)sx * (double)sw[c] / (double)sy;
    if (!rt_quant_multiplier(real, &m, &s)) {
      diag_error(d, (SrcLoc){0},
                 "layer '%s', channel %lld: the requantization multiplier "
                 "s_x * s_w / s_y = %g needs a shift above 30",
                 L->name, (long long)c, real);
      ok = false;
    } else if (bt && !rt_quant_bias(tensor_get(bt, c), sx, sw[c], &b)) {
      diag_error(d, (SrcLoc){0},
                 "layer '%s', channel %lld: the bias %g at scale %g leaves "
                 "int32",
                 L->name, (long long)c, tensor_get(bt, c), (double)sx * sw[c]);
      ok = false;
    }
    tensor_set(qb, c, b), tensor_set(qm, c, m), tensor_set(qs, c, s);
  }
  for (int64_t i = 0; ok && i < numel; i++) {
    int64_t c = L->conv ? i / inner : i % o;
    tensor_set(qw, i, rt_quant_value(wf[i], sw[c], 0, -wmax, wmax));
  }
  free(sw);
  return ok;
}

static bool layer_weights(QPlan *p, QLayer *L, bool per_channel, const RtTensorSet *fw,
                          const char *what, RtTensorSet *out, Diag *d) {
  const Tensor *wt = trained(p, fw, L->w_param, what, d);
  const Tensor *bt = L->b_param >= 0 ? trained(p, fw, L->b_param, what, d) : NULL;
  if (!wt || (L->b_param >= 0 && !bt)) return false;
  if (L->keep_float)
    return copy_float(L, wt, bt, out) || (diag_error(d, (SrcLoc){0}, "out of memory"), false);
  float *wf = float_values(wt);
  bool ok = wf && quantize_layer(p, L, wf, &wt->shape, bt, per_channel, out, d);
  free(wf);
  return ok;
}

/* ---- the file ------------------------------------------------------------------------------ */

static void write_signature(Writer *w, FILE *f) {
  const Module *m = w->p->m;
  fprintf(f, "model %s(", m->name);
  for (int i = 0; i < m->n_inputs; i++) {
    char d[256];
    dims(w, &m->inputs[i].shape, d, sizeof d);
    if (m->inputs[i].shape.rank == 1 && m->inputs[i].shape.dim[0] == w->batch) strcpy(d, "[N]");
    fprintf(f, "%s%s: %s%s", i ? ", " : "", m->inputs[i].name, dtype_name(m->inputs[i].dtype), d);
  }
  fprintf(f, ") {\n");
}

/* the inputs' names (the data binds to them), then the layers' (their params' prefixes, which
 * the weights are named after): a layer named like an input or a builtin is renamed */
static void claim_names(Writer *w) {
  for (NodeId id = 0; id < w->g->n_nodes; id++)
    if (w->p->role[id] == QR_INPUT)
      w->fname[id] =
          claim(w, w->p->m->inputs[graph_node(w->g, id)->attr.source.index].name, "", id);
  for (int l = 0; l < w->p->n_layers; l++) {
    QLayer *L = &w->p->layers[l];
    const char *name = claim(w, L->name, "", L->out);
    L->name = name ? arena_strdup(&w->p->m->arena, name) : L->name;
  }
}

static void write_body(Writer *w, Diag *d) {
  for (NodeId id = 0; id < w->g->n_nodes; id++) {
    int role = w->p->role[id];
    if (role == QR_GENERIC && w->p->is_int8[id] && graph_node(w->g, id)->op == OP_SOFTMAX)
      w->failed |= !write_qsoftmax(w, id, d);
    else if (role == QR_CONCAT)
      w->failed |= !write_concat(w, id, d);
    else if (role == QR_GENERIC)
      write_generic(w, id);
    else if (role == QR_QADD && !write_qadd(w, id, d))
      w->failed = true;
    else if (role == QR_LAYER)
      for (int l = 0; l < w->p->n_layers; l++)
        if (w->p->layers[l].out == id) write_layer(w, &w->p->layers[l]);
  }
  for (int o = 0; o < w->p->n_outputs; o++) {
    const GraphOutput *out = &w->g->outputs[o];
    if (out->kind != OUT_VALUE) continue;
    if (w->p->is_int8[out->node] && !w->fname[out->node]) { /* dequantized as the output */
      const QObs *q = obs_of(w, out->node);
      fprintf(w->f, "  output %s = dequantize(%s, %.9g, %d)\n", out->name, w->qname[out->node],
              q->scale, q->zp);
      continue;
    }
    const char *f = fform(w, out->node);
    if (strcmp(f, out->name) == 0)
      fprintf(w->f, "  output %s\n", out->name);
    else
      fprintf(w->f, "  output %s = %s\n", out->name, f);
  }
}

static void write_train(const Writer *w, FILE *f) {
  const Module *m = w->p->m;
  if (m->n_steps == 0) return;
  const TrainStep *s = &m->steps[0];
  fprintf(f, "\n# the float model's (first) train step: it updates the float params only\n");
  fprintf(f, "train %s {\n  minimize %s\n  optimizer %s", m->name, s->loss, s->optimizer);
  for (int k = 0; k < s->n_optim_args; k++)
    fprintf(f, "%s%s = %.17g%s", k ? ", " : "(", s->optim_args[k].name, s->optim_args[k].value,
            k == s->n_optim_args - 1 ? ")" : "");
  fprintf(f, "\n}\n");
}

static bool assemble(Writer *w, const char *header, const char *body, char **text) {
  size_t len = 0;
  FILE *f = open_memstream(text, &len);
  if (!f) return false;
  fprintf(f, "%s\nconst N = %lld\n\n", header, (long long)w->batch);
  for (int k = 0; k < FN_COUNT; k++)
    if (w->fn_used[k]) fprintf(f, "%s\n", fn_text[k]);
  write_signature(w, f);
  fputs(body, f);
  fprintf(f, "}\n");
  write_train(w, f);
  return fclose(f) == 0 && w->ok;
}

bool qplan_write(QPlan *p, const QPlanOptions *o, const char *header, const RtTensorSet *fw,
                 const char *what, char **text, RtTensorSet *out, Diag *d) {
  const Graph *g = p->m->model;
  size_t n = g->n_nodes ? g->n_nodes : 1, body_len = 0;
  Writer w = {.p = p, .g = g, .ok = true};
  w.batch = p->m->n_inputs && p->m->inputs[0].shape.rank ? p->m->inputs[0].shape.dim[0] : -1;
  w.fname = calloc(n, sizeof *w.fname), w.qname = calloc(n, sizeof *w.qname);
  w.used = calloc(4 * n + 1, sizeof *w.used);
  char *body = NULL;
  bool ok = w.fname && w.qname && w.used;
  if (ok) claim_names(&w);
  for (int l = 0; ok && l < p->n_layers; l++)
    ok = layer_weights(p, &p->layers[l], o->per_channel, fw, what, out, d);
  if (ok && (w.f = open_memstream(&body, &body_len))) {
    write_body(&w, d);
    for (int k = 0; k < p->n_obs; k++) /* where the report finds each int8 tensor */
      p->obs[k].binding =
          w.qname[p->obs[k].node] ? arena_strdup(&p->m->arena, w.qname[p->obs[k].node]) : NULL;
    ok = fclose(w.f) == 0 && w.ok && !w.failed && assemble(&w, header, body, text);
  }
  if (!ok && !d->n_errors) diag_error(d, (SrcLoc){0}, "out of memory writing the model");
  for (int k = 0; k < w.n_used; k++)
    free(w.used[k]);
  free((void *)w.fname), free((void *)w.qname), free(w.used), free(body);
  return ok;
}
