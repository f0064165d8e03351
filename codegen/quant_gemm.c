/* codegen/quant_gemm.c — qdense and qconv2d with baked weights on the packed int8 GEMM
 * (docs/int8.md, "Kernels"; the routines are codegen/kernels/quant_gemm.c).
 *
 * On a vector target (x86-64-v3, x86-64-v4, aarch64) a qdense or qconv2d whose weights are a
 * data constant (`lathe compile --bake`) has them packed here, at compile time, into a static
 * table in the layout every tile reads (16-column panels of 4-weight groups), with the
 * table of their column sums that folds the tiles' input offset out of the epilogue. The
 * packer also decides, per layer, whether AVX2's vpmaddubsw is exact for these weights: it
 * adds two u8 x s8 products into a saturating int16, so a pair of weights of one sign whose
 * products with bytes up to 255 can pass 32767 (or -32768) sends the layer to the s16 tile,
 * which widens to int16 first and cannot saturate. Weights are never changed: every tile is
 * exact, and the bytes out equal the portable loops' (lower_quant.c) and the oracle's.
 * The generic target keeps the portable loops (they are also the Cortex-M code).
 */
#include "quant_gemm.h"

#include "gemm.h"
#include "kernels_text.h"

#include <stdio.h>
#include <string.h>

/* output pixels per im2col block of qconv2d (the kernel text's 64) */
enum { QCONV_ROWS = 64 };

bool cg_qgemm_applies(const Graph *g, NodeId id, const CgOptions *o) {
  const Node *n = graph_node(g, id);
  if (n->op != OP_QDENSE && n->op != OP_QCONV2D) return false;
  if (n->op == OP_QCONV2D && n->attr.quant.groups > 1) return false; /* grouped: plain loops */
  const Node *w = graph_node(g, n->in[1]);
  return cg_gemm_vec(o) > 0 && w->op == OP_CONST && w->attr.constant.data;
}

bool cg_qgemm_packs_const(const Graph *g, NodeId id, int k, const CgOptions *o) {
  return k == 1 && cg_qgemm_applies(g, id, o);
}

/* the inner size K and the output columns N of the GEMM of node n */
static void gemm_dims(const Graph *g, const Node *n, int64_t *k, int64_t *cols) {
  const Shape *ws = &graph_node(g, n->in[1])->shape;
  if (n->op == OP_QDENSE) {
    *k = ws->dim[0], *cols = ws->dim[1];
  } else {
    *k = ws->dim[1] * ws->dim[2] * ws->dim[3], *cols = ws->dim[0];
  }
}

int64_t cg_qgemm_scratch(const Graph *g, NodeId id, const CgOptions *o) {
  if (!cg_qgemm_applies(g, id, o) || graph_node(g, id)->op != OP_QCONV2D) return 0;
  int64_t k, cols;
  gemm_dims(g, graph_node(g, id), &k, &cols);
  return QCONV_ROWS * ((k + 3) / 4 * 4); /* rows of k rounded up to whole groups */
}

/* B[p, o] of node n's weights: qdense w [K, N] as it is, qconv2d w [O, C, kh, kw] as [O, K] */
static int weight(const Node *n, const double *w, int64_t k, int64_t cols, int64_t p, int64_t o) {
  return (int)(n->op == OP_QDENSE ? w[p * cols + o] : w[o * k + p]);
}

/* whether the weight pair (a, b) can saturate vpmaddubsw's int16 sum for some u8 inputs */
static bool pair_saturates(int a, int b) {
  int pos = (a > 0 ? a : 0) + (b > 0 ? b : 0), neg = (a < 0 ? a : 0) + (b < 0 ? b : 0);
  return 255 * pos > 32767 || 255 * neg < -32768;
}

typedef struct Packed {
  const char *w, *sum;  /* the tables' names */
  int64_t pairs, risky; /* weight pairs vpmaddubsw adds, and those that could saturate */
} Packed;

static void emit_int_table(CgFunc *f, const char *decl, const int *v, int64_t count) {
  cg_buf_printf(f->globals, "%s[%lld] = {", decl, (long long)count);
  for (int64_t i = 0; i < count; i++)
    cg_buf_printf(f->globals, "%s%d%s", i % 16 ? " " : "\n  ", v[i], i + 1 < count ? "," : "");
  cg_buf_puts(f->globals, "\n};\n\n");
}

/* The weights of node id packed (kernels/quant_gemm.c's layout), their column sums, and how
 * many of their vpmaddubsw pairs could saturate. */
