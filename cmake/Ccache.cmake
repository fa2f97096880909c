# Use ccache when it is installed: rebuilds on these 2-core machines are dominated by
# recompiling unchanged translation units. Paths under the source tree are hashed relative to it
# and the working directory is left out of the hash (CCACHE_BASEDIR, CCACHE_NOHASHDIR), so that
# another clone of the repository on the same machine (CI's clean clone) reuses what this one
# compiled.
find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env CCACHE_BASEDIR=${PROJECT_SOURCE_DIR} CCACHE_NOHASHDIR=true
      ${CCACHE_PROGRAM})
endif()
