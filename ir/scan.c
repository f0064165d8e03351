/* ir/scan.c — the recurrence ops: infer and eval hooks of SCAN, SCAN_ARG, PACK, UNPACK, and
 * the layout helpers of scan.h.
 *
 * infer_scan checks the whole contract between a SCAN node and its body (arg types, carry
 * types, sequence lengths, one dtype for every output) so later stages may rely on it.
 * eval_scan is the reference semantics: it loops ir_eval over the body, slicing sequences
 * and stacking per-step outputs straight into the packed result.
 */
#include <stdlib.h>
#include <string.h>

#include "ir_internal.h"
#include "scan.h"

#define SB 200

/* A dynamic batch stays axis 0 (infer_scan refuses a sequence axis 0 of a dynamic shape). */
Shape scan_slice_shape(const Shape *s, int axis) {
  Shape r = shape_make(0, NULL);
  for (int i = 0; i < s->rank; i++)
    if (i != axis) r.dim[r.rank++] = s->dim[i];
  r.dyn = axis > 0 ? s->dyn : 0;
  return r;
}

Shape scan_stack_shape(const Shape *s, int axis, int64_t len) {
  Shape r = shape_make(0, NULL);
  for (int i = 0; i <= s->rank; i++) {
    if (i == axis) r.dim[r.rank++] = len;
    if (i < s->rank) r.dim[r.rank++] = s->dim[i];
  }
  r.dyn = axis > 0 ? s->dyn : 0;
  return r;
}

void scan_affine(const Shape *s, int64_t *per_n, int64_t *fixed) {
  int64_t numel = shape_numel(s);
  *per_n = s->dyn ? numel / s->dim[0] * s->dyn : 0;
  *fixed = s->dyn ? 0 : numel;
}

Graph *scan_body(const Graph *g, const Node *n) {
  int32_t b = n->attr.scan.body;
  return b >= 0 && b < g->n_subgraphs ? g->subgraphs[b] : NULL;
}

int scan_input_kind(const Node *n, int i) {
  if (i < n->attr.scan.n_carry) return 0;
  return i < n->attr.scan.n_carry + n->attr.scan.n_seq ? 1 : 2;
}

void scan_split(const Shape *s, int axis, int64_t *outer, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < s->rank; i++) {
    if (i < axis) *outer *= s->dim[i];
    if (i > axis) *inner *= s->dim[i];
  }
}

int scan_packed_pieces(const Graph *g, const Node *n) {
  if (n->op == OP_PACK) return n->n_in;
  const Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
  return body ? body->n_outputs : 0;
}

Shape scan_packed_piece(const Graph *g, const Node *n, int k, int64_t *per_n, int64_t *fixed) {
  Shape piece = shape_make(0, NULL);
  *per_n = *fixed = 0;
  const Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
  for (int j = 0; j <= k; j++) {
    int64_t a, b;
    scan_affine(&piece, &a, &b);
    if (j > 0) *per_n += a, *fixed += b;
    if (n->op == OP_PACK) {
      piece = graph_node(g, n->in[j])->shape;
      continue;
    }
    const Shape *s = &graph_node(body, body->outputs[j].node)->shape;
    piece =
        j < n->attr.scan.n_carry ? *s : scan_stack_shape(s, n->attr.scan.axis, n->attr.scan.length);
  }
  return piece;
}

/* the bound of g's module (0 when static) */
static int64_t scan_bound(const Graph *g) {
  return g->module && g->module->dyn_max > 0 ? g->module->dyn_max : 0;
}

Shape scan_piece(const Graph *g, const Node *n, int k, int64_t *offset) {
  int64_t per_n, fixed;
  Shape piece = scan_packed_piece(g, n, k, &per_n, &fixed);
  *offset = per_n * scan_bound(g) + fixed;
  return piece;
}

bool scan_packed_offset(const Graph *g, const Node *x, int64_t offset, int64_t *per_n,
                        int64_t *fixed) {
  *per_n = 0;
  *fixed = offset;
  if (!scan_bound(g) || (x->op != OP_SCAN && x->op != OP_PACK)) return true;
  bool dynamic = false;
  for (int k = 0, count = scan_packed_pieces(g, x); k < count; k++) {
    int64_t a, b;
    dynamic |= scan_packed_piece(g, x, k, &a, &b).dyn > 0;
    if (a * scan_bound(g) + b != offset) continue;
    *per_n = a;
    *fixed = b;
    return true;
  }
  return !dynamic; /* every piece static: any offset is fixed */
}

void scan_packed_total(const Graph *g, const Node *x, int64_t *per_n, int64_t *fixed) {
  int count = x->op == OP_SCAN || x->op == OP_PACK ? scan_packed_pieces(g, x) : 0;
  if (count == 0) {
    scan_affine(&x->shape, per_n, fixed);
    return;
  }
  int64_t a, b;
  Shape last = scan_packed_piece(g, x, count - 1, per_n, fixed);
  scan_affine(&last, &a, &b);
  *per_n += a;
  *fixed += b;
}

