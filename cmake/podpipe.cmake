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

# Layering enforced by the build. There is no repository-wide include path: each component's
# targets see their own folder, and the folders of what they link (include directories are
# PUBLIC and travel with target_link_libraries). A component's folder is exposed from an
# include root of its own in the build tree (include-roots/<name>/<dir> is a link to the source
# folder), so `#include "engine/common/result.hpp"` keeps its form while kube/, say, cannot
# include from hooks/: that does not compile. tests/, bench/ and fuzz/ are consumers and include
# from the repository root. Called once, at the end of the top-level CMakeLists.txt, on every
# directory with targets.
function(podpipe_include_roots dir)
    get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
    if(targets)
        if(rel MATCHES "^(tests|bench|fuzz)(/|$)")
            set(root ${PROJECT_SOURCE_DIR})
        else()
            string(REPLACE "/" "-" name "${rel}")
            set(root ${CMAKE_BINARY_DIR}/include-roots/${name})
            get_filename_component(parent ${root}/${rel} DIRECTORY)
            file(MAKE_DIRECTORY ${parent})
            file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${rel} ${root}/${rel} SYMBOLIC)
        endif()
        foreach(t ${targets})
            get_target_property(type ${t} TYPE)
            get_target_property(no_root ${t} PODPIPE_NO_INCLUDE_ROOT)
            if(no_root)
                continue() # a layering probe (tests/layering): only what it links
            elseif(type STREQUAL "EXECUTABLE")
                target_include_directories(${t} PRIVATE ${root})
            elseif(type STREQUAL "INTERFACE_LIBRARY")
                target_include_directories(${t} INTERFACE ${root})
            elseif(type MATCHES "LIBRARY$")
                target_include_directories(${t} PUBLIC ${root})
            endif()
        endforeach()
    endif()
    foreach(sub ${subdirs})
        podpipe_include_roots(${sub})
    endforeach()
endfunction()

# The layer of a source folder (relative to the project), for podpipe_check_links: engine 0,
# kube 1, remote 2, hooks 3, tools/podpipe 4; kubesim is "kubesim"; tests, bench and fuzz are
# "" (consumers, unchecked).
function(podpipe_layer_of rel out)
    if(rel MATCHES "^engine(/|$)")
        set(layer 0)
    elseif(rel MATCHES "^kube(/|$)")
        set(layer 1)
    elseif(rel MATCHES "^remote(/|$)")
        set(layer 2)
    elseif(rel MATCHES "^hooks(/|$)")
        set(layer 3)
    elseif(rel MATCHES "^tools/podpipe(/|$)")
        set(layer 4)
    elseif(rel MATCHES "^tools/kubesim(/|$)")
        set(layer kubesim)
    else()
        set(layer "")
    endif()
    set(${out} "${layer}" PARENT_SCOPE)
endfunction()

# Fails the configuration when a target links one of a higher layer (which would also let it
# include that layer's headers), or when kubesim links anything of podpipe but engine/common.
function(podpipe_check_links dir)
    get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
    get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${dir})
    podpipe_layer_of("${rel}" mine)
    if(NOT mine STREQUAL "")
        foreach(t ${targets})
            get_target_property(type ${t} TYPE)
            if(type STREQUAL "INTERFACE_LIBRARY")
                get_target_property(libs ${t} INTERFACE_LINK_LIBRARIES)
            else()
                get_target_property(libs ${t} LINK_LIBRARIES)
            endif()
            if(NOT libs)
                continue()
            endif()
            foreach(lib ${libs})
                if(NOT TARGET ${lib})
                    continue()
                endif()
                get_target_property(imported ${lib} IMPORTED)
                if(imported)
                    continue()
                endif()
                get_target_property(lib_dir ${lib} SOURCE_DIR)
                file(RELATIVE_PATH lib_rel ${PROJECT_SOURCE_DIR} ${lib_dir})
                podpipe_layer_of("${lib_rel}" theirs)
                if(mine STREQUAL "kubesim")
                    if(NOT lib_rel MATCHES "^(engine/common|tools/kubesim)$")
                        message(FATAL_ERROR "layering: kubesim target ${t} links ${lib} "
                                            "(${lib_rel}); kubesim shares only engine/common")
                    endif()
                elseif(theirs STREQUAL "kubesim" OR theirs STREQUAL ""
                       OR theirs GREATER mine)
                    message(FATAL_ERROR "layering: ${t} (${rel}) links ${lib} (${lib_rel}), "
                                        "a higher layer: tools -> hooks -> remote -> kube -> engine")
                endif()
            endforeach()
        endforeach()
    endif()
    foreach(sub ${subdirs})
        podpipe_check_links(${sub})
    endforeach()
endfunction()
