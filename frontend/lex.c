/* frontend/lex.c — the lexer: .lathe source text to an array of Tokens.
 *
 * `#` starts a comment to the end of the line. Line breaks end statements, so they become
 * TK_NEWLINE tokens (consecutive ones collapse into one). Inside ( ) and [ ] an expression
 * may continue on the next line: the parser, which knows the nesting, skips those tokens
 * there, and can still resynchronize at a line break after a missing ')'.
 *
 * Invariants: the array always ends with TK_EOF; every token's loc is its first byte
 * (1-based line and column); nl_before says a line break precedes the token, which the
 * parser uses to place "expected ..." errors at the end of the previous line.
 */
#include "frontend/ast.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct Lexer {
  Arena *arena;
  const char *file;
  const char *text, *p; /* whole text, cursor */
  const char *line_start;
  uint32_t line;
  Token *toks;
  int n, cap;
  bool pending_nl; /* a line break was skipped since the last token */
  Diag *d;
} Lexer;

static const char *const kind_names[TK_COUNT] = {
    [TK_EOF] = "end of file",  [TK_NEWLINE] = "end of line",
    [TK_IDENT] = "identifier", [TK_INT] = "integer",
    [TK_FLOAT] = "number",     [TK_CONST] = "'const'",
    [TK_STRING] = "string",
    [TK_IMPORT] = "'import'",  [TK_FN] = "'fn'",
    [TK_PARAM] = "'param'",    [TK_MODEL] = "'model'",
    [TK_OUTPUT] = "'output'",  [TK_RETURN] = "'return'",
    [TK_TRAIN] = "'train'",    [TK_AS] = "'as'",
    [TK_TRUE] = "'true'",      [TK_FALSE] = "'false'",
    [TK_LPAREN] = "'('",       [TK_RPAREN] = "')'",
    [TK_LBRACKET] = "'['",     [TK_RBRACKET] = "']'",
    [TK_LBRACE] = "'{'",       [TK_RBRACE] = "'}'",
    [TK_COMMA] = "','",        [TK_COLON] = "':'",
    [TK_SEMI] = "';'",         [TK_DOT] = "'.'",
    [TK_ELLIPSIS] = "'...'",   [TK_ARROW] = "'->'",
    [TK_ASSIGN] = "'='",       [TK_PLUS] = "'+'",
    [TK_MINUS] = "'-'",        [TK_STAR] = "'*'",
    [TK_SLASH] = "'/'",        [TK_AT] = "'@'",
    [TK_LT] = "'<'",           [TK_LE] = "'<='",
    [TK_GT] = "'>'",           [TK_GE] = "'>='",
    [TK_EQ] = "'=='",          [TK_NE] = "'!='",
};

const char *lex_kind_name(TokenKind k) {
  return (unsigned)k < TK_COUNT && kind_names[k] ? kind_names[k] : "token";
}

static const struct {
  const char *text;
  TokenKind kind;
} keywords[] = {
    {"const", TK_CONST}, {"import", TK_IMPORT}, {"fn", TK_FN},         {"param", TK_PARAM},
    {"model", TK_MODEL}, {"output", TK_OUTPUT}, {"return", TK_RETURN}, {"train", TK_TRAIN},
    {"as", TK_AS},       {"true", TK_TRUE},     {"false", TK_FALSE},
};

/* Punctuation, longest first so that `...` wins over `.` and `<=` over `<`. */
static const struct {
  const char *text;
  TokenKind kind;
} puncts[] = {
    {"...", TK_ELLIPSIS}, {"->", TK_ARROW},   {"<=", TK_LE},    {">=", TK_GE},
    {"==", TK_EQ},        {"!=", TK_NE},      {"(", TK_LPAREN}, {")", TK_RPAREN},
    {"[", TK_LBRACKET},   {"]", TK_RBRACKET}, {"{", TK_LBRACE}, {"}", TK_RBRACE},
    {",", TK_COMMA},      {":", TK_COLON},    {";", TK_SEMI},   {".", TK_DOT},
    {"=", TK_ASSIGN},     {"+", TK_PLUS},     {"-", TK_MINUS},  {"*", TK_STAR},
    {"/", TK_SLASH},      {"@", TK_AT},       {"<", TK_LT},     {">", TK_GT},
};

static SrcLoc lex_loc(const Lexer *l, const char *at) {
  return (SrcLoc){l->file, l->line, (uint32_t)(at - l->line_start) + 1};
}

static Token *lex_push(Lexer *l, TokenKind kind, const char *start, size_t len) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 256;
    Token *t = arena_alloc(l->arena, (size_t)cap * sizeof *t);
    if (l->n) memcpy(t, l->toks, (size_t)l->n * sizeof *t);
    l->toks = t;
    l->cap = cap;
  }
  Token *t = &l->toks[l->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->loc = lex_loc(l, start);
  t->text = arena_strndup(l->arena, start, len);
  t->len = (int)len;
  t->nl_before = l->pending_nl;
  l->pending_nl = false;
  return t;
}

