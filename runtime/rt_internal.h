/* runtime/rt_internal.h — helpers shared by the runtime's files; not part of the public API.
 *
 * The file formats read and written here (.npy '<' dtypes, safetensors, generated-code
 * buffers) are little endian; the runtime copies tensor bytes verbatim, so it requires a
 * little-endian host (as does the generated code).
 */
#ifndef LATHE_RUNTIME_RT_INTERNAL_H
#define LATHE_RUNTIME_RT_INTERNAL_H

#include "runtime.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the lathe runtime copies tensor bytes verbatim and needs a little-endian host"
#endif

/* One contiguous piece of an output file. */
typedef struct RtPart {
  const void *data;
  size_t len;
} RtPart;

/* Writes the concatenation of parts to path atomically (temp file in the same directory,
 * fsync, rename); on failure the target is untouched and no temp file remains. */
bool rt_write_parts_atomic(const char *path, const RtPart *parts, int n_parts, Diag *d);

/* Multiplies the dims of a shape read from a file into *numel, and *numel * elem_size into
 * *bytes; false (with a message naming path) on a zero/negative dim or on overflow. */
bool rt_shape_bytes(const char *path, const Shape *s, size_t elem_size, int64_t *numel,
                    size_t *bytes, Diag *d);

/* An error without a source location. */
#define rt_error(d, ...) diag_error((d), (SrcLoc){0}, __VA_ARGS__)

#endif
