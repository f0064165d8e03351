/* frontend/parse.c — recursive-descent parser: Tokens to the AST of ast.h.
 *
 * One function per grammar rule, with the rule (EBNF, as in docs/language.md) in the comment
 * above it. Statements end at a line break or `;`. Contextual words (`int`, `step`,
 * `minimize`, `params`, `optimizer`, `distill` and its clauses) are identifiers everywhere
 * else.
 *
 * Error recovery: an error longjmps to the innermost recovery point (a statement of a block,
 * an item of a train block, or a top-level declaration), which skips to the next statement
 * and goes on, so one run reports every independent error. Once the Diag is full, parsing
 * stops. All AST memory comes from the Program arena, so abandoning a half-built statement
 * leaks nothing.
 */
#include "frontend/parse_internal.h"

#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------ */

/* Grows an arena array so that index n fits; returns the (possibly moved) array. The
 * capacity is implicit (4, 8, 16, ...), so no counter can go stale across a longjmp. */
void *parse_grow(Arena *a, void *items, int n, size_t elem) {
  if (n > 0 && (n < 4 || (n & (n - 1)) != 0)) return items;
  size_t cap = n < 4 ? 4 : 2 * (size_t)n;
  void *p = arena_alloc(a, cap * elem);
  if (n) memcpy(p, items, (size_t)n * elem);
  return p;
}

Token *parse_peek(Parser *p) {
  while (p->nest > 0 && p->toks[p->pos].kind == TK_NEWLINE)
    p->pos++;
  return &p->toks[p->pos];
}
static Token *peek_at(Parser *p, int k) {
  int i = (int)(parse_peek(p) - p->toks) + k;
  return &p->toks[i < p->n ? i : p->n - 1];
}
bool parse_at(Parser *p, TokenKind k) {
  return parse_peek(p)->kind == k;
}
bool parse_at_word(Parser *p, const char *word) {
  return parse_at(p, TK_IDENT) && strcmp(parse_peek(p)->text, word) == 0;
}

Token *parse_next(Parser *p) {
  Token *t = parse_peek(p);
  if (t->kind != TK_EOF) p->pos++;
  if (t->kind == TK_LPAREN || t->kind == TK_LBRACKET) p->nest++;
  if ((t->kind == TK_RPAREN || t->kind == TK_RBRACKET) && p->nest > 0) p->nest--;
  return t;
}

bool parse_accept(Parser *p, TokenKind k) {
  if (!parse_at(p, k)) return false;
  parse_next(p);
  return true;
}

/* Where an "expected ..." error goes: just after the previous token when a line break
 * intervenes (the user forgot something at the end of that line), else at the token. */
static SrcLoc parse_error_loc(Parser *p) {
  Token *t = parse_peek(p);
  if ((t->nl_before && p->nest > 0) || t->kind == TK_NEWLINE || t->kind == TK_EOF) {
    int i = p->pos - 1;
    while (i >= 0 && p->toks[i].kind == TK_NEWLINE)
      i--;
    if (i >= 0) {
      SrcLoc l = p->toks[i].loc;
      l.col += (uint32_t)p->toks[i].len;
      return l;
    }
  }
  return t->loc;
}

/* "'foo'", "')'", "end of line" (also for a token on the next line inside parentheses) */
static const char *describe(Parser *p, const Token *t) {
  if (t->nl_before && p->nest > 0 && t->kind != TK_EOF) return "end of line";
  if (t->kind == TK_IDENT || t->kind == TK_INT || t->kind == TK_FLOAT)
    return arena_printf(p->arena, "'%s'", t->text);
  return lex_kind_name(t->kind);
}

_Noreturn void parse_fail(Parser *p) {
  longjmp(*p->recover, 1);
}

/* One level deeper into nested expressions, at token t. */
static void parse_descend(Parser *p, const Token *t) {
  if (++p->depth <= PARSE_MAX_DEPTH) return;
  diag_error(p->d, t->loc, "expression nested too deeply (limit %d levels)", PARSE_MAX_DEPTH);
  parse_fail(p);
}

_Noreturn void parse_error_expected(Parser *p, const char *what) {
  diag_error(p->d, parse_error_loc(p), "expected %s, got %s", what, describe(p, parse_peek(p)));
  parse_fail(p);
}

Token *parse_expect(Parser *p, TokenKind k, const char *context) {
  if (parse_at(p, k)) return parse_next(p);
  const char *what = lex_kind_name(k);
  if (context) what = arena_printf(p->arena, "%s %s", what, context);
  parse_error_expected(p, what);
}

