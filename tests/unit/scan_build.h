/* tests/unit/scan_build.h — builds small recurrent graphs from IR for the scan tests
 * (header-only; static functions, so each test includes what it uses). */
#ifndef LATHE_TESTS_SCAN_BUILD_H
#define LATHE_TESTS_SCAN_BUILD_H

#include <check.h>
#include <string.h>

#include "ir/ir.h"

static const SrcLoc SB_L = {"scan.lathe", 3, 5};

static NodeId sb_arg(Graph *b, int index, DType t, int rank, const int64_t *dims) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan_arg.index = index;
  at.scan_arg.dtype = t;
  at.scan_arg.shape = shape_make(rank, dims);
  return graph_add(b, OP_SCAN_ARG, NULL, 0, &at, SB_L, NULL);
}

static NodeId sb_shaped(Graph *g, OpKind op, NodeId x, int rank, const int64_t *dims) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.reshape.shape = shape_make(rank, dims);
  return graph_add(g, op, &x, 1, &at, SB_L, NULL);
}

static NodeId sb_unpack(Graph *g, NodeId x, int64_t off, int rank, const int64_t *dims) {
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.unpack.offset = off;
  at.unpack.shape = shape_make(rank, dims);
  return graph_add(g, OP_UNPACK, &x, 1, &at, SB_L, NULL);
}

static NodeId sb_bin(Graph *g, OpKind op, NodeId a, NodeId b) {
  return graph_add_binary(g, op, a, b, SB_L, NULL);
}
static NodeId sb_un(Graph *g, OpKind op, NodeId a) { return graph_add_unary(g, op, a, SB_L, NULL); }

/* The LSTM step body (PyTorch gate order i, f, g, o) for batch B, input I, hidden H, dtype t:
 * args 0 h, 1 c (carries), 2 x_t (sequence), 3 wx [I,4H], 4 wh [H,4H], 5 b [4H]; outputs
 * h', c', and the per-step output h'. The gates are split with reshape/transpose/unpack. */
static Graph *sb_lstm_body(Module *m, DType t, int64_t B, int64_t I, int64_t H) {
  Graph *b = graph_new(m, "body");
  NodeId h = sb_arg(b, 0, t, 2, (int64_t[]){B, H}), c = sb_arg(b, 1, t, 2, (int64_t[]){B, H});
  NodeId x = sb_arg(b, 2, t, 2, (int64_t[]){B, I});
  NodeId wx = sb_arg(b, 3, t, 2, (int64_t[]){I, 4 * H});
  NodeId wh = sb_arg(b, 4, t, 2, (int64_t[]){H, 4 * H});
  NodeId bias = sb_arg(b, 5, t, 1, (int64_t[]){4 * H});
  NodeId in[2] = {x, wx};
  NodeId z = graph_add(b, OP_MATMUL, in, 2, NULL, SB_L, NULL);
  in[0] = h;
  in[1] = wh;
  z = sb_bin(b, OP_ADD, sb_bin(b, OP_ADD, z, graph_add(b, OP_MATMUL, in, 2, NULL, SB_L, NULL)),
             bias);
  NodeId z3 = sb_shaped(b, OP_RESHAPE, z, 3, (int64_t[]){B, 4, H});
  NodeAttr tp;
  memset(&tp, 0, sizeof tp);
  tp.transpose.perm[0] = 1;
  tp.transpose.perm[1] = 0;
  tp.transpose.perm[2] = 2;
  NodeId zt = graph_add(b, OP_TRANSPOSE, &z3, 1, &tp, SB_L, NULL);
  NodeId flat = sb_shaped(b, OP_RESHAPE, zt, 1, (int64_t[]){4 * B * H});
  NodeId gate[4];
  for (int k = 0; k < 4; k++) gate[k] = sb_unpack(b, flat, k * B * H, 2, (int64_t[]){B, H});
  NodeId ig = sb_un(b, OP_SIGMOID, gate[0]), fg = sb_un(b, OP_SIGMOID, gate[1]);
  NodeId gg = sb_un(b, OP_TANH, gate[2]), og = sb_un(b, OP_SIGMOID, gate[3]);
  NodeId c2 = sb_bin(b, OP_ADD, sb_bin(b, OP_MUL, fg, c), sb_bin(b, OP_MUL, ig, gg));
  NodeId h2 = sb_bin(b, OP_MUL, og, sb_un(b, OP_TANH, c2));
  graph_add_output(b, "h", h2, OUT_VALUE, -1);
  graph_add_output(b, "c", c2, OUT_VALUE, -1);
  graph_add_output(b, "y", h2, OUT_VALUE, -1);
  return b;
}

/* scan of the LSTM body over xs [B, T, I] (axis 1): in = {h0, c0, xs, wx, wh, b}. Sets
 * *hs to the stacked outputs [B, T, H] and *cT to the final cell state [B, H]. */
static NodeId sb_lstm(Graph *g, const NodeId *in, int64_t B, int64_t T, int64_t I, int64_t H,
                      bool reverse, NodeId *hs, NodeId *cT) {
  DType t = graph_node(g, in[2])->dtype;
  NodeAttr at;
  memset(&at, 0, sizeof at);
  at.scan.body = graph_add_subgraph(g, sb_lstm_body(g->module, t, B, I, H));
  at.scan.length = T;
  at.scan.n_carry = 2;
  at.scan.n_seq = 1;
  at.scan.axis = 1;
  at.scan.reverse = reverse;
  NodeId s = graph_add(g, OP_SCAN, in, 6, &at, SB_L, NULL);
  ck_assert(s != IR_NONE);
  *cT = sb_unpack(g, s, B * H, 2, (int64_t[]){B, H});
  *hs = sb_unpack(g, s, 2 * B * H, 3, (int64_t[]){B, T, H});
  return s;
}

#endif
