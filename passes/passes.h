/* passes/passes.h — the pass manager and the passes; the public header of passes/.
 *
 * Every pass is `bool pass_NAME(Graph *, PassCtx *)`, listed once in passes.def. The driver
 * (pipeline.c) derives the entry-point graphs of a Module (forward, train steps) from its
 * model graph, then runs the pipeline on each, verifying after every pass when asked.
 */
#ifndef LATHE_PASSES_PASSES_H
#define LATHE_PASSES_PASSES_H

#include "ir/ir.h"

typedef struct PassCtx {
  Diag *diag;
  int opt_level;          /* 0..3 */
  bool verify;            /* run ir_verify after every pass */
  const char **disabled;  /* pass names not to run */
  int n_disabled;
  const char *dump_after; /* pass name: print the IR after it into dump */
  char *dump;             /* malloc'd IR text captured by dump_after, or NULL */
  bool time_passes;       /* accumulate per-pass times into `timings` */
  double timings[32];     /* seconds per pass, in passes.def order */
  Arena scratch;          /* per-pass scratch memory, reset between passes */
  bool want_grad;         /* also derive a "grad" entry (gradients of steps[0]'s loss) */
  bool want_train;        /* derive train entries from the train block (default true) */
  bool want_eval;         /* derive "evaluate": the outputs and steps[0]'s loss, no update */
} PassCtx;

void pass_ctx_init(PassCtx *c, Diag *d);
void pass_ctx_fini(PassCtx *c);

#define PASS(name, level, desc) bool pass_##name(Graph *g, PassCtx *c);
#include "passes.def"
#undef PASS

/* Derive the entry graphs of m from m->model (forward; one train graph per TrainStep) and
 * run the pipeline on each. Returns false with diagnostics on error. */
bool passes_run_module(Module *m, PassCtx *c);
/* names and descriptions, for --help and --disable checking */
int passes_count(void);
const char *passes_name(int i);
const char *passes_description(int i);

#endif
