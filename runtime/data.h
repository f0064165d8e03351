/* runtime/data.h — the dataset behind lathe/train.h's lathe_dataset, and its readers; private to
 * the runtime and the CLI.
 *
 * A dataset is a view (a list of rows, or all of them) of a shared, reference-counted store of
 * named arrays. Every array of a store has the same number of samples; sample i of array a
 * starts at data + i * row_bytes. Readers fill a store and report errors in a Diag naming the
 * file (and row for CSV); they never leave a partial dataset behind.
 */
#ifndef LATHE_RUNTIME_DATA_H
#define LATHE_RUNTIME_DATA_H

#include "lathe/train.h"
#include "rt_internal.h"

typedef struct RtArray {
  char *name; /* binds to the model input of this name */
  char *file; /* where it came from, for messages */
  DType dtype;
  Shape sample;              /* per-sample shape (rank 0: a scalar per sample) */
  int64_t per;               /* values per sample */
  size_t row_bytes;          /* per * dtype size */
  int64_t n;                 /* samples */
  const unsigned char *data; /* n rows, C order: points into owned or map */
  Tensor owned;              /* storage when read into memory */
  void *map;                 /* storage when memory-mapped (a whole .npy file), or NULL */
  size_t map_len;
} RtArray;

typedef struct RtStore {
  RtArray *arrays;
  int n_arrays, cap;
  int refs;       /* views sharing it */
  char **classes; /* names of class ids (CSV string labels), n_classes entries, or NULL */
  int n_classes;
  int class_array; /* with classes from a CSV's string target: the array of their ids, or -1 */
  int64_t image_h, image_w; /* samples are h x w gray images (fashion-mnist), else 0 */
  struct RtVocab *vocab;    /* text=FILE: the byte vocabulary of its ids, else NULL */
} RtStore;

struct lathe_dataset {
  RtStore *store;
  int64_t n;     /* samples in this view */
  int64_t *rows; /* store row of sample i; NULL = the identity */
  char *source;  /* the spec it was opened from, for messages */
};

/* ---- the store and views (data.c) ---- */
lathe_dataset *rt_data_new(const char *source);
/* adds an array (taking ownership of *a's storage, zeroed on return); its sample count must
 * equal the others' (an error naming both files otherwise) */
bool rt_data_add(lathe_dataset *ds, RtArray *a, Diag *d);
void rt_array_fini(RtArray *a);
/* array a as a lathe_array_info */
lathe_array_info rt_array_info(const RtArray *a);
int rt_data_find(const lathe_dataset *ds, const char *name); /* array index or -1 */
static inline int64_t rt_data_row(const lathe_dataset *ds, int64_t i) {
  return ds->rows ? ds->rows[i] : i;
}
static inline const void *rt_data_at(const lathe_dataset *ds, int a, int64_t i) {
  const RtArray *ar = &ds->store->arrays[a];
  return ar->data + (size_t)rt_data_row(ds, i) * ar->row_bytes;
}
/* a view of ds: rows[0..n) index ds's samples (copied) */
lathe_dataset *rt_data_view(const lathe_dataset *ds, const int64_t *rows, int64_t n);
/* opens spec (see lathe/train.h), checks that float arrays are finite and n > 0 */
lathe_dataset *rt_data_open(const char *spec, const lathe_data_options *o, Diag *d);
/* every float value finite: else an error naming the array's file, sample and position */
bool rt_data_check_finite(const lathe_dataset *ds, Diag *d);

/* ---- readers: each adds arrays to ds ---- */
/* .npy (data_npy.c): memory-mapped; the array is named after the file's base name */
bool rt_data_read_npy(lathe_dataset *ds, const char *path, Diag *d);
bool rt_data_read_npy_dir(lathe_dataset *ds, const char *dir, Diag *d);
bool rt_data_read_npz(lathe_dataset *ds, const char *path, Diag *d); /* via libzip */
bool rt_data_read_safetensors(lathe_dataset *ds, const char *path, Diag *d);
/* parses a .npy image in memory (name for messages): dtype, shape and the data's offset;
 * checks that len is exactly header + data */
