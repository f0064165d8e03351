/* frontend/elab_scan.c — elaborates `scan t in 0..T with (h = init, ...) { stmts; yield y }`
 * into a SCAN node whose body is a subgraph of the model graph (docs/ir.md "scan").
 *
 * The body is elaborated into its own graph (E->g is switched while it runs). Inside it:
 *   - each carried name is a SCAN_ARG; statements may rebind carried names (only those),
 *     and their values at the end of the body are the new carries;
 *   - `x[:, t]` (the step variable as one index, full slices elsewhere) of an outer tensor x
 *     is a sequence input sliced along that axis; every such access must use the same axis,
 *     which is also the axis the yielded values are stacked along;
 *   - any other outer tensor the body names is a captured input (unused ones are dropped);
 *     every outer tensor binding is shadowed, so no parent node can leak into the body.
 * The value is the stacked yields ([..., T, ...]), or without `yield` the first carry's final
 * value. `zeros(f32[B, H])` / `ones(...)` are accepted as initial values.
 */
#include <string.h>

#include "elab.h"
#include "ir/scan.h"

#define SCAN_MAX_NAMES 64

typedef struct ScanInfo {
  const char *var;  /* the step variable */
  int axis;         /* -1 until a sequence access is seen */
  const char *seq[IR_MAX_INPUTS];
  int n_seq;
  const char *names[SCAN_MAX_NAMES]; /* names the body reads */
  int n_names;
  bool failed;
} ScanInfo;

static bool scan_fail(Elab *E, ScanInfo *si, SrcLoc loc, const char *msg, const char *name) {
  if (!si->failed) diag_error(E->d, loc, msg, name);
  si->failed = true;
  return false;
}

static bool is_full_slice(const Expr *a) { return a->kind == EX_SLICE && !a->lhs && !a->rhs; }

/* x[:, t, :]: the position of the step variable, or -1 if e is not such an access */
static int seq_axis(const ScanInfo *si, const Expr *e) {
  if (e->kind != EX_INDEX || !e->lhs || e->lhs->kind != EX_NAME) return -1;
  int axis = -1;
  for (int i = 0; i < e->n_args; i++) {
    const Expr *a = e->args[i];
    if (a->kind == EX_NAME && strcmp(a->name, si->var) == 0 && axis < 0) axis = i;
    else if (!is_full_slice(a)) return -1;
  }
  return axis;
}

static void note_name(ScanInfo *si, const char *name) {
  for (int i = 0; i < si->n_names; i++)
    if (strcmp(si->names[i], name) == 0) return;
  if (si->n_names < SCAN_MAX_NAMES) si->names[si->n_names++] = name;
}

/* a copy of e with every sequence access replaced by the name "x[t]"; records names */
static Expr *rewrite(Elab *E, ScanInfo *si, const Expr *e) {
  if (!e) return NULL;
  Expr *c = arena_alloc(&E->scratch, sizeof *c);
  *c = *e;
  int axis = seq_axis(si, e);
  if (axis >= 0) {
    if (si->axis >= 0 && si->axis != axis)
      scan_fail(E, si, e->loc, "all sequence accesses of a scan must index the same axis "
                "with '%s'", si->var);
    si->axis = axis;
    int k = 0;
    while (k < si->n_seq && strcmp(si->seq[k], e->lhs->name) != 0) k++;
    if (k == si->n_seq && si->n_seq < IR_MAX_INPUTS) si->seq[si->n_seq++] = e->lhs->name;
    *c = (Expr){.kind = EX_NAME, .loc = e->loc};
    c->name = arena_printf(&E->scratch, "%s[%s]", e->lhs->name, si->var);
    return c;
  }
  if (e->kind == EX_NAME && strcmp(e->name, si->var) == 0)
    scan_fail(E, si, e->loc, "the step variable '%s' can only index a sequence, as in "
              "'xs[:, %s]'", si->var);
  if (e->kind == EX_NAME) note_name(si, e->name);
  c->lhs = rewrite(E, si, e->lhs);
  c->rhs = rewrite(E, si, e->rhs);
  if (e->n_args) {
    c->args = arena_alloc(&E->scratch, (size_t)e->n_args * sizeof *c->args);
    for (int i = 0; i < e->n_args; i++) c->args[i] = rewrite(E, si, e->args[i]);
  }
  if (e->kind == EX_SCAN) scan_fail(E, si, e->loc, "%s: scans cannot be nested", "scan");
  return c;
}

