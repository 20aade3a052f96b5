"""Reference values for the norm and conv ops (issue 3) from PyTorch: for every case its inputs,
the forward output and the gradients of loss = sum(out * w) for a fixed random w (stored as
NAME.w), for every float input that takes a gradient. Writes tests/fixtures/ops/norm_conv.txt.
Run: python3 tests/reference/gen_norm_conv_fixtures.py (needs torch; CI only reads the output)."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(0)
out = {}


def case(name, fn, *inputs, nograd=(), extra=None):
    """Float inputs get gradients unless their index is in nograd (buffers, indices).
    fn returns the output, or (output, {suffix: tensor}) for further values to check."""
    ins = [x.clone().requires_grad_(x.is_floating_point() and i not in nograd)
           for i, x in enumerate(inputs)]
    for i, x in enumerate(ins):  # before fn: BatchNorm updates its running stats in place
        out[f"{name}.in{i}"] = x.detach().clone()
    res = fn(*ins)
    y, more = res if isinstance(res, tuple) else (res, {})
    w = torch.rand(y.shape) * 2 - 1
    (y * w).sum().backward()
    out[f"{name}.w"] = w
    out[f"{name}.out"] = y.detach()
    for i, x in enumerate(ins):
        if x.requires_grad:
            out[f"{name}.grad{i}"] = x.grad
    for k, v in more.items():
        out[f"{name}.{k}"] = v.detach()


r = torch.randn


def pos_vec(n):
    return torch.rand(n) + 0.5


# ---- norms ----
case("layer_norm", lambda x, w, b: F.layer_norm(x, (8,), w, b, 1e-5), r(2, 3, 8) * 2 + 1, r(8),
     r(8))
case("layer_norm_plain", lambda x: F.layer_norm(x, (16,), None, None, 1e-6), r(3, 16))


def rms_norm(x, w, eps=1e-6):  # transformers' Qwen2RMSNorm / LlamaRMSNorm in f32
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


case("rms_norm", rms_norm, r(2, 3, 8), r(8))
case("group_norm", lambda x, w, b: F.group_norm(x, 3, w, b, 1e-5), r(2, 6, 5) + 0.5, r(6), r(6))
case("group_norm_4d", lambda x: F.group_norm(x, 2, None, None, 1e-5), r(2, 4, 3, 2))


def bn_train(x, w, b, rm, rv):
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    return y, {"running_mean": rm, "running_var": rv}


case("batch_norm_train", bn_train, r(4, 3, 5) * 1.5 + 0.3, r(3), r(3), r(3) * 0.1,
     pos_vec(3), nograd=(3, 4))
case("batch_norm_train_2d", lambda x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5),
     r(6, 4), r(4), r(4))
case("batch_norm_eval",
     lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5),
     r(4, 3), r(3), r(3), r(3) * 0.1, pos_vec(3), nograd=(3, 4))


# ---- RoPE: HF Qwen2 / LLaMA (rotate_half, cos/sin in f32) ----
def rope_ref(x, pos, theta, bthd):
    d = x.shape[-1]
    inv_freq = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    p = pos if pos.dim() == 2 else pos[None].expand(x.shape[0], -1)
    freqs = p[..., None].float() * inv_freq  # [B, T, D/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    cos, sin = (cos[:, :, None], sin[:, :, None]) if bthd else (cos[:, None], sin[:, None])
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


pos_bt = torch.tensor([[0, 1, 2, 7, 9], [3, 4, 10, 11, 12]], dtype=torch.int32)
case("rope_bthd", lambda x, p: rope_ref(x, p, 10000.0, True), r(2, 5, 3, 8), pos_bt)
case("rope_bhtd", lambda x, p: rope_ref(x, p, 1e6, False), r(2, 3, 4, 16),
     torch.tensor([5, 1, 0, 30], dtype=torch.int32))
case("rope_far", lambda x, p: rope_ref(x, p, 1e6, True), r(1, 3, 2, 8),
     torch.tensor([[1000, 20000, 32767]], dtype=torch.int32))

# ---- weight norm (torch.nn.utils.weight_norm, dim=0) ----
case("weight_norm", lambda g, v: torch._weight_norm(v, g, 0), r(4, 1, 1), r(4, 3, 5))


# ---- straight-through VQ ----
def vq_ste(x, cb):
    dist = ((x[..., None, :] - cb) ** 2).sum(-1)
    idx = dist.argmin(-1)
    q = cb[idx]
    return x + (q - x).detach(), {"idx": idx.to(torch.int32)}


case("vq_ste", vq_ste, r(2, 5, 4), r(6, 4), nograd=(1,))

# ---- convolutions ----
case("conv1d", lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2, dilation=2, groups=2),
     r(2, 4, 11), r(6, 2, 3), r(6))
case("conv1d_plain", lambda x, w: F.conv1d(x, w), r(1, 3, 9), r(2, 3, 5))
case("conv1d_pad", lambda x, w, b: F.conv1d(F.pad(x, (0, 4)), w, b, stride=2), r(2, 3, 8),
     r(4, 3, 5), r(4))
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)), r(2, 3, 7, 6),
     r(4, 3, 3, 3), r(4))
case("conv2d_s2", lambda x, w: F.conv2d(x, w, stride=2), r(1, 1, 9, 8), r(3, 1, 3, 3))
case("conv_transpose1d",
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2),
     r(2, 4, 6), r(4, 3, 5), r(3))
case("conv_transpose1d_plain", lambda x, w: F.conv_transpose1d(x, w, stride=2), r(1, 2, 5),
     r(2, 3, 4))


# ---- VITA's InternViT pixel shuffle (vita/model/multimodal_encoder/internvit) ----
def pixel_shuffle(x, scale_factor=0.5):
    n, w, h, c = x.size()
    x = x.view(n, w, int(h * scale_factor), int(c / scale_factor))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.view(n, int(h * scale_factor), int(w * scale_factor),
               int(c / (scale_factor * scale_factor)))
    x = x.permute(0, 2, 1, 3).contiguous()
    return x


case("pixel_shuffle", pixel_shuffle, r(2, 4, 6, 3))

path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "ops", "norm_conv.txt")
write_fixture(path, out, comment="generated by tests/reference/gen_norm_conv_fixtures.py "
              f"(torch {torch.__version__})")
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
