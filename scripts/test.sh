#!/usr/bin/env bash
# The test command: installs what it needs, builds Strata, runs the whole
# suite, runs it again under AddressSanitizer + UndefinedBehaviorSanitizer,
# runs the fuzzers briefly and the concurrency stress test under
# ThreadSanitizer, compiles release builds with gcc and clang at -O2 and
# -O3, checks the formatting, and ends with one line "N passed, N failed".
# Every build here treats warnings as errors (-Dwerror=true); a user's or
# a distribution's build does not, so a newer compiler never breaks it.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    the plain build's suite only
set -uo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/deps.sh || exit 1

run_suite() { # build-dir meson-setup-args...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" -Dwerror=true "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" >"$dir.build.log" 2>&1 || { tail -50 "$dir.build.log"; return 1; }
  meson test -C "$dir" --print-errorlogs --num-processes 2 --timeout-multiplier 3 \
    >"$dir.test.log" 2>&1
  grep -E "^ *[0-9]+/[0-9]+ " "$dir.test.log" | sed 's/^/  /'
  return 0
}

# compile_only DIR CC OPT: a release build (NDEBUG) at -OOPT with the
# tests, warnings as errors; builds, runs nothing.
compile_only() {
  local dir=$1 cc=$2 opt=$3
  if [ ! -f "$dir/build.ninja" ]; then
    CC=$cc meson setup "$dir" -Dwerror=true -Dbuildtype=release -Doptimization="$opt" \
      >"$dir.setup.log" 2>&1 || { tail -20 "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" >"$dir.build.log" 2>&1 || { grep -E "error|warning" "$dir.build.log" | head -20; return 1; }
}

results=()
logs=()

echo "== build and test (build/)"
if run_suite build; then logs+=(build/meson-logs/testlog.json); else results+=("build=fail"); fi

if [ $quick -eq 0 ]; then
  echo "== build and test under ASan+UBSan (build-asan/)"
  if run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug; then
    logs+=(build-asan/meson-logs/testlog.json)
  else
    results+=("build-asan=fail")
  fi

  echo "== fuzzers (60 s each, clang + libFuzzer)"
  bash tests/fuzz/run-ci.sh >fuzz.test.log 2>&1
  grep -E "^(ok|not ok|1\.\.)" fuzz.test.log | sed 's/^/  /'
  if grep -q "^not ok" fuzz.test.log || ! grep -q "^ok" fuzz.test.log; then
    tail -30 fuzz.test.log
    results+=("fuzz=fail")
  else
    for t in $(grep -oE "^ok [0-9]+ - [a-z_]+" fuzz.test.log | awk '{print $4}'); do
      results+=("$t=pass")
    done
  fi

  echo "== concurrency stress under ThreadSanitizer (clang)"
  STRESS_ITERATIONS=${STRESS_ITERATIONS:-300} bash tests/integration/run-tsan.sh >tsan.test.log 2>&1
  grep -E "^(ok|not ok|1\.\.)" tsan.test.log | sed 's/^/  /'
  if grep -q "^not ok" tsan.test.log || ! grep -q "^ok" tsan.test.log; then
    tail -30 tsan.test.log
    results+=("stress_tsan=fail")
  else
    results+=("stress_tsan=pass")
  fi

  echo "== release builds, compile only (gcc, clang; -O2, -O3)"
  for cc in gcc clang; do
    for opt in 2 3; do
      name=compile_${cc}_O$opt dir=build-$cc-O$opt
      if compile_only "$dir" "$cc" "$opt"; then results+=("$name=pass"); else results+=("$name=fail"); fi
    done
  done

  echo "== clang-format"
  files=$(git ls-files '*.c' '*.h' 2>/dev/null)
  if [ -n "$files" ] && ! clang-format --dry-run --Werror --style=file:.clang-format $files 2>/tmp/strata-format.log; then
    head -20 /tmp/strata-format.log
    results+=("clang-format=fail")
  else
    results+=("clang-format=pass")
  fi
fi

echo "== summary"
python3 scripts/summarize.py "${logs[@]}" "${results[@]}"
