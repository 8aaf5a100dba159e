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
# TAP, foreign, p11d and the world's base are tests/common/lib.sh's.

. "$(dirname "${BASH_SOURCE[0]}")/../common/lib.sh"

WORK_PIN=1111
NYM_PIN=2222

# ---- pkcs11-tool ----------------------------------------------------------------

# p11s ARGS...: pkcs11-tool through Strata, on the virtual token.
p11s() { foreign pkcs11-tool --module "$STRATA_MODULE" --token-label Strata "$@"; }

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
# becomes the token's public-view ("none", "work" or "pseudonym"). Without
# it the policy is the README's, as written: the first view (work) shows
# its public objects before login.
write_policy() {
    local pub=""
    [ -n "${1:-}" ] && pub=" public-view=\"$1\""
    cat >"$STRATA_CONF" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<strata version="1">
  <catalog path="catalog.db"/>
  <module id="soft" path="$SOFTHSM_MODULE"/>
  <layer id="personal" module="soft" token="personal"/>
  <layer id="group" module="soft" token="group" access="read-only"/>
  <layer id="nym" module="soft" token="nym"/>
  <token label="Strata"$pub>
    <kdf ops="1" mem="8192"/>
    <view id="work" layers="personal group" whiteout="allow"/>
    <view id="pseudonym" layers="nym"/>
  </token>
</strata>
EOF
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
    world_create clients cache tmp || return 1
    export XDG_CACHE_HOME=$WORLD/cache TMPDIR=$WORLD/tmp
    # Never let p11-kit or GnuTLS reach the machine's own modules or a
    # running p11-kit server.
    unset P11_KIT_SERVER_ADDRESS GNUTLS_PIN GNUTLS_SO_PIN PKCS11_MODULE_PATH OPENSSL_CONF \
        STRATA_LOG SSH_AUTH_SOCK
    write_policy "${1:-}"
    world_populate_logged
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
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -addext extendedKeyUsage=emailProtection,clientAuth \
        -addext subjectAltName=email:group@example.org \
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
