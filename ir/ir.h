/* ir/ir.h — the graph IR: modules, graphs, nodes, shapes, dtypes; the public header of ir/.
 *
 * A Module is one elaborated .lathe model: its input, param and state declarations, the
 * model graph, the train steps, and the entry-point graphs derived from them (forward,
 * train, train_<step>). A Graph is an array of fixed-size Nodes addressed by 32-bit ids.
 *
 * Invariants (checked by ir_verify):
 *   - every input of node i has an id < i, so id order is a topological order;
 *   - node->shape/dtype are what the op's infer hook computes from its inputs and attrs;
 *   - source nodes (INPUT/PARAM/STATE) index into the owning Module's tables.
 */
#ifndef LATHE_IR_IR_H
#define LATHE_IR_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

#define IR_MAX_RANK 8
#define IR_MAX_INPUTS 16   /* SCAN takes carries, sequences and captures as inputs */
#define IR_NONE UINT32_MAX /* "no node" */

typedef uint32_t NodeId;

/* ---- dtypes and shapes ------------------------------------------------------------------ */

/* DT_I8: int8 tensors of the quantized ops (docs/int8.md); codes are the descriptor's LATHE_* */
typedef enum DType { DT_F32, DT_F64, DT_I32, DT_I64, DT_U8, DT_I8, DT_COUNT } DType;

/* A shape. One dimension of a module may be dynamic (docs/dynamic-batch.md): its extent n is
 * chosen per call, 1 <= n <= Module.dyn_max. Only axis 0 of a shape can depend on it: when
 * dyn = k >= 1, dim[0] is k * n at run time and holds its value at the bound (k * dyn_max),
 * so every static rule sees the shape at the bound; strides never depend on n. */
typedef struct Shape {
  int32_t rank;             /* 0 = scalar */
  int64_t dim[IR_MAX_RANK]; /* dims [0, rank) are >= 1; the rest are 0 */
  int64_t dyn;              /* 0: static; k >= 1: dim[0] = k * n (rank >= 1) */
} Shape;

const char *dtype_name(DType t);   /* "f32", "f64", "i32", "i64", "u8", "i8" */
size_t dtype_size(DType t);        /* bytes per element */
const char *dtype_c_name(DType t); /* "float", "double", "int32_t", ... */
bool dtype_is_float(DType t);
bool dtype_from_name(const char *name, DType *out);

int64_t shape_numel(const Shape *s);
bool shape_equal(const Shape *a, const Shape *b);
Shape shape_make(int rank, const int64_t *dims);
/* "[64, 784]"; buf of at least 200 bytes; returns buf */
char *shape_str(const Shape *s, char *buf, size_t size);
/* NumPy broadcasting of a and b into out; false if incompatible */
bool shape_broadcast(const Shape *a, const Shape *b, Shape *out);

/* A dense C-order tensor. Who allocates it frees it (tensor_free for tensor_alloc'd ones). */
typedef struct Tensor {
  DType dtype;
  Shape shape;
  void *data; /* shape_numel * dtype_size bytes */
} Tensor;

bool tensor_alloc(Tensor *t, DType dtype, const Shape *shape); /* zero-filled */
void tensor_free(Tensor *t);
double tensor_get(const Tensor *t, int64_t i); /* element i (C order) as double */
void tensor_set(Tensor *t, int64_t i, double v);
/* integer tensors only: element i exactly, and element i set to v's low bits (wrapping) */
int64_t tensor_get_int(const Tensor *t, int64_t i);
void tensor_set_wrap(Tensor *t, int64_t i, uint64_t v);

/* ---- ops ---------------------------------------------------------------------------------- */

typedef enum OpKind {
#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower) OP_##e,
#include "ops.def"
#undef OP
  OP_COUNT
} OpKind;

/* Fusion classes, ordered so that merging two groups takes the max (TVM's OpPatternKind). */
typedef enum FusionClass {
  FUSE_ELEMWISE,  /* out[i] = f(in[i]...) with broadcasting */
  FUSE_INJECTIVE, /* each output element reads one input element (reshape, transpose) */
  FUSE_REDUCE,    /* reductions, softmax */
  FUSE_OUT_EWISE, /* matmul/conv: elementwise epilogues may fuse into the output */
  FUSE_OPAQUE,    /* never fused */
  FUSE_COUNT
} FusionClass;

/* Which NodeAttr fields an op uses (the attr column of ops.def). ir/attr.c prints, reads,
 * compares and hashes the attributes by kind; the fields are documented on NodeAttr below. */