static void emit_packed(CgFunc *f, NodeId id, Packed *out) {
  const Node *n = graph_node(f->g, id);
  const double *data = graph_node(f->g, n->in[1])->attr.constant.data;
  int64_t k, cols;
  gemm_dims(f->g, n, &k, &cols);
  int64_t groups = (k + 3) / 4, panels = (cols + 15) / 16, size = panels * groups * 64;
  int *w = arena_alloc(f->arena, (size_t)size * sizeof *w);
  int *sum = arena_alloc(f->arena, (size_t)cols * sizeof *sum);
  memset(sum, 0, (size_t)cols * sizeof *sum);
  out->pairs = out->risky = 0;
  for (int64_t at = 0; at < size; at++) { /* panel, group, column, weight of the group */
    int64_t panel = at / (groups * 64), g = at / 64 % groups, c = at % 64 / 4, q = at % 4;
    int64_t p = 4 * g + q, o = 16 * panel + c;
    w[at] = p < k && o < cols ? weight(n, data, k, cols, p, o) : 0;
    if (p < k && o < cols) sum[o] += w[at];
    if (q % 2 == 1 && o < cols) out->pairs++, out->risky += pair_saturates(w[at - 1], w[at]);
  }
  out->w = arena_printf(f->arena, "%s_q%u_w", f->symbol, id);
  out->sum = arena_printf(f->arena, "%s_q%u_wsum", f->symbol, id);
  char shape[200];
  const Shape *ws = &graph_node(f->g, n->in[1])->shape;
  cg_gemm_align_macro(f);
  cg_buf_printf(f->globals,
                "/* %%%u = const : i8%s, the weights of %s %%%u packed at compile time as B [%lld, "
                "%lld]: 16-column panels of 4-weight groups (codegen/kernels/quant_gemm.c) */\n",
                n->in[1], shape_str(ws, shape, sizeof shape), ir_ops[n->op].name, id, (long long)k,
                (long long)cols);
  emit_int_table(f, arena_printf(f->arena, "static const int8_t LATHE_GEMM_ALIGN %s", out->w), w,
                 size);
  cg_buf_printf(f->globals, "/* the column sums of %s (the input offset's correction) */\n",
                out->w);
  emit_int_table(f, arena_printf(f->arena, "static const int32_t %s", out->sum), sum, cols);
}

/* the kernel text once per file: the driver, the target's tiles and its pick */
static const char *emit_routines(CgFunc *f, bool conv) {
  CgTarget t = cg_target_resolve(f->opt);
  if (cg_gemm_once(f, "int8 GEMM routines (codegen/kernels/quant_gemm.c)")) {
    cg_kernel_emit(f, cg_kernel_quant_gemm_driver);
    if (t == CG_TARGET_X86_64_V3 || t == CG_TARGET_X86_64_V4)
      cg_kernel_emit(f, cg_kernel_quant_gemm_avx2);
    if (t == CG_TARGET_X86_64_V4) cg_kernel_emit(f, cg_kernel_quant_gemm_vnni);
    if (t == CG_TARGET_AARCH64) cg_kernel_emit(f, cg_kernel_quant_gemm_sdot);
    cg_kernel_emit(f, t == CG_TARGET_X86_64_V3   ? cg_kernel_quant_gemm_pick_v3
                      : t == CG_TARGET_X86_64_V4 ? cg_kernel_quant_gemm_pick_v4
                                                 : cg_kernel_quant_gemm_pick_aarch64);
  }
  if (conv && cg_gemm_once(f, "int8 convolution routines (codegen/kernels/quant_gemm.c)"))
    cg_kernel_emit(f, cg_kernel_quant_gemm_conv);
  return t == CG_TARGET_X86_64_V3   ? "lathe_qkernel_pick_v3"
         : t == CG_TARGET_X86_64_V4 ? "lathe_qkernel_pick_v4"
                                    : "lathe_qkernel_pick_aarch64";
}

/* `.name = &v[0], .name_cs = 1` of a per-column operand, or of a one-element array holding a
 * scalar one (declared in the open block) */
static const char *operand(CgFunc *f, NodeId in, const char *name) {
  const Node *n = graph_node(f->g, in);
  if (shape_numel(&n->shape) > 1)
    return arena_printf(f->arena, ".%s = &%s, .%s_cs = 1", name, cg_at(f, in, "0"), name);
  const char *one = cg_fresh(f->e, arena_printf(f->arena, "q_%s", name));
  cg_line(f->e, "const int32_t %s[1] = {%s};", one, cg_at(f, in, "0"));
  return arena_printf(f->arena, ".%s = %s, .%s_cs = 0", name, one, name);
}

/* opens the block and declares `qg`, the lathe_qgemm_args of node id (m, x, y as given) */
static void emit_args(CgFunc *f, NodeId id, const Packed *pk, int64_t m, const char *x, int64_t k,
                      int64_t cols, const char *y) {
  const Node *n = graph_node(f->g, id);
  cg_line(f->e, "{");
  cg_indent(f->e);
  const char *b = operand(f, n->in[2], "bias"), *mu = operand(f, n->in[3], "mult"),
             *sh = operand(f, n->in[4], "shift");
  cg_line(f->e,
          "const lathe_qgemm_args qg = {.m = %lld, .k = %lld, .n = %lld, .x = %s, .x_rs = %lld,",
          (long long)m, (long long)k, (long long)cols, x, (long long)k);
  cg_line(f->e, "    .w = %s, .wsum = %s, %s,", pk->w, pk->sum, b);
  cg_line(f->e, "    %s, %s,", mu, sh);
  cg_line(f->e, "    .x_zp = %d, .out_zp = %d, .lo = %d, .hi = %d,", (int)n->attr.quant.x_zp,
          (int)n->attr.quant.out_zp, (int)n->attr.quant.qmin, (int)n->attr.quant.qmax);
  cg_line(f->e, "    .y = %s, .y_rs = %lld, .y_cs = 1};", y, (long long)cols);
}

