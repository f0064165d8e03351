/* tests/unit/test_ir_quant_softcat.c — the softmax and concat parts of ir/quant_match.c (the
 * int8 rule of `lathe quantize`), on tests/int8/softcat.lathe and small models in the text:
 *   - a concat (the frontend's unslices tiling the result, summed) is QM_CONCAT, its unslices
 *     and inner adds inner; its inputs come back in order along its axis (three inputs too);
 *     unslices that overlap (two pads) are no concat;
 *   - with softmax_concat: a concat of int8 inputs is int8 with a range of rule QMR_CONCAT after
 *     its inputs'; one with a float input stays float; a softmax of an int8 tensor over its
 *     last axis is int8 (QMR_SOFTMAX) and the layer that reads it reads int8; over another axis,
 *     or rows of 4096, it stays float, with the reason;
 *   - without it (QAT's statement): the ranges are the observed ones only, as before.
 */
#include "frontend/frontend.h"
#include "ir/quant_match.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Module *compile_text(const char *name, const char *text) {
  char lib[4096];
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  Module *m = frontend_compile(name, text, &o, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  diag_fini(&d);
  return m;
}

static Module *softcat(void) {
  char *text = test_read_file("tests/int8/softcat.lathe");
  ck_assert_ptr_nonnull(text);
  Module *m = compile_text("softcat.lathe", text);
  free(text);
  return m;
}

static NodeId bound(const Module *m, const char *name) {
  for (NodeId id = m->model->n_nodes; id-- > 0;)
    if (graph_node(m->model, id)->name && strcmp(graph_node(m->model, id)->name, name) == 0)
      return id;
  ck_abort_msg("no binding %s", name);
  return IR_NONE;
}

/* the node of model output `name` */
static NodeId output(const Module *m, const char *name) {
  for (int o = 0; o < m->model->n_outputs; o++)
    if (strcmp(m->model->outputs[o].name, name) == 0) return m->model->outputs[o].node;
  ck_abort_msg("no output %s", name);
  return IR_NONE;
}

/* "x,a,b,c:concat,..." of the ranges: names (an unnamed one's op) and rules */
static void ranges(const QMatch *q, char *buf, size_t size) {
  static const char *const rule[] = {"", ":concat", ":softmax"};
  buf[0] = 0;
  for (int k = 0; k < q->n_ranges; k++) {
    const Node *n = graph_node(q->g, q->ranges[k].node);
    int r = q->ranges[k].rule == QMR_CONCAT ? 1 : q->ranges[k].rule == QMR_SOFTMAX ? 2 : 0;
    snprintf(buf + strlen(buf), size - strlen(buf), "%s%s%s", k ? "," : "",
             n->name ? n->name : ir_ops[n->op].name, rule[r]);
  }
}

