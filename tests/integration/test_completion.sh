#!/usr/bin/env bash
# bash completion for strata (cli/strata.bash-completion): sourced into
# this shell, asked for completions as bash would ask (COMP_WORDS,
# COMP_CWORD, then the _strata function), answers compared. TAP output.
#
#   test_completion.sh COMPLETION_FILE EXAMPLES_DIR
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
: "${STRATA_CLI:?STRATA_CLI must name the built strata command}"
. "$1"
examples=$2
n=0 failed=0

# expect DESC EXPECTED WORD...: completes the last WORD of "strata WORD...".
expect() {
    local desc=$1 want=$2
    shift 2
    COMP_WORDS=("$STRATA_CLI" "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    _strata
    n=$((n + 1))
    if [ "${COMPREPLY[*]}" = "$want" ]; then echo "ok $n - $desc"; else
        failed=$((failed + 1))
        echo "not ok $n - $desc"
        echo "# expected: $want"
        echo "# got:      ${COMPREPLY[*]}"
    fi
}

echo "1..11"
complete -p strata >/dev/null 2>&1 && { n=1; echo "ok 1 - complete -F _strata strata is registered"; } ||
    { n=1; failed=1; echo "not ok 1 - complete -F _strata strata is registered"; }
export STRATA_CONF=$examples/pseudonym.xml
expect "commands" "enroll explain" e
expect "a command's options" "--token" ls --t
expect "global options" "--policy" --po
expect "token labels from the policy" "Strata" enroll --token ""
expect "the token's views" "work pseudonym" enroll --token Strata --view ""
expect "--policy on the command line wins" "Team" --policy "$examples/group-store.xml" ls --token ""
expect "views of the token named earlier" "member" --policy "$examples/group-store.xml" ls --token Team --view m
expect "tokens takes --json" "--json" tokens --j
expect "tokens takes --remove" "--remove" tokens --r
expect "check completes file names" "$examples/migration.xml" check "$examples/mig"
[ $failed -eq 0 ]
