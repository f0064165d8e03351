/* passes/hoist.c — the recurrence input-projection hoist: pass_hoist (issue #6).
 *
 * Requires: a verified graph; runs after autodiff (so it sees the backward scans too) and
 * before the cleanups (cse merges the projections the forward and backward scans share).
 * Does, first, for every SCAN that reads an earlier scan's per-step outputs (a backward scan
 * and its forward scan):
 *   - forward reuse: the values of the backward body that recompute, from the saved carries
 *     and the same sequence and captured inputs, forward body values computed from a GEMM (the
 *     recurrent h_{t-1} @ U and what follows from it), and that the backward computation
 *     reads (the gate activations), are stacked out of the forward scan as new per-step
 *     outputs (appended) and read by the backward body as new sequence inputs: the recurrent
 *     GEMM and the activations run once, not twice (section "forward values").
 * Then, in every SCAN body:
 *   - projection: a MATMUL x_t @ W (no trans_a) whose left operand is the step slice of a
 *     sequence input X and whose right operand is a captured rank-2 W becomes one GEMM over
 *     all steps before the scan, P = reshape(reshape(X, [rows, K]) @ W), scanned as a new
 *     sequence input; the body's MATMUL turns into that input's SCAN_ARG. Needs the scan axis
 *     not to be X's last axis (K must stay the contiguous last dimension).
 *   - weight-gradient accumulation: a new carry acc' = acc + x_t^T @ dG_t (acc its own
 *     SCAN_ARG, x_t a sequence slice, all rank 2) becomes acc' = acc; dG_t is stacked as a new
 *     per-step output (appended, so existing UNPACK offsets stay valid) and every UNPACK of
 *     the final acc is replaced by acc + X2^T @ dG2 (rows of X and of the stacked dG flattened
 *     alike: one GEMM after the scan). Needs every consumer of the scan to be an UNPACK that
 *     takes either exactly that carry or something disjoint from it.
 *   - bias-gradient accumulation: a new carry acc' = acc + sum(dG_t, axis 0) whose dG_t the
 *     previous rule already stacks becomes acc' = acc, and every UNPACK of the final acc is
 *     replaced by acc + the column sums of the stacked dG (rows of all steps flattened).
 *   - sequence gradients: a per-step output dG_t @ W (W captured) leaves the body; its UNPACKs
 *     become reshape(dG2 @ W) after the scan over the stacked dG (later pieces move down).
 * Projection and weight-gradient accumulation apply only where the cost model (pays_off)
 * expects a gain.
 * Then dead body nodes are removed (pass_dce on the body) and sequence/captured inputs no
 * SCAN_ARG reads any more are dropped (SCAN_ARG indices renumbered). New parent nodes are
 * appended and the graph is re-sorted topologically (stable: nodes already in order keep
 * their relative order). The result computes the same values up to float summation order.
 * Invalidates: node ids of the parent and of changed bodies, memory plan, fusion groups.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/build.h"
#include "ir/scan.h"
#include "passes.h"
#include "rewrite.h"

typedef struct Hoist {
  Graph *g;
  PassCtx *c;
  NodeId id; /* the scan being rewritten */
  Graph *body;
  Builder b; /* appends to g, every node with the scan's loc */
} Hoist;

static Hoist hoist_init(Graph *g, PassCtx *c, NodeId id, Graph *body) {
  Hoist h = {g, c, id, body, build_init(g, c->diag, graph_node(g, id)->loc)};
  return h;
}

/* a RESHAPE node even where x already has shape s (unlike build_reshape) */
static NodeId hz_reshape(Hoist *h, NodeId x, const Shape *s) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reshape.shape = *s;
  return build_node(&h->b, OP_RESHAPE, &x, 1, &at);
}

/* x as a matrix [numel / last, last] (a run-time batch stays in the rows: k * n of them) */
static NodeId hz_rows(Hoist *h, NodeId x) {
  const Shape *s = &graph_node(h->g, x)->shape;
  int64_t d[2] = {s->dim[s->rank - 1], 0};
  d[1] = d[0];
  d[0] = shape_numel(s) / d[1];
  Shape m = shape_make(2, d);
  if (s->dyn) m.dyn = d[0] / (s->dim[0] / s->dyn);
  return hz_reshape(h, x, &m);
}

/* the scan input kind (0 carry, 1 sequence, 2 captured) of body node b, or -1 */
static int hz_kind(const Hoist *h, NodeId b) {
  const Node *bn = graph_node(h->body, b);
  if (bn->op != OP_SCAN_ARG) return -1;
  return scan_input_kind(graph_node(h->g, h->id), bn->attr.scan_arg.index);
}

