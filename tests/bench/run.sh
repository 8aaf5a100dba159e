#!/usr/bin/env bash
# run.sh - Strata's benchmark, side by side in one run: the same workloads
# against (a) SoftHSM2 directly, (b) SoftHSM2 through p11-kit-proxy.so,
# (c) Strata over the same SoftHSM2 tokens with a 1-layer and a 3-layer
# view, the 3-layer one also with 10 rules (find rows), and Strata's login
# with 1, 100 and 10,000 enrolled views; plus memory at idle and per
# indexed object (bench --memory) beside SoftHSM2's own, and sign timed
# with the targets interleaved in one process (bench-ab: paired latency
# ratios with a 95% confidence interval). Prints a table (ops/s and the
# ratios Strata/direct, Strata/proxy and rules/no rules), writes it as
# markdown with the latency, interleaved, find-curve and memory tables and
# the load average of each row, and keeps every raw bench line.
#
# Everything happens in an isolated world in a temporary folder: its own
# SOFTHSM2_CONF and token directory, HOME, XDG_* and STRATA_CONF, and a
# private p11-kit module configuration for the proxy. The machine's own
# tokens and configuration are never read or written. See README.md.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SECONDS_PER_RUN=1
REPEAT=3
RUN_TIMEOUT=600 # seconds: a bench run that hangs (a deadlock) becomes n/a
SIZES="1000 10000"
THREADS_SIGN="1 2"
WORKLOADS="sign-ec sign-rsa ab getattr session login find memory"
MD=""
KEEP=0
SOFTHSM=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PROXY=$(pkg-config --variable=proxy_module p11-kit-1 2>/dev/null || true)
PROXY=${PROXY:-/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so}
USER_PIN=1234
SO_PIN=56781234
PIN_ONE=11111111   # Strata view "one" (layer l1)
PIN_THREE=33333333 # Strata view "three" (layers l1 l2 l3)
PIN_RULES=77777777 # Strata view "rules" (layers l1 l2 l3, 10 rules)
LOGIN_VIEWS="1 100 10000" # views enrolled in the tokens Login-N (layer l1)
ENROLL_THREADS=2           # bench-enroll threads (one Argon2id each at a time)
AB_ROUNDS=41 # bench-ab (workload ab): timed rounds per process
AB_OPS=200   # bench-ab: signatures per target per round

usage() {
    cat <<EOF
usage: tests/bench/run.sh [options]
  --build DIR        meson build folder (default: \$BUILD or $ROOT/build)
  --seconds S        timed seconds per run (default $SECONDS_PER_RUN)
  --repeat R         rounds per cell, the median is kept (default $REPEAT)
  --sizes "N ..."    object counts for the find and memory rows (default "$SIZES")
  --full             add 100000 objects to the sizes
  --threads "T ..."  thread counts for the sign workloads (default "$THREADS_SIGN")
  --workloads "W ..." subset of: $WORKLOADS
  --login-views "N ..." enrolled views for the login/views=N rows (default
                     "$LOGIN_VIEWS"; "" skips them; bench-enroll enrols all but the
                     last view of each token in one process, strata enroll the last)
  --md FILE          markdown table (default DIR/bench-results.md)
  --keep             keep the temporary world (its path is printed)
EOF
}

while [[ $# -gt 0 ]]; do
    case $1 in
    --build) BUILD=$(realpath -m "$2"); shift 2 ;;
    --seconds) SECONDS_PER_RUN=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --full) SIZES="$SIZES 100000"; shift ;;
    --threads) THREADS_SIGN=$2; shift 2 ;;
    --workloads) WORKLOADS=$2; shift 2 ;;
    --login-views) LOGIN_VIEWS=$2; shift 2 ;;
    --md) MD=$(realpath -m "$2"); shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
MD=${MD:-$BUILD/bench-results.md}
LOG=${MD%.md}.log
SIZES=$(tr ' ' '\n' <<<"$SIZES" | grep . | sort -n | uniq | tr '\n' ' ')

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 1; }

# ---------------------------------------------------------------- build
# The bench must build; Strata (module and command) may not yet: then its
# columns read n/a with the reason.
STRATA_NA=""
BENCH=$BUILD/tests/bench/bench
STRATA_MODULE=$BUILD/engine/strata-pkcs11.so
STRATA_CLI=$BUILD/cli/strata
BENCH_ENROLL=$BUILD/tests/bench/bench-enroll
BENCH_AB=$BUILD/tests/bench/bench-ab
BENCH_ONLY_CONF="" # the policy without the Login-N tokens (set in make_world)
POLICY_VIEWS=0     # views declared in the whole policy

build() {
    if [[ ! -f $BUILD/build.ninja ]]; then
        meson setup "$BUILD" "$ROOT" >"$W/meson-setup.log" 2>&1 ||
            die "meson setup $BUILD failed (see $W/meson-setup.log)"
    fi
    ninja -C "$BUILD" tests/bench/bench tests/bench/bench-ab >"$W/build-bench.log" 2>&1 ||
        die "cannot build the bench: $(tail -n 3 "$W/build-bench.log")"
    if ! ninja -C "$BUILD" engine/strata-pkcs11.so cli/strata tests/bench/bench-enroll \
        >"$W/build-strata.log" 2>&1; then
        STRATA_NA="Strata does not build yet: $(grep -m1 -E 'error:|undefined reference' "$W/build-strata.log" |
            sed 's|^[^ ]*/||' || echo 'ninja failed')"
    fi
}

# ---------------------------------------------------------------- world
W=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-XXXXXX")
cleanup() {
    if [[ $KEEP == 1 ]]; then
        say "world kept in $W"
    else
        rm -rf "$W"
    fi
}
trap cleanup EXIT

