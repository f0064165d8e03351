/* codegen/lower_prune.c — the C of PRUNE_MASK (issue 20, ir/prune_mask.c): the mask of a
 * pruned param on a mask-update step of the generated train step.
 *
 * Magnitude: the threshold is the k-th smallest |w| (k = round(s * size), halves to even by
 * nearbyint, as prune_count), found exactly in O(size) without a sort by a radix select on
 * the bits of |w| (a non-negative float orders like its bits as an unsigned integer): one
 * histogram of 256 buckets per byte, most significant first, narrows the candidates to one
 * key. Weights below it are pruned, and of those equal to it the first `rank` in index order,
 * so ties go to the lower index exactly as ir/prune.c's sort. N:M: per group of m, an element
 * is kept when fewer than n others beat it (larger, or equal and earlier), as ir/prune.c.
 * A sparsity s < 0 (not an update step) copies the old mask.
 */
#include "lower_hooks.h"

/* emits the magnitude selection over `size` elements of w into out (see the head comment) */
static void emit_magnitude(CgFunc *f, const Node *n, NodeId id, int64_t size) {
  CgEmitter *e = f->e;
  bool wide = graph_node(f->g, n->in[0])->dtype == DT_F64;
  const char *u = wide ? "uint64_t" : "uint32_t", *t = dtype_c_name(n->dtype);
  const char *abs_bits = wide ? "0x7fffffffffffffffULL" : "0x7fffffffu";
  const char *w = cg_at(f, n->in[0], "pm_i"), *out = f->val[id].expr;
  cg_line(e, "const double pm_kd = nearbyint(pm_s * %lld.0);", (long long)size);
  cg_line(e, "const int64_t pm_k = pm_kd < 0 ? 0 : pm_kd > %lld ? %lld : (int64_t)pm_kd;",
          (long long)size, (long long)size);
  cg_line(e, "int64_t pm_rank = pm_k; /* then: how many weights equal to the key to prune */");
  cg_line(e, "%s pm_key = 0, pm_known = 0; /* the bits of the rank-th smallest |w| found so far */",
          u);
  cg_open(e, "for (int pm_shift = %d; pm_rank > 0 && pm_shift >= 0; pm_shift -= 8)",
          wide ? 56 : 24);
  cg_line(e, "int64_t pm_hist[256] = {0};");
  cg_open(e, "for (int64_t pm_i = 0; pm_i < %lld; pm_i++)", (long long)size);
  cg_line(e, "%s pm_bits;", u);
  cg_line(e, "const %s pm_v = %s;", t, w);
  cg_line(e, "memcpy(&pm_bits, &pm_v, sizeof pm_bits);");
  cg_line(e, "pm_bits &= %s;", abs_bits);
  cg_line(e, "if ((pm_bits & pm_known) == pm_key) pm_hist[(pm_bits >> pm_shift) & 255]++;");
  cg_close(e);
  cg_line(e, "int pm_b = 0;");
  cg_line(e, "while (pm_rank > pm_hist[pm_b]) pm_rank -= pm_hist[pm_b++];");
  cg_line(e, "pm_key |= (%s)pm_b << pm_shift;", u);
  cg_line(e, "pm_known |= (%s)255 << pm_shift;", u);
  cg_close(e);
  cg_open(e, "for (int64_t pm_i = 0; pm_i < %lld; pm_i++)", (long long)size);
  cg_line(e, "%s pm_bits;", u);
  cg_line(e, "const %s pm_v = %s;", t, w);
  cg_line(e, "memcpy(&pm_bits, &pm_v, sizeof pm_bits);");
  cg_line(e, "pm_bits &= %s;", abs_bits);
  cg_line(e,
          "int pm_keep = pm_k == 0 || pm_bits > pm_key || (pm_bits == pm_key && pm_rank-- <= 0);");
  cg_line(e, "%s[pm_i] = pm_keep ? (%s)1 : (%s)0;", out, t, t);
  cg_close(e);
}

/* the index of element j of group g of channel c in the [rows, cols] view */
static const char *group_at(CgFunc *f, const Node *n, int64_t cols, const char *j) {
  if (n->attr.prune.columns)
    return arena_printf(f->arena, "(pm_g + %s) * %lld + pm_c", j, (long long)cols);
  return arena_printf(f->arena, "pm_c * %lld + pm_g + %s", (long long)cols, j);
}

static void emit_n_of_m(CgFunc *f, const Node *n, NodeId id, int64_t rows, int64_t cols) {
  CgEmitter *e = f->e;
  bool columns = n->attr.prune.columns;
  int64_t channels = columns ? cols : rows, length = columns ? rows : cols;
  int m = n->attr.prune.m;
  const char *t = dtype_c_name(n->dtype), *ie = group_at(f, n, cols, "pm_a");
  const char *io = group_at(f, n, cols, "pm_o"), *out = f->val[id].expr;
  cg_open(e, "for (int64_t pm_c = 0; pm_c < %lld; pm_c++)", (long long)channels);
  cg_open(e, "for (int64_t pm_g = 0; pm_g < %lld; pm_g += %d)", (long long)length, m);
  cg_open(e, "for (int pm_a = 0; pm_a < %d; pm_a++)", m);
  cg_line(e, "const %s pm_x = %s;", t, cg_math_call(f, n->dtype, "fabs", cg_at(f, n->in[0], ie)));
  cg_line(e, "int pm_beaten = 0;");
  cg_open(e, "for (int pm_o = 0; pm_o < %d; pm_o++)", m);
  cg_line(e, "const %s pm_y = %s;", t, cg_math_call(f, n->dtype, "fabs", cg_at(f, n->in[0], io)));
  cg_line(e, "pm_beaten += pm_y > pm_x || (pm_y == pm_x && pm_o < pm_a);");
  cg_close(e);
  cg_line(e, "%s[%s] = pm_beaten < %d ? (%s)1 : (%s)0;", out, ie, n->attr.prune.n, t, t);
  cg_close(e);
  cg_close(e);
  cg_close(e);
}

bool lower_prune_mask(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id), *w = graph_node(f->g, n->in[0]);
  int64_t size = shape_numel(&w->shape);
  int64_t rows, cols;
  prune_mask_view(n, &w->shape, &rows, &cols);
  CgEmitter *e = f->e;
  cg_open(e, "%s", "/* prune_mask (ir/prune_mask.c) */");
  cg_line(e, "const double pm_s = %s;", cg_at(f, n->in[2], "0"));
  cg_open(e, "if (pm_s < 0)");
  cg_open(e, "for (int64_t pm_i = 0; pm_i < %lld; pm_i++)", (long long)size);
  cg_line(e, "%s[pm_i] = %s;", f->val[id].expr, cg_at(f, n->in[1], "pm_i"));
  cg_close(e);
  cg_close(e);
  cg_open(e, "else");
  if (n->attr.prune.m > 0)
    emit_n_of_m(f, n, id, rows, cols);
  else
    emit_magnitude(f, n, id, size);
  cg_close(e);
  cg_close(e);
  return true;
}
