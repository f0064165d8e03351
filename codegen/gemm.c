/* codegen/gemm.c — the packed, register-blocked f32 GEMM behind 2-D matmuls.
 *
 * C = op(A) op(B) (op = identity or transpose, read in place through strides: no transpose is
 * materialized) runs in one BLIS-style routine, lathe_gemm, written once per generated file
 * (into CgFunc.globals, on first use) with its packing routines and the micro-kernel:
 *
 *   for jc in N by NC:  for pc in K by KC:  pack op(B)[pc.., jc..] into NR-wide slivers
 *     for ic in M by MC:  pack op(A)[ic.., pc..] into MR-tall slivers (k-major, zero-padded)
 *       for jr in NC by NR:  for ir in MC by MR:
 *         tile = A sliver x B sliver            (micro-kernel, MR x NR accumulators)
 *         C[valid mr x nr part] = tile (first K block) or += tile (later ones)
 *
 * Each call site passes the shape and the blocking as arguments (a call, not a loop nest:
 * compile time, above all the JIT's, grows with the code per site), and a fused group then
 * applies its elementwise epilogue in one pass over the finished product. The shared
 * routines are marked noinline for the same reason. Zero padding makes every micro-kernel
 * call a full MR x NR tile, so ragged edges cost only the wasted lanes. The B operand is a
 * lathe_gemm_b: a plain strided matrix here, an implicit im2col matrix for the convolutions
 * (codegen/conv_gemm.c), which reuse this routine. The vector kernel uses GCC/Clang vector
 * extensions inside `#ifdef LATHE_VECTOR` (GCC or Clang, unless built with
 * -DLATHE_NO_VECTOR_EXTENSIONS), with a scalar C99 kernel of the same tile in
 * `#else` (and alone for the generic target). With --threads N > 1, lathe_gemm shares the
 * B slivers of each large enough block (M x N x K block >= 2^18) among N OpenMP threads,
 * each with its own tile on the stack; without -fopenmp the pragma is not even seen.
 *
 * Most GEMMs do not come here: when B is row-major and the product is not a large cube,
 * codegen/gemm_direct.c reads both operands in place (no packing), which is faster for the
 * 64-row products of a batch and for everything up to 512 in some dimension (GemmShape.direct,
 * decided per call site). This routine keeps the transposed B of the backward pass
 * (dX = dY W^T), the large cubes, the implicit im2col matrices of the convolutions and the
 * operands packed ahead of time.
 *
 * Pre-packed operands: a scan body's GEMM whose operand is a captured input (a weight, the
 * same at every step) would re-pack it at every step. cg_gemm_prepack (called by
 * codegen/lower_scan.c before the loop) packs the whole operand once, panel after panel in
 * the layout lathe_gemm reads (lathe_gemm_prepack_a/_b), and the body's call reads it in
 * place: a lathe_gemm_b with pack NULL for B, a_rs = a_cs = 0 for A. A data constant
 * operand (weights baked in by `lathe compile --bake`) is packed into the same layout at
 * compile time (emit_const_packed): a static table, 64-byte aligned for the vector kernel,
 * and its plain table is not written when only GEMMs read it (lower.c, const_packed_only).
 *
 * Invariants: the scratch (tile, packed A, packed B, and the M x N product of a fused group
 * when its matmul has no buffer of its own) sits at the 64-byte aligned offset
 * cg_scratch_base (Graph.workspace_bytes rounded up) of the workspace; cg_gemm_scratch
 * reports it per matmul, and cg_workspace_bytes (workspace.c) counts the largest: every
 * workspace size codegen publishes comes from there. Kernels run one at a time, so all GEMMs
 * and convolutions share one scratch region and the generated code stays re-entrant. The
 * pre-packed operands of a scan live while its loop runs, so they sit above that region (at
 * cg_scan_pack_base, packed after packed, a nested scan's above its parent's);
 * cg_workspace_bytes adds the most any scan needs, and cg_gemm_pack_bytes decides both what
 * is packed and what is counted.
 */
#include "gemm.h"
#include "ir/scan.h"
#include "kernels_text.h"

#include <stdio.h>
#include <string.h>

/* The tile and blocking of one target. */
typedef struct GemmTile {
  int vec;         /* floats per vector, 0 = scalar kernel only */
  int mr, nr;      /* micro-tile: rows of A, columns of B (nr a multiple of vec) */
  int64_t kc_max;  /* K block: bounds the B sliver (kc x nr) each tile streams */
  int64_t mc;      /* M block (a multiple of mr): an mc x kc A block stays in L2 */
  const char *isa; /* x86 target attribute of the vector kernel, or NULL */
} GemmTile;

static const GemmTile gemm_tiles[CG_TARGET_COUNT] = {
    [CG_TARGET_NATIVE] = {0, 4, 16, 256, 64, NULL}, /* never used: resolved first */
    [CG_TARGET_GENERIC] = {0, 4, 16, 256, 64, NULL},
    [CG_TARGET_X86_64_V3] = {8, 6, 16, 256, 96, "avx2,fma"},
    [CG_TARGET_X86_64_V4] = {16, 8, 32, 1024, 128, "avx512f,fma"},
    [CG_TARGET_AARCH64] = {4, 8, 12, 256, 96, NULL},
};
_Static_assert(sizeof gemm_tiles / sizeof gemm_tiles[0] == CG_TARGET_COUNT, "one tile per target");

static const char *const target_names[CG_TARGET_COUNT] = {
    "native", "generic", "x86-64-v3", "x86-64-v4", "aarch64",
};

bool cg_target_parse(const char *name, CgTarget *t) {
  for (int i = 0; i < CG_TARGET_COUNT; i++)
    if (strcmp(name, target_names[i]) == 0) {
      *t = (CgTarget)i;
      return true;
    }
  return false;
}

CgTarget cg_target_resolve(const CgOptions *o) {
  if (o->target != CG_TARGET_NATIVE && o->target < CG_TARGET_COUNT) return o->target;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return CG_TARGET_X86_64_V4;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CG_TARGET_X86_64_V3;
  return CG_TARGET_GENERIC;
#elif defined(__aarch64__)
  return CG_TARGET_AARCH64;
#else
  return CG_TARGET_GENERIC;
#endif
}

