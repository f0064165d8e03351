/* ir/scan.h — helpers for the recurrence ops SCAN, SCAN_ARG, PACK and UNPACK (ir/scan.c).
 *
 * A SCAN node runs its body (a subgraph of the graph holding the node) `length` times. Its
 * inputs are, in order, n_carry initial carries, n_seq sequences (sliced along attr.axis at
 * step index t) and captured values (passed whole every step). Inside the body, SCAN_ARG i
 * is input i of the SCAN at the current step. The body's outputs are n_carry new carries
 * (same types as the initial ones) followed by per-step outputs, stacked along attr.axis.
 * The SCAN's value is one rank-1 tensor packing, in order, the final carries and the stacked
 * outputs (all of one dtype); UNPACK nodes take the pieces back out (scan_piece gives each
 * piece's shape and element offset). With attr.reverse, step s uses index T-1-s.
 */
#ifndef LATHE_IR_SCAN_H
#define LATHE_IR_SCAN_H

#include "ir.h"

/* s without axis (s must have rank > axis) / with a new axis of size len inserted at axis */
Shape scan_slice_shape(const Shape *s, int axis);
Shape scan_stack_shape(const Shape *s, int axis, int64_t len);

/* the body of SCAN node n of g (NULL if the index is out of range) */
Graph *scan_body(const Graph *g, const Node *n);

/* Piece k of SCAN node n's packed value (k < body->n_outputs): its shape (the final carry, or
 * the stacked per-step output) and its element offset. Requires a node that type-checked. */
Shape scan_piece(const Graph *g, const Node *n, int k, int64_t *offset);

/* Kind of SCAN input i: 0 carry, 1 sequence, 2 captured. */
int scan_input_kind(const Node *n, int i);

/* outer/inner element counts around axis for a tensor of shape s (inner excludes axis) */
void scan_split(const Shape *s, int axis, int64_t *outer, int64_t *inner);

#endif