Token *parse_expect_ident(Parser *p, const char *what) {
  if (parse_at(p, TK_IDENT)) return parse_next(p);
  parse_error_expected(p, what);
}

/* `expected ')' to close '(' at 3:7` */
void parse_expect_close(Parser *p, TokenKind close, const Token *open) {
  if (parse_accept(p, close)) return;
  diag_error(p->d, parse_error_loc(p), "expected %s to close %s at %u:%u, got %s",
             lex_kind_name(close), lex_kind_name(open->kind), open->loc.line, open->loc.col,
             describe(p, parse_peek(p)));
  parse_fail(p);
}

void parse_skip_separators(Parser *p) {
  while (parse_at(p, TK_NEWLINE) || parse_at(p, TK_SEMI))
    parse_next(p);
}

/* Statement end: a line break, `;`, or the `}` closing the block (not consumed). */
static void expect_stmt_end(Parser *p) {
  if (parse_at(p, TK_NEWLINE) || parse_at(p, TK_SEMI)) {
    parse_next(p);
    return;
  }
  if (parse_at(p, TK_RBRACE) || parse_at(p, TK_EOF)) return;
  parse_error_expected(p, "end of statement");
}

/* Recovery: skip to just after the end of the statement that began at token `start`, or
 * to a `}` of the enclosing block (not consumed), balancing nested braces. */
static void sync_stmt(Parser *p, int start) {
  int depth = 0;
  p->nest = 0;
  /* a missing ')' was noticed on the next line: that line is the next statement */
  if (p->pos > start && p->toks[p->pos - 1].kind == TK_NEWLINE) return;
  while (!parse_at(p, TK_EOF)) {
    if (depth == 0 && (parse_at(p, TK_NEWLINE) || parse_at(p, TK_SEMI))) {
      parse_next(p);
      return;
    }
    if (depth == 0 && parse_at(p, TK_RBRACE)) return;
    if (parse_at(p, TK_LBRACE)) depth++;
    if (parse_at(p, TK_RBRACE)) depth--;
    parse_next(p);
  }
}

static bool is_decl_start(const Token *t) {
  return t->kind == TK_CONST || t->kind == TK_IMPORT || t->kind == TK_FN || t->kind == TK_MODEL ||
         t->kind == TK_TRAIN;
}

/* Recovery at top level: skip to the next declaration keyword that starts a line. */
static void sync_decl(Parser *p) {
  p->nest = 0;
  if (!parse_at(p, TK_EOF)) parse_next(p);
  while (!parse_at(p, TK_EOF) && !(is_decl_start(parse_peek(p)) && parse_peek(p)->nl_before))
    parse_next(p);
}

static Expr *new_expr(Parser *p, ExprKind kind, SrcLoc loc) {
  Expr *e = arena_alloc(p->arena, sizeof *e);
  e->kind = kind;
  e->loc = loc;
  return e;
}

/* ---- expressions -------------------------------------------------------------------------- */

/* call_args = [ call_arg { "," call_arg } [","] ]
 * call_arg  = [ IDENT "=" ] expr */
static void parse_call_args(Parser *p, Expr *call, const Token *open) {
  while (!parse_at(p, TK_RPAREN)) {
    const char *kw = NULL;
    SrcLoc loc = parse_peek(p)->loc;
    if (parse_at(p, TK_IDENT) && peek_at(p, 1)->kind == TK_ASSIGN) {
      kw = parse_next(p)->text;
      parse_next(p);
    }
    Expr *arg = parse_expr(p);
    call->args = parse_grow(p->arena, call->args, call->n_args, sizeof(Expr *));
    call->arg_names = parse_grow(p->arena, call->arg_names, call->n_args, sizeof(const char *));
    call->arg_locs = parse_grow(p->arena, call->arg_locs, call->n_args, sizeof(SrcLoc));
    call->args[call->n_args] = arg;
    call->arg_names[call->n_args] = kw;
    call->arg_locs[call->n_args] = loc;
    call->n_args++;
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, TK_RPAREN, open);
}

/* elements = [ element { "," element } [","] ]  — for lists, tuples and index lists;
 * with_slices allows `[expr] ":" [expr]` elements (inside an index). */
