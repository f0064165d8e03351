/* passes/schedule.c — kernel schedules: pass_schedule (and the cost model and cache keys it
 * shares with `lathe tune`: passes_sched_*).
 *
 * Requires: layout (convolution algorithms recorded) and fuse have run; PassCtx.sched set
 *           (without it the pass records nothing and codegen plans as before).
 * Does:     for every f32 2-D matmul, records its schedule (NodeAttr.matmul.sched): packed or
 *           direct GEMM and the packed routine's blocks kc x mc x nc; for every convolution
 *           with a choice of algorithm (the NCHWc layout: direct, Winograd, implicit GEMM),
 *           who chose IrConvAttr.algo. A tuned entry (SchedConfig.lookup, the tune cache of
 *           driver/tune.c, keyed by passes_sched_key) wins when it is valid for the node;
 *           else the cost model below decides (from = model).
 * The cost model (docs/tuning.md). The micro-tile MR x NR is the target's (one kernel per
 * file). The blocking follows the Goto/BLIS analytical model: a kc x NR sliver of packed B
 * stays in L1 while the micro-kernel streams A; an mc x kc block of packed A stays in L2;
 * a kc x nc panel of B in (half of) L3. Each target's blocks were measured on its reference
 * CPU (Zen 4: 32 KiB L1d, 1 MiB L2, 32 MiB L3; codegen/gemm.c's table, passed in as kc_ref,
 * mc_ref), where they sit at or beyond those bounds (AVX-512's kc = 1024 streams B from L2 on
 * purpose); so the model keeps them on a CPU with caches at least as large and shrinks a block
 * to its bound only on a smaller cache: kc in proportion to L1d, mc until mc x kc floats fit
 * L2, nc until kc x nc fit half of L3. K is cut into equal blocks of at most kc. Packed or
 * direct: direct (both operands read in place, codegen/gemm_direct.c) except for the large
 * cubes, every dimension >= 512 (measured on the reference CPU: from 512^3 up packing pays).
 * Convolutions keep the algorithm layout.c chose (its measured rules) unless tuned.
 * Invalidates: nothing (codegen's scratch sizes follow the schedule; memplan runs after).
 */
#include "passes.h"

#include <stdio.h>
#include <string.h>

/* the reference CPU of the targets' measured blocks (Zen 4) */
enum { REF_L1 = 32 << 10, REF_L2 = 1 << 20 };
static const int64_t ref_l3 = 32LL << 20;

/* m, k, n of a matmul the pass schedules: f32, rank 2, not over a sparse B */
static bool matmul_dims(const Graph *g, const Node *n, int64_t *m, int64_t *k, int64_t *nn) {
  if (n->op != OP_MATMUL || n->dtype != DT_F32 || n->shape.rank != 2 || n->attr.matmul.sparse_b)
    return false;
  const Shape *a = &g->nodes[n->in[0]].shape;
  if (a->rank != 2 || g->nodes[n->in[1]].shape.rank != 2) return false;
  *m = n->shape.dim[0];
  *nn = n->shape.dim[1];
  *k = n->attr.matmul.trans_a ? a->dim[0] : a->dim[1];
  return *m >= 1 && *k >= 1 && *nn >= 1;
}

static int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}
static int64_t max64(int64_t a, int64_t b) {
  return a > b ? a : b;
}

