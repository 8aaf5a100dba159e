#!/usr/bin/env bash
# Who may connect to `p11-kit server` serving Strata (docs/hosting.md, "Who
# may connect"): its socket is 0711 and owned by the server's user, so
# another Unix user sees "No slots."; `-u USER -g GROUP` gives the socket to
# that user, who then sees Strata's token while the server's own user is
# refused; a group given the socket with chgrp + chmod 0660 gets in. Runs
# the server as root and the client as nobody: skipped when not root. TAP.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CLIENT=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
OTHER=nobody
OTHER_GROUP=$(id -gn "$OTHER" 2>/dev/null)

if [ "$(id -u)" -ne 0 ] || [ -z "$OTHER_GROUP" ] || ! command -v runuser >/dev/null; then
    echo "1..0 # SKIP needs root, runuser and a user '$OTHER' to act as another Unix user"
    exit 0
fi
plan 8
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

# The socket lives in a folder everyone may search; the world stays 0700.
sockdir=$(mktemp -d /tmp/strata-socket.XXXXXX)
chmod 0755 "$sockdir"
sock=$sockdir/strata.sock
remove_sockdir() { rm -rf "$sockdir"; }
cleanup_hooks+=(remove_sockdir)

server_pid=
# serve ARGS...: (re)starts the server with ARGS and waits for its socket.
serve() {
    stop_server
    rm -f "$sock"
    exec_foreign p11-kit server -f "$@" -n "$sock" --provider "$STRATA_MODULE" \
        "pkcs11:token=Strata" >"$WORLD/server.out" 2>"$WORLD/server.err" &
    server_pid=$!
    for _ in $(seq 100); do
        [ -S "$sock" ] && return 0
        sleep 0.05
    done
    diag "the server made no socket:" "$(cat "$WORLD/server.err")"
}
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
}
cleanup_hooks+=(stop_server)

# as_other: lists the slots through the client as the other user.
as_other() {
    runuser -u "$OTHER" -- env P11_KIT_SERVER_ADDRESS="unix:path=$sock" \
        pkcs11-tool --module "$CLIENT" -L 2>&1
}
as_server_user() {
    P11_KIT_SERVER_ADDRESS="unix:path=$sock" foreign pkcs11-tool --module "$CLIENT" -L 2>&1
}

serve
compare "the socket is 0711, owned by the server's user" "srwx--x--x root" \
    "$(stat -c '%A %U' "$sock")"
contains "another user sees no slot" '^No slots\.' "$(as_other)"
contains "the server's own user sees Strata" 'token label *: Strata$' "$(as_server_user)"

serve -u "$OTHER" -g "$OTHER_GROUP"
compare "-u/-g give the socket to that user" "$OTHER:$OTHER_GROUP" "$(stat -c '%U:%G' "$sock")"
contains "... who sees Strata's token" 'token label *: Strata$' "$(as_other)"
lacks "... and the server's own user no longer does" 'token label *: Strata$' "$(as_server_user)"

serve
chgrp "$OTHER_GROUP" "$sock" && chmod 0660 "$sock"
compare "chgrp + chmod 0660 after the start" "srw-rw---- $OTHER_GROUP" "$(stat -c '%A %G' "$sock")"
contains "... let the group's members in" 'token label *: Strata$' "$(as_other)"

done_testing
