# Shared helpers for the shell tests (sourced by tests/clients/lib.sh and
# tests/hosted/lib.sh, not run): TAP output, running foreign programs
# under sanitizer builds, pkcs11-tool on SoftHSM2 directly, and the base of
# an isolated world. Each suite's lib.sh adds its policy (write_policy),
# its tokens and keys (world_populate) and its world_setup.
#
# TAP: plan N, then ok/not_ok/check/check_fails/compare/contains/lacks;
# diag writes "# " lines; done_testing is the script's exit status.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so

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

# done_testing: the script's exit status, 0 when at least one test ran and
# none failed (TAP readers also count the lines).
done_testing() {
    [ "$tap_n" -gt 0 ] && [ "$tap_failed" -eq 0 ]
}

# ---- running foreign programs ------------------------------------------------

# foreign CMD...: runs a program that is not ours (pkcs11-tool, p11tool,
# p11-kit, certutil, openssl, python3, ssh-keygen) so that it can load the
# instrumented module under sanitizer builds: the sanitizer runtime is
# preloaded; EXTRA_PRELOAD, when set, is preloaded too (after the runtime).
# FOREIGN_ASAN_OPTIONS, when set, is appended to the runtime's ASAN_OPTIONS;
# FOREIGN_LIMIT, when set, bounds the program's time (seconds) with timeout.
foreign() {
    run_foreign "" "$@"
}

# exec_foreign CMD... &: foreign for a program started in the background:
# the background subshell becomes the program, so $! is the program's own
# PID and killing it stops the program, not just the shell waiting for it.
exec_foreign() {
    run_foreign exec "$@"
}

# run_foreign HOW CMD...: HOW is "" or "exec".
run_foreign() {
    local preload="${STRATA_PRELOAD:-}${EXTRA_PRELOAD:+ $EXTRA_PRELOAD}" run=()
    [ "$1" = exec ] && run=(exec)
    shift
    if [ -n "${FOREIGN_LIMIT:-}" ]; then
        # at most FOREIGN_LIMIT seconds; timeout itself runs without the
        # preloaded runtime (ASan's runtime in timeout can deadlock it)
        local vars=()
        [ -n "${STRATA_PRELOAD:-}" ] && vars=(LD_PRELOAD="$preload"
            ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0${FOREIGN_ASAN_OPTIONS:+:$FOREIGN_ASAN_OPTIONS})
        [ -z "${STRATA_PRELOAD:-}" ] && [ -n "$preload" ] && vars=(LD_PRELOAD="$preload")
        "${run[@]}" timeout "$FOREIGN_LIMIT" env "${vars[@]}" "$@"
    elif [ -n "${STRATA_PRELOAD:-}" ]; then
        LD_PRELOAD="$preload" ASAN_OPTIONS=detect_leaks=0:verify_asan_link_order=0${FOREIGN_ASAN_OPTIONS:+:$FOREIGN_ASAN_OPTIONS} \
            "${run[@]}" "$@"
    elif [ -n "$preload" ]; then
        LD_PRELOAD="$preload" "${run[@]}" "$@"
    else
        "${run[@]}" "$@"
    fi
}

# p11d TOKEN PIN ARGS...: pkcs11-tool on SoftHSM2 directly, logged in to TOKEN.
p11d() {
    local token=$1 pin=$2
    shift 2
    pkcs11-tool --module "$SOFTHSM_MODULE" --token-label "$token" --login --pin "$pin" "$@"
}

# ---- the world ------------------------------------------------------------------

# softhsm_conf FILE TOKENDIR: a SoftHSM2 configuration for TOKENDIR.
softhsm_conf() {
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$2" >"$1"
}

# world_create NAME [DIR...]: a fresh folder $WORLD (strata-NAME.XXXXXX in
# $TMPDIR), removed on exit by world_cleanup, with the folders tokens, home,
# config, data, run (mode 700) and DIR...; exports HOME, XDG_CONFIG_HOME,
# XDG_DATA_HOME, XDG_RUNTIME_DIR, SOFTHSM2_CONF and STRATA_CONF into it
# and writes the SoftHSM2 configuration. Returns non-zero on failure.
world_create() {
    local name=$1 d
    shift
    WORLD=$(mktemp -d "${TMPDIR:-/tmp}/strata-$name.XXXXXX") || return 1
    trap world_cleanup EXIT
    for d in tokens home config data run "$@"; do
        mkdir -p "$WORLD/$d" || return 1
    done
    chmod 700 "$WORLD/run"
    export HOME=$WORLD/home XDG_CONFIG_HOME=$WORLD/config XDG_DATA_HOME=$WORLD/data
    export XDG_RUNTIME_DIR=$WORLD/run
    export SOFTHSM2_CONF=$WORLD/softhsm2.conf STRATA_CONF=$WORLD/strata.xml
    softhsm_conf "$SOFTHSM2_CONF" "$WORLD/tokens"
}

# Cleanup hooks run before the folder goes (the tests add theirs, e.g. to
# stop a server); STRATA_KEEP_WORLD, when set, keeps the folder.
cleanup_hooks=()
world_cleanup() {
    local h
    for h in "${cleanup_hooks[@]}"; do
        $h
    done
    [ -n "${WORLD:-}" ] && [ -z "${STRATA_KEEP_WORLD:-}" ] && rm -rf "$WORLD"
}

# world_populate_logged: runs the suite's world_populate with its output in
# $WORLD/setup.log; when it fails, shows the log's tail as diagnostics and
# returns non-zero.
world_populate_logged() {
    if ! world_populate >"$WORLD/setup.log" 2>&1; then
        diag "world setup failed:"
        tail -n 40 "$WORLD/setup.log" | diag
        return 1
    fi
}
