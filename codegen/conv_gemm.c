/* codegen/conv_gemm.c — the f32 convolutions as implicit GEMMs on the shared lathe_gemm
 * routine (codegen/gemm.c); semantics of ir/conv.c (NCHW, PyTorch weight layouts).
 *
 * Per image b and group g (Cg = C/groups input channels, Og = O/groups output channels,
 * KK = kh*kw taps, P = Ho*Wo output pixels, HW = H*W input pixels):
 *   CONV2D:             Y_bg [Og x P]       = W_g [Og x Cg*KK]   * im2col(X_bg) [Cg*KK x P]
 *   CONV_TRANSPOSE2D:   X_bg [Cg x HW]      = Wt_g [Cg x Og*KK]  * gather(Y_bg) [Og*KK x HW]
 *   CONV2D_GRAD_WEIGHT: W_g [Og x Cg*KK]   += Y_bg [Og x P]      * im2col(X_bg)^T [P x Cg*KK]
 * The im2col matrices are never materialized: lathe_gemm packs its B panels through a pack
 * routine that reads them straight from the NCHW image (zeros where a tap falls in the
 * padding), so the GEMM's packed B layout is the only copy. The transposed convolution
 * gathers, for each input pixel, the output pixels each tap reaches (stride divides the
 * offset), which needs Wt (W with its O and C axes swapped per group) as a plain matrix: a
 * copy of the weights in scratch. The weight gradient accumulates over images (the first
 * image stores). The pack routines are written once per file (f->globals) and called through
 * the lathe_gemm_b descriptor, whose g[] holds the geometry:
 *   {Cg or Og (rows' channel count), H, W, KH, KW, SH, SW, PH, PW, DH, DW, HO, WO}.
 * Applies to f32 nodes whose operands are arrays (splat constants take lower_conv.c's loops).
 * Invariant: the scratch a call uses (its GEMM plan, then Wt) is what cg_conv_scratch
 * reports for the node, so cg_workspace_bytes reserves it.
 */
#include <string.h>

#include "gemm.h"
#include "lower_conv.h"

typedef struct ConvGemm {
  int64_t n, c, h, w, o, ho, wo, kh, kw, groups, cg, og;
  int64_t m, k, nn; /* the GEMM of one (image, group) */
  const struct IrConvAttr *a;
} ConvGemm;

/* the X grid, Y grid and weight shapes of node n, by op */
static void conv_shapes(const Graph *g, const Node *n, const Shape **xs, const Shape **ys,
                        const Shape **ws) {
  const Shape *in0 = &graph_node(g, n->in[0])->shape, *in1 = &graph_node(g, n->in[1])->shape;
  if (n->op == OP_CONV2D) *xs = in0, *ys = &n->shape, *ws = in1;
  else if (n->op == OP_CONV_TRANSPOSE2D) *xs = &n->shape, *ys = in0, *ws = in1;
  else *xs = in0, *ys = in1, *ws = &n->shape;
}

bool cg_conv_gemm_applies(const Graph *g, NodeId id) {
  const Node *n = graph_node(g, id);
  if (n->op != OP_CONV2D && n->op != OP_CONV_TRANSPOSE2D && n->op != OP_CONV2D_GRAD_WEIGHT)
    return false;
  if (n->dtype != DT_F32 || n->shape.rank != 4) return false;
  for (int i = 0; i < 2; i++) {
    const Node *in = graph_node(g, n->in[i]);
    if (in->dtype != DT_F32 || in->shape.rank != 4 || in->op == OP_CONST) return false;
  }
  return n->attr.conv.groups >= 1;
}

static ConvGemm conv_gemm(const Graph *g, const Node *n) {
  const Shape *xs, *ys, *ws;
  conv_shapes(g, n, &xs, &ys, &ws);
  ConvGemm d = {xs->dim[0], xs->dim[1], xs->dim[2], xs->dim[3], ys->dim[1], ys->dim[2],
                ys->dim[3], ws->dim[2], ws->dim[3], n->attr.conv.groups, 0, 0, 0, 0, 0,
                &n->attr.conv};
  d.cg = d.c / d.groups, d.og = d.o / d.groups;
  int64_t kk = d.kh * d.kw;
  if (n->op == OP_CONV2D) d.m = d.og, d.k = d.cg * kk, d.nn = d.ho * d.wo;
  else if (n->op == OP_CONV_TRANSPOSE2D) d.m = d.cg, d.k = d.og * kk, d.nn = d.h * d.w;
  else d.m = d.og, d.k = d.ho * d.wo, d.nn = d.cg * kk;
  return d;
}

