/* codegen/c_api.c — the model's C interface: <model>.h, <model>_init and <model>_info.
 *
 * The header holds a verbatim copy of lathe/model_info.h (embedded at build time as
 * cg_text_model_info_h, so standalone output needs no lathe header), the params/state structs (one
 * field per tensor, dots become underscores), the workspace sizes, and one prototype per entry
 * point (signatures from backend.h's plans). <model>_init implements exactly the initializers of
 * ir/init.c: keep the two in step (a unit test compares them bit for bit). Fans, bounds and name
 * hashes are computed here and emitted as %.17g literals, so the generated code does the same
 * double operations as ir/init.c. The descriptor lists params and states with offsetof offsets, and
 * per entry the arguments and a `call` wrapper taking an array of pointers. Every exported name
 * starts with the symbol prefix (b->model: --prefix, else the model's name; cg_prefix_error
 * says which prefixes are valid); the descriptor's `name` is that prefix, so a loader finds
 * `<name>_info` from it.
 */
#include <ctype.h>
#include <math.h>
#include <string.h>

#include "backend.h"
#include "gemm.h"
#include "kernels_text.h"
#include "lathe/model_info.h"
#include "workspace.h"

/* ---- the symbol prefix ------------------------------------------------------------------- */

/* The keywords of C99, C11 and C23 without a leading underscore (those are refused as reserved
 * anyway). The prefix never stands alone in the output, but a keyword as a model's symbol
 * prefix is a mistake worth a message. */
static const char *const c_keywords[] = {
    "alignas",      "alignof",  "auto",          "bool",      "break",
    "case",         "char",     "const",         "constexpr", "continue",
    "default",      "do",       "double",        "else",      "enum",
    "extern",       "false",    "float",         "for",       "goto",
    "if",           "inline",   "int",           "long",      "nullptr",
    "register",     "restrict", "return",        "short",     "signed",
    "sizeof",       "static",   "static_assert", "struct",    "switch",
    "thread_local", "true",     "typedef",       "typeof",    "typeof_unqual",
    "union",        "unsigned", "void",          "volatile",  "while",
};

const char *cg_prefix_error(const char *name) {
  if (!name || !*name) return "it is empty; expected a C identifier";
  size_t n = strlen(name);
  _Static_assert(CG_PREFIX_MAX == 100, "the message below says 100");
  if (n > CG_PREFIX_MAX) return "it is longer than 100 characters";
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)name[i];
    if (!(isalnum(ch) || ch == '_') || (i == 0 && isdigit(ch)))
      return "it is not a C identifier (letters, digits and '_', not starting with a digit)";
  }
  if (name[0] == '_')
    return "it starts with '_', which C reserves for the implementation at file scope";
  for (size_t i = 0; i < sizeof c_keywords / sizeof c_keywords[0]; i++)
    if (strcmp(name, c_keywords[i]) == 0) return "it is a C keyword";
  return NULL;
}

/* ---- signatures -------------------------------------------------------------------------- */

const char *cg_return_type(const Backend *b, const EntryPlan *ep) {
  (void)b;
  return ep->loss == IR_NONE ? "void" : dtype_c_name(graph_node(ep->g, ep->loss)->dtype);
}

static const char *arg_decl(const Backend *b, Arena *a, const ArgPlan *arg) {
  const char *cq = arg->is_const ? "const " : "";
  switch (arg->role) {
  case LATHE_ARG_PARAMS:
    return arena_printf(a, "%s%s_params *%s", cq, b->model, arg->cname);
  case LATHE_ARG_STATE:
    return arena_printf(a, "%s%s_state *%s", cq, b->model, arg->cname);
  case LATHE_ARG_WORKSPACE:
    return arena_printf(a, "void *%s", arg->cname);
  case LATHE_ARG_BATCH:
    return arena_printf(a, "int64_t %s", arg->cname);
  case LATHE_ARG_HOOKS:
    return arena_printf(a, "const lathe_grad_hooks *%s", arg->cname);
  default:
    if (arg->shape.dyn > 0) /* the run-time batch: n, 1 <= n <= the bound, leading rows */
      return arena_printf(a, "%s%s *%s", cq, dtype_c_name(arg->dtype), arg->cname);
    return arena_printf(a, "%s%s %s[%s]", cq, dtype_c_name(arg->dtype), arg->cname,
                        cg_dims(a, &arg->shape));
  }
}

/* "float mlp_train(mlp_params *p, ...)", wrapped before 100 columns */
const char *cg_signature(const Backend *b, const EntryPlan *ep) {
  Arena *a = (Arena *)&b->arena;
  char *text = arena_printf(a, "%s %s(", cg_return_type(b, ep), ep->symbol);
  size_t line_start = 0;
  for (int i = 0; i < ep->n_args; i++) {
    const char *decl = arg_decl(b, a, &ep->args[i]);
    const char *sep = i + 1 < ep->n_args ? "," : ")";
    if (i > 0 && strlen(text) - line_start + strlen(decl) + 2 > 96) {
      line_start = strlen(text) + 1;
      text = arena_printf(a, "%s\n    %s%s", text, decl, sep);
    } else {
      text = arena_printf(a, "%s%s%s%s", text, i > 0 ? " " : "", decl, sep);
    }
  }
  return text;
}