typedef enum IrAttrKind {
  ATTR_NONE,     /* no attributes (elementwise ops, where, gather, pack) */
  ATTR_SOURCE,   /* source.index: INPUT, PARAM, STATE */
  ATTR_CONST,    /* constant: CONST */
  ATTR_SHAPE,    /* reshape.shape (the result type): RESHAPE, BROADCAST */
  ATTR_CAST,     /* cast.dtype (the result type): CAST */
  ATTR_AXES,     /* reduce: SUM, MEAN, MAX */
  ATTR_AXIS,     /* softmax.axis: SOFTMAX, LOG_SOFTMAX, WRITE_AT */
  ATTR_PERM,     /* transpose.perm: TRANSPOSE */
  ATTR_MATMUL,   /* matmul.trans_a, trans_b: MATMUL */
  ATTR_ONE_HOT,  /* one_hot: ONE_HOT */
  ATTR_SCAN,     /* scan: SCAN */
  ATTR_SCAN_ARG, /* scan_arg: SCAN_ARG */
  ATTR_UNPACK,   /* unpack: UNPACK */
  ATTR_SLICE,    /* slice: SLICE, UNSLICE */
  ATTR_ROWS,     /* gather.rows (the result type): SCATTER_ADD */
  ATTR_RANDOM,   /* random.stream, dist, dtype, shape: RANDOM */
  ATTR_DROPOUT,  /* random.stream, p: DROPOUT */
  ATTR_CONV,     /* conv: CONV2D, CONV_TRANSPOSE2D, CONV2D_GRAD_WEIGHT, MAX_POOL2D* */
  ATTR_MODE,     /* mode.train: TRAIN_SELECT */
  ATTR_QUANT,    /* quant: QUANTIZE, FAKE_QUANT, FAKE_QUANT_MASK, QDENSE */
  ATTR_QCONV,    /* quant with its geometry: QCONV2D */
  ATTR_TOPK,     /* topk: TOPK (issue 22) */
  ATTR_PRUNE,    /* prune: PRUNE_MASK (issue 20) */
  ATTR_REPLICA,  /* replica.cotangent: REPLICA_SUM (issue 21) */
  ATTR_KIND_COUNT
} IrAttrKind;

typedef struct OpInfo {
  const char *name; /* text name */
  int arity;        /* -1 = variadic */
  FusionClass fusion;
  IrAttrKind attr; /* the NodeAttr fields the op uses */
} OpInfo;

extern const OpInfo ir_ops[OP_COUNT];
bool op_from_name(const char *name, OpKind *out);

/* Per-op attributes: each variant names the ops that make it valid. */
/* How a CONV2D, a stride-1 CONV_TRANSPOSE2D or a CONV2D_GRAD_WEIGHT computes
 * (IrConvAttr.layout; operands and results are NCHW either way):
 * IR_CONV_NCHW: an implicit GEMM over the NCHW image (codegen/conv_gemm.c);
 * IR_CONV_NCHWC: a direct convolution with the output channels blocked by the vector width
 * (NCHWc): weights repacked [O/c][C*KH*KW][c], each image computed into a blocked tile and
 * unblocked into NCHW while it is in cache; the weight gradient blocks dY the same way and
 * sums [O/c][C*KH*KW][c] (codegen/conv_direct.c). */
typedef enum IrConvLayout { IR_CONV_NCHW = 0, IR_CONV_NCHWC = 1 } IrConvLayout;
/* How a MATMUL over a baked, mostly-zero B runs (IrMatmulAttr.sparse_b, recorded by
 * passes/sparsify.c, obeyed by codegen/sparse.c; printed as the flag sparse_<name>):
 * NONE: dense; DOT (sparse_b): each output a dot product over one column's nonzeros;
 * UNROLLED: the nonzeros as literals in straight-line code (small weights);
 * PANEL: batch > 4: panels of rows of A transposed, each column's nonzeros a vector FMA. */
typedef enum IrSparseKernel {
  IR_SPARSE_NONE = 0,
  IR_SPARSE_DOT,
  IR_SPARSE_UNROLLED,
  IR_SPARSE_PANEL,
} IrSparseKernel;
/* Which algorithm computes a CONV2D, CONV_TRANSPOSE2D or CONV2D_GRAD_WEIGHT
 * (IrConvAttr.algo), recorded by passes/layout.c and obeyed by codegen/lower_conv.c:
 * IR_CONV_ALGO_UNSET: not chosen (no layout pass ran: -O0, -O1, --disable=layout; codegen
 *   then takes what the layout pass would record, passes_conv_algo);
 * NAIVE: plain loops (any dtype, baked weights on the NCHW path, ...);
 * GEMM: the implicit GEMM over the NCHW image (codegen/conv_gemm.c);
 * DIRECT: the direct NCHWc convolution (codegen/conv_direct.c), layout IR_CONV_NCHWC;
 * WINOGRAD: F(2x2, 3x3) inside the direct path (codegen/conv_winograd.c), IR_CONV_NCHWC.
 * DIRECT and WINOGRAD need vector kernels: on a target without them (generic), or when a
 * weight gradient's kernel row needs more registers than the target has, they run as GEMM
 * (cg_conv_algo, the one place that knows the target). Printed as `algo=NAME`. */
