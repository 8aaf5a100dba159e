#!/usr/bin/env bash
# Modules that point back at Strata (issue 14): a view "loopy" stacks the
# personal token over a layer whose module leads back to Strata: Strata's
# own module by its path, through a symbolic link and as a copy; a renamed
# copy of p11-kit-proxy.so whose (private) configuration names Strata, or a
# copy of Strata; p11-kit-client.so pointing at the p11-kit server that
# serves this Strata. Each login ends within seconds, with the personal
# layer working, the looping layer offline and one log line that says why,
# and a bounded number of processes; strata check refuses Strata's own
# module under any name. TAP.
#
# usage: loops.sh SHIM   (the p11kit_conf preload shim)
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
shim=${1:?p11kit_conf shim}
PROXY=$(pkg-config --variable=proxy_module p11-kit-1)
CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
LOOPY_PIN=loopy-pin-74
LIMIT=20 # seconds a looping login may take before it counts as a hang

plan 22
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

# loop_policy PATH: the world's policy plus a layer "loop" on the module at
# PATH, stacked under personal in view loopy.
loop_policy() {
    cat >"$STRATA_CONF" <<POLICY
<?xml version="1.0" encoding="UTF-8"?>
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$SOFTHSM_MODULE"/>
  <module id="loop" path="$1"/>
  <layer id="personal" module="soft" token="personal"/>
  <layer id="group" module="soft" token="group" access="read-only"/>
  <layer id="other" module="soft" token="other"/>
  <layer id="loop" module="loop" token="Strata"/>
  <token label="Strata">
    <kdf ops="1" mem="8192"/>
    <view id="work" layers="personal group"/>
    <view id="anon" layers="other"/>
    <view id="loopy" layers="personal loop"/>
  </token>
</strata>
POLICY
}

loop_policy "$STRATA_MODULE"
printf '%s\n' "$LOOPY_PIN" personal-pin-71 unused |
    "$STRATA_CLI" enroll --token Strata --view loopy --pin-stdin --no-verify >/dev/null 2>&1 ||
    diag "enrolling loopy failed"
export STRATA_LOG=info STRATA_LOG_FILE=$WORLD/loop.log

# login_through MODULE: logs in to view loopy through MODULE and lists its
# objects, at most LIMIT seconds; sets out, rc and took (seconds).
login_through() {
    local t0
    : >"$STRATA_LOG_FILE"
    t0=$(date +%s)
    out=$(FOREIGN_LIMIT=$LIMIT foreign pkcs11-tool --module "$1" --token-label Strata --login \
        --pin "$LOOPY_PIN" -O 2>&1)
    rc=$?
    took=$(($(date +%s) - t0))
}

# expect_refused WHAT PATTERN: the last login ended in time, worked with the
# personal layer, and the log says why the looping layer is offline.
expect_refused() {
    if [ "$rc" -eq 0 ] && [ "$took" -lt "$LIMIT" ]; then ok "$1: the login ends (${took}s)"; else
        not_ok "$1: the login ends (exit $rc after ${took}s)"
        diag "$out"
    fi
    compare "$1: the personal layer works" "work-ec" "$(printf '%s\n' "$out" | labels_of)"
    contains "$1: the log says why" "$2" "$(cat "$STRATA_LOG_FILE")"
}

# ---- Strata's own module, under any name -------------------------------------

SELF='is Strata itself'
login_through "$STRATA_MODULE"
expect_refused "its own path" "$SELF"
ln -s "$STRATA_MODULE" "$WORLD/link.so"
loop_policy "$WORLD/link.so"
login_through "$STRATA_MODULE"
expect_refused "a symbolic link" "$SELF"
cp "$STRATA_MODULE" "$WORLD/other-name.so"
loop_policy "$WORLD/other-name.so"
login_through "$STRATA_MODULE"
expect_refused "a renamed copy" "$SELF"

out=$("$STRATA_CLI" check 2>&1)
rc=$?
if [ $rc -eq 1 ]; then ok "strata check fails on a copy of Strata"; else
    not_ok "strata check fails on a copy of Strata (exit $rc)"
fi
contains "... naming the module and why" "module 'loop' \\($WORLD/other-name.so\\) is Strata itself" \
    "$out"

# ---- a renamed copy of p11-kit-proxy.so --------------------------------------

# Its private configuration (read through the shim, which also points the
# copy at it) names SoftHSM2 and Strata, then a copy of Strata.
conf=$WORLD/p11kit
mkdir -p "$conf/modules"
: >"$conf/pkcs11.conf"
printf 'module: %s\n' "$SOFTHSM_MODULE" >"$conf/modules/softhsm2.module"
printf 'module: %s\ncritical: no\n' "$STRATA_MODULE" >"$conf/modules/strata.module"
cp -L "$PROXY" "$WORLD/renamed-proxy.so"
loop_policy "$WORLD/renamed-proxy.so"
export STRATA_TEST_P11KIT=$conf STRATA_TEST_P11KIT_COPY=$WORLD/renamed-proxy.so
EXTRA_PRELOAD=$shim login_through "$STRATA_MODULE"
expect_refused "a renamed p11-kit-proxy.so loading Strata" "called again from inside Strata"
printf 'module: %s\ncritical: no\n' "$WORLD/other-name.so" >"$conf/modules/strata.module"
EXTRA_PRELOAD=$shim login_through "$STRATA_MODULE"
expect_refused "a renamed p11-kit-proxy.so loading a copy of Strata" \
    "loaded by a layer's module while a Strata"
unset STRATA_TEST_P11KIT STRATA_TEST_P11KIT_COPY

# ---- p11-kit-client.so and the p11-kit server that serves this Strata --------

# The server's environment points p11-kit-client.so at the server itself:
# each connection starts a process running Strata, whose layer connects
# again. The number of the server's processes is sampled meanwhile.
sock=$WORLD/run/loop.sock
loop_policy "$CLIENT"
export P11_KIT_SERVER_ADDRESS=unix:path=$sock
exec_foreign p11-kit server -f -n "$sock" --provider "$STRATA_MODULE" "pkcs11:token=Strata" \
    >"$WORLD/server.out" 2>"$WORLD/server.err" &
server_pid=$!
stop_server() {
    pkill -KILL -P "$server_pid" 2>/dev/null
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
}
cleanup_hooks+=(stop_server)
for _ in $(seq 100); do
    [ -S "$sock" ] && break
    sleep 0.1
done
(
    max=0
    while kill -0 "$server_pid" 2>/dev/null; do
        n=$(pgrep -c -P "$server_pid")
        [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$WORLD/max-children"
        sleep 0.05
    done
) &
sampler=$!
login_through "$CLIENT"
expect_refused "p11-kit-client.so pointing at the server serving this Strata" \
    "serves process [0-9]+ over a socket, and that process is a Strata of the same catalog"
stop_server
wait "$sampler" 2>/dev/null
max=$(cat "$WORLD/max-children" 2>/dev/null || echo 0)
if [ "$max" -le 4 ]; then ok "... with at most 4 server processes at once ($max)"; else
    not_ok "... with at most 4 server processes at once ($max)"
fi
inits=$(grep -c 'info: C_Initialize:' "$STRATA_LOG_FILE")
if [ "$inits" -le 6 ]; then ok "... and at most 6 Strata initialisations ($inits)"; else
    not_ok "... and at most 6 Strata initialisations ($inits)"
fi

done_testing
