/* passes/vjp_scan.c — VJP rules of SCAN, PACK and UNPACK (docs/ir.md "scan").
 *
 * SCAN is differentiated by a reverse scan. The forward scan is re-pointed at an augmented
 * copy of its body that also stacks the carries each step starts from (its packed value only
 * grows at the end, so existing UNPACKs stay valid; if the scan has other consumers a second,
 * augmented scan is added instead). The backward body recomputes the forward body from the
 * saved carries, the sequence slices and the captures, and differentiates it (same VJP rules,
 * seeded with the carry and per-step cotangents). The backward scan runs in the opposite
 * direction with carries: the carry cotangents, then one gradient accumulator per active
 * captured input (initially zero); it stacks the gradients of the active sequence inputs.
 * The backward SCAN's inputs, in order: carry cotangents (C), accumulators (KA), saved
 * carries (C, sequences), forward sequences (S), per-step output cotangents (Y), captures (K).
 */
#include <stdlib.h>
#include <string.h>

#include "ir/scan.h"
#include "vjp_scan.h"

/* ---- pack / unpack ------------------------------------------------------------------------ */

/* zeros of per_n * n + fixed elements into parts (two fills when both parts are there: a
 * PACK concatenates, so the layout at n is the same) */
static int zeros_of(AdCtx *a, DType t, int64_t per_n, int64_t fixed, NodeId *parts) {
  int np = 0;
  int64_t max = per_n ? a->b.g->module->dyn_max : 0;
  if (per_n) {
    int64_t count = per_n * max;
    Shape s = shape_make(1, &count);
    s.dyn = per_n;
    parts[np++] = build_fill(&a->b, t, &s, 0.0);
  }
  if (fixed) {
    Shape s = shape_make(1, &fixed);
    parts[np++] = build_fill(&a->b, t, &s, 0.0);
  }
  return np;
}

/* The cotangent of x is zeros around gy, flat, at the piece: with a run-time batch the head
 * and the tail are affine in n (ir/scan.h), each one or two fills. */
bool vjp_unpack(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  const Node *x = graph_node(a->b.g, n->in[0]);
  int64_t max = a->b.g->module ? a->b.g->module->dyn_max : 0;
  int64_t total_n, total, count_n, count, off_n = n->attr.unpack.offset_n;
  int64_t off = n->attr.unpack.offset - off_n * max;
  scan_packed_total(a->b.g, x, &total_n, &total);
  scan_affine(&n->shape, &count_n, &count);
  int64_t flat = count_n * max + count;
  Shape mid = shape_make(1, &flat);
  mid.dyn = count_n;
  NodeId parts[6];
  int np = zeros_of(a, n->dtype, off_n, off, parts);
  parts[np++] = build_reshape(&a->b, gy, &mid);
  np += zeros_of(a, n->dtype, total_n - off_n - count_n, total - off - count, parts + np);
  ad_accumulate(a, n->in[0], build_node(&a->b, OP_PACK, parts, np, NULL));
  return true;
}

bool vjp_pack(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  int64_t off = 0, off_n = 0;
  for (int k = 0; k < n->n_in; k++) {
    Shape s = graph_node(a->b.g, n->in[k])->shape;
    int64_t per_n, fixed;
    scan_affine(&s, &per_n, &fixed);
    if (ad_wants(a, n->in[k])) ad_accumulate(a, n->in[k], build_unpack(&a->b, gy, off, off_n, &s));
    off += shape_numel(&s);
    off_n += per_n;
  }
  return true;
}

/* ---- scan --------------------------------------------------------------------------------- */

typedef struct ScanVjp {
  AdCtx *a;
  const Node *n; /* the forward scan (a copy) */
  NodeId id;
  const Graph *fwd;
  int C, S, K, Y;
  int KA, cap[IR_MAX_INPUTS];         /* active captured inputs (index among the captures) */
  int SA, seq[IR_MAX_INPUTS];         /* active sequence inputs (index among the sequences) */
  int acc0, sav0, xs0, dy0, cap0, nb; /* backward input layout */
  Graph *bb;
  NodeId arg[IR_MAX_INPUTS]; /* SCAN_ARG of each backward input, in bb */
  NodeId aug;                /* the scan stacking the saved carries */
} ScanVjp;