static const CgTargetInfo target_info[CG_TARGET_COUNT] = {
    [CG_TARGET_GENERIC] = {"generic", NULL, NULL, NULL, "-O3 -fno-math-errno", 0},
    [CG_TARGET_X86_64_V3] = {"x86-64-v3", "AVX2 and FMA", "avx2,fma", "__AVX2__",
                             "-O3 -march=x86-64-v3 -fno-math-errno", 8},
    [CG_TARGET_X86_64_V4] = {"x86-64-v4", "AVX-512F and FMA", "avx512f,fma", "__AVX512F__",
                             "-O3 -march=x86-64-v4 -fno-math-errno", 16},
    /* Advanced SIMD is in every AArch64 CPU: nothing to test */
    [CG_TARGET_AARCH64] = {"aarch64", "Advanced SIMD (NEON)", NULL, NULL, "-O3 -fno-math-errno", 4},
};

void cg_target_info(const CgOptions *o, CgTargetInfo *out) {
  *out = target_info[cg_target_resolve(o)];
}

int cg_gemm_vec(const CgOptions *o) {
  return gemm_tiles[cg_target_resolve(o)].vec;
}

void cg_gemm_tile(const CgOptions *o, int *vec, int *mr, int *nr) {
  const GemmTile *t = &gemm_tiles[cg_target_resolve(o)];
  *vec = t->vec, *mr = t->mr, *nr = t->nr;
}

/* ---- the plan and the scratch ---------------------------------------------------------------- */

enum { GEMM_NC = 1024 }; /* widest N panel of packed B (bounds the scratch: KC x NC floats) */

void cg_sched_target(const CgOptions *o, SchedConfig *out) {
  CgTarget target = cg_target_resolve(o);
  const GemmTile *t = &gemm_tiles[target];
  out->target = target_names[target];
  out->vec = t->vec, out->mr = t->mr, out->nr = t->nr;
  out->kc_ref = t->kc_max, out->mc_ref = t->mc, out->nc_max = GEMM_NC;
}

/* p's blocks set to kc x mc x nc (each within the product, >= 1) and its scratch bytes */
static void plan_blocks(const GemmTile *t, int64_t kc, int64_t mc, int64_t nc, CgGemmPlan *p) {
  p->kc = kc < 1 ? 1 : kc > p->k ? p->k : kc;
  p->mc = mc < 1 ? 1 : mc > p->m ? p->m : mc;
  p->nc = nc < 1 ? 1 : nc > p->n ? p->n : nc;
  if (p->kc < 1) p->kc = 1;
  if (p->mc < 1) p->mc = 1;
  if (p->nc < 1) p->nc = 1;
  /* as lathe_gemm lays it out: tile, packed A block, packed B panel */
  p->bytes = ir_workspace_align((int64_t)t->mr * t->nr * 4) +
             ir_workspace_align(ir_round_up(p->mc, t->mr) * p->kc * 4) +
             ir_workspace_align(ir_round_up(p->nc, t->nr) * p->kc * 4);
}

void cg_gemm_plan(const CgOptions *o, int64_t m, int64_t k, int64_t n, CgGemmPlan *p) {
  const GemmTile *t = &gemm_tiles[cg_target_resolve(o)];
  p->m = m, p->k = k, p->n = n;
  p->m_text = p->k_text = NULL;
  int64_t n_kb = (k + t->kc_max - 1) / t->kc_max;
  if (n_kb < 1) n_kb = 1;
  int64_t nc_max = GEMM_NC / t->nr * t->nr;
  plan_blocks(t, (k + n_kb - 1) / n_kb /* balanced K blocks */, t->mc, nc_max, p);
}

/* A[P..., M, K] @ B[K, N] (B shared by every batch, A not transposed) is the 2-D GEMM
 * [P * ... * M, K] @ [K, N] on the same contiguous arrays: a dense layer on a sequence. */
static bool rows_of_batch(const Graph *g, const Node *n) {
  const Shape *a = &graph_node(g, n->in[0])->shape;
  if (n->attr.matmul.trans_a || a->rank != n->shape.rank ||
      graph_node(g, n->in[1])->shape.rank != 2)
    return false;
  for (int d = 0; d < a->rank - 1; d++)
    if (a->dim[d] != n->shape.dim[d]) return false;
  return true;
}

/* A[P..., M, K] @ B[P..., K, N] with the same batch dims P (attention's scores and mixes):
 * one 2-D GEMM per batch, when nothing is fused into it */
static bool per_batch(const Graph *g, const Node *n) {
  const Shape *a = &graph_node(g, n->in[0])->shape, *b = &graph_node(g, n->in[1])->shape;
  if (n->group >= 0 || a->rank != n->shape.rank || b->rank != n->shape.rank) return false;
  for (int d = 0; d < n->shape.rank - 2; d++)
    if (a->dim[d] != n->shape.dim[d] || b->dim[d] != n->shape.dim[d]) return false;
  return true;
}

bool cg_gemm_applies(const Graph *g, NodeId mm) {
  const Node *n = graph_node(g, mm);
  if (n->op != OP_MATMUL || n->dtype != DT_F32 || n->shape.rank < 2) return false;
  if (n->shape.rank > 2 && !rows_of_batch(g, n) && !per_batch(g, n)) return false;
  for (int j = 0; j < 2; j++) {
    const Node *in = graph_node(g, n->in[j]);
    if (in->shape.rank < 2 || in->dtype != DT_F32) return false;
    /* a data constant (a baked weight) is packed at compile time (const_packed); splats and
     * per-batch operands stay with the loop nests */
    if (in->op == OP_CONST && (!in->attr.constant.data || shape_numel(&in->shape) <= 1 ||
                               (n->shape.rank > 2 && !rows_of_batch(g, n))))
      return false;
  }
  int64_t cols = n->shape.dim[n->shape.rank - 1];
  int64_t rows = n->shape.rank > 2 && !rows_of_batch(g, n) ? n->shape.dim[n->shape.rank - 2]
                                                           : shape_numel(&n->shape) / cols;
  return cols >= 1 && (rows >= 2 || n->attr.matmul.sparse_b); /* sparse.c: any rows */
}

static bool const_packed(const Graph *g, NodeId mm, int j);

typedef struct GemmShape {
  int64_t a_rs, a_cs; /* op(A)[i][p] = a[i * a_rs + p * a_cs] */
  int64_t b_rs, b_cs; /* op(B)[p][j] = b[p * b_rs + j * b_cs] */
  CgGemmPlan plan;
  int64_t off_acc, bytes; /* the product of a fused group, when it has no buffer of its own */
  int64_t batch;          /* per_batch: the number of GEMMs; else 1 */
  const char *batch_text; /* batch as C when it depends on the run-time batch, else NULL */
  bool direct;            /* read in place by lathe_gemm_direct (gemm_direct.c), no packing */
  int64_t a_bs, b_bs;     /* per_batch: floats between the batches of A and of B */
} GemmShape;

