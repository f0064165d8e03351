/* codegen/lower_scan.c — C for SCAN, PACK and UNPACK (docs/ir.md "scan").
 *
 * A SCAN becomes one `for` loop over the steps around its body's kernels, so the generated
 * code does not depend on the sequence length (only the loop bound does). Body nodes live at
 * the absolute workspace offsets passes/memplan_scan.c gave them (a fused member that is not
 * stored has none: it lives in a register of its kernel); captured arguments read the
 * scan's inputs in place. Per scan:
 *   before the loop: each carry's initial value is copied into its SCAN_ARG buffer, and
 *                    the body GEMMs' captured operands (weights) are packed once
 *                    (cg_gemm_prepack, codegen/gemm.c);
 *   each step t:     sequence slices are gathered into their SCAN_ARG buffers, the body's
 *                    kernels run in the body's schedule (cg_lower_kernels: fused groups as
 *                    one loop, passes/fuse.c and memplan_scan.c), per-step outputs
 *                    are scattered into the packed result at index t, and the new carries are
 *                    copied into the carry buffers (the body never writes those buffers, so
 *                    the copy after the body is the double buffering);
 *   after the loop:  the final carries are copied into the packed result.
 * A new carry that is another carry's argument (a swap) would need a staging buffer: reported.
 */
#include <string.h>

#include "gemm.h"
#include "ir/scan.h"
#include "lower.h"
#include "lower_hooks.h"
#include "workspace.h"

static bool scan_unsupported(CgFunc *f, const Node *n, const char *what) {
  diag_error(f->diag, n->loc, "cannot generate C for %s: %s", ir_ops[n->op].name, what);
  return false;
}

/* element idx of value v: `v[idx]`, or the literal */
static const char *elem(CgFunc *f, const CgValue *v, const char *idx) {
  return v->literal ? v->expr : arena_printf(f->arena, "%s[%s]", v->expr, idx);
}

/* an element offset per_n * n + fixed as C ("fixed" in a static module) */
static const char *at_n(CgFunc *f, int64_t per_n, int64_t fixed) {
  return cg_ws_offset(f, per_n, fixed);
}

/* dst[dst_off + i] = src[src_off + i] for i < count (C expressions: affine in n) */
static void copy_span(CgFunc *f, const char *dst, const char *dst_off, const CgValue *src,
                      const char *src_off, const char *count) {
  cg_scope_push(f->e);
  const char *i = cg_fresh(f->e, "i");
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", i, i, count, i);
  cg_line(f->e, "%s[%s + %s] = %s;", dst, dst_off, i,
          elem(f, src, arena_printf(f->arena, "%s + %s", src_off, i)));
  cg_close(f->e);
  cg_scope_pop(f->e);
}

/* the elements of s as C: "numel", or its multiple of n */
static const char *count_of(CgFunc *f, const Shape *s) {
  return cg_count(f, s, shape_numel(s));
}

/* moves slice t (a C expression) along axis of a [outer, len, inner] tensor: gathers
 * seq -> step when !stack, scatters step -> seq (at element offset base) when stack; outer
 * holds the run-time batch of a dynamic shape (axis > 0) */
static void move_slice(CgFunc *f, const Shape *full, int axis, const char *t, const char *seq,
                       const char *base, const CgValue *step, bool stack, const CgValue *src) {
  int64_t outer, inner, len = full->dim[axis];
  scan_split(full, axis, &outer, &inner);
  cg_scope_push(f->e);
  const char *o = cg_fresh(f->e, "o"), *r = cg_fresh(f->e, "r");
  cg_open(f->e, "for (int64_t %s = 0; %s < %s; %s++)", o, o, cg_count(f, full, outer), o);
  cg_open(f->e, "for (int64_t %s = 0; %s < %lld; %s++)", r, r, (long long)inner, r);
  const char *at = arena_printf(f->arena, "%s + (%s * %lld + %s) * %lld + %s", base, o,
                                (long long)len, t, (long long)inner, r);
  const char *local = arena_printf(f->arena, "%s * %lld + %s", o, (long long)inner, r);
  if (stack)
    cg_line(f->e, "%s[%s] = %s;", seq, at, elem(f, src, local));
  else
    cg_line(f->e, "%s[%s] = %s;", step->expr, local, elem(f, src, at));
  cg_close(f->e);
  cg_close(f->e);
  cg_scope_pop(f->e);
}

/* piece k of packed value id: its shape, and its start as C */
static Shape piece_at(CgFunc *f, NodeId id, int k, const char **start) {
  int64_t per_n, fixed;
  Shape piece = scan_packed_piece(f->g, graph_node(f->g, id), k, &per_n, &fixed);
  *start = at_n(f, per_n, fixed);
  return piece;
}

/* storage of every body node: workspace pointers, captured inputs, and literals later */
static bool body_storage(CgFunc *f, const Node *n, NodeId id, CgFunc *fb) {
  const Graph *body = fb->g;
  for (NodeId b = 0; b < body->n_nodes; b++) {
    const Node *bn = graph_node(body, b);
    if (bn->op == OP_SCAN_ARG && scan_input_kind(n, bn->attr.scan_arg.index) == 2) {
      fb->val[b] = f->val[n->in[bn->attr.scan_arg.index]];
      fb->val[b].writable = false;
      continue;
    }
    if (bn->offset < 0) continue;
    const char *name = cg_fresh(f->e, arena_printf(f->arena, "s%u_t%u", id, b));
    const char *t = dtype_c_name(bn->dtype);
    cg_decl(f->e, "%s *%s = (%s *)((char *)ws + %s);", t, name, t,
            cg_ws_offset(f, bn->offset_n, bn->offset));
    fb->val[b] = (CgValue){name, false, true};
  }
  for (NodeId b = 0; b < body->n_nodes; b++)
    if (graph_node(body, b)->op == OP_SCAN_ARG && !fb->val[b].expr)
      return scan_unsupported(f, n, "a body argument has no planned buffer (run memplan)");
  return true;
}

