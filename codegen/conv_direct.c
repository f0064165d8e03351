/* codegen/conv_direct.c — the f32 convolutions the layout pass put in the blocked NCHWc layout
 * (IrConvAttr.layout = IR_CONV_NCHWC, passes/layout.c): a direct convolution, no im2col.
 *
 * With V floats per vector, K = C*KH*KW taps and the output channels in OB = ceil(O/V)
 * vectors, per call and then per image:
 *   weights  wp[ob][k][l] = w[ob*V + l][k]     (zero past O), packed once per call, or at
 *            compile time into a static table when they are baked in (lathe compile --bake)
 *   offsets  koff[k] = c*HP*WP + kh*DH*WP + kw*DW  for k = (c, kh, kw): where tap k of the
 *            output pixel (0, 0) reads the (padded) image
 *   image    x, or a zero-bordered copy xpad [C][HP][WP] when the convolution pads
 *   tile     for each output row oh, pair of channel vectors and block of PB pixels of the row:
 *              acc[b][i] (a vector of V output channels) += x[koff[k] + i*SW] * wp[ob+b][k]
 *            over every k, the PB x 2 accumulators in registers (the micro-kernel,
 *            lathe_dconv_k<PB>s<SW>), stored to the blocked tile tmp[ob][q][l]; the short
 *            last blocks of RL rows in one call (last_rows, lathe_dconv_k<PB>s<SW>_r...)
 *   unblock  y[o][q] = tmp[o/V][q][o%V] while the image is in cache (through a small
 *            local block, so both sides stay in L1); a conv2d heading a fused group
 *            (passes/fuse.c) applies its epilogue here instead, one output row of a channel
 *            vector at a time (cg_conv_direct_lower_fused)
 * The inner loop is one vector load per channel vector and one scalar broadcast per pixel
 * for 2*PB fused multiply-adds; the input rows one output row reads and the packed weights
 * stay in L1/L2 (layout.c's limits). The micro-kernels are written once per (PB, SW) used,
 * with GCC/Clang vector extensions (`#ifdef LATHE_VECTOR`, codegen/gemm.c's vector prelude)
 * and a scalar C99 twin under `#else`; the per-image drivers and the packing routines once
 * per file, each only when used. The target's vector width and register count set V
 * and PB (cg_conv_algo runs these as GEMM on the generic target: the implicit GEMM of
 * conv_gemm.c runs there). With --threads N the images are shared out, each thread with its
 * own tile and padded copy.
 * A stride-1 transposed convolution (an input gradient) runs as the convolution it is: its
 * input with a zero border, the weights flipped and their channel axes swapped
 * (lathe_dconv_pack_wt, ir_conv_transpose_as_conv). The weight gradient blocks dY per image
 * the same way, dyb[ob][q][l], and keeps the sums over pixels in registers: for each channel
 * and group of kernel rows, acc[b][tap] (a vector of V output channels) += x[tap offset +
 * pixel] * dyb[ob+b][pixel] (lathe_dconv_w<rows>x<KW>_..., the offsets compile-time
 * constants), added into per-thread blocked sums that lathe_dconv_wfinish adds up and
 * unblocks.
 * Invariant: the scratch a call uses (packed weights, offsets, then per thread the tile and
 * the padded copy; for the weight gradient per thread the sums, blocked dY and padded copy)
 * is what cg_conv_direct_scratch reports, from cg_scratch_base.
 */
#include <string.h>

#include "conv.h"
#include "kernels_text.h"
#include "passes/passes.h"

typedef struct Direct {
  int64_t n, c, h, w, o, ho, wo, kh, kw, sh, sw, dh, dw, pt, pl, hp, wp;
  int64_t k, vec, ob, pix;
  bool pad;
  int64_t pb, pb_last; /* pixels per row block; the last block of a row (weight gradient:
                          kernel rows per group of taps; the last group; Winograd: tiles
                          per block, the last block) */
  int64_t rows_last;   /* output rows whose last blocks one micro-kernel call computes (1:
                          each row's alone; see last_rows) */
  bool wino;           /* by Winograd's F(2x2, 3x3) (conv_winograd.c) */
  int64_t xpad;        /* bytes of the zero-bordered copy of the image (0: none) */
  int64_t tiles;       /* Winograd: 2x2 output tiles per image */
  int threads;
  const Shape *xs; /* the image read: its axis 0 is the batch (cg_count) */
} Direct;

/* The rows whose last (short) blocks one micro-kernel call takes together. A row of 13
 * pixels is cut 5 + 5 + 3, and the 3-pixel kernel spreads each tap's fixed work (its offset,
 * two weight vectors, the loop) over 6 FMAs instead of 10: on AVX2 (Zen 3, the 13 x 13 input
 * gradient of the CNN example, 576 taps) 22.5 flops per cycle against 38 for the 5-pixel
 * kernel, and two sets of accumulators (latency) do not help. The last blocks of two rows, 6
 * pixels in one call, run at 38.7. As many rows as the registers take (pb_max pixels), at
 * most the image's. */
static int64_t last_rows(const Direct *d, int64_t pb_max) {
  int64_t rows = d->pb_last < d->pb ? pb_max / d->pb_last : 1;
  return rows < d->ho ? (rows > 1 ? rows : 1) : d->ho;
}

/* The weight gradient's channels whose last kernel row one micro-kernel call takes
 * together: a 3 x 3 kernel's taps go in groups of 2 rows and 1 (6 and 3 taps a call); with
 * 3 taps, 6 accumulators for each pixel's two dY vectors and 6 broadcasts. The last rows of
 * 2 channels in one call (when the channels pair up) fill the registers like the first 2
 * rows. One row left only, and as many channels as the groups take (pb), dividing C. */
static int64_t last_channels(const Direct *d) {
  int64_t n = d->pb_last == 1 && d->pb > 1 ? d->pb : 1;
  while (n > 1 && d->c % n)
    n--;
  return n;
}

/* accumulator registers of the target: 32 vector registers (AVX-512, NEON), else 16 (AVX2) */
static int vector_registers(const CgOptions *o) {
  CgTarget t = cg_target_resolve(o);
  return t == CG_TARGET_X86_64_V3 ? 16 : 32;
}

/* DIRECT or WINOGRAD when the target has vector kernels and, for a weight gradient, registers
 * for a kernel row's accumulators (2 per tap + 2 weight vectors + a broadcast) */
