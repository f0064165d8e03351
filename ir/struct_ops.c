/* ir/struct_ops.c — infer and eval hooks of the issue-4 structural ops: WHERE, SLICE,
 * UNSLICE, GATHER and SCATTER_ADD (ERF shares infer_unary/eval_unary).
 *
 * Semantics (the reference every backend is compared with):
 *   where(c, a, b)        c != 0 ? a : b, all three NumPy-broadcast; a NaN c counts as true
 *   slice(x)              y[k] = x[begin + k * step] per axis (attr.slice)
 *   unslice(x)            zeros of attr.slice.dim with y[begin + k * step] = x[k] (pad)
 *   gather(table, ids)    y[i..., j...] = table[ids[i...], j...]; ids out of [0, rows) give 0
 *   scatter_add(src, ids) zeros [rows, ...] with y[ids[i...], j...] += src[i..., j...];
 *                         ids out of range are skipped
 *   random(seed, step)    element i: lathe_rng_uniform/normal(seed, step, stream, i) (rng.h)
 *   dropout(x, seed, step) x[i] / (1 - p) where uniform(seed, step, stream, i) >= p, else 0
 * Invariants: infer checks every window lies inside its tensor, so eval and codegen index
 * without bounds checks except for the data-dependent ids.
 */
#include <string.h>

#include "ir_internal.h"
#include "rng.h"

#define SHAPE_BUF 200

static const Node *in_node(const Graph *g, const Node *n, int i) {
  return &g->nodes[n->in[i]];
}

/* ---- where ------------------------------------------------------------------------------- */

bool infer_where(Graph *g, Node *n, Diag *d) {
  const Node *c = in_node(g, n, 0), *a = in_node(g, n, 1), *b = in_node(g, n, 2);
  char sc[SHAPE_BUF], sa[SHAPE_BUF], sb[SHAPE_BUF];
  shape_str(&c->shape, sc, sizeof sc);
  shape_str(&a->shape, sa, sizeof sa);
  shape_str(&b->shape, sb, sizeof sb);
  if (a->dtype != b->dtype) {
    IR_ERROR(d, n->loc, "where: branch dtypes differ: %s%s vs %s%s", dtype_name(a->dtype), sa,
             dtype_name(b->dtype), sb);
    return false;
  }
  Shape ab, out;
  if (!shape_broadcast(&a->shape, &b->shape, &ab) || !shape_broadcast(&c->shape, &ab, &out)) {
    IR_ERROR(d, n->loc, "where: shapes cannot be broadcast together: condition %s, %s and %s", sc,
             sa, sb);
    return false;
  }
  n->shape = out;
  n->dtype = a->dtype;
  return true;
}

void eval_where(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t st[3][IR_MAX_RANK];
  for (int k = 0; k < 3; k++)
    ir_broadcast_strides(&in[k]->shape, out->shape.rank, st[k]);
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) {
    double c = tensor_get(in[0], ir_strided_offset(i, &out->shape, st[0]));
    int k = c != 0 ? 1 : 2;
    tensor_set(out, i, tensor_get(in[k], ir_strided_offset(i, &out->shape, st[k])));
  }
}

/* ---- slice / unslice --------------------------------------------------------------------- */

/* checks the window of `small` inside `large` and zeroes the attr entries beyond the rank */
static bool check_window(Node *n, const Shape *small, const Shape *large, Diag *d) {
  char ss[SHAPE_BUF], sl[SHAPE_BUF];
  for (int i = 0; i < small->rank; i++) {
    int64_t b = n->attr.slice.begin[i], st = n->attr.slice.step[i];
    if (b < 0 || st < 1 || small->dim[i] < 1 || b + (small->dim[i] - 1) * st >= large->dim[i]) {
      IR_ERROR(d, n->loc,
               "%s: window begin %lld step %lld of %lld elements on axis %d does not fit: "
               "%s inside %s",
               ir_ops[n->op].name, (long long)b, (long long)st, (long long)small->dim[i], i,
               shape_str(small, ss, sizeof ss), shape_str(large, sl, sizeof sl));
      return false;
    }
  }
  for (int i = small->rank; i < IR_MAX_RANK; i++)
    n->attr.slice.begin[i] = 0, n->attr.slice.step[i] = 0, n->attr.slice.dim[i] = 0;
  return true;
}

