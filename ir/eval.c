/* ir/eval.c — the reference evaluator: the `eval` column of ops.def and ir_eval.
 *
 * The oracle every pass and backend is compared with, so it favours obviousness over speed:
 * plain loops, every value computed in double, each node's result rounded to its dtype when
 * stored (tensor_set: (double)(float)x for f32, integers truncated toward zero and exact).
 * Invariants: eval hooks receive an `out` already allocated with the node's dtype and shape,
 * and inputs whose shapes are the inferred ones (ir_eval checks the caller's source tensors).
 * NaN propagates through maximum/minimum/max like torch.maximum / torch.amax.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir_internal.h"

/* out[i] = src[j]: the bytes when the dtypes agree (an i64 beyond 2^53 survives the copy),
 * else through double like every other op */
static void copy_element(Tensor *out, int64_t i, const Tensor *src, int64_t j) {
  if (out->dtype == src->dtype) {
    size_t size = dtype_size(out->dtype);
    memcpy((char *)out->data + (size_t)i * size, (const char *)src->data + (size_t)j * size, size);
  } else {
    tensor_set(out, i, tensor_get(src, j));
  }
}

static void copy_elements(const Tensor *src, Tensor *out) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++)
    copy_element(out, i, src, i);
}

/* ---- sources ----------------------------------------------------------------------------- */

void eval_input(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  copy_elements(in[0], out);
}
void eval_param(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  copy_elements(in[0], out);
}
void eval_state(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  copy_elements(in[0], out);
}

void eval_const(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape);
  const double *data = n->attr.constant.data;
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i, data ? data[i] : n->attr.constant.value);
}

/* ---- elementwise ------------------------------------------------------------------------- */

static double nan_max(double a, double b) {
  return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
}
static double nan_min(double a, double b) {
  return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
}

static double binary_apply(OpKind op, double a, double b) {
  switch (op) {
  case OP_ADD:
    return a + b;
  case OP_SUB:
    return a - b;
  case OP_MUL:
    return a * b;
  case OP_DIV:
    return a / b;
  case OP_MAXIMUM:
    return nan_max(a, b);
  case OP_MINIMUM:
    return nan_min(a, b);
  case OP_POW:
    return pow(a, b);
  case OP_LT:
    return a < b ? 1.0 : 0.0;
  case OP_LE:
    return a <= b ? 1.0 : 0.0;
  case OP_GT:
    return a > b ? 1.0 : 0.0;
  case OP_GE:
    return a >= b ? 1.0 : 0.0;
  case OP_EQ:
    return a == b ? 1.0 : 0.0;
  case OP_NE:
    return a != b ? 1.0 : 0.0;
  default:
    break;
  }
  IR_ASSERT(!"eval_binary: not a binary op");
  return 0;
}

/* Integer + - * wrap (two's complement, like NumPy and PyTorch) and / truncates toward zero,
 * with x / 0 = 0 and MIN / -1 = MIN (wrapped): exact in uint64, the low bits stored. The
 * generated C computes the same in the unsigned type of the element's width (loops.c). */
static bool int_wraps(const Node *n) {
  return !dtype_is_float(n->dtype) &&
         (n->op == OP_ADD || n->op == OP_SUB || n->op == OP_MUL || n->op == OP_DIV);
}

static uint64_t int_binary(OpKind op, int64_t a, int64_t b) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case OP_ADD:
    return ua + ub;
  case OP_SUB:
    return ua - ub;
  case OP_MUL:
    return ua * ub;
  default: /* OP_DIV */
    return b == 0 ? 0 : b == -1 ? 0 - ua : (uint64_t)(a / b);
  }
}

void eval_binary(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->shape, out->shape.rank, sa);
  ir_broadcast_strides(&in[1]->shape, out->shape.rank, sb);
  int64_t count = shape_numel(&out->shape);
  bool wraps = int_wraps(n);
  for (int64_t i = 0; i < count; i++) {
    int64_t ia = ir_strided_offset(i, &out->shape, sa);
    int64_t ib = ir_strided_offset(i, &out->shape, sb);
    if (wraps)
      tensor_set_wrap(out, i,
                      int_binary(n->op, tensor_get_int(in[0], ia), tensor_get_int(in[1], ib)));
    else
      tensor_set(out, i, binary_apply(n->op, tensor_get(in[0], ia), tensor_get(in[1], ib)));
  }
}

static double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + exp(-x));
  double e = exp(x); /* never overflows for x < 0 */
  return e / (1.0 + e);
}