/* ---- the header -------------------------------------------------------------------------------
 */

static void tensor_fields(Backend *b, CgBuf *h, const TensorDecl *decls, int n,
                          const char **fields) {
  char shape[200];
  for (int i = 0; i < n; i++)
    cg_buf_printf(h, "  %s %s[%s]; /* %s: %s%s */\n", dtype_c_name(decls[i].dtype), fields[i],
                  cg_dims(&b->arena, &decls[i].shape), cg_comment_safe(&b->arena, decls[i].name),
                  dtype_name(decls[i].dtype), shape_str(&decls[i].shape, shape, sizeof shape));
}

static void header_types(Backend *b, CgBuf *h) {
  const Module *m = b->m;
  cg_buf_printf(h, "/* trainable parameters, in the order of %s */\n",
                cg_comment_safe(&b->arena, m->source_file ? cg_model_file(b) : "the model"));
  cg_buf_printf(h, "typedef struct %s_params {\n", b->model);
  tensor_fields(b, h, m->params, m->n_params, b->param_field);
  if (m->n_params == 0) cg_buf_puts(h, "  uint8_t unused_; /* the model has no parameters */\n");
  cg_buf_printf(h, "} %s_params;\n\n", b->model);
  cg_buf_puts(h, "/* training state: optimizer moments and the number of steps taken */\n");
  cg_buf_printf(h, "typedef struct %s_state {\n", b->model);
  tensor_fields(b, h, m->states, m->n_states, b->state_field);
  cg_buf_puts(h, "  uint64_t step; /* train steps taken */\n");
  cg_buf_printf(h, "} %s_state;\n\n", b->model);
}

const char *cg_max_macro(Backend *b) {
  const char *dyn = b->m->dyn_name ? b->m->dyn_name : "N";
  char *name = arena_printf(&b->arena, "%s_MAX_%s", b->upper, dyn);
  for (char *p = name; *p; p++)
    *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 'a' + 'A' : *p);
  return name;
}

const char *cg_workspace_macro(Backend *b, const EntryPlan *ep, const char *n) {
  if (b->m->dyn_max <= 0) return arena_printf(&b->arena, "%s_WORKSPACE_BYTES", ep->upper);
  return arena_printf(&b->arena, "%s_WORKSPACE_BYTES(%s)", ep->upper, n);
}

/* A dynamic module's sizes: the bound, and per entry the workspace A * n + B as a macro of n
 * (A: the plan's per-n pool; B: its static pool, the kernels' scratch and pre-packed operands,
 * all planned at the bound), and the model's, enough for every entry. */
static void header_sizes_dyn(Backend *b, CgBuf *h) {
  int64_t max_a = 0, max_b = 0;
  for (int i = 0; i < b->m->n_entries; i++) {
    const Graph *g = b->m->entries[i];
    if (g->workspace_bytes_n > max_a) max_a = g->workspace_bytes_n;
    if (cg_workspace_bytes(g, b->opt) > max_b) max_b = cg_workspace_bytes(g, b->opt);
  }
  cg_buf_printf(h,
                "/* the run-time batch %s: every entry takes int64_t n, 1 <= n <= %s; out of "
                "that range\n * it writes nothing (an entry returning the loss returns NAN) */\n",
                b->m->dyn_name ? b->m->dyn_name : "N", cg_max_macro(b));
  cg_buf_printf(h, "#define %s %lld\n", cg_max_macro(b), (long long)b->m->dyn_max);
  cg_buf_puts(h, "/* workspace bytes at batch n (pass a 64-byte aligned buffer); the first "
                 "is enough\n * for every entry */\n");
  cg_buf_printf(h, "#define %s_WORKSPACE_BYTES(n) ((size_t)%lld * (size_t)(n) + (size_t)%lld)\n",
                b->upper, (long long)max_a, (long long)max_b);
  for (int i = 0; i < b->m->n_entries; i++) {
    const Graph *g = b->m->entries[i];
    cg_buf_printf(h, "#define %s_WORKSPACE_BYTES(n) ((size_t)%lld * (size_t)(n) + (size_t)%lld)\n",
                  b->entries[i].upper, (long long)g->workspace_bytes_n,
                  (long long)cg_workspace_bytes(g, b->opt));
  }
  cg_buf_puts(h, "\n");
}

/* ---- the gradients of a split train step ---------------------------------------------------- */

/* The "grad" entry of a module that also has "apply" (--split-step), else NULL. */
static const Graph *split_grad(const Module *m) {
  return cg_split_grad(m);
}

