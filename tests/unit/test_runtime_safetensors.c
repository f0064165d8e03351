/* tests/unit/test_runtime_safetensors.c — tensor sets and safetensors (runtime/safetensors.c).
 *
 * Round trips every dtype; checks that our bytes equal the reference implementation's (its
 * own unit-test vector, and a file written by a Python re-implementation of its serializer
 * using json+struct+numpy, since python3-safetensors is not a dependency); has Python parse
 * our output; and feeds malformed headers and offsets, each of which must give an error.
 */
#include <check.h>

#include "runtime/runtime.h"
#include "tests/unit/test_runtime_util.h"
#include "tests/unit/testutil.h"

static double pattern(int64_t i) {
  return (double)((i * 7 + 3) % 251);
}

static Tensor *add(RtTensorSet *s, const char *name, DType t, int rank, const int64_t *dims) {
  Shape sh = shape_make(rank, dims);
  Tensor *x = rt_set_add(s, name, t, &sh);
  ck_assert_ptr_nonnull(x);
  for (int64_t i = 0; i < shape_numel(&sh); i++)
    tensor_set(x, i, pattern(i));
  return x;
}

/* the tensors the Python reference writes too */
static void reference_set(RtTensorSet *s) {
  const int64_t d23[] = {2, 3}, d4[] = {4}, d3[] = {3}, d22[] = {2, 2}, d1[] = {1};
  add(s, "w.a", DT_F32, 2, d23);
  add(s, "b", DT_F64, 1, d4);
  add(s, "idx", DT_I64, 0, NULL);
  add(s, "lbl", DT_I32, 1, d3);
  add(s, "img", DT_U8, 2, d22);
  add(s, "z", DT_F32, 1, d1);
}

static void assert_sets_equal(const RtTensorSet *a, const RtTensorSet *b) {
  ck_assert_int_eq(a->n, b->n);
  for (int i = 0; i < a->n; i++) {
    const Tensor *x = &a->items[i].t, *y = rt_set_find(b, a->items[i].name);
    ck_assert_msg(y != NULL, "tensor %s lost", a->items[i].name);
    ck_assert_int_eq(x->dtype, y->dtype);
    ck_assert(shape_equal(&x->shape, &y->shape));
    size_t bytes = (size_t)shape_numel(&x->shape) * dtype_size(x->dtype);
    ck_assert_int_eq(memcmp(x->data, y->data, bytes), 0);
  }
}

