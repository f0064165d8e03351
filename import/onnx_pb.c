/* import/onnx_pb.c — reading the protobuf-c decoded ONNX messages: node attributes and
 * TensorProto → Tensor (raw_data or the typed repeated fields, little-endian).
 *
 * Invariant: every element count is checked against the declared dims before any copy, so a
 * malformed or truncated file gives an error, never an out-of-bounds read; dims are checked
 * to be non-negative and their product to stay far below int64 overflow. Empty constants
 * (a dim of 0, e.g. Resize's unused roi) are read; using one as a tensor is refused later.
 */
#include "import/imp.h"

#include <stdlib.h>
#include <string.h>

#define ONNX_FLOAT 1
#define ONNX_UINT8 2
#define ONNX_INT8 3
#define ONNX_INT16 5
#define ONNX_INT32 6
#define ONNX_INT64 7
#define ONNX_BOOL 9
#define ONNX_DOUBLE 11

const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0) return n->attribute[i];
  return NULL;
}

int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = imp_attr(n, name);
  return a && a->has_i ? a->i : dflt;
}

double imp_attr_float(const Onnx__NodeProto *n, const char *name, double dflt) {
  const Onnx__AttributeProto *a = imp_attr(n, name);
  return a && a->has_f ? a->f : dflt;
}

const char *imp_attr_str(Imp *im, const Onnx__NodeProto *n, const char *name, const char *dflt) {
  const Onnx__AttributeProto *a = imp_attr(n, name);
  if (!a || !a->has_s) return dflt;
  return arena_strndup(&im->arena, (const char *)a->s.data, a->s.len);
}

int imp_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *v, int max) {
  const Onnx__AttributeProto *a = imp_attr(n, name);
  if (!a) return -1;
  int k = 0;
  for (size_t i = 0; i < a->n_ints && k < max; i++)
    v[k++] = a->ints[i];
  return a->n_ints > (size_t)max ? max + 1 : k;
}

bool imp_dtype_from_onnx(int32_t et, DType *dt) {
  switch (et) {
  case ONNX_FLOAT: *dt = DT_F32; return true;
  case ONNX_DOUBLE: *dt = DT_F64; return true;
  case ONNX_INT32: case ONNX_INT16: case ONNX_INT8: *dt = DT_I32; return true;
  case ONNX_INT64: *dt = DT_I64; return true;
  case ONNX_UINT8: case ONNX_BOOL: *dt = DT_U8; return true;
  default: return false;
  }
}

int64_t imp_get_i64(const Tensor *t, int64_t i) {
  switch (t->dtype) {
  case DT_I64: return ((const int64_t *)t->data)[i];
  case DT_I32: return ((const int32_t *)t->data)[i];
  case DT_U8: return ((const uint8_t *)t->data)[i];
  default: {
    double v = tensor_get(t, i);
    if (v != v) return 0;
    if (v > 9.2e18) return INT64_MAX;
    if (v < -9.2e18) return INT64_MIN;
    return (int64_t)v;
  }
  }
}

static bool proto_shape(const Onnx__TensorProto *p, Shape *s, Diag *d, const char *what) {
  memset(s, 0, sizeof *s);
  if (p->n_dims > IR_MAX_RANK) {
    diag_error(d, (SrcLoc){0}, "%s: rank %zu is above lathe's maximum %d", what, p->n_dims,
               IR_MAX_RANK);
    return false;
  }
  s->rank = (int32_t)p->n_dims;
  int64_t numel = 1;
  for (size_t i = 0; i < p->n_dims; i++) {
    if (p->dims[i] < 0 || p->dims[i] > (1LL << 31) ||
        (p->dims[i] && numel > (1LL << 31) / p->dims[i])) {
      diag_error(d, (SrcLoc){0}, "%s: invalid dimension %lld (negative or too large)", what,
                 (long long)p->dims[i]);
      return false;
    }
    s->dim[i] = p->dims[i];
    numel *= p->dims[i];
  }
  return true;
}

