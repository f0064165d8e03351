/* passes/layout.c — layout rewrites before fusion: pass_layout.
 *
 * Requires: a verified graph after DCE.
 * Does:     transposes that feed a matmul become the matmul's operand variant. A MATMUL operand
 *           `transpose(x, p)` whose permutation p swaps the two matrix axes last (p = q then
 *           swap of the last two axes):
 *             - when q is the identity, the matmul reads x directly with its trans_a/trans_b
 *               flag toggled (no copy at all);
 *             - otherwise, when the transpose is read by nothing but matmuls (and is no graph
 *               output), it becomes transpose(x, q) and every reading matmul toggles its flag:
 *               the copy then moves whole contiguous rows (q keeps the last axis) instead of
 *               gathering one element per stride, and the GEMM reads the operand transposed.
 *           (Transposes of transposes are composed by simplify; the backward pass of a matmul is
 *           already written with the flags by autodiff.)
 *           Batch norm in inference entries folds into the preceding convolution's weights
 *           (layout_bn.c). Each f32 convolution then gets its layout: the blocked NCHWc
 *           direct kernel or the NCHW implicit GEMM (choose_conv_layout), and its algorithm
 *           (IrConvAttr.algo, passes_conv_algo): naive loops, the implicit GEMM, the direct
 *           NCHWc convolution or Winograd's F(2x2, 3x3) in the direct path; codegen obeys it.
 *           Then dce removes what became dead.
 * Invalidates: node ids when dce removes nodes; the memory plan.
 */
#include "layout.h"

#include <stdlib.h>
#include <string.h>

/* q = p with its last two entries swapped; true when q is the identity */
static bool strip_swap(const Node *t, int8_t *q) {
  int r = t->shape.rank;
  memcpy(q, t->attr.transpose.perm, sizeof t->attr.transpose.perm);
  int8_t tmp = q[r - 1];
  q[r - 1] = q[r - 2];
  q[r - 2] = tmp;
  bool identity = true;
  for (int d = 0; d < r; d++)
    identity &= q[d] == d;
  return identity;
}

static void toggle(Node *m, int k) {
  if (k == 0)
    m->attr.matmul.trans_a = !m->attr.matmul.trans_a;
  else
    m->attr.matmul.trans_b = !m->attr.matmul.trans_b;
}

/* uses[id]: readers of id that are not matmul operands, plus graph outputs */
static void count_other_uses(const Graph *g, uint32_t *other) {
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    for (int k = 0; k < n->n_in; k++)
      if (n->op != OP_MATMUL) other[n->in[k]]++;
  }
  for (int i = 0; i < g->n_outputs; i++)
    other[g->outputs[i].node]++;
}

/* transpose t (read only by matmuls) becomes transpose(x, q); every reading matmul toggles */
static void rewrite_transpose(Graph *g, NodeId t, const int8_t *q) {
  Node *tn = &g->nodes[t];
  int r = tn->shape.rank;
  memcpy(tn->attr.transpose.perm, q, sizeof tn->attr.transpose.perm);
  int64_t tmp = tn->shape.dim[r - 1];
  tn->shape.dim[r - 1] = tn->shape.dim[r - 2];
  tn->shape.dim[r - 2] = tmp;
  for (NodeId id = t + 1; id < g->n_nodes; id++) {
    Node *m = &g->nodes[id];
    if (m->op != OP_MATMUL) continue;
    for (int k = 0; k < 2; k++)
      if (m->in[k] == t) toggle(m, k);
  }
}

