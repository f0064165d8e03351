#!/usr/bin/env bash
# A short libFuzzer run of every fuzz target (tests/fuzz/fuzz_*.c: the frontend, the IR text
# reader, .npy, safetensors, IDX, the ONNX importer, the text, CSV, .npz and image-folder
# dataset readers), with ASan + UBSan and every source instrumented, each seeded with its
# corpus in tests/fuzz/corpus/<target>/. `make fuzz` runs longer (docs/fuzzing.md).
# Fails on any crash, leak, sanitizer report or silent rejection.
set -euo pipefail
LATHE=$(realpath "$1")
ROOT=$(realpath "$2")
BUILD=$(dirname "$LATHE")
SECONDS_EACH=${FUZZ_SHORT_SECONDS:-10}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
# clang and the libFuzzer/sanitizer runtimes of the same version (libclang-rt-14-dev)
CC=${FUZZ_CC:-clang}
command -v "$CC" > /dev/null || { echo "$CC is required (scripts/install-deps.sh)"; exit 1; }
ONNX_GEN=$BUILD/onnx_pb
[ -f "$ONNX_GEN/onnx/onnx.pb-c.c" ] || { echo "no $ONNX_GEN/onnx/onnx.pb-c.c: build lathe first"; exit 1; }
FLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -std=c11
  -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I$ROOT -I$ROOT/include -I$ONNX_GEN
  $(pkg-config --cflags libcjson libprotobuf-c libffi libzip)"

# every library source once, as objects (the generated built-in lib/ and onnx.pb-c.c too)
cmake -DOUT="$TMP/builtin_lib.c" -DFILES="$(ls "$ROOT"/lib/*.lathe | tr '\n' ';')" \
  -P "$ROOT/scripts/embed_lib.cmake"
mkdir -p "$TMP/obj"
srcs=("$ROOT"/ir/*.c "$ROOT"/frontend/*.c "$ROOT"/runtime/*.c "$ROOT"/import/*.c
      "$TMP/builtin_lib.c")
pids=()
for s in "${srcs[@]}"; do
  o=$TMP/obj/$(basename "$(dirname "$s")")_$(basename "$s" .c).o
  $CC $FLAGS -c "$s" -o "$o" &
  pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
$CC $FLAGS -w -c "$ONNX_GEN/onnx/onnx.pb-c.c" -o "$TMP/obj/onnx_pb.o"
ar rcs "$TMP/liblathe_fuzz.a" "$TMP"/obj/*.o
LIBS="$(pkg-config --libs libcjson libprotobuf-c libffi libzip libpng) -lcsv -ljpeg -lz -ldl -lm"

cd "$TMP"
# the reader targets write each input to a scratch file: on tmpfs that is 30x faster than on
# a journaling disk (fuzz_npy: 5,500 against 180 executions a second, docs/fuzzing.md)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  target=${name#fuzz_}
  $CC $FLAGS -fsanitize=fuzzer "$src" "$TMP/liblathe_fuzz.a" $LIBS -o "$name"
  [ -d "$ROOT/tests/fuzz/corpus/$target" ] || { echo "FAIL: no corpus for $name"; exit 1; }
  mkdir -p "corpus_$target"
  cp "$ROOT/tests/fuzz/corpus/$target"/* "corpus_$target/"
  echo "== $name (${SECONDS_EACH}s)"
  "./$name" -max_total_time="$SECONDS_EACH" -max_len=8192 -rss_limit_mb=2048 \
    -print_final_stats=1 "corpus_$target" > "$name.log" 2>&1 ||
    { tail -40 "$name.log"; echo "FAIL: $name"; exit 1; }
  grep -E "stat::number_of_executed_units|cov:" "$name.log" | tail -2
done
echo "ok: no crash, leak or sanitizer report in ${SECONDS_EACH}s of each fuzz target"