/* <model>_grads: a field per OUT_GRAD output of "grad" (param order, the params' field names) */
static void header_grads(Backend *b, CgBuf *h) {
  const Graph *g = split_grad(b->m);
  if (!g) return;
  cg_buf_printf(h,
                "/* the gradients of one train step, one contiguous region: %s_grad writes it,\n"
                " * replicas sum it (one allreduce of %s_GRADS_COUNT elements) and divide by\n"
                " * their number, %s_apply reads it; offsets in the descriptor */\n",
                b->model, b->upper, b->model);
  cg_buf_printf(h, "typedef struct %s_grads {\n", b->model);
  int64_t count = 0;
  char shape[200];
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_GRAD) continue;
    const TensorDecl *p = &b->m->params[g->outputs[i].target];
    cg_buf_printf(h, "  %s %s[%s]; /* d loss / d %s: %s%s */\n", dtype_c_name(p->dtype),
                  b->param_field[g->outputs[i].target], cg_dims(&b->arena, &p->shape),
                  cg_comment_safe(&b->arena, p->name), dtype_name(p->dtype),
                  shape_str(&p->shape, shape, sizeof shape));
    count += shape_numel(&p->shape);
  }
  cg_buf_printf(h, "} %s_grads;\n", b->model);
  cg_buf_printf(h, "enum { %s_GRADS_COUNT = %lld }; /* elements of %s_grads */\n\n", b->upper,
                (long long)count, b->model);
  int sums = 0;
  for (uint32_t id = 0; id < g->n_nodes; id++)
    sums += g->nodes[id].op == OP_REPLICA_SUM;
  if (sums > 0)
    cg_buf_printf(
        h,
        "/* batch norm over all replicas: %s_grad's `hooks` must sum %d buffers over the\n"
        " * replicas (lathe_grad_hooks; their sizes: %s_info, the entry's replica_sums)\n"
        " * for it to compute what one process computes on the global batch */\n"
        "enum { %s_GRAD_REPLICA_SUMS = %d };\n\n",
        b->model, sums, b->model, b->upper, sums);
  for (int i = 0; i < b->m->n_entries; i++)
    if (b->entries[i].g == g && b->entries[i].n_buckets > 0)
      cg_buf_printf(h,
                    "/* %s_grad calls hooks->ready(ctx, offset, bytes) as each of its %d buckets\n"
                    " * of gradients is final (%s_info: the entry's buckets) */\n"
                    "enum { %s_GRAD_BUCKETS = %d };\n\n",
                    b->model, b->entries[i].n_buckets, b->model, b->upper,
                    b->entries[i].n_buckets);
}

/* The param whose gradient argument `arg` of ep is (an output of a split step's "grad", an
 * input "grad.<param>" of "apply"), or -1. */
static int gradient_param(const Backend *b, const EntryPlan *ep, int arg) {
  const ArgPlan *a = &ep->args[arg];
  if (!split_grad(b->m)) return -1;
  if (ep->kind == LATHE_ENTRY_GRAD && a->role == LATHE_ARG_OUTPUT)
    for (int k = 0; k < ep->g->n_outputs; k++)
      if (ep->output_arg[k] == arg && ep->g->outputs[k].kind == OUT_GRAD)
        return ep->g->outputs[k].target;
  if (ep->kind == LATHE_ENTRY_APPLY && a->role == LATHE_ARG_INPUT &&
      strncmp(a->info, "grad.", 5) == 0)
    return module_find_param(b->m, a->info + 5);
  return -1;
}

static void header_sizes(Backend *b, CgBuf *h) {
  if (b->m->dyn_max > 0) {
    header_sizes_dyn(b, h);
    return;
  }
  int64_t max = 0;
  for (int i = 0; i < b->m->n_entries; i++)
    if (cg_workspace_bytes(b->m->entries[i], b->opt) > max)
      max = cg_workspace_bytes(b->m->entries[i], b->opt);
  cg_buf_puts(h, "/* workspace bytes (pass a 64-byte aligned buffer); the first is the max */\n");
  cg_buf_printf(h, "enum { %s_WORKSPACE_BYTES = %lld };\n", b->upper, (long long)max);
  for (int i = 0; i < b->m->n_entries; i++)
    cg_buf_printf(h, "enum { %s_WORKSPACE_BYTES = %lld };\n", b->entries[i].upper,
                  (long long)cg_workspace_bytes(b->m->entries[i], b->opt));
  cg_buf_puts(h, "\n");
}

static const char *entry_doc(int kind) {
  switch (kind) {
  case LATHE_ENTRY_TRAIN:
    return "one training step: updates p and s in place, returns the loss";
  case LATHE_ENTRY_GRAD:
    return "gradients of the loss, one output array per parameter (of <model>_grads when the\n"
           " * step is split; then also updates s's running statistics; `hooks`, when it has\n"
           " * them: the replicas' transport, lathe_grad_hooks, or NULL for one replica)";
  case LATHE_ENTRY_APPLY:
    return "the optimizer update of the train step from given gradients: train == grad, apply";
  default:
    return "inference: writes the outputs";
  }
}

