#!/usr/bin/env bash
# Runs pykcs11.py (Debian's python3 with PyKCS11) in the world lib.sh
# builds; the Python script speaks TAP.
set -u
here=$(dirname "$0")
. "$here/lib.sh"

if ! world_setup; then
    plan 1
    not_ok "world setup"
    exit 1
fi
foreign /usr/bin/python3 "$here/pykcs11.py"
