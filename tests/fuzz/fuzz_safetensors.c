/* tests/fuzz/fuzz_safetensors.c — libFuzzer target: arbitrary bytes, as a file, through the
 * safetensors reader (rt_safetensors_read); a failed read must add nothing to the set. See
 * fuzz_file.h for what else is checked.
 */
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_file(data, size);
  Diag d;
  diag_init(&d);
  RtTensorSet set;
  rt_set_init(&set);
  bool ok = rt_safetensors_read(path, &set, &d);
  if (!ok && set.n != 0) abort();
  rt_set_fini(&set);
  fuzz_check_rejection(ok, &d);
  diag_fini(&d);
  return 0;
}
