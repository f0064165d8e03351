/* codegen/c_backend.c — the C backend: cg_emit_c assembles <model>.c and <model>.h.
 *
 * For every entry graph (already through DCE and memory planning) it plans the C signature
 * (backend.h), gives each node its storage — caller arrays for inputs, `p->field` / `s->field`
 * for params and state, the caller's output array for values written in place (see
 * passes/memplan.c for which), a typed pointer into the workspace for everything else — and
 * lowers the nodes in order (lower.c). After the kernels it copies outputs that were not
 * written in place, saves the loss, and only then writes parameter/state updates back, so no
 * update overwrites a value another kernel still reads. c_api.c adds the header, the init
 * function and the descriptor.
 *
 * Generated code is C99, warning-free at -Wall -Wextra, allocation-free and needs only libm.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gemm.h"
#include "kernels_text.h"
#include "lathe/model_info.h"
#include "workspace.h"

void cg_options_init(CgOptions *o) {
  o->line_directives = false;
  o->header_name = NULL;
  o->target = CG_TARGET_NATIVE;
  o->threads = 1;
  o->prefix = NULL;
  o->buckets = 0;
}

/* Names a generated function must not take for its own: C keywords, and the library names
 * and macros the kernels use. Arguments that collide get a suffix (cg_fresh). */
static const char *const reserved_words[] = {
    "auto",     "break",      "case",     "char",     "const",     "continue",  "default",
    "do",       "double",     "else",     "enum",     "extern",    "float",     "for",
    "goto",     "if",         "inline",   "int",      "long",      "register",  "restrict",
    "return",   "short",      "signed",   "sizeof",   "static",    "struct",    "switch",
    "typedef",  "union",      "unsigned", "void",     "volatile",  "while",     "_Bool",
    "_Complex", "_Imaginary", "exp",      "expf",     "log",       "logf",      "sqrt",
    "sqrtf",    "fabs",       "fabsf",    "pow",      "powf",      "tanh",      "tanhf",
    "sin",      "cos",        "NAN",      "HUGE_VAL", "HUGE_VALF", "INT32_MIN", "INT64_MIN",
    "int8_t",   "int32_t",    "int64_t",  "uint8_t",  "uint32_t",  "uint64_t",  "size_t",
    "offsetof", "NULL",       "main",     "bool",     "true",      "false",     "errno",
    "erf",      "erff",       "sinf",     "cosf",
};

static bool is_reserved(const char *name) {
  for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
    if (strcmp(reserved_words[i], name) == 0) return true;
  return false;
}

/* "h1.w" -> "h1_w"; a leading digit gets "_"; reserved words get a trailing "_" */
static const char *c_ident(Arena *a, const char *name) {
  if (!name || !*name) name = "unnamed";
  char *out = arena_printf(a, "%s%s", isdigit((unsigned char)name[0]) ? "_" : "", name);
  for (char *p = out; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_') *p = '_';
  return is_reserved(out) ? arena_printf(a, "%s_", out) : out;
}

static const char *upper_of(Arena *a, const char *s) {
  char *out = arena_strdup(a, s);
  for (char *p = out; *p; p++)
    *p = (char)toupper((unsigned char)*p);
  return out;
}

/* C field names of params or states; distinct names that map to one field are an error */
static const char **field_names(Backend *b, const TensorDecl *decls, int n, const char *what) {
  const char **names = arena_alloc(&b->arena, (size_t)(n + 1) * sizeof *names);
  for (int i = 0; i < n; i++) {
    names[i] = c_ident(&b->arena, decls[i].name);
    if (strcmp(names[i], "step") == 0 && decls == b->m->states) names[i] = "step_";
    for (int j = 0; j < i; j++) {
      if (strcmp(names[i], names[j]) != 0) continue;
      diag_error(b->diag, decls[i].loc, "%s '%s' and '%s' both become the C field '%s'", what,
                 decls[j].name, decls[i].name, names[i]);
      return NULL;
    }
  }
  return names;
}

/* ---- planning an entry's signature ---------------------------------------------------- */

/* the descriptor's kind of an entry (evaluate computes like forward, in inference mode) */
static int entry_kind(const Graph *g) {
  if (g->kind == ENTRY_TRAIN) return LATHE_ENTRY_TRAIN;
  if (g->kind == ENTRY_GRAD) return LATHE_ENTRY_GRAD;
  if (g->kind == ENTRY_APPLY) return LATHE_ENTRY_APPLY;
  return LATHE_ENTRY_FORWARD;
}

static bool graph_has(const Graph *g, OpKind op) {
  for (uint32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].op == op) return true;
  return false;
}

