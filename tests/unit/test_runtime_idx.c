/* tests/unit/test_runtime_idx.c — the IDX dataset reader (runtime/idx.c).
 *
 * Reads the real Fashion-MNIST test split shipped by Debian's dataset-fashion-mnist (gzip),
 * plain and gzip files made here, and malformed files (wrong magic, unsupported type, bad
 * rank, zero dims, truncated header/data, trailing bytes, a cut gzip stream), each of which
 * must give an error naming the file.
 */
#include <check.h>
#include <zlib.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

#define FMNIST "/usr/share/datasets/fashion-mnist"

START_TEST(test_fashion_mnist_labels) {
  const char *path = FMNIST "/t10k-labels-idx1-ubyte.gz";
  ck_assert_msg(access(path, R_OK) == 0, "%s is required (install dataset-fashion-mnist)", path);
  Tensor t;
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_idx_read(path, &t, &d), "%s", diag_text(&d));
  ck_assert_int_eq(t.dtype, DT_U8);
  ck_assert_int_eq(t.shape.rank, 1);
  ck_assert_int_eq(t.shape.dim[0], 10000);
  const uint8_t *l = t.data;
  const uint8_t first[] = {9, 2, 1, 1, 6};
  for (int i = 0; i < 5; i++)
    ck_assert_int_eq(l[i], first[i]);
  int count[10] = {0};
  for (int i = 0; i < 10000; i++) {
    ck_assert_int_lt(l[i], 10);
    count[l[i]]++;
  }
  for (int c = 0; c < 10; c++)
    ck_assert_int_eq(count[c], 1000); /* the test split is balanced */
  tensor_free(&t);
  diag_fini(&d);
}
END_TEST

START_TEST(test_fashion_mnist_images) {
  const char *path = FMNIST "/t10k-images-idx3-ubyte.gz";
  ck_assert_msg(access(path, R_OK) == 0, "%s is required (install dataset-fashion-mnist)", path);
  Tensor t;
  Diag d;
  diag_init(&d);
  ck_assert_msg(rt_idx_read(path, &t, &d), "%s", diag_text(&d));
  ck_assert_int_eq(t.dtype, DT_U8);
  ck_assert_int_eq(t.shape.rank, 3);
  ck_assert(t.shape.dim[0] == 10000 && t.shape.dim[1] == 28 && t.shape.dim[2] == 28);
  const uint8_t *px = t.data;
  long nonzero = 0;
  for (long i = 0; i < 10000L * 784; i++)
    nonzero += px[i] != 0;
  ck_assert_int_gt(nonzero, 10000L * 784 / 4); /* real images, not zero fill */
  ck_assert_int_eq(px[0], 0);                  /* corners are background */
  tensor_free(&t);
  diag_fini(&d);
}
END_TEST

/* an IDX file: magic 00 00 type rank, big-endian dims, data */
static size_t make_idx(unsigned char *buf, int type, int rank, const uint32_t *dims,
                       size_t data_len) {
  size_t n = 0;
  buf[n++] = 0;
  buf[n++] = 0;
  buf[n++] = (unsigned char)type;
  buf[n++] = (unsigned char)rank;
  for (int i = 0; i < rank; i++) {
    buf[n++] = (unsigned char)(dims[i] >> 24);
    buf[n++] = (unsigned char)(dims[i] >> 16);
    buf[n++] = (unsigned char)(dims[i] >> 8);
    buf[n++] = (unsigned char)dims[i];
  }
  for (size_t i = 0; i < data_len; i++)
    buf[n++] = (unsigned char)(i * 13 + 5);
  return n;
}

static void write_gz(const char *path, const void *data, size_t len) {
  gzFile f = gzopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
  ck_assert_int_eq(gzclose(f), Z_OK);
}

