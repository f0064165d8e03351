/* import/ops_shape.c — ONNX shape and data-movement ops on runtime tensors: Reshape,
 * Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice, Gather, Expand, Shape, Size,
 * Constant, ConstantOfShape, Identity, Dropout, Cast, Where, Pad, Clip (Resize: ops_resize.c).
 *
 * Invariant: shape arguments (Reshape's shape, Slice's starts, ...) must be import-time
 * constants; the output shapes computed here are the ones lathe's elaborator will infer.
 */
#include "import/imp.h"

#include <string.h>

static Shape rank1(int64_t n) {
  Shape s = {0};
  s.rank = 1;
  s.dim[0] = n;
  return s;
}

static bool axes_of(Imp *im, const Onnx__NodeProto *n, int k, int64_t *axes, int *na) {
  *na = imp_attr_ints(n, "axes", axes, IR_MAX_RANK);
  if (*na < 0 && imp_in_opt(im, k)) *na = imp_const_ints(im, k, axes, IR_MAX_RANK);
  return im->n_problems == 0 || *na >= 0;
}

static bool squeeze_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out) {
  int64_t axes[IR_MAX_RANK + 1];
  int na;
  if (!axes_of(im, n, 1, axes, &na)) return false;
  bool drop[IR_MAX_RANK] = {0};
  for (int i = 0; i < na; i++) {
    int a = imp_axis(im, axes[i], in->rank);
    if (a < 0) return false;
    if (in->dim[a] != 1) return imp_fail(im, "cannot squeeze axis %d of size %lld", a,
                                         (long long)in->dim[a]);
    drop[a] = true;
  }
  memset(out, 0, sizeof *out);
  for (int i = 0; i < in->rank; i++)
    if (!(na < 0 ? in->dim[i] == 1 : drop[i])) out->dim[out->rank++] = in->dim[i];
  return true;
}

static bool unsqueeze_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out) {
  int64_t axes[IR_MAX_RANK + 1];
  int na;
  if (!axes_of(im, n, 1, axes, &na)) return false;
  if (na < 0) return imp_fail(im, "Unsqueeze needs axes");
  int r = in->rank + na;
  if (r > IR_MAX_RANK) return imp_fail(im, "rank %d is above lathe's maximum", r);
  bool ins[IR_MAX_RANK] = {0};
  for (int i = 0; i < na; i++) {
    int a = imp_axis(im, axes[i], r);
    if (a < 0) return false;
    ins[a] = true;
  }
  memset(out, 0, sizeof *out);
  out->rank = r;
  for (int i = 0, j = 0; i < r; i++)
    out->dim[i] = ins[i] ? 1 : in->dim[j++];
  return true;
}

static bool reshape_to(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out) {
  int64_t v[IR_MAX_RANK + 1];
  int k = imp_const_ints(im, 1, v, IR_MAX_RANK);
  if (k < 0) return false;
  bool allowzero = imp_attr_int(n, "allowzero", 0) != 0;
  memset(out, 0, sizeof *out);
  out->rank = k;
  int64_t known = 1, infer = -1;
  for (int i = 0; i < k; i++) {
    int64_t d = v[i] == 0 && !allowzero ? (i < in->rank ? in->dim[i] : -2) : v[i];
    if (d == -1 && infer < 0) {
      infer = i;
      continue;
    }
    if (d < 1 || d > IMP_MAX_ELEMS)
      return imp_fail(im, "unsupported target dimension %lld", (long long)v[i]);
    out->dim[i] = d;
    if (known > IMP_MAX_ELEMS / d) return imp_fail(im, "the target shape is too large");
    known *= d;
  }
  int64_t total = shape_numel(in);
  if (infer >= 0) out->dim[infer] = known ? total / known : 0;
  if (shape_numel(out) != total || (infer >= 0 && out->dim[infer] < 1))
    return imp_fail(im, "cannot reshape %lld elements to the requested shape", (long long)total);
  return true;
}

static bool flatten_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out);

/* the result of Squeeze, Unsqueeze, Reshape or Flatten; a dynamic batch stays axis 0 (a
 * target axis 0 of k times the bound is k * batch: the exporter's Shape -> Gather -> Concat
 * chains carry the batch as its value at the bound) */