make_world() {
    mkdir -p "$W/tokens" "$W/home/.config" "$W/home/.local/share"
    cat >"$W/softhsm2.conf" <<EOF
directories.tokendir = $W/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
    export SOFTHSM2_CONF=$W/softhsm2.conf
    export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_DATA_HOME=$W/home/.local/share
    export STRATA_CONF=$W/strata.xml
    BENCH_ONLY_CONF=$W/strata-bench-only.xml
    unset P11_KIT_SERVER_ADDRESS STRATA_LOG
    for t in l1 l2 l3; do
        softhsm2-util --init-token --free --label "$t" --so-pin "$SO_PIN" --pin "$USER_PIN" \
            >/dev/null || die "softhsm2-util cannot create token $t"
    done
    pkcs11-tool --module "$SOFTHSM" --token-label l1 --login --pin "$USER_PIN" --keypairgen \
        --key-type EC:prime256v1 --label bench-ec --id 01 >/dev/null 2>&1 ||
        die "pkcs11-tool cannot generate the EC key"
    pkcs11-tool --module "$SOFTHSM" --token-label l1 --login --pin "$USER_PIN" --keypairgen \
        --key-type RSA:2048 --label bench-rsa --id 02 >/dev/null 2>&1 ||
        die "pkcs11-tool cannot generate the RSA key"
}

# ---------------------------------------------------------------- proxy
# p11-kit-proxy.so loads every module of p11-kit's configuration. Give it
# one: SoftHSM2 alone. For a normal user, a user configuration in the
# world's HOME with "user-config: only" does it. p11-kit ignores user
# configuration in programs running as root, so as root the proxy runs in
# a private mount namespace (unshare) where the world's module folder is
# bind-mounted over the system's module folders; nothing outside that
# process sees it. Either way, `p11-kit list-modules` run the same way must
# show SoftHSM2 alone, or the proxy column is refused.
PROXY_MODE=""
PROXY_MODULES=""
PROXY_MOUNTS=()
PROXY_NA=""

proxy_setup() {
    local pkgdir sysdir
    mkdir -p "$W/p11/modules" "$W/p11/empty" "$XDG_CONFIG_HOME/pkcs11/modules"
    printf 'module: %s\n' "$SOFTHSM" >"$W/p11/modules/bench-softhsm2.module"
    cp "$W/p11/modules/bench-softhsm2.module" "$XDG_CONFIG_HOME/pkcs11/modules/"
    printf 'user-config: only\n' >"$XDG_CONFIG_HOME/pkcs11/pkcs11.conf"
    if [[ $(id -u) != 0 ]]; then
        PROXY_MODE="user configuration ($XDG_CONFIG_HOME/pkcs11, user-config: only)"
    else
        pkgdir=$(pkg-config --variable=p11_module_configs p11-kit-1 2>/dev/null || true)
        sysdir=$(pkg-config --variable=p11_system_config_modules p11-kit-1 2>/dev/null || true)
        for d in ${pkgdir:-/usr/share/p11-kit/modules} ${sysdir:-/etc/pkcs11/modules} \
            /etc/pkcs11/modules; do
            if [[ -d $d && " ${PROXY_MOUNTS[*]} " != *" $d "* ]]; then
                PROXY_MOUNTS+=("$d")
            fi
        done
        PROXY_MODE="root: private mount namespace, $W/p11/modules over ${PROXY_MOUNTS[*]}"
    fi
    if ! PROXY_MODULES=$(proxy_exec p11-kit list-modules 2>&1); then
        PROXY_NA="cannot isolate p11-kit-proxy ($PROXY_MODE): $(head -n1 <<<"$PROXY_MODULES")"
        return
    fi
    local names
    names=$(grep -E '^[^ ]' <<<"$PROXY_MODULES" | cut -d: -f1 | tr '\n' ' ')
    if [[ $names != "bench-softhsm2 " ]]; then
        PROXY_NA="p11-kit-proxy would load other modules than SoftHSM2: $names"
    fi
}

# Runs a command with the proxy's private p11-kit configuration.
proxy_exec() {
    if [[ $(id -u) != 0 ]]; then
        "$@"
        return
    fi
    # shellcheck disable=SC2016
    unshare --mount --propagation private -- bash -c '
        src=$1; shift; n=$1; shift
        for ((i = 0; i < n; i++)); do mount --bind "$src" "$1" || exit 125; shift; done
        if [[ -f /etc/pkcs11/pkcs11.conf ]]; then mount --bind /dev/null /etc/pkcs11/pkcs11.conf || exit 125; fi
        exec "$@"' _ "$W/p11/modules" "${#PROXY_MOUNTS[@]}" "${PROXY_MOUNTS[@]}" "$@"
}

