/* tests/fuzz/fuzz_ir_text.c — libFuzzer target: arbitrary bytes through the IR text reader
 * (ir_parse, the form `lathe dump` prints and the golden pass tests read); an accepted module
 * that verifies is printed back; everything is freed.
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak; every
 * rejected input leaves at least one error in the Diag.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1); /* the reader takes NUL-terminated text */
  if (!text) return 0;
  if (size) memcpy(text, data, size);
  text[size] = '\0';
  Diag d;
  diag_init(&d);
  Module *m = ir_parse(text, "fuzz.ir", &d);
  if (!m && d.n_errors == 0) abort(); /* a rejection must say why */
  if (m && m->model && ir_verify(m->model, &d)) free(ir_print(m->model)); /* what passes read */
  module_free(m);
  diag_fini(&d);
  free(text);
  return 0;
}
