/* codegen/lower_quant.c — C loop nests for the int8 quantization ops (docs/int8.md):
 * QUANTIZE, DEQUANTIZE, FAKE_QUANT, FAKE_QUANT_MASK (one loop nest over x, scale and zero
 * point NumPy-broadcast) and QDENSE (int32 sums, then lathe_requant of the kernel library,
 * codegen/kernels/quant.c).
 *
 * Semantics match ir/quant.c exactly: the division x / scale in x's dtype (float32 for f32:
 * C evaluates float / float in float), roundf/round (half away from zero), the clamp with a
 * NaN giving qmin (!(r >= qmin)), dequantize's product in double. These ops are FUSE_OPAQUE,
 * so no output shares an input's buffer. A run-time batch is refused by infer (ir/quant.c).
 */
#include "lower_hooks.h"

/* the element expressions of x, scale and zp at the output's loop variables */
static void operands(CgFunc *f, const Node *n, const char **vars, const char **x) {
  for (int k = 0; k < 3; k++)
    x[k] = cg_at(f, n->in[k],
                 cg_broadcast_index(f, &graph_node(f->g, n->in[k])->shape, &n->shape, vars));
}

bool lower_quant(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *vars[IR_MAX_RANK], *x[3];
  DType xt = graph_node(f->g, n->in[0])->dtype;
  const char *out_t = dtype_c_name(n->dtype),
             *lo = cg_literal(f->arena, DT_F64, n->attr.quant.qmin),
             *hi = cg_literal(f->arena, DT_F64, n->attr.quant.qmax);
  cg_nest_open(f, &n->shape, vars);
  operands(f, n, vars, x);
  const char *y = cg_at(f, id, cg_broadcast_index(f, &n->shape, &n->shape, vars));
  if (n->op == OP_DEQUANTIZE) {
    cg_line(f->e, "%s = (%s)((double)%s * (double)((int32_t)%s - %s));", y, out_t, x[1], x[0],
            x[2]);
    cg_nest_close(f, &n->shape, vars);
    return true;
  }
  /* r = round_half_away(x / scale) + zp, in double (exact: an integer of at most 2^128) */
  const char *r = cg_fresh(f->e, "r");
  cg_line(f->e, "const double %s = (double)%s(%s / %s) + (double)%s;", r,
          xt == DT_F32 ? "roundf" : "round", x[0], x[1], x[2]);
  const char *clamped =
      arena_printf(f->arena, "(!(%s >= %s) ? %s : %s > %s ? %s : %s)", r, lo, lo, r, hi, hi, r);
  if (n->op == OP_QUANTIZE)
    cg_line(f->e, "%s = (int8_t)%s;", y, clamped);
  else if (n->op == OP_FAKE_QUANT)
    cg_line(f->e, "%s = (%s)((double)%s * (%s - (double)%s));", y, out_t, x[1], clamped, x[2]);
  else
    cg_line(f->e, "%s = %s >= %s && %s <= %s ? %s : %s;", y, r, lo, r, hi,
            cg_literal(f->arena, n->dtype, 1), cg_literal(f->arena, n->dtype, 0));
  cg_nest_close(f, &n->shape, vars);
  return true;
}

/* element o of a per-channel operand, or the scalar */
static const char *channel(CgFunc *f, NodeId in, const char *o) {
  return cg_at(f, in, graph_node(f->g, in)->shape.rank && o ? o : "0");
}

/* y[r, o] = lathe_requant(sum_k (x[r, k] - x_zp) * w[k, o], bias[o], mult[o], shift[o], ...):
 * the plain i-o-k loops of the portable C99 kernel */
bool lower_qdense(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *ws = &graph_node(f->g, n->in[1])->shape;
  int64_t inner = ws->dim[0], units = ws->dim[1], rows = shape_numel(&n->shape) / units;
  cg_line(f->e, "/* int8 dense: int32 sums of (x - x_zp) * w, x_zp = %d, then bias, requantize */",
          (int)n->attr.quant.x_zp);
  const char *r = cg_loop_open(f, "r", rows), *o = cg_loop_open(f, "o", units);
  const char *acc = cg_fresh(f->e, "acc");
  cg_line(f->e, "int32_t %s = 0;", acc);
  const char *k = cg_loop_open(f, "k", inner);
  const char *rv[2] = {r, k}, *kv[2] = {k, o}, *ov[2] = {r, o};
  int64_t xs[2] = {inner, 1}, wst[2] = {units, 1};
  cg_line(f->e, "%s += ((int32_t)%s - (%d)) * (int32_t)%s;", acc,
          cg_at(f, n->in[0], cg_index_expr(f->arena, 2, rv, xs)), (int)n->attr.quant.x_zp,
          cg_at(f, n->in[1], cg_index_expr(f->arena, 2, kv, wst)));
  cg_loop_close(f, k);
  /* bias, multiplier, shift; out_zp, qmin, qmax */
  cg_line(f->e, "%s = lathe_requant(%s, %s,", cg_at(f, id, cg_index_expr(f->arena, 2, ov, wst)),
          acc, channel(f, n->in[2], o));
  cg_line(f->e, "    %s, %s, %d, %d, %d);", channel(f, n->in[3], o), channel(f, n->in[4], o),
          (int)n->attr.quant.out_zp, (int)n->attr.quant.qmin, (int)n->attr.quant.qmax);
  cg_loop_close(f, o);
  cg_loop_close(f, r);
  return true;
}