typedef struct ScanBuild {
  Graph *body;
  NodeId in[SCAN_MAX_NAMES + 2 * IR_MAX_INPUTS]; /* parent nodes: carries, sequences, captures */
  NodeId arg[SCAN_MAX_NAMES + 2 * IR_MAX_INPUTS]; /* their SCAN_ARGs in the body */
  int n_in;
} ScanBuild;

static NodeId add_arg(Elab *E, ScanBuild *b, NodeId outer, int axis, SrcLoc loc) {
  const Node *x = graph_node(E->g, outer);
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan_arg.index = b->n_in;
  at.scan_arg.dtype = x->dtype;
  at.scan_arg.shape = axis >= 0 ? scan_slice_shape(&x->shape, axis) : x->shape;
  NodeId a = graph_add(b->body, OP_SCAN_ARG, NULL, 0, &at, loc, E->d);
  b->in[b->n_in] = outer;
  b->arg[b->n_in++] = a;
  return a;
}

/* an initial value: a tensor expression, or zeros(f32[dims]) / ones(f32[dims]) */
static NodeId carry_init(Elab *E, Scope *s, const Expr *x, const char *name) {
  const Expr *ty = x->kind == EX_CALL && x->n_args == 1 ? x->args[0] : NULL;
  bool fill = ty && (!strcmp(x->name, "zeros") || !strcmp(x->name, "ones")) &&
              ty->kind == EX_INDEX && ty->lhs->kind == EX_NAME;
  if (fill) {
    NodeAttr at;
    memset(&at, 0, sizeof at);
    at.constant.value = strcmp(x->name, "ones") == 0;
    if (!elab_dtype(E, ty->lhs->name, ty->lhs->loc, &at.constant.dtype)) return IR_NONE;
    at.constant.shape.rank = ty->n_args;
    for (int i = 0; i < ty->n_args && i < IR_MAX_RANK; i++) { /* zeros(f32[B, H]): B may be N */
      int64_t dyn = 0;
      if (!elab_dim(E, s, ty->args[i], i, true, &at.constant.shape.dim[i], &dyn)) return IR_NONE;
      if (i == 0) at.constant.shape.dyn = dyn;
    }
    return graph_add(E->g, OP_CONST, NULL, 0, &at, elab_loc(E, x->loc), E->d);
  }
  Value v = elab_expr(E, s, x);
  if (v.kind == VAL_TENSOR) return v.node;
  if (v.kind != VAL_NONE)
    diag_error(E->d, x->loc, "the initial value of '%s' must be a tensor, got %s", name,
               elab_value_str(E, v));
  return IR_NONE;
}

static int carry_index(const Expr *e, const char *name) {
  for (int i = 0; i < e->n_args; i++)
    if (strcmp(e->arg_names[i], name) == 0) return i;
  return -1;
}

/* binds the carries and sequences; shadows every outer tensor (captured if the body reads
 * it, else an error value) */
