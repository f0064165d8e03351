/* ir/attr.c — node attributes by kind: write to text, read from text, compare, hash.
 *
 * One section per IrAttrKind holds the four things a kind must say about its NodeAttr fields,
 * and one table (kinds[], one row per kind, checked by _Static_assert) holds the keys the kind
 * reads and its functions. ir/print.c, ir/parse.c and passes/cse.c reach the attributes only
 * through here, so a new kind is one section and one row, and a new op of an existing kind is
 * only its attr column in ir/ops.def. The text forms are documented in docs/ir.md.
 */
#include "attr.h"

#include <stdio.h>
#include <string.h>

#include "ir_internal.h"

/* reading: the request, the text and the NodeAttr being filled */
typedef struct Ctx {
  const IrAttrRead *r;
  const IrAttrText *t;
  const char *op; /* the op's text name, for diagnostics */
} Ctx;

#define FAIL(c, loc, ...) (IR_ERROR((c)->r->d, (loc), __VA_ARGS__), false)

/* ---- writing helpers ---------------------------------------------------------------------- */

static IrAttrEntry *put(IrAttrText *t, const char *key, IrAttrValueKind kind) {
  IR_ASSERT(t->n < IR_ATTR_MAX_ENTRIES);
  IrAttrEntry *e = &t->entry[t->n++];
  memset(e, 0, sizeof *e);
  e->key = key;
  e->value.kind = kind;
  return e;
}

static void put_flag(IrAttrText *t, const char *key) {
  put(t, key, IR_ATTR_FLAG);
}

static void put_int(IrAttrText *t, const char *key, int64_t v) {
  IrAttrValue *x = &put(t, key, IR_ATTR_NUMBER)->value;
  x->is_int = true;
  x->i = v;
}

static void put_number(IrAttrText *t, const char *key, double v) {
  put(t, key, IR_ATTR_NUMBER)->value.d = v;
}

static void put_word(IrAttrText *t, const char *key, const char *w) {
  put(t, key, IR_ATTR_WORD)->value.word = w;
}

/* an integer list from n values of any integer type, through the pool */
static int64_t *put_list(IrAttrText *t, const char *key, int n) {
  IR_ASSERT(t->n_pool + n <= IR_ATTR_POOL);
  IrAttrValue *x = &put(t, key, IR_ATTR_LIST)->value;
  int64_t *v = t->pool + t->n_pool;
  t->n_pool += n;
  x->is_int = true;
  x->n = n;
  x->ints = v;
  return v;
}

static void put_operand_int(IrAttrText *t, int64_t v) {
  t->has_operand = true;
  t->operand.kind = IR_ATTR_NUMBER;
  t->operand.is_int = true;
  t->operand.i = v;
}

/* ---- reading helpers ---------------------------------------------------------------------- */

static const IrAttrValue *find(const Ctx *c, const char *key) {
  for (int i = 0; i < c->t->n; i++)
    if (strcmp(c->t->entry[i].key, key) == 0) return &c->t->entry[i].value;
  return NULL;
}

static bool has_flag(const Ctx *c, const char *key) {
  return find(c, key) != NULL;
}

/* key=integer in [lo, hi] into *out; absent: *out unchanged, and an error if required */
static bool get_int(const Ctx *c, const char *key, int64_t lo, int64_t hi, int64_t *out) {
  const IrAttrValue *v = find(c, key);
  if (!v) return true;
  if (v->kind != IR_ATTR_NUMBER || !v->is_int)
    return FAIL(c, v->loc, "expected an integer after '%s='", key);
  if (v->i < lo || v->i > hi) return FAIL(c, v->loc, "'%s': %s out of range", c->op, key);
  *out = v->i;
  return true;
}

static bool get_number(const Ctx *c, const char *key, double *out) {
  const IrAttrValue *v = find(c, key);
  if (!v) return true;
  if (v->kind != IR_ATTR_NUMBER) return FAIL(c, v->loc, "expected a number after '%s='", key);
  *out = v->d;
  return true;
}

/* key=[integers in [lo, hi]] into out[0, *n), at most max of them; absent: *n = -1 */
static bool get_list(const Ctx *c, const char *key, int max, int64_t lo, int64_t hi, int64_t *out,
                     int *n) {
  const IrAttrValue *v = find(c, key);
  *n = -1;
  if (!v) return true;
  if (v->kind != IR_ATTR_LIST || !v->is_int)
    return FAIL(c, v->loc, "expected a list of integers after '%s='", key);
  if (v->n > max) return FAIL(c, v->loc, "list longer than %d", max);
  for (int64_t i = 0; i < v->n; i++) {
    if (v->ints[i] < lo || v->ints[i] > hi)
      return FAIL(c, v->loc, "'%s': %s out of range", c->op, key);
    out[i] = v->ints[i];
  }
  *n = (int)v->n;
  return true;
}

/* the operand as an integer in [0, INT32_MAX] */
static bool get_operand_index(const Ctx *c, int32_t *out) {
  const IrAttrValue *v = &c->t->operand;
  SrcLoc at = c->t->has_operand ? v->loc : c->r->at;
  if (!c->t->has_operand || v->kind != IR_ATTR_NUMBER || !v->is_int)
    return FAIL(c, at, "expected a declaration index (an integer)");
  if (v->i < 0 || v->i > INT32_MAX) return FAIL(c, at, "index out of range");
  *out = (int32_t)v->i;
  return true;
}

/* ---- ATTR_NONE ---------------------------------------------------------------------------- */

static void write_none(const Node *n, IrAttrText *t) {
  (void)n, (void)t;
}
static bool read_none(const Ctx *c, NodeAttr *out) {
  return (void)c, (void)out, true;
}
static bool equal_none(const Node *a, const Node *b) {
  return (void)a, (void)b, true;
}
static uint64_t hash_none(const Node *n) {
  return (void)n, 0;
}

/* ---- ATTR_SOURCE: the declaration index, written as the operand --------------------------- */

