# Every third-party dependency, found once. Debian 12 packages only (see docs/operator-guide.md).
find_package(Boost 1.81.0 EXACT REQUIRED CONFIG COMPONENTS json url system)
find_package(spdlog REQUIRED CONFIG)
find_package(OpenSSL 3.0 REQUIRED)
find_package(Threads REQUIRED)

# MySQL Connector/C++ 1.1 ships no CMake config. Its -dev package cannot be installed next to Boost 1.81
# on Debian 12, so scripts/lib/deps.sh unpacks its headers into var/deps/mysqlcppconn; a system-wide
# install (/usr/include) is found as well.
set(MYSQLCPPCONN_ROOT "${CMAKE_SOURCE_DIR}/var/deps/mysqlcppconn" CACHE PATH "Unpacked libmysqlcppconn-dev")
find_path(MYSQLCPPCONN_INCLUDE_DIR mysql_driver.h HINTS "${MYSQLCPPCONN_ROOT}/usr/include" REQUIRED)
find_library(MYSQLCPPCONN_LIBRARY NAMES mysqlcppconn libmysqlcppconn.so.7 REQUIRED)
add_library(certctrl_mysqlcppconn INTERFACE)
target_include_directories(certctrl_mysqlcppconn SYSTEM INTERFACE "${MYSQLCPPCONN_INCLUDE_DIR}")
target_link_libraries(certctrl_mysqlcppconn INTERFACE "${MYSQLCPPCONN_LIBRARY}" Boost::headers)

# libzip (export bundles): Debian's libzip CMake config also demands the zipcmp/zipmerge tools of another
# package, so the library is found directly.
find_path(LIBZIP_INCLUDE_DIR zip.h REQUIRED)
find_library(LIBZIP_LIBRARY NAMES zip REQUIRED)
add_library(certctrl_libzip INTERFACE)
target_include_directories(certctrl_libzip SYSTEM INTERFACE "${LIBZIP_INCLUDE_DIR}")
target_link_libraries(certctrl_libzip INTERFACE "${LIBZIP_LIBRARY}")

# ldns (RFC 2136 dynamic updates with TSIG for DNS-01)
find_path(LDNS_INCLUDE_DIR ldns/ldns.h REQUIRED)
find_library(LDNS_LIBRARY NAMES ldns REQUIRED)

# libsodium (device key delivery: X25519 sealed boxes, BLAKE2b fingerprints)
find_path(SODIUM_INCLUDE_DIR sodium.h REQUIRED)
find_library(SODIUM_LIBRARY NAMES sodium REQUIRED)

find_path(ARGON2_INCLUDE_DIR argon2.h REQUIRED)
find_library(ARGON2_LIBRARY NAMES argon2 REQUIRED)

if(CERTCTRL_BUILD_TESTS)
  find_package(GTest REQUIRED CONFIG)
  include(GoogleTest)
endif()

# jemalloc for the server binary: glibc's malloc spent a quarter of a list request consolidating its fast bins
# (bench/compare.sh). Not with sanitizers, which bring their own allocator.
if(CERTCTRL_SANITIZE STREQUAL "")
  find_library(JEMALLOC_LIBRARY NAMES jemalloc REQUIRED)
endif()
