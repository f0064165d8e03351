/* tests/fuzz/fuzz_npy.c — libFuzzer target: arbitrary bytes, as a file, through the .npy
 * (rt_npy_read) reader. See fuzz_file.h for what is checked.
 */
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  Diag d;
  diag_init(&d);
  Tensor t;
  bool ok = rt_npy_read(path, &t, &d);
  if (ok) tensor_free(&t);
  fuzz_check_rejection(ok, &d);
  diag_fini(&d);
  return 0;
}
