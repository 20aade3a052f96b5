#!/usr/bin/env python3
"""Generates tests/fixtures/optim/*.txt: optimizer trajectories from torch.optim and LR schedule
values from torch / HF transformers, read by tests/test_optim.c and tests/test_schedule.c.

Run from the repo root:  python3 tests/reference/gen_optim_fixtures.py
Needs: torch, numpy (transformers optional: the cosine formulas are written out from its
definition when it is missing).

adamw.txt / adam.txt / sgd.txt, per parameter NAME (shapes and groups are mirrored in
test_optim.c): init.NAME, grad.NAME [steps, ...] (trainable only), final.NAME, and for Adam
exp_avg.NAME / exp_avg_sq.NAME (momentum_buffer.NAME for SGD); norms [steps] (the total norm
clip_grad_norm_ returned, when clipping), lrs [steps] (the default group's LR of each step).
schedule.txt: one row of LR multipliers per schedule, for steps 0.. (base LR 1).
"""
import math
import os

import numpy as np
import torch

from fixture_io import write_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "optim")
STEPS = 10

NO_DECAY = ("bias", "norm", "ls1", "ls2")


def no_decay(name, shape):
    # the rule of vt_optim_is_no_decay, spelled out for these names
    return len(shape) == 1 or name.endswith("bias") or "norm" in name or name.endswith((".ls1", ".ls2"))


def cosine_with_min_lr(step, warmup, total, min_lr_rate=0.0):
    """HF transformers' _get_cosine_schedule_with_warmup_lr_lambda (num_cycles 0.5), with the
    min_lr_rate variant of get_cosine_with_min_lr_schedule_with_warmup."""
    try:
        from transformers.optimization import (
            _get_cosine_schedule_with_warmup_lr_lambda, _get_cosine_with_min_lr_schedule_with_warmup_lr_lambda)
        if min_lr_rate:
            return _get_cosine_with_min_lr_schedule_with_warmup_lr_lambda(
                step, num_warmup_steps=warmup, num_training_steps=total, num_cycles=0.5,
                min_lr_rate=min_lr_rate)
        return _get_cosine_schedule_with_warmup_lr_lambda(
            step, num_warmup_steps=warmup, num_training_steps=total, num_cycles=0.5)
    except ImportError:
        if step < warmup:
            return float(step) / float(max(1, warmup))
        progress = float(step - warmup) / float(max(1, total - warmup))
        factor = 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress))
        if min_lr_rate:
            factor = factor * (1 - min_lr_rate) + min_lr_rate
        return max(0.0, factor)