typedef enum IrConvAlgo {
  IR_CONV_ALGO_UNSET = 0,
  IR_CONV_ALGO_NAIVE,
  IR_CONV_ALGO_GEMM,
  IR_CONV_ALGO_DIRECT,
  IR_CONV_ALGO_WINOGRAD,
  IR_CONV_ALGO_COUNT
} IrConvAlgo;
/* "naive", "gemm", "direct", "winograd" (NULL for UNSET); ir_conv_algo_parse: false if none */
const char *ir_conv_algo_name(IrConvAlgo a);
bool ir_conv_algo_parse(const char *name, IrConvAlgo *out);

/* A matmul's kernel schedule (NodeAttr.matmul.sched), recorded by passes/schedule.c and obeyed
 * by codegen/gemm.c (docs/tuning.md). from == IR_SCHED_UNSET: nothing recorded (the pass did
 * not run or does not schedule this matmul); codegen then plans it as the cost model would
 * for the target's reference CPU. Printed as `gemm=packed|direct, blocks=[kc, mc, nc],
 * from=model|tuned`. */
typedef enum IrSchedGemm {
  IR_SCHED_GEMM_UNSET = 0,
  IR_SCHED_GEMM_PACKED, /* lathe_gemm: A and B packed into slivers (codegen/gemm.c) */
  IR_SCHED_GEMM_DIRECT, /* lathe_gemm_direct: both read in place (codegen/gemm_direct.c) */
  IR_SCHED_GEMM_COUNT
} IrSchedGemm;
/* Where a schedule (or a convolution's algorithm) came from. */
typedef enum IrSchedFrom {
  IR_SCHED_UNSET = 0,
  IR_SCHED_MODEL, /* the cost model of passes/schedule.c, from the CPU's caches */
  IR_SCHED_TUNED, /* the tune cache: measured on this CPU by `lathe tune` */
  IR_SCHED_FROM_COUNT
} IrSchedFrom;
typedef struct IrSched {
  int8_t gemm;        /* IrSchedGemm; DIRECT is a preference: codegen packs an operand it must
                       * (a baked constant, a scan's captured transposed B) whatever it says */
  int8_t from;        /* IrSchedFrom */
  int32_t kc, mc, nc; /* the packed GEMM's K block, M block and N panel (>= 1 when from is
                       * set; kept within the product's extents by the pass) */
} IrSched;
/* "packed", "direct" / "model", "tuned" (NULL for UNSET); the parsers: false if none */
const char *ir_sched_gemm_name(IrSchedGemm g);
bool ir_sched_gemm_parse(const char *name, IrSchedGemm *out);
const char *ir_sched_from_name(IrSchedFrom f);
bool ir_sched_from_parse(const char *name, IrSchedFrom *out);

