/* codegen/gemm.h — the packed, register-blocked f32 GEMM (private to codegen/).
 *
 * lower.c hands a 2-D f32 matmul (alone, or with its fused elementwise epilogue) to
 * cg_gemm_lower, which emits a cache-blocked loop nest around a micro-kernel chosen by
 * CgOptions.target; the elementwise part of the store is the caller's (CgGemmStore). The
 * packing buffers live in a scratch region at the top of the entry's workspace, so every
 * workspace size codegen publishes is cg_workspace_bytes, not Graph.workspace_bytes.
 */
#ifndef LATHE_CODEGEN_GEMM_H
#define LATHE_CODEGEN_GEMM_H

#include "lower.h"

/* Emits the store of one finished element C[i, j] = value (i, j, idx = "i * N + j" and value
 * are C expressions valid at that point) and anything computed from it. */
typedef struct CgGemmStore {
  bool (*emit)(CgFunc *f, void *ctx, const char **ij, const char *idx, const char *value);
  void *ctx;
  const char *partial; /* an M x N buffer that may hold partial sums (the matmul's own), or
                        * NULL (fused groups only): a scratch buffer is used when K needs
                        * several blocks */
} CgGemmStore;

/* whether cg_gemm_lower handles matmul node `mm` of g (2-D, f32, M >= 2, array operands) */
bool cg_gemm_applies(const Graph *g, NodeId mm);
bool cg_gemm_lower(CgFunc *f, NodeId mm, const CgGemmStore *store);
/* the workspace an entry needs: the memory plan plus the GEMM packing scratch */
int64_t cg_workspace_bytes(const Graph *g, const CgOptions *o);
/* the resolved target of o (never CG_TARGET_NATIVE) */
CgTarget cg_target_resolve(const CgOptions *o);

#endif
