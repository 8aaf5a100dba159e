# Shared helpers for the real-client tests (sourced, not run).
#
# world_setup builds an isolated world in a fresh temporary folder: its own
# SoftHSM2 configuration and token directory, a Strata policy and catalog,
# and a private HOME/XDG tree so that NSS, p11-kit and GnuTLS never read the
# machine's own configuration. A trap removes the folder on exit.
#
# The world holds three SoftHSM2 tokens and one virtual token "Strata":
#   personal (PIN personal-pin): RSA-2048 pair personal-rsa, ID 11
#   group    (PIN group-pin):    EC P-256 pair shared-ec, ID 01
#                                RSA-2048 pair shared-rsa, ID 02
#                                certificate + private key group-cert, ID 03
#   nym      (PIN nym-pin):      EC P-256 pair nym-ec, ID 21
#   Strata: PIN 1111 selects view "work" (personal over group, group
#           read-only), PIN 2222 view "pseudonym" (nym).
#
# TAP: plan N, then ok/not_ok/check/compare; diag writes "# " lines.

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
WORK_PIN=1111
NYM_PIN=2222

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

# check DESC CMD...: runs CMD (output kept in $out, status in $rc); ok when
# it exits 0, otherwise not ok with the command and its output as diagnostics.
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

# check_fails DESC CMD...: like check, but CMD must exit non-zero.
check_fails() {
    local desc=$1
    shift
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        ok "$desc"
        return 0
    fi
    not_ok "$desc"
    diag "command: $* (exit 0, expected a failure)"
    printf '%s\n' "$out" | tail -n 40 | diag
    return 1
}

# compare DESC EXPECTED ACTUAL: ok when the two texts are equal, otherwise
# not ok with a unified diff (expected first) as diagnostics.
compare() {
    local desc=$1
    if [ "$2" = "$3" ]; then
        ok "$desc"
        return 0
    fi
    not_ok "$desc"
    diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$3") |
        sed '1s/.*/--- expected/;2s/.*/+++ actual/' | head -n 60 | diag
    return 1
}

# contains DESC NEEDLE TEXT: ok when TEXT has a line matching the extended
# regular expression NEEDLE.
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

# lacks DESC NEEDLE TEXT: ok when no line of TEXT matches NEEDLE.
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

# done_testing: the script's exit status (TAP readers also count the lines).
done_testing() {
    [ "$tap_failed" -eq 0 ]
}

# ---- running foreign programs ------------------------------------------------

# foreign CMD...: runs a program that is not ours (pkcs11-tool, p11tool,
# certutil, openssl, python3, ssh-keygen) so that it can load the module;
# under sanitizer builds that needs the sanitizer runtime preloaded.
foreign() {
    if [ -n "${STRATA_PRELOAD:-}" ]; then
        LD_PRELOAD="$STRATA_PRELOAD" \
            ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0 "$@"
    else
        "$@"
    fi
}

# p11s ARGS...: pkcs11-tool through Strata, on the virtual token.
p11s() { foreign pkcs11-tool --module "$STRATA_MODULE" --token-label Strata "$@"; }

# p11d TOKEN PIN ARGS...: pkcs11-tool on SoftHSM2 directly, logged in to TOKEN.
p11d() {
    local token=$1 pin=$2
    shift 2
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$token" --login --pin "$pin" "$@"
}

# labels_of: the sorted "label:" values of a pkcs11-tool object listing.
labels_of() { sed -n "s/^[[:space:]]*label:[[:space:]]*//p" | sed "s/^'\\(.*\\)'\$/\\1/" | sort; }

# objects_of: sorted "<kind> <label>" lines of a pkcs11-tool object listing,
# e.g. "Private Key Object; RSA personal-rsa".
objects_of() {
    awk '/Object;|^Certificate Object|^Data object/ {
             kind = $0; sub(/[[:space:]]+$/, "", kind); next }
         /^[[:space:]]*label:/ {
             l = $0; sub(/^[[:space:]]*label:[[:space:]]*/, "", l); gsub(/^\047|\047$/, "", l)
             print kind " " l }' | sort
}

# ---- the world ------------------------------------------------------------------

# write_policy [PUBLIC_VIEW]: (re)writes the policy; PUBLIC_VIEW, when given,
# is marked public="true" (its public objects show before login).
write_policy() {
    local pub_work="" pub_nym=""
    case "${1:-}" in
    work) pub_work=' public="true"' ;;
    pseudonym) pub_nym=' public="true"' ;;
    esac
    cat >"$STRATA_CONF" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$SOFTHSM_MODULE"/>
  <layer id="personal" module="soft" token="personal"/>
  <layer id="group" module="soft" token="group" access="read-only"/>
  <layer id="nym" module="soft" token="nym"/>
  <token label="Strata">
    <kdf ops="1" mem="8192"/>
    <view id="work" layers="personal group" whiteout="allow"$pub_work/>
    <view id="pseudonym" layers="nym"$pub_nym/>
  </token>