typedef union NodeAttr {
  struct {
    int32_t index; /* INPUT: Module.inputs; PARAM: Module.params; STATE: Module.states */
  } source;
  struct {
    double value;       /* CONST: every element equals value, unless data != NULL */
    const double *data; /* CONST: numel values in C order (graph arena), or NULL */
    DType dtype;        /* CONST: result dtype */
    Shape shape;        /* CONST: result shape */
  } constant;
  struct {
    Shape shape; /* RESHAPE (same numel), BROADCAST (NumPy-broadcast target) */
  } reshape;
  struct {
    DType dtype; /* CAST: result dtype */
  } cast;
  struct {
    uint32_t axes; /* SUM, MEAN, MAX: bit i set = reduce axis i */
    bool keepdims; /* keep reduced axes as size 1 */
  } reduce;
  struct {
    int32_t axis; /* SOFTMAX, LOG_SOFTMAX, WRITE_AT: normalized axis, 0 <= axis < rank */
  } softmax;
  struct {
    int8_t perm[IR_MAX_RANK]; /* TRANSPOSE: out.dim[i] = in.dim[perm[i]] */
  } transpose;
  struct {
    bool trans_a, trans_b; /* MATMUL: use the operand transposed in its last two dims */
    uint8_t sparse_b;      /* IrSparseKernel: B is a baked constant that is mostly zero and
                            * the kernel runs over its nonzeros, in this form (passes/sparsify.c
                            * decides, codegen/sparse.c); IR_SPARSE_NONE: dense */
    IrSched sched;         /* the kernel schedule (passes/schedule.c); not compared by CSE */
    int32_t pruned[2];     /* passes/prune_channels.c removed B's all-zero output columns:
                            * [the columns before, how many of the removed ones carried a
                            * constant folded into the consumer's bias]; {0, 0}: untouched */
  } matmul;
  struct {
    int64_t depth; /* ONE_HOT: classes; input is integer indices, out adds a last axis */
    DType dtype;   /* ONE_HOT: result (float) dtype */
  } one_hot;
  /* recurrence (docs/ir.md "scan"): SCAN runs subgraph `body` `length` times */
  struct {
    int32_t body;    /* SCAN: index into Graph.subgraphs of the step body */
    int64_t length;  /* SCAN: trip count T (>= 1) */
    int16_t n_carry; /* SCAN: inputs [0, n_carry) are the initial carries */
    int16_t n_seq;   /* SCAN: the next n_seq inputs are sliced along axis each step; the
                        rest are captured (passed whole every step) */
    int8_t axis;     /* SCAN: sequence axis of sliced inputs and of stacked outputs */
    bool reverse;    /* SCAN: step t runs over index T-1-t */
  } scan;
  struct {
    int32_t index; /* SCAN_ARG: input index of the enclosing SCAN */
    DType dtype;   /* SCAN_ARG: per-step dtype */
    Shape shape;   /* SCAN_ARG: per-step shape (sliced inputs lose the sequence axis) */
  } scan_arg;
  struct {
    int64_t offset;   /* UNPACK: first element taken from the rank-1 input (at the bound) */
    int64_t offset_n; /* UNPACK: offset's part per unit of the run-time batch: the piece
                       * starts at offset - offset_n * (max - n) at batch n (0: static) */
    Shape shape;      /* UNPACK: result shape (numel elements from offset) */
  } unpack;
  /* strided windows (issue 4): element k of axis i of the small tensor is element
   * begin[i] + k * step[i] of the large one */
  struct {
    int32_t begin[IR_MAX_RANK]; /* SLICE, UNSLICE: first index per axis (>= 0) */
    int32_t step[IR_MAX_RANK];  /* SLICE, UNSLICE: stride per axis (>= 1) */
    int32_t dim[IR_MAX_RANK];   /* SLICE: the result (small) dims; UNSLICE: the result (large)
                                   dims, zero outside the window (pad, slice adjoint) */
  } slice;
  struct {
    int64_t rows; /* SCATTER_ADD: rows of the result [rows, ...]; GATHER: 0 (unused) */
  } gather;
  struct {
    uint32_t stream; /* RANDOM, DROPOUT: generator stream, distinct per node of a model */
    int32_t dist;    /* RANDOM: 0 = uniform [0, 1), 1 = standard normal */
    double p;        /* DROPOUT: drop probability, 0 <= p < 1 (kept values scaled 1/(1-p)) */
    DType dtype;     /* RANDOM: result dtype (floating point) */
    Shape shape;     /* RANDOM: result shape */
  } random;
  /* convolution and pooling (issue 4, ir/conv.c). The conv relation between an input grid
   * X [N, C, H, W], an output grid Y [N, O, Ho, Wo] and weights [O, C/groups, kh, kw] is
   * Y[n, o, p] += X[n, c, p*stride - pad_lo + k*dilation] * w[o, c % (C/groups), k]. */
  struct IrConvAttr {
    int32_t stride[2];   /* CONV*, MAX_POOL2D*: per spatial axis (h, w), >= 1 */
    int32_t dilation[2]; /* CONV*, MAX_POOL2D*: >= 1 */
    int32_t pad[4];      /* CONV*, MAX_POOL2D*: top, left, bottom, right (of the X grid) */
    int32_t out_pad[2];  /* CONV_TRANSPOSE2D: extra rows/cols at the end, < max(stride, dil) */
    int32_t kernel[2];   /* CONV2D_GRAD_WEIGHT, MAX_POOL2D*: window (kh, kw); CONV2D,
                            CONV_TRANSPOSE2D: 0 (taken from the weights) */
    int32_t groups;      /* CONV*: >= 1, divides both channel counts; MAX_POOL2D*: 1 */
    int32_t layout;      /* CONV*: the layout the kernel computes in, chosen by
                            passes/layout.c (IrConvLayout); pooling: IR_CONV_NCHW */
    int32_t algo;        /* CONV*: the algorithm, recorded by passes/layout.c (IrConvAlgo);
                            pooling: IR_CONV_ALGO_UNSET */
    int32_t algo_from;   /* CONV*: who chose algo last (IrSchedFrom): passes/schedule.c sets
                            MODEL when it keeps layout's choice, TUNED when the tune cache
                            changed or confirmed it; printed `from=NAME`, not compared */
    int32_t pruned[2];   /* CONV2D: passes/prune_channels.c removed the all-zero output
                            channels (weight rows): [the channels before, how many of the
                            removed ones carried a constant folded into the consumer's
                            bias]; {0, 0}: untouched */
  } conv;
  struct {
    bool train; /* TRAIN_SELECT: true = the first input (training), false = the second */
  } mode;
  /* int8 quantization (docs/int8.md, ir/quant.c) */
  struct {
    int32_t x_zp;        /* QDENSE: zero point of the int8 input x; others: 0 */
    int32_t out_zp;      /* QDENSE: zero point of the int8 result; others: 0 */
    int32_t qmin;        /* every kind: the clamp of the integer result (QUANTIZE, QDENSE: in */
    int32_t qmax;        /*   [-128, 127]; FAKE_QUANT*: any qmin <= qmax) */
    int32_t stride[2];   /* QCONV2D: per spatial axis (h, w), >= 1 */
    int32_t dilation[2]; /* QCONV2D: >= 1 */
    int32_t pad[4];      /* QCONV2D: top, left, bottom, right; padded taps read x_zp (real 0) */
    int32_t groups;      /* QCONV2D: channel groups, 0 or 1 = one (x [N, C], w [O, C / groups]);
                            depthwise: groups = C; others: 0 */
    bool half_even;      /* QUANTIZE: round x / scale half to even (ONNX QuantizeLinear)
                            instead of half away from zero (TFLite); others: false */
  } quant;
  struct {
    int64_t k;     /* TOPK: indices per row of the last axis, 1 <= k <= its length */
    bool smallest; /* TOPK: the k smallest, ascending (else the k largest, descending) */
  } topk;
  struct {
    int32_t n, m;  /* PRUNE_MASK: keep n of every m (N:M), 1 <= n <= m; m == 0: magnitude */
    bool columns;  /* N:M: the channels are the columns of the [size / O, O] view of a dense
                      [.., O] (groups run down a column), else the rows of the [O, size / O]
                      view of a conv [O, C, kh, kw] (prune_mask_view) */
  } prune;
struct {
    bool cotangent; /* REPLICA_SUM: a sum of cotangents (made by its VJP, in the backward
                     * pass); false: of forward values (batch-norm statistics, counts) */
  } replica;
} NodeAttr;