/* Folds the transposed operands of matmul id; true if anything changed. */
static bool fold_operands(Graph *g, NodeId id, const uint32_t *other) {
  bool changed = false;
  for (int k = 0; k < 2; k++) {
    Node *m = &g->nodes[id];
    const Node *t = &g->nodes[m->in[k]];
    if (t->op != OP_TRANSPOSE || t->shape.rank < 2) continue;
    if (m->in[0] == m->in[1]) continue; /* both operands: one flag each, keep it simple */
    int8_t q[IR_MAX_RANK];
    bool identity = strip_swap(t, q);
    int r = t->shape.rank;
    if (identity) {
      m->in[k] = t->in[0];
      toggle(m, k);
      changed = true;
    } else if (other[m->in[k]] == 0 && q[r - 1] == r - 1 &&
               t->attr.transpose.perm[r - 1] != r - 1) {
      rewrite_transpose(g, m->in[k], q);
      changed = true;
    }
  }
  return changed;
}

/* The layout of each f32 convolution: IR_CONV_NCHWC (a direct convolution, output channels
 * blocked by the vector width, codegen/conv_direct.c) when its working set stays in cache,
 * else the NCHW implicit GEMM. The direct kernel reads each input row straight from the image
 * (no im2col packing) and keeps a row block of output pixels x two channel vectors in
 * registers; it wins where packing and ragged GEMM edges dominate: few channels, small
 * images. Limits (bytes, for the widest vector, 16 floats): the input rows one output row
 * reads (C * KH * W), and the packed weights of a pair of channel vectors (C * KH * KW * 32).
 * One group only, at least 8 output channels and 4 output columns. Baked (constant) weights
 * of a forward convolution qualify: the kernel then reads them blocked at compile time. A
 * transposed convolution of stride 1 (the input gradient of a convolution) qualifies as the
 * convolution it is; the weight gradient of a convolution that qualifies does too (the same blocked
 * kernel, with the sums over pixels in registers). */
enum { DIRECT_ROWS_MAX = 512 << 10, DIRECT_WEIGHTS_MAX = 512 << 10 };

static bool choose_conv_layout(Graph *g, NodeId id) {
  Node *n = &g->nodes[id];
  const Node *x = &g->nodes[n->in[0]], *w = &g->nodes[n->in[1]];
  bool gw = n->op == OP_CONV2D_GRAD_WEIGHT;
  if ((n->op != OP_CONV2D && n->op != OP_CONV_TRANSPOSE2D && !gw) ||
      n->attr.conv.layout != IR_CONV_NCHW || n->dtype != DT_F32 || x->op == OP_CONST ||
      (w->op == OP_CONST && (n->op != OP_CONV2D || !w->attr.constant.data)) ||
      n->attr.conv.groups != 1)
    return false;
  if (gw) w = n; /* the weight gradient: (X, dY) -> dW */
  int64_t kh = w->shape.dim[2], kw = w->shape.dim[3];
  struct IrConvAttr a = n->attr.conv; /* a transposed convolution: as the convolution it is */
  if (n->op == OP_CONV_TRANSPOSE2D && !ir_conv_transpose_as_conv(n, w->shape.dim + 2, &a))
    return false;
  int64_t c = x->shape.dim[1], wp = x->shape.dim[3] + a.pad[1] + a.pad[3];
  const Shape *ys = gw ? &g->nodes[n->in[1]].shape : &n->shape; /* the output grid */
  if (ys->dim[1] < 8 || ys->dim[3] < 4 || c * kh * wp * 4 > DIRECT_ROWS_MAX ||
      c * kh * kw * 32 * 4 > DIRECT_WEIGHTS_MAX)
    return false;
  n->attr.conv.layout = IR_CONV_NCHWC;
  return true;
}

/* Whether the direct NCHWc kernel (codegen/conv_direct.c) takes conv node n of layout
 * IR_CONV_NCHWC: single-group f32 rank-4 operands (a transposed convolution: of stride 1, as
 * the convolution it is), the image not a constant, the weights a constant only when baked
 * into a forward convolution (conv_direct.c blocks them at compile time). */
