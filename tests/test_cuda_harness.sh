# ctest-labels: unit
# The GPU tests' harnesses with the CPU on both sides (`--cpu-twice`), so the comparison code of
# test_cuda_attn (flash attention against the CPU) and test_cuda_train (training parity) runs
# in every build, with or without a GPU: both sides must agree bit for bit.
set -u
fail=0
for t in test_cuda_attn test_cuda_train; do
  if ./$t --cpu-twice >"$t.cpu_twice.log" 2>&1; then
    echo "ok $t --cpu-twice"
  else
    echo "FAIL $t --cpu-twice"
    tail -20 "$t.cpu_twice.log"
    fail=$((fail + 1))
  fi
done
exit $fail
