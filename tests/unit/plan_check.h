/* tests/unit/plan_check.h — the memory-plan checker shared by the unit tests.
 *
 * plan_check(g) checks g's plan (passes/memplan.c) at several run-time batches n (n = 1 for a
 * static module; 1, 2, 7 and the bound, Module.dyn_max, for a dynamic one): at n, buffer b
 * holds b.bytes_n * n + b.bytes bytes from byte b.offset_n * n + b.offset (graph_fill_buffers);
 * every buffer starts 64-byte aligned and ends inside the arena, workspace_bytes_n * n +
 * workspace_bytes; and no two buffers share a byte while both are live, except an elementwise
 * kernel's output over an input that dies in that kernel (memplan's in-place rule). Returns
 * the number of buffers.
 */
#ifndef LATHE_TESTS_PLAN_CHECK_H
#define LATHE_TESTS_PLAN_CHECK_H

#include <check.h>
#include <stdlib.h>

#include "passes/passes.h"

static bool plan_check_elementwise(OpKind op) {
  return op == OP_BROADCAST || (ir_ops[op].fusion == FUSE_ELEMWISE && op != OP_CONST);
}

static void plan_check_at(const Graph *g, const PlanBuffer *b, int count, int64_t n) {
  int64_t arena = g->workspace_bytes_n * n + g->workspace_bytes;
  for (int i = 0; i < count; i++) {
    int64_t at = b[i].offset_n * n + b[i].offset, size = b[i].bytes_n * n + b[i].bytes;
    ck_assert_msg(at >= 0 && at % 64 == 0, "%s: %%%u at byte %lld (n = %lld)", g->name, b[i].node,
                  (long long)at, (long long)n);
    ck_assert_msg(at + size <= arena,
                  "%s: %%%u [%lld, +%lld) outside the %lld-byte arena (n = %lld)", g->name,
                  b[i].node, (long long)at, (long long)size, (long long)arena, (long long)n);
    for (int j = 0; j < i; j++) {
      int64_t jat = b[j].offset_n * n + b[j].offset, jsize = b[j].bytes_n * n + b[j].bytes;
      if (!(at < jat + jsize && jat < at + size)) continue;
      /* either buffer may be the elementwise output written over the other as it dies */
      bool inplace = (b[j].last == b[i].first && plan_check_elementwise(g->nodes[b[i].node].op)) ||
                     (b[i].last == b[j].first && plan_check_elementwise(g->nodes[b[j].node].op));
      bool apart = b[j].last < b[i].first || b[i].last < b[j].first;
      ck_assert_msg(apart || inplace, "%s: %%%u [%d, %d] and %%%u [%d, %d] overlap at n = %lld",
                    g->name, b[j].node, b[j].first, b[j].last, b[i].node, b[i].first, b[i].last,
                    (long long)n);
    }
  }
}

static int plan_check(const Graph *g) {
  PlanBuffer *b = malloc((g->n_nodes + 1) * sizeof *b);
  ck_assert_ptr_nonnull(b);
  int count = graph_fill_buffers(g, b, NULL);
  ck_assert_int_ge(count, 0);
  int64_t max = g->module ? g->module->dyn_max : 0;
  int64_t ns[] = {1, 2, 7, max};
  for (int k = 0; k < (max > 0 ? 4 : 1); k++)
    if (ns[k] <= (max > 0 ? max : 1)) plan_check_at(g, b, count, ns[k]);
  free(b);
  return count;
}

#endif
