/* codegen/lower.c — one lowering per op: each IR node becomes a C loop nest.
 *
 * The table of lowerings is generated from the `lower` column of ir/ops.def. Every kernel is
 * specialized to its static shapes: loop bounds and strides are literals, loops of extent 1
 * are dropped, and indices are written as sums of `var * stride`. Float math uses the float
 * functions of <math.h> for f32 (expf) and the double ones for f64; integer tensors compute
 * through double and convert back. Each kernel gets its own name scope, so loop variables
 * (i0, i1, k, acc) are reused from kernel to kernel.
 *
 * Invariant: when cg_lower_node(f, id) runs, f->val[x] is set for every input x of id, and
 * f->val[id] is set (writable) unless id is a source, CONST or RESHAPE.
 */
#include "lower.h"

#include "conv.h"
#include "lower_conv.h"
#include "lower_hooks.h"
#include "lower_rows.h"
#include "quant_gemm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Inputs whose element i is element i of the output (same shape), or a single element. */
static bool ew_flat(CgFunc *f, const Node *n) {
  for (int k = 0; k < n->n_in; k++) {
    const Node *in = graph_node(f->g, n->in[k]);
    if (!f->val[n->in[k]].literal && !shape_equal(&in->shape, &n->shape) &&
        shape_numel(&in->shape) != 1)
      return false;
  }
  return true;
}

bool lower_elemwise(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *x[2] = {NULL, NULL};
  const char *out = f->val[id].expr;
  if (ew_flat(f, n)) {
    cg_omp_for(f, shape_numel(&n->shape) * CG_OMP_ELEMENT_COST);
    const char *i = cg_loop_open_count(f, "i", &n->shape, shape_numel(&n->shape));
    const char *idx = i ? i : "0";
    for (int k = 0; k < n->n_in; k++)
      x[k] = cg_at(f, n->in[k], shape_numel(&graph_node(f->g, n->in[k])->shape) == 1 ? "0" : idx);
    const char *e = cg_ew_expr(f, n, x[0], x[1]);
    if (!e) return cg_unsupported(f, id, "no elementwise lowering");
    cg_line(f->e, "%s[%s] = %s;", out, idx, e);
    cg_loop_close(f, i);
    return true;
  }
  const char *vars[IR_MAX_RANK];
  int64_t st[IR_MAX_RANK];
  cg_strides_of(&n->shape, st);
  cg_nest_open(f, &n->shape, vars);
  for (int k = 0; k < n->n_in; k++)
    x[k] = cg_at(f, n->in[k],
                 cg_broadcast_index(f, &graph_node(f->g, n->in[k])->shape, &n->shape, vars));
  const char *e = cg_ew_expr(f, n, x[0], x[1]);
  if (!e) return cg_unsupported(f, id, "no elementwise lowering");
  cg_line(f->e, "%s[%s] = %s;", out, cg_index_expr(f->arena, n->shape.rank, vars, st), e);
  cg_nest_close(f, &n->shape, vars);
  return true;
}

bool lower_broadcast_to(CgFunc *f, NodeId id) {
  return lower_elemwise(f, id);
}

/* ---- sources, constants, views ------------------------------------------------------------ */

bool lower_source(CgFunc *f, NodeId id) {
  if (!f->val[id].expr) return cg_unsupported(f, id, "source without storage");
  return true;
}

/* A splat constant becomes a literal; a data constant a static table at file scope. */
/* whether every use of data constant c of g is an operand that a GEMM (gemm.c) or a direct
 * convolution (conv_direct.c) packs into a static table of its own at compile time: then
 * lower_const writes no plain table for c */
static bool const_packed_only(const Graph *g, NodeId c, const CgOptions *o) {
  const Node *cn = graph_node(g, c);
  if (cn->op != OP_CONST || !cn->attr.constant.data) return false;
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].node == c) return false;
  bool used = false;
  for (NodeId u = c + 1; u < g->n_nodes; u++) {
    const Node *un = graph_node(g, u);
    for (int k = 0; k < un->n_in; k++) {
      if (un->in[k] != c) continue;
      bool packed = un->op == OP_MATMUL ? cg_gemm_packs_operand(g, u, k)
                    : un->op == OP_QDENSE || un->op == OP_QCONV2D
                        ? cg_qgemm_packs_const(g, u, k, o)
                        : cg_conv_direct_packs_const(g, u, k, o);
      if (!packed) return false;
      used = true;
    }
  }
  return used;
}

bool lower_const(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const double *data = n->attr.constant.data;
  int64_t count = shape_numel(&n->shape);
  if (!data || count == 1) {
    f->val[id] = (CgValue){cg_literal(f->arena, n->dtype, data ? data[0] : n->attr.constant.value),
                           true, false};
    return true;
  }
  if (const_packed_only(f->g, id, f->opt)) { /* only GEMMs read it, from tables of their own */
    f->val[id] = (CgValue){"(packed)", false, false};
    return true;
  }
  const char *name = arena_printf(f->arena, "%s_c%u", f->symbol, id);
  char shape[200];
  cg_buf_printf(f->globals, "/* %%%u = const : %s%s */\n", id, dtype_name(n->dtype),
                shape_str(&n->shape, shape, sizeof shape));
  cg_buf_printf(f->globals, "static const %s %s[%lld] = {", dtype_c_name(n->dtype), name,
                (long long)count);
  for (int64_t i = 0; i < count; i++) {
    cg_buf_puts(f->globals, i % 8 == 0 ? "\n  " : " ");
    cg_buf_printf(f->globals, "%s%s", cg_literal(f->arena, n->dtype, data[i]),
                  i + 1 < count ? "," : "");
  }
  cg_buf_puts(f->globals, "\n};\n\n");
  f->val[id] = (CgValue){name, false, false};
  return true;
}

