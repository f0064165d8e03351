/* import/ops_vocab.c — ONNX ops of issue 22 that map onto lathe's builtins of the same kind:
 * Einsum (one or two float operands, explicit or implicit output) onto einsum;
 * GatherElements onto gather(x, axis, index); ScatterElements (and the older Scatter) onto
 * scatter_add: reduction "add" directly, "none" as where(count > 0, scattered sum, data)
 * (ONNX leaves repeated indices under "none" undefined; lathe then sums them); TopK onto
 * topk_indices, its values a gather of them (the two TOPK nodes merge in CSE), the indices
 * cast to i64; sorted = 0 is served sorted (any order is allowed then).
 *
 * Invariant: the importer computes the output shape from the equation with the rules of
 * frontend/elab_einsum.c; an equation those rules refuse (a repeated letter in one term, more
 * than two operands) is refused here with the same reason, so every accepted node elaborates.
 * Ellipses, which the builtin takes, are refused too: this shape computation lacks them.
 */
#include "import/imp.h"

#include <ctype.h>
#include <string.h>

/* the letters of the term text[0, len), blanks skipped; false on anything einsum refuses */
static bool einsum_term(Imp *im, const char *text, size_t len, char *out, int *n) {
  *n = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == ' ') continue;
    if (c == '.') return imp_fail(im, "ellipses in the equation are not supported");
    if (!isalpha((unsigned char)c)) return imp_fail(im, "unexpected '%c' in the equation", c);
    if (memchr(out, c, (size_t)*n))
      return imp_fail(im, "a letter repeated within one term (a diagonal) is not supported");
    if (*n == IR_MAX_RANK) return imp_fail(im, "a term has more letters than the maximum rank");
    out[(*n)++] = c;
  }
  return true;
}

/* the output letters: after "->", or those occurring once, alphabetically (NumPy's rule) */
static bool einsum_output(Imp *im, const char *eq, char terms[2][IR_MAX_RANK], const int *len,
                          int n_in, char *out, int *n) {
  const char *arrow = strstr(eq, "->");
  if (arrow) return einsum_term(im, arrow + 2, strlen(arrow + 2), out, n);
  *n = 0;
  for (int c = 'A'; c <= 'z'; c++) {
    int count = 0;
    for (int i = 0; i < n_in; i++)
      count += memchr(terms[i], c, (size_t)len[i]) != NULL;
    if (count == 1 && *n < IR_MAX_RANK) out[(*n)++] = (char)c;
  }
  return true;
}

static bool map_einsum(Imp *im, const Onnx__NodeProto *n) {
  const char *eq = imp_attr_str(im, n, "equation", NULL);
  if (!eq) return imp_fail(im, "the equation attribute is missing");
  if (n->n_input < 1 || n->n_input > 2) return imp_fail(im, "only 1 or 2 operands are supported");
  int n_in = (int)n->n_input, len[2] = {0, 0}, n_out = 0;
  char terms[2][IR_MAX_RANK], out[IR_MAX_RANK];
  const char *p = eq, *end = strstr(eq, "->");
  end = end ? end : eq + strlen(eq);
  ImpVal *x[2] = {NULL, NULL};
  int64_t size[128] = {0}, dyn[128] = {0}; /* dyn: k of a letter that is axis 0 = k * batch */
  for (int i = 0; i < n_in; i++) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if ((i + 1 < n_in) != (comma != NULL))
      return imp_fail(im, "the equation's terms do not match the %d operands", n_in);
    if (!einsum_term(im, p, (size_t)((comma ? comma : end) - p), terms[i], &len[i])) return false;
    p = comma ? comma + 1 : end;
    if (!(x[i] = imp_in(im, i))) return false;
    if (!dtype_is_float(x[i]->dtype)) return imp_fail(im, "only float operands are supported");
    if (x[i]->shape.rank != len[i]) return imp_fail(im, "operand %d's rank differs", i);
    for (int a = 0; a < len[i]; a++) {
      int64_t *s = &size[(unsigned char)terms[i][a]];
      if (*s && *s != x[i]->shape.dim[a]) return imp_fail(im, "a letter's sizes differ");
      *s = x[i]->shape.dim[a];
      if (a == 0 && x[i]->shape.dyn) dyn[(unsigned char)terms[i][a]] = x[i]->shape.dyn;
    }
  }
  if (!einsum_output(im, eq, terms, len, n_in, out, &n_out)) return false;
  Shape s = {.rank = n_out};
  for (int a = 0; a < n_out; a++)
    if (!(s.dim[a] = size[(unsigned char)out[a]]))
      return imp_fail(im, "output letter '%c' is in no operand", out[a]);
  if (n_out) s.dyn = dyn[(unsigned char)out[0]];
  const char *r0 = imp_ref_tensor(im, x[0]), *r1 = n_in > 1 ? imp_ref_tensor(im, x[1]) : "";
  if (!r0 || !r1) return false;
  return imp_bind(im, 0, x[0]->dtype, &s, "einsum(\"%s\", %s%s%s)", eq, r0, n_in > 1 ? ", " : "",
                  r1);
}

