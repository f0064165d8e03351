/* codegen/quant_gemm.h — the int8 GEMM of qdense and qconv2d with baked weights (quant_gemm.c;
 * private to codegen/). Its C lives in codegen/kernels/quant_gemm.c; docs/int8.md, "Kernels".
 */
#ifndef LATHE_CODEGEN_QUANT_GEMM_H
#define LATHE_CODEGEN_QUANT_GEMM_H

#include "loops.h"

/* whether qdense/qconv2d node id of g runs the packed int8 GEMM for o's target: a vector
 * target (x86-64-v3, x86-64-v4, aarch64) and weights that are a data constant (--bake) */
bool cg_qgemm_applies(const Graph *g, NodeId id, const CgOptions *o);
/* whether input k of node id is a constant the packed GEMM reads from its own table (the plain
 * table then need not be written: lower.c) */
bool cg_qgemm_packs_const(const Graph *g, NodeId id, int k, const CgOptions *o);
/* the scratch bytes of node id (qconv2d's im2col rows; 0 for anything else) */
int64_t cg_qgemm_scratch(const Graph *g, NodeId id, const CgOptions *o);
/* emits qdense / qconv2d node id through the packed GEMM (cg_qgemm_applies holds) */
bool cg_qgemm_lower(CgFunc *f, NodeId id);

#endif
