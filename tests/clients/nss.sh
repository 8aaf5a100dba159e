#!/usr/bin/env bash
# NSS through Strata: the module added with modutil to a fresh NSS database,
# certutil -L/-K listing certificates and keys of the work view (compared
# with the same NSS commands on the SoftHSM2 tokens directly), the
# certificates listed before login (the README's policy as written: the
# first view is public), a CMS signature made by cmsutil with the group's
# certificate, and a certificate imported through NSS landing in the
# personal layer. TAP.
set -u
. "$(dirname "$0")/lib.sh"

plan 21
world_setup || exit 1
W=$WORLD

# new_db NAME MODULE_NAME LIBRARY [ARGS...]: a fresh NSS database with
# LIBRARY added (modutil -add ... ARGS).
new_db() {
    local name=$1 module=$2 lib=$3
    shift 3
    mkdir -p "$W/$name" &&
        certutil -N -d "sql:$W/$name" --empty-password &&
        foreign modutil -dbdir "sql:$W/$name" -add "$module" -libfile "$lib" "$@" -force
}

# nss DB ARGS...: certutil on a database (loading its modules).
nss() {
    local db=$1
    shift
    foreign certutil -d "sql:$W/$db" "$@"
}

# keys: sorted "type id label" of a certutil -K listing.
keys() { sed -n 's/^< *[0-9]*> *//p' | awk '{ $1 = $1; print }' | sort; }

# certs: sorted nicknames (token prefix removed) of a certutil -L listing.
certs() {
    grep -E '[[:space:]][a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*[[:space:]]*$' |
        sed -E 's/[[:space:]]+[a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*[[:space:]]*$//; s/^[^:]*://' | sort
}

echo "$WORK_PIN" >"$W/pw.strata"
for t in personal group; do
    echo "$t-pin" >"$W/pw.$t"
done

check "modutil -add puts Strata into a fresh NSS database" new_db db strata "$STRATA_MODULE"
check "modutil -list shows the module" foreign modutil -dbdir "sql:$W/db" -list strata
contains "the module's slot holds the token Strata" '^[[:space:]]*Token Name: Strata[[:space:]]*$' "$out"

# The same NSS commands on SoftHSM2 directly, on a copy holding only the
# work view's tokens.
conf=$(softhsm_subset work personal group)
SOFTHSM2_CONF=$conf new_db direct softhsm "$SOFTHSM_MODULE" >/dev/null 2>&1
direct() { SOFTHSM2_CONF=$conf nss direct "$@"; }

want=$(for t in personal group; do direct -L -h "$t" -f "$W/pw.$t"; done | certs)
check "certutil -L -h Strata" nss db -L -h Strata -f "$W/pw.strata"
compare "certutil -L lists the certificates of personal and group" "$want" "$(certs <<<"$out")"
contains "certutil -L lists the group certificate" '^Strata:group-cert ' "$out"

want=$(for t in personal group; do direct -K -h "$t" -f "$W/pw.$t"; done | keys)
check "certutil -K -h Strata" nss db -K -h Strata -f "$W/pw.strata"
compare "certutil -K lists the keys of personal and group" "$want" "$(keys <<<"$out")"

# Before login: in databases where the module is added as FRIENDLY (NSS
# then reads certificates without logging in, as for smart cards), the
# token lists the public view's certificates with no PIN at all, as
# SoftHSM2 does directly.
SOFTHSM2_CONF=$conf new_db direct-friendly softhsm "$SOFTHSM_MODULE" -mechanisms FRIENDLY \
    >/dev/null 2>&1
want=$(for t in personal group; do
    SOFTHSM2_CONF=$conf nss direct-friendly -L -h "$t" </dev/null; done | certs)
check "modutil -add -mechanisms FRIENDLY puts Strata into a fresh NSS database" \
    new_db friendly strata "$STRATA_MODULE" -mechanisms FRIENDLY
check "certutil -L -h Strata without a PIN" nss friendly -L -h Strata </dev/null
compare "before login: the certificates of personal and group, as on SoftHSM2 directly" \
    "$want" "$(certs <<<"$out")"
contains "before login: the group certificate" '^Strata:group-cert ' "$out"

# A CMS signature with the group's certificate and key (cmsutil finds the
# certificate by nickname, then signs): the same bytes as cmsutil makes on
# SoftHSM2 directly (RSA PKCS#1 v1.5, no signing time), and OpenSSL
# verifies it. The certificate is trusted in each database's own store.
printf 'signed by NSS through Strata\n' >"$W/msg"
for db in db direct; do
    certutil -A -d "sql:$W/$db" -n group-trust -t "P,P,P" -i "$WORLD/group-cert.pem"
done
echo group-pin >"$W/pw.group-only"
SOFTHSM2_CONF=$conf foreign cmsutil -S -N group:group-cert -Y NONE -d "sql:$W/direct" \
    -f "$W/pw.group-only" -i "$W/msg" -o "$W/msg.direct.p7s" >/dev/null 2>&1
check "cmsutil -S -N Strata:group-cert signs through Strata" \
    foreign cmsutil -S -N Strata:group-cert -Y NONE -d "sql:$W/db" -f "$W/pw.strata" \
    -i "$W/msg" -o "$W/msg.p7s"
if [ -s "$W/msg.direct.p7s" ] && cmp -s "$W/msg.p7s" "$W/msg.direct.p7s"; then
    ok "the CMS signature equals cmsutil's on SoftHSM2 directly"
else
    not_ok "the CMS signature equals cmsutil's on SoftHSM2 directly"
fi
check "OpenSSL verifies the CMS signature with the group certificate" \
    openssl cms -verify -inform DER -in "$W/msg.p7s" -CAfile "$WORLD/group-cert.pem" \
    -purpose any -out "$W/msg.out"
compare "the signed content comes back" "$(cat "$W/msg")" "$(cat "$W/msg.out")"

# A certificate imported through NSS goes to the personal layer.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=Imported through NSS" -keyout "$W/imp.key" -out "$W/imp.pem" >/dev/null 2>&1
check "certutil -A imports a certificate into Strata" \
    nss db -A -h Strata -f "$W/pw.strata" -n imported -t ",," -i "$W/imp.pem"
check "certutil -L lists the imported certificate" nss db -L -h Strata -f "$W/pw.strata"
contains "the listing holds Strata:imported" '^Strata:imported ' "$out"
contains "the certificate is in personal (SoftHSM2 directly)" '^Certificate Object.* (Strata:)?imported$' \
    "$(p11d personal personal-pin -O --type cert | objects_of)"
lacks "the certificate is not in group (SoftHSM2 directly)" 'imported$' \
    "$(p11d group group-pin -O --type cert | objects_of)"

done_testing
