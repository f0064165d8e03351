/* driver/driver.h — the one compile driver: a .lathe or .onnx file (or .lathe text) → Module
 * → pass pipeline → C → loaded code (JIT or cc + dlopen), and a loaded model's weights.
 *
 * The layer above runtime/ (DESIGN.md §8): it calls frontend/, import/, passes/, codegen/ and
 * runtime/; the public API (driver/api.c, include/lathe/lathe.h) and the CLI (cli/) call it.
 * Library code: nothing here prints or exits; every failure is a diagnostic in the Diag.
 */
#ifndef LATHE_DRIVER_DRIVER_H
#define LATHE_DRIVER_DRIVER_H

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

enum { DRIVER_MAX_DEFINES = 64, DRIVER_MAX_DISABLED = 32 };

/* What to compile and how; every command that compiles a model fills one. */
typedef struct DriverOptions {
  const char *file; /* the model: FILE.lathe or FILE.onnx (by its extension) */
  Define defines[DRIVER_MAX_DEFINES];
  int n_defines;
  DType dtype;            /* DT_F32, or DT_F64 to compile every float as f64 */
  const char *lib_dir;    /* where `import nn` looks; NULL = found from the installation */
  const char *model_name; /* which `model` of a file with several; NULL = the one its train
                             block names, else the last */
  int opt_level;          /* 0..3 */
  bool line_directives;   /* #line directives in the C */
  const char *disabled[DRIVER_MAX_DISABLED]; /* passes not to run */
  int n_disabled;
  const char *dump_after; /* pass name: capture the IR after it (DriverResult.dump) */
  bool time_passes;       /* record per-pass times (DriverResult.timings) */
  bool want_grad, want_train, want_eval;
  CgTarget target;            /* matmul kernels; 0 = CG_TARGET_NATIVE */
  int threads;                /* OpenMP in large kernels; 1 = none */
  const char *grad_step;      /* the train step "grad" differentiates; NULL = the first */
  const char *onnx_loss;      /* for a .onnx file: the loss of the train block, or NULL */
  const char *onnx_optimizer; /* its optimizer (default adam) */
  int64_t onnx_max_batch;     /* its symbolic batch's bound (--max-batch); 0 = the default, 64 */
  const char *bake;           /* safetensors file built into the C as constants, or NULL */
  double lr;                  /* every train step's learning rate; 0 = the model's */
  double lr_scale;            /* a factor on it (reduce-lr-on-plateau); 0 = none */
  const char *prefix;         /* --prefix: names the C symbols and files; NULL = the model's */
  bool want_split;            /* --split-step: "grad" + "apply" entries (PassCtx.want_split) */
  int64_t buckets;            /* --buckets BYTES: CgOptions.buckets (with --split-step) */
  bool no_tune_cache;         /* --no-tune-cache: kernel schedules from the cost model alone */
  const char *tune_key;       /* lathe tune: the kernel (passes_sched_key) whose schedule is */
  SchedChoice tune_choice;    /*   tune_choice whatever the cache says (tune_key NULL: none) */
} DriverOptions;

void driver_options_init(DriverOptions *o); /* f32, -O2, train entries, one thread */

/* The front half's product. */
typedef struct DriverResult {
  Module *module;      /* after the pass pipeline; NULL on failure */
  RtTensorSet weights; /* an imported .onnx file's initializers (the params); else empty */
  char *dump;          /* the IR after o->dump_after (malloc'd), or NULL */
  double timings[32];  /* seconds per pass in passes.def order, with o->time_passes */
} DriverResult;

void driver_result_fini(DriverResult *r); /* frees all of it, module included */

bool driver_is_onnx(const char *file); /* by the ".onnx" extension */

/* Reads o->file (an ONNX file is imported: its .lathe text, and its initializers into
 * weights, which the caller has initialized) into malloc'd text. */
bool driver_read_source(const DriverOptions *o, char **text, RtTensorSet *weights, Diag *d);

/* Frontend (+ bake) + passes into r->module. text: the source of o->file, or NULL to read
 * it (driver_read_source). The source text stays registered with d for caret lines. */
bool driver_build(const DriverOptions *o, const char *text, DriverResult *r, Diag *d);

/* Turns every PARAM and STATE of m's model into a CONST of its tensor in the safetensors file
 * path; m is left without params, states and train block (driver/bake.c). */
bool driver_bake_weights(Module *m, const char *path, Diag *d);
/* The same from tensors in memory; who and path name them in messages ("--bake", the file) */
bool driver_bake_set(Module *m, const RtTensorSet *w, const char *who, const char *path,
                     Diag *d);

/* Carries out the `distill` statements of m's train steps (driver/distill.c): each teacher
 * (.lathe or .onnx, compiled with o's dtype, defines and lib) is baked with its weights and
 * merged into m->model under the prefix `teacher.`, and the step minimizes the distillation
 * loss. Errors are reported at the statement (and the teacher's own at their locations). */
bool driver_distill(Module *m, const DriverOptions *o, Diag *d);

/* The prefix of every exported name of m's generated C (<prefix>_forward, <prefix>_info) and
 * of its files: o->prefix, else the model's name. Loaders find `<prefix>_info` by it. */
const char *driver_prefix(const Module *m, const DriverOptions *o);

/* C and header text (malloc'd) of m, with o's target, threads, line directives and prefix. */
bool driver_emit(const Module *m, const DriverOptions *o, char **c_text, char **h_text, Diag *d);

/* Copies every param of info from set into params (all must be there) and every state that
 * is there into state (present → exact resume). dtype and shape must match, except that f32
 * and f64 tensors convert to the model's float type. what names the set in messages. */
bool driver_weights_load(const lathe_model_info *info, void *params, void *state,
                         const RtTensorSet *set, const char *what, Diag *d);

/* Adds copies of info's params (and states when with_state) to set; false on out of memory. */
bool driver_weights_set(const lathe_model_info *info, const void *params, const void *state,
                        bool with_state, RtTensorSet *set);

/* A safetensors file of info's params (and states when with_state), written atomically. */
bool driver_weights_save(const lathe_model_info *info, const void *params, const void *state,
                         bool with_state, const char *path, Diag *d);

#endif