char *cg_header_text(Backend *b) {
  CgBuf h;
  cg_buf_init(&h);
  const char *src = b->m->source_file ? cg_model_file(b) : "<builtin>";
  cg_buf_printf(&h, "/* %s.h — generated by lathe from %s; do not edit. */\n", b->model,
                cg_comment_safe(&b->arena, src));
  cg_buf_printf(&h, "#ifndef LATHE_GENERATED_%s_H\n#define LATHE_GENERATED_%s_H\n\n", b->upper,
                b->upper);
  cg_buf_puts(&h, cg_text_model_info_h); /* includes <stddef.h> and <stdint.h> (or lathe's did) */
  cg_buf_puts(&h, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
  header_types(b, &h);
  header_grads(b, &h);
  header_sizes(b, &h);
  for (int i = 0; i < b->m->n_entries; i++)
    cg_plan_comment(b, &b->entries[i], &h);
  cg_buf_puts(&h, "/* deterministic initialization (same values as `lathe` itself) */\n");
  cg_buf_printf(&h, "void %s_init(%s_params *p, %s_state *s, uint64_t seed);\n\n", b->model,
                b->model, b->model);
  for (int i = 0; i < b->m->n_entries; i++)
    cg_buf_printf(&h, "/* %s */\n%s;\n\n", entry_doc(b->entries[i].kind),
                  cg_signature(b, &b->entries[i]));
  cg_buf_printf(&h,
                "/* 1 when this CPU has the instructions the kernels use (see %s.c's banner),\n"
                " * else 0: then an entry point would stop on an illegal instruction */\n"
                "int %s_cpu_supported(void);\n\n",
                b->model, b->model);
  cg_buf_printf(&h, "extern const lathe_model_info %s_info;\n\n", b->model);
  cg_buf_puts(&h, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
  return h.oom ? (cg_buf_fini(&h), NULL) : cg_buf_take(&h);
}

/* ---- init -------------------------------------------------------------------------------------
 */

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ull;
  }
  return h;
}

/* How decl is filled: a constant, U[lo, hi) (lo + width * u), or N(mean=lo, std=width). */
typedef struct InitPlan {
  enum { FILL_CONSTANT, FILL_UNIFORM, FILL_NORMAL } fill;
  double lo, width;
  double fan_in, fan_out;
} InitPlan;

/* The same formulas, in the same double operations, as ir_init_tensor. */
static InitPlan init_plan(const TensorDecl *decl) {
  InitPlan p = {FILL_CONSTANT, 0, 0, 0, 0};
  double a = decl->init.a, b = decl->init.b, l;
  ir_init_fans(&decl->shape, &p.fan_in, &p.fan_out);
  switch (decl->init.kind) {
  case INIT_ONES:
    p.lo = 1.0;
    break;
  case INIT_CONSTANT:
    p.lo = a;
    break;
  case INIT_UNIFORM:
    p = (InitPlan){FILL_UNIFORM, a, b - a, p.fan_in, p.fan_out};
    break;
  case INIT_NORMAL:
    p = (InitPlan){FILL_NORMAL, a, b, p.fan_in, p.fan_out};
    break;
  case INIT_GLOROT_UNIFORM:
    l = sqrt(6.0 / (p.fan_in + p.fan_out));
    p = (InitPlan){FILL_UNIFORM, -l, l - -l, p.fan_in, p.fan_out};
    break;
  case INIT_GLOROT_NORMAL:
    p = (InitPlan){FILL_NORMAL, 0.0, sqrt(2.0 / (p.fan_in + p.fan_out)), p.fan_in, p.fan_out};
    break;
  case INIT_HE_UNIFORM:
    l = sqrt(6.0 / p.fan_in);
    p = (InitPlan){FILL_UNIFORM, -l, l - -l, p.fan_in, p.fan_out};
    break;
  case INIT_HE_NORMAL:
    p = (InitPlan){FILL_NORMAL, 0.0, sqrt(2.0 / p.fan_in), p.fan_in, p.fan_out};
    break;
  case INIT_ORTHOGONAL: /* then lathe_orthogonal_<dtype> (init_one) */
    p = (InitPlan){FILL_NORMAL, 0.0, 1.0, p.fan_in, p.fan_out};
    break;
  default:
    break; /* zeros */
  }
  return p;
}