static void parse_elements(Parser *p, Expr *e, TokenKind close, const Token *open,
                           bool with_slices) {
  while (!parse_at(p, close)) {
    Expr *item = NULL;
    SrcLoc loc = parse_peek(p)->loc;
    if (with_slices && parse_at(p, TK_COLON)) {
      item = NULL;
    } else {
      item = parse_expr(p);
    }
    if (with_slices && parse_at(p, TK_COLON)) {
      Expr *s = new_expr(p, EX_SLICE, loc);
      parse_next(p);
      s->lhs = item;
      if (!parse_at(p, TK_COMMA) && !parse_at(p, close) && !parse_at(p, TK_COLON))
        s->rhs = parse_expr(p);
      if (parse_accept(p, TK_COLON) && !parse_at(p, TK_COMMA) &&
          !parse_at(p, close)) { /* start:end:step */
        s->args = arena_alloc(p->arena, sizeof(Expr *));
        s->args[0] = parse_expr(p);
        s->n_args = 1;
      }
      item = s;
    }
    e->args = parse_grow(p->arena, e->args, e->n_args, sizeof(Expr *));
    e->args[e->n_args++] = item;
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, close, open);
}

/* paren = "(" expr ")" | "(" expr "," [ elements ] ")" */
static Expr *parse_paren(Parser *p) {
  Token *open = parse_next(p);
  Expr *first = parse_expr(p);
  if (!parse_at(p, TK_COMMA)) {
    parse_expect_close(p, TK_RPAREN, open);
    return first;
  }
  parse_next(p);
  Expr *rest = new_expr(p, EX_TUPLE, open->loc);
  parse_elements(p, rest, TK_RPAREN, open, false);
  Expr *e = new_expr(p, EX_TUPLE, open->loc);
  e->args = arena_alloc(p->arena, (size_t)(rest->n_args + 1) * sizeof(Expr *));
  e->args[0] = first;
  if (rest->n_args) memcpy(e->args + 1, rest->args, (size_t)rest->n_args * sizeof(Expr *));
  e->n_args = rest->n_args + 1;
  return e;
}

static Stmt *parse_stmt(Parser *p);
static Expr *parse_additive(Parser *p);
static bool at_if(Parser *p);
static Stmt *parse_if_stmt(Parser *p);

static bool scan_at_word(const Parser *p, int ahead, const char *word) {
  const Token *t = &p->toks[p->pos + ahead < p->n ? p->pos + ahead : p->n - 1];
  return t->kind == TK_IDENT && strcmp(t->text, word) == 0;
}

/* scan_block = "{" { stmt | NEWLINE | ";" } [ "yield" expr ] { NEWLINE | ";" } "}" */
static void parse_scan_block(Parser *p, Expr *e) {
  int nest = p->nest;
  p->nest = 0; /* statements end at line breaks even inside ( ) */
  Token *open = parse_expect(p, TK_LBRACE, "to open the scan body");
  for (;;) {
    parse_skip_separators(p);
    if (parse_at(p, TK_RBRACE) || parse_at(p, TK_EOF)) break;
    if (scan_at_word(p, 0, "yield") && p->toks[p->pos + 1].kind != TK_ASSIGN &&
        p->toks[p->pos + 1].kind != TK_COMMA) {
      parse_next(p);
      e->yield = parse_expr(p);
      parse_skip_separators(p);
      break;
    }
    if (at_if(p)) { /* reported, parsed and dropped: the body goes on after it */
      diag_error(p->d, parse_peek(p)->loc,
                 "'if' is not allowed in a scan body; choose before the scan");
      p->errors = true;
      int depth = p->depth; /* the if's statements restart it at 0 */
      parse_if_stmt(p);
      p->depth = depth;
      continue;
    }
    Stmt *st = parse_stmt(p);
    e->body = parse_grow(p->arena, e->body, e->n_body, sizeof(Stmt *));
    e->body[e->n_body++] = st;
  }
  parse_expect_close(p, TK_RBRACE, open);
  p->nest = nest;
}

/* scan = "scan" IDENT "in" expr ".." expr [ "reversed" ] "with" "(" IDENT "=" expr
 *        { "," IDENT "=" expr } ")" scan_block */
