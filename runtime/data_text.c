/* runtime/data_text.c — character-level text, the dataset `text=FILE` (docs/gpt.md), and the
 * byte vocabulary that `lathe train` saves beside the checkpoint as CKPT.vocab.
 *
 * The vocabulary is the sorted set of bytes in FILE: id k is the k-th smallest byte that
 * occurs. A sample is a window of T + 1 bytes starting every T / 2 bytes (T = the options'
 * seq_len, the model's first integer input's dim 1): array "x" holds the ids of its first T
 * bytes, "target" those of its last T (each position's next byte), both i32 [T]. The last 10%
 * of the file (floor(len / 10) bytes) is the validation split (test_split), the rest the
 * training split; windows never cross the boundary, so a validation byte is never trained on.
 *
 * CKPT.vocab is the vocabulary's bytes in id order (at most 256, strictly ascending, nothing
 * else), so a file holding a newline or a NUL needs no escaping.
 *
 * Invariant: every id handed to the model is < the vocabulary's size, which is <= the options'
 * vocab_max (the model's bound V), so no byte can index past the model's embedding.
 */
#include "data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the vocabulary -------------------------------------------------------------------------- */

void rt_vocab_of_text(RtVocab *v, const unsigned char *text, size_t len) {
  bool seen[256] = {false};
  for (size_t i = 0; i < len; i++)
    seen[text[i]] = true;
  memset(v, 0, sizeof *v); /* the unused tail of byte[] too: equal vocabularies compare equal */
  for (int b = 0; b < 256; b++) {
    v->id[b] = (int16_t)(seen[b] ? v->n : -1);
    if (seen[b]) v->byte[v->n++] = (unsigned char)b;
  }
}

bool rt_vocab_parse(RtVocab *v, const char *name, const unsigned char *bytes, size_t len, Diag *d) {
  for (size_t i = 1; i < len && len <= 256; i++)
    if (bytes[i] <= bytes[i - 1]) {
      rt_error(d,
               "%s: byte %zu (0x%02x) is not above the one before it (0x%02x): expected the "
               "vocabulary's distinct bytes in ascending order",
               name, i, bytes[i], bytes[i - 1]);
      return false;
    }
  if (len == 0 || len > 256) {
    rt_error(d, "%s: %zu bytes: expected a vocabulary of 1 to 256 distinct bytes", name, len);
    return false;
  }
  rt_vocab_of_text(v, bytes, len); /* ascending and distinct: the same bytes, in this order */
  return true;
}

bool rt_vocab_read(RtVocab *v, const char *path, Diag *d) {
  char *bytes = NULL;
  size_t len = 0;
  if (!rt_read_file(path, &bytes, &len, d)) return false;
  bool ok = rt_vocab_parse(v, path, (const unsigned char *)bytes, len, d);
  free(bytes);
  return ok;
}

bool rt_vocab_write(const RtVocab *v, const char *path, Diag *d) {
  return rt_write_file_atomic(path, v->byte, (size_t)v->n, d);
}

void rt_vocab_path(char *out, size_t size, const char *ckpt) {
  snprintf(out, size, "%s.vocab", ckpt);
}

/* a byte for a message: 'c' when printable, else its hex code */
static void byte_text(char out[8], unsigned char b) {
  if (b >= 0x20 && b < 0x7f && b != '\'')
    snprintf(out, 8, "'%c'", b);
  else
    snprintf(out, 8, "0x%02x", b);
}

bool rt_vocab_encode(const RtVocab *v, const char *name, const unsigned char *text, size_t len,
                     int32_t *ids, Diag *d) {
  for (size_t i = 0; i < len; i++) {
    if (v->id[text[i]] >= 0) {
      ids[i] = v->id[text[i]];
      continue;
    }
    char b[8];
    byte_text(b, text[i]);
    rt_error(d,
             "%s: byte %s at offset %zu is not in the vocabulary (%d bytes): expected only "
             "bytes the model was trained on",
             name, b, i, v->n);
    return false;
  }
  return true;
}

int rt_vocab_decode(const RtVocab *v, int32_t id) {
  return id >= 0 && id < v->n ? v->byte[id] : -1;
}

/* ---- the dataset ----------------------------------------------------------------------------- */