static bool has_output(const Graph *g, OutputKind kind) {
  for (int i = 0; i < g->n_outputs; i++)
    if (g->outputs[i].kind == kind) return true;
  return false;
}

static ArgPlan *add_arg(EntryPlan *ep, int role) {
  ArgPlan *a = &ep->args[ep->n_args++];
  memset(a, 0, sizeof *a);
  a->role = role;
  return a;
}

/* a fresh name in e, copied to the backend's arena (plans outlive the emitter) */
static const char *arg_name(Backend *b, CgEmitter *e, const char *base) {
  return arena_strdup(&b->arena, cg_fresh(e, base));
}

/* One output argument per OUT_VALUE / OUT_GRAD output, in graph order; also finds the loss. */
static void plan_outputs(Backend *b, EntryPlan *ep, CgEmitter *e) {
  const Graph *g = ep->g;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    ep->output_arg[i] = -1;
    if (o->kind == OUT_LOSS && ep->loss == IR_NONE) ep->loss = o->node;
    if (o->kind != OUT_VALUE && o->kind != OUT_GRAD) continue;
    const Node *n = graph_node(g, o->node);
    const char *base = c_ident(&b->arena, o->name);
    if (o->kind == OUT_GRAD && strncmp(base, "grad", 4) != 0) /* not to be read as the param */
      base = arena_printf(&b->arena, "grad_%s", base);
    ep->output_arg[i] = ep->n_args;
    ArgPlan *a = add_arg(ep, LATHE_ARG_OUTPUT);
    a->cname = arg_name(b, e, base);
    a->info = o->name ? o->name : "out";
    a->dtype = n->dtype;
    a->shape = n->shape;
  }
}

/* Arguments: params, state (train/grad entries, or when the graph reads or updates state),
 * the module inputs the graph reads (module order), the value/grad outputs (graph order), the
 * workspace. Names are claimed in e so kernels never shadow them. */
static void plan_args(Backend *b, EntryPlan *ep, CgEmitter *e) {
  const Graph *g = ep->g;
  const Module *m = b->m;
  ep->args = arena_alloc(&b->arena, (size_t)(m->n_inputs + g->n_outputs + 5) * sizeof *ep->args);
  /* the kernels say `n` for the run-time batch (cg_count): claimed before any other name */
  const char *batch = m->dyn_max > 0 ? arg_name(b, e, "n") : NULL;
  ep->output_arg = arena_alloc(&b->arena, (size_t)(g->n_outputs + 1) * sizeof *ep->output_arg);
  ArgPlan *a = add_arg(ep, LATHE_ARG_PARAMS);
  a->cname = arg_name(b, e, "p");
  const char *ws = arg_name(b, e, "ws"); /* before the inputs: kernels address `ws` */
  bool hooked = graph_has(g, OP_REPLICA_SUM) || cg_wants_buckets(b, g);
  const char *hooks = hooked ? arg_name(b, e, "hooks") : NULL;
  a->is_const = !has_output(g, OUT_PARAM_UPDATE);
  bool train = ep->kind == LATHE_ENTRY_TRAIN, updates = has_output(g, OUT_STATE_UPDATE);
  if (train || ep->kind == LATHE_ENTRY_GRAD || updates || graph_has(g, OP_STATE)) {
    a = add_arg(ep, LATHE_ARG_STATE);
    a->cname = arg_name(b, e, "s");
    a->is_const = !train && !updates;
  }
  for (int i = 0; i < m->n_inputs; i++) {
    bool used = false;
    for (uint32_t id = 0; id < g->n_nodes && !used; id++)
      used = g->nodes[id].op == OP_INPUT && g->nodes[id].attr.source.index == i;
    if (!used) continue;
    a = add_arg(ep, LATHE_ARG_INPUT);
    a->cname = arg_name(b, e, c_ident(&b->arena, m->inputs[i].name));
    a->info = m->inputs[i].name;
    a->dtype = m->inputs[i].dtype;
    a->shape = m->inputs[i].shape;
    a->is_const = true;
  }
  plan_outputs(b, ep, e);
  a = add_arg(ep, LATHE_ARG_WORKSPACE);
  a->cname = ws;
  if (hooks) { /* the kernels of replica_sum say `hooks` (lower_replica.c) */
    a = add_arg(ep, LATHE_ARG_HOOKS);
    a->cname = hooks;
    a->is_const = true;
  }
  if (batch) add_arg(ep, LATHE_ARG_BATCH)->cname = batch;
}

