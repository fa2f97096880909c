#!/usr/bin/env bash
# Makes the bundle of Debian 12 packages that scripts/device-check.sh builds mlaas with on a GPU
# machine without a package registry (docs/gpu.md): `apt-get download` of the headers mlaas
# compiles against and the libraries they load, into build/device-bundle/ (git-ignored).
# libc, libstdc++ and the toolchain are the GPU machine's own; libtorch comes from its PyTorch
# wheel, and oneDNN with it (the build leaves ours out). Run it here, on Debian 12, before the
# device run; it prints the bundle's size (the device tool carries at most 64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=build/device-bundle
PACKAGES=(
  # headers (and the -dev packages' pkg-config, CMake and .so links)
  libcpp-httplib-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev libsqlite3-dev
  libssl-dev libutf8proc-dev libjemalloc-dev libcurl4-openssl-dev libpng-dev libturbojpeg0-dev
  zlib1g-dev libbrotli-dev libfaiss-dev libgtest-dev libgmock-dev googletest
  # the libraries they link and load (a machine may lack any of them)
  libcpp-httplib0.11 libspdlog1.10 libfmt9 libsqlite3-0 libssl3 libutf8proc2 libjemalloc2 libcurl4
  libpng16-16 libturbojpeg0 zlib1g libbrotli1 libnghttp2-14 libidn2-0 libunistring2 librtmp1
  libssh2-1 libpsl5 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
  libcom-err2 libldap-2.5-0 libsasl2-2 libsasl2-modules-db libdb5.3 libzstd1 libgnutls30 libhogweed6
  libnettle8 libgmp10 libp11-kit0 libffi8 libtasn1-6
  # FAISS's BLAS and LAPACK (the reference ones: FAISS's GEMMs are not on the GPU path) and OpenMP
  libblas3 liblapack3 libgfortran5 libquadmath0 libgomp1
)
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp"
(cd "$OUT.tmp" && apt-get download -q "${PACKAGES[@]}")
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
echo "mlaas: $(ls "$OUT"/*.deb | wc -l) packages, $(du -sh "$OUT" | cut -f1), in $OUT" >&2