bool rt_data_is_text(const char *spec) {
  return strncmp(spec, "text=", 5) == 0;
}

/* one array of windows of ids: sample k holds ids[start_k + shift : start_k + shift + T] */
static bool add_windows(lathe_dataset *ds, const char *name, const char *file, const int32_t *ids,
                        int64_t n, int64_t T, int64_t stride, int64_t shift, Diag *d) {
  Shape s = {.rank = 2, .dim = {n, T}};
  RtArray a = {.dtype = DT_I32, .sample = {1, {T}}, .per = T, .n = n};
  a.row_bytes = (size_t)T * sizeof(int32_t);
  a.name = malloc(strlen(name) + 1);
  a.file = malloc(strlen(file) + 1);
  if (!a.name || !a.file || !tensor_alloc(&a.owned, DT_I32, &s)) {
    rt_array_fini(&a);
    rt_error(d, "out of memory reading %s", file);
    return false;
  }
  strcpy(a.name, name), strcpy(a.file, file);
  int32_t *out = a.owned.data;
  for (int64_t k = 0; k < n; k++)
    memcpy(out + k * T, ids + k * stride + shift, (size_t)T * sizeof *out);
  a.data = a.owned.data;
  return rt_data_add(ds, &a, d);
}

/* the vocabulary of text, within the model's bound; false (reported) when it is larger */
static bool text_vocab(RtVocab *v, const char *name, const unsigned char *text, size_t len,
                       int64_t bound, Diag *d) {
  rt_vocab_of_text(v, text, len);
  if (v->n <= bound) return true;
  rt_error(d,
           "%s has %d distinct bytes but the model's vocabulary bound is %lld: expected at "
           "most %lld (ids are the file's sorted bytes; raise the bound, in examples/gpt.lathe "
           "-D V=%d, or use a text with fewer distinct bytes)",
           name, v->n, (long long)bound, (long long)bound, v->n);
  return false;
}

/* the lengths: T from the options, the split's [begin, end), and a window in it */
static bool text_split(const char *name, size_t len, const lathe_data_options *o, size_t *begin,
                       size_t *end, Diag *d) {
  int64_t T = o->seq_len, W = T + 1;
  size_t split = len - len / 10;
  *begin = o->test_split ? split : 0;
  *end = o->test_split ? len : split;
  if (T < 1 || T > (int64_t)1 << 30)
    rt_error(d,
             "text=%s: sequence length %lld: expected the model's first integer input to be "
             "[N, T] with T >= 1 (the trainer passes T as lathe_data_options.seq_len)",
             name, (long long)T);
  else if (len == 0)
    rt_error(d,
             "%s is empty: expected text of at least %lld bytes (windows of T + 1 = %lld, "
             "the last 10%% for validation)",
             name, 10 * (long long)W, (long long)W);
  else if (len < (size_t)W)
    rt_error(d,
             "%s has %zu bytes: expected at least T + 1 = %lld (one window of %lld "
             "characters and the next one of each)",
             name, len, (long long)W, (long long)T);
  else if (*end - *begin < (size_t)W)
    rt_error(d,
             "%s has %zu bytes: its %s split (%s, %zu bytes) holds no window of T + 1 = "
             "%lld bytes: expected at least %lld bytes in the file",
             name, len, o->test_split ? "validation" : "training",
             o->test_split ? "the last 10%" : "the first 90%", *end - *begin, (long long)W,
             10 * (long long)W);
  else
    return true;
  return false;
}

bool rt_data_parse_text(lathe_dataset *ds, const char *name, const unsigned char *text, size_t len,
                        const lathe_data_options *o, Diag *d) {
  size_t begin, end;
  if (ds->store->n_arrays) {
    rt_error(d, "text=%s is a dataset of its own: expected no other source joined to it", name);
    return false;
  }
  RtVocab *v = malloc(sizeof *v);
  int64_t bound = o->vocab_max > 0 && o->vocab_max < 256 ? o->vocab_max : 256;
  bool ok =
      v && text_split(name, len, o, &begin, &end, d) && text_vocab(v, name, text, len, bound, d);
  if (!v) rt_error(d, "out of memory reading %s", name);
  int64_t T = o->seq_len, stride = T / 2 > 0 ? T / 2 : 1;
  int64_t n = ok ? ((int64_t)(end - begin) - (T + 1)) / stride + 1 : 0;
  int32_t *ids = ok ? malloc((end - begin) * sizeof *ids) : NULL;
  if (ok && !ids) rt_error(d, "out of memory reading %s", name);
  ok = ok && ids && rt_vocab_encode(v, name, text + begin, end - begin, ids, d) &&
       add_windows(ds, "x", name, ids, n, T, stride, 0, d) &&
       add_windows(ds, "target", name, ids, n, T, stride, 1, d);
  free(ids);
  if (ok) ds->store->vocab = v, v = NULL;
  free(v);
  return ok;
}