static int arg_of_input(const EntryPlan *ep, const Module *m, int32_t index) {
  for (int i = 0; i < ep->n_args; i++)
    if (ep->args[i].role == LATHE_ARG_INPUT && ep->args[i].info == m->inputs[index].name) return i;
  return -1;
}

/* ---- storage of every node ----------------------------------------------------------------- */

static bool is_computed(OpKind op) {
  return op != OP_INPUT && op != OP_PARAM && op != OP_STATE && op != OP_CONST && op != OP_RESHAPE;
}

/* The output argument a computed node without a workspace buffer is written to, or -1. */
static int direct_output_arg(const EntryPlan *ep, NodeId id) {
  for (int i = 0; i < ep->g->n_outputs; i++)
    if (ep->g->outputs[i].node == id && ep->output_arg[i] >= 0) return ep->output_arg[i];
  return -1;
}

/* A computed update without a buffer is written straight into its param/state field
 * (passes/memplan.c decided every other reader of the old value runs before). */
static void update_storage(Backend *b, CgFunc *f, NodeId id) {
  const Graph *g = f->g;
  for (int i = 0; i < g->n_outputs; i++) {
    const GraphOutput *o = &g->outputs[i];
    if (o->node != id || (o->kind != OUT_PARAM_UPDATE && o->kind != OUT_STATE_UPDATE)) continue;
    bool param = o->kind == OUT_PARAM_UPDATE;
    if (o->target < 0 || o->target >= (param ? b->m->n_params : b->m->n_states)) return;
    const char *field = param ? b->param_field[o->target] : b->state_field[o->target];
    f->val[id] = (CgValue){arena_printf(f->arena, "%s->%s", param ? "p" : "s", field), false, true};
    return;
  }
}

static bool assign_storage(Backend *b, const EntryPlan *ep, CgFunc *f) {
  const Graph *g = ep->g;
  for (NodeId id = 0; id < g->n_nodes; id++) {
    const Node *n = graph_node(g, id);
    CgValue *v = &f->val[id];
    int32_t index = n->attr.source.index;
    if (n->op == OP_INPUT) {
      int arg = index >= 0 && index < b->m->n_inputs ? arg_of_input(ep, b->m, index) : -1;
      if (arg < 0) return diag_error(b->diag, n->loc, "internal error: bad input %%%u", id), false;
      *v = (CgValue){ep->args[arg].cname, false, false};
    } else if (n->op == OP_PARAM || n->op == OP_STATE) {
      bool param = n->op == OP_PARAM;
      if (index < 0 || index >= (param ? b->m->n_params : b->m->n_states))
        return diag_error(b->diag, n->loc, "internal error: bad source %%%u", id), false;
      const char *field = param ? b->param_field[index] : b->state_field[index];
      *v = (CgValue){arena_printf(f->arena, "%s->%s", param ? "p" : "s", field), false, false};
    } else if (is_computed(n->op) && n->offset >= 0) {
      const char *name = cg_fresh(f->e, arena_printf(f->arena, "t%u", id));
      const char *t = dtype_c_name(n->dtype);
      cg_decl(f->e, "%s *%s = (%s *)((char *)ws + %s);", t, name, t,
              cg_ws_offset(f, n->offset_n, n->offset));
      *v = (CgValue){name, false, true};
    } else if (is_computed(n->op)) {
      int arg = direct_output_arg(ep, id);
      if (arg >= 0)
        *v = (CgValue){ep->args[arg].cname, false, true};
      else
        update_storage(b, f, id);
    }
  }
  return true;
}

/* ---- the epilogue: outputs, loss, updates ----------------------------------------------- */

/* dst[i] = src[i] for the elements of shape s (a dynamic s: its run-time count) */
static void copy_loop(CgFunc *f, const char *dst, NodeId src, const Shape *s) {
  const CgValue *v = &f->val[src];
  int64_t count = shape_numel(s);
  cg_scope_push(f->e);
  const char *i = count == 1 ? "0" : cg_fresh(f->e, "i");
  if (count != 1)
    cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", i, i, cg_count(f, s, count), i);
  cg_line(f->e, "%s[%s] = %s%s%s%s;", dst, i, v->expr, v->literal ? "" : "[", v->literal ? "" : i,
          v->literal ? "" : "]");
  if (count != 1) cg_close(f->e);
  cg_scope_pop(f->e);
}