static bool bind_args(Elab *E, Scope *s, Scope *bs, const Expr *e, const ScanInfo *si,
                      ScanBuild *b, const NodeId *init) {
  for (int i = 0; i < e->n_args; i++)
    elab_bind(E, bs, e->arg_names[i],
              elab_tensor_value(add_arg(E, b, init[i], -1, elab_loc(E, e->arg_locs[i]))),
              e->arg_locs[i]);
  for (int k = 0; k < si->n_seq; k++) {
    Binding *x = elab_lookup(s, si->seq[k]);
    if (!x || x->value.kind != VAL_TENSOR ||
        graph_node(E->g, x->value.node)->shape.rank <= si->axis) {
      diag_error(E->d, e->loc, "scan: '%s' is indexed with '%s' along axis %d, but it is not a "
                 "tensor with that axis", si->seq[k], si->var, si->axis);
      return false;
    }
    NodeId a = add_arg(E, b, x->value.node, si->axis, elab_loc(E, e->loc));
    elab_bind(E, bs, arena_printf(&E->scratch, "%s[%s]", si->seq[k], si->var),
              elab_tensor_value(a), e->loc);
  }
  for (Binding *x = s->head; x; x = x->next) {
    bool tensorish = x->value.kind == VAL_TENSOR || x->value.kind == VAL_TUPLE;
    if (!tensorish || elab_lookup(bs, x->name) != x) continue;
    bool read = false;
    for (int i = 0; i < si->n_names && !read; i++) read = strcmp(si->names[i], x->name) == 0;
    Value v = {0};
    if (read && x->value.kind == VAL_TENSOR)
      v = elab_tensor_value(add_arg(E, b, x->value.node, -1, elab_loc(E, e->loc)));
    else if (read)
      diag_error(E->d, e->loc, "scan: '%s' is a tuple; unpack it before the scan", x->name);
    elab_bind(E, bs, x->name, v, x->loc);
  }
  return true;
}

/* the body's statements (carried names may be rebound) and its outputs */
static bool elab_body(Elab *E, Scope *bs, const Expr *e, Stmt **body, const Expr *yield,
                      ScanBuild *b) {
  bool ok = true;
  for (int i = 0; i < e->n_body; i++) {
    Stmt *st = body[i];
    if (st->kind != ST_BIND) {
      diag_error(E->d, st->loc, "only bindings (name = expr) are allowed in a scan body");
      ok = false;
      continue;
    }
    if (st->n_names != 1 || carry_index(e, st->names[0]) < 0) {
      Value ret;
      ok = elab_stmt(E, bs, st, &ret) && ok;
      continue;
    }
    Value v = elab_expr(E, bs, st->value);
    if (v.kind != VAL_TENSOR && v.kind != VAL_NONE)
      diag_error(E->d, st->loc, "'%s' is carried: it must stay a tensor, got %s", st->names[0],
                 elab_value_str(E, v));
    ok = ok && v.kind == VAL_TENSOR;
    elab_bind(E, bs, st->names[0], v, st->name_locs[0]);
  }
  for (int i = 0; ok && i < e->n_args; i++) {
    Binding *x = elab_lookup(bs, e->arg_names[i]);
    const Node *now = graph_node(b->body, x->value.node), *was = graph_node(b->body, b->arg[i]);
    if (now->dtype != was->dtype || !shape_equal(&now->shape, &was->shape)) {
      char sa[200], sb[200];
      diag_error(E->d, x->loc, "'%s' is carried as %s%s but the step makes it %s%s",
                 e->arg_names[i], dtype_name(was->dtype), shape_str(&was->shape, sa, sizeof sa),
                 dtype_name(now->dtype), shape_str(&now->shape, sb, sizeof sb));
      ok = false;
    }
    graph_add_output(b->body, e->arg_names[i], x->value.node, OUT_VALUE, -1);
  }
  if (ok && yield) {
    Value y = elab_expr(E, bs, yield);
    if (y.kind != VAL_TENSOR && y.kind != VAL_NONE)
      diag_error(E->d, yield->loc, "'yield' needs a tensor, got %s", elab_value_str(E, y));
    ok = y.kind == VAL_TENSOR;
    if (ok) graph_add_output(b->body, "yield", y.node, OUT_VALUE, -1);
  }
  return ok;
}

/* drops captured arguments the body never reads (they become constants) and renumbers */
static int prune_captures(ScanBuild *b, int first) {
  int kept = first;
  for (int k = first; k < b->n_in; k++) {
    bool used = false;
    for (NodeId id = 0; id < b->body->n_nodes && !used; id++) {
      const Node *n = graph_node(b->body, id);
      for (int j = 0; j < n->n_in; j++) used = used || n->in[j] == b->arg[k];
    }
    for (int o = 0; o < b->body->n_outputs; o++)
      used = used || b->body->outputs[o].node == b->arg[k];
    Node *a = graph_node(b->body, b->arg[k]);
    if (!used) {
      NodeAttr at;
      memset(&at, 0, sizeof at);
      at.constant.dtype = a->dtype;
      at.constant.shape = a->shape;
      a->op = OP_CONST;
      a->attr = at;
      continue;
    }
    a->attr.scan_arg.index = kept;
    b->in[kept++] = b->in[k];
  }
  return kept;
}