bool rt_data_read_text(lathe_dataset *ds, const char *path, const lathe_data_options *o, Diag *d) {
  char *text = NULL;
  size_t len = 0;
  if (access(path, R_OK) != 0) {
    rt_error(d, "text=%s: cannot read it (%s): expected a text file to cut into windows", path,
             strerror(errno));
    return false;
  }
  if (!rt_read_file(path, &text, &len, d)) return false;
  bool ok = rt_data_parse_text(ds, path, (const unsigned char *)text, len, o, d);
  free(text);
  return ok;
}

/* ---- the vocabulary of training -------------------------------------------------------------- */

bool rt_data_use_vocab(lathe_dataset *ds, const RtVocab *v, const char *from, int64_t bound,
                       Diag *d) {
  RtStore *s = ds->store;
  RtVocab *mine = s->vocab;
  if (!mine) return true;
  if (bound > 0 && v->n > bound) {
    rt_error(d,
             "%s has %d bytes but the model's vocabulary bound is %lld: expected the "
             "vocabulary of a model of this bound",
             from, v->n, (long long)bound);
    return false;
  }
  int32_t to[256];
  for (int k = 0; k < mine->n; k++) {
    to[k] = v->id[mine->byte[k]];
    if (to[k] >= 0) continue;
    char b[8];
    byte_text(b, mine->byte[k]);
    rt_error(d,
             "%s: byte %s is not in the vocabulary of training (%s, %d bytes): expected a "
             "text made of the bytes the model was trained on",
             s->arrays[0].file, b, from, v->n);
    return false;
  }
  for (int a = 0; a < s->n_arrays; a++) {
    int32_t *ids = s->arrays[a].owned.data; /* the text source's arrays: owned, i32 */
    for (int64_t i = 0; i < s->arrays[a].n * s->arrays[a].per; i++)
      ids[i] = to[ids[i]];
  }
  *mine = *v;
  return true;
}

/* ---- the options a model implies (lathe/train.h) ---- */

static const lathe_entry_info *forward_entry(const lathe_model_info *info) {
  for (int k = 0; k < info->n_entries; k++)
    if (strcmp(info->entries[k].name, "forward") == 0) return &info->entries[k];
  return info->n_entries ? &info->entries[0] : NULL;
}

/* an `embed` table of lib/nn.lathe: a rank-2 param named "table" or "<path>.table" */
static bool embed_table(const lathe_tensor_info *t) {
  size_t n = strlen(t->name);
  return t->rank == 2 && n >= 5 && strcmp(t->name + n - 5, "table") == 0 &&
         (n == 5 || t->name[n - 6] == '.');
}

void lathe_data_options_for_model(lathe_data_options *o, const lathe_model_info *info) {
  const lathe_entry_info *e = forward_entry(info);
  bool first_out = true;
  o->seq_len = o->vocab_max = 0;
  for (int k = 0; e && k < e->n_args; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    bool integer = t && (t->dtype == LATHE_I32 || t->dtype == LATHE_I64);
    if (e->args[k].role == LATHE_ARG_INPUT && integer && t->rank >= 2 && !o->seq_len)
      o->seq_len = t->shape[1];
    if (e->args[k].role == LATHE_ARG_OUTPUT && first_out && t->rank >= 2)
      o->vocab_max = t->shape[t->rank - 1]; /* the scores over the next byte [N, T, V] */
    first_out = first_out && e->args[k].role != LATHE_ARG_OUTPUT;
  }
  for (int k = 0; k < info->n_params; k++)
    if (embed_table(&info->params[k]) && (!o->vocab_max || info->params[k].shape[0] < o->vocab_max))
      o->vocab_max = info->params[k].shape[0];
}