static bool target_runs(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  if (cg_gemm_vec(o) <= 0) return false;
  return n->op != OP_CONV2D_GRAD_WEIGHT || n->shape.dim[3] <= (vector_registers(o) - 3) / 2;
}

IrConvAlgo cg_conv_algo(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  if (n->op != OP_CONV2D && n->op != OP_CONV_TRANSPOSE2D && n->op != OP_CONV2D_GRAD_WEIGHT)
    return IR_CONV_ALGO_UNSET;
  IrConvAlgo a = (IrConvAlgo)n->attr.conv.algo;
  if (a == IR_CONV_ALGO_UNSET) a = passes_conv_algo(g, id);
  /* the operands of a DIRECT convolution suit the implicit GEMM, unless the weights are baked
   * (a constant, which only the direct kernel packs): then plain loops */
  if ((a == IR_CONV_ALGO_DIRECT || a == IR_CONV_ALGO_WINOGRAD) && !target_runs(g, id, o))
    a = graph_node(g, n->in[1])->op == OP_CONST ? IR_CONV_ALGO_NAIVE : IR_CONV_ALGO_GEMM;
  return a;
}

static bool blocked(const Graph *g, NodeId id, const CgOptions *o) {
  IrConvAlgo a = cg_conv_algo(g, id, o);
  return a == IR_CONV_ALGO_DIRECT || a == IR_CONV_ALGO_WINOGRAD;
}

bool cg_conv_direct_packs_const(const Graph *g, NodeId conv, int k, const CgOptions *o) {
  return k == 1 && graph_node(g, conv)->op == OP_CONV2D && blocked(g, conv, o) &&
         graph_node(g, graph_node(g, conv)->in[1])->op == OP_CONST;
}

/* The baked weights (a data constant) of direct convolution d, blocked at compile time as
 * lathe_dconv_pack_w lays them out: a static table, 64-byte aligned. Returns its name. */
static const char *emit_const_weights(CgFunc *f, NodeId conv, const Direct *d) {
  NodeId c = graph_node(f->g, conv)->in[1];
  const double *data = graph_node(f->g, c)->attr.constant.data;
  const char *name = arena_printf(f->arena, "%s_c%u_conv%u_nchwc", f->symbol, c, conv);
  int64_t size = d->ob * d->k * d->vec;
  cg_gemm_align_macro(f);
  cg_buf_printf(f->globals,
                "/* %%%u = const : the weights of convolution %%%u blocked at compile time "
                "([%lld][%lld][%lld]: output channel vectors, taps, lanes) */\n"
                "static const float %s[%lld] LATHE_GEMM_ALIGN = {",
                c, conv, (long long)d->ob, (long long)d->k, (long long)d->vec, name,
                (long long)size);
  int64_t at = 0;
  for (int64_t ob = 0; ob < d->ob; ob++)
    for (int64_t p = 0; p < d->k; p++)
      for (int64_t l = 0; l < d->vec; l++, at++) {
        int64_t o = ob * d->vec + l;
        double v = o < d->o ? data[o * d->k + p] : 0.0;
        cg_buf_puts(f->globals, at % 8 == 0 ? "\n  " : " ");
        cg_buf_printf(f->globals, "%s%s", cg_literal(f->arena, DT_F32, v),
                      at + 1 < size ? "," : "");
      }
  cg_buf_puts(f->globals, "\n};\n\n");
  return name;
}

static Direct direct(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  /* the image read (a conv2d's X, a transposed convolution's Y) and the image written */
  const Shape *xs = &graph_node(g, n->in[0])->shape, *ws = &graph_node(g, n->in[1])->shape;
  struct IrConvAttr a = n->attr.conv;
  if (n->op == OP_CONV_TRANSPOSE2D) ir_conv_transpose_as_conv(n, ws->dim + 2, &a);
  /* the weight gradient: X, dY (in[1]) and dW [O, C, KH, KW] */
  const Shape *ys = n->op == OP_CONV2D_GRAD_WEIGHT ? ws : &n->shape;
  if (n->op == OP_CONV2D_GRAD_WEIGHT) ws = &n->shape;
  Direct d = {0};
  d.xs = xs;
  d.n = xs->dim[0], d.c = xs->dim[1], d.h = xs->dim[2], d.w = xs->dim[3];
  d.o = ys->dim[1], d.ho = ys->dim[2], d.wo = ys->dim[3];
  d.kh = ws->dim[2], d.kw = ws->dim[3];
  d.sh = a.stride[0], d.sw = a.stride[1], d.dh = a.dilation[0], d.dw = a.dilation[1];
  d.pt = a.pad[0], d.pl = a.pad[1];
  d.pad = a.pad[0] || a.pad[1] || a.pad[2] || a.pad[3];
  d.hp = d.h + a.pad[0] + a.pad[2], d.wp = d.w + a.pad[1] + a.pad[3];
  d.k = d.c * d.kh * d.kw;
  d.vec = cg_gemm_vec(o);
  d.ob = (d.o + d.vec - 1) / d.vec;
  d.pix = d.ho * d.wo;
  /* 2 * PB accumulators + 2 weight vectors + a broadcast fit the registers; the row is cut
   * into equal blocks */
  int64_t pb_max = (vector_registers(o) - 3) / 2;
  int64_t blocks = (d.wo + pb_max - 1) / pb_max;
  d.pb = (d.wo + blocks - 1) / blocks;
  d.pb_last = d.wo - (blocks - 1) * d.pb;
  if (cg_conv_algo(g, id, o) ==
      IR_CONV_ALGO_WINOGRAD) { /* the micro-kernel's pixels are then the tiles */
    d.wino = true;
    d.tiles = cg_conv_winograd_tiles(d.ho, d.wo);
    blocks = (d.tiles + pb_max - 1) / pb_max;
    d.pb = (d.tiles + blocks - 1) / blocks;
    d.pb_last = d.tiles - (blocks - 1) * d.pb;
  }
  d.xpad = d.wino  ? cg_conv_winograd_xpad(d.c, d.ho, d.wo, d.pad)
           : d.pad ? ir_workspace_align(d.c * d.hp * d.wp * 4)
                   : 0;
  if (n->op == OP_CONV2D_GRAD_WEIGHT) { /* taps: groups of whole kernel rows, rb rows each */
    int64_t rows = pb_max / d.kw;
    d.pb = rows < d.kh ? rows : d.kh;
    d.pb_last = d.kh - (d.kh - 1) / d.pb * d.pb;
  }
  d.rows_last = d.wino                           ? 1
                : n->op == OP_CONV2D_GRAD_WEIGHT ? last_channels(&d)
                                                 : last_rows(&d, pb_max);
  d.threads = 1;
  if (o->threads > 1 && d.n > 1 && 2 * d.n * d.o * d.k * d.pix >= CG_OMP_MIN_FLOPS)
    d.threads = d.n < o->threads ? (int)d.n : o->threads;
  return d;
}

