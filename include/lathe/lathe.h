/* lathe/lathe.h — the embedding API: compile a .lathe model in-process and call it.
 *
 *   lathe_options o;
 *   lathe_options_init(&o);
 *   char *err = NULL;
 *   lathe_model *m = lathe_compile_file("mlp.lathe", &o, &err);
 *   if (!m) { fputs(err, stderr); lathe_string_free(err); return 1; }
 *   lathe_tensor x = {"x", LATHE_F32, 2, x_shape, x_data}, probs = {"probs", ...};
 *   if (lathe_call(m, "forward", &x, 1, &probs, 1, NULL) != 0) fputs(lathe_error(m), stderr);
 *   lathe_free(m);
 *
 * A lathe_model owns the compiled code (LLVM JIT, or cc + dlopen), the params and optimizer
 * state (initialized from the seed, or loaded from a safetensors checkpoint) and a workspace.
 * Errors never exit or print: a failed call returns non-zero and lathe_error() holds the
 * diagnostics text (file:line:col, the source line and a caret for model errors).
 * A model is not thread-safe; use one per thread. Link with `pkg-config --libs lathe`.
 */
#ifndef LATHE_LATHE_H
#define LATHE_LATHE_H

#include <stdint.h>

#include "lathe/model_info.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { LATHE_BACKEND_AUTO = 0, LATHE_BACKEND_CC = 1, LATHE_BACKEND_JIT = 2 };

typedef struct lathe_options {
  const char *const *defines; /* "NAME=VALUE" strings overriding `const`s of the model */
  int n_defines;
  int dtype;              /* LATHE_F32 (default) or LATHE_F64: every f32 compiled as f64 */
  int backend;            /* LATHE_BACKEND_AUTO (default): JIT when available, else cc */
  int opt_level;          /* 0..3 (default 2) */
  const char *lib_dir;    /* where `import nn` looks; NULL = the installed library */
  const char *model_name; /* which `model` of a file with several; NULL = the one its train
                           * block names, else the last */
  int want_grad;          /* also derive a "grad" entry (d loss / d params) */
  int want_train;         /* derive train entries from the train block (default 1) */
  uint64_t seed;          /* seed of the params/state initializers (default 0) */
  int threads;            /* OpenMP threads of the large kernels (default 1: none); more
                           * than 1 builds the model with cc -fopenmp, whatever the backend */
  int want_eval;          /* also derive "evaluate" (outputs and loss, no update; for a model
                           * with a train block): what lathe_fit validates with and
                           * lathe_evaluate runs (default 0: inference embedders that take the
                           * first forward-kind entry see no new one) */
  const char *prefix;     /* names every exported symbol and type of the generated C
                           * (lathe_c_source): <prefix>_forward, <prefix>_params,
                           * <PREFIX>_WORKSPACE_BYTES, <prefix>_info; NULL (default) = the
                           * model's name. A C identifier, no keyword, no leading '_' */
  int want_split;         /* also split the train step at the gradient exchange: "grad"
                           * (gradients; updates the batch-norm running statistics) and
                           * "apply" (the optimizer update from given gradients), so that
                           * train == grad then apply; for data-parallel training
                           * (docs/distributed.md). Default 0. */
} lathe_options;

/* A named tensor passed to lathe_call. shape has rank entries; data is C-order, of dtype. */
typedef struct lathe_tensor {
  const char *name;
  int dtype; /* LATHE_F32, ... */
  int rank;
  const int64_t *shape;
  void *data;
} lathe_tensor;

typedef struct lathe_model lathe_model;

void lathe_options_init(lathe_options *o);

/* Compile a model from a file or from source text (name is used in diagnostics). On failure
 * returns NULL and, if errors != NULL, stores malloc'd diagnostics text there. */
lathe_model *lathe_compile_file(const char *path, const lathe_options *o, char **errors);
lathe_model *lathe_compile_string(const char *name, const char *source, const lathe_options *o,
                                  char **errors);
/* Open a shared object built by `lathe build` (libNAME.so): its descriptor, params and state
 * initialized from seed, called through libffi. It has no C source or IR (lathe_c_source and
 * lathe_ir_text return NULL). NULL on failure with the diagnostics in *errors as above. */
lathe_model *lathe_open(const char *so_path, uint64_t seed, char **errors);
void lathe_free(lathe_model *m);
void lathe_string_free(char *s);

/* The descriptor: names, dtypes and shapes of inputs, outputs, params, state; entry points. */
const lathe_model_info *lathe_info(const lathe_model *m);
const char *lathe_backend(const lathe_model *m); /* "jit" or "cc" */
/* A model the JIT compiled (not from its cache) first runs its own code unoptimized while the
 * optimized code compiles on a background thread, then switches to it by itself (the results
 * are the same; LATHE_JIT_TIERED=0: optimized before lathe_compile_* returns). This waits until
 * the optimized code runs: for benchmarks. 0 (at once for cc, a cached model or a model from
 * lathe_open), or -1 when the optimized code failed to compile (the model keeps working). */
int lathe_wait_optimized(lathe_model *m);
/* The diagnostics of the last failed call on m ("" if none). */
const char *lathe_error(const lathe_model *m);

/* Re-initialize params and state from a seed (done once by compile with o->seed). */
void lathe_init(lathe_model *m, uint64_t seed);
/* The storage of a param or state tensor by name ("h1.w"); NULL if there is none. */
void *lathe_tensor_data(lathe_model *m, const char *name, const lathe_tensor_info **info);

/* The params and state buffers (info->params_bytes, info->state_bytes; 64-byte aligned) with
 * each tensor at its info offset: pass them with lathe_info(m) to lathe_fit, lathe_evaluate
 * and lathe_predict of lathe/train.h, which train and evaluate m in place. Never NULL
 * (a model without state has a valid empty buffer). */
void *lathe_params(lathe_model *m);
void *lathe_state(lathe_model *m);

/* Call an entry point ("forward", "train", "grad", ...). Every input of the entry must be in
 * inputs, matched by name with its dtype and shape checked. Outputs given in outputs (by name,
 * checked the same way) are written there; others are computed and dropped. A train entry
 * updates the model's params and state; its loss is stored to *loss if loss != NULL.
 * Returns 0, or -1 with lathe_error(m) set. */
int lathe_call(lathe_model *m, const char *entry, const lathe_tensor *inputs, int n_inputs,
               const lathe_tensor *outputs, int n_outputs, double *loss);

/* safetensors checkpoints, keyed by param/state names. load: every param must be present;
 * state is optional. save: params, and the optimizer state too if with_state. 0 or -1. */
int lathe_load(lathe_model *m, const char *path);
int lathe_save(lathe_model *m, const char *path, int with_state);

/* The generated C, and the IR of an entry after the pass pipeline (malloc'd text; NULL with
 * lathe_error set if there is no such entry; both NULL for a model from lathe_open). Free
 * with lathe_string_free. */
char *lathe_c_source(const lathe_model *m);
char *lathe_ir_text(lathe_model *m, const char *entry);

#ifdef __cplusplus
}
#endif

#endif