Shape scan_packed_shape(const Graph *g, const Node *n) {
  int64_t per_n, fixed;
  scan_packed_total(g, n, &per_n, &fixed);
  int64_t total = per_n * scan_bound(g) + fixed;
  Shape s = shape_make(1, &total);
  if (fixed == 0) s.dyn = per_n;
  return s;
}

/* ---- infer -------------------------------------------------------------------------------- */

static bool scan_fail(const Node *n, Diag *d, const char *what, const Shape *a, const Shape *b) {
  char sa[SB], sb[SB];
  IR_ERROR(d, n->loc, "scan: %s: %s vs %s", what, shape_str(a, sa, sizeof sa),
           shape_str(b, sb, sizeof sb));
  return false;
}

static bool scan_check_attrs(const Graph *g, const Node *n, Diag *d) {
  const Graph *body = scan_body(g, n);
  int nc = n->attr.scan.n_carry, ns = n->attr.scan.n_seq;
  if (!body) {
    IR_ERROR(d, n->loc, "scan: body %d does not exist (the graph has %d)", (int)n->attr.scan.body,
             g->n_subgraphs);
    return false;
  }
  if (n->attr.scan.length < 1 || nc < 0 || ns < 0 || nc + ns > n->n_in || n->attr.scan.axis < 0 ||
      n->attr.scan.axis >= IR_MAX_RANK) {
    IR_ERROR(d, n->loc,
             "scan: bad attributes (length %lld, %d carries, %d sequences, axis %d, "
             "%d inputs)",
             (long long)n->attr.scan.length, nc, ns, (int)n->attr.scan.axis, n->n_in);
    return false;
  }
  if (body->n_outputs < nc || body->n_outputs < 1) {
    IR_ERROR(d, n->loc, "scan: the body has %d outputs, fewer than its %d carries (or none)",
             body->n_outputs, nc);
    return false;
  }
  return true;
}

/* A run-time batch stays axis 0 of every carry, slice and stacked output: a sequence axis or
 * a stacking axis 0 of a dynamic shape would move it (docs/dynamic-batch.md "Scans"). */
static bool scan_check_batch(const Node *n, const Shape *s, const char *what, Diag *d) {
  if (!s->dyn || n->attr.scan.axis > 0) return true;
  char ss[SB];
  IR_ERROR(d, n->loc,
           "scan: %s %s has the run-time batch on axis 0, the scan's axis; a "
           "recurrence over the batch is not supported (scan along another axis)",
           what, shape_str(s, ss, sizeof ss));
  return false;
}

/* the per-step type of SCAN input i, as its SCAN_ARG must declare it */
static bool scan_arg_type(const Graph *g, const Node *n, int i, Shape *s, Diag *d) {
  const Node *x = graph_node(g, n->in[i]);
  *s = x->shape;
  if (scan_input_kind(n, i) != 1) return true;
  if (!scan_check_batch(n, &x->shape, "sequence", d)) return false;
  int axis = n->attr.scan.axis;
  if (axis >= x->shape.rank || x->shape.dim[axis] != n->attr.scan.length) {
    char sx[SB];
    IR_ERROR(d, n->loc,
             "scan: sequence input %d has shape %s, which has no axis %d of length "
             "%lld",
             i, shape_str(&x->shape, sx, sizeof sx), axis, (long long)n->attr.scan.length);
    return false;
  }
  *s = scan_slice_shape(&x->shape, axis);
  return true;
}

static bool scan_check_args(const Graph *g, const Node *n, const Graph *body, Diag *d) {
  for (uint32_t id = 0; id < body->n_nodes; id++) {
    const Node *b = graph_node(body, id);
    if (b->op == OP_INPUT || b->op == OP_PARAM || b->op == OP_STATE || b->op == OP_SCAN) {
      IR_ERROR(d, b->loc, "scan: the body uses '%s' directly; pass it as a captured input",
               ir_ops[b->op].name);
      return false;
    }
    if (b->op != OP_SCAN_ARG) continue;
    int i = b->attr.scan_arg.index;
    Shape want;
    if (i >= n->n_in) {
      IR_ERROR(d, b->loc, "scan: body argument %d, but the scan has %d inputs", i, n->n_in);
      return false;
    }
    if (!scan_arg_type(g, n, i, &want, d)) return false;
    if (!shape_equal(&want, &b->shape) || graph_node(g, n->in[i])->dtype != b->dtype)
      return scan_fail(n, d, "a body argument's type differs from its input", &b->shape, &want);
  }
  return true;
}

