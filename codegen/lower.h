/* codegen/lower.h — lowering one IR node to a C loop nest (private to codegen/).
 *
 * c_backend.c prepares a CgFunc for each entry graph: the storage of every node that needs
 * some (caller arrays, params/state fields, workspace pointers, output arguments), then calls
 * cg_lower_node in node order. Lowering fills in the values of CONST and RESHAPE nodes (a
 * literal, a static table, or an alias of the input) and emits each kernel, preceded by a
 * comment naming the node, its binding and source location.
 */
#ifndef LATHE_CODEGEN_LOWER_H
#define LATHE_CODEGEN_LOWER_H

#include "codegen.h"
#include "emit.h"

/* The C-level value of a node: an array expression, or a scalar literal that every element
 * equals (splat constants). */
typedef struct CgValue {
  const char *expr; /* NULL until assigned */
  bool literal;
  bool writable; /* a buffer the kernel may write (workspace or output argument) */
} CgValue;

/* a line that c_backend.c replaces with `#line N "<file>.c"` (N = the following line) */
#define CG_LINE_RESYNC "#line @LATHE_RESYNC@"

typedef struct CgFunc {
  CgEmitter *e; /* the function being written */
  const Module *m;
  const Graph *g;
  const CgOptions *opt;
  CgBuf *globals;     /* file-scope static constant tables */
  const char *symbol; /* entry symbol ("mlp_forward"): prefix of its table names */
  CgValue *val;       /* per node */
  Arena *arena;       /* strings that live as long as the function */
  Diag *diag;
  /* a scan body's matmul operands packed before its loop (codegen/gemm.c, cg_gemm_prepack):
   * [2 * node + operand] is the packed data's C expression or NULL; NULL outside bodies */
  const char **gemm_packed;
  int64_t gemm_pack_at; /* workspace offset of the next pre-packed operand; 0: not yet set */
} CgFunc;

bool cg_lower_node(CgFunc *f, NodeId id);
/* One kernel for a fusion group (Node.group, passes/fuse.c): members in id order, all of one
 * shape (or a 2-D matmul and its epilogue of its output shape). Members with storage in f->val
 * are stored; the others live in registers. */
bool cg_lower_group(CgFunc *f, const NodeId *members, int n_members);

/* a C literal of type t for v (NAN / HUGE_VAL for non-finite floats), in f's arena */
const char *cg_literal(Arena *a, DType t, double v);
/* "64 * 784" (or "1" for a scalar): the element count of an array declarator */
const char *cg_dims(Arena *a, const Shape *s);
/* text safe inside a C comment / a C string literal */
const char *cg_comment_safe(Arena *a, const char *s);
const char *cg_string_safe(Arena *a, const char *s);

/* Loop-nest helpers shared by the lowerings (lower.c). A loop of extent 1 is not emitted:
 * cg_loop_open returns NULL for it, and index expressions skip NULL variables. */
void cg_strides_of(const Shape *s, int64_t *st); /* C-order strides of s */
const char *cg_loop_open(CgFunc *f, const char *base, int64_t extent);
void cg_loop_close(CgFunc *f, const char *var);
void cg_nest_open(CgFunc *f, const Shape *s, const char **vars); /* one loop per dim */
void cg_nest_close(CgFunc *f, const Shape *s, const char **vars);
/* `#pragma omp parallel for num_threads(N)` before the next loop when the options ask for
 * threads and the kernel does at least CG_OMP_MIN_FLOPS of work (waking threads costs
 * microseconds); the loop's iterations must be independent */
#define CG_OMP_MIN_FLOPS ((int64_t)1 << 20)
/* an elementwise or pooling element counted as this many flops: they are memory-bound, and
 * a loop of 64K elements already outlasts waking a thread */
#define CG_OMP_ELEMENT_COST 16
void cg_omp_for(CgFunc *f, int64_t flops);

/* Helpers of lower.c shared with the row-wise group lowering (lower_rows.c): an element of a
 * node, index expressions, one element of an elementwise op, math calls, NaN tests, the lowest
 * value of a type, an "unsupported" diagnostic. */
const char *cg_at(CgFunc *f, NodeId id, const char *index);
const char *cg_index_expr(Arena *a, int n, const char *const *vars, const int64_t *stride);
const char *cg_broadcast_index(CgFunc *f, const Shape *in, const Shape *out, const char **vars);
const char *cg_ew_expr(CgFunc *f, const Node *n, const char *x, const char *y);
const char *cg_math_call(CgFunc *f, DType t, const char *fn, const char *x);
const char *cg_is_nan(CgFunc *f, DType t, const char *x);
const char *cg_lowest(CgFunc *f, DType t);
bool cg_unsupported(CgFunc *f, NodeId id, const char *what);
/* Row-wise groups (passes/fuse.c): a group with a softmax, a reduction or a one-hot member is
 * lowered by codegen/lower_rows.c as one loop over rows, a few passes along each row. */
bool cg_rows_group(const Graph *g, const NodeId *members, int n_members);
bool cg_lower_rows(CgFunc *f, const NodeId *members, int n_members);
/* SUM, MEAN and MAX of one node (codegen/lower_reduce.c), named in ir/ops.def */
bool lower_reduce(CgFunc *f, NodeId id);

#endif
