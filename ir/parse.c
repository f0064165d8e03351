/* ir/parse.c — reads the IR text form written by ir/print.c into a new Module.
 *
 * One function per line kind, the grammar in a comment above each (docs/ir.md has the whole
 * format). Statements are lines: blanks and tabs separate tokens, ';' starts a comment, and
 * '#' starts a node's metadata (binding name, @file:line:col, offset=N). Every node goes
 * through graph_add, so the parsed graph is type-checked, and its printed type must equal the
 * inferred one. The first error is reported at its line:col in the text and the parse stops;
 * nothing partial is returned.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "ir_internal.h"

typedef struct Parser {
  const char *text;
  size_t pos;
  uint32_t line, col; /* of text[pos], 1-based */
  const char *file;   /* for diagnostics */
  Diag *d;
  bool failed; /* an error was reported: stop at the first one */
  Module *m;
  Graph *g; /* the graph being read, once its header is seen */
  int bodies; /* bodies open around the current line, at most IR_TEXT_MAX_BODIES */
} Parser;

/* Nested bodies recurse here and in every walk of a graph's subgraphs (print, verify, free):
 * hostile text must not blow the stack. Scans do not nest in the language, so 16 is ample. */
enum { IR_TEXT_MAX_BODIES = 16 };

static SrcLoc here(const Parser *p) { return (SrcLoc){p->file, p->line, p->col}; }

/* reports at the current position (first error only) and evaluates to false */
#define PARSE_ERROR(p, ...)                                                                    \
  ((p)->failed ? false                                                                         \
               : ((p)->failed = true, IR_ERROR((p)->d, here(p), __VA_ARGS__), false))

static int peek(const Parser *p) { return (unsigned char)p->text[p->pos]; }

static void advance(Parser *p) {
  if (!p->text[p->pos]) return;
  if (p->text[p->pos] == '\n') {
    p->line++;
    p->col = 1;
  } else {
    p->col++;
  }
  p->pos++;
}

static void skip_comment(Parser *p) {
  while (peek(p) && peek(p) != '\n') advance(p);
}

/* blanks and a trailing comment on the current line */
static void skip_ws(Parser *p) {
  for (;;) {
    int c = peek(p);
    if (c == ' ' || c == '\t' || c == '\r') advance(p);
    else if (c == ';') skip_comment(p);
    else return;
  }
}

/* blank lines and comment lines */
static void skip_blank_lines(Parser *p) {
  for (;;) {
    skip_ws(p);
    if (peek(p) != '\n') return;
    advance(p);
  }
}

static bool accept(Parser *p, int c) {
  skip_ws(p);
  if (peek(p) != c) return false;
  advance(p);
  return true;
}

static bool expect(Parser *p, int c, const char *context) {
  if (accept(p, c)) return true;
  if (peek(p) == '\n' || !peek(p)) return PARSE_ERROR(p, "expected '%c' %s before end of line",
                                                      c, context);
  return PARSE_ERROR(p, "expected '%c' %s, found '%c'", c, context, peek(p));
}

static bool expect_eol(Parser *p) {
  skip_ws(p);
  if (!peek(p)) return true;
  if (peek(p) == '\n') {
    advance(p);
    return true;
  }
  return PARSE_ERROR(p, "expected end of line, found '%c'", peek(p));
}