static NodeId storage_root(const Graph *g, NodeId id) {
  while (g->nodes[id].op == OP_RESHAPE)
    id = g->nodes[id].in[0];
  return id;
}

/* Writes update output o into its param/state. Values read straight from another param or
 * state could be overwritten by an earlier write-back, so only the identity is allowed. */
static bool write_back(Backend *b, CgFunc *f, const GraphOutput *o) {
  bool param = o->kind == OUT_PARAM_UPDATE;
  const TensorDecl *decls = param ? b->m->params : b->m->states;
  int n_decls = param ? b->m->n_params : b->m->n_states;
  const Node *n = graph_node(f->g, o->node);
  if (o->target < 0 || o->target >= n_decls ||
      shape_numel(&n->shape) != shape_numel(&decls[o->target].shape) ||
      n->dtype != decls[o->target].dtype) {
    diag_error(b->diag, n->loc, "internal error: update '%s' does not match its target",
               o->name ? o->name : "?");
    return false;
  }
  const Node *root = graph_node(f->g, storage_root(f->g, o->node));
  if (root->op == OP_PARAM || root->op == OP_STATE) {
    if (root->op == (param ? OP_PARAM : OP_STATE) && root->attr.source.index == o->target)
      return true; /* the value is already there */
    diag_error(b->diag, n->loc, "cannot generate C: update of '%s' is another parameter's value",
               decls[o->target].name);
    return false;
  }
  const char *field = param ? b->param_field[o->target] : b->state_field[o->target];
  const char *dst = arena_printf(f->arena, "%s->%s", param ? "p" : "s", field);
  if (f->val[o->node].expr && strcmp(f->val[o->node].expr, dst) == 0)
    return true; /* updated in place by its kernel */
  cg_line(f->e, "/* update %s */", cg_comment_safe(f->arena, decls[o->target].name));
  copy_loop(f, dst, o->node, &n->shape);
  return true;
}

static bool emit_epilogue(Backend *b, const EntryPlan *ep, CgFunc *f) {
  const Graph *g = ep->g;
  for (int i = 0; i < g->n_outputs; i++) {
    int arg = ep->output_arg[i];
    NodeId node = g->outputs[i].node;
    if (arg < 0 || (!f->val[node].literal && strcmp(f->val[node].expr, ep->args[arg].cname) == 0))
      continue;
    cg_line(f->e, "/* output %s */", cg_comment_safe(f->arena, ep->args[arg].info));
    copy_loop(f, ep->args[arg].cname, node, &ep->args[arg].shape);
  }
  cg_emit_ready(b, f, ep, g->n_kernels); /* buckets with a gradient copied just above */
  const char *loss = NULL;
  if (ep->loss != IR_NONE) {
    loss = cg_fresh(f->e, "loss");
    const CgValue *v = &f->val[ep->loss];
    cg_line(f->e, "const %s %s = %s%s;", cg_return_type(b, ep), loss, v->expr,
            v->literal ? "" : "[0]");
  }
  for (int i = 0; i < g->n_outputs; i++) {
    OutputKind k = g->outputs[i].kind;
    if ((k == OUT_PARAM_UPDATE || k == OUT_STATE_UPDATE) && !write_back(b, f, &g->outputs[i]))
      return false;
  }
  if (ep->kind == LATHE_ENTRY_TRAIN || ep->kind == LATHE_ENTRY_APPLY)
    cg_line(f->e, "s->step += 1;");
  if (loss) cg_line(f->e, "return %s;", loss);
  return true;
}

/* ---- one entry function ---------------------------------------------------------------------- */

/* true when C text uses the identifier name outside comments and string literals (a node
 * named `p` in a comment is no use of the params pointer p) */