static void gemm_shape(const Graph *g, NodeId mm, const CgOptions *o, GemmShape *s) {
  const Node *n = graph_node(g, mm);
  const Shape *a = &graph_node(g, n->in[0])->shape;
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  /* rank > 2: rows_of_batch (M counts the rows of every batch) or per_batch */
  int r = n->shape.rank;
  int64_t nn = n->shape.dim[r - 1], m = shape_numel(&n->shape) / nn;
  int64_t k = ta ? a->dim[a->rank - 2] : a->dim[a->rank - 1];
  s->batch = 1;
  if (r > 2 && !rows_of_batch(g, n)) {
    m = n->shape.dim[r - 2];
    s->batch = shape_numel(&n->shape) / (m * nn);
  }
  s->a_bs = m * k;
  s->b_bs = k * nn;
  s->a_rs = ta ? 1 : k;
  s->a_cs = ta ? m : 1;
  s->b_rs = tb ? 1 : nn;
  s->b_cs = tb ? k : 1;
  cg_gemm_plan(o, m, k, nn, &s->plan);
  const IrSched *sc = &n->attr.matmul.sched; /* passes/schedule.c, when it ran */
  if (sc->from != IR_SCHED_UNSET)
    plan_blocks(&gemm_tiles[cg_target_resolve(o)], sc->kc, sc->mc, sc->nc, &s->plan);
  bool suits = sc->from != IR_SCHED_UNSET ? sc->gemm == IR_SCHED_GEMM_DIRECT
                                          : cg_gemm_direct_suits(m, k, nn);
  /* no operand packed at compile time: unpacked unless a large cube (a scan body's captured
   * operands are then not pre-packed either: cg_gemm_pack_bytes). A transposed B is made row-major
   * per call, unless it is a scan body's argument: a captured one (the only kind a body
   * transposes in practice, a recurrence's weights) is packed once before the loop
   * (cg_gemm_pack_bytes), which costs nothing per step; gemm_shape has no scan at hand to tell the
   * captured ones from the per-step slices, which stay packed too. */
  s->direct = (s->b_cs == 1 || graph_node(g, n->in[1])->op != OP_SCAN_ARG) &&
              !const_packed(g, mm, 0) && !const_packed(g, mm, 1) && suits;
  if (s->direct) s->plan.bytes = cg_gemm_direct_bytes(o, k, nn, s->b_cs != 1);
  if (n->attr.matmul.sparse_b) /* packs nothing; a panel of A's rows (sparse.c) */
    s->direct = false, s->plan.bytes = cg_sparse_scratch(g, mm, o);
  s->off_acc = s->plan.bytes;
  s->bytes = s->off_acc + (n->group >= 0 ? ir_workspace_align(m * nn * 4) : 0);
}

int64_t cg_gemm_scratch(const Graph *g, NodeId mm, const CgOptions *o) {
  if (!cg_gemm_applies(g, mm)) return 0;
  GemmShape s;
  gemm_shape(g, mm, o, &s);
  return s.bytes;
}

/* ---- pre-packed operands of scan bodies ------------------------------------------------------ */

/* The tile of o's target (the pre-packed layouts depend on it). */
static const GemmTile *tile_of(const CgOptions *o) {
  return &gemm_tiles[cg_target_resolve(o)];
}

/* The bytes of operand j (0: A, 1: B) of body matmul mm pre-packed, or 0 when it is not
 * pre-packed: it must be a captured input of scan (the same at every step) of a 2-D GEMM
 * (not one per batch). Then the whole operand is packed once before the loop, in the layout
 * lathe_gemm reads (lathe_gemm_prepack_a/_b): ir_round_up(rows, MR or NR) x K floats. */
int64_t cg_gemm_pack_bytes(const Node *scan, const Graph *body, NodeId mm, int j,
                           const CgOptions *o) {
  if (!cg_gemm_applies(body, mm)) return 0;
  const Node *in = graph_node(body, graph_node(body, mm)->in[j]);
  if (in->op != OP_SCAN_ARG || scan_input_kind(scan, in->attr.scan_arg.index) != 2) return 0;
  GemmShape s;
  gemm_shape(body, mm, o, &s);
  if (s.batch != 1 || s.direct) return 0; /* lathe_gemm_direct reads it in place */
  const GemmTile *t = tile_of(o);
  return ir_workspace_align(j ? ir_round_up(s.plan.n, t->nr) * s.plan.k * 4
                              : ir_round_up(s.plan.m, t->mr) * s.plan.k * 4);
}

/* ---- the file-scope routines ----------------------------------------------------------------- */

/* Appends tmpl to o with @MR@, @NR@ and @TILE@ (the tile's floats, rounded to 64 bytes)
 * replaced by the target's numbers. */
/* The per-tile lines of lathe_gemm: where the tile lives, and what comes before the loop
 * over the B slivers. One thread: one tile in the scratch. Several (--threads): the slivers
 * are shared out by OpenMP when the block is large enough, each with a tile of its own on
 * the stack (a vector array on GNU C, so the vector kernel's stores are aligned). */
static void tile_lines(const GemmTile *t, int threads, char *par, char *decl, size_t cap) {
  if (threads <= 1) {
    snprintf(par, cap, "%s", "");
    snprintf(decl, cap, "%s", "          float *const tile = ws;\n");
    return;
  }
  snprintf(par, cap,
           "        const int lathe_par = mc * nc * kc >= %d; /* else one thread */\n"
           "        (void)lathe_par;\n"
           "        LATHE_GEMM_OMP\n",
           1 << 18);
  if (t->vec > 0)
    snprintf(decl, cap,
             "#ifdef LATHE_VECTOR\n"
             "          lathe_vf tl[%d];\n"
             "#else\n"
             "          float tl[%d];\n"
             "#endif\n"
             "          float *const tile = (float *)tl;\n",
             t->mr * t->nr / t->vec, t->mr * t->nr);
  else
    snprintf(decl, cap, "          float tl[%d], *const tile = tl;\n", t->mr * t->nr);
}

/* The one template mechanism of the kernel library (codegen/kernels/): appends text to o
 * with its LT_* identifiers replaced by t's numbers: LT_MR and LT_NR (the micro-tile), LT_TILE
 * (the tile's floats, rounded to the workspace alignment), LT_V (floats per vector), LT_THREADS
 * (--threads), and the line-valued LT_PAR and LT_TILEDECL (lathe_gemm's lines that --threads
 * changes: tile_lines), which stand alone on a line that their lines replace. */