struct Node;
/* PRUNE_MASK's [rows, cols] view of its weight w (NodeAttr.prune, ir/prune_mask.c) */
void prune_mask_view(const struct Node *n, const Shape *w, int64_t *rows, int64_t *cols);

typedef struct Node {
  OpKind op;
  DType dtype;
  uint8_t n_in;
  NodeId in[IR_MAX_INPUTS];
  Shape shape;
  NodeAttr attr;
  SrcLoc loc;       /* where the node came from in the model source */
  const char *name; /* binding name (graph arena) or NULL; used for comments and dumps */
  int64_t offset;   /* workspace byte offset after memory planning; -1 = not planned */
  int64_t offset_n; /* its part proportional to the run-time batch: the buffer starts at byte
                       offset_n * n + offset (0 for static modules and static buffers) */
  int32_t group;    /* kernel id after fusion (passes/fuse.c); -1 = own kernel */
  int32_t kernel;   /* position in the kernel schedule, stored by memory planning
                       (passes/kernels.c); -1 = no code (a view), or not planned yet */
} Node;

/* A CONV_TRANSPOSE2D n with stride 1 (kernel window k = {kh, kw}) is the CONV2D of its input
 * with the weights flipped (and their channel axes swapped), stride 1, the same dilation and
 * padding lo = dil * (k - 1) - pad_lo, hi = dil * (k - 1) - pad_hi + out_pad. True when that
 * padding is >= 0 (then *out, if not NULL, holds those attributes); false for other strides
 * (ir/conv.c). */
bool ir_conv_transpose_as_conv(const Node *n, const int64_t *k, struct IrConvAttr *out);

/* ---- graphs ------------------------------------------------------------------------------- */

typedef enum OutputKind {
  OUT_VALUE,        /* a model `output`: returned to the caller */
  OUT_LOSS,         /* scalar loss of a train step: returned by the train entry point */
  OUT_PARAM_UPDATE, /* new value of params[target], written back after the step */
  OUT_STATE_UPDATE, /* new value of states[target], written back after the step */
  OUT_GRAD,         /* gradient of the loss w.r.t. params[target] (lathe grad) */
  OUT_KIND_COUNT
} OutputKind;

typedef struct GraphOutput {
  const char *name; /* output name (graph arena) */
  NodeId node;
  OutputKind kind;
  int32_t target; /* param/state index for updates and grads; -1 otherwise */
  bool inference; /* OUT_STATE_UPDATE: kept in every entry, inference ones too (a model's
                     `update`: a KV cache), not only in training ones (batch norm's running
                     statistics); text form: `state_update N inference` */
} GraphOutput;

typedef struct Module Module;

/* What an entry point computes: a decision made once, where the entry is made (graph_new from
 * the entry-name convention below; passes/pipeline.c also records the train step), and read
 * by the passes, codegen and the CLI instead of the name. */
typedef enum EntryKind {
  ENTRY_NONE,     /* not an entry point: the model graph, a scan body, a test graph */
  ENTRY_FORWARD,  /* "forward": the model's outputs, inference mode */
  ENTRY_TRAIN,    /* "train", "train_<step>": one optimizer step of Graph.step */
  ENTRY_GRAD,     /* "grad": the gradients of Graph.step's loss, training mode, no update */
  ENTRY_EVALUATE, /* "evaluate": outputs and the first step's loss, inference mode */
  ENTRY_APPLY,    /* "apply": the optimizer update of Graph.step, the gradients as inputs */
  ENTRY_KIND_COUNT
} EntryKind;

/* train and grad entries run in training mode (batch statistics, dropout on) */
bool entry_kind_is_training(EntryKind k);

