#!/usr/bin/env bash
# The run-time batch end to end (docs/dynamic-batch.md), as an embedding user and a CLI user
# meet it. examples/mlp.lathe compiled with `-D N=dynamic(max=64)` and, for comparison, with a
# fixed batch of 7 and of 64, all three linked into ONE program (--prefix), with gcc and clang
# at -Wall -Wextra -Werror: the dynamic forward at n = 7 and n = 64 equals the fixed builds
# bit for bit, each call running in a workspace of exactly MLPD_FORWARD_WORKSPACE_BYTES(n)
# bytes (so ASan in the sanitizer build sees any byte beyond it), and n = 0 or 65 writes
# nothing. `lathe run` takes any batch up to the bound (37 rows: equal to the -D N=37 build and
# to the reference evaluator) and refuses 70 rows with the bound in the message; `lathe train`
# trains the last partial batch (1000 samples at batch 64: 1000/1000).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
MODEL=$ROOT/examples/mlp.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

"$LATHE" compile "$MODEL" -D 'N=dynamic(max=64)' --prefix mlpd -o gen
"$LATHE" compile "$MODEL" -D N=7 --prefix mlp7 -o gen
"$LATHE" compile "$MODEL" -D N=64 --prefix mlp64 -o gen
grep -q '#define MLPD_MAX_N 64' gen/mlpd.h || { echo "FAIL: no MLPD_MAX_N"; exit 1; }
grep -q '#define MLPD_FORWARD_WORKSPACE_BYTES(n)' gen/mlpd.h ||
  { echo "FAIL: no MLPD_FORWARD_WORKSPACE_BYTES(n)"; exit 1; }
grep -q 'void mlpd_forward(const mlpd_params \*p, const float \*x, float \*probs, void \*ws, int64_t n);' \
  gen/mlpd.h || { echo "FAIL: the dynamic forward does not take int64_t n"; exit 1; }

cat > main.c <<'C'
/* mlp with a run-time batch against its fixed-batch builds: same params, same rows */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp64.h"
#include "mlp7.h"
#include "mlpd.h"

static void *ws_alloc(size_t bytes) { /* exactly bytes, 64-byte aligned */
  void *p = NULL;
  return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

int main(void) {
  static mlpd_params pd;
  static mlp7_params p7;
  static mlp64_params p64;
  static mlpd_state sd;
  static mlp7_state s7;
  static mlp64_state s64;
  mlpd_init(&pd, &sd, 3);
  mlp7_init(&p7, &s7, 3);
  mlp64_init(&p64, &s64, 3);
  if (memcmp(&pd, &p7, sizeof pd) != 0 || memcmp(&pd, &p64, sizeof pd) != 0) {
    puts("FAIL: the three builds initialize different params");
    return 1;
  }
  static float x[64 * 784], yd[64 * 10 + 1], yf[64 * 10];
  unsigned s = 1;
  for (int i = 0; i < 64 * 784; i++) x[i] = (float)((s = s * 1103515245u + 12345u) >> 8) / 16777216.0f;
  for (int n = 7; n <= 64; n += 57) {
    void *ws = ws_alloc(MLPD_FORWARD_WORKSPACE_BYTES(n));
    void *wf = ws_alloc(n == 7 ? MLP7_FORWARD_WORKSPACE_BYTES : MLP64_FORWARD_WORKSPACE_BYTES);
    if (!ws || !wf) return 1;
    yd[n * 10] = -1.0f;
    mlpd_forward(&pd, x, yd, ws, n);
    if (n == 7) mlp7_forward(&p7, x, yf, wf);
    else mlp64_forward(&p64, x, yf, wf);
    if (memcmp(yd, yf, (size_t)n * 10 * sizeof *yd) != 0 || (n < 64 && yd[n * 10] != -1.0f)) {
      printf("FAIL: the dynamic forward at n = %d differs from the fixed build\n", n);
      return 1;
    }
    free(ws), free(wf);
  }
  void *ws = ws_alloc(MLPD_FORWARD_WORKSPACE_BYTES(MLPD_MAX_N));
  memset(yd, 0, sizeof yd);
  mlpd_forward(&pd, x, yd, ws, 0);
  mlpd_forward(&pd, x, yd, ws, MLPD_MAX_N + 1);
  for (int i = 0; i < 64 * 10; i++)
    if (yd[i] != 0.0f) {
      puts("FAIL: n out of range wrote an output");
      return 1;
    }
  free(ws);
  puts("ok: dynamic = fixed at n = 7 and 64");
  return 0;
}
C
for cc in gcc clang; do
  command -v "$cc" >/dev/null || { echo "FAIL: $cc is not installed"; exit 1; }
  "$cc" -std=c99 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200112L -Igen main.c gen/mlpd.c \
    gen/mlp7.c gen/mlp64.c -lm -o "prog_$cc"
  "./prog_$cc"
done

/usr/bin/python3 - <<'PY'
import numpy as np
rng = np.random.default_rng(5)
np.save("x37.npy", rng.random((37, 784), dtype=np.float32))
np.save("x70.npy", rng.random((70, 784), dtype=np.float32))
PY
"$LATHE" run "$MODEL" -D 'N=dynamic(max=64)' -i x=x37.npy -o dyn >/dev/null
"$LATHE" run "$MODEL" -D 'N=dynamic(max=64)' -i x=x37.npy -o ref --reference >/dev/null
"$LATHE" run "$MODEL" -D N=37 -i x=x37.npy -o fixed >/dev/null
/usr/bin/python3 - <<'PY'
import numpy as np
d, r, f = (np.load(f"{k}/probs.npy") for k in ("dyn", "ref", "fixed"))
assert d.shape == (37, 10), d.shape
assert np.array_equal(d, f), "lathe run: dynamic != -D N=37"
assert np.abs(d - r).max() < 1e-5, np.abs(d - r).max()
PY
if "$LATHE" run "$MODEL" -D 'N=dynamic(max=64)' -i x=x70.npy > err.txt 2>&1; then
  echo "FAIL: 70 rows accepted by a model bounded at 64"; exit 1
fi
grep -q "has 70 rows; the model takes a multiple of 1, at most 64" err.txt ||
  { echo "FAIL: unclear error:"; cat err.txt; exit 1; }

"$LATHE" train "$MODEL" -D 'N=dynamic(max=64)' --data fashion-mnist --epochs 1 --limit 1000 \
  > train.txt 2>&1 || { cat train.txt; exit 1; }
grep -q "1000/1000" train.txt || { echo "FAIL: the epoch did not cover 1000 samples:"; cat train.txt; exit 1; }
echo "dyn_batch: ok"