static int64_t round64(int64_t x) { return (x + 63) / 64 * 64; }

/* The threads that share out the images of conv node n: --threads for a forward or
 * transposed convolution with several images and enough work, else 1. (The weight gradient
 * sums over the images; its GEMMs use the threads inside lathe_gemm instead.) */
static int conv_threads(const Node *n, const ConvGemm *d, const CgOptions *o) {
  if (o->threads <= 1 || n->op == OP_CONV2D_GRAD_WEIGHT || d->n < 2) return 1;
  if (2 * d->n * d->groups * d->m * d->k * d->nn < CG_OMP_MIN_FLOPS) return 1;
  return d->n < o->threads ? (int)d->n : o->threads;
}

/* one thread's packing scratch (each thread of conv_threads has its own, one after another) */
static int64_t thread_scratch(const CgGemmPlan *p) { return round64(p->bytes); }

int64_t cg_conv_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  int64_t plain = cg_conv_plain_scratch(g, id, o);
  if (n->op == OP_CONV2D && n->group >= 0 && !cg_conv_direct_applies(g, id, o))
    plain += (shape_numel(&n->shape) * (int64_t)dtype_size(n->dtype) + 63) / 64 * 64;
  return plain; /* a fused conv off the direct path: its staging buffer after the scratch */
}

int64_t cg_conv_plain_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  if (cg_conv_direct_applies(g, id, o)) return cg_conv_direct_scratch(g, id, o);
  if (!cg_conv_gemm_applies(g, id)) return 0;
  const Node *n = graph_node(g, id);
  ConvGemm d = conv_gemm(g, n);
  CgGemmPlan p;
  cg_gemm_plan(o, d.m, d.k, d.nn, &p);
  int64_t wt = n->op == OP_CONV_TRANSPOSE2D ? round64(d.o * d.cg * d.kh * d.kw * 4) : 0;
  return conv_threads(n, &d, o) * thread_scratch(&p) + wt;
}

/* ---- the file-scope pack routines ------------------------------------------------------------ */

/* one routine per op (only those used are written), each after its mark */
static const char *const conv_marks[3] = {
    "lathe_conv_pack_im2col (codegen/conv_gemm.c)",
    "lathe_conv_pack_gather, lathe_conv_weight_t (codegen/conv_gemm.c)",
    "lathe_conv_pack_im2col_t (codegen/conv_gemm.c)",
};