/* The cost model's blocks of an m x k x n product (the head comment). */
static void model_blocks(const SchedConfig *c, int64_t m, int64_t k, int64_t n, SchedChoice *out) {
  int64_t l1 = c->cpu.l1d > 0 ? c->cpu.l1d : REF_L1, l2 = c->cpu.l2 > 0 ? c->cpu.l2 : REF_L2;
  int64_t l3 = c->cpu.l3 > 0 ? c->cpu.l3 : ref_l3;
  int64_t mr = max64(c->mr, 1), nr = max64(c->nr, 1);
  int64_t kc_cap = c->kc_ref;
  if (l1 < REF_L1) kc_cap = max64(16, kc_cap * l1 / REF_L1 / 8 * 8);
  int64_t mc_cap = c->mc_ref;
  if (mc_cap * kc_cap * 4 > l2) mc_cap = max64(mr, l2 / (kc_cap * 4) / mr * mr);
  int64_t nc_cap = max64(nr, c->nc_max / nr * nr);
  if (kc_cap * nc_cap * 4 > l3 / 2) nc_cap = max64(nr, l3 / 2 / (kc_cap * 4) / nr * nr);
  int64_t n_kb = max64(1, (k + kc_cap - 1) / kc_cap);
  out->kc = (int32_t)max64(1, (k + n_kb - 1) / n_kb); /* balanced K blocks */
  out->mc = (int32_t)max64(1, min64(m, mc_cap));
  out->nc = (int32_t)max64(1, min64(n, nc_cap));
}

/* ---- convolutions ---------------------------------------------------------------------------- */

static bool is_conv(const Node *n) {
  return n->op == OP_CONV2D || n->op == OP_CONV_TRANSPOSE2D || n->op == OP_CONV2D_GRAD_WEIGHT;
}

/* Winograd's F(2x2, 3x3) can compute it (layout.c's winograd_suits less its measured
 * thresholds on channels and images) */
static bool winograd_can(const Graph *g, const Node *n) {
  const Node *w = &g->nodes[n->in[1]];
  const struct IrConvAttr *a = &n->attr.conv;
  return n->op == OP_CONV2D && a->groups == 1 && w->op != OP_CONST && w->shape.dim[2] == 3 &&
         w->shape.dim[3] == 3 && a->stride[0] == 1 && a->stride[1] == 1 && a->dilation[0] == 1 &&
         a->dilation[1] == 1;
}

int passes_sched_conv_algos(const Graph *g, NodeId id, IrConvAlgo out[IR_CONV_ALGO_COUNT]) {
  const Node *n = &g->nodes[id];
  /* the choices are what the node's layout and operands allow, whatever algo says now */
  if (!is_conv(n) || n->attr.conv.algo == IR_CONV_ALGO_UNSET || !passes_conv_direct_takes(g, n))
    return 0;
  int count = 0;
  out[count++] = IR_CONV_ALGO_DIRECT; /* layout.c chose NCHWc, and the direct kernel takes it */
  if (winograd_can(g, n)) out[count++] = IR_CONV_ALGO_WINOGRAD;
  bool gemm = true; /* the implicit GEMM takes operands that are not constants */
  for (int i = 0; i < 2; i++)
    gemm &= g->nodes[n->in[i]].op != OP_CONST;
  if (gemm) out[count++] = IR_CONV_ALGO_GEMM;
  return count;
}

/* ---- keys and choices ------------------------------------------------------------------------ */

static int conv_key(const Node *n, const Node *x, const Node *w, char *buf, size_t size) {
  const struct IrConvAttr *a = &n->attr.conv;
  return snprintf(buf, size,
                  "%s x=[%lld,%lld,%lld,%lld] w=[%lld,%lld,%lld,%lld] stride=[%d,%d] "
                  "dilation=[%d,%d] pad=[%d,%d,%d,%d] out_pad=[%d,%d] kernel=[%d,%d]",
                  ir_ops[n->op].name, (long long)x->shape.dim[0], (long long)x->shape.dim[1],
                  (long long)x->shape.dim[2], (long long)x->shape.dim[3],
                  (long long)w->shape.dim[0], (long long)w->shape.dim[1],
                  (long long)w->shape.dim[2], (long long)w->shape.dim[3], a->stride[0],
                  a->stride[1], a->dilation[0], a->dilation[1], a->pad[0], a->pad[1], a->pad[2],
                  a->pad[3], a->out_pad[0], a->out_pad[1], a->kernel[0], a->kernel[1]);
}

