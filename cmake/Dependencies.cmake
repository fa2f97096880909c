# Third-party libraries, all from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(SQLite3 REQUIRED)
# OpenSSL's libcrypto: SHA-256 and constant-time comparison of API tokens (src/auth).
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
# libcurl (Debian libcurl4-openssl-dev): the S3 store, signed by curl's own AWS SigV4.
find_package(CURL REQUIRED)
find_package(PkgConfig REQUIRED)

# Debian ships cpp-httplib as a compiled library; its pkg-config file carries the feature
# macros (OpenSSL, zlib, brotli) that must match the ones it was built with.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(mlaas_httplib INTERFACE)
target_link_libraries(mlaas_httplib INTERFACE PkgConfig::HTTPLIB Threads::Threads)

# PostgreSQL's client library (Debian libpq-dev): the metadata store several servers share.
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET GLOBAL libpq)

# jemalloc replaces glibc malloc in our executables: tokenizing allocates many small
# objects, and glibc's allocator halved encode throughput (measured, docs/benchmarks.md).
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
add_library(mlaas_allocator INTERFACE)
target_link_libraries(mlaas_allocator INTERFACE PkgConfig::JEMALLOC)

# libtorch (Debian libtorch-dev, CPU; the same sources build against a CUDA libtorch). Only
# the ML modules link it; the fuzz build (clang + sanitizers) leaves them out.
if(NOT MLAAS_FUZZ)
  find_package(Torch REQUIRED)
  # FAISS (Debian libfaiss-dev: a static library with a CMake config; it needs OpenMP).
  find_package(OpenMP REQUIRED)
  find_package(faiss REQUIRED)
  # oneDNN (Debian libdnnl-dev, the library libtorch itself links): inference GEMMs with
  # weights packed once and attention (src/nn/onednn_kernels.h). Found by hand: its CMake config drags in
  # OpenCL. A libtorch without it (another platform) keeps libtorch's own GEMMs.
  if(MLAAS_WITH_DNNL)
    find_path(DNNL_INCLUDE_DIR dnnl.hpp)
    find_library(DNNL_LIBRARY dnnl)
  endif()
  if(NOT MLAAS_WITH_DNNL)
    message(STATUS "MLAAS_WITH_DNNL=OFF: inference uses libtorch's GEMMs")
  elseif(DNNL_INCLUDE_DIR AND DNNL_LIBRARY)
    add_library(mlaas_dnnl INTERFACE)
    target_include_directories(mlaas_dnnl SYSTEM INTERFACE ${DNNL_INCLUDE_DIR})
    target_link_libraries(mlaas_dnnl INTERFACE ${DNNL_LIBRARY})
  else()
    message(WARNING "oneDNN (libdnnl-dev) not found: inference uses libtorch's GEMMs")
  endif()
endif()
