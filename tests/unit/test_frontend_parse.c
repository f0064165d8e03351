/* tests/unit/test_frontend_parse.c — the parser: AST shapes for every construct, operator
 * precedence, and error recovery (several errors in one file, opener positions). */
#include <check.h>
#include <string.h>

#include "frontend/ast.h"
#include "tests/unit/testutil.h"

typedef struct Parsed {
  Program p;
  Diag d;
  bool ok;
} Parsed;

static void parse(Parsed *r, const char *text) {
  program_init(&r->p);
  diag_init(&r->d);
  diag_add_source(&r->d, "t.lathe", text);
  r->ok = parse_program(&r->p, "t.lathe", text, &r->d);
}

static void parsed_fini(Parsed *r) {
  program_fini(&r->p);
  diag_fini(&r->d);
}

/* The body statement i of decl k */
static const Stmt *stmt(const Parsed *r, int k, int i) {
  return r->p.decls[k]->body[i];
}

START_TEST(test_decls) {
  Parsed r;
  parse(&r, "import nn\nconst N = 64\n"
            "fn dense(x: f32[..., I], units: int) -> f32[..., units] {\n"
            "  param w: f32[I, units] = glorot_uniform\n  return x @ w\n}\n"
            "model m(x: f32[N, 784]) { h = dense(x, 2); output y = h }\n"
            "train m { minimize loss  params h1.*, h2.w  optimizer adam(lr = 1e-3) }\n");
  ck_assert_msg(r.ok, "%s", diag_text(&r.d));
  ck_assert_int_eq(r.p.n_decls, 5);
  ck_assert_int_eq(r.p.decls[0]->kind, DECL_IMPORT);
  ck_assert_str_eq(r.p.decls[0]->name, "nn");
  ck_assert_int_eq(r.p.decls[1]->kind, DECL_CONST);
  ck_assert_int_eq(r.p.decls[1]->value->ival, 64);
  const Decl *fn = r.p.decls[2];
  ck_assert_int_eq(fn->kind, DECL_FN);
  ck_assert_int_eq(fn->n_args, 2);
  ck_assert_int_eq(fn->args[0].type->n_dims, 2);
  ck_assert_int_eq(fn->args[0].type->dims[0]->kind, EX_ELLIPSIS);
  ck_assert(fn->args[1].type->is_int);
  ck_assert_str_eq(fn->ret->dims[1]->name, "units");
  ck_assert_int_eq(fn->n_body, 2);
  ck_assert_int_eq(fn->body[0]->kind, ST_PARAM);
  ck_assert_str_eq(fn->body[0]->value->name, "glorot_uniform");
  ck_assert_int_eq(fn->body[1]->kind, ST_RETURN);
  ck_assert_int_eq(fn->body[1]->value->op, TK_AT);
  ck_assert_int_eq(r.p.decls[3]->n_body, 2);
  ck_assert_int_eq(stmt(&r, 3, 1)->kind, ST_OUTPUT);
  const Decl *t = r.p.decls[4];
  ck_assert_int_eq(t->n_steps, 1);
  ck_assert_ptr_null(t->steps[0].name);
  ck_assert_str_eq(t->steps[0].loss, "loss");
  ck_assert_int_eq(t->steps[0].n_globs, 2);
  ck_assert_str_eq(t->steps[0].globs[0], "h1.*");
  ck_assert_str_eq(t->steps[0].globs[1], "h2.w");
  ck_assert_str_eq(t->steps[0].optimizer->arg_names[0], "lr");
  parsed_fini(&r);
}
END_TEST

START_TEST(test_precedence) {
  Parsed r;
  parse(&r, "model m(x: f32[2]) {\n  a = -x @ w + b * c < d\n}\n");
  ck_assert_msg(r.ok, "%s", diag_text(&r.d));
  const Expr *e = stmt(&r, 0, 0)->value;
  /* ((((-x) @ w) + (b * c)) < d) */
  ck_assert_int_eq(e->op, TK_LT);
  ck_assert_int_eq(e->lhs->op, TK_PLUS);
  ck_assert_int_eq(e->lhs->lhs->op, TK_AT);
  ck_assert_int_eq(e->lhs->lhs->lhs->kind, EX_UNARY);
  ck_assert_int_eq(e->lhs->rhs->op, TK_STAR);
  ck_assert_uint_eq(e->loc.col, 22); /* the operator */
  parsed_fini(&r);
}
END_TEST

