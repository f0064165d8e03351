/* codegen/gemm.h — the packed, register-blocked f32 GEMM (private to codegen/).
 *
 * lower.c hands a 2-D f32 matmul (alone, or with its fused elementwise epilogue) to
 * cg_gemm_lower, which emits a call of the file's shared cache-blocked GEMM routine (its
 * micro-kernel chosen by CgOptions.target); the elementwise part of the store is the
 * caller's (CgGemmStore). The convolutions (conv_gemm.c) call the same routine. The
 * packing buffers live in a scratch region at the top of the entry's workspace, so every
 * workspace size codegen publishes is cg_workspace_bytes (workspace.h), not
 * Graph.workspace_bytes.
 * Operands that never change are packed once: a scan body's captured weights before the
 * loop (cg_gemm_prepack, into the workspace above the scratch), data constants (baked
 * weights) at compile time into static tables (cg_gemm_packs_operand).
 */
#ifndef LATHE_CODEGEN_GEMM_H
#define LATHE_CODEGEN_GEMM_H

#include "loops.h"

/* Emits the store of one finished element C[i, j] = value (i, j, idx = "i * N + j" and value
 * are C expressions valid at that point) and anything computed from it. */
typedef struct CgGemmStore {
  bool (*emit)(CgFunc *f, void *ctx, const char **ij, const char *idx, const char *value);
  void *ctx;
  const char *partial; /* the matmul's own M x N buffer, or NULL (fused groups only): the
                        * product then goes to a scratch buffer before the epilogue */
  /* A convolution group ending in a max-pool (passes/fuse.c), else IR_NONE: emit computes
   * and stores the other members, and the convolution's lowering pools the value that
   * pooled(ctx) names after each emit into the pool's output. pool_rest: a member is
   * stored, so the elements no window covers still need their emit. */
  NodeId pool;
  const char *(*pooled)(void *ctx);
  bool pool_rest;
} CgGemmStore;

/* The blocking of one lathe_gemm call (C = A B, A: m x k, B: k x n) and the scratch bytes it
 * needs from its offset in the scratch region. */
typedef struct CgGemmPlan {
  int64_t m, k, n;    /* at the bound, in a module with a run-time batch */
  int64_t kc, mc, nc; /* K block, M block, N panel (planned at the bound) */
  int64_t bytes;
  const char *m_text, *k_text; /* m and k as C when they depend on the run-time batch ("n",
                                  "28 * n"); NULL: the literal (cg_gemm_plan sets NULL) */
} CgGemmPlan;

void cg_gemm_plan(const CgOptions *o, int64_t m, int64_t k, int64_t n, CgGemmPlan *p);
/* writes LATHE_NOVEC, LATHE_GEMM_SHARED and, for a vector target under
 * __GNUC__, the vector type lathe_vf and the micro-kernel attributes LATHE_GEMM_FN into
 * f->globals, once per file (the GEMM and the direct convolutions use them) */
void cg_vector_prelude(CgFunc *f);
/* writes lathe_gemm and the routines it uses into f->globals, once per file */
void cg_gemm_prelude(CgFunc *f);
/* true the first time mark is asked for in f's file (then written there as a comment):
 * file-scope routines are written once, and only when used (no unused static function) */
bool cg_gemm_once(CgFunc *f, const char *mark);
/* appends kernel library text (a cg_kernel_* string of kernels_text.h, embedded from
 * codegen/kernels/ at build time) to f->globals with its LT_* identifiers replaced by the
 * numbers of f's target and threads: the one template mechanism (gemm.c, kernel_text) */
void cg_kernel_emit(CgFunc *f, const char *text);
/* emits `lathe_gemm(...)`: c (row stride ldc) = a b, or += when the C expression acc is true;
 * a[i][p] = a[i * a_rs + p * a_cs]; b names a lathe_gemm_b in scope; the call's scratch starts
 * at byte `at` of the scratch region */
void cg_gemm_call(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                  const char *b, const char *c, int64_t ldc, const char *acc, int64_t at);
/* the same with the scratch offset a C expression (per-thread scratch) */
void cg_gemm_call_at(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                     const char *b, const char *c, int64_t ldc, const char *acc, const char *at);

/* whether operand j of matmul mm of g is a data constant cg_gemm_lower packs into a static
 * table of its own at compile time */
bool cg_gemm_packs_operand(const Graph *g, NodeId mm, int j);
/* defines LATHE_GEMM_ALIGN (64-byte alignment of packed constant tables), once per file */
void cg_gemm_align_macro(CgFunc *f);
/* whether cg_gemm_lower handles matmul node `mm` of g (2-D, f32, M >= 2, array operands) */
bool cg_gemm_applies(const Graph *g, NodeId mm);
bool cg_gemm_lower(CgFunc *f, NodeId mm, const CgGemmStore *store);
/* Before the loop of scan node `scan` of f->g (fb: its body's function, storage assigned):
 * packs each operand of a body GEMM that is a captured input (the same at every step) once,
 * in the layout lathe_gemm reads in place, from workspace byte `at` up (above the kernel
 * scratch: cg_scan_pack_base), and records it in fb->gemm_packed. */
