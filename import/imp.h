/* import/imp.h — private to import/: the importer's state, the value table and the helpers
 * the op mappers (ops_*.c) share.
 *
 * Invariant: every ImpVal has a known dtype and static shape. A value is a runtime tensor
 * (ident set, a lathe binding or input) or a constant known at import time (has_const), or
 * both once a constant has been materialized (as a param, a fill or a literal).
 */
#ifndef LATHE_IMPORT_IMP_H
#define LATHE_IMPORT_IMP_H

#include <stdio.h>

#include "import/import.h"
#include "ir/arena.h"
#include "onnx/onnx.pb-c.h"

typedef struct ImpVal {
  const char *onnx;  /* ONNX value name (arena) */
  const char *ident; /* lathe name; NULL for a constant not yet materialized */
  DType dtype;
  Shape shape;
  bool has_const;
  bool poisoned; /* produced by a node that could not be imported */
  bool initializer; /* a graph initializer: materialized as a (trainable) param */
  Tensor konst;  /* when has_const (owned) */
  int32_t onnx_type; /* the ONNX element type where it matters and is known (initializers,
                        graph inputs, Constant values, quantized results), else 0 */
  bool u8_shifted;   /* an i8 value holding an ONNX uint8 q as q - 128 (ops_quant.c) */
} ImpVal;

typedef struct Imp {
  const ImportOptions *o;
  Diag *d;
  const char *path;
  Arena arena;
  int64_t opset;
  ImpVal **vals; /* each malloc'd: pointers stay valid */
  int n_vals, cap_vals;
  char *body; /* the model's bindings */
  size_t body_len;
  FILE *out;  /* open_memstream on body */
  RtTensorSet *weights;
  unsigned param_ranks; /* bit r: the param helper fn of rank r is used */
  unsigned param_f64;   /* bit r: ... of f64 */
  const Onnx__NodeProto *node; /* the node being mapped */
  int n_problems;
  /* the dynamic batch (a symbolic axis 0 of the graph inputs): a shape with dyn = k has
   * axis 0 = k * batch, written with this const's name by imp_dims */
  const char *dyn_ident; /* NULL: the model is static */
  const char *dyn_param; /* its ONNX dim_param ("" when unnamed) */
  int64_t dyn_max;
} Imp;

/* the largest tensor the importer creates or lets a node produce */
#define IMP_MAX_ELEMS (1LL << 31)

/* ---- values (values.c) ---- */
/* every dim in [1, IMP_MAX_ELEMS] and the product too; reported otherwise */
bool imp_shape_ok(Imp *im, const Shape *s);
ImpVal *imp_find(Imp *im, const char *onnx);
ImpVal *imp_new_val(Imp *im, const char *onnx, DType dt, const Shape *s);
/* the node's input k (NULL when absent or empty); reports a missing required one */
ImpVal *imp_in(Imp *im, int k);
ImpVal *imp_in_opt(Imp *im, int k);
/* a fresh lathe identifier derived from base */
const char *imp_ident(Imp *im, const char *prefix, const char *base);
/* the operand text of v: its ident, a literal for a 1-element constant, or a materialized
 * param / fill; NULL (reported) if it cannot be a tensor operand */
