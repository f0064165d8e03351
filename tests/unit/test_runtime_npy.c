/* tests/unit/test_runtime_npy.c — the .npy reader and writer (runtime/npy.c).
 *
 * Round trips every dtype; reads files written by numpy itself (np.save, format 2.0) and has
 * numpy load files we wrote; and feeds malformed files (every truncation of a valid file,
 * bad magic, bad dicts, Fortran order, big endian, unsupported dtypes, bad shapes, data of the
 * wrong length), each of which must give an error naming the problem, never a crash.
 */
#include <check.h>
#include <math.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

static const DType all_dtypes[] = {DT_F32, DT_F64, DT_I32, DT_I64, DT_U8, DT_I8};

/* element i of the reference pattern (values representable in every dtype) */
static double pattern(int64_t i) {
  return (double)((i * 7 + 3) % 251);
}

static void fill(Tensor *t, DType dt, int rank, const int64_t *dims) {
  Shape s = shape_make(rank, dims);
  ck_assert(tensor_alloc(t, dt, &s));
  for (int64_t i = 0; i < shape_numel(&s); i++)
    tensor_set(t, i, pattern(i));
}

static void assert_same(const Tensor *a, const Tensor *b) {
  ck_assert_int_eq(a->dtype, b->dtype);
  ck_assert(shape_equal(&a->shape, &b->shape));
  size_t bytes = (size_t)shape_numel(&a->shape) * dtype_size(a->dtype);
  ck_assert_int_eq(memcmp(a->data, b->data, bytes), 0);
}

START_TEST(test_round_trip_every_dtype) {
  char *dir = rtt_mkdtemp();
  const int64_t dims3[] = {2, 3, 4}, dims1[] = {5};
  for (size_t k = 0; k < sizeof all_dtypes / sizeof all_dtypes[0]; k++) {
    for (int rank = 0; rank <= 3; rank += 1) {
      if (rank == 2) continue;
      Tensor t, back;
      fill(&t, all_dtypes[k], rank, rank == 1 ? dims1 : dims3);
      Diag d;
      diag_init(&d);
      const char *path = rtt_path(dir, "t.npy");
      ck_assert_msg(rt_npy_write(path, &t, &d), "%s", diag_text(&d));
      ck_assert_msg(rt_npy_read(path, &back, &d), "%s", diag_text(&d));
      assert_same(&t, &back);
      /* the header is a multiple of 64 bytes and ends in '\n', as numpy writes it */
      size_t len;
      unsigned char *raw = rtt_read(path, &len);
      size_t hdr = 10 + (size_t)(raw[8] | raw[9] << 8);
      ck_assert_uint_eq(hdr % 64, 0);
      ck_assert_int_eq(raw[hdr - 1], '\n');
      free(raw);
      tensor_free(&t);
      tensor_free(&back);
      diag_fini(&d);
    }
  }
  ck_assert_int_eq(rtt_count_entries(dir), 1); /* no temp files left behind */
  rtt_rmdir(dir);
}
END_TEST

/* numpy writes one file per dtype (plus a format 2.0 one); we read them back. */
static const char *numpy_writer =
    "import sys, numpy as np\n"
    "d = sys.argv[1]\n"
    "v = lambda n: (np.arange(n) * 7 + 3) % 251\n"
    "for name, dt in [('f32','<f4'),('f64','<f8'),('i32','<i4'),('i64','<i8'),('u8','|u1')]:\n"
    "    np.save(d + '/' + name + '.npy', v(24).reshape(2, 3, 4).astype(dt))\n"
    "np.save(d + '/scalar.npy', np.array(3.5, dtype='<f8'))\n"
    "np.save(d + '/vec.npy', v(5).astype('<i4'))\n"
    "with open(d + '/v2.npy', 'wb') as f:\n"
    "    np.lib.format.write_array(f, v(6).reshape(3, 2).astype('<f4'), version=(2, 0))\n"
    "np.save(d + '/fortran.npy', np.asfortranarray(v(6).reshape(2, 3).astype('<f4')))\n"
    "np.save(d + '/bigend.npy', v(6).astype('>f4'))\n"
    "np.save(d + '/bool.npy', np.array([True, False]))\n"
    "np.save(d + '/f16.npy', np.zeros(3, dtype='<f2'))\n"
    "np.save(d + '/empty.npy', np.zeros((0, 3), dtype='<f4'))\n";

