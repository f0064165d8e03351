/* tests/unit/test_runtime_text.c — the character-level text source `text=FILE` and the byte
 * vocabulary (runtime/data_text.c).
 *
 * Windows: every sample checked against the text byte by byte (x = ids of text[s : s + T],
 * target = ids of text[s + 1 : s + T + 1], s = k * T / 2), for an even and an odd T; the split
 * (the last floor(len / 10) bytes validate, no window crosses); the vocabulary (sorted
 * distinct bytes, newline and NUL included) and CKPT.vocab written, read back, re-numbering a
 * file whose bytes are a subset; and each bad input — a missing, empty or short file, a split
 * without a window, more distinct bytes than the bound, no T, a malformed vocabulary file, a
 * byte outside the vocabulary — a clear error naming the file and what was expected, with no
 * arrays left behind.
 */
#include <check.h>

#include "runtime/data.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

static lathe_dataset *text_of(const char *text, size_t len, int64_t T, int64_t bound, int test,
                              Diag *d) {
  lathe_dataset *ds = rt_data_new("t.txt");
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.seq_len = T, o.vocab_max = bound, o.test_split = test;
  bool ok = rt_data_parse_text(ds, "t.txt", (const unsigned char *)text, len, &o, d);
  if (!ok) ck_assert_int_eq(ds->store->n_arrays, 0); /* nothing left behind */
  if (ok) return ds;
  lathe_dataset_free(ds);
  return NULL;
}

/* every window of ds equals text[begin + k * stride ...] through the vocabulary */
static void check_windows(const lathe_dataset *ds, const char *text, size_t begin, size_t end,
                          int64_t T) {
  const RtVocab *v = ds->store->vocab;
  int x = rt_data_find(ds, "x"), y = rt_data_find(ds, "target");
  ck_assert_int_ge(x, 0);
  ck_assert_int_ge(y, 0);
  int64_t stride = T / 2 > 0 ? T / 2 : 1, n = ((int64_t)(end - begin) - T - 1) / stride + 1;
  ck_assert_int_eq(ds->n, n);
  ck_assert_int_eq(ds->store->arrays[x].dtype, DT_I32);
  ck_assert_int_eq(ds->store->arrays[x].per, T);
  for (int64_t k = 0; k < n; k++) {
    const int32_t *xi = rt_data_at(ds, x, k), *yi = rt_data_at(ds, y, k);
    size_t s = begin + (size_t)(k * stride);
    ck_assert_uint_le(s + (size_t)T + 1, end); /* inside its split */
    for (int64_t t = 0; t < T; t++) {
      ck_assert_int_eq(rt_vocab_decode(v, xi[t]), (unsigned char)text[s + (size_t)t]);
      ck_assert_int_eq(rt_vocab_decode(v, yi[t]), (unsigned char)text[s + (size_t)t + 1]);
    }
  }
}