/* the body's first SCAN_ARG of input i, or IR_NONE */
static NodeId arg_node(const Graph *body, int i) {
  for (NodeId b = 0; b < body->n_nodes; b++) {
    const Node *bn = graph_node(body, b);
    if (bn->op == OP_SCAN_ARG && bn->attr.scan_arg.index == i) return b;
  }
  return IR_NONE;
}

/* one step: gather, body kernels, scatter outputs, carry copies */
static bool scan_step(CgFunc *f, const Node *n, NodeId id, CgFunc *fb, const char *t) {
  const Graph *body = fb->g;
  int nc = n->attr.scan.n_carry, axis = n->attr.scan.axis;
  for (int i = nc; i < nc + n->attr.scan.n_seq; i++) {
    NodeId a = arg_node(body, i);
    const Node *x = graph_node(f->g, n->in[i]);
    if (a != IR_NONE)
      move_slice(f, &x->shape, axis, t, NULL, "0", &fb->val[a], false, &f->val[n->in[i]]);
  }
  if (!cg_lower_kernels(fb, NULL, NULL)) return false;
  for (int k = nc; k < body->n_outputs; k++) {
    const char *off;
    Shape full = piece_at(f, id, k, &off);
    move_slice(f, &full, axis, t, f->val[id].expr, off, NULL, true,
               &fb->val[body->outputs[k].node]);
  }
  for (int k = 0; k < nc; k++) {
    NodeId a = arg_node(body, k), o = body->outputs[k].node;
    const Node *on = graph_node(body, o);
    if (a == IR_NONE || fb->val[o].expr == fb->val[a].expr) continue;
    if (on->op == OP_SCAN_ARG && on->attr.scan_arg.index != k &&
        scan_input_kind(n, on->attr.scan_arg.index) == 0)
      return scan_unsupported(f, n, "a new carry is another carry's argument (a swap)");
    copy_span(f, fb->val[a].expr, "0", &fb->val[o], "0", count_of(f, &on->shape));
  }
  return true;
}

/* copies between the carry buffers and the scan's inputs (before) or result (after) */
static void carry_copies(CgFunc *f, const Node *n, NodeId id, CgFunc *fb, bool after) {
  const Graph *body = fb->g;
  for (int k = 0; k < n->attr.scan.n_carry; k++) {
    NodeId a = arg_node(body, k), o = body->outputs[k].node;
    const char *off;
    Shape piece = piece_at(f, id, k, &off);
    if (after)
      copy_span(f, f->val[id].expr, off, &fb->val[a != IR_NONE ? a : o], "0", count_of(f, &piece));
    else if (a != IR_NONE)
      copy_span(f, fb->val[a].expr, "0", &f->val[n->in[k]], "0", count_of(f, &piece));
  }
}

bool lower_scan(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  const Graph *body = scan_body(f->g, n);
  if (!body) return scan_unsupported(f, n, "missing body");
  CgFunc fb = *f;
  fb.g = body;
  fb.symbol = arena_printf(f->arena, "%s_s%u", f->symbol, id);
  fb.val = arena_alloc(f->arena, (body->n_nodes + 1) * sizeof *fb.val);
  memset(fb.val, 0, (body->n_nodes + 1) * sizeof *fb.val);
  if (!body_storage(f, n, id, &fb)) return false;
  cg_gemm_prepack(f, id, &fb, f->gemm_pack_at ? f->gemm_pack_at : cg_scan_pack_base(f->g, f->opt));
  carry_copies(f, n, id, &fb, false);
  long long last = (long long)(n->attr.scan.length - 1);
  cg_scope_push(f->e);
  const char *s = cg_fresh(f->e, "step"), *t = cg_fresh(f->e, "t");
  cg_open(f->e, "for (int64_t %s = 0; %s <= %lld; %s++)", s, s, last, s);
  if (n->attr.scan.reverse)
    cg_line(f->e, "const int64_t %s = %lld - %s;", t, last, s);
  else
    cg_line(f->e, "const int64_t %s = %s;", t, s);
  bool ok = scan_step(f, n, id, &fb, t);
  cg_close(f->e);
  cg_scope_pop(f->e);
  if (ok) carry_copies(f, n, id, &fb, true);
  return ok;
}

bool lower_scan_arg(CgFunc *f, NodeId id) {
  return scan_unsupported(f, graph_node(f->g, id), "a scan argument outside a scan body");
}

bool lower_pack(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  for (int k = 0; k < n->n_in; k++) {
    const char *off;
    Shape piece = piece_at(f, id, k, &off);
    copy_span(f, f->val[id].expr, off, &f->val[n->in[k]], "0", count_of(f, &piece));
  }
  return true;
}

bool lower_unpack(CgFunc *f, NodeId id) {
  const Node *n = graph_node(f->g, id);
  int64_t per_n = n->attr.unpack.offset_n, max = f->m ? f->m->dyn_max : 0;
  copy_span(f, f->val[id].expr, "0", &f->val[n->in[0]],
            at_n(f, per_n, n->attr.unpack.offset - per_n * max), count_of(f, &n->shape));
  return true;
}