START_TEST(test_reads_numpy_files) {
  char *dir = rtt_mkdtemp();
  rtt_python(numpy_writer, dir);
  const char *names[] = {"f32", "f64", "i32", "i64", "u8"};
  Diag d;
  diag_init(&d);
  for (int k = 0; k < 5; k++) {
    char file[32];
    snprintf(file, sizeof file, "%s.npy", names[k]);
    Tensor t;
    ck_assert_msg(rt_npy_read(rtt_path(dir, file), &t, &d), "%s", diag_text(&d));
    ck_assert_int_eq(t.dtype, all_dtypes[k]);
    ck_assert_int_eq(t.shape.rank, 3);
    ck_assert(t.shape.dim[0] == 2 && t.shape.dim[1] == 3 && t.shape.dim[2] == 4);
    for (int64_t i = 0; i < 24; i++)
      ck_assert(tensor_get(&t, i) == pattern(i));
    tensor_free(&t);
  }
  Tensor t;
  ck_assert_msg(rt_npy_read(rtt_path(dir, "scalar.npy"), &t, &d), "%s", diag_text(&d));
  ck_assert(t.dtype == DT_F64 && t.shape.rank == 0 && tensor_get(&t, 0) == 3.5);
  tensor_free(&t);
  ck_assert_msg(rt_npy_read(rtt_path(dir, "vec.npy"), &t, &d), "%s", diag_text(&d));
  ck_assert(t.dtype == DT_I32 && t.shape.rank == 1 && t.shape.dim[0] == 5);
  ck_assert(tensor_get(&t, 4) == pattern(4));
  tensor_free(&t);
  ck_assert_msg(rt_npy_read(rtt_path(dir, "v2.npy"), &t, &d), "%s", diag_text(&d));
  ck_assert(t.shape.rank == 2 && t.shape.dim[0] == 3 && tensor_get(&t, 5) == pattern(5));
  tensor_free(&t);
  rtt_expect_error(rt_npy_read(rtt_path(dir, "fortran.npy"), &t, &d), &d, "Fortran", "F");
  rtt_expect_error(rt_npy_read(rtt_path(dir, "bigend.npy"), &t, &d), &d, "big-endian", "BE");
  rtt_expect_error(rt_npy_read(rtt_path(dir, "bool.npy"), &t, &d), &d, "'|b1'", "bool");
  rtt_expect_error(rt_npy_read(rtt_path(dir, "f16.npy"), &t, &d), &d, "'<f2'", "f16");
  rtt_expect_error(rt_npy_read(rtt_path(dir, "empty.npy"), &t, &d), &d, "dimension 0", "0");
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* numpy loads what we wrote and checks dtype, shape and values. */
static const char *numpy_checker =
    "import sys, numpy as np\n"
    "d = sys.argv[1]\n"
    "v = lambda n: (np.arange(n) * 7 + 3) % 251\n"
    "for name, dt in [('f32','<f4'),('f64','<f8'),('i32','<i4'),('i64','<i8'),('u8','|u1')]:\n"
    "    a = np.load(d + '/' + name + '.npy')\n"
    "    assert a.dtype == np.dtype(dt), (name, a.dtype)\n"
    "    assert a.shape == (2, 3, 4), (name, a.shape)\n"
    "    assert (a == v(24).reshape(2, 3, 4)).all(), name\n"
    "    assert a.flags['C_CONTIGUOUS']\n"
    "s = np.load(d + '/scalar.npy')\n"
    "assert s.shape == () and s.dtype == np.float64 and s == 3.5\n";

START_TEST(test_numpy_reads_our_files) {
  char *dir = rtt_mkdtemp();
  const char *names[] = {"f32.npy", "f64.npy", "i32.npy", "i64.npy", "u8.npy"};
  const int64_t dims[] = {2, 3, 4};
  Diag d;
  diag_init(&d);
  for (int k = 0; k < 5; k++) {
    Tensor t;
    fill(&t, all_dtypes[k], 3, dims);
    ck_assert_msg(rt_npy_write(rtt_path(dir, names[k]), &t, &d), "%s", diag_text(&d));
    tensor_free(&t);
  }
  Tensor s;
  Shape scalar = {0};
  ck_assert(tensor_alloc(&s, DT_F64, &scalar));
  tensor_set(&s, 0, 3.5);
  ck_assert(rt_npy_write(rtt_path(dir, "scalar.npy"), &s, &d));
  tensor_free(&s);
  rtt_python(numpy_checker, dir);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* a v1.0 file with the given dict text and `data_len` zero data bytes */
static void write_raw_npy(const char *path, const char *dict, size_t data_len) {
  size_t n = strlen(dict), total = (10 + n + 1 + 63) / 64 * 64;
  unsigned char *buf = calloc(total + data_len + 1, 1);
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (unsigned char)((total - 10) & 0xff);
  buf[9] = (unsigned char)((total - 10) >> 8);
  memcpy(buf + 10, dict, n);
  memset(buf + 10 + n, ' ', total - 10 - n - 1);
  buf[total - 1] = '\n';
  rtt_write(path, buf, total + data_len);
  free(buf);
}

START_TEST(test_malformed_headers) {
  char *dir = rtt_mkdtemp();
  const char *p = rtt_path(dir, "bad.npy");
  static const struct {
    const char *dict;
    size_t data;
    const char *want;
  } cases[] = {
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, NULL}, /* valid */
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 4, "truncated"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 12, "needs 8"},
      {"{'descr': '<f4', 'fortran_order': False}", 0, "missing key 'shape'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "unexpected key"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}", 4, "duplicate"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}", 8, "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", 8, "integer"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", 8, "')'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } trailing", 8, "after the dict"},
      {"['descr', '<f4']", 0, "'{'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4, "structured"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", 4, NULL},
      {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}", 8, "unsupported"},
      {"{'descr': '>i8', 'fortran_order': False, 'shape': (1,)}", 8, "big-endian"},
      {"{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}", 4, "Fortran"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 0, "64 bits"},
      {"{'descr': '<f8', 'fortran_order': False, "
       "'shape': (4294967296, 4294967296, 4294967296)}",
       0, "overflow"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4, "more than 8"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (3, 0)}", 0, "dimension 1"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4, "'}'"},
      {"", 0, "'{'"},
  };
  Diag d;
  diag_init(&d);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_raw_npy(p, cases[i].dict, cases[i].data);
    Tensor t;
    bool ok = rt_npy_read(p, &t, &d);
    if (i == 0) {
      ck_assert_msg(ok, "%s", diag_text(&d));
      tensor_free(&t);
      continue;
    }
    rtt_expect_error(ok, &d, cases[i].want, cases[i].dict);
  }
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_truncations_and_magic) {
  char *dir = rtt_mkdtemp();
  Tensor t, back;
  const int64_t dims[] = {3, 5};
  fill(&t, DT_F64, 2, dims);
  Diag d;
  diag_init(&d);
  const char *good = rtt_path(dir, "good.npy"), *bad = rtt_path(dir, "bad.npy");
  ck_assert(rt_npy_write(good, &t, &d));
  size_t len;
  unsigned char *raw = rtt_read(good, &len);
  for (size_t cut = 0; cut < len; cut++) { /* every proper prefix is an error */
    rtt_write(bad, raw, cut);
    char what[64];
    snprintf(what, sizeof what, "prefix of %zu bytes", cut);
    rtt_expect_error(rt_npy_read(bad, &back, &d), &d, "bad.npy", what);
  }
  raw[1] = 'X'; /* wrong magic */
  rtt_write(bad, raw, len);
  rtt_expect_error(rt_npy_read(bad, &back, &d), &d, "magic", "magic");
  raw[1] = 'N';
  raw[6] = 9; /* unknown version */
  rtt_write(bad, raw, len);
  rtt_expect_error(rt_npy_read(bad, &back, &d), &d, "version 9.0", "version");
  raw[6] = 1;
  raw[8] = 0xff; /* header length beyond the file */
  raw[9] = 0xff;
  rtt_write(bad, raw, len);
  rtt_expect_error(rt_npy_read(bad, &back, &d), &d, "header", "hlen");
  rtt_expect_error(rt_npy_read(rtt_path(dir, "missing.npy"), &back, &d), &d, "missing.npy",
                   "missing");
  rtt_expect_error(rt_npy_read(dir, &back, &d), &d, "regular file", "directory");
  free(raw);
  tensor_free(&t);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_write_errors) {
  Tensor t;
  const int64_t dims[] = {2};
  fill(&t, DT_I32, 1, dims);
  Diag d;
  diag_init(&d);
  rtt_expect_error(rt_npy_write("/nonexistent-lathe-dir/x.npy", &t, &d), &d,
                   "/nonexistent-lathe-dir/x.npy", "no dir");
  tensor_free(&t);
  diag_fini(&d);
}
END_TEST

static Suite *npy_suite(void) {
  Suite *s = suite_create("runtime_npy");
  TCase *tc = tcase_create("npy");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_round_trip_every_dtype);
  tcase_add_test(tc, test_reads_numpy_files);
  tcase_add_test(tc, test_numpy_reads_our_files);
  tcase_add_test(tc, test_malformed_headers);
  tcase_add_test(tc, test_truncations_and_magic);
  tcase_add_test(tc, test_write_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(npy_suite());
}