static const char *const init_helpers[] = {
    "static uint64_t lathe_splitmix64(uint64_t x) {\n"
    "  x += 0x9E3779B97F4A7C15ull;\n"
    "  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;\n"
    "  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;\n"
    "  return x ^ (x >> 31);\n"
    "}\n\n"
    "/* element i of the uniform [0, 1) stream `key` */\n"
    "static double lathe_uniform01(uint64_t key, int64_t i) {\n"
    "  return (double)(lathe_splitmix64(key + (uint64_t)i) >> 11) * (1.0 / 9007199254740992.0);\n"
    "}\n\n",
    "/* element i of the standard normal stream `key` (Box-Muller on pairs) */\n"
    "static double lathe_normal01(uint64_t key, int64_t i) {\n"
    "  const int64_t j = i & ~(int64_t)1;\n"
    "  const double r = sqrt(-2.0 * log(1.0 - lathe_uniform01(key, j)));\n"
    "  const double t = 6.283185307179586 * lathe_uniform01(key, j + 1);\n"
    "  return (i & 1) ? r * sin(t) : r * cos(t);\n"
    "}\n\n",
};

/* ir/init.c's fill_orthogonal for C type t (float or double): the same operations in the
 * same order; separate statements and (GCC) fp-contract=off keep FMAs out */
static void emit_orthogonal(CgBuf *c, const char *t) {
  cg_buf_printf(
      c,
      "#if defined(__GNUC__) && !defined(__clang__)\n"
      "__attribute__((optimize(\"fp-contract=off\")))\n"
      "#endif\n"
      "static void lathe_orthogonal_%s(%s *m, int64_t vecs, int64_t len, int64_t vs,\n"
      "                                int64_t es) {\n"
      "  for (int64_t i = 0; i < vecs; i++) {\n"
      "    for (int64_t j = 0; j < i; j++) {\n"
      "      double d = 0.0;\n"
      "      for (int64_t k = 0; k < len; k++) {\n"
      "        const double p = (double)m[i * vs + k * es] * (double)m[j * vs + k * es];\n"
      "        d += p;\n"
      "      }\n"
      "      for (int64_t k = 0; k < len; k++) {\n"
      "        const double p = d * (double)m[j * vs + k * es];\n"
      "        m[i * vs + k * es] = (%s)((double)m[i * vs + k * es] - p);\n"
      "      }\n"
      "    }\n"
      "    double s = 0.0;\n"
      "    for (int64_t k = 0; k < len; k++) {\n"
      "      const double p = (double)m[i * vs + k * es] * (double)m[i * vs + k * es];\n"
      "      s += p;\n"
      "    }\n"
      "    const double norm = sqrt(s);\n"
      "    for (int64_t k = 0; k < len; k++)\n"
      "      m[i * vs + k * es] = (%s)((double)m[i * vs + k * es] / norm);\n"
      "  }\n"
      "}\n\n",
      t, t, t, t);
}

static void init_one(Backend *b, CgBuf *c, const TensorDecl *decl, const char *lvalue) {
  Arena *a = &b->arena;
  InitPlan ip = init_plan(decl);
  char shape[200];
  int64_t count = shape_numel(&decl->shape);
  const char *t = dtype_c_name(decl->dtype);
  cg_buf_printf(c, "  /* %s: %s%s = %s (fan_in %.17g, fan_out %.17g) */\n",
                cg_comment_safe(a, decl->name), dtype_name(decl->dtype),
                shape_str(&decl->shape, shape, sizeof shape), init_name(decl->init.kind), ip.fan_in,
                ip.fan_out);
  if (ip.fill == FILL_CONSTANT) {
    cg_buf_printf(c, "  for (int64_t i = 0; i < %lld; i++) %s[i] = %s;\n", (long long)count, lvalue,
                  cg_literal(a, decl->dtype, (double)(ip.lo)));
    return;
  }
  cg_buf_printf(c, "  key = lathe_splitmix64(seed ^ 0x%016llxull);\n",
                (unsigned long long)fnv1a64(decl->name));
  cg_buf_printf(c, "  for (int64_t i = 0; i < %lld; i++)\n", (long long)count);
  cg_buf_printf(c, "    %s[i] = (%s)(%s + %s * %s(key, i));\n", lvalue, t,
                cg_literal(a, DT_F64, ip.lo), cg_literal(a, DT_F64, ip.width),
                ip.fill == FILL_UNIFORM ? "lathe_uniform01" : "lathe_normal01");
  if (decl->init.kind != INIT_ORTHOGONAL || !dtype_is_float(decl->dtype)) return;
  int64_t rows = decl->shape.rank ? decl->shape.dim[0] : 1, cols = count / rows;
  if (rows <= cols)
    cg_buf_printf(c, "  lathe_orthogonal_%s(%s, %lld, %lld, %lld, 1);\n", t, lvalue,
                  (long long)rows, (long long)cols, (long long)cols);
  else
    cg_buf_printf(c, "  lathe_orthogonal_%s(%s, %lld, %lld, 1, %lld);\n", t, lvalue,
                  (long long)cols, (long long)rows, (long long)cols);
}

