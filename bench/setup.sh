#!/usr/bin/env bash
# Install the load generators the benchmarks use, without starting any daemon.
#
# smtp-source ships in Debian's `postfix` package. Installing that package would start a
# mail server, so the .deb is only downloaded and unpacked into bench/.tools/ (gitignored);
# `bench/run` runs the binary from there with its private libraries on LD_LIBRARY_PATH.
# wrk is a plain client, installed with apt. Run as root (apt-get); safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

TOOLS="$PWD/.tools"
SMTP_SOURCE="$TOOLS/usr/sbin/smtp-source"

if [[ ! -x "$SMTP_SOURCE" ]]; then
  apt-get update -qq
  # Libraries smtp-source links against that a slim image may lack (no daemon among them).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libicu72 libsasl2-2 libnsl2 libdb5.3 >/dev/null
  download="$(mktemp -d)"
  (cd "$download" && apt-get download -qq postfix)
  mkdir -p "$TOOLS"
  dpkg-deb -x "$download"/postfix_*.deb "$TOOLS"
  rm -rf "$download"
fi

if ! command -v wrk >/dev/null 2>&1; then
  [[ -n "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock || true)" ]] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

LD_LIBRARY_PATH="$TOOLS/usr/lib/postfix" "$SMTP_SOURCE" 2>&1 | head -n 1 || true
echo "smtp-source: $SMTP_SOURCE"
echo "wrk: $(command -v wrk)"
