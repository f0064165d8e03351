/* tests/fuzz/fuzz_csv.c — libFuzzer target: arbitrary bytes through the CSV dataset reader
 * (runtime/data_csv.c, libcsv underneath), with the column options taken from the first
 * input byte (features by name or range, a named or missing target, ',' or tab).
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak; every
 * rejected input leaves an error in the Diag and no arrays in the dataset; an accepted one has
 * arrays of equal, non-zero length. Build with `cmake -DCMAKE_C_COMPILER=clang
 * -DLATHE_FUZZ=ON`, run e.g. `build-fuzz/fuzz_csv -max_total_time=600 corpus/`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const features[] = {NULL, "0:2", "a,b", "1:3", "a"};
  static const char *const targets[] = {NULL, "y", "", "b"};
  unsigned mode = size ? data[0] : 0;
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.features = features[mode % 5];
  o.target = targets[(mode / 5) % 4];
  char delim = mode & 0x80 ? '\t' : ',';
  lathe_dataset *ds = rt_data_new("fuzz.csv");
  if (!ds) abort();
  Diag d;
  diag_init(&d);
  const char *text = size ? (const char *)data + 1 : "";
  bool ok = rt_data_parse_csv(ds, "fuzz.csv", text, size ? size - 1 : 0, delim, &o, &d);
  if (!ok && d.n_errors == 0) abort(); /* a rejection must say why */
  if (ok && (ds->n <= 0 || ds->store->n_arrays == 0)) abort();
  for (int i = 0; ok && i < ds->store->n_arrays; i++)
    if (ds->store->arrays[i].n != ds->n) abort();
  lathe_dataset_free(ds);
  diag_fini(&d);
  return 0;
}
