/* ir/init.c — deterministic parameter initializers.
 *
 * Invariant: the values depend only on (seed, decl->name, decl->shape, decl->init) and are
 * identical on every machine and to the generated <model>_init, which codegen emits with the
 * same algorithm — keep both bit-for-bit in step:
 *   key  = splitmix64(seed ^ fnv1a64(name))
 *   u(i) = (splitmix64(key + i) >> 11) * 2^-53            uniform in [0, 1)
 *   uniform(lo, hi)[i]    = lo + (hi - lo) * u(i)
 *   normal(mean, std)[i]  = mean + std * z, Box-Muller on the pair (u(j), u(j+1)), j = i & ~1:
 *                           r = sqrt(-2 log(1 - u(j))), t = 2 pi u(j+1),
 *                           z = i odd ? r sin t : r cos t
 * Values are computed in double and stored with tensor_set, which rounds to the dtype.
 *   orthogonal: normal(0, 1), then modified Gram-Schmidt on the rows of the [dim0,
 *                           numel/dim0] matrix if rows <= cols, else on its columns: for each
 *                           vector i, for j < i: d = sum_k v_i[k] v_j[k]; v_i[k] -= d v_j[k];
 *                           then v_i[k] /= sqrt(sum_k v_i[k]^2) — every sum in k order, every
 *                           product a separate statement (no FMA contraction), every store
 *                           rounded to the dtype.
 */
#include <math.h>

#include "ir_internal.h"

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t fnv1a64(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ull;
  }
  return h;
}

static double init_u(uint64_t key, int64_t i) {
  return (double)(splitmix64(key + (uint64_t)i) >> 11) * 0x1.0p-53;
}

static void fill_uniform(Tensor *out, uint64_t key, double lo, double hi) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, lo + (hi - lo) * init_u(key, i));
}

static void fill_normal(Tensor *out, uint64_t key, double mean, double std) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) {
    int64_t j = i & ~(int64_t)1;
    double r = sqrt(-2.0 * log(1.0 - init_u(key, j)));
    double t = 6.283185307179586 * init_u(key, j + 1);
    double z = (i & 1) ? r * sin(t) : r * cos(t);
    tensor_set(out, i, mean + std * z);
  }
}

static void fill_constant(Tensor *out, double v) {
  int64_t count = shape_numel(&out->shape);
  for (int64_t i = 0; i < count; i++) tensor_set(out, i, v);
}

/* element k of vector v of the orthogonalized matrix (see the header comment) */
typedef struct Ortho {
  int64_t vecs, len, vs, es;
} Ortho;

static double oget(const Tensor *t, const Ortho *o, int64_t v, int64_t k) {
  return tensor_get(t, v * o->vs + k * o->es);
}

static void fill_orthogonal(Tensor *out, uint64_t key) {
  fill_normal(out, key, 0.0, 1.0);
  if (!dtype_is_float(out->dtype)) return; /* integers: the normal draw, truncated */
  int64_t n = shape_numel(&out->shape), rows = out->shape.rank ? out->shape.dim[0] : 1;
  int64_t cols = n / rows;
  Ortho o = rows <= cols ? (Ortho){rows, cols, cols, 1} : (Ortho){cols, rows, 1, cols};
  for (int64_t i = 0; i < o.vecs; i++) {
    for (int64_t j = 0; j < i; j++) {
      double d = 0.0;
      for (int64_t k = 0; k < o.len; k++) {
        double p = oget(out, &o, i, k) * oget(out, &o, j, k);
        d += p;
      }
      for (int64_t k = 0; k < o.len; k++) {
        double p = d * oget(out, &o, j, k);
        tensor_set(out, i * o.vs + k * o.es, oget(out, &o, i, k) - p);
      }
    }
    double s = 0.0;
    for (int64_t k = 0; k < o.len; k++) {
      double p = oget(out, &o, i, k) * oget(out, &o, i, k);
      s += p;
    }
    double norm = sqrt(s);
    for (int64_t k = 0; k < o.len; k++)
      tensor_set(out, i * o.vs + k * o.es, oget(out, &o, i, k) / norm);
  }
}

void ir_init_fans(const Shape *s, double *fan_in, double *fan_out) {
  if (s->rank == 0) {
    *fan_in = *fan_out = 1;
  } else if (s->rank == 1) {
    *fan_in = *fan_out = (double)s->dim[0];
  } else if (s->rank == 2) {
    *fan_in = (double)s->dim[0];
    *fan_out = (double)s->dim[1];
  } else {
    double receptive = 1;
    for (int i = 2; i < s->rank; i++) receptive *= (double)s->dim[i];
    *fan_in = (double)s->dim[1] * receptive;
    *fan_out = (double)s->dim[0] * receptive;
  }
}

void ir_init_tensor(const TensorDecl *decl, uint64_t seed, Tensor *out) {
  bool ok = tensor_alloc(out, decl->dtype, &decl->shape);
  IR_ASSERT(ok);
  uint64_t key = splitmix64(seed ^ fnv1a64(decl->name));
  double fan_in, fan_out, a = decl->init.a, b = decl->init.b;
  ir_init_fans(&decl->shape, &fan_in, &fan_out);
  switch (decl->init.kind) {
  case INIT_ZEROS: break; /* tensor_alloc zero-fills */
  case INIT_ONES: fill_constant(out, 1.0); break;
  case INIT_CONSTANT: fill_constant(out, a); break;
  case INIT_UNIFORM: fill_uniform(out, key, a, b); break;
  case INIT_NORMAL: fill_normal(out, key, a, b); break;
  case INIT_GLOROT_UNIFORM: {
    double l = sqrt(6.0 / (fan_in + fan_out));
    fill_uniform(out, key, -l, l);
    break;
  }
  case INIT_GLOROT_NORMAL: fill_normal(out, key, 0.0, sqrt(2.0 / (fan_in + fan_out))); break;
  case INIT_HE_UNIFORM: {
    double l = sqrt(6.0 / fan_in);
    fill_uniform(out, key, -l, l);
    break;
  }
  case INIT_HE_NORMAL: fill_normal(out, key, 0.0, sqrt(2.0 / fan_in)); break;
  case INIT_ORTHOGONAL: fill_orthogonal(out, key); break;
  case INIT_COUNT: IR_ASSERT(!"bad init kind"); break;
  }
}