bool imp_reshape_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out) {
  const char *op = n->op_type;
  bool ok = strcmp(op, "Squeeze") == 0     ? squeeze_shape(im, n, in, out)
            : strcmp(op, "Unsqueeze") == 0 ? unsqueeze_shape(im, n, in, out)
            : strcmp(op, "Reshape") == 0   ? reshape_to(im, n, in, out)
                                           : flatten_shape(im, n, in, out);
  return ok && imp_reshape_dyn(im, in, out);
}

static bool flatten_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out) {
  int a = (int)imp_attr_int(n, "axis", 1); /* Flatten */
  a = a < 0 ? a + in->rank : a;
  if (a < 0 || a > in->rank) return imp_fail(im, "axis %d out of range", a);
  Shape s = {0};
  s.rank = 2;
  int64_t lead = 1, rest = 1;
  for (int i = 0; i < in->rank; i++)
    *(i < a ? &lead : &rest) *= in->dim[i];
  s.dim[0] = lead, s.dim[1] = rest;
  *out = s;
  return true;
}

static bool map_reshape(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  Shape s;
  if (!x || !imp_reshape_shape(im, n, &x->shape, &s)) return false;
  const char *r = imp_ref_tensor(im, x);
  return r && imp_bind(im, 0, x->dtype, &s, "reshape(%s, %s)", r, imp_dims(im, &s));
}

bool imp_transpose_perm(Imp *im, const Onnx__NodeProto *n, int rank, int *perm) {
  int64_t p[IR_MAX_RANK + 1];
  int k = imp_attr_ints(n, "perm", p, IR_MAX_RANK);
  bool seen[IR_MAX_RANK] = {0};
  for (int i = 0; i < rank; i++) {
    perm[i] = k < 0 ? rank - 1 - i : (int)p[i];
    if (k >= 0 && (k != rank || p[i] < 0 || p[i] >= rank || seen[p[i]]))
      return imp_fail(im, "perm is not a permutation of %d axes", rank);
    seen[perm[i]] = true;
  }
  return true;
}

static bool map_transpose(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int perm[IR_MAX_RANK];
  if (!x || !imp_transpose_perm(im, n, x->shape.rank, perm)) return false;
  Shape s = x->shape;
  int64_t p[IR_MAX_RANK];
  for (int i = 0; i < s.rank; i++)
    s.dim[i] = x->shape.dim[perm[i]], p[i] = perm[i];
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  if (s.rank < 2) return imp_bind(im, 0, x->dtype, &s, "%s", r);
  return imp_bind(im, 0, x->dtype, &s, "transpose(%s, perm = %s)", r, imp_ints(im, p, s.rank));
}

bool imp_concat_shape(Imp *im, const Onnx__NodeProto *n, int *axis, Shape *out) {
  ImpVal *a = imp_in(im, 0);
  if (!a) return false;
  if (a->shape.rank < 1) return imp_fail(im, "cannot concatenate scalars");
  *out = a->shape;
  *axis = imp_axis(im, imp_attr_int(n, "axis", 0), a->shape.rank);
  if (*axis < 0) return false;
  out->dim[*axis] = 0;
  for (size_t k = 0; k < n->n_input; k++) {
    ImpVal *v = imp_in(im, (int)k);
    if (!v) return false;
    if (v->shape.rank != out->rank) return imp_fail(im, "inputs of different ranks");
    out->dim[*axis] += v->shape.dim[*axis];
  }
  return imp_shape_ok(im, out);
}

static bool map_concat(Imp *im, const Onnx__NodeProto *n) {
  Shape s;
  int axis;
  if (!imp_concat_shape(im, n, &axis, &s)) return false;
  const char *list = "";
  for (size_t k = 0; k < n->n_input; k++) {
    const char *r = imp_ref_tensor(im, imp_in(im, (int)k));
    if (!r) return false;
    list = imp_printf(im, "%s%s%s", list, k ? ", " : "", r);
  }
  DType dt = imp_in(im, 0)->dtype;
  if (n->n_input == 1) return imp_bind(im, 0, dt, &s, "%s", list);
  return imp_bind(im, 0, dt, &s, "concat([%s], axis = %d)", list, axis);
}

