/* codegen/kernels/check.h — what the kernel library needs to compile as C on its own (the
 * lathe_kernels_check target: check.c, every file of the library in order, as C99 under -Wall
 * -Wextra -Wpedantic -Werror). In a generated file the same names come from
 * the code around the kernels: the includes and the vector prelude of codegen/gemm.c, the
 * micro-kernels generated per target and shape, and the LT_* numbers of the target, replaced
 * when the text is copied (cg_kernel_emit). Here they take the x86-64-v3 target's values and
 * the vector extensions are on, so both the vector and the scalar paths are checked. Never
 * embedded, never in generated code.
 */
#ifndef LATHE_CODEGEN_KERNELS_CHECK_H
#define LATHE_CODEGEN_KERNELS_CHECK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* the target's numbers (x86-64-v3: a 6 x 16 micro-tile of 8-float vectors) */
#define LT_MR 6
#define LT_NR 16
#define LT_TILE 96
#define LT_V 8
#define LT_THREADS 1 /* --threads N: N (lathe_gemm_direct's shares of the tiles) */
/* the lines of lathe_gemm that --threads changes (one thread: a tile in the scratch) */
#define LT_PAR
#define LT_TILEDECL float *const tile = ws;

/* the vector prelude (codegen/gemm.c, cg_vector_prelude); -DLATHE_CHECK_SCALAR checks the
 * scalar C99 twins instead (the lathe_kernels_check_scalar target) */
#ifndef LATHE_CHECK_SCALAR
#define LATHE_VECTOR 1
typedef float lathe_vf __attribute__((vector_size(32), may_alias));
typedef float lathe_vfu __attribute__((vector_size(32), aligned(4), may_alias));
#endif
#define LATHE_GEMM_FN static __attribute__((noinline))
#define LATHE_OMP_FOR

/* generated per target and shape (codegen/gemm.c, gemm_direct.c, conv_direct.c) */
void lathe_gemm_kernel(ptrdiff_t kc, const float *restrict a, const float *restrict b,
                       float *restrict c, ptrdiff_t ldc, int add);
void lathe_gemm_direct_kernel(ptrdiff_t k, const float *a, ptrdiff_t a_rs, ptrdiff_t a_cs,
                              ptrdiff_t mr, const float *b, ptrdiff_t ldb, float *c,
                              ptrdiff_t ldc, int acc);
typedef void (*lathe_dconv_kernel)(const float *restrict x, const ptrdiff_t *restrict koff,
                                   ptrdiff_t kn, const float *restrict w, ptrdiff_t wbs, int nb,
                                   float *restrict out, ptrdiff_t obs);

#endif
