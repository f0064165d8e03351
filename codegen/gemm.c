/* codegen/gemm.c — the packed, register-blocked f32 GEMM behind 2-D matmuls.
 *
 * C = op(A) op(B) (op = identity or transpose, read in place through strides: no transpose is
 * materialized) is emitted as a BLIS-style loop nest specialized to the shape:
 *
 *   for jc in N by NC:  pack op(B)[.., jc..] into NR-wide slivers (k-major, zero-padded)
 *   for pc in K by KC:  for ic in M by MC:  pack op(A)[ic.., pc..] into MR-tall slivers
 *     for jr in NC by NR:  for ir in MC by MR:
 *       tile = A sliver x B sliver            (micro-kernel, MR x NR accumulators)
 *       write back the valid mr x nr part of the tile: partial sums while K blocks remain,
 *       else the finished element through the caller's store (the fused epilogue).
 *
 * Zero padding makes every micro-kernel call a full MR x NR tile, so ragged edges cost only
 * the wasted lanes, never a slow path. The micro-kernel and the packing routines are static
 * functions written once per generated file (into CgFunc.globals, on first use); the vector
 * kernel uses GCC/Clang vector extensions inside `#if defined(__GNUC__)`, with a scalar C99
 * kernel of the same tile in `#else` (and alone for the generic target).
 *
 * Invariants: the scratch (tile, packed A, packed B, and an M x N partial-sum buffer when K
 * needs several blocks and the caller has no buffer of its own) sits at the 64-byte aligned
 * offset Graph.workspace_bytes of the workspace; cg_workspace_bytes counts it, and every
 * workspace size codegen publishes must come from there. Kernels run one at a time, so all
 * matmuls share one scratch region and the generated code stays re-entrant.
 */
#include "gemm.h"

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

/* ---- shape and scratch ----------------------------------------------------------------------- */

typedef struct GemmShape {
  int64_t m, k, n;
  int64_t a_rs, a_cs; /* op(A)[i][p] = a[i * a_rs + p * a_cs] */
  int64_t b_rs, b_cs; /* op(B)[p][j] = b[p * b_rs + j * b_cs] */
  int64_t kc, n_kb;   /* K block and the number of K blocks */
  int64_t nc;         /* N panel: packed B holds k x nc; nc = n unless N needs panels */
  int64_t off_tile, off_a, off_b, off_acc, bytes; /* scratch layout, from its start */
} GemmShape;

static int64_t round64(int64_t x) { return (x + 63) / 64 * 64; }

enum { GEMM_NC = 1024 }; /* widest N panel of packed B (bounds the scratch: K x NC floats) */

bool cg_gemm_applies(const Graph *g, NodeId mm) {
  const Node *n = graph_node(g, mm);
  if (n->op != OP_MATMUL || n->dtype != DT_F32 || n->shape.rank != 2) return false;
  for (int j = 0; j < 2; j++) {
    const Node *in = graph_node(g, n->in[j]);
    if (in->shape.rank != 2 || in->dtype != DT_F32 || in->op == OP_CONST) return false;
  }
  return n->shape.dim[0] >= 2 && n->shape.dim[1] >= 1;
}

/* need_acc: reserve an M x N partial-sum buffer when K takes several blocks */
static void gemm_shape(const Graph *g, NodeId mm, const GemmTile *t, bool need_acc,
                       GemmShape *s) {
  const Node *n = graph_node(g, mm);
  const Shape *a = &graph_node(g, n->in[0])->shape;
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  s->m = n->shape.dim[0];
  s->n = n->shape.dim[1];
  s->k = ta ? a->dim[0] : a->dim[1];
  s->a_rs = ta ? 1 : s->k;
  s->a_cs = ta ? s->m : 1;
  s->b_rs = tb ? 1 : s->n;
  s->b_cs = tb ? s->k : 1;
  s->n_kb = (s->k + t->kc_max - 1) / t->kc_max;
  if (s->n_kb < 1) s->n_kb = 1;
  s->kc = (s->k + s->n_kb - 1) / s->n_kb;
  if (s->kc < 1) s->kc = 1;
  int64_t nc_max = GEMM_NC / t->nr * t->nr;
  s->nc = s->n < nc_max ? s->n : nc_max;
  int64_t n_pad = (s->nc + t->nr - 1) / t->nr * t->nr;
  int64_t mc = s->m < t->mc ? (s->m + t->mr - 1) / t->mr * t->mr : t->mc;
  s->off_tile = 0;
  s->off_a = round64((int64_t)t->mr * t->nr * 4);
  s->off_b = s->off_a + round64(mc * s->kc * 4);
  s->off_acc = s->off_b + round64(s->k * n_pad * 4);
  s->bytes = s->off_acc + (need_acc && s->n_kb > 1 ? round64(s->m * s->n * 4) : 0);
}

