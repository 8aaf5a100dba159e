#!/usr/bin/env bash
# includes.sh - checks the floors of engine/ (docs/architecture.md) over its
# #include "..." lines; prints each fault and exits 1, or prints "ok".
#
#   scripts/includes.sh [ENGINE_DIR]     (default: engine/ of this tree)
#
# Floors, bottom to top: core/ backend/ index/ view/ ops/, then the files
# directly in engine/ (entry points, call log). A file may include headers
# of its own floor and of those below, never one above; a header other
# than FLOOR/FLOOR.h is private to its folder; a folder not listed here is
# a fault (give it a floor first); and no chain of includes may come back
# to where it started. engine.h, the folder's public header (cli/ and the
# tests use it), stands outside the floors: any file may include it and
# it includes nothing of engine/. ALLOWED lists the exceptions ("FROM -> TO", paths
# below engine/), none today.
set -uo pipefail
dir=${1:-$(dirname "$0")/../engine}
cd "$dir" || exit 2

FLOORS="core backend index view ops"
ALLOWED=""

rank() { # path below engine/ -> floor number; 0 for an unknown folder
  local n=1 f
  [ "$1" = engine.h ] && { echo 1; return; }
  case $1 in */*) ;; *) echo 9; return ;; esac
  for f in $FLOORS; do
    [ "${1%%/*}" = "$f" ] && { echo $n; return; }
    n=$((n + 1))
  done
  echo 0
}

faults=0
fault() { echo "includes: $*"; faults=$((faults + 1)); }
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

while IFS= read -r file; do
  file=${file#./}
  from=$(rank "$file")
  [ "$from" = 0 ] && fault "$file: folder ${file%%/*}/ is not a floor (FLOORS in $0)"
  while IFS= read -r inc; do
    # As the compiler finds it: beside the file first, then from engine/.
    if [ -f "$(dirname "$file")/$inc" ]; then
      target=$(realpath -m --relative-to=. "$(dirname "$file")/$inc")
      [ "${target#..}" != "$target" ] && fault "$file includes $inc: outside engine/"
    elif [ -f "$inc" ]; then
      target=$inc
    else
      continue # another folder's public header, or a system one
    fi
    echo "$file $target" >>"$edges"
    [ "$file" = engine.h ] && fault "engine.h includes $target: the public header includes nothing of engine/"
    grep -qxF "$file -> $target" <<<"$ALLOWED" && continue
    to=$(rank "$target")
    if [ "$to" != 0 ] && [ "$from" != 0 ] && [ "$to" -gt "$from" ]; then
      fault "$file includes $target: a floor above its own"
    fi
    folder=${target%/*}
    if [ "$folder" != "$target" ] && [ "${target##*/}" != "$folder.h" ] &&
      [ "${file%/*}" != "$folder" ]; then
      fault "$file includes $target: private to $folder/"
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
done < <(find . -name '*.[ch]' | sort)

# A .c file declares no function of another file itself (a prototype or
# an extern at the margin): it would call past the floors unseen here.
while IFS= read -r hit; do
  fault "$hit: a declaration of another file's function or variable; include its floor's header"
done < <(find . -name '*.c' | sort | xargs awk '
  FNR == 1 { decl = 0 }
  /^extern / { print FILENAME ":" FNR; next }
  /^[A-Za-z_][A-Za-z0-9_ *]*[ *][A-Za-z_][A-Za-z0-9_]*\(/ && !/^(static|typedef|return) / { decl = FNR }
  decl && /[{;]/ { if ($0 ~ /\) *;/) print FILENAME ":" decl; decl = 0 }' | sed 's|^\./||')

# A circle: tsort names the files on it.
if ! loop=$(tsort "$edges" 2>&1 >/dev/null) || [ -n "$loop" ]; then
  fault "a circle of includes: $(grep -v 'input contains a loop' <<<"$loop" | sed 's/^tsort: //' | tr '\n' ' ')"
fi

[ $faults -eq 0 ] && echo "includes: ok ($(wc -l <"$edges") includes inside engine/)"
[ $faults -eq 0 ]
