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
 * the lathe_gemm_b descriptor, whose g[] holds the geometry, named by LATHE_CV_*:
 *   {Cg or Og (rows' channel count), H, W, KH, KW, SH, SW, PH, PW, DH, DW, HO, WO}.
 * Used for the convolutions passes/layout.c records as IR_CONV_ALGO_GEMM: f32 nodes whose
 * operands are arrays (splat constants take lower_conv.c's loops).
 * Invariant: the scratch a call uses (its GEMM plan, then Wt) is what cg_conv_gemm_scratch
 * reports for the node, so cg_workspace_bytes (workspace.c) reserves it.
 */
#include <string.h>

#include "conv.h"
#include "kernels_text.h"

typedef struct ConvGemm {
  int64_t n, c, h, w, o, ho, wo, kh, kw, groups, cg, og;
  int64_t m, k, nn; /* the GEMM of one (image, group) */
  const struct IrConvAttr *a;
} ConvGemm;

/* the X grid, Y grid and weight shapes of node n, by op */
static void conv_shapes(const Graph *g, const Node *n, const Shape **xs, const Shape **ys,
                        const Shape **ws) {
  const Shape *in0 = &graph_node(g, n->in[0])->shape, *in1 = &graph_node(g, n->in[1])->shape;
  if (n->op == OP_CONV2D)
    *xs = in0, *ys = &n->shape, *ws = in1;
  else if (n->op == OP_CONV_TRANSPOSE2D)
    *xs = &n->shape, *ys = in0, *ws = in1;
  else
    *xs = in0, *ys = in1, *ws = &n->shape;
}

static ConvGemm conv_gemm(const Graph *g, const Node *n) {
  const Shape *xs, *ys, *ws;
  conv_shapes(g, n, &xs, &ys, &ws);
  ConvGemm d = {xs->dim[0], xs->dim[1], xs->dim[2], xs->dim[3],          ys->dim[1], ys->dim[2],
                ys->dim[3], ws->dim[2], ws->dim[3], n->attr.conv.groups, 0,          0,
                0,          0,          0,          &n->attr.conv};
  d.cg = d.c / d.groups, d.og = d.o / d.groups;
  int64_t kk = d.kh * d.kw;
  if (n->op == OP_CONV2D)
    d.m = d.og, d.k = d.cg * kk, d.nn = d.ho * d.wo;
  else if (n->op == OP_CONV_TRANSPOSE2D)
    d.m = d.cg, d.k = d.og * kk, d.nn = d.h * d.w;
  else
    d.m = d.og, d.k = d.ho * d.wo, d.nn = d.cg * kk;
  return d;
}

/* The threads that share out the images of conv node n: --threads for a forward or
 * transposed convolution with several images and enough work, else 1. (The weight gradient
 * sums over the images; its GEMMs use the threads inside lathe_gemm instead.) */
static int conv_threads(const Node *n, const ConvGemm *d, const CgOptions *o) {
  if (o->threads <= 1 || n->op == OP_CONV2D_GRAD_WEIGHT || d->n < 2) return 1;
  if (2 * d->n * d->groups * d->m * d->k * d->nn < CG_OMP_MIN_FLOPS) return 1;
  return d->n < o->threads ? (int)d->n : o->threads;
}

/* one thread's packing scratch (each thread of conv_threads has its own, one after another) */
static int64_t thread_scratch(const CgGemmPlan *p) {
  return ir_workspace_align(p->bytes);
}

int64_t cg_conv_gemm_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  ConvGemm d = conv_gemm(g, n);
  CgGemmPlan p;
  cg_gemm_plan(o, d.m, d.k, d.nn, &p);
  int64_t wt = n->op == OP_CONV_TRANSPOSE2D ? ir_workspace_align(d.o * d.cg * d.kh * d.kw * 4) : 0;
  return conv_threads(n, &d, o) * thread_scratch(&p) + wt;
}

/* ---- the file-scope pack routines ------------------------------------------------------------ */

/* one routine per op (only those used are written), each after its mark */
static const char *const conv_marks[3] = {
    "lathe_conv_pack_im2col (codegen/conv_gemm.c)",
    "lathe_conv_pack_gather, lathe_conv_weight_t (codegen/conv_gemm.c)",
    "lathe_conv_pack_im2col_t (codegen/conv_gemm.c)",
};

/* the names of the geometry entries (lathe_gemm_b.g) the pack routines read */

/* the shared GEMM routines and the pack routine(s) of op */
static void conv_prelude(CgFunc *f, OpKind op) {
  cg_gemm_prelude(f);
  if (cg_gemm_once(f, "LATHE_CV_* (codegen/conv_gemm.c)"))
    cg_kernel_emit(f, cg_kernel_conv_gemm_geometry);
  int which = op == OP_CONV2D ? 0 : op == OP_CONV_TRANSPOSE2D ? 1 : 2;
  if (which != 2 && cg_gemm_once(f, "lathe_conv_run (codegen/conv_gemm.c)"))
    cg_kernel_emit(f, cg_kernel_conv_gemm_run);
  if (!cg_gemm_once(f, conv_marks[which])) return;
  if (which == 0) cg_kernel_emit(f, cg_kernel_conv_gemm_im2col);
  if (which == 1)
    cg_kernel_emit(f, cg_kernel_conv_gemm_gather), cg_kernel_emit(f, cg_kernel_conv_gemm_weight_t);
  if (which == 2) cg_kernel_emit(f, cg_kernel_conv_gemm_im2col_t);
}

/* ---- the call sites -------------------------------------------------------------------------- */

/* for (int64_t v = 0; v < extent; v++) {, always emitted (extent may be 1) */
static const char *loop_open_expr(CgFunc *f, const char *base, const char *extent) {
  const char *v = cg_fresh(f->e, base);
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", v, v, extent, v);
  return v;
}

static const char *loop_open(CgFunc *f, const char *base, int64_t extent) {
  return loop_open_expr(f, base, arena_printf(f->arena, "%lld", (long long)extent));
}

/* the images of conv node n as C: d->n, or the run-time batch ("n") of a dynamic module */
static const char *conv_images(CgFunc *f, const Node *n, const ConvGemm *d) {
  const Shape *xs, *ys, *ws;
  conv_shapes(f->g, n, &xs, &ys, &ws);
  return cg_count(f, xs, d->n);
}

/* `const lathe_gemm_b name = {.pack = pack, .p = src, .g = {...}};`, the geometry by
 * designated initializers naming each entry (LATHE_CV_*), rows = g[LATHE_CV_ROWS] */
static const char *b_operand(CgFunc *f, const ConvGemm *d, const char *pack, const char *src,
                             int64_t rows) {
  static const char *const names[] = {"ROWS", "H",  "W",  "KH", "KW", "SH", "SW",
                                      "PH",   "PW", "DH", "DW", "HO", "WO"};
  const struct IrConvAttr *a = d->a;
  const int64_t v[] = {rows,           d->h,         d->w,      d->kh,     d->kw,
                       a->stride[0],   a->stride[1], a->pad[0], a->pad[1], a->dilation[0],
                       a->dilation[1], d->ho,        d->wo};
  _Static_assert(sizeof names / sizeof names[0] == sizeof v / sizeof v[0], "one name per entry");
  const char *name = cg_fresh(f->e, "conv_b");
  cg_line(f->e, "const lathe_gemm_b %s = {.pack = %s, .p = %s, .g = {", name, pack, src);
  cg_designated_rows(f, "LATHE_CV_", names, v, sizeof v / sizeof v[0], "}};");
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
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", wt,
            cg_scratch_offset(f, threads * thread_scratch(&p)));
    cg_line(f->e, "lathe_conv_weight_t(%s,", in1);
    cg_line(f->e,
            "                    (lathe_conv_weight_dims){.groups = %lld, .og = %lld, .cg = %lld, "
            ".kk = %lld}, %s);",
            (long long)d.groups, (long long)d.og, (long long)d.cg, (long long)kk, wt);
  }
  const char *b, *g, *src;
  const char *at = cg_scratch_offset(f, 0), *images = conv_images(f, n, &d);
  if (threads > 1) { /* the images shared out among the threads, each with its own scratch */
    cg_line(f->e, "LATHE_OMP_FOR");
    const char *th = loop_open(f, "thread", threads);
    b = cg_fresh(f->e, "b");
    cg_open(f->e, "for (int64_t %s = %s * %s / %d; %s < (%s + 1) * %s / %d; %s++)", b, th, images,
            threads, b, th, images, threads, b);
    at = arena_printf(f->arena, "%s + %s * %lld", at, th, (long long)thread_scratch(&p));
  } else {
    b = loop_open_expr(f, "b", images);
  }
  g = loop_open(f, "g", d.groups);
  if (n->op == OP_CONV2D) {
    src = b_operand(f, &d, "lathe_conv_pack_im2col", ptr(f, in0, b, d.c * hw, g, d.cg * hw), d.cg);
    cg_gemm_call_at(f, &p, ptr(f, in1, "0", 0, g, d.og * d.cg * kk), d.k, 1, src,
                    ptr(f, out, b, d.o * pix, g, d.og * pix), pix, "0", at);
  } else if (n->op == OP_CONV_TRANSPOSE2D) {
    src =
        b_operand(f, &d, "lathe_conv_pack_gather", ptr(f, in0, b, d.o * pix, g, d.og * pix), d.og);
    cg_gemm_call_at(f, &p, ptr(f, wt, "0", 0, g, d.cg * d.og * kk), d.k, 1, src,
                    ptr(f, out, b, d.c * hw, g, d.cg * hw), hw, "0", at);
  } else {
    src =
        b_operand(f, &d, "lathe_conv_pack_im2col_t", ptr(f, in0, b, d.c * hw, g, d.cg * hw), d.cg);
    cg_gemm_call(f, &p, ptr(f, in1, b, d.o * pix, g, d.og * pix), pix, 1, src,
                 ptr(f, out, "0", 0, g, d.og * d.cg * kk), d.cg * kk,
                 arena_printf(f->arena, "%s > 0", b), 0);
  }
  cg_close(f->e);
  cg_close(f->e);
  if (threads > 1) cg_close(f->e);
  return true;
}