static NodeAttr arg_attr(int index, DType t, const Shape *s) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan_arg.index = index;
  at.scan_arg.dtype = t;
  at.scan_arg.shape = *s;
  return at;
}

static bool only_unpacked(const AdCtx *a, NodeId id) {
  for (int i = 0; i < a->b.g->n_outputs; i++)
    if (a->b.g->outputs[i].node == id) return false;
  for (NodeId j = id + 1; j < a->n_fwd; j++) {
    const Node *c = graph_node(a->b.g, j);
    for (int k = 0; k < c->n_in; k++)
      if (c->in[k] == id && c->op != OP_UNPACK) return false;
  }
  return true;
}

/* the forward scan with the carries each step starts from stacked after its outputs */
static bool sv_augment(ScanVjp *v) {
  AdCtx *a = v->a;
  Graph *aug = graph_clone(v->fwd, NULL);
  for (int i = 0; i < v->C && !a->b.failed; i++) {
    NodeId arg = IR_NONE;
    for (NodeId j = 0; j < aug->n_nodes && arg == IR_NONE; j++) {
      const Node *b = graph_node(aug, j);
      if (b->op == OP_SCAN_ARG && b->attr.scan_arg.index == i) arg = j;
    }
    const Node *init = graph_node(a->b.g, v->n->in[i]);
    NodeAttr at = arg_attr(i, init->dtype, &init->shape);
    if (arg == IR_NONE) arg = graph_add(aug, OP_SCAN_ARG, NULL, 0, &at, v->n->loc, a->b.diag);
    if (arg == IR_NONE)
      a->b.failed = true;
    else
      graph_add_output(aug, "saved", arg, OUT_VALUE, -1);
  }
  NodeAttr at = v->n->attr;
  at.scan.body = graph_add_subgraph(a->b.g, aug);
  if (a->b.failed) return false;
  if (!only_unpacked(a, v->id)) {
    v->aug = build_node(&a->b, OP_SCAN, v->n->in, v->n->n_in, &at);
    return !a->b.failed;
  }
  Node *fn = graph_node(a->b.g, v->id); /* one forward loop: re-point it; the prefix is kept */
  fn->attr = at;
  fn->shape = scan_packed_shape(a->b.g, fn);
  v->aug = v->id;
  return true;
}

/* the type of backward input j, per step */
static void sv_arg_type(const ScanVjp *v, int j, DType *t, Shape *s) {
  const Graph *g = v->a->b.g;
  NodeId src;
  if (j < v->acc0)
    src = v->n->in[j];
  else if (j < v->sav0)
    src = v->n->in[v->C + v->S + v->cap[j - v->acc0]];
  else if (j < v->xs0)
    src = v->n->in[j - v->sav0];
  else if (j < v->dy0)
    src = v->n->in[v->C + j - v->xs0];
  else if (j < v->cap0)
    src = IR_NONE;
  else
    src = v->n->in[v->C + v->S + j - v->cap0];
  if (src == IR_NONE) { /* a per-step output cotangent */
    const Node *o = graph_node(v->fwd, v->fwd->outputs[v->C + j - v->dy0].node);
    *t = o->dtype;
    *s = o->shape;
    return;
  }
  const Node *x = graph_node(g, src);
  *t = x->dtype;
  *s = j >= v->xs0 && j < v->dy0 ? scan_slice_shape(&x->shape, v->n->attr.scan.axis) : x->shape;
}