/* RESHAPE never moves data: C order is preserved, so it names its input's bytes. */
bool lower_reshape(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  f->val[id] = f->val[n->in[0]];
  f->val[id].writable = false;
  return true;
}

bool lower_transpose(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Node *in = graph_node(f->g, n->in[0]);
  int64_t ist[IR_MAX_RANK], ost[IR_MAX_RANK], pst[IR_MAX_RANK];
  cg_strides_of(&in->shape, ist);
  cg_strides_of(&n->shape, ost);
  for (int d = 0; d < n->shape.rank; d++)
    pst[d] = ist[n->attr.transpose.perm[d]];
  const char *vars[IR_MAX_RANK];
  cg_nest_open(f, &n->shape, vars);
  cg_line(f->e, "%s[%s] = %s;", f->val[id].expr, cg_index_expr(f->arena, n->shape.rank, vars, ost),
          cg_at(f, n->in[0], cg_index_expr(f->arena, n->shape.rank, vars, pst)));
  cg_nest_close(f, &n->shape, vars);
  return true;
}

bool lower_one_hot(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int64_t depth = n->attr.one_hot.depth;
  const Shape *is = &graph_node(f->g, n->in[0])->shape;
  const char *out = f->val[id].expr;
  const char *i = cg_loop_open_count(f, "i", is, shape_numel(is));
  const char *c = cg_fresh(f->e, "c");
  cg_line(f->e, "const int64_t %s = (int64_t)%s;", c, cg_at(f, n->in[0], i ? i : "0"));
  const char *j = cg_loop_open(f, "j", depth);
  const char *vars[2] = {i, j};
  const int64_t st[2] = {depth, 1};
  cg_line(f->e, "%s[%s] = %s == %s ? %s : %s;", out, cg_index_expr(f->arena, 2, vars, st),
          j ? j : "0", c, cg_literal(f->arena, n->dtype, 1), cg_literal(f->arena, n->dtype, 0));
  cg_loop_close(f, j);
  cg_loop_close(f, i);
  return true;
}

/* ---- matmul ------------------------------------------------------------------------------ */

typedef struct MatDims {
  int64_t m, k, n;
  int nb;                     /* batch dims of the output */
  int64_t a_bst[IR_MAX_RANK]; /* per output batch dim: stride in a (0 = broadcast) */
  int64_t b_bst[IR_MAX_RANK];
  int64_t c_bst[IR_MAX_RANK];
} MatDims;

/* batch strides of operand s (matrix dims excluded, `mat` elements per matrix) */
static void batch_strides(const Shape *s, int mat_rank, int nb, int64_t mat, int64_t *bst) {
  int sb = s->rank - mat_rank; /* batch dims of s, right-aligned to the output's */
  int64_t acc = mat;
  for (int d = nb - 1; d >= 0; d--) {
    int ds = d - (nb - sb);
    bst[d] = (ds < 0 || s->dim[ds] == 1) ? 0 : acc;
    if (ds >= 0) acc *= s->dim[ds];
  }
}

static void mat_dims(const Node *n, const Shape *a, const Shape *b, MatDims *md) {
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  int ar = a->rank, br = b->rank;
  md->m = ar == 1 ? 1 : (ta ? a->dim[ar - 1] : a->dim[ar - 2]);
  md->k = ar == 1 ? a->dim[0] : (ta ? a->dim[ar - 2] : a->dim[ar - 1]);
  md->n = br == 1 ? 1 : (tb ? b->dim[br - 2] : b->dim[br - 1]);
  md->nb = n->shape.rank - (ar == 1 ? 0 : 1) - (br == 1 ? 0 : 1);
  batch_strides(a, ar == 1 ? 1 : 2, md->nb, md->m * md->k, md->a_bst);
  batch_strides(b, br == 1 ? 1 : 2, md->nb, md->k * md->n, md->b_bst);
  int64_t acc = md->m * md->n;
  for (int d = md->nb - 1; d >= 0; d--) {
    md->c_bst[d] = acc;
    acc *= n->shape.dim[d];
  }
}

/* The loops of a matmul's rows (i) and contraction (k): a dynamic product's rows run to the
 * run-time batch; a static product of a dynamic A (the weight gradient X^T dY) sums over it. */
static const char *mm_loop_i(CgFunc *f, const Node *n, const MatDims *md) {
  if (md->nb == 0) return cg_loop_open_count(f, "i", &n->shape, md->m);
  return cg_loop_open(f, "i", md->m);
}

static const char *mm_loop_k(CgFunc *f, const Graph *g, const Node *n, const MatDims *md) {
  const Shape *a = &graph_node(g, n->in[0])->shape;
  if (!cg_is_dyn(f, &n->shape) && cg_is_dyn(f, a)) return cg_loop_open_count(f, "k", a, md->k);
  return cg_loop_open(f, "k", md->k);
}