static Expr *parse_scan(Parser *p, const Token *kw) {
  Expr *e = new_expr(p, EX_SCAN, kw->loc);
  e->name = parse_expect_ident(p, "a step variable after 'scan'")->text;
  parse_next(p); /* "in" */
  e->lhs = parse_additive(p);
  parse_expect(p, TK_DOT, "in the range 'start..end'");
  parse_expect(p, TK_DOT, "in the range 'start..end'");
  e->rhs = parse_additive(p);
  if (scan_at_word(p, 0, "reversed")) e->ival = 1, parse_next(p); /* steps T-1 down to 0 */
  if (!scan_at_word(p, 0, "with")) parse_error_expected(p, "'with (name = initial value, ...)'");
  parse_next(p);
  Token *open = parse_expect(p, TK_LPAREN, "after 'with'");
  while (!parse_at(p, TK_RPAREN)) {
    Token *name = parse_expect_ident(p, "a carried value's name");
    parse_expect(p, TK_ASSIGN, "and its initial value");
    e->args = parse_grow(p->arena, e->args, e->n_args, sizeof(Expr *));
    e->arg_names = parse_grow(p->arena, e->arg_names, e->n_args, sizeof(char *));
    e->arg_locs = parse_grow(p->arena, e->arg_locs, e->n_args, sizeof(SrcLoc));
    e->arg_names[e->n_args] = name->text;
    e->arg_locs[e->n_args] = name->loc;
    e->args[e->n_args++] = parse_expr(p);
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, TK_RPAREN, open);
  parse_scan_block(p, e);
  return e;
}

/* primary = INT | FLOAT | STRING | "true" | "false"
 *         | IDENT { "." IDENT }                      (a name, or a param path: tok.table)
 *         | IDENT "(" call_args ")" [ "as" IDENT ]
 *         | "(" expr ")" | "(" expr "," [ elements ] ")"
 *         | "[" elements "]" */
static Expr *parse_primary(Parser *p) {
  Token *t = parse_peek(p);
  switch (t->kind) {
  case TK_INT:
  case TK_FLOAT: {
    parse_next(p);
    Expr *e = new_expr(p, t->kind == TK_INT ? EX_INT : EX_FLOAT, t->loc);
    e->ival = t->ival;
    e->fval = t->kind == TK_INT ? (double)t->ival : t->fval;
    return e;
  }
  case TK_STRING: {
    parse_next(p);
    Expr *e = new_expr(p, EX_STRING, t->loc);
    e->name = arena_strndup(p->arena, t->text + 1, (size_t)t->len - 2);
    return e;
  }
  case TK_TRUE:
  case TK_FALSE: {
    parse_next(p);
    Expr *e = new_expr(p, EX_BOOL, t->loc);
    e->ival = t->kind == TK_TRUE;
    return e;
  }
  case TK_IDENT: {
    parse_next(p);
    if (strcmp(t->text, "scan") == 0 && parse_at(p, TK_IDENT) && scan_at_word(p, 1, "in"))
      return parse_scan(p, t);
    if (!parse_at(p, TK_LPAREN)) {
      Expr *e = new_expr(p, EX_NAME, t->loc);
      e->name = t->text;
      while (parse_at(p, TK_DOT) && !parse_peek(p)->nl_before && peek_at(p, 1)->kind == TK_IDENT) {
        parse_next(p); /* a param path: tok.table */
        e->name = arena_printf(p->arena, "%s.%s", e->name, parse_next(p)->text);
      }
      return e;
    }
    Token *open = parse_next(p);
    Expr *e = new_expr(p, EX_CALL, t->loc);
    e->name = t->text;
    parse_call_args(p, e, open);
    if (parse_accept(p, TK_AS)) {
      Token *n = parse_expect_ident(p, "an instance name after 'as'");
      e->as_name = n->text;
      e->as_loc = n->loc;
    }
    return e;
  }
  case TK_LPAREN:
    return parse_paren(p);
  case TK_LBRACKET: {
    Token *open = parse_next(p);
    Expr *e = new_expr(p, EX_LIST, open->loc);
    parse_elements(p, e, TK_RBRACKET, open, false);
    return e;
  }
  default:
    parse_error_expected(p, "an expression");
  }
}

/* postfix = primary { "[" elements "]" } */
static Expr *parse_postfix(Parser *p) {
  Expr *e = parse_primary(p);
  while (parse_at(p, TK_LBRACKET) && !parse_peek(p)->nl_before) {
    Token *open = parse_next(p);
    Expr *ix = new_expr(p, EX_INDEX, open->loc);
    ix->lhs = e;
    parse_elements(p, ix, TK_RBRACKET, open, true);
    e = ix;
  }
  if (parse_at(p, TK_AS))
    diag_error(p->d, parse_peek(p)->loc, "'as NAME' must follow a call, as in 'f(x) as NAME'");
  if (parse_at(p, TK_AS)) parse_fail(p);
  return e;
}

