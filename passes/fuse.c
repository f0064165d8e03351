/* passes/fuse.c — operator fusion: pass_fuse.
 *
 * Requires: a verified graph after DCE.
 * Does:     sets Node.group: nodes with the same group id (the id of the group's first node)
 *           become one kernel in codegen; -1 means a kernel of its own (or no code at all).
 *           Greedy, in id order:
 *             - an elementwise node (class FUSE_ELEMWISE, or BROADCAST) joins — and merges —
 *               the groups of its inputs that have exactly its shape: elementwise chains
 *               (forward activations, backward masks like relu's `gy * (x > 0)`, the optimizer
 *               update of one parameter with its moments) become one loop; inputs of other
 *               shapes are read broadcast, in place. A square root over a large tensor stays
 *               a loop of its own (scalar_only);
 *             - a MATMUL with 2-D operands seeds a group, and elementwise nodes of its output
 *               shape and dtype join it as an epilogue (bias, activation, residual), applied
 *               to each output tile before it is stored. At most one matmul per group; no
 *               square root or division in an epilogue (light_epilogue). A CONV2D in the
 *               NCHWc layout (passes/layout.c) seeds a group the same way (has_mm: "a matmul
 *               or convolution"), its epilogue applied per image (codegen/conv_direct.c).
 *             - row-wise groups: a softmax or log-softmax along the last axis,
 *               a sum/mean/max over the last axis, or a one-hot of a rank >= 2 "row shape" S
 *               seeds (or turns an elementwise group of its shape into) a row group. Members
 *               are elementwise nodes of shape S ("full"), of S with the last axis 1 or
 *               dropped ("row" values, one per row), reductions of full members over the
 *               last axis, and rank-0 "scalar" members (a reduction of a row member over all
 *               its axes, elementwise ops on scalars). A full member reads row values only in
 *               their keepdims form. Softmax, layer norm, cross-entropy and their backward
 *               chains become one kernel with a per-row loop (codegen/lower_rows.c).
 *             - a MAX_POOL2D whose windows tile its input (stride = kernel, no padding or
 *               dilation) ends the NCHWc conv2d group computing its input, when nothing else
 *               reads that input: the pooling runs on each image's tile while it is in cache
 *               and the full-size activation is never stored (inference; in training the
 *               backward pass reads it, so the pool stays a kernel of its own).
 *           Transposes, other convolutions, other reductions stay kernels of their own.
 * Legality: a node may join group G only if no member of G has so far been read by a node
 *           outside G. A kernel runs at its last member, so this keeps every consumer of a
 *           group after the group and every producer before it (no cycles between kernels);
 *           see passes/kernels.c for the schedule it implies.
 * Also:     relu masks `x > 0` read relu(x) when it exists (mask_from_relu), so x need not be
 *           kept for the backward pass.
 * Scans:    the body of each SCAN of the graph is fused by the same rules, as a graph of its
 *           own: a step's elementwise chains (the LSTM's gates, their backward) become one
 *           loop per step (codegen/lower_scan.c lowers a body's kernels by group, and
 *           passes/memplan_scan.c gives its unstored members no buffer). Bodies of bodies
 *           are left alone (nested scans get no body plan either).
 * Invalidates: the memory plan (memplan must run after: fused intermediates need no buffer).
 */
#include "ir/scan.h"
#include "passes.h"
#include "rewrite.h"

#include <stdlib.h>

typedef struct Fuser {
  Graph *g;
  int32_t *group;  /* per node: its group id, or -1 */
  bool *ext_used;  /* per group id: a member was read by a node outside the group */
  bool *has_mm;    /* per group id: the group contains a matmul (or a conv2d) */
  DType *dtype;    /* per group id: the members' dtype, DT_COUNT when mixed */
  uint32_t *size;  /* per group id: member count */
  bool *row;       /* per group id: a row-wise group, of full shape rshape[id] */
  Shape *rshape;
  bool *heavy;     /* per group id: has a member a matmul epilogue does not take */
  bool *conv;      /* per group id: headed by a conv2d */
  bool *pooled;    /* per group id: ends with a max-pool (nothing joins after it) */
  uint32_t *uses;  /* per node: reads by other nodes and outputs */
} Fuser;

