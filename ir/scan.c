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

Shape scan_slice_shape(const Shape *s, int axis) {
  Shape r = shape_make(0, NULL);
  for (int i = 0; i < s->rank; i++)
    if (i != axis) r.dim[r.rank++] = s->dim[i];
  return r;
}

Shape scan_stack_shape(const Shape *s, int axis, int64_t len) {
  Shape r = shape_make(0, NULL);
  for (int i = 0; i <= s->rank; i++) {
    if (i == axis) r.dim[r.rank++] = len;
    if (i < s->rank) r.dim[r.rank++] = s->dim[i];
  }
  return r;
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

Shape scan_piece(const Graph *g, const Node *n, int k, int64_t *offset) {
  const Graph *body = scan_body(g, n);
  Shape piece = shape_make(0, NULL);
  *offset = 0;
  for (int j = 0; j <= k; j++) {
    if (j > 0) *offset += shape_numel(&piece);
    const Shape *s = &graph_node(body, body->outputs[j].node)->shape;
    piece = j < n->attr.scan.n_carry ? *s
                                     : scan_stack_shape(s, n->attr.scan.axis, n->attr.scan.length);
  }
  return piece;
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
    IR_ERROR(d, n->loc, "scan: bad attributes (length %lld, %d carries, %d sequences, axis %d, "
             "%d inputs)", (long long)n->attr.scan.length, nc, ns, (int)n->attr.scan.axis,
             n->n_in);
    return false;
  }
  if (body->n_outputs < nc || body->n_outputs < 1) {
    IR_ERROR(d, n->loc, "scan: the body has %d outputs, fewer than its %d carries (or none)",
             body->n_outputs, nc);
    return false;
  }
  return true;
}

/* the per-step type of SCAN input i, as its SCAN_ARG must declare it */
static bool scan_arg_type(const Graph *g, const Node *n, int i, Shape *s, Diag *d) {
  const Node *x = graph_node(g, n->in[i]);
  *s = x->shape;
  if (scan_input_kind(n, i) != 1) return true;
  int axis = n->attr.scan.axis;
  if (axis >= x->shape.rank || x->shape.dim[axis] != n->attr.scan.length) {
    char sx[SB];
    IR_ERROR(d, n->loc, "scan: sequence input %d has shape %s, which has no axis %d of length "
             "%lld", i, shape_str(&x->shape, sx, sizeof sx), axis,
             (long long)n->attr.scan.length);
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
    } else if (n->attr.scan.axis > o->shape.rank || o->shape.rank >= IR_MAX_RANK) {
      char so[SB];
      IR_ERROR(d, n->loc, "scan: per-step output %s cannot be stacked along axis %d",
               shape_str(&o->shape, so, sizeof so), (int)n->attr.scan.axis);
      return false;
    }
  }
  return true;
}

/* A recurrence packs its carries and stacked outputs into one flat buffer, whose layout would
 * depend on the batch: not with a dynamic batch yet (docs/dynamic-batch.md). */
static bool scan_check_static(const Graph *g, const Node *n, Diag *d) {
  for (int i = 0; i < n->n_in; i++) {
    const Shape *s = &graph_node(g, n->in[i])->shape;
    if (!s->dyn) continue;
    char ss[SB];
    IR_ERROR(d, n->loc, "%s: input %d is %s: a recurrence does not take a dynamic batch yet "
             "(give the batch a fixed size with -D)", ir_ops[n->op].name, i,
             shape_str(s, ss, sizeof ss));
    return false;
  }
  return true;
}

bool infer_scan(Graph *g, Node *n, Diag *d) {
  if (!scan_check_static(g, n, d) || !scan_check_attrs(g, n, d)) return false;
  const Graph *body = scan_body(g, n);
  if (!scan_check_args(g, n, body, d) || !scan_check_outputs(g, n, body, d)) return false;
  int64_t total = 0;
  for (int k = 0; k < body->n_outputs; k++) {
    int64_t off;
    Shape p = scan_piece(g, n, k, &off);
    total = off + shape_numel(&p);
  }
  n->dtype = graph_node(body, body->outputs[0].node)->dtype;
  n->shape = shape_make(1, &total);
  return true;
}

bool infer_scan_arg(Graph *g, Node *n, Diag *d) {
  const Shape *s = &n->attr.scan_arg.shape;
  bool ok = n->attr.scan_arg.index >= 0 && (unsigned)n->attr.scan_arg.dtype < DT_COUNT &&
            s->rank >= 0 && s->rank <= IR_MAX_RANK;
  for (int i = 0; ok && i < s->rank; i++) ok = s->dim[i] >= 1;
  if (!ok) {
    IR_ERROR(d, n->loc, "scan_arg: invalid index %d, dtype or shape",
             (int)n->attr.scan_arg.index);
    return false;
  }
  n->attr.scan_arg.shape = shape_make(s->rank, s->dim);
  n->dtype = n->attr.scan_arg.dtype;
  n->shape = n->attr.scan_arg.shape;
  return true;
}