/* unary = "-" unary | postfix */
static Expr *parse_unary(Parser *p) {
  if (parse_at(p, TK_MINUS)) {
    Token *t = parse_next(p);
    parse_descend(p, t);
    Expr *e = new_expr(p, EX_UNARY, t->loc);
    e->op = TK_MINUS;
    e->lhs = parse_unary(p);
    p->depth--;
    return e;
  }
  return parse_postfix(p);
}

static Expr *new_binary(Parser *p, Token *op, Expr *lhs, Expr *rhs) {
  Expr *e = new_expr(p, EX_BINARY, op->loc);
  e->op = op->kind;
  e->lhs = lhs;
  e->rhs = rhs;
  return e;
}

/* multiplicative = unary { ( "*" | "/" | "@" ) unary } */
static Expr *parse_multiplicative(Parser *p) {
  Expr *e = parse_unary(p);
  while (parse_at(p, TK_STAR) || parse_at(p, TK_SLASH) || parse_at(p, TK_AT)) {
    Token *op = parse_next(p);
    e = new_binary(p, op, e, parse_unary(p));
  }
  return e;
}

/* additive = multiplicative { ( "+" | "-" ) multiplicative } */
static Expr *parse_additive(Parser *p) {
  Expr *e = parse_multiplicative(p);
  while (parse_at(p, TK_PLUS) || parse_at(p, TK_MINUS)) {
    Token *op = parse_next(p);
    e = new_binary(p, op, e, parse_multiplicative(p));
  }
  return e;
}

static bool is_comparison(TokenKind k) {
  return k == TK_LT || k == TK_LE || k == TK_GT || k == TK_GE || k == TK_EQ || k == TK_NE;
}

static bool deeper_than_limit(void *ctx, const Expr *e, int depth) {
  if (depth <= PARSE_MAX_HEIGHT) return true;
  *(const Expr **)ctx = e;
  return false;
}

/* The height check of a whole expression tree (see PARSE_MAX_HEIGHT), without recursion. */
static void check_height(Parser *p, const Expr *root) {
  const Expr *deep = NULL;
  if (ast_walk(root, true, deeper_than_limit, &deep)) return;
  diag_error(p->d, deep ? deep->loc : root->loc,
             "expression nested too deeply (limit %d levels, where each operator of a chain "
             "is one level); split it into several bindings",
             PARSE_MAX_HEIGHT);
  parse_fail(p);
}

/* expr = additive [ ( "<" | "<=" | ">" | ">=" | "==" | "!=" ) additive ] */
Expr *parse_expr(Parser *p) {
  parse_descend(p, parse_peek(p));
  Expr *e = parse_additive(p);
  if (is_comparison(parse_peek(p)->kind)) {
    Token *op = parse_next(p);
    e = new_binary(p, op, e, parse_additive(p));
    if (is_comparison(parse_peek(p)->kind)) {
      diag_error(p->d, parse_peek(p)->loc, "comparisons do not chain; add parentheses");
      parse_fail(p);
    }
  }
  if (--p->depth == 0) check_height(p, e); /* a whole expression: once per tree */
  return e;
}

/* ---- types -------------------------------------------------------------------------------- */

/* type = "int" | "float" | "bool" | IDENT "[" [ dim { "," dim } ] "]"
 * dim  = "..." | expr */
static TypeExpr *parse_type(Parser *p) {
  Token *t = parse_expect_ident(p, "a type such as 'f32[N, 784]', 'int', 'float' or 'bool'");
  TypeExpr *ty = arena_alloc(p->arena, sizeof *ty);
  ty->loc = t->loc;
  ty->is_int = strcmp(t->text, "int") == 0;
  ty->is_float = strcmp(t->text, "float") == 0;
  ty->is_bool = strcmp(t->text, "bool") == 0;
  if (type_is_scalar(ty)) return ty;
  ty->dtype = t->text;
  if (!parse_at(p, TK_LBRACKET))
    parse_error_expected(p, "'[' and the dimensions of the tensor type");
  Token *open = parse_next(p);
  while (!parse_at(p, TK_RBRACKET)) {
    Expr *dim;
    if (parse_at(p, TK_ELLIPSIS))
      dim = new_expr(p, EX_ELLIPSIS, parse_next(p)->loc);
    else
      dim = parse_expr(p);
    ty->dims = parse_grow(p->arena, ty->dims, ty->n_dims, sizeof(Expr *));
    ty->dims[ty->n_dims++] = dim;
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, TK_RBRACKET, open);
  return ty;
}