def run(kind, params, groups, default, steps=STEPS, max_norm=0.0, lr_lambda=None, seed=0, **kw):
    """params: list of (name, shape, trainable); groups: list of (prefix, lr, wd) claimed by name
    prefix, default: (lr, wd). Returns the fixture dict."""
    g = torch.Generator().manual_seed(seed)
    tensors, fx = {}, {}
    for name, shape, trainable in params:
        t = (torch.rand(shape, generator=g) * 2 - 1).requires_grad_(trainable)
        tensors[name] = t
        fx[f"init.{name}"] = t.detach().clone()
    buckets = {}
    for name, shape, trainable in params:
        if not trainable:
            continue
        gi = next((i for i, (pre, _, _) in enumerate(groups) if name.startswith(pre)), len(groups))
        lr, wd = (groups[gi][1], groups[gi][2]) if gi < len(groups) else default
        nd = no_decay(name, shape)
        buckets.setdefault((gi, nd), {"params": [], "lr": lr, "weight_decay": 0.0 if nd else wd})
        buckets[(gi, nd)]["params"].append(tensors[name])
    pgroups = list(buckets.values())
    if kind == "adamw":
        opt = torch.optim.AdamW(pgroups, foreach=False, **kw)
    elif kind == "adam":
        opt = torch.optim.Adam(pgroups, foreach=False, **kw)
    else:
        opt = torch.optim.SGD(pgroups, foreach=False, **kw)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda or (lambda s: 1.0))
    trainable = [(n, s) for n, s, tr in params if tr]
    grads = {n: (torch.randn((steps,) + tuple(s), generator=g)) for n, s in trainable}
    # vary the gradient scale per step so that clipping bites on some steps only
    gscale = torch.linspace(0.02, 0.3, steps)[torch.randperm(steps, generator=g)]
    norms, lrs = [], []
    for k in range(steps):
        for n, _ in trainable:
            tensors[n].grad = grads[n][k] * gscale[k]
        if max_norm:
            norms.append(float(torch.nn.utils.clip_grad_norm_([tensors[n] for n, _ in trainable], max_norm)))
        lrs.append(default[0] * sched.get_last_lr()[0] / pgroups[0]["initial_lr"])
        opt.step()
        sched.step()
    for n, _ in trainable:
        fx[f"grad.{n}"] = grads[n] * gscale.view((steps,) + (1,) * (grads[n].dim() - 1))
    for name, shape, _ in params:
        fx[f"final.{name}"] = tensors[name].detach()
        st = opt.state.get(tensors[name], {})
        for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if key in st:
                fx[f"{key}.{name}"] = st[key]
    if norms:
        fx["norms"] = np.array(norms)
    fx["lrs"] = np.array(lrs)
    return fx


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float32)

    adamw_params = [
        ("model.embed_tokens.weight", (6, 4), True),
        ("model.layers.0.self_attn.q_proj.weight", (4, 4), True),
        ("model.layers.0.self_attn.q_proj.bias", (4,), True),
        ("model.layers.0.self_attn.k_proj.weight", (4, 4), False),
        ("model.layers.0.input_layernorm.weight", (4,), True),
        ("vision_tower.encoder.layers.0.ls1", (4,), True),
        ("vision_tower.encoder.layers.0.norm1.weight", (4,), True),
        ("vision_tower.encoder.layers.0.mlp.fc1.weight", (5, 4), True),
        ("audio_encoder.conv.weight", (3, 2, 2), False),
        ("audio_encoder.conv.bias", (3,), False),
        ("mlp1.1.weight", (4, 5), True),
        ("mlp1.1.bias", (4,), True),
    ]
    fx = run("adamw", adamw_params, [("vision_tower.", 2e-3, 0.05), ("mlp1.", 5e-2, 0.1)],
             (1e-2, 0.01), max_norm=1.0, betas=(0.9, 0.999), eps=1e-8,
             lr_lambda=lambda s: cosine_with_min_lr(s, 2, STEPS, 0.1), seed=1)
    write_fixture(os.path.join(OUT, "adamw.txt"), fx,
                  "torch.optim.AdamW, 10 steps; groups vision_tower.* (lr 2e-3, wd 0.05), mlp1.* "
                  "(5e-2, 0.1), default (1e-2, 0.01);\nno decay for 1-D/bias/norm; clip 1.0; "
                  "HF cosine with min_lr_rate 0.1, warmup 2, total 10")

    adam_params = [
        ("codec.encoder.conv.weight", (4, 3, 3), True),
        ("codec.encoder.conv.bias", (4,), True),
        ("codec.embed.weight", (5, 3), False),
        ("disc.conv.weight", (2, 4, 3), True),
        ("disc.conv.bias", (2,), True),
    ]
    fx = run("adam", adam_params, [("disc.", 2e-2, 0.01)], (1e-2, 0.0), betas=(0.5, 0.9),
             eps=1e-8, seed=2)
    write_fixture(os.path.join(OUT, "adam.txt"), fx,
                  "torch.optim.Adam betas (0.5, 0.9), 10 steps; disc.* lr 2e-2 L2 0.01 (none on the "
                  "bias), default lr 1e-2 wd 0; constant LR, no clipping")

    sgd_params = [
        ("a.weight", (3, 4), True),
        ("a.bias", (3,), True),
        ("b.weight", (2, 3), False),
    ]
    fx = run("sgd", sgd_params, [], (5e-2, 1e-3), max_norm=0.5, momentum=0.9, seed=3)
    write_fixture(os.path.join(OUT, "sgd.txt"), fx,
                  "torch.optim.SGD momentum 0.9, lr 5e-2, L2 1e-3 (none on the bias), clip 0.5, 10 steps")

    # Schedules as multipliers of a base LR of 1, from torch schedulers stepped once per step.
    def trace(make, n):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        sched = make(opt)
        out = []
        for _ in range(n):
            out.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        return np.array(out)

    lam = torch.optim.lr_scheduler.LambdaLR
    w_ratio = math.ceil(100 * 0.03)  # HF TrainingArguments.get_warmup_steps
    noam = lambda w, d: (lambda s: (d ** -0.5 if d else w ** 0.5) * min((s + 1) ** -0.5, (s + 1) * w ** -1.5))
    sch = {
        "constant": trace(lambda o: lam(o, lambda s: 1.0), 20),
        "cosine_steps": trace(lambda o: lam(o, lambda s: cosine_with_min_lr(s, 5, 50)), 50),
        "cosine_ratio": trace(lambda o: lam(o, lambda s: cosine_with_min_lr(s, w_ratio, 100)), 100),
        "cosine_min": trace(lambda o: lam(o, lambda s: cosine_with_min_lr(s, 3, 30, 0.1)), 30),
        # WeNet's WarmupLR (peak 1 at the end of warmup) and Vaswani's Noam with d_model 512
        "noam": trace(lambda o: lam(o, noam(25, 0)), 100),
        "noam_dmodel": trace(lambda o: lam(o, noam(40, 512)), 100),
    }

    # per-epoch ExponentialLR: stepped once every 7 optimizer steps
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    ex = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    vals = []
    for s in range(50):
        vals.append(ex.get_last_lr()[0])
        opt.step()
        if (s + 1) % 7 == 0:
            ex.step()
    sch["exp_epoch"] = np.array(vals)
    write_fixture(os.path.join(OUT, "schedule.txt"), sch,
                  "LR multipliers per step: cosine_steps (warmup 5, total 50), cosine_ratio (ratio "
                  "0.03, total 100),\ncosine_min (warmup 3, total 30, min 0.1), noam (warmup 25), "
                  "noam_dmodel (warmup 40, d 512), exp_epoch (gamma 0.9, 7 steps/epoch)")


if __name__ == "__main__":
    main()
