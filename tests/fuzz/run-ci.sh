#!/bin/sh
# run-ci.sh - the bounded fuzz step for CI: builds the libFuzzer targets
# (clang, ASan+UBSan) and runs each over its seed corpus for a fixed time,
# printing TAP. See README.
#
#   tests/fuzz/run-ci.sh            # from anywhere; 60 s per target
#
# Environment:
#   FUZZ_SECONDS     time per target (default 60)
#   FUZZ_BUILD_DIR   build folder, relative to the repository (default
#                    build-fuzz-ci); configured when it has no build.ninja
#   FUZZ_ARTIFACTS   folder that receives a crashing input (default: a
#                    temporary folder, named in the output)
#
# Exit status: 0 when every target ran clean, 1 when one crashed (or the
# targets could not be built). Without clang it prints "1..0 # SKIP no
# clang" and exits 0; clang without libFuzzer is a failure, not a skip.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build-fuzz-ci}
targets="fuzz_rules fuzz_policy fuzz_api"
n_targets=3

case $build in
/*) ;;
*) build=$top/$build ;;
esac

if ! command -v clang >/dev/null 2>&1; then
    echo "1..0 # SKIP no clang"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz.XXXXXX") || exit 1
artifacts=${FUZZ_ARTIFACTS:-$work/artifacts}
mkdir -p "$artifacts" || exit 1
# The scratch corpora always go; the logs and any crash stay when a
# target failed (their folder is printed).
trap 'rm -rf "$work/scratch" "$work/probe"' EXIT

# Every target fails with the same reason; keeps the plan honest.
fail_all() {
    echo "1..$n_targets"
    i=0
    for t in $targets; do
        i=$((i + 1))
        echo "not ok $i - $t: $1"
    done
    sed 's/^/# /' "$2" | tail -n 40
    exit 1
}

# clang is here; libFuzzer must be too (Debian: libclang-rt-dev).
mkdir -p "$work/probe"
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
    >"$work/probe/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined -o "$work/probe/probe" "$work/probe/probe.c" \
    >"$work/probe.log" 2>&1; then
    fail_all "clang cannot link libFuzzer (install libclang-rt-dev)" "$work/probe.log"
fi

if [ ! -f "$build/build.ninja" ]; then
    if ! (cd "$top" && CC=clang meson setup "$build" -Dfuzz=true -Dwerror=true \
        -Db_sanitize=address,undefined -Db_lundef=false) >"$work/setup.log" 2>&1; then
        fail_all "meson setup failed" "$work/setup.log"
    fi
fi
if ! ninja -C "$build" tests/fuzz/fuzz_rules tests/fuzz/fuzz_policy tests/fuzz/fuzz_api cli/strata >"$work/build.log" 2>&1; then
    fail_all "build failed" "$work/build.log"
fi

echo "1..$n_targets"
failed=0
i=0
for t in $targets; do
    i=$((i + 1))
    corpus=$top/tests/fuzz/corpus/${t#fuzz_}
    case $t in
    fuzz_policy) max_len=8192 ;;
    *) max_len=4096 ;;
    esac
    # New inputs go to a scratch folder so the seeds in the tree stay as
    # they are; a crash lands in $artifacts. The seed is fixed (FUZZ_SEED,
    # default 1) so a CI run explores the same inputs in the same order and
    # its verdict is reproducible; exploratory runs (README) use random ones.
    mkdir -p "$work/scratch/$t"
    log=$work/$t.log
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/tests/fuzz/$t" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -max_len="$max_len" -timeout=25 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$t-" \
        "$work/scratch/$t" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "ok $i - $t ${seconds}s clean"
        echo "# $t: ${runs:-?} inputs in ${seconds}s"
    else
        failed=1
        echo "not ok $i - $t crashed (exit $rc)"
        sed 's/^/# /' "$log" | grep -v -e '^# #[0-9]' | tail -n 60
        echo "# reproducer: $(find "$artifacts" -name "$t-*" | head -n 1)"
        echo "# rerun: $build/tests/fuzz/$t <reproducer>"
    fi
done
if [ "$failed" -eq 0 ] && [ -z "${FUZZ_ARTIFACTS:-}" ]; then
    rm -rf "$work"
else
    echo "# logs: $work"
fi
exit $failed