static double unary_apply(OpKind op, double x) {
  switch (op) {
  case OP_NEG:
    return -x;
  case OP_EXP:
    return exp(x);
  case OP_LOG:
    return log(x);
  case OP_SQRT:
    return sqrt(x);
  case OP_ABS:
    return fabs(x);
  case OP_SIGN:
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* sign(±0) = ±0, sign(NaN) = NaN */
  case OP_RELU:
    return x > 0 ? x : 0.0;
  case OP_SIGMOID:
    return sigmoid(x);
  case OP_TANH:
    return tanh(x);
  case OP_ERF:
    return erf(x);
  case OP_SIN:
    return sin(x);
  case OP_COS:
    return cos(x);
  case OP_STOP_GRAD:
    return x;
  case OP_CAST:
    return x; /* tensor_set rounds (float) or truncates (integer) */
  default:
    break;
  }
  IR_ASSERT(!"eval_unary: not a unary op");
  return 0;
}

double ir_eval_elementwise(OpKind op, double a, double b) {
  IR_ASSERT(ir_ops[op].fusion == FUSE_ELEMWISE && (ir_ops[op].arity == 1 || ir_ops[op].arity == 2));
  return ir_ops[op].arity == 1 ? unary_apply(op, a) : binary_apply(op, a, b);
}

void eval_unary(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape);
  if (!dtype_is_float(n->dtype) && (n->op == OP_NEG || n->op == OP_ABS)) {
    /* -MIN and |MIN| wrap to MIN, as in the generated C */
    for (int64_t i = 0; i < count; i++) {
      int64_t x = tensor_get_int(in[0], i);
      tensor_set_wrap(out, i, n->op == OP_NEG || x < 0 ? 0 - (uint64_t)x : (uint64_t)x);
    }
    return;
  }
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i, unary_apply(n->op, tensor_get(in[0], i)));
}

/* ---- structure --------------------------------------------------------------------------- */

/* strides (in elements) of the batch dims of a matmul operand, broadcast to the out batch */
static void matmul_batch_strides(const Shape *s, const Shape *out_batch, int64_t *strides) {
  Shape batch = shape_make(s->rank - 2, s->dim);
  int64_t own[IR_MAX_RANK];
  ir_broadcast_strides(&batch, out_batch->rank, own);
  int64_t matrix = s->dim[s->rank - 2] * s->dim[s->rank - 1];
  for (int i = 0; i < out_batch->rank; i++)
    strides[i] = own[i] * matrix;
}

void eval_matmul(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const Shape *os = &out->shape, *as = &in[0]->shape, *bs = &in[1]->shape;
  Shape batch = shape_make(os->rank - 2, os->dim);
  int64_t M = os->dim[os->rank - 2], N = os->dim[os->rank - 1];
  int64_t K = n->attr.matmul.trans_a ? as->dim[as->rank - 2] : as->dim[as->rank - 1];
  int64_t a_cols = as->dim[as->rank - 1], b_cols = bs->dim[bs->rank - 1];
  int64_t ab[IR_MAX_RANK], bb[IR_MAX_RANK];
  matmul_batch_strides(as, &batch, ab);
  matmul_batch_strides(bs, &batch, bb);
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  int64_t batches = shape_numel(&batch);
  bool integer =
      !dtype_is_float(out->dtype) && in[0]->dtype == out->dtype && in[1]->dtype == out->dtype;
  for (int64_t p = 0; p < batches; p++) {
    int64_t a0 = ir_strided_offset(p, &batch, ab), b0 = ir_strided_offset(p, &batch, bb);
    for (int64_t i = 0; i < M; i++) {
      for (int64_t j = 0; j < N; j++) {
        double acc = 0;
        uint64_t iacc = 0; /* integers: exact, wrapping (the low bits stored) */
        for (int64_t k = 0; k < K; k++) {
          int64_t ai = a0 + (ta ? k * a_cols + i : i * a_cols + k);
          int64_t bi = b0 + (tb ? j * b_cols + k : k * b_cols + j);
          if (integer)
            iacc += (uint64_t)tensor_get_int(in[0], ai) * (uint64_t)tensor_get_int(in[1], bi);
          else
            acc += tensor_get(in[0], ai) * tensor_get(in[1], bi);
        }
        if (integer)
          tensor_set_wrap(out, (p * M + i) * N + j, iacc);
        else
          tensor_set(out, (p * M + i) * N + j, acc);
      }
    }
  }
}