/* name := [A-Za-z_][A-Za-z0-9_.*]* | '"' chars with \" \\ \n \xHH escapes '"' */
static const char *parse_quoted(Parser *p, Arena *a) {
  Arena *tmp = a;
  size_t cap = 32, n = 0;
  char *buf = malloc(cap);
  IR_ASSERT(buf != NULL);
  advance(p); /* opening quote */
  while (peek(p) != '"') {
    int c = peek(p);
    if (!c || c == '\n') {
      free(buf);
      PARSE_ERROR(p, "unterminated string");
      return NULL;
    }
    advance(p);
    if (c == '\\') {
      int e = peek(p);
      advance(p);
      if (e == 'n') c = '\n';
      else if (e == 'x') {
        char hex[3] = {0};
        for (int i = 0; i < 2 && peek(p); i++, advance(p)) hex[i] = (char)peek(p);
        c = (int)strtol(hex, NULL, 16);
      } else c = e;
    }
    if (n + 2 > cap) buf = realloc(buf, cap *= 2);
    IR_ASSERT(buf != NULL);
    buf[n++] = (char)c;
  }
  advance(p);
  const char *s = arena_strndup(tmp, buf, n);
  free(buf);
  return s;
}

/* path := path-chars | quoted name */
static const char *parse_path(Parser *p, Arena *a) {
  skip_ws(p);
  if (peek(p) == '"') return parse_quoted(p, a);
  size_t start = p->pos;
  while (ir_path_char(peek(p))) advance(p);
  if (p->pos == start) {
    PARSE_ERROR(p, "expected a file name");
    return NULL;
  }
  return arena_strndup(a, p->text + start, p->pos - start);
}

static const char *parse_name(Parser *p, Arena *a, const char *what) {
  skip_ws(p);
  if (peek(p) == '"') return parse_quoted(p, a);
  if (!ir_name_char(peek(p), true)) {
    PARSE_ERROR(p, "expected %s", what);
    return NULL;
  }
  size_t start = p->pos;
  while (ir_name_char(peek(p), false)) advance(p);
  return arena_strndup(a, p->text + start, p->pos - start);
}

/* a bare keyword; false (without error) if the next token is not exactly kw */
static bool accept_word(Parser *p, const char *kw) {
  skip_ws(p);
  size_t n = strlen(kw);
  if (strncmp(p->text + p->pos, kw, n) != 0 || ir_name_char(p->text[p->pos + n], false))
    return false;
  for (size_t i = 0; i < n; i++) advance(p);
  return true;
}

static bool expect_word(Parser *p, const char *kw) {
  if (accept_word(p, kw)) return true;
  return PARSE_ERROR(p, "expected '%s'", kw);
}

static bool parse_int(Parser *p, int64_t *out, const char *what) {
  skip_ws(p);
  const char *s = p->text + p->pos;
  char *end;
  if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
    return PARSE_ERROR(p, "expected %s (an integer)", what);
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno) return PARSE_ERROR(p, "%s is out of range", what);
  while (p->text + p->pos < end) advance(p);
  *out = v;
  return true;
}

static bool parse_double(Parser *p, double *out, const char *what) {
  skip_ws(p);
  const char *s = p->text + p->pos;
  char *end;
  bool plausible = strchr("+-.0123456789", *s) != NULL || strncmp(s, "inf", 3) == 0 ||
                   strncmp(s, "nan", 3) == 0;
  double v = plausible && *s ? strtod(s, &end) : 0;
  if (!plausible || !*s || end == s) return PARSE_ERROR(p, "expected %s (a number)", what);
  while (p->text + p->pos < end) advance(p);
  *out = v;
  return true;
}

/* node-ref := '%' integer */
static bool parse_ref(Parser *p, NodeId *out) {
  if (!expect(p, '%', "before a node id")) return false;
  int64_t v;
  if (!parse_int(p, &v, "node id")) return false;
  if (v < 0 || v >= (int64_t)UINT32_MAX) return PARSE_ERROR(p, "node id %lld out of range",
                                                            (long long)v);
  *out = (NodeId)v;
  return true;
}

/* A dynamic first dim: [k] 'n' '<=' bound (docs/dynamic-batch.md), into s->dim[0] and
 * s->dyn; anything else is left for the caller (s->dyn stays 0). */