static bool scan_check_outputs(const Graph *g, const Node *n, const Graph *body, Diag *d) {
  DType t = graph_node(body, body->outputs[0].node)->dtype;
  for (int k = 0; k < body->n_outputs; k++) {
    const Node *o = graph_node(body, body->outputs[k].node);
    if (o->dtype != t) {
      IR_ERROR(d, n->loc, "scan: body outputs mix dtypes %s and %s", dtype_name(t),
               dtype_name(o->dtype));
      return false;
    }
    if (k < n->attr.scan.n_carry) {
      const Node *init = graph_node(g, n->in[k]);
      if (!shape_equal(&init->shape, &o->shape) || init->dtype != o->dtype)
        return scan_fail(n, d, "a new carry's type differs from its initial value", &o->shape,
                         &init->shape);
    } else if (!scan_check_batch(n, &o->shape, "per-step output", d)) {
      return false;
    } else if (n->attr.scan.axis > o->shape.rank || o->shape.rank >= IR_MAX_RANK) {
      char so[SB];
      IR_ERROR(d, n->loc, "scan: per-step output %s cannot be stacked along axis %d",
               shape_str(&o->shape, so, sizeof so), (int)n->attr.scan.axis);
      return false;
    }
  }
  return true;
}

bool infer_scan(Graph *g, Node *n, Diag *d) {
  if (!scan_check_attrs(g, n, d)) return false;
  const Graph *body = scan_body(g, n);
  if (!scan_check_args(g, n, body, d) || !scan_check_outputs(g, n, body, d)) return false;
  n->dtype = graph_node(body, body->outputs[0].node)->dtype;
  n->shape = scan_packed_shape(g, n);
  return true;
}

bool infer_scan_arg(Graph *g, Node *n, Diag *d) {
  const Shape *s = &n->attr.scan_arg.shape;
  bool ok = n->attr.scan_arg.index >= 0 && (unsigned)n->attr.scan_arg.dtype < DT_COUNT &&
            s->rank >= 0 && s->rank <= IR_MAX_RANK;
  for (int i = 0; ok && i < s->rank; i++)
    ok = s->dim[i] >= 1;
  if (!ok) {
    IR_ERROR(d, n->loc, "scan_arg: invalid index %d, dtype or shape", (int)n->attr.scan_arg.index);
    return false;
  }
  int64_t dyn = s->dyn;
  n->attr.scan_arg.shape = shape_make(s->rank, s->dim);
  n->attr.scan_arg.shape.dyn = dyn;
  n->dtype = n->attr.scan_arg.dtype;
  n->shape = n->attr.scan_arg.shape;
  return true;
}

bool infer_pack(Graph *g, Node *n, Diag *d) {
  if (n->n_in < 1) {
    IR_ERROR(d, n->loc, "pack: needs at least one input");
    return false;
  }
  DType t = graph_node(g, n->in[0])->dtype;
  for (int k = 0; k < n->n_in; k++) {
    const Node *x = graph_node(g, n->in[k]);
    if (x->dtype != t) {
      IR_ERROR(d, n->loc, "pack: operand dtypes differ: %s vs %s", dtype_name(t),
               dtype_name(x->dtype));
      return false;
    }
  }
  n->dtype = t;
  n->shape = scan_packed_shape(g, n);
  return true;
}

/* With a run-time batch the piece starts at offset_n * n + (offset - offset_n * max). A
 * piece of a SCAN x names its offset_n (the one x's layout gives the piece starting at
 * offset at the bound); so does a PACK's when none is given (a builder that packed runs of
 * pieces under one fill, the VJP of UNPACK, gives it). The piece must fit x's packed extent
 * at n = 1 and at the bound (affine in n between). */
static bool unpack_fits(const Graph *g, const Node *x, Node *n, const Shape *s) {
  int64_t max = scan_bound(g), off_n = n->attr.unpack.offset_n, off, a, b, total_n, total;
  bool derive = x->op == OP_SCAN || (x->op == OP_PACK && !off_n);
  if (max && derive) {
    bool found = scan_packed_offset(g, x, n->attr.unpack.offset, &off_n, &off);
    if (!found && x->op == OP_SCAN) return false;
    if (x->op == OP_SCAN && n->attr.unpack.offset_n && n->attr.unpack.offset_n != off_n)
      return false;
    if (found) n->attr.unpack.offset_n = off_n;
  }
  if (!max) max = 1;
  off = n->attr.unpack.offset - off_n * max;
  scan_affine(s, &a, &b);
  scan_packed_total(g, x, &total_n, &total);
  return off >= 0 && (off_n + a) + off + b <= total_n + total &&
         (off_n + a) * max + off + b <= total_n * max + total;
}

