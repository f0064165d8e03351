/* frontend/elab.h — state shared by the elaboration files; private to frontend/.
 *
 * elaborate.c: consts, -D overrides, the model, the train block, and the value plumbing;
 * elab_expr.c: expressions, operators and builtins; elab_call.c: inlining `fn` calls (shape
 * unification, params with hierarchical names, `as` sharing).
 *
 * A Value is what an expression elaborates to: a tensor (a node of the model graph) or a
 * compile-time int, float, bool, dtype or int list. VAL_NONE means "an error was already
 * reported"; every consumer propagates it silently so one mistake gives one message.
 */
#ifndef LATHE_FRONTEND_ELAB_H
#define LATHE_FRONTEND_ELAB_H

#include "frontend/ast.h"
#include "ir/build.h"

typedef enum ValKind {
  VAL_NONE,   /* error already reported */
  VAL_TENSOR, /* node */
  VAL_INT,    /* i */
  VAL_FLOAT,  /* f */
  VAL_BOOL,   /* i (0/1) */
  VAL_DTYPE,  /* i (a DType) */
  VAL_LIST,   /* items[n_items] (compile-time ints) */
  VAL_TUPLE,  /* items[n_items] are NodeIds of tensors (split); destructured by `a, b = ...` */
  VAL_DYN,    /* dyn * N of the dynamic const N (docs/dynamic-batch.md); i = its value at the
                 bound (dyn * Module.dyn_max); only valid as the first axis of a shape */
  VAL_COUNT
} ValKind;

typedef struct Value {
  ValKind kind;
  NodeId node;
  int64_t i;
  double f;
  int64_t *items;
  int n_items;
  int64_t dyn; /* VAL_DYN: k of k * N; VAL_LIST: k when items[0] is k * N (it then holds
                  k * dyn_max), else 0 */
} Value;

typedef struct Binding Binding;
struct Binding {
  const char *name;
  Value value;
  SrcLoc loc; /* where it was bound (for "already defined at") */
  Binding *next;
};

/* Per-statement state of the naming rule for layer instances (see elab_call.c). */
typedef struct Naming {
  const char *base;      /* binding name of the statement, or NULL (return) */
  int n_calls;           /* layer calls made so far in this statement */
  const char **fn_names; /* per-fn call counters */
  int *fn_counts;
  int n_fns;
} Naming;

typedef struct Scope {
  Binding *head;
  const char *prefix; /* instance prefix of params declared here: "" in the model */
  const Decl *fn;     /* the fn being inlined, NULL in the model */
  bool shared;        /* this layer instance existed before (`as` sharing): reuse params */
  bool has_ellipsis;  /* `...` bound by unification */
  Shape ellipsis;     /* the leading dims it stands for */
  Naming naming;      /* of the statement being elaborated */
  bool returned;      /* a fn body reached its `return` (perhaps inside an `if`) */
} Scope;

typedef struct Instance Instance;
struct Instance {
  const char *name; /* full instance name: "h1", "enc.attn" */
  const Decl *fn;
  SrcLoc loc;
  Instance *next;
};

enum {
  ELAB_MAX_DEPTH = 2000,     /* nested elab_expr calls: bounds the stack (elab_expr.c) */
  ELAB_MAX_INLINED = 100000  /* fn calls inlined into one model (elab_call.c) */
};

typedef struct Elab {
  const Program *prog;
  const FrontendOptions *o;
  Diag *d;
  Arena scratch; /* elaboration temporaries */
  Module *m;
  Graph *g; /* m->model */
  Binding *consts;
  Instance *instances;
  NodeId *param_nodes; /* PARAM node of each module param */
  int cap_param_nodes;
  const Decl *stack[64]; /* fns being inlined, for recursion checks */
  int depth;
  int expr_depth;        /* elab_expr calls in progress, at most ELAB_MAX_DEPTH */
  bool depth_reported;   /* the expr_depth error was given (once per model) */
  int n_inlined;         /* fn calls inlined so far, at most ELAB_MAX_INLINED */
  const char *files[16]; /* AST file name → module-arena copy (pairs) */
  const char *file_copies[16];
  int n_files;
  int scan_depth; /* > 0 while elaborating a scan body (E->g is the body): no params */
  /* overloaded fn calls (elab_struct.c): arguments elaborated once while choosing the fn,
   * then returned by elab_expr from here when bind_args elaborates them again (a stack) */
  const Expr *arg_cache_expr[32];
  Value arg_cache_val[32];
  int n_arg_cache;
  /* the dynamic const (at most one per module): its bound, name and declaration */
  int64_t dyn_max; /* 0: none */
  const char *dyn_name;
  SrcLoc dyn_loc;
} Elab;

