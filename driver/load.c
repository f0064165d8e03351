/* driver/load.c — loading a model through the JIT or cc + dlopen, and opening the
 * self-describing shared objects of `lathe build`. See driver/load.h.
 *
 * Invariant: a DriverLoaded is all zero (closed) or has info != NULL and exactly one owner of
 * the code (so.handle or jit).
 */
#include "driver/load.h"

#include <dlfcn.h>
#include <string.h>

#include "runtime/ffi.h"

static const char *const backend_names[DRIVER_BACKEND_COUNT] = {"auto", "cc", "jit"};

bool driver_backend_from_name(const char *name, DriverBackend *out) {
  for (int b = 0; b < DRIVER_BACKEND_COUNT; b++)
    if (strcmp(name, backend_names[b]) == 0) {
      *out = (DriverBackend)b;
      return true;
    }
  return false;
}

const char *driver_backend_name(DriverBackend b) {
  return b >= 0 && b < DRIVER_BACKEND_COUNT ? backend_names[b] : "?";
}

bool driver_loaded_open_source(DriverLoaded *l, DriverBackend b, const char *prefix,
                               const char *c_text, const char *h_text, Diag *d) {
  memset(l, 0, sizeof *l);
  /* threaded code needs an OpenMP runtime, which the JIT does not link: cc -fopenmp builds it */
  if (b == DRIVER_BACKEND_AUTO)
    b = jit_available() && !rt_source_threaded(c_text) ? DRIVER_BACKEND_JIT : DRIVER_BACKEND_CC;
  if (b == DRIVER_BACKEND_JIT && !jit_available()) {
    l->fell_back = true;
    b = DRIVER_BACKEND_CC;
  }
  l->backend = b;
  if (b == DRIVER_BACKEND_CC) {
    if (!rt_model_open_source(&l->so, prefix, c_text, h_text, d)) return false;
    l->info = l->so.info;
    return true;
  }
  char h_name[256];
  snprintf(h_name, sizeof h_name, "%s.h", prefix);
  l->jit = jit_compile(c_text, h_name, h_text, prefix, d);
  if (!l->jit) return false;
  l->info = jit_info(l->jit);
  if (!rt_model_check_cpu(l->info, "JIT", d)) { /* the JIT compiled the same C */
    driver_loaded_close(l);
    return false;
  }
  return true;
}

/* "dir/libmlp.so" -> "mlp" */
static void name_from_path(const char *path, char *out, size_t size) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  if (strncmp(base, "lib", 3) == 0) base += 3;
  size_t n = strcspn(base, ".");
  if (n >= size) n = size - 1;
  memcpy(out, base, n);
  out[n] = '\0';
}

/* the symbol prefix stored in the .so by `lathe build` (the name of the descriptor its
 * `lathe_model` function returns), if any */
static bool name_from_symbol(const char *so_path, char *out, size_t size) {
  void *h = dlopen(so_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) return false;
  const lathe_model_info *(*get)(void);
  void *sym = dlsym(h, "lathe_model");
  memcpy(&get, &sym, sizeof get); /* ISO C has no cast from object to function pointer */
  const lathe_model_info *info = sym ? get() : NULL;
  bool ok = info && info->name && strlen(info->name) < size;
  if (ok) snprintf(out, size, "%s", info->name);
  dlclose(h);
  return ok;
}

bool driver_loaded_open_so(DriverLoaded *l, const char *so_path, Diag *d) {
  memset(l, 0, sizeof *l);
  char name[256], path[4096];
  /* a path without '/' would make dlopen search the library path instead */
  snprintf(path, sizeof path, "%s%s", strchr(so_path, '/') ? "" : "./", so_path);
  if (!name_from_symbol(path, name, sizeof name)) name_from_path(so_path, name, sizeof name);
  if (!rt_model_open(&l->so, so_path, name, d)) return false;
  l->info = l->so.info;
  l->backend = DRIVER_BACKEND_CC;
  l->ffi = true;
  return true;
}

void driver_loaded_close(DriverLoaded *l) {
  if (l->jit) jit_free(l->jit);
  if (l->so.handle) rt_model_close(&l->so);
  memset(l, 0, sizeof *l);
}

const lathe_entry_info *driver_loaded_entry(const DriverLoaded *l, const char *name) {
  for (int i = 0; l->info && i < l->info->n_entries; i++)
    if (l->info->entries[i].name && strcmp(l->info->entries[i].name, name) == 0)
      return &l->info->entries[i];
  return NULL;
}

bool driver_loaded_call(const DriverLoaded *l, const lathe_entry_info *e, void *const *args,
                        double *ret, Diag *d) {
  if (!l->ffi) {
    double r = 0;
    e->call(args, &r);
    if (ret) *ret = r;
    return true;
  }
  dlerror();
  void *fn = dlsym(l->so.handle, e->symbol);
  return rt_ffi_call(l->info, e, fn, args, ret, d);
}
