/* passes/vjp_quant.c — VJP rule of FAKE_QUANT, the straight-through estimator of QAT.
 *
 * y = fake_quant(x, s, zp) rounds, so its true derivative is 0 almost everywhere; training
 * through it takes the straight-through estimator instead, as PyTorch's
 * fake_quantize_per_tensor_affine / _per_channel_affine do: dx = gy where round(x / s) + zp
 * lies inside [qmin, qmax], 0 where the clamp bites (fake_quant_mask, same attributes).
 * The scale and zero point get no gradient (ranges are tracked, not learned: docs/int8.md).
 * QUANTIZE and DEQUANTIZE are vjp_zero: an integer tensor carries no gradient, so
 * dequantize(quantize(x)) is not differentiable; QAT writes fake_quant. QDENSE has no rule
 * (integer inference only).
 */
#include "autodiff_internal.h"

bool vjp_fake_quant(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  if (!ad_wants(a, n->in[0])) return true;
  NodeId mask = build_node(&a->b, OP_FAKE_QUANT_MASK, n->in, 3, &n->attr);
  ad_accumulate(a, n->in[0], build_binary(&a->b, OP_MUL, gy, mask));
  return true;
}