/* softmax/log_softmax along one axis: view the tensor as [outer, len, inner] */
void eval_softmax(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const Shape *s = &out->shape;
  int axis = n->attr.softmax.axis;
  int64_t len = s->dim[axis], inner = 1, outer = 1;
  for (int i = axis + 1; i < s->rank; i++)
    inner *= s->dim[i];
  for (int i = 0; i < axis; i++)
    outer *= s->dim[i];
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t r = 0; r < inner; r++) {
      int64_t base = o * len * inner + r;
      double mx = -INFINITY, sum = 0;
      for (int64_t k = 0; k < len; k++)
        mx = fmax(mx, tensor_get(in[0], base + k * inner));
      for (int64_t k = 0; k < len; k++)
        sum += exp(tensor_get(in[0], base + k * inner) - mx);
      for (int64_t k = 0; k < len; k++) {
        double x = tensor_get(in[0], base + k * inner) - mx;
        tensor_set(out, base + k * inner, n->op == OP_SOFTMAX ? exp(x) / sum : x - log(sum));
      }
    }
  }
}

/* An integer reduction, exactly: SUM wraps in the element's width (as + does: accumulated in
 * uint64, its low bits stored), MEAN is that sum divided by the count, truncated toward zero
 * (NumPy's mean with the element's dtype), MAX compares the values themselves (an i64 above
 * 2^53 has no exact double). */
static void reduce_int(const Node *n, const Tensor *in, Tensor *out, const int64_t *ostr,
                       int64_t reduced) {
  int64_t count_out = shape_numel(&out->shape), count_in = shape_numel(&in->shape);
  bool sign = out->dtype != DT_U8;
  uint64_t lowest = n->op == OP_MAX && sign ? 1ull << (8 * dtype_size(out->dtype) - 1) : 0;
  for (int64_t o = 0; o < count_out; o++)
    tensor_set_wrap(out, o, lowest); /* 0, or the smallest value (its bits) */
  for (int64_t i = 0; i < count_in; i++) {
    int64_t o = ir_strided_offset(i, &in->shape, ostr), x = tensor_get_int(in, i);
    int64_t acc = tensor_get_int(out, o);
    if (n->op != OP_MAX)
      tensor_set_wrap(out, o, (uint64_t)acc + (uint64_t)x);
    else if (x > acc)
      tensor_set_wrap(out, o, (uint64_t)x);
  }
  if (n->op == OP_MEAN && reduced > 0)
    for (int64_t o = 0; o < count_out; o++)
      tensor_set_wrap(out, o, (uint64_t)(tensor_get_int(out, o) / reduced));
}

void eval_reduce(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  const Shape *is = &in[0]->shape;
  uint32_t axes = n->attr.reduce.axes;
  /* strides of the output as seen from the input: 0 along reduced axes */
  int64_t ostr[IR_MAX_RANK], st = 1;
  int64_t reduced = 1;
  for (int i = is->rank - 1; i >= 0; i--) {
    if (axes & (1u << i)) {
      ostr[i] = 0;
      reduced *= is->dim[i];
    } else {
      ostr[i] = st;
      st *= is->dim[i];
    }
  }
  if (!dtype_is_float(out->dtype)) {
    reduce_int(n, in[0], out, ostr, reduced);
    return;
  }
  int64_t count_out = shape_numel(&out->shape), count_in = shape_numel(is);
  double *acc = malloc((size_t)(count_out ? count_out : 1) * sizeof *acc);
  IR_ASSERT(acc != NULL);
  for (int64_t o = 0; o < count_out; o++)
    acc[o] = n->op == OP_MAX ? -INFINITY : 0.0;
  for (int64_t i = 0; i < count_in; i++) {
    int64_t o = ir_strided_offset(i, is, ostr);
    double x = tensor_get(in[0], i);
    acc[o] = n->op == OP_MAX ? nan_max(acc[o], x) : acc[o] + x;
  }
  for (int64_t o = 0; o < count_out; o++)
    tensor_set(out, o, n->op == OP_MEAN ? acc[o] / (double)reduced : acc[o]);
  free(acc);
}

void eval_reshape(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  copy_elements(in[0], out);
}

void eval_transpose(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t own[IR_MAX_RANK], str[IR_MAX_RANK];
  ir_strides(&in[0]->shape, own);
  for (int i = 0; i < out->shape.rank; i++)
    str[i] = own[n->attr.transpose.perm[i]];
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++)
    copy_element(out, i, in[0], ir_strided_offset(i, &out->shape, str));
}

void eval_broadcast_to(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t str[IR_MAX_RANK];
  ir_broadcast_strides(&in[0]->shape, out->shape.rank, str);
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++)
    copy_element(out, i, in[0], ir_strided_offset(i, &out->shape, str));
}

void eval_one_hot(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t depth = n->attr.one_hot.depth, count = shape_numel(&in[0]->shape);
  for (int64_t i = 0; i < count; i++) {
    double k = tensor_get(in[0], i);
    if (k >= 0 && k < (double)depth) tensor_set(out, i * depth + (int64_t)k, 1.0);
  }
}

/* ---- driver ------------------------------------------------------------------------------ */

