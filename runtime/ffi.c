/* runtime/ffi.c — calls an entry point whose signature is known only from the descriptor,
 * through libffi: every argument is a pointer (params, state, tensors, workspace), the return
 * is the loss (float or double) or void. See runtime/ffi.h.
 *
 * Invariant: the cif is built from e->args and the return dtype only; the generated `call`
 * wrapper is not used, so a .so is callable by symbol like any C library.
 */
#include "runtime/ffi.h"

#include <ffi.h>
#include <stdlib.h>
#include <string.h>

static int float_dtype_of(const lathe_tensor_info *ts, int n) {
  for (int i = 0; i < n; i++)
    if (ts[i].dtype == LATHE_F32 || ts[i].dtype == LATHE_F64) return ts[i].dtype;
  return -1;
}

bool rt_ffi_return_dtype(const lathe_model_info *info, const lathe_entry_info *e, int *dtype,
                         Diag *d) {
  *dtype = -1;
  if (!e->returns_loss) return true;
  int t = float_dtype_of(info->params, info->n_params);
  if (t < 0) t = float_dtype_of(info->states, info->n_states);
  for (int k = 0; t < 0 && k < e->n_args; k++)
    if (e->args[k].tensor) t = float_dtype_of(e->args[k].tensor, 1);
  if (t < 0) {
    diag_error(d, (SrcLoc){0},
               "entry '%s' of model '%s' returns a loss, but no float tensor tells its type",
               e->name, info->name);
    return false;
  }
  *dtype = t;
  return true;
}

bool rt_ffi_call(const lathe_model_info *info, const lathe_entry_info *e, void *fn,
                 void *const *args, double *ret, Diag *d) {
  int rdt;
  if (!fn) {
    diag_error(d, (SrcLoc){0}, "entry '%s': no symbol '%s'", e->name, e->symbol);
    return false;
  }
  if (e->n_args < 0 || !rt_ffi_return_dtype(info, e, &rdt, d)) return false;
  ffi_type **types = malloc(sizeof *types * (size_t)(e->n_args + 1));
  void **values = malloc(sizeof *values * (size_t)(e->n_args + 1));
  if (!types || !values) {
    free(types), free(values);
    diag_error(d, (SrcLoc){0}, "out of memory calling '%s'", e->symbol);
    return false;
  }
  for (int k = 0; k < e->n_args; k++) {
    types[k] = &ffi_type_pointer;
    values[k] = (void *)&args[k]; /* libffi wants the address of each argument value */
  }
  ffi_type *rtype = rdt == LATHE_F32   ? &ffi_type_float
                    : rdt == LATHE_F64 ? &ffi_type_double
                                       : &ffi_type_void;
  ffi_cif cif;
  bool ok = ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)e->n_args, rtype, types) == FFI_OK;
  if (!ok) {
    diag_error(d, (SrcLoc){0}, "libffi cannot describe the signature of '%s'", e->symbol);
  } else {
    union {
      float f;
      double g;
      ffi_arg pad;
    } r = {0};
    void (*f)(void);
    memcpy(&f, &fn, sizeof f); /* ISO C has no cast from object to function pointer */
    ffi_call(&cif, f, &r, values);
    if (ret) *ret = rdt == LATHE_F32 ? (double)r.f : rdt == LATHE_F64 ? r.g : 0.0;
  }
  free(types);
  free(values);
  return ok;
}