static void write_source(const Node *n, IrAttrText *t) {
  put_operand_int(t, n->attr.source.index);
}
static bool read_source(const Ctx *c, NodeAttr *out) {
  return get_operand_index(c, &out->source.index);
}
static bool equal_source(const Node *a, const Node *b) {
  return a->attr.source.index == b->attr.source.index;
}
static uint64_t hash_source(const Node *n) {
  return (uint32_t)n->attr.source.index;
}

/* ---- ATTR_SCAN_ARG: the scan input index as the operand; dtype and shape from the type ---- */

static void write_scan_arg(const Node *n, IrAttrText *t) {
  put_operand_int(t, n->attr.scan_arg.index);
}
static bool read_scan_arg(const Ctx *c, NodeAttr *out) {
  out->scan_arg.dtype = c->r->dtype;
  out->scan_arg.shape = *c->r->shape;
  return get_operand_index(c, &out->scan_arg.index);
}
static bool equal_scan_arg(const Node *a, const Node *b) {
  return a->attr.scan_arg.index == b->attr.scan_arg.index;
}
static uint64_t hash_scan_arg(const Node *n) {
  return (uint32_t)n->attr.scan_arg.index;
}

/* ---- ATTR_CONST: the value, or every value in C order, as the operand --------------------- */

static void write_const(const Node *n, IrAttrText *t) {
  t->has_operand = true;
  if (!n->attr.constant.data) {
    t->operand.kind = IR_ATTR_NUMBER;
    t->operand.d = n->attr.constant.value;
    return;
  }
  t->operand.kind = IR_ATTR_LIST;
  t->operand.n = shape_numel(&n->shape);
  t->operand.nums = n->attr.constant.data;
}

static bool read_const(const Ctx *c, NodeAttr *out) {
  const IrAttrValue *v = &c->t->operand;
  out->constant.dtype = c->r->dtype;
  out->constant.shape = *c->r->shape;
  if (!c->t->has_operand || (v->kind != IR_ATTR_NUMBER && v->kind != IR_ATTR_LIST))
    return FAIL(c, c->t->has_operand ? v->loc : c->r->at,
                "expected a constant value (a number or a list of numbers)");
  if (v->kind == IR_ATTR_NUMBER) {
    out->constant.value = v->d;
    return true;
  }
  int64_t numel = shape_numel(c->r->shape);
  if (v->n != numel) {
    char s[200];
    return FAIL(c, c->r->at, "constant has %lld elements but its type %s%s holds %lld",
                (long long)v->n, dtype_name(c->r->dtype), shape_str(c->r->shape, s, sizeof s),
                (long long)numel);
  }
  double *data = arena_alloc(c->r->arena, (size_t)(v->n ? v->n : 1) * sizeof *data);
  if (v->n) memcpy(data, v->nums, (size_t)v->n * sizeof *data);
  out->constant.data = data;
  return true;
}

/* element i of a constant (every element is value when data is NULL) */
static double const_at(const Node *n, int64_t i) {
  return n->attr.constant.data ? n->attr.constant.data[i] : n->attr.constant.value;
}

static bool equal_const(const Node *a, const Node *b) {
  bool uniform = !a->attr.constant.data && !b->attr.constant.data;
  int64_t count = uniform ? 1 : shape_numel(&a->shape);
  for (int64_t i = 0; i < count; i++) {
    double x = const_at(a, i), y = const_at(b, i);
    if (memcmp(&x, &y, sizeof x) != 0) return false; /* bitwise: -0.0 != 0.0, NaN == NaN */
  }
  return true;
}

/* the first element's bits: equal constants hash equal whether stored uniform or as data */
static uint64_t hash_const(const Node *n) {
  double x = shape_numel(&n->shape) > 0 ? const_at(n, 0) : n->attr.constant.value;
  uint64_t h;
  memcpy(&h, &x, sizeof h);
  return h;
}

/* ---- ATTR_SHAPE, ATTR_CAST, ATTR_ROWS: stated by the result type, never written ------------ */

static bool read_shape(const Ctx *c, NodeAttr *out) {
  out->reshape.shape = *c->r->shape;
  return true;
}
static bool equal_shape(const Node *a, const Node *b) {
  return shape_equal(&a->attr.reshape.shape, &b->attr.reshape.shape);
}

static bool read_cast(const Ctx *c, NodeAttr *out) {
  out->cast.dtype = c->r->dtype;
  return true;
}
static bool equal_cast(const Node *a, const Node *b) {
  return a->attr.cast.dtype == b->attr.cast.dtype;
}
static uint64_t hash_cast(const Node *n) {
  return (uint64_t)n->attr.cast.dtype;
}

static bool read_rows(const Ctx *c, NodeAttr *out) {
  if (c->r->shape->rank < 1) return FAIL(c, c->r->at, "'%s' has a result of rank >= 1", c->op);
  out->gather.rows = c->r->shape->dim[0];
  return true;
}
static bool equal_rows(const Node *a, const Node *b) {
  return a->attr.gather.rows == b->attr.gather.rows;
}
static uint64_t hash_rows(const Node *n) {
  return (uint64_t)n->attr.gather.rows;
}

/* ---- ATTR_AXES: {axes=[...], keepdims=true|false} ------------------------------------------ */

static void write_axes(const Node *n, IrAttrText *t) {
  int count = 0;
  for (int i = 0; i < 32; i++)
    count += (n->attr.reduce.axes >> i) & 1u;
  int64_t *axes = put_list(t, "axes", count);
  for (int i = 0, k = 0; i < 32; i++)
    if (n->attr.reduce.axes & (1u << i)) axes[k++] = i;
  put_word(t, "keepdims", n->attr.reduce.keepdims ? "true" : "false");
}