static const char *const conv_text[] = {
    "/* dst[t] = plane[ih][iw0 + t * sw] for t in [0, len), 0 outside the h x w plane */\n"
    "LATHE_GEMM_SHARED void lathe_conv_run(float *dst, const float *plane, ptrdiff_t h,\n"
    "                                      ptrdiff_t w, ptrdiff_t ih, ptrdiff_t iw0,\n"
    "                                      ptrdiff_t sw, ptrdiff_t len) {\n"
    "  ptrdiff_t lo = iw0 >= 0 ? 0 : sw == 1 ? -iw0 : (sw - 1 - iw0) / sw;\n"
    "  ptrdiff_t hi = iw0 > w - 1 ? 0 : sw == 1 ? w - iw0 : (w - 1 - iw0) / sw + 1;\n"
    "  if (ih < 0 || ih >= h) hi = 0;\n"
    "  if (hi > len) hi = len;\n"
    "  if (lo > hi) lo = hi;\n"
    "  const float *src = plane + ih * w + iw0;\n"
    "  LATHE_NOVEC for (ptrdiff_t t = 0; t < lo; t++) dst[t] = 0.0f;\n"
    "  if (sw == 1) {\n"
    "    for (ptrdiff_t t = lo; t < hi; t++) dst[t] = src[t];\n"
    "  } else {\n"
    "    LATHE_NOVEC for (ptrdiff_t t = lo; t < hi; t++) dst[t] = src[t * sw];\n"
    "  }\n"
    "  LATHE_NOVEC for (ptrdiff_t t = hi; t < len; t++) dst[t] = 0.0f;\n"
    "}\n\n",
    "/* im2col(X) rows [p0, p0 + kc) (channel, kh, kw) x columns [j0, j0 + nc) (output pixels)\n"
    " * of the image at b->p, as lathe_gemm_pack_strided lays them out: one run per output row\n"
    " * a sliver crosses */\n"
    "LATHE_GEMM_SHARED void lathe_conv_pack_im2col(const lathe_gemm_b *b, ptrdiff_t p0,\n"
    "                                              ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,\n"
    "                                              float *dst) {\n"
    "  const ptrdiff_t *g = b->g, H = g[1], W = g[2], KH = g[3], KW = g[4], SH = g[5];\n"
    "  const ptrdiff_t SW = g[6], PH = g[7], PW = g[8], DH = g[9], DW = g[10], WO = g[12];\n"
    "  for (ptrdiff_t j = 0; j < nc; j += @NR@) {\n"
    "    const ptrdiff_t w = nc - j < @NR@ ? nc - j : @NR@;\n"
    "    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += @NR@) {\n"
    "      const float *xc = b->p + p / (KH * KW) * H * W;\n"
    "      const ptrdiff_t hoff = p / KW % KH * DH - PH, woff = p % KW * DW - PW;\n"
    "      ptrdiff_t oh = (j0 + j) / WO, ow = (j0 + j) % WO, x = 0;\n"
    "      while (x < w) {\n"
    "        const ptrdiff_t len = WO - ow < w - x ? WO - ow : w - x;\n"
    "        lathe_conv_run(dst + x, xc, H, W, oh * SH + hoff, ow * SW + woff, SW, len);\n"
    "        x += len, ow = 0, oh++;\n"
    "      }\n"
    "      LATHE_NOVEC for (; x < @NR@; x++) dst[x] = 0.0f;\n"
    "    }\n"
    "  }\n"
    "}\n\n",
    "/* im2col(X)^T: rows [p0, p0 + kc) (output pixels) x columns [j0, j0 + nc) (channel, kh,\n"
    " * kw) */\n"
    "LATHE_GEMM_SHARED void lathe_conv_pack_im2col_t(const lathe_gemm_b *b, ptrdiff_t p0,\n"
    "                                                ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,\n"
    "                                                float *dst) {\n"
    "  const ptrdiff_t *g = b->g, H = g[1], W = g[2], KH = g[3], KW = g[4], SH = g[5];\n"
    "  const ptrdiff_t SW = g[6], PH = g[7], PW = g[8], DH = g[9], DW = g[10], WO = g[12];\n"
    "  for (ptrdiff_t j = 0; j < nc; j += @NR@) {\n"
    "    const ptrdiff_t w = nc - j < @NR@ ? nc - j : @NR@;\n"
    "    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += @NR@) {\n"
    "      const ptrdiff_t ih0 = p / WO * SH - PH, iw0 = p % WO * SW - PW;\n"
    "      ptrdiff_t c = (j0 + j) / (KH * KW), kh = (j0 + j) / KW % KH, kw = (j0 + j) % KW;\n"
    "      ptrdiff_t x = 0;\n"
    "      LATHE_NOVEC for (; x < w; x++) {\n"
    "        const ptrdiff_t ih = ih0 + kh * DH, iw = iw0 + kw * DW;\n"
    "        dst[x] = ih >= 0 && ih < H && iw >= 0 && iw < W ? b->p[(c * H + ih) * W + iw]\n"
    "                                                        : 0.0f;\n"
    "        if (++kw == KW) {\n"
    "          kw = 0;\n"
    "          if (++kh == KH) kh = 0, c++;\n"
    "        }\n"
    "      }\n"
    "      LATHE_NOVEC for (; x < @NR@; x++) dst[x] = 0.0f;\n"
    "    }\n"
    "  }\n"
    "}\n\n",
    "/* the transposed convolution's B: rows [p0, p0 + kc) (Y channel, kh, kw) x columns\n"
    " * [j0, j0 + nc) (X pixels): the Y pixel the tap maps onto the X pixel, or 0 */\n"
    "LATHE_GEMM_SHARED void lathe_conv_pack_gather(const lathe_gemm_b *b, ptrdiff_t p0,\n"
    "                                              ptrdiff_t kc, ptrdiff_t j0, ptrdiff_t nc,\n"
    "                                              float *dst) {\n"
    "  const ptrdiff_t *g = b->g, W = g[2], KH = g[3], KW = g[4], SH = g[5], SW = g[6];\n"
    "  const ptrdiff_t PH = g[7], PW = g[8], DH = g[9], DW = g[10], HO = g[11], WO = g[12];\n"
    "  for (ptrdiff_t j = 0; j < nc; j += @NR@) {\n"
    "    const ptrdiff_t w = nc - j < @NR@ ? nc - j : @NR@;\n"
    "    for (ptrdiff_t p = p0; p < p0 + kc; p++, dst += @NR@) {\n"
    "      const float *yc = b->p + p / (KH * KW) * HO * WO;\n"
    "      const ptrdiff_t hoff = PH - p / KW % KH * DH, woff = PW - p % KW * DW;\n"
    "      ptrdiff_t h = (j0 + j) / W, wc = (j0 + j) % W, x = 0;\n"
    "      while (SH == 1 && SW == 1 && x < w) { /* stride 1: runs, as in im2col */\n"
    "        const ptrdiff_t len = W - wc < w - x ? W - wc : w - x;\n"
    "        lathe_conv_run(dst + x, yc, HO, WO, h + hoff, wc + woff, 1, len);\n"
    "        x += len, wc = 0, h++;\n"
    "      }\n"
    "      LATHE_NOVEC for (; x < w; x++) {\n"
    "        ptrdiff_t yh = h + hoff, yw = wc + woff;\n"
    "        int ok = yh >= 0 && yw >= 0;\n"
    "        if (SH != 1) ok = ok && yh % SH == 0, yh /= SH;\n"
    "        if (SW != 1) ok = ok && yw % SW == 0, yw /= SW;\n"
    "        dst[x] = ok && yh < HO && yw < WO ? yc[yh * WO + yw] : 0.0f;\n"
    "        if (++wc == W) wc = 0, h++;\n"
    "      }\n"
    "      LATHE_NOVEC for (; x < @NR@; x++) dst[x] = 0.0f;\n"
    "    }\n"
    "  }\n"
    "}\n\n",
    "/* wt[g][ci][o][t] = w[g][o][ci][t]: the weights of each group with O and C swapped */\n"
    "LATHE_GEMM_SHARED void lathe_conv_weight_t(const float *w, ptrdiff_t groups, ptrdiff_t og,\n"
    "                                           ptrdiff_t cg, ptrdiff_t kk, float *wt) {\n"
    "  for (ptrdiff_t gi = 0; gi < groups; gi++)\n"
    "    for (ptrdiff_t o = 0; o < og; o++)\n"
    "      for (ptrdiff_t ci = 0; ci < cg; ci++)\n"
    "        for (ptrdiff_t t = 0; t < kk; t++)\n"
    "          wt[((gi * cg + ci) * og + o) * kk + t] = w[((gi * og + o) * cg + ci) * kk + t];\n"
    "}\n\n",
};

