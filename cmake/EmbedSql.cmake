# Turns sql/V*.sql into a generated C++ source so the binary carries its own migrations.
# certctrl_embed_sql(<out.cpp>): the file is regenerated whenever a migration changes or is added.
function(certctrl_embed_sql out)
  file(GLOB sql_files CONFIGURE_DEPENDS "${CMAKE_SOURCE_DIR}/sql/V*.sql")
  list(SORT sql_files)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} "-DFILES=${sql_files}" -P "${CMAKE_SOURCE_DIR}/cmake/embed_sql_script.cmake"
    DEPENDS ${sql_files} "${CMAKE_SOURCE_DIR}/cmake/embed_sql_script.cmake"
    COMMENT "Embedding SQL migrations"
    VERBATIM)
endfunction()

# certctrl_embed_text(<out.cpp> <file> <namespace> <function>): `std::string_view namespace::function()`
# returns the file's content; regenerated whenever the file changes.
function(certctrl_embed_text out file ns fn)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DFILE=${file} -DNAMESPACE=${ns} -DFUNCTION=${fn}
            -P "${CMAKE_SOURCE_DIR}/cmake/embed_text_script.cmake"
    DEPENDS "${file}" "${CMAKE_SOURCE_DIR}/cmake/embed_text_script.cmake"
    COMMENT "Embedding ${file}"
    VERBATIM)
endfunction()
