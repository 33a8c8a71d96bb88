# Writes OUT: a header defining CERTCTRL_GIT_COMMIT, the commit of SOURCE_DIR now ("unknown" outside a git
# checkout). Run at every build (src/CMakeLists.txt, target certctrl_git_commit); the file is rewritten only
# when the commit changed, so a build without a new commit recompiles nothing.
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE failed)
if(failed OR NOT commit)
  set(commit unknown)
endif()
set(text "#pragma once\n#define CERTCTRL_GIT_COMMIT \"${commit}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE "${OUT}" "${text}")
endif()