bool infer_pack(Graph *g, Node *n, Diag *d) {
  if (n->n_in < 1) {
    IR_ERROR(d, n->loc, "pack: needs at least one input");
    return false;
  }
  if (!scan_check_static(g, n, d)) return false;
  int64_t total = 0;
  DType t = graph_node(g, n->in[0])->dtype;
  for (int k = 0; k < n->n_in; k++) {
    const Node *x = graph_node(g, n->in[k]);
    if (x->dtype != t) {
      IR_ERROR(d, n->loc, "pack: operand dtypes differ: %s vs %s", dtype_name(t),
               dtype_name(x->dtype));
      return false;
    }
    total += shape_numel(&x->shape);
  }
  n->dtype = t;
  n->shape = shape_make(1, &total);
  return true;
}

bool infer_unpack(Graph *g, Node *n, Diag *d) {
  const Node *x = graph_node(g, n->in[0]);
  Shape s = n->attr.unpack.shape;
  bool ok = s.rank >= 0 && s.rank <= IR_MAX_RANK;
  for (int i = 0; ok && i < s.rank; i++) ok = s.dim[i] >= 1;
  if (!ok || x->shape.rank != 1 || n->attr.unpack.offset < 0 ||
      n->attr.unpack.offset + shape_numel(&s) > x->shape.dim[0]) {
    char sx[SB], ss[SB];
    IR_ERROR(d, n->loc, "unpack: cannot take %s at offset %lld from %s", ok ? shape_str(&s, ss,
             sizeof ss) : "an invalid shape", (long long)n->attr.unpack.offset,
             shape_str(&x->shape, sx, sizeof sx));
    return false;
  }
  n->attr.unpack.shape = shape_make(s.rank, s.dim);
  n->dtype = x->dtype;
  n->shape = n->attr.unpack.shape;
  return true;
}

/* ---- eval --------------------------------------------------------------------------------- */

void eval_scan_arg(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, tensor_get(in[0], i));
}

/* copies index t along axis of src into dst (the slice), or dst into src when stack */
static void scan_move(const Tensor *seq, int64_t base, const Shape *full, int axis, int64_t t,
                      Tensor *step, Tensor *packed, bool stack) {
  int64_t outer, inner, len = full->dim[axis];
  scan_split(full, axis, &outer, &inner);
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t r = 0; r < inner; r++) {
      int64_t at = base + (o * len + t) * inner + r;
      if (stack) tensor_set(packed, at, tensor_get(step, o * inner + r));
      else tensor_set(step, o * inner + r, tensor_get(seq, at));
    }
  }
}

static void scan_step(const Graph *g, const Node *n, const Tensor *in[], Tensor *args,
                      int64_t t, Tensor *out) {
  const Graph *body = scan_body(g, n);
  int nc = n->attr.scan.n_carry, axis = n->attr.scan.axis;
  for (int i = nc; i < nc + n->attr.scan.n_seq; i++)
    scan_move(in[i], 0, &in[i]->shape, axis, t, &args[i], NULL, false);
  Tensor outs[IR_MAX_INPUTS * 4];
  Tensor *res = body->n_outputs <= IR_MAX_INPUTS * 4 ? outs : calloc((size_t)body->n_outputs,
                                                                      sizeof *res);
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
      if (i < nc) memcpy(args[i].data, in[i]->data, (size_t)shape_numel(&s) *
                         dtype_size(in[i]->dtype));
    } else {
      args[i] = *in[i]; /* borrowed */
    }
  }
  int64_t T = n->attr.scan.length;
  for (int64_t s = 0; s < T; s++) scan_step(g, n, in, args, n->attr.scan.reverse ? T - 1 - s : s,
                                            out);
  for (int k = 0; k < nc; k++) {
    int64_t off, count = shape_numel(&args[k].shape);
    scan_piece(g, n, k, &off);
    for (int64_t i = 0; i < count; i++) tensor_set(out, off + i, tensor_get(&args[k], i));
  }
  for (int i = 0; i < nc + ns; i++) tensor_free(&args[i]);
}

void eval_pack(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t at = 0;
  for (int k = 0; k < n->n_in; k++) {
    int64_t count = shape_numel(&in[k]->shape);
    for (int64_t i = 0; i < count; i++) tensor_set(out, at++, tensor_get(in[k], i));
  }
}

void eval_unpack(const Graph *g, const Node *n, const Tensor *in[], Tensor *out) {
  int64_t count = shape_numel(&out->shape), off = n->attr.unpack.offset;
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, tensor_get(in[0], off + i));
}
