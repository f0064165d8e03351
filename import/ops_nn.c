/* import/ops_nn.c — ONNX convolution, pooling and normalization ops: Conv (1-D and 2-D),
 * ConvTranspose, MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, BatchNormalization
 * (inference form, running statistics held constant by stop_gradient), LayerNormalization,
 * InstanceNormalization.
 *
 * Invariant: 1-D convolutions and pools run as 2-D ones over an inserted axis of size 1;
 * every accepted attribute combination matches lathe's builtin exactly, others are refused.
 */
#include "import/imp.h"

#include <string.h>

typedef struct Window {
  int nd;                               /* spatial dims (1 or 2) */
  int64_t k[2], s[2], d[2], pb[2], pe[2]; /* kernel, stride, dilation, pads begin / end */
  int64_t in[2], out[2];
} Window;

static int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/* reads kernel_shape/strides/dilations/pads/auto_pad for spatial dims in[] */
static bool read_window(Imp *im, const Onnx__NodeProto *n, const Shape *x, const int64_t *kdef,
                        Window *w) {
  int nd = x->rank - 2;
  if (nd < 1 || nd > 2) return imp_fail(im, "only 1-D and 2-D windows are supported");
  w->nd = nd;
  int64_t v[8];
  int nk = imp_attr_ints(n, "kernel_shape", v, 2);
  for (int i = 0; i < nd; i++) {
    w->in[i] = x->dim[2 + i];
    w->k[i] = nk == nd ? v[i] : kdef ? kdef[i] : -1;
    w->s[i] = w->d[i] = 1;
    w->pb[i] = w->pe[i] = 0;
  }
  if (w->k[0] < 1 || w->k[nd - 1] < 1) return imp_fail(im, "kernel_shape is missing");
  if (imp_attr_ints(n, "strides", v, 2) == nd) memcpy(w->s, v, (size_t)nd * sizeof *v);
  if (imp_attr_ints(n, "dilations", v, 2) == nd) memcpy(w->d, v, (size_t)nd * sizeof *v);
  if (imp_attr_ints(n, "pads", v, 4) == 2 * nd)
    for (int i = 0; i < nd; i++)
      w->pb[i] = v[i], w->pe[i] = v[i + nd];
  const char *ap = imp_attr_str(im, n, "auto_pad", "NOTSET");
  bool same = strncmp(ap, "SAME", 4) == 0;
  for (int i = 0; i < nd; i++) {
    const int64_t lim = 1 << 20;
    if (w->s[i] < 1 || w->d[i] < 1 || w->pb[i] < 0 || w->pe[i] < 0 || w->s[i] > lim ||
        w->d[i] > lim || w->pb[i] > lim || w->pe[i] > lim || w->k[i] > lim)
      return imp_fail(im, "invalid kernel, strides, dilations or pads");
    int64_t span = (w->k[i] - 1) * w->d[i] + 1;
    if (same) {
      int64_t tot = (ceil_div(w->in[i], w->s[i]) - 1) * w->s[i] + span - w->in[i];
      tot = tot < 0 ? 0 : tot;
      w->pb[i] = strcmp(ap, "SAME_LOWER") == 0 ? tot - tot / 2 : tot / 2;
      w->pe[i] = tot - w->pb[i];
    } else if (strcmp(ap, "VALID") == 0) {
      w->pb[i] = w->pe[i] = 0;
    }
    int64_t len = w->in[i] + w->pb[i] + w->pe[i] - span;
    if (len < 0) return imp_fail(im, "the window is larger than the padded input");
    w->out[i] = len / w->s[i] + 1;
  }
  return true;
}

/* "[a, b]" of the two spatial values (1-D: [1, a]) */
static const char *pair(Imp *im, const Window *w, const int64_t *v, int64_t one) {
  if (w->nd == 1) return imp_printf(im, "[%lld, %lld]", (long long)one, (long long)v[0]);
  return imp_printf(im, "[%lld, %lld]", (long long)v[0], (long long)v[1]);
}

/* x as a 4-D operand (1-D: [N, C, 1, L]) */
static const char *as4d(Imp *im, ImpVal *x, const char *r) {
  if (x->shape.rank == 4) return r;
  return imp_printf(im, "reshape(%s, [%lld, %lld, 1, %lld])", r, (long long)x->shape.dim[0],
                    (long long)x->shape.dim[1], (long long)x->shape.dim[2]);
}

