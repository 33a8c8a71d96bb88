#!/usr/bin/env bash
# The layer check refuses an upward include and a Connector/C++ header outside the MySQL layers, and passes the
# real tree. Usage: layers_test.sh <source dir>
set -u
root=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { cmake -DROOT="$1" -DSTAMP="$tmp/stamp" -P "$root/cmake/CheckLayers.cmake" >"$tmp/out" 2>&1; }
check "$root" || { echo "the real tree fails the check:"; cat "$tmp/out"; exit 1; }
mkdir -p "$tmp/bad/include/certctrl/http" "$tmp/bad/src/service"
echo '#include "certctrl/service/identity.hpp"' >"$tmp/bad/include/certctrl/http/x.hpp"
if check "$tmp/bad"; then echo "an upward include (http -> service) passed"; exit 1; fi
grep -q "layer 'http' may not include certctrl/service/" "$tmp/out" || { cat "$tmp/out"; exit 1; }
rm "$tmp/bad/include/certctrl/http/x.hpp"
echo '#include <cppconn/connection.h>' >"$tmp/bad/src/service/y.cpp"
if check "$tmp/bad"; then echo "Connector/C++ in a service passed"; exit 1; fi
grep -q "only db, repo_mysql and app see MySQL Connector/C++" "$tmp/out" || { cat "$tmp/out"; exit 1; }
echo ok