/* the shared GEMM routines and the pack routine(s) of op */
static void conv_prelude(CgFunc *f, OpKind op) {
  cg_gemm_prelude(f);
  int which = op == OP_CONV2D ? 0 : op == OP_CONV_TRANSPOSE2D ? 1 : 2;
  if (which != 2 && cg_gemm_once(f, "lathe_conv_run (codegen/conv_gemm.c)"))
    cg_gemm_template(f, conv_text[0]);
  if (!cg_gemm_once(f, conv_marks[which])) return;
  if (which == 0) cg_gemm_template(f, conv_text[1]);
  if (which == 1) cg_gemm_template(f, conv_text[3]), cg_gemm_template(f, conv_text[4]);
  if (which == 2) cg_gemm_template(f, conv_text[2]);
}

/* ---- the call sites -------------------------------------------------------------------------- */

/* for (int64_t v = 0; v < extent; v++) {, always emitted (extent may be 1) */
static const char *loop_open(CgFunc *f, const char *base, int64_t extent) {
  const char *v = cg_fresh(f->e, base);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", v, v, (long long)extent, v);
  return v;
}

/* `const lathe_gemm_b name = {pack, src, 0, 0, {geometry}};`; rows = g[0] */
static const char *b_operand(CgFunc *f, const ConvGemm *d, const char *pack, const char *src,
                             int64_t rows) {
  const struct IrConvAttr *a = d->a;
  const char *name = cg_fresh(f->e, "conv_b");
  cg_line(f->e,
          "const lathe_gemm_b %s = {%s, %s, 0, 0, {%lld, %lld, %lld, %lld, %lld, %d, %d, %d, "
          "%d, %d, %d, %lld, %lld}};",
          name, pack, src, (long long)rows, (long long)d->h, (long long)d->w, (long long)d->kh,
          (long long)d->kw, (int)a->stride[0], (int)a->stride[1], (int)a->pad[0],
          (int)a->pad[1], (int)a->dilation[0], (int)a->dilation[1], (long long)d->ho,
          (long long)d->wo);
  return name;
}

