/* frontend/parse_internal.h — the parser's state and the helpers its files share: parse.c
 * (declarations, statements, expressions) and parse_step.c (train blocks). Private to the
 * parser; the rest of lathe calls parse_program (ast.h). */
#ifndef LATHE_FRONTEND_PARSE_INTERNAL_H
#define LATHE_FRONTEND_PARSE_INTERNAL_H

#include "frontend/ast.h"

#include <setjmp.h>

/* Hostile input must not blow the stack. PARSE_MAX_DEPTH bounds the parser's own recursion
 * (nested parentheses, calls, indexing, unary minus, scans); PARSE_MAX_HEIGHT bounds the
 * height of each expression tree it builds, where every operator of a chain is one level
 * (`a + a + a` leans left), so that every later walk of the tree (elaboration, diagnostics)
 * is bounded too. Both are far above what a person writes. */
enum { PARSE_MAX_DEPTH = 256, PARSE_MAX_HEIGHT = 1000, PARSE_MAX_IF_DEPTH = 64 };

typedef struct Parser {
  Program *prog;
  Arena *arena;
  Token *toks;
  int pos, n;
  Diag *d;
  jmp_buf *recover; /* innermost recovery point */
  int depth;        /* expression nesting now, at most PARSE_MAX_DEPTH */
  int nest;         /* open ( and [: line breaks inside them are skipped */
  int if_depth;     /* nested `if` statements now, at most PARSE_MAX_IF_DEPTH */
  bool errors;
} Parser;

/* Grows an arena array so that index n fits; returns the (possibly moved) array. */
void *parse_grow(Arena *a, void *items, int n, size_t elem);

/* Tokens: the next one (line breaks inside ( and [ skipped), whether it is of kind k or the
 * identifier word, consume it, consume it if it is of kind k. */
Token *parse_peek(Parser *p);
bool parse_at(Parser *p, TokenKind k);
bool parse_at_word(Parser *p, const char *word);
Token *parse_next(Parser *p);
bool parse_accept(Parser *p, TokenKind k);
void parse_skip_separators(Parser *p);

/* Errors: each reports at the right place and longjmps to the innermost recovery point. */
_Noreturn void parse_fail(Parser *p);
_Noreturn void parse_error_expected(Parser *p, const char *what);
Token *parse_expect(Parser *p, TokenKind k, const char *context);
Token *parse_expect_ident(Parser *p, const char *what);
void parse_expect_close(Parser *p, TokenKind close, const Token *open);

Expr *parse_expr(Parser *p);

/* train_decl's body (parse_step.c), after "train" IDENT */
void parse_train(Parser *p, Decl *decl);

#endif
