/* import/values.c — the importer's value table: ONNX value names → lathe identifiers, dtypes,
 * static shapes and import-time constants; writing the bindings of the model body.
 *
 * Invariants: identifiers are unique in the generated model and never a lathe keyword or
 * builtin name (node outputs get a t_ prefix, params p_, constants c_; inputs and outputs
 * keep their sanitized names unless reserved); a constant used
 * as a tensor operand is materialized once (a literal, a `fill`, or a param whose value goes
 * to the weights set under the param's name).
 */
#include "import/imp.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *imp_printf(Imp *im, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = arena_vprintf(&im->arena, fmt, ap);
  va_end(ap);
  return s;
}

bool imp_fail(Imp *im, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Onnx__NodeProto *n = im->node;
  if (n)
    diag_error(im->d, (SrcLoc){0}, "%s: node '%s' (%s): %s", im->path,
               n->name && *n->name ? n->name : "<unnamed>", n->op_type ? n->op_type : "?", msg);
  else
    diag_error(im->d, (SrcLoc){0}, "%s: %s", im->path, msg);
  im->n_problems++;
  return false;
}

ImpVal *imp_find(Imp *im, const char *onnx) {
  for (int i = im->n_vals - 1; i >= 0; i--)
    if (strcmp(im->vals[i]->onnx, onnx) == 0) return im->vals[i];
  return NULL;
}

ImpVal *imp_new_val(Imp *im, const char *onnx, DType dt, const Shape *s) {
  if (im->n_vals == im->cap_vals) {
    int cap = im->cap_vals ? 2 * im->cap_vals : 64;
    ImpVal **vs = realloc(im->vals, (size_t)cap * sizeof *vs);
    if (!vs) return NULL;
    im->vals = vs;
    im->cap_vals = cap;
  }
  ImpVal *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  im->vals[im->n_vals++] = v;
  v->onnx = arena_strdup(&im->arena, onnx);
  v->dtype = dt;
  v->shape = *s;
  return v;
}

ImpVal *imp_in_opt(Imp *im, int k) {
  const Onnx__NodeProto *n = im->node;
  if (k >= (int)n->n_input || !n->input[k] || !*n->input[k]) return NULL;
  return imp_find(im, n->input[k]);
}

ImpVal *imp_in(Imp *im, int k) {
  ImpVal *v = imp_in_opt(im, k);
  if (!v) imp_fail(im, "input %d is missing or undefined", k);
  return v;
}

static bool ident_used(Imp *im, const char *s) {
  for (int i = 0; i < im->n_vals; i++)
    if (im->vals[i]->ident && strcmp(im->vals[i]->ident, s) == 0) return true;
  return false;
}

const char *imp_ident(Imp *im, const char *prefix, const char *base) {
  size_t n = strlen(base);
  if (n > 60) base += n - 60; /* keep the informative tail */
  char buf[96];
  int k = snprintf(buf, sizeof buf, "%s", prefix);
  for (const char *p = base; *p && k < 80; p++)
    buf[k++] = isalnum((unsigned char)*p) ? *p : '_';
  buf[k] = 0;
  /* collapse runs of '_' and drop a trailing one, for readability */
  char clean[100];
  int j = 0;
  for (int i = 0; buf[i]; i++)
    if (!(buf[i] == '_' && j > 0 && clean[j - 1] == '_')) clean[j++] = buf[i];
  while (j > 2 && clean[j - 1] == '_')
    j--;
  clean[j] = 0;
  static const char *const reserved[] = {
      "const", "import", "fn", "param", "model", "output", "return", "train", "as", "true",
      "false", "scan", "in", "with", "yield", "reversed", "int", "f32", "f64", "i32", "i64",
      "u8", "loss", "label", "target", "nn", NULL};
  bool bad = !*clean || isdigit((unsigned char)clean[0]);
  for (int i = 0; reserved[i] && !bad; i++)
    bad = strcmp(clean, reserved[i]) == 0;
  if (bad) memmove(clean + 2, clean, strlen(clean) + 1), clean[0] = 'v', clean[1] = '_';
  const char *s = arena_strdup(&im->arena, clean);
  for (int i = 2; ident_used(im, s); i++)
    s = imp_printf(im, "%s_%d", clean, i);
  return s;
}