static bool read_axes(const Ctx *c, NodeAttr *out) {
  int64_t axes[IR_MAX_RANK];
  int n;
  if (!get_list(c, "axes", IR_MAX_RANK, 0, IR_MAX_RANK - 1, axes, &n)) return false;
  if (n < 0) return FAIL(c, c->r->at, "'%s' needs {axes=[...]}", c->op);
  for (int i = 0; i < n; i++)
    out->reduce.axes |= 1u << axes[i];
  const IrAttrValue *k = find(c, "keepdims");
  if (!k) return true;
  bool yes = k->kind == IR_ATTR_WORD && strcmp(k->word, "true") == 0;
  if (!yes && !(k->kind == IR_ATTR_WORD && strcmp(k->word, "false") == 0))
    return FAIL(c, k->loc, "expected true or false after 'keepdims='");
  out->reduce.keepdims = yes;
  return true;
}

static bool equal_axes(const Node *a, const Node *b) {
  return a->attr.reduce.axes == b->attr.reduce.axes &&
         a->attr.reduce.keepdims == b->attr.reduce.keepdims;
}
static uint64_t hash_axes(const Node *n) {
  return n->attr.reduce.axes * 2u + n->attr.reduce.keepdims;
}

/* ---- ATTR_AXIS: {axis=N} -------------------------------------------------------------------- */

static void write_axis(const Node *n, IrAttrText *t) {
  put_int(t, "axis", n->attr.softmax.axis);
}
static bool read_axis(const Ctx *c, NodeAttr *out) {
  int64_t axis = -1;
  if (!get_int(c, "axis", 0, IR_MAX_RANK - 1, &axis)) return false;
  if (axis < 0) return FAIL(c, c->r->at, "'%s' needs {axis=N}", c->op);
  out->softmax.axis = (int32_t)axis;
  return true;
}
static bool equal_axis(const Node *a, const Node *b) {
  return a->attr.softmax.axis == b->attr.softmax.axis;
}
static uint64_t hash_axis(const Node *n) {
  return (uint32_t)n->attr.softmax.axis;
}

/* ---- ATTR_PERM: {perm=[...]}, one entry per axis of the result ------------------------------ */

static void write_perm(const Node *n, IrAttrText *t) {
  int64_t *perm = put_list(t, "perm", n->shape.rank);
  for (int i = 0; i < n->shape.rank; i++)
    perm[i] = n->attr.transpose.perm[i];
}
static bool read_perm(const Ctx *c, NodeAttr *out) {
  int64_t perm[IR_MAX_RANK];
  int n;
  if (!get_list(c, "perm", IR_MAX_RANK, INT8_MIN, INT8_MAX, perm, &n)) return false;
  if (n < 0) return FAIL(c, c->r->at, "'%s' needs {perm=[...]}", c->op);
  if (n != c->r->shape->rank)
    return FAIL(c, c->r->at, "perm has %d entries for rank %d", n, (int)c->r->shape->rank);
  for (int i = 0; i < IR_MAX_RANK; i++)
    out->transpose.perm[i] = (int8_t)(i < n ? perm[i] : -1);
  return true;
}
static bool equal_perm(const Node *a, const Node *b) {
  return memcmp(a->attr.transpose.perm, b->attr.transpose.perm, (size_t)a->shape.rank) == 0;
}
static uint64_t hash_perm(const Node *n) {
  uint64_t h = 0;
  for (int i = 0; i < n->shape.rank; i++)
    h = h * 8 + (uint8_t)n->attr.transpose.perm[i];
  return h;
}

/* from=model|tuned (IrSchedFrom) into *from; absent: IR_SCHED_UNSET */
static bool read_from(const Ctx *c, IrSchedFrom *from) {
  const IrAttrValue *v = find(c, "from");
  *from = IR_SCHED_UNSET;
  if (v && !(v->kind == IR_ATTR_WORD && ir_sched_from_parse(v->word, from)))
    return FAIL(c, v->loc, "expected model or tuned after 'from='");
  return true;
}

/* the schedule of a matmul (passes/schedule.c): gemm=packed|direct, blocks=[kc, mc, nc] and
 * from=model|tuned, all three or none */
static bool read_sched(const Ctx *c, IrSched *s) {
  memset(s, 0, sizeof *s);
  IrSchedFrom from;
  if (!read_from(c, &from)) return false;
  const IrAttrValue *g = find(c, "gemm");
  int64_t b[3];
  int n;
  if (!get_list(c, "blocks", 3, 1, INT32_MAX, b, &n)) return false;
  if (!g && n < 0 && from == IR_SCHED_UNSET) return true;
  IrSchedGemm gemm;
  if (!g || g->kind != IR_ATTR_WORD || !ir_sched_gemm_parse(g->word, &gemm) || n != 3 ||
      from == IR_SCHED_UNSET)
    return FAIL(c, c->r->at,
                "'%s': a schedule needs gemm=packed|direct, blocks=[kc, mc, nc] and "
                "from=model|tuned",
                c->op);
  *s = (IrSched){.gemm = (int8_t)gemm,
                 .from = (int8_t)from,
                 .kc = (int32_t)b[0],
                 .mc = (int32_t)b[1],
                 .nc = (int32_t)b[2]};
  return true;
}

/* ---- pruned=[before, folded]: the decision of passes/prune_channels.c on a MATMUL or CONV2D,
 * written only when it removed channels ------------------------------------------------------ */

static void write_pruned(const int32_t *pruned, IrAttrText *t) {
  if (!pruned[0]) return;
  int64_t *v = put_list(t, "pruned", 2);
  v[0] = pruned[0];
  v[1] = pruned[1];
}
static bool read_pruned(const Ctx *c, int32_t *pruned) {
  int64_t v[2];
  int n;
  if (!get_list(c, "pruned", 2, 0, INT32_MAX, v, &n)) return false;
  if (n >= 0 && (n != 2 || v[0] < 1 || v[1] > v[0]))
    return FAIL(c, c->r->at, "'%s' needs pruned=[channels before, folded] (folded <= before)",
                c->op);
  pruned[0] = n == 2 ? (int32_t)v[0] : 0;
  pruned[1] = n == 2 ? (int32_t)v[1] : 0;
  return true;
}