/* the largest packing scratch of g's GEMMs, scan bodies included (they run inside g) */
static int64_t gemm_scratch(const Graph *g, const GemmTile *t) {
  int64_t scratch = 0;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    if (!cg_gemm_applies(g, id)) continue;
    GemmShape s;
    gemm_shape(g, id, t, g->nodes[id].group >= 0, &s);
    if (s.bytes > scratch) scratch = s.bytes;
  }
  for (int i = 0; i < g->n_subgraphs; i++) {
    int64_t sub = gemm_scratch(g->subgraphs[i], t);
    if (sub > scratch) scratch = sub;
  }
  return scratch;
}

int64_t cg_workspace_bytes(const Graph *g, const CgOptions *o) {
  const GemmTile *t = &gemm_tiles[cg_target_resolve(o)];
  int64_t scratch = gemm_scratch(g, t);
  return scratch ? round64(g->workspace_bytes) + scratch : g->workspace_bytes;
}

/* ---- the file-scope routines ----------------------------------------------------------------- */

static void emit_pack(CgBuf *o, const GemmTile *t) {
  cg_buf_printf(
      o,
      "/* op(B) (k_n x n, op(B)[p][j] = b[p * rs + j * cs]) as %d-wide slivers, k-major,\n"
      " * zero-padded to a whole sliver */\n"
      "static void lathe_gemm_pack_b(const float *b, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t k_n,\n"
      "                              ptrdiff_t n, float *dst) {\n"
      "  for (ptrdiff_t j0 = 0; j0 < n; j0 += %d) {\n"
      "    const ptrdiff_t w = n - j0 < %d ? n - j0 : %d;\n"
      "    for (ptrdiff_t p = 0; p < k_n; p++) {\n"
      "      const float *src = b + p * rs + j0 * cs;\n"
      "      ptrdiff_t j = 0;\n"
      "      if (cs == 1 && w == %d) {\n"
      "        for (; j < %d; j++) dst[j] = src[j];\n"
      "      } else {\n"
      "        for (; j < w; j++) dst[j] = src[j * cs];\n"
      "        for (; j < %d; j++) dst[j] = 0.0f;\n"
      "      }\n"
      "      dst += %d;\n"
      "    }\n"
      "  }\n"
      "}\n\n",
      t->nr, t->nr, t->nr, t->nr, t->nr, t->nr, t->nr, t->nr);
  cg_buf_printf(
      o,
      "/* op(A) (mc x kc, op(A)[i][p] = a[i * rs + p * cs]) as %d-tall slivers, k-major,\n"
      " * zero-padded to a whole sliver */\n"
      "static void lathe_gemm_pack_a(const float *a, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t mc,\n"
      "                              ptrdiff_t kc, float *dst) {\n"
      "  for (ptrdiff_t i0 = 0; i0 < mc; i0 += %d) {\n"
      "    const ptrdiff_t h = mc - i0 < %d ? mc - i0 : %d;\n"
      "    for (ptrdiff_t p = 0; p < kc; p++) {\n"
      "      ptrdiff_t i = 0;\n"
      "      for (; i < h; i++) dst[i] = a[(i0 + i) * rs + p * cs];\n"
      "      for (; i < %d; i++) dst[i] = 0.0f;\n"
      "      dst += %d;\n"
      "    }\n"
      "  }\n"
      "}\n\n",
      t->mr, t->mr, t->mr, t->mr, t->mr, t->mr);
}

static const char kernel_doc[] =
    "/* tile (%d x %d, row-major) = A sliver (%d x kc) * B sliver (kc x %d), both packed */\n";

static void emit_scalar_kernel(CgBuf *o, const GemmTile *t) {
  cg_buf_printf(o, kernel_doc, t->mr, t->nr, t->mr, t->nr);
  cg_buf_printf(o,
                "static void lathe_gemm_kernel(ptrdiff_t kc, const float *restrict a,\n"
                "                              const float *restrict b, float *restrict t) {\n"
                "  for (int x = 0; x < %d; x++) t[x] = 0.0f;\n"
                "  for (ptrdiff_t p = 0; p < kc; p++) {\n"
                "    for (int i = 0; i < %d; i++) {\n"
                "      const float ai = a[i];\n"
                "      for (int j = 0; j < %d; j++) t[i * %d + j] += ai * b[j];\n"
                "    }\n"
                "    a += %d;\n"
                "    b += %d;\n"
                "  }\n"
                "}\n",
                t->mr * t->nr, t->mr, t->nr, t->nr, t->mr, t->nr);
}

