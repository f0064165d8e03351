/* passes/passes.h — the pass manager and the passes; the public header of passes/.
 *
 * Every pass is `bool pass_NAME(Graph *, PassCtx *)`, listed once in passes.def. The driver
 * (pipeline.c) derives the entry-point graphs of a Module (forward, train steps) from its
 * model graph, then runs the pipeline on each, verifying after every pass when asked.
 */
#ifndef LATHE_PASSES_PASSES_H
#define LATHE_PASSES_PASSES_H

#include "ir/ir.h"

/* What passes/schedule.c chooses kernel schedules for (docs/tuning.md): the target's GEMM
 * micro-tile and its measured blocking, the CPU's caches, and the tune cache. The driver fills
 * it (driver/tune.c); passes/ knows neither codegen's targets nor files. */
typedef struct SchedCpu {
  const char *model;   /* "AMD EPYC 7B13", from /proc/cpuinfo; "" when unknown */
  int64_t l1d, l2, l3; /* data cache bytes per level (sysfs); 0 = unknown */
} SchedCpu;

/* One kernel's choice, as the tune cache stores it. */
typedef struct SchedChoice {
  int32_t gemm;       /* matmul: IrSchedGemm */
  int32_t kc, mc, nc; /* matmul: the packed GEMM's blocks */
  int32_t algo;       /* convolution: IrConvAlgo */
} SchedChoice;

typedef struct SchedConfig {
  const char *target;     /* codegen's resolved target name ("x86-64-v3") */
  int vec, mr, nr;        /* floats per vector (0: scalar), the GEMM micro-tile */
  int64_t kc_ref, mc_ref; /* the target's K and M blocks, measured on its reference CPU */
  int64_t nc_max;         /* the widest N panel codegen packs (bounds the scratch) */
  SchedCpu cpu;           /* this machine; zero caches: the reference CPU's */
  /* the tuned choice for key (passes_sched_key), true when there is one; NULL: none */
  bool (*lookup)(void *ctx, const char *key, SchedChoice *out);
  void *lookup_ctx;
} SchedConfig;

typedef struct PassCtx {
  Diag *diag;
  int opt_level;         /* 0..3 */
  bool verify;           /* run ir_verify after every pass */
  const char **disabled; /* pass names not to run */
  int n_disabled;
  const char *dump_after; /* pass name: print the IR after it into dump */
  char *dump;             /* malloc'd IR text captured by dump_after, or NULL */
  bool time_passes;       /* accumulate per-pass times into `timings` */
  double timings[32];     /* seconds per pass, in passes.def order */
  Arena scratch;          /* per-pass scratch memory, reset between passes */
  bool want_grad;         /* also derive a "grad" entry (gradients of steps[0]'s loss) */
  bool want_train;        /* derive train entries from the train block (default true) */
  bool want_eval;         /* derive "evaluate": the outputs and steps[0]'s loss, no update */
  const char *grad_step;  /* the named train step whose loss "grad" differentiates; NULL =
                           * the first */
  bool want_split;        /* split that step at the gradient exchange: "grad" (which then also
                           * updates the batch-norm running statistics) and "apply" (the
                           * optimizer update, gradients as inputs); needs want_train */
  /* kernel schedules (passes/schedule.c, docs/tuning.md); NULL: none recorded */
  const SchedConfig *sched;
} PassCtx;

void pass_ctx_init(PassCtx *c, Diag *d);
void pass_ctx_fini(PassCtx *c);

#define PASS(name, level, desc) bool pass_##name(Graph *g, PassCtx *c);
#include "passes.def"
#undef PASS

/* Derive the entry graphs of m from m->model (forward; one train graph per TrainStep) and
 * run the pipeline on each. Returns false with diagnostics on error. */
bool passes_run_module(Module *m, PassCtx *c);
/* ---- the kernel schedule (passes/kernels.c): analyses shared by memplan, codegen users and
 * `lathe dump`. A kernel is a fusion group (Node.group >= 0, see passes/fuse.c) or one
 * ungrouped computing node; it runs at the position of its last member, so kernels execute in
 * the order of their last members' ids. Sources, constants and reshapes need no code. ---- */

/* true for the ops that produce no kernel: INPUT, PARAM, STATE, CONST, RESHAPE */
bool graph_op_is_view(OpKind op);
/* kernel_of[id] = index, in execution order, of the kernel computing node id, or -1 when the
 * node needs no code. Returns the number of kernels. kernel_of has n_nodes entries. */
int32_t graph_fill_kernels(const Graph *g, int32_t *kernel_of);
/* stored[id] = whether node id's value is materialized: it is a graph output, or read by a
 * node of another kernel. A fused member that is not stored lives in a register only. */
void graph_fill_stored(const Graph *g, bool *stored);

/* A buffer of the plan; at run-time batch n it holds bytes_n * n + bytes bytes from byte
 * offset_n * n + offset (bytes_n and offset_n are 0 in a static module). */
typedef struct PlanBuffer {
  NodeId node;      /* the node whose value the buffer holds (its storage root) */
  int64_t bytes;    /* size, rounded up to the plan's 64-byte alignment; 0 for a dynamic one */
  int64_t bytes_n;  /* a dynamic buffer's size per unit of n, rounded up likewise; else 0 */
  int64_t offset;   /* byte offset in the workspace (node->offset) */
  int64_t offset_n; /* its part per unit of n (node->offset_n) */
  int32_t first;    /* kernel that writes it */
  int32_t last;     /* last kernel that reads it; n_kernels when it is live to the end */
} PlanBuffer;
/* After memplan: one entry per workspace buffer (out has room for n_nodes), in the order they
 * are defined; returns the count. *total_bytes (if non-NULL) receives the sum of their sizes
 * — what the entry would need without any reuse (at the bound, in a dynamic module). */
int graph_fill_buffers(const Graph *g, PlanBuffer *out, int64_t *total_bytes);

/* The algorithm of convolution node id of g (CONV2D, CONV_TRANSPOSE2D, CONV2D_GRAD_WEIGHT;
 * UNSET for any other op), from its layout and shapes: what passes/layout.c records in
 * IrConvAttr.algo, and what codegen takes when the layout pass did not run. */
IrConvAlgo passes_conv_algo(const Graph *g, NodeId id);
/* whether the direct NCHWc kernel takes conv node n as laid out (passes/layout.c) */
bool passes_conv_direct_takes(const Graph *g, const Node *n);
/* passes/schedule.c: the tune-cache key of node id's kernel under c ("matmul m=64 k=784 n=256
 * ta=0 tb=0" and the target, CPU and tuning version), written into buf; false when the pass
 * schedules no such node (not an f32 2-D matmul or a convolution with a choice of algorithm) */
bool passes_sched_key(const Graph *g, NodeId id, const SchedConfig *c, char *buf, size_t size);
/* the cost model's choice for node id (what pass_schedule records without a tuned entry);
 * false as for passes_sched_key */
bool passes_sched_model(const Graph *g, NodeId id, const SchedConfig *c, SchedChoice *out);
/* the convolution algorithms node id may take (layout and operands allowing), into out[];
 * returns their number (0 when it is no such convolution) */
int passes_sched_conv_algos(const Graph *g, NodeId id, IrConvAlgo out[IR_CONV_ALGO_COUNT]);
/* the version of the schedule choices: part of every tune-cache key; raise it when the
 * kernels a choice names change meaning */
#define LATHE_TUNE_VERSION 1

/* names and descriptions, for --help and --disable checking */
int passes_count(void);
const char *passes_name(int i);
const char *passes_description(int i);

#endif
