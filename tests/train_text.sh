#!/usr/bin/env bash
# `lathe train --data text=FILE` (runtime/data_text.c, docs/gpt.md, docs/training.md) from the
# command line, on /usr/share/common-licenses/GPL-3 (Debian's base-files, which is Essential).
# - examples/gpt.lathe shrunk with -D (D 16, 2 heads, T 16, batch 8), 2 epochs of 256 windows:
#   the training and validation losses fall, CKPT.vocab holds the text's sorted distinct bytes;
# - a tiny embed + dense model for the rest (its C compiles in a moment, where the GPT's four
#   blocks take most of this test's time): a second run resumes from the checkpoint for a
#   second epoch; eval reads CKPT.vocab back (the validation loss of training again; a byte
#   training never saw is an error); and each bad input is a clear error with exit status 1 —
#   a missing, empty or short file, a text too short for a validation window, more distinct
#   bytes than the model's bound (its output classes, or an embed table with fewer rows),
#   --val-split.
set -euo pipefail
LATHE=$1
ROOT=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
TEXT=/usr/share/common-licenses/GPL-3
[[ -s $TEXT ]] || { echo "$TEXT is missing: base-files is Essential on Debian" >&2; exit 1; }
GPT=(-D D=16 -D HIDDEN=32 -D HEADS=2 -D KV_HEADS=1 -D T=16 -D B=8)

"$LATHE" train "$ROOT/examples/gpt.lathe" --data "text=$TEXT" "${GPT[@]}" --epochs 2 --limit 256 \
  --seed 3 --checkpoint "$TMP/g.safetensors" --log "$TMP/g.csv" 2> "$TMP/g.err"
grep "^epoch [0-9]/[0-9]:" "$TMP/g.err"
/usr/bin/python3 - "$TEXT" "$TMP" <<'PY'
import csv, math, sys
text, tmp = open(sys.argv[1], "rb").read(), sys.argv[2]
vocab = open(f"{tmp}/g.safetensors.vocab", "rb").read()
assert vocab == bytes(sorted(set(text))), "CKPT.vocab is not the text's sorted distinct bytes"
rows = list(csv.DictReader(open(f"{tmp}/g.csv")))
assert [r["epoch"] for r in rows] == ["1", "2"], rows
train = [float(r["train_loss"]) for r in rows]
val = [float(r["val_loss"]) for r in rows]
print(f"train loss {train}, val loss {val}, uniform {math.log(len(vocab)):.4f}")
assert train[1] < train[0] and val[1] < val[0], "the loss did not fall"
assert val[1] < math.log(len(vocab)), "no better than a uniform guess"
PY

# a tiny model: E embedding rows, V output classes
cat > "$TMP/tiny.lathe" <<'EOF_MODEL'
import nn
const B = 4
const T = 8
const V = 96
const E = V
model tiny(x: i32[B, T], target: i32[B, T]) {
  tok    = embed(x, E, 8)
  logits = dense(tok, V, bias = false)
  output probs = softmax(logits)
  loss   = cross_entropy(reshape(logits, [B * T, V]), reshape(target, [B * T]))
}
train tiny {
  minimize loss
  optimizer adam(lr = 1e-2)
}
EOF_MODEL
T=$TMP/tiny.lathe
"$LATHE" train "$T" --data "text=$TEXT" --limit 512 --checkpoint "$TMP/t.safetensors" \
  --log "$TMP/t.csv" 2> /dev/null
"$LATHE" train "$T" --data "text=$TEXT" --limit 512 --epochs 2 --resume "$TMP/t.safetensors" \
  --checkpoint "$TMP/t.safetensors" --log "$TMP/t2.csv" > "$TMP/t.out" 2> "$TMP/t.err"
grep "^resuming\|^epoch [0-9]/[0-9]:" "$TMP/t.err"
grep -q "resuming from $TMP/t.safetensors after epoch 1" "$TMP/t.err"
grep -q "^epoch 2/2: " "$TMP/t.err"
[[ $(grep -c "" "$TMP/t2.csv") -eq 2 ]] # the header and epoch 2 only
cat "$TMP/t.out"
head -c 3000 "$TEXT" > "$TMP/head.txt" # fewer distinct bytes: its ids are re-numbered
"$LATHE" eval "$T" --weights "$TMP/t.safetensors" --data "text=$TEXT" > "$TMP/e.out"
"$LATHE" eval "$T" --weights "$TMP/t.safetensors" --data "text=$TMP/head.txt" > "$TMP/h.out"
cat "$TMP/e.out" "$TMP/h.out"
want=$(sed -n 's/.*val loss \([0-9.]*\).*/\1/p' "$TMP/t.out")
got=$(sed -n 's/^test loss \([0-9.]*\) .*/\1/p' "$TMP/e.out")
[[ -n $want && $want == "$got" ]] ||
  { echo "eval's loss $got is not training's $want" >&2; exit 1; }

# expect_error WANT ARGS...: lathe exits 1 and says WANT
expect_error() {
  local want=$1 rc=0
  shift
  "$LATHE" "$@" > /dev/null 2> "$TMP/err.txt" || rc=$?
  cat "$TMP/err.txt"
  [[ $rc -eq 1 ]] || { echo "exit status $rc, expected 1: $*" >&2; exit 1; }
  grep -qF -- "$want" "$TMP/err.txt" || { echo "expected '$want'" >&2; exit 1; }
}
printf 'caf\xc3\xa9 %.0s' {1..40} > "$TMP/new.txt"
expect_error "byte 0xa9 is not in the vocabulary of training" \
  eval "$T" --weights "$TMP/t.safetensors" --data "text=$TMP/new.txt"
expect_error "text=$TMP/none.txt: cannot read it" train "$T" --data "text=$TMP/none.txt"
: > "$TMP/empty.txt"
expect_error "$TMP/empty.txt is empty: expected text of at least 90 bytes" \
  train "$T" --data "text=$TMP/empty.txt"
printf 'abcdef' > "$TMP/short.txt"
expect_error "$TMP/short.txt has 6 bytes: expected at least T + 1 = 9" \
  train "$T" --data "text=$TMP/short.txt"
head -c 60 "$TEXT" > "$TMP/sixty.txt"
expect_error "validation split (the last 10%, 6 bytes) holds no window of T + 1 = 9 bytes" \
  train "$T" --data "text=$TMP/sixty.txt"
expect_error "has 76 distinct bytes but the model's vocabulary bound is 40" \
  train "$T" --data "text=$TEXT" -D V=40
expect_error "has 76 distinct bytes but the model's vocabulary bound is 50" \
  train "$T" --data "text=$TEXT" -D E=50
expect_error "has its own validation split" train "$T" --data "text=$TEXT" --val-split 0.2
echo "text data: all checks passed"