/* The function attributes of the vector kernel: the target's ISA on x86-64 (so it is fast
 * whatever -march the file is built with), and FMA contraction for GCC, which turns it off
 * in ISO C modes (-std=c99/c11). */
static void emit_kernel_attributes(CgBuf *o, const GemmTile *t) {
  const char *contract = "optimize(\"fp-contract=fast\")";
  if (t->isa) {
    cg_buf_printf(o,
                  "#if defined(__x86_64__) && defined(__clang__)\n"
                  "#define LATHE_GEMM_FN static __attribute__((target(\"%s\")))\n"
                  "#elif defined(__x86_64__)\n"
                  "#define LATHE_GEMM_FN static __attribute__((target(\"%s\"), %s))\n"
                  "#elif defined(__clang__)\n",
                  t->isa, t->isa, contract);
  } else {
    cg_buf_puts(o, "#if defined(__clang__)\n");
  }
  cg_buf_printf(o,
                "#define LATHE_GEMM_FN static\n"
                "#else\n"
                "#define LATHE_GEMM_FN static __attribute__((%s))\n"
                "#endif\n",
                contract);
}

static void emit_vector_kernel(CgBuf *o, const GemmTile *t) {
  int nv = t->nr / t->vec;
  cg_buf_printf(o, "typedef float lathe_vf __attribute__((vector_size(%d), may_alias));\n",
                t->vec * 4);
  emit_kernel_attributes(o, t);
  cg_buf_printf(o, kernel_doc, t->mr, t->nr, t->mr, t->nr);
  cg_buf_puts(o, "LATHE_GEMM_FN void lathe_gemm_kernel(ptrdiff_t kc, const float *restrict a,\n"
                 "                                     const float *restrict b, float *restrict t) "
                 "{\n");
  for (int i = 0; i < t->mr; i++) {
    cg_buf_puts(o, "  lathe_vf");
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, "%s c%d_%d = {0}", v ? "," : "", i, v);
    cg_buf_puts(o, ";\n");
  }
  cg_buf_puts(o, "  for (ptrdiff_t p = 0; p < kc; p++) {\n");
  for (int v = 0; v < nv; v++)
    cg_buf_printf(o, "    const lathe_vf b%d = *(const lathe_vf *)(b + %d);\n", v, v * t->vec);
  for (int i = 0; i < t->mr; i++) {
    cg_buf_printf(o, "    const float a%d = a[%d];\n   ", i, i);
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, " c%d_%d += a%d * b%d;", i, v, i, v);
    cg_buf_puts(o, "\n");
  }
  cg_buf_printf(o, "    a += %d;\n    b += %d;\n  }\n", t->mr, t->nr);
  for (int i = 0; i < t->mr; i++)
    for (int v = 0; v < nv; v++)
      cg_buf_printf(o, "  *(lathe_vf *)(t + %d) = c%d_%d;\n", i * t->nr + v * t->vec, i, v);
  cg_buf_puts(o, "}\n");
}

static const char prelude_mark[] = "/* ---- GEMM routines (codegen/gemm.c)";

/* The packing routines and the micro-kernel, once per file. */
static void emit_prelude(CgFunc *f, CgTarget target) {
  CgBuf *o = f->globals;
  if (o->data && strstr(o->data, prelude_mark)) return;
  const GemmTile *t = &gemm_tiles[target];
  cg_buf_printf(o, "%s for %s: %d x %d micro-tile ---- */\n\n", prelude_mark,
                target_names[target], t->mr, t->nr);
  emit_pack(o, t);
  if (t->vec > 0) {
    cg_buf_puts(o, "#if defined(__GNUC__)\n");
    emit_vector_kernel(o, t);
    cg_buf_puts(o, "#else\n");
  }
  emit_scalar_kernel(o, t);
  if (t->vec > 0) cg_buf_puts(o, "#endif\n");
  cg_buf_puts(o, "\n");
}

/* ---- the loop nest --------------------------------------------------------------------------- */

