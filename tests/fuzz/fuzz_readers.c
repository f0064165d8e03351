/* tests/fuzz/fuzz_readers.c — libFuzzer target: arbitrary bytes through every file reader
 * of the runtime (.npy, safetensors, IDX plain or gzip).
 *
 * The input is written to one temp file per process, which each reader then opens by path,
 * exactly as the CLI does. Properties checked by the sanitizers: no crash, no undefined
 * behaviour, no leak, no allocation driven by a header beyond what the file holds (libFuzzer's
 * malloc limit); and every rejected input leaves at least one error in the Diag.
 * Build with `cmake -DCMAKE_C_COMPILER=clang -DLATHE_FUZZ=ON`, run e.g.
 * `build-fuzz/fuzz_readers -max_total_time=600 corpus/`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];

static void remove_fuzz_file(void) {
  unlink(fuzz_path);
}

/* the per-process scratch file, created on first use and removed at exit */
static const char *scratch_path(void) {
  if (fuzz_path[0]) return fuzz_path;
  const char *tmp = getenv("TMPDIR");
  snprintf(fuzz_path, sizeof fuzz_path, "%s/lathe-fuzz-readers-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  int fd = mkstemp(fuzz_path);
  if (fd < 0) abort();
  close(fd);
  atexit(remove_fuzz_file);
  return fuzz_path;
}

static void check_rejection(bool ok, Diag *d) {
  if (!ok && d->n_errors == 0) abort(); /* a rejection must say why */
  diag_fini(d);
  diag_init(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = scratch_path();
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
  Diag d;
  diag_init(&d);
  Tensor t;
  bool ok = rt_npy_read(path, &t, &d);
  if (ok) tensor_free(&t);
  check_rejection(ok, &d);
  RtTensorSet set;
  rt_set_init(&set);
  ok = rt_safetensors_read(path, &set, &d);
  if (!ok && set.n != 0) abort(); /* a failed read adds nothing */
  rt_set_fini(&set);
  check_rejection(ok, &d);
  ok = rt_idx_read(path, &t, &d);
  if (ok) tensor_free(&t);
  check_rejection(ok, &d);
  diag_fini(&d);
  return 0;
}