START_TEST(test_plain_and_gzip) {
  char *dir = rtt_mkdtemp();
  unsigned char buf[256];
  const uint32_t dims[] = {3, 2, 4};
  size_t n = make_idx(buf, 0x08, 3, dims, 24);
  rtt_write(rtt_path(dir, "plain-idx3-ubyte"), buf, n);
  write_gz(rtt_path(dir, "gz-idx3-ubyte.gz"), buf, n);
  const char *names[] = {"plain-idx3-ubyte", "gz-idx3-ubyte.gz"};
  Diag d;
  diag_init(&d);
  for (int k = 0; k < 2; k++) {
    Tensor t;
    ck_assert_msg(rt_idx_read(rtt_path(dir, names[k]), &t, &d), "%s", diag_text(&d));
    ck_assert(t.dtype == DT_U8 && t.shape.rank == 3);
    ck_assert(t.shape.dim[0] == 3 && t.shape.dim[1] == 2 && t.shape.dim[2] == 4);
    for (int i = 0; i < 24; i++)
      ck_assert_int_eq(((uint8_t *)t.data)[i], (uint8_t)(i * 13 + 5));
    tensor_free(&t);
  }
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_malformed) {
  char *dir = rtt_mkdtemp();
  const char *p = rtt_path(dir, "bad-idx");
  unsigned char buf[256];
  Diag d;
  diag_init(&d);
  Tensor t;
  const uint32_t dims[] = {3, 4}, zero[] = {3, 0}, huge[] = {0xffffffffu, 0xffffffffu, 0xffffffffu};
  size_t n = make_idx(buf, 0x08, 2, dims, 12);
  for (size_t cut = 0; cut < n; cut++) { /* every truncation, plain and gzip */
    rtt_write(p, buf, cut);
    rtt_expect_error(rt_idx_read(p, &t, &d), &d, "bad-idx", "plain prefix");
    write_gz(p, buf, cut);
    rtt_expect_error(rt_idx_read(p, &t, &d), &d, "bad-idx", "gzip prefix");
  }
  rtt_write(p, buf, n + 1); /* make_idx wrote no byte past n: buf[n] is stale but present */
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "after", "trailing byte");
  buf[1] = 8; /* wrong magic */
  rtt_write(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "magic", "magic");
  n = make_idx(buf, 0x0D, 2, dims, 48); /* float type */
  rtt_write(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "0x0d", "float idx");
  n = make_idx(buf, 0x08, 0, dims, 0);
  rtt_write(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "0 dimensions", "rank 0");
  n = make_idx(buf, 0x08, 2, zero, 0);
  rtt_write(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "dimension 1", "zero dim");
  n = make_idx(buf, 0x08, 3, huge, 16); /* claims ~2^96 bytes: must not try to allocate them */
  rtt_write(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "bad-idx", "huge dims");
  const uint32_t big[] = {1u << 30}; /* 1 GiB claimed, 16 bytes present */
  n = make_idx(buf, 0x08, 1, big, 16);
  write_gz(p, buf, n);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "truncated", "big claim");
  rtt_expect_error(rt_idx_read(rtt_path(dir, "missing-idx"), &t, &d), &d, "missing-idx", "missing");
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* The real labels file cut in half: a truncated gzip stream. */
START_TEST(test_cut_gzip_stream) {
  size_t len;
  unsigned char *raw = rtt_read(FMNIST "/t10k-labels-idx1-ubyte.gz", &len);
  char *dir = rtt_mkdtemp();
  const char *p = rtt_path(dir, "cut.gz");
  Diag d;
  diag_init(&d);
  Tensor t;
  rtt_write(p, raw, len / 2);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "cut.gz", "half gzip");
  rtt_write(p, raw, len - 4); /* data complete, gzip trailer (size) missing */
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "cut.gz", "no trailer");
  raw[len / 2] ^= 0x55; /* corrupt deflate data */
  rtt_write(p, raw, len);
  rtt_expect_error(rt_idx_read(p, &t, &d), &d, "cut.gz", "corrupt");
  free(raw);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

static Suite *idx_suite(void) {
  Suite *s = suite_create("runtime_idx");
  TCase *tc = tcase_create("idx");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_fashion_mnist_labels);
  tcase_add_test(tc, test_fashion_mnist_images);
  tcase_add_test(tc, test_plain_and_gzip);
  tcase_add_test(tc, test_malformed);
  tcase_add_test(tc, test_cut_gzip_stream);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(idx_suite());
}