# ---------------------------------------------------------------- strata
strata_setup() {
    [[ -n $STRATA_NA ]] && return
    local rules_xml=${RULES//$'\n'/$'\n'        }
    cat >"$STRATA_CONF" <<EOF
<strata version="1">
  <catalog path="$W/catalog.db"/>
  <module id="soft" path="$SOFTHSM"/>
  <layer id="l1" module="soft" token="l1"/>
  <layer id="l2" module="soft" token="l2"/>
  <layer id="l3" module="soft" token="l3"/>
  <token label="Bench">
    <kdf ops="1" mem="8192"/>
    <view id="one" layers="l1"/>
    <view id="three" layers="l1 l2 l3"/>
    <view id="rules" layers="l1 l2 l3">
      <rules>
        $rules_xml
      </rules>
    </view>
  </token>
$(login_tokens_xml)
</strata>
EOF
    local out
    if ! out=$("$STRATA_CLI" check 2>&1) || ! out=$("$STRATA_CLI" init 2>&1) ||
        ! out=$(printf '%s\n%s\n' "$PIN_ONE" "$USER_PIN" |
            "$STRATA_CLI" enroll --token Bench --view one --pin-stdin 2>&1) ||
        ! out=$(printf '%s\n%s\n%s\n%s\n' "$PIN_THREE" "$USER_PIN" "$USER_PIN" "$USER_PIN" |
            "$STRATA_CLI" enroll --token Bench --view three --pin-stdin 2>&1) ||
        ! out=$(printf '%s\n%s\n%s\n%s\n' "$PIN_RULES" "$USER_PIN" "$USER_PIN" "$USER_PIN" |
            "$STRATA_CLI" enroll --token Bench --view rules --pin-stdin 2>&1); then
        STRATA_NA="strata check/init/enroll failed: $(grep . <<<"$out" | head -n1)"
        return
    fi
    # The same policy without the Login-N tokens (same catalog), for the
    # memory rows: what a policy of 10,000 views costs at idle is a row of
    # its own (memory/idle+views), not a part of every memory figure.
    sed '/<token label="Login-/,/<\/token>/d' "$STRATA_CONF" >"$BENCH_ONLY_CONF"
    POLICY_VIEWS=$(grep -c '<view ' "$STRATA_CONF")
    enroll_login_views
}

# The find rows' 10 rules (issue 4's "hide + set"). No hide rule matches a
# bench data object (obj-NNNNNN, no CKA_ID), so every find through the
# view "rules" must still see all the objects; --objects checks it.
RULES='hide where layer == "l3" and label ~ "secret-*"
hide where class == private-key and not label ~ "bench-*"
hide where label == "never-there"
hide where id == 0xdeadbeef
hide where layer == "l2" and label ~ "*.hidden"
set label = "l1/" + label where layer == "l1"
set label = "l2/" + label where layer == "l2"
set label = "l3/" + label where layer == "l3"
set application = "strata-bench" where class == data
set label = label + " (stacked)" where layer in ["l2", "l3"]'

# login_pin N I: the PIN of view I of token Login-N, distinct across the
# whole policy (8 digits: a prefix from N's length, then I).
login_pin() { printf '%d%07d\n' "$((${#1} + 1))" "$2"; }

# One virtual token Login-N per count N of LOGIN_VIEWS, with N views of the
# layer l1 (view ids are unique in the whole policy: nN-vI).
login_tokens_xml() {
    local n i
    for n in $LOGIN_VIEWS; do
        printf '  <token label="Login-%s">\n    <kdf ops="1" mem="8192"/>\n' "$n"
        for ((i = 0; i < n; i++)); do
            printf '    <view id="n%s-v%s" layers="l1"/>\n' "$n" "$i"
        done
        printf '  </token>\n'
    done
}

# Enrols every view of every Login-N token: views 0 to N-2 with
# bench-enroll (one process for the token, the same storage_view_enroll
# call and policy KDF cost as strata enroll, ENROLL_THREADS Argon2id runs at
# a time), then the last view, the one the login rows log in to, with
# `strata enroll` itself (which checks the layer PIN by logging in). A
# failure makes the login/views=N cells n/a, not the rest.
LOGIN_NA=""
enroll_login_views() {
    local n i t0 t1 out
    for n in $LOGIN_VIEWS; do
        t0=$(date +%s.%N)
        if ((n > 1)) && ! out=$(for ((i = 0; i < n - 1; i++)); do
            printf 'n%s-v%s %s\n' "$n" "$i" "$(login_pin "$n" "$i")"
        done | "$BENCH_ENROLL" --policy "$STRATA_CONF" --token "Login-$n" --layer-pin "$USER_PIN" \
            --threads "$ENROLL_THREADS" 2>&1); then
            LOGIN_NA="bench-enroll of Login-$n failed: $(grep . <<<"$out" | tail -n1)"
            return
        fi
        t1=$(date +%s.%N)
        if ! out=$(printf '%s\n%s\n' "$(login_pin "$n" $((n - 1)))" "$USER_PIN" |
            "$STRATA_CLI" enroll --token "Login-$n" --view "n$n-v$((n - 1))" --pin-stdin 2>&1); then
            LOGIN_NA="strata enroll of view n$n-v$((n - 1)) failed: $(grep . <<<"$out" | head -n1)"
            return
        fi
        note "$(awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$(date +%s.%N)" 'BEGIN {
            printf "enrolling the %d views of Login-%d: %d with bench-enroll in %.1f s, the last with strata enroll in %.2f s", n, n, n - 1, b - a, c - b }')"
    done
}

# ---------------------------------------------------------------- objects
declare -A IN_TOKEN=([l1]=0 [l2]=0 [l3]=0)
TOTAL=0

# Adds data objects until there are $1 in all, spread evenly over l1 l2 l3.
# One token after the other: SoftHSM2 processes sharing a token folder
# while one of them writes fail C_GetTokenInfo with CKR_GENERAL_ERROR.
populate_to() {
    local target=$1 next=$((TOTAL + 1)) t want add i=0
    for t in l1 l2 l3; do
        want=$((target / 3 + (i < target % 3 ? 1 : 0)))
        add=$((want - IN_TOKEN[$t]))
        if ((add > 0)); then
            "$BENCH" --populate "$add" --first "$next" --module "$SOFTHSM" --token "$t" \
                --pin "$USER_PIN" >>"$LOG" 2>&1 || die "populating token $t failed (see $LOG)"
            next=$((next + add))
            IN_TOKEN[$t]=$want
        fi
        i=$((i + 1))
    done
    TOTAL=$target
}

