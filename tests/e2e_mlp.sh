#!/usr/bin/env bash
# End to end: examples/mlp.lathe → C, built warning-free with gcc and clang at -Werror, run
# through `lathe run` on a PyTorch fixture (same weights), compared with PyTorch's outputs
# and with the IR reference evaluator (`lathe run --reference`), relative error <= 1e-5.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/mlp
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$LATHE" compile "$ROOT/examples/mlp.lathe" -o "$TMP/c"
"$LATHE" compile --line-directives "$ROOT/examples/mlp.lathe" -o "$TMP/cl"
"$LATHE" compile -D N=1 "$ROOT/examples/mlp.lathe" -o "$TMP/c1"   # batch 1: extent-1 loops
for cc in gcc clang; do
  for dir in c cl c1; do
    $cc -std=c99 -Wall -Wextra -Werror -O1 -c "$TMP/$dir/mlp.c" -o "$TMP/$dir/mlp-$cc.o"
  done
  echo "ok: generated C builds with $cc -std=c99 -Wall -Wextra -Werror"
done

"$LATHE" run "$ROOT/examples/mlp.lathe" --weights "$FIX/weights.safetensors" \
  --input x="$FIX/x.npy" --out "$TMP/out"
"$LATHE" run --reference "$ROOT/examples/mlp.lathe" --weights "$FIX/weights.safetensors" \
  --input x="$FIX/x.npy" --out "$TMP/ref"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$FIX/probs.npy" 1e-5
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$TMP/ref/probs.npy" 1e-5

# batch 1 through -D N=1: the first sample's probabilities equal the batch-64 run's first row
/usr/bin/python3 -c "import numpy as np; np.save('$TMP/x1.npy', np.load('$FIX/x.npy')[:1])"
"$LATHE" run -D N=1 "$ROOT/examples/mlp.lathe" --weights "$FIX/weights.safetensors" \
  --input x="$TMP/x1.npy" --out "$TMP/out1"
/usr/bin/python3 -c "import numpy as np; np.save('$TMP/p1.npy', np.load('$FIX/probs.npy')[:1])"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out1/probs.npy" "$TMP/p1.npy" 1e-5

# A standalone program linking the generated C: init, forward, finite outputs.
cat > "$TMP/main.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "mlp.h"
static mlp_params params;
static mlp_state state;
static float x[64 * 784], probs[64 * 10];
static _Alignas(64) unsigned char ws[MLP_WORKSPACE_BYTES];
int main(void) {
  mlp_init(&params, &state, 42);
  for (int i = 0; i < 64 * 784; i++) x[i] = (float)(i % 255) / 255.0f;
  mlp_forward(&params, x, probs, ws);
  for (int n = 0; n < 64; n++) {
    double s = 0;
    for (int c = 0; c < 10; c++) s += probs[n * 10 + c];
    if (!(fabs(s - 1.0) < 1e-4)) { printf("row %d sums to %g\n", n, s); return 1; }
  }
  printf("ok: standalone forward, rows sum to 1, info '%s' has %d params\n", mlp_info.name,
         mlp_info.n_params);
  return 0;
}
C
gcc -std=c11 -Wall -Wextra -Werror -O2 -I"$TMP/c" "$TMP/main.c" "$TMP/c/mlp.c" -o "$TMP/main" -lm
"$TMP/main"