static bool mentions(const char *text, const char *name) {
  size_t n = strlen(name);
  for (const char *p = text; p && *p;) {
    if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      p = end ? end + 2 : p + strlen(p);
    } else if (p[0] == '/' && p[1] == '/') {
      p += strcspn(p, "\n");
    } else if (*p == '"' || *p == '\'') {
      char quote = *p++;
      while (*p && *p != quote)
        p += p[0] == '\\' && p[1] ? 2 : 1;
      p += *p != 0;
    } else if (isdigit((unsigned char)*p)) { /* a number: 1e-5f, 0x1p3 name nothing */
      for (p++; isalnum((unsigned char)*p) || *p == '.' ||
                ((*p == '+' || *p == '-') && strchr("eEpP", p[-1]));
           p++) {
      }
    } else if (isalpha((unsigned char)*p) || *p == '_') {
      const char *start = p;
      while (isalnum((unsigned char)*p) || *p == '_')
        p++;
      if ((size_t)(p - start) == n && memcmp(start, name, n) == 0) return true;
    } else {
      p++;
    }
  }
  return false;
}

static void assemble_function(Backend *b, const EntryPlan *ep, CgEmitter *e) {
  const Graph *g = ep->g;
  cg_buf_printf(&b->funcs, "/* entry point \"%s\": %u nodes, %lld workspace bytes */\n",
                cg_comment_safe(&b->arena, g->name), g->n_nodes,
                (long long)cg_workspace_bytes(g, b->opt));
  cg_buf_printf(&b->funcs, "%s {\n", cg_signature(b, ep));
  if (b->m->dyn_max > 0) /* the run-time batch out of range: nothing is written */
    cg_buf_printf(&b->funcs, "  if (n < 1 || n > %s) return%s;\n", cg_max_macro(b),
                  ep->loss == IR_NONE ? "" : " NAN");
  if (e->decl.data) cg_buf_puts(&b->funcs, e->decl.data);
  for (int i = 0; i < ep->n_args; i++) {
    const char *name = ep->args[i].cname;
    if (!mentions(e->decl.data, name) && !mentions(e->body.data, name))
      cg_buf_printf(&b->funcs, "  (void)%s;\n", name);
  }
  if (e->body.data) cg_buf_puts(&b->funcs, e->body.data);
  cg_buf_puts(&b->funcs, "}\n\n");
}

/* after kernel k of an entry: the gradient buckets ready by then (buckets.c) */
typedef struct ReadyHook {
  Backend *b;
  const EntryPlan *ep;
} ReadyHook;

static void emit_ready(CgFunc *f, int32_t kernel, void *ctx) {
  ReadyHook *r = ctx;
  cg_emit_ready(r->b, f, r->ep, kernel);
}

static bool emit_entry(Backend *b, const Graph *g, EntryPlan *ep) {
  memset(ep, 0, sizeof *ep);
  ep->g = g;
  ep->loss = IR_NONE;
  ep->kind = entry_kind(g);
  ep->symbol = arena_printf(&b->arena, "%s_%s", b->model, c_ident(&b->arena, g->name));
  ep->upper = upper_of(&b->arena, ep->symbol);
  if (g->workspace_bytes < 0) {
    diag_error(b->diag, (SrcLoc){0}, "internal error: entry '%s' was not memory-planned", g->name);
    return false;
  }
  if (cg_workspace_bytes(g, b->opt) > INT32_MAX) { /* an enum constant in the header */
    diag_error(b->diag, (SrcLoc){0}, "entry '%s' needs %lld workspace bytes; at most %d supported",
               g->name, (long long)cg_workspace_bytes(g, b->opt), INT32_MAX);
    return false;
  }
  CgEmitter e;
  cg_emitter_init(&e, 1);
  for (size_t i = 0; i < sizeof reserved_words / sizeof reserved_words[0]; i++)
    cg_fresh(&e, reserved_words[i]);
  plan_args(b, ep, &e);
  CgFunc f = {&e, b->m, g, b->opt, &b->globals, ep->symbol, NULL, &b->arena, b->diag, NULL, 0};
  f.val = arena_alloc(&b->arena, (g->n_nodes + 1) * sizeof *f.val);
  bool ok = assign_storage(b, ep, &f);
  if (ok) cg_plan_buckets(b, ep, &f);
  ReadyHook ready = {b, ep};
  ok = ok && cg_lower_kernels(&f, emit_ready, &ready);
  ok = ok && emit_epilogue(b, ep, &f);
  if (ok && !cg_emitter_ok(&e)) {
    diag_error(b->diag, (SrcLoc){0}, "out of memory while generating C for '%s'", g->name);
    ok = false;
  }
  if (ok) assemble_function(b, ep, &e);
  cg_emitter_fini(&e);
  return ok;
}

