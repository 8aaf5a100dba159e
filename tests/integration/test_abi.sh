#!/usr/bin/env bash
# The module's ABI: nm -D shows only the PKCS#11 entry points (2.40's
# C_GetFunctionList, 3.0's C_GetInterfaceList and C_GetInterface). TAP.
set -u
module=${1:?module path}
echo "1..2"
syms=$(nm -D --defined-only "$module" | awk '$2 ~ /^[TtDdBbRrVvWwi]$/ {print $3}' | sort)
want=$(printf '%s\n' C_GetFunctionList C_GetInterface C_GetInterfaceList | sort)
if [ "$syms" = "$want" ]; then
  echo "ok 1 - exports only C_GetFunctionList, C_GetInterfaceList, C_GetInterface"
else
  echo "not ok 1 - exports only C_GetFunctionList, C_GetInterfaceList, C_GetInterface"
  echo "$syms" | sed 's/^/# /'
fi
undef=$(nm -D --undefined-only "$module" | grep -E ' (sqlite3|xml|sodium|p11_kit)_' | wc -l)
if [ "$undef" -gt 0 ] && ldd "$module" >/dev/null 2>&1; then
  echo "ok 2 - links its libraries dynamically and resolves them"
else
  echo "not ok 2 - links its libraries dynamically and resolves them"
fi
