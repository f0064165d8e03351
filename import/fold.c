/* import/fold.c — import-time evaluation of nodes whose inputs are all constants: the shape
 * arithmetic exporters emit (Shape → Gather → Unsqueeze → Concat → Reshape, Range, Cast,
 * Add/Mul/Div on int64 shape vectors, Equal/Where) and data movement of initializers.
 *
 * Invariants: integer arithmetic is done in int64 (division truncates like ONNX, a zero
 * divisor is an error, never a trap); results hold at most 2^24 elements; the shape rules are
 * the mappers' own (ops_shape.c), so a folded node and an emitted one agree.
 */
#include "import/imp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FOLD_MAX (1 << 24)

static void unravel(int64_t i, const Shape *s, int64_t *idx) {
  for (int k = s->rank - 1; k >= 0; k--) {
    idx[k] = i % s->dim[k];
    i /= s->dim[k];
  }
}

static int64_t ravel(const int64_t *idx, const Shape *s) {
  int64_t i = 0;
  for (int k = 0; k < s->rank; k++)
    i = i * s->dim[k] + idx[k];
  return i;
}

/* flat index into `in` of output index idx under NumPy broadcasting */
static int64_t bcast_index(const int64_t *idx, const Shape *out, const Shape *in) {
  int64_t i = 0;
  for (int k = 0; k < in->rank; k++) {
    int o = k + out->rank - in->rank;
    i = i * in->dim[k] + (in->dim[k] == 1 ? 0 : idx[o]);
  }
  return i;
}

static void copy_elem(Tensor *dst, int64_t di, const Tensor *src, int64_t si) {
  size_t z = dtype_size(dst->dtype);
  memcpy((char *)dst->data + (size_t)di * z, (const char *)src->data + (size_t)si * z, z);
}

static bool is_int(DType t) {
  return t == DT_I32 || t == DT_I64 || t == DT_U8;
}

static void set_i64(Tensor *t, int64_t i, int64_t v) {
  if (t->dtype == DT_I64)
    ((int64_t *)t->data)[i] = v;
  else if (t->dtype == DT_I32)
    ((int32_t *)t->data)[i] = (int32_t)v;
  else if (t->dtype == DT_U8)
    ((uint8_t *)t->data)[i] = (uint8_t)v;
  else
    tensor_set(t, i, (double)v);
}

static bool alloc_out(Imp *im, Tensor *t, DType dt, const Shape *s) {
  if (shape_numel(s) > FOLD_MAX) return false;
  return tensor_alloc(t, dt, s) || imp_fail(im, "out of memory");
}

typedef enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MIN, B_MAX, B_MOD, B_EQ, B_LT, B_GT, B_LE,
               B_GE, B_AND, B_OR, B_FMOD } BinOp; /* B_MOD floors (Python), B_FMOD truncates */

static const char *const bin_names[] = {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max", "Mod",
                                        "Equal", "Less", "Greater", "LessOrEqual",
                                        "GreaterOrEqual", "And", "Or"};

static double bin_f(BinOp op, double a, double b) {
  switch (op) {
  case B_ADD: return a + b;
  case B_SUB: return a - b;
  case B_MUL: return a * b;
  case B_DIV: return a / b;
  case B_POW: return pow(a, b);
  case B_MIN: return a < b ? a : b;
  case B_MAX: return a > b ? a : b;
  case B_MOD: return b != 0 && fmod(a, b) != 0 && (fmod(a, b) < 0) != (b < 0) ? fmod(a, b) + b
                                                                                : fmod(a, b);
  case B_FMOD: return fmod(a, b);
  case B_EQ: return a == b;
  case B_LT: return a < b;
  case B_GT: return a > b;
  case B_LE: return a <= b;
  case B_GE: return a >= b;
  case B_AND: return a != 0 && b != 0;
  default: return a != 0 || b != 0;
  }
}

static bool bin_i(Imp *im, BinOp op, int64_t a, int64_t b, int64_t *r) {
  if ((op == B_DIV || op == B_MOD || op == B_FMOD) && b == 0)
    return imp_fail(im, "integer division by zero");
  switch (op) {
  case B_ADD: *r = (int64_t)((uint64_t)a + (uint64_t)b); return true;
  case B_SUB: *r = (int64_t)((uint64_t)a - (uint64_t)b); return true;
  case B_MUL: *r = (int64_t)((uint64_t)a * (uint64_t)b); return true;
  case B_DIV: *r = a == INT64_MIN && b == -1 ? a : a / b; return true;
  case B_MOD:
    *r = a == INT64_MIN && b == -1 ? 0 : a % b;
    if (*r != 0 && (*r < 0) != (b < 0)) *r += b;
    return true;
  case B_FMOD: *r = a == INT64_MIN && b == -1 ? 0 : a % b; return true;
  default: *r = (int64_t)bin_f(op, (double)a, (double)b); return true;
  }
}

