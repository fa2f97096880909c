# Warnings for our own targets only (never for third-party code).
function(mlaas_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow=local
                                           -Wnon-virtual-dtor -Wimplicit-fallthrough)
  if(MLAAS_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# mlaas_module(NAME name SOURCES ... DEPS ...): one static library per module, reachable as
# mlaas::<name>, with src/ as its public include root ("storage/object_store.h").
function(mlaas_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(mlaas_${M_NAME} STATIC ${M_SOURCES})
  add_library(mlaas::${M_NAME} ALIAS mlaas_${M_NAME})
  target_include_directories(mlaas_${M_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(mlaas_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  mlaas_target_warnings(mlaas_${M_NAME})
endfunction()
