#!/usr/bin/env bash
# The embedding API end to end: liblathe installed by `cmake --install` (static library,
# lathe.pc, CMake package config); examples/embed/main.c compiled against it with pkg-config
# and run on examples/mlp.lathe with the PyTorch fixture weights; its scores and argmax must
# match the IR reference evaluator (`lathe run --reference`) on the same test pattern.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$2
BUILD=$(cd "$(dirname "$LATHE")" && pwd)
FIX=$ROOT/tests/fixtures/mlp
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

cmake --install "$BUILD" --prefix "$TMP/prefix" >install.log
for f in include/lathe/lathe.h include/lathe/model_info.h lib/liblathe.a lib/pkgconfig/lathe.pc \
         lib/cmake/lathe/latheConfig.cmake lib/cmake/lathe/latheTargets.cmake; do
  [[ -f prefix/$f ]] || { echo "FAIL: cmake --install did not install $f"; exit 1; }
done
echo "ok: cmake --install installs liblathe, its headers, lathe.pc and the CMake config"

export PKG_CONFIG_PATH=$TMP/prefix/lib/pkgconfig
cc -std=c11 -Wall -Wextra -Werror "$ROOT/examples/embed/main.c" $(pkg-config --cflags --libs lathe) \
  -o embed
./embed "$ROOT/examples/mlp.lathe" "$FIX/weights.safetensors" | tee embed.txt

/usr/bin/python3 -c "
import numpy as np
x = (np.arange(784) % 17 / 16).astype(np.float32)
np.save('x.npy', np.tile(x, (64, 1)))"
"$LATHE" run --reference "$ROOT/examples/mlp.lathe" --weights "$FIX/weights.safetensors" \
  --input x=x.npy --out ref
/usr/bin/python3 - <<'PY'
import numpy as np, re, sys
text = open('embed.txt').read()
scores = np.array([float(v) for v in re.search(r'scores:(.*)', text).group(1).split()])
argmax = int(re.search(r'argmax: (\d+)', text).group(1))
ref = np.load('ref/probs.npy')[0].astype(np.float64)
err = np.max(np.abs(scores - ref))
print(f"embed vs reference: max abs error {err:.3g}, argmax {argmax} vs {int(ref.argmax())}")
sys.exit(0 if err < 1e-5 and argmax == int(ref.argmax()) else 1)
PY

# errors come back as text: a model with a mistake, compiled through the API
printf 'model bad(x: f32[4]) {\n  output y = relu(x) + nosuch\n}\n' > bad.lathe
set +e
./embed bad.lathe >out.txt 2>err.txt
rc=$?
set -e
[[ $rc -eq 1 ]] && grep -q "bad.lathe:2:" err.txt || { echo "FAIL: bad model:"; cat err.txt; exit 1; }
echo "ok: a model error comes back as a diagnostic ($(head -1 err.txt))"
