/* frontend/ast.h — tokens and the syntax tree of a .lathe file; private to frontend/.
 *
 * lex.c turns source text into a Token array, parse.c turns tokens into a Program (a list of
 * top-level Decls), elaborate*.c turns a Program into a Module. Every AST node lives in the
 * Program's arena; strings are NUL-terminated arena copies. Locations point at the token
 * that names the construct: the operator of a binary expression, the callee of a call, the
 * keyword of a statement.
 */
#ifndef LATHE_FRONTEND_AST_H
#define LATHE_FRONTEND_AST_H

#include "frontend/frontend.h"

/* ---- tokens (lex.c) ------------------------------------------------------------------------ */

typedef enum TokenKind {
  TK_EOF,
  TK_NEWLINE, /* end of a statement; never emitted inside ( ) or [ ] */
  TK_IDENT,
  TK_INT,
  TK_FLOAT,
  TK_STRING, /* "text" on one line: text holds the quotes too */
  /* keywords */
  TK_CONST,
  TK_IMPORT,
  TK_FN,
  TK_PARAM,
  TK_MODEL,
  TK_OUTPUT,
  TK_RETURN,
  TK_TRAIN,
  TK_AS,
  TK_TRUE,
  TK_FALSE,
  /* punctuation */
  TK_LPAREN,
  TK_RPAREN,
  TK_LBRACKET,
  TK_RBRACKET,
  TK_LBRACE,
  TK_RBRACE,
  TK_COMMA,
  TK_COLON,
  TK_SEMI,
  TK_DOT,
  TK_ELLIPSIS,
  TK_ARROW,
  TK_ASSIGN,
  TK_PLUS,
  TK_MINUS,
  TK_STAR,
  TK_SLASH,
  TK_AT,
  TK_LT,
  TK_LE,
  TK_GT,
  TK_GE,
  TK_EQ,
  TK_NE,
  TK_COUNT
} TokenKind;

typedef struct Token {
  TokenKind kind;
  SrcLoc loc;
  const char *text; /* the token's bytes (arena copy); "" for EOF and NEWLINE */
  int len;          /* length of the token in the source */
  int64_t ival;     /* TK_INT */
  double fval;      /* TK_FLOAT */
  bool nl_before;   /* a line break separates this token from the previous one */
} Token;

/* How a token kind is spelled in messages: "')'", "identifier", "end of file". */
const char *lex_kind_name(TokenKind k);
/* Tokenizes text; the array ends with TK_EOF. Errors (stray characters, bad numbers) go to d;
 * the offending bytes are skipped. Tokens and their texts live in arena. */
Token *lex_tokenize(Arena *arena, const char *file, const char *text, int *n_tokens, Diag *d);

/* ---- expressions --------------------------------------------------------------------------- */

typedef enum ExprKind {
  EX_INT,      /* ival */
  EX_FLOAT,    /* fval */
  EX_BOOL,     /* ival 0 or 1 */
  EX_STRING,   /* name: the text between the quotes (builtin arguments: einsum) */
  EX_NAME,     /* name; `a.b.c` (a param by its instance path) keeps the dots in name */
  EX_ELLIPSIS, /* `...` in a shape */
  EX_UNARY,    /* op (TK_MINUS) lhs */
  EX_BINARY,   /* lhs op rhs; op is the operator token kind */
  EX_CALL,     /* name(args), arg_names[i] non-NULL for keyword arguments; as_name */
  EX_INDEX,    /* lhs[args], args are expressions or EX_SLICE */
  EX_SLICE,    /* lhs:rhs inside an index, either may be NULL */
  EX_LIST,     /* [args] */
  EX_TUPLE,    /* (a, b, ...) */
  EX_SCAN,     /* scan name in lhs..rhs [reversed: ival 1] with (arg_names[i] = args[i])
                  { body; yield yield } */
  EX_COUNT
} ExprKind;

typedef struct Expr Expr;
struct Expr {
  ExprKind kind;
  SrcLoc loc;
  const char *name;
  int64_t ival;
  double fval;
  TokenKind op;
  Expr *lhs, *rhs;
  Expr **args;
  const char **arg_names; /* EX_CALL: keyword of each argument or NULL */
  SrcLoc *arg_locs;       /* EX_CALL: location of each keyword (or of the argument) */
  int n_args;
  const char *as_name; /* EX_CALL: `as NAME` instance, or NULL */
  SrcLoc as_loc;
  struct Stmt **body;  /* EX_SCAN: the step's statements */
  int n_body;
  Expr *yield;         /* EX_SCAN: the per-step output, or NULL (the result is then the
                          final value of the first carry) */
};

/* Called by ast_walk for every expression e of a tree, depth 1 at the root; false stops. */
typedef bool (*AstVisit)(void *ctx, const Expr *e, int depth);
/* Visits root and below it lhs, rhs and args (with bodies, also a scan's statements, their
 * types and its yield) in some order, iteratively (ast_walk.c): its stack stays flat however
 * deep the tree. Returns false when visit stopped it (or on out of memory). */
bool ast_walk(const Expr *root, bool bodies, AstVisit visit, void *ctx);

/* A tensor type `f32[N, 784]`, or a compile-time scalar type of a fn argument: `int`,
 * `float` (a number) or `bool` (true/false). */
typedef struct TypeExpr {
  bool is_int;       /* `int` */
  bool is_float;     /* `float` */
  bool is_bool;      /* `bool` */
  const char *dtype; /* "f32", "i32", ... (unchecked spelling) */
  SrcLoc loc;
  Expr **dims; /* EX_ELLIPSIS allowed first */
  int n_dims;
} TypeExpr;