static Shape out_shape(const ImpVal *x, int64_t c, const Window *w) {
  Shape s = x->shape;
  s.dim[1] = c;
  for (int i = 0; i < w->nd; i++)
    s.dim[2 + i] = w->out[i];
  return s;
}

static const char *bias_term(Imp *im, ImpVal *b, int64_t c, int rank) {
  const char *rb = imp_ref_tensor(im, b);
  if (!rb) return NULL;
  return imp_printf(im, " + reshape(%s, [%lld%s])", rb, (long long)c, rank == 4 ? ", 1, 1" : ", 1");
}

const char *imp_conv_expr(Imp *im, const Onnx__NodeProto *n, const char *rx, const Shape *xs,
                          const char *rw, const Shape *ws, Shape *out) {
  Window w;
  int64_t kdef[2] = {ws->dim[2], ws->rank > 3 ? ws->dim[3] : 0};
  if (ws->rank != xs->rank || !read_window(im, n, xs, kdef, &w)) return NULL;
  int64_t g = imp_attr_int(n, "group", 1), o = ws->dim[0];
  if (g < 1 || xs->dim[1] != ws->dim[1] * g || o % g != 0) {
    imp_fail(im, "channels differ");
    return NULL;
  }
  if (w.nd == 1)
    rw = imp_printf(im, "reshape(%s, [%lld, %lld, 1, %lld])", rw, (long long)o,
                    (long long)ws->dim[1], (long long)ws->dim[2]);
  int64_t pad4[4] = {0, w.pb[0], 0, w.pe[0]};
  if (w.nd == 2) pad4[0] = w.pb[0], pad4[1] = w.pb[1], pad4[2] = w.pe[0], pad4[3] = w.pe[1];
  ImpVal xv = {.shape = *xs};
  const char *e = imp_printf(im, "conv(%s, %s, stride = %s, padding = %s, dilation = %s%s)",
                             as4d(im, &xv, rx), rw, pair(im, &w, w.s, 1), imp_ints(im, pad4, 4),
                             pair(im, &w, w.d, 1),
                             g > 1 ? imp_printf(im, ", groups = %lld", (long long)g) : "");
  *out = out_shape(&xv, o, &w);
  return w.nd == 1 ? imp_printf(im, "reshape(%s, %s)", e, imp_dims(im, out)) : e;
}

static bool map_conv(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *wt = imp_in(im, 1), *b = imp_in_opt(im, 2);
  if (!x || !wt) return false;
  const char *rx = imp_ref_tensor(im, x), *rw = imp_ref_tensor(im, wt);
  if (!rx || !rw) return false;
  Shape s;
  const char *e = imp_conv_expr(im, n, rx, &x->shape, rw, &wt->shape, &s);
  if (!e) return false;
  int64_t o = wt->shape.dim[0];
  if (b) {
    const char *bt = bias_term(im, b, o, s.rank);
    if (!bt) return false;
    e = imp_printf(im, "%s%s", e, bt);
  }
  return imp_bind(im, 0, x->dtype, &s, "%s", e);
}

/* ONNX's ConvTranspose padding for each spatial dim: begin pads pb and output length out */
static bool convt_geometry(Imp *im, const Onnx__NodeProto *n, const Window *w, const int64_t *in,
                           int64_t *pb, int64_t *out) {
  int64_t op[2] = {0, 0}, os[2], v[2];
  if (imp_attr_ints(n, "output_padding", v, 2) == w->nd) memcpy(op, v, sizeof v);
  for (int i = 0; i < w->nd; i++)
    if (op[i] < 0 || op[i] > (1 << 20) || in[i] > (1 << 24))
      return imp_fail(im, "invalid output_padding");
  int nos = imp_attr_ints(n, "output_shape", os, 2);
  const char *ap = imp_attr_str(im, n, "auto_pad", "NOTSET");
  bool same = strncmp(ap, "SAME", 4) == 0, upper = strcmp(ap, "SAME_UPPER") == 0;
  if (nos >= 0 && nos != w->nd) return imp_fail(im, "output_shape must give the spatial dims");
  for (int i = 0; i < w->nd; i++) {
    int64_t full = w->s[i] * (in[i] - 1) + op[i] + (w->k[i] - 1) * w->d[i] + 1;
    if (nos >= 0 || same) {
      out[i] = nos >= 0 ? os[i] : in[i] * w->s[i];
      int64_t total = full - out[i], half = total >= 0 ? total / 2 : -((1 - total) / 2);
      pb[i] = upper ? half : total - half; /* half = floor(total / 2), like the reference */
    } else {
      pb[i] = strcmp(ap, "VALID") == 0 ? 0 : w->pb[i];
      out[i] = full - pb[i] - (strcmp(ap, "VALID") == 0 ? 0 : w->pe[i]);
    }
    if (pb[i] < 0 || out[i] < 1 || out[i] > (1 << 24))
      return imp_fail(im, "negative padding, empty or too large output");
  }
  return true;
}

