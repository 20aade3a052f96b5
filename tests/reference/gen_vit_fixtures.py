#!/usr/bin/env python3
"""Reference for model/vit.c: a small InternViT-shaped tower and VITA's mlp2x_gelu adapter,
written here in PyTorch from the public modelling semantics (InternVL's modeling_intern_vit.py:
InternVisionEmbeddings with its bicubic position resize, InternAttention with a fused qkv,
InternVisionEncoderLayer with ls1/ls2; VITA's InternViTVisionTower: CLS dropped, times 0.5,
pixel_shuffle(0.5); mm_projector = Linear, GELU, Linear). Random weights are saved under the HF
InternViT names (and mm_projector.{0,2}). Writes tests/fixtures/vit_tiny/{config.json,
model.safetensors, reference.safetensors}: for tiles at the table's grid (4 x 4) and at a
larger one (6 x 6, positions resized), the last hidden state, the adapter output, and the
gradient of sum(out * w) for every parameter (the resized grid: the position table's). Run: python3 tests/reference/gen_vit_fixtures.py
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "vit_tiny")
CFG = dict(image_size=56, patch_size=14, hidden_size=32, intermediate_size=64,
           num_hidden_layers=2, num_attention_heads=2, layer_norm_eps=1e-6, llm_hidden=24)


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, p = c["hidden_size"], c["patch_size"]
        self.g = c["image_size"] // p
        self.class_embedding = nn.Parameter(torch.randn(1, 1, d))
        self.patch_embedding = nn.Conv2d(3, d, kernel_size=p, stride=p)
        self.position_embedding = nn.Parameter(torch.randn(1, 1 + self.g * self.g, d))

    def _get_pos_embed(self, pos_embed, h, w):
        pos_embed = pos_embed.float().reshape(1, self.g, self.g, -1).permute(0, 3, 1, 2)
        pos_embed = F.interpolate(pos_embed, size=(h, w), mode="bicubic", align_corners=False)
        return pos_embed.reshape(1, -1, h * w).permute(0, 2, 1)

    def forward(self, pixel_values):
        patch = self.patch_embedding(pixel_values)
        b, _, h, w = patch.shape
        patch = patch.flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(b, 1, -1), patch], dim=1)
        pos = torch.cat([self.position_embedding[:, :1, :],
                         self._get_pos_embed(self.position_embedding[:, 1:, :], h, w)], dim=1)
        return x + pos


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.hd = d // self.heads
        self.scale = self.hd ** -0.5
        self.qkv = nn.Linear(d, 3 * d, bias=True)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.attn = Attention(c)
        self.mlp = Mlp(c)
        self.norm1 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.norm2 = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.ls1 = nn.Parameter(0.1 * torch.ones(d))
        self.ls2 = nn.Parameter(0.1 * torch.ones(d))

    def forward(self, x):
        x = x + self.attn(self.norm1(x)) * self.ls1
        return x + self.mlp(self.norm2(x)) * self.ls2


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Tower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)

    def forward(self, pixel_values):
        return self.encoder(self.embeddings(pixel_values))


def pixel_shuffle(x, scale_factor=0.5):
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor), int(c / (scale_factor * scale_factor)))
    return x.permute(0, 2, 1, 3).contiguous()


def features(hidden):
    f = hidden[:, 1:]
    h = w = int(f.shape[1] ** 0.5)
    f = f.reshape(f.shape[0], h, w, -1)
    f = pixel_shuffle(f * 0.5)
    return f.reshape(f.shape[0], -1, f.shape[-1])


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    tower = Tower(CFG)
    d4 = 4 * CFG["hidden_size"]
    proj = nn.Sequential(nn.Linear(d4, CFG["llm_hidden"]), nn.GELU(),
                         nn.Linear(CFG["llm_hidden"], CFG["llm_hidden"]))
    with torch.no_grad():  # every parameter away from its default, so each one matters
        for name, p in tower.named_parameters():
            if name.endswith(("ls1", "ls2")) or "norm" in name:
                p.add_(0.3 * torch.randn_like(p))
    params = {k: v for k, v in tower.named_parameters()}
    params.update({f"mm_projector.{k}": v for k, v in proj.named_parameters()})
    save_file({k: v.detach().contiguous() for k, v in params.items()},
              os.path.join(OUT, "model.safetensors"))
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    ref = {}
    for tag, n, side in (("native", 2, 56), ("resized", 1, 84)):
        px = torch.randn(n, 3, side, side)
        for p in params.values():
            p.grad = None
        hidden = tower(px)
        out = proj(features(hidden))
        w = torch.randn_like(out)
        (out * w).sum().backward()
        ref[f"{tag}.pixel_values"] = px
        ref[f"{tag}.w"] = w
        ref[f"{tag}.vision_hidden"] = hidden.detach()
        ref[f"{tag}.vision_tokens"] = out.detach()
        for k, p in params.items():  # the resized grid: the position table's gradient only
            if tag == "native" or k == "embeddings.position_embedding":
                ref[f"{tag}.grad.{k}"] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in ref.items()},
              os.path.join(OUT, "reference.safetensors"), metadata={"torch": torch.__version__})


if __name__ == "__main__":
    main()