void cg_emit_init(Backend *b, CgBuf *c) {
  const Module *m = b->m;
  bool random = false, normal = false;
  for (int k = 0; k < 2; k++) {
    const TensorDecl *decls = k ? m->states : m->params;
    for (int i = 0; i < (k ? m->n_states : m->n_params); i++) {
      InitPlan ip = init_plan(&decls[i]);
      random |= ip.fill != FILL_CONSTANT;
      normal |= ip.fill == FILL_NORMAL;
    }
  }
  if (random) cg_buf_puts(c, init_helpers[0]);
  if (normal) cg_buf_puts(c, init_helpers[1]);
  for (int t = 0; t < 2; t++) { /* lathe_orthogonal_float / _double, when used */
    bool used = false;
    for (int i = 0; i < m->n_params; i++)
      used |=
          m->params[i].init.kind == INIT_ORTHOGONAL && m->params[i].dtype == (t ? DT_F64 : DT_F32);
    for (int i = 0; i < m->n_states; i++)
      used |=
          m->states[i].init.kind == INIT_ORTHOGONAL && m->states[i].dtype == (t ? DT_F64 : DT_F32);
    if (used) emit_orthogonal(c, t ? "double" : "float");
  }
  cg_buf_puts(c,
              "/* the initializers of the model file, deterministic in (seed, tensor name) */\n");
  cg_buf_printf(c, "void %s_init(%s_params *p, %s_state *s, uint64_t seed) {\n", b->model, b->model,
                b->model);
  if (random)
    cg_buf_puts(c, "  uint64_t key;\n");
  else
    cg_buf_puts(c, "  (void)seed;\n");
  if (m->n_params == 0) cg_buf_puts(c, "  p->unused_ = 0;\n");
  for (int i = 0; i < m->n_params; i++)
    init_one(b, c, &m->params[i], arena_printf(&b->arena, "p->%s", b->param_field[i]));
  for (int i = 0; i < m->n_states; i++)
    init_one(b, c, &m->states[i], arena_printf(&b->arena, "s->%s", b->state_field[i]));
  cg_buf_puts(c, "  s->step = 0;\n}\n\n");
}

/* ---- the descriptor ------------------------------------------------------------------------- */

static const char *const dtype_codes[DT_COUNT] = {"LATHE_F32", "LATHE_F64", "LATHE_I32",
                                                  "LATHE_I64", "LATHE_U8", "LATHE_I8"};

