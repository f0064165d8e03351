/* frontend/elab_einsum.c — einsum("bij,bjk->bik", a, b), like torch.einsum, for one or two
 * operands, lowered to the ops the fast kernels run: SUM, TRANSPOSE, RESHAPE and MATMUL.
 *
 * An equation is terms of letters (a-z, A-Z; blanks ignored), one per operand, separated by
 * ',', then optionally "->" and the output's letters. Without "->" the output is the letters
 * that occur once, in alphabetical order (NumPy's rule). A letter's axes must have one size.
 *
 * One operand: SUM over the letters the output lacks, then TRANSPOSE into the output order.
 * Two operands: each first sums the letters found neither in the other operand nor in the
 * output. The remaining letters are batch (both operands and the output), contracted (both
 * operands, not the output), and kept (one operand and the output). a becomes
 * [batch, M, K] and b [batch, K, N] (TRANSPOSE, then RESHAPE merging each group into one
 * axis), one batched MATMUL gives [batch, M, N], and a RESHAPE plus TRANSPOSE put its letters
 * in the output order. An outer product is K = 1; a full contraction M = N = 1. Identity
 * transposes and reshapes are not built. The gradient is that of these ops.
 *
 * "..." stands for the axes an operand has beyond its letters, spelled out first in unused
 * letters (expand_ellipses). Refused with a message: a letter repeated within one term (a
 * diagonal), a letter's sizes that differ (no broadcasting of size 1), more than two operands.
 * A dynamic batch (docs/dynamic-batch.md) follows its letter when that letter stays the first
 * axis of every intermediate; otherwise the IR reports where it moved.
 */
#include "frontend/elab.h"

#include <ctype.h>
#include <string.h>

enum { N_LETTERS = 128 };

typedef struct Term {
  char l[IR_MAX_RANK]; /* the letter of each axis */
  int n;
} Term;

typedef struct Einsum {
  Elab *E;
  SrcLoc loc;
  Builder b;
  Term in[2], out;
  int n_in;
  int64_t size[N_LETTERS]; /* 0 until an operand sets it */
  int64_t dyn[N_LETTERS];  /* k of a letter that is a dynamic axis k * n, else 0 */
} Einsum;

static bool has(const Term *t, char c) {
  return t && memchr(t->l, c, (size_t)t->n) != NULL;
}

static int axis_of(const Term *t, char c) {
  return (int)((const char *)memchr(t->l, c, (size_t)t->n) - t->l);
}

/* one term from text[0, len) */
static bool parse_term(Einsum *q, const char *text, size_t len, Term *t) {
  t->n = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == ' ') continue;
    const char *why = c == '.'                     ? "a '.' outside one ellipsis '...' per term"
                      : !isalpha((unsigned char)c) ? "expected letters, ',' and '->'"
                      : has(t, c) ? "a letter repeated within one term (a diagonal) is not "
                                    "supported"
                      : t->n == IR_MAX_RANK ? "a term has more letters than the maximum rank"
                                            : NULL;
    if (why) {
      diag_error(q->E->d, q->loc, "einsum: %s, at '%c'", why, c);
      return false;
    }
    t->l[t->n++] = c;
  }
  return true;
}

/* the letters that occur exactly once over the inputs, alphabetically */
static void implicit_output(Einsum *q) {
  q->out.n = 0;
  for (int c = 'A'; c <= 'z'; c++) {
    int count = 0;
    for (int i = 0; i < q->n_in; i++)
      count += has(&q->in[i], (char)c);
    if (count == 1) q->out.l[q->out.n++] = (char)c;
  }
}

static bool parse_equation(Einsum *q, const char *eq, int n_operands) {
  const char *arrow = strstr(eq, "->"), *end = arrow ? arrow : eq + strlen(eq), *p = eq;
  q->n_in = 0;
  for (;;) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    if (q->n_in == 2) {
      diag_error(q->E->d, q->loc, "einsum: at most two operands are supported");
      return false;
    }
    if (!parse_term(q, p, (size_t)(stop - p), &q->in[q->n_in++])) return false;
    if (!comma) break;
    p = comma + 1;
  }
  if (q->n_in != n_operands) {
    diag_error(q->E->d, q->loc, "einsum: the equation has %d terms but %d operands are given",
               q->n_in, n_operands);
    return false;
  }
  if (!arrow) return implicit_output(q), true;
  if (!parse_term(q, arrow + 2, strlen(arrow + 2), &q->out)) return false;
  for (int i = 0; i < q->out.n; i++) {
    if (has(&q->in[0], q->out.l[i]) || (q->n_in > 1 && has(&q->in[1], q->out.l[i]))) continue;
    diag_error(q->E->d, q->loc, "einsum: output letter '%c' is in no operand", q->out.l[i]);
    return false;
  }
  return true;
}