/* A node's shape relative to a row group's full shape S. */
typedef enum { RC_NONE, RC_FULL, RC_ROWK, RC_ROWF, RC_SCAL } RowClass;

static bool is_elementwise(OpKind op) {
  return op == OP_BROADCAST || (ir_ops[op].fusion == FUSE_ELEMWISE && op != OP_CONST);
}

/* SQRT stays out of fused loops over whole tensors: under default C flags sqrtf may set errno,
 * so the C compiler keeps a loop holding it scalar, and the divisions fused around it (Adam's
 * update) would lose their vector form; a loop of its own costs less. Small tensors (under 4096
 * elements: bias updates) and one value per row (layer norm's sqrt(var + eps)) are fused. */
static bool scalar_only(const Node *n) {
  return n->op == OP_SQRT && shape_numel(&n->shape) >= 4096;
}

static bool matmul_seeds(const Graph *g, const Node *n) {
  return n->op == OP_MATMUL && dtype_is_float(n->dtype) && n->shape.rank == 2 &&
         g->nodes[n->in[0]].shape.rank == 2 && g->nodes[n->in[1]].shape.rank == 2;
}

/* A conv2d the layout pass put in the blocked NCHWc layout (a direct convolution, which
 * applies the epilogue to each image's tile while it is in cache, codegen/conv_direct.c)
 * seeds a group like a matmul. */
static bool conv_seeds(const Node *n) {
  return n->op == OP_CONV2D && n->dtype == DT_F32 && n->shape.rank == 4 &&
         n->attr.conv.layout == IR_CONV_NCHWC;
}

static RowClass row_class(const Shape *s, const Shape *full) {
  if (shape_equal(s, full)) return RC_FULL;
  if (s->rank == 0) return RC_SCAL;
  int r = full->rank;
  for (int d = 0; d < r - 1; d++)
    if (d >= s->rank || s->dim[d] != full->dim[d]) return RC_NONE;
  if (s->rank == r && s->dim[r - 1] == 1) return RC_ROWK;
  return s->rank == r - 1 ? RC_ROWF : RC_NONE;
}

/* whether a node of class nc may read a member of class ic inside a row group */
static bool row_reads(RowClass nc, RowClass ic) {
  if (nc == RC_FULL) return ic == RC_FULL || ic == RC_ROWK;
  return nc != RC_NONE && nc == ic;
}

/* the shape class of group grp's members (elementwise groups are of one shape) */
static RowClass group_class(const Fuser *f, int32_t grp, const Shape *full) {
  return f->row[grp] ? RC_FULL : row_class(&f->g->nodes[grp].shape, full);
}

/* whether node n (of class nc in a row group of full shape S) may take in input group grp */
static bool row_can_take(const Fuser *f, const Node *n, int32_t grp, NodeId in, const Shape *S) {
  if (grp < 0 || f->ext_used[grp] || f->has_mm[grp] || f->dtype[grp] != n->dtype) return false;
  if (f->row[grp] && !shape_equal(&f->rshape[grp], S)) return false;
  if (!f->row[grp] && group_class(f, grp, S) == RC_NONE) return false;
  return row_reads(row_class(&n->shape, S), row_class(&f->g->nodes[in].shape, S));
}

/* Ops a matmul epilogue takes. The epilogue runs per element of each finished output tile, a
 * short loop the C compiler does not vectorize; square roots and divisions (Adam's update)
 * cost more there than re-reading the stored values in a flat, vectorized loop of their own. */
static bool light_epilogue(OpKind op) { return op != OP_SQRT && op != OP_DIV; }

/* whether node n may join (elementwise) group grp */
static bool can_join(const Fuser *f, const Node *n, int32_t grp) {
  if (grp < 0 || f->ext_used[grp] || f->row[grp] || f->pooled[grp]) return false;
  if (!shape_equal(&f->g->nodes[grp].shape, &n->shape)) return false;
  return !f->has_mm[grp] || (f->dtype[grp] == n->dtype && light_epilogue(n->op));
}

