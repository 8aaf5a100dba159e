#!/usr/bin/env bash
# Many clients of one `p11-kit server` at once: CLIENTS (default 32)
# processes through p11-kit-client.so, half with the work PIN and half
# with the anon PIN, each finding the token Strata, logging in, listing
# its view's keys and signing (view.py). p11-kit server runs one process
# per client, each initialising Strata and its SoftHSM2 backend; without
# the backend guard (layers/guard.c) some of them met the backend's state
# file half rewritten by another's login and lost layers or the token.
# TAP output.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

CLIENT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so
PY=/usr/bin/python3
CLIENTS=${CLIENTS:-32}

# The hosted world's policy with as many failed logins allowed as there
# are Argon2id turns (one per processor, at least 2) and a 4 MiB Argon2id:
# right PINs logging in together must never lock one another out with
# their pending guesses (engine/login.c holds a turn across the guess and
# the evaluation).
limit=$(nproc)
[ "$limit" -lt 2 ] && limit=2
eval "$(declare -f write_policy | sed '1s/^write_policy/write_policy_hosted/')"
write_policy() {
    write_policy_hosted
    sed -i -e "s|<token label=\"Strata\">|<token label=\"Strata\" max-failed-logins=\"$limit\">|" \
        -e 's|<kdf ops="1" mem="8192"/>|<kdf ops="1" mem="4194304"/>|' "$STRATA_CONF"
}

plan 4
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi
if serve_strata "$WORLD/run/strata.sock"; then ok "the server serves Strata"; else
    not_ok "the server serves Strata"
    exit 1
fi

mkdir -p "$WORLD/clients"
pids=()
for i in $(seq "$CLIENTS"); do
    if [ $((i % 2)) -eq 0 ]; then pin=$WORK_PIN key=work-ec; else pin=$ANON_PIN key=anon-ec; fi
    foreign "$PY" "$here/view.py" "$CLIENT" "$pin" "$key" >"$WORLD/clients/$i.out" 2>&1 &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=$((failed + 1))
done

signed=0 wrong=0
for i in $(seq "$CLIENTS"); do
    out=$(cat "$WORLD/clients/$i.out")
    if [ $((i % 2)) -eq 0 ]; then want="labels: group-ec work-ec" key=work-ec; else
        want="labels: anon-ec" key=anon-ec
    fi
    printf '%s\n' "$out" | grep -q "^signed: $key ok$" && signed=$((signed + 1))
    if ! printf '%s\n' "$out" | grep -qx "$want"; then
        wrong=$((wrong + 1))
        [ $wrong -le 3 ] && diag "client $i:" "$out"
    fi
done
compare "every client exits 0" "0 of $CLIENTS failed" "$failed of $CLIENTS failed"
compare "every client signs with its view's key" "$CLIENTS" "$signed"
compare "every client sees exactly its view's keys" "0 of $CLIENTS wrong" "$wrong of $CLIENTS wrong"
done_testing