/* elements from the typed repeated field matching the dtype */
static bool copy_typed(const Onnx__TensorProto *p, int32_t et, Tensor *t, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    switch (et) {
    case ONNX_FLOAT: ((float *)t->data)[i] = p->float_data[i]; break;
    case ONNX_DOUBLE: ((double *)t->data)[i] = p->double_data[i]; break;
    case ONNX_INT64: ((int64_t *)t->data)[i] = p->int64_data[i]; break;
    case ONNX_UINT8: case ONNX_BOOL: ((uint8_t *)t->data)[i] = (uint8_t)p->int32_data[i]; break;
    default: ((int32_t *)t->data)[i] = p->int32_data[i]; break;
    }
  }
  return true;
}

static size_t typed_count(const Onnx__TensorProto *p, int32_t et) {
  switch (et) {
  case ONNX_FLOAT: return p->n_float_data;
  case ONNX_DOUBLE: return p->n_double_data;
  case ONNX_INT64: return p->n_int64_data;
  default: return p->n_int32_data;
  }
}

static size_t raw_size(int32_t et, DType dt) {
  return et == ONNX_INT8 || et == ONNX_BOOL || et == ONNX_UINT8 ? 1
         : et == ONNX_INT16                                    ? 2
                                                               : dtype_size(dt);
}

/* raw little-endian bytes; int8/int16/bool are widened */
static bool copy_raw(const Onnx__TensorProto *p, int32_t et, Tensor *t, int64_t n) {
  size_t esz = raw_size(et, t->dtype);
  if (p->raw_data.len != (size_t)n * esz) return false;
  const uint8_t *r = p->raw_data.data;
  if (esz == dtype_size(t->dtype)) {
    if (n) memcpy(t->data, r, (size_t)n * esz);
    return true;
  }
  for (int64_t i = 0; i < n; i++) {
    int32_t v = et == ONNX_INT8    ? (int8_t)r[i]
                : et == ONNX_INT16 ? (int16_t)(r[2 * i] | (r[2 * i + 1] << 8))
                                   : r[i];
    ((int32_t *)t->data)[i] = v;
  }
  return true;
}

bool imp_tensor_from_proto(const Onnx__TensorProto *p, Tensor *out, Diag *d, const char *what) {
  memset(out, 0, sizeof *out);
  DType dt;
  if (!p->has_data_type || !imp_dtype_from_onnx(p->data_type, &dt)) {
    diag_error(d, (SrcLoc){0}, "%s: unsupported tensor element type %d (%s)", what,
               p->has_data_type ? (int)p->data_type : 0,
               imp_onnx_type_name(p->has_data_type ? p->data_type : 0));
    return false;
  }
  if (p->n_external_data || (p->has_data_location && p->data_location != 0)) {
    diag_error(d, (SrcLoc){0}, "%s: external tensor data is not supported", what);
    return false;
  }
  Shape s;
  if (!proto_shape(p, &s, d, what)) return false;
  int64_t n = shape_numel(&s);
  /* the data must be there before anything is allocated for it */
  bool ok = p->has_raw_data ? p->raw_data.len == (size_t)n * raw_size(p->data_type, dt)
                            : typed_count(p, p->data_type) == (size_t)n;
  if (ok && !tensor_alloc(out, dt, &s)) {
    diag_error(d, (SrcLoc){0}, "%s: out of memory", what);
    return false;
  }
  ok = ok && (p->has_raw_data ? copy_raw(p, p->data_type, out, n)
                              : copy_typed(p, p->data_type, out, n));
  if (!ok) {
    diag_error(d, (SrcLoc){0}, "%s: the data does not match %lld elements of %s", what,
               (long long)n, dtype_name(dt));
    tensor_free(out);
  }
  return ok;
}

bool onnx_read_tensor(const char *path, const uint8_t *data, size_t len, Tensor *out,
                      char **name, Diag *d) {
  Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, data);
  if (!p) {
    diag_error(d, (SrcLoc){0}, "%s: not a valid ONNX TensorProto (malformed protobuf)", path);
    return false;
  }
  bool ok = imp_tensor_from_proto(p, out, d, path);
  if (ok && name) *name = strdup(p->name ? p->name : "");
  onnx__tensor_proto__free_unpacked(p, NULL);
  return ok;
}