/* moves every member of group `from` into group `to` */
static void merge_into(Fuser *f, int32_t to, int32_t from, uint32_t upto) {
  for (uint32_t id = (uint32_t)from; id <= upto; id++)
    if (f->group[id] == from) f->group[id] = to;
  f->has_mm[to] |= f->has_mm[from];
  if (f->dtype[to] != f->dtype[from]) f->dtype[to] = DT_COUNT;
  f->size[to] += f->size[from];
  f->heavy[to] |= f->heavy[from];
  f->conv[to] |= f->conv[from];
  if (f->row[from] && !f->row[to]) {
    f->row[to] = true;
    f->rshape[to] = f->rshape[from];
  }
}

/* Adds node id to group target (or seeds a new group when target < 0). */
static void add_member(Fuser *f, NodeId id, int32_t target) {
  const Node *n = &f->g->nodes[id];
  if (target < 0) {
    target = (int32_t)id;
    f->dtype[target] = n->dtype;
    f->size[target] = 0;
  } else if (f->dtype[target] != n->dtype) {
    f->dtype[target] = DT_COUNT;
  }
  f->group[id] = target;
  f->size[target]++;
  f->heavy[target] |= !light_epilogue(n->op);
}

/* joins grp into *target (merging into the lower id) */
static void join_group(Fuser *f, int32_t *target, int32_t grp, NodeId id) {
  if (*target < 0) {
    *target = grp;
  } else if (grp != *target) {
    int32_t lo = grp < *target ? grp : *target, hi = grp < *target ? *target : grp;
    merge_into(f, lo, hi, id);
    *target = lo;
  }
}

/* The row shape S of the first row group among n's inputs, or NULL. */
static const Shape *input_row_shape(const Fuser *f, const Node *n) {
  for (int k = 0; k < n->n_in; k++) {
    int32_t grp = f->group[n->in[k]];
    if (grp >= 0 && f->row[grp] && !f->ext_used[grp] && f->dtype[grp] == n->dtype)
      return &f->rshape[grp];
  }
  return NULL;
}

/* An elementwise node next to a row group joins it (and the compatible groups of its other
 * inputs); returns false when no row group applies. */
static bool place_in_rows(Fuser *f, NodeId id) {
  const Node *n = &f->g->nodes[id];
  const Shape *S0 = input_row_shape(f, n);
  if (!S0 || row_class(&n->shape, S0) == RC_NONE) return false;
  if (scalar_only(n) && row_class(&n->shape, S0) == RC_FULL) return false;
  Shape S = *S0;
  int32_t target = -1;
  for (int k = 0; k < n->n_in; k++) { /* a read no row kernel can do: not in a row group */
    int32_t grp = f->group[n->in[k]];
    if (grp >= 0 && f->row[grp] && shape_equal(&f->rshape[grp], &S) &&
        !row_reads(row_class(&n->shape, &S), row_class(&f->g->nodes[n->in[k]].shape, &S)))
      return false;
  }
  for (int k = 0; k < n->n_in; k++) {
    int32_t grp = f->group[n->in[k]];
    if (row_can_take(f, n, grp, n->in[k], &S)) join_group(f, &target, grp, id);
  }
  if (target < 0) return false;
  if (!f->row[target]) {
    f->row[target] = true;
    f->rshape[target] = S;
  }
  add_member(f, id, target);
  return true;
}

/* The groups node id joins (merged into the lowest id), or a new group seeded by id. */
static void place_elementwise(Fuser *f, NodeId id) {
  const Node *n = &f->g->nodes[id];
  if (dtype_is_float(n->dtype) && place_in_rows(f, id)) return;
  if (scalar_only(n)) return; /* a kernel of its own */
  int32_t target = -1;
  bool mm = false;
  for (int k = 0; k < n->n_in; k++) {
    int32_t grp = f->group[n->in[k]];
    if (!can_join(f, n, grp) || grp == target) continue;
    if (f->has_mm[grp] && mm) continue; /* one matmul per kernel */
    bool with_mm = mm || f->has_mm[grp]; /* an epilogue: one dtype throughout */
    if (with_mm && (f->dtype[grp] != n->dtype || (target >= 0 && f->dtype[target] != n->dtype)))
      continue;
    if (with_mm && (f->heavy[grp] || (target >= 0 && f->heavy[target]))) continue;
    join_group(f, &target, grp, id);
    mm |= f->has_mm[grp];
  }
  add_member(f, id, target);
}