/* "base + i * s1 + j * s2" with NULL vars skipped */
static const char *mat_index(CgFunc *f, const char *base, const char *v1, int64_t s1,
                             const char *v2, int64_t s2) {
  const char *vars[3] = {v1, v2, NULL};
  const int64_t st[3] = {s1, s2, 0};
  const char *ij = cg_index_expr(f->arena, 2, vars, st);
  if (strcmp(base, "0") == 0) return ij;
  if (strcmp(ij, "0") == 0) return base;
  return arena_printf(f->arena, "%s + %s", base, ij);
}

/* C[i, j] (+)= A[i, k] * B[k, j]: i-k-j order (unit-stride inner loop over B and C rows), or
 * i-j-k with an accumulator when B is transposed (then B's rows are contiguous in k). */
/* acc += a * b of a matmul of dtype t as a statement: an integer one wraps in t's width at
 * every step (as + and * do; docs/language.md), so no signed overflow is undefined */
static void mm_accumulate(CgFunc *f, DType t, const char *acc, const char *a, const char *b) {
  if (dtype_is_float(t))
    cg_line(f->e, "%s += %s * %s;", acc, a, b);
  else
    cg_line(f->e, "%s = %s;", acc, cg_int_wrap(f, t, acc, "+", cg_int_wrap(f, t, a, "*", b)));
}

static void matmul_body(CgFunc *f, NodeId id, const MatDims *md, const char *ab, const char *bb,
                        const char *cb) {
  const Node *n = graph_node(f->g, id);
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b;
  const char *zero = cg_literal(f->arena, n->dtype, 0), *out = f->val[id].expr;
  const char *i = mm_loop_i(f, n, md);
  const char *av, *bv;
  if (tb) {
    const char *j = cg_loop_open(f, "j", md->n);
    const char *acc = cg_fresh(f->e, "acc");
    cg_line(f->e, "%s %s = %s;", dtype_c_name(n->dtype), acc, zero);
    const char *k = mm_loop_k(f, f->g, n, md);
    av = cg_at(f, n->in[0],
               ta ? mat_index(f, ab, k, md->m, i, 1) : mat_index(f, ab, i, md->k, k, 1));
    bv = cg_at(f, n->in[1], mat_index(f, bb, j, md->k, k, 1));
    mm_accumulate(f, n->dtype, acc, av, bv);
    cg_loop_close(f, k);
    cg_line(f->e, "%s[%s] = %s;", out, mat_index(f, cb, i, md->n, j, 1), acc);
    cg_loop_close(f, j);
  } else {
    const char *j = cg_loop_open(f, "j", md->n);
    cg_line(f->e, "%s[%s] = %s;", out, mat_index(f, cb, i, md->n, j, 1), zero);
    cg_loop_close(f, j);
    const char *k = mm_loop_k(f, f->g, n, md);
    const char *a_ik = cg_fresh(f->e, "a_ik");
    av = cg_at(f, n->in[0],
               ta ? mat_index(f, ab, k, md->m, i, 1) : mat_index(f, ab, i, md->k, k, 1));
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(n->dtype), a_ik, av);
    j = cg_loop_open(f, "j", md->n);
    bv = cg_at(f, n->in[1], mat_index(f, bb, k, md->n, j, 1));
    mm_accumulate(f, n->dtype,
                  arena_printf(f->arena, "%s[%s]", out, mat_index(f, cb, i, md->n, j, 1)), a_ik,
                  bv);
    cg_loop_close(f, j);
    cg_loop_close(f, k);
  }
  cg_loop_close(f, i);
}

/* the store of a finished element of an unfused matmul (codegen/gemm.c) */
static bool store_plain(CgFunc *f, void *ctx, const char **ij, const char *idx, const char *value) {
  (void)ij;
  cg_line(f->e, "%s[%s] = %s;", f->val[*(const NodeId *)ctx].expr, idx, value);
  return true;
}

bool lower_matmul(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Shape *a = &graph_node(f->g, n->in[0])->shape, *b = &graph_node(f->g, n->in[1])->shape;
  if (a->rank < 1 || b->rank < 1 || n->shape.rank > IR_MAX_RANK)
    return cg_unsupported(f, id, "matmul needs operands of rank >= 1");
  MatDims md;
  mat_dims(n, a, b, &md);
  if (md.nb < 0) return cg_unsupported(f, id, "inconsistent matmul shapes");
  if (cg_gemm_applies(f->g, id)) {
    /* its output holds partial sums */
    CgGemmStore st = {.emit = store_plain, .ctx = &id, .partial = f->val[id].expr, .pool = IR_NONE};
    return cg_gemm_lower(f, id, &st);
  }
  const char *vars[IR_MAX_RANK];
  for (int d = 0; d < md.nb; d++) {
    char base[16];
    snprintf(base, sizeof base, "b%d", d);
    vars[d] = d == 0 ? cg_loop_open_count(f, base, &n->shape, n->shape.dim[0])
                     : cg_loop_open(f, base, n->shape.dim[d]);
  }
  const char *ab = cg_index_expr(f->arena, md.nb, vars, md.a_bst);
  const char *bb = cg_index_expr(f->arena, md.nb, vars, md.b_bst);
  const char *cb = cg_index_expr(f->arena, md.nb, vars, md.c_bst);
  matmul_body(f, id, &md, ab, bb, cb);
  for (int d = md.nb - 1; d >= 0; d--)
    cg_loop_close(f, vars[d]);
  return true;
}

/* ---- softmax and reductions ---------------------------------------------------------------- */

