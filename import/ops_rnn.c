/* import/ops_rnn.c — ONNX recurrent ops (LSTM, GRU, RNN) as lathe `scan` loops, one per
 * direction (`reversed` for the backward one), with the ONNX gate orders (LSTM i, o, f, c;
 * GRU z, r, h; both linear_before_reset forms) and both layouts.
 *
 * Invariants: weights are transposed and biases summed outside the loop (bindings before the
 * scan), so the body holds only the per-step arithmetic; the carried names (rnn_h, rnn_c)
 * cannot collide with the importer's prefixed names. Clip, custom activations
 * (other than RNN's Tanh/Relu/Sigmoid) and variable sequence lengths are refused.
 */
#include "import/imp.h"

#include <string.h>

typedef struct Rnn {
  int kind;               /* 0 RNN, 1 GRU, 2 LSTM */
  int gates;              /* 1, 3, 4 */
  int64_t T, B, I, H, D;
  bool layout1;           /* X is [B, T, I] */
  bool lbr;               /* GRU linear_before_reset */
  const char *act;        /* RNN activation */
  const char *x, *w, *r, *b, *h0, *c0, *p; /* operand texts (b, h0, c0, p may be NULL) */
  const char *peep[3]; /* LSTM peepholes of the direction being written: i, o, f */
} Rnn;

static bool check_attrs(Imp *im, const Onnx__NodeProto *n, Rnn *q) {
  if (imp_attr(n, "clip")) return imp_fail(im, "clip is not supported");
  if (imp_attr_int(n, "input_forget", 0)) return imp_fail(im, "input_forget is not supported");
  const Onnx__AttributeProto *a = imp_attr(n, "activations");
  static const char *const dflt[3][3] = {
      {"Tanh", "", ""}, {"Sigmoid", "Tanh", ""}, {"Sigmoid", "Tanh", "Tanh"}};
  q->act = "tanh";
  for (size_t i = 0; a && i < a->n_strings; i++) {
    const char *s = (const char *)a->strings[i].data;
    size_t len = a->strings[i].len, k = i % (size_t)(q->kind + 1);
    if (q->kind == 0 && len == 4 && strncmp(s, "Relu", 4) == 0) q->act = "relu";
    else if (q->kind == 0 && len == 7 && strncmp(s, "Sigmoid", 7) == 0) q->act = "sigmoid";
    else if (!(len == strlen(dflt[q->kind][k]) && strncmp(s, dflt[q->kind][k], len) == 0))
      return imp_fail(im, "activation '%.*s' is not supported", (int)len, s);
  }
  ImpVal *sl = imp_in_opt(im, 4);
  for (int64_t i = 0; sl && i < shape_numel(&sl->shape); i++)
    if (!sl->has_const || imp_get_i64(&sl->konst, i) != q->T)
      return imp_fail(im, "sequence_lens other than the full length are not supported");
  return true;
}

static bool read_rnn(Imp *im, const Onnx__NodeProto *n, Rnn *q) {
  const char *op = n->op_type;
  q->kind = strcmp(op, "RNN") == 0 ? 0 : strcmp(op, "GRU") == 0 ? 1 : 2;
  q->gates = q->kind == 0 ? 1 : q->kind == 1 ? 3 : 4;
  ImpVal *x = imp_in(im, 0), *w = imp_in(im, 1), *r = imp_in(im, 2);
  if (!x || !w || !r) return false;
  if (x->shape.rank != 3 || w->shape.rank != 3 || r->shape.rank != 3)
    return imp_fail(im, "X, W and R must be 3-D");
  q->layout1 = imp_attr_int(n, "layout", 0) != 0;
  q->T = x->shape.dim[q->layout1 ? 1 : 0], q->B = x->shape.dim[q->layout1 ? 0 : 1];
  q->I = x->shape.dim[2], q->D = w->shape.dim[0], q->H = r->shape.dim[2];
  q->lbr = imp_attr_int(n, "linear_before_reset", 0) != 0;
  if (w->shape.dim[1] != q->gates * q->H || w->shape.dim[2] != q->I || r->shape.dim[0] != q->D)
    return imp_fail(im, "W/R shapes do not match hidden_size");
  if (!check_attrs(im, n, q)) return false;
  ImpVal *b = imp_in_opt(im, 3), *h0 = imp_in_opt(im, 5);
  ImpVal *c0 = q->kind == 2 ? imp_in_opt(im, 6) : NULL;
  q->x = imp_ref_tensor(im, x), q->w = imp_ref_tensor(im, w), q->r = imp_ref_tensor(im, r);
  q->b = b ? imp_ref_tensor(im, b) : NULL;
  q->h0 = h0 ? imp_ref_tensor(im, h0) : NULL;
  q->c0 = c0 ? imp_ref_tensor(im, c0) : NULL;
  ImpVal *p = q->kind == 2 ? imp_in_opt(im, 7) : NULL;
  q->p = p ? imp_ref_tensor(im, p) : NULL;
  return q->x && q->w && q->r && (!b || q->b) && (!h0 || q->h0) && (!c0 || q->c0) &&
         (!p || q->p);
}

