# certctrl_warnings: an INTERFACE target every project target links.
add_library(certctrl_warnings INTERFACE)
target_compile_options(certctrl_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual
  -Wnull-dereference -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
if(CERTCTRL_WERROR)
  target_compile_options(certctrl_warnings INTERFACE -Werror)
endif()