/* "x[b0:e0:s0, :, ...]" */
static const char *slice_text(Imp *im, const char *x, const Shape *in, const int64_t *begin,
                              const int64_t *step, const Shape *out) {
  const char *t = imp_printf(im, "%s[", x);
  for (int i = 0; i < in->rank; i++) {
    const char *sep = i ? ", " : "";
    int64_t end = begin[i] + (out->dim[i] - 1) * step[i] + 1;
    if (begin[i] == 0 && step[i] == 1 && out->dim[i] == in->dim[i])
      t = imp_printf(im, "%s%s:", t, sep);
    else if (step[i] == 1)
      t = imp_printf(im, "%s%s%lld:%lld", t, sep, (long long)begin[i], (long long)end);
    else
      t = imp_printf(im, "%s%s%lld:%lld:%lld", t, sep, (long long)begin[i], (long long)end,
                     (long long)step[i]);
  }
  return imp_printf(im, "%s]", t);
}

static int64_t clampi(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

bool imp_slice_params(Imp *im, const Onnx__NodeProto *n, const Shape *in, int64_t *begin,
                      int64_t *step, Shape *out) {
  int64_t st[IR_MAX_RANK + 1], en[IR_MAX_RANK + 1], ax[IR_MAX_RANK + 1], sp[IR_MAX_RANK + 1];
  int ns, ne, na = -1, nsp = -1;
  if (im->opset < 10) {
    ns = imp_attr_ints(n, "starts", st, IR_MAX_RANK);
    ne = imp_attr_ints(n, "ends", en, IR_MAX_RANK);
    na = imp_attr_ints(n, "axes", ax, IR_MAX_RANK);
  } else {
    ns = imp_const_ints(im, 1, st, IR_MAX_RANK);
    ne = imp_const_ints(im, 2, en, IR_MAX_RANK);
    if (imp_in_opt(im, 3)) na = imp_const_ints(im, 3, ax, IR_MAX_RANK);
    if (imp_in_opt(im, 4)) nsp = imp_const_ints(im, 4, sp, IR_MAX_RANK);
  }
  if (ns < 0 || ne != ns || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns))
    return im->n_problems ? false : imp_fail(im, "starts/ends/axes/steps do not match");
  *out = *in;
  for (int i = 0; i < in->rank; i++)
    begin[i] = 0, step[i] = 1;
  for (int i = 0; i < ns; i++) {
    int a = imp_axis(im, na >= 0 ? ax[i] : i, in->rank);
    if (a < 0) return false;
    int64_t d = in->dim[a], s = nsp >= 0 ? sp[i] : 1;
    if (s == 0) return imp_fail(im, "a slice step of 0");
    int64_t b = st[i] < 0 ? st[i] + d : st[i], e = en[i] < 0 ? en[i] + d : en[i];
    if (en[i] < -d) e = -1; /* INT64_MIN-like ends: before the first element */
    b = s > 0 ? clampi(b, 0, d) : clampi(b, 0, d - 1);
    e = s > 0 ? clampi(e, 0, d) : clampi(e, -1, d - 1);
    if (s > 0 ? e <= b : e >= b) return imp_fail(im, "empty slices are not supported");
    begin[a] = b, step[a] = s;
    out->dim[a] = s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / -s;
  }
  return true;
}

static bool map_slice(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK];
  Shape s;
  if (!x || !imp_slice_params(im, n, &x->shape, begin, step, &s)) return false;
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  int64_t b2[IR_MAX_RANK], s2[IR_MAX_RANK], idx[4096];
  Shape mid = s; /* positive steps first; negative-step axes kept whole, then gathered */
  for (int i = 0; i < s.rank; i++) {
    bool neg = step[i] < 0;
    b2[i] = neg ? 0 : begin[i], s2[i] = neg ? 1 : step[i];
    mid.dim[i] = neg ? x->shape.dim[i] : s.dim[i];
  }
  const char *e = slice_text(im, r, &x->shape, b2, s2, &mid);
  for (int i = 0; i < s.rank; i++) {
    if (step[i] > 0) continue;
    if (s.dim[i] > 4096) return imp_fail(im, "negative-step slice longer than 4096");
    for (int64_t k = 0; k < s.dim[i]; k++)
      idx[k] = begin[i] + k * step[i];
    e = imp_let(im, imp_printf(im, "%s_rev%d", n->output[0], i), "%s", e);
    if (!e) return false;
    e = imp_gather_axis(im, e, s.rank, i, idx, s.dim[i]);
  }
  return imp_bind(im, 0, x->dtype, &s, "%s", e);
}

