"""Reference outputs and gradients of a small audio encoder, CTC head and audio adapter for
tests/test_audio_enc.c, written here in PyTorch from the public semantics (DESIGN.md §4: VITA's
WeNet-style encoder with the relative-position attention, and CNNSubsampling), in float64.

Cases (parameters from torch's seeded init, names as the release spells them):
  enc_full   - full attention, two clips of 23 and 15 fbank frames: out and the gradients of
               sum(out * w) for the input and every parameter
  enc_chunk  - the same with a static chunk mask (chunk 2, 1 left chunk)
  enc_ctc    - full attention, CTC loss (blank 0, mean reduction) of the CTC head's log-softmax
  adapter    - the adapter with 3 prompt embeddings on encoder-like input with lengths 5 and 3
Run: python3 tests/reference/gen_audio_enc_fixtures.py
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                   "audio", "audio_enc.txt")
N_MELS, HID, HEADS, FFN_DIM, LAYERS, VOCAB = 20, 16, 2, 24, 2, 7
P = "model.audio_encoder.encoder"


def sinusoids(t, d):
    pe = torch.zeros(t, d)
    pos = torch.arange(t, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


class RelPosAttention(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h, self.dk = h, d // h
        self.linear_q, self.linear_k = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_v, self.linear_out = nn.Linear(d, d), nn.Linear(d, d)
        self.linear_pos = nn.Linear(d, d, bias=False)
        self.pos_bias_u = nn.Parameter(torch.empty(h, self.dk))
        self.pos_bias_v = nn.Parameter(torch.empty(h, self.dk))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, x, pe, mask):
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.dk)
        k = self.linear_k(x).view(b, t, self.h, self.dk).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.dk).transpose(1, 2)
        p = self.linear_pos(pe).view(1, t, self.h, self.dk).transpose(1, 2)
        ac = (q + self.pos_bias_u).transpose(1, 2) @ k.transpose(-2, -1)
        bd = (q + self.pos_bias_v).transpose(1, 2) @ p.transpose(-2, -1)  # no rel-shift
        scores = (ac + bd) / math.sqrt(self.dk)
        m = ~mask[:, None]  # [B, 1, T, T]
        scores = scores.masked_fill(m, torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=-1).masked_fill(m, 0.0)
        o = (attn @ v).transpose(1, 2).reshape(b, t, -1)
        return self.linear_out(o)


class FFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(d, f), nn.Linear(f, d)

    def forward(self, x):
        return self.w_2(torch.relu(self.w_1(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = RelPosAttention(HID, HEADS)
        self.feed_forward = FFN(HID, FFN_DIM)
        self.norm1, self.norm2 = nn.LayerNorm(HID, eps=1e-5), nn.LayerNorm(HID, eps=1e-5)

    def forward(self, x, pe, mask):
        x = x + self.self_attn(self.norm1(x), pe, mask)
        return x + self.feed_forward(self.norm2(x))


class Encoder(nn.Module):
    """Names as the release: global_cmvn, enc.0.core.{conv.0, conv.2, out.0},
    enc.1.{embed.0, embed.1, encoders.N, after_norm}; plus our CTC head ctc.ctc_lo."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, HID, 3, 2), nn.ReLU(), nn.Conv2d(HID, HID, 3, 2),
                                  nn.ReLU())
        fo = ((N_MELS - 1) // 2 - 1) // 2
        self.out = nn.Linear(HID * fo, HID)
        self.embed = nn.Sequential(nn.Linear(HID, HID), nn.LayerNorm(HID, eps=1e-5))
        self.encoders = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.after_norm = nn.LayerNorm(HID, eps=1e-5)
        self.ctc_lo = nn.Linear(HID, VOCAB)
        self.register_buffer("mean", torch.randn(N_MELS))
        self.register_buffer("istd", 0.5 + torch.rand(N_MELS))

    def params(self):
        m = {f"{P}.global_cmvn.mean": self.mean, f"{P}.global_cmvn.istd": self.istd}
        for i in (0, 2):
            m[f"{P}.enc.0.core.conv.{i}.weight"] = self.conv[i].weight
            m[f"{P}.enc.0.core.conv.{i}.bias"] = self.conv[i].bias
        m[f"{P}.enc.0.core.out.0.weight"], m[f"{P}.enc.0.core.out.0.bias"] = self.out.weight, self.out.bias
        for i in (0, 1):
            m[f"{P}.enc.1.embed.{i}.weight"] = self.embed[i].weight
            m[f"{P}.enc.1.embed.{i}.bias"] = self.embed[i].bias
        for n, blk in enumerate(self.encoders):
            for name, t in blk.named_parameters():
                m[f"{P}.enc.1.encoders.{n}.{name}"] = t
        m[f"{P}.enc.1.after_norm.weight"] = self.after_norm.weight
        m[f"{P}.enc.1.after_norm.bias"] = self.after_norm.bias
        m["model.audio_encoder.ctc.ctc_lo.weight"] = self.ctc_lo.weight
        m["model.audio_encoder.ctc.ctc_lo.bias"] = self.ctc_lo.bias
        return m

    def forward(self, x, lengths, chunk=0, left=-1):
        b, t, _ = x.shape
        valid = torch.arange(t)[None] < lengths[:, None]  # [B, T]
        x = (x - self.mean) * self.istd
        x = x * valid[..., None]  # CMVN per clip, padding back to 0
        x = self.conv(x[:, None])
        b, c, t2, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t2, c * f))
        mask = valid[:, None, :]
        mask = mask[:, :, 2::2][:, :, 2::2]  # the public subsampling of the mask
        out_len = mask.squeeze(1).sum(1)
        x = torch.relu(self.embed(x)) * math.sqrt(HID)
        pe = sinusoids(t2, HID).to(x.dtype)
        full = mask.expand(b, t2, t2)
        if chunk > 0:
            i = torch.arange(t2)
            start = torch.clamp((i // chunk - left) * chunk, min=0) if left >= 0 else torch.zeros_like(i)
            end = (i // chunk + 1) * chunk
            cm = (i[None] >= start[:, None]) & (i[None] < end[:, None])
            full = full & cm[None]
        for blk in self.encoders:
            x = blk(x, pe, full)
        return self.after_norm(x), out_len


class Adapter(nn.Module):
    def __init__(self, enc, llm, n_prompt):
        super().__init__()
        self.conv1d2 = nn.Conv1d(enc, 2 * enc, 5, 2, 0)
        self.bn2 = nn.LayerNorm(2 * enc, eps=1e-3)
        self.project = nn.Linear(2 * enc, llm)
        self.prompt_embeddings = nn.Embedding(n_prompt, llm)

    def forward(self, h, lengths):
        valid = torch.arange(h.shape[1])[None] < lengths[:, None]
        x = (h * valid[..., None]).transpose(1, 2)
        x = F.pad(x, (0, 4))
        x = self.conv1d2(x).transpose(1, 2)
        x = self.project(F.gelu(self.bn2(x)))
        p = self.prompt_embeddings(torch.arange(self.prompt_embeddings.num_embeddings))
        return torch.cat([p[None].expand(h.shape[0], -1, -1), x], 1), valid[:, 0::2].sum(1)


def grads(prefix, out, named, x, w, tensors, loss=None):
    for t in list(named.values()) + [x]:
        t.grad = None
    loss = (out * w).sum() if loss is None else loss
    loss.backward()
    tensors[f"{prefix}.grad.x"] = x.grad
    for name, t in named.items():
        if t.requires_grad:  # a parameter the loss does not reach has a zero gradient
            tensors[f"{prefix}.grad.{name}"] = torch.zeros_like(t) if t.grad is None else t.grad


def main():
    torch.manual_seed(11)
    enc = Encoder().double()
    named = enc.params()
    tensors = {}
    for k, v in named.items():
        tensors[f"enc.{k}"] = v
    lengths = torch.tensor([23, 15])
    x0 = torch.randn(2, 23, N_MELS, dtype=torch.float64) * 3 + 1
    x0[1, 15:] = 0.0  # padding as a batch holds it
    tensors["enc.x"] = x0
    tensors["enc.lengths"] = lengths.int()
    for case, chunk, left in (("enc_full", 0, -1), ("enc_chunk", 2, 1)):
        x = x0.clone().requires_grad_(True)
        out, ol = enc(x, lengths, chunk, left)
        w = torch.randn_like(out)
        tensors[f"{case}.out"] = out
        tensors[f"{case}.w"] = w
        tensors[f"{case}.out_lengths"] = ol.int()
        grads(case, out, named, x, w, tensors)
    x = x0.clone().requires_grad_(True)
    out, ol = enc(x, lengths)
    logp = torch.log_softmax(enc.ctc_lo(out), -1)
    targets = torch.tensor([[1, 3, 3, 2], [4, 6, 0, 0]])
    tlen = torch.tensor([4, 2])
    loss = F.ctc_loss(logp.transpose(0, 1), targets, ol, tlen, blank=0, reduction="mean")
    tensors["enc_ctc.targets"] = targets.int()
    tensors["enc_ctc.target_lengths"] = tlen.int()
    tensors["enc_ctc.log_probs"] = logp
    tensors["enc_ctc.loss"] = loss.reshape(1)
    grads("enc_ctc", out, named, x, None, tensors, loss)

    ad = Adapter(HID, 12, 3).double()
    an = {f"model.audio_encoder.adpter.{k}": v for k, v in ad.named_parameters() if "prompt" not in k}
    an["model.audio_encoder.prompt_embeddings.weight"] = ad.prompt_embeddings.weight
    for k, v in an.items():
        tensors[f"adapter.{k}"] = v
    h = torch.randn(2, 5, HID, dtype=torch.float64, requires_grad=True)
    al = torch.tensor([5, 3])
    out, ol = ad(h, al)
    w = torch.randn_like(out)
    tensors["adapter.x"] = h
    tensors["adapter.lengths"] = al.int()
    tensors["adapter.out"] = out
    tensors["adapter.w"] = w
    tensors["adapter.out_lengths"] = (ol + 3).int()
    grads("adapter", out, an, h, w, tensors)
    write_fixture(OUT, tensors, "audio encoder / CTC / adapter references; gen_audio_enc_fixtures.py")


if __name__ == "__main__":
    main()