static bool sv_layout(ScanVjp *v) {
  AdCtx *a = v->a;
  const Node *n = v->n;
  v->C = n->attr.scan.n_carry;
  v->S = n->attr.scan.n_seq;
  v->K = n->n_in - v->C - v->S;
  v->Y = v->fwd->n_outputs - v->C;
  DType t = n->dtype;
  for (int k = 0; k < v->K; k++)
    if (ad_wants(a, n->in[v->C + v->S + k])) v->cap[v->KA++] = k;
  for (int s = 0; s < v->S; s++)
    if (ad_wants(a, n->in[v->C + s])) v->seq[v->SA++] = s;
  for (int i = 0; i < n->n_in; i++) {
    if (!ad_wants(a, n->in[i]) || graph_node(a->b.g, n->in[i])->dtype == t) continue;
    diag_error(a->b.diag, n->loc, "scan: cannot differentiate input %d of dtype %s in a %s scan", i,
               dtype_name(graph_node(a->b.g, n->in[i])->dtype), dtype_name(t));
    return false;
  }
  v->acc0 = v->C;
  v->sav0 = v->acc0 + v->KA;
  v->xs0 = v->sav0 + v->C;
  v->dy0 = v->xs0 + v->S;
  v->cap0 = v->dy0 + v->Y;
  v->nb = v->cap0 + v->K;
  if (v->nb > IR_MAX_INPUTS) {
    diag_error(a->b.diag, n->loc,
               "scan: its reverse scan would need %d inputs (at most %d); "
               "capture fewer values",
               v->nb, IR_MAX_INPUTS);
    return false;
  }
  return true;
}

/* the backward body's arguments, then a copy of the forward body reading them */
static bool sv_copy_body(ScanVjp *v, NodeId *map) {
  for (int j = 0; j < v->nb; j++) {
    DType t;
    Shape s;
    sv_arg_type(v, j, &t, &s);
    NodeAttr at = arg_attr(j, t, &s);
    v->arg[j] = graph_add(v->bb, OP_SCAN_ARG, NULL, 0, &at, v->n->loc, v->a->b.diag);
    if (v->arg[j] == IR_NONE) return false;
  }
  for (NodeId f = 0; f < v->fwd->n_nodes; f++) {
    const Node *fn = graph_node(v->fwd, f);
    if (fn->op == OP_SCAN_ARG) {
      int i = fn->attr.scan_arg.index, kind = scan_input_kind(v->n, i);
      map[f] = v->arg[kind == 0   ? v->sav0 + i
                      : kind == 1 ? v->xs0 + i - v->C
                                  : v->cap0 + i - v->C - v->S];
      continue;
    }
    NodeId in[IR_MAX_INPUTS];
    for (int k = 0; k < fn->n_in; k++)
      in[k] = map[fn->in[k]];
    NodeAttr at = fn->attr;
    if (fn->op == OP_CONST && at.constant.data) {
      size_t bytes = (size_t)shape_numel(&fn->shape) * sizeof(double);
      double *copy = arena_alloc(&v->bb->arena, bytes);
      memcpy(copy, at.constant.data, bytes);
      at.constant.data = copy;
    }
    map[f] = graph_add(v->bb, fn->op, in, fn->n_in, &at, fn->loc, v->a->b.diag);
    if (map[f] == IR_NONE) return false;
    graph_node(v->bb, map[f])->name = fn->name ? arena_strdup(&v->bb->arena, fn->name) : NULL;
  }
  return true;
}

/* is backward argument j one the body is differentiated with respect to? */
static bool sv_wrt(const ScanVjp *v, int j) {
  if (j >= v->sav0 && j < v->xs0) return true;
  for (int s = 0; s < v->SA; s++)
    if (j == v->xs0 + v->seq[s]) return true;
  for (int k = 0; k < v->KA; k++)
    if (j == v->cap0 + v->cap[k]) return true;
  return false;
}

