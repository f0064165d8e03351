#!/usr/bin/env bash
# scripts/install-deps.sh — install the Debian packages lathe's build, tests and benchmarks
# need. Idempotent: installs only what is missing; uses sudo only when not root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the benchmark peers (OpenBLAS)
set -euo pipefail

pkgs=(
  cmake make gcc clang pkg-config          # build; clang for the warning check and libFuzzer
  check                                    # unit tests
  libclang-rt-14-dev                       # libFuzzer and sanitizer runtimes for clang
  zlib1g-dev                               # gzip datasets (IDX .gz)
  libcjson-dev                             # safetensors headers
  libffi-dev                               # calling entry points known only at run time
  libprotobuf-c-dev protobuf-c-compiler    # ONNX import (import/): protobuf-c + protoc-c
  libonnx-dev libonnx-testdata             # onnx.proto and the ONNX backend node tests
  llvm-19-dev libclang-19-dev libclang-cpp19-dev clang-19  # in-process JIT (codegen/jit.cpp)
  libomp-19-dev                            # OpenMP under clang-19 and the JIT
  libedit-dev                              # REPL line editing and history
  tmux                                     # the REPL driven on a real terminal (tests)
  python3 python3-numpy python3-torch      # fixtures (tests/fixtures/*.py) and reference checks;
                                           # python3 also builds (scripts/embed-kernels.py) and
                                           # checks the layers (scripts/check-deps.py)
  dataset-fashion-mnist                    # training data (/usr/share/datasets/fashion-mnist)
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(libopenblas-dev)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
