# podpipe_test(NAME SOURCES src... LIBS lib... [LABELS l...])
# One GoogleTest executable, registered with ctest per test case.
function(podpipe_test name)
    cmake_parse_arguments(T "" "" "SOURCES;LIBS;LABELS" ${ARGN})
    add_executable(${name} ${T_SOURCES})
    target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main GTest::gmock)
    target_compile_definitions(${name} PRIVATE PODPIPE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                               PODPIPE_BINARY_DIR="${PROJECT_BINARY_DIR}")
    gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "${T_LABELS}")
endfunction()

# podpipe_bench(NAME SOURCES src... LIBS lib...): a Google Benchmark executable.
function(podpipe_bench name)
    cmake_parse_arguments(B "" "" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${B_SOURCES})
    target_link_libraries(${name} PRIVATE ${B_LIBS} benchmark::benchmark benchmark::benchmark_main)
endfunction()

# podpipe_fuzz(NAME SOURCES src... LIBS lib... CORPUS dir): a libFuzzer target (its seed corpus
# is the corpus/ directory beside the source, which fuzz/run.sh starts from). Every target is
# also a dependency of `podpipe_fuzz_targets` (fuzz/CMakeLists.txt).
function(podpipe_fuzz name)
    cmake_parse_arguments(F "" "CORPUS" "SOURCES;LIBS" ${ARGN})
    add_executable(${name} ${F_SOURCES})
    target_link_libraries(${name} PRIVATE ${F_LIBS})
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    set_property(GLOBAL APPEND PROPERTY PODPIPE_FUZZ_TARGETS ${name})
endfunction()

# Adds subdirectories of the current source dir that have a CMakeLists.txt.
function(podpipe_add_subdirs)
    foreach(d ${ARGN})
        if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${d}/CMakeLists.txt)
            add_subdirectory(${d})
        endif()
    endforeach()
endfunction()