/* the [pb, pb + out) window of the full result e (extended with zeros past its end): pads
 * e in place, returns the slice suffix */
static const char *convt_window(Imp *im, const Window *w, const int64_t *in, const int64_t *pb,
                                const int64_t *out, const char **e) {
  int64_t p8[8] = {0}, idx[4] = {0, 0, 0, 0};
  bool extend = false;
  for (int i = 0; i < w->nd; i++) {
    int64_t full = w->s[i] * (in[i] - 1) + (w->k[i] - 1) * w->d[i] + 1;
    int ax = 4 - w->nd + i;
    p8[2 * ax + 1] = pb[i] + out[i] > full ? pb[i] + out[i] - full : 0;
    extend |= p8[2 * ax + 1] > 0;
    idx[ax] = pb[i];
  }
  if (extend) *e = imp_printf(im, "pad(%s, %s)", *e, imp_ints(im, p8, 8));
  if (w->nd == 1)
    return imp_printf(im, "[:, :, :, %lld:%lld]", (long long)idx[3], (long long)(idx[3] + out[0]));
  return imp_printf(im, "[:, :, %lld:%lld, %lld:%lld]", (long long)idx[2],
                    (long long)(idx[2] + out[0]), (long long)idx[3], (long long)(idx[3] + out[1]));
}

/* the full transposed convolution (no padding), then the ONNX window of it: extended with
 * zeros past its end (output_padding) and cut at the begin pads */
static bool map_conv_transpose(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *wt = imp_in(im, 1), *b = imp_in_opt(im, 2);
  if (!x || !wt) return false;
  if (wt->shape.rank != x->shape.rank) return imp_fail(im, "W and X ranks differ");
  Window w;
  int64_t kdef[2] = {wt->shape.dim[2], wt->shape.rank > 3 ? wt->shape.dim[3] : 0};
  Shape fake = x->shape; /* read_window's output size does not apply here */
  for (int i = 2; i < fake.rank; i++)
    fake.dim[i] = 1 << 20;
  if (!read_window(im, n, &fake, kdef, &w)) return false;
  int64_t g = imp_attr_int(n, "group", 1), o = wt->shape.dim[1] * g, in[2], pb[2], out[2];
  for (int i = 0; i < w.nd; i++)
    in[i] = x->shape.dim[2 + i];
  if (!convt_geometry(im, n, &w, in, pb, out)) return false;
  const char *rx = imp_ref_tensor(im, x), *rw = imp_ref_tensor(im, wt);
  if (!rx || !rw) return false;
  if (w.nd == 1)
    rw = imp_printf(im, "reshape(%s, [%lld, %lld, 1, %lld])", rw, (long long)wt->shape.dim[0],
                    (long long)wt->shape.dim[1], (long long)wt->shape.dim[2]);
  const char *e = imp_printf(im, "conv_transpose(%s, %s, stride = %s, padding = [0, 0], "
                                 "dilation = %s%s)", as4d(im, x, rx), rw, pair(im, &w, w.s, 1),
                             pair(im, &w, w.d, 1),
                             g > 1 ? imp_printf(im, ", groups = %lld", (long long)g) : "");
  const char *cut = convt_window(im, &w, in, pb, out, &e);
  e = imp_let(im, imp_printf(im, "%s_full", n->output[0]), "%s", e);
  if (!e) return false;
  e = imp_printf(im, "%s%s", e, cut);
  Shape s = x->shape;
  s.dim[1] = o;
  for (int i = 0; i < w.nd; i++)
    s.dim[2 + i] = out[i];
  if (w.nd == 1) e = imp_printf(im, "reshape(%s, %s)", e, imp_dims(im, &s));
  if (b) {
    const char *bt = bias_term(im, b, o, s.rank);
    if (!bt) return false;
    e = imp_printf(im, "%s%s", e, bt);
  }
  return imp_bind(im, 0, x->dtype, &s, "%s", e);
}

