/* ir/prune.h — pruning masks and the sparsity schedule (issue #20, docs/compression.md).
 *
 * Pure functions over values given as doubles, shared by `lathe prune` (one-shot pruning of a
 * checkpoint) and, when the `prune` statement is built, by the evaluator of the mask op, so
 * the reference and the tool agree by construction. Every choice is deterministic: among
 * equal magnitudes the lower flat index is pruned first (NumPy's stable argsort), which is
 * what the oracle in tests/prune_cli.sh computes.
 */
#ifndef LATHE_IR_PRUNE_H
#define LATHE_IR_PRUNE_H

#include <stdbool.h>
#include <stdint.h>

/* How many of `count` weights a sparsity prunes: round(sparsity * count), halves to even,
 * as torch.nn.utils.prune (Python's round). sparsity in [0, 1). */
int64_t prune_count(double sparsity, int64_t count);

/* Unstructured magnitude pruning of n_tensors tensors ranked together (one tensor: per
 * layer; several: global). mask[t][i] = 0 for the prune_count(sparsity, total) smallest
 * |w[t][i]| over all tensors (ties: lower tensor, then lower index first), 1 elsewhere.
 * Returns false only when out of memory. */
bool prune_magnitude(const double *const *w, const int64_t *len, int n_tensors, double sparsity,
                     uint8_t *const *mask);

/* Structured pruning of whole output channels: w is viewed as [rows, cols] in C order and
 * the channels are its columns (axis 1: a dense weight [I, O]) or its rows (axis 0: a conv
 * weight [O, C*kh*kw]). The prune_count(sparsity, channels) channels of smallest L1 (norm 1)
 * or L2 (norm 2) norm are zeroed (ties: lower channel first). false when out of memory. */
bool prune_channels(const double *w, int64_t rows, int64_t cols, int axis, int norm,
                    double sparsity, uint8_t *mask);

/* N:M pruning along the reduction axis: w is [rows, cols] as above, the groups are m
 * consecutive weights of one channel along the other axis (a dense [I, O]: down a column,
 * axis 1; a conv [O, K]: along a row, axis 0); the n largest |w| of each group are kept
 * (ties: lower index kept). The reduction length must be a multiple of m (checked by the
 * caller), 1 <= n <= m. */
void prune_n_of_m(const double *w, int64_t rows, int64_t cols, int axis, int n, int m,
                  uint8_t *mask);

/* The output-channel axis of param p as the weight of the op that reads it in g: 1 when a
 * matmul reads it as B (a dense [I, O]: the channels are the columns of the [size / O, O]
 * view), 0 when a conv2d reads it as its filter ([O, C, kh, kw]: the rows of the
 * [O, size / O] view); -1 when neither (structured kinds refuse it). */
struct Graph;
int prune_output_axis(const struct Graph *g, int32_t p);

/* TF MOT's polynomial decay: the target sparsity at step t, s_i before `begin`, s_f from
 * `end` on, and s_f + (s_i - s_f) (1 - (t - begin) / (end - begin))^3 between. */
double prune_schedule(int64_t t, double s_i, double s_f, int64_t begin, int64_t end);

#endif
