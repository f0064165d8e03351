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

typedef enum ValKind {
  VAL_NONE,   /* error already reported */
  VAL_TENSOR, /* node */
  VAL_INT,    /* i */
  VAL_FLOAT,  /* f */
  VAL_BOOL,   /* i (0/1) */
  VAL_DTYPE,  /* i (a DType) */
  VAL_LIST,   /* items[n_items] (compile-time ints) */
  VAL_COUNT
} ValKind;

typedef struct Value {
  ValKind kind;
  NodeId node;
  int64_t i;
  double f;
  int64_t *items;
  int n_items;
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
} Scope;

typedef struct Instance Instance;
struct Instance {
  const char *name; /* full instance name: "h1", "enc.attn" */
  const Decl *fn;
  SrcLoc loc;
  Instance *next;
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
  const char *files[16]; /* AST file name → module-arena copy (pairs) */
  const char *file_copies[16];
  int n_files;
} Elab;

/* elaborate.c */
SrcLoc elab_loc(Elab *E, SrcLoc loc); /* the same location with a module-owned file name */
Binding *elab_lookup(const Scope *s, const char *name);
void elab_bind(Elab *E, Scope *s, const char *name, Value v, SrcLoc loc);
const Decl *elab_find_decl(const Elab *E, DeclKind kind, const char *name);
bool elab_int(Elab *E, Value v, SrcLoc loc, const char *what, int64_t *out);
DType elab_float_dtype(const Elab *E);
const char *elab_value_str(Elab *E, Value v); /* "f32[64, 256]", "int 3", ... */
/* Evaluates a tensor type's dtype name (f32 → f64 under --dtype f64) */
bool elab_dtype(Elab *E, const char *name, SrcLoc loc, DType *out);
/* A fully known tensor type (model inputs, params): every dim must evaluate. */
bool elab_type(Elab *E, Scope *s, const TypeExpr *t, DType *dtype, Shape *shape);
/* "did you mean" among candidates (NULL if none is close); a NULL-terminated list */
const char *elab_suggest(const char *name, const char *const *candidates, int n);

/* elab_expr.c */
Value elab_expr(Elab *E, Scope *s, const Expr *e);
Value elab_tensor_value(NodeId id);
/* Converts a compile-time number to a rank-0 CONST of dtype */
NodeId elab_scalar_node(Elab *E, Value v, DType dtype, SrcLoc loc);
/* Matches call arguments to parameter names (positional first, then keywords);
 * out[i] is the argument for names[i] or NULL. Reports unknown/duplicate/extra args. */
bool elab_match_args(Elab *E, const Expr *call, const char *const *names, int n, const Expr **out);
bool elab_is_builtin(const char *name);
/* every builtin name, NULL-terminated */
const char *const *elab_builtin_names(void);

/* elab_call.c */
Value elab_fn_call(Elab *E, Scope *s, const Expr *call, const Decl *fn);
bool elab_fn_is_layer(Elab *E, const Decl *fn);
/* Elaborates one statement of a model or fn body; returns false on error. */
bool elab_stmt(Elab *E, Scope *s, const Stmt *st, Value *ret);

#endif
