/* runtime/data_seq.c — generated sequence tasks, the datasets `reverse|sort[=LEN,VOCAB]`.
 *
 * A sample is LEN token ids drawn uniformly from [0, VOCAB) (array "x": i32 [LEN] per
 * sample); its labels are the same ids reversed or sorted ascending ("label": i32 [LEN]). The train
 * split is generated from the seed, the test split from a different stream of the same seed, so a
 * run is reproducible and test sequences are (almost always) unseen.
 */
#include "data.h"

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

bool rt_data_is_seq_task(const char *spec) {
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

static bool add_tokens(lathe_dataset *ds, const char *name, const char *spec, int64_t n,
                       int64_t len, const int32_t *src, Diag *d) {
  Shape s = {.rank = 2, .dim = {n, len}};
  RtArray a = {.name = strdup(name),
               .file = strdup(spec),
               .dtype = DT_I32,
               .sample = {1, {len}},
               .per = len,
               .n = n};
  a.row_bytes = (size_t)len * sizeof(int32_t);
  if (!a.name || !a.file || !tensor_alloc(&a.owned, DT_I32, &s)) {
    rt_array_fini(&a);
    return false;
  }
  memcpy(a.owned.data, src, (size_t)(n * len) * sizeof(int32_t));
  a.data = a.owned.data;
  return rt_data_add(ds, &a, d);
}

bool rt_data_read_seq_task(lathe_dataset *ds, const char *spec, bool test_split, uint64_t seed,
                           Diag *d) {
  int64_t len = 16, vocab = 16;
  if (!parse_sizes(strchr(spec, '='), &len, &vocab)) {
    rt_error(d, "--data %s: expected reverse|sort[=LEN,VOCAB] with LEN 1..%d, VOCAB >= 2", spec,
             SEQ_MAX_LEN);
    return false;
  }
  int64_t n = test_split ? SEQ_TEST : SEQ_TRAIN;
  int32_t *x = malloc((size_t)(n * len) * sizeof *x), *y = malloc((size_t)(n * len) * sizeof *y);
  bool reverse = spec[0] == 'r';
  uint64_t state = seq_mix(seed ^ (test_split ? 0x74657374ull : 0x7261696eull));
  for (int64_t i = 0; x && y && i < n; i++) {
    int32_t *xi = x + i * len, *yi = y + i * len;
    for (int64_t t = 0; t < len; t++) {
      state = seq_mix(state);
      xi[t] = (int32_t)(state % (uint64_t)vocab);
    }
    for (int64_t t = 0; t < len; t++)
      yi[t] = reverse ? xi[len - 1 - t] : xi[t];
    if (!reverse) qsort(yi, (size_t)len, sizeof *yi, cmp_i32);
  }
  bool ok = x && y && add_tokens(ds, "x", spec, n, len, x, d) &&
            add_tokens(ds, "label", spec, n, len, y, d);
  free(x);
  free(y);
  return ok;
}
