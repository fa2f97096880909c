# Third-party libraries, all from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.11 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(PkgConfig REQUIRED)

# Debian ships cpp-httplib as a compiled library; its pkg-config file carries the feature
# macros (OpenSSL, zlib, brotli) that must match the ones it was built with.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(mlaas_httplib INTERFACE)
target_link_libraries(mlaas_httplib INTERFACE PkgConfig::HTTPLIB Threads::Threads)

# jemalloc replaces glibc malloc in our executables: tokenizing allocates many small
# objects, and glibc's allocator halved encode throughput (measured, docs/benchmarks.md).
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
add_library(mlaas_allocator INTERFACE)
target_link_libraries(mlaas_allocator INTERFACE PkgConfig::JEMALLOC)

# libtorch (Debian libtorch-dev, CPU; the same sources build against a CUDA libtorch). Only
# the ML modules link it; the fuzz build (clang + sanitizers) leaves them out.
if(NOT MLAAS_FUZZ)
  find_package(Torch REQUIRED)
  # libtorch's GEMMs call the BLAS symbols (sgemm_) of whichever library comes first in the
  # process: linking BLIS (Debian libblis4-openmp) into our executables puts it before the
  # OpenBLAS libtorch links. With two threads BLIS runs the small-row GEMMs of short inputs
  # 1.4-1.7x faster (29 x 768 x 3072: 753 vs 1,273 us), which cut a single request's latency
  # from 3.6 to 2.2 ms (docs/benchmarks.md). Without BLIS, libtorch keeps OpenBLAS.
  find_library(MLAAS_BLIS_BLAS NAMES libblas.so.3 PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/blis-openmp
               NO_DEFAULT_PATH)
  add_library(mlaas_blas INTERFACE)
  if(MLAAS_BLIS_BLAS)
    target_link_libraries(mlaas_blas INTERFACE "-Wl,--push-state,--no-as-needed" ${MLAAS_BLIS_BLAS} "-Wl,--pop-state")
  else()
    message(STATUS "BLIS (libblis4-openmp) not found: libtorch uses the system BLAS")
  endif()
endif()