bool rt_npy_parse(const char *name, const unsigned char *buf, size_t len, DType *dtype,
                  Shape *shape, size_t *data_offset, Diag *d);
/* Class names that carry over from the training file (data_csv.c): rt_classes_read reads
 * CKPT.classes (one name per line); rt_data_use_classes re-numbers ds's string labels as
 * positions in names (a label not among them is an error naming ds's file and from) and makes
 * names ds's class names, so that a file with fewer classes, or none (prediction), has the
 * ids and names of training. */
bool rt_classes_read(const char *path, char ***names, int *n, Diag *d);
void rt_classes_free(char **names, int n);
bool rt_data_use_classes(lathe_dataset *ds, char *const *names, int n, const char *from,
                         Diag *d);
/* CSV/TSV with a header row (data_csv.c); the delimiter is a tab for .tsv, else ',' */
bool rt_data_read_csv(lathe_dataset *ds, const char *path, const lathe_data_options *o, Diag *d);
/* parses CSV text already in memory (name for messages); what rt_data_read_csv does after
 * reading the file, and what the fuzz target drives */
bool rt_data_parse_csv(lathe_dataset *ds, const char *name, const char *text, size_t len,
                       char delimiter, const lathe_data_options *o, Diag *d);
/* DIR/<class>/NAME.png|jpg (data_image.c): "x" f32 [C, H, W] in [0, 1], "label" i32 */
bool rt_data_is_image_folder(const char *dir); /* DIR has subdirectories */
bool rt_data_read_image_folder(lathe_dataset *ds, const char *dir, const lathe_data_options *o,
                               Diag *d);
/* fashion-mnist[=DIR] (dataset.c) and reverse|sort[=LEN,VOCAB] (data_seq.c) */
bool rt_data_read_fashion_mnist(lathe_dataset *ds, const char *spec, bool test_split, Diag *d);
bool rt_data_is_seq_task(const char *spec);
bool rt_data_read_seq_task(lathe_dataset *ds, const char *spec, bool test_split, uint64_t seed,
                           Diag *d);

/* Character-level text, text=FILE (data_text.c; docs/gpt.md, docs/training.md): windows of
 * o->seq_len + 1 bytes every seq_len / 2 bytes, arrays "x" and "target" (i32 [T]: the ids of
 * the window's first and last T bytes); o->test_split takes the last 10% of the file, else
 * the first 90%. The vocabulary (the file's sorted distinct bytes, at most o->vocab_max, or
 * 256 when that is 0) becomes ds's store->vocab. Errors name the file and what was expected:
 * a missing or empty file, a split without a window of T + 1 bytes, too many distinct bytes. */
bool rt_data_is_text(const char *spec); /* "text=..." */
bool rt_data_read_text(lathe_dataset *ds, const char *path, const lathe_data_options *o, Diag *d);
/* the same on text in memory (name for messages): what the fuzz target drives */
bool rt_data_parse_text(lathe_dataset *ds, const char *name, const unsigned char *text, size_t len,
                        const lathe_data_options *o, Diag *d);

/* A byte vocabulary: ids 0..n-1 stand for n distinct bytes in ascending order. The one of
 * training is saved beside the checkpoint as CKPT.vocab (rt_vocab_path): its n bytes in id
 * order, nothing else. `lathe eval`, `predict` and `generate` read it back, so ids never
 * depend on another file:
 *
 *   RtVocab v;
 *   char path[4096];
 *   rt_vocab_path(path, sizeof path, ckpt);
 *   if (!rt_vocab_read(&v, path, d)) ...;                 // a missing or malformed file: d
 *   int32_t ids[64];
 *   if (!rt_vocab_encode(&v, "--prompt", text, len, ids, d)) ...;  // a byte not in v: d
 *   putchar(rt_vocab_decode(&v, next_id));                // -1 for an id out of range
 *
 * A fixed-size value: no allocation, nothing to free. */