# ---------------------------------------------------------------- runs
TARGETS="direct proxy strata-1 strata-3 strata-3r"
ROW_TARGETS_DEFAULT="direct proxy strata-1 strata-3"
ROW_TARGETS=""
S1_TOKEN="" S1_PIN=""
declare -A RATE P50 P99 UNIT RUNS FAILED LOAD
ROWS=()
NOTES=()

note() {
    local n
    for n in "${NOTES[@]}"; do
        [[ $n == "$1" ]] && return
    done
    NOTES+=("$1")
}

# cell_target ROW TARGET WORKLOAD: sets CELL_MODULE, CELL_TOKEN, CELL_PIN
# and CELL_RUNNER for a bench run of TARGET (Strata columns with the policy
# MEM_CONF when that is set). Returns 1 (the cell marked n/a in FAILED, the
# reason in the notes) when that column cannot run.
CELL_MODULE="" CELL_TOKEN="" CELL_PIN="" MEM_CONF=""
CELL_RUNNER=()
cell_target() {
    local row=$1 target=$2 wl=$3
    CELL_RUNNER=()
    [[ $target == strata-* && -n $MEM_CONF ]] && CELL_RUNNER=(env "STRATA_CONF=$MEM_CONF")
    case $target in
    direct) CELL_MODULE=$SOFTHSM CELL_TOKEN=l1 CELL_PIN=$USER_PIN ;;
    proxy) CELL_MODULE=$PROXY CELL_TOKEN=l1 CELL_PIN=$USER_PIN CELL_RUNNER=(proxy_exec) ;;
    strata-1) CELL_MODULE=$STRATA_MODULE CELL_TOKEN=${S1_TOKEN:-Bench} CELL_PIN=${S1_PIN:-$PIN_ONE} ;;
    strata-3) CELL_MODULE=$STRATA_MODULE CELL_TOKEN=Bench CELL_PIN=$PIN_THREE ;;
    strata-3r) CELL_MODULE=$STRATA_MODULE CELL_TOKEN=Bench CELL_PIN=$PIN_RULES ;;
    esac
    [[ -n ${FAILED[$row,$target]:-} ]] && return 1
    if [[ $target == proxy && -n $PROXY_NA ]]; then
        FAILED[$row,$target]=1
        note "proxy: $PROXY_NA"
        return 1
    fi
    if [[ $target == strata-* && -n $STRATA_NA ]]; then
        FAILED[$row,$target]=1
        note "strata: $STRATA_NA"
        return 1
    fi
    if [[ $target == strata-1 && -n $S1_TOKEN && -n $LOGIN_NA ]]; then
        FAILED[$row,$target]=1
        note "strata: $LOGIN_NA"
        return 1
    fi
    # find and memory: direct and proxy see the objects of all three tokens
    # (memory/idle: token l1 alone, one session like strata-1 and strata-3).
    if [[ $target != strata-* && ($wl == find || ($wl == memory && $row != memory/idle*)) ]]; then
        CELL_TOKEN=l1,l2,l3
    fi
    return 0
}

# bench_cell ROW TARGET KEY [bench args]: runs the bench with the cell's
# module, token and PIN plus the args under the run timeout; on success
# sets CELL_CSV to its output's line starting with "KEY,", on failure marks
# the cell n/a with the bench's message as a note and returns 1. (It sets
# globals, so it is never run in a $(...) subshell.)
CELL_CSV=""
bench_cell() {
    local row=$1 target=$2 key=$3 out
    shift 3
    printf '%s %-8s ' "$row" "$target" >>"$LOG"
    if out=$("${CELL_RUNNER[@]}" timeout -k 5 "$RUN_TIMEOUT" "$BENCH" --module "$CELL_MODULE" \
        --token "$CELL_TOKEN" --pin "$CELL_PIN" --csv "$@" 2>&1); then
        printf '%s\n' "$out" >>"$LOG"
        say "  $(printf '%-10s %-8s' "$row" "$target") $(grep -v '^csv' <<<"$out")"
        CELL_CSV=$(grep -m1 "^$key," <<<"$out")
    else
        printf 'FAILED: %s\n' "$out" >>"$LOG"
        FAILED[$row,$target]=1
        note "$target, $row: $(tail -n1 <<<"$out")"
        say "  $(printf '%-10s %-8s' "$row" "$target") n/a: $(tail -n1 <<<"$out")"
        return 1
    fi
}

# run_cell ROW TARGET WORKLOAD THREADS [extra bench args]: one timed bench
# run, appended to RUNS[ROW,TARGET] as "rate p50 p99".
run_cell() {
    local row=$1 target=$2 wl=$3 threads=$4 rate p50 p99
    shift 4
    cell_target "$row" "$target" "$wl" || return 0
    bench_cell "$row" "$target" csv --workload "$wl" --threads "$threads" \
        --seconds "$SECONDS_PER_RUN" "$@" || return 0
    IFS=, read -r _ _ _ _ _ _ _ rate p50 p99 <<<"$CELL_CSV"
    RUNS[$row,$target]+="$rate $p50 $p99"$'\n'
}

# mem_cell ROW TARGET OBJECTS: one bench --memory run (resident set and
# heap before loading, at idle, after a find of OBJECTS data objects and
# after a second one), kept in MEM[ROW,TARGET] as the csv-memory fields
# "objects start_rss start_heap idle_rss idle_heap find_rss find_heap
# find2_rss find2_heap" (bytes).
declare -A MEM
MEM_ROWS=()
mem_cell() {
    local row=$1 target=$2 objects=$3
    cell_target "$row" "$target" memory || return 0
    bench_cell "$row" "$target" csv-memory --memory --objects "$objects" $MEM_EXTRA || return 0
    MEM[$row,$target]=$(tr ',' ' ' <<<"${CELL_CSV#csv-memory,}")
}

