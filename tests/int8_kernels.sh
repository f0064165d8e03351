#!/usr/bin/env bash
# int8 kernels (issue 19, docs/int8.md "Kernels"): every tile of the packed int8 GEMM gives the
# oracle's bytes on the edge cases of tests/int8/qkernels_ref.py (K not a multiple of the group
# or of a vector, odd output columns, one row, batch 64, bytes 0 and 255 after the +128
# offset, weights at +-127 and -128, 7-bit weights at vpmaddubsw's saturation limit and one
# pair past it, scalar requantization operands, padded / strided / dilated / 1x1
# convolutions over several 64-pixel im2col blocks). Per case, from `lathe compile --bake`:
#   - x86-64-v3 under gcc and clang (-std=c99 -O2 -Wall -Wextra -Wpedantic -Werror), run
#     through lathe run: the AVX2 tile, and the C says which (u8 x s8 vpmaddubsw where no
#     weight pair can saturate, else the exact s16 tile, as the generator predicts);
#   - the same C with -DLATHE_NO_VECTOR_EXTENSIONS: the portable tile over the packed weights;
#   - --target generic: the portable loops (the Cortex-M code);
#   - aarch64 cross-built (aarch64-linux-gnu-gcc, Debian gcc-aarch64-linux-gnu) with
#     -march=armv8.2-a+dotprod (the sdot tile, checked to be in the binary) and with plain
#     armv8-a (the portable tile), each run under qemu-aarch64 (Debian qemu-user);
#   - x86-64-v4 (the AVX-512 VNNI tile) is COMPILED ONLY, with gcc and clang -Werror: this
#     test's machines have no AVX-512 VNNI and there is no emulator in Debian (Intel SDE is not
#     packaged), so its arithmetic is checked by review and by sharing the layout and the
#     epilogue with the tiles that run.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
CFLAGS=(-std=c99 -O2 -Wall -Wextra -Wpedantic -Werror)
quiet() { "$@" >"$TMP/log" 2>&1 || { cat "$TMP/log" >&2; echo "FAIL: $*" >&2; exit 1; }; }
for tool in aarch64-linux-gnu-gcc qemu-aarch64; do
  command -v "$tool" >/dev/null || {
    echo "FAIL: $tool missing (Debian gcc-aarch64-linux-gnu / qemu-user, scripts/install-deps.sh)"
    exit 1
  }
done
same() { # got (.npy or raw int8 .bin) want.npy what
  /usr/bin/python3 - "$1" "$2" "$3" <<'PY'
import sys
import numpy as np
want = np.load(sys.argv[2])
got = (np.load(sys.argv[1]) if sys.argv[1].endswith(".npy")
       else np.fromfile(sys.argv[1], np.int8).reshape(want.shape))
if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
    bad = np.argwhere(got != want) if got.shape == want.shape else "shape"
    sys.exit(f"FAIL {sys.argv[3]}: differs at {bad[:5] if not isinstance(bad, str) else bad}")
PY
}

# a standalone driver for the cross-built model: x.bin in, y.bin out
cat >"$TMP/driver.c" <<'EOF'
#include "qk.h"
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  static int8_t x[XN], y[YN];
  qk_params p = {0};
  void *ws = aligned_alloc(64, (QK_FORWARD_WORKSPACE_BYTES / 64 + 1) * 64);
  FILE *in = argc == 3 ? fopen(argv[1], "rb") : NULL;
  if (!ws || !in || fread(x, 1, XN, in) != XN) return 2;
  fclose(in);
  if (!qk_cpu_supported()) return 3;
  qk_forward(&p, x, y, ws);
  FILE *out = fopen(argv[2], "wb");
  if (!out || fwrite(y, 1, YN, out) != YN || fclose(out)) return 4;
  free(ws);
  return 0;
}
EOF

run_so() { # case dir label cc [flags...]
  local c=$1 d=$2 label=$3 cc=$4
  shift 4
  mkdir -p "$d/$label"
  $cc "${CFLAGS[@]}" "$@" -shared -fPIC "$d/qk.c" -o "$d/$label/qk.so" -lm
  quiet "$LATHE" run "$d/$label/qk.so" --input x="$R/$c/x.npy" --out "$d/$label/out"
  same "$d/$label/out/y.npy" "$R/$c/y.npy" "$c: $label"
}