/* Stable softmax / log-softmax along one axis: subtract the max, exponentiate, normalize. */
/* Opens the loop over the softmax axis (vars[1]) and returns its variable; *idx is the
 * element index inside it. */
static const char *axis_loop(CgFunc *f, const char **vars, const int64_t *st, int64_t len,
                             const char **idx) {
  vars[1] = cg_loop_open(f, "j", len);
  *idx = cg_index_expr(f->arena, 3, vars, st);
  return vars[1];
}

/* One row along the axis, vars = {outer, axis, inner}: max, sum of exp(x - max), normalize. */
static void softmax_row(CgFunc *f, NodeId id, const char **vars, const int64_t *st, int64_t len) {
  const Node *n = graph_node(f->g, id);
  DType t = n->dtype;
  const char *mx = cg_fresh(f->e, "max"), *sum = cg_fresh(f->e, "sum"), *out = f->val[id].expr;
  const char *idx;
  vars[1] = NULL;
  cg_line(f->e, "%s %s = %s;", dtype_c_name(t), mx,
          cg_at(f, n->in[0], cg_index_expr(f->arena, 3, vars, st)));
  const char *j = axis_loop(f, vars, st, len, &idx);
  cg_line(f->e, "if (%s > %s) %s = %s;", cg_at(f, n->in[0], idx), mx, mx, cg_at(f, n->in[0], idx));
  cg_loop_close(f, j);
  cg_line(f->e, "%s %s = %s;", dtype_c_name(t), sum, cg_literal(f->arena, t, 0));
  j = axis_loop(f, vars, st, len, &idx);
  const char *ex =
      cg_math_call(f, t, "exp", arena_printf(f->arena, "%s - %s", cg_at(f, n->in[0], idx), mx));
  if (n->op == OP_SOFTMAX) {
    cg_line(f->e, "%s[%s] = %s;", out, idx, ex);
    cg_line(f->e, "%s += %s[%s];", sum, out, idx);
  } else {
    cg_line(f->e, "%s += %s;", sum, ex);
  }
  cg_loop_close(f, j);
  if (n->op == OP_LOG_SOFTMAX) cg_line(f->e, "%s = %s;", sum, cg_math_call(f, t, "log", sum));
  j = axis_loop(f, vars, st, len, &idx);
  if (n->op == OP_SOFTMAX)
    cg_line(f->e, "%s[%s] /= %s;", out, idx, sum);
  else
    cg_line(f->e, "%s[%s] = %s - %s - %s;", out, idx, cg_at(f, n->in[0], idx), mx, sum);
  cg_loop_close(f, j);
}

bool lower_softmax(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int axis = n->attr.softmax.axis;
  if (axis < 0 || axis >= n->shape.rank) return cg_unsupported(f, id, "softmax axis out of range");
  if (!dtype_is_float(n->dtype)) return cg_unsupported(f, id, "softmax of an integer tensor");
  int64_t outer = 1, inner = 1, len = n->shape.dim[axis];
  for (int d = 0; d < axis; d++)
    outer *= n->shape.dim[d];
  for (int d = axis + 1; d < n->shape.rank; d++)
    inner *= n->shape.dim[d];
  if (axis == 0 && cg_is_dyn(f, &n->shape))
    return cg_dyn_unsupported(f, id, "a softmax over the batch axis");
  const char *o =
      axis == 0 ? cg_loop_open(f, "i", outer) : cg_loop_open_count(f, "i", &n->shape, outer);
  const char *q = cg_loop_open(f, "i", inner);
  const char *vars[3] = {o, NULL, q};
  const int64_t st[3] = {len * inner, inner, 1};
  softmax_row(f, id, vars, st, len);
  cg_loop_close(f, q);
  cg_loop_close(f, o);
  return true;
}

/* ---- the table and the driver -------------------------------------------------------------- */

typedef bool (*LowerFn)(CgFunc *, NodeId);

static const LowerFn lower_table[] = {
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower) lower,
#include "ir/ops.def"
#undef OP
};
_Static_assert(sizeof lower_table / sizeof lower_table[0] == OP_COUNT,
               "one lowering per op of ir/ops.def");

/* a source file as the output names it: relative to the model file (cg_source_path) */
static const char *source_of(CgFunc *f, const char *file) {
  return cg_source_path(f->arena, f->m, file);
}

/* "%12 = matmul %3, %7 : f32[64, 256]" */
static const char *node_text(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  char shape[200];
  char *text = arena_printf(f->arena, "%%%u = %s", id, ir_ops[n->op].name);
  for (int k = 0; k < n->n_in; k++)
    text = arena_printf(f->arena, "%s%s %%%u", text, k ? "," : "", n->in[k]);
  return arena_printf(f->arena, "%s : %s%s", text, dtype_name(n->dtype),
                      shape_str(&n->shape, shape, sizeof shape));
}

static void kernel_comment(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const char *text = node_text(f, id);
  if (n->name) text = arena_printf(f->arena, "%s  -- %s", text, n->name);
  if (n->loc.file)
    text = arena_printf(f->arena, "%s  (%s:%u:%u)", text, source_of(f, n->loc.file), n->loc.line,
                        n->loc.col);
  cg_line(f->e, "/* %s */", cg_comment_safe(f->arena, text));
}

