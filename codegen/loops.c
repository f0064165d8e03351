/* codegen/loops.c — C text helpers, loop nests, index and element expressions shared by every
 * lowering and kernel emitter (declared in loops.h).
 *
 * Loops of extent 1 are not emitted (cg_loop_open returns NULL for them) and index
 * expressions skip their NULL variables; float math uses the float functions of <math.h> for
 * f32 (expf) and the double ones for f64; integer tensors compute through double.
 */
#include "loops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- text helpers ------------------------------------------------------------------------ */

const char *cg_literal(Arena *a, DType t, double v) {
  if (t == DT_F32 || t == DT_F64) {
    const char *inf = t == DT_F32 ? "HUGE_VALF" : "HUGE_VAL";
    if (isnan(v)) return "NAN";
    if (isinf(v)) return v > 0 ? inf : arena_printf(a, "(-%s)", inf);
    char num[64];
    snprintf(num, sizeof num, t == DT_F32 ? "%.9g" : "%.17g", t == DT_F32 ? (float)v : v);
    bool has_point = strpbrk(num, ".e") != NULL;
    const char *suffix = t == DT_F32 ? "f" : "";
    const char *fmt = v < 0 ? "(%s%s%s)" : "%s%s%s";
    return arena_printf(a, fmt, num, has_point ? "" : ".0", suffix);
  }
  long long n = (long long)v;
  return arena_printf(a, n < 0 ? "(%lld)" : "%lld", n);
}

const char *cg_dims(Arena *a, const Shape *s) {
  if (s->rank == 0) return "1";
  char *text = arena_printf(a, "%lld", (long long)s->dim[0]);
  for (int i = 1; i < s->rank; i++)
    text = arena_printf(a, "%s * %lld", text, (long long)s->dim[i]);
  return text;
}

const char *cg_comment_safe(Arena *a, const char *s) {
  char *out = arena_strdup(a, s ? s : "");
  for (char *p = out; *p; p++) {
    if (p[0] == '*' && p[1] == '/') p[1] = '|';
    if (p[0] == '/' && p[1] == '*') p[1] = '|';
    if (*p == '\n' || *p == '\r') *p = ' ';
  }
  return out;
}

void cg_designated_rows(CgFunc *f, const char *prefix, const char *const *names, const int64_t *v,
                        size_t count, const char *close) {
  const char *row = NULL;
  for (size_t i = 0; i < count; i++) {
    const char *item = arena_printf(f->arena, "[%s%s] = %lld", prefix, names[i], (long long)v[i]);
    row = row ? arena_printf(f->arena, "%s, %s", row, item) : item;
    if (i % 4 == 3 || i + 1 == count) {
      cg_line(f->e, "    %s%s", row, i + 1 == count ? close : ",");
      row = NULL;
    }
  }
}

const char *cg_string_safe(Arena *a, const char *s) {
  if (!s) s = "";
  char *out = arena_alloc(a, strlen(s) * 4 + 1);
  char *w = out;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      *w++ = '\\';
      *w++ = (char)*p;
    } else if (*p < 0x20 || *p >= 0x7f) {
      w += sprintf(w, "\\%03o", *p);
    } else {
      *w++ = (char)*p;
    }
  }
  *w = '\0';
  return out;
}

void cg_strides_of(const Shape *s, int64_t *st) {
  int64_t acc = 1;
  for (int d = s->rank - 1; d >= 0; d--) {
    st[d] = acc;
    acc *= s->dim[d];
  }
}

/* sum of var[i] * stride[i], skipping NULL vars (extent-1 loops) and zero strides */
const char *cg_index_expr(Arena *a, int n, const char *const *vars, const int64_t *stride) {
  const char *text = NULL;
  for (int i = 0; i < n; i++) {
    if (!vars[i] || stride[i] == 0) continue;
    const char *term =
        stride[i] == 1 ? vars[i] : arena_printf(a, "%s * %lld", vars[i], (long long)stride[i]);
    text = text ? arena_printf(a, "%s + %s", text, term) : term;
  }
  return text ? text : "0";
}