static bool map_split(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  int axis = imp_axis(im, imp_attr_int(n, "axis", 0), x->shape.rank);
  if (axis < 0) return false;
  int64_t sz[64];
  int k = (int)n->n_output;
  if (k > 64) return imp_fail(im, "too many outputs");
  int ns = imp_attr_ints(n, "split", sz, 64);
  if (ns < 0 && imp_in_opt(im, 1)) ns = imp_const_ints(im, 1, sz, 64);
  if (ns < 0) {
    int64_t d = x->shape.dim[axis], part = (d + k - 1) / k;
    for (int i = 0; i < k; i++)
      sz[i] = d - part * i < part ? d - part * i : part;
    ns = k;
  }
  if (ns != k) return imp_fail(im, "split sizes do not match the %d outputs", k);
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  int64_t begin[IR_MAX_RANK] = {0}, step[IR_MAX_RANK];
  for (int i = 0; i < IR_MAX_RANK; i++)
    step[i] = 1;
  for (int i = 0; i < k; i++) {
    Shape s = x->shape;
    s.dim[axis] = sz[i];
    if (sz[i] < 1 || begin[axis] + sz[i] > x->shape.dim[axis])
      return imp_fail(im, "split sizes do not fit the axis");
    imp_bind(im, i, x->dtype, &s, "%s", slice_text(im, r, &x->shape, begin, step, &s));
    begin[axis] += sz[i];
  }
  return true;
}

bool imp_gather_shape(Imp *im, const Onnx__NodeProto *n, const Shape *data, const Shape *ind,
                      int *axis, Shape *out) {
  *axis = imp_axis(im, imp_attr_int(n, "axis", 0), data->rank);
  if (*axis < 0) return false;
  if (data->rank + ind->rank - 1 > IR_MAX_RANK) return imp_fail(im, "result rank too high");
  memset(out, 0, sizeof *out);
  for (int i = 0; i < *axis; i++)
    out->dim[out->rank++] = data->dim[i];
  for (int i = 0; i < ind->rank; i++)
    out->dim[out->rank++] = ind->dim[i];
  for (int i = *axis + 1; i < data->rank; i++)
    out->dim[out->rank++] = data->dim[i];
  return true;
}

/* constant indices: one slice per index, concatenated, reshaped */
static bool gather_const(Imp *im, ImpVal *x, ImpVal *ind, int axis, const Shape *s) {
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  int64_t n = shape_numel(&ind->shape), d = x->shape.dim[axis];
  if (n > 256) return imp_fail(im, "more than 256 constant gather indices");
  const char *pre = "";
  for (int i = 0; i < axis; i++)
    pre = imp_printf(im, "%s:, ", pre);
  int64_t idx[256];
  for (int64_t i = 0; i < n; i++) {
    int64_t k = imp_get_i64(&ind->konst, i);
    k = k < 0 ? k + d : k;
    if (k < 0 || k >= d) return imp_fail(im, "gather index %lld out of range", (long long)k);
    if (ind->shape.rank == 0)
      return imp_bind(im, 0, x->dtype, s, "%s[%s%lld]", r, pre, (long long)k);
    idx[i] = k;
  }
  /* runs of consecutive indices as one slice, concat in groups of at most 64 */
  const char *cat = imp_gather_axis(im, r, x->shape.rank, axis, idx, n);
  return imp_bind(im, 0, x->dtype, s, "reshape(%s, %s)", cat, imp_dims(im, s));
}

