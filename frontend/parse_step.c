/* frontend/parse_step.c — the parser of train blocks: steps and their items (minimize,
 * params, optimizer, prune, distill, quantize), with their own error recovery (an item of a
 * step is a recovery point). Grammar in docs/language.md; the helpers are parse.c's
 * (parse_internal.h). */
#include "frontend/parse_internal.h"

#include <string.h>

/* glob = ( IDENT | "*" ) { "." ( IDENT | "*" ) } */
static const char *parse_glob(Parser *p) {
  size_t cap = 64, len = 0;
  char *buf = arena_alloc(p->arena, cap);
  do {
    Token *t = parse_peek(p);
    if (t->kind != TK_IDENT && t->kind != TK_STAR) parse_error_expected(p, "a parameter pattern");
    parse_next(p);
    size_t n = strlen(t->text);
    if (len + n + 2 > cap) {
      char *nb = arena_alloc(p->arena, 2 * (len + n + 2));
      memcpy(nb, buf, len);
      buf = nb;
      cap = 2 * (len + n + 2);
    }
    if (len) buf[len++] = '.';
    memcpy(buf + len, t->text, n);
    len += n;
    buf[len] = '\0';
  } while (parse_accept(p, TK_DOT));
  return buf;
}

/* One glob appended to a list of globs and their locations (*n of them so far). */
static void parse_glob_into(Parser *p, const char ***globs, SrcLoc **locs, int *n) {
  SrcLoc loc = parse_peek(p)->loc;
  const char *g = parse_glob(p);
  *globs = parse_grow(p->arena, *globs, *n, sizeof(const char *));
  *locs = parse_grow(p->arena, *locs, *n, sizeof(SrcLoc));
  (*globs)[*n] = g;
  (*locs)[(*n)++] = loc;
}

/* prune_stmt = "prune" glob { "," glob } expr   (the "prune" already consumed) */
static void parse_prune(Parser *p, StepAst *s, const Token *kw) {
  s->prunes = parse_grow(p->arena, s->prunes, s->n_prunes, sizeof(PruneAst));
  PruneAst *pr = &s->prunes[s->n_prunes++];
  memset(pr, 0, sizeof *pr);
  pr->loc = kw->loc;
  do {
    parse_glob_into(p, &pr->globs, &pr->glob_locs, &pr->n_globs);
  } while (parse_accept(p, TK_COMMA));
  if (!parse_at(p, TK_IDENT))
    parse_error_expected(p, "a pruning kind: magnitude(...), channels(...) or "
                            "n_of_m(...)");
  pr->kind = parse_expr(p);
}

/* A clause of `distill` given twice: an error at its keyword, naming the first. */
static void distill_twice(Parser *p, const Token *kw, bool given) {
  if (given) diag_error(p->d, kw->loc, "'%s' given twice in one 'distill'", kw->text);
}

/* distill = "distill" STRING { "weights" STRING | "temperature" expr | "alpha" expr
 *                              | "logits" IDENT }     (the "distill" already consumed) */
static void parse_distill(Parser *p, StepAst *s, const Token *kw) {
  if (s->distill)
    diag_error(p->d, kw->loc, "a step distills from one teacher; 'distill' given twice");
  DistillAst *ds = arena_alloc(p->arena, sizeof *ds);
  memset(ds, 0, sizeof *ds);
  ds->loc = kw->loc;
  Token *file = parse_expect(p, TK_STRING, "naming the teacher file after 'distill'");
  ds->file = arena_strndup(p->arena, file->text + 1, (size_t)file->len - 2);
  ds->file_loc = file->loc;
  while (parse_at(p, TK_IDENT)) {
    Token *w = parse_peek(p);
    bool known = strcmp(w->text, "weights") == 0 || strcmp(w->text, "temperature") == 0 ||
                 strcmp(w->text, "alpha") == 0 || strcmp(w->text, "logits") == 0;
    if (!known)
      parse_error_expected(p, "'weights', 'temperature', 'alpha' or 'logits' in 'distill'");
    parse_next(p);
    if (strcmp(w->text, "weights") == 0) {
      distill_twice(p, w, ds->weights != NULL);
      Token *t = parse_expect(p, TK_STRING, "naming the teacher's checkpoint after 'weights'");
      ds->weights = arena_strndup(p->arena, t->text + 1, (size_t)t->len - 2);
      ds->weights_loc = t->loc;
    } else if (strcmp(w->text, "temperature") == 0) {
      distill_twice(p, w, ds->temperature != NULL);
      ds->temperature = parse_expr(p);
    } else if (strcmp(w->text, "alpha") == 0) {
      distill_twice(p, w, ds->alpha != NULL);
      ds->alpha = parse_expr(p);
    } else {
      distill_twice(p, w, ds->logits != NULL);
      Token *t = parse_expect_ident(p, "the teacher's logits binding after 'logits'");
      ds->logits = t->text;
      ds->logits_loc = t->loc;
    }
  }
  s->distill = ds;
}

/* quantize = "quantize" [ "per_channel" | "per_tensor" ] [ "except" glob { "," glob } ]
 * (the "quantize" already consumed; elab_qat.c checks the names) */