/* `for (int64_t v = 0; v < bound; v += step) {` with v fresh; returns v */
static const char *block_open(CgFunc *f, const char *base, const char *bound, int64_t step) {
  cg_scope_push(f->e);
  const char *v = cg_fresh(f->e, base);
  if (step == 1)
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", v, v, bound, v);
  else
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s += %lld)", v, v, bound, v, (long long)step);
  return v;
}

static void block_close(CgFunc *f) {
  cg_close(f->e);
  cg_scope_pop(f->e);
}

/* `const int64_t len = bound - v < step ? bound - v : step;` */
static const char *block_len(CgFunc *f, const char *base, const char *v, const char *bound,
                             int64_t step) {
  const char *len = cg_fresh(f->e, base);
  cg_line(f->e, "const int64_t %s = %s - %s < %lld ? %s - %s : %lld;", len, bound, v,
          (long long)step, bound, v, (long long)step);
  return len;
}

typedef struct GemmNames {
  const char *tile, *pa, *pb, *acc; /* scratch pointers */
  const char *pc, *kc;              /* current K block */
} GemmNames;

/* Opens the loops over the valid mr x nr part of the tile; ij[] = the element's row and
 * column, *idx its row-major index in C, *tv its tile element. */
static void tile_open(CgFunc *f, const GemmShape *s, const GemmTile *t, const GemmNames *nm,
                      const char *const *pos, const char **ij, const char **idx,
                      const char **tv) {
  const char *ii = block_open(f, "ii", pos[2], 1);
  const char *jj = block_open(f, "jj", pos[3], 1);
  ij[0] = cg_fresh(f->e, "i");
  ij[1] = cg_fresh(f->e, "j");
  cg_line(f->e, "const int64_t %s = %s + %s, %s = %s + %s;", ij[0], pos[0], ii, ij[1], pos[1],
          jj);
  *idx = arena_printf(f->arena, "%s * %lld + %s", ij[0], (long long)s->n, ij[1]);
  *tv = arena_printf(f->arena, "%s[%s * %d + %s]", nm->tile, ii, t->nr, jj);
}

static void tile_close(CgFunc *f) {
  block_close(f);
  block_close(f);
}

/* The valid mr x nr part of the tile: partial sums while K blocks remain (first block:
 * stored, later ones: added), else the finished elements through the caller's store. Each
 * phase is its own branch-free loop nest, so the compiler can vectorize it. */
static bool write_back(CgFunc *f, const GemmShape *s, const GemmTile *t, const GemmNames *nm,
                       const char *const *pos, const CgGemmStore *store) {
  const char *ij[2], *idx, *tv;
  if (s->n_kb > 1) {
    cg_open(f->e, "if (%s + %s < %lld)", nm->pc, nm->kc, (long long)s->k);
    tile_open(f, s, t, nm, pos, ij, &idx, &tv);
    const char *part = cg_fresh(f->e, "part");
    cg_line(f->e, "const float %s = %s;", part, tv);
    cg_line(f->e, "%s[%s] = %s == 0 ? %s : %s[%s] + %s;", nm->acc, idx, nm->pc, part, nm->acc,
            idx, part);
    tile_close(f);
    cg_line(f->e, "continue;");
    cg_close(f->e);
  }
  tile_open(f, s, t, nm, pos, ij, &idx, &tv);
  const char *v = cg_fresh(f->e, "v");
  if (s->n_kb > 1)
    cg_line(f->e, "const float %s = %s + %s[%s];", v, tv, nm->acc, idx);
  else
    cg_line(f->e, "const float %s = %s;", v, tv);
  bool ok = store->emit(f, store->ctx, ij, idx, v);
  tile_close(f);
  return ok;
}

/* for jr, ir: the micro-kernel and the write-back; ic, mc: the current M block; jc, nc: the
 * current N panel (jc NULL: a single panel of all N columns) */
static bool emit_tiles(CgFunc *f, const GemmShape *s, const GemmTile *t, const GemmNames *nm,
                       const char *const *blk, const CgGemmStore *store) {
  const char *ic = blk[0], *mc = blk[1], *jc = blk[2];
  const char *n = jc ? blk[3] : arena_printf(f->arena, "%lld", (long long)s->n);
  const char *jr = block_open(f, "jr", n, t->nr);
  const char *nr = block_len(f, "nr", jr, n, t->nr);
  const char *ir = block_open(f, "ir", mc, t->mr);
  const char *mr = block_len(f, "mr", ir, mc, t->mr);
  cg_line(f->e, "lathe_gemm_kernel(%s, %s + %s * %s, %s + %s * %lld + %s * %d, %s);", nm->kc,
          nm->pa, ir, nm->kc, nm->pb, jr, (long long)s->k, nm->pc, t->nr, nm->tile);
  const char *row = arena_printf(f->arena, "%s + %s", ic, ir);
  const char *col = jc ? arena_printf(f->arena, "%s + %s", jc, jr) : jr;
  const char *const pos[4] = {row, col, mr, nr};
  bool ok = write_back(f, s, t, nm, pos, store);
  block_close(f);
  block_close(f);
  return ok;
}