/* the parent node feeding body SCAN_ARG b */
static NodeId hz_source(const Hoist *h, NodeId b) {
  return graph_node(h->g, h->id)->in[graph_node(h->body, b)->attr.scan_arg.index];
}

/* The cost model. The generated GEMM is about as fast per flop on one step's [rows, K] as on
 * all steps' [T * rows, K]; what hoisting saves is the per-step packing of the [K, N] weight
 * (and, in backward scans, the recomputed projection cse shares with the forward scan), what
 * it costs is a per-step copy of a [rows, N] slice of the stacked result. So hoisting x_t
 * [rows, K] pays when K >= rows. Measured single-threaded on LSTM train steps (H = 128):
 * K = 28, rows = 64: 4% slower hoisting everything, unchanged with this rule; K = 64,
 * rows = 32: 4% faster; K = 256, rows = 32: 14% faster. (Measured before codegen packed a
 * scan body's captured weights once per scan, codegen/gemm.c cg_gemm_prepack: the per-step
 * packing is gone either way now, so the saving left is the shared projection.) */
static bool pays_off(const Shape *x) {
  int64_t k = x->dim[x->rank - 1];
  return k >= shape_numel(x) / k;
}

/* ---- projection --------------------------------------------------------------------------- */

static bool proj_matches(const Hoist *h, const Node *m) {
  const Node *scan = graph_node(h->g, h->id);
  if (m->op != OP_MATMUL || m->attr.matmul.trans_a || scan->n_in >= IR_MAX_INPUTS) return false;
  if (hz_kind(h, m->in[0]) != 1 || hz_kind(h, m->in[1]) != 2) return false;
  const Node *x = graph_node(h->body, m->in[0]), *w = graph_node(h->body, m->in[1]);
  return w->shape.rank == 2 && x->shape.rank == m->shape.rank &&
         scan->attr.scan.axis < x->shape.rank && dtype_is_float(m->dtype) && pays_off(&x->shape);
}

/* inserts p as the last sequence input; captured SCAN_ARGs move up by one */
static int add_sequence(Hoist *h, NodeId p) {
  Node *n = graph_node(h->g, h->id);
  int at = n->attr.scan.n_carry + n->attr.scan.n_seq;
  memmove(&n->in[at + 1], &n->in[at], (size_t)(n->n_in - at) * sizeof n->in[0]);
  n->in[at] = p;
  n->n_in++;
  n->attr.scan.n_seq++;
  for (NodeId b = 0; b < h->body->n_nodes; b++) {
    Node *bn = graph_node(h->body, b);
    if (bn->op == OP_SCAN_ARG && bn->attr.scan_arg.index >= at) bn->attr.scan_arg.index++;
  }
  return at;
}

/* body node m becomes the SCAN_ARG of a new sequence input seq (outer node): its step's
 * slice, of m's dtype and shape */
static void to_scan_arg(Hoist *h, NodeId m, NodeId seq) {
  Node *bn = graph_node(h->body, m);
  DType dtype = bn->dtype;
  Shape shape = bn->shape;
  int index = add_sequence(h, seq);
  bn = graph_node(h->body, m); /* add_sequence may grow the body's node array */
  memset(&bn->attr, 0, sizeof bn->attr);
  bn->op = OP_SCAN_ARG;
  bn->n_in = 0;
  bn->attr.scan_arg.index = index;
  bn->attr.scan_arg.dtype = dtype;
  bn->attr.scan_arg.shape = shape;
}

/* body node m (a matching MATMUL) becomes the SCAN_ARG of the hoisted projection */
static bool hoist_projection(Hoist *h, NodeId m) {
  Node mn = *graph_node(h->body, m);
  NodeId x = hz_source(h, mn.in[0]), w = hz_source(h, mn.in[1]);
  int axis = graph_node(h->g, h->id)->attr.scan.axis;
  int64_t T = graph_node(h->g, h->id)->attr.scan.length;
  NodeId p = build_matmul(&h->b, hz_rows(h, x), w, false, mn.attr.matmul.trans_b);
  Shape full = scan_stack_shape(&mn.shape, axis, T);
  p = hz_reshape(h, p, &full);
  if (h->b.failed) return false;
  to_scan_arg(h, m, p);
  return true;
}

/* ---- weight-gradient accumulation --------------------------------------------------------- */

