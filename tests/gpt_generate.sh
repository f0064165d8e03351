#!/usr/bin/env bash
# `lathe generate` (issue #22): examples/gpt.lathe's decode step gpt_step at small sizes, with
# random weights of gpt (tests/gpt/random_checkpoint.py: the step loads gpt's checkpoint by
# param name) and the vocabulary of a text. A seed prints the same text twice, and another
# seed another text; temperature 0 ignores the seed; more tokens than the context slide it.
# Errors: a prompt byte outside the vocabulary, a prompt longer than the context, a missing
# vocabulary, a checkpoint of another model, a model that is not a step (exit 1); bad
# options (exit 2).
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
PY=/usr/bin/python3
MODEL=$ROOT/examples/gpt.lathe
SMALL=(-D T=16 -D D=32 -D HEADS=4 -D KV_HEADS=2 -D HIDDEN=48)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
$PY -c 'import numpy' || { echo "gpt_generate: python3-numpy is missing" >&2; exit 1; }
$PY "$ROOT/tests/gpt/random_checkpoint.py" "$LATHE" "$MODEL" w.safetensors 1 "${SMALL[@]}"
printf 'the cat sat on the mat. ' > text.txt
$PY -c 'import sys; d = open("text.txt", "rb").read(); open("w.safetensors.vocab", "wb").write(bytes(sorted(set(d))))'

fail() { echo "FAIL: $*" >&2; exit 1; }
gen() { "$LATHE" generate "$MODEL" -w w.safetensors "${SMALL[@]}" "$@"; }

gen --prompt 'the ' --tokens 40 --seed 7 > a.txt
gen --prompt 'the ' --tokens 40 --seed 7 > b.txt
gen --prompt 'the ' --tokens 40 --seed 8 > c.txt
cmp -s a.txt b.txt || fail "seed 7 printed two texts: $(cat a.txt) / $(cat b.txt)"
! cmp -s a.txt c.txt || fail "seeds 7 and 8 printed the same text: $(cat a.txt)"
# the prompt, 40 tokens (past the context of 16: it slid) and a newline
[ "$(head -c 4 a.txt)" = "the " ] || fail "the prompt is not printed first: $(cat a.txt)"
[ "$(wc -c < a.txt)" -eq 45 ] || fail "expected 45 bytes, got $(wc -c < a.txt): $(cat a.txt)"
$PY - a.txt <<'PY' || fail "a byte outside the vocabulary: $(cat a.txt)"
import sys
text = open(sys.argv[1], 'rb').read()[:-1]
sys.exit(0 if set(text) <= set(open('w.safetensors.vocab', 'rb').read()) else 1)
PY
gen --prompt 'the ' --tokens 12 --temperature 0 --seed 1 > g1.txt
gen --prompt 'the ' --tokens 12 --temperature 0 --seed 2 > g2.txt
cmp -s g1.txt g2.txt || fail "greedy decoding depends on the seed"
gen --prompt 'the ' --tokens 12 --top-k 1 --seed 3 > k1.txt
cmp -s g1.txt k1.txt || fail "--top-k 1 is not greedy: $(cat g1.txt) / $(cat k1.txt)"

expect_error() { # expect_error STATUS PATTERN ARGS...
  local status=$1 pattern=$2 rc=0
  shift 2
  "$LATHE" generate "$@" > out.txt 2> err.txt || rc=$?
  [ "$rc" -eq "$status" ] || fail "generate $* exited $rc, expected $status: $(cat err.txt)"
  grep -q -- "$pattern" err.txt || fail "generate $*: no '$pattern' in: $(cat err.txt)"
}
expect_error 1 "--prompt: byte 'z' at offset 2 is not in the vocabulary" \
  "$MODEL" -w w.safetensors "${SMALL[@]}" --prompt 'thz' --tokens 3
expect_error 1 "more than the step's context of 16 positions" \
  "$MODEL" -w w.safetensors "${SMALL[@]}" --prompt 'the cat sat on the mat' --tokens 3
cp w.safetensors v.safetensors
expect_error 1 "needs the vocabulary 'v.safetensors.vocab'" \
  "$MODEL" -w v.safetensors "${SMALL[@]}" --prompt 'the' --tokens 3
cp w.safetensors.vocab big.safetensors.vocab
$PY "$ROOT/tests/gpt/random_checkpoint.py" "$LATHE" "$MODEL" big.safetensors 1 \
  -D T=16 -D D=64 -D HEADS=4 -D KV_HEADS=2 -D HIDDEN=48
expect_error 1 "tok.table" "$MODEL" -w big.safetensors "${SMALL[@]}" --prompt 'the' --tokens 3
expect_error 1 "not a decode step" "$MODEL" --model gpt -w w.safetensors "${SMALL[@]}" \
  --prompt 'the' --tokens 3
expect_error 2 "expected --tokens N" "$MODEL" -w w.safetensors --prompt 'the'
expect_error 2 "expects a number >= 0" "$MODEL" -w w.safetensors --prompt 'a' --tokens 1 \
  --temperature -1
echo "gpt_generate: ok"