const char *imp_num(Imp *im, double v) {
  if (isinf(v)) v = v > 0 ? 3.4e38 : -3.4e38;
  if (v != v) v = 0;
  const char *s = imp_printf(im, "%.9g", v);
  if (!strpbrk(s, ".en")) s = imp_printf(im, "%s.0", s);
  return v < 0 ? imp_printf(im, "(%s)", s) : s;
}

const char *imp_dims(Imp *im, const Shape *s) {
  const char *text = imp_ints(im, s->dim, s->rank);
  if (!s->dyn || !s->rank || !im->dyn_ident) return text;
  const char *rest = strchr(text, ','); /* "[64, 3]" -> "[batch, 3]" */
  const char *lead =
      s->dyn == 1 ? im->dyn_ident : imp_printf(im, "%lld * %s", (long long)s->dyn, im->dyn_ident);
  return imp_printf(im, "[%s%s", lead, rest ? rest : "]");
}

bool imp_reshape_dyn(Imp *im, const Shape *in, Shape *out) {
  out->dyn = 0;
  if (!in->dyn || !im->dyn_max) return true;
  if (out->rank && out->dim[0] % im->dyn_max == 0) {
    out->dyn = out->dim[0] / im->dyn_max;
    return true;
  }
  char a[200], b[200];
  return imp_fail(im,
                  "cannot reshape %s (axis 0 is the dynamic batch '%s') to %s: axis 0 of the "
                  "result must stay a multiple of the batch (fix the batch with -D %s=N)",
                  shape_str(in, a, sizeof a), im->dyn_ident, shape_str(out, b, sizeof b),
                  im->dyn_param && *im->dyn_param ? im->dyn_param : im->dyn_ident);
}

const char *imp_ints(Imp *im, const int64_t *v, int n) {
  char buf[512];
  int k = snprintf(buf, sizeof buf, "[");
  for (int i = 0; i < n && k < 480; i++)
    k += snprintf(buf + k, sizeof buf - (size_t)k, "%s%lld", i ? ", " : "", (long long)v[i]);
  snprintf(buf + k, sizeof buf - (size_t)k, "]");
  return arena_strdup(&im->arena, buf);
}

static bool all_equal(const Tensor *t) {
  int64_t n = shape_numel(&t->shape);
  for (int64_t i = 1; i < n; i++)
    if (tensor_get(t, i) != tensor_get(t, 0)) return false;
  return true;
}

/* a constant as a param of the helper fn of its rank (weights keyed "<ident>.w") */
static const char *materialize_param(Imp *im, ImpVal *v) {
  /* "\x03": an integer constant's values; "\x06": a constant derived by ops_quant.c */
  bool derived = v->onnx[0] == 6;
  const char *name = v->onnx + (v->onnx[0] == 3 || derived);
  const char *id = imp_ident(im, "p_", name);
  int r = v->shape.rank;
  Tensor *t = rt_set_add(im->weights, imp_printf(im, "%s.w", id), v->dtype, &v->shape);
  if (!t) return NULL;
  memcpy(t->data, v->konst.data, (size_t)shape_numel(&v->shape) * dtype_size(v->dtype));
  const char *args = imp_dims(im, &v->shape);
  args = imp_printf(im, "%.*s", (int)strlen(args) - 2, args + 1);
  const char *fn = v->dtype == DT_F64 ? "param64_" : "param_";
  fprintf(im->out, "  %s = %s%d(%s)  # %s %s\n", id, fn, r, args,
          v->initializer && !derived ? "initializer" : "constant", name);
  if (v->dtype == DT_F64)
    im->param_f64 |= 1u << r;
  else
    im->param_ranks |= 1u << r;
  v->ident = id;
  return id;
}