typedef struct Graph {
  Module *module;   /* owner of the input/param/state tables */
  const char *name; /* entry-point name: "model", "forward", "train", "train_disc" */
  EntryKind kind;   /* what the entry computes (set by graph_new from name) */
  int32_t step;     /* ENTRY_TRAIN/GRAD/APPLY: index into Module.steps, -1 = unknown
                       (a grad entry made by hand: autodiff takes the step of its loss) */
  Arena arena;      /* names, constant data */
  Node *nodes;      /* malloc'd, grows; ids are indices */
  uint32_t n_nodes, cap_nodes;
  GraphOutput *outputs; /* malloc'd */
  int n_outputs, cap_outputs;
  int64_t workspace_bytes;   /* planned arena size; -1 before memory planning */
  int64_t workspace_bytes_n; /* its part per unit of the run-time batch: the arena takes
                                workspace_bytes_n * n + workspace_bytes bytes (0: static) */
  int32_t n_kernels;         /* kernels in the schedule (Node.kernel); -1 before planning */
  struct Graph **subgraphs;  /* SCAN bodies owned by this graph (freed and cloned with it) */
  int n_subgraphs, cap_subgraphs;
} Graph;

/* name NULL = "model". The entry kind follows the name: "forward", "train" (step 0),
 * "train_<step>" (that step of m, if m has it yet), "grad", "evaluate", "apply"; others
 * ENTRY_NONE. */
Graph *graph_new(Module *m, const char *name);
void graph_free(Graph *g);
/* name NULL keeps g's name, kind and step; a new name sets them as graph_new does */
Graph *graph_clone(const Graph *g, const char *name);
/* The clone of g (an entry of a module with a dynamic batch, docs/dynamic-batch.md) at
 * batch n, 1 <= n <= Module.dyn_max: every dynamic axis 0 fixed to k * n in the node shapes
 * and shape attributes (ir/specialize.c). What ir_eval runs to give the reference value of
 * the generated code at n. Its nodes no longer match the module's dynamic declarations, so
 * it is for evaluation, not for ir_verify or the passes. NULL (and an error in d) when n is
 * out of range. */
Graph *graph_specialize(const Graph *g, int64_t n, Diag *d);
static inline Node *graph_node(const Graph *g, NodeId id) {
  return &g->nodes[id];
}

/* The alignment of every region of an entry's workspace (the memory plan's buffers, the
 * kernels' scratch, pre-packed operands, packed constant tables): one cache line, what the
 * generated vector kernels' aligned loads assume. The caller's workspace must be as aligned. */
#define LATHE_WORKSPACE_ALIGN 64
/* x rounded up to a multiple of m (m > 0, x >= 0) */
static inline int64_t ir_round_up(int64_t x, int64_t m) {
  return (x + m - 1) / m * m;
}
/* x rounded up to LATHE_WORKSPACE_ALIGN */
static inline int64_t ir_workspace_align(int64_t x) {
  return ir_round_up(x, LATHE_WORKSPACE_ALIGN);
}

/* Appends a node, runs the op's infer hook, and returns its id; on a shape/dtype error,
 * reports to d (naming the op, the shapes, and loc) and returns IR_NONE. attr may be NULL. */
NodeId graph_add(Graph *g, OpKind op, const NodeId *in, int n_in, const NodeAttr *attr, SrcLoc loc,
                 Diag *d);
NodeId graph_add_unary(Graph *g, OpKind op, NodeId a, SrcLoc loc, Diag *d);
NodeId graph_add_binary(Graph *g, OpKind op, NodeId a, NodeId b, SrcLoc loc, Diag *d);
NodeId graph_add_scalar(Graph *g, DType dtype, double value, SrcLoc loc); /* rank-0 CONST */
NodeId graph_add_source(Graph *g, OpKind op, int32_t index, SrcLoc loc);  /* INPUT/PARAM/STATE */
void graph_add_output(Graph *g, const char *name, NodeId node, OutputKind kind, int32_t target);
/* graph_add_output of an OUT_STATE_UPDATE that every entry keeps (GraphOutput.inference) */
void graph_add_inference_update(Graph *g, const char *name, NodeId node, int32_t target);
/* takes ownership of body (a graph_new'd graph of the same module); returns its index */
int32_t graph_add_subgraph(Graph *g, Graph *body);

/* ---- modules ------------------------------------------------------------------------------ */

typedef enum InitKind {
  INIT_ZEROS,
  INIT_ONES,
  INIT_CONSTANT,       /* a = value */
  INIT_UNIFORM,        /* U[a, b) */
  INIT_NORMAL,         /* N(mean a, std b) */
  INIT_GLOROT_UNIFORM, /* U[-l, l), l = sqrt(6 / (fan_in + fan_out)) */
  INIT_GLOROT_NORMAL,  /* N(0, sqrt(2 / (fan_in + fan_out))) */
  INIT_HE_UNIFORM,     /* U[-l, l), l = sqrt(6 / fan_in) */
  INIT_HE_NORMAL,      /* N(0, sqrt(2 / fan_in)) */
  INIT_ORTHOGONAL,     /* N(0, 1), then Gram-Schmidt: orthonormal rows (or columns) of the
                          [dim0, numel/dim0] matrix, like torch.nn.init.orthogonal_ (ir/init.c) */
  INIT_COUNT
} InitKind;