# mem_row ROW "TARGET=OBJECTS ..." [POLICY [ARG]]: one memory run per
# target (memory is not timing: one run is enough), with the load average
# when it started. Strata runs with POLICY (default, or "": the policy
# without the Login-N tokens); ARG is one more bench argument (--read).
MEM_EXTRA=""
mem_row() {
    local row=$1 cell
    MEM_ROWS+=("$row")
    LOAD[$row]=$(cut -d' ' -f1 /proc/loadavg)
    MEM_CONF=${3:-}
    MEM_CONF=${MEM_CONF:-$BENCH_ONLY_CONF}
    MEM_EXTRA=${4:-}
    for cell in $2; do
        mem_cell "$row" "${cell%%=*}" "${cell#*=}"
    done
    MEM_CONF="" MEM_EXTRA=""
}

# Sets RATE, P50 and P99 of a cell from its median run (by rate); "-"
# for a target the row does not run.
settle_cell() {
    local row=$1 target=$2 n med
    if [[ " $ROW_TARGETS " != *" $target "* ]]; then
        RATE[$row,$target]="-"
        return
    fi
    if [[ -n ${FAILED[$row,$target]:-} || -z ${RUNS[$row,$target]:-} ]]; then
        RATE[$row,$target]="n/a"
        return
    fi
    n=$(grep -c . <<<"${RUNS[$row,$target]}")
    med=$(grep . <<<"${RUNS[$row,$target]}" | sort -g | sed -n "$(((n + 1) / 2))p")
    read -r rate p50 p99 <<<"$med"
    RATE[$row,$target]=$(printf '%.0f' "$rate")
    P50[$row,$target]=$p50
    P99[$row,$target]=$p99
}

# run_row ROW WORKLOAD THREADS UNIT: REPEAT rounds over the targets
# (ROW_TARGETS if set, else ROW_TARGETS_DEFAULT),
# interleaved so that a change in the machine's load hits every column
# alike; each cell keeps its median round. FIND_ALL / FIND_L1: the data
# objects a find must see through all three tokens / through l1 alone.
run_row() {
    local row=$1 wl=$2 threads=$3 unit=$4 t r
    ROWS+=("$row")
    UNIT[$row]=$unit
    LOAD[$row]=$(cut -d' ' -f1 /proc/loadavg)
    ROW_TARGETS=${ROW_TARGETS:-$ROW_TARGETS_DEFAULT}
    for ((r = 1; r <= REPEAT; r++)); do
        for t in $ROW_TARGETS; do
            case $t in
            strata-1) run_cell "$row" "$t" "$wl" "$threads" ${FIND_L1:+--objects "$FIND_L1"} ;;
            *) run_cell "$row" "$t" "$wl" "$threads" ${FIND_ALL:+--objects "$FIND_ALL"} ;;
            esac
        done
    done
    for t in $TARGETS; do
        settle_cell "$row" "$t"
    done
    ROW_TARGETS=""
}

# ---------------------------------------------------------------- ab
# bench-ab times sign with its targets in one process, interleaved round by
# round, and reports each pair's median per-round latency ratio with a 95%
# bootstrap interval (README.md). Strata's views one and three are two
# PINs of one virtual token, and a process logs in to a token once, so each
# has its own process beside direct and proxy (which share SoftHSM2's l1,
# logged in once with the same PIN).
AB_ROWS=() # "workload|targets|pair|ratio|lo|hi|rounds|a_us|b_us|load"