START_TEST(test_text_windows_vocab_split) {
  Diag d;
  diag_init(&d);
  /* 50 bytes with a newline and a NUL: the split is 45 | 5 */
  static const char text[] = "the cat sat on the mat\nand the dog\0sat on the log.";
  size_t len = sizeof text - 1; /* the NUL inside counts, the terminator does not */
  ck_assert_uint_eq(len, 50);
  lathe_dataset *ds = text_of(text, len, 4, 0, 0, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  const RtVocab *v = ds->store->vocab;
  ck_assert_ptr_nonnull(v);
  ck_assert_int_eq(v->byte[0], 0); /* sorted: NUL, newline, space, '.', letters */
  ck_assert_int_eq(v->byte[1], '\n');
  ck_assert_int_eq(v->byte[2], ' ');
  ck_assert_int_eq(v->byte[3], '.');
  ck_assert_int_eq(v->byte[4], 'a');
  for (int k = 1; k < v->n; k++)
    ck_assert_int_lt(v->byte[k - 1], v->byte[k]);
  ck_assert_int_eq(v->id['z'], -1);
  check_windows(ds, text, 0, 45, 4); /* training: windows start at 0, 2, ..., 40 */
  ck_assert_int_eq(ds->n, 21);
  lathe_dataset_free(ds);
  ds = text_of(text, len, 4, 0, 1, &d); /* validation: the last 5 bytes, one window */
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  check_windows(ds, text, 45, 50, 4);
  ck_assert_int_eq(ds->n, 1);
  lathe_dataset_free(ds);
  ds = text_of(text, len, 3, 0, 0, &d); /* odd T: stride 1 */
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  check_windows(ds, text, 0, 45, 3);
  ck_assert_int_eq(ds->n, 42);
  lathe_dataset_free(ds);
  diag_fini(&d);
}
END_TEST

START_TEST(test_text_bad_input) {
  Diag d;
  diag_init(&d);
  char *dir = rtt_mkdtemp();
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.seq_len = 8;
  char spec[8800];
  snprintf(spec, sizeof spec, "text=%s", rtt_path(dir, "missing.txt"));
  lathe_dataset *ds = rt_data_open(spec, &o, &d);
  rtt_expect_error(ds != NULL, &d, "missing.txt", "a missing file");
  rtt_write(rtt_path(dir, "empty.txt"), "", 0);
  snprintf(spec, sizeof spec, "text=%s", rtt_path(dir, "empty.txt"));
  ds = rt_data_open(spec, &o, &d);
  rtt_expect_error(ds != NULL, &d, "empty.txt is empty: expected text of at least 90 bytes",
                   "an empty file");
  rtt_expect_error(text_of("abcdefg", 7, 8, 0, 0, &d) != NULL, &d,
                   "t.txt has 7 bytes: expected at least T + 1 = 9", "a file shorter than T + 1");
  rtt_expect_error(text_of("abcdefghijklmnopqrst", 20, 8, 0, 1, &d) != NULL, &d,
                   "validation split (the last 10%, 2 bytes) holds no window of T + 1 = 9",
                   "a validation split without a window");
  rtt_expect_error(text_of("abcdefghijklmnopqrst", 20, 2, 5, 0, &d) != NULL, &d,
                   "t.txt has 20 distinct bytes but the model's vocabulary bound is 5",
                   "more distinct bytes than the bound");
  rtt_expect_error(text_of("abcdefghijklmnopqrst", 20, 0, 0, 0, &d) != NULL, &d,
                   "sequence length 0", "no T");
  ds = text_of("abababababababababab", 20, 2, 2, 0, &d); /* exactly the bound: accepted */
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(ds->store->vocab->n, 2);
  lathe_dataset_free(ds);
  rtt_rmdir(dir);
  diag_fini(&d);
}
END_TEST

START_TEST(test_vocab_file_and_training_ids) {
  Diag d;
  diag_init(&d);
  char *dir = rtt_mkdtemp();
  /* a file name with a comma: text= is one source */
  const char *big = rtt_path(dir, "big,text.txt"), *small = rtt_path(dir, "small.txt");
  static const char train_text[] = "zebra yak xerus wolf\nvole urial tapir seal rat quail";
  rtt_write(big, train_text, sizeof train_text - 1);
  rtt_write(small, "a rat, a yak; a seal", 20); /* ',' and ';' are not in big */
  lathe_data_options o;
  lathe_data_options_init(&o);
  o.seq_len = 2;
  char spec[8800];
  snprintf(spec, sizeof spec, "text=%s", big);
  lathe_dataset *ds = rt_data_open(spec, &o, &d);
  ck_assert_msg(ds != NULL, "%s", diag_text(&d));
  const char *vpath = rtt_path(dir, "ckpt.vocab");
  ck_assert(rt_vocab_write(ds->store->vocab, vpath, &d));
  size_t n = 0;
  unsigned char *bytes = rtt_read(vpath, &n);
  ck_assert_uint_eq(n, (size_t)ds->store->vocab->n);
  ck_assert(memcmp(bytes, "\n abefiklopqrstuvwxyz", n) == 0);
  free(bytes);
  RtVocab v;
  ck_assert_msg(rt_vocab_read(&v, vpath, &d), "%s", diag_text(&d));
  ck_assert(memcmp(&v, ds->store->vocab, sizeof v) == 0);
  int32_t ids[3];
  ck_assert(rt_vocab_encode(&v, "prompt", (const unsigned char *)"rat", 3, ids, &d));
  ck_assert(ids[0] == v.id['r'] && ids[1] == v.id['a'] && ids[2] == v.id['t']);
  rtt_expect_error(rt_vocab_encode(&v, "prompt", (const unsigned char *)"ra!", 3, ids, &d), &d,
                   "prompt: byte '!' at offset 2 is not in the vocabulary", "an unknown byte");
  ck_assert_int_eq(rt_vocab_decode(&v, 0), '\n');
  ck_assert_int_eq(rt_vocab_decode(&v, v.n), -1);
  /* a text whose bytes the training vocabulary has: re-numbered */
  lathe_dataset *sub = text_of("a rat a yak a seal a vole", 25, 2, 0, 0, &d);
  ck_assert_msg(sub != NULL, "%s", diag_text(&d));
  ck_assert_int_eq(sub->store->vocab->n, 11);
  ck_assert_msg(rt_data_use_vocab(sub, &v, vpath, 96, &d), "%s", diag_text(&d));
  check_windows(sub, "a rat a yak a seal a vole", 0, 23, 2);
  ck_assert_int_eq(sub->store->vocab->n, v.n);
  lathe_dataset_free(sub);
  snprintf(spec, sizeof spec, "text=%s", small);
  sub = rt_data_open(spec, &o, &d);
  ck_assert_msg(sub != NULL, "%s", diag_text(&d));
  rtt_expect_error(rt_data_use_vocab(sub, &v, vpath, 0, &d), &d,
                   "small.txt: byte ',' is not in the vocabulary of training", "a new byte");
  rtt_expect_error(rt_data_use_vocab(sub, &v, vpath, 5, &d), &d,
                   "ckpt.vocab has 21 bytes but the model's vocabulary bound is 5",
                   "a vocabulary above the bound");
  lathe_dataset_free(sub);
  lathe_dataset_free(ds);
  /* malformed vocabulary files */
  rtt_write(vpath, "ba", 2);
  rtt_expect_error(rt_vocab_read(&v, vpath, &d), &d,
                   "expected the vocabulary's distinct bytes "
                   "in ascending order",
                   "a descending vocabulary");
  rtt_write(vpath, "aa", 2);
  rtt_expect_error(rt_vocab_read(&v, vpath, &d), &d, "is not above", "a repeated byte");
  rtt_write(vpath, "", 0);
  rtt_expect_error(rt_vocab_read(&v, vpath, &d), &d, "expected a vocabulary of 1 to 256",
                   "an empty vocabulary");
  rtt_rmdir(dir);
  diag_fini(&d);
}
END_TEST

static Suite *text_suite(void) {
  Suite *s = suite_create("runtime_text");
  TCase *tc = tcase_create("text");
  tcase_add_test(tc, test_text_windows_vocab_split);
  tcase_add_test(tc, test_text_bad_input);
  tcase_add_test(tc, test_vocab_file_and_training_ids);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(text_suite());
}