START_TEST(test_concat_found) {
  Module *m = softcat();
  QMatch q;
  ck_assert(qmatch_find(&q, m, m->model));
  NodeId c = bound(m, "c"), e = bound(m, "e"), mixed = output(m, "mixed"), in[8];
  int axis = -1;
  ck_assert_int_eq(q.role[c], QM_CONCAT);
  ck_assert_int_eq(q.role[e], QM_CONCAT);
  ck_assert_int_eq(q.role[mixed], QM_CONCAT);
  ck_assert_int_eq(qmatch_concat_inputs(m->model, q.uses, c, in, 8, &axis), 2);
  ck_assert(axis == 1 && in[0] == bound(m, "a") && in[1] == bound(m, "b"));
  ck_assert_int_eq(q.role[graph_node(m->model, c)->in[0]], QM_INNER); /* an unslice */
  ck_assert_int_eq(qmatch_concat_inputs(m->model, NULL, e, in, 8, &axis), 2);
  ck_assert(axis == 2 && in[0] == bound(m, "pd"));
  ck_assert_int_eq(qmatch_concat_inputs(m->model, NULL, e, in, 1, &axis), -1); /* max */
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

static const char *const three_text = "import nn\n"
                                      "model t(x: f32[2, 4]) {\n"
                                      "  a = dense(x, 3)\n  b = dense(x, 5)\n"
                                      "  output y = dense(concat([b, a, b], axis = 1), 2)\n"
                                      "  output o = pad(a, [0, 0, 0, 2]) + pad(a, [0, 0, 1, 1])\n"
                                      "}\n";

START_TEST(test_concat_three_and_overlap) {
  Module *m = compile_text("three.lathe", three_text);
  QMatch q;
  ck_assert(qmatch_find(&q, m, m->model));
  NodeId cat = IR_NONE, in[8];
  for (NodeId id = 0; id < m->model->n_nodes; id++)
    if (q.role[id] == QM_CONCAT) {
      ck_assert_int_eq(cat, IR_NONE); /* one concat: the inner add is not one */
      cat = id;
    }
  ck_assert_int_ne(cat, IR_NONE);
  int axis = -1, n = qmatch_concat_inputs(m->model, q.uses, cat, in, 8, &axis);
  ck_assert(n == 3 && axis == 1);
  ck_assert(in[0] == bound(m, "b") && in[1] == bound(m, "a") && in[2] == bound(m, "b"));
  ck_assert_int_eq(q.role[graph_node(m->model, cat)->in[0]], QM_INNER); /* the inner add */
  NodeId o = output(m, "o");                                            /* overlapping pads */
  ck_assert_int_eq(q.role[o], QM_OTHER);
  ck_assert_int_eq(qmatch_concat_inputs(m->model, q.uses, o, in, 8, &axis), -1);
  qmatch_keep_float(&q, NULL, 0, true, NULL);
  q.softmax_concat = true;
  ck_assert(qmatch_assign_int8(&q));
  ck_assert(q.is_int8[cat] && q.ranges[q.range_of[cat]].rule == QMR_CONCAT);
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

START_TEST(test_int8_softmax_concat) {
  Module *m = softcat();
  QMatch q;
  char names[512];
  ck_assert(qmatch_find(&q, m, m->model));
  qmatch_keep_float(&q, NULL, 0, true, NULL);
  q.softmax_concat = true;
  ck_assert(qmatch_assign_int8(&q));
  ranges(&q, names, sizeof names);
  ck_assert_str_eq(names, "x,a,b,c:concat,d,e:concat,h,z,att:softmax,g,logits,probs:softmax");
  NodeId att = bound(m, "att"), cols = output(m, "cols"), mixed = output(m, "mixed");
  ck_assert(q.is_int8[att] && q.layers[5].x == att && q.layers[5].x_range == q.range_of[att]);
  ck_assert(!q.is_int8[cols] && !q.is_int8[mixed]);
  ck_assert_ptr_null(qmatch_softmax_no_int8(m->model, att));
  ck_assert_ptr_nonnull(strstr(qmatch_softmax_no_int8(m->model, cols), "not the last"));
  qmatch_fini(&q);

  ck_assert(qmatch_find(&q, m, m->model)); /* QAT's rule: as before */
  qmatch_keep_float(&q, NULL, 0, false, NULL);
  ck_assert(qmatch_assign_int8(&q));
  ranges(&q, names, sizeof names);
  ck_assert_str_eq(names, "x,a,b,c,d,reshape,h,z,att,g");
  ck_assert(!q.is_int8[bound(m, "c")] && !q.is_int8[att]);
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

START_TEST(test_softmax_rows) {
  Module *m = compile_text("rows.lathe", "import nn\n"
                                         "model t(x: f32[2, 3]) {\n"
                                         "  h = dense(x, 4096)\n  k = dense(x, 4095)\n"
                                         "  output p = softmax(h)\n  output s = softmax(k)\n"
                                         "  output y = dense(h, 2) + dense(k, 2)\n}\n");
  QMatch q;
  ck_assert(qmatch_find(&q, m, m->model));
  qmatch_keep_float(&q, NULL, 0, true, NULL);
  q.softmax_concat = true;
  ck_assert(qmatch_assign_int8(&q));
  NodeId p = output(m, "p"), s = output(m, "s");
  ck_assert(!q.is_int8[p] && q.is_int8[s]);
  ck_assert_ptr_nonnull(strstr(qmatch_softmax_no_int8(m->model, p), "4095"));
  ck_assert_ptr_nonnull(strstr(qmatch_softmax_no_int8(m->model, bound(m, "h")), "only softmax"));
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ir_quant_softcat");
  TCase *tc = tcase_create("quant_softcat");
  tcase_add_test(tc, test_concat_found);
  tcase_add_test(tc, test_concat_three_and_overlap);
  tcase_add_test(tc, test_int8_softmax_concat);
  tcase_add_test(tc, test_softmax_rows);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