static bool parse_dyn_dim(Parser *p, Shape *s) {
  skip_ws(p);
  size_t save = p->pos;
  uint32_t line = p->line, col = p->col;
  int64_t k = 1, bound;
  if (peek(p) != 'n') {
    if (!isdigit(peek(p))) return true;
    while (isdigit(peek(p))) advance(p);
    if (peek(p) != 'n') {
      p->pos = save, p->line = line, p->col = col;
      return true;
    }
    k = strtoll(p->text + save, NULL, 10);
  }
  advance(p);
  if (!expect(p, '<', "in a dynamic dimension 'n<=bound'") ||
      !expect(p, '=', "in a dynamic dimension 'n<=bound'") ||
      !parse_int(p, &bound, "the dynamic dimension's bound"))
    return false;
  if (k < 1 || bound < 1 || bound % k != 0)
    return PARSE_ERROR(p, "a dynamic dimension needs k >= 1 and a bound that is a multiple of "
                       "k, got %lldn<=%lld", (long long)k, (long long)bound);
  s->dim[0] = bound;
  s->dyn = k;
  return true;
}

/* type := dtype '[' [dim {',' dim}] ']' */
static bool parse_type(Parser *p, DType *t, Shape *s) {
  skip_ws(p);
  SrcLoc at = here(p);
  char word[16];
  size_t n = 0;
  while (ir_name_char(peek(p), n == 0) && n + 1 < sizeof word) {
    word[n++] = (char)peek(p);
    advance(p);
  }
  word[n] = '\0';
  if (!dtype_from_name(word, t)) {
    p->failed = true;
    IR_ERROR(p->d, at, "expected a dtype (f32, f64, i32, i64, u8), found '%s'", word);
    return false;
  }
  memset(s, 0, sizeof *s);
  if (!expect(p, '[', "to open the shape")) return false;
  if (accept(p, ']')) return true;
  do {
    if (s->rank == IR_MAX_RANK) return PARSE_ERROR(p, "rank exceeds %d", IR_MAX_RANK);
    int64_t dim;
    if (s->rank == 0) {
      if (!parse_dyn_dim(p, s)) return false;
      if (s->dyn) {
        s->rank++;
        continue;
      }
    }
    if (!parse_int(p, &dim, "a dimension")) return false;
    if (dim < 1) return PARSE_ERROR(p, "dimensions must be >= 1, got %lld", (long long)dim);
    s->dim[s->rank++] = dim;
  } while (accept(p, ','));
  return expect(p, ']', "to close the shape");
}

/* offset := integer | integer 'n' '+' integer (a part per unit of the dynamic batch) */
static bool parse_offset_value(Parser *p, int64_t *offset, int64_t *offset_n) {
  if (!offset) return PARSE_ERROR(p, "an offset is not allowed here");
  if (!expect(p, '=', "after 'offset'")) return false;
  if (!parse_int(p, offset, "an offset")) return false;
  if (peek(p) != 'n') return true;
  advance(p);
  *offset_n = *offset;
  return expect(p, '+', "after the offset's part per n") && parse_int(p, offset, "an offset");
}

/* meta := '#' [name] ['@' name ':' line ':' col] ['offset' '=' offset] */
static bool parse_meta(Parser *p, Arena *a, const char **name, SrcLoc *loc, int64_t *offset,
                       int64_t *offset_n) {
  if (!accept(p, '#')) return true;
  skip_ws(p);
  if (peek(p) != '@' && peek(p) != '\n' && peek(p)) {
    const char *word = parse_name(p, a, "a binding name, '@' or 'offset='");
    if (!word) return false;
    skip_ws(p);
    if (strcmp(word, "offset") == 0 && peek(p) == '=')
      return parse_offset_value(p, offset, offset_n);
    if (!name) return PARSE_ERROR(p, "a binding name is not allowed here");
    *name = word;
  }
  if (accept(p, '@')) {
    const char *file = parse_path(p, a);
    int64_t line, col;
    if (!file || !expect(p, ':', "after the file name") || !parse_int(p, &line, "a line") ||
        !expect(p, ':', "after the line") || !parse_int(p, &col, "a column"))
      return false;
    if (line < 0 || col < 0 || line > UINT32_MAX || col > UINT32_MAX)
      return PARSE_ERROR(p, "line or column out of range");
    *loc = (SrcLoc){file, (uint32_t)line, (uint32_t)col};
  }
  if (accept_word(p, "offset")) return parse_offset_value(p, offset, offset_n);
  return true;
}