typedef void (*EvalFn)(const Graph *, const Node *, const Tensor *[], Tensor *);
static const EvalFn eval_table[OP_COUNT] = {
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower) [OP_##e] = eval,
#include "ops.def"
#undef OP
};

/* the caller's tensor for a source node, checked against its declaration; NULL on error */
static const Tensor *source_tensor(const Graph *g, const Node *n, const Tensor *inputs,
                                   const Tensor *params, const Tensor *states, Diag *d) {
  const Module *m = g->module;
  const Tensor *tab = n->op == OP_INPUT ? inputs : n->op == OP_PARAM ? params : states;
  const TensorDecl *decl = n->op == OP_INPUT   ? &m->inputs[n->attr.source.index]
                           : n->op == OP_PARAM ? &m->params[n->attr.source.index]
                                               : &m->states[n->attr.source.index];
  const char *kind = ir_ops[n->op].name;
  if (!tab || !tab[n->attr.source.index].data) {
    IR_ERROR(d, n->loc, "eval: no value given for %s %d '%s'", kind, (int)n->attr.source.index,
             decl->name);
    return NULL;
  }
  const Tensor *t = &tab[n->attr.source.index];
  char want[200], got[200];
  if (t->dtype != n->dtype || !shape_equal(&t->shape, &n->shape)) {
    IR_ERROR(d, n->loc, "eval: %s '%s' expects %s%s, got %s%s", kind, decl->name,
             dtype_name(n->dtype), shape_str(&n->shape, want, sizeof want), dtype_name(t->dtype),
             shape_str(&t->shape, got, sizeof got));
    return NULL;
  }
  return t;
}

void ir_eval_values_free(const Graph *g, Tensor *values) {
  if (!values) return;
  for (uint32_t i = 0; i < g->n_nodes; i++)
    tensor_free(&values[i]);
  free(values);
}

static bool eval_node(const Graph *g, uint32_t id, Tensor *vals, const Tensor *inputs,
                      const Tensor *params, const Tensor *states, Diag *d) {
  const Node *n = &g->nodes[id];
  const Tensor *in[IR_MAX_INPUTS] = {NULL};
  if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE) {
    in[0] = source_tensor(g, n, inputs, params, states, d);
    if (!in[0]) return false;
  }
  if (n->op == OP_SCAN_ARG) { /* a scan body: eval_scan passes its args as `inputs` */
    in[0] = inputs ? &inputs[n->attr.scan_arg.index] : NULL;
    if (!in[0] || !in[0]->data || !shape_equal(&in[0]->shape, &n->shape)) {
      IR_ERROR(d, n->loc, "eval: scan_arg %d has no value of its type",
               (int)n->attr.scan_arg.index);
      return false;
    }
  }
  for (int k = 0; k < n->n_in; k++) {
    if (n->in[k] >= id) {
      IR_ERROR(d, n->loc, "eval: node %%%u uses %%%u, which is not defined before it", (unsigned)id,
               (unsigned)n->in[k]);
      return false;
    }
    in[k] = &vals[n->in[k]];
  }
  if (!tensor_alloc(&vals[id], n->dtype, &n->shape)) {
    IR_ERROR(d, n->loc, "eval: out of memory for node %%%u", (unsigned)id);
    return false;
  }
  eval_table[n->op](g, n, in, &vals[id]);
  return true;
}

bool ir_eval(const Graph *g, const Tensor *inputs, const Tensor *params, const Tensor *states,
             Tensor *outs, Tensor **values, Diag *d) {
  Tensor *vals = calloc(g->n_nodes ? g->n_nodes : 1, sizeof *vals);
  IR_ASSERT(vals != NULL);
  bool ok = true;
  for (uint32_t id = 0; ok && id < g->n_nodes; id++)
    ok = eval_node(g, id, vals, inputs, params, states, d);
  for (int i = 0; ok && i < g->n_outputs; i++) {
    if (g->outputs[i].node >= g->n_nodes) {
      IR_ERROR(d, (SrcLoc){0}, "eval: output '%s' refers to a missing node", g->outputs[i].name);
      ok = false;
    }
  }
  int done = 0;
  for (; ok && done < g->n_outputs; done++) {
    const Tensor *v = &vals[g->outputs[done].node];
    ok = tensor_alloc(&outs[done], v->dtype, &v->shape);
    size_t bytes = (size_t)shape_numel(&v->shape) * dtype_size(v->dtype);
    if (ok)
      memcpy(outs[done].data, v->data, bytes);
    else
      IR_ERROR(d, (SrcLoc){0}, "eval: out of memory");
  }
  if (!ok) {
    for (int i = 0; i < done; i++)
      tensor_free(&outs[i]);
  }
  if (ok && values) {
    *values = vals;
  } else {
    ir_eval_values_free(g, vals);
    if (values) *values = NULL;
  }
  return ok;
}