bool infer_slice(Graph *g, Node *n, Diag *d) {
  const Node *x = in_node(g, n, 0);
  int rank = x->shape.rank;
  Shape attr_shape;
  memset(&attr_shape, 0, sizeof attr_shape);
  attr_shape.rank = rank;
  char sx[SHAPE_BUF];
  for (int i = 0; i < rank; i++) {
    attr_shape.dim[i] = n->attr.slice.dim[i];
    if (attr_shape.dim[i] < 1) {
      IR_ERROR(d, n->loc, "%s: dim %d of the window is %d (must be >= 1) for input %s",
               ir_ops[n->op].name, i, (int)n->attr.slice.dim[i],
               shape_str(&x->shape, sx, sizeof sx));
      return false;
    }
  }
  bool is_slice = n->op == OP_SLICE;
  const Shape *small = is_slice ? &attr_shape : &x->shape;
  const Shape *large = is_slice ? &x->shape : &attr_shape;
  if (!check_window(n, small, large, d)) return false;
  if (x->shape.dyn) { /* the window keeps all of a dynamic axis 0 */
    if (n->attr.slice.begin[0] != 0 || n->attr.slice.step[0] != 1 ||
        attr_shape.dim[0] != x->shape.dim[0]) {
      IR_ERROR(d, n->loc, "%s: a window of %s must keep all of the dynamic axis 0",
               ir_ops[n->op].name, shape_str(&x->shape, sx, sizeof sx));
      return false;
    }
    attr_shape.dyn = x->shape.dyn;
  }
  n->shape = attr_shape;
  n->dtype = x->dtype;
  return true;
}

/* copies every element of the window: src small → dst large (to_large) or back */
static void window_walk(const Node *n, const Shape *small, const Shape *large, const Tensor *src,
                        Tensor *dst, bool to_large) {
  int64_t lst[IR_MAX_RANK], wst[IR_MAX_RANK], base = 0;
  ir_strides(large, lst);
  for (int i = 0; i < small->rank; i++) {
    wst[i] = lst[i] * n->attr.slice.step[i];
    base += lst[i] * n->attr.slice.begin[i];
  }
  int64_t count = shape_numel(small);
  for (int64_t k = 0; k < count; k++) {
    int64_t off = base + ir_strided_offset(k, small, wst);
    if (to_large)
      tensor_set(dst, off, tensor_get(src, k));
    else
      tensor_set(dst, k, tensor_get(src, off));
  }
}

void eval_slice(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  window_walk(n, &out->shape, &in[0]->shape, in[0], out, false);
}

void eval_unslice(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  window_walk(n, &in[0]->shape, &out->shape, in[0], out, true); /* out is zero-filled */
}

/* ---- gather / scatter_add ---------------------------------------------------------------- */

static bool gather_shapes(Node *n, const Node *data, const Node *ids, Diag *d) {
  char sd[SHAPE_BUF], si[SHAPE_BUF];
  shape_str(&data->shape, sd, sizeof sd);
  shape_str(&ids->shape, si, sizeof si);
  const char *name = ir_ops[n->op].name;
  if (dtype_is_float(ids->dtype)) {
    IR_ERROR(d, n->loc, "%s: expected integer indices, got %s%s", name, dtype_name(ids->dtype), si);
    return false;
  }
  if (n->op == OP_GATHER) {
    if (data->shape.rank < 1 || ids->shape.rank + data->shape.rank - 1 > IR_MAX_RANK) {
      IR_ERROR(d, n->loc, "gather: cannot index table %s with indices %s", sd, si);
      return false;
    }
    if (data->shape.dyn) {
      IR_ERROR(d, n->loc, "gather: cannot index table %s: its rows are the dynamic batch", sd);
      return false;
    }
    Shape out = ids->shape;
    for (int i = 1; i < data->shape.rank; i++)
      out.dim[out.rank++] = data->shape.dim[i];
    n->shape = out;
    return true;
  }
  bool prefix =
      data->shape.rank >= ids->shape.rank && data->shape.rank - ids->shape.rank < IR_MAX_RANK;
  for (int i = 0; prefix && i < ids->shape.rank; i++)
    prefix = data->shape.dim[i] == ids->shape.dim[i];
  if (ids->shape.rank > 0) prefix = prefix && data->shape.dyn == ids->shape.dyn;
  else prefix = prefix && !data->shape.dyn;
  if (!prefix || n->attr.gather.rows < 1) {
    IR_ERROR(d, n->loc,
             "scatter_add: indices %s must be a prefix of the source shape %s "
             "(rows %lld >= 1)",
             si, sd, (long long)n->attr.gather.rows);
    return false;
  }
  Shape out;
  memset(&out, 0, sizeof out);
  out.dim[out.rank++] = n->attr.gather.rows;
  for (int i = ids->shape.rank; i < data->shape.rank; i++)
    out.dim[out.rank++] = data->shape.dim[i];
  n->shape = out;
  return true;
}