/* ---- module lines ------------------------------------------------------------------------ */

/* init := '=' init-name ['(' number [',' number] ')'] */
static bool parse_init(Parser *p, InitSpec *init) {
  memset(init, 0, sizeof *init);
  if (!accept(p, '=')) return true;
  skip_ws(p);
  SrcLoc at = here(p);
  Arena scratch;
  arena_init(&scratch);
  const char *kind = parse_name(p, &scratch, "an initializer name");
  bool known = kind && init_from_name(kind, &init->kind);
  if (kind && !known) {
    p->failed = true;
    IR_ERROR(p->d, at, "unknown initializer '%s'", kind);
  }
  arena_fini(&scratch);
  if (!known) return false;
  int want = init->kind == INIT_CONSTANT ? 1
             : init->kind == INIT_UNIFORM || init->kind == INIT_NORMAL ? 2 : 0;
  if (want == 0) return true;
  if (!expect(p, '(', "after the initializer") || !parse_double(p, &init->a, "an argument"))
    return false;
  if (want == 2 && (!expect(p, ',', "between the arguments") ||
                    !parse_double(p, &init->b, "an argument")))
    return false;
  return expect(p, ')', "after the initializer arguments");
}

/* dynamic := 'dynamic' name 'max' '=' integer: the module's dynamic dimension */
static bool parse_dynamic(Parser *p) {
  const char *name = parse_name(p, &p->m->arena, "the dynamic dimension's name");
  int64_t max;
  if (!name || !expect_word(p, "max") || !expect(p, '=', "after 'max'") ||
      !parse_int(p, &max, "the bound"))
    return false;
  if (max < 1) return PARSE_ERROR(p, "the bound must be >= 1, got %lld", (long long)max);
  p->m->dyn_name = name;
  p->m->dyn_max = max;
  return expect_eol(p);
}

/* decl := ('input' | 'param' | 'state') name ':' type [init] [meta] */
static bool parse_decl(Parser *p, OpKind kind) {
  const char *name = parse_name(p, &p->m->arena, "a declaration name");
  DType t;
  Shape s;
  InitSpec init;
  SrcLoc loc = {NULL, 0, 0};
  if (!name || !expect(p, ':', "after the declaration name") || !parse_type(p, &t, &s))
    return false;
  skip_ws(p);
  if (kind == OP_INPUT && peek(p) == '=') return PARSE_ERROR(p, "inputs have no initializer");
  if (!parse_init(p, &init) || !parse_meta(p, &p->m->arena, NULL, &loc, NULL, NULL)) return false;
  if (kind == OP_INPUT) module_add_input(p->m, name, t, &s, loc);
  else if (kind == OP_PARAM) module_add_param(p->m, name, t, &s, init, loc);
  else module_add_state(p->m, name, t, &s, init, loc);
  return expect_eol(p);
}

/* name-list := '[' name {',' name} ']' */
static bool parse_globs(Parser *p, TrainStep *s) {
  const char *globs[64];
  if (!expect(p, '[', "to open the parameter list")) return false;
  do {
    if (s->n_globs == 64) return PARSE_ERROR(p, "too many parameter patterns (max 64)");
    if (!(globs[s->n_globs] = parse_name(p, &p->m->arena, "a parameter pattern"))) return false;
    s->n_globs++;
  } while (accept(p, ','));
  s->param_globs = arena_alloc(&p->m->arena, (size_t)s->n_globs * sizeof *s->param_globs);
  memcpy(s->param_globs, globs, (size_t)s->n_globs * sizeof *globs);
  return expect(p, ']', "to close the parameter list");
}

