#!/usr/bin/env bash
# The example policies of docs/examples: each is checked clean by
# `strata check` (exit 0, no error and no warning), as the documentation
# promises. TAP output.
#
#   test_examples.sh EXAMPLES_DIR
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
: "${STRATA_CLI:?STRATA_CLI must name the built strata command}"
dir=$1
files=("$dir"/*.xml)
echo "1..$((${#files[@]} + 1))"
n=1
if [ ${#files[@]} -ge 5 ]; then echo "ok $n - ${#files[@]} example policies"; else
    echo "not ok $n - ${#files[@]} example policies, expected at least 5"
fi
failed=0
for f in "${files[@]}"; do
    n=$((n + 1))
    out=$(STRATA_CONF=/nonexistent "$STRATA_CLI" check "$f" 2>&1 >/dev/null)
    rc=$?
    if [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -qiE 'error|warning'; then
        echo "ok $n - strata check $(basename "$f")"
    else
        failed=$((failed + 1))
        echo "not ok $n - strata check $(basename "$f") (exit $rc)"
        printf '%s\n' "$out" | sed 's/^/# /'
    fi
done
[ $failed -eq 0 ]
