/* ir/scan.h — helpers for the recurrence ops SCAN, SCAN_ARG, PACK and UNPACK (ir/scan.c).
 *
 * A SCAN node runs its body (a subgraph of the graph holding the node) `length` times. Its
 * inputs are, in order, n_carry initial carries, n_seq sequences (sliced along attr.axis at
 * step index t) and captured values (passed whole every step). Inside the body, SCAN_ARG i
 * is input i of the SCAN at the current step. The body's outputs are n_carry new carries
 * (same types as the initial ones) followed by per-step outputs, stacked along attr.axis.
 * The SCAN's value is one rank-1 tensor packing, in order, the final carries and the stacked
 * outputs (all of one dtype); UNPACK nodes take the pieces back out (scan_piece gives each
 * piece's shape and element offset). With attr.reverse, step s uses index T-1-s. With a
 * run-time batch the value is [A n] when every piece is batch-sized, else static at the
 * bound, [A max + B], holding its pieces at n in its first A n + B elements.
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
 * the stacked per-step output) and its element offset at the bound (the offset UNPACK
 * states). Requires a node that type-checked. */
Shape scan_piece(const Graph *g, const Node *n, int k, int64_t *offset);

/* ---- the packed layout with a run-time batch (docs/dynamic-batch.md "Scans") ------------
 * The pieces of a packed value (a SCAN's, or a PACK's: its inputs) follow each other at
 * batch n: piece k starts at element per_n * n + fixed, per_n summing the per-unit-of-n
 * elements of the dynamic pieces before it and fixed the static ones. In a static module
 * per_n is 0 and the layout is the plain one. */

/* elements of s as per_n * n + fixed (a dynamic s: k * rest per unit of n) */
void scan_affine(const Shape *s, int64_t *per_n, int64_t *fixed);
/* the number of pieces of x (SCAN or PACK; 0 otherwise) */
int scan_packed_pieces(const Graph *g, const Node *x);
/* piece k of x (SCAN or PACK): its shape and start per_n * n + fixed */
Shape scan_packed_piece(const Graph *g, const Node *x, int k, int64_t *per_n, int64_t *fixed);
/* x's packed elements at n, per_n * n + fixed (any rank-1 x: its own extent) */
void scan_packed_total(const Graph *g, const Node *x, int64_t *per_n, int64_t *fixed);
/* the packed value's shape: [A n] when every piece is batch-sized (planned per unit of the
 * batch), else static at the bound, [A max + B], its pieces packed at n in its first A n + B
 * (a static module: [B]) */
Shape scan_packed_shape(const Graph *g, const Node *x);
/* the start at n of x's piece whose offset at the bound is `offset` (UNPACK's attribute);
 * false when a dynamic x has no piece there. A static x: fixed = offset. */
bool scan_packed_offset(const Graph *g, const Node *x, int64_t offset, int64_t *per_n,
                        int64_t *fixed);

/* Kind of SCAN input i: 0 carry, 1 sequence, 2 captured. */
int scan_input_kind(const Node *n, int i);

/* outer/inner element counts around axis for a tensor of shape s (inner excludes axis) */
void scan_split(const Shape *s, int axis, int64_t *outer, int64_t *inner);

#endif