static bool map_gather(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *ind = imp_in(im, 1);
  Shape s;
  int axis;
  if (!x || !ind || !imp_gather_shape(im, n, &x->shape, &ind->shape, &axis, &s)) return false;
  if (ind->has_const && !ind->ident) return gather_const(im, x, ind, axis, &s);
  if (axis != 0 || ind->dtype == DT_F32 || ind->dtype == DT_F64)
    return imp_fail(im, "Gather with runtime indices is supported on axis 0 only");
  const char *r = imp_ref_tensor(im, x);
  const char *ids = ind->dtype == DT_I32 ? ind->ident : imp_printf(im, "cast(%s, i32)",
                                                                   ind->ident);
  return r && imp_bind(im, 0, x->dtype, &s, "%s[%s]", r, ids);
}

static bool map_expand(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int64_t v[IR_MAX_RANK + 1];
  int k = imp_const_ints(im, 1, v, IR_MAX_RANK);
  if (!x || k < 0) return false;
  Shape want = {0}, s;
  want.rank = k;
  for (int i = 0; i < k; i++)
    want.dim[i] = v[i] < 1 ? 1 : v[i];
  if (!imp_shape_ok(im, &want) || !imp_broadcast(im, &x->shape, &want, &s)) return false;
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  if (shape_equal(&s, &x->shape)) return imp_bind(im, 0, x->dtype, &s, "%s", r);
  return imp_bind(im, 0, x->dtype, &s, "broadcast_to(%s, %s)", r, imp_dims(im, &s));
}

static bool map_shape(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  int r = x->shape.rank;
  int64_t start = imp_attr_int(n, "start", 0), end = imp_attr_int(n, "end", r);
  start = clampi(start < 0 ? start + r : start, 0, r);
  end = clampi(end < 0 ? end + r : end, 0, r);
  bool size = strcmp(n->op_type, "Size") == 0;
  Shape s = size ? (Shape){0} : rank1(end > start ? end - start : 0);
  if (!size && s.dim[0] == 0) return imp_fail(im, "empty shape slices are not supported");
  Tensor t;
  if (!tensor_alloc(&t, DT_I64, &s)) return imp_fail(im, "out of memory");
  if (size)
    ((int64_t *)t.data)[0] = shape_numel(&x->shape);
  for (int64_t i = start; !size && i < end; i++)
    ((int64_t *)t.data)[i - start] = x->shape.dim[i];
  imp_bind_const(im, 0, &t);
  return true;
}

static bool const_from_attr(Imp *im, const Onnx__NodeProto *n, Tensor *t) {
  const Onnx__AttributeProto *a;
  if ((a = imp_attr(n, "value")) && a->t)
    return imp_tensor_from_proto(a->t, t, im->d, "Constant value") || imp_fail(im, "bad value");
  Shape s = {0};
  bool f = (a = imp_attr(n, "value_float")) || (a = imp_attr(n, "value_floats"));
  if (!a && !(a = imp_attr(n, "value_int")) && !(a = imp_attr(n, "value_ints")))
    return imp_fail(im, "Constant without a supported value attribute");
  bool list = a->n_floats || a->n_ints || a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS ||
              a->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
  size_t cnt = list ? (f ? a->n_floats : a->n_ints) : 1;
  if (list) s = rank1((int64_t)cnt);
  if (list && cnt == 0) return imp_fail(im, "empty constants are not supported");
  if (!tensor_alloc(t, f ? DT_F32 : DT_I64, &s)) return imp_fail(im, "out of memory");
  for (size_t i = 0; i < cnt; i++) {
    if (f)
      ((float *)t->data)[i] = list ? a->floats[i] : a->f;
    else
      ((int64_t *)t->data)[i] = list ? a->ints[i] : a->i;
  }
  return true;
}

static bool map_constant(Imp *im, const Onnx__NodeProto *n) {
  Tensor t;
  if (!const_from_attr(im, n, &t)) return false;
  ImpVal *v = imp_bind_const(im, 0, &t);
  const Onnx__AttributeProto *a = imp_attr(n, "value");
  if (v && a && a->t) v->onnx_type = a->t->data_type; /* int8 vs int32 for the quant ops */
  return true;
}

