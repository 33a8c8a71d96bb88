# Script mode: writes OUT, a C++ file defining certctrl::db::embedded_migrations() from FILES.
set(body "// Generated from sql/V*.sql by cmake/embed_sql_script.cmake. Do not edit.\n")
string(APPEND body "#include \"certctrl/db/migrations.hpp\"\n\nnamespace certctrl::db {\n\n")
string(APPEND body "std::vector<migration> const& embedded_migrations() {\n    static std::vector<migration> const all = {\n")
foreach(f IN LISTS FILES)
  get_filename_component(name "${f}" NAME)
  file(READ "${f}" content)
  string(SHA256 sum "${content}")
  # Raw string with a delimiter SQL will not contain.
  string(APPEND body "        {\"${name}\", \"${sum}\", R\"certctrl_sql(${content})certctrl_sql\"},\n")
endforeach()
string(APPEND body "    };\n    return all;\n}\n\n}  // namespace certctrl::db\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