/* ---- ATTR_MATMUL: {trans_a, trans_b, sparse_b, pruned=[..]}, each only when set; the
 * schedule ------------------------------------------------------------------------------- */

static void write_matmul(const Node *n, IrAttrText *t) {
  if (n->attr.matmul.trans_a) put_flag(t, "trans_a");
  if (n->attr.matmul.trans_b) put_flag(t, "trans_b");
  static const char *const sparse[] = {NULL, "sparse_b", "sparse_unrolled", "sparse_panel"};
  if (n->attr.matmul.sparse_b) put_flag(t, sparse[n->attr.matmul.sparse_b]);
  write_pruned(n->attr.matmul.pruned, t);
  const IrSched *s = &n->attr.matmul.sched;
  if (s->from == IR_SCHED_UNSET) return;
  put_word(t, "gemm", ir_sched_gemm_name((IrSchedGemm)s->gemm));
  int64_t *b = put_list(t, "blocks", 3);
  b[0] = s->kc, b[1] = s->mc, b[2] = s->nc;
  put_word(t, "from", ir_sched_from_name((IrSchedFrom)s->from));
}
static bool read_matmul(const Ctx *c, NodeAttr *out) {
  out->matmul.trans_a = has_flag(c, "trans_a");
  out->matmul.trans_b = has_flag(c, "trans_b");
  out->matmul.sparse_b = has_flag(c, "sparse_b")          ? IR_SPARSE_DOT
                         : has_flag(c, "sparse_unrolled") ? IR_SPARSE_UNROLLED
                         : has_flag(c, "sparse_panel")    ? IR_SPARSE_PANEL
                                                          : IR_SPARSE_NONE;
  return read_pruned(c, out->matmul.pruned) && read_sched(c, &out->matmul.sched);
}
static bool equal_matmul(const Node *a, const Node *b) {
  return a->attr.matmul.trans_a == b->attr.matmul.trans_a &&
         a->attr.matmul.trans_b == b->attr.matmul.trans_b &&
         a->attr.matmul.sparse_b == b->attr.matmul.sparse_b &&
         memcmp(a->attr.matmul.pruned, b->attr.matmul.pruned, sizeof a->attr.matmul.pruned) == 0;
}
static uint64_t hash_matmul(const Node *n) {
  return n->attr.matmul.trans_a * 4u + n->attr.matmul.trans_b * 2u + n->attr.matmul.sparse_b;
}

/* ---- ATTR_ONE_HOT: {depth=N}; the dtype is the result's ------------------------------------- */

static void write_one_hot(const Node *n, IrAttrText *t) {
  put_int(t, "depth", n->attr.one_hot.depth);
}
static bool read_one_hot(const Ctx *c, NodeAttr *out) {
  if (!find(c, "depth")) return FAIL(c, c->r->at, "'%s' needs {depth=N}", c->op);
  out->one_hot.dtype = c->r->dtype;
  return get_int(c, "depth", INT64_MIN, INT64_MAX, &out->one_hot.depth);
}
static bool equal_one_hot(const Node *a, const Node *b) {
  return a->attr.one_hot.depth == b->attr.one_hot.depth &&
         a->attr.one_hot.dtype == b->attr.one_hot.dtype;
}
static uint64_t hash_one_hot(const Node *n) {
  return (uint64_t)n->attr.one_hot.depth;
}

/* ---- ATTR_SCAN: {body=N, length=N, carries=N, seqs=N, axis=N[, reverse]} --------------------- */

static void write_scan(const Node *n, IrAttrText *t) {
  put_int(t, "body", n->attr.scan.body);
  put_int(t, "length", n->attr.scan.length);
  put_int(t, "carries", n->attr.scan.n_carry);
  put_int(t, "seqs", n->attr.scan.n_seq);
  put_int(t, "axis", n->attr.scan.axis);
  if (n->attr.scan.reverse) put_flag(t, "reverse");
}

static bool read_scan(const Ctx *c, NodeAttr *out) {
  if (!find(c, "body") || !find(c, "length") || !find(c, "axis"))
    return FAIL(c, c->r->at, "'%s' needs {body=N, length=N, axis=N}", c->op);
  int64_t body = 0, carries = 0, seqs = 0, axis = 0;
  if (!get_int(c, "body", 0, INT32_MAX, &body) ||
      !get_int(c, "length", INT64_MIN, INT64_MAX, &out->scan.length) ||
      !get_int(c, "carries", 0, IR_MAX_INPUTS, &carries) ||
      !get_int(c, "seqs", 0, IR_MAX_INPUTS, &seqs) ||
      !get_int(c, "axis", 0, IR_MAX_RANK - 1, &axis))
    return false;
  out->scan.body = (int32_t)body;
  out->scan.n_carry = (int16_t)carries;
  out->scan.n_seq = (int16_t)seqs;
  out->scan.axis = (int8_t)axis;
  out->scan.reverse = has_flag(c, "reverse");
  return true;
}

/* a scan is its body: equal only if it is the same body */
static bool equal_scan(const Node *a, const Node *b) {
  const NodeAttr *x = &a->attr, *y = &b->attr;
  return x->scan.body == y->scan.body && x->scan.length == y->scan.length &&
         x->scan.n_carry == y->scan.n_carry && x->scan.n_seq == y->scan.n_seq &&
         x->scan.axis == y->scan.axis && x->scan.reverse == y->scan.reverse;
}
static uint64_t hash_scan(const Node *n) {
  return (uint64_t)n->attr.scan.body * 31u + (uint64_t)n->attr.scan.length;
}

/* ---- ATTR_UNPACK: {offset=N} (offset_n=A with a run-time batch); the shape is the result's - */