/* number = digits ["." digits] [("e"|"E") ["+"|"-"] digits] */
static void lex_number(Lexer *l) {
  const char *s = l->p, *q = s;
  bool is_float = false;
  while (isdigit((unsigned char)*q))
    q++;
  if (*q == '.' && isdigit((unsigned char)q[1])) {
    is_float = true;
    for (q++; isdigit((unsigned char)*q);)
      q++;
  }
  if (*q == 'e' || *q == 'E') {
    const char *e = q + 1;
    if (*e == '+' || *e == '-') e++;
    if (isdigit((unsigned char)*e)) {
      is_float = true;
      for (q = e; isdigit((unsigned char)*q);)
        q++;
    }
  }
  Token *t = lex_push(l, is_float ? TK_FLOAT : TK_INT, s, (size_t)(q - s));
  errno = 0;
  if (is_float) {
    t->fval = strtod(t->text, NULL);
    if (errno == ERANGE && (t->fval > 1.0 || t->fval < -1.0))
      diag_error(l->d, t->loc, "number '%s' is too large", t->text);
  } else {
    t->ival = strtoll(t->text, NULL, 10);
    if (errno == ERANGE) diag_error(l->d, t->loc, "integer '%s' is too large", t->text);
  }
  if (isalpha((unsigned char)*q) || *q == '_') {
    SrcLoc at = lex_loc(l, q);
    diag_error(l->d, at, "unexpected '%c' after the number '%s'", *q, t->text);
    while (isalnum((unsigned char)*q) || *q == '_')
      q++;
  }
  l->p = q;
}

/* string = '"' { any byte but '"' and line breaks } '"' (no escapes) */
static void lex_string(Lexer *l) {
  const char *q = l->p + 1;
  while (*q && *q != '"' && *q != '\n')
    q++;
  if (*q != '"') {
    diag_error(l->d, lex_loc(l, l->p), "expected '\"' to close the string on its line");
    l->p = q;
    return;
  }
  lex_push(l, TK_STRING, l->p, (size_t)(q + 1 - l->p));
  l->p = q + 1;
}

static void lex_ident(Lexer *l) {
  const char *s = l->p, *q = s;
  while (isalnum((unsigned char)*q) || *q == '_')
    q++;
  size_t n = (size_t)(q - s);
  TokenKind kind = TK_IDENT;
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strlen(keywords[i].text) == n && memcmp(keywords[i].text, s, n) == 0)
      kind = keywords[i].kind;
  lex_push(l, kind, s, n);
  l->p = q;
}

static void lex_punct(Lexer *l) {
  for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++) {
    size_t n = strlen(puncts[i].text);
    if (strncmp(l->p, puncts[i].text, n) != 0) continue;
    lex_push(l, puncts[i].kind, l->p, n);
    l->p += n;
    return;
  }
  unsigned char c = (unsigned char)*l->p;
  if (isprint(c))
    diag_error(l->d, lex_loc(l, l->p), "unexpected character '%c'", c);
  else
    diag_error(l->d, lex_loc(l, l->p), "unexpected byte 0x%02x", c);
  l->p++;
}

/* Skips blanks and comments; a line break becomes one TK_NEWLINE token. */
static void lex_skip_space(Lexer *l) {
  for (;;) {
    char c = *l->p;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      l->p++;
    } else if (c == '#') {
      while (*l->p && *l->p != '\n')
        l->p++;
    } else if (c == '\n') {
      if (l->n > 0 && l->toks[l->n - 1].kind != TK_NEWLINE) lex_push(l, TK_NEWLINE, l->p, 0);
      l->pending_nl = true;
      l->p++;
      l->line++;
      l->line_start = l->p;
    } else {
      return;
    }
  }
}

Token *lex_tokenize(Arena *arena, const char *file, const char *text, int *n_tokens, Diag *d) {
  Lexer l = {
      .arena = arena, .file = file, .text = text, .p = text, .line_start = text, .line = 1, .d = d};
  for (;;) {
    lex_skip_space(&l);
    if (!*l.p) break;
    if (diag_full(d)) break;
    unsigned char c = (unsigned char)*l.p;
    if (isdigit(c))
      lex_number(&l);
    else if (isalpha(c) || c == '_')
      lex_ident(&l);
    else if (c == '"')
      lex_string(&l);
    else
      lex_punct(&l);
  }
  if (l.n > 0 && l.toks[l.n - 1].kind != TK_NEWLINE) lex_push(&l, TK_NEWLINE, l.p, 0);
  lex_push(&l, TK_EOF, l.p, 0);
  *n_tokens = l.n;
  return l.toks;
}