/* dep/active over the backward body, like autodiff.c's analysis with the wrt args as params */
static bool sv_activity(ScanVjp *v, const NodeId *map, bool *dep, bool *active) {
  const Graph *bb = v->bb;
  for (NodeId i = 0; i < bb->n_nodes; i++) {
    const Node *nd = graph_node(bb, i);
    dep[i] = false;
    active[i] = false;
    if (nd->op == OP_SCAN_ARG) dep[i] = sv_wrt(v, nd->attr.scan_arg.index);
    if (nd->op == OP_SCAN_ARG || !dtype_is_float(nd->dtype) || vjp_kind(nd->op) == VJP_ZERO)
      continue;
    for (int k = 0; k < nd->n_in; k++)
      dep[i] = dep[i] || dep[nd->in[k]];
  }
  for (int k = 0; k < v->fwd->n_outputs; k++) {
    NodeId s = map[v->fwd->outputs[k].node];
    active[s] = dep[s];
  }
  for (NodeId i = bb->n_nodes; i-- > 0;) {
    const Node *nd = graph_node(bb, i);
    if (!active[i]) continue;
    if (nd->op != OP_SCAN_ARG && vjp_kind(nd->op) == VJP_NONE) {
      diag_error(v->a->b.diag, nd->loc,
                 "cannot differentiate '%s' inside a scan: the op has no "
                 "gradient rule",
                 ir_ops[nd->op].name);
      return false;
    }
    for (int k = 0; k < nd->n_in; k++)
      if (dep[nd->in[k]]) active[nd->in[k]] = true;
  }
  return true;
}

/* the reverse sweep over the backward body, seeded with the cotangent arguments */
static bool sv_sweep(ScanVjp *v, AdCtx *b, const NodeId *map) {
  for (int k = 0; k < v->fwd->n_outputs; k++) {
    NodeId s = map[v->fwd->outputs[k].node];
    NodeId cot = v->arg[k < v->C ? k : v->dy0 + k - v->C];
    if (!b->active[s]) continue;
    b->grad[s] = b->grad[s] == IR_NONE ? cot : build_binary(&b->b, OP_ADD, b->grad[s], cot);
  }
  for (NodeId i = b->n_fwd; i-- > 0;) {
    const Node *nd = graph_node(b->b.g, i);
    if (!b->active[i] || b->grad[i] == IR_NONE || nd->op == OP_SCAN_ARG) continue;
    b->b.loc = nd->loc;
    if (!vjp_apply(b, i, b->grad[i]) || b->b.failed) return false;
  }
  return !b->b.failed;
}

/* gradient of backward argument j, or zeros of its type */
static NodeId sv_grad(const ScanVjp *v, AdCtx *b, int j) {
  NodeId g = b->grad[v->arg[j]];
  if (g != IR_NONE) return g;
  const Node *x = graph_node(v->bb, v->arg[j]);
  return build_fill(&b->b, x->dtype, &x->shape, 0.0);
}

static bool sv_body_outputs(ScanVjp *v, AdCtx *b) {
  b->b.loc = v->n->loc;
  for (int k = 0; k < v->C; k++)
    graph_add_output(v->bb, "dcarry", sv_grad(v, b, v->sav0 + k), OUT_VALUE, -1);
  for (int k = 0; k < v->KA; k++) {
    NodeId acc = v->arg[v->acc0 + k], g = b->grad[v->arg[v->cap0 + v->cap[k]]];
    NodeId sum = g == IR_NONE ? acc : build_binary(&b->b, OP_ADD, acc, g);
    graph_add_output(v->bb, "dcapture", sum, OUT_VALUE, -1);
  }
  for (int s = 0; s < v->SA; s++)
    graph_add_output(v->bb, "dseq", sv_grad(v, b, v->xs0 + v->seq[s]), OUT_VALUE, -1);
  for (int i = 0; i < v->bb->n_outputs; i++)
    if (v->bb->outputs[i].node == IR_NONE) b->b.failed = true;
  return !b->b.failed;
}

