/* codegen/kernels/check.c — the kernel library compiled as C (the lathe_kernels_check target):
 * every file of codegen/kernels/ in the order generated code has them, after check.h's
 * stand-ins for what surrounds them there. Warnings are errors; nothing here is embedded.
 */
#include "check.h"

#include "gemm.c"
#include "gemm_direct.c"
#include "conv_gemm.c"
#include "conv_direct.c"
#include "conv_winograd.c"
#include "math.c"
#include "quant.c"
#include "quant_gemm.c"
#include "sparse.c"
