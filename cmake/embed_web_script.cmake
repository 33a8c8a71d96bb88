# Script mode: writes OUT, a C++ file defining certctrl::handlers::web_assets(): every file of the dashboard
# (web/, listed in FILES relative to DIR) as {name, body}. Text files only; a body must not contain the raw
# string's delimiter.
set(body "// Generated from ${DIR} by cmake/embed_web_script.cmake. Do not edit.\n")
string(APPEND body "#include \"certctrl/handlers/dashboard.hpp\"\n\nnamespace certctrl::handlers {\n\n")
string(APPEND body "std::span<web_asset const> web_assets() {\n    static constexpr web_asset all[] = {\n")
string(REPLACE "|" ";" file_list "${FILES}")
list(SORT file_list)
foreach(name IN LISTS file_list)
  file(READ "${DIR}/${name}" content)
  string(FIND "${content}" ")certctrl_web\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${name} contains the embedding delimiter")
  endif()
  string(APPEND body "        {\"${name}\", R\"certctrl_web(${content})certctrl_web\"},\n")
endforeach()
string(APPEND body "    };\n    return all;\n}\n\n}  // namespace certctrl::handlers\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