/* int, float or bool: a compile-time value, not a tensor (dtype and dims unused) */
static inline bool type_is_scalar(const TypeExpr *t) {
  return t->is_int || t->is_float || t->is_bool;
}

/* ---- statements and declarations ---------------------------------------------------------- */

typedef enum StmtKind {
  ST_BIND,   /* names = value */
  ST_OUTPUT, /* output names[0] = value; value NULL for `output name` */
  ST_PARAM,  /* param names[0]: type = init */
  ST_RETURN, /* return value */
  ST_IF,     /* if value { body } else { else_body }: value a compile-time bool */
  ST_STATE,  /* state names[0]: type = init (a model's state, kept across calls) */
  ST_UPDATE, /* update names[0] = value (the state's new value, written after the call) */
  ST_COUNT
} StmtKind;

typedef struct Stmt {
  StmtKind kind;
  SrcLoc loc;
  const char **names;
  SrcLoc *name_locs;
  int n_names;
  Expr *value; /* ST_PARAM, ST_STATE: the initializer (a name or a call); ST_IF: the condition */
  TypeExpr *type;
  struct Stmt **body; /* ST_IF: the statements when the condition holds */
  int n_body;
  struct Stmt **else_body; /* ST_IF: else (an `else if` is one nested ST_IF), or NULL */
  int n_else;
} Stmt;

typedef struct Arg {
  const char *name;
  SrcLoc loc;
  TypeExpr *type;
  Expr *def; /* `name: int = expr`: the default when a call omits it, or NULL */
} Arg;

/* `prune GLOB, ... KIND(args)` in a train step (issue 20, docs/compression.md) */
typedef struct PruneAst {
  SrcLoc loc; /* the `prune` keyword */
  const char **globs;
  SrcLoc *glob_locs;
  int n_globs;
  Expr *kind; /* magnitude(...), channels(...) or n_of_m(...): an EX_CALL or EX_NAME */
} PruneAst;
/* `distill FILE [weights W] temperature T alpha A [logits NAME]` of a train step
 * (docs/compression.md); the clauses after FILE in any order, each at most once */
typedef struct DistillAst {
  SrcLoc loc;          /* the `distill` keyword */
  const char *file;    /* the teacher (.lathe or .onnx) as written, without the quotes */
  SrcLoc file_loc;
  const char *weights; /* the teacher's checkpoint as written, or NULL */
  SrcLoc weights_loc;
  Expr *temperature;   /* compile-time numbers; NULL when the clause is missing */
  Expr *alpha;
  const char *logits;  /* the teacher's logits binding or output, or NULL (its first output) */
  SrcLoc logits_loc;
} DistillAst;

/* `quantize [per_channel | per_tensor] [except NAME {, NAME}]` of a train step: quantization-
 * aware training (issue 19, docs/int8.md "Quantization-aware training") */
typedef struct QuantizeAst {
  SrcLoc loc;          /* the `quantize` keyword */
  bool per_tensor;     /* `per_tensor`: one weight scale per tensor (default per channel) */
  const char **except; /* layers kept float, by name (a param prefix or a glob of one) */
  SrcLoc *except_locs;
  int n_except;
} QuantizeAst;

typedef struct StepAst {
  const char *name; /* NULL for a single-step train block */
  SrcLoc loc;
  const char *loss;
  SrcLoc loss_loc; /* the `minimize` keyword */
  const char **globs;
  SrcLoc *glob_locs;
  int n_globs;
  Expr *optimizer; /* an EX_CALL or EX_NAME; NULL if missing */
  PruneAst *prunes; /* the step's `prune` statements, in source order */
  int n_prunes;
  DistillAst *distill; /* the step's `distill` statement, or NULL */
  QuantizeAst *quantize; /* the step's `quantize` statement, or NULL */
} StepAst;

typedef enum DeclKind {
  DECL_CONST,
  DECL_IMPORT,
  DECL_FN,
  DECL_MODEL,
  DECL_TRAIN,
  DECL_COUNT
} DeclKind;

typedef struct Decl {
  DeclKind kind;
  SrcLoc loc; /* the keyword */
  const char *name;
  SrcLoc name_loc;
  Expr *value; /* DECL_CONST */
  Arg *args;   /* DECL_FN, DECL_MODEL */
  int n_args;
  TypeExpr *ret; /* DECL_FN: the return type (of a tuple: its first) */
  TypeExpr **rets; /* DECL_FN returning a tuple `-> (f32[..], f32[..])`: n_rets >= 2 types */
  int n_rets;      /* 0: a single value */
  Stmt **body;   /* DECL_FN, DECL_MODEL */
  int n_body;
  StepAst *steps; /* DECL_TRAIN */
  int n_steps;
} Decl;

typedef struct Program {
  Arena arena;
  Decl **decls;
  int n_decls;   /* capacity is implicit (see parse_grow) */
  SrcLoc main_end; /* the end of the first file parsed (the main one): its EOF token */
  bool lib_builtin; /* an import was served by the built-in lib/ (Module.lib_builtin) */
} Program;

void program_init(Program *p);
void program_fini(Program *p);
/* Appends from's decls to p (the pointers: from must outlive p's use of them). */
void program_append(Program *p, const Program *from);
/* Parses one file's tokens and appends its decls to p; returns false if errors were reported. */
bool parse_program(Program *p, const char *file, const char *text, Diag *d);

/* Elaborates p (all files, imports already appended) into a Module; NULL on errors.
 * main_file is the same pointer that was passed to parse_program for the main file: without
 * FrontendOptions.model_name, the last model declared in that file is compiled. */
Module *elab_program(const Program *p, const char *main_file, const FrontendOptions *o, Diag *d);

#endif