/* an integer constant: an f32 param holding the (exactly representable) values, cast */
static const char *materialize_int(Imp *im, ImpVal *v) {
  int64_t n = shape_numel(&v->shape);
  ImpVal *f = imp_new_val(im, imp_printf(im, "\x03%s", v->onnx), DT_F32, &v->shape);
  if (!f || !tensor_alloc(&f->konst, DT_F32, &v->shape)) return NULL;
  f->has_const = true;
  for (int64_t i = 0; i < n; i++) {
    int64_t k = imp_get_i64(&v->konst, i);
    if (k > (1 << 24) || k < -(1 << 24)) {
      imp_fail(im, "integer constant '%s' is used as a tensor operand and holds %lld, beyond "
                   "what lathe can carry exactly", v->onnx, (long long)k);
      return NULL;
    }
    tensor_set(&f->konst, i, (double)k);
  }
  const char *p = materialize_param(im, f);
  if (!p) return NULL;
  const char *id = imp_ident(im, "c_", v->onnx);
  fprintf(im->out, "  %s = cast(%s, %s)  # integer constant %s\n", id, p,
          dtype_name(v->dtype), v->onnx);
  v->ident = id;
  return id;
}

const char *imp_ref_tensor(Imp *im, ImpVal *v) {
  if (v->ident) return v->ident;
  if (!v->has_const) return NULL;
  if (shape_numel(&v->shape) == 0) {
    imp_fail(im, "empty tensor '%s' is used as an operand (lathe has no empty tensors)", v->onnx);
    return NULL;
  }
  if (v->konst.dtype != DT_F32 && v->konst.dtype != DT_F64) return materialize_int(im, v);
  if (!v->initializer && all_equal(&v->konst)) {
    const char *id = imp_ident(im, "c_", v->onnx);
    const char *val = shape_numel(&v->shape) ? imp_num(im, tensor_get(&v->konst, 0)) : "0.0";
    fprintf(im->out, "  %s = fill(%s, %s)  # constant %s\n", id, imp_dims(im, &v->shape), val,
            v->onnx);
    v->ident = id;
    return id;
  }
  return materialize_param(im, v);
}

const char *imp_ref(Imp *im, ImpVal *v) {
  if (!v->ident && v->has_const && shape_numel(&v->shape) == 1 && v->shape.rank == 0 &&
      dtype_is_float(v->dtype))
    return imp_num(im, tensor_get(&v->konst, 0));
  return imp_ref_tensor(im, v);
}

static const char *node_comment(Imp *im) {
  const Onnx__NodeProto *n = im->node;
  return imp_printf(im, "%s %s", n->op_type ? n->op_type : "?",
                    n->name && *n->name ? n->name : "");
}

bool imp_shape_ok(Imp *im, const Shape *s) {
  int64_t numel = 1;
  for (int i = 0; i < s->rank; i++) {
    if (s->dim[i] < 1 || s->dim[i] > IMP_MAX_ELEMS || numel > IMP_MAX_ELEMS / s->dim[i])
      return imp_fail(im, "result dimension %lld is empty or too large", (long long)s->dim[i]);
    numel *= s->dim[i];
  }
  return s->rank >= 0 && s->rank <= IR_MAX_RANK;
}

ImpVal *imp_bind(Imp *im, int k, DType dt, const Shape *s, const char *fmt, ...) {
  const Onnx__NodeProto *n = im->node;
  if (k >= (int)n->n_output || !n->output[k] || !*n->output[k]) return NULL;
  if (!imp_shape_ok(im, s)) return NULL;
  va_list ap;
  va_start(ap, fmt);
  char *expr = arena_vprintf(&im->arena, fmt, ap);
  va_end(ap);
  ImpVal *v = imp_new_val(im, n->output[k], dt, s);
  if (!v) return NULL;
  v->ident = imp_ident(im, "t_", n->output[k]);
  fprintf(im->out, "  %s = %s  # %s\n", v->ident, expr, node_comment(im));
  return v;
}