static const char *tile_note(CgFunc *f, const Packed *pk) {
  CgTarget t = cg_target_resolve(f->opt);
  if (t == CG_TARGET_AARCH64) return "the sdot tile where built with +dotprod";
  const char *avx2 = pk->risky ? "AVX2's exact s16 tile" : "AVX2's u8 x s8 vpmaddubsw tile";
  return arena_printf(f->arena, "%s%s; %lld of %lld weight pairs could saturate vpmaddubsw",
                      t == CG_TARGET_X86_64_V4 ? "VNNI where the CPU has it, else " : "", avx2,
                      (long long)pk->risky, (long long)pk->pairs);
}

static bool lower_dense(CgFunc *f, NodeId id, const Packed *pk, const char *pick) {
  const Node *n = graph_node(f->g, id);
  int64_t k, cols;
  gemm_dims(f->g, n, &k, &cols);
  int64_t rows = shape_numel(&n->shape) / cols;
  cg_line(f->e, "/* int8 dense %lld x %lld x %lld (M x K x N), x_zp = %d, on the packed int8 GEMM:",
          (long long)rows, (long long)k, (long long)cols, (int)n->attr.quant.x_zp);
  cg_line(f->e, " * %s */", tile_note(f, pk));
  emit_args(f, id, pk, rows, arena_printf(f->arena, "&%s", cg_at(f, n->in[0], "0")), k, cols,
            arena_printf(f->arena, "&%s", cg_at(f, id, "0")));
  cg_line(f->e, "lathe_qgemm(&qg, %s(%d));", pick, pk->risky > 0);
  cg_close(f->e);
  return true;
}

static bool lower_conv(CgFunc *f, NodeId id, const Packed *pk, const char *pick) {
  const Node *n = graph_node(f->g, id);
  const int64_t *xd = graph_node(f->g, n->in[0])->shape.dim, *od = n->shape.dim;
  const int64_t *wd = graph_node(f->g, n->in[1])->shape.dim;
  const int32_t *st = n->attr.quant.stride, *dil = n->attr.quant.dilation, *pad = n->attr.quant.pad;
  int64_t k, cols;
  gemm_dims(f->g, n, &k, &cols);
  cg_line(f->e,
          "/* int8 convolution, x_zp = %d, %lld x %lld x %lld per image (pixels x K x N) in "
          "im2col blocks of %d",
          (int)n->attr.quant.x_zp, (long long)(od[2] * od[3]), (long long)k, (long long)cols,
          QCONV_ROWS);
  cg_line(f->e, " * pixels, on the packed int8 GEMM: %s */", tile_note(f, pk));
  emit_args(f, id, pk, 0, "NULL", k, cols, arena_printf(f->arena, "&%s", cg_at(f, id, "0")));
  const char *dims = arena_printf(
      f->arena,
      "{.c = %lld, .h = %lld, .w = %lld, .kh = %lld, .kw = %lld, .oh = %lld, .ow = %lld,\n"
      "      .sh = %d, .sw = %d, .dh = %d, .dw = %d, .pt = %d, .pl = %d}",
      (long long)xd[1], (long long)xd[2], (long long)xd[3], (long long)wd[2], (long long)wd[3],
      (long long)od[2], (long long)od[3], st[0], st[1], dil[0], dil[1], pad[0], pad[1]);
  const char *im2col = arena_printf(f->arena, "%s_q%u_im2col", f->symbol, id);
  cg_buf_printf(f->globals,
                "/* the im2col rows of qconv2d %%%u, its geometry a constant */\n"
                "static void %s(const int8_t *x, int8_t zp, int64_t r0, int64_t m, int8_t *col) "
                "{\n  static const lathe_qconv_dims d = %s;\n"
                "  lathe_qim2col(&d, x, zp, r0, m, col);\n}\n\n",
                id, im2col, dims);
  cg_line(f->e, "static const lathe_qconv_dims qd = %s;", dims);
  cg_line(f->e, "lathe_qconv(&qd, %s, %lld, &%s, &qg, (int8_t *)((char *)ws + %s), %s(%d));",
          im2col, (long long)xd[0], cg_at(f, n->in[0], "0"), cg_scratch_offset(f, 0), pick,
          pk->risky > 0);
  cg_close(f->e);
  return true;
}

bool cg_qgemm_lower(CgFunc *f, NodeId id) {
  Packed pk;
  emit_packed(f, id, &pk);
  bool conv = graph_node(f->g, id)->op == OP_QCONV2D;
  const char *pick = emit_routines(f, conv);
  return conv ? lower_conv(f, id, &pk, pick) : lower_dense(f, id, &pk, pick);
}
