#!/usr/bin/env python3
"""PyTorch side of bench/bench_vit.c: the same InternViT-width tower (the modules of
tests/reference/gen_vit_fixtures.py at hidden 1024, 16 heads, MLP 4096, 448 px / 14) with LAYERS
layers and the mlp2x_gelu adapter, fp32 on the CPU, forward + backward of sum(out * w) over
tiles of 448 x 448. Prints: RESULT impl=torch tiles_per_s=... step_ms=... peak_rss_mib=...
Usage: bench_vit_torch.py [--layers 2] [--tiles 1] [--steps 3] [--warmup 1] [--threads 2]"""
import argparse
import os
import resource
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import gen_vit_fixtures as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tiles", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = dict(image_size=448, patch_size=14, hidden_size=1024, intermediate_size=4096,
               num_hidden_layers=a.layers, num_attention_heads=16, layer_norm_eps=1e-6)
    tower = ref.Tower(cfg)
    proj = nn.Sequential(nn.Linear(4096, 3584), nn.GELU(), nn.Linear(3584, 3584))
    params = list(tower.parameters()) + list(proj.parameters())
    px = torch.randn(a.tiles, 3, 448, 448)
    w = torch.randn(a.tiles, 256, 3584) * 1e-3
    print(f"vit bench (torch {torch.__version__}): {a.layers} layers + mlp2x_gelu, "
          f"{sum(p.numel() for p in params)} params, {a.tiles} tiles a step, threads {a.threads}")
    t0 = c0 = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        for p in params:
            p.grad = None
        out = proj(ref.features(tower(px)))
        (out * w).sum().backward()
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"RESULT impl=torch tiles_per_s={a.tiles * a.steps / dt:.3f} "
          f"step_ms={dt / a.steps * 1e3:.1f} peak_rss_mib={rss:.1f} cpu_ms={dc / a.steps * 1e3:.1f}")


if __name__ == "__main__":
    main()