static bool fold_binary(Imp *im, BinOp op, ImpVal *a, ImpVal *b, Tensor *out) {
  Shape s;
  if (!imp_broadcast(im, &a->shape, &b->shape, &s)) return false;
  bool cmp = op >= B_EQ && op != B_FMOD;
  if (!alloc_out(im, out, cmp ? DT_U8 : a->dtype, &s)) return false;
  bool ints = is_int(a->dtype) && is_int(b->dtype);
  int64_t idx[IR_MAX_RANK];
  for (int64_t i = 0, n = shape_numel(&s); i < n; i++) {
    unravel(i, &s, idx);
    int64_t ia = bcast_index(idx, &s, &a->shape), ib = bcast_index(idx, &s, &b->shape);
    if (ints && !cmp) {
      int64_t r = 0;
      if (!bin_i(im, op, imp_get_i64(&a->konst, ia), imp_get_i64(&b->konst, ib), &r)) {
        tensor_free(out);
        return false;
      }
      set_i64(out, i, r);
    } else {
      double r = bin_f(op, tensor_get(&a->konst, ia), tensor_get(&b->konst, ib));
      if (is_int(out->dtype))
        set_i64(out, i, isfinite(r) && fabs(r) < 9e18 ? (int64_t)r : 0);
      else
        tensor_set(out, i, r);
    }
  }
  return true;
}

static bool fold_unary(Imp *im, const char *op, ImpVal *x, Tensor *out) {
  if (!alloc_out(im, out, strcmp(op, "Not") == 0 ? DT_U8 : x->dtype, &x->shape)) return false;
  for (int64_t i = 0, n = shape_numel(&x->shape); i < n; i++) {
    if (is_int(x->dtype)) {
      int64_t v = imp_get_i64(&x->konst, i);
      v = strcmp(op, "Neg") == 0   ? (int64_t)(0 - (uint64_t)v)
          : strcmp(op, "Abs") == 0 ? (v < 0 ? (int64_t)(0 - (uint64_t)v) : v)
          : strcmp(op, "Not") == 0 ? !v
          : strcmp(op, "Relu") == 0 ? (v > 0 ? v : 0)
                                    : v;
      set_i64(out, i, v);
      continue;
    }
    double v = tensor_get(&x->konst, i);
    v = strcmp(op, "Neg") == 0    ? -v
        : strcmp(op, "Abs") == 0  ? fabs(v)
        : strcmp(op, "Sqrt") == 0 ? sqrt(v)
        : strcmp(op, "Exp") == 0  ? exp(v)
        : strcmp(op, "Log") == 0  ? log(v)
        : strcmp(op, "Floor") == 0 ? floor(v)
        : strcmp(op, "Ceil") == 0  ? ceil(v)
        : strcmp(op, "Relu") == 0  ? (v > 0 ? v : 0)
        : strcmp(op, "Reciprocal") == 0 ? 1 / v
        : strcmp(op, "Not") == 0 ? (double)(v == 0)
                                 : v;
    tensor_set(out, i, v);
  }
  return true;
}

static bool fold_cast(Imp *im, const Onnx__NodeProto *n, ImpVal *x, Tensor *out) {
  DType to;
  if (!imp_dtype_from_onnx((int32_t)imp_attr_int(n, "to", 0), &to))
    return imp_fail(im, "cast to an unsupported element type");
  if (!alloc_out(im, out, to, &x->shape)) return false;
  for (int64_t i = 0, k = shape_numel(&x->shape); i < k; i++) {
    if (is_int(to) && is_int(x->dtype)) {
      set_i64(out, i, imp_get_i64(&x->konst, i));
    } else if (is_int(to)) {
      double v = tensor_get(&x->konst, i);
      set_i64(out, i, isfinite(v) && fabs(v) < 9e18 ? (int64_t)v : 0);
    } else {
      tensor_set(out, i, tensor_get(&x->konst, i));
    }
  }
  return true;
}

static bool fold_transpose(Imp *im, const Onnx__NodeProto *n, ImpVal *x, Tensor *out) {
  int perm[IR_MAX_RANK];
  if (!imp_transpose_perm(im, n, x->shape.rank, perm)) return false;
  Shape s = x->shape;
  for (int i = 0; i < s.rank; i++)
    s.dim[i] = x->shape.dim[perm[i]];
  if (!alloc_out(im, out, x->dtype, &s)) return false;
  int64_t idx[IR_MAX_RANK], src[IR_MAX_RANK];
  for (int64_t i = 0, k = shape_numel(&s); i < k; i++) {
    unravel(i, &s, idx);
    for (int d = 0; d < s.rank; d++)
      src[perm[d]] = idx[d];
    copy_elem(out, i, &x->konst, ravel(src, &x->shape));
  }
  return true;
}

