/* frontend/ast_walk.c — visiting every node of an expression tree without recursion, for the
 * walks whose depth the input decides (the parser's height check, elaboration's layer test).
 *
 * Invariant: the explicit stack is the only memory used; it is freed before returning.
 */
#include "frontend/ast.h"

#include <stdlib.h>

typedef struct WalkItem {
  const Expr *e;
  int depth;
} WalkItem;

typedef struct WalkStack {
  WalkItem *items;
  size_t n, cap;
  bool failed; /* out of memory */
} WalkStack;

static void push(WalkStack *s, const Expr *e, int depth) {
  if (!e || s->failed) return;
  if (s->n == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    WalkItem *items = realloc(s->items, cap * sizeof *items);
    if (!items) {
      s->failed = true;
      return;
    }
    s->items = items, s->cap = cap;
  }
  s->items[s->n++] = (WalkItem){e, depth};
}

/* a scan's statements: their values and the dims of their types */
static void push_body(WalkStack *s, const Expr *e, int depth) {
  for (int i = 0; i < e->n_body; i++) {
    const Stmt *st = e->body[i];
    push(s, st->value, depth);
    for (int k = 0; st->type && k < st->type->n_dims; k++)
      push(s, st->type->dims[k], depth);
  }
  push(s, e->yield, depth);
}

bool ast_walk(const Expr *root, bool bodies, AstVisit visit, void *ctx) {
  WalkStack s = {0};
  push(&s, root, 1);
  bool ok = true;
  while (ok && s.n > 0 && !s.failed) {
    WalkItem it = s.items[--s.n];
    ok = visit(ctx, it.e, it.depth);
    push(&s, it.e->lhs, it.depth + 1);
    push(&s, it.e->rhs, it.depth + 1);
    for (int i = 0; i < it.e->n_args; i++)
      push(&s, it.e->args[i], it.depth + 1);
    if (bodies && it.e->kind == EX_SCAN) push_body(&s, it.e, it.depth + 1);
  }
  ok = ok && !s.failed;
  free(s.items);
  return ok;
}
