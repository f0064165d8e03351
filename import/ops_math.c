/* import/ops_math.c — the ONNX ops of lathe's issue-22 math builtins: ArgMax/ArgMin
 * (`argmax`, `argmin`, cast to the int64 ONNX returns) and CumSum (`cumsum`). Sin, Cos,
 * ReduceMin, ReduceLogSumExp (ops_basic.c) and Expand (ops_shape.c) map to their builtins
 * where the other ops of their family are.
 */
#include "import/imp.h"

#include <string.h>

/* ArgMax/ArgMin(x, axis = 0, keepdims = 1, select_last_index = 0 or 1) */
static bool map_arg(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  int axis = imp_axis(im, imp_attr_int(n, "axis", 0), x->shape.rank);
  if (axis < 0) return false;
  if (axis == 0 && x->shape.dyn) return imp_fail(im, "the index along the dynamic batch axis");
  bool keep = imp_attr_int(n, "keepdims", 1) != 0;
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  Shape s = {0};
  for (int i = 0; i < x->shape.rank; i++)
    if (i != axis || keep) s.dim[s.rank++] = i == axis ? 1 : x->shape.dim[i];
  s.dyn = axis != 0 ? x->shape.dyn : 0;
  bool last = imp_attr_int(n, "select_last_index", 0) != 0;
  return imp_bind(im, 0, DT_I64, &s, "cast(%s(%s, axis = %d%s%s), i64)",
                  strcmp(n->op_type, "ArgMax") == 0 ? "argmax" : "argmin", r, axis,
                  keep ? ", keepdims = true" : "", last ? ", last = true" : "");
}

/* CumSum(x, axis; exclusive = 0, reverse = 0) with a constant axis */
static bool map_cumsum(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  int64_t ax[2];
  if (!x || imp_const_ints(im, 1, ax, 1) != 1)
    return im->n_problems ? false : imp_fail(im, "axis must be one integer");
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float tensors are supported");
  int axis = imp_axis(im, ax[0], x->shape.rank);
  if (axis < 0) return false;
  const char *r = imp_ref_tensor(im, x);
  if (!r) return false;
  bool excl = imp_attr_int(n, "exclusive", 0) != 0, rev = imp_attr_int(n, "reverse", 0) != 0;
  return imp_bind(im, 0, x->dtype, &x->shape, "cumsum(%s, axis = %d%s%s)", r, axis,
                  excl ? ", exclusive = true" : "", rev ? ", reverse = true" : "");
}

ImpOpFn imp_op_math(const char *op) {
  if (strcmp(op, "ArgMax") == 0 || strcmp(op, "ArgMin") == 0) return map_arg;
  if (strcmp(op, "CumSum") == 0) return map_cumsum;
  return NULL;
}