static void kernel_text(CgBuf *o, const char *text, const GemmTile *t, int threads) {
  static const char *const keys[7] = {"LT_MR",       "LT_NR", "LT_TILE",   "LT_PAR",
                                      "LT_TILEDECL", "LT_V",  "LT_THREADS"};
  char vals[7][256];
  snprintf(vals[0], sizeof vals[0], "%d", t->mr);
  snprintf(vals[1], sizeof vals[1], "%d", t->nr);
  snprintf(vals[2], sizeof vals[2], "%d",
           (int)(ir_workspace_align((int64_t)t->mr * t->nr * 4) / 4));
  tile_lines(t, threads, vals[3], vals[4], sizeof vals[3]);
  snprintf(vals[5], sizeof vals[5], "%d", t->vec);
  snprintf(vals[6], sizeof vals[6], "%d", threads > 1 ? threads : 1);
  for (const char *p = text; *p;) {
    const char *at = strstr(p, "LT_");
    size_t len = at ? strspn(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") : 0;
    int key = -1;
    for (int i = 0; at && i < 7 && key < 0; i++)
      if (strlen(keys[i]) == len && strncmp(at, keys[i], len) == 0) key = i;
    if (key < 0) { /* no template: up to and including the LT_ that was none */
      size_t n = at ? (size_t)(at - p) + 3 : strlen(p);
      cg_buf_printf(o, "%.*s", (int)n, p);
      p += n;
      continue;
    }
    cg_buf_printf(o, "%.*s%s", (int)(at - p), p, vals[key]);
    p = at + len;
    if ((key == 3 || key == 4) && *p == '\n') p++; /* the value carries its own lines */
  }
}

void cg_kernel_emit(CgFunc *f, const char *text) {
  kernel_text(f->globals, text, &gemm_tiles[cg_target_resolve(f->opt)], f->opt->threads);
}

static const char kernel_doc[] =
    "/* C tile (%d x %d, row stride ldc) = A sliver (%d x kc) * B sliver (kc x %d), both packed,\n"
    " * or C tile += it when add */\n";

static void emit_scalar_kernel(CgBuf *o, const GemmTile *t) {
  cg_buf_printf(o, kernel_doc, t->mr, t->nr, t->mr, t->nr);
  cg_buf_printf(o,
                "LATHE_GEMM_SHARED void lathe_gemm_kernel(ptrdiff_t kc, const float *restrict a,\n"
                "                                         const float *restrict b,\n"
                "                                         float *restrict c, ptrdiff_t ldc,\n"
                "                                         int add) {\n"
                "  float t[%d];\n"
                "  for (int x = 0; x < %d; x++) t[x] = 0.0f;\n"
                "  for (ptrdiff_t p = 0; p < kc; p++) {\n"
                "    for (int i = 0; i < %d; i++) {\n"
                "      const float ai = a[i];\n"
                "      for (int j = 0; j < %d; j++) t[i * %d + j] += ai * b[j];\n"
                "    }\n"
                "    a += %d;\n"
                "    b += %d;\n"
                "  }\n"
                "  for (int i = 0; i < %d; i++)\n"
                "    for (int j = 0; j < %d; j++)\n"
                "      c[i * ldc + j] = add ? c[i * ldc + j] + t[i * %d + j] : t[i * %d + j];\n"
                "}\n",
                t->mr * t->nr, t->mr * t->nr, t->mr, t->nr, t->nr, t->mr, t->nr, t->mr, t->nr,
                t->nr, t->nr);
}

/* The function attributes of the vector kernel: the target's ISA on x86-64 (so it is fast
 * whatever -march the file is built with), and FMA contraction for GCC, which turns it off
 * in ISO C modes (-std=c99/c11). */
static void emit_kernel_attributes(CgBuf *o, const GemmTile *t) {
  const char *contract = "optimize(\"fp-contract=fast\")";
  if (t->isa) {
    cg_buf_printf(o,
                  "#if defined(__x86_64__) && defined(__clang__)\n"
                  "#define LATHE_GEMM_FN static __attribute__((target(\"%s\"), noinline))\n"
                  "#elif defined(__x86_64__)\n"
                  "#define LATHE_GEMM_FN static __attribute__((target(\"%s\"), noinline, %s))\n"
                  "#elif defined(__clang__)\n",
                  t->isa, t->isa, contract);
  } else {
    cg_buf_puts(o, "#if defined(__clang__)\n");
  }
  cg_buf_printf(o,
                "#define LATHE_GEMM_FN static __attribute__((noinline))\n"
                "#else\n"
                "#define LATHE_GEMM_FN static __attribute__((noinline, %s))\n"
                "#endif\n",
                contract);
}

void cg_gemm_emit_tile_step(CgBuf *o, int mr, int nr, int vec, const char *bload,
                            const char *aload) {
  int nv = nr / vec;
  for (int i = 0; i < mr; i++) {
    cg_buf_puts(o, "  lathe_vf");
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, "%s c%d_%d = {0}", v ? "," : "", i, v);
    cg_buf_puts(o, ";\n");
  }
  cg_buf_puts(o, "  LATHE_UNROLL_K\n  for (ptrdiff_t p = 0; p < kc; p++) {\n");
  for (int v = 0; v < nv; v++) {
    cg_buf_printf(o, "    const lathe_vf b%d = ", v);
    cg_buf_printf(o, bload, v * vec);
    cg_buf_puts(o, ";\n");
  }
  for (int i = 0; i < mr; i++) {
    cg_buf_printf(o, "    const float x%d = ", i);
    cg_buf_printf(o, aload, i);
    cg_buf_puts(o, ";\n   ");
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, " c%d_%d += x%d * b%d;", i, v, i, v);
    cg_buf_puts(o, "\n");
  }
}

/* The vector micro-kernel writes its tile straight into C (stored, or added after the first K
 * block), where an earlier version stored it to a scratch tile that lathe_gemm then copied or
 * added into C: at 512^3 on Zen 3 the copy pass cost about an eighth of the time (docs/perf.md,
 * 2026-12-07). The tile's rows of C are prefetched first, for writing, so that their misses
 * overlap the k loop. */