static const char *scratch_ptr(CgFunc *f, const char *base, int64_t offset) {
  const char *v = cg_fresh(f->e, base);
  cg_line(f->e, "float *const %s = (float *)((char *)ws + %lld);", v, (long long)offset);
  return v;
}

/* Packs op(B): all of it, or (N wider than a panel) opens the loop over N panels, sets
 * blk[2], blk[3] to its variable and width, and packs the current panel. */
static void pack_b(CgFunc *f, const GemmShape *s, const char *b, const char *pb,
                   const char **blk) {
  const char *width = arena_printf(f->arena, "%lld", (long long)s->n);
  if (s->nc < s->n) {
    blk[2] = block_open(f, "jc", width, s->nc);
    blk[3] = width = block_len(f, "nc", blk[2], width, s->nc);
    b = arena_printf(f->arena, "%s + %s * %lld", b, blk[2], (long long)s->b_cs);
  }
  cg_line(f->e, "lathe_gemm_pack_b(%s, %lld, %lld, %lld, %s, %s);", b, (long long)s->b_rs,
          (long long)s->b_cs, (long long)s->k, width, pb);
}

static void gemm_comment(CgFunc *f, const GemmShape *s, CgTarget target, const GemmTile *t) {
  cg_line(f->e,
          "/* GEMM %lld x %lld x %lld (M x K x N), %s: %d x %d tiles, K in %lld blocks of %lld */",
          (long long)s->m, (long long)s->k, (long long)s->n, target_names[target], t->mr, t->nr,
          (long long)s->n_kb, (long long)s->kc);
}

bool cg_gemm_lower(CgFunc *f, NodeId mm, const CgGemmStore *store) {
  CgTarget target = cg_target_resolve(f->opt);
  const GemmTile *t = &gemm_tiles[target];
  const Node *node = graph_node(f->g, mm);
  GemmShape s;
  gemm_shape(f->g, mm, t, node->group >= 0, &s); /* as cg_workspace_bytes reserved it */
  if (!store->partial && s.n_kb > 1 && node->group < 0) {
    diag_error(f->diag, node->loc, "internal error: matmul %u has no partial-sum buffer", mm);
    return false;
  }
  emit_prelude(f, target);
  gemm_comment(f, &s, target, t);
  int64_t base = round64(f->g->workspace_bytes);
  GemmNames nm = {scratch_ptr(f, "gemm_tile", base + s.off_tile),
                  scratch_ptr(f, "gemm_a", base + s.off_a),
                  scratch_ptr(f, "gemm_b", base + s.off_b), store->partial, NULL, NULL};
  if (!nm.acc && s.n_kb > 1) nm.acc = scratch_ptr(f, "gemm_acc", base + s.off_acc);
  const char *a = f->val[node->in[0]].expr, *blk[4] = {NULL, NULL, NULL, NULL};
  pack_b(f, &s, f->val[node->in[1]].expr, nm.pb, blk);
  const char *k = arena_printf(f->arena, "%lld", (long long)s.k);
  nm.pc = block_open(f, "pc", k, s.kc);
  nm.kc = block_len(f, "kc", nm.pc, k, s.kc);
  const char *m = arena_printf(f->arena, "%lld", (long long)s.m);
  int64_t mc_max = s.m < t->mc ? s.m : t->mc;
  const char *ic = blk[0] = block_open(f, "ic", m, mc_max);
  const char *mc = blk[1] = block_len(f, "mc", ic, m, mc_max);
  cg_line(f->e, "lathe_gemm_pack_a(%s + %s * %lld + %s * %lld, %lld, %lld, %s, %s, %s);", a, ic,
          (long long)s.a_rs, nm.pc, (long long)s.a_cs, (long long)s.a_rs, (long long)s.a_cs, mc,
          nm.kc, nm.pa);
  bool ok = emit_tiles(f, &s, t, &nm, blk, store);
  block_close(f);
  block_close(f);
  if (blk[2]) block_close(f);
  return ok;
}