/* ret_type = type | "(" type "," type { "," type } [ "," ] ")"     (a tuple of values) */
static void parse_ret_type(Parser *p, Decl *decl) {
  if (!parse_at(p, TK_LPAREN)) {
    decl->ret = parse_type(p);
    return;
  }
  Token *open = parse_next(p);
  while (!parse_at(p, TK_RPAREN)) {
    decl->rets = parse_grow(p->arena, decl->rets, decl->n_rets, sizeof(TypeExpr *));
    decl->rets[decl->n_rets++] = parse_type(p);
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, TK_RPAREN, open);
  if (decl->n_rets < 2) {
    diag_error(p->d, open->loc,
               "a tuple return type needs at least two types, as in "
               "'-> (f32[B, T, H], f32[B, H])'");
    parse_fail(p);
  }
  decl->ret = decl->rets[0];
}

/* ---- statements --------------------------------------------------------------------------- */

static Stmt *new_stmt(Parser *p, StmtKind kind, SrcLoc loc) {
  Stmt *s = arena_alloc(p->arena, sizeof *s);
  s->kind = kind;
  s->loc = loc;
  return s;
}

static void stmt_add_name(Parser *p, Stmt *s, const Token *t) {
  s->names = parse_grow(p->arena, s->names, s->n_names, sizeof(const char *));
  s->name_locs = parse_grow(p->arena, s->name_locs, s->n_names, sizeof(SrcLoc));
  s->names[s->n_names] = t->text;
  s->name_locs[s->n_names++] = t->loc;
}

/* param_stmt = "param" IDENT ":" type "=" expr
 * state_stmt = "state" IDENT ":" type "=" expr   ("state" contextual)
 * noun names the declared thing in messages; init_hint is an example initializer */
static Stmt *parse_decl_stmt(Parser *p, StmtKind kind, const char *noun, const char *init_hint) {
  const Token *kw = parse_next(p);
  Stmt *s = new_stmt(p, kind, kw->loc);
  char want[96];
  snprintf(want, sizeof want, "a %s name after '%s'", noun, kw->text);
  stmt_add_name(p, s, parse_expect_ident(p, want));
  snprintf(want, sizeof want, "and the %s's type", noun);
  parse_expect(p, TK_COLON, want);
  s->type = parse_type(p);
  snprintf(want, sizeof want, "and an initializer such as %s", init_hint);
  parse_expect(p, TK_ASSIGN, want);
  s->value = parse_expr(p);
  return s;
}

/* update_stmt = "update" IDENT "=" expr   ("update" contextual) */
static Stmt *parse_update_stmt(Parser *p) {
  Stmt *s = new_stmt(p, ST_UPDATE, parse_next(p)->loc);
  stmt_add_name(p, s, parse_expect_ident(p, "a state name after 'update'"));
  parse_expect(p, TK_ASSIGN, "after the state name");
  s->value = parse_expr(p);
  return s;
}

/* `state NAME :` and `update NAME =` begin those statements; `state = 3` binds a name */
static bool at_state_word(Parser *p, const char *word, TokenKind third) {
  return parse_at_word(p, word) && peek_at(p, 1)->kind == TK_IDENT && peek_at(p, 2)->kind == third;
}

/* output_stmt = "output" IDENT [ "=" expr ] */
static Stmt *parse_output_stmt(Parser *p) {
  Stmt *s = new_stmt(p, ST_OUTPUT, parse_next(p)->loc);
  stmt_add_name(p, s, parse_expect_ident(p, "an output name after 'output'"));
  if (parse_accept(p, TK_ASSIGN)) s->value = parse_expr(p);
  return s;
}

/* bind_stmt = IDENT { "," IDENT } "=" expr */
static Stmt *parse_bind_stmt(Parser *p) {
  Stmt *s = new_stmt(p, ST_BIND, parse_peek(p)->loc);
  stmt_add_name(p, s, parse_expect_ident(p, "a statement"));
  while (parse_accept(p, TK_COMMA))
    stmt_add_name(p, s, parse_expect_ident(p, "a name"));
  parse_expect(p, TK_ASSIGN, s->n_names > 1 ? "after the names" : "after the binding name");
  s->value = parse_expr(p);
  return s;
}

static bool at_if(Parser *p) {
  TokenKind k = peek_at(p, 1)->kind; /* `if = 3` and `if, b = ...` bind a name `if` */
  return parse_at_word(p, "if") && k != TK_ASSIGN && k != TK_COMMA;
}