/* element `index` of node id: `buf[index]`, or the literal */
const char *cg_at(CgFunc *f, NodeId id, const char *index) {
  const CgValue *v = &f->val[id];
  if (v->literal) return v->expr;
  return arena_printf(f->arena, "%s[%s]", v->expr, index);
}

/* Opens `for (int64_t VAR = 0; VAR < extent; VAR++) {` unless extent is 1; returns the loop
 * variable (a fresh name from `base`) or NULL when no loop was opened. */
const char *cg_loop_open(CgFunc *f, const char *base, int64_t extent) {
  if (extent == 1) return NULL;
  cg_scope_push(f->e); /* the variable, and names declared in the body, end with the loop */
  const char *v = cg_fresh(f->e, base);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", v, v, (long long)extent, v);
  return v;
}

void cg_loop_close(CgFunc *f, const char *var) {
  if (!var) return;
  cg_close(f->e);
  cg_scope_pop(f->e);
}

/* one loop per dim of s (vars[d] NULL for extent-1 dims); axis 0 of a dynamic s runs to its
 * run-time extent */
void cg_nest_open(CgFunc *f, const Shape *s, const char **vars) {
  for (int d = 0; d < s->rank; d++) {
    char base[16];
    snprintf(base, sizeof base, "i%d", d);
    vars[d] = d == 0 ? cg_loop_open_count(f, base, s, s->dim[0]) : cg_loop_open(f, base, s->dim[d]);
  }
}

/* ---- the run-time batch ------------------------------------------------------------------ */

bool cg_is_dyn(const CgFunc *f, const Shape *s) {
  return s->dyn > 0 && s->rank > 0 && f->m && f->m->dyn_max > 0;
}

const char *cg_count(CgFunc *f, const Shape *s, int64_t count) {
  if (!cg_is_dyn(f, s)) return arena_printf(f->arena, "%lld", (long long)count);
  int64_t per = count / f->m->dyn_max;
  return per == 1 ? "n" : arena_printf(f->arena, "%lld * n", (long long)per);
}

const char *cg_loop_open_count(CgFunc *f, const char *base, const Shape *s, int64_t count) {
  if (!cg_is_dyn(f, s)) return cg_loop_open(f, base, count);
  const char *extent = cg_count(f, s, count);
  cg_scope_push(f->e);
  const char *v = cg_fresh(f->e, base);
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", v, v, extent, v);
  return v;
}

const char *cg_ws_offset(CgFunc *f, int64_t offset_n, int64_t offset) {
  if (offset_n == 0) return arena_printf(f->arena, "%lld", (long long)offset);
  const char *per = arena_printf(f->arena, "%lld * n", (long long)offset_n);
  return offset ? arena_printf(f->arena, "%s + %lld", per, (long long)offset) : per;
}

const char *cg_scratch_offset(CgFunc *f, int64_t at) {
  return cg_ws_offset(f, f->g->workspace_bytes_n, cg_scratch_base(f->g) + at);
}

void cg_nest_close(CgFunc *f, const Shape *s, const char **vars) {
  for (int d = s->rank - 1; d >= 0; d--)
    cg_loop_close(f, vars[d]);
}

void cg_omp_for(CgFunc *f, int64_t flops) {
  /* the work threshold also guarantees a loop follows (an extent-1 loop is not emitted) */
  if (f->opt->threads > 1 && flops >= CG_OMP_MIN_FLOPS) cg_line(f->e, "LATHE_OMP_FOR");
}

bool cg_unsupported(CgFunc *f, NodeId id, const char *what) {
  const Node *n = graph_node(f->g, id);
  diag_error(f->diag, n->loc, "cannot generate C for %s %%%u (%s): %s", ir_ops[n->op].name, id,
             dtype_name(n->dtype), what);
  return false;
}

