/* runtime/runtime.h — host-side runtime: tensor files, datasets, the model loader, the
 * training driver; the public header of runtime/.
 *
 * Every reader validates its input and reports a clear message naming the file (never a
 * crash); every writer writes a temp file in the target directory and renames it.
 */
#ifndef LATHE_RUNTIME_RUNTIME_H
#define LATHE_RUNTIME_RUNTIME_H

#include <stdio.h>

#include "ir/ir.h"
#include "lathe/model_info.h"

/* the one host-side allocation of tensors and workspaces: LATHE_WORKSPACE_ALIGN-aligned (the
 * generated code's rule), its size rounded up to it, zeroed; free() it (runtime/feed.c) */
void *rt_aligned_alloc(size_t bytes);

/* ---- files (file.c) ---- */
bool rt_read_file(const char *path, char **data, size_t *len, Diag *d); /* malloc'd, NUL-term */
bool rt_write_file_atomic(const char *path, const void *data, size_t len, Diag *d);

/* ---- .npy (npy.c): f32, f64, i32, i64, u8; C order, little endian ---- */
bool rt_npy_read(const char *path, Tensor *out, Diag *d);
bool rt_npy_write(const char *path, const Tensor *t, Diag *d);

/* ---- named tensor sets and safetensors (safetensors.c) ---- */
typedef struct RtNamed {
  char *name; /* malloc'd */
  Tensor t;   /* tensor_alloc'd */
} RtNamed;

typedef struct RtTensorSet {
  RtNamed *items;
  int n, cap;
} RtTensorSet;

void rt_set_init(RtTensorSet *s);
void rt_set_fini(RtTensorSet *s);
/* a zeroed tensor named name (replacing any tensor of that name); NULL on out of memory */
Tensor *rt_set_add(RtTensorSet *s, const char *name, DType t, const Shape *shape);
const Tensor *rt_set_find(const RtTensorSet *s, const char *name);
bool rt_safetensors_read(const char *path, RtTensorSet *out, Diag *d);
bool rt_safetensors_write(const char *path, const RtTensorSet *s, Diag *d);

/* ---- IDX datasets (idx.c): plain or .gz ---- */
bool rt_idx_read(const char *path, Tensor *out, Diag *d); /* u8 tensor with the IDX dims */

/* ---- loader (loader.c): build generated C into a shared object and load it ---- */
typedef struct RtModel {
  void *handle;                  /* dlopen handle */
  const lathe_model_info *info;  /* the <prefix>_info descriptor */
  char *dir;                     /* temp build directory we own (removed on close), or NULL */
} RtModel;

/* cc -std=c99 -O3 -shared -fPIC c_path -o so_path -lm; compiler output goes to d on failure */
bool rt_build_shared(const char *c_path, const char *so_path, const char *extra_flags, Diag *d);
/* dlopen so_path and check its descriptor `<prefix>_info` (prefix: of the generated C's
 * symbols, the model's name unless it was compiled with --prefix) */
bool rt_model_open(RtModel *m, const char *so_path, const char *prefix, Diag *d);
/* write c/h texts into a fresh temp dir (as <prefix>.c, .h), build, open; the dir is removed
 * by rt_model_close */
bool rt_model_open_source(RtModel *m, const char *prefix, const char *c_text, const char *h_text,
                          Diag *d);
void rt_model_close(RtModel *m);
/* false, with an error naming the model's target, when the descriptor's cpu_supported() says
 * this CPU cannot run the code (where: the file or "JIT" for the message) */
bool rt_model_check_cpu(const lathe_model_info *info, const char *where, Diag *d);
/* whether generated C asks for OpenMP threads (codegen --threads > 1): build it with -fopenmp */
bool rt_source_threaded(const char *c_text);
const lathe_entry_info *rt_model_entry(const RtModel *m, const char *name);


/* ---- training progress bar (progress.c) ---- */
typedef struct RtProgress {
  FILE *out;           /* where the bar is drawn (stderr in the CLI); NULL = silent */
  bool tty;            /* out is a terminal: redraw in place with '\r' */
  int epoch, epochs;   /* 1-based epoch of total */
  int64_t total, done; /* samples in the epoch / done so far */
  double loss, acc;    /* latest values; acc < 0 = not shown, else a fraction in [0, 1] */
  double t0;           /* rt_progress_now() at start */
  double last_draw;    /* time of the last redraw; -1 = never */
  int last_tenth;      /* not a tty: tenths of the epoch already printed */
} RtProgress;

double rt_progress_now(void); /* monotonic seconds */
void rt_progress_start(RtProgress *p, FILE *out, int epoch, int epochs, int64_t total);
void rt_progress_update(RtProgress *p, int64_t done, double loss, double acc);
void rt_progress_finish(RtProgress *p); /* final line of the epoch, newline-terminated */
/* "epoch 1/3 [=====>    ] 512/60000 loss 0.4312 acc 85.1% 12345 samples/s ETA 0:12" */
void rt_progress_format(const RtProgress *p, double elapsed, char *buf, size_t size);

/* ---- SVG plot of the training curves (plot.c) ---- */
/* n epochs; any series may be NULL; test_acc is a fraction in [0, 1]; written atomically */
bool rt_plot_write(const char *path, const char *title, const double *train_loss,
                   const double *test_loss, const double *test_acc, int n, Diag *d);

/* ---- image grids (image_grid.c) ---- */
/* n gray images of h x w floats (C order) as one PNG, cols per row; values in [lo, hi] map
 * to black..white (clamped) */
bool rt_image_grid_png(const char *path, const float *pix, int64_t n, int64_t h, int64_t w,
                       int64_t cols, float lo, float hi, Diag *d);

#endif