static void write_unpack(const Node *n, IrAttrText *t) {
  put_int(t, "offset", n->attr.unpack.offset);
  if (n->attr.unpack.offset_n) put_int(t, "offset_n", n->attr.unpack.offset_n);
}
static bool read_unpack(const Ctx *c, NodeAttr *out) {
  if (!find(c, "offset")) return FAIL(c, c->r->at, "'%s' needs {offset=N}", c->op);
  out->unpack.shape = *c->r->shape;
  out->unpack.offset_n = 0;
  return get_int(c, "offset", INT64_MIN, INT64_MAX, &out->unpack.offset) &&
         get_int(c, "offset_n", 0, INT64_MAX, &out->unpack.offset_n);
}
static bool equal_unpack(const Node *a, const Node *b) {
  return a->attr.unpack.offset == b->attr.unpack.offset &&
         a->attr.unpack.offset_n == b->attr.unpack.offset_n;
}
static uint64_t hash_unpack(const Node *n) {
  return (uint64_t)n->attr.unpack.offset;
}

/* ---- ATTR_SLICE: {begin=[...], step=[...]}; dim is the result's (SLICE) or the large
 * tensor's, which is UNSLICE's result -----------------------------------------------------------
 */

static void write_slice(const Node *n, IrAttrText *t) {
  int64_t *begin = put_list(t, "begin", n->shape.rank);
  for (int i = 0; i < n->shape.rank; i++)
    begin[i] = n->attr.slice.begin[i];
  int64_t *step = put_list(t, "step", n->shape.rank);
  for (int i = 0; i < n->shape.rank; i++)
    step[i] = n->attr.slice.step[i];
}

static bool read_slice(const Ctx *c, NodeAttr *out) {
  const Shape *s = c->r->shape;
  int64_t begin[IR_MAX_RANK], step[IR_MAX_RANK];
  int nb, ns;
  if (!get_list(c, "begin", IR_MAX_RANK, 0, INT32_MAX, begin, &nb) ||
      !get_list(c, "step", IR_MAX_RANK, 1, INT32_MAX, step, &ns))
    return false;
  if (nb != s->rank || ns != s->rank)
    return FAIL(c, c->r->at, "'%s' needs {begin=[...], step=[...]} with %d entries each", c->op,
                (int)s->rank);
  for (int i = 0; i < s->rank; i++) {
    if (s->dim[i] > INT32_MAX) return FAIL(c, c->r->at, "'%s': dim out of range", c->op);
    out->slice.begin[i] = (int32_t)begin[i];
    out->slice.step[i] = (int32_t)step[i];
    out->slice.dim[i] = (int32_t)s->dim[i];
  }
  return true;
}

/* the whole window: every builder zeroes the axes past the rank */
static bool equal_slice(const Node *a, const Node *b) {
  return memcmp(&a->attr.slice, &b->attr.slice, sizeof a->attr.slice) == 0;
}
static uint64_t hash_slice(const Node *n) {
  uint64_t h = 0;
  for (int i = 0; i < n->shape.rank; i++)
    h = h * 31u + (uint32_t)n->attr.slice.begin[i] * 7u + (uint32_t)n->attr.slice.step[i];
  return h;
}

/* ---- ATTR_RANDOM: {stream=N, dist=N}; ATTR_DROPOUT: {stream=N, p=X} ------------------------- */

static void write_random(const Node *n, IrAttrText *t) {
  put_int(t, "stream", n->attr.random.stream);
  put_int(t, "dist", n->attr.random.dist);
}
static void write_dropout(const Node *n, IrAttrText *t) {
  put_int(t, "stream", n->attr.random.stream);
  put_number(t, "p", n->attr.random.p);
}

/* both kinds: the stream, the dist or p the kind writes (the other stays 0), dtype and shape
 * from the result */
static bool read_random(const Ctx *c, NodeAttr *out) {
  int64_t stream = 0, dist = 0;
  if (!get_int(c, "stream", 0, UINT32_MAX, &stream) || !get_int(c, "dist", 0, 1, &dist) ||
      !get_number(c, "p", &out->random.p))
    return false;
  out->random.stream = (uint32_t)stream;
  out->random.dist = (int32_t)dist;
  out->random.dtype = c->r->dtype;
  out->random.shape = *c->r->shape;
  return true;
}

/* dtype and shape are the node's, compared by CSE itself */
static bool equal_random(const Node *a, const Node *b) {
  return a->attr.random.stream == b->attr.random.stream &&
         a->attr.random.dist == b->attr.random.dist && a->attr.random.p == b->attr.random.p;
}
static uint64_t hash_random(const Node *n) {
  return n->attr.random.stream;
}

/* ---- ATTR_CONV: {stride=[h, w], dilation=[h, w], pad=[t, l, b, r], out_pad=[h, w],
 * kernel=[h, w], groups=[g][, nchwc][, algo=NAME][, pruned=[before, folded]]} ------------------ */

static const char *const conv_keys[6] = {"stride",  "dilation", "pad",
                                         "out_pad", "kernel",   "groups"};
static const int conv_len[6] = {2, 2, 4, 2, 2, 1};

/* the six lists of the conv attribute, in conv_keys order */
static const int32_t *conv_field(const struct IrConvAttr *a, int k) {
  const int32_t *f[6] = {a->stride, a->dilation, a->pad, a->out_pad, a->kernel, &a->groups};
  return f[k];
}

static void write_conv(const Node *n, IrAttrText *t) {
  const struct IrConvAttr *a = &n->attr.conv;
  for (int k = 0; k < 6; k++) {
    int64_t *v = put_list(t, conv_keys[k], conv_len[k]);
    for (int i = 0; i < conv_len[k]; i++)
      v[i] = conv_field(a, k)[i];
  }
  if (a->layout == IR_CONV_NCHWC) put_flag(t, "nchwc");
  const char *algo = ir_conv_algo_name((IrConvAlgo)a->algo);
  if (algo) put_word(t, "algo", algo);
  const char *from = ir_sched_from_name((IrSchedFrom)a->algo_from);
  if (from) put_word(t, "from", from);
  write_pruned(a->pruned, t);
}

