#!/usr/bin/env bash
# End to end: examples/cnn.lathe (conv2d, max_pool2d, dense) → C, built warning-free with gcc
# and clang at -Werror; `lathe run` and `lathe grad` on a PyTorch fixture (same weights,
# tests/fixtures/make_cnn_fixture.py, batch 16 via -D N=16) against PyTorch's probabilities,
# loss and gradients, relative error <= 1e-4; and the IR reference evaluator agrees.
set -euo pipefail
LATHE=$1
ROOT=$2
FIX=$ROOT/tests/fixtures/cnn
MODEL=$ROOT/examples/cnn.lathe
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$LATHE" compile "$MODEL" -o "$TMP/c"
"$LATHE" compile -D N=1 "$MODEL" -o "$TMP/c1"   # batch 1: extent-1 loops
"$LATHE" compile -O0 "$MODEL" -o "$TMP/c0"       # unfused: every reduction its own loop
for cc in gcc clang; do
  for dir in c c1 c0; do
    for opt in -O1 "-O3 -march=native -fno-math-errno"; do # -O3: the loop-bound warnings
      # shellcheck disable=SC2086
      $cc -std=c99 -Wall -Wextra -Werror $opt -c "$TMP/$dir/cnn.c" -o "$TMP/$dir/cnn-$cc.o"
    done
  done
  echo "ok: generated C builds with $cc -std=c99 -Wall -Wextra -Werror at -O1 and -O3"
done

"$LATHE" run -D N=16 "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
  --out "$TMP/out"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$FIX/probs.npy" 1e-4
"$LATHE" run --reference -D N=16 "$MODEL" --weights "$FIX/weights.safetensors" \
  --input x="$FIX/x.npy" --out "$TMP/ref"
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/out/probs.npy" "$TMP/ref/probs.npy" 1e-4

"$LATHE" grad -D N=16 "$MODEL" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
  --input label="$FIX/label.npy" --out "$TMP/grad" | tee "$TMP/loss.txt"
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 - "$TMP/loss.txt" "$FIX/loss.npy" <<'PY'
import sys, numpy as np
got = float(open(sys.argv[1]).read().split()[1])
want = float(np.load(sys.argv[2]))
err = abs(got - want) / abs(want)
print(f"loss {got:.7g} vs PyTorch {want:.7g}: relative error {err:.2g}")
sys.exit(0 if err <= 1e-4 else 1)
PY

# the three ways to run the model agree to 1e-6: a shared object from `lathe build` (called
# through libffi), the in-process JIT, and cc + dlopen
"$LATHE" build -D N=16 "$MODEL" -o "$TMP/libcnn.so"
"$LATHE" run "$TMP/libcnn.so" --weights "$FIX/weights.safetensors" --input x="$FIX/x.npy" \
  --out "$TMP/so"
for backend in jit cc; do
  "$LATHE" run -D N=16 --backend $backend "$MODEL" --weights "$FIX/weights.safetensors" \
    --input x="$FIX/x.npy" --out "$TMP/$backend"
  /usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/$backend/probs.npy" "$TMP/so/probs.npy" 1e-6
done

# --threads 2: the same C with OpenMP pragmas (conv images, pooling, large elementwise loops,
# GEMM slivers), built with -fopenmp by the loader; the results stay those of PyTorch. At
# batch 64 so the elementwise kernels pass the size at which they are shared out.
"$LATHE" compile --threads 2 "$MODEL" -o "$TMP/t"
grep -q 'LATHE_OMP_FOR$' "$TMP/t/cnn.c" || { echo "FAIL: --threads 2 wrote no LATHE_OMP_FOR"; exit 1; }
for cc in gcc clang; do
  $cc -std=c99 -Wall -Wextra -Werror -O1 -c "$TMP/t/cnn.c" -o "$TMP/t/cnn-$cc.o"
done
gcc -std=c99 -Wall -Wextra -Werror -O1 -fopenmp -c "$TMP/t/cnn.c" -o "$TMP/t/cnn-omp.o"
echo "ok: --threads 2 C builds with and without -fopenmp, warning-free"
"$LATHE" grad --threads 2 -D N=16 "$MODEL" --weights "$FIX/weights.safetensors" \
  --input x="$FIX/x.npy" --input label="$FIX/label.npy" --out "$TMP/grad2" >/dev/null
/usr/bin/python3 "$ROOT/tests/compare_safetensors.py" "$TMP/grad2/grads.safetensors" \
  "$FIX/grads.safetensors" 1e-4
/usr/bin/python3 -c "
import numpy as np
np.save('$TMP/x64.npy', np.tile(np.load('$FIX/x.npy'), (4, 1, 1, 1)))"
"$LATHE" run "$MODEL" --weights "$FIX/weights.safetensors" --input x="$TMP/x64.npy" \
  --out "$TMP/o1" >/dev/null
"$LATHE" run --threads 2 "$MODEL" --weights "$FIX/weights.safetensors" \
  --input x="$TMP/x64.npy" --out "$TMP/o2" >/dev/null
/usr/bin/python3 "$ROOT/tests/compare_npy.py" "$TMP/o2/probs.npy" "$TMP/o1/probs.npy" 1e-5
