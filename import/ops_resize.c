/* import/ops_resize.c — ONNX Resize (opsets 10–18) and Upsample, nearest and linear modes, by
 * index maps computed at import time: each resized axis becomes a gather of slices (and for
 * linear a weighted sum of two gathers); integer nearest upsampling keeps a cheap
 * reshape-and-broadcast form.
 *
 * Invariant: the source coordinate of every output index follows the ONNX reference
 * (coordinate_transformation_mode, nearest_mode, edge clamping, cubic coefficients and
 * exclude_outside); tf_crop_and_resize, antialias and the opset-18 axes are refused.
 */
#include "import/imp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct Resize {
  const char *mode, *ct, *nm;
  bool cubic, exclude_outside;
  double cubic_a;
  double scale[IR_MAX_RANK];
  Shape in, out;
} Resize;

static double source_coord(const Resize *z, int ax, int64_t o) {
  /* like the ONNX reference, the resized length is in * scale, before flooring */
  double in = (double)z->in.dim[ax], s = z->scale[ax], out = in * s;
  const char *ct = z->ct;
  if (strcmp(ct, "half_pixel") == 0) return (o + 0.5) / s - 0.5;
  if (strcmp(ct, "pytorch_half_pixel") == 0) return out > 1 ? (o + 0.5) / s - 0.5 : 0;
  if (strcmp(ct, "align_corners") == 0) return out > 1 ? o * (in - 1) / (out - 1) : 0;
  if (strcmp(ct, "tf_half_pixel_for_nn") == 0) return (o + 0.5) / s;
  return o / s; /* asymmetric */
}

static int64_t nearest(const char *nm, double x) {
  double f = floor(x);
  if (strcmp(nm, "floor") == 0) return (int64_t)f;
  if (strcmp(nm, "ceil") == 0) return (int64_t)ceil(x);
  if (x - f == 0.5) return (int64_t)(strcmp(nm, "round_prefer_ceil") == 0 ? f + 1 : f);
  return (int64_t)floor(x + 0.5);
}