/* elaborate.c */
SrcLoc elab_loc(Elab *E, SrcLoc loc); /* the same location with a module-owned file name */
/* A graph builder (ir/build.h) on E->g whose nodes carry elab_loc(E, loc) */
Builder elab_builder(Elab *E, SrcLoc loc);
Binding *elab_lookup(const Scope *s, const char *name);
/* The const `name` as seen from s: consts are visible in the model and train blocks and in the
 * fns of the file that declares them, not in the fns of other files (a library's signature
 * `f32[N, C]` keeps N a shape variable even when the model declares `const N`). */
Binding *elab_const(const Elab *E, const Scope *s, const char *name);
void elab_bind(Elab *E, Scope *s, const char *name, Value v, SrcLoc loc);
const Decl *elab_find_decl(const Elab *E, DeclKind kind, const char *name);
bool elab_int(Elab *E, Value v, SrcLoc loc, const char *what, int64_t *out);
/* Reports that the dynamic dimension (a VAL_DYN, or a list holding one) cannot be used as
 * `what` at loc; the message names it and states the rule. */
void elab_dyn_misuse(Elab *E, SrcLoc loc, const char *what);
/* One dimension of a type at `axis`: a positive int, or k * N when allow_dyn and axis is 0
 * (*dyn = k, *dim = its value at the bound). */
bool elab_dim(Elab *E, Scope *s, const Expr *d, int axis, bool allow_dyn, int64_t *dim,
              int64_t *dyn);
/* A list of ints that must not hold the dynamic dimension (axes, sizes, strides); e is the
 * list's expression, for the location. */
bool elab_static_list(Elab *E, Value v, const Expr *e, const char *what);
DType elab_float_dtype(const Elab *E);
const char *elab_value_str(Elab *E, Value v); /* "f32[64, 256]", "int 3", ... */
/* Evaluates a tensor type's dtype name (f32 → f64 under --dtype f64) */
bool elab_dtype(Elab *E, const char *name, SrcLoc loc, DType *out);
/* A fully known tensor type (model inputs, params): every dim must evaluate. allow_dyn lets
 * the first axis be k * N (model inputs; a param is never dynamic). */
bool elab_type(Elab *E, Scope *s, const TypeExpr *t, bool allow_dyn, DType *dtype, Shape *shape);
/* "did you mean" among candidates (NULL if none is close); a NULL-terminated list */
const char *elab_suggest(const char *name, const char *const *candidates, int n);

/* elab_prune.c: the step's `prune` statements into ts->prunes (issue 20) */
bool elab_prunes(Elab *E, const StepAst *sa, TrainStep *ts);
/* elab_qat.c: the train block's `quantize` statement into Module.qat (issue 19) */
bool elab_qat(Elab *E, const QuantizeAst *qa);

/* elab_expr.c */
Value elab_expr(Elab *E, Scope *s, const Expr *e);
Value elab_tensor_value(NodeId id);
/* Converts a compile-time number to a rank-0 CONST of dtype */
NodeId elab_scalar_node(Elab *E, Value v, DType dtype, SrcLoc loc);
/* Matches call arguments to parameter names (positional first, then keywords);
 * out[i] is the argument for names[i] or NULL. Reports unknown/duplicate/extra args. */
bool elab_match_args(Elab *E, const Expr *call, const char *const *names, int n, const Expr **out);
/* A builtin's arguments: params (at most n_max, NULL-terminated below that) matched as
 * elab_match_args does, then the first n_required must be present ("missing argument ...") */
bool elab_builtin_args(Elab *E, const Expr *call, const char *const *params, int n_max,
                       int n_required, const Expr **out);
/* arg elaborated to a tensor (*out), else an error naming fn ("'fn' expects a tensor, got ...")
 * and *out = IR_NONE */
bool elab_tensor_arg(Elab *E, Scope *s, const Expr *arg, const char *fn, NodeId *out);
bool elab_is_builtin(const char *name);
/* the `axis` argument of a reduction: an int or a list/tuple of ints (negatives count from
 * the end), absent = every axis; *axes gets the bit mask */
bool elab_reduce_axes(Elab *E, Scope *s, const Expr *arg, int rank, const char *fn, uint32_t *axes);
/* a true/false argument, def when absent; what names it in the error ("'keepdims'") */
bool elab_bool_arg(Elab *E, Scope *s, const Expr *arg, const char *what, bool def, bool *out);
/* every builtin name, NULL-terminated */
const char *const *elab_builtin_names(void);

/* elab_struct.c: the issue-4 builtins (where, concat, split, pad, gelu, ...) and indexing */
bool elab_struct_is_builtin(const char *name);
const char *elab_struct_builtin_name(int i); /* NULL past the last */
Value elab_struct_call(Elab *E, Scope *s, const Expr *call);
Value elab_struct_index(Elab *E, Scope *s, const Expr *e);
/* The fn a call names. Several fns may share a name when their argument dtypes differ
 * (overloading): the first whose tensor arguments' dtypes match is chosen, its arguments
 * cached (Elab.arg_cache_*) until *n_cached entries are popped by elab_struct_uncache. */
