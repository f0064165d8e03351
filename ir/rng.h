/* ir/rng.h — lathe's counter-based random number generator, shared by the reference
 * evaluator (ir/struct_ops.c) and, as identical C text, by generated code
 * (codegen/lower_struct.c emits LATHE_RNG_C_SOURCE, and LATHE_RNG_NORMAL_C_SOURCE after it). No global state: element i of stream
 * `stream` at training step `step` of a model seeded `seed` is a pure function of the four.
 *
 *   bits(seed, step, stream, i) = mix(mix(mix(seed ^ stream << 32) ^ step) ^ i)
 *   mix = the splitmix64 finalizer (Steele, Lea, Flood 2014)
 *   uniform = (bits >> 11) * 2^-53 in [0, 1)
 *   normal = Box-Muller of uniforms 2i and 2i+1: sqrt(-2 log(1 - u1)) cos(2 pi u2)
 * Doubles throughout, so the evaluator and generated C agree bit for bit (same libm).
 */
#ifndef LATHE_IR_RNG_H
#define LATHE_IR_RNG_H

#include <math.h>
#include <stdint.h>

#define LATHE_RNG_C_SOURCE                                                                   \
  "#ifndef LATHE_RNG_DEFINED\n"                                                              \
  "#define LATHE_RNG_DEFINED\n"                                                              \
  "static inline uint64_t lathe_rng_mix(uint64_t z) {\n"                                     \
  "  z += 0x9E3779B97F4A7C15ull;\n"                                                          \
  "  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;\n"                                         \
  "  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;\n"                                         \
  "  return z ^ (z >> 31);\n"                                                                \
  "}\n"                                                                                      \
  "static inline uint64_t lathe_rng_key(double v) {\n"                                       \
  "  return v >= 0.0 && v < 1.8e19 ? (uint64_t)v : 0;\n"                                     \
  "}\n"                                                                                      \
  "static inline double lathe_rng_uniform(uint64_t seed, uint64_t step, uint64_t stream,\n"  \
  "                                       uint64_t i) {\n"                                   \
  "  uint64_t h = lathe_rng_mix(lathe_rng_mix(seed ^ (stream << 32)) ^ step);\n"              \
  "  h = lathe_rng_mix(h ^ i);\n"                                                             \
  "  return (double)(h >> 11) * (1.0 / 9007199254740992.0);\n"                               \
  "}\n"                                                                                      \
  "#endif\n"

/* emitted only where a normal is drawn (clang warns about unused static inline functions) */
#define LATHE_RNG_NORMAL_C_SOURCE                                                            \
  "#ifndef LATHE_RNG_NORMAL_DEFINED\n"                                                       \
  "#define LATHE_RNG_NORMAL_DEFINED\n"                                                       \
  "static inline double lathe_rng_normal(uint64_t seed, uint64_t step, uint64_t stream,\n"   \
  "                                      uint64_t i) {\n"                                    \
  "  double u1 = lathe_rng_uniform(seed, step, stream, 2 * i);\n"                            \
  "  double u2 = lathe_rng_uniform(seed, step, stream, 2 * i + 1);\n"                        \
  "  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);\n"                     \
  "}\n"                                                                                      \
  "#endif\n"

static inline uint64_t lathe_rng_mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* a seed or step value (a double state) as a key; non-finite or negative values give 0 */
static inline uint64_t lathe_rng_key(double v) { return v >= 0.0 && v < 1.8e19 ? (uint64_t)v : 0; }
static inline double lathe_rng_uniform(uint64_t seed, uint64_t step, uint64_t stream,
                                       uint64_t i) {
  uint64_t h = lathe_rng_mix(lathe_rng_mix(seed ^ (stream << 32)) ^ step);
  h = lathe_rng_mix(h ^ i);
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
static inline double lathe_rng_normal(uint64_t seed, uint64_t step, uint64_t stream,
                                      uint64_t i) {
  double u1 = lathe_rng_uniform(seed, step, stream, 2 * i);
  double u2 = lathe_rng_uniform(seed, step, stream, 2 * i + 1);
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

#endif