/* true when carry k's running value is read only by body node `by` (and no output) */
static bool carry_private(const Hoist *h, int k, NodeId by) {
  const Graph *b = h->body;
  for (int j = 0; j < b->n_outputs; j++) {
    const Node *o = graph_node(b, b->outputs[j].node);
    if (o->op == OP_SCAN_ARG && o->attr.scan_arg.index == k) return false;
  }
  for (NodeId j = 0; j < b->n_nodes; j++) {
    const Node *n = graph_node(b, j);
    for (int i = 0; j != by && i < n->n_in; i++) {
      const Node *x = graph_node(b, n->in[i]);
      if (x->op == OP_SCAN_ARG && x->attr.scan_arg.index == k) return false;
    }
  }
  return true;
}

/* the x_t^T @ dG_t term of new carry k (acc + term), or IR_NONE; *acc_out = acc */
static NodeId accum_term(const Hoist *h, int k, NodeId *acc_out) {
  const Node *o = graph_node(h->body, h->body->outputs[k].node);
  if (o->op != OP_ADD || o->shape.rank != 2 || !carry_private(h, k, h->body->outputs[k].node))
    return IR_NONE;
  for (int side = 0; side < 2; side++) {
    NodeId acc = o->in[side], t = o->in[1 - side];
    const Node *a = graph_node(h->body, acc), *mm = graph_node(h->body, t);
    if (a->op != OP_SCAN_ARG || a->attr.scan_arg.index != k) continue;
    if (mm->op != OP_MATMUL || !mm->attr.matmul.trans_a || mm->attr.matmul.trans_b) continue;
    const Node *x = graph_node(h->body, mm->in[0]), *dg = graph_node(h->body, mm->in[1]);
    int axis = graph_node(h->g, h->id)->attr.scan.axis;
    if (hz_kind(h, mm->in[0]) != 1 || x->shape.rank != 2 || dg->shape.rank != 2 || axis > 1 ||
        !pays_off(&x->shape))
      continue;
    *acc_out = acc;
    if (shape_equal(&a->shape, &o->shape) && shape_equal(&mm->shape, &o->shape)) return t;
  }
  return IR_NONE;
}

/* every consumer of the scan is an UNPACK taking exactly [off, off + count) or nothing of
 * it; the exact ones are stored in *uses (room for g->n_nodes) */
static bool accum_consumers(const Hoist *h, int64_t off, int64_t count, NodeId *uses, int *nu) {
  const Graph *g = h->g;
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].node == h->id) return false;
  *nu = 0;
  for (NodeId j = h->id + 1; j < g->n_nodes; j++) {
    const Node *u = graph_node(g, j);
    bool reads = false;
    for (int k = 0; k < u->n_in; k++)
      reads |= u->in[k] == h->id;
    if (!reads) continue;
    if (u->op != OP_UNPACK) return false;
    int64_t lo = u->attr.unpack.offset, n = shape_numel(&u->shape);
    if (lo == off && n == count)
      uses[(*nu)++] = j;
    else if (lo < off + count && off < lo + n)
      return false;
  }
  return true;
}

/* replaces every use of `from` (by nodes other than `except`, and by outputs) with `to` */
static void replace_uses(Graph *g, NodeId from, NodeId to, NodeId except) {
  for (NodeId j = 0; j < g->n_nodes; j++) {
    Node *n = graph_node(g, j);
    for (int k = 0; j != except && k < n->n_in; k++)
      if (n->in[k] == from) n->in[k] = to;
  }
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].node == from) g->outputs[i].node = to;
}

/* the per-step output stacking body node dg, appended when there is none yet */
static int accum_stacked(Hoist *h, NodeId dg) {
  int nc = graph_node(h->g, h->id)->attr.scan.n_carry;
  for (int k = nc; k < h->body->n_outputs; k++)
    if (h->body->outputs[k].node == dg) return k;
  graph_add_output(h->body, "dstep", dg, OUT_VALUE, -1);
  Node *n = graph_node(h->g, h->id);
  n->shape = scan_packed_shape(h->g, n);
  return h->body->n_outputs - 1;
}

/* dG stacked out of the scan (accum_stacked), unpacked on the parent side */
static NodeId stacked_unpack(Hoist *h, NodeId dg) {
  int64_t off;
  Shape piece = scan_piece(h->g, graph_node(h->g, h->id), accum_stacked(h, dg), &off);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.unpack.offset = off;
  at.unpack.shape = piece;
  return build_node(&h->b, OP_UNPACK, &h->id, 1, &at);
}