/* algo=naive|gemm|direct|winograd (IrConvAlgo); absent: IR_CONV_ALGO_UNSET */
static bool read_conv_algo(const Ctx *c, int32_t *algo) {
  const IrAttrValue *v = find(c, "algo");
  IrConvAlgo a = IR_CONV_ALGO_UNSET;
  if (v && !(v->kind == IR_ATTR_WORD && ir_conv_algo_parse(v->word, &a)))
    return FAIL(c, v->loc, "expected naive, gemm, direct or winograd after 'algo='");
  *algo = (int32_t)a;
  return true;
}

/* every list is required (the printer writes them all); ir/conv.c rejects nchwc and algo where
 * they do not apply */
static bool read_conv(const Ctx *c, NodeAttr *out) {
  struct IrConvAttr *a = &out->conv;
  int32_t *dst[6] = {a->stride, a->dilation, a->pad, a->out_pad, a->kernel, &a->groups};
  for (int k = 0; k < 6; k++) {
    int64_t v[4];
    int n;
    if (!get_list(c, conv_keys[k], 4, 0, INT32_MAX, v, &n)) return false;
    if (n != conv_len[k])
      return FAIL(c, c->r->at,
                  "'%s' needs {stride=[h,w], dilation=[h,w], pad=[t,l,b,r], "
                  "out_pad=[h,w], kernel=[h,w], groups=[g]}",
                  c->op);
    for (int i = 0; i < n; i++)
      dst[k][i] = (int32_t)v[i];
  }
  a->layout = has_flag(c, "nchwc") ? IR_CONV_NCHWC : IR_CONV_NCHW;
  IrSchedFrom from;
  if (!read_from(c, &from)) return false;
  a->algo_from = (int32_t)from;
  return read_conv_algo(c, &a->algo) && read_pruned(c, a->pruned);
}

static bool equal_conv(const Node *a, const Node *b) {
  const struct IrConvAttr *x = &a->attr.conv, *y = &b->attr.conv;
  for (int k = 0; k < 6; k++)
    for (int i = 0; i < conv_len[k]; i++)
      if (conv_field(x, k)[i] != conv_field(y, k)[i]) return false;
  return x->layout == y->layout && x->algo == y->algo &&
         memcmp(x->pruned, y->pruned, sizeof x->pruned) == 0;
}
static uint64_t hash_conv(const Node *n) {
  uint64_t h = 0;
  for (int k = 0; k < 6; k++)
    for (int i = 0; i < conv_len[k]; i++)
      h = h * 31u + (uint32_t)conv_field(&n->attr.conv, k)[i];
  return h;
}

/* ---- ATTR_MODE: {train} when the first input is taken --------------------------------------- */

static void write_mode(const Node *n, IrAttrText *t) {
  if (n->attr.mode.train) put_flag(t, "train");
}
static bool read_mode(const Ctx *c, NodeAttr *out) {
  out->mode.train = has_flag(c, "train");
  return true;
}
static bool equal_mode(const Node *a, const Node *b) {
  return a->attr.mode.train == b->attr.mode.train;
}
static uint64_t hash_mode(const Node *n) {
  return n->attr.mode.train;
}

/* ---- ATTR_QUANT: {x_zp=A, out_zp=B, qmin=L, qmax=H}, the zero points only when not 0 ---- */

static void write_quant(const Node *n, IrAttrText *t) {
  if (n->attr.quant.x_zp) put_int(t, "x_zp", n->attr.quant.x_zp);
  if (n->attr.quant.out_zp) put_int(t, "out_zp", n->attr.quant.out_zp);
  put_int(t, "qmin", n->attr.quant.qmin);
  put_int(t, "qmax", n->attr.quant.qmax);
  if (n->attr.quant.half_even) put_flag(t, "half_even");
}
/* the ranges are checked by the infer hook (ir/quant.c), which knows the op */
static bool read_quant(const Ctx *c, NodeAttr *out) {
  const char *keys[4] = {"x_zp", "out_zp", "qmin", "qmax"};
  int32_t *dst[4] = {&out->quant.x_zp, &out->quant.out_zp, &out->quant.qmin, &out->quant.qmax};
  for (int k = 0; k < 4; k++) {
    int64_t v = INT64_MIN;
    if (!get_int(c, keys[k], INT32_MIN, INT32_MAX, &v)) return false;
    if (v == INT64_MIN && k >= 2) return FAIL(c, c->r->at, "'%s' needs {qmin=L, qmax=H}", c->op);
    *dst[k] = v == INT64_MIN ? 0 : (int32_t)v;
  }
  out->quant.half_even = has_flag(c, "half_even");
  return true;
}
static bool equal_quant(const Node *a, const Node *b) {
  return a->attr.quant.x_zp == b->attr.quant.x_zp && a->attr.quant.out_zp == b->attr.quant.out_zp &&
         a->attr.quant.qmin == b->attr.quant.qmin && a->attr.quant.qmax == b->attr.quant.qmax &&
         a->attr.quant.half_even == b->attr.quant.half_even;
}
static uint64_t hash_quant(const Node *n) {
  return ((uint64_t)(uint32_t)n->attr.quant.x_zp * 31u + (uint32_t)n->attr.quant.out_zp) * 961u +
         (uint32_t)n->attr.quant.qmin * 31u + (uint32_t)n->attr.quant.qmax +
         (n->attr.quant.half_even ? 0x9e3779b9u : 0u);
}

/* ---- ATTR_QCONV: ATTR_QUANT plus {stride=[h,w], dilation=[h,w], pad=[t,l,b,r]} ----------- */

static const char *const qconv_keys[3] = {"stride", "dilation", "pad"};
static const int qconv_len[3] = {2, 2, 4};

static int32_t *qconv_field(NodeAttr *a, int k) {
  int32_t *f[3] = {a->quant.stride, a->quant.dilation, a->quant.pad};
  return f[k];
}

