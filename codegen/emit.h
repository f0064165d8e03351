/* codegen/emit.h — the indentation-aware printf-style C emitter (private to codegen/).
 *
 * A CgBuf is a growable NUL-terminated string. A CgEmitter writes one C function (or file
 * section) into two streams, TVM-style: `decl` for local declarations that must come first,
 * `body` for statements; both are indented by the current depth. It also supplies fresh
 * names: every name handed out or claimed is unique until the scope that took it is popped,
 * so kernels can reuse `i0`, `acc` while arguments and tensors keep theirs.
 * Out of memory is sticky (`oom`): writes become no-ops and the caller reports it once.
 */
#ifndef LATHE_CODEGEN_EMIT_H
#define LATHE_CODEGEN_EMIT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct CgBuf {
  char *data; /* NUL-terminated when len > 0; NULL when empty */
  size_t len, cap;
  bool oom; /* an allocation failed; contents are incomplete */
} CgBuf;

void cg_buf_init(CgBuf *b);
void cg_buf_fini(CgBuf *b);
void cg_buf_puts(CgBuf *b, const char *s);
void cg_buf_printf(CgBuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cg_buf_vprintf(CgBuf *b, const char *fmt, va_list ap);
/* the contents as a malloc'd string (never NULL unless out of memory); b is left empty */
char *cg_buf_take(CgBuf *b);

typedef struct CgEmitter {
  CgBuf decl;   /* declarations of the current function */
  CgBuf body;   /* statements */
  int indent;   /* depth of body lines, in 2-space steps */
  char **names; /* names in use, a stack (scopes pop back to a mark) */
  int n_names, cap_names;
  int *scopes; /* n_names at each cg_scope_push */
  int n_scopes, cap_scopes;
  bool oom;
} CgEmitter;

void cg_emitter_init(CgEmitter *e, int indent);
void cg_emitter_fini(CgEmitter *e);
bool cg_emitter_ok(const CgEmitter *e); /* false after any out-of-memory */

/* one body line at the current indentation; the newline is added */
void cg_line(CgEmitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* one body line at column 0 (preprocessor directives) */
void cg_raw(CgEmitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* one line in the declaration stream, at depth 1 (function-local declarations) */
void cg_decl(CgEmitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* `<text> {` then indent; cg_close dedents and writes `}` */
void cg_open(CgEmitter *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cg_close(CgEmitter *e);
void cg_indent(CgEmitter *e);
void cg_dedent(CgEmitter *e);

/* Names. cg_fresh returns `base` if unused, else base_2, base_3...; the string is owned by
 * the emitter and stays valid until its scope is popped. */
const char *cg_fresh(CgEmitter *e, const char *base);
bool cg_name_used(const CgEmitter *e, const char *name);
void cg_scope_push(CgEmitter *e);
void cg_scope_pop(CgEmitter *e);

#endif