bool infer_unpack(Graph *g, Node *n, Diag *d) {
  const Node *x = graph_node(g, n->in[0]);
  Shape s = n->attr.unpack.shape;
  bool ok = s.rank >= 0 && s.rank <= IR_MAX_RANK && (!s.dyn || s.rank >= 1);
  for (int i = 0; ok && i < s.rank; i++)
    ok = s.dim[i] >= 1;
  if (!ok || x->shape.rank != 1 || n->attr.unpack.offset < 0 || n->attr.unpack.offset_n < 0 ||
      n->attr.unpack.offset + shape_numel(&s) > x->shape.dim[0] || !unpack_fits(g, x, n, &s)) {
    char sx[SB], ss[SB];
    IR_ERROR(d, n->loc,
             "unpack: cannot take %s at offset %lld (%lld per unit of the batch) "
             "from %s",
             ok ? shape_str(&s, ss, sizeof ss) : "an invalid shape",
             (long long)n->attr.unpack.offset, (long long)n->attr.unpack.offset_n,
             shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  int64_t dyn = s.dyn;
  n->attr.unpack.shape = shape_make(s.rank, s.dim);
  n->attr.unpack.shape.dyn = dyn;
  n->dtype = x->dtype;
  n->shape = n->attr.unpack.shape;
  return true;
}

/* ---- eval --------------------------------------------------------------------------------- */

void eval_scan_arg(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i, tensor_get(in[0], i));
}

/* copies index t along axis of src into dst (the slice), or dst into src when stack */
static void scan_move(const Tensor *seq, int64_t base, const Shape *full, int axis, int64_t t,
                      Tensor *step, Tensor *packed, bool stack) {
  int64_t outer, inner, len = full->dim[axis];
  scan_split(full, axis, &outer, &inner);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t r = 0; r < inner; r++) {
      int64_t at = base + (o * len + t) * inner + r;
      if (stack)
        tensor_set(packed, at, tensor_get(step, o * inner + r));
      else
        tensor_set(step, o * inner + r, tensor_get(seq, at));
    }
  }
}

static void scan_step(const Graph *g, const Node *n, const Tensor *in[], Tensor *args, int64_t t,
                      Tensor *out) {
  const Graph *body = scan_body(g, n);
  int nc = n->attr.scan.n_carry, axis = n->attr.scan.axis;
  for (int i = nc; i < nc + n->attr.scan.n_seq; i++)
    scan_move(in[i], 0, &in[i]->shape, axis, t, &args[i], NULL, false);
  Tensor outs[IR_MAX_INPUTS * 4];
  Tensor *res =
      body->n_outputs <= IR_MAX_INPUTS * 4 ? outs : calloc((size_t)body->n_outputs, sizeof *res);
  IR_ASSERT(res != NULL);
  bool ok = ir_eval(body, args, NULL, NULL, res, NULL, NULL);
  IR_ASSERT(ok); /* the body type-checked against the scan; only OOM could fail */
  for (int k = 0; k < body->n_outputs; k++) {
    if (k < nc) {
      tensor_free(&args[k]);
      args[k] = res[k];
      continue;
    }
    int64_t off;
    Shape full = scan_piece(g, n, k, &off);
    scan_move(NULL, off, &full, axis, t, &res[k], out, true);
    tensor_free(&res[k]);
  }
  if (res != outs) free(res);
}

void eval_scan(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  Tensor args[IR_MAX_INPUTS];
  int nc = n->attr.scan.n_carry, ns = n->attr.scan.n_seq;
  for (int i = 0; i < n->n_in; i++) {
    if (i < nc + ns) {
      Shape s = i < nc ? in[i]->shape : scan_slice_shape(&in[i]->shape, n->attr.scan.axis);
      IR_ASSERT(tensor_alloc(&args[i], in[i]->dtype, &s));
      if (i < nc)
        memcpy(args[i].data, in[i]->data, (size_t)shape_numel(&s) * dtype_size(in[i]->dtype));
    } else {
      args[i] = *in[i]; /* borrowed */
    }
  }
  int64_t T = n->attr.scan.length;
  for (int64_t s = 0; s < T; s++)
    scan_step(g, n, in, args, n->attr.scan.reverse ? T - 1 - s : s, out);
  for (int k = 0; k < nc; k++) {
    int64_t off, count = shape_numel(&args[k].shape);
    scan_piece(g, n, k, &off);
    for (int64_t i = 0; i < count; i++)
      tensor_set(out, off + i, tensor_get(&args[k], i));
  }
  for (int i = 0; i < nc + ns; i++)
    tensor_free(&args[i]);
}

void eval_pack(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t at = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t count = shape_numel(&in[k]->shape);
    for (int64_t i = 0; i < count; i++)
      tensor_set(out, at++, tensor_get(in[k], i));
  }
}

void eval_unpack(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape), off = n->attr.unpack.offset;
  for (int64_t i = 0; i < count; i++)
    tensor_set(out, i, tensor_get(in[0], off + i));
}
