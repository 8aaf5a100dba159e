# Shared helpers for the hosted-use tests (sourced, not run): an isolated
# world on top of tests/common/lib.sh (TAP output, running foreign programs
# under sanitizer builds, p11d, the world's base).
#
# world_setup builds, in a fresh temporary folder removed on exit, its own
# SoftHSM2 configuration and token directory, a private HOME/XDG tree and
# a Strata policy and catalog:
#   personal (PIN personal-pin-71): EC P-256 pair work-ec, ID 11
#   group    (PIN group-pin-72):    EC P-256 pair group-ec, ID 01 (read-only layer)
#   other    (PIN other-pin-73):    EC P-256 pair anon-ec, ID 21
#   Strata: PIN work-view-pin selects view "work" (personal over group),
#           PIN anon-view-pin view "anon" (other).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

. "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"

WORK_PIN=work-view-pin
ANON_PIN=anon-view-pin

# labels_of: the sorted "label:" values of a pkcs11-tool object listing.
labels_of() { sed -n "s/^[[:space:]]*label:[[:space:]]*//p" | sort -u; }

# ---- the world ------------------------------------------------------------------

write_policy() {
    cat >"$STRATA_CONF" <<POLICY
<?xml version="1.0" encoding="UTF-8"?>
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$SOFTHSM_MODULE"/>
  <layer id="personal" module="soft" token="personal"/>
  <layer id="group" module="soft" token="group" access="read-only"/>
  <layer id="other" module="soft" token="other"/>
  <token label="Strata">
    <kdf ops="1" mem="8192"/>
    <view id="work" layers="personal group"/>
    <view id="anon" layers="other"/>
  </token>
</strata>
POLICY
}

world_populate() {
    softhsm2-util --init-token --free --label personal --so-pin so-pin-70 --pin personal-pin-71 &&
        softhsm2-util --init-token --free --label group --so-pin so-pin-70 --pin group-pin-72 &&
        softhsm2-util --init-token --free --label other --so-pin so-pin-70 --pin other-pin-73 ||
        return 1
    p11d personal personal-pin-71 --keypairgen --key-type EC:prime256v1 --label work-ec --id 11 &&
        p11d group group-pin-72 --keypairgen --key-type EC:prime256v1 --label group-ec --id 01 &&
        p11d other other-pin-73 --keypairgen --key-type EC:prime256v1 --label anon-ec --id 21 ||
        return 1
    printf '%s\n' "$WORK_PIN" personal-pin-71 group-pin-72 |
        "$STRATA_CLI" enroll --token Strata --view work --pin-stdin &&
        printf '%s\n' "$ANON_PIN" other-pin-73 |
        "$STRATA_CLI" enroll --token Strata --view anon --pin-stdin
}

# world_setup: creates the world described at the top and exports its
# environment; the folder is $WORLD. Returns non-zero on failure.
world_setup() {
    world_create hosted || return 1
    unset P11_KIT_SERVER_ADDRESS P11_KIT_SERVER_PID STRATA_LOG STRATA_LOG_FILE
    write_policy
    world_populate_logged
}

# serve_strata SOCKET: starts `p11-kit server` serving the token Strata on
# SOCKET in the background ($server_pid, stopped on exit), waits until a
# client gets through (bounded) and exports P11_KIT_SERVER_ADDRESS.
# Returns non-zero, with the server's errors as diagnostics, otherwise.
serve_strata() {
    local sock=$1 client=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
    exec_foreign p11-kit server -f -n "$sock" --provider "$STRATA_MODULE" "pkcs11:token=Strata" \
        >"$WORLD/server.out" 2>"$WORLD/server.err" &
    server_pid=$!
    cleanup_hooks+=(stop_served)
    export P11_KIT_SERVER_ADDRESS=unix:path=$sock
    for _ in $(seq 200); do
        foreign pkcs11-tool --module "$client" -L 2>/dev/null | grep -q 'token label *: Strata$' &&
            return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    diag <"$WORLD/server.err"
    return 1
}

stop_served() {
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
}
