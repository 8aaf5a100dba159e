#!/usr/bin/env bash
# Hosted use: Strata served by `p11-kit server` on a Unix socket, two
# client processes through p11-kit-client.so logging in with two different
# PINs at the same time; each signs with a key of its view and sees only its
# view's objects. TAP output.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
PY=/usr/bin/python3

plan 10
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

# The server prints P11_KIT_SERVER_ADDRESS once its socket is bound; fd 3
# stays open on its output so that it never writes into a closed pipe.
sock=$WORLD/run/strata.sock
mkfifo "$WORLD/server.out"
exec_foreign p11-kit server -f -n "$sock" --provider "$STRATA_MODULE" "pkcs11:token=Strata" \
    >"$WORLD/server.out" 2>"$WORLD/server.err" &
server_pid=$!
stop_server() {
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
}
cleanup_hooks+=(stop_server)
exec 3<"$WORLD/server.out"
address=
IFS= read -r line <&3 && address=$(printf '%s\n' "$line" | sed -n 's/^P11_KIT_SERVER_ADDRESS=\([^;]*\);.*/\1/p')
compare "the server announces its socket" "unix:path=$sock" "$address"
export P11_KIT_SERVER_ADDRESS=$address

# client ARGS...: pkcs11-tool through p11-kit-client.so.
client() { foreign pkcs11-tool --module "$CLIENT" "$@"; }

# The socket is bound before the address is printed; listening follows at
# once. Wait for the first client that gets through (bounded, no sleep).
ready=0
for _ in $(seq 200); do
    if client -L >/dev/null 2>&1; then
        ready=1
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
done
if [ $ready -eq 1 ]; then ok "a client reaches the server"; else
    not_ok "a client reaches the server"
    diag <"$WORLD/server.err"
fi

check "the client sees the virtual token" client -L
contains "token Strata listed" 'token label *: Strata$' "$out"

# Two clients at once: A (work PIN) logs in, signs, then waits with its
# session open while B (anon PIN) logs in and signs; then A lists again.
mkfifo "$WORLD/a.ready" "$WORLD/a.go"
foreign "$PY" "$here/view.py" "$CLIENT" "$WORK_PIN" work-ec "$WORLD/a.ready" "$WORLD/a.go" \
    >"$WORLD/a.out" 2>"$WORLD/a.err" &
a_pid=$!
IFS= read -r _ <"$WORLD/a.ready"
b_out=$(foreign "$PY" "$here/view.py" "$CLIENT" "$ANON_PIN" anon-ec 2>&1)
b_rc=$?
echo go >"$WORLD/a.go"
wait "$a_pid"
a_rc=$?
a_out=$(cat "$WORLD/a.out" "$WORLD/a.err")

compare "client A (work PIN) sees the work view" "labels: group-ec work-ec" \
    "$(printf '%s\n' "$a_out" | grep '^labels:')"
contains "client A signs with a work key" '^signed: work-ec ok$' "$a_out"
compare "client B (anon PIN), logged in meanwhile, sees only the anon view" \
    "labels: anon-ec" "$(printf '%s\n' "$b_out" | grep '^labels:')"
contains "client B signs with its own key" '^signed: anon-ec ok$' "$b_out"
compare "client A still sees only its view after B's login" "labels-after: group-ec work-ec" \
    "$(printf '%s\n' "$a_out" | grep '^labels-after:')"
if [ $a_rc -ne 0 ] || [ $b_rc -ne 0 ]; then
    diag "client A exit $a_rc:" "$a_out" "client B exit $b_rc:" "$b_out"
fi

# A wrong PIN through the client is refused like a local one.
out=$(client --token-label Strata --login --pin not-a-pin -O 2>&1)
contains "a wrong PIN through the server fails with CKR_PIN_INCORRECT" 'CKR_PIN_INCORRECT' "$out"

done_testing
