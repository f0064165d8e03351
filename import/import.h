/* import/import.h — ONNX → lathe: reads an ONNX model (protobuf, decoded by protobuf-c from
 * descriptors generated at build time from Debian's onnx.proto), maps its graph to readable
 * .lathe source (one binding per ONNX node, named after the node output, commented with the
 * ONNX op and node name) and a set of weights (the initializers, keyed by the lathe param
 * names) that the normal frontend and runtime then compile and load.
 *
 * A symbolic batch (dim_param, or dim_value 0/-1, on axis 0 of the graph inputs) becomes the
 * model's dynamic dimension, `const batch = dynamic(max = M)` with M = ImportOptions.max_batch
 * (--max-batch, default IMPORT_DEFAULT_MAX_BATCH); -D batch=N fixes it instead.
 * Other shapes are static: other dynamic dimensions are fixed by defines (-D name=value);
 * shape arithmetic (Shape, Gather on shapes, Concat of shape vectors, Constant, ...) is
 * evaluated here, at the batch's bound.
 * Every node that cannot be imported is reported (node name, op, reason) before failing.
 * Library code: errors go to the Diag, nothing is printed.
 */
#ifndef LATHE_IMPORT_IMPORT_H
#define LATHE_IMPORT_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend/frontend.h"
#include "runtime/runtime.h"

typedef struct ImportOptions {
  const Define *defines; /* dynamic dims (dim_param) fixed by name; other names ignored */
  int n_defines;
  int64_t max_batch;      /* the bound of a symbolic batch (axis 0 of the graph inputs) that no
                             define fixes: it becomes the module's dynamic dimension */
  const char *model_name; /* name of the generated `model`; NULL = from the file name */
  const char *loss;       /* NULL, "cross_entropy" or "mse": adds a loss and a train block */
  const char *optimizer;  /* with loss: an optimizer expression, default "adam" */
  /* graph inputs whose values are known at import time (folded as constants): the ONNX
   * node tests feed integer shape/index inputs this way */
  const char *const *const_names;
  const Tensor *const_values;
  int n_consts;
} ImportOptions;

enum { IMPORT_DEFAULT_MAX_BATCH = 64 }; /* --max-batch when not given */

void import_options_init(ImportOptions *o); /* no defines, max_batch 64 */

typedef struct ImportResult {
  char *text;          /* the .lathe source, malloc'd */
  RtTensorSet weights; /* initializers keyed by param name ("fc1_weight.w") */
  int n_outputs;
  char **output_names; /* lathe names of the graph outputs, in ONNX order (malloc'd) */
  char **input_names;  /* lathe names of the runtime graph inputs, in ONNX order */
  char **input_onnx;   /* their ONNX names */
  int n_inputs;
} ImportResult;

/* Imports the ONNX bytes (path names the file in messages). On failure returns false with
 * every problem in d and r left empty. r is released with import_result_fini. */
bool onnx_import(const char *path, const uint8_t *data, size_t len, const ImportOptions *o,
                 ImportResult *r, Diag *d);
void import_result_fini(ImportResult *r);

/* Reads one serialized onnx.TensorProto (a node test's input_k.pb / output_k.pb). */
bool onnx_read_tensor(const char *path, const uint8_t *data, size_t len, Tensor *out,
                      char **name, Diag *d);

#endif
