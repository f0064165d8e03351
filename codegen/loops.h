/* codegen/loops.h — what every lowering and kernel emitter stands on (private to codegen/):
 * the per-function state (CgFunc, the C value of each node), C text helpers, loop nests,
 * index expressions and the element expressions of the elementwise ops (loops.c).
 *
 * The layers of codegen/ call one way, each including only those below it (checked by
 * scripts/check-deps.py): emit.c -> loops.c -> the kernel library (gemm*.c, conv_gemm.c,
 * conv_direct.c, conv_winograd.c, whose C lives in codegen/kernels/) -> the per-op lowerings
 * (lower_*.c) -> the op table (lower.c) -> the workspace accounting (workspace.c) and the
 * file assembly (c_backend.c, c_api.c, c_plan.c). The one way back up is a scan's body
 * (lower_scan.c lowers it node by node through the op table).
 */
#ifndef LATHE_CODEGEN_LOOPS_H
#define LATHE_CODEGEN_LOOPS_H

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

/* the byte offset of the kernels' scratch region in g's workspace: above the memory plan,
 * aligned to LATHE_WORKSPACE_ALIGN (ir/ir.h). In a module with a run-time batch the region
 * starts at Graph.workspace_bytes_n * n plus this (cg_scratch_offset). */
int64_t cg_scratch_base(const Graph *g);

/* ---- the run-time batch (docs/dynamic-batch.md): the entry's `int64_t n` ----------------
 * A quantity of a dynamic shape s (Shape.dyn) that is proportional to its axis 0 (an element
 * count, a row count, dim[0] itself) is known at the bound; at run time it is that value over
 * Module.dyn_max, times n. These are the only places generated C says `n`. */
bool cg_is_dyn(const CgFunc *f, const Shape *s);
/* count (proportional to axis 0 of s, at the bound) as C: "784 * n", "n", or the literal
 * when s is static */
const char *cg_count(CgFunc *f, const Shape *s, int64_t count);
/* cg_loop_open over cg_count(f, s, count): a dynamic loop is always emitted */
const char *cg_loop_open_count(CgFunc *f, const char *base, const Shape *s, int64_t count);
/* the byte offset offset_n * n + offset as C ("1024", "512 * n + 1024", "512 * n") */
const char *cg_ws_offset(CgFunc *f, int64_t offset_n, int64_t offset);
/* the byte offset `at` of the kernels' scratch region as C (cg_scratch_base + at, plus the
 * plan's per-n part) */
const char *cg_scratch_offset(CgFunc *f, int64_t at);

/* a C literal of type t for v (NAN / HUGE_VAL for non-finite floats), in f's arena */
const char *cg_literal(Arena *a, DType t, double v);
/* "64 * 784" (or "1" for a scalar): the element count of an array declarator */
const char *cg_dims(Arena *a, const Shape *s);
/* A source file named in the output (kernel comments, #line, the banner, the descriptor) as
 * a path relative to the directory of m's model file (Module.source_file): the model itself
 * by its base name, `--lib lib`'s nn.lathe as "../lib/nn.lathe" from examples/. The output
 * then names no directory of the compiling machine, and two checkouts give identical files.
 * Names that are not paths ("<repl>", the built-in library's "lib/nn.lathe" when
 * m->lib_builtin) and NULL come back unchanged. */
const char *cg_source_path(Arena *a, const Module *m, const char *file);
/* text safe inside a C comment / a C string literal */
const char *cg_comment_safe(Arena *a, const char *s);
const char *cg_string_safe(Arena *a, const char *s);
/* the body lines of a designated-initializer table, four `[<prefix><name>] = <value>` per line,
 * the last line ending in `close` ("};"), the others in "," */
void cg_designated_rows(CgFunc *f, const char *prefix, const char *const *names, const int64_t *v,
                        size_t count, const char *close);

/* Loop nests. A loop of extent 1 is not emitted:
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

/* An element of a node, index expressions, one element of an elementwise op, math calls, NaN
 * tests, the lowest value of a type, an "unsupported" diagnostic. */
const char *cg_at(CgFunc *f, NodeId id, const char *index);
const char *cg_index_expr(Arena *a, int n, const char *const *vars, const int64_t *stride);
const char *cg_broadcast_index(CgFunc *f, const Shape *in, const Shape *out, const char **vars);
const char *cg_ew_expr(CgFunc *f, const Node *n, const char *x, const char *y);
/* x op y (+ - *) of integer type t, wrapping in t's width (the unsigned type of the width: no
 * undefined signed overflow), converted back to t */
const char *cg_int_wrap(CgFunc *f, DType t, const char *x, const char *op, const char *y);
const char *cg_math_call(CgFunc *f, DType t, const char *fn, const char *x);
const char *cg_is_nan(CgFunc *f, DType t, const char *x);
const char *cg_lowest(CgFunc *f, DType t);
bool cg_unsupported(CgFunc *f, NodeId id, const char *what);
/* "<what> does not support a dynamic batch yet", at node id's source line; returns false */
bool cg_dyn_unsupported(CgFunc *f, NodeId id, const char *what);
#endif
