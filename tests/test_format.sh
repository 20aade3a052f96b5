# ctest-labels: unit
# Every C/CUDA source in git is formatted with the checked-in .clang-format.
set -u
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
cd "$VT_SOURCE_DIR"
files=$(git ls-files '*.c' '*.h' '*.cu' '*.cuh' 2>/dev/null) || { echo "not a git checkout: skipped"; exit 77; }
bad=$(clang-format --dry-run $files 2>&1 | grep -oE '^[^ :]+\.(c|h|cu|cuh):' | sort -u)
n=$(wc -w <<<"$files")
if [ -n "$bad" ]; then
  echo "not formatted (run clang-format -i on them):"; echo "$bad"
  echo "$((n - $(wc -l <<<"$bad"))) passed, $(wc -l <<<"$bad") failed"; exit 1
fi
echo "$n passed, 0 failed"
