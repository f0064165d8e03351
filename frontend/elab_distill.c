/* frontend/elab_distill.c — the `distill` statement of a train step (docs/compression.md).
 *
 * distill FILE [weights W] temperature T alpha A [logits NAME]
 *
 * What the frontend checks and records (TrainDistill): T a number > 0, alpha a number in
 * [0, 1], the student's logits (its binding `logits`, a float tensor), and FILE and W
 * resolved against the directory of the model file. The teacher itself is compiled and
 * merged by driver/distill.c: the frontend cannot read ONNX files or checkpoints (it sits
 * below import/ and runtime/), and the driver is where every compile passes.
 */
#include "frontend/elab.h"

#include <string.h>

/* path as written, or joined to the directory of the file that wrote it (loc.file) */
static const char *distill_path(Elab *E, const char *path, SrcLoc loc) {
  const char *slash = loc.file ? strrchr(loc.file, '/') : NULL;
  if (path[0] == '/' || !slash) return arena_strdup(&E->m->arena, path);
  return arena_printf(&E->m->arena, "%.*s/%s", (int)(slash - loc.file), loc.file, path);
}

/* A compile-time number of the statement: `what` names it; NaN (reported) when it is not. */
static bool distill_number(Elab *E, const Expr *e, SrcLoc kw, const char *what, double *out) {
  if (!e) {
    diag_error(E->d, kw,
               "'distill' needs '%s', as in 'distill \"teacher.lathe\" weights "
               "\"teacher.safetensors\" temperature 4 alpha 0.9'",
               what);
    return false;
  }
  Scope empty = {.prefix = ""};
  Value v = elab_expr(E, &empty, e);
  if (v.kind == VAL_INT || v.kind == VAL_FLOAT) {
    *out = v.kind == VAL_INT ? (double)v.i : v.f;
    return true;
  }
  if (v.kind != VAL_NONE)
    diag_error(E->d, e->loc, "the %s of 'distill' must be a number, got %s", what,
               elab_value_str(E, v));
  return false;
}

/* The student's logits: its binding `logits`, a float tensor of rank >= 1. */
static bool distill_student_logits(Elab *E, Scope *s, SrcLoc at, NodeId *out) {
  Binding *b = elab_lookup(s, "logits");
  if (!b) {
    diag_error(E->d, at,
               "'distill' needs the student's logits: the model has no binding 'logits' (bind "
               "them as 'logits = ...', the scores before softmax)");
    return false;
  }
  if (b->value.kind == VAL_NONE) return false;
  const Node *n = b->value.kind == VAL_TENSOR ? graph_node(E->g, b->value.node) : NULL;
  if (!n || n->shape.rank < 1 || !dtype_is_float(n->dtype)) {
    diag_error(E->d, at,
               "'distill' needs the student's logits as a float tensor with a class axis, but "
               "'logits' is %s",
               elab_value_str(E, b->value));
    return false;
  }
  *out = b->value.node;
  return true;
}

bool elab_distill(Elab *E, Scope *s, const DistillAst *da, TrainStep *ts) {
  TrainDistill *td = arena_alloc(&E->m->arena, sizeof *td);
  memset(td, 0, sizeof *td);
  td->loc = elab_loc(E, da->loc);
  td->teacher_loc = elab_loc(E, da->file_loc);
  td->weights_loc = elab_loc(E, da->weights_loc);
  td->logits_loc = elab_loc(E, da->logits_loc);
  td->teacher = distill_path(E, da->file, da->file_loc);
  td->weights = da->weights ? distill_path(E, da->weights, da->weights_loc) : NULL;
  td->logits = da->logits ? arena_strdup(&E->m->arena, da->logits) : NULL;
  td->hard_loss = ts->loss_node;
  bool ok = distill_number(E, da->temperature, da->loc, "temperature", &td->temperature);
  if (ok && !(td->temperature > 0)) { /* NaN too */
    diag_error(E->d, da->temperature->loc,
               "the temperature of 'distill' must be > 0, got %g (T = 1 is the plain softmax; "
               "Hinton et al. use 2 to 20)",
               td->temperature);
    ok = false;
  }
  bool alpha_ok = distill_number(E, da->alpha, da->loc, "alpha", &td->alpha);
  if (alpha_ok && !(td->alpha >= 0 && td->alpha <= 1)) {
    diag_error(E->d, da->alpha->loc,
               "the alpha of 'distill' must lie in [0, 1] (the weight of the teacher's soft "
               "targets; 1 - alpha weighs the hard loss), got %g",
               td->alpha);
    alpha_ok = false;
  }
  ok &= alpha_ok;
  ok &= distill_student_logits(E, s, da->loc, &td->student_logits);
  ts->distill = td;
  return ok;
}