static int64_t clamp_index(int64_t i, int64_t n) {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

const char *imp_gather_axis(Imp *im, const char *x, int rank, int ax, const int64_t *idx,
                               int64_t n) {
  const char *pre = "", *post = "", *list = "";
  for (int i = 0; i < ax; i++)
    pre = imp_printf(im, "%s:, ", pre);
  for (int i = ax + 1; i < rank; i++)
    post = imp_printf(im, "%s, :", post);
  int pieces = 0, groups = 0; /* concat takes at most 64 tensors: groups of 64 nest */
  const char *all = "";
  for (int64_t o = 0; o < n; pieces++) {
    int64_t run = 1; /* consecutive indices become one slice */
    while (o + run < n && idx[o + run] == idx[o] + run)
      run++;
    list = imp_printf(im, "%s%s%s[%s%lld:%lld%s]", list, pieces % 64 ? ", " : "", x, pre,
                      (long long)idx[o], (long long)(idx[o] + run), post);
    o += run;
    if ((pieces + 1) % 64 != 0 && o < n) continue;
    const char *g = pieces % 64 ? imp_printf(im, "concat([%s], axis = %d)", list, ax) : list;
    all = imp_printf(im, "%s%s%s", all, groups++ ? ", " : "", g);
    list = "";
  }
  return groups == 1 ? all : imp_printf(im, "concat([%s], axis = %d)", all, ax);
}

static bool is_repeat(const int64_t *idx, int64_t n, int64_t in) {
  if (n % in != 0) return false;
  for (int64_t o = 0; o < n; o++)
    if (idx[o] != o / (n / in)) return false;
  return true;
}

/* one axis of a nearest resize: x → the bound name of the result */
static const char *nearest_axis(Imp *im, const Resize *z, const char *x, const Shape *cur,
                                int ax) {
  int64_t n = z->out.dim[ax], *idx = malloc((size_t)n * sizeof *idx);
  if (!idx) return NULL;
  for (int64_t o = 0; o < n; o++)
    idx[o] = clamp_index(nearest(z->nm, source_coord(z, ax, o)), z->in.dim[ax]);
  const char *e;
  Shape next = *cur;
  next.dim[ax] = n;
  if (is_repeat(idx, n, z->in.dim[ax]) && cur->rank < IR_MAX_RANK) {
    Shape mid = {0}, big = {0}; /* [.., d_ax, 1, ..] broadcast to [.., d_ax, f, ..] */
    mid.rank = big.rank = cur->rank + 1;
    for (int i = 0; i < cur->rank; i++) {
      int k = i <= ax ? i : i + 1;
      mid.dim[k] = big.dim[k] = cur->dim[i];
    }
    mid.dim[ax + 1] = 1;
    big.dim[ax + 1] = n / z->in.dim[ax];
    e = imp_printf(im, "reshape(reshape(%s, %s) + fill(%s, 0.0), %s)", x, imp_dims(im, &mid),
                   imp_dims(im, &big), imp_dims(im, &next));
  } else {
    e = imp_gather_axis(im, x, cur->rank, ax, idx, n);
  }
  free(idx);
  return imp_let(im, imp_printf(im, "resize_axis%d", ax), "%s", e);
}

/* the taps of output index o along ax: source indices (edge-clamped) and weights; linear
 * (2 taps) or cubic (4 taps, coefficient a, optionally excluding outside taps) like the ONNX
 * reference */
static int taps(const Resize *z, int ax, int64_t o, int64_t *idx, double *w) {
  int64_t len = z->in.dim[ax];
  double c = source_coord(z, ax, o);
  if (!z->cubic) {
    c = c < 0 ? 0 : c > (double)(len - 1) ? (double)(len - 1) : c;
    idx[0] = (int64_t)floor(c), idx[1] = idx[0] + 1 < len ? idx[0] + 1 : len - 1;
    w[1] = c - (double)idx[0], w[0] = 1 - w[1];
    return 2;
  }
  double f = floor(c), r = c - f, A = z->cubic_a, sum = 0;
  w[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
  w[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  w[2] = ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1;
  w[3] = ((A * (2 - r) - 5 * A) * (2 - r) + 8 * A) * (2 - r) - 4 * A;
  for (int k = 0; k < 4; k++) {
    int64_t i = (int64_t)f - 1 + k;
    if (z->exclude_outside && (i < 0 || i >= len)) w[k] = 0;
    idx[k] = clamp_index(i, len);
    sum += w[k];
  }
  for (int k = 0; z->exclude_outside && sum != 0 && k < 4; k++)
    w[k] /= sum;
  return 4;
}

/* one axis of a linear or cubic resize: sum over taps of w_k * x[idx_k], w_k a constant per
 * output index */
static const char *interp_axis(Imp *im, const Resize *z, const char *x, const Shape *cur, int ax,
                               DType dt) {
  int64_t n = z->out.dim[ax], *idx = malloc((size_t)n * 4 * sizeof *idx);
  Shape ws = {0};
  ws.rank = cur->rank - ax;
  ws.dim[0] = n;
  for (int i = 1; i < ws.rank; i++)
    ws.dim[i] = 1;
  ImpVal *w[4] = {NULL};
  int nt = z->cubic ? 4 : 2;
  bool ok = idx != NULL;
  for (int k = 0; ok && k < nt; k++) {
    w[k] = imp_new_val(im, imp_printf(im, "\x02resize_w%d_%d", ax, k), dt, &ws);
    ok = w[k] && tensor_alloc(&w[k]->konst, dt, &ws);
    if (ok) w[k]->has_const = true;
  }
  for (int64_t o = 0; ok && o < n; o++) {
    double wt[4];
    taps(z, ax, o, idx + 4 * o, wt);
    for (int k = 0; k < nt; k++)
      tensor_set(&w[k]->konst, o, wt[k]);
  }
  const char *sum = "", *res = NULL;
  int64_t *col = ok ? malloc((size_t)n * sizeof *col) : NULL;
  for (int k = 0; col && k < nt; k++) {
    for (int64_t o = 0; o < n; o++)
      col[o] = idx[4 * o + k];
    const char *rw = imp_ref_tensor(im, w[k]);
    if (!rw) break;
    sum = imp_printf(im, "%s%s%s * %s", sum, k ? " + " : "", rw,
                     imp_gather_axis(im, x, cur->rank, ax, col, n));
    if (k == nt - 1) res = imp_let(im, imp_printf(im, "resize_axis%d", ax), "%s", sum);
  }
  free(col);
  free(idx);
  return res;
}

/* scales or sizes into z->scale / z->out */
static bool read_sizes(Imp *im, const Onnx__NodeProto *n, ImpVal *x, Resize *z) {
  bool up = strcmp(n->op_type, "Upsample") == 0;
  int r = x->shape.rank;
  ImpVal *sc = up ? (im->opset >= 9 ? imp_in_opt(im, 1) : NULL)
                  : imp_in_opt(im, im->opset < 11 ? 1 : 2);
  ImpVal *sz = !up && im->opset >= 11 ? imp_in_opt(im, 3) : NULL;
  const Onnx__AttributeProto *a = up && im->opset < 9 ? imp_attr(n, "scales") : NULL;
  z->in = z->out = x->shape;
  for (int i = 0; i < r; i++) {
    if (sz && sz->has_const && shape_numel(&sz->shape) == r) {
      z->out.dim[i] = imp_get_i64(&sz->konst, i);
      z->scale[i] = (double)z->out.dim[i] / (double)x->shape.dim[i];
    } else if (sc && sc->has_const && shape_numel(&sc->shape) == r) {
      z->scale[i] = tensor_get(&sc->konst, i);
      double o = floor((double)x->shape.dim[i] * z->scale[i]);
      z->out.dim[i] = o >= 1 && o <= (1 << 20) ? (int64_t)o : 0;
    } else if (a && a->n_floats == (size_t)r) {
      z->scale[i] = a->floats[i];
      double o = floor((double)x->shape.dim[i] * z->scale[i]);
      z->out.dim[i] = o >= 1 && o <= (1 << 20) ? (int64_t)o : 0;
    } else {
      return imp_fail(im, "scales or sizes must be constants with one value per axis");
    }
    if (z->out.dim[i] < 1 || !(z->scale[i] > 0) || z->out.dim[i] > (1 << 20))
      return imp_fail(im, "empty or too large resize output");
  }
  return true;
}

static bool map_resize(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  Resize z;
  memset(&z, 0, sizeof z);
  bool old = strcmp(n->op_type, "Upsample") == 0 || im->opset < 11;
  z.mode = imp_attr_str(im, n, "mode", "nearest");
  z.ct = old ? "asymmetric" : imp_attr_str(im, n, "coordinate_transformation_mode", "half_pixel");
  z.nm = old ? "floor" : imp_attr_str(im, n, "nearest_mode", "round_prefer_floor");
  z.cubic = strcmp(z.mode, "cubic") == 0;
  z.cubic_a = imp_attr_float(n, "cubic_coeff_a", -0.75);
  z.exclude_outside = imp_attr_int(n, "exclude_outside", 0) != 0;
  bool linear = strcmp(z.mode, "linear") == 0 || strcmp(z.mode, "bilinear") == 0 || z.cubic;
  if (!linear && strcmp(z.mode, "nearest") != 0)
    return imp_fail(im, "resize mode '%s' is not supported", z.mode);
  if (strcmp(z.ct, "tf_crop_and_resize") == 0 || imp_attr_int(n, "antialias", 0) ||
      imp_attr(n, "axes"))
    return imp_fail(im, "tf_crop_and_resize, antialias and axes are not supported");
  static const char *const known_ct[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                         "tf_half_pixel_for_nn", "asymmetric"};
  bool known = false; /* source_coord's modes; opset 19's half_pixel_symmetric is not one */
  for (size_t i = 0; i < sizeof known_ct / sizeof *known_ct; i++)
    known |= strcmp(z.ct, known_ct[i]) == 0;
  if (!known)
    return imp_fail(im, "coordinate_transformation_mode '%s' is not supported", z.ct);
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float tensors are supported");
  if (!read_sizes(im, n, x, &z)) return false;
  const char *cur = imp_ref_tensor(im, x);
  Shape s = x->shape;
  for (int ax = 0; cur && ax < s.rank; ax++) {
    if (z.out.dim[ax] == z.in.dim[ax] && z.scale[ax] == 1) continue;
    cur = linear ? interp_axis(im, &z, cur, &s, ax, x->dtype) : nearest_axis(im, &z, cur, &s, ax);
    s.dim[ax] = z.out.dim[ax];
  }
  return cur && imp_bind(im, 0, x->dtype, &s, "%s", cur);
}

ImpOpFn imp_op_resize(const char *op) {
  if (strcmp(op, "Resize") == 0 || strcmp(op, "Upsample") == 0) return map_resize;
  return NULL;
}