/* A max-pool whose windows tile its input joins the conv2d group computing that input, when
 * nothing else reads it (see the top of the file); returns false when it does not. */
static bool place_pool(Fuser *f, NodeId id) {
  const Node *n = &f->g->nodes[id];
  if (n->op != OP_MAX_POOL2D) return false;
  NodeId x = n->in[0];
  int32_t grp = f->group[x];
  if (n->dtype != DT_F32 || grp < 0 || !f->conv[grp] || f->ext_used[grp] || f->pooled[grp] ||
      f->dtype[grp] != DT_F32 || f->uses[x] != 1 ||
      !shape_equal(&f->g->nodes[x].shape, &f->g->nodes[grp].shape))
    return false;
  const struct IrConvAttr *a = &n->attr.conv;
  for (int ax = 0; ax < 2; ax++)
    if (a->stride[ax] != a->kernel[ax] || a->dilation[ax] != 1 || a->pad[ax] || a->pad[ax + 2])
      return false;
  if ((int64_t)a->kernel[0] * a->kernel[1] > 16 || shape_numel(&n->shape) == 0) return false;
  add_member(f, id, grp);
  f->pooled[grp] = true;
  return true;
}

/* The full shape of the row group node n seeds or joins, or NULL when n is no row op:
 * softmax along the last axis, a reduction over the last axis, a one-hot (rank >= 2). */
static const Shape *row_seed_shape(const Graph *g, const Node *n) {
  if (!dtype_is_float(n->dtype)) return NULL;
  if (n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX)
    return n->shape.rank >= 2 && n->attr.softmax.axis == n->shape.rank - 1 ? &n->shape : NULL;
  if (n->op == OP_ONE_HOT) return n->shape.rank >= 2 ? &n->shape : NULL;
  if (n->op != OP_SUM && n->op != OP_MEAN && n->op != OP_MAX) return NULL;
  const Shape *in = &g->nodes[n->in[0]].shape;
  if (in->rank < 2 || g->nodes[n->in[0]].dtype != n->dtype) return NULL;
  return n->attr.reduce.axes == 1u << (in->rank - 1) ? in : NULL;
}

/* A reduction of a row group's row member over all its axes, to a scalar: its group id. */
static int32_t scalar_reduce_group(const Fuser *f, const Node *n) {
  if (n->op != OP_SUM && n->op != OP_MEAN && n->op != OP_MAX) return -1;
  const Node *in = &f->g->nodes[n->in[0]];
  int32_t grp = f->group[n->in[0]];
  if (n->shape.rank != 0 || grp < 0 || !f->row[grp] || f->ext_used[grp]) return -1;
  if (f->dtype[grp] != n->dtype || in->dtype != n->dtype) return -1;
  RowClass c = row_class(&in->shape, &f->rshape[grp]);
  if (c != RC_ROWK && c != RC_ROWF) return -1;
  return n->attr.reduce.axes == (1u << in->shape.rank) - 1u ? grp : -1;
}

/* Row ops: join the input's group when it is compatible, else seed a row group. */
static bool place_row_op(Fuser *f, NodeId id) {
  const Node *n = &f->g->nodes[id];
  int32_t grp = scalar_reduce_group(f, n);
  if (grp >= 0) {
    add_member(f, id, grp);
    return true;
  }
  const Shape *S = row_seed_shape(f->g, n);
  if (!S) return false;
  Shape full = *S;
  int32_t target = -1;
  if (n->op != OP_ONE_HOT) {
    grp = f->group[n->in[0]];
    if (grp >= 0 && !f->ext_used[grp] && !f->has_mm[grp] && f->dtype[grp] == n->dtype &&
        (f->row[grp] ? shape_equal(&f->rshape[grp], &full)
                     : shape_equal(&f->g->nodes[grp].shape, &full)))
      target = grp;
  }
  add_member(f, id, target);
  target = f->group[id];
  f->row[target] = true;
  f->rshape[target] = full;
  return true;
}

