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
  case INIT_COUNT: IR_ASSERT(!"bad init kind"); break;
  }
}