bool cg_dyn_unsupported(CgFunc *f, NodeId id, const char *what) {
  const Node *n = graph_node(f->g, id);
  diag_error(f->diag, n->loc,
             "cannot generate C for %s %%%u: %s does not support a dynamic batch "
             "yet (compile with a fixed batch, -D %s=<n>)",
             ir_ops[n->op].name, id, what, f->m->dyn_name ? f->m->dyn_name : "N");
  return false;
}

/* ---- elementwise ----------------------------------------------------------------------- */

/* f32 -> "expf", f64 -> "exp"; integers go through double. f32 exp and tanh use the
 * vectorizable lathe_expf / lathe_tanhf of the generated prelude (c_backend.c), not libm. */
const char *cg_math_call(CgFunc *f, DType t, const char *fn, const char *x) {
  if (t == DT_F32 && (strcmp(fn, "exp") == 0 || strcmp(fn, "tanh") == 0))
    return arena_printf(f->arena, "lathe_%sf(%s)", fn, x);
  if (t == DT_F32) return arena_printf(f->arena, "%sf(%s)", fn, x);
  if (t == DT_F64) return arena_printf(f->arena, "%s(%s)", fn, x);
  return arena_printf(f->arena, "(%s)%s((double)%s)", dtype_c_name(t), fn, x);
}

static const char *math_call2(CgFunc *f, DType t, const char *fn, const char *x, const char *y) {
  if (t == DT_F32) return arena_printf(f->arena, "%sf(%s, %s)", fn, x, y);
  if (t == DT_F64) return arena_printf(f->arena, "%s(%s, %s)", fn, x, y);
  return arena_printf(f->arena, "(%s)%s((double)%s, (double)%s)", dtype_c_name(t), fn, x, y);
}

/* " || x != x" for float types (a NaN test), "" for integers */
const char *cg_is_nan(CgFunc *f, DType t, const char *x) {
  return dtype_is_float(t) ? arena_printf(f->arena, " || %s != %s", x, x) : "";
}

static const char *compare(CgFunc *f, DType t, const char *x, const char *cmp, const char *y) {
  return arena_printf(f->arena, "(%s %s %s ? %s : %s)", x, cmp, y, cg_literal(f->arena, t, 1),
                      cg_literal(f->arena, t, 0));
}

/* Float to integer conversions truncate, saturate and map NaN to 0, like the evaluator (a bare
 * C cast of NaN or an out-of-range value is undefined); everything else is a C cast. */
static const char *cast_expr(CgFunc *f, DType from, DType to, const char *x) {
  const char *lo, *hi;
  switch (to) {
  case DT_I32:
    lo = "-2147483648.0", hi = "2147483647.0";
    break;
  case DT_I64:
    lo = "-9223372036854775808.0", hi = "9223372036854774784.0";
    break;
  case DT_U8:
    lo = "0.0", hi = "255.0";
    break;
  case DT_I8:
    lo = "-128.0", hi = "127.0";
    break;
  default:
    return arena_printf(f->arena, "(%s)%s", dtype_c_name(to), x);
  }
  if (!dtype_is_float(from)) return arena_printf(f->arena, "(%s)%s", dtype_c_name(to), x);
  const char *t = dtype_c_name(to);
  return arena_printf(f->arena, "(%s != %s ? 0 : %s <= %s ? (%s)%s : %s >= %s ? (%s)%s : (%s)%s)",
                      x, x, x, lo, t, lo, x, hi, t, hi, t, x);
}

/* Integer + - * and negation wrap (two's complement, like NumPy, PyTorch and the evaluator):
 * computed in the unsigned type of the element's width, where C defines the wrap (signed
 * overflow is undefined), converted back (modulo, as gcc and clang define it). A narrower
 * type's result is converted at once, so a fused chain wraps at every node as the evaluator
 * does. */
const char *cg_int_wrap(CgFunc *f, DType t, const char *x, const char *op, const char *y) {
  const char *u = t == DT_I64 ? "uint64_t" : "uint32_t";
  if (t == DT_I64 || t == DT_I32)
    return arena_printf(f->arena, "(%s)((%s)%s %s (%s)%s)", dtype_c_name(t), u, x, op, u, y);
  if (t == DT_U8) return arena_printf(f->arena, "(uint8_t)(%s %s %s)", x, op, y);
  return arena_printf(f->arena, "(int8_t)(uint8_t)(%s %s %s)", x, op, y);
}