/* pads of a 4-D operand for pad(): [0, 0, 0, 0, top, bottom, left, right] */
static const char *pad_list(Imp *im, const Window *w, const int64_t *extra) {
  int64_t p[8] = {0};
  for (int i = 0; i < w->nd; i++) {
    int ax = 4 - w->nd + i;
    p[2 * ax] = w->pb[i], p[2 * ax + 1] = w->pe[i] + extra[i];
  }
  return imp_ints(im, p, 8);
}

/* the padding the pool needs beyond what lathe's symmetric `padding` gives; false = none */
static bool pool_extra(Imp *im, const Onnx__NodeProto *n, Window *w, int64_t *extra) {
  bool explicit_pad = false;
  for (int i = 0; i < w->nd; i++) {
    int64_t span = (w->k[i] - 1) * w->d[i] + 1, len = w->in[i] + w->pb[i] + w->pe[i] - span;
    extra[i] = 0;
    if (imp_attr_int(n, "ceil_mode", 0) && len % w->s[i] != 0) {
      extra[i] = w->s[i] - len % w->s[i];
      w->out[i] = len / w->s[i] + 2;
    }
    explicit_pad |= extra[i] || w->pb[i] != w->pe[i] || 2 * w->pb[i] > w->k[i];
  }
  return explicit_pad;
}

static bool map_pool(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  Window w;
  if (!x || !read_window(im, n, &x->shape, NULL, &w)) return false;
  bool is_max = strcmp(n->op_type, "MaxPool") == 0;
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float tensors are supported");
  if (n->n_output > 1 && n->output[1] && *n->output[1])
    return imp_fail(im, "the Indices output is not supported");
  int64_t extra[2] = {0, 0}, zero[2] = {0, 0};
  bool explicit_pad = pool_extra(im, n, &w, extra);
  bool padded = w.pb[0] || w.pe[0] || (w.nd == 2 && (w.pb[1] || w.pe[1]));
  bool exclude = !is_max && (padded || extra[0] || extra[1]) &&
                 !imp_attr_int(n, "count_include_pad", 0);
  if (!is_max && !exclude && (extra[0] || extra[1]))
    return imp_fail(im, "ceil_mode with count_include_pad is not supported");
  if (!is_max && (w.d[0] != 1 || (w.nd == 2 && w.d[1] != 1)))
    return imp_fail(im, "dilated average pooling is not supported");
  const char *rx = imp_ref_tensor(im, x);
  if (!rx) return false;
  const char *x4 = as4d(im, x, rx), *pad = pair(im, &w, w.pb, 0);
  if (explicit_pad || exclude) {
    Shape s4 = x->shape;
    if (w.nd == 1) s4.rank = 4, s4.dim[3] = s4.dim[2], s4.dim[2] = 1;
    x4 = imp_pad_expr(im, x4, &s4, pad_list(im, &w, extra), is_max ? -3.4e38 : 0);
    pad = pair(im, &w, zero, 0);
  }
  const char *dil = is_max ? imp_printf(im, ", dilation = %s", pair(im, &w, w.d, 1)) : "";
  const char *tail = imp_printf(im, "%s, stride = %s, padding = %s%s)", pair(im, &w, w.k, 1),
                                pair(im, &w, w.s, 1), pad, dil);
  const char *e = imp_printf(im, "%s(%s, %s", is_max ? "max_pool2d" : "avg_pool2d", x4, tail);
  if (exclude) { /* divide by the count of real elements: the same pool of padded ones */
    Shape s4 = x->shape;
    if (w.nd == 1) s4.rank = 4, s4.dim[3] = s4.dim[2], s4.dim[2] = 1;
    e = imp_printf(im, "%s / avg_pool2d(pad(fill(%s, 1.0), %s, value = 0.0), %s", e,
                   imp_dims(im, &s4), pad_list(im, &w, extra), tail);
  }
  Shape s = out_shape(x, x->shape.dim[1], &w);
  if (w.nd == 1) e = imp_printf(im, "reshape(%s, %s)", e, imp_dims(im, &s));
  return imp_bind(im, 0, x->dtype, &s, "%s", e);
}

