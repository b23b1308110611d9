# Writes OUTPUT (a header defining REDIS_SIDECAR_GIT_COMMIT) with the commit the sources are at:
# COMMIT when given (a build without .git, such as deploy/Dockerfile's, passes it in), otherwise
# `git rev-parse` of SOURCE_DIR with "-dirty" when tracked files differ from it, otherwise
# "unknown". Run at every build; the file is rewritten only when its content changes, so nothing
# recompiles when the commit did not move.
if(NOT COMMIT)
  set(COMMIT "unknown")
  find_program(GIT git)
  if(GIT)
    execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --show-toplevel
      OUTPUT_VARIABLE top RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    # Only the project's own repository: a source tree unpacked inside another one is not at
    # that one's commit.
    if(rc EQUAL 0 AND top)
      file(REAL_PATH "${top}" top)
      file(REAL_PATH "${SOURCE_DIR}" src)
    endif()
    if(rc EQUAL 0 AND top STREQUAL src)
      execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
        OUTPUT_VARIABLE head RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
      if(rc EQUAL 0 AND head)
        set(COMMIT "${head}")
        execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} diff --quiet HEAD --
          RESULT_VARIABLE dirty OUTPUT_QUIET ERROR_QUIET)
        if(dirty EQUAL 1)
          string(APPEND COMMIT "-dirty")
        endif()
      endif()
    endif()
  endif()
endif()
set(content "#pragma once\n#define REDIS_SIDECAR_GIT_COMMIT \"${COMMIT}\"\n")
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} old)
endif()
if(NOT old STREQUAL content)
  file(WRITE ${OUTPUT} "${content}")
endif()
