#!/usr/bin/env bash
# GnuTLS p11tool through Strata, compared with p11tool on the SoftHSM2
# tokens directly: token list, objects after login, objects and
# certificates before login (the README's policy as written: the first
# view is public), --export of the group certificate without login, key
# generation routed to the personal layer, --test-sign. TAP on stdout.
set -u
. "$(dirname "$0")/lib.sh"

plan 19
world_setup || exit 1

# p11t ARGS...: p11tool on Strata with the work PIN; p11t_direct TOKEN
# ARGS...: p11tool on SoftHSM2 directly with TOKEN's PIN.
p11t() { GNUTLS_PIN=$WORK_PIN foreign p11tool --provider "$STRATA_MODULE" "$@"; }
p11t_direct() {
    local pin=$1-pin
    shift
    GNUTLS_PIN=$pin p11tool --provider "$SOFTHSM_MODULE" "$@"
}

# objects: sorted "Type | Label" pairs of a p11tool --list-all listing.
objects() {
    awk '/^[[:space:]]*Type:/ { t = $0; sub(/^[[:space:]]*Type:[[:space:]]*/, "", t) }
         /^[[:space:]]*Label:/ { l = $0; sub(/^[[:space:]]*Label:[[:space:]]*/, "", l)
                                 print t " | " l }' | sort
}

check "p11tool --list-tokens through Strata" p11t --list-tokens
contains "the token list shows Strata" '^[[:space:]]*Label: Strata$' "$out"
lacks "the token list shows no backend token" 'Label: (personal|group|nym)$' "$out"

want=$( (p11t_direct personal --login --list-all "pkcs11:token=personal"
    p11t_direct group --login --list-all "pkcs11:token=group") | objects)
check "--list-all --login through Strata" p11t --login --list-all "pkcs11:token=Strata"
compare "--list-all shows personal's and group's objects" "$want" "$(objects <<<"$out")"
contains "--list-all shows the group certificate" '^X\.509 Certificate .* \| group-cert$' \
    "$(objects <<<"$out")"

# The policy as written: before login the token shows its first view's
# (work's) public objects, as SoftHSM2 shows personal's and group's.
want=$( (p11t_direct personal --list-all "pkcs11:token=personal"
    p11t_direct group --list-all "pkcs11:token=group") | objects)
check "--list-all without login through Strata" p11t --list-all "pkcs11:token=Strata"
compare "without login: personal's and group's public objects, as on SoftHSM2 directly" \
    "$want" "$(objects <<<"$out")"

# p11t_nopin ARGS...: p11tool on Strata with no PIN anywhere.
p11t_nopin() { foreign env -u GNUTLS_PIN p11tool --provider "$STRATA_MODULE" "$@"; }

want=$( (p11t_direct personal --list-all-certs "pkcs11:token=personal"
    p11t_direct group --list-all-certs "pkcs11:token=group") 2>/dev/null | objects)
check "--list-all-certs without login through Strata" \
    p11t_nopin --list-all-certs "pkcs11:token=Strata"
compare "--list-all-certs: the certificates of personal and group, as on SoftHSM2 directly" \
    "$want" "$(objects <<<"$out")"
contains "--list-all-certs shows the group certificate" '\| group-cert$' "$(objects <<<"$out")"
check "--export of the group certificate without login through Strata" \
    p11t_nopin --export "pkcs11:token=Strata;object=group-cert;type=cert"
compare "the exported certificate is the one written into group" \
    "$(openssl x509 -in "$WORLD/group-cert.pem")" "$(openssl x509 <<<"$out" 2>&1)"

check "--generate-privkey ecdsa --label x --login through Strata" \
    p11t --login --generate-privkey ecdsa --label x --outfile "$WORLD/x.pub" \
    "pkcs11:token=Strata"
contains "the new key is in personal (SoftHSM2 directly)" '^Private key .* \| x$' \
    "$(p11t_direct personal --login --list-all "pkcs11:token=personal" | objects)"
lacks "the new key is not in group (SoftHSM2 directly)" '\| x$' \
    "$(p11t_direct group --login --list-all "pkcs11:token=group" | objects)"

for key in shared-ec personal-rsa x; do
    case $key in
    personal-rsa | x) token=personal ;;
    *) token=group ;;
    esac
    want=$(p11t_direct $token --login --test-sign "pkcs11:token=$token;object=$key;type=private" 2>&1)
    p11t --login --test-sign "pkcs11:token=Strata;object=$key;type=private" >"$WORLD/ts" 2>&1
    compare "--test-sign with $key: the same steps as on SoftHSM2 directly" \
        "$want" "$(cat "$WORLD/ts")"
done

done_testing