/* Before grouping: relu's derivative mask `x > 0` reads relu(x) instead of x when the graph
 * computes relu(x) (relu(x) > 0 exactly when x > 0, NaN included). The pre-activation x is
 * then read only by the forward kernel computing relu(x) and lives in a register there,
 * instead of staying in the workspace from the forward pass to the backward pass. */
static void mask_from_relu(Graph *g) {
  NodeId *relu_of = malloc((g->n_nodes + 1) * sizeof *relu_of);
  if (!relu_of) return; /* an optimization only */
  for (NodeId id = 0; id < g->n_nodes; id++)
    relu_of[id] = IR_NONE;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    Node *n = &g->nodes[id];
    if (n->op == OP_RELU && relu_of[n->in[0]] == IR_NONE) relu_of[n->in[0]] = id;
    if (n->op != OP_GT || !rw_is_splat(g, n->in[1], 0.0)) continue;
    NodeId r = relu_of[n->in[0]];
    if (r != IR_NONE && g->nodes[r].dtype == g->nodes[n->in[0]].dtype &&
        shape_equal(&g->nodes[r].shape, &g->nodes[n->in[0]].shape))
      n->in[0] = r;
  }
  free(relu_of);
}

static void fuse_run(Fuser *f) {
  Graph *g = f->g;
  mask_from_relu(g);
  for (NodeId id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < g->nodes[id].n_in; k++)
      f->uses[g->nodes[id].in[k]]++;
  for (int i = 0; i < g->n_outputs; i++)
    f->uses[g->outputs[i].node]++;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    f->group[id] = -1;
    if (f->uses[id] == 0) {
      /* read by nothing (a scan body is not dead-code eliminated): a kernel of its own, as
       * before fusion; inside a group it would be a local nobody reads */
    } else if (is_elementwise(n->op)) {
      place_elementwise(f, id);
    } else if (matmul_seeds(g, n) || conv_seeds(n)) {
      f->group[id] = (int32_t)id;
      f->has_mm[id] = true;
      f->conv[id] = n->op == OP_CONV2D;
      f->dtype[id] = n->dtype;
      f->size[id] = 1;
    } else if (!place_pool(f, id)) {
      place_row_op(f, id);
    }
    for (int k = 0; k < n->n_in; k++) {
      int32_t grp = f->group[n->in[k]];
      if (grp >= 0 && grp != f->group[id]) f->ext_used[grp] = true;
    }
  }
  for (NodeId id = 0; id < g->n_nodes; id++) { /* a group of one is just a kernel */
    int32_t grp = f->group[id];
    g->nodes[id].group = grp >= 0 && f->size[grp] > 1 ? grp : -1;
  }
}

/* Groups the nodes of one graph (an entry, or a scan body). */
static bool fuse_graph(Graph *g, PassCtx *c) {
  uint32_t n = g->n_nodes + 1;
  Fuser f = {g,
             calloc(n, sizeof(int32_t)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(DType)),
             calloc(n, sizeof(uint32_t)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(Shape)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(bool)),
             calloc(n, sizeof(uint32_t))};
  bool ok = f.group && f.ext_used && f.has_mm && f.dtype && f.size && f.row && f.rshape &&
            f.heavy && f.conv && f.pooled && f.uses;
  if (ok)
    fuse_run(&f);
  else
    diag_error(c->diag, (SrcLoc){0}, "out of memory while fusing '%s'", g->name);
  free(f.group);
  free(f.ext_used);
  free(f.has_mm);
  free(f.dtype);
  free(f.size);
  free(f.row);
  free(f.rshape);
  free(f.heavy);
  free(f.conv);
  free(f.pooled);
  free(f.uses);
  g->workspace_bytes = -1;
  return ok;
}

bool pass_fuse(Graph *g, PassCtx *c) {
  bool ok = fuse_graph(g, c);
  for (NodeId id = 0; ok && id < g->n_nodes; id++) { /* each step's kernels: see the head */
    const Node *n = &g->nodes[id];
    Graph *body = n->op == OP_SCAN ? scan_body(g, n) : NULL;
    if (body) ok = fuse_graph(body, c);
  }
  return ok;
}