/* the parent side: dG stacked out of the scan, one GEMM, added to each unpack of the carry */
static bool accum_parent(Hoist *h, NodeId x, NodeId dg, const NodeId *uses, int nu) {
  NodeId d = stacked_unpack(h, dg);
  NodeId grad =
      build_matmul(&h->b, hz_rows(h, x), d == IR_NONE ? IR_NONE : hz_rows(h, d), true, false);
  for (int i = 0; i < nu && !h->b.failed; i++) {
    NodeId in[2] = {uses[i], grad};
    NodeId sum = build_node(&h->b, OP_ADD, in, 2, NULL);
    if (sum != IR_NONE) replace_uses(h->g, uses[i], sum, sum);
  }
  return !h->b.failed;
}

static bool hoist_accum(Hoist *h, int k, NodeId *uses) {
  NodeId acc = IR_NONE, term = accum_term(h, k, &acc);
  if (term == IR_NONE) return false;
  int64_t off;
  const Node *n = graph_node(h->g, h->id);
  Shape piece = scan_piece(h->g, n, k, &off);
  int nu = 0;
  if (!accum_consumers(h, off, shape_numel(&piece), uses, &nu)) return false;
  const Node *mm = graph_node(h->body, term);
  NodeId xarg = mm->in[0], dg = mm->in[1];
  h->body->outputs[k].node = acc;
  return accum_parent(h, hz_source(h, xarg), dg, uses, nu);
}

/* ---- bias-gradient accumulation ----------------------------------------------------------- */

/* The dG_t of a new carry k = acc + reshape?(sum(dG_t, axis 0)) (a bias gradient: acc its own
 * SCAN_ARG, dG_t rank 2 and already a per-step output, stacked for a weight gradient), or
 * IR_NONE; *acc_out = acc. The sum over all steps' rows after the scan replaces it. */
static NodeId bias_term(const Hoist *h, int k, NodeId *acc_out) {
  const Node *o = graph_node(h->body, h->body->outputs[k].node);
  int axis = graph_node(h->g, h->id)->attr.scan.axis;
  if (o->op != OP_ADD || axis > 1 || !carry_private(h, k, h->body->outputs[k].node)) return IR_NONE;
  for (int side = 0; side < 2; side++) {
    NodeId acc = o->in[side], t = o->in[1 - side];
    const Node *a = graph_node(h->body, acc), *sum = graph_node(h->body, t);
    if (a->op != OP_SCAN_ARG || a->attr.scan_arg.index != k) continue;
    if (sum->op == OP_RESHAPE) sum = graph_node(h->body, sum->in[0]);
    if (sum->op != OP_SUM || sum->attr.reduce.axes != 1u) continue;
    NodeId dg = sum->in[0];
    if (graph_node(h->body, dg)->shape.rank != 2 || !shape_equal(&a->shape, &o->shape) ||
        shape_numel(&o->shape) != graph_node(h->body, dg)->shape.dim[1])
      continue;
    for (int j = graph_node(h->g, h->id)->attr.scan.n_carry; j < h->body->n_outputs; j++)
      if (h->body->outputs[j].node == dg) {
        *acc_out = acc;
        return dg;
      }
  }
  return IR_NONE;
}

/* carry k = acc + sum(dG_t, axis 0) becomes acc' = acc; every UNPACK of the final acc gets
 * the sum of the stacked dG over all rows of all steps added after the scan */
static bool hoist_bias(Hoist *h, int k, NodeId *uses) {
  NodeId acc = IR_NONE, dg = bias_term(h, k, &acc);
  if (dg == IR_NONE) return false;
  int64_t off;
  Shape piece = scan_piece(h->g, graph_node(h->g, h->id), k, &off);
  int nu = 0;
  if (!accum_consumers(h, off, shape_numel(&piece), uses, &nu)) return false;
  h->body->outputs[k].node = acc;
  NodeId d = stacked_unpack(h, dg);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reduce.axes = 1u;
  NodeId rows = d == IR_NONE ? IR_NONE : hz_rows(h, d);
  NodeId sum = build_node(&h->b, OP_SUM, &rows, 1, &at);
  for (int i = 0; i < nu && !h->b.failed; i++) {
    NodeId grad = hz_reshape(h, sum, &graph_node(h->g, uses[i])->shape);
    NodeId in[2] = {uses[i], grad};
    NodeId total = build_node(&h->b, OP_ADD, in, 2, NULL);
    if (total != IR_NONE) replace_uses(h->g, uses[i], total, total);
  }
  return !h->b.failed;
}