/* A kernel whose outer loop has extent 1 (elided) declares its locals (row, acc, max) at the
 * function's top level, where the next such kernel would redeclare them. After lowering, if
 * any line at the kernel's base indentation is not a loop, a comment or a closing brace,
 * the kernel's text from `start` is wrapped in a block and indented one step. */
static void kernel_scope(CgFunc *f, size_t start) {
  CgBuf *b = &f->e->body;
  if (!b->data || b->len <= start) return;
  int base = 2 * f->e->indent;
  bool wrap = false;
  for (const char *l = b->data + start; *l && !wrap; l = strchr(l, '\n') + 1) {
    int sp = 0;
    while (l[sp] == ' ')
      sp++;
    const char *t = l + sp;
    wrap = sp == base && strncmp(t, "for (", 5) && *t != '}' && strncmp(t, "/*", 2) && *t != '#';
    if (!strchr(l, '\n')) break;
  }
  if (!wrap) return;
  CgBuf out;
  cg_buf_init(&out);
  cg_buf_printf(&out, "%*s{\n", base, "");
  for (const char *l = b->data + start; *l;) {
    const char *nl = strchr(l, '\n');
    size_t n = nl ? (size_t)(nl - l + 1) : strlen(l);
    if (*l != '#' && n > 1) cg_buf_puts(&out, "  ");
    cg_buf_printf(&out, "%.*s", (int)n, l);
    l += n;
  }
  cg_buf_printf(&out, "%*s}\n", base, "");
  b->len = start;
  b->data[start] = '\0';
  if (out.data) cg_buf_puts(b, out.data);
  b->oom |= out.oom;
  cg_buf_fini(&out);
}

/* ---- the run-time batch ---------------------------------------------------------------------
 * The lowerings that take the run-time extent (docs/dynamic-batch.md): elementwise ops and
 * their fused groups, matmul (GEMM or loops, batched ones looping their dynamic batch dim to
 * n) with its epilogue, softmax and log-softmax along an axis other than the batch, one_hot,
 * the reductions (a mean over the batch divides by the run-time count), the convolutions
 * (every algorithm, the weight gradient summing over the run-time batch) and max-pooling with
 * its gradient (their scratch offsets affine in n), transpose (axis 0 stays first), where,
 * slice and unslice (the window keeps all of axis 0), gather and scatter_add (dynamic
 * indices into a static table), random and dropout (the counter is the flat index: rows
 * 0 .. n-1 draw what the fixed-batch build draws for them) and train_select. Each is the
 * static loop nest with the outermost extent at n. Every other op that touches a dynamic
 * shape is refused at its source line, never lowered at the bound. Scans, PACK and UNPACK
 * take n in lower_scan.c (docs/dynamic-batch.md "Scans"). */

static bool dyn_lowered(const Node *n) {
  switch (n->op) {
  case OP_MATMUL:
  case OP_ONE_HOT:
  case OP_BROADCAST:
  case OP_SUM:
  case OP_MEAN:
  case OP_MAX:
  case OP_CONV2D:
  case OP_CONV_TRANSPOSE2D:
  case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D:
  case OP_MAX_POOL2D_GRAD:
  case OP_TRANSPOSE:
  case OP_WHERE:
  case OP_SLICE:
  case OP_UNSLICE:
  case OP_GATHER:
  case OP_SCATTER_ADD:
  case OP_RANDOM:
  case OP_DROPOUT:
  case OP_TRAIN_SELECT:
  case OP_QUANTIZE: /* lower_quant.c: one nest over the result, axis 0 to its run-time n */
  case OP_DEQUANTIZE:
    return true;
  case OP_SOFTMAX:
  case OP_LOG_SOFTMAX:
    return n->attr.softmax.axis != 0;
  default:
    return ir_ops[n->op].fusion == FUSE_ELEMWISE;
  }
}

static bool dyn_check(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  if (!f->m || f->m->dyn_max <= 0 ||
      (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE || n->op == OP_CONST ||
       n->op == OP_RESHAPE))
    return true;
  bool touches = cg_is_dyn(f, &n->shape);
  for (int k = 0; k < n->n_in; k++)
    touches |= cg_is_dyn(f, &graph_node(f->g, n->in[k])->shape);
  if (n->op == OP_SCAN || n->op == OP_PACK || n->op == OP_UNPACK)
    return true; /* lower_scan.c: packed layouts and body buffers affine in n */
  if (touches && !dyn_lowered(n)) return cg_dyn_unsupported(f, id, ir_ops[n->op].name);
  return true;
}

bool cg_lower_node(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  if (n->op >= OP_COUNT) return cg_unsupported(f, id, "unknown op");
  if (!dyn_check(f, id)) return false;
  bool computes = n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_STATE &&
                  n->op != OP_CONST && n->op != OP_RESHAPE;
  if (computes && (!f->val[id].expr || !f->val[id].writable))
    return cg_unsupported(f, id, "no buffer planned (run memory planning first)");
  if (!computes) {
    if (!lower_table[n->op](f, id)) return false;
    if (n->op == OP_RESHAPE && !f->val[id].literal) {
      kernel_comment(f, id);
      cg_line(f->e, "/* (no code: a view of %s) */", f->val[id].expr);
    }
    return true;
  }
  kernel_comment(f, id);
  bool line = f->opt->line_directives && n->loc.file && n->loc.line > 0;
  if (line)
    cg_raw(f->e, "#line %u \"%s\"", n->loc.line,
           cg_string_safe(f->arena, source_of(f, n->loc.file)));
  size_t start = f->e->body.len;
  cg_scope_push(f->e);
  bool ok = lower_table[n->op](f, id);
  cg_scope_pop(f->e);
  kernel_scope(f, start);
  if (line) cg_raw(f->e, "%s", CG_LINE_RESYNC);
  return ok;
}