/* optimizer := 'optimizer' name '(' [name '=' number {',' name '=' number}] ')' */
static bool parse_optimizer(Parser *p, TrainStep *s) {
  OptimArg args[32];
  if (!(s->optimizer = parse_name(p, &p->m->arena, "an optimizer name"))) return false;
  if (!expect(p, '(', "after the optimizer name")) return false;
  if (!accept(p, ')')) {
    do {
      if (s->n_optim_args == 32) return PARSE_ERROR(p, "too many optimizer arguments");
      OptimArg *a = &args[s->n_optim_args++];
      a->loc = (SrcLoc){NULL, 0, 0};
      if (!(a->name = parse_name(p, &p->m->arena, "an optimizer argument")) ||
          !expect(p, '=', "after the argument name") ||
          !parse_double(p, &a->value, "the argument value"))
        return false;
    } while (accept(p, ','));
    if (!expect(p, ')', "to close the optimizer arguments")) return false;
  }
  s->optim_args = arena_alloc(&p->m->arena, (size_t)(s->n_optim_args + 1) * sizeof *args);
  memcpy(s->optim_args, args, (size_t)s->n_optim_args * sizeof *args);
  return true;
}

/* step := 'train' ['step' name ':'] 'minimize' name [node-ref] ['params' name-list]
 *         ['optimizer' optimizer] [meta] */
static bool parse_step(Parser *p) {
  TrainStep *s = module_add_step(p->m);
  if (accept_word(p, "step")) {
    if (!(s->name = parse_name(p, &p->m->arena, "a step name")) ||
        !expect(p, ':', "after the step name"))
      return false;
  }
  if (!expect_word(p, "minimize")) return false;
  if (!(s->loss = parse_name(p, &p->m->arena, "the loss binding"))) return false;
  skip_ws(p);
  if (peek(p) == '%' && !parse_ref(p, &s->loss_node)) return false;
  if (accept_word(p, "params") && !parse_globs(p, s)) return false;
  if (accept_word(p, "optimizer") && !parse_optimizer(p, s)) return false;
  if (!parse_meta(p, &p->m->arena, NULL, &s->loc, NULL, NULL)) return false;
  return expect_eol(p);
}

/* ---- graph lines ------------------------------------------------------------------------- */

/* number := an integer | a decimal, exponent, inf or nan number as strtod reads it; whether it
 * was written as an integer (then exactly, in v->i) is recorded for ir/attr.c */
static bool parse_number(Parser *p, IrAttrValue *v, const char *what) {
  skip_ws(p);
  const char *s = p->text + p->pos;
  SrcLoc at = here(p);
  if (!parse_double(p, &v->d, what)) return false;
  size_t len = (size_t)(p->text + p->pos - s), k = *s == '-';
  while (k < len && s[k] >= '0' && s[k] <= '9')
    k++;
  v->kind = IR_ATTR_NUMBER;
  v->loc = at;
  v->is_int = k == len && len > (size_t)(*s == '-');
  if (!v->is_int) return true;
  errno = 0;
  v->i = strtoll(s, NULL, 10);
  if (!errno) return true;
  p->failed = true;
  IR_ERROR(p->d, at, "%s is out of range", what);
  return false;
}

