# Installation and the Debian package (`cmake --build --preset release --target package`): both binaries, the
# systemd unit, /etc/certctrl/certctrl.json, man pages made from --help, bash completion, the docs.
include(GNUInstallDirs)

set(man_dir "${CMAKE_BINARY_DIR}/man")
file(MAKE_DIRECTORY "${man_dir}")
foreach(spec "certctrl-server|the certctrl certificate server" "certctrl|the certctrl command-line client")
  string(REPLACE "|" ";" parts "${spec}")
  list(GET parts 0 prog)
  list(GET parts 1 summary)
  add_custom_command(OUTPUT "${man_dir}/${prog}.1.gz"
                     COMMAND ${CMAKE_COMMAND} -DBIN=$<TARGET_FILE:${prog}> -DNAME=${prog} "-DSUMMARY=${summary}"
                             -DVERSION=${PROJECT_VERSION} -DOUT=${man_dir}/${prog}.1.gz
                             -P ${CMAKE_SOURCE_DIR}/cmake/ManPage.cmake
                     DEPENDS ${prog} ${CMAKE_SOURCE_DIR}/cmake/ManPage.cmake VERBATIM)
  list(APPEND man_pages "${man_dir}/${prog}.1.gz")
endforeach()
add_custom_command(OUTPUT "${CMAKE_BINARY_DIR}/certctrl.bash-completion"
                   COMMAND $<TARGET_FILE:certctrl> completion bash > ${CMAKE_BINARY_DIR}/certctrl.bash-completion
                   DEPENDS certctrl)
add_custom_target(certctrl_install_extras ALL DEPENDS ${man_pages} "${CMAKE_BINARY_DIR}/certctrl.bash-completion")

install(TARGETS certctrl-server certctrl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES "${CMAKE_BINARY_DIR}/certctrl.bash-completion" DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME certctrl)
install(FILES config/certctrl.example.json README.md docs/operator-guide.md docs/cli.md docs/security.md
              docs/errors.md docs/scopes.md docs/openapi.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES packaging/certctrl.json DESTINATION /etc/certctrl PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
install(FILES packaging/certctrl-server.service DESTINATION /lib/systemd/system)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME certctrl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "certctrl maintainers <certctrl@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "TLS certificate lifecycle server (ACME and private CAs) and its CLI")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
# From ldd of the release binaries on Debian 12 (no dpkg-shlibdeps needed to build the package).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libargon2-1, libboost-json1.81.0, libboost-url1.81.0, libc6, libfmt9, libgcc-s1, libjemalloc2, libldns3, libmysqlcppconn7v5, libsodium23, libspdlog1.10, libssl3, libstdc++6, libzip4, passwd")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "mariadb-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    "${CMAKE_SOURCE_DIR}/packaging/postinst;${CMAKE_SOURCE_DIR}/packaging/postrm;${CMAKE_SOURCE_DIR}/packaging/conffiles")
set(CPACK_STRIP_FILES ON)  # the debug information stays in the build tree
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