static bool fold_slice(Imp *im, const Onnx__NodeProto *n, ImpVal *x, Tensor *out) {
  int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK], idx[IR_MAX_RANK];
  Shape s;
  if (!imp_slice_params(im, n, &x->shape, begin, step, &s)) return false;
  if (!alloc_out(im, out, x->dtype, &s)) return false;
  for (int64_t i = 0, k = shape_numel(&s); i < k; i++) {
    unravel(i, &s, idx);
    for (int d = 0; d < s.rank; d++)
      idx[d] = begin[d] + idx[d] * step[d];
    copy_elem(out, i, &x->konst, ravel(idx, &x->shape));
  }
  return true;
}

static bool fold_gather(Imp *im, const Onnx__NodeProto *n, ImpVal *x, ImpVal *ind,
                        Tensor *out) {
  Shape s;
  int axis;
  if (!imp_gather_shape(im, n, &x->shape, &ind->shape, &axis, &s)) return false;
  if (!alloc_out(im, out, x->dtype, &s)) return false;
  int64_t idx[IR_MAX_RANK], src[IR_MAX_RANK], d = x->shape.dim[axis];
  for (int64_t i = 0, k = shape_numel(&s); i < k; i++) {
    unravel(i, &s, idx);
    int64_t flat = 0;
    for (int j = 0; j < ind->shape.rank; j++)
      flat = flat * ind->shape.dim[j] + idx[axis + j];
    int64_t g = imp_get_i64(&ind->konst, flat);
    g = g < 0 ? g + d : g;
    if (g < 0 || g >= d) {
      tensor_free(out);
      return imp_fail(im, "gather index out of range");
    }
    for (int j = 0; j < axis; j++)
      src[j] = idx[j];
    src[axis] = g;
    for (int j = axis + 1; j < x->shape.rank; j++)
      src[j] = idx[j - 1 + ind->shape.rank];
    copy_elem(out, i, &x->konst, ravel(src, &x->shape));
  }
  return true;
}

static bool fold_concat(Imp *im, const Onnx__NodeProto *n, Tensor *out) {
  Shape s;
  int axis;
  if (!imp_concat_shape(im, n, &axis, &s)) return false;
  ImpVal *first = imp_in(im, 0);
  if (!alloc_out(im, out, first->dtype, &s)) return false;
  int64_t idx[IR_MAX_RANK];
  for (int64_t i = 0, k = shape_numel(&s); i < k; i++) {
    unravel(i, &s, idx);
    int src = 0;
    while (idx[axis] >= imp_in(im, src)->shape.dim[axis])
      idx[axis] -= imp_in(im, src++)->shape.dim[axis];
    ImpVal *v = imp_in(im, src);
    if (v->dtype != out->dtype) {
      tensor_free(out);
      return imp_fail(im, "inputs of different types");
    }
    copy_elem(out, i, &v->konst, ravel(idx, &v->shape));
  }
  return true;
}

static bool fold_range(Imp *im, Tensor *out) {
  ImpVal *a = imp_in(im, 0), *l = imp_in(im, 1), *d = imp_in(im, 2);
  if (!a || !l || !d) return false;
  double s = tensor_get(&a->konst, 0), e = tensor_get(&l->konst, 0), st = tensor_get(&d->konst, 0);
  double cnt = st != 0 ? ceil((e - s) / st) : -1;
  if (!(cnt >= 1 && cnt <= FOLD_MAX)) return imp_fail(im, "empty or invalid range");
  Shape sh = {0};
  sh.rank = 1, sh.dim[0] = (int64_t)cnt;
  if (!alloc_out(im, out, a->dtype, &sh)) return false;
  for (int64_t i = 0; i < sh.dim[0]; i++) {
    if (is_int(a->dtype))
      set_i64(out, i, imp_get_i64(&a->konst, 0) + i * imp_get_i64(&d->konst, 0));
    else
      tensor_set(out, i, s + (double)i * st);
  }
  return true;
}