const char *imp_ref(Imp *im, ImpVal *v);
const char *imp_ref_tensor(Imp *im, ImpVal *v); /* never a bare literal */
/* binds output k of the node to expr: `ident = expr  # Op name` */
ImpVal *imp_bind(Imp *im, int k, DType dt, const Shape *s, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* a helper binding of the current node: returns its fresh identifier */
const char *imp_let(Imp *im, const char *base, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* pad(x, pads) with a fill value: computed as pad(x) + pad(zeros, value), exact for any value
 * (lathe's pad(x, value = v) computes (x - v) + v, which loses x when |v| is large) */
const char *imp_pad_expr(Imp *im, const char *x, const Shape *s, const char *pads, double v);
/* output k as a constant (takes ownership of t) */
ImpVal *imp_bind_const(Imp *im, int k, Tensor *t);
const char *imp_printf(Imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *imp_dims(Imp *im, const Shape *s); /* "[2, 3]", "[batch, 3]" when dynamic */
/* a reshape's result dyn from its input's: axis 0 must stay k * batch (false, reported) */
bool imp_reshape_dyn(Imp *im, const Shape *in, Shape *out);
const char *imp_ints(Imp *im, const int64_t *v, int n); /* "[1, 2]" */
const char *imp_num(Imp *im, double v);              /* a literal, parenthesized if < 0 */

/* a problem with the current node: recorded, import continues with its outputs poisoned */
bool imp_fail(Imp *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- attributes and constants (onnx_pb.c) ---- */
const Onnx__AttributeProto *imp_attr(const Onnx__NodeProto *n, const char *name);
int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
double imp_attr_float(const Onnx__NodeProto *n, const char *name, double dflt);
const char *imp_attr_str(Imp *im, const Onnx__NodeProto *n, const char *name, const char *dflt);
/* ints attribute into v (at most max); returns the count, -1 if absent */
int imp_attr_ints(const Onnx__NodeProto *n, const char *name, int64_t *v, int max);
bool imp_tensor_from_proto(const Onnx__TensorProto *p, Tensor *out, Diag *d, const char *what);
bool imp_dtype_from_onnx(int32_t et, DType *dt);
int64_t imp_get_i64(const Tensor *t, int64_t i);
/* values of a constant integer input k as int64 (at most max); -1 with a report if unknown */
int imp_const_ints(Imp *im, int k, int64_t *v, int max);

/* ---- shapes ---- */
int imp_axis(Imp *im, int64_t axis, int rank); /* normalized, -1 reported if out of range */
bool imp_broadcast(Imp *im, const Shape *a, const Shape *b, Shape *out);

/* ---- op mappers: each returns false after imp_fail ---- */
typedef bool (*ImpOpFn)(Imp *im, const Onnx__NodeProto *n);
ImpOpFn imp_op_basic(const char *op);
ImpOpFn imp_op_shape(const char *op);
ImpOpFn imp_op_nn(const char *op);
ImpOpFn imp_op_rnn(const char *op);
ImpOpFn imp_op_resize(const char *op);
/* ops_vocab.c: Einsum, GatherElements, ScatterElements, Scatter, TopK (issue 22) */
ImpOpFn imp_op_vocab(const char *op);
ImpOpFn imp_op_math(const char *op); /* ops_math.c: ArgMax, ArgMin, CumSum */
/* ops_quant.c: QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv, MatMulInteger,
 * ConvInteger (issue 19) */
ImpOpFn imp_op_quant(const char *op);
/* the text of a value as the graph output: a u8_shifted value converted back to u8 */
const char *imp_quant_output(Imp *im, ImpVal *v, const char *ref);
/* an ONNX element type's name ("float8e4m3fn"), for messages */
const char *imp_onnx_type_name(int32_t et);
/* ops_nn.c: the conv(...) expression of an ONNX Conv-like node n (its attributes) on operand
 * texts rx (x: xs) and rw (w: ws), in lathe's conv argument order; the result shape in out */
const char *imp_conv_expr(Imp *im, const Onnx__NodeProto *n, const char *rx, const Shape *xs,
                          const char *rw, const Shape *ws, Shape *out);

/* shape rules shared by the mappers and the folder (ops_shape.c) */
bool imp_reshape_shape(Imp *im, const Onnx__NodeProto *n, const Shape *in, Shape *out);
bool imp_slice_params(Imp *im, const Onnx__NodeProto *n, const Shape *in, int64_t *begin,
                      int64_t *step, Shape *out);
bool imp_transpose_perm(Imp *im, const Onnx__NodeProto *n, int rank, int *perm);
bool imp_gather_shape(Imp *im, const Onnx__NodeProto *n, const Shape *data, const Shape *ind,
                      int *axis, Shape *out);
bool imp_concat_shape(Imp *im, const Onnx__NodeProto *n, int *axis, Shape *out);

/* x's entries idx[0..n) along axis ax: slices (runs of consecutive indices merged) and a
 * concat (ops_resize.c) */
const char *imp_gather_axis(Imp *im, const char *x, int rank, int ax, const int64_t *idx,
                            int64_t n);

/* constant folding of a node whose inputs are all constants (fold.c); false = not foldable */
bool imp_fold(Imp *im, const Onnx__NodeProto *n, bool *folded);

#endif
