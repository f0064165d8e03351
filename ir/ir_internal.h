/* ir/ir_internal.h — private to ir/: the per-op hooks named in ops.def and shared helpers.
 *
 * infer hooks set node->shape/dtype from the node's inputs and attributes, reporting a
 * diagnostic (naming the op and the shapes) and returning false on error.
 * eval hooks compute out (already allocated with the node's dtype and shape) from in[]; for
 * INPUT/PARAM/STATE in[0] is the caller's tensor for the source, already checked by ir_eval.
 */
#ifndef LATHE_IR_INTERNAL_H
#define LATHE_IR_INTERNAL_H

#include "ir.h"

#define OP(e, text, arity, fusion, attr, infer, eval, vjp, lower)                                        \
  bool infer(Graph *g, Node *n, Diag *d);                                                          \
  void eval(const Graph *g, const Node *n, const Tensor *in[], Tensor *out);
#include "ops.def"
#undef OP

/* report an error if there is a sink (graph_add_source/scalar pass none) */
#define IR_ERROR(d, loc, ...) ((d) ? diag_error((d), (loc), __VA_ARGS__) : (void)0)

/* multi-index helpers over C-order shapes */
void ir_strides(const Shape *s, int64_t *strides); /* element strides, C order */
/* strides of `in` as seen from a broadcast result of rank out_rank (0 for broadcast axes) */
void ir_broadcast_strides(const Shape *in, int out_rank, int64_t *strides);
/* offset, in a tensor with those strides, of the element at C-order index idx of shape */
int64_t ir_strided_offset(int64_t idx, const Shape *shape, const int64_t *strides);
/* shortest "%.*g" text that reads back as exactly v; buf of at least 32 bytes */
char *ir_format_double(double v, char *buf, size_t size);

/* runs the op's infer hook on n (ir.c); used by graph_add and ir_verify */
bool ir_infer_node(Graph *g, Node *n, Diag *d);
/* names the text form prints without quotes: [A-Za-z_][A-Za-z0-9_.*]* (print.c) */
bool ir_name_is_bare(const char *s);
bool ir_name_char(int c, bool first);
bool ir_path_char(int c); /* name characters plus / - + : bare file paths */
extern const char *const ir_output_kind_names[OUT_KIND_COUNT]; /* "value", "loss", ... */

#endif
