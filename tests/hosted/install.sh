#!/usr/bin/env bash
# p11-kit integration: `meson install` into a DESTDIR puts the module into
# p11-kit's module directory, strata.module into its module config
# directory, the strata command and the manual pages under the prefix; the
# installed module exports only the PKCS#11 entry points (C_GetFunctionList,
# C_GetInterface, C_GetInterfaceList); p11-kit, given a private
# configuration naming the DESTDIR module, lists Strata's token; and
# p11-kit-proxy.so serves Strata next to its own backend (SoftHSM2, also
# configured): both listed, login and signing through the proxy work, and
# finalize/initialize cycles neither recurse nor double-finalize. TAP.
#
# usage: install.sh BUILD_DIR SHIM CYCLES
#   SHIM: the p11kit_conf preload shim; CYCLES: the proxy_cycles program
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
build=${1:?build directory}
shim=${2:?p11kit_conf shim}
cycles=${3:?proxy_cycles program}
PROXY=$(pkg-config --variable=proxy_module p11-kit-1)
MODPATH=$(pkg-config --variable=p11_module_path p11-kit-1)
CONFPATH=$(pkg-config --variable=p11_module_configs p11-kit-1)
PY=/usr/bin/python3

plan 19
if ! world_setup; then
    not_ok "world setup"
    exit 1
fi

dest=$WORLD/dest
check "meson install --destdir" meson install -C "$build" --destdir "$dest" --no-rebuild --quiet
prefix=$(meson introspect "$build" --buildoptions |
    "$PY" -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
mandir=$(meson introspect "$build" --buildoptions |
    "$PY" -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "mandir"))')
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac

module=$dest$MODPATH/strata-pkcs11.so
if [ -f "$module" ]; then ok "module in p11-kit's module path ($MODPATH)"; else
    not_ok "module in p11-kit's module path ($MODPATH)"
    find "$dest" -type f | diag
fi
if [ -f "$dest$CONFPATH/strata.module" ]; then ok "strata.module in $CONFPATH"; else
    not_ok "strata.module in $CONFPATH"
fi
contains "strata.module names the module relative to the module path" \
    '^module: strata-pkcs11\.so$' "$(cat "$dest$CONFPATH/strata.module" 2>&1)"
if [ -x "$dest$prefix/bin/strata" ]; then ok "strata command in $prefix/bin"; else
    not_ok "strata command in $prefix/bin"
fi
missing=
for page in man1/strata.1 man5/strata.xml.5 man7/strata-rules.7 man8/strata-pkcs11.8; do
    [ -f "$dest$mandir/$page" ] || [ -f "$dest$mandir/$page.gz" ] || missing="$missing $page"
done
compare "manual pages installed under $mandir" "" "$missing"
compare "example policies installed under doc/strata/examples" \
    "README.md group-store.xml hosted.xml migration.xml pseudonym.xml trust-store.xml" \
    "$(find "$dest" -path '*/doc/strata/examples/*' -type f -printf '%f\n' | sort | tr '\n' ' ' |
        sed 's/ $//')"
compare "bash completion installed as bash-completion/completions/strata" "strata" \
    "$(find "$dest" -path '*/bash-completion/completions/*' -type f -printf '%f\n')"
compare "systemd user units installed" "strata-server.socket strata-server@.service" \
    "$(find "$dest" -path '*/systemd/user/*' -type f -printf '%f\n' | sort | tr '\n' ' ' |
        sed 's/ $//')"
compare "the installed module exports only the PKCS#11 entry points" \
    "$(printf '%s\n' C_GetFunctionList C_GetInterface C_GetInterfaceList | sort)" \
    "$(nm -D --defined-only "$module" 2>&1 | awk '$2 ~ /^[TtDdBbRrVvWwi]$/ {print $3}' | sort)"

# A private p11-kit configuration: the installed strata.module with its
# module path pointing into the DESTDIR, and SoftHSM2's own module.
conf=$WORLD/p11kit
mkdir -p "$conf/modules"
: >"$conf/pkcs11.conf"
sed "s|^module: .*|module: $module|" "$dest$CONFPATH/strata.module" >"$conf/modules/strata.module"
printf 'module: %s\n' "$SOFTHSM_MODULE" >"$conf/modules/softhsm2.module"
export STRATA_TEST_P11KIT=$conf
kit() { EXTRA_PRELOAD=$shim foreign "$@"; }

out=$(kit p11-kit list-modules 2>&1)
contains "p11-kit list-modules shows the Strata module" "^strata: $module\$" "$out"
contains "... with its virtual token" '^    token: Strata$' "$out"

out=$(kit pkcs11-tool --module "$PROXY" -L 2>&1)
contains "p11-kit-proxy lists Strata's token" 'token label *: Strata$' "$out"
contains "... and SoftHSM2's own tokens next to it" 'token label *: personal$' "$out"
compare "... each exactly once (no recursion)" "1" "$(printf '%s\n' "$out" | grep -c 'token label *: Strata$')"

out=$(kit pkcs11-tool --module "$PROXY" --token-label Strata --login --pin "$WORK_PIN" -O 2>&1)
compare "login through the proxy to Strata shows the work view" "group-ec
work-ec" "$(printf '%s\n' "$out" | labels_of)"

# One process using Strata and SoftHSM2 through the proxy, through two
# initialize/finalize cycles: both work in each, nothing finalizes twice.
out=$(foreign "$cycles" "$conf" "$PROXY" "$WORK_PIN" personal-pin-71 2>&1)
rc=$?
compare "Strata and SoftHSM2 sign through one proxy, two init/finalize cycles" "cycle 1 Strata sign ok
cycle 1 personal sign ok
cycle 2 Strata sign ok
cycle 2 personal sign ok" "$out"
compare "... and the process exits cleanly" 0 "$rc"

# Without the private configuration (the machine's), nothing of Strata's
# DESTDIR module is visible: the test really used its own configuration.
out=$(STRATA_TEST_P11KIT= kit p11-kit list-modules 2>&1)
lacks "the machine's configuration does not name the DESTDIR module" "$module" "$out"

done_testing