# ab_run WORKLOAD "TARGET ...": one bench-ab process over the targets that
# can run (the others are dropped, with the reason in the notes); its pair
# lines are added to AB_ROWS, a failure is a note and an n/a row.
ab_run() {
    local wl=$1 row="ab/$1/${2// /,}" load t out line
    local args=() names=() runner=()
    load=$(cut -d' ' -f1 /proc/loadavg)
    for t in $2; do
        cell_target "$row" "$t" "$wl" || continue
        args+=(--target "$t=$CELL_MODULE,$CELL_TOKEN,$CELL_PIN")
        names+=("$t")
        [[ $t == proxy ]] && runner=(proxy_exec)
    done
    if ((${#names[@]} < 2)); then
        note "$row: fewer than two targets can run, not run"
        return 0
    fi
    printf '%s\n' "$row" >>"$LOG"
    if out=$("${runner[@]}" timeout -k 5 "$RUN_TIMEOUT" "$BENCH_AB" "${args[@]}" --workload "$wl" \
        --rounds "$AB_ROUNDS" --ops "$AB_OPS" --csv 2>&1); then
        printf '%s\n' "$out" >>"$LOG"
        grep -v '^csv' <<<"$out" | sed 's/^/  /' >&2
        while IFS= read -r line; do
            IFS=, read -r _ _ a b ratio lo hi rounds a_us b_us <<<"$line"
            AB_ROWS+=("$wl|${names[*]}|$a/$b|$ratio|$lo|$hi|$rounds|$a_us|$b_us|$load")
        done < <(grep '^csv-ab,' <<<"$out")
    else
        printf 'FAILED: %s\n' "$out" >>"$LOG"
        note "$row: $(tail -n1 <<<"$out")"
        say "  $row n/a: $(tail -n1 <<<"$out")"
        AB_ROWS+=("$wl|${names[*]}|n/a|n/a||||||$load")
    fi
}

run_ab_rows() {
    local wl
    for wl in sign-ec sign-rsa; do
        ab_run "$wl" "direct proxy strata-1"
        ab_run "$wl" "direct proxy strata-3"
    done
}

has_workload() { [[ " $WORKLOADS " == *" $1 "* ]]; }

run_all() {
    local first=${SIZES%% *} n th
    populate_to "$first"
    FIND_ALL="" FIND_L1=""
    for wl in sign-ec sign-rsa; do
        has_workload $wl || continue
        for th in $THREADS_SIGN; do
            run_row "$wl/$th" "$wl" "$th" ops
        done
    done
    has_workload ab && run_ab_rows
    for wl in getattr session login; do
        has_workload $wl && run_row "$wl" "$wl" 1 ops
    done
    # Login with N enrolled views: strata-1 logs in to the last view of
    # Login-N (one layer, l1), beside SoftHSM2's own login as the anchor.
    if has_workload login; then
        for n in $LOGIN_VIEWS; do
            S1_TOKEN=Login-$n S1_PIN=$(login_pin "$n" $((n - 1)))
            ROW_TARGETS="direct proxy strata-1"
            run_row "login/views=$n" login 1 ops
            S1_TOKEN="" S1_PIN=""
        done
    fi
    # Memory at idle: one session on one token, logged in, nothing searched
    # (the world holds the first size's objects, in SoftHSM2's store alike).
    # memory/idle+views: Strata the same with the whole policy (the Login-N
    # tokens' views declared too).
    if has_workload memory; then
        mem_row memory/idle "direct=${IN_TOKEN[l1]} strata-1=${IN_TOKEN[l1]} strata-3=$TOTAL"
        mem_row memory/idle+views "strata-1=${IN_TOKEN[l1]} strata-3=$TOTAL" "$STRATA_CONF"
    fi
    has_workload find || has_workload memory || return 0
    for n in $SIZES; do
        say "populating: $n data objects over l1 l2 l3"
        populate_to "$n"
        FIND_ALL=$n FIND_L1=${IN_TOKEN[l1]}
        ROW_TARGETS="direct proxy strata-1 strata-3 strata-3r"
        has_workload find && run_row "find/$n" find 1 objects
        if has_workload memory; then
            mem_row "memory/$n" "direct=$n strata-3=$n strata-3r=$n"
            # The same with every found object's class read, in both columns:
            # SoftHSM2's own cost of an object's first read (which Strata's
            # learning causes) on both sides, Strata's own memory in between.
            mem_row "memory/$n+read" "direct=$n strata-3=$n" "" --read
        fi
    done
    FIND_ALL="" FIND_L1=""
}

# ---------------------------------------------------------------- report
ratio() {
    local a=${RATE[$1,$2]:-n/a} b=${RATE[$1,$3]:-n/a}
    if [[ $a == - || $b == - ]]; then
        echo "-"
    elif [[ $a == n/a || $b == n/a || $b == 0 ]]; then
        echo "n/a"
    else
        awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", a / b }'
    fi
}

# table FORMAT: "text" or "md"
table() {
    local fmt=$1 row cells
    local head=(workload unit direct proxy strata-1 strata-3 strata-3r "s1/direct" "s3/direct"
        "s1/proxy" "s3/proxy" "s3r/s3" load)
    local textfmt='%-16s %-8s %10s %10s %10s %10s %10s %9s %9s %9s %9s %9s %5s\n'
    if [[ $fmt == md ]]; then
        printf '| %s ' "${head[@]}"
        printf '|\n'
        printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    else
        # shellcheck disable=SC2059
        printf "$textfmt" "${head[@]}"
    fi
    for row in "${ROWS[@]}"; do
        cells=("$row" "${UNIT[$row]}/s" "${RATE[$row,direct]}" "${RATE[$row,proxy]}"
            "${RATE[$row,strata-1]}" "${RATE[$row,strata-3]}" "${RATE[$row,strata-3r]}"
            "$(ratio "$row" strata-1 direct)" "$(ratio "$row" strata-3 direct)"
            "$(ratio "$row" strata-1 proxy)" "$(ratio "$row" strata-3 proxy)"
            "$(ratio "$row" strata-3r strata-3)" "${LOAD[$row]}")
        if [[ $fmt == md ]]; then
            printf '| %s ' "${cells[@]}"
            printf '|\n'
        else
            # shellcheck disable=SC2059
            printf "$textfmt" "${cells[@]}"
        fi
    done
}

# ab_table FORMAT: the bench-ab pairs, "text" or "md".
ab_table() {
    local fmt=$1 entry wl targets pair ratio lo hi rounds a_us b_us load ci
    local textfmt='%-9s %-24s %-18s %6s %-15s %6s %9s %9s %5s\n'
    if [[ $fmt == md ]]; then
        printf '| workload | targets in the process | pair A/B | latency ratio | 95%% CI | rounds | A µs | B µs | load |\n'
        printf '|---|---|---|---:|---:|---:|---:|---:|---:|\n'
    else
        # shellcheck disable=SC2059
        printf "$textfmt" workload "targets in the process" "pair A/B" ratio "95% CI" rounds "A us" "B us" load
    fi
    for entry in "${AB_ROWS[@]}"; do
        IFS='|' read -r wl targets pair ratio lo hi rounds a_us b_us load <<<"$entry"
        ci=n/a
        if [[ -n $lo ]]; then
            ratio=$(printf '%.3f' "$ratio") ci=$(printf '[%.3f, %.3f]' "$lo" "$hi")
            a_us=$(printf '%.2f' "$a_us") b_us=$(printf '%.2f' "$b_us")
        fi
        if [[ $fmt == md ]]; then
            printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$wl" "$targets" "$pair" \
                "$ratio" "$ci" "${rounds:-n/a}" "${a_us:-n/a}" "${b_us:-n/a}" "$load"
        else
            # shellcheck disable=SC2059
            printf "$textfmt" "$wl" "$targets" "$pair" "$ratio" "$ci" "${rounds:-n/a}" \
                "${a_us:-n/a}" "${b_us:-n/a}" "$load"
        fi
    done
}

latency_table() {
    local row t
    printf '| workload | direct p50/p99 | proxy p50/p99 | strata-1 p50/p99 | strata-3 p50/p99 | strata-3r p50/p99 |\n'
    printf '|---|---:|---:|---:|---:|---:|\n'
    for row in "${ROWS[@]}"; do
        printf '| %s ' "$row"
        for t in $TARGETS; do
            if [[ -n ${P50[$row,$t]:-} ]]; then
                printf '| %.1f / %.1f ' "${P50[$row,$t]}" "${P99[$row,$t]}"
            elif [[ ${RATE[$row,$t]:-} == - ]]; then
                printf '| - '
            else
                printf '| n/a '
            fi
        done
        printf '|\n'
    done
}

# The find curve: microseconds per data object found (1e6 / objects/s),
# one row per size; flat down a column = linear in the number of objects.
find_curve_table() {
    local row t r
    printf '| objects | direct | proxy | strata-1 | strata-3 | strata-3r | load |\n'
    printf '|---:|---:|---:|---:|---:|---:|---:|\n'
    for row in "${ROWS[@]}"; do
        [[ $row == find/* ]] || continue
        printf '| %s ' "${row#find/}"
        for t in $TARGETS; do
            r=${RATE[$row,$t]:-n/a}
            if [[ $r == n/a || $r == - || $r == 0 ]]; then
                printf '| %s ' "$r"
            else
                awk -v r="$r" 'BEGIN { printf "| %.1f ", 1e6 / r }'
            fi
        done
        printf '| %s |\n' "${LOAD[$row]}"
    done
}

# mem_value ROW TARGET WHAT: one figure of a memory cell, or n/a / -.
# WHAT: idle_rss idle_heap (KiB), load_rss (idle - start, KiB), rss_obj
# heap_obj (bytes per object found, find - idle), again (find2 - find heap,
# KiB: growth on a second identical find), first_us second_us (the first
# and the second find in the process, microseconds per object found).
mem_value() {
    local v=${MEM[$1,$2]:-}
    if [[ -z $v ]]; then
        [[ -n ${FAILED[$1,$2]:-} ]] && echo n/a || echo -
        return
    fi
    awk -v what="$3" -v line="$v" 'BEGIN {
        split(line, f, " "); n = f[1]
        if (what == "idle_rss") printf "%.0f", f[4] / 1024
        else if (what == "idle_heap") printf "%.0f", f[5] / 1024
        else if (what == "load_rss") printf "%.0f", (f[4] - f[2]) / 1024
        else if (what == "rss_obj") printf "%.0f", (n > 0 ? (f[6] - f[4]) / n : 0)
        else if (what == "heap_obj") printf "%.0f", (n > 0 ? (f[7] - f[5]) / n : 0)
        else if (what == "again") printf "%+.0f", (f[9] - f[7]) / 1024
        else if (what == "first_us") printf "%.1f", (n > 0 ? f[10] / n : 0)
        else if (what == "second_us") printf "%.1f", (n > 0 ? f[11] / n : 0)
    }'
}

# mem_diff ROW A B WHAT: mem_value of A minus that of B, or n/a / -.
mem_diff() {
    local a b
    a=$(mem_value "$1" "$2" "$4") b=$(mem_value "$1" "$3" "$4")
    if [[ $a == - || $b == - ]]; then
        echo -
    elif [[ $a == n/a || $b == n/a ]]; then
        echo n/a
    else
        echo $((a - b))
    fi
}

# The first find in a process (Strata learns every object: reads its
# identity attributes, and with rules the attributes the rules read, from
# the backend) against the second, from the memory/N rows.
first_find_table() {
    local row t
    printf '| objects | direct 1st / 2nd | strata-3 1st / 2nd | strata-3r 1st / 2nd | load |\n'
    printf '|---:|---:|---:|---:|---:|\n'
    for row in "${MEM_ROWS[@]}"; do
        [[ $row == memory/[0-9]* && $row != *+read ]] || continue
        printf '| %s ' "${row#memory/}"
        for t in direct strata-3 strata-3r; do
            printf '| %s / %s ' "$(mem_value "$row" "$t" first_us)" "$(mem_value "$row" "$t" second_us)"
        done
        printf '| %s |\n' "${LOAD[$row]}"
    done
}

memory_table() {
    local row what label t
    printf '| memory | direct | strata-1 | strata-3 | strata-3r | s1 − direct | s3 − direct | load |\n'
    printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
    for row in "${MEM_ROWS[@]}"; do
        for what in idle_rss load_rss idle_heap rss_obj heap_obj again; do
            case $row/$what in
            memory/idle/idle_rss) label="idle: resident KiB" ;;
            memory/idle/load_rss) label="idle: resident KiB over the bench alone" ;;
            memory/idle/idle_heap) label="idle: heap in use KiB" ;;
            memory/idle+views/idle_rss) label="idle, policy with $POLICY_VIEWS views: resident KiB" ;;
            memory/idle+views/idle_heap) label="idle, policy with $POLICY_VIEWS views: heap in use KiB" ;;
            memory/idle*/*) continue ;;
            *+read/rss_obj) label="${row#memory/} objects, each read once: resident B/object"
                label=${label/+read/} ;;
            *+read/heap_obj) label="${row#memory/} objects, each read once: heap B/object"
                label=${label/+read/} ;;
            *+read/*) continue ;;
            */idle_rss) label="${row#memory/} objects: idle resident KiB" ;;
            */rss_obj) label="${row#memory/} objects: resident B/object" ;;
            */heap_obj) label="${row#memory/} objects: heap B/object" ;;
            */again) label="${row#memory/} objects: heap KiB added by a 2nd find" ;;
            *) continue ;;
            esac
            printf '| %s ' "$label"
            for t in direct strata-1 strata-3 strata-3r; do
                printf '| %s ' "$(mem_value "$row" "$t" "$what")"
            done
            if [[ $row == memory/idle+views ]]; then
                printf '| - | - | %s |\n' "${LOAD[$row]}"
            else
                printf '| %s | %s | %s |\n' "$(mem_diff "$row" strata-1 direct "$what")" \
                    "$(mem_diff "$row" strata-3 direct "$what")" "${LOAD[$row]}"
            fi
        done
    done
}

