/* frontend/elab_state.c — state that a model's entries read and write (issue 22: the KV cache
 * of a decode step), and the write_at builtin that fills it a row at a time.
 *
 *   state NAME: TYPE = INIT    a tensor of the state struct, NAME in the state struct and in
 *                              checkpoints, INIT as a param's (zeros, ones, constant(v), ...)
 *   update NAME = expr         the state's value after the call: an OUT_STATE_UPDATE that
 *                              every entry keeps (GraphOutput.inference), forward included
 *   write_at(x, v, axis, index)  x with v written at the run-time integer `index` along axis
 *
 * Both statements belong to a model body (not a fn: a layer's state would need the instance
 * naming of params, which no layer asks for yet), outside scans. A state is updated at most
 * once, by an expression of exactly its type; reading NAME anywhere gives the value before
 * the call. The batch-norm running statistics (elab_conv.c) are also states, but their
 * updates are train-only.
 */
#include "frontend/elab.h"

#include <string.h>

/* the model-level statement `what` outside a fn and a scan, else an error */
static bool in_model(Elab *E, const Scope *s, const Stmt *st, const char *what) {
  if (s->fn) {
    diag_error(E->d, st->loc, "'%s' is only allowed in a model body, not in fn '%s'", what,
               s->fn->name);
    return false;
  }
  if (E->scan_depth > 0) {
    diag_error(E->d, st->loc, "'%s' is not allowed inside a scan body", what);
    return false;
  }
  return true;
}

static int32_t find_state(const Module *m, const char *name) {
  for (int i = 0; i < m->n_states; i++)
    if (strcmp(m->states[i].name, name) == 0) return i;
  return -1;
}

/* state_stmt: a module state and its STATE node, bound to NAME */
bool elab_state_stmt(Elab *E, Scope *s, const Stmt *st) {
  DType t;
  Shape shape;
  InitSpec init;
  if (!in_model(E, s, st, "state")) return false;
  if (!elab_type(E, s, st->type, false, &t, &shape) || !elab_init(E, s, st->value, &init))
    return false;
  const char *name = st->names[0];
  int32_t idx = find_state(E->m, name);
  if (idx >= 0) {
    SrcLoc at = E->m->states[idx].loc;
    diag_error(E->d, st->loc, "state '%s' is already declared (at %s:%u:%u)", name,
               at.file ? at.file : "?", at.line, at.col);
    return false;
  }
  if (module_find_param(E->m, name) >= 0) {
    diag_error(E->d, st->loc, "'%s' is already a param: a state needs a name of its own", name);
    return false;
  }
  SrcLoc loc = elab_loc(E, st->loc);
  idx = module_add_state(E->m, name, t, &shape, init, loc);
  NodeId node = graph_add_source(E->g, OP_STATE, idx, loc);
  graph_node(E->g, node)->name = E->m->states[idx].name;
  elab_bind(E, s, name, elab_tensor_value(node), st->name_locs[0]);
  return true;
}

/* the STATE node NAME is bound to in s, or -1 with an error */
static int32_t updated_state(Elab *E, const Scope *s, const Stmt *st) {
  const char *name = st->names[0];
  Binding *b = elab_lookup(s, name);
  const Node *n = b && b->value.kind == VAL_TENSOR ? graph_node(E->g, b->value.node) : NULL;
  int32_t idx = n && n->op == OP_STATE ? n->attr.source.index : -1;
  if (idx < 0 || strcmp(E->m->states[idx].name, name) != 0) {
    diag_error(E->d, st->name_locs[0],
               "'update %s': expected the name of a state declared earlier in this model "
               "('state %s: f32[...] = zeros')",
               name, name);
    return -1;
  }
  for (int i = 0; i < E->g->n_outputs; i++) {
    const GraphOutput *o = &E->g->outputs[i];
    if (o->kind == OUT_STATE_UPDATE && o->target == idx) {
      diag_error(E->d, st->loc, "state '%s' is updated twice: one 'update' per state", name);
      return -1;
    }
  }
  return idx;
}

bool elab_update_stmt(Elab *E, Scope *s, const Stmt *st) {
  if (!in_model(E, s, st, "update")) return false;
  int32_t idx = updated_state(E, s, st);
  if (idx < 0) return false;
  Value v = elab_expr(E, s, st->value);
  if (v.kind == VAL_NONE) return false;
  const TensorDecl *decl = &E->m->states[idx];
  const Node *n = v.kind == VAL_TENSOR ? graph_node(E->g, v.node) : NULL;
  if (!n || n->dtype != decl->dtype || !shape_equal(&n->shape, &decl->shape)) {
    char want[200];
    diag_error(E->d, st->value->loc, "'update %s' needs a %s%s tensor (the state's type), got %s",
               decl->name, dtype_name(decl->dtype), shape_str(&decl->shape, want, sizeof want),
               elab_value_str(E, v));
    return false;
  }
  graph_add_inference_update(E->g, decl->name, v.node, idx);
  return true;
}

/* write_at(x, v, axis, index): axis an int (negative from the end), index an integer
 * scalar tensor (a model input such as `pos: i32[]`) or an int */
Value elab_write_at_call(Elab *E, Scope *s, const Expr *call) {
  static const char *const params[] = {"x", "v", "axis", "index", NULL};
  const Expr *a[4];
  NodeId x, v;
  if (!elab_builtin_args(E, call, params, 4, 4, a) ||
      !elab_tensor_arg(E, s, a[0], "write_at", &x) || !elab_tensor_arg(E, s, a[1], "write_at", &v))
    return (Value){0};
  int64_t axis;
  int rank = graph_node(E->g, x)->shape.rank;
  if (!elab_int(E, elab_expr(E, s, a[2]), a[2]->loc, "'axis' of write_at", &axis))
    return (Value){0};
  if (axis < -rank || axis >= rank) {
    diag_error(E->d, a[2]->loc, "write_at: axis %lld is out of range for rank %d", (long long)axis,
               rank);
    return (Value){0};
  }
  Value iv = elab_expr(E, s, a[3]);
  NodeId index = iv.kind == VAL_INT      ? elab_scalar_node(E, iv, DT_I32, a[3]->loc)
                 : iv.kind == VAL_TENSOR ? iv.node
                                         : IR_NONE;
  if (index == IR_NONE) {
    if (iv.kind != VAL_NONE)
      diag_error(E->d, a[3]->loc, "write_at: expected an integer scalar index, got %s",
                 elab_value_str(E, iv));
    return (Value){0};
  }
  NodeAttr attr;
  memset(&attr, 0, sizeof attr);
  attr.softmax.axis = (int32_t)(axis < 0 ? axis + rank : axis);
  Builder b = elab_builder(E, call->loc);
  NodeId in[3] = {x, v, index};
  NodeId y = build_node(&b, OP_WRITE_AT, in, 3, &attr);
  return y == IR_NONE ? (Value){0} : elab_tensor_value(y);
}