const Decl *elab_struct_resolve_fn(Elab *E, Scope *s, const Expr *call, int *n_cached);
void elab_struct_uncache(Elab *E, int n_cached);
/* two fns of one name may coexist: same arity, some argument's dtype differs */
bool elab_struct_overloads(const Decl *a, const Decl *b);
/* the cached value of e, if any (elab_expr consults it first) */
bool elab_struct_cached(const Elab *E, const Expr *e, Value *out);
/* a unary builtin (sqrt, exp, ...) of a compile-time number: a float number */
Value elab_struct_fold_unary(Elab *E, OpKind op, Value x, SrcLoc loc);

/* elab_conv.c: the conv/pool builtins (conv2d, conv_transpose2d, max_pool2d, avg_pool2d,
 * global_avg_pool, batch_norm) */
bool elab_conv_is_builtin(const char *name);
Value elab_conv_call(Elab *E, Scope *s, const Expr *call);

/* elab_quant.c: the int8 builtins (quantize, dequantize, fake_quant, qdense; docs/int8.md) */
bool elab_quant_is_builtin(const char *name);
Value elab_quant_call(Elab *E, Scope *s, const Expr *call);
/* max_pool2d or (avg) avg_pool2d of an i8 x, window at; arg4: the call's fifth argument */
Value elab_quant_pool(Elab *E, Scope *s, const Expr *call, bool avg, const Expr *arg4, NodeId x,
                      const NodeAttr *at);
/* elab_vocab.c: the issue-22 builtins of one file each (max_pool1d, avg_pool1d in
 * elab_conv1d.c; einsum in elab_einsum.c), dispatched by name */
bool elab_vocab_is_builtin(const char *name);
Value elab_vocab_call(Elab *E, Scope *s, const Expr *call);
/* elab_conv1d.c: conv/conv_transpose of x [N, C, L] (at: the 2-D attributes as parsed, both
 * axes from one int; same: padding = same), and the 1-D pools */
Value elab_conv1d(Elab *E, const Expr *call, OpKind op, NodeId x, NodeId w, NodeAttr *at,
                  bool same);
Value elab_pool1d_call(Elab *E, Scope *s, const Expr *call);
/* elab_gather.c: gather(x, axis, index), scatter_add(x, axis, index, src) */
Value elab_gather_call(Elab *E, Scope *s, const Expr *call);
/* topk(x, k, axis = -1, largest = true) → (values, indices); topk_indices(...) */
Value elab_topk_call(Elab *E, Scope *s, const Expr *call);
/* elab_resize.c: upsample(x, scale, ...), interpolate(x, size | scale, ...) */
Value elab_resize_call(Elab *E, Scope *s, const Expr *call);
/* elab_einsum.c */
Value elab_einsum_call(Elab *E, Scope *s, const Expr *call);
/* elab_call.c: an initializer (`zeros`, `normal(0, 0.02)`, ...) of a param or state */
bool elab_init(Elab *E, Scope *s, const Expr *e, InitSpec *out);
/* elab_state.c: a model's `state NAME: TYPE = INIT` and `update NAME = expr` (issue 22),
 * and the write_at(x, v, axis, index) builtin */
bool elab_state_stmt(Elab *E, Scope *s, const Stmt *st);
bool elab_update_stmt(Elab *E, Scope *s, const Stmt *st);
Value elab_write_at_call(Elab *E, Scope *s, const Expr *call);
/* elab_math.c: the issue-22 math builtins (silu, logsumexp, min, var, std, argmax, argmin,
 * cumsum, broadcast_to/expand) and float tensor literals */
bool elab_math_is_builtin(const char *name);
Value elab_math_call(Elab *E, Scope *s, const Expr *call);
/* e is a list literal holding a float number or a nested list: a constant tensor */
bool elab_math_is_literal(const Expr *e);
Value elab_math_literal(Elab *E, Scope *s, const Expr *e);

/* elab_scan.c: `scan t in 0..T with (h = init, ...) { ...; yield y }` (a SCAN node) */
Value elab_scan(Elab *E, Scope *s, const Expr *e);

/* elab_distill.c: a step's `distill` statement into ts->distill (TrainDistill; the teacher is
 * merged by driver/distill.c); call after the step's loss is known */
bool elab_distill(Elab *E, Scope *s, const DistillAst *da, TrainStep *ts);

/* elab_call.c */
Value elab_fn_call(Elab *E, Scope *s, const Expr *call, const Decl *fn);
bool elab_fn_is_layer(Elab *E, const Decl *fn);
/* Elaborates one statement of a model or fn body; returns false on error. */
bool elab_stmt(Elab *E, Scope *s, const Stmt *st, Value *ret);
/* Elaborates statements until a `return` (then s->returned); false on error. */
bool elab_stmts(Elab *E, Scope *s, Stmt *const *body, int n, Value *ret);
/* The PARAM node of `path` (`tok.table`), relative to the instance of s; reports and returns
 * IR_NONE when there is none. */
NodeId elab_param_path(Elab *E, const Scope *s, const char *path, SrcLoc loc);

#endif