/* list := '[' [number {',' number}] ']', its elements in the arena a */
static bool parse_number_list(Parser *p, Arena *a, IrAttrValue *v) {
  size_t cap = 16, n = 0;
  double *nums = arena_alloc(a, cap * sizeof *nums);
  int64_t *ints = arena_alloc(a, cap * sizeof *ints);
  v->kind = IR_ATTR_LIST;
  v->is_int = true;
  if (!expect(p, '[', "to open the list")) return false;
  if (!accept(p, ']')) {
    do {
      if (n == cap) {
        double *more = arena_alloc(a, 2 * cap * sizeof *nums);
        int64_t *more_ints = arena_alloc(a, 2 * cap * sizeof *ints);
        memcpy(more, nums, cap * sizeof *nums);
        memcpy(more_ints, ints, cap * sizeof *ints);
        nums = more, ints = more_ints, cap *= 2;
      }
      IrAttrValue e;
      memset(&e, 0, sizeof e);
      if (!parse_number(p, &e, "a list element")) return false;
      nums[n] = e.d, ints[n] = e.i, v->is_int = v->is_int && e.is_int, n++;
    } while (accept(p, ','));
    if (!expect(p, ']', "to close the list")) return false;
  }
  v->n = (int64_t)n, v->nums = nums, v->ints = ints;
  return true;
}

/* value := list | number | name ; what it means is ir/attr.c's to say */
static bool parse_value(Parser *p, Arena *a, IrAttrValue *v, const char *what) {
  skip_ws(p);
  memset(v, 0, sizeof *v);
  v->loc = here(p);
  int c = peek(p);
  const char *s = p->text + p->pos;
  if (c == '[') return parse_number_list(p, a, v);
  if ((c && strchr("+-.0123456789", c)) || strncmp(s, "inf", 3) == 0 || strncmp(s, "nan", 3) == 0)
    return parse_number(p, v, what);
  if (c != '"' && !ir_name_char(c, true))
    return PARSE_ERROR(p, "expected %s (a number, a name or a list)", what);
  v->kind = IR_ATTR_WORD;
  return (v->word = parse_name(p, a, what)) != NULL;
}

/* attrs := '{' attr {',' attr} '}' ; attr := name ['=' value] (the '{' already read); which
 * keys an op takes and what their values mean is checked by ir_attr_read */
static bool parse_attrs(Parser *p, Arena *a, IrAttrText *t) {
  do {
    if (t->n == IR_ATTR_MAX_ENTRIES)
      return PARSE_ERROR(p, "more than %d attributes", IR_ATTR_MAX_ENTRIES);
    IrAttrEntry *e = &t->entry[t->n++];
    memset(e, 0, sizeof *e);
    skip_ws(p);
    e->value.loc = here(p);
    e->value.kind = IR_ATTR_FLAG;
    if (!(e->key = parse_name(p, a, "an attribute name"))) return false;
    if (accept(p, '=') && !parse_value(p, a, &e->value, "an attribute value")) return false;
  } while (accept(p, ','));
  return expect(p, '}', "to close the attributes");
}

/* operands := [value] [node-ref {',' node-ref}]: the attribute operand (a source's index, a
 * constant's values) of an op that has one (ir_attr_has_operand), else the inputs */
static bool parse_operands(Parser *p, Arena *a, OpKind op, NodeId *in, int *n_in, IrAttrText *t) {
  if (ir_attr_has_operand(op)) {
    t->has_operand = true;
    return parse_value(p, a, &t->operand, "the operand");
  }
  skip_ws(p);
  if (peek(p) != '%') return true; /* no operands: graph_add reports the arity */
  do {
    if (*n_in == IR_MAX_INPUTS) return PARSE_ERROR(p, "more than %d operands", IR_MAX_INPUTS);
    if (!parse_ref(p, &in[(*n_in)++])) return false;
  } while (accept(p, ','));
  return true;
}

/* checks the written type against the inferred one and attaches the metadata */
static bool finish_node(Parser *p, NodeId id, DType t, const Shape *s, SrcLoc at) {
  Node *n = graph_node(p->g, id);
  if (n->dtype != t || !shape_equal(&n->shape, s)) {
    char a[200], b[200];
    p->failed = true;
    IR_ERROR(p->d, at, "%s: written type %s%s does not match the inferred %s%s",
             ir_ops[n->op].name, dtype_name(t), shape_str(s, a, sizeof a),
             dtype_name(n->dtype), shape_str(&n->shape, b, sizeof b));
    return false;
  }
  n->loc = (SrcLoc){NULL, 0, 0}; /* graph_add had the text position, for its diagnostics */
  return parse_meta(p, &p->g->arena, &n->name, &n->loc, &n->offset, &n->offset_n) && expect_eol(p);
}

