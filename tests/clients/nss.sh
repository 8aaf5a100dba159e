#!/usr/bin/env bash
# NSS through Strata: the module added with modutil to a fresh NSS database,
# certutil -L/-K listing certificates and keys of the work view (compared
# with the same NSS commands on the SoftHSM2 tokens directly), and a
# certificate imported through NSS landing in the personal layer. TAP.
set -u
. "$(dirname "$0")/lib.sh"

plan 13
world_setup || exit 1
W=$WORLD

# new_db NAME MODULE_NAME LIBRARY: a fresh NSS database with LIBRARY added.
new_db() {
    mkdir -p "$W/$1" &&
        certutil -N -d "sql:$W/$1" --empty-password &&
        foreign modutil -dbdir "sql:$W/$1" -add "$2" -libfile "$3" -force
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
