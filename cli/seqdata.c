/* cli/seqdata.c — generated sequence tasks for `lathe train --data reverse|sort[=LEN,VOCAB]`.
 *
 * A sample is LEN token ids drawn uniformly from [0, VOCAB) (images: i32 [n, LEN]); its
 * labels are the same ids reversed or sorted ascending (labels: i32 [n, LEN]). The train split
 * is generated from the seed, the test split from a different stream of the same seed, so a
 * run is reproducible and test sequences are (almost always) unseen.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

enum { SEQ_TRAIN = 16384, SEQ_TEST = 1024, SEQ_MAX_LEN = 4096 };

static uint64_t seq_mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

bool cli_seq_task(const char *spec) {
  return strncmp(spec, "reverse", 7) == 0 ? spec[7] == 0 || spec[7] == '='
         : strncmp(spec, "sort", 4) == 0  ? spec[4] == 0 || spec[4] == '='
                                          : false;
}

static bool parse_sizes(const char *eq, int64_t *len, int64_t *vocab) {
  if (!eq) return true;
  char *end = NULL;
  long long l = strtoll(eq + 1, &end, 10);
  if (end == eq + 1 || *end != ',') return false;
  const char *v = end + 1;
  long long n = strtoll(v, &end, 10);
  if (end == v || *end) return false;
  *len = l, *vocab = n;
  return l >= 1 && l <= SEQ_MAX_LEN && n >= 2 && n <= 1000000;
}

bool cli_seq_dataset(RtDataset *ds, const char *spec, bool train_split, uint64_t seed, Diag *d) {
  memset(ds, 0, sizeof *ds);
  int64_t len = 16, vocab = 16;
  if (!parse_sizes(strchr(spec, '='), &len, &vocab)) {
    diag_error(d, (SrcLoc){0},
               "--data %s: expected reverse|sort[=LEN,VOCAB] with LEN 1..%d, VOCAB >= 2", spec,
               SEQ_MAX_LEN);
    return false;
  }
  int64_t n = train_split ? SEQ_TRAIN : SEQ_TEST;
  Shape s = {.rank = 2, .dim = {n, len}};
  if (!tensor_alloc(&ds->images, DT_I32, &s) || !tensor_alloc(&ds->labels, DT_I32, &s)) {
    rt_dataset_fini(ds);
    return false;
  }
  bool reverse = spec[0] == 'r';
  int32_t *x = ds->images.data, *y = ds->labels.data;
  uint64_t state = seq_mix(seed ^ (train_split ? 0x7261696eull : 0x74657374ull));
  for (int64_t i = 0; i < n; i++) {
    int32_t *xi = x + i * len, *yi = y + i * len;
    for (int64_t t = 0; t < len; t++) {
      state = seq_mix(state);
      xi[t] = (int32_t)(state % (uint64_t)vocab);
    }
    for (int64_t t = 0; t < len; t++)
      yi[t] = reverse ? xi[len - 1 - t] : xi[t];
    if (!reverse) qsort(yi, (size_t)len, sizeof *yi, cmp_i32);
  }
  ds->n = n;
  ds->sample_numel = len;
  ds->rows = 1, ds->cols = len;
  ds->n_classes = (int)vocab;
  return true;
}
