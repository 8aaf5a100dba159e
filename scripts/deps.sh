#!/usr/bin/env bash
# Installs the Debian packages Strata needs to build, test and demo.
# Quiet and quick when everything is already there.
set -euo pipefail

PACKAGES=(
  build-essential meson ninja-build pkg-config clang clang-format libclang-rt-dev
  libcriterion-dev libsqlite3-dev libsodium-dev libxml2-dev libxml2-utils
  libp11-kit-dev libnss3-dev p11-kit p11-kit-modules softhsm2 sqlite3
  opensc gnutls-bin libnss3-tools python3 python3-pykcs11
  libengine-pkcs11-openssl openssl openssh-client man-db
  opencryptoki libtpm2-pkcs11-1 swtpm
  systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