static void emit_vector_kernel(CgBuf *o, const GemmTile *t) {
  int nv = t->nr / t->vec;
  cg_buf_printf(o, kernel_doc, t->mr, t->nr, t->mr, t->nr);
  cg_buf_puts(o,
              "LATHE_GEMM_FN void lathe_gemm_kernel(ptrdiff_t kc, const float *restrict a,\n"
              "                                     const float *restrict b, float *restrict c,\n"
              "                                     ptrdiff_t ldc, int add) {\n");
  cg_buf_printf(o,
                "  for (int i = 0; i < %d; i++) {\n"
                "    __builtin_prefetch(c + i * ldc, 1);\n"
                "    __builtin_prefetch(c + i * ldc + %d, 1);\n"
                "  }\n",
                t->mr, t->nr - 1);
  cg_gemm_emit_tile_step(o, t->mr, t->nr, t->vec, "*(const lathe_vf *)(b + %d)", "a[%d]");
  cg_buf_printf(o, "    a += %d;\n    b += %d;\n  }\n", t->mr, t->nr);
  for (int add = 1; add >= 0; add--) {
    cg_buf_puts(o, add ? "  if (add) {\n" : "  } else {\n");
    for (int i = 0; i < t->mr; i++) {
      cg_buf_puts(o, "   ");
      for (int v = 0; v < nv; v++)
        cg_buf_printf(o, " *(lathe_vfu *)(c + %d * ldc + %d) %s= c%d_%d;", i, v * t->vec,
                      add ? "+" : "", i, v);
      cg_buf_puts(o, "\n");
    }
  }
  cg_buf_puts(o, "  }\n}\n");
}

/* Every GEMM of the file calls these few routines; inlining them into each call site would
 * multiply the code the compiler (the JIT above all) optimizes by the number of matmuls, for
 * no measurable speed: each call does O(kc) or more work. (The generic target stays free of
 * extensions, so there they are plain static functions.) */

/* Every target: <string.h> (memcpy), and LATHE_NOVEC, which keeps Clang's vectorizer off the
 * short gather and zero-fill loops of the packing routines (compile time, no speed lost). */

static const char prelude_mark[] = "/* ---- GEMM routines (codegen/gemm.c)";

bool cg_gemm_once(CgFunc *f, const char *mark) {
  if (f->globals->data && strstr(f->globals->data, mark)) return false;
  cg_buf_printf(f->globals, "/* %s */\n", mark);
  return true;
}

/* The micro-kernels' k loops are unrolled by 4 under GCC on x86-64: one pointer step and loop
 * test per 4 steps, and no spill (AVX2 6 x 16 on Zen 3: the packed loops over a block in L2 5 to
 * 28% faster, the unpacked kernel 14% on the MLP; docs/perf.md). Clang unrolls the packed loop
 * by 8 on its own and, told to unroll the unpacked one, spills accumulators: left alone. */
static const char unroll_k[] =
    "/* the micro-kernels' k loops: unrolled by 4 under GCC on x86-64 (codegen/gemm.c) */\n"
    "#if defined(__x86_64__) && !defined(__clang__)\n"
    "#define LATHE_UNROLL_K _Pragma(\"GCC unroll 4\")\n"
    "#else\n"
    "#define LATHE_UNROLL_K\n"
    "#endif\n";

static const char vector_mark[] = "/* ---- vector types and function attributes (codegen/gemm.c)";

void cg_vector_prelude(CgFunc *f) {
  CgBuf *o = f->globals;
  if (o->data && strstr(o->data, vector_mark)) return;
  const GemmTile *t = &gemm_tiles[cg_target_resolve(f->opt)];
  cg_buf_printf(o, "%s ---- */\n", vector_mark);
  cg_buf_puts(o, cg_kernel_gemm_novec);
  cg_buf_puts(o, cg_kernel_gemm_dims);
  cg_buf_puts(o, t->vec > 0 ? cg_kernel_gemm_shared : "#define LATHE_GEMM_SHARED static\n\n");
  if (t->vec > 0) {
    cg_buf_printf(
        o,
        "/* the micro-kernels use GCC/Clang vector extensions; their scalar C99 twins\n"
        " * run elsewhere, or when built with -DLATHE_NO_VECTOR_EXTENSIONS */\n"
        "#if defined(__GNUC__) && !defined(LATHE_NO_VECTOR_EXTENSIONS)\n"
        "#define LATHE_VECTOR 1\n"
        "typedef float lathe_vf __attribute__((vector_size(%d), may_alias));\n"
        "/* a vector read or written at any float boundary (rows of B and C in place) */\n"
        "typedef float lathe_vfu __attribute__((vector_size(%d), aligned(4), "
        "may_alias));\n",
        t->vec * 4, t->vec * 4);
    emit_kernel_attributes(o, t);
    cg_buf_puts(o, unroll_k);
    cg_buf_puts(o, "#endif\n\n");
  }
}

void cg_gemm_prelude(CgFunc *f) {
  CgBuf *o = f->globals;
  if (o->data && strstr(o->data, prelude_mark)) return;
  cg_vector_prelude(f);
  CgTarget target = cg_target_resolve(f->opt);
  const GemmTile *t = &gemm_tiles[target];
  cg_buf_printf(o, "%s for %s: %d x %d micro-tile ---- */\n\n", prelude_mark, target_names[target],
                t->mr, t->nr);
  kernel_text(o, cg_kernel_gemm_pack, t, 1);
  if (t->vec > 0) {
    cg_buf_puts(o, "#ifdef LATHE_VECTOR\n");
    emit_vector_kernel(o, t);
    cg_buf_puts(o, "#else\n");
  }
  emit_scalar_kernel(o, t);
  if (t->vec > 0) cg_buf_puts(o, "#endif\n");
  cg_buf_puts(o, "\n");
  if (f->opt->threads > 1)
    cg_buf_printf(o,
                  "#ifdef _OPENMP\n#define LATHE_GEMM_OMP _Pragma(\"omp parallel for "
                  "num_threads(%d) schedule(static) if(lathe_par)\")\n#else\n"
                  "#define LATHE_GEMM_OMP\n#endif\n",
                  f->opt->threads);
  kernel_text(o, cg_kernel_gemm_driver, t, f->opt->threads);
}

/* ---- the call sites -------------------------------------------------------------------------- */

const char *cg_gemm_m(CgFunc *f, const CgGemmPlan *p) {
  return p->m_text ? p->m_text : arena_printf(f->arena, "%lld", (long long)p->m);
}

const char *cg_gemm_k(CgFunc *f, const CgGemmPlan *p) {
  return p->k_text ? p->k_text : arena_printf(f->arena, "%lld", (long long)p->k);
}

