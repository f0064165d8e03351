#!/usr/bin/env bash
# Bring your own data, images: a tiny CNN (tests/data/tiny_cnn.lathe) trains on an
# ImageFolder dataset of generated 20x20 PNG and JPEG images (tests/data/make_images.py; read
# with libpng and libjpeg, resized to the model's 16x16 input) with flip and crop
# augmentation, and classifies the held-out images; the class names come from the
# directories. A truncated JPEG, a file that is no PNG and headers claiming 60000 x 50000
# pixels are errors naming the file.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
/usr/bin/python3 "$ROOT/tests/data/make_images.py" "$TMP"
M=$ROOT/tests/data/tiny_cnn.lathe

"$LATHE" train "$M" --data "$TMP/train" --val "$TMP/test" --epochs 12 --seed 4 --flip \
  --crop-pad 1 --checkpoint "$TMP/w.safetensors" > "$TMP/out.txt" 2> "$TMP/err.txt"
grep -E "^epoch" "$TMP/err.txt" | tail -3
/usr/bin/python3 -c "
import re; a=float(re.search(r'val accuracy ([\d.]+)%', open('$TMP/out.txt').read()).group(1))
assert a >= 90, f'image-folder CNN val accuracy {a}% < 90%'; print('ok: image-folder CNN', a)"
"$LATHE" eval "$M" -w "$TMP/w.safetensors" --data "$TMP/test" > "$TMP/eval.txt"
[[ $(grep -cE "^ +(dots|hstripes|vstripes) +[01]\.[0-9]{4} " "$TMP/eval.txt") -eq 3 ]]
"$LATHE" predict "$M" -w "$TMP/w.safetensors" --data "$TMP/test" --out "$TMP/p.csv" 2> /dev/null
[[ $(cut -d, -f1 "$TMP/p.csv" | sort | uniq -c | wc -l) -ge 3 ]]
echo "ok: eval reports the classes by name; predict wrote $(($(wc -l < "$TMP/p.csv") - 1)) rows"

for bad in truncated notpng; do
  if "$LATHE" train "$M" --data "$TMP/$bad" --epochs 1 > "$TMP/bad.txt" 2>&1; then
    echo "accepted $bad"
    exit 1
  fi
  grep -E "$bad/dots/(cut.jpg: corrupt or truncated JPEG|fake.png: cannot read the PNG)" \
    "$TMP/bad.txt" > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
done
echo "ok: bad images rejected naming the file"

for big in hugepng/dots/big.png hugejpg/dots/big.jpg; do
  if "$LATHE" train "$M" --data "$TMP/${big%%/*}" --epochs 1 > "$TMP/bad.txt" 2>&1; then
    echo "accepted $big"
    exit 1
  fi
  grep -F "$big: the image is 60000 x 50000 pixels, more than the 67108864 pixels" \
    "$TMP/bad.txt" > /dev/null || { cat "$TMP/bad.txt"; exit 1; }
done
echo "ok: an image header claiming 3 Gpixel is refused before decoding"