/* ---- sequence gradients ------------------------------------------------------------------- */

/* per-step output k is dG_t @ W (W captured, rank 2; dG_t not captured), no other output */
static bool dseq_matches(const Hoist *h, int k) {
  const Node *scan = graph_node(h->g, h->id);
  NodeId o = h->body->outputs[k].node;
  const Node *m = graph_node(h->body, o);
  if (k < scan->attr.scan.n_carry || m->op != OP_MATMUL || m->attr.matmul.trans_a) return false;
  if (hz_kind(h, m->in[1]) != 2 || hz_kind(h, m->in[0]) == 2) return false;
  for (int j = 0; j < h->body->n_outputs; j++)
    if (j != k && h->body->outputs[j].node == o) return false;
  const Node *dg = graph_node(h->body, m->in[0]), *w = graph_node(h->body, m->in[1]);
  return w->shape.rank == 2 && dg->shape.rank == m->shape.rank &&
         scan->attr.scan.axis < dg->shape.rank && dtype_is_float(m->dtype);
}

/* removes per-step output k (count elements at off, count_n of them per unit of a run-time
 * batch): later pieces move down */
static void drop_output(Hoist *h, int k, int64_t off, int64_t count, int64_t count_n) {
  memmove(&h->body->outputs[k], &h->body->outputs[k + 1],
          (size_t)(h->body->n_outputs - k - 1) * sizeof h->body->outputs[0]);
  h->body->n_outputs--;
  for (NodeId j = h->id + 1; j < h->g->n_nodes; j++) {
    Node *u = graph_node(h->g, j);
    if (u->op == OP_UNPACK && u->in[0] == h->id && u->attr.unpack.offset >= off + count) {
      u->attr.unpack.offset -= count;
      u->attr.unpack.offset_n -= count_n;
    }
  }
  Node *n = graph_node(h->g, h->id);
  n->shape = scan_packed_shape(h->g, n);
}

/* per-step output k = dG_t @ W becomes one GEMM after the scan over the stacked dG */
static bool hoist_dseq(Hoist *h, int k, NodeId *uses) {
  if (!dseq_matches(h, k)) return false;
  int64_t off;
  Shape piece = scan_piece(h->g, graph_node(h->g, h->id), k, &off);
  int nu = 0;
  if (!accum_consumers(h, off, shape_numel(&piece), uses, &nu)) return false;
  Node m = *graph_node(h->body, h->body->outputs[k].node);
  NodeId w = hz_source(h, m.in[1]);
  int j = accum_stacked(h, m.in[0]);
  int64_t per_n, fixed;
  scan_affine(&piece, &per_n, &fixed);
  drop_output(h, k, off, shape_numel(&piece), per_n);
  j -= j > k;
  int64_t doff;
  Shape ds = scan_piece(h->g, graph_node(h->g, h->id), j, &doff);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.unpack.offset = doff;
  at.unpack.shape = ds;
  NodeId d = build_node(&h->b, OP_UNPACK, &h->id, 1, &at);
  NodeId r =
      build_matmul(&h->b, d == IR_NONE ? IR_NONE : hz_rows(h, d), w, false, m.attr.matmul.trans_b);
  for (int i = 0; i < nu && !h->b.failed; i++) {
    NodeId ru = hz_reshape(h, r, &graph_node(h->g, uses[i])->shape);
    if (ru != IR_NONE) replace_uses(h->g, uses[i], ru, IR_NONE);
  }
  return !h->b.failed;
}

/* ---- forward values a backward scan recomputes -------------------------------------------- */

/* The backward scan of a recurrence recomputes the forward cell from the forward scan's
 * saved carries and the same sequence and captured inputs. Where that recomputation holds a
 * GEMM (the recurrent h_{t-1} @ W, which the projection rule cannot hoist out of the forward
 * scan: h is a carry there), the forward body's own values at the cut (rv_cut) are stacked
 * out of the forward scan (more per-step outputs) and read by the backward body as sequence
 * inputs, so the recurrent GEMM runs once instead of twice. Body nodes are matched
 * structurally (rv_map). */

static void prune_inputs(Hoist *h);
static bool own_body(Hoist *h);

typedef struct Reuse {
  Hoist *h;        /* the backward scan */
  NodeId f;        /* the forward scan (earlier in the parent) */
  const Graph *fb; /* its body */
  NodeId *map;     /* per backward body node: the equal forward body node, or IR_NONE */
} Reuse;