static bool fold_where(Imp *im, Tensor *out) {
  ImpVal *c = imp_in(im, 0), *a = imp_in(im, 1), *b = imp_in(im, 2);
  Shape s1, s;
  if (!imp_broadcast(im, &c->shape, &a->shape, &s1) || !imp_broadcast(im, &s1, &b->shape, &s))
    return false;
  if (a->dtype != b->dtype) return imp_fail(im, "operands of different types");
  if (!alloc_out(im, out, a->dtype, &s)) return false;
  int64_t idx[IR_MAX_RANK];
  for (int64_t i = 0, k = shape_numel(&s); i < k; i++) {
    unravel(i, &s, idx);
    bool t = tensor_get(&c->konst, bcast_index(idx, &s, &c->shape)) != 0;
    ImpVal *v = t ? a : b;
    copy_elem(out, i, &v->konst, bcast_index(idx, &s, &v->shape));
  }
  return true;
}

static bool fold_expand(Imp *im, ImpVal *x, Tensor *out) {
  int64_t v[IR_MAX_RANK + 1];
  int k = imp_const_ints(im, 1, v, IR_MAX_RANK);
  if (k < 0) return false;
  Shape want = {0}, s;
  want.rank = k;
  for (int i = 0; i < k; i++)
    want.dim[i] = v[i] < 1 ? 1 : v[i];
  if (!imp_shape_ok(im, &want) || !imp_broadcast(im, &x->shape, &want, &s) ||
      !alloc_out(im, out, x->dtype, &s))
    return false;
  int64_t idx[IR_MAX_RANK];
  for (int64_t i = 0, n = shape_numel(&s); i < n; i++) {
    unravel(i, &s, idx);
    copy_elem(out, i, &x->konst, bcast_index(idx, &s, &x->shape));
  }
  return true;
}

static bool fold_reshape(Imp *im, const Onnx__NodeProto *n, ImpVal *x, Tensor *out) {
  Shape s;
  if (!imp_reshape_shape(im, n, &x->shape, &s) || !alloc_out(im, out, x->dtype, &s))
    return false;
  memcpy(out->data, x->konst.data, (size_t)shape_numel(&s) * dtype_size(x->dtype));
  return true;
}

static bool all_const(Imp *im, const Onnx__NodeProto *n) {
  if (n->n_input == 0) return false;
  for (size_t k = 0; k < n->n_input; k++) {
    if (!n->input[k] || !*n->input[k]) return false; /* an omitted input: the mapper decides */
    ImpVal *v = imp_find(im, n->input[k]);
    if (!v || !v->has_const) return false;
  }
  return true;
}

static bool in_list(const char *op, const char *const *list) {
  for (; *list; list++)
    if (strcmp(op, *list) == 0) return true;
  return false;
}

static bool dispatch(Imp *im, const Onnx__NodeProto *n, Tensor *t) {
  static const char *const unary[] = {"Neg", "Abs", "Sqrt", "Exp", "Log", "Floor", "Ceil",
                                      "Relu", "Reciprocal", "Not", NULL};
  static const char *const reshapes[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", NULL};
  const char *op = n->op_type;
  static const struct { const char *op; size_t n; } arity[] = {
      {"Gather", 2}, {"Where", 3}, {"Range", 3}, {"Expand", 2}};
  for (size_t i = 0; i < sizeof arity / sizeof *arity; i++)
    if (strcmp(op, arity[i].op) == 0 && n->n_input < arity[i].n) return false;
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  for (int b = 0; b < (int)(sizeof bin_names / sizeof *bin_names); b++)
    if (strcmp(op, bin_names[b]) == 0 && n->n_input == 2)
      return fold_binary(im, b == B_MOD && imp_attr_int(n, "fmod", 0) ? B_FMOD : (BinOp)b, x,
                         imp_in(im, 1), t);
  if (in_list(op, unary)) return fold_unary(im, op, x, t);
  if (in_list(op, reshapes)) return fold_reshape(im, n, x, t);
  if (strcmp(op, "Cast") == 0) return fold_cast(im, n, x, t);
  if (strcmp(op, "Transpose") == 0) return fold_transpose(im, n, x, t);
  if (strcmp(op, "Slice") == 0) return fold_slice(im, n, x, t);
  if (strcmp(op, "Gather") == 0) return fold_gather(im, n, x, imp_in(im, 1), t);
  if (strcmp(op, "Concat") == 0) return fold_concat(im, n, t);
  if (strcmp(op, "Range") == 0) return fold_range(im, t);
  if (strcmp(op, "Where") == 0) return fold_where(im, t);
  if (strcmp(op, "Expand") == 0) return fold_expand(im, x, t);
  return false;
}

bool imp_fold(Imp *im, const Onnx__NodeProto *n, bool *folded) {
  *folded = false;
  if (!all_const(im, n) || n->n_output != 1) return true;
  Tensor t = {0};
  int before = im->n_problems;
  if (!dispatch(im, n, &t)) return im->n_problems == before;
  imp_bind_const(im, 0, &t);
  *folded = true;
  return true;
}