static bool map_global_pool(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  if (x->shape.rank < 3) return imp_fail(im, "rank below 3");
  const char *rx = imp_ref_tensor(im, x), *axes = "(";
  if (!rx) return false;
  Shape s = x->shape;
  for (int i = 2; i < s.rank; i++) {
    axes = imp_printf(im, "%s%s%d", axes, i > 2 ? ", " : "", i);
    s.dim[i] = 1;
  }
  axes = imp_printf(im, "%s%s)", axes, s.rank == 3 ? "," : "");
  bool mx = strcmp(n->op_type, "GlobalMaxPool") == 0;
  return imp_bind(im, 0, x->dtype, &s, "%s(%s, axis = %s, keepdims = true)", mx ? "max" : "mean",
                  rx, axes);
}

/* [C] → [C, 1, ...] for a channel-wise operand of an x of rank r */
static const char *channel(Imp *im, ImpVal *v, int r, bool frozen) {
  const char *rv = imp_ref_tensor(im, v);
  if (!rv) return NULL;
  if (frozen) rv = imp_printf(im, "stop_gradient(%s)", rv);
  const char *ones = "";
  for (int i = 2; i < r; i++)
    ones = imp_printf(im, "%s, 1", ones);
  return r > 2 ? imp_printf(im, "reshape(%s, [%lld%s])", rv, (long long)v->shape.dim[0], ones)
               : rv;
}

/* training mode: batch statistics (population variance); outputs the updated running
 * statistics input * momentum + batch * (1 - momentum) */
static bool batchnorm_training(Imp *im, const Onnx__NodeProto *n, ImpVal *x, ImpVal *sc,
                               ImpVal *b, ImpVal *m, ImpVal *v) {
  int r = x->shape.rank;
  double eps = imp_attr_float(n, "epsilon", 1e-5), mom = imp_attr_float(n, "momentum", 0.9);
  const char *axes = "(0", *rx = imp_ref_tensor(im, x), *cs = channel(im, sc, r, false),
             *cb = channel(im, b, r, false), *rm = imp_ref_tensor(im, m),
             *rv = imp_ref_tensor(im, v);
  if (!rx || !cs || !cb || !rm || !rv) return false;
  for (int i = 2; i < r; i++)
    axes = imp_printf(im, "%s, %d", axes, i);
  axes = imp_printf(im, "%s%s)", axes, r == 2 ? "," : "");
  const char *base = n->output[0];
  const char *bm = imp_let(im, imp_printf(im, "%s_mean", base),
                           "mean(%s, axis = %s, keepdims = true)", rx, axes);
  const char *c = bm ? imp_let(im, imp_printf(im, "%s_centered", base), "%s - %s", rx, bm) : NULL;
  const char *bv = c ? imp_let(im, imp_printf(im, "%s_var", base),
                               "mean(%s * %s, axis = %s, keepdims = true)", c, c, axes)
                     : NULL;
  if (!bv) return false;
  Shape cs1 = {0};
  cs1.rank = 1, cs1.dim[0] = x->shape.dim[1];
  const char *mo = imp_num(im, mom), *one_m = imp_num(im, 1 - mom);
  imp_bind(im, 1, x->dtype, &cs1, "%s * %s + reshape(%s, [%lld]) * %s", rm, mo, bm,
           (long long)cs1.dim[0], one_m);
  imp_bind(im, 2, x->dtype, &cs1, "%s * %s + reshape(%s, [%lld]) * %s", rv, mo, bv,
           (long long)cs1.dim[0], one_m);
  return imp_bind(im, 0, x->dtype, &x->shape, "%s / sqrt(%s + %s) * %s + %s", c, bv,
                  imp_num(im, eps), cs, cb);
}