/* `static const int64_t <model>_shape_N[] = {...};`, or "NULL" for a scalar */
static const char *shape_array(Backend *b, CgBuf *c, const Shape *s, int *counter) {
  if (s->rank == 0) return "NULL";
  const char *name = arena_printf(&b->arena, "%s_shape_%d", b->model, (*counter)++);
  cg_buf_printf(c, "static const int64_t %s[] = {", name);
  for (int i = 0; i < s->rank; i++)
    cg_buf_printf(c, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
  cg_buf_puts(c, "};\n");
  return name;
}

/* one lathe_tensor_info initializer; `owner` is the struct type for offsetof, or NULL */
static const char *tensor_info(Backend *b, const char *name, DType t, const Shape *s,
                               const char *shape_name, const char *owner, const char *field) {
  Arena *a = &b->arena;
  const char *offset = owner ? arena_printf(a, "offsetof(%s, %s)", owner, field) : "0";
  return arena_printf(a, "  {\"%s\", %s, %d, %s, %s, sizeof(%s) * %s, %lld},\n",
                      cg_string_safe(a, name), dtype_codes[t], s->rank, shape_name, offset,
                      dtype_c_name(t), cg_dims(a, s), (long long)s->dyn);
}

/* params or states table; returns its name or "NULL" */
static const char *decl_table(Backend *b, CgBuf *c, const TensorDecl *decls, int n,
                              const char **fields, const char *what, int *counter) {
  if (n == 0) return "NULL";
  const char **shapes = arena_alloc(&b->arena, (size_t)n * sizeof *shapes);
  for (int i = 0; i < n; i++)
    shapes[i] = shape_array(b, c, &decls[i].shape, counter);
  const char *name = arena_printf(&b->arena, "%s_%s_info", b->model, what);
  const char *owner = arena_printf(&b->arena, "%s_%s", b->model, what);
  cg_buf_printf(c, "static const lathe_tensor_info %s[] = {\n", name);
  for (int i = 0; i < n; i++)
    cg_buf_puts(c, tensor_info(b, decls[i].name, decls[i].dtype, &decls[i].shape, shapes[i], owner,
                               fields[i]));
  cg_buf_puts(c, "};\n\n");
  return name;
}

static const char *const role_codes[] = {
    "LATHE_ARG_PARAMS",    "LATHE_ARG_STATE", "LATHE_ARG_INPUT", "LATHE_ARG_OUTPUT",
    "LATHE_ARG_WORKSPACE", "LATHE_ARG_BATCH", "LATHE_ARG_HOOKS"};

/* the element counts of ep's replica_sum nodes in call (node) order, as a table (none: none);
 * returns their number */
static int replica_sums(Backend *b, CgBuf *c, const EntryPlan *ep) {
  int n = 0;
  for (uint32_t id = 0; id < ep->g->n_nodes; id++) {
    const Node *node = &ep->g->nodes[id];
    if (node->op != OP_REPLICA_SUM) continue;
    if (c && n == 0) cg_buf_printf(c, "static const size_t %s_replica_sums[] = {", ep->symbol);
    if (c) cg_buf_printf(c, "%s%lld", n ? ", " : "", (long long)shape_numel(&node->shape));
    n++;
  }
  if (c && n > 0) cg_buf_puts(c, "};\n");
  (void)b;
  return n;
}

/* `static void <symbol>__call(void *const *a, double *ret)`: casts and forwards */
static void call_wrapper(Backend *b, CgBuf *c, const EntryPlan *ep) {
  Arena *a = &b->arena;
  cg_buf_printf(c, "static void %s__call(void *const *a, double *ret) {\n", ep->symbol);
  const char *call = arena_printf(a, "%s(", ep->symbol);
  for (int i = 0; i < ep->n_args; i++) {
    const ArgPlan *arg = &ep->args[i];
    const char *cq = arg->is_const ? "const " : "", *type;
    if (arg->role == LATHE_ARG_PARAMS)
      type = arena_printf(a, "%s_params", b->model);
    else if (arg->role == LATHE_ARG_STATE)
      type = arena_printf(a, "%s_state", b->model);
    else if (arg->role == LATHE_ARG_WORKSPACE)
      type = "void";
    else if (arg->role == LATHE_ARG_HOOKS)
      type = "lathe_grad_hooks";
    else if (arg->role == LATHE_ARG_BATCH)
      type = NULL;
    else
      type = dtype_c_name(arg->dtype);
    if (!type) { /* the batch, by value */
      call = arena_printf(a, "%s%s*(const int64_t *)a[%d]", call, i % 3 ? ", " : ",\n      ", i);
      continue;
    }
    call = arena_printf(a, "%s%s(%s%s *)a[%d]", call,
                        i == 0  ? ""
                        : i % 3 ? ", "
                                : ",\n      ",
                        cq, type, i);
  }
  if (ep->loss == IR_NONE) {
    cg_buf_printf(c, "  (void)ret;\n  %s);\n}\n\n", call);
  } else {
    cg_buf_printf(c, "  const double loss = (double)%s);\n", call);
    cg_buf_puts(c, "  if (ret) *ret = loss;\n}\n\n");
  }
}

static void entry_tables(Backend *b, CgBuf *c, const EntryPlan *ep, int *counter) {
  const char **shapes = arena_alloc(&b->arena, (size_t)(ep->n_args + 1) * sizeof *shapes);
  int n_tensors = 0;
  for (int i = 0; i < ep->n_args; i++) {
    int role = ep->args[i].role;
    if (role == LATHE_ARG_INPUT || role == LATHE_ARG_OUTPUT)
      shapes[i] = shape_array(b, c, &ep->args[i].shape, counter), n_tensors++;
  }
  if (n_tensors > 0) {
    cg_buf_printf(c, "static const lathe_tensor_info %s_tensors[] = {\n", ep->symbol);
    for (int i = 0; i < ep->n_args; i++) {
      const ArgPlan *arg = &ep->args[i];
      int p = gradient_param(b, ep, i);
      const char *owner = p >= 0 ? arena_printf(&b->arena, "%s_grads", b->model) : NULL;
      if (arg->role == LATHE_ARG_INPUT || arg->role == LATHE_ARG_OUTPUT)
        cg_buf_puts(c, tensor_info(b, arg->info, arg->dtype, &arg->shape, shapes[i], owner,
                                   p >= 0 ? b->param_field[p] : NULL));
    }
    cg_buf_puts(c, "};\n");
  }
  cg_buf_printf(c, "static const lathe_arg_info %s_args[] = {\n", ep->symbol);
  for (int i = 0, t = 0; i < ep->n_args; i++) {
    int role = ep->args[i].role;
    bool tensor = role == LATHE_ARG_INPUT || role == LATHE_ARG_OUTPUT;
    const char *ref = tensor ? arena_printf(&b->arena, "&%s_tensors[%d]", ep->symbol, t++) : "NULL";
    cg_buf_printf(c, "  {%s, %s},\n", role_codes[role], ref);
  }
  cg_buf_puts(c, "};\n");
  replica_sums(b, c, ep);
  cg_emit_bucket_table(b, c, ep);
  call_wrapper(b, c, ep);
}

static const char *const entry_codes[] = {"LATHE_ENTRY_FORWARD", "LATHE_ENTRY_TRAIN",
                                          "LATHE_ENTRY_GRAD", "LATHE_ENTRY_APPLY"};

void cg_emit_cpu_check(Backend *b, CgBuf *c) {
  CgTargetInfo t;
  cg_target_info(b->opt, &t);
  cg_buf_printf(c, "int %s_cpu_supported(void) {\n", b->model);
  if (!t.features) {
    cg_buf_printf(c, "  return 1; /* %s: nothing beyond what every such CPU has */\n}\n\n", t.name);
    return;
  }
  /* the vector kernels (LATHE_VECTOR) or the whole file (-march) use the instructions */
  cg_buf_printf(c,
                "#if defined(__GNUC__) && defined(__x86_64__) && (defined(LATHE_VECTOR) || "
                "defined(%s))\n  __builtin_cpu_init();\n  return ",
                t.macro);
  const char *feature = t.features;
  while (*feature) {
    size_t n = strcspn(feature, ",");
    cg_buf_printf(c, "%s__builtin_cpu_supports(\"%.*s\")", feature == t.features ? "" : " && ",
                  (int)n, feature);
    feature += n + (feature[n] == ',');
  }
  cg_buf_puts(c, ";\n#else\n  return 1; /* the scalar twins run */\n#endif\n}\n\n");
}

void cg_emit_descriptor(Backend *b, CgBuf *c) {
  const Module *m = b->m;
  int counter = 0;
  cg_buf_puts(c,
              "/* ---- the descriptor: names, dtypes, shapes, offsets, entry points ---- */\n\n");
  const char *params = decl_table(b, c, m->params, m->n_params, b->param_field, "params", &counter);
  const char *states = decl_table(b, c, m->states, m->n_states, b->state_field, "state", &counter);
  for (int i = 0; i < m->n_entries; i++)
    entry_tables(b, c, &b->entries[i], &counter);
  const char *entries = "NULL";
  if (m->n_entries > 0) {
    entries = arena_printf(&b->arena, "%s_entries", b->model);
    cg_buf_printf(c, "static const lathe_entry_info %s[] = {\n", entries);
    for (int i = 0; i < m->n_entries; i++) {
      const EntryPlan *ep = &b->entries[i];
      int sums = replica_sums(b, NULL, ep);
      cg_buf_printf(c,
                    "  {\"%s\", \"%s\", %s, %d, %d,\n   %s_args, %s, %s__call,\n   %s, %s, %d, "
                    "%s, %d, %s},\n",
                    cg_string_safe(&b->arena, ep->g->name), ep->symbol, entry_codes[ep->kind],
                    ep->loss != IR_NONE, ep->n_args, ep->symbol,
                    cg_workspace_macro(b, ep, cg_max_macro(b)), ep->symbol,
                    cg_workspace_macro(b, ep, "0"),
                    arena_printf(&b->arena, "%lld", (long long)ep->g->workspace_bytes_n), sums,
                    sums ? arena_printf(&b->arena, "%s_replica_sums", ep->symbol) : "NULL",
                    ep->n_buckets,
                    ep->n_buckets ? arena_printf(&b->arena, "%s_buckets", ep->symbol) : "NULL");
    }
    cg_buf_puts(c, "};\n\n");
  }
  cg_buf_printf(c, "static void %s_init__call(void *p, void *s, uint64_t seed) {\n", b->model);
  cg_buf_printf(c, "  %s_init((%s_params *)p, (%s_state *)s, seed);\n}\n\n", b->model, b->model,
                b->model);
  cg_buf_printf(c, "const lathe_model_info %s_info = {\n", b->model);
  cg_buf_printf(c, "  LATHE_MODEL_INFO_VERSION, \"%s\", \"%s\",\n", b->model,
                cg_string_safe(&b->arena, m->source_file ? cg_model_file(b) : ""));
  cg_buf_printf(c, "  sizeof(%s_params), sizeof(%s_state), %s_WORKSPACE_BYTES%s,\n", b->model,
                b->model, b->upper,
                m->dyn_max > 0 ? arena_printf(&b->arena, "(%s)", cg_max_macro(b)) : "");
  CgTargetInfo t;
  cg_target_info(b->opt, &t);
  cg_buf_printf(c, "  %d, %s, %d, %s, %d, %s, %s_init__call,\n", m->n_params, params, m->n_states,
                states, m->n_entries, entries, b->model);
  cg_buf_printf(c, "  %s_cpu_supported, \"%s\", %lld, %s,\n", b->model, t.name,
                (long long)m->dyn_max,
                m->dyn_name ? arena_printf(&b->arena, "\"%s\"", cg_string_safe(&b->arena, m->dyn_name))
                            : "NULL");
  if (split_grad(m))
    cg_buf_printf(c, "  sizeof(%s_grads)};\n", b->model);
  else
    cg_buf_puts(c, "  0};\n");
}