/* initial state of direction d: the input's slice, or zeros */
static const char *init_state(Imp *im, const Rnn *q, const char *s, int d) {
  if (!s) return imp_printf(im, "zeros(f32[%lld, %lld])", (long long)q->B, (long long)q->H);
  return q->layout1 ? imp_printf(im, "%s[:, %d]", s, d) : imp_printf(im, "%s[%d]", s, d);
}

/* the step body of one direction: weights wx [I, G*H], wh [H, G*H], biases bx, bh [G*H] */
static const char *body(Imp *im, const Rnn *q, const char *xt, const char *wx, const char *wh,
                        const char *bx, const char *bh) {
  long long H = q->H;
  if (q->kind == 0)
    return imp_printf(im, "    rnn_h = %s(%s @ %s + rnn_h @ %s + %s + %s)\n", q->act, xt, wx, wh,
                      bx, bh);
  if (q->kind == 2 && q->p)
    return imp_printf(im,
                      "    rnn_g = %s @ %s + rnn_h @ %s + %s + %s\n"
                      "    rnn_i, rnn_o, rnn_f, rnn_z = split(rnn_g, 4, axis = 1)\n"
                      "    rnn_ig = sigmoid(rnn_i + %s * rnn_c)\n"
                      "    rnn_c = sigmoid(rnn_f + %s * rnn_c) * rnn_c + rnn_ig * tanh(rnn_z)\n"
                      "    rnn_h = sigmoid(rnn_o + %s * rnn_c) * tanh(rnn_c)\n",
                      xt, wx, wh, bx, bh, q->peep[0], q->peep[2], q->peep[1]);
  if (q->kind == 2)
    return imp_printf(im,
                      "    rnn_g = %s @ %s + rnn_h @ %s + %s + %s\n"
                      "    rnn_i, rnn_o, rnn_f, rnn_z = split(rnn_g, 4, axis = 1)\n"
                      "    rnn_c = sigmoid(rnn_f) * rnn_c + sigmoid(rnn_i) * tanh(rnn_z)\n"
                      "    rnn_h = sigmoid(rnn_o) * tanh(rnn_c)\n",
                      xt, wx, wh, bx, bh);
  const char *xs = imp_printf(im,
                              "    rnn_x = %s @ %s + %s\n"
                              "    rnn_xz, rnn_xr, rnn_xn = split(rnn_x, 3, axis = 1)\n",
                              xt, wx, bx);
  const char *hn = q->lbr
                       ? imp_printf(im, "rnn_r * (rnn_h @ %s[:, %lld:%lld] + %s[%lld:%lld])", wh,
                                    2 * H, 3 * H, bh, 2 * H, 3 * H)
                       : imp_printf(im, "(rnn_r * rnn_h) @ %s[:, %lld:%lld] + %s[%lld:%lld]", wh,
                                    2 * H, 3 * H, bh, 2 * H, 3 * H);
  return imp_printf(im,
                    "%s    rnn_hz, rnn_hr = split(rnn_h @ %s[:, 0:%lld] + %s[0:%lld], 2, "
                    "axis = 1)\n"
                    "    rnn_zg = sigmoid(rnn_xz + rnn_hz)\n"
                    "    rnn_r = sigmoid(rnn_xr + rnn_hr)\n"
                    "    rnn_n = tanh(rnn_xn + %s)\n"
                    "    rnn_h = (1.0 - rnn_zg) * rnn_n + rnn_zg * rnn_h\n",
                    xs, wh, 2 * H, bh, 2 * H, hn);
}

/* the scan of direction d; yields h (Y), or with final_c the last c (no yield) */
static const char *scan_dir(Imp *im, Rnn *q, int d, bool final_c, const char *base,
                            bool reversed) {
  for (int k = 0; q->p && k < 3; k++) { /* P [D, 3H]: i, o, f */
    q->peep[k] = imp_let(im, imp_printf(im, "%s_p%d%d", base, d, k), "%s[%d, %lld:%lld]", q->p, d,
                         (long long)(k * q->H), (long long)((k + 1) * q->H));
    if (!q->peep[k]) return NULL;
  }
  long long GH = q->gates * q->H;
  const char *wx = imp_let(im, imp_printf(im, "%s_wx%d", base, d), "transpose(%s[%d])", q->w, d);
  const char *wh = imp_let(im, imp_printf(im, "%s_wh%d", base, d), "transpose(%s[%d])", q->r, d);
  const char *bx = q->b ? imp_let(im, imp_printf(im, "%s_bx%d", base, d), "%s[%d, 0:%lld]", q->b,
                                  d, GH)
                        : "0.0";
  const char *bh = q->b ? imp_let(im, imp_printf(im, "%s_bh%d", base, d), "%s[%d, %lld:%lld]",
                                  q->b, d, GH, 2 * GH)
                        : "0.0";
  if (!wx || !wh || !bx || !bh) return NULL;
  if (!q->b && q->kind == 1) { /* the GRU body slices its biases: give it tensors */
    bx = imp_let(im, imp_printf(im, "%s_bx%d", base, d), "fill([%lld], 0.0)", GH);
    bh = bx;
  }
  const char *xt = q->layout1 ? imp_printf(im, "%s[:, t]", q->x) : imp_printf(im, "%s[t]", q->x);
  const char *carry = imp_printf(im, "rnn_h = %s", init_state(im, q, q->h0, d));
  if (q->kind == 2) {
    const char *c = imp_printf(im, "rnn_c = %s", init_state(im, q, q->c0, d));
    carry = final_c ? imp_printf(im, "%s, %s", c, carry) : imp_printf(im, "%s, %s", carry, c);
  }
  return imp_printf(im, "scan t in 0..%lld%s with (%s) {\n%s%s  }", (long long)q->T,
                    reversed ? " reversed" : "", carry,
                    body(im, q, xt, wx, wh, bx, bh), final_c ? "" : "    yield rnn_h\n");
}

