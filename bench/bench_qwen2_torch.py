#!/usr/bin/env python3
"""PyTorch reference for bench/bench_qwen2_train.c: the same Qwen2-shaped model (hidden 512,
4 layers, 8 heads, 2 KV heads, FFN 1408, vocab 8192, sequence 256, batch 4) trained on random
tokens with AdamW, fp32 on the CPU (or, with --bf16, under torch.autocast("cpu",
dtype=torch.bfloat16): fp32 weights and optimizer, bf16 matmuls, what a PyTorch user turns on
for speed), warmup steps untimed. Prints the same RESULT line (impl=torch or torch-bf16):
  RESULT impl=torch tokens_per_s=... gflops=... peak_rss_mib=... step_ms=... loss0=... loss=...
FLOPs per step = 6 * P * B * T + 6 * L * B * H * hd * T^2, P = the parameters in matmuls (all
but the input embedding), the second term causal attention (see the C bench).
Usage: bench_qwen2_torch.py [--steps N] [--warmup N] [--threads N] [--attn sdpa|eager] [--bf16]
"""
import argparse
import resource
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    B, T = 4, 256
    cfg = Qwen2Config(vocab_size=8192, hidden_size=512, intermediate_size=1408,
                      num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                      max_position_embeddings=2048, rope_theta=1e6, rms_norm_eps=1e-6,
                      initializer_range=0.02, tie_word_embeddings=False, use_cache=False)
    model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=a.attn,
                                          dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    P = sum(p.numel() for p in model.parameters())
    print(f"qwen2 bench (torch {torch.__version__}): params {P}, batch {B} x seq {T}, "
          f"{a.steps} steps after {a.warmup} warmup, threads {a.threads}, attn {a.attn}, "
          f"{'bf16 autocast' if a.bf16 else 'fp32'}",
          flush=True)

    loss0 = loss = 0.0
    t0 = 0.0
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t0 = time.perf_counter()
        ids = torch.randint(0, cfg.vocab_size, (B, T))
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        opt.step()
        loss = out.loss.item()
        if s == 0:
            loss0 = loss
    dt = time.perf_counter() - t0

    L, H = cfg.num_hidden_layers, cfg.num_attention_heads
    hd = cfg.hidden_size // H
    p_mm = P - cfg.vocab_size * cfg.hidden_size  # the input embedding is a gather
    flops_step = 6.0 * p_mm * B * T + 6.0 * L * B * H * hd * T * T
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    impl = "torch-bf16" if a.bf16 else "torch"
    print(f"RESULT impl={impl} tokens_per_s={B * T * a.steps / dt:.1f} "
          f"gflops={flops_step * a.steps / dt * 1e-9:.2f} peak_rss_mib={rss_mib:.1f} "
          f"step_ms={dt / a.steps * 1e3:.1f} loss0={loss0:.4f} loss={loss:.4f} attn={a.attn}")


if __name__ == "__main__":
    main()
