#!/usr/bin/env bash
# Install what gitwal needs to build and test on Debian 12 (run as root, or with sudo).
# Idempotent: does nothing when everything is already installed.
set -euo pipefail

PACKAGES=(build-essential clang cmake pkg-config git groff-base time python3
  libgit2-dev libcurl4-openssl-dev libssl-dev liblz4-dev libsqlite3-dev
  libjansson-dev libcmocka-dev libxml2-dev zlib1g-dev libmicrohttpd-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
