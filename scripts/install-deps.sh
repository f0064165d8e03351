#!/usr/bin/env bash
# scripts/install-deps.sh — install the Debian packages lathe's build, tests and benchmarks
# need. Idempotent: installs only what is missing; uses sudo only when not root.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the benchmark peers: OpenBLAS, and ONNX Runtime
#                                    (npm onnxruntime-node, into bench/node/, git-ignored)
set -euo pipefail

pkgs=(
  cmake make gcc clang pkg-config          # build; clang for the warning check and libFuzzer
  check                                    # unit tests
  libclang-rt-14-dev                       # libFuzzer and sanitizer runtimes for clang
  zlib1g-dev                               # gzip datasets (IDX .gz)
  libcjson-dev                             # safetensors headers
  libffi-dev                               # calling entry points known only at run time
  libzip-dev                               # .npz datasets (runtime/data_npy.c)
  libcsv-dev                               # CSV/TSV datasets (runtime/data_csv.c)
  libpng-dev libjpeg-dev                   # image-folder datasets (runtime/data_image.c)
  libprotobuf-c-dev protobuf-c-compiler    # ONNX import (import/): protobuf-c + protoc-c
  libonnx-dev libonnx-testdata             # onnx.proto and the ONNX backend node tests
  llvm-19-dev libclang-19-dev libclang-cpp19-dev clang-19  # in-process JIT (codegen/jit.cpp)
  libomp-19-dev                            # OpenMP under clang-19 and the JIT
  libedit-dev                              # REPL line editing and history
  openmpi-bin libopenmpi-dev               # data-parallel training on MPI (examples/mpi,
                                           # tests/mpi_train.sh; lathe builds without it)
  tmux                                     # the REPL driven on a real terminal (tests)
  python3 python3-numpy python3-torch      # fixtures (tests/fixtures/*.py) and reference checks;
                                           # python3 also builds (scripts/embed-kernels.py) and
                                           # checks the layers (scripts/check-deps.py)
  python3-pytest                           # the Python package's tests (python/tests)
  python3-pip python3-setuptools           # `pip install --no-build-isolation ./python`, offline
  python3-sklearn                          # metrics checked against scikit-learn (tests/data_*.sh)
  python3-pil                              # PNG/JPEG fixtures of the image-folder test
  python3-onnx                             # quantized ONNX test models (tests/onnx_quant.sh)
  dataset-fashion-mnist                    # training data (/usr/share/datasets/fashion-mnist)
  gcc-arm-none-eabi libnewlib-arm-none-eabi # the int8 C built for Cortex-M4 (tests/int8_models.sh;
                                           # newlib: its <math.h>, <stdint.h>)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross # the int8 kernels cross-built for aarch64 (sdot)
  qemu-user                                # ... and run under qemu-aarch64 (tests/int8_kernels.sh)
)
BENCH=0
[[ "${1:-}" == "--bench" ]] && BENCH=1
if [[ $BENCH == 1 ]]; then
  pkgs+=(libopenblas-dev)                  # the OpenBLAS sgemm peer (bench/sgemm_openblas.c)
  pkgs+=(nodejs)                           # the ONNX Runtime peer runs under Node.js
  command -v npm >/dev/null || pkgs+=(npm) # its installer (some nodejs builds bundle npm)
fi

# The ONNX Runtime peer (bench/ort_peer.js): onnxruntime-node from the npm registry, pinned,
# into bench/node/ (run.sh puts it on NODE_PATH). Its CPU libraries ship in the package; the
# install script's CUDA download (linux x64) is skipped.
ORT_VERSION=1.20.1
install_ort() {
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/bench/node"
  if grep -qs "\"version\": \"$ORT_VERSION\"" "$dir/node_modules/onnxruntime-node/package.json"
  then
    return
  fi
  echo "install-deps: npm install onnxruntime-node@$ORT_VERSION into $dir" >&2
  mkdir -p "$dir"
  ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --prefix "$dir" --no-save --no-audit \
    --no-fund --loglevel=error "onnxruntime-node@$ORT_VERSION"
}

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi
[[ $BENCH == 1 ]] && install_ort
exit 0
