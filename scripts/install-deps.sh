#!/usr/bin/env bash
# Installs every Debian package mlaas needs to build, run and test. Idempotent: when all
# packages are present it only asks dpkg (well under a second) and changes nothing.
# With --bench, also the benchmarks' peers (bench/check.sh): wrk, FastAPI and Uvicorn from
# Debian, ONNX Runtime from npm.
set -euo pipefail
BENCH=0
[ "${1:-}" = "--bench" ] && BENCH=1

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # libraries (Debian 12)
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libsqlite3-dev libssl-dev
  libutf8proc-dev libjemalloc-dev libcurl4-openssl-dev
  # ML: libtorch (CPU) and Gloo for its c10d distributed headers. libtorch's GEMMs go to the
  # system BLAS: without OpenBLAS, Debian's reference BLAS makes them ~17x slower (6 vs 100
  # GFLOP/s measured); the OpenMP build shares libtorch's thread pool.
  libtorch-dev libgloo-dev libopenblas0-openmp
  # oneDNN's headers (libtorch already links the library): inference GEMMs on packed weights
  libdnnl-dev
  # images (src/vision): PNG through libpng's simplified API, JPEG through libjpeg-turbo's
  # TurboJPEG (SIMD decoding; both give the size before any pixel is allocated), gzip'd IDX
  libpng-dev libturbojpeg0-dev zlib1g-dev
  # vector search (a static library with a CMake config)
  libfaiss-dev
  # tests, fuzzing and benchmarks; python3-torch runs the reference model definitions
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev python3-torch
  # torchvision's ResNets: the reference the image classifiers' names and outputs are checked
  # against; Fashion-MNIST (gzip'd IDX, 30 MB) for the image readers and the vision quality figures
  python3-torchvision dataset-fashion-mnist
  # the web app's browser tests drive Debian's Chromium (with playwright-core from npm)
  chromium
  # the Python SDK's tests (clients/python), pip to check it installs offline
  python3-pytest python3-pip
  # PostgreSQL: libpq for the metadata store several servers share (issue 24); the server for
  # the tests, which start private clusters on loopback (tests/testutil/postgres_server.h)
  libpq-dev postgresql-15
  # S3 interoperability tests: botocore verifies our SigV4 signatures, the AWS CLI reads and
  # writes the objects we do (tests/storage/s3_interop_test.cpp)
  awscli python3-botocore
)
# Node.js runs the reference implementations the tests compare against (Hugging Face
# tokenizers); a machine that already has node (and npm) keeps its own.
command -v node >/dev/null || PACKAGES+=(nodejs)
command -v npm >/dev/null || PACKAGES+=(npm)
((BENCH)) && PACKAGES+=(wrk curl python3-fastapi python3-uvicorn)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "mlaas: installing ${missing[*]}" >&2
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "mlaas: need root or sudo to install packages" >&2; exit 1; }
    SUDO=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# npm packages of the test oracles, pinned by their package-lock.json; reinstalled only
# when the lock file changed since the last install.
cd "$(dirname "$0")/.."
NPM_DIRS=(tests/tokenizers/oracle web tests/storage/s3 tests/deploy)
((BENCH)) && NPM_DIRS+=(bench/onnx)
for dir in "${NPM_DIRS[@]}"; do
  stamp="$dir/node_modules/.mlaas-lock"
  if [ -f "$dir/package-lock.json" ] && ! cmp -s "$dir/package-lock.json" "$stamp" 2>/dev/null; then
    echo "mlaas: npm ci in $dir" >&2
    # onnxruntime-node's install script would download; its package already holds the binary
    flags=(--no-audit --no-fund --loglevel=error)
    [ "$dir" = bench/onnx ] && flags+=(--ignore-scripts)
    (cd "$dir" && npm ci "${flags[@]}")
    cp "$dir/package-lock.json" "$stamp"
  fi
done
