/* tests/unit/test_frontend_lex.c — the lexer: token kinds, numbers, keywords, line breaks,
 * comments, locations and lexical errors. */
#include <check.h>
#include <string.h>

#include "frontend/ast.h"
#include "tests/unit/testutil.h"

typedef struct Lexed {
  Arena arena;
  Diag d;
  Token *t;
  int n;
} Lexed;

static void lex(Lexed *l, const char *text) {
  arena_init(&l->arena);
  diag_init(&l->d);
  diag_add_source(&l->d, "t.lathe", text);
  l->t = lex_tokenize(&l->arena, "t.lathe", text, &l->n, &l->d);
}

static void lexed_fini(Lexed *l) {
  arena_fini(&l->arena);
  diag_fini(&l->d);
}

START_TEST(test_kinds) {
  Lexed l;
  lex(&l, "fn dense(x: f32[..., I]) -> f32 { return x @ w <= 1e-3 != 2 }");
  TokenKind want[] = {TK_FN,       TK_IDENT,    TK_LPAREN, TK_IDENT,  TK_COLON,    TK_IDENT,
                      TK_LBRACKET, TK_ELLIPSIS, TK_COMMA,  TK_IDENT,  TK_RBRACKET, TK_RPAREN,
                      TK_ARROW,    TK_IDENT,    TK_LBRACE, TK_RETURN, TK_IDENT,    TK_AT,
                      TK_IDENT,    TK_LE,       TK_FLOAT,  TK_NE,     TK_INT,      TK_RBRACE,
                      TK_NEWLINE,  TK_EOF};
  int n = (int)(sizeof want / sizeof want[0]);
  ck_assert_int_eq(l.n, n);
  for (int i = 0; i < n; i++)
    ck_assert_msg(l.t[i].kind == want[i], "token %d: %s", i, lex_kind_name(l.t[i].kind));
  ck_assert_int_eq(l.d.n_errors, 0);
  ck_assert_double_eq_tol(l.t[20].fval, 1e-3, 1e-12);
  ck_assert_int_eq(l.t[22].ival, 2);
  lexed_fini(&l);
}
END_TEST

START_TEST(test_numbers) {
  Lexed l;
  lex(&l, "0 42 0.5 2e3 1E-2 7.25e+1");
  ck_assert_int_eq(l.t[0].kind, TK_INT);
  ck_assert_int_eq(l.t[1].ival, 42);
  ck_assert_int_eq(l.t[2].kind, TK_FLOAT);
  ck_assert_double_eq(l.t[2].fval, 0.5);
  ck_assert_int_eq(l.t[3].kind, TK_FLOAT);
  ck_assert_double_eq(l.t[3].fval, 2000.0);
  ck_assert_double_eq_tol(l.t[4].fval, 0.01, 1e-15);
  ck_assert_double_eq(l.t[5].fval, 72.5);
  ck_assert_int_eq(l.d.n_errors, 0);
  lexed_fini(&l);
}
END_TEST

START_TEST(test_newlines_comments_locations) {
  Lexed l;
  lex(&l, "# header\n\n  a = f(x,   # trailing\n    y)\n\tb = 1\n");
  /* a = f ( x , NEWLINE y ) NEWLINE b = 1 NEWLINE EOF */
  ck_assert_int_eq(l.t[0].kind, TK_IDENT);
  ck_assert_uint_eq(l.t[0].loc.line, 3);
  ck_assert_uint_eq(l.t[0].loc.col, 3);
  ck_assert_int_eq(l.t[6].kind, TK_NEWLINE); /* the parser skips it inside ( ) */
  ck_assert_int_eq(l.t[7].kind, TK_IDENT);
  ck_assert(l.t[7].nl_before);
  ck_assert_uint_eq(l.t[7].loc.line, 4);
  ck_assert_int_eq(l.t[9].kind, TK_NEWLINE);
  ck_assert_uint_eq(l.t[10].loc.line, 5);
  ck_assert_uint_eq(l.t[10].loc.col, 2);
  ck_assert_int_eq(l.t[l.n - 1].kind, TK_EOF);
  ck_assert_int_eq(l.d.n_errors, 0);
  lexed_fini(&l);
}
END_TEST

START_TEST(test_keywords_and_contextual_words) {
  Lexed l;
  lex(&l, "const import model output param train as true false step minimize int");
  TokenKind want[] = {TK_CONST, TK_IMPORT, TK_MODEL, TK_OUTPUT, TK_PARAM, TK_TRAIN,
                      TK_AS,    TK_TRUE,   TK_FALSE, TK_IDENT,  TK_IDENT, TK_IDENT};
  for (int i = 0; i < 12; i++)
    ck_assert_int_eq(l.t[i].kind, want[i]);
  ck_assert_str_eq(l.t[10].text, "minimize");
  lexed_fini(&l);
}
END_TEST

START_TEST(test_errors) {
  Lexed l;
  lex(&l, "a = $b\nc = 12x ! 99999999999999999999\n");
  ck_assert_int_eq(l.d.n_errors, 4);
  const char *text = diag_text(&l.d);
  ck_assert_ptr_nonnull(strstr(text, "t.lathe:1:5: error: unexpected character '$'"));
  ck_assert_ptr_nonnull(strstr(text, "t.lathe:2:7: error: unexpected 'x' after the number"));
  ck_assert_ptr_nonnull(strstr(text, "t.lathe:2:9: error: unexpected character '!'"));
  ck_assert_ptr_nonnull(strstr(text, "integer '99999999999999999999' is too large"));
  ck_assert_int_eq(l.t[l.n - 1].kind, TK_EOF);
  lexed_fini(&l);
}
END_TEST

START_TEST(test_empty) {
  Lexed l;
  lex(&l, "");
  ck_assert_int_eq(l.n, 1);
  ck_assert_int_eq(l.t[0].kind, TK_EOF);
  lexed_fini(&l);
}
END_TEST

static Suite *lex_suite(void) {
  Suite *s = suite_create("frontend_lex");
  TCase *t = tcase_create("core");
  tcase_add_test(t, test_kinds);
  tcase_add_test(t, test_numbers);
  tcase_add_test(t, test_newlines_comments_locations);
  tcase_add_test(t, test_keywords_and_contextual_words);
  tcase_add_test(t, test_errors);
  tcase_add_test(t, test_empty);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(lex_suite());
}