enum { EPI_FLOATS = 4096 }; /* the local block of a fused epilogue (16 KB on the stack) */

/* bytes: packed weights, then offsets, then one (tile, padded copy) per thread */
static int64_t weights_bytes(const Direct *d) { /* Winograd's: u, then wt of lathe_wino_pack_u */
  return ir_workspace_align(d->ob * d->vec * (d->wino ? 16 * d->c + 9 * d->c : d->k) * 4);
}
static int64_t offsets_bytes(const Direct *d) {
  return ir_workspace_align(d->k * 8);
}
static int64_t tile_bytes(const Direct *d) {
  return ir_workspace_align(d->ob * d->vec * d->pix * 4) +
         (d->wino ? cg_conv_winograd_bytes(d->c, d->ob * d->vec, d->tiles) : 0);
}
static int64_t thread_bytes(const Direct *d) {
  return tile_bytes(d) + d->xpad;
}

/* the weight gradient, per thread: the blocked sums [OB][K][V], the blocked dY [OB][P][V],
 * the padded copy */
static int64_t grad_thread_bytes(const Direct *d) {
  return weights_bytes(d) + thread_bytes(d);
}

int64_t cg_conv_direct_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  if (!blocked(g, id, o)) return 0;
  Direct d = direct(g, id, o);
  if (graph_node(g, id)->op == OP_CONV2D_GRAD_WEIGHT) return d.threads * grad_thread_bytes(&d);
  return weights_bytes(&d) + offsets_bytes(&d) + d.threads * thread_bytes(&d);
}

/* ---- the file-scope routines ----------------------------------------------------------------- */

static const char driver_mark[] = "lathe_dconv_tile (codegen/conv_direct.c)";

static const char pack_mark[] = "lathe_dconv_pack_w (codegen/conv_direct.c)";

/* lathe_dconv_pack_w and the transpose it calls, once per file */
static void emit_pack_w(CgFunc *f) {
  cg_gemm_transpose_emit(f);
  if (cg_gemm_once(f, pack_mark)) cg_kernel_emit(f, cg_kernel_conv_direct_pack_w);
}

static const char transposed_mark[] = "lathe_dconv_pack_wt (codegen/conv_direct.c)";

static const char unblock_mark[] = "lathe_dconv_image (codegen/conv_direct.c)";

static const char grad_mark[] = "lathe_dconv_wimage (codegen/conv_direct.c)";

/* `lathe_vf a0 = {0}, ...;` and the same for b: the accumulators of n pixels or taps for
 * the two channel vectors */
static void emit_accumulators(CgBuf *o, int64_t n) {
  for (int b = 0; b < 2; b++) {
    cg_buf_puts(o, "  lathe_vf");
    for (int64_t i = 0; i < n; i++)
      cg_buf_printf(o, "%s %c%lld = {0}", i ? "," : "", 'a' + b, (long long)i);
    cg_buf_puts(o, ";\n");
  }
}

/* The pixels of a micro-kernel: pb of a row at column stride sw, in `rows` rows xrs floats
 * apart in the image and ors floats apart in the tile (one row: xrs and ors unused). Pixel i:
 * row i / pb, column i % pb. A weight-gradient kernel's taps likewise: pb = KW taps of a
 * kernel row dw apart, its rows (kernel rows, or one row of consecutive channels) xrs apart
 * in the image and ors apart in the sums. */
typedef struct KernelPixels {
  int64_t pb, sw, rows, xrs, ors;
} KernelPixels;

static int64_t pixel_x(const KernelPixels *k, int64_t i) {
  return i / k->pb * k->xrs + i % k->pb * k->sw;
}

static int64_t pixel_out(const KernelPixels *k, int64_t i, int64_t v) {
  return i / k->pb * k->ors + i % k->pb * v;
}

/* dst[pixel i] `op` a_i, and dst[stride + pixel i] `op` b_i for the second channel vector
 * (when nb == 2, always with pairs), pixel i at its row and column of px; then the end of the
 * vector kernel */
static void emit_stores(CgBuf *o, const KernelPixels *px, int64_t v, const char *dst,
                        const char *stride, const char *op, bool pairs) {
  int64_t n = px->pb * px->rows;
  for (int64_t i = 0; i < n; i++)
    cg_buf_printf(o, "  *(lathe_vf *)(%s + %lld) %s a%lld;\n", dst, (long long)pixel_out(px, i, v),
                  op, (long long)i);
  cg_buf_puts(o, pairs ? "  {\n" : "  if (nb == 2) {\n");
  for (int64_t i = 0; i < n; i++)
    cg_buf_printf(o, "    *(lathe_vf *)(%s + %s + %lld) %s b%lld;\n", dst, stride,
                  (long long)pixel_out(px, i, v), op, (long long)i);
  cg_buf_puts(o, "  }\n}\n#else\n");
}

/* The vector micro-kernels have a path for a pair of channel vectors and one for a last
 * single vector; `pairs` (an even number of channel vectors: every call passes nb = 2) leaves
 * the second out and names the kernel ..._pairs (half the code for the JIT to compile). */
static const char *pairs_suffix(bool pairs) {
  return pairs ? "_pairs" : "";
}

/* the weight-gradient micro-kernel for the taps tp (groups of tp.rows rows of tp.pb = kw
 * taps: rows tp.xrs floats apart in the image, taps tp.sw apart; their sums tp.ors floats
 * apart), output columns sw apart, once per file */