/* "{" { stmt | NEWLINE | ";" } "}" into *body: a fn's, a model's or an if's body. Each
 * statement is a recovery point; the `if` nesting depth is the one the block starts at. */
static void parse_stmt_block(Parser *p, Stmt ***body, int *n, const char *context) {
  Token *open = parse_expect(p, TK_LBRACE, context);
  jmp_buf jb, *outer = p->recover;
  int if_depth = p->if_depth;
  for (;;) {
    parse_skip_separators(p);
    if (parse_at(p, TK_RBRACE) || parse_at(p, TK_EOF)) break;
    p->recover = &jb;
    p->depth = 0;
    p->if_depth = if_depth;
    int start = p->pos;
    if (setjmp(jb) == 0) {
      Stmt *st = parse_stmt(p);
      *body = parse_grow(p->arena, *body, *n, sizeof(Stmt *));
      (*body)[(*n)++] = st;
    } else {
      p->errors = true;
      if (diag_full(p->d)) break;
      sync_stmt(p, start);
    }
  }
  p->recover = outer;
  if (diag_full(p->d)) parse_fail(p);
  parse_expect_close(p, TK_RBRACE, open);
}

/* if_stmt = "if" expr if_block [ "else" ( if_stmt | if_block ) ]   ("if", "else" contextual) */
static Stmt *parse_if_stmt(Parser *p) {
  Token *kw = parse_next(p);
  if (++p->if_depth > PARSE_MAX_IF_DEPTH) {
    diag_error(p->d, kw->loc, "'if' statements nested too deeply (limit %d)", PARSE_MAX_IF_DEPTH);
    p->if_depth = 0;
    parse_fail(p);
  }
  Stmt *s = new_stmt(p, ST_IF, kw->loc);
  s->value = parse_expr(p);
  parse_stmt_block(p, &s->body, &s->n_body, "to open the body of 'if'");
  if (parse_at_word(p, "else")) {
    parse_next(p);
    if (parse_at_word(p, "if")) {
      s->else_body = arena_alloc(p->arena, sizeof(Stmt *));
      s->else_body[0] = parse_if_stmt(p);
      s->n_else = 1;
    } else {
      parse_stmt_block(p, &s->else_body, &s->n_else, "to open the body of 'else'");
    }
  }
  p->if_depth--;
  return s;
}

/* `quantize` the QAT statement (not a call or a binding of the builtin) in a model or fn body:
 * an error at it, pointing to the train block */
static void refuse_quantize_stmt(Parser *p) {
  if (!scan_at_word(p, 0, "quantize")) return;
  const Token *t = &p->toks[p->pos + 1 < p->n ? p->pos + 1 : p->n - 1];
  bool stmt = t->kind == TK_NEWLINE || t->kind == TK_SEMI || t->kind == TK_RBRACE ||
              t->kind == TK_EOF || scan_at_word(p, 1, "per_channel") ||
              scan_at_word(p, 1, "per_tensor") || scan_at_word(p, 1, "except");
  if (!stmt) return;
  diag_error(p->d, parse_peek(p)->loc,
             "'quantize' (quantization-aware training) is a statement of a train block: "
             "write it beside 'minimize' in 'train NAME { ... }'");
  parse_fail(p);
}

/* stmt = param_stmt | state_stmt | update_stmt | output_stmt | "return" expr | if_stmt
 *      | bind_stmt */
static Stmt *parse_stmt(Parser *p) {
  Stmt *s;
  refuse_quantize_stmt(p);
  if (at_if(p)) {
    s = parse_if_stmt(p);
  } else if (at_state_word(p, "state", TK_COLON)) {
    s = parse_decl_stmt(p, ST_STATE, "state", "'zeros'");
  } else if (at_state_word(p, "update", TK_ASSIGN)) {
    s = parse_update_stmt(p);
  } else if (parse_at(p, TK_PARAM)) {
    s = parse_decl_stmt(p, ST_PARAM, "parameter", "'zeros' or 'normal(0, 0.02)'");
  } else if (parse_at(p, TK_OUTPUT)) {
    s = parse_output_stmt(p);
  } else if (parse_at(p, TK_RETURN)) {
    s = new_stmt(p, ST_RETURN, parse_next(p)->loc);
    s->value = parse_expr(p);
  } else {
    s = parse_bind_stmt(p);
  }
  expect_stmt_end(p);
  return s;
}