START_TEST(test_round_trip) {
  char *dir = rtt_mkdtemp();
  RtTensorSet s, back;
  rt_set_init(&s);
  rt_set_init(&back);
  reference_set(&s);
  Diag d;
  diag_init(&d);
  const char *path = rtt_path(dir, "ckpt.safetensors");
  ck_assert_msg(rt_safetensors_write(path, &s, &d), "%s", diag_text(&d));
  ck_assert_msg(rt_safetensors_read(path, &back, &d), "%s", diag_text(&d));
  assert_sets_equal(&s, &back);
  ck_assert_ptr_null(rt_set_find(&back, "nope"));
  ck_assert_int_eq(rtt_count_entries(dir), 1);
  rt_set_fini(&s);
  rt_set_fini(&back);
  /* an empty set is "{}" padded to 8 bytes */
  ck_assert(rt_safetensors_write(path, &s, &d));
  size_t len;
  unsigned char *raw = rtt_read(path, &len);
  ck_assert_uint_eq(len, 16);
  ck_assert_int_eq(memcmp(raw, "\x08\0\0\0\0\0\0\0{}      ", 16), 0);
  free(raw);
  ck_assert(rt_safetensors_read(path, &back, &d));
  ck_assert_int_eq(back.n, 0);
  rt_set_fini(&back);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* The reference implementation's test_serialization vector, byte for byte. */
START_TEST(test_matches_reference_bytes) {
  static const unsigned char want[] = {
      64, 0,  0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,
      34, 58, 123, 34,  100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,
      44, 34, 115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  50,  44,  51,  93,
      44, 34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,
      91, 48, 44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
      0,  0,  0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
  char *dir = rtt_mkdtemp();
  RtTensorSet s;
  rt_set_init(&s);
  const int64_t dims[] = {1, 2, 3};
  Shape sh = shape_make(3, dims);
  Tensor *t = rt_set_add(&s, "attn.0", DT_F32, &sh);
  for (int i = 0; i < 6; i++)
    ((float *)t->data)[i] = (float)i;
  Diag d;
  diag_init(&d);
  const char *path = rtt_path(dir, "ref.safetensors");
  ck_assert(rt_safetensors_write(path, &s, &d));
  size_t len;
  unsigned char *raw = rtt_read(path, &len);
  ck_assert_uint_eq(len, sizeof want);
  ck_assert_int_eq(memcmp(raw, want, sizeof want), 0);
  free(raw);
  rt_set_fini(&s);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* The reference serializer re-implemented with json+struct+numpy: sort by dtype alignment
 * (descending, the Rust Dtype order) then name, compact JSON, pad to 8. Also writes a file
 * with __metadata__ and checks that it can parse the file we wrote (argv[1]/ours). */
static const char *python_reference =
    "import sys, json, struct, numpy as np\n"
    "d = sys.argv[1]\n"
    "v = lambda n: (np.arange(n) * 7 + 3) % 251\n"
    "ts = {'w.a': v(6).reshape(2, 3).astype('<f4'), 'b': v(4).astype('<f8'),\n"
    "      'idx': np.array(3, dtype='<i8'), 'lbl': v(3).astype('<i4'),\n"
    "      'img': v(4).reshape(2, 2).astype('|u1'), 'z': v(1).astype('<f4')}\n"
    "names = {'<f4': 'F32', '<f8': 'F64', '<i4': 'I32', '<i8': 'I64', '|u1': 'U8'}\n"
    "rank = {'U8': 0, 'I32': 1, 'F32': 2, 'F64': 3, 'I64': 4}\n"
    "def save(path, meta=None):\n"
    "    order = sorted(ts, key=lambda k: (-rank[names[ts[k].dtype.str]], k))\n"
    "    head, off, blobs = {}, 0, []\n"
    "    if meta: head['__metadata__'] = meta\n"
    "    for k in order:\n"
    "        b = ts[k].tobytes()\n"
    "        head[k] = {'dtype': names[ts[k].dtype.str], 'shape': list(ts[k].shape),\n"
    "                   'data_offsets': [off, off + len(b)]}\n"
    "        off += len(b); blobs.append(b)\n"
    "    h = json.dumps(head, separators=(',', ':')).encode()\n"
    "    h += b' ' * ((8 - len(h) % 8) % 8)\n"
    "    open(path, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))\n"
    "save(d + '/py.safetensors')\n"
    "save(d + '/py_meta.safetensors', {'format': 'pt', 'note': 'x'})\n"
    "raw = open(d + '/ours.safetensors', 'rb').read()\n"
    "n = struct.unpack('<Q', raw[:8])[0]\n"
    "head = json.loads(raw[8:8 + n])\n"
    "assert list(head) == ['idx', 'b', 'w.a', 'z', 'lbl', 'img'], list(head)\n"
    "for k, a in ts.items():\n"
    "    e = head[k]; b0, b1 = e['data_offsets']\n"
    "    got = np.frombuffer(raw[8 + n + b0:8 + n + b1], dtype=a.dtype).reshape(e['shape'])\n"
    "    assert e['dtype'] == names[a.dtype.str] and (got == a).all(), k\n";

START_TEST(test_python_reference) {
  char *dir = rtt_mkdtemp();
  RtTensorSet s, back;
  rt_set_init(&s);
  rt_set_init(&back);
  reference_set(&s);
  ((int64_t *)((Tensor *)rt_set_find(&s, "idx"))->data)[0] = 3; /* np.array(3) */
  Diag d;
  diag_init(&d);
  ck_assert(rt_safetensors_write(rtt_path(dir, "ours.safetensors"), &s, &d));
  rtt_python(python_reference, dir);
  size_t n1, n2;
  unsigned char *ours = rtt_read(rtt_path(dir, "ours.safetensors"), &n1);
  unsigned char *theirs = rtt_read(rtt_path(dir, "py.safetensors"), &n2);
  ck_assert_uint_eq(n1, n2);
  ck_assert_msg(memcmp(ours, theirs, n1) == 0, "our bytes differ from the reference's");
  free(ours);
  free(theirs);
  ck_assert_msg(rt_safetensors_read(rtt_path(dir, "py_meta.safetensors"), &back, &d), "%s",
                diag_text(&d));
  assert_sets_equal(&s, &back);
  rt_set_fini(&s);
  rt_set_fini(&back);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

/* header json (padded) + data_len bytes */
static void write_st(const char *path, const char *json, size_t json_len, size_t data_len) {
  size_t total = 8 + json_len + data_len;
  unsigned char *buf = calloc(total + 1, 1);
  ck_assert_ptr_nonnull(buf);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)((uint64_t)json_len >> (8 * i));
  memcpy(buf + 8, json, json_len);
  rtt_write(path, buf, total);
  free(buf);
}

#define A8 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

START_TEST(test_malformed_headers) {
  static const struct {
    const char *json;
    size_t data;
    const char *want;
  } cases[] = {
      {"{" A8 "}", 8, NULL},                                   /* valid */
      {"{" A8 ",\"__metadata__\":{\"k\":\"v\"}}   ", 8, NULL}, /* valid, padded */
      {"{" A8 "}", 7, "cover 8"},
      {"{" A8 "}", 9, "cover 8"},
      {"{abc", 0, "not a JSON object"},
      {"[1, 2]", 0, "not a JSON object"},
      {"{" A8 "} x", 8, "not a JSON object"},
      {"", 0, "not a JSON object"},
      {"{\"a\":3}", 0, "expected an object"},
      {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "'F16'"},
      {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
       "'shape'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, "dimension 0"},
      {"{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296,4294967296],"
       "\"data_offsets\":[0,8]}}",
       8, "overflow"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8, "data_offsets"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8"},
      {"{" A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
       "starts at byte 4"},
      {"{" A8 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20,
       "starts at byte 12"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "starts at byte 4"},
      {"{" A8 "," A8 "}", 8, "appears twice"},
      {"{" A8 ",\"__metadata__\":{\"k\":1}}", 8, "__metadata__"},
      {"{" A8 ",\"__metadata__\":[]}", 8, "__metadata__"},
  };
  char *dir = rtt_mkdtemp();
  const char *p = rtt_path(dir, "bad.safetensors");
  Diag d;
  diag_init(&d);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_st(p, cases[i].json, strlen(cases[i].json), cases[i].data);
    RtTensorSet s;
    rt_set_init(&s);
    bool ok = rt_safetensors_read(p, &s, &d);
    if (!cases[i].want) {
      ck_assert_msg(ok, "case %zu: %s", i, diag_text(&d));
      ck_assert_ptr_nonnull(rt_set_find(&s, "a"));
    } else {
      rtt_expect_error(ok, &d, cases[i].want, cases[i].json);
      ck_assert_int_eq(s.n, 0); /* nothing half-read */
    }
    rt_set_fini(&s);
  }
  write_st(p, "{\"\xff\":1}", 7, 0); /* not UTF-8 */
  RtTensorSet u;
  rt_set_init(&u);
  rtt_expect_error(rt_safetensors_read(p, &u, &d), &d, "JSON", "bad UTF-8");
  write_st(p, "{\"\xc0\xaf\":1}", 8, 0); /* overlong encoding of '/' */
  rtt_expect_error(rt_safetensors_read(p, &u, &d), &d, "JSON", "overlong UTF-8");
  write_st(p, "{\0}", 3, 0); /* NUL inside the header */
  RtTensorSet s;
  rt_set_init(&s);
  rtt_expect_error(rt_safetensors_read(p, &s, &d), &d, "JSON", "NUL");
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_bad_lengths_and_truncation) {
  char *dir = rtt_mkdtemp();
  const char *good = rtt_path(dir, "good.safetensors"), *bad = rtt_path(dir, "bad.st");
  RtTensorSet s, back;
  rt_set_init(&s);
  rt_set_init(&back);
  reference_set(&s);
  Diag d;
  diag_init(&d);
  ck_assert(rt_safetensors_write(good, &s, &d));
  size_t len;
  unsigned char *raw = rtt_read(good, &len);
  for (size_t cut = 0; cut < len; cut++) {
    rtt_write(bad, raw, cut);
    char what[64];
    snprintf(what, sizeof what, "prefix of %zu bytes", cut);
    rtt_expect_error(rt_safetensors_read(bad, &back, &d), &d, "bad.st", what);
    ck_assert_int_eq(back.n, 0);
  }
  raw[7] = 0x7f; /* header length far beyond the file and the 100 MB limit */
  rtt_write(bad, raw, len);
  rtt_expect_error(rt_safetensors_read(bad, &back, &d), &d, "100 MB", "huge header");
  raw[7] = 0;
  raw[0] = (unsigned char)(raw[0] + 8); /* header length past the JSON: data parsed as JSON */
  rtt_write(bad, raw, len);
  rtt_expect_error(rt_safetensors_read(bad, &back, &d), &d, "bad.st", "long header");
  rtt_expect_error(rt_safetensors_read(rtt_path(dir, "none"), &back, &d), &d, "none", "none");
  /* a failed read leaves an existing set as it was */
  add(&back, "keep", DT_U8, 0, NULL);
  rtt_expect_error(rt_safetensors_read(bad, &back, &d), &d, NULL, "keep");
  ck_assert_int_eq(back.n, 1);
  ck_assert_ptr_nonnull(rt_set_find(&back, "keep"));
  free(raw);
  rt_set_fini(&s);
  rt_set_fini(&back);
  diag_fini(&d);
  rtt_rmdir(dir);
}
END_TEST

START_TEST(test_set_semantics_and_write_errors) {
  RtTensorSet s;
  rt_set_init(&s);
  const int64_t d2[] = {2}, d3[] = {3};
  add(&s, "x", DT_F32, 1, d2);
  Tensor *t = add(&s, "x", DT_I64, 1, d3); /* same name: replaced, not duplicated */
  ck_assert_int_eq(s.n, 1);
  ck_assert_ptr_eq(rt_set_find(&s, "x"), t);
  ck_assert_int_eq(t->dtype, DT_I64);
  ck_assert_int_eq(t->shape.dim[0], 3);
  Shape sh = shape_make(1, d2);
  Tensor *z = rt_set_add(&s, "zero", DT_F64, &sh);
  ck_assert(z && ((double *)z->data)[0] == 0.0 && ((double *)z->data)[1] == 0.0);
  Diag d;
  diag_init(&d);
  rtt_expect_error(rt_safetensors_write("/nonexistent-lathe/c.safetensors", &s, &d), &d,
                   "/nonexistent-lathe/c.safetensors", "no dir");
  /* names must be UTF-8 (the JSON header is); a valid non-ASCII name round-trips */
  char *dir = rtt_mkdtemp();
  const char *path = rtt_path(dir, "u.safetensors");
  rt_set_add(&s, "bad\xc3\x28", DT_U8, &sh);
  rtt_expect_error(rt_safetensors_write(path, &s, &d), &d, "UTF-8", "bad name");
  rt_set_fini(&s);
  rt_set_init(&s);
  add(&s, "caf\xc3\xa9.w", DT_F32, 1, d2);
  RtTensorSet back;
  rt_set_init(&back);
  ck_assert_msg(rt_safetensors_write(path, &s, &d), "%s", diag_text(&d));
  ck_assert_msg(rt_safetensors_read(path, &back, &d), "%s", diag_text(&d));
  ck_assert_ptr_nonnull(rt_set_find(&back, "caf\xc3\xa9.w"));
  rt_set_fini(&back);
  rtt_rmdir(dir);
  rt_set_fini(&s);
  diag_fini(&d);
}
END_TEST

static Suite *safetensors_suite(void) {
  Suite *s = suite_create("runtime_safetensors");
  TCase *tc = tcase_create("safetensors");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_matches_reference_bytes);
  tcase_add_test(tc, test_python_reference);
  tcase_add_test(tc, test_malformed_headers);
  tcase_add_test(tc, test_bad_lengths_and_truncation);
  tcase_add_test(tc, test_set_semantics_and_write_errors);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return test_run_suite(safetensors_suite());
}
