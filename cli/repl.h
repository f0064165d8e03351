/* cli/repl.h — private to the REPL (cmd_repl.c, repl_session.c, repl_print.c).
 *
 * A session is source text, not compiled state: definitions (import/const/fn), params (and
 * frozen data tensors), and bindings, in entry order. Each evaluation builds a synthetic model
 * around them (repl_model_text) and compiles it through the public API (lathe/lathe.h), JIT
 * by default. Param values live in the session by name and are copied into every new model,
 * and back after training, so they persist across evaluations.
 */
#ifndef LATHE_CLI_REPL_H
#define LATHE_CLI_REPL_H

#include <stdio.h>

#include "lathe/lathe.h"
#include "runtime/runtime.h"

typedef struct ReplText {
  char *s; /* malloc'd, NUL-terminated */
  size_t len, cap;
} ReplText;

void repl_text_add(ReplText *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void repl_text_free(ReplText *t);

/* Where user text sits in the synthetic model, so diagnostics show the input (repl_diag.c). */
typedef struct ReplMapLine {
  int line;          /* 1-based line of the synthetic model */
  int col_shift;     /* bytes before the user's text on that line */
  char label[80];    /* "<input>" or "<name>" */
  const char *text;  /* the user's text (outlives the map) */
} ReplMapLine;

enum { REPL_MAP_MAX = 256 };
typedef struct ReplMap {
  ReplMapLine lines[REPL_MAP_MAX];
  int n;
} ReplMap;

/* records that the next line appended to t holds `text` after col_shift bytes */
void repl_map_add(ReplMap *map, const ReplText *t, int col_shift, const char *label,
                  const char *text);
/* prints rendered diagnostics of the synthetic model, rewritten onto the mapped inputs */
void repl_print_diags(FILE *out, const ReplMap *map, const char *text);

typedef struct ReplVar {
  char *name; /* the user's name: a param/data tensor or a binding */
  char *text; /* param/data: "TYPE = INIT"; binding: the expression */
  int kind;   /* REPL_PARAM, REPL_DATA, REPL_BINDING */
  /* a data tensor whose axis 0 is the run-time batch (`data x: f32[N, 4]` after
   * `const N = dynamic(max = 64)`, docs/dynamic-batch.md): an input of the synthetic model,
   * called with the rows of its value (zeros at the bound until :set) */
  DType dtype; /* its element type (dyn only) */
  Shape shape; /* its shape at the bound; shape.dyn = k > 0 marks such a var (else 0) */
} ReplVar;

enum { REPL_PARAM, REPL_DATA, REPL_BINDING };

typedef struct ReplSession {
  ReplText defs;        /* import / const / fn, verbatim */
  ReplVar *vars;        /* params, data and bindings, in entry order */
  int n_vars, cap_vars;
  RtTensorSet values;   /* param/data values by model param name ("w.value") */
  RtTensorSet states;   /* optimizer state of the last :train, by name */
  int backend;          /* LATHE_BACKEND_* */
  FILE *out;            /* where values and messages go */
  int depth;            /* :load nesting */
} ReplSession;

void repl_session_init(ReplSession *s, FILE *out);
void repl_session_fini(ReplSession *s);

/* One complete input (a line, or a multi-line fn). Errors are printed and the session is
 * left as it was. Returns false when the user asked to quit. */
bool repl_eval(ReplSession *s, const char *input);
/* braces/parens still open in text (a multi-line input continues while > 0) */
int repl_open_depth(const char *text);

/* evaluation (repl_session.c); each prints its result or its errors to s->out */
bool repl_show(ReplSession *s, const char *expr);
bool repl_define_var(ReplSession *s, const char *name, const char *text, int kind);
bool repl_define_text(ReplSession *s, const char *text); /* import / const / fn */
void repl_reset(ReplSession *s);
/* a file's `model NAME(INPUTS) { BODY }` as data inputs and bindings (repl_model.c) */
bool repl_load_model(ReplSession *s, const char *text);
bool repl_print_ir(ReplSession *s, const char *expr, bool c_source);
bool repl_time(ReplSession *s, const char *expr);
bool repl_grad(ReplSession *s, const char *loss, const char *param);
bool repl_train(ReplSession *s, const char *loss, long steps, const char *optimizer);
bool repl_save(ReplSession *s, const char *path);
bool repl_restore(ReplSession *s, const char *path);
bool repl_set(ReplSession *s, const char *name, const char *path);

/* NumPy-like printing of a tensor: "name: " (if name), dtype, shape, then the values,
 * abbreviated with "..." */
void repl_print_tensor(FILE *f, const char *name, const Tensor *t);

#endif
