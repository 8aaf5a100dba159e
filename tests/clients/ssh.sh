#!/usr/bin/env bash
# OpenSSH: ssh-keygen -D lists the public keys a PKCS#11 module shows
# without login. Through Strata that is the public objects of the token's
# public view: with the README's policy as written, its first view (work);
# compared with ssh-keygen -D on SoftHSM2 directly over exactly that
# view's tokens. Then public-view="pseudonym" and public-view="none".
# TAP on stdout.
set -u
. "$(dirname "$0")/lib.sh"

plan 9
world_setup || exit 1

# keys: the sorted key lines of an ssh-keygen -D listing.
keys() { grep -E '^(ssh-|ecdsa-)' | sort; }

# direct_keys LABEL...: ssh-keygen -D on SoftHSM2 directly, over a copy
# holding only the named tokens.
direct_keys() {
    local conf
    conf=$(softhsm_subset "$(echo "$@" | tr ' ' -)" "$@") || return 1
    SOFTHSM2_CONF=$conf ssh-keygen -D "$SOFTHSM_MODULE" 2>/dev/null | keys
}

want=$(direct_keys personal group)
check "the policy as written: ssh-keygen -D through Strata" foreign ssh-keygen -D "$STRATA_MODULE"
compare "the keys are those of personal and group (work, the first view) on SoftHSM2 directly" \
    "$want" "$(keys <<<"$out")"
contains "the group's EC key is listed" '^ecdsa-sha2-nistp256 ' "$out"
work=$(keys <<<"$out")

want=$(direct_keys nym)
write_policy pseudonym
check "public-view=\"pseudonym\": ssh-keygen -D through Strata" foreign ssh-keygen -D "$STRATA_MODULE"
compare "the keys are those of nym on SoftHSM2 directly" "$want" "$(keys <<<"$out")"
compare "none of the work view's keys is listed" "" \
    "$(comm -12 <(awk '{ print $2 }' <<<"$work" | sort) <(keys <<<"$out" | awk '{ print $2 }' | sort))"

write_policy none
check_fails "public-view=\"none\": ssh-keygen -D through Strata lists no key" \
    foreign ssh-keygen -D "$STRATA_MODULE"
lacks "no key line is printed" '^(ssh-|ecdsa-)' "$out"
write_policy
check "the policy as written again: ssh-keygen -D lists work's keys" \
    foreign ssh-keygen -D "$STRATA_MODULE"

done_testing