void cg_gemm_prepack(CgFunc *f, NodeId scan, CgFunc *fb, int64_t at);
/* the scratch bytes of matmul node mm of g (0 when cg_gemm_lower does not take it) */
int64_t cg_gemm_scratch(const Graph *g, NodeId mm, const CgOptions *o);
/* the bytes operand j (0: A, 1: B) of body matmul mm of scan node `scan` takes pre-packed
 * (a captured input of a 2-D packed GEMM), else 0 */
int64_t cg_gemm_pack_bytes(const Node *scan, const Graph *body, NodeId mm, int j,
                           const CgOptions *o);
/* floats per vector of o's target; 0 on the generic target (scalar kernels only) */
int cg_gemm_vec(const CgOptions *o);
/* the resolved target of o (never CG_TARGET_NATIVE) */
CgTarget cg_target_resolve(const CgOptions *o);
/* What the generated file says about its target (the banner, <model>_cpu_supported, the
 * descriptor): its name, the instructions its kernels use beyond C99 and how to test the
 * CPU for them, and the compiler flags that build it fastest. */
typedef struct CgTargetInfo {
  const char *name;     /* "x86-64-v3" (resolved: never "native") */
  const char *isa;      /* "AVX2 and FMA"; NULL: portable C99 only */
  const char *features; /* __builtin_cpu_supports names, "avx2,fma"; NULL: nothing to test */
  const char *macro;    /* the compiler's macro when told to use them (__AVX2__), or NULL */
  const char *flags;    /* "-O3 -march=x86-64-v3 -fno-math-errno" */
  int vec;              /* floats per vector (0: scalar kernels only) */
} CgTargetInfo;
void cg_target_info(const CgOptions *o, CgTargetInfo *out);
/* the micro-tile of o's target: floats per vector (0: scalar), rows of A, columns of B */
void cg_gemm_tile(const CgOptions *o, int *vec, int *mr, int *nr);
/* The body of a vector micro-kernel up to its k loop's pointer steps: the mr x nr / vec
 * accumulators c<i>_<v>, then, in `LATHE_UNROLL_K for (ptrdiff_t p = 0; p < kc; p++) {`
 * (left open), the B vectors b<v> (bload: a printf format of the float offset) and per row
 * the A element x<i> (aload: a format of the row) and its multiply-adds. */
void cg_gemm_emit_tile_step(CgBuf *o, int mr, int nr, int vec, const char *bload,
                            const char *aload);

/* ---- the sparse product (sparse.c) ---- */
/* prod (M x N, row-major) = A @ B for a matmul mm with matmul.sparse_b (B a baked data
 * constant [K, N], passes/sparsify.c): B's nonzeros go to static tables by output column,
 * a[i][p] = a[i * a_rs + p * a_cs] */
void cg_sparse_product(CgFunc *f, NodeId mm, const char *a, int64_t a_rs, int64_t a_cs,
                       int64_t m, const char *prod);
/* the rows of A in one panel of IR_SPARSE_PANEL, and the scratch bytes of the panel */
int cg_sparse_panel_rows(const CgOptions *o);
int64_t cg_sparse_scratch(const Graph *g, NodeId mm, const CgOptions *o);

/* ---- the GEMM that packs nothing (gemm_direct.c) ---- */
/* whether an m x k x n product runs faster unpacked (all but large cubes) */
bool cg_gemm_direct_suits(int64_t m, int64_t k, int64_t n);
/* the scratch bytes of one lathe_gemm_direct call: the edge sliver, and B made row-major
 * first when it is not (trans_b) */
int64_t cg_gemm_direct_bytes(const CgOptions *o, int64_t k, int64_t n, bool trans_b);
/* emits lathe_gemm_transpose((lathe_transpose_dims){.k, .n, .rs, .cs}, b, dst),
 * dst[p * n + j] = b[p * rs + j * cs] (16 x 16 blocks transposed in registers when rs == 1),
 * once per file */
void cg_gemm_transpose_emit(CgFunc *f);
/* emits `lathe_gemm_direct(...)` (and the routines, once per file): c (row stride ldc) = a b,
 * a[i][p] = a[i * a_rs + p * a_cs], b[p][j] = b[p * b_rs + j * b_cs] (copied row-major first
 * when b_cs != 1); scratch at byte `at` of the scratch region */
void cg_gemm_direct_call(CgFunc *f, const CgGemmPlan *p, const char *a, int64_t a_rs, int64_t a_cs,
                         const char *b, int64_t b_rs, int64_t b_cs, const char *c, int64_t ldc,
                         int64_t at);
/* p's m and k as C: the run-time expression, or the literal */
const char *cg_gemm_m(CgFunc *f, const CgGemmPlan *p);
const char *cg_gemm_k(CgFunc *f, const CgGemmPlan *p);

#endif