bool infer_gather(Graph *g, Node *n, Diag *d) {
  const Node *data = in_node(g, n, 0), *ids = in_node(g, n, 1);
  if (n->op == OP_GATHER) n->attr.gather.rows = 0;
  if (!gather_shapes(n, data, ids, d)) return false;
  n->dtype = data->dtype;
  return true;
}

void eval_gather(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t rows = in[0]->shape.dim[0], count = shape_numel(&in[1]->shape);
  int64_t width = shape_numel(&in[0]->shape) / rows;
  for (int64_t i = 0; i < count; i++) {
    double r = tensor_get(in[1], i);
    if (!(r >= 0 && r < (double)rows)) continue; /* out stays zero */
    for (int64_t j = 0; j < width; j++)
      tensor_set(out, i * width + j, tensor_get(in[0], (int64_t)r * width + j));
  }
}

void eval_scatter_add(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t rows = n->attr.gather.rows, count = shape_numel(&in[1]->shape);
  int64_t width = shape_numel(&out->shape) / rows;
  for (int64_t i = 0; i < count; i++) {
    double r = tensor_get(in[1], i);
    if (!(r >= 0 && r < (double)rows)) continue;
    for (int64_t j = 0; j < width; j++) {
      int64_t o = (int64_t)r * width + j;
      tensor_set(out, o, tensor_get(out, o) + tensor_get(in[0], i * width + j));
    }
  }
}

/* ---- random numbers ---------------------------------------------------------------------- */

bool infer_random(Graph *g, Node *n, Diag *d) {
  const char *name = ir_ops[n->op].name;
  char sa[SHAPE_BUF], sb[SHAPE_BUF];
  int k = n->op == OP_DROPOUT ? 1 : 0;
  const Node *seed = in_node(g, n, k), *step = in_node(g, n, k + 1);
  if (seed->shape.rank != 0 || step->shape.rank != 0 || !dtype_is_float(seed->dtype) ||
      !dtype_is_float(step->dtype)) {
    IR_ERROR(d, n->loc, "%s: seed and step must be float scalars, got %s%s and %s%s", name,
             dtype_name(seed->dtype), shape_str(&seed->shape, sa, sizeof sa),
             dtype_name(step->dtype), shape_str(&step->shape, sb, sizeof sb));
    return false;
  }
  if (n->op == OP_DROPOUT) {
    const Node *x = in_node(g, n, 0);
    double p = n->attr.random.p;
    if (!dtype_is_float(x->dtype) || !(p >= 0 && p < 1)) {
      IR_ERROR(d, n->loc, "dropout: needs a float input and 0 <= p < 1, got %s%s and p = %g",
               dtype_name(x->dtype), shape_str(&x->shape, sa, sizeof sa), p);
      return false;
    }
    n->shape = x->shape;
    n->dtype = x->dtype;
    return true;
  }
  const Shape *s = &n->attr.random.shape;
  bool shape_ok = s->rank >= 0 && s->rank <= IR_MAX_RANK;
  for (int i = 0; shape_ok && i < s->rank; i++)
    shape_ok = s->dim[i] >= 1;
  if (!shape_ok || (unsigned)n->attr.random.dtype >= DT_COUNT ||
      !dtype_is_float(n->attr.random.dtype) || n->attr.random.dist < 0 || n->attr.random.dist > 1) {
    IR_ERROR(d, n->loc, "random: needs a valid shape, a float dtype and dist 0 or 1");
    return false;
  }
  int64_t dyn = s->rank > 0 ? s->dyn : 0;
  n->attr.random.shape = shape_make(s->rank, s->dim);
  n->attr.random.shape.dyn = dyn;
  n->shape = n->attr.random.shape;
  n->dtype = n->attr.random.dtype;
  return true;
}

void eval_random(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  uint64_t seed = lathe_rng_key(tensor_get(in[0], 0)), step = lathe_rng_key(tensor_get(in[1], 0));
  uint64_t stream = n->attr.random.stream;
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i,
               n->attr.random.dist ? lathe_rng_normal(seed, step, stream, (uint64_t)i)
                                   : lathe_rng_uniform(seed, step, stream, (uint64_t)i));
}

void eval_dropout(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  uint64_t seed = lathe_rng_key(tensor_get(in[1], 0)), step = lathe_rng_key(tensor_get(in[2], 0));
  double p = n->attr.random.p, scale = 1.0 / (1.0 - p);
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) {
    double u = lathe_rng_uniform(seed, step, n->attr.random.stream, (uint64_t)i);
    tensor_set(out, i, u >= p ? tensor_get(in[0], i) * scale : 0.0);
  }
}