typedef struct RtVocab {
  int n;                   /* ids 0..n-1, 1 <= n <= 256 (0 for an empty text) */
  unsigned char byte[256]; /* byte[k]: the byte of id k, ascending */
  int16_t id[256];         /* id[b]: the id of byte b, or -1 when b is not in the vocabulary */
} RtVocab;

void rt_vocab_of_text(RtVocab *v, const unsigned char *text, size_t len); /* its sorted bytes */
/* bytes as read from a CKPT.vocab (name for messages): 1..256 strictly ascending bytes */
bool rt_vocab_parse(RtVocab *v, const char *name, const unsigned char *bytes, size_t len, Diag *d);
bool rt_vocab_read(RtVocab *v, const char *path, Diag *d);
bool rt_vocab_write(const RtVocab *v, const char *path, Diag *d); /* atomic */
void rt_vocab_path(char *out, size_t size, const char *ckpt);     /* "CKPT.vocab" */
/* ids[i] = the id of text[i]; a byte outside v is an error naming it, its offset and name */
bool rt_vocab_encode(const RtVocab *v, const char *name, const unsigned char *text, size_t len,
                     int32_t *ids, Diag *d);
int rt_vocab_decode(const RtVocab *v, int32_t id); /* the byte of id, or -1 */
/* re-numbers a text dataset's ids as positions in v (the vocabulary of training, read from
 * from); a byte of ds that v lacks is an error, as is v larger than bound (0: no bound);
 * ds's vocabulary becomes v. A dataset without a vocabulary is left alone. */
bool rt_data_use_vocab(lathe_dataset *ds, const RtVocab *v, const char *from, int64_t bound,
                       Diag *d);

/* ---- feeding a dataset to an entry point (feed.c) ---- */
enum { RT_MAX_ARGS = 256 };

/* Binding rule: each input argument of the entry takes the array of its name; the inputs no
 * array is named after take the remaining arrays in order. An input takes an array of the same
 * values per sample (any per-sample shape of that size) and a dtype it can hold: a float input
 * any numbers, an integer input integers (or floats that are all whole numbers). */
typedef struct RtFeed {
  const lathe_entry_info *e;
  int64_t batch;          /* dim 0 of the inputs; 0 = the entry takes no samples */
  int64_t n;              /* the run-time batch of the next call: rows gathered (a dynamic
                             entry, docs/dynamic-batch.md), else batch */
  bool dynamic;           /* the entry takes its batch at run time (LATHE_ARG_BATCH) */
  int src[RT_MAX_ARGS];   /* dataset array feeding input argument k, or -1 */
  void *buf[RT_MAX_ARGS]; /* buffer of every input and output argument (64-byte aligned) */
  void *ws;               /* the workspace */
  int augment_arg;        /* input that augmentation changes, or -1 */
  int flip, crop_pad;     /* augmentation: horizontal flip, crop after padding */
} RtFeed;

bool rt_feed_bind(RtFeed *f, const lathe_entry_info *e, const lathe_dataset *ds, Diag *d);
void rt_feed_fini(RtFeed *f);
/* the array of ds that input argument arg of e binds to, or -1 (reported) */
int rt_feed_source(const lathe_entry_info *e, int arg, const lathe_dataset *ds, Diag *d);
/* fills the input buffers with samples index[0, count); a short batch repeats them, or, for
 * a dynamic entry, is called with n = count */
void rt_feed_gather(RtFeed *f, const lathe_dataset *ds, const int64_t *index, int64_t count);
/* random horizontal flip / crop of the augmented input's [.., H, W] samples, from *rng */
void rt_feed_augment(RtFeed *f, uint64_t *rng);
double rt_feed_call(const RtFeed *f, void *params, void *state);
uint64_t rt_mix64(uint64_t x);        /* splitmix64's finalizer */

/* sets *error to a malloc'd copy of d's text (when error != NULL); returns -1 */
int rt_error_out(const Diag *d, char **error);

#endif