/* ---- assembly ----------------------------------------------------------------------------------
 */

/* Replaces every CG_LINE_RESYNC line by `#line N "<file>"`, N being the next line's number,
 * so diagnostics after a kernel point back into the generated file. */
static char *resync_lines(const char *text, const char *c_file) {
  CgBuf out;
  cg_buf_init(&out);
  size_t marker = strlen(CG_LINE_RESYNC);
  long line = 1;
  for (const char *p = text; *p;) {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    if (len == marker && strncmp(p, CG_LINE_RESYNC, marker) == 0) {
      cg_buf_printf(&out, "#line %ld \"%s\"\n", line + 1, c_file);
    } else {
      cg_buf_printf(&out, "%.*s\n", (int)len, p);
    }
    line++;
    p += len + (eol ? 1 : 0);
  }
  return cg_buf_take(&out);
}

/* The f32 math of the kernels that libm would keep scalar (lower.c's math_call), emitted when
 * the kernels use it (clang warns about unused static functions). tanh and sigmoid use exp. */

static void emit_math(CgBuf *c, const char *funcs) {
  bool tanh_used = funcs && strstr(funcs, "lathe_tanhf(");
  bool sigmoid_used = funcs && strstr(funcs, "lathe_sigmoidf(");
  if (!tanh_used && !sigmoid_used && !(funcs && strstr(funcs, "lathe_expf("))) return;
  cg_buf_puts(c, cg_kernel_math_expf);
  if (tanh_used) cg_buf_puts(c, cg_kernel_math_tanhf);
  if (sigmoid_used) cg_buf_puts(c, cg_kernel_math_sigmoidf);
  cg_buf_puts(c, "\n");
}

const char *cg_model_file(Backend *b) {
  return cg_source_path(&b->arena, b->m, b->m->source_file);
}

/* the banner's target and build lines: what the code needs and how to build it */
static void banner_target(Backend *b, CgBuf *c) {
  CgTargetInfo t;
  cg_target_info(b->opt, &t);
  cg_buf_printf(c, " * Target: %s%s.", t.name,
                b->opt->target == CG_TARGET_NATIVE ? " (--target native on the compiling machine)"
                                                   : "");
  if (t.isa) {
    cg_buf_printf(c,
                  " The kernels use %s through GCC/Clang vector\n"
                  " * extensions of %d floats (scalar C99 twins for other compilers)",
                  t.isa, t.vec);
    if (t.features)
      cg_buf_printf(c, ";\n * %s_cpu_supported() tells whether this CPU has them", b->model);
    cg_buf_puts(c, ".\n");
  } else {
    cg_buf_puts(c, " Portable C99 kernels, no vector extensions.\n");
  }
  cg_buf_printf(c, " * Build: cc -std=c99 %s%s -c %s\n", t.flags,
                b->opt->threads > 1 ? " -fopenmp" : "", b->c_file);
  if (b->opt->threads > 1)
    cg_buf_printf(c, " *        (-fopenmp runs the large kernels on %d threads)\n",
                  b->opt->threads);
}

