/* lathe/model_info.h — the descriptor every generated model exports as `<model>_info`.
 *
 * The generated header carries a verbatim copy of these definitions (guarded by
 * LATHE_MODEL_INFO_DEFINED) so standalone output needs no lathe header. Host code (the
 * loader, `lathe run`) reads the descriptor to learn names, dtypes, shapes, offsets and entry
 * points of a model it knows only at run time.
 */
#ifndef LATHE_MODEL_INFO_DEFINED
#define LATHE_MODEL_INFO_DEFINED

#include <stddef.h>
#include <stdint.h>

#define LATHE_MODEL_INFO_VERSION 4

/* dtype codes: same order as the IR's DType */
enum { LATHE_F32 = 0, LATHE_F64 = 1, LATHE_I32 = 2, LATHE_I64 = 3, LATHE_U8 = 4,
       LATHE_I8 = 5 };

/* role of an entry-point argument */
enum {
  LATHE_ARG_PARAMS = 0,    /* pointer to <model>_params (const for inference) */
  LATHE_ARG_STATE = 1,     /* pointer to <model>_state */
  LATHE_ARG_INPUT = 2,     /* const tensor */
  LATHE_ARG_OUTPUT = 3,    /* tensor written by the call */
  LATHE_ARG_WORKSPACE = 4, /* void *, at least workspace_bytes, 64-byte aligned */
  LATHE_ARG_BATCH = 5,     /* const int64_t *: the run-time batch n of a dynamic model, passed
                              by value as the entry's last parameter (docs/dynamic-batch.md) */
  LATHE_ARG_HOOKS = 6      /* const lathe_grad_hooks *, or NULL: the data-parallel transport of
                              an entry with replica sums (after the workspace, before the batch) */
};

/* The caller's data-parallel transport (docs/distributed.md), given to an entry that has an
 * argument of role LATHE_ARG_HOOKS ("grad" of a split step whose model has batch norm: its
 * statistics are sums over the replicas). The entry calls sum_f32 (sum_f64 for an f64 model)
 * in the order of lathe_entry_info.replica_sums, each time with a buffer of that many values
 * to be replaced, in place, by their sum over the replicas (MPI_Allreduce with MPI_SUM and
 * MPI_IN_PLACE), the same on every replica. cotangent is 1 for the sums of the backward pass,
 * 0 for forward statistics. A NULL hooks pointer or function: one replica (the buffer is left
 * as it is). */
typedef struct lathe_grad_hooks {
  void *ctx; /* passed back to every hook */
  void (*sum_f32)(void *ctx, float *buf, size_t count, int cotangent);
  void (*sum_f64)(void *ctx, double *buf, size_t count, int cotangent);
  /* a "grad" compiled with --buckets BYTES: called as soon as the gradients in bytes
   * [offset, offset + bytes) of <model>_grads are final (lathe_entry_info.buckets), so their
   * reduction can start while the backward pass goes on; NULL: not called */
  void (*ready)(void *ctx, size_t offset, size_t bytes);
} lathe_grad_hooks;

/* a bucket of a split step's gradients: a contiguous range of whole gradient tensors of
 * <model>_grads; the buckets of an entry cover every byte of it once, in address order */
typedef struct lathe_bucket_info {
  size_t offset, bytes;
} lathe_bucket_info;

/* kind of entry point */
enum { LATHE_ENTRY_FORWARD = 0, LATHE_ENTRY_TRAIN = 1, LATHE_ENTRY_GRAD = 2,
       LATHE_ENTRY_APPLY = 3 /* "apply": the optimizer update of a split step (--split-step) */ };

typedef struct lathe_tensor_info {
  const char *name;     /* "h1.w" for params, the input/output name otherwise */
  int dtype;            /* LATHE_F32, ... */
  int rank;
  const int64_t *shape; /* rank dims */
  size_t offset;        /* byte offset inside the params/state struct; for the gradient
                         * arguments of a split step (the outputs of "grad", the inputs of
                         * "apply") inside <model>_grads; 0 for other arguments */
  size_t bytes;         /* at the bound, for a dynamic tensor */
  int64_t dyn;          /* 0: static; k >= 1: dim 0 is k * n for the run-time batch n, and
                           shape[0] holds its value at the bound (docs/dynamic-batch.md) */
} lathe_tensor_info;

typedef struct lathe_arg_info {
  int role;                       /* LATHE_ARG_* */
  const lathe_tensor_info *tensor; /* for INPUT/OUTPUT; NULL otherwise */
} lathe_arg_info;

typedef struct lathe_entry_info {
  const char *name;      /* "forward", "train", "train_disc" */
  const char *symbol;    /* "mlp_forward" */
  int kind;              /* LATHE_ENTRY_* */
  int returns_loss;      /* 1: returns the loss as the element type of the model (float) */
  int n_args;
  const lathe_arg_info *args;
  size_t workspace_bytes;
  /* calls the entry point with args[i] pointing at argument i (params, state, tensors,
   * workspace, in the order of `args`); the loss, if any, is stored to *ret (double) */
  void (*call)(void *const *args, double *ret);
  /* the workspace at run-time batch n is workspace_per_n * n + workspace_base bytes
   * (workspace_per_n is 0 for a static model; workspace_bytes is the size at the bound) */
  size_t workspace_base, workspace_per_n;
  /* the sums over the replicas the entry asks of lathe_grad_hooks, in call order: the count
   * of values of each (0 and NULL when it has none). A replica that has no rows to compute
   * on still takes part: it calls the hook with this many zeros, in this order. */
  int n_replica_sums;
  const size_t *replica_sums;
  /* "grad" compiled with --buckets: its buckets (lathe_grad_hooks.ready), else 0 and NULL */
  int n_buckets;
  const lathe_bucket_info *buckets;
} lathe_entry_info;

typedef struct lathe_model_info {
  int version;        /* LATHE_MODEL_INFO_VERSION */
  const char *name;   /* the symbol prefix: this is `<name>_info`, the entry points are
                       * `<name>_forward`, ... (the model's name unless built with --prefix) */
  const char *source; /* the .lathe file it was compiled from */
  size_t params_bytes, state_bytes, workspace_bytes;
  int n_params;
  const lathe_tensor_info *params;
  int n_states;
  const lathe_tensor_info *states;
  int n_entries;
  const lathe_entry_info *entries;
  void (*init)(void *params, void *state, uint64_t seed);
  /* 1 when the CPU running the code has the instructions its target's kernels use, else 0
   * (calling an entry point would then stop on an illegal instruction): ask once, first */
  int (*cpu_supported)(void);
  const char *target; /* what the code was compiled for: "x86-64-v3", "generic", ... */
  /* the run-time batch: entries take an argument of role LATHE_ARG_BATCH, 1 <= n <= dyn_max;
   * 0 and NULL for a static model */
  int64_t dyn_max;
  const char *dyn_name; /* the dimension's name in the source ("N") */
  /* a split train step (--split-step): the size of <model>_grads, the one contiguous region
   * that "grad" writes and "apply" reads (its gradient arguments' offsets are inside it);
   * 0 when the model has no "apply" entry */
  size_t grads_bytes;
} lathe_model_info;

#endif