run_aarch64() { # case dir label march xn yn
  local c=$1 d=$2 label=$3 march=$4
  aarch64-linux-gnu-gcc "${CFLAGS[@]}" -march="$march" -c "$d/qk.c" -o "$d/qk-$label.o"
  aarch64-linux-gnu-gcc -std=c11 -O2 -Wall -Wextra -Werror -I"$d" -DXN="$5" -DYN="$6" \
    -c "$TMP/driver.c" -o "$d/driver-$label.o"
  aarch64-linux-gnu-gcc -static "$d/qk-$label.o" "$d/driver-$label.o" -o "$d/qk-$label" -lm
  qemu-aarch64 "$d/qk-$label" "$R/$c/x.bin" "$d/y-$label.bin"
  same "$d/y-$label.bin" "$R/$c/y.npy" "$c: $label"
}

R=$TMP/cases
/usr/bin/python3 "$ROOT/tests/int8/qkernels_ref.py" "$R"
n=0
while read -r c tile xn yn; do
  M=$R/$c/qk.lathe W=$R/$c/weights.safetensors
  d=$R/$c/v3
  quiet "$LATHE" compile "$M" --weights "$W" --bake --target x86-64-v3 -o "$d"
  want="AVX2's exact s16 tile"
  [ "$tile" = u8 ] && want="AVX2's u8 x s8 vpmaddubsw tile"
  grep -q "$want" "$d/qk.c" || {
    echo "FAIL: $c: the C does not run $want"; grep -n -A1 "int8 GEMM:" "$d/qk.c" >&2; exit 1; }
  run_so "$c" "$d" "x86-64-v3 gcc ($tile tile)" gcc
  run_so "$c" "$d" "x86-64-v3 clang ($tile tile)" clang
  run_so "$c" "$d" "x86-64-v3 portable tile" gcc -DLATHE_NO_VECTOR_EXTENSIONS

  d=$R/$c/generic
  quiet "$LATHE" compile "$M" --weights "$W" --bake --target generic -o "$d"
  grep -q "lathe_qgemm" "$d/qk.c" && {
    echo "FAIL: $c: the generic C is not the portable loops"; exit 1; }
  run_so "$c" "$d" "generic loops" gcc

  d=$R/$c/v4
  quiet "$LATHE" compile "$M" --weights "$W" --bake --target x86-64-v4 -o "$d"
  grep -q "lathe_qtile_vnni" "$d/qk.c" || { echo "FAIL: $c: no VNNI tile in the v4 C"; exit 1; }
  for cc in gcc clang; do $cc "${CFLAGS[@]}" -c "$d/qk.c" -o "$d/qk-$cc.o"; done

  d=$R/$c/a64
  quiet "$LATHE" compile "$M" --weights "$W" --bake --target aarch64 -o "$d"
  run_aarch64 "$c" "$d" "aarch64 sdot" armv8.2-a+dotprod "$xn" "$yn"
  aarch64-linux-gnu-nm "$d/qk-aarch64 sdot.o" | grep -q " lathe_qtile_sdot$" || {
    echo "FAIL: $c: the dotprod build has no sdot tile"; exit 1; }
  run_aarch64 "$c" "$d" "aarch64 portable tile" armv8-a "$xn" "$yn"
  echo "ok: $c: x86-64-v3 $tile tile (gcc, clang), portable tile, generic loops, aarch64 sdot" \
    "and portable (qemu) equal the oracle bit for bit; x86-64-v4 VNNI compiled only"
  n=$((n + 1))
done <"$R/cases.txt"
[ "$n" -ge 14 ] || { echo "FAIL: only $n cases ran"; exit 1; }

# the comparison can fail: the packer's saturation check removed (every layer on the u8
# tile) must break the case whose one weight pair (65, 64) meets bytes of 255
c=d_k64_o9_over d=$R/$c/mutant
quiet "$LATHE" compile "$R/$c/qk.lathe" --weights "$R/$c/weights.safetensors" --bake \
  --target x86-64-v3 -o "$d"
sed -i 's/lathe_qkernel_pick_v3(1)/lathe_qkernel_pick_v3(0)/' "$d/qk.c"
if (run_so "$c" "$d" "mutant" gcc) 2>/dev/null; then
  echo "FAIL: vpmaddubsw's saturation went unnoticed"; exit 1
fi
echo "ok: the u8 tile forced onto weights that can saturate it is caught"