/* Integer division truncates toward zero; x / 0 is 0 and MIN / -1 wraps to MIN (the
 * evaluator's rule: C leaves both undefined) */
static const char *int_div(CgFunc *f, DType t, const char *x, const char *y) {
  if (t == DT_U8) return arena_printf(f->arena, "(%s == 0 ? 0 : (uint8_t)(%s / %s))", y, x, y);
  return arena_printf(f->arena, "(%s == 0 ? 0 : %s == -1 ? %s : (%s)(%s / %s))", y, y,
                      cg_int_wrap(f, t, "0", "-", x), dtype_c_name(t), x, y);
}

/* The expression for one element of node n (dtype t) from operand elements x, y. This is a
 * long switch over the elementwise ops, one line each. */
const char *cg_ew_expr(CgFunc *f, const Node *n, const char *x, const char *y) {
  Arena *a = f->arena;
  DType t = n->dtype;
  const char *zero = cg_literal(a, t, 0), *one = cg_literal(a, t, 1);
  bool fl = dtype_is_float(t);
  switch (n->op) {
  case OP_ADD:
    return fl ? arena_printf(a, "%s + %s", x, y) : cg_int_wrap(f, t, x, "+", y);
  case OP_SUB:
    return fl ? arena_printf(a, "%s - %s", x, y) : cg_int_wrap(f, t, x, "-", y);
  case OP_MUL:
    return fl ? arena_printf(a, "%s * %s", x, y) : cg_int_wrap(f, t, x, "*", y);
  case OP_DIV:
    return fl ? arena_printf(a, "%s / %s", x, y) : int_div(f, t, x, y);
  /* NaN propagates (like torch.maximum): a NaN x is kept by `x != x`, a NaN y by the else */
  case OP_MAXIMUM:
    return arena_printf(a, "(%s > %s%s ? %s : %s)", x, y, cg_is_nan(f, t, x), x, y);
  case OP_MINIMUM:
    return arena_printf(a, "(%s < %s%s ? %s : %s)", x, y, cg_is_nan(f, t, x), x, y);
  case OP_POW:
    return math_call2(f, t, "pow", x, y);
  case OP_LT:
    return compare(f, t, x, "<", y);
  case OP_LE:
    return compare(f, t, x, "<=", y);
  case OP_GT:
    return compare(f, t, x, ">", y);
  case OP_GE:
    return compare(f, t, x, ">=", y);
  case OP_EQ:
    return compare(f, t, x, "==", y);
  case OP_NE:
    return compare(f, t, x, "!=", y);
  case OP_NEG:
    return fl ? arena_printf(a, "-%s", x) : cg_int_wrap(f, t, "0", "-", x);
  case OP_EXP:
    return cg_math_call(f, t, "exp", x);
  case OP_LOG:
    return cg_math_call(f, t, "log", x);
  case OP_SQRT:
    return cg_math_call(f, t, "sqrt", x);
  case OP_ABS:
    if (fl) return cg_math_call(f, t, "fabs", x);
    if (t == DT_U8) return x;
    return arena_printf(a, "(%s < 0 ? %s : %s)", x, cg_int_wrap(f, t, "0", "-", x), x);
  case OP_SIGN:
    return arena_printf(a, "(%s > %s ? %s : %s < %s ? -%s : %s)", x, zero, one, x, zero, one, x);
  case OP_RELU:
    return arena_printf(a, "(%s > %s ? %s : %s)", x, zero, x, zero);
  case OP_SIGMOID: /* one exp, which never overflows: e = exp(-|x|) */
    if (t == DT_F32) return arena_printf(a, "lathe_sigmoidf(%s)", x);
    {
      const char *en = cg_math_call(f, t, "exp", arena_printf(a, "-%s", x));
      const char *ep = cg_math_call(f, t, "exp", x);
      return arena_printf(a, "(%s >= %s ? %s / (%s + %s) : %s / (%s + %s))", x, zero, one, one, en,
                          ep, one, ep);
    }
  case OP_TANH:
    return cg_math_call(f, t, "tanh", x);
  case OP_ERF:
    return cg_math_call(f, t, "erf", x);
  case OP_SIN:
    return cg_math_call(f, t, "sin", x);
  case OP_COS:
    return cg_math_call(f, t, "cos", x);
  case OP_STOP_GRAD:
  case OP_BROADCAST:
    return x;
  case OP_CAST:
    return cast_expr(f, graph_node(f->g, n->in[0])->dtype, t, x);
  default:
    return NULL;
  }
}