static const char *emit_grad_kernel(CgFunc *f, KernelPixels tp, int64_t sw, bool pairs) {
  int64_t rows = tp.rows, kw = tp.pb, rowoff = tp.xrs, dw = tp.sw, v = cg_gemm_vec(f->opt);
  const char *sums = tp.ors == kw * v ? "" : arena_printf(f->arena, "_a%lld", (long long)tp.ors);
  const char *name = arena_printf(f->arena, "lathe_dconv_w%lldx%lld_%lld_%lld_%lld%s%s",
                                  (long long)rows, (long long)kw, (long long)rowoff, (long long)dw,
                                  (long long)sw, sums, pairs_suffix(pairs));
  const char *mark = arena_printf(f->arena, "%s (codegen/conv_direct.c)", name);
  if (!cg_gemm_once(f, mark)) return name;
  CgBuf *o = f->globals;
  int64_t taps = rows * kw;
  const char *params = "(const float *restrict x, const float *restrict dy,\n"
                       "    ptrdiff_t pstride, int nb, ptrdiff_t ho, ptrdiff_t wo, ptrdiff_t rs,\n"
                       "    float *restrict acc, ptrdiff_t astride)";
  cg_buf_printf(
      o,
      "/* A direct convolution's weight gradient over %lld kernel row(s) of %lld taps:\n"
      " * acc[b][t][l] += sum over pixels (oh, ow) of x[oh * rs + ow * %lld + t / %lld *\n"
      " * %lld + t %% %lld * %lld] * dy[b][oh][ow][l], for %s channel vector(s) b of %lld\n"
      " * lanes l, the sums of taps t / %lld %lld floats apart; the sums stay in registers.\n"
      " * Then its scalar C99 twin. */\n",
      (long long)rows, (long long)kw, (long long)sw, (long long)kw, (long long)rowoff,
      (long long)kw, (long long)dw, pairs ? "2" : "nb = 1 or 2", (long long)v, (long long)kw,
      (long long)tp.ors);
  cg_buf_printf(o, "#ifdef LATHE_VECTOR\nLATHE_GEMM_FN void %s%s {\n", name, params);
  emit_accumulators(o, taps);
  cg_buf_printf(o,
                "  for (ptrdiff_t oh = 0; oh < ho; oh++) {\n"
                "    const float *xr = x + oh * rs, *dr = dy + oh * wo * %lld;\n",
                (long long)v);
  if (pairs) cg_buf_puts(o, "  (void)nb; /* always 2 */\n");
  for (int nb = 2; nb >= (pairs ? 2 : 1); nb--) { /* two channel vectors, or the last alone */
    cg_buf_printf(o, "    %s{\n", pairs ? "" : nb == 2 ? "if (nb == 2) " : "else ");
    cg_buf_printf(o,
                  "      for (ptrdiff_t ow = 0; ow < wo; ow++) {\n"
                  "        const float *xp = xr + ow * %lld;\n"
                  "        const lathe_vf d0 = *(const lathe_vf *)(dr + ow * %lld);\n",
                  (long long)sw, (long long)v);
    if (nb == 2)
      cg_buf_printf(o,
                    "        const lathe_vf d1 = *(const lathe_vf *)(dr + pstride + ow * %lld);\n",
                    (long long)v);
    for (int64_t i = 0; i < taps; i++) {
      cg_buf_printf(o, "        { const float s = xp[%lld]; a%lld += s * d0;",
                    (long long)(i / kw * rowoff + i % kw * dw), (long long)i);
      if (nb == 2) cg_buf_printf(o, " b%lld += s * d1;", (long long)i);
      cg_buf_puts(o, " }\n");
    }
    cg_buf_puts(o, "      }\n    }\n");
  }
  cg_buf_puts(o, "  }\n");
  emit_stores(o, &tp, v, "acc", "astride", "+=", pairs);
  /* the scalar twin: the same sums in plain C99 */
  cg_buf_printf(o,
                "LATHE_GEMM_SHARED void %s%s {\n"
                "  for (int b = 0; b < nb; b++)\n"
                "    for (ptrdiff_t i = 0; i < %lld; i++)\n"
                "      for (ptrdiff_t l = 0; l < %lld; l++) {\n"
                "        const ptrdiff_t off = i / %lld * %lld + i %% %lld * %lld;\n"
                "        float s = 0.0f;\n"
                "        for (ptrdiff_t oh = 0; oh < ho; oh++)\n"
                "          for (ptrdiff_t ow = 0; ow < wo; ow++)\n"
                "            s += x[oh * rs + ow * %lld + off] *\n"
                "                 dy[b * pstride + (oh * wo + ow) * %lld + l];\n"
                "        acc[b * astride + i / %lld * %lld + i %% %lld * %lld + l] += s;\n"
                "      }\n"
                "}\n#endif\n\n",
                name, params, (long long)taps, (long long)v, (long long)kw, (long long)rowoff,
                (long long)kw, (long long)dw, (long long)sw, (long long)v, (long long)kw,
                (long long)tp.ors, (long long)kw, (long long)v);
  return name;
}

/* the micro-kernel for the pixels px (row blocks of px.pb pixels, or the last blocks of
 * px.rows rows), once per file */
