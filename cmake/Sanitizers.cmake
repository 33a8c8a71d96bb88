# CERTCTRL_SANITIZE=address -> ASan+UBSan, thread -> TSan, fuzzer -> libFuzzer coverage + ASan + UBSan (clang).
# Applied to every target in the tree.
if(CERTCTRL_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(CERTCTRL_SANITIZE STREQUAL "thread")
  # -Wno-tsan: gcc 12 warns that TSan cannot model atomic_thread_fence, which Boost uses internally.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
elseif(CERTCTRL_SANITIZE STREQUAL "fuzzer")
  # libFuzzer (clang only): every library instrumented for coverage, ASan and UBSan; the fuzz targets link the
  # fuzzer's main (fuzz/CMakeLists.txt).
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(NOT CERTCTRL_SANITIZE STREQUAL "")
  message(FATAL_ERROR "CERTCTRL_SANITIZE must be '', 'address', 'thread' or 'fuzzer'")
endif()