typedef struct InitSpec {
  InitKind kind;
  double a, b; /* see InitKind */
} InitSpec;

const char *init_name(InitKind k);
bool init_from_name(const char *name, InitKind *out);

typedef struct TensorDecl {
  const char *name; /* hierarchical: "h1.w"; module arena */
  DType dtype;
  Shape shape;
  InitSpec init; /* params and states */
  SrcLoc loc;
} TensorDecl;

typedef struct OptimArg {
  const char *name; /* "lr", "beta1", ... */
  double value;
  SrcLoc loc;
} OptimArg;

/* A `prune` statement of a train step (issue 20, docs/compression.md; passes/prune_train.c) */
typedef enum PruneKind {
  PRUNE_MAGNITUDE, /* the smallest |w|, per param (or all matched params with global) */
  PRUNE_CHANNELS,  /* whole output channels of smallest L1/L2 norm */
  PRUNE_N_OF_M,    /* keep the n largest of every m along the reduction axis */
  PRUNE_KIND_COUNT
} PruneKind;

typedef struct PruneSpec {
  PruneKind kind;
  int32_t *params; /* the matched param indices, in module order (at least one) */
  int n_params;
  double sparsity; /* the final sparsity s_f in [0, 1) (N:M: unused) */
  double initial;  /* s_i, the sparsity at `begin` (default 0) */
  int64_t begin, end, every; /* masks are chosen at steps t in [begin, end] with
                                (t - begin) % every == 0, and at t == end */
  bool global;     /* MAGNITUDE: rank every matched param together */
  int32_t norm;    /* CHANNELS: 1 (L1) or 2 (L2) */
  int32_t n, m;    /* N_OF_M */
  SrcLoc loc;      /* the `prune` keyword */
} PruneSpec;

/* A `distill` statement of a train step (docs/compression.md): recorded by the frontend,
 * carried out before the passes by driver/distill.c, which elaborates the teacher into
 * Module.model under the prefix `teacher.` (its weights baked as constants) and points
 * TrainStep.loss_node at alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * hard. */
typedef struct TrainDistill {
  const char *teacher;   /* the teacher's file, resolved against the model file's directory */
  const char *weights;   /* its checkpoint (resolved likewise), or NULL */
  double temperature;    /* T > 0 */
  double alpha;          /* in [0, 1]: the weight of the soft (teacher) term */
  const char *logits;    /* the teacher's logits: a binding or output; NULL = its first output */
  NodeId student_logits; /* the student's `logits` binding in Module.model */
  NodeId hard_loss;      /* the loss the step minimized before distillation */
  SrcLoc loc;            /* the `distill` keyword; teacher errors are reported here */
  SrcLoc teacher_loc, weights_loc, logits_loc;
  bool built;            /* the teacher and the loss are in Module.model (driver/distill.c) */
} TrainDistill;

/* One int8 layer of quantization-aware training (a `quantize` statement, docs/int8.md
 * "Quantization-aware training"): the layers and tensors `lathe quantize` would make int8,
 * matched on Module.model by ir/quant_match.c (for frontend/elab_qat.c). Node ids are
 * Module.model's, which every entry graph keeps until its first pass (graph_clone; pass_qat
 * runs first). */
typedef struct QatLayer {
  int32_t w_param; /* the weight: fake-quantized symmetric [-127, 127], per output channel */
  bool conv;       /* conv2d (weight [O, C, kh, kw]), else a dense matmul (weight [I, O]) */
  NodeId op;       /* the matmul / conv2d */
  NodeId x;        /* its activation input */
  NodeId out;      /* the layer's result: its ReLU, its bias add, or the op */
  int32_t x_state; /* the range state of x ([min, max]), or -1: x is an int8 tensor already
                      (an int8 layer's output, through reshape/transpose/max_pool2d) */
  int32_t y_state; /* the range state of out */
} QatLayer;

/* An add of two int8 tensors (a residual connection), which `lathe quantize` writes as a qadd:
 * its result (the add, or the ReLU fused after it) is fake-quantized with a range of its own */
typedef struct QatAdd {
  NodeId out;    /* the add, or the ReLU that is its only user */
  int32_t state; /* the range state of out */
} QatAdd;

/* The model's `quantize` statement (at most one per train block) */
typedef struct QatSpec {
  bool per_tensor;   /* one weight scale per tensor (default: per output channel) */
  double momentum;   /* the ranges' moving-average constant (0.01, PyTorch's) */
  QatLayer *layers;  /* the int8 layers, in graph order (module arena) */
  int n_layers;
  QatAdd *adds;      /* the qadds, in graph order (module arena) */
  int n_adds;
  const char **float_layers; /* the layers kept float, by param prefix ("h1"; module arena) */
  int n_float;
  SrcLoc loc; /* the `quantize` keyword */
} QatSpec;

