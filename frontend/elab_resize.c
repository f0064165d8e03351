/* frontend/elab_resize.c — resizing NCHW images like F.interpolate:
 *   upsample(x, scale, mode = "nearest", align_corners = false)
 *   interpolate(x, size = [h, w], scale = s, mode = "nearest", align_corners = false)
 * scale is a number or [sh, sw] of ints (the output is floor(H sh) x floor(W sw)); interpolate
 * takes size or scale. mode is "nearest" or "bilinear"; align_corners only with "bilinear".
 *
 * Source coordinates follow PyTorch (in double): nearest reads floor(o * r) clamped to the
 * input, r = in / out for a size and 1 / scale for a scale; bilinear reads src = r (o + 0.5)
 * - 0.5 clamped at 0 (align_corners: src = o (in - 1) / (out - 1)) and mixes floor(src) and
 * the next index (clamped) by the fraction.
 *
 * Lowering: nearest at an integer scale is reshape to [N, C, H, 1, W, 1], broadcast to
 * [N, C, H, sh, W, sw] and reshape to [N, C, H sh, W sw] (a copy; its gradient sums the
 * blocks). Every other case is separable: y = A_h x A_w^T with constant interpolation
 * matrices A_h [Ho, H], A_w [Wo, W] (at most two nonzeros per row): two MATMULs on the GEMM
 * kernels, x @ A_w^T over all N C H rows and A_h @ (that) batched over the images, whose
 * gradient is that of MATMUL. The dense matrices cost H (or W) multiply-adds per output
 * element and pass, cheap against the convolutions around a decoder's upsampling at the
 * sizes such models use.
 */
#include "frontend/elab.h"

#include <math.h>
#include <string.h>

typedef struct Resize {
  bool bilinear, align_corners;
  bool by_size;    /* output size given (ratio in / out), else a scale (ratio 1 / scale) */
  double scale[2]; /* by scale: per spatial axis */
  int64_t in[2], out[2];
} Resize;

static double ratio(const Resize *z, int ax) {
  return z->by_size ? (double)z->in[ax] / (double)z->out[ax] : 1.0 / z->scale[ax];
}

/* row o of the interpolation matrix of axis ax: weights w[0..in) (zeroed by the caller) */
static void matrix_row(const Resize *z, int ax, int64_t o, double *w) {
  int64_t in = z->in[ax], out = z->out[ax];
  if (!z->bilinear) {
    int64_t i = (int64_t)floor((double)o * ratio(z, ax));
    w[i < in - 1 ? i : in - 1] = 1;
    return;
  }
  double src;
  if (z->align_corners)
    src = out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0;
  else
    src = fmax(ratio(z, ax) * ((double)o + 0.5) - 0.5, 0);
  int64_t i0 = (int64_t)src, i1 = i0 < in - 1 ? i0 + 1 : i0;
  double f = src - (double)i0;
  w[i0] += 1 - f;
  w[i1] += f;
}

/* the [out, in] matrix of axis ax, or its transpose [in, out] */
static NodeId matrix(Builder *b, const Resize *z, int ax, bool transposed, DType t) {
  int64_t in = z->in[ax], out = z->out[ax];
  double *data = arena_alloc(&b->g->arena, sizeof(double) * (size_t)(in * out));
  double *row = arena_alloc(&b->g->arena, sizeof(double) * (size_t)in);
  for (int64_t o = 0; o < out; o++) {
    memset(row, 0, sizeof(double) * (size_t)in);
    matrix_row(z, ax, o, row);
    for (int64_t i = 0; i < in; i++)
      data[transposed ? i * out + o : o * in + i] = row[i];
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.constant.dtype = t;
  int64_t dims[2] = {transposed ? in : out, transposed ? out : in};
  at.constant.shape = shape_make(2, dims);
  at.constant.data = data;
  return build_node(b, OP_CONST, NULL, 0, &at);
}

/* nearest at integer scales: every pixel repeated sh x sw times */
static bool integer_nearest(const Resize *z, int64_t *s) {
  for (int ax = 0; ax < 2; ax++) {
    s[ax] = z->out[ax] / z->in[ax];
    if (z->bilinear || z->out[ax] != s[ax] * z->in[ax]) return false;
    if (!z->by_size && z->scale[ax] != (double)s[ax]) return false;
  }
  return true;
}

static NodeId resize(Builder *b, NodeId x, const Resize *z) {
  const Node *xn = graph_node(b->g, x);
  Shape xs = xn->shape;
  int64_t s[2];
  if (integer_nearest(z, s)) {
    int64_t d6[6] = {xs.dim[0], xs.dim[1], xs.dim[2], 1, xs.dim[3], 1};
    Shape r6 = shape_make(6, d6), b6, y = xs;
    r6.dyn = xs.dyn;
    b6 = r6;
    b6.dim[3] = s[0];
    b6.dim[5] = s[1];
    y.dim[2] = z->out[0];
    y.dim[3] = z->out[1];
    return build_reshape(b, build_broadcast(b, build_reshape(b, x, &r6), &b6), &y);
  }
  NodeId rows = build_matmul(b, x, matrix(b, z, 1, true, xn->dtype), false, false);
  return build_matmul(b, matrix(b, z, 0, false, xn->dtype), rows, false, false);
}

/* ---- arguments ---------------------------------------------------------------------------- */

enum { R_X, R_SIZE, R_SCALE, R_MODE, R_ALIGN, R_MAX };

static bool scale_arg(Elab *E, Scope *s, const Expr *e, Resize *z) {
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    z->scale[0] = z->scale[1] = v.kind == VAL_INT ? (double)v.i : v.f;
  } else if (v.kind == VAL_LIST && v.n_items == 2 && !v.dyn) {
    z->scale[0] = (double)v.items[0];
    z->scale[1] = (double)v.items[1];
  } else {
    if (v.kind != VAL_NONE)
      diag_error(E->d, e->loc, "'scale' must be a number or [sh, sw] of ints, got %s",
                 elab_value_str(E, v));
    return false;
  }
  for (int ax = 0; ax < 2; ax++) {
    z->out[ax] = (int64_t)floor((double)z->in[ax] * z->scale[ax]);
    if (!(z->scale[ax] > 0) || z->out[ax] < 1 || z->out[ax] > 1 << 20) {
      diag_error(E->d, e->loc, "'scale' %g gives an output of %lld from %lld", z->scale[ax],
                 (long long)z->out[ax], (long long)z->in[ax]);
      return false;
    }
  }
  return true;
}

