#!/usr/bin/env bash
# OpenSSH: ssh-keygen -D lists the public keys a PKCS#11 module shows
# without login. Through Strata that is the public objects of the view the
# policy marks public (none by default); compared with ssh-keygen -D on
# SoftHSM2 directly over exactly that view's tokens. TAP on stdout.
set -u
. "$(dirname "$0")/lib.sh"

plan 8
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

# The policy as set up marks no view public: nothing shows before login.
check_fails "no public view: ssh-keygen -D through Strata lists no key" \
    foreign ssh-keygen -D "$STRATA_MODULE"
lacks "no key line is printed" '^(ssh-|ecdsa-)' "$out"

want=$(direct_keys personal group)
write_policy work
check "work view public: ssh-keygen -D through Strata" foreign ssh-keygen -D "$STRATA_MODULE"
compare "the keys are those of personal and group on SoftHSM2 directly" "$want" "$(keys <<<"$out")"
contains "the group's EC key is listed" '^ecdsa-sha2-nistp256 ' "$out"
work=$(keys <<<"$out")

want=$(direct_keys nym)
write_policy pseudonym
check "pseudonym view public: ssh-keygen -D through Strata" foreign ssh-keygen -D "$STRATA_MODULE"
compare "the keys are those of nym on SoftHSM2 directly" "$want" "$(keys <<<"$out")"
compare "none of the work view's keys is listed" "" \
    "$(comm -12 <(awk '{ print $2 }' <<<"$work" | sort) <(keys <<<"$out" | awk '{ print $2 }' | sort))"

done_testing