/* builds and differentiates the backward body (owned by a->b.g once built) */
static bool sv_backward_body(ScanVjp *v) {
  v->bb = graph_new(v->a->b.g->module, "body");
  NodeId *map = malloc(sizeof *map * (v->fwd->n_nodes + 1));
  bool ok = map && sv_copy_body(v, map);
  uint32_t nf = v->bb->n_nodes;
  bool *dep = malloc(nf + 1), *active = malloc(nf + 1);
  NodeId *grad = malloc(sizeof *grad * (nf + 1));
  ok = ok && dep && active && grad && sv_activity(v, map, dep, active);
  for (uint32_t i = 0; ok && i < nf; i++)
    grad[i] = IR_NONE;
  AdCtx b = {build_init(v->bb, v->a->b.diag, v->n->loc), grad, active, nf};
  ok = ok && sv_sweep(v, &b, map) && sv_body_outputs(v, &b);
  free(map);
  free(dep);
  free(active);
  free(grad);
  if (!ok) {
    graph_free(v->bb);
    v->a->b.failed = true;
    return false;
  }
  graph_add_subgraph(v->a->b.g, v->bb);
  return true;
}

/* piece k of scan's packed value, at element *off at the bound, *off_n of it per unit of n */
static Shape sv_piece(const ScanVjp *v, NodeId scan, int k, int64_t *off, int64_t *off_n) {
  const Graph *g = v->a->b.g;
  int64_t fixed;
  Shape s = scan_packed_piece(g, graph_node(g, scan), k, off_n, &fixed);
  *off = *off_n * (g->module ? g->module->dyn_max : 0) + fixed;
  return s;
}

/* the backward SCAN node */
static NodeId sv_backward_scan(ScanVjp *v, NodeId gy) {
  AdCtx *a = v->a;
  const Node *n = v->n;
  NodeId in[IR_MAX_INPUTS];
  int64_t off, off_n;
  for (int j = 0; j < v->C + v->Y; j++) { /* cotangents of the final carries and outputs */
    Shape s = sv_piece(v, v->id, j, &off, &off_n);
    in[j < v->C ? j : v->dy0 + j - v->C] = build_unpack(&a->b, gy, off, off_n, &s);
  }
  for (int k = 0; k < v->KA; k++) {
    const Node *x = graph_node(a->b.g, n->in[v->C + v->S + v->cap[k]]);
    in[v->acc0 + k] = build_fill(&a->b, x->dtype, &x->shape, 0.0);
  }
  for (int i = 0; i < v->C; i++) {
    Shape s = sv_piece(v, v->aug, v->C + v->Y + i, &off, &off_n);
    in[v->sav0 + i] = build_unpack(&a->b, v->aug, off, off_n, &s);
  }
  for (int s = 0; s < v->S; s++)
    in[v->xs0 + s] = n->in[v->C + s];
  for (int k = 0; k < v->K; k++)
    in[v->cap0 + k] = n->in[v->C + v->S + k];
  NodeAttr at = n->attr;
  at.scan.body = v->a->b.g->n_subgraphs - 1;
  at.scan.n_carry = (int16_t)(v->C + v->KA);
  at.scan.n_seq = (int16_t)(v->C + v->S + v->Y);
  at.scan.reverse = !n->attr.scan.reverse;
  return build_node(&a->b, OP_SCAN, in, v->nb, &at);
}

bool vjp_scan(AdCtx *a, const Node *n, NodeId id, NodeId gy) {
  ScanVjp v;
  memset(&v, 0, sizeof v);
  v.a = a;
  v.n = n;
  v.id = id;
  v.fwd = scan_body(a->b.g, n);
  if (!v.fwd || !sv_layout(&v) || !sv_augment(&v) || !sv_backward_body(&v)) return false;
  v.fwd = scan_body(a->b.g, n); /* graph_add_subgraph may have moved the table, not the graph */
  NodeId rb = sv_backward_scan(&v, gy);
  int64_t off, off_n;
  for (int k = 0; k < v.C + v.KA + v.SA && !a->b.failed; k++) {
    NodeId target = k < v.C          ? n->in[k]
                    : k < v.C + v.KA ? n->in[v.C + v.S + v.cap[k - v.C]]
                                     : n->in[v.C + v.seq[k - v.C - v.KA]];
    Shape s = sv_piece(&v, rb, k, &off, &off_n);
    if (ad_wants(a, target)) ad_accumulate(a, target, build_unpack(&a->b, rb, off, off_n, &s));
  }
  return !a->b.failed;
}