static void write_qconv(const Node *n, IrAttrText *t) {
  write_quant(n, t);
  if (n->attr.quant.groups > 1) put_int(t, "groups", n->attr.quant.groups);
  NodeAttr a = n->attr;
  for (int k = 0; k < 3; k++) {
    int64_t *v = put_list(t, qconv_keys[k], qconv_len[k]);
    for (int i = 0; i < qconv_len[k]; i++)
      v[i] = qconv_field(&a, k)[i];
  }
}
static bool read_qconv(const Ctx *c, NodeAttr *out) {
  if (!read_quant(c, out)) return false;
  int64_t groups = 0;
  if (!get_int(c, "groups", 1, INT32_MAX, &groups)) return false;
  out->quant.groups = (int32_t)groups;
  for (int k = 0; k < 3; k++) {
    int64_t v[4];
    int n;
    if (!get_list(c, qconv_keys[k], 4, 0, INT32_MAX, v, &n)) return false;
    if (n != qconv_len[k])
      return FAIL(c, c->r->at, "'%s' needs {stride=[h,w], dilation=[h,w], pad=[t,l,b,r]}", c->op);
    for (int i = 0; i < n; i++)
      qconv_field(out, k)[i] = (int32_t)v[i];
  }
  return true;
}
static bool equal_qconv(const Node *a, const Node *b) {
  NodeAttr x = a->attr, y = b->attr;
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < qconv_len[k]; i++)
      if (qconv_field(&x, k)[i] != qconv_field(&y, k)[i]) return false;
  return (x.quant.groups > 1 ? x.quant.groups : 1) == (y.quant.groups > 1 ? y.quant.groups : 1) &&
         equal_quant(a, b);
}
static uint64_t hash_qconv(const Node *n) {
  NodeAttr a = n->attr;
  uint64_t h = hash_quant(n) * 31u + (uint32_t)(a.quant.groups > 1 ? a.quant.groups : 1);
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < qconv_len[k]; i++)
      h = h * 31u + (uint32_t)qconv_field(&a, k)[i];
  return h;
}

/* ---- the table ------------------------------------------------------------------------------- */

typedef struct KindOps {
  const char *const *keys; /* the dictionary keys the kind reads, NULL-terminated */
  const char *flags;       /* of those, the ones written alone, "|key|key|" */
  bool operand;            /* an operand comes before the node's inputs */
  void (*write)(const Node *n, IrAttrText *t);
  bool (*read)(const Ctx *c, NodeAttr *out);
  bool (*equal)(const Node *a, const Node *b);
  uint64_t (*hash)(const Node *n);
} KindOps;

#define KEYS(...)                                                                                  \
  (const char *const[]) {                                                                          \
    __VA_ARGS__, NULL                                                                              \
  }

/* ---- ATTR_TOPK: {k=N[, smallest]} (issue 22) ------------------------------------------------ */

static void write_topk(const Node *n, IrAttrText *t) {
  put_int(t, "k", n->attr.topk.k);
  if (n->attr.topk.smallest) put_flag(t, "smallest");
}
static bool read_topk(const Ctx *c, NodeAttr *out) {
  if (!find(c, "k")) return FAIL(c, c->r->at, "'%s' needs {k=N}", c->op);
  out->topk.smallest = has_flag(c, "smallest");
  return get_int(c, "k", INT64_MIN, INT64_MAX, &out->topk.k);
}
static bool equal_topk(const Node *a, const Node *b) {
  return a->attr.topk.k == b->attr.topk.k && a->attr.topk.smallest == b->attr.topk.smallest;
}
static uint64_t hash_topk(const Node *n) {
  return (uint64_t)n->attr.topk.k * 2u + n->attr.topk.smallest;
}

/* ---- ATTR_PRUNE: {n=N, m=M[, columns]} (issue 20) --------------------------------------- */

static void write_prune(const Node *n, IrAttrText *t) {
  put_int(t, "n", n->attr.prune.n);
  put_int(t, "m", n->attr.prune.m);
  if (n->attr.prune.columns) put_flag(t, "columns");
}
static bool read_prune(const Ctx *c, NodeAttr *out) {
  int64_t nv = 0, mv = 0;
  if (!find(c, "n") || !find(c, "m")) return FAIL(c, c->r->at, "'%s' needs {n=N, m=M}", c->op);
  out->prune.columns = has_flag(c, "columns");
  bool ok = get_int(c, "n", 0, INT32_MAX, &nv) && get_int(c, "m", 0, INT32_MAX, &mv);
  out->prune.n = (int32_t)nv;
  out->prune.m = (int32_t)mv;
  return ok;
}
static bool equal_prune(const Node *a, const Node *b) {
  return a->attr.prune.n == b->attr.prune.n && a->attr.prune.m == b->attr.prune.m &&
         a->attr.prune.columns == b->attr.prune.columns;
}
static uint64_t hash_prune(const Node *n) {
  return ((uint64_t)n->attr.prune.n * 131u + (uint64_t)n->attr.prune.m) * 2u +
         n->attr.prune.columns;
}

/* ---- ATTR_REPLICA: {cotangent} for a sum of cotangents (issue 21) --------------------------- */

static void write_replica(const Node *n, IrAttrText *t) {
  if (n->attr.replica.cotangent) put_flag(t, "cotangent");
}
static bool read_replica(const Ctx *c, NodeAttr *out) {
  out->replica.cotangent = has_flag(c, "cotangent");
  return true;
}
static bool equal_replica(const Node *a, const Node *b) {
  return a->attr.replica.cotangent == b->attr.replica.cotangent;
}
static uint64_t hash_replica(const Node *n) {
  return n->attr.replica.cotangent;
}

