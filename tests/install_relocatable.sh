#!/usr/bin/env bash
# A relocatable install: `cmake --install` into a temporary prefix, the prefix moved elsewhere,
# the source and build trees hidden (a tmpfs mounted over them in a private mount namespace),
# $LATHE_LIB unset; the installed `lathe` must still check, compile and run a model that does
# `import nn` (the layer library is built into lathe), and the embedding example, compiled
# against the moved prefix with pkg-config, must compile and call it too.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
BUILD=$(cd "$(dirname "$LATHE")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
unset LATHE_LIB

cmake --install "$BUILD" --prefix "$TMP/first" > install.log
mv "$TMP/first" "$TMP/moved"
export PKG_CONFIG_PATH=$TMP/moved/lib/pkgconfig
cc -std=c11 -Wall -Wextra -Werror "$ROOT/examples/embed/main.c" \
  $(pkg-config --cflags --libs lathe) -o embed
cp "$ROOT/examples/mlp.lathe" "$ROOT/tests/fixtures/mlp/weights.safetensors" .
/usr/bin/python3 -c "
import numpy as np
np.save('x.npy', (np.arange(64 * 784) % 17 / 16).astype(np.float32).reshape(64, 784))"
echo "ok: installed into a prefix, moved it, built the embedding example against it"

# run.sh [hidden]: the installed lathe and the embedding example, away from the trees
cat > run.sh <<RUN
set -euo pipefail
cd "$TMP"
for dir in "$ROOT" "$BUILD"; do
  if [ "\${1:-}" = hidden ] && [ -e "\$dir/lib/nn.lathe" -o -e "\$dir/CMakeCache.txt" ]; then
    echo "FAIL: \$dir is still visible"; exit 1
  fi
done
moved/bin/lathe check mlp.lathe
moved/bin/lathe run mlp.lathe --weights weights.safetensors --input x=x.npy --out out
./embed mlp.lathe weights.safetensors > embed.txt
grep -q "argmax:" embed.txt
RUN
hide="mount -t tmpfs none '$ROOT'"
[ "$BUILD" = "${BUILD#$ROOT/}" ] && hide="$hide && mount -t tmpfs none '$BUILD'"
if unshare -m true 2> /dev/null; then
  unshare -m sh -c "$hide && bash run.sh hidden"
  echo "ok: with the source and build trees hidden, the installed lathe checks and runs" \
       "mlp.lathe (import nn) and the embedding example compiles and calls it"
else
  echo "note: no mount namespace here (unshare -m needs root), so the trees stay visible:" \
       "only the moved prefix is tested"
  bash run.sh
  echo "ok: the moved install checks and runs mlp.lathe and the embedding example"
fi
[ -f out/probs.npy ] || { echo "FAIL: no out/probs.npy"; exit 1; }
