#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need, when it is missing: Debian's
# Chromium, and axe-core (the accessibility rules the tests run in every page) from npm
# at the version pinned in tests/browser/axe/package-lock.json.
# Runs as root, non-interactively; never downloads a browser build of Playwright's own.
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
axe_dir="$here/tests/browser/axe"

install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" != "0" ]; then
    echo "install-browser: /usr/bin/chromium is missing and this is not root; browser tests will be skipped" >&2
    return 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    echo "install-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
  else
    echo "install-browser: could not install chromium; browser tests will be skipped" >&2
  fi
}

install_axe() {
  if [ -f "$axe_dir/node_modules/axe-core/axe.min.js" ]; then
    return 0
  fi
  if ! command -v npm >/dev/null && [ "$(id -u)" = "0" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends npm >/dev/null || true
  fi
  if command -v npm >/dev/null && (cd "$axe_dir" && npm ci --no-audit --no-fund --silent); then
    echo "install-browser: installed axe-core into tests/browser/axe/node_modules"
  else
    echo "install-browser: could not install axe-core; the accessibility checks will fail" >&2
  fi
}

install_chromium
install_axe