/* node := node-ref '=' op operands [attrs] ':' type [meta]; a, a scratch arena, holds the
 * text of the operand and the attributes until they are read into the node */
static bool parse_node_in(Parser *p, Arena *a) {
  NodeId id;
  if (!parse_ref(p, &id)) return false;
  if (id != p->g->n_nodes)
    return PARSE_ERROR(p, "expected node %%%u next, found %%%u", (unsigned)p->g->n_nodes,
                       (unsigned)id);
  if (!expect(p, '=', "after the node id")) return false;
  skip_ws(p);
  SrcLoc op_at = here(p);
  const char *opname = parse_name(p, a, "an op name");
  OpKind op = OP_COUNT;
  if (!opname) return false;
  if (!op_from_name(opname, &op)) {
    p->failed = true;
    IR_ERROR(p->d, op_at, "unknown op '%s'", opname);
    return false;
  }
  NodeId in[IR_MAX_INPUTS];
  int n_in = 0;
  IrAttrText text;
  memset(&text, 0, sizeof text);
  if (!parse_operands(p, a, op, in, &n_in, &text)) return false;
  if (accept(p, '{') && !parse_attrs(p, a, &text)) return false;
  DType t;
  Shape s;
  if (!expect(p, ':', "before the node's type") || !parse_type(p, &t, &s)) return false;
  IrAttrRead r = {op, t, &s, here(p), &p->g->arena, p->d};
  NodeAttr attr;
  if (!ir_attr_read(&r, &text, &attr)) {
    p->failed = true;
    return false;
  }
  NodeId got = graph_add(p->g, op, in, n_in, &attr, op_at, p->d);
  if (got == IR_NONE) {
    p->failed = true;
    return false;
  }
  return finish_node(p, got, t, &s, op_at);
}

static bool parse_node(Parser *p) {
  Arena scratch;
  arena_init(&scratch);
  bool ok = parse_node_in(p, &scratch);
  arena_fini(&scratch);
  return ok;
}

/* output := 'output' name '=' node-ref kind [target] ['inference'] */
static bool parse_output(Parser *p) {
  const char *name = parse_name(p, &p->g->arena, "an output name");
  NodeId node;
  if (!name || !expect(p, '=', "after the output name")) return false;
  SrcLoc ref_at = (skip_ws(p), here(p));
  if (!parse_ref(p, &node)) return false;
  if (node >= p->g->n_nodes) {
    p->failed = true;
    IR_ERROR(p->d, ref_at, "output '%s' refers to %%%u, which does not exist", name,
             (unsigned)node);
    return false;
  }
  int kind = 0;
  while (kind < OUT_KIND_COUNT && !accept_word(p, ir_output_kind_names[kind])) kind++;
  if (kind == OUT_KIND_COUNT)
    return PARSE_ERROR(p, "expected an output kind (value, loss, param_update, state_update, "
                          "grad)");
  int64_t target = -1;
  skip_ws(p);
  if ((peek(p) >= '0' && peek(p) <= '9') || peek(p) == '-') {
    if (!parse_int(p, &target, "an output target")) return false;
    if (target < -1 || target > INT32_MAX) return PARSE_ERROR(p, "target out of range");
  }
  bool inference = accept_word(p, "inference");
  if (inference && kind != OUT_STATE_UPDATE)
    return PARSE_ERROR(p, "only a state_update output can be 'inference'");
  graph_add_output(p->g, name, node, (OutputKind)kind, (int32_t)target);
  p->g->outputs[p->g->n_outputs - 1].inference = inference;
  return expect_eol(p);
}

static bool parse_graph_lines(Parser *p);

