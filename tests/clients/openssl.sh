#!/usr/bin/env bash
# OpenSSL 3 with libengine-pkcs11-openssl (engine "pkcs11") through Strata:
# export public keys by pkcs11: URI before login (the README's policy as
# written: the first view is public), sign with pkcs11: URIs of a group EC
# key and a personal RSA key, verify with the public keys exported from
# SoftHSM2 directly, and compare with the same engine on SoftHSM2
# directly. TAP on stdout.
set -u
. "$(dirname "$0")/lib.sh"

plan 14
world_setup || exit 1
W=$WORLD
engine_so=$(find /usr/lib/*/engines-3 -name pkcs11.so 2>/dev/null | head -n 1)

# ossl_conf FILE MODULE: a private OpenSSL configuration loading the pkcs11
# engine on MODULE.
ossl_conf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine_so
MODULE_PATH = $2
init = 0
EOF
}
ossl_conf "$W/strata.cnf" "$STRATA_MODULE"
ossl_conf "$W/direct.cnf" "$SOFTHSM_MODULE"

# sign CONF URI OUT: openssl dgst -sha256 signature of $W/msg with the key URI.
sign() {
    OPENSSL_CONF=$1 foreign openssl dgst -sha256 -engine pkcs11 -keyform engine \
        -sign "$2" -out "$3" "$W/msg"
}

# pubkey TOKEN ID OUT: the public key exported from SoftHSM2 directly, PEM.
pubkey() {
    p11d "$1" "$1-pin" --read-object --type pubkey --id "$2" -o "$3.der" >/dev/null 2>&1 &&
        openssl pkey -pubin -inform DER -in "$3.der" -out "$3"
}

printf 'signed by OpenSSL through Strata\n' >"$W/msg"
pubkey group 01 "$W/shared-ec.pem"
pubkey personal 11 "$W/personal-rsa.pem"

# uri_pubkey CONF URI OUT: the public key the engine loads from URI (no
# PIN: nothing logs in), PEM.
uri_pubkey() {
    OPENSSL_CONF=$1 foreign openssl pkey -engine pkcs11 -inform engine -pubin -in "$2" \
        -pubout -out "$3"
}

for key in shared-ec:group personal-rsa:personal; do
    name=${key%%:*} token=${key#*:}
    uri_pubkey "$W/direct.cnf" "pkcs11:token=$token;object=$name;type=public" \
        "$W/$name.direct.pub" >/dev/null 2>&1
    check "export $name's public key by pkcs11: URI without login" \
        uri_pubkey "$W/strata.cnf" "pkcs11:token=Strata;object=$name;type=public" "$W/$name.pub"
    compare "$name's public key equals the one the engine exports from SoftHSM2 directly" \
        "$(cat "$W/$name.direct.pub" 2>/dev/null)" "$(cat "$W/$name.pub" 2>/dev/null)"
done
check_fails "the pseudonym's key is not found by URI before login" \
    uri_pubkey "$W/strata.cnf" "pkcs11:token=Strata;object=nym-ec;type=public" "$W/nym-ec.pub"

check "sign with pkcs11:token=Strata;object=shared-ec (ECDSA)" \
    sign "$W/strata.cnf" "pkcs11:token=Strata;object=shared-ec;type=private?pin-value=$WORK_PIN" \
    "$W/ec.sig"
check "the ECDSA signature verifies with shared-ec's public key from SoftHSM2" \
    openssl dgst -sha256 -verify "$W/shared-ec.pem" -signature "$W/ec.sig" "$W/msg"

check "sign with pkcs11:token=Strata;object=personal-rsa (RSA)" \
    sign "$W/strata.cnf" "pkcs11:token=Strata;object=personal-rsa;type=private?pin-value=$WORK_PIN" \
    "$W/rsa.sig"
check "the RSA signature verifies with personal-rsa's public key from SoftHSM2" \
    openssl dgst -sha256 -verify "$W/personal-rsa.pem" -signature "$W/rsa.sig" "$W/msg"
check "the same engine signs on SoftHSM2 directly (personal)" \
    sign "$W/direct.cnf" "pkcs11:token=personal;object=personal-rsa;type=private?pin-value=personal-pin" \
    "$W/rsa.direct.sig"
if cmp -s "$W/rsa.sig" "$W/rsa.direct.sig"; then
    ok "the RSA signature through Strata equals the one made directly"
else
    not_ok "the RSA signature through Strata equals the one made directly"
fi

check_fails "a wrong PIN in the URI fails" \
    sign "$W/strata.cnf" "pkcs11:token=Strata;object=shared-ec;type=private?pin-value=9999" \
    "$W/bad.sig"
check_fails "the pseudonym PIN does not reach the work view's key" \
    sign "$W/strata.cnf" "pkcs11:token=Strata;object=shared-ec;type=private?pin-value=$NYM_PIN" \
    "$W/nym.sig"
check "the pseudonym PIN signs with the pseudonym's key nym-ec" \
    sign "$W/strata.cnf" "pkcs11:token=Strata;object=nym-ec;type=private?pin-value=$NYM_PIN" \
    "$W/nym.sig"

done_testing