static const char *emit_kernel(CgFunc *f, KernelPixels px, bool pairs) {
  int64_t pb = px.pb, sw = px.sw, n = px.pb * px.rows;
  const char *rows = px.rows == 1 ? ""
                                  : arena_printf(f->arena, "_r%lldx%lld_%lld", (long long)px.rows,
                                                 (long long)px.xrs, (long long)px.ors);
  const char *name = arena_printf(f->arena, "lathe_dconv_k%llds%lld%s%s", (long long)pb,
                                  (long long)sw, rows, pairs_suffix(pairs));
  const char *mark = arena_printf(f->arena, "%s (codegen/conv_direct.c)", name);
  if (!cg_gemm_once(f, mark)) return name;
  CgBuf *o = f->globals;
  int64_t v = cg_gemm_vec(f->opt);
  const char *params = "(const float *restrict x, const ptrdiff_t *restrict koff,\n"
                       "    ptrdiff_t kn, const float *restrict w, ptrdiff_t wbs, int nb,\n"
                       "    float *restrict out, ptrdiff_t obs)";
  if (px.rows == 1)
    cg_buf_printf(
        o,
        "/* The direct convolution's micro-kernel for %lld output pixels at column stride\n"
        " * %lld: out[b][i][l] = sum over taps k < kn of x[koff[k] + i * %lld] * w[b][k][l],\n"
        " * for %s channel vector(s) b of %lld lanes l; the sums stay in registers.\n"
        " * Then its scalar C99 twin. */\n",
        (long long)pb, (long long)sw, (long long)sw, pairs ? "2" : "nb = 1 or 2", (long long)v);
  else
    cg_buf_printf(
        o,
        "/* The direct convolution's micro-kernel for the last blocks of %lld output rows, %lld\n"
        " * pixels each at column stride %lld: pixel i is column i %% %lld of row i / %lld, the\n"
        " * rows %lld floats apart in x and %lld in out: out[b][pixel i][l] = sum over taps\n"
        " * k < kn of x[koff[k] + pixel i] * w[b][k][l], for %s channel vector(s) b of %lld\n"
        " * lanes l; the sums stay in registers. Then its scalar C99 twin. */\n",
        (long long)px.rows, (long long)pb, (long long)sw, (long long)pb, (long long)pb,
        (long long)px.xrs, (long long)px.ors, pairs ? "2" : "nb = 1 or 2", (long long)v);
  cg_buf_printf(o, "#ifdef LATHE_VECTOR\nLATHE_GEMM_FN void %s%s {\n", name, params);
  emit_accumulators(o, n);
  if (pairs) cg_buf_puts(o, "  (void)nb; /* always 2 */\n");
  for (int nb = 2; nb >= (pairs ? 2 : 1); nb--) { /* two channel vectors, or the last alone */
    cg_buf_printf(o, "  %s{\n", pairs ? "" : nb == 2 ? "if (nb == 2) " : "else ");
    cg_buf_puts(o, "    for (ptrdiff_t k = 0; k < kn; k++) {\n"
                   "      const float *xk = x + koff[k];\n");
    cg_buf_printf(o, "      const lathe_vf w0 = *(const lathe_vf *)(w + k * %lld);\n",
                  (long long)v);
    if (nb == 2)
      cg_buf_printf(o, "      const lathe_vf w1 = *(const lathe_vf *)(w + wbs + k * %lld);\n",
                    (long long)v);
    for (int64_t i = 0; i < n; i++) {
      cg_buf_printf(o, "      { const float s = xk[%lld]; a%lld += s * w0;",
                    (long long)pixel_x(&px, i), (long long)i);
      if (nb == 2) cg_buf_printf(o, " b%lld += s * w1;", (long long)i);
      cg_buf_puts(o, " }\n");
    }
    cg_buf_puts(o, "    }\n  }\n");
  }
  emit_stores(o, &px, v, "out", "obs", "=", pairs);
  /* the scalar twin: the same sums in plain C99 (pixel i at row r, column c) */
  cg_buf_printf(o,
                "LATHE_GEMM_SHARED void %s%s {\n"
                "  for (int b = 0; b < nb; b++)\n"
                "    for (ptrdiff_t i = 0; i < %lld; i++)\n"
                "      for (ptrdiff_t l = 0; l < %lld; l++) {\n"
                "        const ptrdiff_t r = i / %lld, c = i %% %lld;\n"
                "        float acc = 0.0f;\n"
                "        for (ptrdiff_t k = 0; k < kn; k++)\n"
                "          acc += x[koff[k] + r * %lld + c * %lld] * w[b * wbs + k * %lld + l];\n"
                "        out[b * obs + r * %lld + c * %lld + l] = acc;\n"
                "      }\n"
                "}\n#endif\n\n",
                name, params, (long long)n, (long long)v, (long long)pb, (long long)pb,
                (long long)px.xrs, (long long)sw, (long long)v, (long long)px.ors, (long long)v);
  return name;
}

/* text with @V@ replaced by the vector width */
/* the file-scope routines, each only when used: the packing and lathe_dconv_tile; with
 * `transposed` lathe_dconv_pack_wt, with `unblock` lathe_dconv_image (a convolution without
 * epilogue), with `grad` the weight gradient's */
static void emit_driver(CgFunc *f, bool grad, bool unblock, bool transposed) {
  cg_vector_prelude(f); /* lathe_vf, LATHE_GEMM_FN, LATHE_GEMM_SHARED, <string.h> */
  if (cg_gemm_once(f, driver_mark))
    cg_kernel_emit(f, cg_kernel_conv_direct_tile), cg_kernel_emit(f, cg_kernel_conv_direct_image);
  if (transposed && cg_gemm_once(f, transposed_mark))
    cg_kernel_emit(f, cg_kernel_conv_direct_pack_wt);
  if (unblock && cg_gemm_once(f, unblock_mark)) cg_kernel_emit(f, cg_kernel_conv_direct_unblock);
  if (grad && cg_gemm_once(f, grad_mark)) cg_kernel_emit(f, cg_kernel_conv_direct_grad);
}

/* ---- the call site --------------------------------------------------------------------------- */

/* the geometry table of d, g[LATHE_DC_PB] = pb, by designated initializers naming each entry
 * (cg_kernel_conv_direct_image's LATHE_DC_* indices), four to a line */
static const char *geometry(CgFunc *f, const Direct *d) {
  static const char *const names[] = {"C",  "H",  "W",  "O",  "HO", "WO", "KH", "KW",  "SH", "SW",
                                      "DH", "DW", "PT", "PL", "HP", "WP", "PB", "PAD", "RL"};
  const int64_t v[] = {d->c,  d->h,  d->w,  d->o,           d->ho,       d->wo, d->kh,
                       d->kw, d->sh, d->sw, d->dh,          d->dw,       d->pt, d->pl,
                       d->hp, d->wp, d->pb, d->pad ? 1 : 0, d->rows_last};
  _Static_assert(sizeof names / sizeof names[0] == sizeof v / sizeof v[0], "one name per entry");
  const char *geo = cg_fresh(f->e, "dconv_g");
  cg_line(f->e, "static const ptrdiff_t %s[] = {", geo);
  cg_designated_rows(f, "LATHE_DC_", names, v, sizeof v / sizeof v[0], "};");
  return geo;
}

/* `LATHE_OMP_FOR for (thread ...) {` when d has threads (returns the thread variable), else
 * NULL and nothing */
static const char *threads_open(CgFunc *f, const Direct *d) {
  if (d->threads <= 1) return NULL;
  const char *th = cg_fresh(f->e, "thread");
  cg_line(f->e, "LATHE_OMP_FOR");
  cg_open(f->e, "for (int64_t %s = 0; %s < %d; %s++)", th, th, d->threads, th);
  return th;
}

/* the loop over thread th's share of the images (every image when th is NULL); a dynamic
 * batch runs to the run-time n */