static const KindOps kinds[] = {
    [ATTR_NONE] = {KEYS(NULL), "", false, write_none, read_none, equal_none, hash_none},
    [ATTR_SOURCE] = {KEYS(NULL), "", true, write_source, read_source, equal_source, hash_source},
    [ATTR_CONST] = {KEYS(NULL), "", true, write_const, read_const, equal_const, hash_const},
    [ATTR_SHAPE] = {KEYS(NULL), "", false, write_none, read_shape, equal_shape, hash_none},
    [ATTR_CAST] = {KEYS(NULL), "", false, write_none, read_cast, equal_cast, hash_cast},
    [ATTR_AXES] = {KEYS("axes", "keepdims"), "", false, write_axes, read_axes, equal_axes,
                   hash_axes},
    [ATTR_AXIS] = {KEYS("axis"), "", false, write_axis, read_axis, equal_axis, hash_axis},
    [ATTR_PERM] = {KEYS("perm"), "", false, write_perm, read_perm, equal_perm, hash_perm},
    [ATTR_MATMUL] = {KEYS("trans_a", "trans_b", "sparse_b", "sparse_unrolled", "sparse_panel",
                          "gemm", "blocks", "from", "pruned"),
                     "|trans_a|trans_b|sparse_b|sparse_unrolled|sparse_panel|", false, write_matmul,
                     read_matmul, equal_matmul, hash_matmul},
    [ATTR_ONE_HOT] = {KEYS("depth"), "", false, write_one_hot, read_one_hot, equal_one_hot,
                      hash_one_hot},
    [ATTR_SCAN] = {KEYS("body", "length", "carries", "seqs", "axis", "reverse"), "|reverse|", false,
                   write_scan, read_scan, equal_scan, hash_scan},
    [ATTR_SCAN_ARG] = {KEYS(NULL), "", true, write_scan_arg, read_scan_arg, equal_scan_arg,
                       hash_scan_arg},
    [ATTR_UNPACK] = {KEYS("offset", "offset_n"), "", false, write_unpack, read_unpack, equal_unpack,
                     hash_unpack},
    [ATTR_SLICE] = {KEYS("begin", "step"), "", false, write_slice, read_slice, equal_slice,
                    hash_slice},
    [ATTR_ROWS] = {KEYS(NULL), "", false, write_none, read_rows, equal_rows, hash_rows},
    [ATTR_RANDOM] = {KEYS("stream", "dist"), "", false, write_random, read_random, equal_random,
                     hash_random},
    [ATTR_DROPOUT] = {KEYS("stream", "p"), "", false, write_dropout, read_random, equal_random,
                      hash_random},
    [ATTR_CONV] = {KEYS("stride", "dilation", "pad", "out_pad", "kernel", "groups", "nchwc", "algo",
                        "from", "pruned"),
                   "|nchwc|", false, write_conv, read_conv, equal_conv, hash_conv},
    [ATTR_MODE] = {KEYS("train"), "|train|", false, write_mode, read_mode, equal_mode, hash_mode},
    [ATTR_QCONV] = {KEYS("x_zp", "out_zp", "qmin", "qmax", "groups", "stride", "dilation", "pad"),
                    "", false, write_qconv, read_qconv, equal_qconv, hash_qconv},
    [ATTR_QUANT] = {KEYS("x_zp", "out_zp", "qmin", "qmax", "half_even"), "|half_even|", false,
                    write_quant, read_quant, equal_quant, hash_quant},
    [ATTR_TOPK] = {KEYS("k", "smallest"), "|smallest|", false, write_topk, read_topk, equal_topk,
                   hash_topk},
    [ATTR_PRUNE] = {KEYS("n", "m", "columns"), "|columns|", false, write_prune, read_prune,
                    equal_prune, hash_prune},
    [ATTR_REPLICA] = {KEYS("cotangent"), "|cotangent|", false, write_replica, read_replica,
                      equal_replica, hash_replica},
};
_Static_assert(sizeof kinds / sizeof kinds[0] == ATTR_KIND_COUNT,
               "one row per attribute kind of ir.h");

static const KindOps *ops_of(OpKind op) {
  return &kinds[ir_ops[op].attr];
}

bool ir_attr_has_operand(OpKind op) {
  return ops_of(op)->operand;
}

void ir_attr_write(const Node *n, IrAttrText *t) {
  memset(t, 0, sizeof *t);
  ops_of(n->op)->write(n, t);
}

/* every key is one of the kind's, given once, written alone exactly when it is a flag */
static bool check_keys(const Ctx *c, const KindOps *k) {
  for (int i = 0; i < c->t->n; i++) {
    const IrAttrEntry *e = &c->t->entry[i];
    int j = 0;
    while (k->keys[j] && strcmp(k->keys[j], e->key) != 0)
      j++;
    if (!k->keys[j]) return FAIL(c, e->value.loc, "unknown attribute '%s' for '%s'", e->key, c->op);
    for (int m = 0; m < i; m++)
      if (strcmp(c->t->entry[m].key, e->key) == 0)
        return FAIL(c, e->value.loc, "attribute '%s' given twice", e->key);
    char bar[64];
    snprintf(bar, sizeof bar, "|%s|", e->key);
    bool flag = strstr(k->flags, bar) != NULL;
    if (flag && e->value.kind != IR_ATTR_FLAG)
      return FAIL(c, e->value.loc, "'%s' takes no value", e->key);
    if (!flag && e->value.kind == IR_ATTR_FLAG)
      return FAIL(c, e->value.loc, "expected '=' after '%s'", e->key);
  }
  return true;
}

bool ir_attr_read(const IrAttrRead *r, const IrAttrText *t, NodeAttr *out) {
  const KindOps *k = ops_of(r->op);
  Ctx c = {r, t, ir_ops[r->op].name};
  memset(out, 0, sizeof *out);
  if (t->has_operand && !k->operand)
    return FAIL(&c, t->operand.loc, "'%s' takes no operand value", c.op);
  return check_keys(&c, k) && k->read(&c, out);
}

bool ir_attr_equal(const Node *a, const Node *b) {
  IR_ASSERT(a->op == b->op);
  return ops_of(a->op)->equal(a, b);
}

uint64_t ir_attr_hash(const Node *n) {
  return ops_of(n->op)->hash(n);
}
