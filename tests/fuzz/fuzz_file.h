/* tests/fuzz/fuzz_file.h — shared by the file-reader fuzz targets (fuzz_npy.c,
 * fuzz_safetensors.c, fuzz_idx.c): the input is written to one temp file per process, which
 * the reader then opens by path, exactly as the CLI does.
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak, no
 * allocation driven by a header beyond what the file holds (libFuzzer's malloc limit); and
 * every rejected input leaves at least one error in the Diag. Build and run with `make fuzz`
 * (docs/fuzzing.md).
 */
#ifndef LATHE_TESTS_FUZZ_FILE_H
#define LATHE_TESTS_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/runtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_path[4096];

static void fuzz_remove_file(void) {
  unlink(fuzz_path);
}

/* the bytes as the per-process scratch file (created on first use, removed at exit) */
static const char *fuzz_file(const uint8_t *data, size_t size) {
  if (!fuzz_path[0]) {
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/lathe-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    int fd = mkstemp(fuzz_path);
    if (fd < 0) abort();
    close(fd);
    atexit(fuzz_remove_file);
  }
  FILE *f = fopen(fuzz_path, "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  if (fclose(f) != 0) abort();
  return fuzz_path;
}

static void fuzz_check_rejection(bool ok, const Diag *d) {
  if (!ok && d->n_errors == 0) abort(); /* a rejection must say why */
}

#endif