static const char *images_open(CgFunc *f, const Direct *d, const char *th) {
  const char *b = cg_fresh(f->e, "b"), *images = cg_count(f, d->xs, d->n);
  if (th)
    cg_open(f->e, "for (int64_t %s = %s * %s / %d; %s < (%s + 1) * %s / %d; %s++)", b, th, images,
            d->threads, b, th, images, d->threads, b);
  else
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", b, b, images, b);
  return b;
}

/* byte `at` of the workspace (at or above cg_scratch_base) as C: the kernels' scratch sits
 * above the plan's per-n pool (cg_scratch_offset) */
static const char *scratch_at(CgFunc *f, int64_t at) {
  return cg_ws_offset(f, f->g->workspace_bytes_n, at);
}

/* dW = conv2d_grad_weight(X, dY): each thread sums its images into its blocked sums, which
 * lathe_dconv_wfinish adds up and unblocks */
static bool lower_grad(CgFunc *f, NodeId id, const Direct *d) {
  const Node *n = graph_node(f->g, id);
  emit_driver(f, true, false, false);
  bool pairs = d->ob % 2 == 0;
  int64_t row = d->dh * d->wp, sums = d->kw * d->vec;
  const char *k_main =
      emit_grad_kernel(f, (KernelPixels){d->kw, d->dw, d->pb, row, sums}, d->sw, pairs);
  const char *k_last = /* the last kernel rows, of rows_last channels at once */
      d->rows_last > 1
          ? emit_grad_kernel(
                f, (KernelPixels){d->kw, d->dw, d->rows_last, d->hp * d->wp, d->kh * sums}, d->sw,
                pairs)
          : emit_grad_kernel(f, (KernelPixels){d->kw, d->dw, d->pb_last, row, sums}, d->sw, pairs);
  const char *x = f->val[n->in[0]].expr, *dy = f->val[n->in[1]].expr, *dw = f->val[id].expr;
  int64_t base = cg_scratch_base(f->g), per = grad_thread_bytes(d);
  cg_line(f->e,
          "/* direct weight gradient, NCHWc: %lld output channels in %lld vectors of %lld, the "
          "%lld taps in groups of %lld kernel rows, summed over %lld x %lld pixels */",
          (long long)d->o, (long long)d->ob, (long long)d->vec, (long long)d->k, (long long)d->pb,
          (long long)d->ho, (long long)d->wo);
  cg_line(f->e, "{");
  cg_indent(f->e);
  const char *geo = geometry(f, d), *th = threads_open(f, d);
  const char *acc = cg_fresh(f->e, "dconv_acc");
  if (th)
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s + %s * %lld);", acc,
            scratch_at(f, base), th, (long long)per);
  else
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", acc, scratch_at(f, base));
  cg_line(f->e, "memset(%s, 0, %lld);", acc, (long long)weights_bytes(d));
  const char *b = images_open(f, d, th);
  const char *pad = d->pad ? arena_printf(f->arena, "(float *)((char *)%s + %lld)", acc,
                                          (long long)(weights_bytes(d) + tile_bytes(d)))
                           : "NULL";
  cg_line(f->e,
          "lathe_dconv_wimage(%s + %s * %lld, %s + %s * %lld, %s, %s, %s, %s, (float *)((char "
          "*)%s + %lld), %s);",
          x, b, (long long)(d->c * d->h * d->w), dy, b, (long long)(d->o * d->pix), geo, k_main,
          k_last, acc, acc, (long long)weights_bytes(d), pad);
  cg_close(f->e);
  if (th) cg_close(f->e);
  cg_line(f->e, "lathe_dconv_wfinish(%s,", dw);
  cg_line(f->e,
          "                    (lathe_dconv_wfinish_dims){.o = %lld, .k = %lld, .threads = %d, "
          ".stride = %lld},",
          (long long)d->o, (long long)d->k, d->threads, (long long)(per / 4));
  cg_line(f->e, "                    (const float *)((char *)ws + %s));", scratch_at(f, base));
  cg_close(f->e);
  return true;
}

bool cg_conv_direct_lower(CgFunc *f, NodeId id) {
  return cg_conv_direct_lower_fused(f, id, NULL);
}

/* The epilogue of a group ending in a KH x KW max-pool (store->pool, passes/fuse.c) on image
 * b's tile tp, in the blocked layout: per channel vector ob, pooled row ph and pooled column
 * pw, along the V lanes (one vector when O fills them): the epilogue of each of the window's
 * elements (unrolled) and their maximum (the first NaN wins and ties keep the first, as in
 * the max_pool2d kernels) into a local block r[pw][l]; then r transposed into the pooled
 * output's rows (the transposition GCC vectorizes). Only the pooled values are transposed:
 * a quarter of the tile for 2x2 windows. Wide rows go in chunks of pooled columns (r within
 * EPI_FLOATS). With store->pool_rest, the elements no window covers (the last rows and
 * columns when the windows do not tile the whole image) then get their epilogue alone. */
