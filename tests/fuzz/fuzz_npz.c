/* tests/fuzz/fuzz_npz.c — libFuzzer target: arbitrary bytes as a .npz archive through the
 * dataset reader (runtime/data_npy.c: libzip, then the .npy parser on every member).
 *
 * The input is written to one temp file per process, read by path as the CLI does.
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak, no
 * allocation beyond the member-size cap; every rejection leaves an error in the Diag; an
 * accepted archive has arrays of one length. Build with `cmake -DCMAKE_C_COMPILER=clang
 * -DLATHE_FUZZ=ON`, run e.g. `build-fuzz/fuzz_npz -max_total_time=600 corpus/` (seed the
 * corpus with files from np.savez and np.savez_compressed).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];

static void remove_fuzz_file(void) {
  unlink(fuzz_path);
}

static const char *scratch_path(void) {
  if (fuzz_path[0]) return fuzz_path;
  const char *tmp = getenv("TMPDIR");
  snprintf(fuzz_path, sizeof fuzz_path, "%s/lathe-fuzz-npz-XXXXXX.npz", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemps(fuzz_path, 4);
  if (fd < 0) abort();
  close(fd);
  atexit(remove_fuzz_file);
  return fuzz_path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = scratch_path();
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
  Diag d;
  diag_init(&d);
  lathe_dataset *ds = rt_data_new(path);
  if (!ds) abort();
  bool ok = rt_data_read_npz(ds, path, &d);
  if (!ok && d.n_errors == 0) abort();
  for (int i = 0; ok && i < ds->store->n_arrays; i++)
    if (ds->store->arrays[i].n != ds->n) abort();
  lathe_dataset_free(ds);
  diag_fini(&d);
  return 0;
}