void cg_gemm_call_at(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                     const char *b, const char *c, int64_t ldc, const char *acc, const char *at) {
  cg_line(f->e, "lathe_gemm(%s, &%s, %s, (float *)((char *)ws + %s),", a, b, c, at);
  cg_line(f->e,
          "           (lathe_gemm_dims){.m = %s, .n = %lld, .k = %s, .a_rs = %lld, "
          ".a_cs = %lld, .ldc = %lld,",
          cg_gemm_m(f, p), (long long)p->n, cg_gemm_k(f, p), (long long)a_rs, (long long)a_cs,
          (long long)ldc);
  cg_line(f->e,
          "                             .acc = %s, .kc_max = %lld, .mc_max = %lld, "
          ".nc_max = %lld});",
          acc, (long long)p->kc, (long long)p->mc, (long long)p->nc);
}

void cg_gemm_call(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                  const char *b, const char *c, int64_t ldc, const char *acc, int64_t at) {
  cg_gemm_call_at(f, p, a, a_rs, a_cs, b, c, ldc, acc, cg_scratch_offset(f, at));
}

/* for (int64_t v = 0; v < extent; v++) {, always emitted (extent may be 1); text, when not
 * NULL, is the extent as C (the run-time batch) */
static const char *plain_loop(CgFunc *f, const char *base, int64_t extent, const char *text) {
  cg_scope_push(f->e);
  const char *v = cg_fresh(f->e, base);
  if (!text) text = arena_printf(f->arena, "%lld", (long long)extent);
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", v, v, text, v);
  return v;
}

static void plain_close(CgFunc *f) {
  cg_close(f->e);
  cg_scope_pop(f->e);
}

/* the fused epilogue: one pass over the finished product prod (M x N, row-major); its
 * elements are independent, so with --threads a large one (an optimizer's update of a dense
 * layer's weights after dW = Xᵀ dY) shares its rows out like an elementwise kernel */
static bool epilogue(CgFunc *f, const GemmShape *s, const char *prod, const CgGemmStore *store) {
  const char *ij[2];
  cg_omp_for(f, s->plan.m * s->plan.n * CG_OMP_ELEMENT_COST);
  ij[0] = plain_loop(f, "i", s->plan.m, s->plan.m_text);
  ij[1] = plain_loop(f, "j", s->plan.n, NULL);
  const char *idx = arena_printf(f->arena, "%s * %lld + %s", ij[0], (long long)s->plan.n, ij[1]);
  const char *v = cg_fresh(f->e, "v");
  cg_line(f->e, "const float %s = %s[%s];", v, prod, idx);
  bool ok = store->emit(f, store->ctx, ij, idx, v);
  plain_close(f);
  plain_close(f);
  return ok;
}

/* per_batch: a loop over the batches, one GEMM each, straight into the matmul's buffer */
static bool gemm_per_batch(CgFunc *f, NodeId mm, const GemmShape *s) {
  const Node *node = graph_node(f->g, mm);
  const char *bt = plain_loop(f, "batch", s->batch, s->batch_text);
  const char *gb = cg_fresh(f->e, "gemm_b");
  cg_line(f->e,
          "const lathe_gemm_b %s = {lathe_gemm_pack_strided, %s + %s * %lld, %lld, %lld, {0}};", gb,
          f->val[node->in[1]].expr, bt, (long long)s->b_bs, (long long)s->b_rs, (long long)s->b_cs);
  const char *a =
      arena_printf(f->arena, "%s + %s * %lld", f->val[node->in[0]].expr, bt, (long long)s->a_bs);
  const char *c = arena_printf(f->arena, "%s + %s * %lld", f->val[mm].expr, bt,
                               (long long)(s->plan.m * s->plan.n));
  cg_gemm_call(f, &s->plan, a, s->a_rs, s->a_cs, gb, c, s->plan.n, "0", 0);
  plain_close(f);
  return true;
}

/* ---- constant operands packed at compile time ------------------------------------------------ */

/* whether operand j of GEMM mm is a data constant: then its panels are a static table */
static bool const_packed(const Graph *g, NodeId mm, int j) {
  const Node *in = graph_node(g, graph_node(g, mm)->in[j]);
  return in->op == OP_CONST && in->attr.constant.data && cg_gemm_applies(g, mm) &&
         !(j == 1 && graph_node(g, mm)->attr.matmul.sparse_b);
}

bool cg_gemm_packs_operand(const Graph *g, NodeId mm, int j) {
  /* a sparse B is read from its nonzero tables alone (sparse.c) */
  return const_packed(g, mm, j) ||
         (j == 1 && graph_node(g, mm)->attr.matmul.sparse_b && cg_gemm_applies(g, mm));
}

/* The static table of operand j (a data constant) of GEMM mm, packed as lathe_gemm reads a
 * pre-packed operand (lathe_gemm_prepack_a/_b): the same layout, computed here. */
void cg_gemm_align_macro(CgFunc *f) {
  if (cg_gemm_once(f, "LATHE_GEMM_ALIGN (codegen/gemm.c)"))
    cg_buf_puts(f->globals, "#if defined(__GNUC__) /* the vector kernel's aligned loads */\n"
                            "#define LATHE_GEMM_ALIGN __attribute__((aligned(64)))\n"
                            "#else\n#define LATHE_GEMM_ALIGN\n#endif\n\n");
}

static const char *emit_const_packed(CgFunc *f, NodeId mm, int j, const GemmShape *s) {
  const GemmTile *t = tile_of(f->opt);
  const Node *cn = graph_node(f->g, graph_node(f->g, mm)->in[j]);
  const double *data = cn->attr.constant.data;
  const CgGemmPlan *p = &s->plan;
  int64_t rows = j ? p->n : p->m, blk = j ? p->nc : p->mc, w = j ? t->nr : t->mr;
  int64_t rs = j ? s->b_cs : s->a_rs, cs = j ? s->b_rs : s->a_cs; /* along rows, along K */
  int64_t size = ir_round_up(rows, w) * p->k;
  const char *name = arena_printf(f->arena, "%s_c%u_mm%u_%c", f->symbol,
                                  graph_node(f->g, mm)->in[j], mm, j ? 'b' : 'a');
  if (t->vec > 0) cg_gemm_align_macro(f);
  char shape[200];
  cg_buf_printf(f->globals,
                "/* %%%u = const : f32%s, the %s operand of GEMM %%%u packed at compile time (%s "
                "layout, %lld-wide slivers, K blocks of %lld) */\n",
                graph_node(f->g, mm)->in[j], shape_str(&cn->shape, shape, sizeof shape),
                j ? "B" : "A", mm, target_names[cg_target_resolve(f->opt)], (long long)w,
                (long long)p->kc);
  cg_buf_printf(f->globals, "static const float %s[%lld]%s = {", name, (long long)size,
                t->vec > 0 ? " LATHE_GEMM_ALIGN" : ""); /* generic: no vector kernel */
  int64_t at = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += blk) { /* N panel (B) or M block (A) */
    int64_t nb = rows - r0 < blk ? rows - r0 : blk;
    for (int64_t pc = 0; pc < p->k; pc += p->kc) {
      int64_t kc = p->k - pc < p->kc ? p->k - pc : p->kc;
      for (int64_t s0 = 0; s0 < nb; s0 += w) /* sliver */
        for (int64_t q = 0; q < kc; q++)
          for (int64_t x = 0; x < w; x++, at++) {
            int64_t r = r0 + s0 + x;
            double v = s0 + x < nb ? data[r * rs + (pc + q) * cs] : 0.0;
            cg_buf_puts(f->globals, at % 8 == 0 ? "\n  " : " ");
            cg_buf_printf(f->globals, "%s%s", cg_literal(f->arena, DT_F32, v),
                          at + 1 < size ? "," : "");
          }
    }
  }
  cg_buf_puts(f->globals, "\n};\n\n");
  return name;
}