/* index of input `in` (NumPy-broadcast to out) for the output loop variables */
const char *cg_broadcast_index(CgFunc *f, const Shape *in, const Shape *out, const char **vars) {
  int64_t st[IR_MAX_RANK], bst[IR_MAX_RANK];
  cg_strides_of(in, st);
  int lead = out->rank - in->rank;
  for (int d = 0; d < out->rank; d++) {
    int di = d - lead;
    bst[d] = (di < 0 || in->dim[di] == 1) ? 0 : st[di];
  }
  return cg_index_expr(f->arena, out->rank, vars, bst);
}

const char *cg_lowest(CgFunc *f, DType t) {
  switch (t) {
  case DT_F32:
    return "-HUGE_VALF";
  case DT_F64:
    return "-HUGE_VAL";
  case DT_I32:
    return "INT32_MIN";
  case DT_I64:
    return "INT64_MIN";
  case DT_I8:
    return "INT8_MIN";
  default:
    return cg_literal(f->arena, t, 0);
  }
}

int64_t cg_scratch_base(const Graph *g) {
  return ir_workspace_align(g->workspace_bytes);
}

/* ---- source paths ---------------------------------------------------------------------- */

enum { PATH_PARTS = 128 };

/* splits the absolute form of path (relative ones from the working directory) into its
 * components with "." and ".." resolved lexically; returns the count, -1 on failure */
static int path_parts(Arena *a, const char *path, const char **part) {
  const char *full = path;
  if (path[0] != '/') {
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    full = arena_printf(a, "%s/%s", cwd, path);
  }
  int n = 0;
  for (const char *p = full; *p;) {
    while (*p == '/')
      p++;
    size_t len = strcspn(p, "/");
    if (len == 0) break;
    if (len == 1 && p[0] == '.') {
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      if (n > 0) n--;
    } else {
      if (n == PATH_PARTS) return -1;
      part[n++] = arena_printf(a, "%.*s", (int)len, p);
    }
    p += len;
  }
  return n;
}

const char *cg_source_path(Arena *a, const Module *m, const char *file) {
  const char *model = m ? m->source_file : NULL;
  if (file && m && m->lib_builtin && strncmp(file, "lib/", 4) == 0)
    return file; /* the built-in library's name: no file on this machine */
  if (!file || !model || (!strchr(file, '/') && !strchr(model, '/') && file[0] != '<'))
    return file; /* both in the working directory: already relative to the model's */
  if (file[0] == '<') return file;
  const char *fp[PATH_PARTS], *mp[PATH_PARTS];
  int nf = path_parts(a, file, fp), nm = path_parts(a, model, mp);
  if (nf <= 0 || nm <= 0) { /* no working directory: at least no directory */
    const char *slash = strrchr(file, '/');
    return slash ? slash + 1 : file;
  }
  nm--; /* the model's directory */
  int common = 0;
  while (common < nm && common < nf - 1 && strcmp(mp[common], fp[common]) == 0)
    common++;
  const char *out = "";
  for (int i = common; i < nm; i++)
    out = arena_printf(a, "%s../", out);
  for (int i = common; i < nf; i++)
    out = arena_printf(a, "%s%s%s", out, fp[i], i + 1 < nf ? "/" : "");
  return out;
}
