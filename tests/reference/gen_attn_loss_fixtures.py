#!/usr/bin/env python3
"""Generates tests/fixtures/ops/attn.txt and tests/fixtures/ops/loss.txt with PyTorch (CPU).

Run from the repo root:  python3 tests/reference/gen_attn_loss_fixtures.py
Needs: pip install torch numpy.

attn.txt: per case NAME.q/k/v (and .bias, .lengths, .prefix_lengths), NAME.w (the weights of
  L = sum(w * out)), NAME.out and NAME.dq/dk/dv(/dbias) = dL/d... The reference is the plain
  formula softmax(scale q k^T + bias + mask) v with GQA by repeating k/v heads.
fused.txt: vt_attention_qkv's cases: NAME.qkv (packed projection), NAME.pos, NAME.w,
  NAME.out and NAME.dqkv; vt_swiglu's: swiglu.in0, .w, .out, .grad0.
loss.txt: per case the inputs, NAME.loss and the gradients of NAME.loss.
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "ops")


def key_mask(kind, b, tq, tk, chunk=0, left=0, prefix=0, lengths=None, prefix_lengths=None,
             segments=None):
    """Boolean [tq, tk] mask of visible keys for sample b, written from the definitions."""
    m = torch.zeros(tq, tk, dtype=torch.bool)
    run = None
    if segments is not None:  # run index of each position: runs of equal ids are segments
        ids = segments[b]
        run = [0] * len(ids)
        for i in range(1, len(ids)):
            run[i] = run[i - 1] + (ids[i] != ids[i - 1])
    for i in range(tq):
        for j in range(tk):
            if kind == "bidirectional":
                ok = True
            elif kind == "causal":
                ok = j <= i + tk - tq
            elif kind == "chunk":
                lo = 0 if left < 0 else max(0, (i // chunk - left) * chunk)
                ok = lo <= j < (i // chunk + 1) * chunk
            elif kind == "prefix":
                p = prefix_lengths[b] if prefix_lengths is not None else prefix
                ok = j < p if i < p else j <= i
            if lengths is not None and j >= lengths[b]:
                ok = False
            if run is not None and run[i] != run[j]:
                ok = False
            m[i, j] = ok
    return m


def attn_case(tensors, name, gen, B, H, Hkv, Tq, Tk, Dk, Dv, kind, scale=None, bias_shape=None,
              lengths=None, prefix_lengths=None, segments=None, **mask_args):
    q = torch.randn(B, H, Tq, Dk, generator=gen, dtype=torch.float64)
    k = torch.randn(B, Hkv, Tk, Dk, generator=gen, dtype=torch.float64)
    v = torch.randn(B, Hkv, Tk, Dv, generator=gen, dtype=torch.float64)
    bias = (torch.randn(*bias_shape, generator=gen, dtype=torch.float64)
            if bias_shape else None)
    w = torch.randn(B, H, Tq, Dv, generator=gen, dtype=torch.float64)
    # round inputs to f32 first so C sees exactly what torch saw
    q, k, v, w = (t.float().double() for t in (q, k, v, w))
    leaves = [q, k, v] + ([bias.float().double()] if bias is not None else [])
    for t in leaves:
        t.requires_grad_(True)
    q, k, v = leaves[:3]
    s = scale if scale is not None else 1.0 / math.sqrt(Dk)
    kr = k.repeat_interleave(H // Hkv, dim=1)
    vr = v.repeat_interleave(H // Hkv, dim=1)
    scores = s * q @ kr.transpose(-1, -2)
    if bias is not None:
        scores = scores + leaves[3]
    mask = torch.stack([key_mask(kind, b, Tq, Tk, lengths=lengths,
                                 prefix_lengths=prefix_lengths, segments=segments, **mask_args)
                        for b in range(B)])
    scores = scores.masked_fill(~mask[:, None], float("-inf"))
    out = torch.softmax(scores, dim=-1) @ vr
    (out * w).sum().backward()
    tensors[f"{name}.q"] = q.detach().float()
    tensors[f"{name}.k"] = k.detach().float()
    tensors[f"{name}.v"] = v.detach().float()
    if bias is not None:
        tensors[f"{name}.bias"] = leaves[3].detach().float()
    if lengths is not None:
        tensors[f"{name}.lengths"] = torch.tensor(lengths, dtype=torch.int32)
    if prefix_lengths is not None:
        tensors[f"{name}.prefix_lengths"] = torch.tensor(prefix_lengths, dtype=torch.int32)
    if segments is not None:
        tensors[f"{name}.segments"] = torch.tensor(segments, dtype=torch.int32)
    tensors[f"{name}.w"] = w.float()
    tensors[f"{name}.out"] = out.detach().float()
    tensors[f"{name}.dq"] = q.grad.float()
    tensors[f"{name}.dk"] = k.grad.float()
    tensors[f"{name}.dv"] = v.grad.float()
    if bias is not None:
        tensors[f"{name}.dbias"] = leaves[3].grad.float()


def gen_attn():
    gen = torch.Generator().manual_seed(3)
    t = {}
    # names and parameters are mirrored in tests/test_ops_attn.c
    attn_case(t, "bidir", gen, 2, 2, 2, 5, 5, 8, 8, "bidirectional")
    attn_case(t, "causal_gqa", gen, 2, 4, 2, 7, 7, 8, 8, "causal")
    attn_case(t, "causal_cross", gen, 1, 2, 1, 3, 6, 4, 4, "causal")
    attn_case(t, "padding", gen, 2, 2, 1, 6, 6, 8, 8, "bidirectional", lengths=[6, 3])
    attn_case(t, "chunk", gen, 1, 2, 2, 9, 9, 4, 4, "chunk", chunk=2, left=1)
    attn_case(t, "chunk_full_left", gen, 1, 1, 1, 7, 7, 4, 4, "chunk", chunk=3, left=-1)
    attn_case(t, "prefix", gen, 2, 2, 2, 7, 7, 4, 4, "prefix", prefix=3)
    attn_case(t, "prefix_per_sample", gen, 2, 2, 1, 6, 6, 4, 4, "prefix", prefix_lengths=[2, 4],
              lengths=[6, 5])
    attn_case(t, "bias_heads", gen, 2, 4, 2, 5, 5, 8, 8, "causal", bias_shape=(4, 5, 5),
              lengths=[5, 4])
    attn_case(t, "bias_shared", gen, 2, 2, 2, 5, 5, 4, 4, "bidirectional", bias_shape=(1, 5, 5))
    attn_case(t, "bias_batch", gen, 2, 2, 1, 4, 4, 4, 4, "chunk", chunk=2, left=0,
              bias_shape=(2, 1, 4, 4))
    attn_case(t, "dk_ne_dv", gen, 1, 2, 2, 5, 5, 8, 4, "bidirectional", scale=0.5)
    # packed samples (ids as runs; the id 0 reappears as a new run in sample 0)
    attn_case(t, "segments_causal", gen, 2, 2, 1, 8, 8, 4, 4, "causal",
              segments=[[0, 0, 0, 1, 1, 2, 0, 0], [5, 5, 5, 5, 5, 6, 6, 6]], lengths=[8, 7])
    attn_case(t, "segments_bidir", gen, 1, 2, 2, 7, 7, 4, 4, "bidirectional",
              segments=[[0, 0, 1, 1, 1, 2, 2]])
    # long enough to span several 64-wide tiles in both directions
    attn_case(t, "tiles", gen, 1, 2, 1, 150, 150, 4, 4, "causal", lengths=[137])
    write_fixture(os.path.join(OUT, "attn.txt"), t,
                  "attention vs the plain formula; generated by tests/reference/"
                  "gen_attn_loss_fixtures.py")


def rope_hf(x, pos, theta):
    """HF Qwen2's rotary embedding on x [B, T, H, D]: angles pos * inv_freq formed in f32."""
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    ang = pos.float()[..., None] * inv  # [.., T, D/2] in f32, as HF forms it
    emb = torch.cat([ang, ang], dim=-1)
    cos, sin = emb.cos().double(), emb.sin().double()
    if cos.dim() == 2:
        cos, sin = cos[None], sin[None]
    cos, sin = cos[:, :, None], sin[:, :, None]
    h = d // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], dim=-1)
    return x * cos + rot * sin


