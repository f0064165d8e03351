/* codegen/emit.c — growable strings and the indentation-aware emitter (see emit.h).
 *
 * Invariants: a CgBuf's data is NUL-terminated whenever len > 0; once `oom` is set nothing
 * more is appended. Names form a stack; scope marks index into it.
 */
#include "emit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cg_buf_init(CgBuf *b) {
  memset(b, 0, sizeof *b);
}

void cg_buf_fini(CgBuf *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

static bool buf_reserve(CgBuf *b, size_t extra) {
  if (b->oom) return false;
  if (b->len + extra + 1 <= b->cap) return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1)
    cap *= 2;
  char *grown = realloc(b->data, cap);
  if (!grown) {
    b->oom = true;
    return false;
  }
  b->data = grown;
  b->cap = cap;
  return true;
}

void cg_buf_puts(CgBuf *b, const char *s) {
  size_t n = strlen(s);
  if (!buf_reserve(b, n)) return;
  memcpy(b->data + b->len, s, n + 1);
  b->len += n;
}

void cg_buf_vprintf(CgBuf *b, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(NULL, 0, fmt, copy);
  va_end(copy);
  if (n < 0) {
    b->oom = true;
    return;
  }
  if (!buf_reserve(b, (size_t)n)) return;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void cg_buf_printf(CgBuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cg_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *cg_buf_take(CgBuf *b) {
  char *s = b->data;
  if (!s && !b->oom) s = calloc(1, 1);
  if (b->oom) {
    free(s);
    s = NULL;
  }
  memset(b, 0, sizeof *b);
  return s;
}

void cg_emitter_init(CgEmitter *e, int indent) {
  memset(e, 0, sizeof *e);
  e->indent = indent;
}

void cg_emitter_fini(CgEmitter *e) {
  cg_buf_fini(&e->decl);
  cg_buf_fini(&e->body);
  for (int i = 0; i < e->n_names; i++)
    free(e->names[i]);
  free(e->names);
  free(e->scopes);
  memset(e, 0, sizeof *e);
}

bool cg_emitter_ok(const CgEmitter *e) {
  return !e->oom && !e->decl.oom && !e->body.oom;
}

static void put_indent(CgBuf *b, int depth) {
  for (int i = 0; i < depth; i++)
    cg_buf_puts(b, "  ");
}

static void vline(CgBuf *b, int depth, const char *fmt, va_list ap) {
  put_indent(b, depth);
  cg_buf_vprintf(b, fmt, ap);
  cg_buf_puts(b, "\n");
}

void cg_line(CgEmitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(&e->body, e->indent, fmt, ap);
  va_end(ap);
}

void cg_raw(CgEmitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(&e->body, 0, fmt, ap);
  va_end(ap);
}

void cg_decl(CgEmitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(&e->decl, 1, fmt, ap);
  va_end(ap);
}

void cg_open(CgEmitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  put_indent(&e->body, e->indent);
  cg_buf_vprintf(&e->body, fmt, ap);
  cg_buf_puts(&e->body, " {\n");
  va_end(ap);
  e->indent++;
}

void cg_close(CgEmitter *e) {
  cg_dedent(e);
  cg_line(e, "}");
}

void cg_indent(CgEmitter *e) {
  e->indent++;
}

void cg_dedent(CgEmitter *e) {
  if (e->indent > 0) e->indent--;
}

bool cg_name_used(const CgEmitter *e, const char *name) {
  for (int i = 0; i < e->n_names; i++)
    if (strcmp(e->names[i], name) == 0) return true;
  return false;
}

static const char *claim(CgEmitter *e, const char *name) {
  if (e->n_names == e->cap_names) {
    int cap = e->cap_names ? 2 * e->cap_names : 32;
    char **grown = realloc(e->names, (size_t)cap * sizeof *grown);
    if (!grown) {
      e->oom = true;
      return "oom_";
    }
    e->names = grown;
    e->cap_names = cap;
  }
  size_t n = strlen(name);
  char *copy = malloc(n + 1);
  if (!copy) {
    e->oom = true;
    return "oom_";
  }
  memcpy(copy, name, n + 1);
  e->names[e->n_names++] = copy;
  return copy;
}

const char *cg_fresh(CgEmitter *e, const char *base) {
  if (!cg_name_used(e, base)) return claim(e, base);
  size_t n = strlen(base) + 24;
  char *tmp = malloc(n);
  if (!tmp) {
    e->oom = true;
    return "oom_";
  }
  for (int k = 2;; k++) {
    snprintf(tmp, n, "%s_%d", base, k);
    if (!cg_name_used(e, tmp)) break;
  }
  const char *name = claim(e, tmp);
  free(tmp);
  return name;
}

void cg_scope_push(CgEmitter *e) {
  if (e->n_scopes == e->cap_scopes) {
    int cap = e->cap_scopes ? 2 * e->cap_scopes : 8;
    int *grown = realloc(e->scopes, (size_t)cap * sizeof *grown);
    if (!grown) {
      e->oom = true;
      return;
    }
    e->scopes = grown;
    e->cap_scopes = cap;
  }
  e->scopes[e->n_scopes++] = e->n_names;
}

void cg_scope_pop(CgEmitter *e) {
  if (e->n_scopes == 0) return;
  int mark = e->scopes[--e->n_scopes];
  while (e->n_names > mark)
    free(e->names[--e->n_names]);
}
