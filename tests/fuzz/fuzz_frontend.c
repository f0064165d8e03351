/* tests/fuzz/fuzz_frontend.c — libFuzzer target: arbitrary bytes through the whole frontend
 * (lexer, parser, imports of the built-in lib/, elaboration) into a Module, which is then
 * freed.
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak, no
 * assertion reachable from input; every rejected input leaves at least one error in the Diag.
 * Build and run with `make fuzz` (see docs/fuzzing.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1); /* the frontend reads NUL-terminated text */
  if (!text) return 0;
  if (size) memcpy(text, data, size);
  text[size] = '\0';
  FrontendOptions o;
  frontend_options_init(&o);
  o.float_dtype = size % 2 ? DT_F64 : DT_F32; /* cover --dtype f64 too */
  Diag d;
  diag_init(&d);
  Module *m = frontend_compile("fuzz.lathe", text, &o, &d);
  if (!m && d.n_errors == 0) abort(); /* a rejection must say why */
  module_free(m);
  diag_fini(&d);
  free(text);
  return 0;
}