static const char *ptr(CgFunc *f, const char *base, const char *b, int64_t per_b, const char *g,
                       int64_t per_g) {
  return arena_printf(f->arena, "%s + %s * %lld + %s * %lld", base, b, (long long)per_b, g,
                      (long long)per_g);
}

bool cg_conv_gemm_lower(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  ConvGemm d = conv_gemm(f->g, n);
  CgGemmPlan p;
  cg_gemm_plan(f->opt, d.m, d.k, d.nn, &p);
  conv_prelude(f, n->op);
  const char *in0 = f->val[n->in[0]].expr, *in1 = f->val[n->in[1]].expr, *out = f->val[id].expr;
  int64_t kk = d.kh * d.kw, hw = d.h * d.w, pix = d.ho * d.wo;
  cg_line(f->e, "/* implicit GEMM %lld x %lld x %lld (M x K x N) per image and group */",
          (long long)d.m, (long long)d.k, (long long)d.nn);
  const char *wt = NULL;
  int threads = conv_threads(n, &d, f->opt);
  if (n->op == OP_CONV_TRANSPOSE2D) {
    wt = cg_fresh(f->e, "conv_wt");
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %lld);", wt,
            (long long)(cg_scratch_base(f->g) + threads * thread_scratch(&p)));
    cg_line(f->e, "lathe_conv_weight_t(%s, %lld, %lld, %lld, %lld, %s);", in1,
            (long long)d.groups, (long long)d.og, (long long)d.cg, (long long)kk, wt);
  }
  const char *b, *g, *src;
  const char *at = arena_printf(f->arena, "%lld", (long long)cg_scratch_base(f->g));
  if (threads > 1) { /* the images shared out among the threads, each with its own scratch */
    cg_line(f->e, "LATHE_OMP_FOR");
    const char *th = loop_open(f, "thread", threads);
    b = cg_fresh(f->e, "b");
    cg_open(f->e, "for (int64_t %s = %s * %lld / %d; %s < (%s + 1) * %lld / %d; %s++)", b, th,
            (long long)d.n, threads, b, th, (long long)d.n, threads, b);
    at = arena_printf(f->arena, "%s + %s * %lld", at, th, (long long)thread_scratch(&p));
  } else {
    b = loop_open(f, "b", d.n);
  }
  g = loop_open(f, "g", d.groups);
  if (n->op == OP_CONV2D) {
    src = b_operand(f, &d, "lathe_conv_pack_im2col", ptr(f, in0, b, d.c * hw, g, d.cg * hw),
                    d.cg);
    cg_gemm_call_at(f, &p, ptr(f, in1, "0", 0, g, d.og * d.cg * kk), d.k, 1, src,
                    ptr(f, out, b, d.o * pix, g, d.og * pix), pix, "0", at);
  } else if (n->op == OP_CONV_TRANSPOSE2D) {
    src = b_operand(f, &d, "lathe_conv_pack_gather", ptr(f, in0, b, d.o * pix, g, d.og * pix),
                    d.og);
    cg_gemm_call_at(f, &p, ptr(f, wt, "0", 0, g, d.cg * d.og * kk), d.k, 1, src,
                    ptr(f, out, b, d.c * hw, g, d.cg * hw), hw, "0", at);
  } else {
    src = b_operand(f, &d, "lathe_conv_pack_im2col_t", ptr(f, in0, b, d.c * hw, g, d.cg * hw),
                    d.cg);
    cg_gemm_call(f, &p, ptr(f, in1, b, d.o * pix, g, d.og * pix), pix, 1, src,
                 ptr(f, out, "0", 0, g, d.og * d.cg * kk), d.cg * kk,
                 arena_printf(f->arena, "%s > 0", b), 0);
  }
  cg_close(f->e);
  cg_close(f->e);
  if (threads > 1) cg_close(f->e);
  return true;
}