/* ---- fused groups (passes/fuse.c) ----------------------------------------------------------
 *
 * A group is lowered as one loop nest over its common shape S. Every member's element is a
 * local `const` (v<id>) computed from the members before it and from external inputs read at
 * their broadcast index; only stored members (those with storage: read by another kernel, or
 * an output) are written, all after the element's loads, so an output may share the buffer of
 * a same-shaped input (memplan's in-place rule). A matmul group computes each output element
 * (or row) of the matmul and applies the elementwise epilogue to it before storing; a conv2d
 * group does the same per element of each image (cg_conv_lower_fused, lower_conv.c). */

typedef struct Fused {
  const NodeId *mem; /* members, in id order */
  int nm;
  const char **reg; /* per member: its local, once emitted */
  const Shape *shape;
  NodeId mm;        /* the matmul member, or IR_NONE */
  const char *skip; /* buffer already holding the matmul's value (no store), or NULL */
  NodeId pool;      /* a max-pool ending a convolution group (pooled by its lowering), or
                       IR_NONE */
  const Graph *g;
} Fused;

static int member_index(const Fused *u, NodeId id) {
  for (int k = 0; k < u->nm; k++)
    if (u->mem[k] == id) return k;
  return -1;
}

/* element of x (a member's local, or an external input) at the current element */
static const char *operand(CgFunc *f, const Fused *u, NodeId x, const char **vars, const char *idx,
                           bool flat) {
  int k = member_index(u, x);
  if (k >= 0) return u->reg[k];
  const Shape *s = &graph_node(f->g, x)->shape;
  if (flat) return cg_at(f, x, shape_equal(s, u->shape) ? idx : "0");
  return cg_at(f, x, cg_broadcast_index(f, s, u->shape, vars));
}

/* The members' locals for one element (the matmul's value is `mm_value`), then the stores. */
static bool emit_members(CgFunc *f, Fused *u, const char **vars, const char *idx, bool flat,
                         const char *mm_value) {
  for (int k = 0; k < u->nm; k++) {
    const Node *n = graph_node(f->g, u->mem[k]);
    const char *x[2] = {NULL, NULL};
    if (u->mem[k] == u->pool) continue;
    for (int j = 0; j < n->n_in && j < 2; j++)
      x[j] = operand(f, u, n->in[j], vars, idx, flat);
    const char *e = u->mem[k] == u->mm ? mm_value : cg_ew_expr(f, n, x[0], x[1]);
    if (!e) return cg_unsupported(f, u->mem[k], "no elementwise lowering");
    u->reg[k] = cg_fresh(f->e, arena_printf(f->arena, "v%u", u->mem[k]));
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(n->dtype), u->reg[k], e);
  }
  for (int k = 0; k < u->nm; k++) {
    const CgValue *v = &f->val[u->mem[k]];
    if (u->mem[k] != u->pool && v->expr && !v->literal && v->expr != u->skip)
      cg_line(f->e, "%s[%s] = %s;", v->expr, idx, u->reg[k]);
  }
  return true;
}

static bool lower_ew_group(CgFunc *f, Fused *u) {
  bool flat = true;
  for (int k = 0; k < u->nm; k++) {
    const Node *n = graph_node(f->g, u->mem[k]);
    for (int j = 0; j < n->n_in; j++) {
      const Node *in = graph_node(f->g, n->in[j]);
      if (member_index(u, n->in[j]) < 0 && !f->val[n->in[j]].literal &&
          !shape_equal(&in->shape, u->shape) && shape_numel(&in->shape) != 1)
        flat = false;
    }
  }
  if (flat) {
    cg_omp_for(f, shape_numel(u->shape) * CG_OMP_ELEMENT_COST);
    const char *i = cg_loop_open_count(f, "i", u->shape, shape_numel(u->shape));
    bool ok = emit_members(f, u, NULL, i ? i : "0", true, NULL);
    cg_loop_close(f, i);
    return ok;
  }
  const char *vars[IR_MAX_RANK];
  int64_t st[IR_MAX_RANK];
  cg_strides_of(u->shape, st);
  cg_nest_open(f, u->shape, vars);
  bool ok =
      emit_members(f, u, vars, cg_index_expr(f->arena, u->shape->rank, vars, st), false, NULL);
  cg_nest_close(f, u->shape, vars);
  return ok;
}

enum { CG_ROW_BYTES = 16384 }; /* largest matmul row accumulated in a local array */

/* Where the i-k-j order accumulates row i: the matmul's own buffer when it is stored (then
 * indexed by the element), else a local row array (indexed by j). Never another member's
 * buffer: that may be an input updated in place, which the epilogue still reads. */
static const char *mm_row(CgFunc *f, const Fused *u, const MatDims *md, bool *local) {
  const Node *n = graph_node(f->g, u->mm);
  *local = false;
  if (f->val[u->mm].expr) return f->val[u->mm].expr;
  if (md->n * (int64_t)dtype_size(n->dtype) > CG_ROW_BYTES) return NULL;
  const char *row = cg_fresh(f->e, "row");
  cg_line(f->e, "%s %s[%lld];", dtype_c_name(n->dtype), row, (long long)md->n);
  *local = true;
  return row;
}