/* body := 'body' integer '{' EOL {node | output | body} '}': the next subgraph of the graph */
static bool parse_body(Parser *p) {
  Graph *parent = p->g;
  int64_t idx;
  if (p->bodies == IR_TEXT_MAX_BODIES)
    return PARSE_ERROR(p, "bodies nested too deeply (limit %d)", IR_TEXT_MAX_BODIES);
  if (!parse_int(p, &idx, "a body index")) return false;
  if (idx != parent->n_subgraphs)
    return PARSE_ERROR(p, "expected body %d next", parent->n_subgraphs);
  if (!expect(p, '{', "to open the body") || !expect_eol(p)) return false;
  p->g = graph_new(p->m, "body");
  graph_add_subgraph(parent, p->g);
  p->bodies++;
  bool ok = parse_graph_lines(p);
  p->bodies--;
  p->g = parent;
  return ok;
}

/* graph := 'graph' name ['workspace' '=' integer] '{' EOL {node | output | body} '}' */
static bool parse_graph(Parser *p) {
  Arena scratch;
  arena_init(&scratch);
  const char *name = parse_name(p, &scratch, "a graph name");
  if (name) p->g = p->m->model = graph_new(p->m, name);
  arena_fini(&scratch);
  if (!name) return false;
  if (accept_word(p, "workspace") &&
      (!expect(p, '=', "after 'workspace'") ||
       !parse_int(p, &p->g->workspace_bytes, "a workspace size")))
    return false;
  if (!expect(p, '{', "to open the graph") || !expect_eol(p)) return false;
  return parse_graph_lines(p);
}

static bool parse_graph_lines(Parser *p) {
  for (;;) {
    skip_blank_lines(p);
    if (accept(p, '}')) return expect_eol(p);
    if (!peek(p)) return PARSE_ERROR(p, "expected '}' to close the graph");
    bool ok = peek(p) == '%' ? parse_node(p)
              : accept_word(p, "output") ? parse_output(p)
              : accept_word(p, "body")   ? parse_body(p)
                                         : PARSE_ERROR(p, "expected a node, 'output' or '}'");
    if (!ok) return false;
  }
}

/* text := 'module' name EOL ['source' name EOL] {decl | step} graph */
static bool parse_text(Parser *p) {
  skip_blank_lines(p);
  if (!expect_word(p, "module")) return false;
  const char *name = parse_name(p, &p->m->arena, "a module name");
  if (!name || !expect_eol(p)) return false;
  p->m->name = name;
  for (;;) {
    skip_blank_lines(p);
    bool ok;
    if (accept_word(p, "source"))
      ok = (p->m->source_file = parse_path(p, &p->m->arena)) && expect_eol(p);
    else if (accept_word(p, "dynamic")) ok = parse_dynamic(p);
    else if (accept_word(p, "input")) ok = parse_decl(p, OP_INPUT);
    else if (accept_word(p, "param")) ok = parse_decl(p, OP_PARAM);
    else if (accept_word(p, "state")) ok = parse_decl(p, OP_STATE);
    else if (accept_word(p, "train")) ok = parse_step(p);
    else if (accept_word(p, "graph")) break;
    else ok = PARSE_ERROR(p, "expected input, param, state, train or graph");
    if (!ok) return false;
  }
  if (!parse_graph(p)) return false;
  skip_blank_lines(p);
  if (peek(p)) return PARSE_ERROR(p, "unexpected text after the graph");
  return true;
}

Module *ir_parse(const char *text, const char *filename, Diag *d) {
  Parser p;
  memset(&p, 0, sizeof p);
  p.text = text;
  p.line = p.col = 1;
  p.file = filename ? filename : "<ir>";
  p.d = d;
  p.m = module_new("module");
  if (parse_text(&p)) return p.m;
  if (!p.failed) IR_ERROR(d, here(&p), "malformed IR text");
  module_free(p.m);
  return NULL;
}