static bool pooled_epilogue(CgFunc *f, const Direct *d, const CgGemmStore *store, const char *b,
                            const char *tp) {
  const Node *pn = graph_node(f->g, store->pool);
  long long pkh = pn->attr.conv.kernel[0], pkw = pn->attr.conv.kernel[1];
  long long ph_n = pn->shape.dim[2], pw_n = pn->shape.dim[3], vec = d->vec, wo = d->wo;
  long long cw = EPI_FLOATS / vec; /* pooled columns per chunk */
  if (cw > pw_n) cw = pw_n;
  const char *P = f->val[store->pool].expr, *ob = cg_fresh(f->e, "ob"), *l = cg_fresh(f->e, "l");
  const char *ph = cg_fresh(f->e, "ph"), *pw = cg_fresh(f->e, "pw");
  const char *r = cg_fresh(f->e, "dconv_r"), *m = cg_fresh(f->e, "m");
  const char *lanes = arena_printf(f->arena, "%lld", vec);
  const char *o = arena_printf(f->arena, "(%s * %lld + %s)", ob, vec, l); /* the channel */
  cg_line(f->e, "float %s[%lld];", r, cw * vec);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", ob, ob, (long long)d->ob, ob);
  if (d->o % vec) { /* a partial last vector */
    lanes = cg_fresh(f->e, "lanes");
    cg_line(f->e, "const int64_t %s = %lld - %s * %lld < %lld ? %lld - %s * %lld : %lld;", lanes,
            (long long)d->o, ob, vec, vec, (long long)d->o, ob, vec, vec);
  }
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", ph, ph, ph_n, ph);
  const char *n = arena_printf(f->arena, "%lld", pw_n), *col = pw;
  if (cw < pw_n) {
    const char *p0 = cg_fresh(f->e, "p0");
    col = arena_printf(f->arena, "(%s + %s)", p0, pw);
    n = cg_fresh(f->e, "n");
    cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s += %lld)", p0, p0, pw_n, p0, cw);
    cg_line(f->e, "const int64_t %s = %lld - %s < %lld ? %lld - %s : %lld;", n, pw_n, p0, cw, pw_n,
            p0, cw);
  }
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", pw, pw, n, pw);
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", l, l, lanes, l);
  for (long long y = 0; y < pkh; y++)
    for (long long x = 0; x < pkw; x++) {
      const char *oh = arena_printf(f->arena, "(%s * %lld + %lld)", ph, pkh, y);
      const char *ow = arena_printf(f->arena, "(%s * %lld + %lld)", col, pkw, x);
      const char *v[4] = {b, o, oh, ow};
      const char *idx = arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld + %s", b,
                                     (long long)d->o, o, (long long)d->ho, oh, wo, ow);
      const char *value = arena_printf(f->arena, "%s[(%s * %lld + %s * %lld + %s) * %lld + %s]", tp,
                                       ob, (long long)d->pix, oh, wo, ow, vec, l);
      if (!store->emit(f, store->ctx, v, idx, value)) return false;
      const char *px = store->pooled(store->ctx);
      if (y == 0 && x == 0)
        cg_line(f->e, "float %s = %s;", m, px);
      else
        cg_line(f->e, "%s = (%s != %s || %s <= %s) ? %s : %s;", m, m, m, px, m, m, px);
    }
  cg_line(f->e, "%s[%s * %lld + %s] = %s;", r, pw, vec, l, m);
  cg_close(f->e);
  cg_close(f->e);
  cg_line(f->e, "for (int64_t %s = 0; %s < %s; %s++)", l, l, lanes, l);
  cg_line(f->e, "  for (int64_t %s = 0; %s < %s; %s++)", pw, pw, n, pw);
  cg_line(f->e,
          "    %s[((%s * %lld + %s * %lld + %s) * %lld + %s) * %lld + %s] = %s[%s * %lld + %s];", P,
          b, (long long)d->o, ob, vec, l, ph_n, ph, pw_n, col, r, pw, vec, l);
  for (int i = 0; i < (cw < pw_n ? 3 : 2); i++)
    cg_close(f->e);
  if (!store->pool_rest || (ph_n * pkh == d->ho && pw_n * pkw == wo)) return true;
  /* the elements no window covers, straight from the blocked tile */
  const char *oh = cg_fresh(f->e, "oh"), *ow = cg_fresh(f->e, "ow");
  o = cg_fresh(f->e, "o");
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", o, o, (long long)d->o, o);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", oh, oh, (long long)d->ho, oh);
  cg_open(f->e, "for (int64_t %s = %s < %lld ? %lld : 0; %s < %lld; %s++)", ow, oh, ph_n * pkh,
          pw_n * pkw, ow, wo, ow);
  const char *v[4] = {b, o, oh, ow};
  const char *idx = arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld + %s", b,
                                 (long long)d->o, o, (long long)d->ho, oh, wo, ow);
  const char *value =
      arena_printf(f->arena, "%s[(%s / %lld * %lld + %s * %lld + %s) * %lld + %s %% %lld]", tp, o,
                   vec, (long long)d->pix, oh, wo, ow, vec, o, vec);
  if (!store->emit(f, store->ctx, v, idx, value)) return false;
  cg_line(f->e, "(void)%s; /* in no window */", store->pooled(store->ctx));
  for (int i = 0; i < 3; i++)
    cg_close(f->e);
  return true;
}