/* C = A B with 2-D operands, the epilogue applied per element (B transposed: i-j-k with an
 * accumulator) or per finished row (i-k-j accumulating into a stored row, then the epilogue
 * over it; the row is overwritten only after each element is read). */
/* the store of a finished matmul element with its epilogue (codegen/gemm.c) */
static bool store_group(CgFunc *f, void *ctx, const char **ij, const char *idx, const char *value) {
  Fused *u = ctx;
  u->skip = NULL;
  return emit_members(f, u, ij, idx, false, value);
}

/* the local of the pool's input after store_group (a group ending in a max-pool) */
static const char *pooled_value(void *ctx) {
  Fused *u = ctx;
  return u->reg[member_index(u, graph_node(u->g, u->pool)->in[0])];
}

static bool lower_mm_group(CgFunc *f, Fused *u) {
  if (graph_node(f->g, u->mm)->op == OP_CONV2D) { /* a convolution and its epilogue */
    const CgValue *v = &f->val[u->mm];
    CgGemmStore st = {.emit = store_group,
                      .ctx = u,
                      .partial = v->expr && v->writable ? v->expr : NULL,
                      .pool = u->pool,
                      .pooled = pooled_value};
    for (int k = 0; k < u->nm; k++) { /* a member stored besides the pool */
      const CgValue *m = &f->val[u->mem[k]];
      st.pool_rest |= u->mem[k] != u->pool && m->expr && !m->literal;
    }
    return cg_conv_lower_fused(f, u->mm, &st);
  }
  if (cg_gemm_applies(f->g, u->mm)) {
    const CgValue *v = &f->val[u->mm];
    CgGemmStore st = {.emit = store_group,
                      .ctx = u,
                      .partial = v->expr && v->writable ? v->expr : NULL,
                      .pool = IR_NONE};
    return cg_gemm_lower(f, u->mm, &st);
  }
  const Node *n = graph_node(f->g, u->mm);
  MatDims md;
  mat_dims(n, &graph_node(f->g, n->in[0])->shape, &graph_node(f->g, n->in[1])->shape, &md);
  bool ta = n->attr.matmul.trans_a, tb = n->attr.matmul.trans_b, local = false;
  const char *zero = cg_literal(f->arena, n->dtype, 0), *vars[2];
  vars[0] = mm_loop_i(f, n, &md);
  const char *i = vars[0], *buf = tb ? NULL : mm_row(f, u, &md, &local);
  if (!buf) {
    vars[1] = cg_loop_open(f, "j", md.n);
    const char *acc = cg_fresh(f->e, "acc");
    cg_line(f->e, "%s %s = %s;", dtype_c_name(n->dtype), acc, zero);
    const char *k = mm_loop_k(f, f->g, n, &md);
    mm_accumulate(f, n->dtype, acc,
                  cg_at(f, n->in[0],
                        ta ? mat_index(f, "0", k, md.m, i, 1) : mat_index(f, "0", i, md.k, k, 1)),
                  cg_at(f, n->in[1], mat_index(f, "0", vars[1], md.k, k, 1)));
    cg_loop_close(f, k);
    u->skip = NULL;
    if (!emit_members(f, u, vars, mat_index(f, "0", i, md.n, vars[1], 1), false, acc)) return false;
    cg_loop_close(f, vars[1]);
  } else {
    const char *j = cg_loop_open(f, "j", md.n);
    const char *row_i =
        local ? "0" : (i ? arena_printf(f->arena, "%s * %lld", i, (long long)md.n) : "0");
    cg_line(f->e, "%s[%s] = %s;", buf, mat_index(f, row_i, j, 1, NULL, 0), zero);
    cg_loop_close(f, j);
    const char *k = mm_loop_k(f, f->g, n, &md);
    const char *a_ik = cg_fresh(f->e, "a_ik");
    cg_line(f->e, "const %s %s = %s;", dtype_c_name(n->dtype), a_ik,
            cg_at(f, n->in[0],
                  ta ? mat_index(f, "0", k, md.m, i, 1) : mat_index(f, "0", i, md.k, k, 1)));
    j = cg_loop_open(f, "j", md.n);
    mm_accumulate(f, n->dtype,
                  arena_printf(f->arena, "%s[%s]", buf, mat_index(f, row_i, j, 1, NULL, 0)), a_ik,
                  cg_at(f, n->in[1], mat_index(f, "0", k, md.n, j, 1)));
    cg_loop_close(f, j);
    cg_loop_close(f, k);
    vars[1] = cg_loop_open(f, "j", md.n);
    const char *idx = mat_index(f, "0", i, md.n, vars[1], 1);
    u->skip = f->val[u->mm].expr;
    const char *mm_value =
        arena_printf(f->arena, "%s[%s]", buf, mat_index(f, row_i, vars[1], 1, NULL, 0));
    if (!emit_members(f, u, vars, idx, false, mm_value)) return false;
    cg_loop_close(f, vars[1]);
  }
  cg_loop_close(f, i);
  return true;
}