static bool size_arg(Elab *E, Scope *s, const Expr *e, Resize *z) {
  Value v = elab_expr(E, s, e);
  if (v.kind == VAL_NONE) return false;
  if (!elab_static_list(E, v, e, "'size'")) return false;
  bool ok = v.kind == VAL_LIST && v.n_items == 2;
  for (int ax = 0; ok && ax < 2; ax++) {
    z->out[ax] = v.items[ax];
    ok = z->out[ax] >= 1 && z->out[ax] <= 1 << 20;
  }
  if (!ok)
    diag_error(E->d, e->loc, "'size' must be [h, w] of positive ints, got %s",
               elab_value_str(E, v));
  z->by_size = true;
  return ok;
}

static bool mode_arg(Elab *E, Scope *s, const Expr *const *a, Resize *z) {
  const Expr *m = a[R_MODE];
  if (m && (m->kind != EX_STRING ||
            (strcmp(m->name, "nearest") != 0 && strcmp(m->name, "bilinear") != 0))) {
    diag_error(E->d, m->loc, "'mode' must be \"nearest\" or \"bilinear\"");
    return false;
  }
  z->bilinear = m && strcmp(m->name, "bilinear") == 0;
  if (!a[R_ALIGN]) return true;
  Value v = elab_expr(E, s, a[R_ALIGN]);
  if (v.kind != VAL_BOOL) {
    if (v.kind != VAL_NONE)
      diag_error(E->d, a[R_ALIGN]->loc, "'align_corners' must be true or false, got %s",
                 elab_value_str(E, v));
    return false;
  }
  z->align_corners = v.i != 0;
  if (z->align_corners && !z->bilinear) {
    diag_error(E->d, a[R_ALIGN]->loc, "align_corners = true needs mode = \"bilinear\"");
    return false;
  }
  return true;
}

Value elab_resize_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const up[] = {"x", "scale", "mode", "align_corners"};
  static const char *const inter[] = {"x", "size", "scale", "mode", "align_corners"};
  bool is_up = strcmp(call->name, "upsample") == 0;
  const Expr *got[R_MAX], *a[R_MAX] = {NULL};
  if (!elab_match_args(E, call, is_up ? up : inter, is_up ? 4 : 5, got)) return (Value){0};
  a[R_X] = got[0];
  for (int i = 1; i < (is_up ? 4 : 5); i++)
    a[is_up ? i + 1 : i] = got[i];
  if (!a[R_X] || (a[R_SIZE] != NULL) == (a[R_SCALE] != NULL)) {
    diag_error(E->d, call->loc,
               is_up ? "'upsample' needs x and scale"
                     : "'interpolate' needs x and one of size or scale");
    return (Value){0};
  }
  Value xv = elab_expr(E, s, a[R_X]);
  if (xv.kind == VAL_NONE) return xv;
  const Node *xn = xv.kind == VAL_TENSOR ? graph_node(E->g, xv.node) : NULL;
  if (!xn || xn->shape.rank != 4 || !dtype_is_float(xn->dtype)) {
    diag_error(E->d, a[R_X]->loc, "'%s': expected a floating-point NCHW tensor, got %s", call->name,
               elab_value_str(E, xv));
    return (Value){0};
  }
  Resize z;
  memset(&z, 0, sizeof z);
  z.in[0] = xn->shape.dim[2];
  z.in[1] = xn->shape.dim[3];
  if (!(a[R_SIZE] ? size_arg(E, s, a[R_SIZE], &z) : scale_arg(E, s, a[R_SCALE], &z)) ||
      !mode_arg(E, s, a, &z))
    return (Value){0};
  Builder b = elab_builder(E, call->loc);
  return elab_tensor_value(resize(&b, xv.node, &z));
}