bool cg_conv_direct_lower_fused(CgFunc *f, NodeId id, const CgGemmStore *store) {
  const Node *n = graph_node(f->g, id);
  Direct d = direct(f->g, id, f->opt);
  if (n->op == OP_CONV2D_GRAD_WEIGHT) return lower_grad(f, id, &d);
  emit_driver(f, false, store == NULL, n->op == OP_CONV_TRANSPOSE2D);
  if (d.wino) {
    emit_pack_w(f);
    cg_conv_winograd_emit(f);
  }
  const char *k_main = emit_kernel(f, (KernelPixels){d.pb, d.sw, 1, 0, 0}, d.ob % 2 == 0);
  const char *k_last = emit_kernel(
      f, (KernelPixels){d.pb_last, d.sw, d.rows_last, d.sh * d.wp, d.wo * d.vec}, d.ob % 2 == 0);
  const char *x = f->val[n->in[0]].expr, *w = f->val[n->in[1]].expr, *y = f->val[id].expr;
  int64_t base = cg_scratch_base(f->g);
  if (d.wino)
    cg_line(f->e,
            "/* convolution by Winograd's F(2x2, 3x3), NCHWc: %lld output channels in %lld "
            "vectors of %lld, %lld tiles of 2x2 pixels per image in blocks of %lld, %lld input "
            "channels */",
            (long long)d.o, (long long)d.ob, (long long)d.vec, (long long)d.tiles, (long long)d.pb,
            (long long)d.c);
  else
    cg_line(f->e,
            "/* direct convolution, NCHWc%s: %lld output channels in %lld vectors of %lld, rows "
            "of %lld pixels in blocks of %lld, %lld taps per pixel */",
            n->op == OP_CONV2D ? ""
                               : " (the transposed convolution as a convolution of its "
                                 "zero-bordered input with the flipped weights)",
            (long long)d.o, (long long)d.ob, (long long)d.vec, (long long)d.wo, (long long)d.pb,
            (long long)d.k);
  cg_line(f->e, "{");
  cg_indent(f->e);
  const char *geo = geometry(f, &d), *wp = cg_fresh(f->e, "dconv_w");
  const char *koff = cg_fresh(f->e, "dconv_k");
  cg_line(f->e, "ptrdiff_t *const %s = (ptrdiff_t *)((char *)ws + %s);", koff,
          scratch_at(f, base + weights_bytes(&d)));
  bool baked = graph_node(f->g, n->in[1])->op == OP_CONST;
  if (baked) {
    wp = emit_const_weights(f, id, &d);
  } else if (d.wino) {
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", wp, scratch_at(f, base));
    cg_line(f->e, "lathe_wino_pack_u(%s, (lathe_wino_pack_dims){.o = %lld, .c = %lld},", w,
            (long long)d.o, (long long)d.c);
    cg_line(f->e, "                  %s, %s + %lld);", wp, wp,
            (long long)(d.ob * d.vec * 16 * d.c));
  } else if (n->op == OP_CONV2D) {
    emit_pack_w(f);
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", wp, scratch_at(f, base));
    cg_line(f->e, "lathe_dconv_pack_w(%s, (lathe_dconv_pack_dims){.o = %lld, .k = %lld}, %s);", w,
            (long long)d.o, (long long)d.k, wp);
  } else {
    cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", wp, scratch_at(f, base));
    cg_line(f->e,
            "lathe_dconv_pack_wt(%s, (lathe_dconv_pack_wt_dims){.o = %lld, .c = %lld, .kk = %lld}, "
            "%s);",
            w, (long long)d.c, (long long)d.o, (long long)(d.kh * d.kw), wp);
  }
  cg_line(f->e, "%s(%s, %s);", d.wino ? "lathe_wino_offsets" : "lathe_dconv_offsets", geo, koff);
  const char *tile_fn = d.wino ? "lathe_wino_tile" : "lathe_dconv_tile";
  int64_t per = base + weights_bytes(&d) + offsets_bytes(&d);
  const char *th = threads_open(f, &d), *b = images_open(f, &d, th);
  const char *at =
      th ? arena_printf(f->arena, " + %s * %lld", th, (long long)thread_bytes(&d)) : "";
  const char *tile = arena_printf(f->arena, "(float *)((char *)ws + %s%s)", scratch_at(f, per), at);
  const char *pad = d.xpad ? arena_printf(f->arena, "(float *)((char *)ws + %s%s)",
                                          scratch_at(f, per + tile_bytes(&d)), at)
                           : "NULL";
  if (!store) {
    cg_line(f->e,
            "lathe_dconv_image(%s, %s + %s * %lld, %s, %s, %s, %s, %s, %s + %s * %lld, %s, %s);",
            tile_fn, x, b, (long long)(d.c * d.h * d.w), geo, wp, koff, k_main, k_last, y, b,
            (long long)(d.o * d.pix), tile, pad);
  } else { /* the epilogue, per element of the image's tile while it is in cache */
    cg_line(f->e, "%s(%s + %s * %lld, %s, %s, %s, %s, %s, %s, %s);", tile_fn, x, b,
            (long long)(d.c * d.h * d.w), geo, wp, koff, k_main, k_last, tile, pad);
    /* per channel vector ob and output row oh: the row's V x WO block of the tile (at most
     * EPI_FLOATS: wider rows go in chunks of columns) transposed into a local array (reads
     * along the vectors), then the epilogue along each channel's row (contiguous loads and
     * stores, a constant trip count when the row is one chunk) */
    if (store->pool != IR_NONE) {
      const char *tp = cg_fresh(f->e, "dconv_t");
      cg_line(f->e, "const float *const %s = %s;", tp, tile);
      if (!pooled_epilogue(f, &d, store, b, tp)) return false;
      cg_close(f->e);
      if (th) cg_close(f->e);
      cg_close(f->e);
      return true;
    }
    const char *tp = cg_fresh(f->e, "dconv_t"), *ob = cg_fresh(f->e, "ob");
    const char *oh = cg_fresh(f->e, "oh"), *l = cg_fresh(f->e, "l"), *o = cg_fresh(f->e, "o");
    const char *ow = cg_fresh(f->e, "ow"), *row = cg_fresh(f->e, "dconv_r");
    const char *lanes = cg_fresh(f->e, "lanes");
    long long vec = (long long)d.vec, wo = (long long)d.wo;
    long long cw = wo * vec <= EPI_FLOATS ? wo : EPI_FLOATS / vec; /* columns per chunk */
    cg_line(f->e, "const float *const %s = %s;", tp, tile);
    cg_line(f->e, "float %s[%lld];", row, vec * cw);
    cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", ob, ob, (long long)d.ob, ob);
    cg_line(f->e, "const int64_t %s = %lld - %s * %lld < %lld ? %lld - %s * %lld : %lld;", lanes,
            (long long)d.o, ob, vec, vec, (long long)d.o, ob, vec, vec);
    cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", oh, oh, (long long)d.ho, oh);
    const char *w0 = "0", *n = arena_printf(f->arena, "%lld", wo), *col = ow;
    if (cw < wo) {
      w0 = cg_fresh(f->e, "w0"), n = cg_fresh(f->e, "n");
      cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s += %lld)", w0, w0, wo, w0, cw);
      cg_line(f->e, "const int64_t %s = %lld - %s < %lld ? %lld - %s : %lld;", n, wo, w0, cw, wo,
              w0, cw);
      col = arena_printf(f->arena, "(%s + %s)", w0, ow);
    }
    const char *v[4] = {b, o, oh, col};
    cg_line(f->e, "for (int64_t %s = 0; %s < %s; %s++)", ow, ow, n, ow);
    cg_line(f->e, "  for (int64_t %s = 0; %s < %lld; %s++)", l, l, vec, l);
    cg_line(f->e, "    %s[%s * %lld + %s] = %s[(%s * %lld + %s * %lld + %s) * %lld + %s];", row, l,
            cw, ow, tp, ob, (long long)d.pix, oh, wo, col, vec, l);
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", l, l, lanes, l);
    cg_line(f->e, "const int64_t %s = %s * %lld + %s;", o, ob, vec, l);
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", ow, ow, n, ow);
    const char *idx = arena_printf(f->arena, "((%s * %lld + %s) * %lld + %s) * %lld + %s", b,
                                   (long long)d.o, o, (long long)d.ho, oh, wo, col);
    const char *value = arena_printf(f->arena, "%s[%s * %lld + %s]", row, l, cw, ow);
    if (!store->emit(f, store->ctx, v, idx, value)) return false;
    for (int i = 0; i < (cw < wo ? 5 : 4); i++)
      cg_close(f->e);
  }
  cg_close(f->e);
  if (th) cg_close(f->e);
  cg_close(f->e);
  return true;
}
