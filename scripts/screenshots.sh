#!/usr/bin/env bash
# Writes docs/screenshots/*.png: the dashboard's main pages at desktop (1280 px) and phone (360 px) width,
# light and dark, taken by the browser test (tests/browser/dashboard.py) during its run against a real server.
# Usage: ./scripts/screenshots.sh      (as scripts/test.sh: installs, builds, starts MariaDB, stops it after)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/docs/screenshots"
rm -rf "$out"
mkdir -p "$out"
CERTCTRL_SCREENSHOTS_DIR="$out" CERTCTRL_FUZZ_SECONDS=0 "$root/scripts/test.sh" -R '^Dashboard\.ARealBrowser'
ls "$out"