static Value make_scan(Elab *E, const Expr *e, ScanBuild *b, int n_in, const ScanInfo *si,
                       int64_t T) {
  SrcLoc loc = elab_loc(E, e->loc);
  if (n_in > IR_MAX_INPUTS) {
    diag_error(E->d, e->loc, "scan: it needs %d inputs (initial values, sequences and outer "
               "values it reads); at most %d are supported", n_in, IR_MAX_INPUTS);
    graph_free(b->body);
    return (Value){0};
  }
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(E->g, b->body);
  at.scan.length = T;
  at.scan.n_carry = (int16_t)e->n_args;
  at.scan.n_seq = (int16_t)si->n_seq;
  at.scan.axis = (int8_t)(si->axis >= 0 ? si->axis : 0);
  at.scan.reverse = e->ival != 0;
  NodeId scan = graph_add(E->g, OP_SCAN, b->in, n_in, &at, loc, E->d);
  if (scan == IR_NONE) return (Value){0};
  int64_t off;
  Shape piece = scan_piece(E->g, graph_node(E->g, scan), e->yield ? e->n_args : 0, &off);
  NodeAttr un;
  memset(&un, 0, sizeof un);
  un.unpack.offset = off;
  un.unpack.shape = piece;
  return elab_tensor_value(graph_add(E->g, OP_UNPACK, &scan, 1, &un, loc, E->d));
}

Value elab_scan(Elab *E, Scope *s, const Expr *e) {
  int64_t start, T;
  if (!elab_int(E, elab_expr(E, s, e->lhs), e->lhs->loc, "the start of a scan range", &start) ||
      !elab_int(E, elab_expr(E, s, e->rhs), e->rhs->loc, "the end of a scan range", &T))
    return (Value){0};
  if (start != 0 || T < 1 || e->n_args < 1 || e->n_args > IR_MAX_INPUTS) {
    diag_error(E->d, e->loc, "scan: the range must be 0..T with T >= 1 (got %lld..%lld), with "
               "1 to %d carried values", (long long)start, (long long)T, IR_MAX_INPUTS);
    return (Value){0};
  }
  ScanInfo si = {.var = e->name, .axis = -1};
  Stmt **body = arena_alloc(&E->scratch, (size_t)(e->n_body + 1) * sizeof *body);
  for (int i = 0; i < e->n_body; i++) {
    body[i] = arena_alloc(&E->scratch, sizeof **body);
    *body[i] = *e->body[i];
    body[i]->value = rewrite(E, &si, e->body[i]->value);
  }
  Expr *yield = rewrite(E, &si, e->yield);
  NodeId init[IR_MAX_INPUTS];
  bool ok = !si.failed;
  for (int i = 0; ok && i < e->n_args; i++)
    ok = (init[i] = carry_init(E, s, e->args[i], e->arg_names[i])) != IR_NONE;
  if (!ok) return (Value){0};
  ScanBuild *b = arena_alloc(&E->scratch, sizeof *b);
  memset(b, 0, sizeof *b);
  b->body = graph_new(E->m, "body");
  Scope bs = *s;
  Graph *parent = E->g;
  ok = bind_args(E, s, &bs, e, &si, b, init);
  E->g = b->body;
  E->scan_depth++;
  ok = ok && elab_body(E, &bs, e, body, yield, b);
  E->scan_depth--;
  E->g = parent;
  if (!ok) {
    graph_free(b->body);
    return (Value){0};
  }
  int n_in = prune_captures(b, e->n_args + si.n_seq);
  return make_scan(E, e, b, n_in, &si, T);
}
