# ctest-labels: unit
# The layers of DESIGN.md §2: each layer's library links only the layers below it, and no file
# includes a header of a layer above its own, or another folder's private header
# (*_impl.h, *_internal.h). The build already fails on an upward call (--no-undefined); this
# test also catches an include that is upward without a call, and a wrong link dependency.
set -u
cd "$VT_SOURCE_DIR"
build=$(dirname "$VITA")
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

# allowed[layer] = the layers it may use
declare -A allowed=(
  [autograd]=""
  [model]="autograd"
  [data]="autograd"
  [checkpoints]="autograd"
  [stages]="model data checkpoints autograd"
  [train]="stages model data checkpoints autograd"
  [cli]="train stages model data checkpoints autograd"
)

for layer in "${!allowed[@]}"; do
  lib="$build/libvt_$layer.so"
  [ -f "$lib" ] || continue
  for dep in $(readelf -d "$lib" | sed -n 's/.*NEEDED.*\[libvt_\(.*\)\.so\]/\1/p'); do
    if [[ " ${allowed[$layer]} " == *" $dep "* ]]; then ok; else bad "libvt_$layer links libvt_$dep"; fi
  done
done

for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    dir=${inc%%/*}
    [ "$dir" = "$inc" ] && continue # same-folder include without a path
    if [ "$dir" != "$layer" ] && [[ " ${allowed[$layer]} " != *" $dir "* ]] &&
       [ -n "${allowed[$dir]+x}" ]; then
      bad "$file includes $inc (layer $dir is not below $layer)"
    elif [ "$dir" != "$layer" ] && [[ "$inc" =~ _(impl|internal)\.h$ ]]; then
      bad "$file includes another folder's private header $inc"
    else
      ok
    fi
  done < <(grep -rHE '^#include "' "$layer" --include='*.c' --include='*.h' --include='*.cu' --include='*.cuh')
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
