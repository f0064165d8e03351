/* tests/unit/test_ir_quant_match.c — ir/quant_match.c, the one rule of which layers and tensors
 * are int8 (lathe quantize and the `quantize` statement of QAT both call it), on
 * tests/int8/residual.lathe (conv2d layers, two residual adds, max pooling, dense layers):
 *   - the layers, their bias and ReLU, their param prefixes and binding names;
 *   - the float layers: the last by default (or none with quantize_last); names matched as the
 *     param prefix, the binding name or a glob, and which names matched;
 *   - the int8 tensors: layers' results, the max pool of one, the adds of two as qadds (the
 *     ReLU after `c1 + c2` fused, its add inner), the ranges in graph order (the input's before
 *     the first layer's result); an add with one float branch stays a float add.
 */
#include "frontend/frontend.h"
#include "ir/quant_match.h"
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Module *compile(void) {
  char lib[4096], *text = test_read_file("tests/int8/residual.lathe");
  ck_assert_ptr_nonnull(text);
  snprintf(lib, sizeof lib, "%s/lib", test_source_dir());
  Diag d;
  diag_init(&d);
  FrontendOptions o;
  frontend_options_init(&o);
  o.lib_dir = lib;
  Module *m = frontend_compile("residual.lathe", text, &o, &d);
  ck_assert_msg(m != NULL, "frontend: %s", diag_text(&d));
  diag_fini(&d);
  free(text);
  return m;
}

/* the node bound to name in the model graph */
static NodeId bound(const Module *m, const char *name) {
  for (NodeId id = m->model->n_nodes; id-- > 0;)
    if (graph_node(m->model, id)->name && strcmp(graph_node(m->model, id)->name, name) == 0)
      return id;
  ck_abort_msg("no binding %s", name);
  return IR_NONE;
}

/* "c1,c2,..." of the range nodes' names (an unnamed one's op) */
static void range_names(const QMatch *q, char *buf, size_t size) {
  buf[0] = 0;
  for (int k = 0; k < q->n_ranges; k++) {
    const Node *n = graph_node(q->g, q->ranges[k].node);
    snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", k ? "," : "",
             n->name ? n->name : ir_ops[n->op].name);
  }
}

START_TEST(test_layers) {
  Module *m = compile();
  QMatch q;
  ck_assert(qmatch_find(&q, m, m->model));
  ck_assert_int_eq(q.n_layers, 5);
  static const char *const prefix[] = {"c1", "c2", "c3", "h", "logits"};
  static const bool relu[] = {true, false, true, true, false};
  for (int l = 0; l < 5; l++) {
    ck_assert_str_eq(q.layers[l].prefix, prefix[l]);
    ck_assert_int_eq(q.layers[l].relu, relu[l]);
    ck_assert_int_eq(q.layers[l].conv, l < 3);
    ck_assert_int_ge(q.layers[l].b_param, 0);
    ck_assert_int_eq(q.role[q.layers[l].out], QM_LAYER);
    ck_assert_int_eq(q.role[q.layers[l].op], QM_INNER);
    ck_assert_ptr_null(qmatch_no_int8_form(&q, &q.layers[l]));
  }
  ck_assert_int_eq(q.layers[0].out, bound(m, "c1"));
  ck_assert_int_eq(q.role[bound(m, "x")], QM_INPUT);
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

START_TEST(test_keep_float) {
  Module *m = compile();
  QMatch q;
  ck_assert(qmatch_find(&q, m, m->model));
  bool hit[3];
  qmatch_keep_float(&q, NULL, 0, false, NULL);
  for (int l = 0; l < 5; l++)
    ck_assert_int_eq(q.layers[l].keep_float, l == 4);
  qmatch_keep_float(&q, NULL, 0, true, NULL);
  ck_assert(!q.layers[4].keep_float);
  static const char *const names[] = {"c[23]", "h", "enc"};
  qmatch_keep_float(&q, names, 3, false, hit);
  ck_assert(hit[0] && hit[1] && !hit[2]);
  static const bool keep[] = {false, true, true, true, true};
  for (int l = 0; l < 5; l++)
    ck_assert_int_eq(q.layers[l].keep_float, keep[l]);
  ck_assert_str_eq(qmatch_binding_name(m, &q.layers[0]), "c1");
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

START_TEST(test_int8) {
  Module *m = compile();
  QMatch q;
  char names[256];
  ck_assert(qmatch_find(&q, m, m->model));
  qmatch_keep_float(&q, NULL, 0, false, NULL);
  ck_assert(qmatch_assign_int8(&q));
  range_names(&q, names, sizeof names);
  ck_assert_str_eq(names, "x,c1,c2,r,c3,s,h");
  NodeId r = bound(m, "r"), s = bound(m, "s"), pool = bound(m, "pool");
  ck_assert_int_eq(q.role[r], QM_QADD); /* relu(c1 + c2): the ReLU is the qadd's result */
  ck_assert_int_eq(graph_node(m->model, r)->op, OP_RELU);
  ck_assert_int_eq(q.role[graph_node(m->model, r)->in[0]], QM_INNER);
  ck_assert_int_eq(q.role[s], QM_QADD);
  ck_assert(q.is_int8[pool] && q.range_of[pool] == q.range_of[r]);
  ck_assert_int_eq(q.ranges[q.range_of[r]].layer, -1);
  ck_assert_int_eq(q.layers[0].x_range, 0); /* x: c1's float input */
  ck_assert_int_eq(q.layers[2].x_range, q.range_of[r]);
  ck_assert(!q.is_int8[q.layers[4].out]);
  qmatch_fini(&q);

  ck_assert(qmatch_find(&q, m, m->model)); /* c2 float: both adds are float adds */
  static const char *const c2[] = {"c2"};
  bool hit;
  qmatch_keep_float(&q, c2, 1, false, &hit);
  ck_assert(hit && qmatch_assign_int8(&q));
  range_names(&q, names, sizeof names);
  ck_assert_str_eq(names, "x,c1,pool,c3,reshape,h"); /* h reads flatten(s), float */
  ck_assert_int_eq(q.role[r], QM_OTHER);
  ck_assert(!q.is_int8[r] && !q.is_int8[s]);
  qmatch_fini(&q);
  module_free(m);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ir_quant_match");
  TCase *tc = tcase_create("quant_match");
  tcase_add_test(tc, test_layers);
  tcase_add_test(tc, test_keep_float);
  tcase_add_test(tc, test_int8);
  suite_add_tcase(s, tc);
  return test_run_suite(s);
}