static bool map_constant_of_shape(Imp *im, const Onnx__NodeProto *n) {
  int64_t v[IR_MAX_RANK + 1];
  int k = imp_const_ints(im, 0, v, IR_MAX_RANK);
  if (k < 0) return false;
  Shape s = {0};
  s.rank = k;
  for (int i = 0; i < k; i++)
    if ((s.dim[i] = v[i]) < 1) return imp_fail(im, "empty tensors are not supported");
  if (!imp_shape_ok(im, &s) || shape_numel(&s) > (1 << 24))
    return im->n_problems ? false : imp_fail(im, "constant of more than 2^24 elements");
  Tensor val = {0}, t;
  const Onnx__AttributeProto *a = imp_attr(n, "value");
  if (a && a->t && !imp_tensor_from_proto(a->t, &val, im->d, "ConstantOfShape value"))
    return imp_fail(im, "bad value");
  if (!tensor_alloc(&t, a && a->t ? val.dtype : DT_F32, &s)) {
    tensor_free(&val);
    return imp_fail(im, "out of memory");
  }
  for (int64_t i = 0, m = shape_numel(&s); a && a->t && i < m; i++)
    memcpy((char *)t.data + i * (int64_t)dtype_size(t.dtype), val.data, dtype_size(t.dtype));
  tensor_free(&val);
  imp_bind_const(im, 0, &t);
  return true;
}

static bool map_identity(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  ImpVal *train = strcmp(n->op_type, "Dropout") == 0 ? imp_in_opt(im, 2) : NULL;
  ImpVal *ratio = strcmp(n->op_type, "Dropout") == 0 ? imp_in_opt(im, 1) : NULL;
  bool zero = ratio && ratio->has_const && tensor_get(&ratio->konst, 0) == 0;
  if (train && (!train->has_const || tensor_get(&train->konst, 0) != 0) && !zero)
    return imp_fail(im, "training-mode dropout is not supported (lathe's dropout() draws its "
                        "own random numbers)");
  if (n->n_output > 1 && n->output[1] && *n->output[1]) { /* the mask: all ones */
    Tensor m;
    if (!tensor_alloc(&m, DT_U8, &x->shape)) return imp_fail(im, "out of memory");
    memset(m.data, 1, (size_t)shape_numel(&x->shape));
    imp_bind_const(im, 1, &m);
  }
  if (!x->ident && x->has_const) {
    Tensor t;
    if (!tensor_alloc(&t, x->dtype, &x->shape)) return imp_fail(im, "out of memory");
    memcpy(t.data, x->konst.data, (size_t)shape_numel(&x->shape) * dtype_size(x->dtype));
    imp_bind_const(im, 0, &t);
    return true;
  }
  ImpVal *y = imp_new_val(im, n->output[0], x->dtype, &x->shape);
  if (!y) return false;
  y->ident = x->ident;
  return true;
}

static bool map_cast(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  DType to;
  if (!x) return false;
  if (!imp_dtype_from_onnx((int32_t)imp_attr_int(n, "to", 0), &to))
    return imp_fail(im, "cast to an unsupported element type");
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  if (to == x->dtype) return imp_bind(im, 0, to, &x->shape, "%s", r);
  return imp_bind(im, 0, to, &x->shape, "cast(%s, %s)", r, dtype_name(to));
}

static bool map_where(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *c = imp_in(im, 0), *a = imp_in(im, 1), *b = imp_in(im, 2);
  Shape s1, s;
  if (!c || !a || !b || !imp_broadcast(im, &c->shape, &a->shape, &s1) ||
      !imp_broadcast(im, &s1, &b->shape, &s))
    return false;
  const char *rc = imp_ref_tensor(im, c), *ra = imp_ref(im, a), *rb = imp_ref(im, b);
  if (!rc || !ra || !rb) return false;
  DType dt = a->ident || !b->ident ? a->dtype : b->dtype;
  if (c->dtype != dt) rc = imp_printf(im, "cast(%s, %s)", rc, dtype_name(dt));
  return imp_bind(im, 0, dt, &s, "where(%s, %s, %s)", rc, ra, rb);
}

