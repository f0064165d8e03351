/* tests/fuzz/fuzz_import.c — libFuzzer target: arbitrary bytes through the ONNX importer
 * (protobuf-c decoding, the graph mapping, constant folding) and through the TensorProto
 * reader the node-test driver uses.
 *
 * Properties checked by the sanitizers: no crash, no undefined behaviour, no leak, no
 * allocation beyond libFuzzer's limit; every rejected input leaves an error in the Diag; an
 * accepted model's text is then compiled by the frontend, which must not crash either.
 * Seed it with ONNX files (tests/onnx/export_torch.py, /usr/share/libonnx-testdata): see
 * docs/onnx.md. Build with `cmake -DCMAKE_C_COMPILER=clang -DLATHE_FUZZ=ON`.
 */
#include <stdint.h>
#include <stdlib.h>

#include "frontend/frontend.h"
#include "import/import.h"
#include "ir/ir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rejection(bool ok, const Diag *d) {
  if (!ok && d->n_errors == 0) abort(); /* a rejection must say why */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Diag d;
  diag_init(&d);
  ImportOptions o;
  import_options_init(&o);
  Define def = {.name = "batch", .value = 2};
  o.defines = &def, o.n_defines = 1;
  ImportResult r;
  bool ok = onnx_import("fuzz.onnx", data, size, &o, &r, &d);
  check_rejection(ok, &d);
  if (ok) {
    FrontendOptions fo;
    frontend_options_init(&fo);
    Diag fd;
    diag_init(&fd);
    Module *m = frontend_compile("fuzz.lathe", r.text, &fo, &fd);
    if (m) module_free(m);
    diag_fini(&fd);
    import_result_fini(&r);
  }
  diag_fini(&d);
  diag_init(&d);
  Tensor t;
  char *name = NULL;
  ok = onnx_read_tensor("fuzz.pb", data, size, &t, &name, &d);
  check_rejection(ok, &d);
  if (ok) tensor_free(&t), free(name);
  diag_fini(&d);
  return 0;
}