def qkv_case(tensors, name, gen, B, T, H, Hkv, D, kind, theta, pos, lengths=None, segments=None):
    """vt_attention_qkv: packed [B, T, (H + 2 Hkv) D] -> RoPE on q, k -> attention -> [B, T, H D]."""
    x = torch.randn(B, T, (H + 2 * Hkv) * D, generator=gen, dtype=torch.float64).float().double()
    w = torch.randn(B, T, H * D, generator=gen, dtype=torch.float64).float().double()
    x.requires_grad_(True)
    q = x[..., :H * D].reshape(B, T, H, D)
    k = x[..., H * D:(H + Hkv) * D].reshape(B, T, Hkv, D)
    v = x[..., (H + Hkv) * D:].reshape(B, T, Hkv, D)
    if theta > 0:
        q, k = rope_hf(q, pos, theta), rope_hf(k, pos, theta)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))
    kr = k.repeat_interleave(H // Hkv, dim=1)
    vr = v.repeat_interleave(H // Hkv, dim=1)
    scores = (q @ kr.transpose(-1, -2)) / math.sqrt(D)
    mask = torch.stack([key_mask(kind, b, T, T, lengths=lengths, segments=segments)
                        for b in range(B)])
    scores = scores.masked_fill(~mask[:, None], float("-inf"))
    out = (torch.softmax(scores, dim=-1) @ vr).transpose(1, 2).reshape(B, T, H * D)
    (out * w).sum().backward()
    tensors[f"{name}.qkv"] = x.detach().float()
    tensors[f"{name}.pos"] = pos.to(torch.int32)
    if lengths is not None:
        tensors[f"{name}.lengths"] = torch.tensor(lengths, dtype=torch.int32)
    if segments is not None:
        tensors[f"{name}.segments"] = torch.tensor(segments, dtype=torch.int32)
    tensors[f"{name}.w"] = w.float()
    tensors[f"{name}.out"] = out.detach().float()
    tensors[f"{name}.dqkv"] = x.grad.float()


def gen_fused():
    gen = torch.Generator().manual_seed(11)
    t = {}
    # names and parameters are mirrored in tests/op_table.h
    qkv_case(t, "qkv_causal_gqa", gen, 2, 7, 4, 2, 8, "causal", 10000.0, torch.arange(7))
    # per-sample positions (packed rows restart them), segments and padding, theta 1e6
    pos = torch.tensor([[0, 1, 2, 0, 1, 2, 3, 4], [0, 1, 2, 3, 0, 1, 2, 7]])
    qkv_case(t, "qkv_segments", gen, 2, 8, 2, 1, 4, "causal", 1e6, pos, lengths=[8, 7],
             segments=[[0, 0, 0, 1, 1, 1, 1, 1], [3, 3, 3, 3, 4, 4, 4, 4]])
    # no RoPE (a plain split), bidirectional, H == Hkv
    qkv_case(t, "qkv_plain", gen, 1, 5, 2, 2, 6, "bidirectional", 0.0, torch.arange(5))
    # vt_swiglu: silu(gate) * up of a packed [gate | up] projection, as HF's Qwen2MLP
    x = (torch.randn(2, 3, 2 * 7, generator=gen, dtype=torch.float64) * 3).float().double()
    w = torch.randn(2, 3, 7, generator=gen, dtype=torch.float64).float().double()
    x.requires_grad_(True)
    y = F.silu(x[..., :7]) * x[..., 7:]
    (y * w).sum().backward()
    t["swiglu.in0"], t["swiglu.w"] = x.detach().float(), w.float()
    t["swiglu.out"], t["swiglu.grad0"] = y.detach().float(), x.grad.float()
    write_fixture(os.path.join(OUT, "fused.txt"), t,
                  "fused ops: attention from a packed q/k/v projection with HF RoPE, SwiGLU "
                  "of a packed gate/up projection; generated by "
                  "tests/reference/gen_attn_loss_fixtures.py")


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def gen_loss():
    g = torch.Generator().manual_seed(5)
    t = {}

    # LM cross-entropy from hidden states and the LM head, labels shifted inside
    hidden = leaf(torch.randn(2, 6, 8, generator=g))
    weight = leaf(torch.randn(11, 8, generator=g) * 0.5)
    labels = torch.tensor([[-100, -100, 3, 7, 10, 0], [5, -100, -100, 2, 2, 9]])
    for red in ("mean", "sum"):
        hidden.grad = weight.grad = None
        logits = hidden @ weight.T
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1),
                               ignore_index=-100, reduction=red)
        loss.backward()
        t[f"lm_{red}.loss"] = loss.detach().reshape(1)
        t[f"lm_{red}.dhidden"] = hidden.grad.clone()
        t[f"lm_{red}.dweight"] = weight.grad.clone()
    t["lm.hidden"], t["lm.weight"], t["lm.labels"] = hidden, weight, labels

    # class-weighted cross-entropy (the modality head: 3 classes, weights [1, 5, 1])
    logits = leaf(torch.randn(7, 3, generator=g))
    target = torch.tensor([0, 1, 2, -100, 1, 0, 2])
    w = torch.tensor([1.0, 5.0, 1.0])
    for red in ("mean", "sum"):
        logits.grad = None
        loss = F.cross_entropy(logits, target, weight=w, ignore_index=-100, reduction=red)
        loss.backward()
        t[f"wce_{red}.loss"] = loss.detach().reshape(1)
        t[f"wce_{red}.dlogits"] = logits.grad.clone()
    t["wce.logits"], t["wce.target"], t["wce.weight"] = logits, target, w

    # speech-token cross-entropy: 1028 classes, PAD 1027 ignored, summed
    logits = leaf(torch.randn(4, 1028, generator=g))
    target = torch.tensor([17, 1027, 1026, 1025])
    loss = F.cross_entropy(logits, target, ignore_index=1027, reduction="sum")
    loss.backward()
    t["speech.logits"], t["speech.target"] = logits, target
    t["speech.loss"], t["speech.dlogits"] = loss.detach().reshape(1), logits.grad

    # CTC: logits -> log_softmax -> ctc_loss; gradients w.r.t. the logits (see ops_loss.h)
    def ctc(name, logits, targets, il, tl, blank, red, zero_inf):
        x = leaf(logits)
        lp = F.log_softmax(x, dim=-1)
        loss = F.ctc_loss(lp.transpose(0, 1), targets, torch.tensor(il), torch.tensor(tl),
                          blank=blank, reduction=red, zero_infinity=zero_inf)
        loss.backward()
        t[f"{name}.logits"] = x
        t[f"{name}.targets"] = targets
        t[f"{name}.il"] = torch.tensor(il)
        t[f"{name}.tl"] = torch.tensor(tl)
        t[f"{name}.loss"] = loss.detach().reshape(1)
        t[f"{name}.dlogits"] = x.grad

    x = torch.randn(4, 8, 5, generator=g)
    tg = torch.tensor([[1, 2, 2, 0], [3, 1, 4, 2], [2, 2, 0, 0], [4, 0, 0, 0]])
    il, tl = [8, 7, 3, 5], [3, 4, 2, 0]  # sample 2 needs 3 frames for "2 2": just fits
    ctc("ctc_mean", x, tg, il, tl, 0, "mean", False)
    ctc("ctc_sum", x, tg, il, tl, 0, "sum", False)
    tg4 = torch.tensor([[1, 2, 2, 0], [3, 1, 0, 2], [2, 2, 1, 1], [0, 1, 0, 0]])
    ctc("ctc_blank4", x, tg4, [8, 7, 6, 5], [3, 4, 4, 3], 4, "mean", False)
    # sample 1: "1 1 3" needs 4 frames but has 3 -> infinite, zeroed
    tgi = torch.tensor([[1, 2, 3], [1, 1, 3], [4, 4, 0]])
    ctc("ctc_zero_inf", x[:3], tgi, [8, 3, 6], [3, 3, 2], 0, "mean", True)

    # L1, MSE
    a = leaf(torch.randn(3, 4, generator=g))
    b = leaf(torch.randn(3, 4, generator=g))
    t["dist.a"], t["dist.b"] = a, b
    for fn, name in ((F.l1_loss, "l1"), (F.mse_loss, "mse")):
        for red in ("mean", "sum"):
            a.grad = b.grad = None
            loss = fn(a, b, reduction=red)
            loss.backward()
            t[f"{name}_{red}.loss"] = loss.detach().reshape(1)
            t[f"{name}_{red}.da"] = a.grad.clone()
            t[f"{name}_{red}.db"] = b.grad.clone()

    # cosine loss: mean over rows of 1 - cos along the last dim
    a = leaf(torch.randn(2, 3, 6, generator=g))
    b = leaf(torch.randn(2, 3, 6, generator=g))
    loss = (1 - F.cosine_similarity(a, b, dim=-1)).mean()
    loss.backward()
    t["cos.a"], t["cos.b"], t["cos.loss"], t["cos.da"], t["cos.db"] = (
        a, b, loss.detach().reshape(1), a.grad, b.grad)
    # a row with a norm below eps (1e-8): the clamp is not differentiated
    a = leaf(torch.tensor([[1e-9, 2e-9, 0.0], [0.3, -1.0, 2.0]]))
    b = leaf(torch.tensor([[1.0, 0.5, 2.0], [1.0, 1.0, -0.5]]))
    loss = (1 - F.cosine_similarity(a, b, dim=-1)).mean()
    loss.backward()
    t["cos_small.a"], t["cos_small.b"], t["cos_small.loss"] = a, b, loss.detach().reshape(1)
    t["cos_small.da"], t["cos_small.db"] = a.grad, b.grad

    # VQ codebook + commitment loss, beta 0.25
    zq = leaf(torch.randn(3, 5, generator=g))
    x = leaf(torch.randn(3, 5, generator=g))
    loss = F.mse_loss(zq, x.detach()) + 0.25 * F.mse_loss(zq.detach(), x)
    loss.backward()
    t["vq.zq"], t["vq.x"], t["vq.loss"], t["vq.dzq"], t["vq.dx"] = (
        zq, x, loss.detach().reshape(1), zq.grad, x.grad)

    write_fixture(os.path.join(OUT, "loss.txt"), t,
                  "losses and their gradients from PyTorch; generated by tests/reference/"
                  "gen_attn_loss_fixtures.py")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    gen_attn()
    gen_fused()
    gen_loss()
