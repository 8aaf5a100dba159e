#!/usr/bin/env bash
# wait.sh - runs bench-wait (tests/bench/wait.c) in a temporary world: one
# SoftHSM2 token as the only layer of one view. Arguments go to
# bench-wait (--seconds N, --waiters N); BUILD names the build folder.
#   tests/bench/wait.sh --seconds 60 --waiters 1
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SOFTHSM=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
W=$(mktemp -d /tmp/strata-bench-wait.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/tokens" "$W/home"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$W" >"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf HOME=$W/home STRATA_CONF=$W/strata.xml
export XDG_CONFIG_HOME=$W/home/.config XDG_DATA_HOME=$W/home/.local/share
unset STRATA_LOG
softhsm2-util --init-token --free --label l1 --so-pin 56781234 --pin 1234 >/dev/null
cat >"$STRATA_CONF" <<XML
<strata version="1">
  <catalog path="$W/catalog.db"/>
  <module id="soft" path="$SOFTHSM"/>
  <layer id="l1" module="soft" token="l1"/>
  <token label="Bench">
    <view id="one" layers="l1"/>
  </token>
</strata>
XML
"$BUILD/tests/bench/bench-wait" --module "$BUILD/engine/strata-pkcs11.so" "$@"
