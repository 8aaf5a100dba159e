#!/usr/bin/env bash
# Hosted use: one layer isolated in its own process. The group token is
# served by `p11-kit server --provider libsofthsm2.so` and reached through
# p11-kit-client.so as the module of the group layer; the personal layer's
# SoftHSM2 runs in process. One long-running client (isolate.py) logs in,
# signs with both layers' keys, then the backend process is killed
# (SIGKILL): the personal layer keeps working, the group key fails with a
# PKCS#11 code and nothing crashes; the server is restarted on the same
# socket and the same client signs with the same group key handle again,
# without logging in again. Client and test talk through two FIFOs.
# TAP output. See docs/hosting.md.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
PY=/usr/bin/python3

# The world of lib.sh with the group layer on the remote module.
write_policy() {
    cat >"$STRATA_CONF" <<POLICY
<?xml version="1.0" encoding="UTF-8"?>
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$SOFTHSM_MODULE"/>
  <module id="remote" path="$CLIENT"/>
  <layer id="personal" module="soft" token="personal"/>
  <layer id="group" module="remote" token="group" access="read-only"/>
  <token label="Strata">
    <kdf ops="1" mem="8192"/>
    <view id="work" layers="personal group"/>
  </token>
</strata>
POLICY
}

# Tokens and keys only: enrolment needs the server.
world_populate() {
    softhsm2-util --init-token --free --label personal --so-pin so-pin-70 --pin personal-pin-71 &&
        softhsm2-util --init-token --free --label group --so-pin so-pin-70 --pin group-pin-72 ||
        return 1
    p11d personal personal-pin-71 --keypairgen --key-type EC:prime256v1 --label work-ec --id 11 &&
        p11d group group-pin-72 --keypairgen --key-type EC:prime256v1 --label group-ec --id 01
}

plan 16
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

sock=$WORLD/run/group.sock
server_pid=
server_n=0

# start_server: runs the group token's server in the foreground on $sock and
# waits for its announcement on a FIFO (fd 3 stays open on it so that the
# server never writes into a closed pipe). Sets $address to the announced
# address (empty when the server said nothing) and $server_pid.
start_server() {
    server_n=$((server_n + 1))
    local fifo=$WORLD/server$server_n.out line
    mkfifo "$fifo"
    exec_foreign p11-kit server -f -n "$sock" --provider "$SOFTHSM_MODULE" "pkcs11:token=group" \
        >"$fifo" 2>"$WORLD/server$server_n.err" &
    server_pid=$!
    exec 3<"$fifo"
    address=
    IFS= read -r line <&3 &&
        address=$(printf '%s\n' "$line" | sed -n 's/^P11_KIT_SERVER_ADDRESS=\([^;]*\);.*/\1/p')
}

# descendants PID: PID and every process below it (p11-kit server and the
# processes it forked for its connections).
descendants() {
    local kid
    echo "$1"
    for kid in $(ps -o pid= --ppid "$1"); do
        descendants "$kid"
    done
}

# crash_server: SIGKILL to the server and to the processes it forked for
# its connections (each serves one client: the backend that "crashes").
# Sets $killed to the number of processes killed.
crash_server() {
    local pids
    pids=$(descendants "$server_pid")
    killed=$(printf '%s\n' $pids | wc -l)
    kill -9 $pids 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}

stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
}
cleanup_hooks+=(stop_server)

start_server
compare "the group server announces its socket" "unix:path=$sock" "$address"
export P11_KIT_SERVER_ADDRESS=$address

out=$(printf '%s\n' "$WORK_PIN" personal-pin-71 group-pin-72 |
    "$STRATA_CLI" enroll --token Strata --view work --pin-stdin 2>&1)
rc=$?
if [ $rc -eq 0 ]; then ok "enrolment verifies the group PIN through the server"; else
    not_ok "enrolment verifies the group PIN through the server"
    printf '%s\n' "$out" | diag
fi

# The client: commands on fd 4, one answer line each on fd 5.
mkfifo "$WORLD/cmd" "$WORLD/reply"
foreign "$PY" "$here/isolate.py" "$STRATA_MODULE" "$WORLD/cmd" "$WORLD/reply" \
    2>"$WORLD/client.err" &
client_pid=$!
exec 4>"$WORLD/cmd" 5<"$WORLD/reply"

# ask CMD: sends one command and sets $answer to the client's reply line.
ask() {
    answer=
    printf '%s\n' "$*" >&4 && IFS= read -r answer <&5
}

ask login "$WORK_PIN"
compare "login with the view PIN" "login ok" "$answer"
ask labels
compare "the view lists the personal and the remote group key" "labels: group-ec work-ec" "$answer"
ask sign work-ec
contains "a personal key signs" '^sign work-ec ok [0-9]+$' "$answer"
ask sign group-ec
contains "the remote group key signs" '^sign group-ec ok [0-9]+$' "$answer"
group_handle=${answer##* }

crash_server
# the server and the backend process serving the client
if [ "$killed" -ge 2 ]; then ok "the group backend process is killed"; else
    not_ok "the group backend process is killed (only $killed processes)"
fi

ask sign group-ec
contains "a group key operation fails with a device code" \
    "^sign group-ec (CKR_DEVICE_ERROR|CKR_DEVICE_REMOVED|CKR_TOKEN_NOT_PRESENT|CKR_KEY_HANDLE_INVALID) $group_handle\$" \
    "$answer"
diag "group key while the backend is down: $answer"
ask labels
compare "the personal objects are still listed" "labels: work-ec" "$answer"
ask sign work-ec
contains "a personal key still signs" '^sign work-ec ok [0-9]+$' "$answer"
ask sign group-ec
contains "the group key still fails, no crash" \
    "^sign group-ec (CKR_DEVICE_ERROR|CKR_DEVICE_REMOVED|CKR_TOKEN_NOT_PRESENT|CKR_KEY_HANDLE_INVALID) $group_handle\$" \
    "$answer"
diag "group key again: $answer"

start_server
compare "the group server is restarted on the same socket" "unix:path=$sock" "$address"

ask sign group-ec
compare "the same client signs with the same group key handle, no new login" \
    "sign group-ec ok $group_handle" "$answer"
ask labels
compare "the view lists both layers again" "labels: group-ec work-ec" "$answer"
ask sign work-ec
contains "the personal key still signs" '^sign work-ec ok [0-9]+$' "$answer"

ask quit
exec 4>&- 5<&-
wait "$client_pid"
rc=$?
if [ $rc -eq 0 ]; then ok "the client exits cleanly"; else
    not_ok "the client exits cleanly (exit $rc)"
    diag <"$WORLD/client.err"
fi

done_testing