/* Y, Y_h (and Y_c when cs) from the per-direction scans: their yields are [T, B, H]
 * (layout 0) or [B, T, H] (layout 1) */
static bool rnn_outputs(Imp *im, const Rnn *q, bool rev, const char *const *ys,
                        const char *const *cs) {
  long long T = q->T, B = q->B, H = q->H;
  Shape y = {0}, yh = {0};
  y.rank = 4, yh.rank = 3;
  const char *yl = "", *hl = "", *cl = "";
  for (int d = 0; d < q->D; d++) {
    bool reversed = rev || d == 1;
    const char *last = q->layout1 ? imp_printf(im, "%s[:, %lld]", ys[d], reversed ? 0 : T - 1)
                                  : imp_printf(im, "%s[%lld]", ys[d], reversed ? 0 : T - 1);
    const char *sep = d ? ", " : "";
    yl = imp_printf(im, "%s%sreshape(%s, %s)", yl, sep, ys[d],
                    q->layout1 ? imp_printf(im, "[%lld, %lld, 1, %lld]", B, T, H)
                               : imp_printf(im, "[%lld, 1, %lld, %lld]", T, B, H));
    const char *hs = q->layout1 ? imp_printf(im, "[%lld, 1, %lld]", B, H)
                                : imp_printf(im, "[1, %lld, %lld]", B, H);
    hl = imp_printf(im, "%s%sreshape(%s, %s)", hl, sep, last, hs);
    if (cs) cl = imp_printf(im, "%s%sreshape(%s, %s)", cl, sep, cs[d], hs);
  }
  int64_t yd[4] = {T, q->D, B, H}, yd1[4] = {B, T, q->D, H};
  int64_t hd[3] = {q->D, B, H}, hd1[3] = {B, q->D, H};
  memcpy(y.dim, q->layout1 ? yd1 : yd, sizeof yd);
  memcpy(yh.dim, q->layout1 ? hd1 : hd, sizeof hd);
  int cat = q->layout1 ? 2 : 1, hcat = q->layout1 ? 1 : 0;
  const char *fy = q->D == 1 ? "%s" : imp_printf(im, "concat([%%s], axis = %d)", cat);
  const char *fh = q->D == 1 ? "%s" : imp_printf(im, "concat([%%s], axis = %d)", hcat);
  imp_bind(im, 0, DT_F32, &y, fy, yl);
  imp_bind(im, 1, DT_F32, &yh, fh, hl);
  if (cs) imp_bind(im, 2, DT_F32, &yh, fh, cl);
  return true;
}

static bool map_rnn(Imp *im, const Onnx__NodeProto *n) {
  Rnn q;
  memset(&q, 0, sizeof q);
  if (!read_rnn(im, n, &q)) return false;
  const char *dir = imp_attr_str(im, n, "direction", "forward");
  bool rev = strcmp(dir, "reverse") == 0, bi = strcmp(dir, "bidirectional") == 0;
  if (!rev && !bi && strcmp(dir, "forward") != 0) return imp_fail(im, "unknown direction");
  if (q.D != (bi ? 2 : 1)) return imp_fail(im, "W's first dim does not match the direction");
  const char *base = n->n_output && *n->output[0] ? n->output[0] : "rnn";
  const char *ys[2], *cs[2] = {NULL, NULL};
  bool want_c = q.kind == 2 && n->n_output > 2 && *n->output[2];
  for (int d = 0; d < q.D; d++) {
    bool reversed = rev || d == 1;
    const char *s = scan_dir(im, &q, d, false, base, reversed);
    if (!s) return false;
    ys[d] = imp_let(im, imp_printf(im, "%s_dir%d", base, d), "%s", s);
    if (!ys[d]) return false;
    if (want_c) {
      const char *c = scan_dir(im, &q, d, true, imp_printf(im, "%s_c", base), reversed);
      if (!c) return false;
      cs[d] = imp_let(im, imp_printf(im, "%s_cdir%d", base, d), "%s", c);
      if (!cs[d]) return false;
    }
  }
  return rnn_outputs(im, &q, rev, ys, want_c ? cs : NULL);
}

ImpOpFn imp_op_rnn(const char *op) {
  if (strcmp(op, "LSTM") == 0 || strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0)
    return map_rnn;
  return NULL;
}
