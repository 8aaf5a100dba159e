#!/usr/bin/env bash
# run.sh - Strata's benchmark, side by side in one run: the same workloads
# against (a) SoftHSM2 directly, (b) SoftHSM2 through p11-kit-proxy.so,
# (c) Strata over the same SoftHSM2 tokens with a 1-layer and a 3-layer
# view, the 3-layer one also with 10 rules (find rows), and Strata's login
# with 1, 100 and 1,000 enrolled views. Prints a table (ops/s and the
# ratios Strata/direct, Strata/proxy and rules/no rules), writes it as
# markdown, and keeps every raw bench line.
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
WORKLOADS="sign-ec sign-rsa getattr session login find"
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
LOGIN_VIEWS="1 100 1000" # views enrolled in the tokens Login-N (layer l1)

usage() {
    cat <<EOF
usage: tests/bench/run.sh [options]
  --build DIR        meson build folder (default: \$BUILD or $ROOT/build)
  --seconds S        timed seconds per run (default $SECONDS_PER_RUN)
  --repeat R         rounds per cell, the median is kept (default $REPEAT)
  --sizes "N ..."    object counts for the find workload (default "$SIZES")
  --full             add 100000 objects to the sizes
  --threads "T ..."  thread counts for the sign workloads (default "$THREADS_SIGN")
  --workloads "W ..." subset of: $WORKLOADS
  --login-views "N ..." enrolled views for the login/views=N rows (default
                     "$LOGIN_VIEWS"; "" skips them; one strata enroll per view, 20-50 ms)
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

build() {
    if [[ ! -f $BUILD/build.ninja ]]; then
        meson setup "$BUILD" "$ROOT" >"$W/meson-setup.log" 2>&1 ||
            die "meson setup $BUILD failed (see $W/meson-setup.log)"
    fi
    ninja -C "$BUILD" tests/bench/bench >"$W/build-bench.log" 2>&1 ||
        die "cannot build the bench: $(tail -n 3 "$W/build-bench.log")"
    if ! ninja -C "$BUILD" engine/strata-pkcs11.so cli/strata >"$W/build-strata.log" 2>&1; then
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

# Enrols every view of every Login-N token, one `strata enroll` each (one
# Argon2id at the policy's cost, plus a process and the policy's parsing).
# A failure makes the login/views=N cells n/a, not the rest.
LOGIN_NA=""
enroll_login_views() {
    local n i t0 out
    for n in $LOGIN_VIEWS; do
        t0=$SECONDS
        for ((i = 0; i < n; i++)); do
            if ! out=$(printf '%s\n%s\n' "$(login_pin "$n" "$i")" "$USER_PIN" |
                "$STRATA_CLI" enroll --token "Login-$n" --view "n$n-v$i" --pin-stdin 2>&1); then
                LOGIN_NA="strata enroll of view n$n-v$i failed: $(grep . <<<"$out" | head -n1)"
                return
            fi
        done
        note "enrolling the $n views of Login-$n took $((SECONDS - t0)) s (one strata enroll each)"
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
declare -A RATE P50 P99 UNIT RUNS FAILED
ROWS=()
NOTES=()

note() {
    local n
    for n in "${NOTES[@]}"; do
        [[ $n == "$1" ]] && return
    done
    NOTES+=("$1")
}

# run_cell ROW TARGET WORKLOAD THREADS [extra bench args]: one bench run,
# appended to RUNS[ROW,TARGET] as "rate p50 p99"; a failure marks the cell
# n/a (FAILED) with the bench's message as a note.
run_cell() {
    local row=$1 target=$2 wl=$3 threads=$4
    shift 4
    local module token pin out csv rate p50 p99
    local -a runner=()
    case $target in
    direct) module=$SOFTHSM token=l1 pin=$USER_PIN ;;
    proxy) module=$PROXY token=l1 pin=$USER_PIN runner=(proxy_exec) ;;
    strata-1) module=$STRATA_MODULE token=${S1_TOKEN:-Bench} pin=${S1_PIN:-$PIN_ONE} ;;
    strata-3) module=$STRATA_MODULE token=Bench pin=$PIN_THREE ;;
    strata-3r) module=$STRATA_MODULE token=Bench pin=$PIN_RULES ;;
    esac
    [[ -n ${FAILED[$row,$target]:-} ]] && return
    if [[ $target == proxy && -n $PROXY_NA ]]; then
        FAILED[$row,$target]=1
        note "proxy: $PROXY_NA"
        return
    fi
    if [[ $target == strata-* && -n $STRATA_NA ]]; then
        FAILED[$row,$target]=1
        note "strata: $STRATA_NA"
        return
    fi
    if [[ $target == strata-1 && -n $S1_TOKEN && -n $LOGIN_NA ]]; then
        FAILED[$row,$target]=1
        note "strata: $LOGIN_NA"
        return
    fi
    [[ $wl == find && $target != strata-* ]] && token=l1,l2,l3
    printf '%s %-8s ' "$row" "$target" >>"$LOG"
    if out=$("${runner[@]}" timeout -k 5 "$RUN_TIMEOUT" "$BENCH" --module "$module" --token "$token" --pin "$pin" \
        --workload "$wl" --threads "$threads" --seconds "$SECONDS_PER_RUN" --csv "$@" 2>&1); then
        printf '%s\n' "$out" >>"$LOG"
        csv=$(grep '^csv,' <<<"$out")
        IFS=, read -r _ _ _ _ _ _ _ rate p50 p99 <<<"$csv"
        RUNS[$row,$target]+="$rate $p50 $p99"$'\n'
        say "  $(printf '%-10s %-8s' "$row" "$target") $(grep -v '^csv,' <<<"$out")"
    else
        printf 'FAILED: %s\n' "$out" >>"$LOG"
        FAILED[$row,$target]=1
        note "$target, $row: $(tail -n1 <<<"$out")"
        say "  $(printf '%-10s %-8s' "$row" "$target") n/a: $(tail -n1 <<<"$out")"
    fi
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
    has_workload find || return 0
    for n in $SIZES; do
        say "populating: $n data objects over l1 l2 l3"
        populate_to "$n"
        FIND_ALL=$n FIND_L1=${IN_TOKEN[l1]}
        ROW_TARGETS="direct proxy strata-1 strata-3 strata-3r"
        run_row "find/$n" find 1 objects
    done
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
        "s1/proxy" "s3/proxy" "s3r/s3")
    local textfmt='%-16s %-8s %10s %10s %10s %10s %10s %9s %9s %9s %9s %9s\n'
    if [[ $fmt == md ]]; then
        printf '| %s ' "${head[@]}"
        printf '|\n'
        printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
    else
        # shellcheck disable=SC2059
        printf "$textfmt" "${head[@]}"
    fi
    for row in "${ROWS[@]}"; do
        cells=("$row" "${UNIT[$row]}/s" "${RATE[$row,direct]}" "${RATE[$row,proxy]}"
            "${RATE[$row,strata-1]}" "${RATE[$row,strata-3]}" "${RATE[$row,strata-3r]}"
            "$(ratio "$row" strata-1 direct)" "$(ratio "$row" strata-3 direct)"
            "$(ratio "$row" strata-1 proxy)" "$(ratio "$row" strata-3 proxy)"
            "$(ratio "$row" strata-3r strata-3)")
        if [[ $fmt == md ]]; then
            printf '| %s ' "${cells[@]}"
            printf '|\n'
        else
            # shellcheck disable=SC2059
            printf "$textfmt" "${cells[@]}"
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
        if ((${#NOTES[@]} > 0)); then
            printf '\nNotes:\n\n'
            printf -- '- %s\n' "${NOTES[@]}"
        fi
        printf '\nProxy isolation: %s.\n' "$PROXY_MODE"
    } >"$MD"
}

main() {
    local t0=$SECONDS
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
    if ((${#NOTES[@]} > 0)); then
        echo
        printf 'note: %s\n' "${NOTES[@]}"
    fi
    echo
    echo "markdown: $MD"
    echo "raw bench lines: $LOG"
    echo "took $((SECONDS - t0)) s"
    # SoftHSM2 directly must work: a failure there is the world's, not Strata's.
    for row in "${ROWS[@]}"; do
        [[ ${RATE[$row,direct]} != n/a ]] || die "the direct SoftHSM2 run failed for $row"
    done
}

main
