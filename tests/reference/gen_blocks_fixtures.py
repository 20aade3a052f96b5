"""Reference values for the model/ building blocks (model/nn_*.c): each case is a block with
random parameters named as the C block registers them, an input, its output, and the
gradients of sum(out * w) for a fixed random w with respect to the input and every parameter.
Computed in float64 from f32 values with torch's own modules and functions (nn.Linear,
LayerNorm, GELU, conv, weight_norm, ...) and the published formulas where torch has no module
(HF's RMSNorm and rotate_half RoPE, WeNet's relative-position attention and chunk mask, timm's
layer scale). Writes tests/fixtures/blocks/blocks.txt.
Run: python3 tests/reference/gen_blocks_fixtures.py"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

torch.manual_seed(0)
out = {}


def rnd(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float().double()


class Case:
    def __init__(self, name):
        self.name, self.params = name, {}

    def p(self, pname, *shape, scale=0.3, value=None):
        t = rnd(*shape, scale=scale) if value is None else value.double()
        t = t.float().double().requires_grad_(True)  # exactly representable in f32
        self.params[pname] = t
        return t

    def finish(self, inputs, y):
        """inputs: dict name -> tensor (float ones require grad)."""
        w = rnd(*y.shape)
        (y * w).sum().backward()
        c = self.name
        for k, v in inputs.items():
            out[f"{c}.{k}"] = v.detach().float() if v.is_floating_point() else v.int()
        for k, v in self.params.items():
            out[f"{c}.{k}"] = v.detach().float()
        out[f"{c}.w"] = w.float()
        out[f"{c}.out"] = y.detach().float()
        for k, v in inputs.items():
            if v.is_floating_point() and v.requires_grad:
                out[f"{c}.grad.{k}"] = v.grad.float()
        for k, v in self.params.items():
            out[f"{c}.grad.{k}"] = v.grad.float()


def x_in(*shape):
    return rnd(*shape).requires_grad_(True)


# ---- formulas torch has no module for ----
def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, pos, theta):  # x [B, H, T, D], HF rotate_half
    d = x.shape[-1]
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    f = pos.double()[:, None] * inv[None, :]
    emb = torch.cat([f, f], -1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def visible(mask, T, B, lengths=None, chunk=0, left=0, prefix=0, prefix_lengths=None, segments=None):
    """[B, 1, T, T] bool: may query i see key j."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    m = torch.ones(B, T, T, dtype=torch.bool)
    for b in range(B):
        if mask == "causal":
            mb = j <= i
        elif mask == "chunk":
            lo = ((i // chunk - left) * chunk).clamp(min=0) if left >= 0 else torch.zeros_like(i)
            mb = (j >= lo) & (j < (i // chunk + 1) * chunk)
        elif mask == "prefix":
            P = int(prefix_lengths[b]) if prefix_lengths is not None else prefix
            mb = torch.where(i < P, j < P, j <= i)
        else:
            mb = torch.ones(T, T, dtype=torch.bool)
        if lengths is not None:
            mb = mb & (j < int(lengths[b]))
        if segments is not None:
            s = segments[b]
            mb = mb & (s[:, None] == s[None, :])
        m[b] = mb
    return m[:, None]


def sdpa(q, k, v, vis, scale, bias=None):
    """q [B,H,T,D]; k, v [B,Hkv,T,D]; masked scores -> softmax -> masked rows zero."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, 1)
    v = v.repeat_interleave(rep, 1)
    s = q @ k.transpose(-1, -2) * scale
    if bias is not None:
        s = s + bias
    s = s.masked_fill(~vis, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v


def lin(c, x, name, i, o, bias=True):
    W = c.p(f"{name}.weight", o, i, scale=1 / math.sqrt(i))
    b = c.p(f"{name}.bias", o, scale=0.1) if bias else None
    return F.linear(x, W, b)


def norm(c, x, name, kind, eps, bias=True):
    d = x.shape[-1]
    w = c.p(f"{name}.weight", d, value=1 + 0.1 * torch.randn(d))
    if kind == "rms":
        return rms_norm(x, w, eps)
    b = c.p(f"{name}.bias", d, scale=0.1) if bias else None
    return F.layer_norm(x, (d,), w, b, eps)


def attention(c, x, pre, H, Hkv, theta=0.0, fused=False, rel=False, qkv_bias=True, o_bias=False,
              names=None, vis=None, pos=None, pos_emb=None, bias=None):
    B, T, D = x.shape
    hd = D // H
    n = names
    if fused:
        y = lin(c, x, pre + n["qkv"], D, (H + 2 * Hkv) * hd, qkv_bias)
        q, k, v = y.split([H * hd, Hkv * hd, Hkv * hd], -1)
    else:
        # registration order in C: q, k, v weights then biases; names are what matter here
        q = lin(c, x, pre + n["q"], D, H * hd, qkv_bias)
        k = lin(c, x, pre + n["k"], D, Hkv * hd, qkv_bias)
        v = lin(c, x, pre + n["v"], D, Hkv * hd, qkv_bias)
    q = q.view(B, T, H, hd)
    k = k.view(B, T, Hkv, hd).transpose(1, 2)
    v = v.view(B, T, Hkv, hd).transpose(1, 2)
    scale = 1 / math.sqrt(hd)
    if rel:  # WeNet RelPositionMultiHeadedAttention without rel-shift
        u = c.p(pre + n["pos_bias_u"], H, hd, scale=0.2)
        vv = c.p(pre + n["pos_bias_v"], H, hd, scale=0.2)
        p = lin(c, pos_emb, pre + n["pos"], D, D, False).view(1, T, H, hd).transpose(1, 2)
        qu = (q + u).transpose(1, 2)
        qv = (q + vv).transpose(1, 2)
        s = (qu @ k.transpose(-1, -2) + qv @ p.transpose(-1, -2)) * scale
        s = s.masked_fill(~vis, float("-inf"))
        a = torch.softmax(s, -1).nan_to_num(0.0) @ v
    else:
        q = q.transpose(1, 2)
        if theta:
            q, k = rope(q, pos, theta), rope(k, pos, theta)
        a = sdpa(q, k, v, vis, scale, bias)
    a = a.transpose(1, 2).reshape(B, T, H * hd)
    return lin(c, a, pre + n["o"], H * hd, D, o_bias)


LLAMA = dict(q="self_attn.q_proj", k="self_attn.k_proj", v="self_attn.v_proj", o="self_attn.o_proj")
VIT = dict(qkv="attn.qkv", o="attn.proj")
WENET = dict(q="self_attn.linear_q", k="self_attn.linear_k", v="self_attn.linear_v",
             o="self_attn.linear_out", pos="self_attn.linear_pos",
             pos_bias_u="self_attn.pos_bias_u", pos_bias_v="self_attn.pos_bias_v")


def sinusoid(T, d):  # WeNet's table, in f32 as WeNet computes it
    pos = torch.arange(0, T, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe = torch.zeros(T, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)
    return pe


# ---- linear, embedding, norms ----
c = Case("linear")
x = x_in(2, 3, 6)
c.finish({"x": x}, lin(c, x, "proj", 6, 5))

c = Case("embedding")
ids = torch.tensor([[1, 4, 9], [0, 4, 7]])
W = c.p("tok.weight", 10, 4, scale=1.0)
c.finish({"ids": ids}, F.embedding(ids, W))

c = Case("layer_norm")
x = x_in(3, 8)
c.finish({"x": x}, norm(c, x, "ln", "layer", 1e-5))

c = Case("rms_norm")
x = x_in(3, 8)
c.finish({"x": x}, norm(c, x, "rms", "rms", 1e-6))

# ---- MLPs ----
c = Case("mlp_swiglu")
x = x_in(2, 3, 8)
g = lin(c, x, "mlp.gate_proj", 8, 12, False)
u = lin(c, x, "mlp.up_proj", 8, 12, False)
c.finish({"x": x}, lin(c, F.silu(g) * u, "mlp.down_proj", 12, 8, False))

c = Case("mlp_gelu")
x = x_in(2, 3, 8)
c.finish({"x": x}, lin(c, F.gelu(lin(c, x, "mlp.fc1", 8, 12)), "mlp.fc2", 12, 8))

c = Case("mlp_gelu_tanh")
x = x_in(2, 3, 8)
c.finish({"x": x}, lin(c, F.gelu(lin(c, x, "fc1", 8, 12), approximate="tanh"), "fc2", 12, 8))

c = Case("mlp_relu")
x = x_in(2, 3, 8)
c.finish({"x": x}, lin(c, F.relu(lin(c, x, "feed_forward.w_1", 8, 12)), "feed_forward.w_2", 12, 8))

# ---- attention ----
B, T = 2, 5
lengths = torch.tensor([5, 3])
pos = torch.arange(T)

c = Case("attn_gqa_rope")  # Qwen2 style: GQA, RoPE, qkv bias, causal, padding
x = x_in(B, T, 16)
c.finish({"x": x, "lengths": lengths},
         attention(c, x, "", 4, 2, theta=10000.0, names=LLAMA, pos=pos,
                   vis=visible("causal", T, B, lengths)))

c = Case("attn_fused")  # InternViT: fused qkv, proj bias, bidirectional
x = x_in(B, T, 16)
c.finish({"x": x}, attention(c, x, "", 2, 2, fused=True, o_bias=True, names=VIT,
                             vis=visible("bidir", T, B)))

c = Case("attn_relpos")  # WeNet: relative position term, chunk mask, padding
T6 = 6
x = x_in(B, T6, 8)
pe = sinusoid(T6, 8).double()
lens6 = torch.tensor([6, 4])
c.finish({"x": x, "lengths": lens6, "pos_emb": pe},
         attention(c, x, "", 2, 2, rel=True, o_bias=True, names=WENET, pos_emb=pe,
                   vis=visible("chunk", T6, B, lens6, chunk=2, left=1)))

c = Case("attn_prefix")  # the AR speech decoder: per-sample bidirectional prefix + padding
x = x_in(B, T, 16)
pl = torch.tensor([2, 3])
c.finish({"x": x, "lengths": torch.tensor([5, 4]), "prefix_lengths": pl},
         attention(c, x, "", 4, 4, theta=10000.0, qkv_bias=False, names=LLAMA, pos=pos,
                   vis=visible("prefix", T, B, torch.tensor([5, 4]), prefix_lengths=pl)))

c = Case("attn_segments_bias")  # packed samples (causal within segments) and an additive bias
x = x_in(B, T, 16)
segs = torch.tensor([[0, 0, 1, 1, 1], [3, 3, 3, 5, 5]])
bias = rnd(4, T, T, scale=0.5).requires_grad_(True)
pos2 = torch.tensor([[0, 1, 0, 1, 2], [0, 1, 2, 0, 1]])
def attn_b(c, x):
    Bq, Tq, D = x.shape
    H, Hkv, hd = 4, 2, 4
    q = lin(c, x, LLAMA["q"], D, H * hd).view(Bq, Tq, H, hd).transpose(1, 2)
    k = lin(c, x, LLAMA["k"], D, Hkv * hd).view(Bq, Tq, Hkv, hd).transpose(1, 2)
    v = lin(c, x, LLAMA["v"], D, Hkv * hd).view(Bq, Tq, Hkv, hd).transpose(1, 2)
    q = torch.stack([rope(q[b], pos2[b], 10000.0) for b in range(Bq)])
    k = torch.stack([rope(k[b], pos2[b], 10000.0) for b in range(Bq)])
    a = sdpa(q, k, v, visible("causal", Tq, Bq, segments=segs), 1 / math.sqrt(hd), bias)
    return lin(c, a.transpose(1, 2).reshape(Bq, Tq, H * hd), LLAMA["o"], H * hd, D, False)
c.finish({"x": x, "segments": segs, "pos": pos2, "bias": bias}, attn_b(c, x))


# ---- pre-norm layers ----
def mlp_swiglu(c, x, pre, D, F_):
    g = lin(c, x, pre + "mlp.gate_proj", D, F_, False)
    u = lin(c, x, pre + "mlp.up_proj", D, F_, False)
    return lin(c, F.silu(g) * u, pre + "mlp.down_proj", F_, D, False)


c = Case("layer_llama")  # the speech decoder's LLaMA layer: no biases, RoPE 1e4, causal
x = x_in(B, T, 16)
P = "layers.0."
h = x + attention(c, norm(c, x, P + "input_layernorm", "rms", 1e-6), P, 4, 4, theta=10000.0,
                  qkv_bias=False, names=LLAMA, pos=pos, vis=visible("causal", T, B))
y = h + mlp_swiglu(c, norm(c, h, P + "post_attention_layernorm", "rms", 1e-6), P, 16, 24)
c.finish({"x": x}, y)

c = Case("layer_vit")  # InternViT: LayerNorm 1e-6, fused qkv, GELU, ls1/ls2, bidirectional
x = x_in(B, T, 16)
P = "encoder.layers.0."
a = attention(c, norm(c, x, P + "norm1", "layer", 1e-6), P, 2, 2, fused=True, o_bias=True,
              names=VIT, vis=visible("bidir", T, B))
ls1 = c.p(P + "ls1", 16, scale=0.5)
h = x + a * ls1
m = lin(c, F.gelu(lin(c, norm(c, h, P + "norm2", "layer", 1e-6), P + "mlp.fc1", 16, 32)),
        P + "mlp.fc2", 32, 16)
ls2 = c.p(P + "ls2", 16, scale=0.5)
c.finish({"x": x}, h + m * ls2)

c = Case("layer_wenet")  # audio encoder layer: LayerNorm 1e-5, rel-pos attention, ReLU FFN
x = x_in(B, T6, 8)
P = "encoders.0."
a = attention(c, norm(c, x, P + "norm1", "layer", 1e-5), P, 2, 2, rel=True, o_bias=True,
              names=WENET, pos_emb=pe, vis=visible("chunk", T6, B, lens6, chunk=2, left=1))
h = x + a
m = lin(c, F.relu(lin(c, norm(c, h, P + "norm2", "layer", 1e-5), P + "feed_forward.w_1", 8, 16)),
        P + "feed_forward.w_2", 16, 8)
c.finish({"x": x, "lengths": lens6, "pos_emb": pe}, h + m)


# ---- conv blocks ----
def conv_w(c, name, shape, wn, dim0):
    if wn:  # torch weight_norm(dim=0): w = g v / |v| over all dims but 0
        v = c.p(name + ".weight_v", *shape, scale=0.4)
        g = c.p(name + ".weight_g", shape[0], *([1] * (len(shape) - 1)),
                value=1 + 0.2 * torch.randn(shape[0], *([1] * (len(shape) - 1))))
        return torch._weight_norm(v, g, 0)
    return c.p(name + ".weight", *shape, scale=0.4)


c = Case("conv_adapter")  # the audio adapter: right pad 4, conv1d k5 s2, LayerNorm(C), GELU
x = x_in(2, 8, 9)
Wc = conv_w(c, "conv1d2", (6, 8, 5), False, 0)
bc = c.p("conv1d2.bias", 6, scale=0.1)
y = F.conv1d(F.pad(x, (0, 4)), Wc, bc, stride=2)
y = norm(c, y.transpose(1, 2), "bn2", "layer", 1e-3).transpose(1, 2)
c.finish({"x": x}, F.gelu(y))

c = Case("conv2d_relu")  # the audio subsampling's Conv2d(3x3, stride 2) + ReLU
x = x_in(2, 2, 7, 9)
Wc = conv_w(c, "conv.0", (3, 2, 3, 3), False, 0)
bc = c.p("conv.0.bias", 3, scale=0.1)
c.finish({"x": x}, F.relu(F.conv2d(x, Wc, bc, stride=2)))

c = Case("conv_gn")  # conv1d + GroupNorm + LeakyReLU (codec encoder style)
x = x_in(2, 4, 7)
Wc = conv_w(c, "conv", (6, 4, 3), False, 0)
bc = c.p("conv.bias", 6, scale=0.1)
y = F.conv1d(x, Wc, bc, padding=1)
gw = c.p("gn.weight", 6, value=1 + 0.1 * torch.randn(6))
gb = c.p("gn.bias", 6, scale=0.1)
c.finish({"x": x}, F.leaky_relu(F.group_norm(y, 2, gw, gb, 1e-6), 0.01))

c = Case("conv_t_wn")  # HiFi-GAN upsampling: LeakyReLU(0.1) then weight-normed ConvTranspose1d
x = x_in(2, 4, 5)
Wc = conv_w(c, "ups.0", (4, 3, 4), True, 0)
bc = c.p("ups.0.bias", 3, scale=0.1)
c.finish({"x": x}, F.conv_transpose1d(F.leaky_relu(x, 0.1), Wc, bc, stride=2, padding=1))

c = Case("resblock")  # HiFi-GAN ResBlock1, kernel 3, dilations 1 3 5, weight norm
x = x_in(2, 4, 11)
y = x
for i, d in enumerate([1, 3, 5]):
    W1 = conv_w(c, f"convs1.{i}", (4, 4, 3), True, 0)
    b1 = c.p(f"convs1.{i}.bias", 4, scale=0.1)
    W2 = conv_w(c, f"convs2.{i}", (4, 4, 3), True, 0)
    b2 = c.p(f"convs2.{i}.bias", 4, scale=0.1)
    t = F.conv1d(F.leaky_relu(y, 0.1), W1, b1, padding=d, dilation=d)
    t = F.conv1d(F.leaky_relu(t, 0.1), W2, b2, padding=1)
    y = t + y
c.finish({"x": x}, y)

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "fixtures", "blocks", "blocks.txt")
os.makedirs(os.path.dirname(path), exist_ok=True)
write_fixture(path, out, comment=f"model/ building blocks; torch {torch.__version__}; "
              "gen_blocks_fixtures.py")
print("wrote", path, len(out), "tensors")
