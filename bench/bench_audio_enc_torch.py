"""PyTorch reference of bench_audio_enc.c: the same encoder (tests/reference/
gen_audio_enc_fixtures.py's modules, from the public semantics) at the same shape, f32, forward
+ backward of mean(y^2), best step time. Usage: same arguments as bench_audio_enc."""
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import gen_audio_enc_fixtures as ref  # noqa: E402

H, L, B, T, STEPS = (int(a) for a in (sys.argv[1:] + ["256", "4", "2", "1000", "3"][len(sys.argv) - 1:])[:5])
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
ref.N_MELS, ref.HID, ref.HEADS, ref.FFN_DIM, ref.LAYERS = 80, H, max(H // 64, 1), 4 * H, L
torch.manual_seed(0)
m = ref.Encoder().float()
x = torch.rand(B, T, 80) * 10
lens = torch.full((B,), T)
best = best_cpu = 1e30
for s in range(STEPS + 1):
    t0, c0 = time.perf_counter(), time.process_time()
    m.zero_grad(set_to_none=True)
    y, _ = m(x, lens)
    (y * y).mean().backward()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    if s > 0:
        best, best_cpu = min(best, dt), min(best_cpu, dc)
n = sum(p.numel() for p in m.parameters() if p.requires_grad) - m.ctc_lo.weight.numel() - m.ctc_lo.bias.numel()
print(f"RESULT impl=torch hidden={H} layers={L} batch={B} frames={T} params={n} "
      f"step_ms={best * 1e3:.1f} frames_per_s={B * T / best:.1f} cpu_ms={best_cpu * 1e3:.1f}")