static void parse_quantize(Parser *p, StepAst *s, const Token *kw) {
  if (s->quantize) diag_error(p->d, kw->loc, "'quantize' given twice in one step");
  QuantizeAst *q = arena_alloc(p->arena, sizeof *q);
  memset(q, 0, sizeof *q);
  q->loc = kw->loc;
  if (parse_at_word(p, "per_channel") || parse_at_word(p, "per_tensor"))
    q->per_tensor = strcmp(parse_next(p)->text, "per_tensor") == 0;
  if (parse_at_word(p, "except")) {
    parse_next(p);
    do {
      parse_glob_into(p, &q->except, &q->except_locs, &q->n_except);
    } while (parse_accept(p, TK_COMMA));
  }
  if (parse_at(p, TK_IDENT) && !parse_at_word(p, "minimize") && !parse_at_word(p, "params") &&
      !parse_at_word(p, "optimizer") && !parse_at_word(p, "prune") && !parse_at_word(p, "distill"))
    parse_error_expected(p, "'per_channel', 'per_tensor' or 'except NAME, ...' after 'quantize'");
  s->quantize = q;
}

/* step_item = "minimize" IDENT | "params" glob { [","] glob } | "optimizer" expr
 *           | prune_stmt | distill | quantize */
static void parse_step_item(Parser *p, StepAst *s) {
  Token *kw = parse_peek(p);
  if (parse_at_word(p, "minimize")) {
    parse_next(p);
    if (s->loss) diag_error(p->d, kw->loc, "a step minimizes one loss; 'minimize' given twice");
    s->loss = parse_expect_ident(p, "the name of the loss binding after 'minimize'")->text;
    s->loss_loc = kw->loc;
  } else if (parse_at_word(p, "params")) {
    parse_next(p);
    do {
      parse_glob_into(p, &s->globs, &s->glob_locs, &s->n_globs);
      if (!parse_accept(p, TK_COMMA)) break;
      while (parse_at(p, TK_NEWLINE))
        parse_next(p);
    } while (true);
  } else if (parse_at_word(p, "optimizer")) {
    parse_next(p);
    if (s->optimizer) diag_error(p->d, kw->loc, "'optimizer' given twice in one step");
    s->optimizer = parse_expr(p);
  } else if (parse_at_word(p, "prune")) {
    parse_prune(p, s, parse_next(p));
  } else if (parse_at_word(p, "distill")) {
    parse_distill(p, s, parse_next(p));
  } else if (parse_at_word(p, "quantize")) {
    parse_quantize(p, s, parse_next(p));
  } else {
    parse_error_expected(
        p, "'minimize', 'params', 'optimizer', 'prune', 'distill', 'quantize' or 'step'");
  }
}

/* Skips to the next step item keyword, a line break, or the closing brace. */
static void sync_step(Parser *p) {
  p->nest = 0;
  while (!parse_at(p, TK_EOF) && !parse_at(p, TK_RBRACE) && !parse_at(p, TK_NEWLINE) &&
         !parse_at(p, TK_SEMI)) {
    parse_next(p);
    if (parse_at_word(p, "minimize") || parse_at_word(p, "params") ||
        parse_at_word(p, "optimizer") || parse_at_word(p, "prune") || parse_at_word(p, "distill") ||
        parse_at_word(p, "quantize"))
      return;
  }
}

/* step_body = "{" { step_item | NEWLINE | ";" } "}"  (the "{" already consumed) */
static void parse_step_body(Parser *p, StepAst *s, const Token *open) {
  jmp_buf jb, *outer = p->recover;
  for (;;) {
    parse_skip_separators(p);
    if (parse_at(p, TK_RBRACE) || parse_at(p, TK_EOF) || parse_at_word(p, "step")) break;
    p->recover = &jb;
    p->depth = 0;
    if (setjmp(jb) == 0) {
      parse_step_item(p, s);
    } else {
      p->errors = true;
      if (diag_full(p->d)) break;
      sync_step(p);
    }
  }
  p->recover = outer;
  if (diag_full(p->d)) parse_fail(p);
  if (open) parse_expect_close(p, TK_RBRACE, open);
}

/* train_decl = "train" IDENT "{" ( { step_item } | { "step" IDENT step_body } ) "}" */
void parse_train(Parser *p, Decl *decl) {
  Token *open = parse_expect(p, TK_LBRACE, "to open the train block");
  parse_skip_separators(p);
  if (!parse_at_word(p, "step")) {
    decl->steps = arena_alloc(p->arena, sizeof(StepAst));
    decl->n_steps = 1;
    decl->steps[0].loc = decl->loc;
    parse_step_body(p, &decl->steps[0], NULL);
    if (parse_at_word(p, "step"))
      diag_error(p->d, parse_peek(p)->loc,
                 "a train block has either steps or one set of "
                 "'minimize'/'params'/'optimizer', not both");
    if (parse_at_word(p, "step")) parse_fail(p);
    parse_expect_close(p, TK_RBRACE, open);
    return;
  }
  while (parse_at_word(p, "step")) {
    Token *kw = parse_next(p);
    Token *name = parse_expect_ident(p, "a step name after 'step'");
    Token *sopen = parse_expect(p, TK_LBRACE, "to open the step");
    decl->steps = parse_grow(p->arena, decl->steps, decl->n_steps, sizeof(StepAst));
    StepAst *s = &decl->steps[decl->n_steps++];
    memset(s, 0, sizeof *s);
    s->name = name->text;
    s->loc = kw->loc;
    parse_step_body(p, s, sopen);
    parse_skip_separators(p);
  }
  parse_expect_close(p, TK_RBRACE, open);
}
