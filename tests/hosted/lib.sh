# Shared helpers for the hosted-use tests (sourced, not run): TAP output,
# running foreign programs under sanitizer builds, and an isolated world.
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

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
WORK_PIN=work-view-pin
ANON_PIN=anon-view-pin

: "${STRATA_MODULE:?STRATA_MODULE must name the built module}"
: "${STRATA_CLI:?STRATA_CLI must name the built strata command}"

# ---- TAP -------------------------------------------------------------------

tap_n=0
tap_failed=0

plan() { echo "1..$1"; }

diag() {
    if [ $# -gt 0 ]; then
        printf '%s\n' "$@" | sed 's/^/# /'
    else
        sed 's/^/# /'
    fi
}

ok() {
    tap_n=$((tap_n + 1))
    echo "ok $tap_n - $*"
}

not_ok() {
    tap_n=$((tap_n + 1))
    tap_failed=$((tap_failed + 1))
    echo "not ok $tap_n - $*"
}

# check DESC CMD...: ok when CMD exits 0 (its output is kept in $out).
check() {
    local desc=$1
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        ok "$desc"
    else
        not_ok "$desc"
        diag "command: $* (exit $rc)"
        printf '%s\n' "$out" | tail -n 40 | diag
    fi
    return $rc
}

# compare DESC EXPECTED ACTUAL
compare() {
    if [ "$2" = "$3" ]; then
        ok "$1"
        return 0
    fi
    not_ok "$1"
    diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$3") |
        sed '1s/.*/--- expected/;2s/.*/+++ actual/' | head -n 60 | diag
    return 1
}

# contains DESC REGEX TEXT / lacks DESC REGEX TEXT
contains() {
    if printf '%s\n' "$3" | grep -Eq -- "$2"; then
        ok "$1"
        return 0
    fi
    not_ok "$1"
    diag "no line matches: $2"
    printf '%s\n' "$3" | head -n 40 | diag
    return 1
}

lacks() {
    if ! printf '%s\n' "$3" | grep -Eq -- "$2"; then
        ok "$1"
        return 0
    fi
    not_ok "$1"
    diag "unexpected line matching: $2"
    printf '%s\n' "$3" | grep -E -- "$2" | head -n 20 | diag
    return 1
}

done_testing() {
    [ "$tap_n" -gt 0 ] && [ "$tap_failed" -eq 0 ]
}

# ---- foreign programs ---------------------------------------------------------

# foreign CMD...: runs a program that is not ours (pkcs11-tool, p11-kit,
# python3) so that it can load the instrumented module under sanitizer
# builds; EXTRA_PRELOAD, when set, is preloaded too (after the runtime).
foreign() {
    local preload="${STRATA_PRELOAD:-}${EXTRA_PRELOAD:+ $EXTRA_PRELOAD}"
    if [ -n "${STRATA_PRELOAD:-}" ]; then
        LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 "$@"
    elif [ -n "$preload" ]; then
        LD_PRELOAD="$preload" "$@"
    else
        "$@"
    fi
}

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

# p11d TOKEN PIN ARGS...: pkcs11-tool on SoftHSM2 directly.
p11d() {
    local token=$1 pin=$2
    shift 2
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$token" --login --pin "$pin" "$@"
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
    WORLD=$(mktemp -d "${TMPDIR:-/tmp}/strata-hosted.XXXXXX") || return 1
    trap world_cleanup EXIT
    mkdir -p "$WORLD/tokens" "$WORLD/home" "$WORLD/config" "$WORLD/data" "$WORLD/run"
    chmod 700 "$WORLD/run"
    export HOME=$WORLD/home XDG_CONFIG_HOME=$WORLD/config XDG_DATA_HOME=$WORLD/data
    export XDG_RUNTIME_DIR=$WORLD/run
    export SOFTHSM2_CONF=$WORLD/softhsm2.conf STRATA_CONF=$WORLD/strata.xml
    unset P11_KIT_SERVER_ADDRESS P11_KIT_SERVER_PID STRATA_LOG STRATA_LOG_FILE
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$WORLD/tokens" >"$SOFTHSM2_CONF"
    write_policy
    if ! world_populate >"$WORLD/setup.log" 2>&1; then
        diag "world setup failed:"
        tail -n 40 "$WORLD/setup.log" | diag
        return 1
    fi
}

# Cleanup hooks run before the folder goes (the tests add theirs, e.g. to
# stop a server).
cleanup_hooks=()
world_cleanup() {
    local h
    for h in "${cleanup_hooks[@]}"; do
        $h
    done
    [ -n "${WORLD:-}" ] && [ -z "${STRATA_KEEP_WORLD:-}" ] && rm -rf "$WORLD"
}