</strata>
EOF
}

# softhsm_conf FILE TOKENDIR: a SoftHSM2 configuration for TOKENDIR.
softhsm_conf() {
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$2" >"$1"
}

# softhsm_subset NAME LABEL...: a second SoftHSM2 configuration whose token
# directory holds copies of the named tokens as they are now (SoftHSM2 does
# not follow links), so a client run on SoftHSM2 directly sees exactly those
# tokens. Prints the configuration's path.
softhsm_subset() {
    local dir=$WORLD/subset-$1 label tok
    shift
    mkdir -p "$dir/tokens" || return 1
    for label in "$@"; do
        tok=$(cat "$WORLD/tokendir-$label") || return 1
        cp -a "$tok" "$dir/tokens/" || return 1
    done
    softhsm_conf "$dir/softhsm2.conf" "$dir/tokens"
    echo "$dir/softhsm2.conf"
}

# init_token LABEL: a SoftHSM2 token with SO PIN 0000 and user PIN
# LABEL-pin; its folder is recorded in $WORLD/tokendir-LABEL.
init_token() {
    local before after
    before=$(ls "$WORLD/tokens")
    softhsm2-util --init-token --free --label "$1" --so-pin 0000 --pin "$1-pin" || return 1
    after=$(ls "$WORLD/tokens")
    comm -13 <(printf '%s\n' "$before" | sort) <(printf '%s\n' "$after" | sort) |
        sed "s|^|$WORLD/tokens/|" >"$WORLD/tokendir-$1"
    [ "$(wc -l <"$WORLD/tokendir-$1")" -eq 1 ]
}

# world_setup [PUBLIC_VIEW]: creates the world described at the top and
# exports its environment. Returns non-zero (with diagnostics) on failure.
world_setup() {
    WORLD=$(mktemp -d "${TMPDIR:-/tmp}/strata-clients.XXXXXX") || return 1
    trap 'rm -rf "$WORLD"' EXIT
    mkdir -p "$WORLD/tokens" "$WORLD/home" "$WORLD/config" "$WORLD/data" \
        "$WORLD/cache" "$WORLD/run" "$WORLD/tmp"
    chmod 700 "$WORLD/run"
    export HOME=$WORLD/home XDG_CONFIG_HOME=$WORLD/config XDG_DATA_HOME=$WORLD/data
    export XDG_CACHE_HOME=$WORLD/cache XDG_RUNTIME_DIR=$WORLD/run TMPDIR=$WORLD/tmp
    export SOFTHSM2_CONF=$WORLD/softhsm2.conf STRATA_CONF=$WORLD/strata.xml
    # Never let p11-kit or GnuTLS reach the machine's own modules or a
    # running p11-kit server.
    unset P11_KIT_SERVER_ADDRESS GNUTLS_PIN GNUTLS_SO_PIN PKCS11_MODULE_PATH OPENSSL_CONF \
        STRATA_LOG SSH_AUTH_SOCK
    softhsm_conf "$SOFTHSM2_CONF" "$WORLD/tokens"
    write_policy "${1:-}"
    world_log=$WORLD/setup.log
    if ! world_populate >"$world_log" 2>&1; then
        diag "world setup failed:"
        tail -n 40 "$world_log" | diag
        return 1
    fi
}

# world_populate: tokens, keys, certificate and enrolment (output to the
# log). Stops at the first step that fails.
world_populate() {
    local t key=$WORLD/group-cert.key
    for t in personal group nym; do
        init_token "$t" || return 1
    done
    p11d group group-pin --keypairgen --key-type EC:prime256v1 --label shared-ec --id 01 &&
        p11d group group-pin --keypairgen --key-type RSA:2048 --label shared-rsa --id 02 &&
        p11d personal personal-pin --keypairgen --key-type RSA:2048 --label personal-rsa \
            --id 11 &&
        p11d nym nym-pin --keypairgen --key-type EC:prime256v1 --label nym-ec --id 21 ||
        return 1

    # A self-signed certificate made with OpenSSL, and its key, in group.
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=Strata group test" \
        -keyout "$key" -out "$WORLD/group-cert.pem" &&
        openssl x509 -in "$WORLD/group-cert.pem" -outform DER -out "$WORLD/group-cert.der" &&
        openssl pkey -in "$key" -outform DER -out "$key.der" &&
        p11d group group-pin --write-object "$WORLD/group-cert.der" --type cert \
            --label group-cert --id 03 &&
        p11d group group-pin --write-object "$key.der" --type privkey \
            --label group-cert --id 03 --usage-sign ||
        return 1
    rm -f "$key" "$key.der"

    "$STRATA_CLI" init &&
        printf '%s\n' "$WORK_PIN" personal-pin group-pin |
        "$STRATA_CLI" enroll --token Strata --view work --pin-stdin &&
        printf '%s\n' "$NYM_PIN" nym-pin |
        "$STRATA_CLI" enroll --token Strata --view pseudonym --pin-stdin
}
