#!/usr/bin/env bash
# The GPU check of issue 23 (docs/gpu.md), one script for a lent machine: an NVIDIA GPU with
# CUDA, g++, CMake and a PyTorch wheel, but no package registry. It builds mlaas against the
# wheel's libtorch (torch.utils.cmake_prefix_path) with the Debian packages of
# build/device-bundle (scripts/device-bundle.sh, made beforehand on Debian and carried along),
# then runs the tests labelled `cuda`, the link test and a training task on CUDA through the
# server (TrainE2eTest.TrainsOnCudaThroughTheServer), and writes every log into $OUT
# (default build/device-check): machine.txt, configure.log, build.log, tests.log, link.txt, and
# gpu_bench.md (bench/gpu_bench.cpp: training and inference beside PyTorch eager on the GPU).
#   scripts/device-check.sh            # from the repository root
# Exit status: 0 when the build and every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-build/device-check}
PY=${PYTHON:-python3}
JOBS=${JOBS:-$(nproc)}
BUNDLE=build/device-bundle
ROOT=$PWD/build/device-root
BUILD=build/cuda
mkdir -p "$OUT"
exec 3>&1 4>&2
exec > >(tee -a "$OUT/device-check.log") 2>&1
TEE=$!
# Every line reaches the log before the script ends.
finish() { exec 1>&3 2>&4; wait "$TEE" 2>/dev/null; exit "$1"; }
step() { echo "== $(date +%T) $*"; }
fail() { echo "device-check: $*"; finish 1; }

step "the machine"
{
  nvidia-smi || true
  g++ --version | head -1
  cmake --version | head -1
  "$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch.compiled_with_cxx11_abi()); print(torch.cuda.get_device_name(0))'
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

step "unpacking the Debian bundle"
ls "$BUNDLE"/*.deb >/dev/null 2>&1 || fail "no $BUNDLE/*.deb: run scripts/device-bundle.sh on Debian and carry $BUNDLE"
rm -rf "$ROOT" && mkdir -p "$ROOT"
for deb in "$BUNDLE"/*.deb; do dpkg-deb -x "$deb" "$ROOT" || fail "cannot unpack $deb"; done
LIB=$ROOT/usr/lib/x86_64-linux-gnu
# What Debian's alternatives would link, and FAISS's CMake config names the system's BLAS by path.
ln -sf blas/libblas.so.3 "$LIB/libblas.so.3" && ln -sf libblas.so.3 "$LIB/libblas.so"
ln -sf lapack/liblapack.so.3 "$LIB/liblapack.so.3" && ln -sf liblapack.so.3 "$LIB/liblapack.so"
sed -i "s#/usr/lib/x86_64-linux-gnu/#$LIB/#g" "$LIB/cmake/faiss/faiss-targets.cmake"
export PKG_CONFIG_SYSROOT_DIR=$ROOT
export PKG_CONFIG_LIBDIR=$LIB/pkgconfig:$ROOT/usr/share/pkgconfig
# The wheel's libtorch (TORCH_PREFIX / TORCH_LIB override it, e.g. to try the script elsewhere).
TORCH_PREFIX=${TORCH_PREFIX:-$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')} || fail "no torch in $PY"
TORCH_LIB=${TORCH_LIB:-$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
export LD_LIBRARY_PATH=$LIB:$TORCH_LIB:${LD_LIBRARY_PATH:-}

step "configuring (libtorch from $TORCH_PREFIX)"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$ROOT/usr" -DCMAKE_LIBRARY_PATH="$LIB" -DCMAKE_INCLUDE_PATH="$ROOT/usr/include" \
  -DCMAKE_BUILD_RPATH="$LIB;$TORCH_LIB" -DMLAAS_WITH_DNNL=OFF -DMLAAS_STATIC_LIBSTDCXX=ON -DMLAAS_WERROR=OFF \
  > "$OUT/configure.log" 2>&1 || { tail -40 "$OUT/configure.log"; fail "configure failed ($OUT/configure.log)"; }

step "building ($JOBS jobs)"
start=$(date +%s)
# TARGETS (space-separated) builds only those, e.g. to check the script itself.
cmake --build "$BUILD" -j "$JOBS" ${TARGETS:+--target $TARGETS} > "$OUT/build.log" 2>&1 || { grep -m 20 -A3 "error" "$OUT/build.log"; fail "build failed ($OUT/build.log)"; }
echo "built in $(( $(date +%s) - start )) s"

step "which library defines the C++ runtime functions we call (issue 23's crash)"
{
  echo "libstdc++ functions libtorch exports (unversioned copies interpose ours when bound first):"
  for so in "$TORCH_LIB"/libtorch*.so "$TORCH_LIB"/libc10*.so; do
    [ -f "$so" ] && echo "  $(basename "$so"): $(nm -D --defined-only "$so" 2>/dev/null | grep -c '_ZNSt10filesystem') std::filesystem symbols"
  done
  readelf -d "$BUILD/src/cli/mlaas" | grep NEEDED
  LD_DEBUG=bindings "$BUILD/src/cli/mlaas" --version 2>&1 | grep -m 5 'filesystem' || true
} > "$OUT/link.txt" 2>&1
cat "$OUT/link.txt"

step "tests: cuda and link"
ctest --test-dir "$BUILD" -L cuda --no-tests=error --output-on-failure -j 4 > "$OUT/tests.log" 2>&1
status=$?
ctest --test-dir "$BUILD" -R "LinkTest|TrainsOnCudaThroughTheServer" --no-tests=error --output-on-failure \
  >> "$OUT/tests.log" 2>&1 || status=1
tail -30 "$OUT/tests.log"
# ctest counts a skip as a pass: here a skipped cuda test means the GPU was not seen.
if grep -q "Skipped" "$OUT/tests.log"; then
  echo "device-check: tests were skipped: this build or machine does not see the GPU"
  status=1
fi

step "benchmarks: ours beside PyTorch eager on this GPU"
"$BUILD/bench/gpu_bench" --device cuda --model bert-base --precision bf16 --python "$PY" > "$OUT/gpu_bench.md" 2>&1 || status=1
"$BUILD/bench/gpu_bench" --device cuda --model bert-base --precision fp32 --steps 10 --python "$PY" >> "$OUT/gpu_bench.md" 2>&1 || status=1
cat "$OUT/gpu_bench.md"
step "done (status $status); logs in $OUT"
finish $status
