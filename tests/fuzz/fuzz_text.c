/* tests/fuzz/fuzz_text.c — libFuzzer target: arbitrary bytes through the character-level text
 * reader (runtime/data_text.c, `--data text=FILE`) and the vocabulary file reader (CKPT.vocab),
 * with T, the vocabulary bound and the split taken from the first input byte.
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak; every
 * rejected input leaves an error in the Diag and no arrays in the dataset; an accepted one has
 * arrays "x" and "target" of equal, non-zero length whose ids are all below the vocabulary's
 * size and the bound, and "target" is "x" shifted by one. Build and run with `make fuzz`
 * (docs/fuzzing.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* every id of array a below n, and target[t] == x[t + 1] */
static void check_windows(const lathe_dataset *ds, int n) {
  int x = rt_data_find(ds, "x"), y = rt_data_find(ds, "target");
  if (x < 0 || y < 0 || ds->store->n_arrays != 2 || ds->n <= 0) abort();
  int64_t T = ds->store->arrays[x].per;
  for (int64_t i = 0; i < ds->n; i++) {
    const int32_t *xi = rt_data_at(ds, x, i), *yi = rt_data_at(ds, y, i);
    for (int64_t t = 0; t < T; t++) {
      if (xi[t] < 0 || xi[t] >= n || yi[t] < 0 || yi[t] >= n) abort();
      if (t + 1 < T && yi[t] != xi[t + 1]) abort();
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int64_t lens[] = {0, 1, 2, 3, 4, 7, 16, 64};
  static const int64_t bounds[] = {0, 1, 2, 5, 16, 96, 256, 300};
  unsigned mode = size ? data[0] : 0;
  const unsigned char *text = size ? data + 1 : data;
  size_t len = size ? size - 1 : 0;
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.seq_len = lens[mode % 8];
  o.vocab_max = bounds[(mode / 8) % 8];
  o.test_split = (mode & 0x40) != 0;
  lathe_dataset *ds = rt_data_new("fuzz.txt");
  if (!ds) abort();
  Diag d;
  diag_init(&d);
  bool ok = rt_data_parse_text(ds, "fuzz.txt", text, len, &o, &d);
  if (!ok && (d.n_errors == 0 || ds->store->n_arrays != 0)) abort(); /* said why, added nothing */
  if (ok) {
    int64_t bound = o.vocab_max > 0 && o.vocab_max < 256 ? o.vocab_max : 256;
    if (!ds->store->vocab || ds->store->vocab->n > bound) abort();
    check_windows(ds, ds->store->vocab->n);
  }
  RtVocab v; /* the same bytes as a CKPT.vocab */
  diag_fini(&d), diag_init(&d);
  if (!rt_vocab_parse(&v, "fuzz.vocab", text, len, &d) && d.n_errors == 0) abort();
  lathe_dataset_free(ds);
  diag_fini(&d);
  return 0;
}