void cg_gemm_prepack(CgFunc *f, NodeId scan, CgFunc *fb, int64_t at) {
  const Node *n = graph_node(f->g, scan);
  const Graph *body = fb->g;
  fb->gemm_packed = NULL;
  for (NodeId mm = 0; mm < body->n_nodes; mm++)
    for (int j = 0; j < 2; j++) {
      int64_t bytes = cg_gemm_pack_bytes(n, body, mm, j, f->opt);
      if (!bytes) continue;
      if (!fb->gemm_packed) {
        size_t size = 2 * (size_t)body->n_nodes * sizeof *fb->gemm_packed;
        fb->gemm_packed = arena_alloc(f->arena, size);
        memset(fb->gemm_packed, 0, size);
      }
      const Node *node = graph_node(body, mm);
      GemmShape s;
      gemm_shape(body, mm, f->opt, &s);
      cg_gemm_prelude(f);
      if (cg_gemm_once(f, "lathe_gemm_pack_strided (codegen/gemm.c)"))
        cg_kernel_emit(f, cg_kernel_gemm_strided);
      if (cg_gemm_once(f, j ? "lathe_gemm_prepack_b (codegen/gemm.c)"
                            : "lathe_gemm_prepack_a (codegen/gemm.c)"))
        cg_kernel_emit(f, j ? cg_kernel_gemm_prepack_b : cg_kernel_gemm_prepack_a);
      const char *name =
          cg_fresh(f->e, arena_printf(f->arena, "s%u_pack%u_%c", scan, mm, j ? 'b' : 'a'));
      cg_decl(f->e, "float *%s = (float *)((char *)ws + %s);", name,
              cg_ws_offset(f, f->g->workspace_bytes_n, at));
      const char *src = fb->val[node->in[j]].expr;
      cg_line(f->e,
              "/* the %s operand of GEMM %%%u (%lld x %lld x %lld) of the body, the same at "
              "every step: packed once */",
              j ? "B" : "A", mm, (long long)s.plan.m, (long long)s.plan.k, (long long)s.plan.n);
      if (j) {
        cg_line(f->e, "{");
        cg_indent(f->e);
        cg_line(f->e, "const lathe_gemm_b gemm_b = {lathe_gemm_pack_strided, %s, %lld, %lld, {0}};",
                src, (long long)s.b_rs, (long long)s.b_cs);
        cg_line(f->e, "lathe_gemm_prepack_b(&gemm_b, %lld, %lld, %lld, %lld, %s);",
                (long long)s.plan.k, (long long)s.plan.n, (long long)s.plan.kc,
                (long long)s.plan.nc, name);
        cg_close(f->e);
      } else {
        cg_line(f->e, "lathe_gemm_prepack_a(%s, %lld, %lld, %lld, %lld, %lld, %lld, %s);", src,
                (long long)s.a_rs, (long long)s.a_cs, (long long)s.plan.m, (long long)s.plan.k,
                (long long)s.plan.kc, (long long)s.plan.mc, name);
      }
      fb->gemm_packed[2 * mm + j] = name;
      at += bytes;
    }
  fb->gemm_pack_at = at;
}

/* Where the product goes: unfused, straight into the matmul's buffer; fused, into its buffer
 * or a scratch one, then the epilogue (never into another member's buffer: an input updated
 * in place may be it). */
static const char *product(CgFunc *f, const GemmShape *s, const CgGemmStore *store) {
  if (store->partial) return store->partial;
  const char *prod = cg_fresh(f->e, "gemm_c");
  cg_line(f->e, "float *const %s = (float *)((char *)ws + %s);", prod,
          cg_scratch_offset(f, s->off_acc));
  return prod;
}

/* A product whose rows are the run-time batch, when there are fewer of them than the micro-
 * tile has (lathe_gemm_direct would run only its edge path): each row streams B once, i-k-j,
 * what a fixed batch of one compiles to (lower.c). Opens `if (m < mr) {...} else {`; the
 * caller emits the tiled call and closes the brace. */
static void small_rows(CgFunc *f, const GemmShape *s, const char *a, const char *b, const char *c) {
  int vec, mr, nr;
  cg_gemm_tile(f->opt, &vec, &mr, &nr);
  cg_line(f->e, "if (%s < %d) { /* fewer rows than a %d-row tile: each row streams B */",
          s->plan.m_text, mr, mr);
  cg_indent(f->e);
  const char *i = cg_fresh(f->e, "i"), *k = cg_fresh(f->e, "k"), *j = cg_fresh(f->e, "j");
  long long n = (long long)s->plan.n, kk = (long long)s->plan.k;
  cg_line(f->e, "for (int64_t %s = 0; %s < %s; %s++) {", i, i, s->plan.m_text, i);
  cg_line(f->e, "  float *const c_i = (%s) + %s * %lld;", c, i, n);
  cg_line(f->e, "  for (int64_t %s = 0; %s < %lld; %s++) c_i[%s] = 0.0f;", j, j, n, j, j);
  cg_line(f->e, "  for (int64_t %s = 0; %s < %lld; %s++) {", k, k, kk, k);
  cg_line(f->e, "    const float a_ik = (%s)[%s * %lld + %s * %lld];", a, i, (long long)s->a_rs, k,
          (long long)s->a_cs);
  cg_line(f->e, "    for (int64_t %s = 0; %s < %lld; %s++) c_i[%s] += a_ik * (%s)[%s * %lld + %s];",
          j, j, n, j, j, b, k, (long long)s->b_rs, j);
  cg_line(f->e, "  }");
  cg_line(f->e, "}");
  cg_dedent(f->e);
  cg_line(f->e, "} else {");
  cg_indent(f->e);
}