static char *source_text(Backend *b) {
  CgBuf c;
  cg_buf_init(&c);
  const char *src = b->m->source_file ? cg_model_file(b) : "<builtin>";
  const char *header =
      b->opt->header_name ? b->opt->header_name : arena_printf(&b->arena, "%s.h", b->model);
  cg_buf_printf(&c, "/* %s — generated by lathe from %s; do not edit.\n", b->c_file,
                cg_comment_safe(&b->arena, src));
  banner_target(b, &c);
  cg_buf_puts(&c,
              " * Standalone C99: no allocation, needs only libm (-lm). Without -fno-math-errno,\n"
              " * loops calling sqrtf stay scalar; the code never reads errno. */\n");
  cg_buf_printf(&c, "#include \"%s\"\n\n", cg_string_safe(&b->arena, header));
  cg_buf_puts(&c, "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n"
                  "#include <string.h>\n\n");
  emit_math(&c, b->funcs.data);
  /* int8 kernels (lower_quant.c): lathe_qadd and lathe_qsoftmax call lathe_requant's steps */
  bool qadd = b->funcs.data && strstr(b->funcs.data, "lathe_qadd(");
  bool qsoftmax = b->funcs.data && strstr(b->funcs.data, "lathe_qsoftmax(");
  bool requant = (b->funcs.data && strstr(b->funcs.data, "lathe_requant(")) || qadd ||
                 (b->globals.data && strstr(b->globals.data, "lathe_requant("));
  if (requant || qsoftmax) cg_buf_printf(&c, "%s\n", cg_kernel_quant_fixedpoint);
  if (requant) cg_buf_printf(&c, "%s\n", cg_kernel_quant_requant);
  if (qadd) cg_buf_printf(&c, "%s\n", cg_kernel_quant_qadd);
  if (qsoftmax) cg_buf_printf(&c, "%s\n", cg_kernel_quant_qsoftmax);
  if (b->opt->threads > 1)
    cg_buf_printf(&c,
                  "/* Large kernels run on %d threads when built with -fopenmp; without it they\n"
                  " * run on one, and the pragma is not even seen (no unknown-pragma warning). */\n"
                  "#ifdef _OPENMP\n"
                  "#define LATHE_OMP_FOR _Pragma(\"omp parallel for num_threads(%d) "
                  "schedule(static)\")\n"
                  "#else\n#define LATHE_OMP_FOR\n#endif\n\n",
                  b->opt->threads, b->opt->threads);
  if (b->globals.data) cg_buf_puts(&c, b->globals.data);
  if (b->funcs.data) cg_buf_puts(&c, b->funcs.data);
  cg_emit_init(b, &c);
  cg_emit_cpu_check(b, &c);
  cg_emit_descriptor(b, &c);
  if (c.oom) {
    cg_buf_fini(&c);
    return NULL;
  }
  char *text = cg_buf_take(&c);
  char *fixed = text && b->opt->line_directives ? resync_lines(text, b->c_file) : NULL;
  if (fixed) {
    free(text);
    return fixed;
  }
  return text;
}

/* b->model: the symbol prefix, else the model's name, which must be a C identifier */
static bool backend_name(Backend *b) {
  const char *prefix = b->opt->prefix, *why = prefix ? cg_prefix_error(prefix) : NULL;
  if (why) {
    diag_error(b->diag, (SrcLoc){0}, "invalid symbol prefix '%s': %s", prefix, why);
    return false;
  }
  b->model = prefix ? prefix : b->m->name;
  for (const char *p = b->model; p && *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_') b->model = NULL;
  if (!b->model || !*b->model || isdigit((unsigned char)b->model[0])) {
    diag_error(b->diag, (SrcLoc){b->m->source_file, 1, 1},
               "model name '%s' is not a C identifier; give the C symbols a prefix (--prefix NAME)",
               b->m->name ? b->m->name : "");
    return false;
  }
  return true;
}

static bool backend_prepare(Backend *b) {
  if (!backend_name(b)) return false;
  b->upper = upper_of(&b->arena, b->model);
  b->c_file = arena_printf(&b->arena, "%s.c", b->model);
  b->param_field = field_names(b, b->m->params, b->m->n_params, "parameters");
  b->state_field = field_names(b, b->m->states, b->m->n_states, "states");
  b->entries = arena_alloc(&b->arena, (size_t)(b->m->n_entries + 1) * sizeof *b->entries);
  return b->param_field && b->state_field;
}

bool cg_emit_c(const Module *m, const CgOptions *o, char **c_text, char **h_text, Diag *d) {
  *c_text = *h_text = NULL;
  CgOptions defaults;
  cg_options_init(&defaults);
  Backend b = {.m = m, .opt = o ? o : &defaults, .diag = d};
  arena_init(&b.arena);
  cg_buf_init(&b.globals);
  cg_buf_init(&b.funcs);
  bool ok = backend_prepare(&b);
  for (int i = 0; ok && i < m->n_entries; i++)
    ok = emit_entry(&b, m->entries[i], &b.entries[i]);
  if (ok) {
    *c_text = source_text(&b);
    *h_text = cg_header_text(&b);
    if (!*c_text || !*h_text) {
      diag_error(d, (SrcLoc){0}, "out of memory while generating C for '%s'", m->name);
      ok = false;
    }
  }
  if (!ok) {
    free(*c_text);
    free(*h_text);
    *c_text = *h_text = NULL;
  }
  cg_buf_fini(&b.globals);
  cg_buf_fini(&b.funcs);
  arena_fini(&b.arena);
  return ok;
}