bool passes_sched_key(const Graph *g, NodeId id, const SchedConfig *c, char *buf, size_t size) {
  const Node *n = &g->nodes[id];
  int64_t m, k, nn;
  IrConvAlgo algos[IR_CONV_ALGO_COUNT];
  char op[400];
  if (matmul_dims(g, n, &m, &k, &nn))
    snprintf(op, sizeof op, "matmul m=%lld k=%lld n=%lld ta=%d tb=%d", (long long)m, (long long)k,
             (long long)nn, n->attr.matmul.trans_a, n->attr.matmul.trans_b);
  else if (passes_sched_conv_algos(g, id, algos) > 1)
    conv_key(n, &g->nodes[n->in[0]], &g->nodes[n->in[1]], op, sizeof op);
  else
    return false;
  int len = snprintf(buf, size, "lathe-tune %d; cpu %s; target %s; %s", LATHE_TUNE_VERSION,
                     c->cpu.model && c->cpu.model[0] ? c->cpu.model : "unknown", c->target, op);
  return len > 0 && (size_t)len < size;
}

bool passes_sched_model(const Graph *g, NodeId id, const SchedConfig *c, SchedChoice *out) {
  const Node *n = &g->nodes[id];
  int64_t m, k, nn;
  IrConvAlgo algos[IR_CONV_ALGO_COUNT];
  memset(out, 0, sizeof *out);
  if (matmul_dims(g, n, &m, &k, &nn)) {
    out->gemm = m >= 512 && k >= 512 && nn >= 512 ? IR_SCHED_GEMM_PACKED : IR_SCHED_GEMM_DIRECT;
    model_blocks(c, m, k, nn, out);
    return true;
  }
  if (passes_sched_conv_algos(g, id, algos) <= 1) return false;
  out->algo = n->attr.conv.algo; /* layout.c's measured rules */
  return true;
}

/* whether a tuned choice t fits node id: a known kernel, blocks within the product */
static bool tuned_valid(const Graph *g, NodeId id, const SchedChoice *t) {
  const Node *n = &g->nodes[id];
  int64_t m, k, nn;
  if (matmul_dims(g, n, &m, &k, &nn))
    return (t->gemm == IR_SCHED_GEMM_PACKED || t->gemm == IR_SCHED_GEMM_DIRECT) && t->kc >= 1 &&
           t->kc <= k && t->mc >= 1 && t->mc <= m && t->nc >= 1 && t->nc <= nn;
  IrConvAlgo algos[IR_CONV_ALGO_COUNT];
  int count = passes_sched_conv_algos(g, id, algos);
  for (int i = 0; i < count; i++)
    if ((int32_t)algos[i] == t->algo) return true;
  return false;
}

/* node id's choice: the tune cache's when it has a valid one, else the cost model's */
static void schedule_node(Graph *g, NodeId id, const SchedConfig *c) {
  SchedChoice ch, tuned;
  if (!passes_sched_model(g, id, c, &ch)) return;
  IrSchedFrom from = IR_SCHED_MODEL;
  char key[640];
  if (c->lookup && passes_sched_key(g, id, c, key, sizeof key) &&
      c->lookup(c->lookup_ctx, key, &tuned) && tuned_valid(g, id, &tuned))
    ch = tuned, from = IR_SCHED_TUNED;
  Node *n = &g->nodes[id];
  if (n->op == OP_MATMUL) {
    n->attr.matmul.sched = (IrSched){
        .gemm = (int8_t)ch.gemm, .from = (int8_t)from, .kc = ch.kc, .mc = ch.mc, .nc = ch.nc};
  } else {
    n->attr.conv.algo = ch.algo;
    n->attr.conv.algo_from = (int32_t)from;
  }
}

bool pass_schedule(Graph *g, PassCtx *c) {
  if (!c->sched) return true;
  for (NodeId id = 0; id < g->n_nodes; id++)
    schedule_node(g, id, c->sched);
  for (int s = 0; s < g->n_subgraphs; s++) /* scan bodies: their GEMMs are kernels too */
    if (!pass_schedule(g->subgraphs[s], c)) return false;
  return true;
}
