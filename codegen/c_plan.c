/* codegen/c_plan.c — the memory plan as documentation and checks in the generated header.
 *
 * For every entry: a comment table of its workspace buffers (C name, bytes, offset, live
 * range in kernels, binding and source line) and a C99-compatible static assertion (a
 * negative-size array typedef at file scope, warning-free under -Wall -Wextra) that every
 * buffer ends inside <ENTRY>_WORKSPACE_BYTES. Kernels are numbered as codegen emits them: an
 * ungrouped computing node where it stands, a fusion group at its last member: the schedule
 * memory planning stored in the IR (Node.kernel, Graph.n_kernels; passes/kernels.c).
 */
#include "backend.h"
#include "gemm.h"
#include "workspace.h"

#include <stdlib.h>

static bool is_view(OpKind op) {
  return op == OP_INPUT || op == OP_PARAM || op == OP_STATE || op == OP_CONST || op == OP_RESHAPE;
}

static NodeId root_of(const Graph *g, NodeId id) {
  while (g->nodes[id].op == OP_RESHAPE)
    id = g->nodes[id].in[0];
  return id;
}

/* last[id]: the last kernel reading buffer id (n_kernels: read after the kernels) */
static void last_reads(const Graph *g, const int32_t *kernel_of, int32_t n_kernels, int32_t *last) {
  for (uint32_t id = 0; id < g->n_nodes; id++)
    last[id] = kernel_of[id];
  for (uint32_t id = 0; id < g->n_nodes; id++)
    for (int k = 0; k < g->nodes[id].n_in; k++) {
      NodeId r = root_of(g, g->nodes[id].in[k]);
      if (kernel_of[id] > last[r]) last[r] = kernel_of[id];
    }
  for (int i = 0; i < g->n_outputs; i++)
    last[root_of(g, g->outputs[i].node)] = n_kernels;
}

/* "A*n + B" (a dynamic module's affine sizes and offsets), "A*n" when B is 0, "B" when A is */
static const char *affine(Backend *b, int64_t per_n, int64_t fixed) {
  if (b->m->dyn_max <= 0) return arena_printf(&b->arena, "%lld", (long long)fixed);
  if (per_n == 0) return arena_printf(&b->arena, "%lld", (long long)fixed);
  if (fixed == 0) return arena_printf(&b->arena, "%lld*n", (long long)per_n);
  return arena_printf(&b->arena, "%lld*n + %lld", (long long)per_n, (long long)fixed);
}

/* the rows; end[0] + end[1] * n is where the last buffer ends (end[1] = 0 when static) */
static void plan_rows(Backend *b, const Graph *g, const int32_t *kernel_of, const int32_t *last,
                      int32_t n_kernels, CgBuf *h, int64_t *end) {
  int64_t max = b->m->dyn_max;
  for (uint32_t id = 0; id < g->n_nodes; id++) {
    const Node *n = &g->nodes[id];
    if (is_view(n->op) || n->offset < 0) continue;
    int64_t bytes = shape_numel(&n->shape) * (int64_t)dtype_size(n->dtype), bytes_n = 0;
    if (n->shape.dyn > 0 && max > 0) bytes_n = bytes / max, bytes = 0;
    if (n->offset + bytes > end[0]) end[0] = n->offset + bytes; /* each part bounds its own */
    if (n->offset_n + bytes_n > end[1]) end[1] = n->offset_n + bytes_n;
    const char *name = n->name ? arena_printf(&b->arena, "t%u (%s)", id, n->name)
                               : arena_printf(&b->arena, "t%u", id);
    const char *range = last[id] >= n_kernels
                            ? arena_printf(&b->arena, "%d..end", kernel_of[id])
                            : arena_printf(&b->arena, "%d..%d", kernel_of[id], last[id]);
    const char *where =
        n->loc.file
            ? arena_printf(&b->arena, "%s:%u",
                           cg_source_path(&b->arena, b->m, n->loc.file), n->loc.line)
            : "-";
    cg_buf_printf(h, " *   %-24s %10s %10s  %-10s %s\n", cg_comment_safe(&b->arena, name),
                  affine(b, bytes_n, bytes), affine(b, n->offset_n, n->offset), range,
                  cg_comment_safe(&b->arena, where));
  }
}

void cg_plan_comment(Backend *b, const EntryPlan *ep, CgBuf *h) {
  const Graph *g = ep->g;
  uint32_t n = g->n_nodes + 1;
  int32_t *kernel_of = malloc(n * sizeof *kernel_of), *last = malloc(n * sizeof *last);
  if (!kernel_of || !last) {
    h->oom = true;
  } else {
    int32_t n_kernels = g->n_kernels;
    for (uint32_t id = 0; id < g->n_nodes; id++)
      kernel_of[id] = g->nodes[id].kernel;
    last_reads(g, kernel_of, n_kernels, last);
    cg_buf_printf(h, "/* workspace plan of %s: %d kernels, %s bytes\n", ep->symbol, n_kernels,
                  affine(b, g->workspace_bytes_n, g->workspace_bytes));
    cg_buf_printf(h, " *   %-24s %10s %10s  %-10s %s\n", "buffer", "bytes", "offset", "kernels",
                  "source");
    int64_t end[2] = {0, 0};
    plan_rows(b, g, kernel_of, last, n_kernels, h, end);
    int64_t total = cg_workspace_bytes(g, b->opt);
    if (total > g->workspace_bytes) { /* codegen/gemm.c: packing buffers above the plan */
      int64_t at = cg_scratch_base(g);
      cg_buf_printf(h, " *   %-24s %10lld %10s  %-10s %s\n", "(matmul packing)",
                    (long long)(total - at), affine(b, g->workspace_bytes_n, at), "matmuls",
                    "codegen/gemm.c");
      end[0] = total, end[1] = g->workspace_bytes_n; /* it sits above the per-n pool */
    }
    cg_buf_puts(h, " */\n");
    if (b->m->dyn_max <= 0) {
      cg_buf_printf(h, "typedef char %s_plan_fits_[(%lld <= %s_WORKSPACE_BYTES) ? 1 : -1];\n\n",
                    ep->upper, (long long)end[0], ep->upper);
    } else { /* both sides affine in n: at n = 1 and at the bound is every n between */
      cg_buf_printf(h,
                    "typedef char %s_plan_fits_[(%lld <= %s_WORKSPACE_BYTES(1) &&\n"
                    "                            %lld <= %s_WORKSPACE_BYTES(%s)) ? 1 : -1];\n\n",
                    ep->upper, (long long)(end[1] + end[0]), ep->upper,
                    (long long)(end[1] * b->m->dyn_max + end[0]), ep->upper, cg_max_macro(b));
    }
  }
  free(kernel_of);
  free(last);
}
