/* ir/quant.h — the fixed-point steps of TFLite's int8 arithmetic that the evaluators of the
 * int8 ops share (ir/quant.c, ir/quant_softmax.c); private to ir/. The generated C has the
 * same steps in codegen/kernels/quant.c. */
#ifndef LATHE_IR_QUANT_H
#define LATHE_IR_QUANT_H

#include <stdint.h>

/* the most inputs per output of qdense / qconv2d: 65536 * 255 * 128 < 2^31, so the int32 sum
 * cannot overflow (ir/quant.c checks it; ir/quant_match.c keeps such layers float) */
enum { IR_QUANT_MAX_INNER = 65536 };

/* the longest row of qsoftmax: 4096 exps of 2^19 (Q12.19) would leave int32 (ir/quant_softmax.c
 * checks it; ir/quant_match.c keeps longer softmaxes float) */
#define IR_QSOFTMAX_MAX_DEPTH 4095

/* gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b * 2 / 2^32), C division */
int32_t ir_quant_srdhm(int32_t a, int32_t b);
/* gemmlowp's RoundingDivideByPOT: x / 2^e rounded half away from zero, e in [0, 62] */
int32_t ir_quant_rdbpot(int32_t x, int e);
/* TFLite's MultiplyByQuantizedMultiplier (double rounding); the left shift saturates */
int32_t ir_quant_mbqm(int32_t x, int32_t mult, int32_t shift);
/* v saturated to int32 */
int32_t ir_quant_sat32(int64_t v);

#endif