static bool map_gather_elements(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *idx = imp_in(im, 1);
  if (!x || !idx) return false;
  int axis = imp_axis(im, imp_attr_int(n, "axis", 0), x->shape.rank);
  if (axis < 0) return false;
  if (idx->shape.rank != x->shape.rank || dtype_is_float(idx->dtype))
    return imp_fail(im, "the indices must be integers of the data's rank");
  const char *rx = imp_ref_tensor(im, x), *ri = imp_ref_tensor(im, idx);
  if (!rx || !ri) return false;
  return imp_bind(im, 0, x->dtype, &idx->shape, "gather(%s, %d, %s)", rx, axis, ri);
}

static bool map_scatter_elements(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0), *idx = imp_in(im, 1), *upd = imp_in(im, 2);
  if (!x || !idx || !upd) return false;
  int axis = imp_axis(im, imp_attr_int(n, "axis", 0), x->shape.rank);
  if (axis < 0) return false;
  const char *red = imp_attr_str(im, n, "reduction", "none");
  bool add = strcmp(red, "add") == 0;
  if (!add && strcmp(red, "none") != 0)
    return imp_fail(im, "reduction '%s' is not supported (none and add are)", red);
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float data is supported");
  if (idx->shape.rank != x->shape.rank || dtype_is_float(idx->dtype) ||
      !shape_equal(&idx->shape, &upd->shape))
    return imp_fail(im, "the indices must be integers of the data's rank, shaped like updates");
  const char *rx = imp_ref_tensor(im, x), *ri = imp_ref_tensor(im, idx);
  const char *ru = imp_ref_tensor(im, upd);
  if (!rx || !ri || !ru) return false;
  if (add)
    return imp_bind(im, 0, x->dtype, &x->shape, "scatter_add(%s, %d, %s, %s)", rx, axis, ri, ru);
  const char *zeros = imp_printf(im, "fill(%s, 0.0)", imp_dims(im, &x->shape));
  const char *hits = imp_printf(im, "scatter_add(%s, %d, %s, fill(%s, 1.0))", zeros, axis, ri,
                                imp_dims(im, &idx->shape));
  return imp_bind(im, 0, x->dtype, &x->shape, "where(%s > 0, scatter_add(%s, %d, %s, %s), %s)",
                  hits, zeros, axis, ri, ru, rx);
}

static bool map_topk(Imp *im, const Onnx__NodeProto *n) {
  ImpVal *x = imp_in(im, 0);
  if (!x) return false;
  int64_t k = imp_attr_int(n, "k", -1);
  if (n->n_input > 1 && imp_const_ints(im, 1, &k, 1) != 1)
    return imp_fail(im, "K must be a constant of one element");
  int axis = imp_axis(im, imp_attr_int(n, "axis", -1), x->shape.rank);
  if (axis < 0) return false;
  if (k < 1 || k > x->shape.dim[axis])
    return imp_fail(im, "K = %lld is not in [1, %lld]", (long long)k,
                    (long long)x->shape.dim[axis]);
  if (!dtype_is_float(x->dtype)) return imp_fail(im, "only float data is supported");
  const char *rx = imp_ref_tensor(im, x);
  if (!rx) return false;
  const char *idx =
      imp_printf(im, "topk_indices(%s, %lld, axis = %d, largest = %s)", rx, (long long)k, axis,
                 imp_attr_int(n, "largest", 1) ? "true" : "false");
  Shape s = x->shape;
  s.dim[axis] = k;
  if (!imp_bind(im, 0, x->dtype, &s, "gather(%s, %d, %s)", rx, axis, idx)) return false;
  if (n->n_output < 2 || !n->output[1] || !*n->output[1]) return true;
  return imp_bind(im, 1, DT_I64, &s, "cast(%s, i64)", idx) != NULL;
}

typedef struct OpEntry {
  const char *name;
  ImpOpFn fn;
} OpEntry;

static const OpEntry ops[] = {
    {"Einsum", map_einsum},
    {"GatherElements", map_gather_elements},
    {"ScatterElements", map_scatter_elements},
    {"Scatter", map_scatter_elements},
    {"TopK", map_topk},
};

ImpOpFn imp_op_vocab(const char *op) {
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (strcmp(ops[i].name, op) == 0) return ops[i].fn;
  return NULL;
}
