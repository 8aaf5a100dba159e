#!/bin/sh
# run-tsan.sh - the concurrency stress test (test_stress.c) under
# ThreadSanitizer: a clang -Db_sanitize=thread build of the module, the
# CLI and tests/integration/stress_tsan.c, run once, printing TAP. TSan
# reports inside libsofthsm2 (not instrumented, its own locking invisible)
# are suppressed by tests/tsan.supp; Strata's code never is.
#
#   tests/integration/run-tsan.sh           # from anywhere
#
# Environment: TSAN_BUILD_DIR (default build-tsan, relative to the
# repository), STRESS_ITERATIONS (default 150).
# Exit status 0 when the run was clean; without clang it prints
# "1..0 # SKIP no clang" and exits 0.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
build=${TSAN_BUILD_DIR:-build-tsan}
case $build in
/*) ;;
*) build=$top/$build ;;
esac

if ! command -v clang >/dev/null 2>&1; then
    echo "1..0 # SKIP no clang"
    exit 0
fi

fail() {
    echo "1..1"
    echo "not ok 1 - stress_tsan: $1"
    [ -f "$2" ] && tail -n 40 "$2" | sed 's/^/# /'
    exit 1
}

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" -Db_sanitize=thread -Db_lundef=false -Dwerror=true \
        -Dbench=false >"$build.setup.log" 2>&1 || fail "meson setup failed" "$build.setup.log"
fi
ninja -C "$build" engine/strata-pkcs11.so cli/strata tests/integration/stress_tsan \
    >"$build.build.log" 2>&1 || fail "build failed" "$build.build.log"

log=$build.run.log
# The environment meson would give the test (tests/integration/meson.build).
STRATA_MODULE=$build/engine/strata-pkcs11.so STRATA_CLI=$build/cli/strata \
    STRATA_CONF=/nonexistent/strata.xml SOFTHSM2_CONF=/nonexistent/softhsm2.conf \
    TSAN_OPTIONS="suppressions=$top/tests/tsan.supp:halt_on_error=1:exitcode=66" \
    "$build/tests/integration/stress_tsan" >"$log" 2>&1
rc=$?
grep -E "^(1\.\.|ok |not ok )" "$log"
if [ $rc -ne 0 ]; then
    grep -q "^not ok" "$log" || echo "not ok 1 - stress_tsan: exit status $rc"
    grep -E "WARNING: ThreadSanitizer|^# FAILED|SUMMARY" "$log" | head -n 20 | sed 's/^/# /'
    exit 1
fi
exit 0