static bool map_pad(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  const char *mode = imp_attr_str(im, n, "mode", "constant");
  if (strcmp(mode, "constant") != 0) return imp_fail(im, "pad mode '%s' is not supported", mode);
  int64_t p[2 * IR_MAX_RANK + 1];
  int np = im->opset < 11 ? imp_attr_ints(n, "pads", p, 2 * IR_MAX_RANK)
                          : imp_const_ints(im, 1, p, 2 * IR_MAX_RANK);
  int r = x->shape.rank;
  if (np != 2 * r) return im->n_problems ? false : imp_fail(im, "pads must have 2*rank values");
  if (im->opset >= 18 && imp_in_opt(im, 3)) return imp_fail(im, "Pad axes are not supported");
  double value = imp_attr_float(n, "value", 0);
  ImpVal *cv = im->opset >= 11 ? imp_in_opt(im, 2) : NULL;
  if (cv && cv->has_const) value = tensor_get(&cv->konst, 0);
  Shape s = x->shape;
  int64_t q[2 * IR_MAX_RANK];
  for (int i = 0; i < r; i++) {
    if (p[i] < 0 || p[i + r] < 0) return imp_fail(im, "negative pads are not supported");
    if (p[i] > IMP_MAX_ELEMS || p[i + r] > IMP_MAX_ELEMS) return imp_fail(im, "pads too large");
    q[2 * i] = p[i], q[2 * i + 1] = p[i + r];
    s.dim[i] += p[i] + p[i + r];
  }
  const char *rx = imp_ref_tensor(im, x), *pads = imp_ints(im, q, 2 * r);
  if (!rx) return false;
  if (cv && !cv->has_const) { /* a runtime value: pad(x) + (1 - pad(ones)) * value */
    const char *rv = imp_ref_tensor(im, cv);
    return rv && imp_bind(im, 0, x->dtype, &s, "pad(%s, %s) + (1.0 - pad(fill(%s, 1.0), %s)) * %s",
                          rx, pads, imp_dims(im, &x->shape), pads, rv);
  }
  return imp_bind(im, 0, x->dtype, &s, "%s", imp_pad_expr(im, rx, &x->shape, pads, value));
}

static bool clip_bound(Imp *im, const Onnx__NodeProto *n, int k, const char *attr,
                       const char **out) {
  *out = NULL;
  if (im->opset < 11) {
    const Onnx__AttributeProto *a = imp_attr(n, attr);
    if (a && a->has_f) *out = imp_num(im, a->f);
    return true;
  }
  ImpVal *v = imp_in_opt(im, k);
  if (!v) return true;
  *out = v->has_const ? imp_num(im, tensor_get(&v->konst, 0)) : imp_ref_tensor(im, v);
  return *out != NULL;
}

static bool map_clip(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  const char *lo, *hi;
  if (!x || !clip_bound(im, n, 1, "min", &lo) || !clip_bound(im, n, 2, "max", &hi)) return false;
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  const char *e = r;
  if (lo) e = imp_printf(im, "maximum(%s, %s)", e, lo);
  if (hi) e = imp_printf(im, "minimum(%s, %s)", e, hi);
  return imp_bind(im, 0, x->dtype, &x->shape, "%s", e);
}

typedef struct OpEntry {
  const char *name;
  ImpOpFn fn;
} OpEntry;

static const OpEntry ops[] = {
    {"Reshape", map_reshape},     {"Flatten", map_reshape},
    {"Squeeze", map_reshape},     {"Unsqueeze", map_reshape},
    {"Transpose", map_transpose}, {"Concat", map_concat},
    {"Slice", map_slice},         {"Split", map_split},
    {"Gather", map_gather},       {"Expand", map_expand},
    {"Shape", map_shape},         {"Size", map_shape},
    {"Constant", map_constant},   {"ConstantOfShape", map_constant_of_shape},
    {"Identity", map_identity},   {"Dropout", map_identity},
    {"Cast", map_cast},           {"Where", map_where},
    {"Pad", map_pad},             {"Clip", map_clip},
};

ImpOpFn imp_op_shape(const char *op) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].name, op) == 0) return ops[i].fn;
  return NULL;
}