/* binds each letter of operand i to its size; all sizes of a letter must agree */
static bool bind_sizes(Einsum *q, int i, NodeId x) {
  const Shape *s = &graph_node(q->E->g, x)->shape;
  char buf[200];
  if (s->rank != q->in[i].n) {
    diag_error(q->E->d, q->loc, "einsum: operand %d has %d letters but shape %s", i + 1, q->in[i].n,
               shape_str(s, buf, sizeof buf));
    return false;
  }
  for (int a = 0; a < s->rank; a++) {
    unsigned char c = (unsigned char)q->in[i].l[a];
    if (q->size[c] && q->size[c] != s->dim[a]) {
      diag_error(q->E->d, q->loc, "einsum: letter '%c' is %lld in one operand but %lld in %s", c,
                 (long long)q->size[c], (long long)s->dim[a], shape_str(s, buf, sizeof buf));
      return false;
    }
    q->size[c] = s->dim[a];
    if (a == 0 && s->dyn) q->dyn[c] = s->dyn;
  }
  return true;
}

/* SUM over the axes of x whose letter is in neither keep nor also */
static NodeId sum_out(Einsum *q, NodeId x, Term *t, const Term *keep, const Term *also) {
  uint32_t axes = 0;
  Term left = {.n = 0};
  for (int a = 0; a < t->n; a++) {
    if (has(keep, t->l[a]) || has(also, t->l[a]))
      left.l[left.n++] = t->l[a];
    else
      axes |= 1u << a;
  }
  *t = left;
  return axes ? build_reduce(&q->b, OP_SUM, x, axes, false) : x;
}

/* x with its axes in the order of the letters `order` (a permutation of t) */
static NodeId permute(Einsum *q, NodeId x, Term *t, const Term *order) {
  int8_t perm[IR_MAX_RANK];
  bool identity = true;
  for (int a = 0; a < order->n; a++) {
    perm[a] = (int8_t)axis_of(t, order->l[a]);
    identity &= perm[a] == a;
  }
  *t = *order;
  return identity ? x : build_transpose(&q->b, x, perm);
}

/* x (letters t) reshaped to one axis per group: groups[g] consecutive letters each */
static NodeId merge(Einsum *q, NodeId x, const Term *t, const int *groups, int n_groups) {
  Shape s = {.rank = n_groups};
  for (int g = 0, a = 0; g < n_groups; g++) {
    s.dim[g] = 1;
    for (int k = 0; k < groups[g]; k++, a++)
      s.dim[g] *= q->size[(unsigned char)t->l[a]];
  }
  unsigned char first = (unsigned char)t->l[0];
  if (n_groups && groups[0] && q->dyn[first]) s.dyn = q->dyn[first] * (s.dim[0] / q->size[first]);
  return build_reshape(&q->b, x, &s);
}

/* the letters of a in out order, then b's, then c's (each only if in `from`) */
static Term letters(const Term *from, const Term *a, const Term *b, bool in_b) {
  Term t = {.n = 0};
  for (int i = 0; i < a->n; i++)
    if (has(from, a->l[i]) && has(b, a->l[i]) == in_b) t.l[t.n++] = a->l[i];
  return t;
}

static Term concat3(const Term *a, const Term *b, const Term *c) {
  Term t = *a;
  memcpy(t.l + t.n, b->l, (size_t)b->n);
  t.n += b->n;
  memcpy(t.l + t.n, c->l, (size_t)c->n);
  t.n += c->n;
  return t;
}

/* ---- ellipses ------------------------------------------------------------------------------ */

/* the letters of text[0, len) (blanks and dots skipped) */
static int count_letters(const char *text, size_t len) {
  int n = 0;
  for (size_t i = 0; i < len; i++)
    n += isalpha((unsigned char)text[i]) != 0;
  return n;
}

/* term text[0, len) with its "..." replaced by fill (text without "..." comes back whole) */
static const char *replace_dots(Arena *a, const char *text, size_t len, const char *fill) {
  const char *dots = NULL;
  for (size_t i = 0; i + 3 <= len && !dots; i++)
    if (memcmp(text + i, "...", 3) == 0) dots = text + i;
  if (!dots) return arena_printf(a, "%.*s", (int)len, text);
  size_t head = (size_t)(dots - text);
  return arena_printf(a, "%.*s%s%.*s", (int)head, text, fill, (int)(len - head - 3), dots + 3);
}

/* The equation with every "..." spelled out in letters it does not use: operand i's ellipsis
 * stands for its rank minus its letters, aligned at the right of the widest one, and the
 * output's (or, without "->", the implicit output's, before its sorted letters) for all of
 * them, like NumPy. Ellipsis axes are matched by size (no broadcasting of size 1). */