/* forward body's first SCAN_ARG of input i, or IR_NONE */
static NodeId rv_arg(const Graph *body, int i) {
  for (NodeId b = 0; b < body->n_nodes; b++) {
    const Node *bn = graph_node(body, b);
    if (bn->op == OP_SCAN_ARG && bn->attr.scan_arg.index == i) return b;
  }
  return IR_NONE;
}

/* the forward body node backward body SCAN_ARG bn equals at every step, or IR_NONE: a slice
 * of a per-step output of the forward scan, or the same sequence or captured parent input */
static NodeId rv_arg_map(const Reuse *r, const Node *bn) {
  const Node *bs = graph_node(r->h->g, r->h->id), *fs = graph_node(r->h->g, r->f);
  int i = bn->attr.scan_arg.index, kind = scan_input_kind(bs, i);
  NodeId src = bs->in[i];
  const Node *u = graph_node(r->h->g, src);
  if (kind == 1 && u->op == OP_UNPACK && u->in[0] == r->f) {
    for (int k = fs->attr.scan.n_carry; k < r->fb->n_outputs; k++) {
      int64_t off;
      Shape piece = scan_piece(r->h->g, fs, k, &off);
      if (off == u->attr.unpack.offset && shape_equal(&piece, &u->shape))
        return r->fb->outputs[k].node;
    }
    return IR_NONE;
  }
  if (kind == 0) return IR_NONE;
  for (int j = fs->attr.scan.n_carry; j < fs->n_in; j++)
    if (fs->in[j] == src && scan_input_kind(fs, j) == kind) return rv_arg(r->fb, j);
  return IR_NONE;
}

/* whether forward node a and backward node b compute the same (inputs already mapped) */
static bool rv_equal(const Reuse *r, const Node *a, const Node *b) {
  if (a->op != b->op || a->dtype != b->dtype || a->n_in != b->n_in ||
      !shape_equal(&a->shape, &b->shape))
    return false;
  for (int k = 0; k < b->n_in; k++)
    if (r->map[b->in[k]] != a->in[k]) return false;
  switch (b->op) {
  case OP_MATMUL:
    return a->attr.matmul.trans_a == b->attr.matmul.trans_a &&
           a->attr.matmul.trans_b == b->attr.matmul.trans_b;
  case OP_SLICE:
    return memcmp(&a->attr.slice, &b->attr.slice, sizeof a->attr.slice) == 0;
  case OP_CONST: /* splats only */
    return !a->attr.constant.data && !b->attr.constant.data &&
           memcmp(&a->attr.constant.value, &b->attr.constant.value,
                  sizeof a->attr.constant.value) == 0;
  default:
    return ir_ops[b->op].fusion == FUSE_ELEMWISE;
  }
}

/* fills r->map for the backward body, in node order */
static void rv_map(Reuse *r) {
  const Graph *body = r->h->body;
  for (NodeId b = 0; b < body->n_nodes; b++) {
    const Node *bn = graph_node(body, b);
    r->map[b] = IR_NONE;
    if (bn->op == OP_SCAN_ARG) {
      r->map[b] = rv_arg_map(r, bn);
      continue;
    }
    bool inputs = true;
    for (int k = 0; k < bn->n_in; k++)
      inputs &= r->map[bn->in[k]] != IR_NONE;
    for (NodeId a = 0; inputs && a < r->fb->n_nodes && r->map[b] == IR_NONE; a++)
      if (rv_equal(r, graph_node(r->fb, a), bn)) r->map[b] = a;
  }
}

/* backward body node b is computed (in the forward body too) from a GEMM of the cell */
static bool rv_bearing(const Reuse *r, NodeId b) {
  const Node *n = graph_node(r->h->body, b);
  if (r->map[b] == IR_NONE || n->op == OP_SCAN_ARG) return false;
  if (n->op == OP_MATMUL) return true;
  for (int k = 0; k < n->n_in; k++)
    if (rv_bearing(r, n->in[k])) return true;
  return false;
}

/* The cut: a bearing node that an output or a node of the backward body's own (not mapped)
 * reads. For an LSTM, the four gate activations: stacking them costs a copy per step each
 * way, and saves the recurrent GEMM and the activations' recomputation (10% faster on
 * bench/models/lstm.lathe than stacking the pre-activations, which still recomputes them). */
static bool rv_cut(const Reuse *r, NodeId b) {
  const Graph *body = r->h->body;
  if (!rv_bearing(r, b)) return false;
  for (int j = 0; j < body->n_outputs; j++)
    if (body->outputs[j].node == b) return true;
  for (NodeId u = b + 1; u < body->n_nodes; u++) {
    const Node *un = graph_node(body, u);
    for (int k = 0; k < un->n_in; k++)
      if (un->in[k] == b && r->map[u] == IR_NONE) return true;
  }
  return false;
}