/* The comment above a fused kernel: every IR node and source line it came from. */
static void group_comment(CgFunc *f, const Fused *u) {
  cg_line(f->e, "/* fused kernel: %d nodes%s", u->nm,
          u->mm == IR_NONE                           ? ""
          : u->pool != IR_NONE                       ? ", convolution + epilogue + max-pool"
          : graph_node(f->g, u->mm)->op == OP_CONV2D ? ", convolution + epilogue"
                                                     : ", matmul + epilogue");
  for (int k = 0; k < u->nm; k++) {
    const Node *n = graph_node(f->g, u->mem[k]);
    const char *text = node_text(f, u->mem[k]);
    if (n->name) text = arena_printf(f->arena, "%s  -- %s", text, n->name);
    if (n->loc.file)
      text = arena_printf(f->arena, "%s  (%s:%u:%u)", text, source_of(f, n->loc.file), n->loc.line,
                          n->loc.col);
    bool stored = f->val[u->mem[k]].expr != NULL;
    cg_line(f->e, " *   %s%s", cg_comment_safe(f->arena, text), stored ? "" : "  [register]");
  }
  cg_line(f->e, " */");
}

bool cg_lower_group(CgFunc *f, const NodeId *members, int n_members) {
  Fused u = {.mem = members,
             .nm = n_members,
             .shape = &graph_node(f->g, members[0])->shape,
             .mm = IR_NONE,
             .pool = IR_NONE,
             .g = f->g};
  u.reg = arena_alloc(f->arena, (size_t)n_members * sizeof *u.reg);
  bool rows = cg_rows_group(f->g, members, n_members);
  for (int k = 0; k < n_members; k++)
    if (!dyn_check(f, members[k])) return false;
  for (int k = 0; k < n_members && !rows; k++) {
    const Node *n = graph_node(f->g, members[k]);
    if (n->op == OP_MATMUL || n->op == OP_CONV2D) u.mm = members[k]; /* the head */
    if (n->op == OP_MAX_POOL2D) u.pool = members[k];                 /* the tail (passes/fuse.c) */
    if (!shape_equal(&n->shape, u.shape) && n->op != OP_MATMUL && n->op != OP_MAX_POOL2D)
      return cg_unsupported(f, members[k], "fused group members of different shapes");
  }
  if (u.mm != IR_NONE) u.shape = &graph_node(f->g, u.mm)->shape;
  group_comment(f, &u);
  const Node *first = graph_node(f->g, members[n_members - 1]);
  bool line = f->opt->line_directives && first->loc.file && first->loc.line > 0;
  if (line)
    cg_raw(f->e, "#line %u \"%s\"", first->loc.line,
           cg_string_safe(f->arena, source_of(f, first->loc.file)));
  size_t start = f->e->body.len;
  cg_scope_push(f->e);
  bool ok = rows              ? cg_lower_rows(f, members, n_members)
            : u.mm != IR_NONE ? lower_mm_group(f, &u)
                              : lower_ew_group(f, &u);
  cg_scope_pop(f->e);
  kernel_scope(f, start);
  if (line) cg_raw(f->e, "%s", CG_LINE_RESYNC);
  return ok;
}

/* ---- the kernel schedule ---------------------------------------------------------------- */

bool cg_lower_kernels(CgFunc *f, CgKernelHook after, void *ctx) {
  const Graph *g = f->g;
  int32_t nk = g->n_kernels;
  if (nk < 0) {
    diag_error(f->diag, (SrcLoc){0}, "internal error: '%s' has no kernel schedule",
               g->name ? g->name : "a scan body");
    return false;
  }
  uint32_t *first = arena_alloc(f->arena, ((size_t)nk + 1) * sizeof *first);
  uint32_t *seen = arena_alloc(f->arena, ((size_t)nk + 1) * sizeof *seen);
  NodeId *members = arena_alloc(f->arena, (g->n_nodes + 1) * sizeof *members);
  memset(first, 0, ((size_t)nk + 1) * sizeof *first);
  memset(seen, 0, ((size_t)nk + 1) * sizeof *seen);
  for (NodeId id = 0; id < g->n_nodes; id++) /* first[k + 1]: members of kernel k, then sums */
    if (g->nodes[id].kernel >= 0 && g->nodes[id].kernel < nk) first[g->nodes[id].kernel + 1]++;
  for (int32_t k = 0; k < nk; k++)
    first[k + 1] += first[k];
  int32_t next = 0; /* the kernel the schedule runs next */
  for (NodeId id = 0; id < g->n_nodes; id++) {
    int32_t k = g->nodes[id].kernel;
    if (k < 0 && g->nodes[id].op == OP_SCAN_ARG) continue; /* filled by the scan */
    if (k < 0 && g->nodes[id].group < 0) {
      if (!cg_lower_node(f, id)) return false;
      continue;
    }
    if (k < 0 || k >= nk) return cg_unsupported(f, id, "node outside the kernel schedule");
    members[first[k] + seen[k]++] = id;
    if (first[k] + seen[k] < first[k + 1]) continue; /* not the kernel's last member yet */
    if (k != next++) return cg_unsupported(f, id, "kernel out of schedule order");
    bool single = seen[k] == 1 && g->nodes[id].group < 0;
    if (!(single ? cg_lower_node(f, id) : cg_lower_group(f, members + first[k], (int)seen[k])))
      return false;
    if (after) after(f, k, ctx);
  }
  if (next == nk) return true;
  diag_error(f->diag, (SrcLoc){0}, "internal error: '%s' ran %d of its %d kernels",
             g->name ? g->name : "a scan body", (int)next, (int)nk);
  return false;
}