const char *imp_let(Imp *im, const char *base, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *expr = arena_vprintf(&im->arena, fmt, ap);
  va_end(ap);
  ImpVal *v = imp_new_val(im, "\x02", DT_F32, &(Shape){0});
  if (!v) return NULL;
  v->ident = imp_ident(im, "t_", base);
  fprintf(im->out, "  %s = %s  # %s\n", v->ident, expr, node_comment(im));
  return v->ident;
}

const char *imp_pad_expr(Imp *im, const char *x, const Shape *s, const char *pads, double v) {
  if (v == 0) return imp_printf(im, "pad(%s, %s)", x, pads);
  return imp_printf(im, "(pad(%s, %s) + pad(fill(%s, 0.0), %s, value = %s))", x, pads,
                    imp_dims(im, s), pads, imp_num(im, v));
}

ImpVal *imp_bind_const(Imp *im, int k, Tensor *t) {
  const Onnx__NodeProto *n = im->node;
  if (k >= (int)n->n_output || !n->output[k] || !*n->output[k]) {
    tensor_free(t);
    return NULL;
  }
  ImpVal *v = imp_new_val(im, n->output[k], t->dtype, &t->shape);
  if (!v) {
    tensor_free(t);
    return NULL;
  }
  v->has_const = true;
  v->konst = *t;
  return v;
}

int imp_axis(Imp *im, int64_t axis, int rank) {
  if (axis < -rank || axis >= (rank ? rank : 1)) {
    imp_fail(im, "axis %lld is out of range for rank %d", (long long)axis, rank);
    return -1;
  }
  return (int)(axis < 0 ? axis + rank : axis);
}

bool imp_broadcast(Imp *im, const Shape *a, const Shape *b, Shape *out) {
  memset(out, 0, sizeof *out);
  out->rank = a->rank > b->rank ? a->rank : b->rank;
  for (int i = 0; i < out->rank; i++) {
    int ia = i - (out->rank - a->rank), ib = i - (out->rank - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char x[200], y[200];
      return imp_fail(im, "shapes %s and %s do not broadcast", shape_str(a, x, sizeof x),
                      shape_str(b, y, sizeof y));
    }
    out->dim[i] = da == 1 ? db : da;
  }
  /* the dynamic batch must stay axis 0: the operand that has it has the result's rank, and
   * the other one's axis 0, when aligned with it, is 1 or the same k * batch */
  const Shape *dyn = a->dyn ? a : b->dyn ? b : NULL, *other = a->dyn ? b : a;
  bool other_ok = !dyn || other->dyn == dyn->dyn || other->rank < out->rank || other->dim[0] == 1;
  if (dyn && (dyn->rank != out->rank || !other_ok)) {
    char x[200], y[200];
    const char *fix = im->dyn_param && *im->dyn_param ? im->dyn_param : im->dyn_ident;
    return imp_fail(im,
                    "shapes %s and %s do not broadcast with the dynamic batch '%s': it must "
                    "stay axis 0 and meet 1 or itself there (fix it with -D %s=N)",
                    shape_str(a, x, sizeof x), shape_str(b, y, sizeof y), im->dyn_ident, fix);
  }
  out->dyn = dyn ? dyn->dyn : 0;
  return true;
}

int imp_const_ints(Imp *im, int k, int64_t *v, int max) {
  ImpVal *x = imp_in(im, k);
  if (!x) return -1;
  if (!x->has_const) {
    imp_fail(im, "input %d ('%s') must be known at import time (a constant or initializer)", k,
             x->onnx);
    return -1;
  }
  int64_t n = shape_numel(&x->shape);
  if (n > max) {
    imp_fail(im, "input %d has %lld values, more than %d", k, (long long)n, max);
    return -1;
  }
  for (int64_t i = 0; i < n; i++)
    v[i] = imp_get_i64(&x->konst, i);
  return (int)n;
}