/* every reader of scan f is an UNPACK (so a piece can be appended), and f's shape and steps
 * match the backward scan's */
static bool rv_scans_match(const Hoist *h, NodeId f) {
  const Node *fs = graph_node(h->g, f), *bs = graph_node(h->g, h->id);
  if (fs->op != OP_SCAN || fs->attr.scan.axis != bs->attr.scan.axis ||
      fs->attr.scan.length != bs->attr.scan.length || fs->shape.rank != 1)
    return false;
  for (int i = 0; i < h->g->n_outputs; i++)
    if (h->g->outputs[i].node == f) return false;
  for (NodeId j = f + 1; j < h->g->n_nodes; j++) {
    const Node *u = graph_node(h->g, j);
    for (int k = 0; k < u->n_in; k++)
      if (u->in[k] == f && u->op != OP_UNPACK) return false;
  }
  return true;
}

/* backward body node b becomes a sequence input: forward body node a stacked out of scan f */
static bool rv_reuse(Hoist *h, NodeId f, NodeId a, NodeId b) {
  Hoist fh = hoist_init(h->g, h->c, f, scan_body(h->g, graph_node(h->g, f)));
  if (!fh.body) return false;
  int k = accum_stacked(&fh, a);
  int64_t off;
  Shape piece = scan_piece(h->g, graph_node(h->g, f), k, &off);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.unpack.offset = off;
  at.unpack.shape = piece;
  NodeId u = build_node(&h->b, OP_UNPACK, &f, 1, &at);
  if (h->b.failed) return false;
  to_scan_arg(h, b, u);
  return true;
}

/* reuses, in backward scan h->id, the GEMM-bearing values of the body of an earlier scan f
 * (map: room for the backward body's nodes); *changed when anything moved */
static bool reuse_from(Hoist *h, NodeId f, NodeId *map, bool *changed) {
  Graph *fbody = scan_body(h->g, graph_node(h->g, f));
  if (!fbody || fbody == h->body) return true;
  Reuse r = {h, f, fbody, map};
  rv_map(&r);
  bool any = false;
  for (NodeId b = 0; b < h->body->n_nodes && !any; b++)
    any = rv_cut(&r, b) && graph_node(fbody, r.map[b])->dtype == graph_node(h->g, f)->dtype;
  if (!any) return true;
  Hoist fh = hoist_init(h->g, h->c, f, fbody);
  if (!own_body(h) || !own_body(&fh)) return false;
  r.fb = fh.body;
  rv_map(&r); /* the same bodies, perhaps copies now */
  for (NodeId b = 0; b < h->body->n_nodes && !h->b.failed; b++) {
    if (!rv_cut(&r, b) || graph_node(h->g, h->id)->n_in >= IR_MAX_INPUTS ||
        graph_node(fh.body, r.map[b])->dtype != graph_node(h->g, f)->dtype)
      continue;
    if (!rv_reuse(h, f, r.map[b], b)) return false;
    r.map[b] = IR_NONE; /* now a SCAN_ARG of the backward scan */
  }
  if (h->b.failed) return false;
  *changed = true;
  if (!pass_dce(h->body, h->c)) return false;
  prune_inputs(h);
  return true;
}

/* reuse_from for backward scan h->id and every earlier scan */
static bool reuse_scan(Hoist *h, bool *changed) {
  h->body = scan_body(h->g, graph_node(h->g, h->id));
  if (!h->body) return true;
  NodeId *map = NULL;
  bool ok = true;
  for (NodeId f = 0; f < h->id && ok; f++) {
    if (!rv_scans_match(h, f)) continue;
    free(map);
    map = malloc(sizeof *map * (h->body->n_nodes + 1));
    if (!map) {
      diag_error(h->c->diag, (SrcLoc){0}, "out of memory in hoist of '%s'", h->g->name);
      return false;
    }
    ok = reuse_from(h, f, map, changed);
  }
  free(map);
  return ok;
}

/* ---- cleanup ------------------------------------------------------------------------------ */

