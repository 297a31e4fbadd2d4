# Compiler settings shared by every target: warnings, sanitizers, ccache, fuzzing.

find_program(XKS_CCACHE ccache)
if(XKS_CCACHE)
  set(CMAKE_C_COMPILER_LAUNCHER ${XKS_CCACHE})
  set(CMAKE_CXX_COMPILER_LAUNCHER ${XKS_CCACHE})
endif()

# Applied to the project's own targets through xks_target_defaults(), so that
# third-party headers included as SYSTEM do not trip -Werror.
add_library(xks_compile_options INTERFACE)
target_compile_options(xks_compile_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
# GCC 12 at -O3 reports impossible overlaps in std::string's operator+ (GCC bug 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(xks_compile_options INTERFACE -Wno-restrict)
endif()
if(XKS_WERROR)
  target_compile_options(xks_compile_options INTERFACE -Werror)
endif()

if(XKS_SANITIZE)
  set(xks_sanitizers -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${xks_sanitizers})
  add_link_options(${xks_sanitizers})
endif()

if(XKS_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "XKS_FUZZ needs clang (configure with CC=clang CXX=clang++)")
  endif()
  # Instrument everything for coverage; the fuzzer's main() is linked into fuzz targets only.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# Clang 14's UBSan function check cannot compile C++20 coroutines ("Cannot represent a
# difference across sections"); xks-load is built on them. Its vptr check probes memory through
# a pipe, so with every descriptor in use (a test exhausts them on purpose) it reports valid
# objects as invalid. Every other check stays on.
if((XKS_SANITIZE OR XKS_FUZZ) AND CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  add_compile_options(-fno-sanitize=function,vptr)
endif()

function(xks_target_defaults target)
  target_link_libraries(${target} PRIVATE xks_compile_options)
endfunction()