write_markdown() {
    {
        printf '<!-- written by tests/bench/run.sh on %s -->\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
        printf 'Machine: %s, %s cores; SoftHSM2 %s (file object store); p11-kit %s; median of %s rounds of %s s.\n\n' \
            "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" "$(nproc)" \
            "$(softhsm2-util --version)" "$(dpkg-query -W -f='${Version}' p11-kit 2>/dev/null || echo '?')" \
            "$REPEAT" "$SECONDS_PER_RUN"
        printf 'Throughput (ops/s; find rows: data objects/s) and ratios (Strata throughput / anchor throughput; 1.00 = as fast):\n\n'
        printf 'Columns: strata-1 = view of l1 (login/views=N rows: the last of the N views of token Login-N, layer l1); strata-3 = view of l1 l2 l3; strata-3r = the same 3 layers with 10 rules (find rows only); "-" = not run in that row.\n\n'
        table md
        printf '\nLatency per operation in microseconds (p50 / p99; find rows: one whole find):\n\n'
        latency_table
        if ((${#AB_ROWS[@]} > 0)); then
            printf '\nSign, interleaved in one process (bench-ab, %s rounds of %s signatures per target, the order rotated each round): latency ratio = median over rounds of A'"'"'s per-op median latency / B'"'"'s in the same round, below 1.00 = A faster (unlike the throughput ratios above); 95%% CI by bootstrap over the rounds; A and B µs = medians of the round medians.\n\n' \
                "$AB_ROUNDS" "$AB_OPS"
            ab_table md
        fi
        if [[ " ${ROWS[*]} " == *" find/"* ]]; then
            printf '\nThe find curve, microseconds per data object found (flat down a column = linear):\n\n'
            find_curve_table
        fi
        if ((${#MEM_ROWS[@]} > 0)); then
            printf '\nMemory (bench --memory, one run per cell): resident set and heap in use (mallinfo2) at idle = after C_Initialize, one session and C_Login, nothing searched; per object = (after a find of every data object - idle) / objects found. memory/idle: direct = token l1, strata-1 = view of l1, strata-3 = view of l1 l2 l3, one session each; memory/N: direct = l1 l2 l3 (one session each), strata-3/3r = the views of the three layers. SoftHSM2 reads its whole object store at C_Initialize, so it is in idle in every column; "s3 − direct" per object is Strata'"'"'s own cost.\n\n'
            memory_table
            printf '\nThe first find in a process against the second (bench --memory, the same runs), microseconds per data object found: the first is where Strata learns each object (one C_GetAttributeValue of its identity attributes, and with rules one more of the attributes the rules read, plus its catalog handle); the find rows above time the second and later ones.\n\n'
            first_find_table
        fi
        if ((${#NOTES[@]} > 0)); then
            printf '\nNotes:\n\n'
            printf -- '- %s\n' "${NOTES[@]}"
        fi
        printf '\nProxy isolation: %s.\n' "$PROXY_MODE"
        printf '\nLoad average (1, 5, 15 min) at the start: %s; at the end: %s; the load column is the 1-minute figure when the row started. Run took %s s.\n' \
            "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$((SECONDS - T0))"
    } >"$MD"
}

LOAD_START="" T0=0
main() {
    T0=$SECONDS
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    mkdir -p "$(dirname "$MD")"
    : >"$LOG"
    build
    make_world
    proxy_setup
    strata_setup
    say "world: $W"
    say "proxy: $PROXY_MODE"
    say "proxy modules: $(grep -E '^[^ ]' <<<"$PROXY_MODULES" | tr '\n' ' ')"
    [[ -n $PROXY_NA ]] && say "proxy: n/a: $PROXY_NA"
    [[ -n $STRATA_NA ]] && say "strata: n/a: $STRATA_NA"
    run_all
    write_markdown
    echo
    table text
    if ((${#AB_ROWS[@]} > 0)); then
        echo
        ab_table text
    fi
    if ((${#MEM_ROWS[@]} > 0)); then
        echo
        memory_table
        echo
        first_find_table
    fi
    if ((${#NOTES[@]} > 0)); then
        echo
        printf 'note: %s\n' "${NOTES[@]}"
    fi
    echo
    echo "markdown: $MD"
    echo "raw bench lines: $LOG"
    echo "load average at the start: $LOAD_START; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "took $((SECONDS - T0)) s"
    # SoftHSM2 directly must work: a failure there is the world's, not Strata's.
    for row in "${ROWS[@]}"; do
        [[ ${RATE[$row,direct]} != n/a ]] || die "the direct SoftHSM2 run failed for $row"
    done
}

main