bool passes_conv_direct_takes(const Graph *g, const Node *n) {
  bool tr = n->op == OP_CONV_TRANSPOSE2D;
  if (n->attr.conv.layout != IR_CONV_NCHWC || n->dtype != DT_F32 || n->attr.conv.groups != 1 ||
      n->shape.rank != 4)
    return false;
  if (tr && !ir_conv_transpose_as_conv(n, g->nodes[n->in[1]].shape.dim + 2, NULL)) return false;
  for (int i = 0; i < 2; i++) {
    const Node *in = &g->nodes[n->in[i]];
    if (in->dtype != DT_F32 || in->shape.rank != 4) return false;
    if (in->op == OP_CONST && !(i == 1 && n->op == OP_CONV2D && in->attr.constant.data))
      return false;
  }
  return true;
}

/* Winograd's F(2x2, 3x3) (codegen/conv_winograd.c) in the direct path: a forward convolution
 * with a 3x3 kernel, stride and dilation 1, at least 16 input and output channels and at
 * least 4 images, where the per-call weight transform pays for itself (measured: at 1 image
 * it does not, CNN b1 141 -> 67 us without it), weights not baked. Not the stride-1 input
 * gradient: its input transform of rows of 7 tiles stays scalar and costs what it saves. */
static bool winograd_suits(const Graph *g, const Node *n) {
  const Shape *w = &g->nodes[n->in[1]].shape;
  const struct IrConvAttr *a = &n->attr.conv;
  return n->op == OP_CONV2D && a->groups == 1 && g->nodes[n->in[1]].op != OP_CONST &&
         w->dim[2] == 3 && w->dim[3] == 3 && a->stride[0] == 1 && a->stride[1] == 1 &&
         a->dilation[0] == 1 && a->dilation[1] == 1 && w->dim[0] >= 16 && w->dim[1] >= 16 &&
         g->nodes[n->in[0]].shape.dim[0] >= 4;
}

/* The implicit GEMM (codegen/conv_gemm.c) takes f32 rank-4 operands that are not constants. */
static bool gemm_takes(const Graph *g, const Node *n) {
  if (n->dtype != DT_F32 || n->shape.rank != 4 || n->attr.conv.groups < 1) return false;
  for (int i = 0; i < 2; i++) {
    const Node *in = &g->nodes[n->in[i]];
    if (in->dtype != DT_F32 || in->shape.rank != 4 || in->op == OP_CONST) return false;
  }
  return true;
}

IrConvAlgo passes_conv_algo(const Graph *g, NodeId id) {
  const Node *n = &g->nodes[id];
  if (n->op != OP_CONV2D && n->op != OP_CONV_TRANSPOSE2D && n->op != OP_CONV2D_GRAD_WEIGHT)
    return IR_CONV_ALGO_UNSET;
  if (passes_conv_direct_takes(g, n))
    return winograd_suits(g, n) ? IR_CONV_ALGO_WINOGRAD : IR_CONV_ALGO_DIRECT;
  return gemm_takes(g, n) ? IR_CONV_ALGO_GEMM : IR_CONV_ALGO_NAIVE;
}

bool pass_layout(Graph *g, PassCtx *c) {
  uint32_t *other = calloc(g->n_nodes + 1, sizeof *other);
  if (!other) {
    diag_error(c->diag, (SrcLoc){0}, "out of memory in layout of '%s'", g->name);
    return false;
  }
  count_other_uses(g, other);
  bool changed = false;
  for (NodeId id = 0; id < g->n_nodes; id++)
    if (g->nodes[id].op == OP_MATMUL) changed |= fold_operands(g, id, other);
  free(other);
  if (!layout_fold_bn(g, c, &changed)) return false;
  for (NodeId id = 0; id < g->n_nodes; id++) /* after folding: the convs that remain */
    changed |= choose_conv_layout(g, id);
  for (NodeId id = 0; id < g->n_nodes; id++) { /* recorded for codegen; no rewrite */
    IrConvAlgo algo = passes_conv_algo(g, id);
    if (algo != IR_CONV_ALGO_UNSET) g->nodes[id].attr.conv.algo = algo;
  }
  if (!changed) return true;
  g->workspace_bytes = -1;
  return pass_dce(g, c);
}