typedef struct TrainStep {
  const char *name;         /* step name, or NULL for a single-step train block */
  const char *loss;         /* binding minimized */
  NodeId loss_node;         /* in Module.model */
  const char **param_globs; /* "disc.*"; n_globs == 0 means all params */
  int n_globs;
  const char *optimizer; /* "sgd", "adam", ... */
  OptimArg *optim_args;
  int n_optim_args;
  SrcLoc loc;
  PruneSpec *prunes; /* the step's `prune` statements (module arena) */
  int n_prunes;
  TrainDistill *distill; /* the step's `distill` statement (module arena), or NULL */
} TrainStep;

struct Module {
  Arena arena;
  const char *name;        /* model name, a C identifier */
  int64_t dyn_max;         /* the bound of the dynamic dimension; 0: the module is static */
  const char *dyn_name;    /* its name in the source ("N"), module arena; NULL when static */
  int64_t train_min_n;     /* the smallest run-time batch a training entry (train, grad) takes:
                            * 2 when a batch_norm sees one value per channel per sample (its
                            * unbiased variance needs two; PyTorch refuses one), else 0 */
  const char *train_min_why; /* that batch_norm's running_var state name; module arena */
  const char *source_file; /* path of the .lathe file */
  bool lib_builtin;        /* an `import` was served by the copy of lib/ built into lathe: the
                            * SrcLoc files "lib/NAME.lathe" are its names, not paths */
  TensorDecl *inputs;      /* malloc'd */
  int n_inputs, cap_inputs;
  TensorDecl *params;
  int n_params, cap_params;
  TensorDecl *states;
  int n_states, cap_states;
  Graph *model;     /* the elaborated model: outputs OUT_VALUE (outputs) and OUT_LOSS */
  TrainStep *steps; /* from the train block; malloc'd */
  int n_steps, cap_steps;
  Graph **entries; /* derived entry points, in emission order; malloc'd */
  int n_entries, cap_entries;
  QatSpec *qat; /* the train block's `quantize` statement (module arena), or NULL */
};

/* module_new leaves model NULL: the creator sets m->model = graph_new(m, "model").
 * TrainStep.param_globs/optim_args and their strings are allocated from m->arena. */
Module *module_new(const char *name);
void module_free(Module *m); /* frees graphs too */
int32_t module_add_input(Module *m, const char *name, DType t, const Shape *s, SrcLoc loc);
int32_t module_add_param(Module *m, const char *name, DType t, const Shape *s, InitSpec init,
                         SrcLoc loc);
int32_t module_add_state(Module *m, const char *name, DType t, const Shape *s, InitSpec init,
                         SrcLoc loc);
int32_t module_find_param(const Module *m, const char *name); /* -1 if absent */
int32_t module_find_state(const Module *m, const char *name); /* -1 if absent */
void module_add_entry(Module *m, Graph *g);
TrainStep *module_add_step(Module *m);

/* ---- analyses and tools ------------------------------------------------------------------- */

bool ir_verify(const Graph *g, Diag *d);

/* Reference evaluator (ir/eval.c): plain loops in f64, each node's result rounded to its
 * dtype. inputs/params/states are indexed like the Module tables (entries the graph does
 * not use may have data == NULL). On success, outs[i] holds graph output i (allocated here;
 * the caller tensor_free's them). values, if non-NULL, receives every node's value (n_nodes
 * tensors, allocated here, freed with ir_eval_values_free). */
bool ir_eval(const Graph *g, const Tensor *inputs, const Tensor *params, const Tensor *states,
             Tensor *outs, Tensor **values, Diag *d);
void ir_eval_values_free(const Graph *g, Tensor *values);
/* The evaluator's arithmetic of one element of an elementwise op (FUSE_ELEMWISE, arity 1 or
 * 2; b unused for a unary op), in f64 without the rounding to the node's dtype. */
double ir_eval_elementwise(OpKind op, double a, double b);

/* Initializers (ir/init.c): deterministic given (seed, decl->name), identical on every
 * machine, and identical to the generated <model>_init (codegen emits the same algorithm). */
void ir_init_tensor(const TensorDecl *decl, uint64_t seed, Tensor *out);
/* fan_in/fan_out convention: rank 1 [n]: n, n; rank 2 [in, out]: dim0, dim1;
 * rank >= 3 [out, in, k...] (conv, PyTorch order): in*prod(k), out*prod(k) */
void ir_init_fans(const Shape *s, double *fan_in, double *fan_out);

/* Text form (ir/print.c, ir/parse.c): ir_parse(ir_print(g)) reproduces g. The printer returns
 * a malloc'd string. The reader creates a Module holding the graph. */
char *ir_print(const Graph *g);
char *ir_print_dot(const Graph *g);
Module *ir_parse(const char *text, const char *filename, Diag *d);

#endif
