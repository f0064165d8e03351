/* codegen/backend.h — what c_backend.c and c_api.c share (private to codegen/).
 *
 * An EntryPlan is the C-level shape of one entry-point function: its symbol, kind, return
 * type and argument list. It is computed once per entry graph and then used for the header
 * prototype, the definition, the descriptor's args array and the `call` wrapper, so the four
 * can never disagree.
 */
#ifndef LATHE_CODEGEN_BACKEND_H
#define LATHE_CODEGEN_BACKEND_H

#include "lower.h"

typedef struct ArgPlan {
  int role;          /* LATHE_ARG_* of lathe/model_info.h */
  const char *cname; /* C parameter name */
  const char *info;  /* descriptor name: the input/output name */
  DType dtype;       /* INPUT/OUTPUT */
  Shape shape;
  bool is_const; /* const-qualified pointer */
} ArgPlan;

/* a bucket of a split step's gradients (buckets.c) */
typedef struct CgBucket {
  int first;     /* the param of its first gradient (its field in <model>_grads) */
  int next;      /* the param of the next bucket's first gradient, or -1: the last bucket */
  int32_t ready; /* the kernel after which it is final; Graph.n_kernels: the epilogue */
} CgBucket;

typedef struct EntryPlan {
  const Graph *g;
  const char *symbol; /* "mlp_forward" */
  const char *upper;  /* "MLP_FORWARD" */
  int kind;           /* LATHE_ENTRY_* */
  NodeId loss;        /* OUT_LOSS node, or IR_NONE */
  ArgPlan *args;      /* arena */
  int n_args;
  int *output_arg; /* per graph output: its ArgPlan index, or -1 */
  CgBucket *buckets; /* --buckets, the split step's grad: in address order (arena) */
  int n_buckets;
} EntryPlan;

typedef struct Backend {
  const Module *m;
  const CgOptions *opt;
  Diag *diag;
  Arena arena;
  const char *model;        /* the symbol prefix: opt->prefix, else m->name (<model>_... in
                             * codegen/'s comments means <prefix>_...) */
  const char *upper;        /* MODEL */
  const char *c_file;       /* "<model>.c" (for #line) */
  const char **param_field; /* C field names, per param */
  const char **state_field;
  EntryPlan *entries; /* per m->entries */
  CgBuf globals;      /* static constant tables */
  CgBuf funcs;        /* entry-point definitions */
} Backend;

/* the model file as the output names it: its base name (cg_source_path) */
const char *cg_model_file(Backend *b);
/* c_api.c: the header, the init function and the descriptor */
/* "MLP_MAX_N": the macro of a dynamic module's bound (<MODEL>_MAX_<DYNNAME>) */
const char *cg_max_macro(Backend *b);
/* an entry's workspace bytes at the run-time batch `n` (C text) as the header states it:
 * "MLP_FORWARD_WORKSPACE_BYTES" for a static module, "MLP_FORWARD_WORKSPACE_BYTES(n)" */
const char *cg_workspace_macro(Backend *b, const EntryPlan *ep, const char *n);
const char *cg_return_type(const Backend *b, const EntryPlan *ep);
const char *cg_signature(const Backend *b, const EntryPlan *ep);
char *cg_header_text(Backend *b);
void cg_emit_init(Backend *b, CgBuf *out);
/* <model>_cpu_supported(): whether this CPU has the instructions of the target's kernels */
void cg_emit_cpu_check(Backend *b, CgBuf *out);
void cg_emit_descriptor(Backend *b, CgBuf *out);
/* buckets.c: the per-bucket hook (--buckets). The "grad" entry of a split step, else NULL */
const Graph *cg_split_grad(const Module *m);
/* whether g's entry has buckets (its "grad" is the split step's and CgOptions.buckets > 0) */
bool cg_wants_buckets(const Backend *b, const Graph *g);
/* ep->buckets from the storage f assigned (which outputs kernels write directly) */
void cg_plan_buckets(Backend *b, EntryPlan *ep, const CgFunc *f);
/* the hooks->ready calls of the buckets final after `kernel` (n_kernels: the epilogue) */
void cg_emit_ready(Backend *b, CgFunc *f, const EntryPlan *ep, int32_t kernel);
/* the descriptor's lathe_bucket_info table of ep (nothing without buckets) */
void cg_emit_bucket_table(Backend *b, CgBuf *c, const EntryPlan *ep);
/* c_plan.c: the workspace plan of one entry as a header comment table plus a static assert */
void cg_plan_comment(Backend *b, const EntryPlan *ep, CgBuf *h);

#endif