/* What the generated C says about a matmul's schedule (passes/schedule.c), on a line of its
 * own after the GEMM's: its choice and where it came from; nothing when none was recorded. */
static void sched_note(CgFunc *f, const Node *n) {
  const IrSched *sc = &n->attr.matmul.sched;
  const char *from = sc->from == IR_SCHED_TUNED ? "the tune cache" : "the cost model";
  if (sc->from == IR_SCHED_UNSET) return;
  if (sc->gemm == IR_SCHED_GEMM_DIRECT)
    cg_line(f->e, "/* schedule: direct (unpacked), from %s */", from);
  else
    cg_line(f->e, "/* schedule: packed, blocks kc x mc x nc = %d x %d x %d, from %s */", sc->kc,
            sc->mc, sc->nc, from);
}

/* s->direct: lathe_gemm_direct reads both operands in place (gemm_direct.c) */
static bool gemm_direct(CgFunc *f, NodeId mm, const GemmShape *s, const CgGemmStore *store) {
  const Node *node = graph_node(f->g, mm);
  const char *a = f->val[node->in[0]].expr, *b = f->val[node->in[1]].expr;
  const char *c, *bt = NULL;
  cg_line(f->e, "/* GEMM %lld x %lld x %lld (M x K x N), %s: %d x %d tiles, unpacked */",
          (long long)s->plan.m, (long long)s->plan.k, (long long)s->plan.n,
          target_names[cg_target_resolve(f->opt)], tile_of(f->opt)->mr, tile_of(f->opt)->nr);
  sched_note(f, node);
  if (s->batch > 1) { /* per_batch: never fused */
    bt = plain_loop(f, "batch", s->batch, s->batch_text);
    a = arena_printf(f->arena, "%s + %s * %lld", a, bt, (long long)s->a_bs);
    b = arena_printf(f->arena, "%s + %s * %lld", b, bt, (long long)s->b_bs);
    c = arena_printf(f->arena, "%s + %s * %lld", f->val[mm].expr, bt,
                     (long long)(s->plan.m * s->plan.n));
  } else {
    c = product(f, s, store);
  }
  bool small = s->batch == 1 && s->plan.m_text && s->b_cs == 1; /* rows chosen at run time */
  if (small) small_rows(f, s, a, b, c);
  cg_gemm_direct_call(f, &s->plan, a, s->a_rs, s->a_cs, b, s->b_rs, s->b_cs, c, s->plan.n, 0);
  if (small) cg_close(f->e);
  if (bt) plain_close(f);
  return bt || node->group < 0 || epilogue(f, s, c, store);
}

/* The extents that depend on the run-time batch (docs/dynamic-batch.md), as C; the blocking
 * stays planned at the bound. A dynamic product has dynamic rows (m, or the batches of a
 * per-batch product); a static product of a dynamic A (transposed: the weight gradient
 * X^T dY) sums over the batch (k). */
static void gemm_run_time(CgFunc *f, NodeId mm, GemmShape *s) {
  const Node *n = graph_node(f->g, mm);
  const Shape *a = &graph_node(f->g, n->in[0])->shape;
  s->batch_text = NULL;
  if (cg_is_dyn(f, &n->shape)) {
    if (s->batch > 1)
      s->batch_text = cg_count(f, &n->shape, s->batch);
    else
      s->plan.m_text = cg_count(f, &n->shape, s->plan.m);
  } else if (cg_is_dyn(f, a)) {
    s->plan.k_text = cg_count(f, a, s->plan.k);
  }
}

bool cg_gemm_lower(CgFunc *f, NodeId mm, const CgGemmStore *store) {
  CgTarget target = cg_target_resolve(f->opt);
  const GemmTile *t = &gemm_tiles[target];
  const Node *node = graph_node(f->g, mm);
  GemmShape s;
  gemm_shape(f->g, mm, f->opt, &s); /* as cg_workspace_bytes reserved it */
  gemm_run_time(f, mm, &s);
  if (!store->partial && node->group < 0) {
    diag_error(f->diag, node->loc, "internal error: matmul %u has no output buffer", mm);
    return false;
  }
  if (s.direct) return gemm_direct(f, mm, &s, store);
  if (node->attr.matmul.sparse_b) { /* passes/sparsify.c: B over its nonzeros */
    const char *prod = product(f, &s, store);
    cg_sparse_product(f, mm, f->val[node->in[0]].expr, s.a_rs, s.a_cs, s.plan.m, prod);
    return node->group < 0 || epilogue(f, &s, prod, store);
  }
  cg_gemm_prelude(f);
  const char *packed_b = f->gemm_packed ? f->gemm_packed[2 * mm + 1] : NULL;
  if (!packed_b && const_packed(f->g, mm, 1)) packed_b = emit_const_packed(f, mm, 1, &s);
  if (!packed_b && cg_gemm_once(f, "lathe_gemm_pack_strided (codegen/gemm.c)"))
    cg_kernel_emit(f, cg_kernel_gemm_strided); /* written only when used */
  cg_line(f->e, "/* GEMM %lld x %lld x %lld (M x K x N), %s: %d x %d tiles, K blocks of %lld */",
          (long long)s.plan.m, (long long)s.plan.k, (long long)s.plan.n, target_names[target],
          t->mr, t->nr, (long long)s.plan.kc);
  sched_note(f, node);
  if (s.batch > 1) return gemm_per_batch(f, mm, &s);
  const char *gb = cg_fresh(f->e, "gemm_b");
  const char *packed_a = f->gemm_packed ? f->gemm_packed[2 * mm] : NULL;
  if (!packed_a && const_packed(f->g, mm, 0)) packed_a = emit_const_packed(f, mm, 0, &s);
  if (packed_b)
    cg_line(f->e, "const lathe_gemm_b %s = {NULL, %s, 0, 0, {0}}; /* pre-packed */", gb, packed_b);
  else
    cg_line(f->e, "const lathe_gemm_b %s = {lathe_gemm_pack_strided, %s, %lld, %lld, {0}};", gb,
            f->val[node->in[1]].expr, (long long)s.b_rs, (long long)s.b_cs);
  const char *prod = product(f, &s, store);
  if (packed_a) /* a_rs = a_cs = 0: A pre-packed */
    cg_gemm_call(f, &s.plan, packed_a, 0, 0, gb, prod, s.plan.n, "0", 0);
  else
    cg_gemm_call(f, &s.plan, f->val[node->in[0]].expr, s.a_rs, s.a_cs, gb, prod, s.plan.n, "0", 0);
  return node->group < 0 || epilogue(f, &s, prod, store);
}