/* drops sequence and captured inputs that no SCAN_ARG reads; renumbers the SCAN_ARGs */
static void prune_inputs(Hoist *h) {
  Node *n = graph_node(h->g, h->id);
  bool used[IR_MAX_INPUTS] = {false};
  int map[IR_MAX_INPUTS], kept = 0, seqs = 0, nc = n->attr.scan.n_carry;
  for (NodeId b = 0; b < h->body->n_nodes; b++) {
    const Node *bn = graph_node(h->body, b);
    if (bn->op == OP_SCAN_ARG) used[bn->attr.scan_arg.index] = true;
  }
  for (int i = 0; i < n->n_in; i++) {
    map[i] = -1;
    if (i >= nc && !used[i]) continue;
    seqs += scan_input_kind(n, i) == 1;
    map[i] = kept;
    n->in[kept++] = n->in[i];
  }
  n->n_in = (uint8_t)kept;
  n->attr.scan.n_seq = (int16_t)seqs;
  for (NodeId b = 0; b < h->body->n_nodes; b++) {
    Node *bn = graph_node(h->body, b);
    if (bn->op == OP_SCAN_ARG) bn->attr.scan_arg.index = map[bn->attr.scan_arg.index];
  }
}

/* gives scan h->id a body of its own when another scan shares it */
static bool own_body(Hoist *h) {
  int32_t b = graph_node(h->g, h->id)->attr.scan.body;
  int users = 0;
  for (NodeId j = 0; j < h->g->n_nodes; j++) {
    const Node *n = graph_node(h->g, j);
    users += n->op == OP_SCAN && n->attr.scan.body == b;
  }
  if (users > 1) {
    Graph *copy = graph_clone(h->body, h->body->name);
    if (!copy) return false;
    graph_node(h->g, h->id)->attr.scan.body = graph_add_subgraph(h->g, copy);
  }
  h->body = scan_body(h->g, graph_node(h->g, h->id));
  return h->body != NULL;
}

static bool has_candidate(Hoist *h) {
  for (NodeId b = 0; b < h->body->n_nodes; b++)
    if (proj_matches(h, graph_node(h->body, b))) return true;
  NodeId acc;
  for (int k = 0; k < graph_node(h->g, h->id)->attr.scan.n_carry; k++)
    if (accum_term(h, k, &acc) != IR_NONE || bias_term(h, k, &acc) != IR_NONE) return true;
  for (int k = 0; k < h->body->n_outputs; k++)
    if (dseq_matches(h, k)) return true;
  return false;
}

/* rewrites one scan; *changed is set when anything moved */
static bool hoist_scan(Hoist *h, NodeId *uses, bool *changed) {
  h->body = scan_body(h->g, graph_node(h->g, h->id));
  if (!h->body || !has_candidate(h)) return true;
  if (!own_body(h)) return false;
  bool any = false;
  for (NodeId b = 0; b < h->body->n_nodes && !h->b.failed; b++)
    if (proj_matches(h, graph_node(h->body, b))) any |= hoist_projection(h, b);
  for (int k = 0; k < graph_node(h->g, h->id)->attr.scan.n_carry && !h->b.failed; k++)
    any |= hoist_accum(h, k, uses);
  for (int k = 0; k < graph_node(h->g, h->id)->attr.scan.n_carry && !h->b.failed; k++)
    any |= hoist_bias(h, k, uses); /* after: it needs dG stacked */
  int nc = graph_node(h->g, h->id)->attr.scan.n_carry;
  for (int k = h->body->n_outputs - 1; k >= nc && !h->b.failed; k--)
    any |= hoist_dseq(h, k, uses);
  if (h->b.failed) return false;
  if (!any) return true;
  *changed = true;
  if (!pass_dce(h->body, h->c)) return false;
  prune_inputs(h);
  return true;
}

bool pass_hoist(Graph *g, PassCtx *c) {
  NodeId *uses = malloc(sizeof *uses * (g->n_nodes + 1));
  if (!uses) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in hoist of '%s'", g->name);
    return false;
  }
  bool changed = false, ok = true;
  uint32_t n = g->n_nodes;                  /* nodes added below are never scans */
  for (NodeId id = 0; id < n && ok; id++) { /* first, before the projections leave bodies */
    if (graph_node(g, id)->op != OP_SCAN) continue;
    Hoist h = hoist_init(g, c, id, NULL);
    ok = reuse_scan(&h, &changed);
  }
  for (NodeId id = 0; id < n && ok; id++) {
    if (graph_node(g, id)->op != OP_SCAN) continue;
    Hoist h = hoist_init(g, c, id, NULL);
    ok = hoist_scan(&h, uses, &changed);
  }
  free(uses);
  return ok && (!changed || rw_resort(g, c, "hoist"));
}
