# ctest-labels: unit
# The vita CLI: help is generated from the option tables, unknown flags and commands and bad
# values are usage errors (exit 2) that name the offending argument.
set -u
fail=0
check() { # check NAME EXPECTED_RC PATTERN -- CMD...
  local name=$1 want=$2 pat=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want" ]; then echo "FAIL $name: exit $rc, want $want: $out"; fail=$((fail+1)); return; fi
  if ! grep -qE -- "$pat" <<<"$out"; then echo "FAIL $name: output lacks /$pat/: $out"; fail=$((fail+1)); return; fi
  echo "ok $name"
}
check top-help 0 "demo +the built-in job" -- "$VITA" --help
check no-args 2 'usage: vita COMMAND' -- "$VITA"
check cmd-help 0 "--steps INT +optimizer steps \\(default: 200\\)" -- "$VITA" demo --help
check unknown-flag 2 "unknown flag '--stepz'" -- "$VITA" demo --stepz 3
check bad-int 2 "'--steps' expects an integer, got 'ten'" -- "$VITA" demo --steps ten
check missing-value 2 "'--lr' needs a FLOAT value" -- "$VITA" demo --lr
check unknown-cmd 2 "unknown command 'trian'" -- "$VITA" trian
check short-flag 2 "unknown flag '-x'" -- "$VITA" demo -x
check runs 0 "demo: loss [0-9.]+ -> [0-9.]+" -- "$VITA" demo --steps 12 --batch 4 --log-every 4 --out "$PWD/cli_demo"
echo "$((9 - fail)) passed, $fail failed"
[ "$fail" = 0 ]
