#!/usr/bin/env bash
# The systemd user units that serve a user's own Strata
# (engine/strata-server.socket, strata-server@.service as built): checked
# with `systemd-analyze verify`, then run as systemd would run them where
# systemd itself cannot run: `systemd-socket-activate --accept --inetd`
# listens on the socket and starts the service's ExecStart per connection
# on it, with the built module in place of the installed one; two clients
# log in with two PINs and each sees its own view. TAP output.
#
#   units.sh UNIT_DIR
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
units=$1
socket_unit=$units/strata-server.socket
service_unit=$units/strata-server@.service

CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
PY=/usr/bin/python3

plan 5
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify accepts the units" \
        env XDG_RUNTIME_DIR="$WORLD/run" systemd-analyze verify --user --man=no \
        "$socket_unit" "$service_unit"
else
    ok "# SKIP systemd-analyze not installed (package systemd)"
fi
compare "the socket is the user's alone, in a folder of theirs" \
    "Accept=yes DirectoryMode=0700 ListenStream=%t/strata/pkcs11 SocketMode=0600" \
    "$(grep -E '^(ListenStream|DirectoryMode|SocketMode|Accept)=' "$socket_unit" | sort | tr '\n' ' ' |
        sed 's/ $//')"

# ExecStart=/usr/bin/p11-kit remote /installed/strata-pkcs11.so
exec_start=$(sed -n 's/^ExecStart=//p' "$service_unit")
read -r -a command <<<"$exec_start"
command[${#command[@]} - 1]=$STRATA_MODULE
sock=$WORLD/run/strata/pkcs11
mkdir -p -m 700 "$WORLD/run/strata"
if ! command -v systemd-socket-activate >/dev/null; then
    for _ in 1 2 3; do ok "# SKIP systemd-socket-activate not installed (package systemd)"; done
    done_testing
    exit
fi
# What the user's manager would give the service: the user's environment
# (systemd-socket-activate passes on only what -E names).
pass=()
for var in HOME XDG_CONFIG_HOME XDG_DATA_HOME XDG_RUNTIME_DIR STRATA_CONF SOFTHSM2_CONF; do
    [ -n "${!var:-}" ] && pass+=(-E "$var")
done
# Under sanitizer builds the service loads the instrumented module too.
[ -n "${STRATA_PRELOAD:-}" ] &&
    pass+=(-E "LD_PRELOAD=$STRATA_PRELOAD" -E ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0)
exec_foreign systemd-socket-activate --accept --inetd "${pass[@]}" -l "$sock" "${command[@]}" \
    >"$WORLD/activate.out" 2>"$WORLD/activate.err" &
activator=$!
stop_activator() {
    kill "$activator" 2>/dev/null
    wait "$activator" 2>/dev/null
}
cleanup_hooks+=(stop_activator)
for _ in $(seq 100); do
    [ -S "$sock" ] && break
    sleep 0.05
done
export P11_KIT_SERVER_ADDRESS=unix:path=$sock

a_out=$(foreign "$PY" "$here/view.py" "$CLIENT" "$WORK_PIN" work-ec 2>&1)
b_out=$(foreign "$PY" "$here/view.py" "$CLIENT" "$ANON_PIN" anon-ec 2>&1)
compare "a client of the activated socket logs in to the work view" "labels: group-ec work-ec" \
    "$(printf '%s\n' "$a_out" | grep '^labels:')"
contains "and signs with its key" '^signed: work-ec ok$' "$a_out"
compare "another connection logs in to the anon view and sees only it" "labels: anon-ec" \
    "$(printf '%s\n' "$b_out" | grep '^labels:')"
[ "$tap_failed" -gt 0 ] && diag <"$WORLD/activate.err"
done_testing