/* block = "{" { stmt | NEWLINE | ";" } "}": a fn's or model's body (parse_stmt_block) */
static void parse_block(Parser *p, Decl *decl) {
  p->if_depth = 0;
  parse_stmt_block(p, &decl->body, &decl->n_body, "to open the body");
}

/* ---- declarations ------------------------------------------------------------------------- */

/* args = "(" [ IDENT ":" type [ "=" expr ] { "," ... } ] ")" */
static void parse_args(Parser *p, Decl *decl) {
  Token *open = parse_expect(p, TK_LPAREN, "to open the argument list");
  while (!parse_at(p, TK_RPAREN)) {
    Token *name = parse_expect_ident(p, "an argument name");
    parse_expect(p, TK_COLON, "and the argument's type");
    decl->args = parse_grow(p->arena, decl->args, decl->n_args, sizeof(Arg));
    decl->args[decl->n_args++] = (Arg){name->text, name->loc, parse_type(p), NULL};
    if (parse_accept(p, TK_ASSIGN)) decl->args[decl->n_args - 1].def = parse_expr(p);
    if (!parse_accept(p, TK_COMMA)) break;
  }
  parse_expect_close(p, TK_RPAREN, open);
}

/* decl = "const" IDENT "=" expr
 *      | "import" IDENT
 *      | "fn" IDENT args "->" type block
 *      | "model" IDENT args block
 *      | "train" IDENT train_body */
static Decl *parse_decl(Parser *p) {
  Token *kw = parse_peek(p);
  if (!is_decl_start(kw)) parse_error_expected(p, "'const', 'import', 'fn', 'model' or 'train'");
  parse_next(p);
  Decl *decl = arena_alloc(p->arena, sizeof *decl);
  decl->loc = kw->loc;
  Token *name =
      parse_expect_ident(p, arena_printf(p->arena, "a name after %s", lex_kind_name(kw->kind)));
  decl->name = name->text;
  decl->name_loc = name->loc;
  switch (kw->kind) {
  case TK_CONST:
    decl->kind = DECL_CONST;
    parse_expect(p, TK_ASSIGN, "after the const name");
    decl->value = parse_expr(p);
    break;
  case TK_IMPORT:
    decl->kind = DECL_IMPORT;
    break;
  case TK_FN:
    decl->kind = DECL_FN;
    parse_args(p, decl);
    parse_expect(p, TK_ARROW, "and the return type");
    parse_ret_type(p, decl);
    parse_block(p, decl);
    break;
  case TK_MODEL:
    decl->kind = DECL_MODEL;
    parse_args(p, decl);
    parse_block(p, decl);
    break;
  default:
    decl->kind = DECL_TRAIN;
    parse_train(p, decl);
    break;
  }
  expect_stmt_end(p);
  return decl;
}

/* program = { decl | NEWLINE | ";" } EOF */
static void parse_decls(Parser *p) {
  jmp_buf jb, *outer = p->recover;
  for (;;) {
    parse_skip_separators(p);
    if (parse_at(p, TK_EOF)) break;
    p->recover = &jb;
    p->depth = 0;
    if (setjmp(jb) == 0) {
      Decl *decl = parse_decl(p);
      Program *g = p->prog;
      g->decls = parse_grow(&g->arena, g->decls, g->n_decls, sizeof(Decl *));
      g->decls[g->n_decls++] = decl;
    } else {
      p->errors = true;
      if (diag_full(p->d)) break;
      sync_decl(p);
    }
  }
  p->recover = outer;
}

void program_init(Program *p) {
  memset(p, 0, sizeof *p);
  arena_init(&p->arena);
}

void program_fini(Program *p) {
  arena_fini(&p->arena);
  memset(p, 0, sizeof *p);
}

void program_append(Program *p, const Program *from) {
  for (int i = 0; i < from->n_decls; i++) {
    p->decls = parse_grow(&p->arena, p->decls, p->n_decls, sizeof(Decl *));
    p->decls[p->n_decls++] = from->decls[i];
  }
}

bool parse_program(Program *prog, const char *file, const char *text, Diag *d) {
  int before = d->n_errors;
  Parser p = {.prog = prog, .arena = &prog->arena, .d = d};
  p.toks = lex_tokenize(&prog->arena, file, text, &p.n, d);
  if (!prog->main_end.file) prog->main_end = p.toks[p.n - 1].loc;
  if (!diag_full(d)) parse_decls(&p);
  return d->n_errors == before && !p.errors;
}