static const char *expand_ellipses(Einsum *q, const char *eq, const NodeId *x, int n_ops) {
  if (!strstr(eq, "...")) return eq;
  Arena *a = &q->E->scratch;
  const char *arrow = strstr(eq, "->"), *end = arrow ? arrow : eq + strlen(eq), *p = eq;
  const char *term[2];
  size_t len[2];
  int span[2] = {0, 0}, widest = 0;
  for (int i = 0; i < n_ops; i++) {
    if (p > end) { /* fewer terms than operands */
      diag_error(q->E->d, q->loc, "einsum: the equation has %d terms but %d operands are given", i,
                 n_ops);
      return NULL;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    term[i] = p;
    len[i] = (size_t)((comma && i + 1 < n_ops ? comma : end) - p);
    p += len[i] + 1;
    span[i] = graph_node(q->E->g, x[i])->shape.rank - count_letters(term[i], len[i]);
    if (span[i] < 0) span[i] = 0; /* bind_sizes reports the rank */
    widest = span[i] > widest ? span[i] : widest;
  }
  char fill[IR_MAX_RANK + 1] = {0};
  for (int c = 'A', k = 0; k < widest && c <= 'z'; c++)
    if (isalpha(c) && !strchr(eq, c)) fill[k++] = (char)c;
  const char *out = eq, *lhs = "";
  for (int i = 0; i < n_ops; i++)
    lhs = arena_printf(a, "%s%s%s", lhs, i ? "," : "",
                       replace_dots(a, term[i], len[i], fill + widest - span[i]));
  if (arrow)
    return arena_printf(a, "%s->%s", lhs, replace_dots(a, arrow + 2, strlen(arrow + 2), fill));
  Einsum plain = *q; /* the implicit output of the letters the user wrote */
  if (!parse_equation(&plain, replace_dots(a, eq, strlen(eq), ""), n_ops)) return NULL;
  out = arena_printf(a, "%s->%s%.*s", lhs, fill, plain.out.n, plain.out.l);
  return out;
}

/* two operands: [batch, M, K] @ [batch, K, N] */
static NodeId contract(Einsum *q, NodeId a, NodeId b) {
  Term *ta = &q->in[0], *tb = &q->in[1];
  a = sum_out(q, a, ta, tb, &q->out);
  b = sum_out(q, b, tb, ta, &q->out);
  Term batch = letters(ta, &q->out, tb, true); /* out order, in both */
  Term m = letters(ta, &q->out, tb, false);    /* out order, a only */
  Term n = letters(tb, &q->out, ta, false);    /* out order, b only */
  Term k = letters(tb, ta, &q->out, false);    /* a order, in b, not out */
  Term none = {.n = 0}, ta_order = concat3(&batch, &m, &k), tb_order = concat3(&batch, &k, &none);
  tb_order = concat3(&tb_order, &n, &none);
  a = permute(q, a, ta, &ta_order);
  b = permute(q, b, tb, &tb_order);
  int nb = batch.n ? 1 : 0;
  int ga[3] = {batch.n, m.n, k.n}, gb[3] = {batch.n, k.n, n.n};
  a = merge(q, a, ta, ga + 1 - nb, 2 + nb);
  b = merge(q, b, tb, gb + 1 - nb, 2 + nb);
  NodeId c = build_matmul(&q->b, a, b, false, false);
  Term tc = concat3(&batch, &m, &n);
  int gc[IR_MAX_RANK];
  for (int i = 0; i < tc.n; i++)
    gc[i] = 1;
  c = merge(q, c, &tc, gc, tc.n);
  return permute(q, c, &tc, &q->out);
}

Value elab_einsum_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const params[] = {"equation", "a", "b"};
  const Expr *arg[3];
  if (!elab_match_args(E, call, params, 3, arg)) return (Value){0};
  if (!arg[0] || arg[0]->kind != EX_STRING || !arg[1]) {
    diag_error(E->d, call->loc,
               "einsum: expected einsum(\"equation\", a[, b]), like "
               "einsum(\"bij,bjk->bik\", a, b)");
    return (Value){0};
  }
  Einsum q = {.E = E, .loc = elab_loc(E, arg[0]->loc)};
  q.b = elab_builder(E, call->loc);
  int n_ops = arg[2] ? 2 : 1;
  NodeId x[2] = {IR_NONE, IR_NONE};
  for (int i = 0; i < n_ops; i++) {
    Value v = elab_expr(E, s, arg[1 + i]);
    if (v.kind == VAL_NONE) return v;
    if (v.kind != VAL_TENSOR) {
      diag_error(E->d, arg[1 + i]->loc, "einsum expects tensors, got %s", elab_value_str(E, v));
      return (Value){0};
    }
    x[i] = v.node;
  }
  const char *eq = expand_ellipses(&q, arg[0]->name, x, n_ops);
  if (!eq || !parse_equation(&q, eq, n_ops)) return (Value){0};
  for (int i = 0; i < n_ops; i++)
    if (!bind_sizes(&q, i, x[i])) return (Value){0};
  if (n_ops == 2) return elab_tensor_value(contract(&q, x[0], x[1]));
  NodeId y = sum_out(&q, x[0], &q.in[0], &q.out, NULL);
  return elab_tensor_value(permute(&q, y, &q.in[0], &q.out));
}
