/* codegen/buckets.c — the per-bucket hook of a split step's "grad" (--buckets BYTES,
 * docs/distributed.md "Overlap: a per-bucket hook").
 *
 * <model>_grads keeps the params' layout. A bucket is a run of whole gradient tensors, in that
 * order, closed once it holds at least BYTES; the last may be smaller. Each bucket is ready
 * after the kernel that writes the last of its gradients (the kernel schedule memory planning
 * stored in Node.kernel), or after the epilogue's copies when one of them reaches its output
 * argument only there (a view, a scan's piece). There `grad` calls
 *     if (hooks && hooks->ready) hooks->ready(hooks->ctx, offset, bytes);
 * with the bucket's byte range in <model>_grads (offsetof, so padding between fields belongs to
 * the bucket before it and the buckets cover the struct). The backward pass finishes the last
 * layers first, so buckets tend to become ready from the end of the region toward its start;
 * the order is the schedule's, the same on every replica. The descriptor lists the buckets
 * (lathe_entry_info.buckets) in address order.
 */
#include "backend.h"

#include <string.h>

const Graph *cg_split_grad(const Module *m) {
  const Graph *grad = NULL;
  bool apply = false;
  for (int i = 0; i < m->n_entries; i++) {
    if (m->entries[i]->kind == ENTRY_GRAD) grad = m->entries[i];
    apply = apply || m->entries[i]->kind == ENTRY_APPLY;
  }
  return apply ? grad : NULL;
}

bool cg_wants_buckets(const Backend *b, const Graph *g) {
  return b->opt->buckets > 0 && g == cg_split_grad(b->m);
}

/* when output i of ep (an OUT_GRAD) is final: its kernel, or n_kernels (the epilogue) */
static int32_t final_at(const EntryPlan *ep, const CgFunc *f, int i) {
  const Graph *g = ep->g;
  NodeId node = g->outputs[i].node;
  const CgValue *v = &f->val[node];
  int arg = ep->output_arg[i];
  bool direct = arg >= 0 && v->expr && !v->literal && strcmp(v->expr, ep->args[arg].cname) == 0;
  int32_t k = g->nodes[node].kernel;
  return direct && k >= 0 ? k : g->n_kernels;
}

void cg_plan_buckets(Backend *b, EntryPlan *ep, const CgFunc *f) {
  const Graph *g = ep->g;
  ep->n_buckets = 0;
  if (!cg_wants_buckets(b, g)) return;
  ep->buckets = arena_alloc(&b->arena, (size_t)(g->n_outputs + 1) * sizeof *ep->buckets);
  CgBucket *cur = NULL;
  int64_t bytes = 0;
  for (int i = 0; i < g->n_outputs; i++) {
    if (g->outputs[i].kind != OUT_GRAD) continue;
    if (!cur) {
      cur = &ep->buckets[ep->n_buckets++];
      *cur = (CgBucket){.first = g->outputs[i].target, .next = -1, .ready = -1};
      bytes = 0;
    }
    const Node *n = &g->nodes[g->outputs[i].node];
    bytes += shape_numel(&n->shape) * (int64_t)dtype_size(n->dtype);
    int32_t at = final_at(ep, f, i);
    if (at > cur->ready) cur->ready = at;
    if (bytes >= b->opt->buckets) cur = NULL;
  }
  for (int k = 0; k + 1 < ep->n_buckets; k++)
    ep->buckets[k].next = ep->buckets[k + 1].first;
}

/* "offsetof(mlp_grads, h1_w)" and the bucket's size up to the next bucket or the end */
static void bucket_range(Backend *b, Arena *a, const CgBucket *k, const char **off,
                         const char **size) {
  *off = arena_printf(a, "offsetof(%s_grads, %s)", b->model, b->param_field[k->first]);
  if (k->next >= 0)
    *size = arena_printf(a, "offsetof(%s_grads, %s) - %s", b->model, b->param_field[k->next], *off);
  else
    *size = arena_printf(a, "sizeof(%s_grads) - %s", b->model, *off);
}

void cg_emit_ready(Backend *b, CgFunc *f, const EntryPlan *ep, int32_t kernel) {
  for (int i = 0; i < ep->n_buckets; i++) {
    if (ep->buckets[i].ready != kernel) continue;
    const char *off, *size;
    bucket_range(b, f->arena, &ep->buckets[i], &off, &size);
    cg_line(f->e, "/* bucket %d of %d (from %s) is final */", i + 1, ep->n_buckets,
            cg_comment_safe(f->arena, b->m->params[ep->buckets[i].first].name));
    cg_line(f->e, "if (hooks && hooks->ready) hooks->ready(hooks->ctx, %s, %s);", off, size);
  }
}

void cg_emit_bucket_table(Backend *b, CgBuf *c, const EntryPlan *ep) {
  if (ep->n_buckets == 0) return;
  cg_buf_printf(c, "static const lathe_bucket_info %s_buckets[] = {\n", ep->symbol);
  for (int i = 0; i < ep->n_buckets; i++) {
    const char *off, *size;
    bucket_range(b, &b->arena, &ep->buckets[i], &off, &size);
    cg_buf_printf(c, "  {%s, %s},\n", off, size);
  }
  cg_buf_puts(c, "};\n");
}