static bool map_batchnorm(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *sc = imp_in(im, 1), *b = imp_in(im, 2), *m = imp_in(im, 3),
         *v = imp_in(im, 4);
  if (!x || !sc || !b || !m || !v) return false;
  if (x->shape.rank < 2) return imp_fail(im, "rank below 2");
  if (imp_attr_int(n, "training_mode", 0)) return batchnorm_training(im, n, x, sc, b, m, v);
  if (n->n_output > 1 && *n->output[1])
    return imp_fail(im, "running statistics outputs need training_mode = 1");
  double eps = imp_attr_float(n, "epsilon", 1e-5);
  int r = x->shape.rank;
  const char *rx = imp_ref_tensor(im, x), *cs = channel(im, sc, r, false),
             *cb = channel(im, b, r, false), *cm = channel(im, m, r, true),
             *cv = channel(im, v, r, true);
  if (!rx || !cs || !cb || !cm || !cv) return false;
  return imp_bind(im, 0, x->dtype, &x->shape, "(%s - %s) / sqrt(%s + %s) * %s + %s", rx, cm, cv,
                  imp_num(im, eps), cs, cb);
}

/* x normalized over the axes first..last: *y = (x - mean) * inv, inv = 1 / sqrt(var + eps);
 * *mean and *inv name bindings (keepdims) */
static bool normalize(Imp *im, ImpVal *x, int first, int last, double eps, const char **y,
                      const char **mean, const char **inv) {
  const char *rx = imp_ref_tensor(im, x), *axes = "(";
  if (!rx) return false;
  for (int i = first; i <= last; i++)
    axes = imp_printf(im, "%s%s%d", axes, i > first ? ", " : "", i);
  axes = imp_printf(im, "%s%s)", axes, first == last ? "," : "");
  *mean = imp_let(im, imp_printf(im, "%s_mean", x->onnx), "mean(%s, axis = %s, keepdims = true)",
                  rx, axes);
  const char *c = *mean ? imp_let(im, imp_printf(im, "%s_centered", x->onnx), "%s - %s", rx,
                                  *mean) : NULL;
  *inv = c ? imp_let(im, imp_printf(im, "%s_inv_std", x->onnx),
                     "1.0 / sqrt(mean(%s * %s, axis = %s, keepdims = true) + %s)", c, c, axes,
                     imp_num(im, eps)) : NULL;
  if (!*inv) return false;
  *y = imp_printf(im, "%s * %s", c, *inv);
  return true;
}

static bool map_layernorm(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *sc = imp_in(im, 1), *b = imp_in_opt(im, 2);
  if (!x || !sc) return false;
  int a = imp_axis(im, imp_attr_int(n, "axis", -1), x->shape.rank);
  if (a < 0) return false;
  const char *e, *mean, *inv, *rs = imp_ref_tensor(im, sc), *rb = b ? imp_ref_tensor(im, b) : "";
  if (!rs || !rb || !normalize(im, x, a, x->shape.rank - 1, imp_attr_float(n, "epsilon", 1e-5),
                               &e, &mean, &inv))
    return false;
  Shape st = x->shape;
  for (int i = a; i < st.rank; i++)
    st.dim[i] = 1;
  DType dt = x->dtype;
  imp_bind(im, 1, dt, &st, "%s", mean);
  imp_bind(im, 2, dt, &st, "%s", inv);
  return imp_bind(im, 0, dt, &x->shape, "%s * %s%s%s", e, rs, b ? " + " : "", rb);
}

static bool map_instancenorm(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *sc = imp_in(im, 1), *b = imp_in(im, 2);
  if (!x || !sc || !b) return false;
  int r = x->shape.rank;
  if (r < 3) return imp_fail(im, "rank below 3");
  const char *e, *mean, *inv, *cs = channel(im, sc, r, false), *cb = channel(im, b, r, false);
  if (!cs || !cb ||
      !normalize(im, x, 2, r - 1, imp_attr_float(n, "epsilon", 1e-5), &e, &mean, &inv))
    return false;
  return imp_bind(im, 0, x->dtype, &x->shape, "%s * %s + %s", e, cs, cb);
}

typedef struct OpEntry {
  const char *name;
  ImpOpFn fn;
} OpEntry;

static const OpEntry ops[] = {
    {"Conv", map_conv},
    {"ConvTranspose", map_conv_transpose},
    {"MaxPool", map_pool},
    {"AveragePool", map_pool},
    {"GlobalAveragePool", map_global_pool},
    {"GlobalMaxPool", map_global_pool},
    {"BatchNormalization", map_batchnorm},
    {"LayerNormalization", map_layernorm},
    {"InstanceNormalization", map_instancenorm},
};

ImpOpFn imp_op_nn(const char *op) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].name, op) == 0) return ops[i].fn;
  return NULL;
}
