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

if [[ ! -x "$SMTP_SOURCE" ]] || ! command -v wrk >/dev/null 2>&1; then
  apt-get update -qq
fi

if [[ ! -x "$SMTP_SOURCE" ]]; then
  # Libraries smtp-source links against that a slim image may lack (no daemon among them).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libicu72 libnsl2 libdb5.3 >/dev/null
  download="$(mktemp -d)"
  # As root into a private temporary directory: no need for apt's sandbox user there.
  (cd "$download" && apt-get download -qq -o APT::Sandbox::User=root postfix)
  mkdir -p "$TOOLS"
  dpkg-deb -x "$download"/postfix_*.deb "$TOOLS"
  rm -rf "$download"
fi

if ! command -v wrk >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

echo "smtp-source: $SMTP_SOURCE"
echo "wrk: $(command -v wrk)"
