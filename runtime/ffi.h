/* runtime/ffi.h — calling a model's entry points through libffi, from the descriptor alone.
 *
 * A shared object built by `lathe build` is self-describing: its `<model>_info` names every
 * entry point's real symbol and its argument roles. The loader dlsym's entry->symbol and calls
 * it here with an ffi_cif built from those roles (every argument a pointer; the return is the
 * loss in the model's float type, or void), independently of the generated `call` wrapper.
 */
#ifndef LATHE_RUNTIME_FFI_H
#define LATHE_RUNTIME_FFI_H

#include "ir/diag.h"
#include "lathe/model_info.h"

/* The C return type of entry e: LATHE_F32/LATHE_F64 for a loss, -1 for void. The loss has
 * the model's float type: that of the first float tensor among the params, states and the
 * entry's own tensors. Returns false (with a diagnostic) when none tells it. */
bool rt_ffi_return_dtype(const lathe_model_info *info, const lathe_entry_info *e, int *dtype,
                         Diag *d);

/* Calls fn (entry e's symbol) with args[i] for argument i; a loss is stored to *ret. */
bool rt_ffi_call(const lathe_model_info *info, const lathe_entry_info *e, void *fn,
                 void *const *args, double *ret, Diag *d);

#endif