START_TEST(test_calls_index_tuples) {
  Parsed r;
  parse(&r, "model m(x: f32[2]) {\n"
            "  a = sum(x, axis = (0, 1), keepdims = true)\n"
            "  b = x[:, 0]\n  c = x[1:3]\n  d, e = f(\n    x,\n    y) as enc\n"
            "  g = reshape(x, [2, -1]); h = 1e-3\n}\n");
  ck_assert_msg(r.ok, "%s", diag_text(&r.d));
  const Expr *a = stmt(&r, 0, 0)->value;
  ck_assert_int_eq(a->kind, EX_CALL);
  ck_assert_int_eq(a->n_args, 3);
  ck_assert_ptr_null(a->arg_names[0]);
  ck_assert_str_eq(a->arg_names[1], "axis");
  ck_assert_int_eq(a->args[1]->kind, EX_TUPLE);
  ck_assert_int_eq(a->args[1]->n_args, 2);
  ck_assert_int_eq(a->args[2]->kind, EX_BOOL);
  const Expr *b = stmt(&r, 0, 1)->value;
  ck_assert_int_eq(b->kind, EX_INDEX);
  ck_assert_int_eq(b->args[0]->kind, EX_SLICE);
  ck_assert_ptr_null(b->args[0]->lhs);
  ck_assert_int_eq(b->args[1]->kind, EX_INT);
  const Expr *c = stmt(&r, 0, 2)->value;
  ck_assert_int_eq(c->args[0]->lhs->ival, 1);
  ck_assert_int_eq(c->args[0]->rhs->ival, 3);
  const Stmt *de = stmt(&r, 0, 3);
  ck_assert_int_eq(de->n_names, 2);
  ck_assert_str_eq(de->value->as_name, "enc");
  ck_assert_int_eq(de->value->n_args, 2);
  ck_assert_int_eq(stmt(&r, 0, 4)->value->args[1]->kind, EX_LIST);
  ck_assert_int_eq(stmt(&r, 0, 5)->value->kind, EX_FLOAT);
  parsed_fini(&r);
}
END_TEST

START_TEST(test_train_steps) {
  Parsed r;
  parse(&r, "train gan {\n"
            "  step disc { minimize d_loss params disc.* optimizer adam(lr=2e-4, beta1=0.5) }\n"
            "  step gen {\n    minimize g_loss\n    params gen.*\n    optimizer sgd\n  }\n}\n");
  ck_assert_msg(r.ok, "%s", diag_text(&r.d));
  const Decl *t = r.p.decls[0];
  ck_assert_int_eq(t->n_steps, 2);
  ck_assert_str_eq(t->steps[0].name, "disc");
  ck_assert_str_eq(t->steps[0].loss, "d_loss");
  ck_assert_int_eq(t->steps[0].optimizer->n_args, 2);
  ck_assert_str_eq(t->steps[1].globs[0], "gen.*");
  ck_assert_int_eq(t->steps[1].optimizer->kind, EX_NAME);
  parsed_fini(&r);
}
END_TEST

START_TEST(test_recovery_reports_all) {
  Parsed r;
  parse(&r, "model m(x: f32[2]) {\n"
            "  h = relu(dense(x, 256)\n" /* unclosed: error at the end of the line */
            "  a = x +* 2\n"
            "  ok = x\n"
            "  b = [1, 2\n"
            "}\n"
            "const = 3\n"
            "fn f(x: f32[N]) -> f32[N] { return x }\n");
  ck_assert(!r.ok);
  const char *t = diag_text(&r.d);
  ck_assert_ptr_nonnull(strstr(t, "t.lathe:2:25: error: expected ')' to close '(' at 2:11"));
  ck_assert_ptr_nonnull(strstr(t, "t.lathe:3:10: error: expected an expression, got '*'"));
  ck_assert_ptr_nonnull(strstr(t, "t.lathe:5:12: error: expected ']' to close '[' at 5:7"));
  ck_assert_ptr_nonnull(strstr(t, "t.lathe:7:7: error: expected a name after 'const'"));
  ck_assert_int_eq(r.d.n_errors, 4);
  /* the good statements and declarations survive */
  ck_assert_int_eq(r.p.n_decls, 2);
  ck_assert_int_eq(r.p.decls[0]->n_body, 1);
  ck_assert_str_eq(r.p.decls[0]->body[0]->names[0], "ok");
  ck_assert_int_eq(r.p.decls[1]->kind, DECL_FN);
  parsed_fini(&r);
}
END_TEST

START_TEST(test_error_limit_stops) {
  char text[8192] = "model m(x: f32[2]) {\n";
  for (int i = 0; i < 100; i++)
    strcat(text, "  a = *\n");
  strcat(text, "}\n");
  Parsed r;
  parse(&r, text);
  ck_assert(!r.ok);
  ck_assert_int_eq(r.d.n_errors, 20);
  ck_assert_ptr_nonnull(strstr(diag_text(&r.d), "too many errors; stopping"));
  parsed_fini(&r);
}
END_TEST

START_TEST(test_deep_nesting) {
  char text[4096] = "model m(x: f32[2]) {\n  a = ";
  for (int i = 0; i < 1000; i++)
    strcat(text, "(");
  strcat(text, "x\n}\n");
  Parsed r;
  parse(&r, text);
  ck_assert(!r.ok);
  ck_assert_ptr_nonnull(strstr(diag_text(&r.d), "nested too deeply"));
  parsed_fini(&r);
}
END_TEST

static Suite *parse_suite(void) {
  Suite *s = suite_create("frontend_parse");
  TCase *t = tcase_create("core");
  tcase_add_test(t, test_decls);
  tcase_add_test(t, test_precedence);
  tcase_add_test(t, test_calls_index_tuples);
  tcase_add_test(t, test_train_steps);
  tcase_add_test(t, test_recovery_reports_all);
  tcase_add_test(t, test_error_limit_stops);
  tcase_add_test(t, test_deep_nesting);
  suite_add_tcase(s, t);
  return s;
}

int main(void) {
  return test_run_suite(parse_suite());
}
