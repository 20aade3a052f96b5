"""Reference values for the TiCodec-style codec (model/codec*.c, model/disc*.c, model/mel.c),
written from the public semantics of TiCodec (y-ren16/TiCodec, academicodec/models/ticodec) and
HiFi-GAN / EnCodec's MS-STFT discriminator, in float64, for a SMALL config of the same shape:

  encoder    conv_pre (weight norm) -> per stage LeakyReLU(0.1), strided conv (weight norm),
             mean of ResBlock1s with GroupNorm(ch / group_ch, eps 1e-6) on the running sum ->
             LeakyReLU(0.01) -> conv_post (no weight norm); the global token encoder (3 bias-free
             convs + LeakyReLU(0.1), time mean, Linear, LeakyReLU(0.1), BatchNorm1d) on the
             output of stage n_stages // 2 - 1, for the segment and (detached) a second segment
  quantizer  nearest neighbour, straight-through; codebook + 0.25 commitment loss, plus the same
             for the global vector split over the global codebooks
  generator  conv_pre, per stage LeakyReLU(0.1), ConvTranspose1d, mean of ResBlock1s, the global
             vector added after the stage whose width equals it; LeakyReLU(0.1), conv_post, tanh
  discriminators  MPD period (weight norm), MSD scale (weight norm, and spectral norm for the
             first scale), MS-STFT scale (EnCodec: first conv plain, the rest weight-normed)
  losses     LSGAN (discriminator, generator), feature matching x 2, 45 x mel L1 at 1024/240 plus
             mel L1 at 512/120 and 256/60 (librosa slaney filterbank, 80 mels, log clamp 1e-5),
             10 x quantizer loss, 5 x consistency loss 1 - cos(g, sg(g2))

Parameters are not stored: element i of parameter NAME is hu(NAME, i) * scale, with hu a
splitmix64 hash of (FNV-1a(NAME), i) mapped to a 24-bit uniform in [-1, 1) (exact in f32) and
the scale (a power of two) stored as S.NAME; a few parameters are stored whole as V.NAME.
Gradients of parameters with more than 512 elements are stored as GP.NAME = [sum g h, sum |g h|,
sum g^2] with h = hu(NAME + "#p", i); smaller ones whole as G.NAME.
Writes tests/fixtures/codec/codec.txt. Run: python3 tests/reference/gen_codec_fixtures.py"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

torch.manual_seed(0)
D = torch.float64
M64 = (1 << 64) - 1
out = {}

# ---- the small config (tests/test_codec.c builds the same one) ----
CFG = dict(
    enc_ch=4,  # conv_pre width; stage i has enc_ch * 2^(i+1) channels
    rates=[4, 2],  # generator upsampling rates (the encoder strides are these reversed)
    kernels=[8, 4],  # generator upsampling kernels (reversed for the encoder)
    res_kernels=[3, 5],
    res_dilations=[[1, 2], [1, 2]],
    group_ch=4,  # GroupNorm(ch / group_ch)
    gen_ch=16,  # generator conv_pre width
    global_hidden=4,
    global_dim=8,
    n_codes=16,
    n_global=4,  # global codebooks of n_codes x global_dim / n_global
    mpd_ch=[4, 8, 8, 16, 16],
    msd_ch=[4, 4, 8, 8, 16, 16, 16],
    msd_groups=[1, 2, 2, 2, 2, 2, 1],
    stft_filters=4,
    stft_dilations=[1, 2, 4],
)
LAT = CFG["enc_ch"] * 2 ** len(CFG["rates"])  # latent width (512 in the full model)


def fnv1a(s):
    h = 0xCBF29CE484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def hu(name, n):
    """24-bit uniforms in [-1, 1): splitmix64 of fnv1a(name) + (i + 1) * golden."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a(name)) + (np.arange(n, dtype=np.uint64) + np.uint64(1)) * np.uint64(
            0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0
    return u


class Params:
    """Parameters by export name, drawn from hu() or given."""

    def __init__(self):
        self.p = {}

    def new(self, name, shape, scale=None, value=None, grad=True):
        if value is not None:
            t = value.to(D).float().to(D)
            out["V." + name] = t.clone()
        else:
            n = int(np.prod(shape))
            if scale is None:
                fan = n // shape[0] if len(shape) > 1 else 1
                scale = 2.0 ** round(math.log2(1.0 / math.sqrt(fan)))
            t = torch.tensor(hu(name, n) * scale, dtype=D).reshape(shape)
            out["S." + name] = torch.tensor([scale])
        t = t.clone().requires_grad_(grad)
        self.p[name] = t
        return t

    def wn_conv(self, name, shape, bias=True, transpose=False):
        """weight_g, weight_v (+ bias); g = |v| * (1 + hu / 4) so the norm matters."""
        v = self.new(name + ".weight_v", shape)
        nv = v.detach().flatten(1).norm(dim=1)
        g = nv * (1 + 0.25 * torch.tensor(hu(name + ".g", shape[0]), dtype=D))
        self.new(name + ".weight_g", [shape[0]] + [1] * (len(shape) - 1),
                 value=g.reshape([shape[0]] + [1] * (len(shape) - 1)))
        if bias:
            self.new(name + ".bias", [shape[1] if transpose else shape[0]], scale=0.125)

    def plain_conv(self, name, shape, bias=True):
        self.new(name + ".weight", shape)
        if bias:
            self.new(name + ".bias", [shape[0]], scale=0.125)

    def __getitem__(self, k):
        return self.p[k]

    def grads(self, prefix="", key=""):
        """Stores the gradients of the parameters under prefix as key + G.NAME / GP.NAME."""
        for k, t in self.p.items():
            if not k.startswith(prefix) or not t.requires_grad:
                continue
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            if g.numel() <= 512:
                out[key + "G." + k] = g
            else:
                h = torch.tensor(hu(k + "#p", g.numel()), dtype=D)
                gf = g.reshape(-1)
                out[key + "GP." + k] = torch.stack([(gf * h).sum(), (gf * h).abs().sum(),
                                                    (gf * gf).sum()])

    def zero(self):
        for t in self.p.values():
            t.grad = None


def wconv(P, name):
    v, g = P[name + ".weight_v"], P[name + ".weight_g"]
    return g * v / v.flatten(1).norm(dim=1).reshape(g.shape)


def bias(P, name):
    return P.p.get(name + ".bias")


def lrelu(x, s=0.1):
    return F.leaky_relu(x, s)


# ---- HiFi-GAN ResBlock1 ----
def resblock_params(P, name, ch, k, dil):
    for m in range(len(dil)):
        P.wn_conv(f"{name}.convs1.{m}", [ch, ch, k])
        P.wn_conv(f"{name}.convs2.{m}", [ch, ch, k])


def resblock(P, name, x, k, dil):
    for m, d in enumerate(dil):
        xt = F.conv1d(lrelu(x), wconv(P, f"{name}.convs1.{m}"), bias(P, f"{name}.convs1.{m}"),
                      padding=(k - 1) * d // 2, dilation=d)
        xt = F.conv1d(lrelu(xt), wconv(P, f"{name}.convs2.{m}"), bias(P, f"{name}.convs2.{m}"),
                      padding=(k - 1) // 2)
        x = x + xt
    return x


# ---- encoder with the global branch ----
def enc_params(P):
    c, nk = CFG["enc_ch"], len(CFG["res_kernels"])
    P.wn_conv("encoder.conv_pre", [c, 1, 7])
    strides, kernels = CFG["rates"][::-1], CFG["kernels"][::-1]
    rk, rd = CFG["res_kernels"][::-1], CFG["res_dilations"][::-1]
    for i, (s, k) in enumerate(zip(strides, kernels)):
        P.wn_conv(f"encoder.ups.{i}", [c * 2 ** (i + 1), c * 2 ** i, k])
        ch = c * 2 ** (i + 1)
        for j in range(nk):
            resblock_params(P, f"encoder.resblocks.{i * nk + j}", ch, rk[j], rd[j])
            P.new(f"encoder.normalize.{i * nk + j}.weight", [ch],
                  value=1 + 0.25 * torch.tensor(hu(f"n{i}{j}", ch)))
            P.new(f"encoder.normalize.{i * nk + j}.bias", [ch], scale=0.125)
    P.plain_conv("encoder.conv_post", [LAT, LAT, 3])
    gi = c * 2 ** (len(strides) // 2)
    gh, gd = CFG["global_hidden"], CFG["global_dim"]
    # larger than fan-in scale: the batch variance before BatchNorm must dwarf its eps
    P.new("encoder.GlobalTokenEncoder.conv.0.weight", [gh, gi, 3], scale=1.0)
    P.new("encoder.GlobalTokenEncoder.conv.2.weight", [gh, gh, 3], scale=1.0)
    P.new("encoder.GlobalTokenEncoder.conv.4.weight", [gd, gh, 3], scale=1.0)
    P.new("encoder.GlobalTokenEncoder.fn.0.weight", [gd, gd], scale=1.0)
    P.new("encoder.GlobalTokenEncoder.fn.0.bias", [gd], scale=0.125)
    P.new("encoder.GlobalTokenEncoder.fn.2.weight", [gd], value=1 + 0.25 * torch.tensor(hu("bn", gd)))
    P.new("encoder.GlobalTokenEncoder.fn.2.bias", [gd], scale=0.125)
    P.new("encoder.GlobalTokenEncoder.fn.2.running_mean", [gd], scale=0.125, grad=False)
    P.new("encoder.GlobalTokenEncoder.fn.2.running_var", [gd],
          value=1 + 0.25 * torch.tensor(hu("rv", gd)), grad=False)


def enc_stages(P, x, n):
    c, nk = CFG["enc_ch"], len(CFG["res_kernels"])
    strides, kernels = CFG["rates"][::-1], CFG["kernels"][::-1]
    rk, rd = CFG["res_kernels"][::-1], CFG["res_dilations"][::-1]
    x = F.conv1d(x, wconv(P, "encoder.conv_pre"), bias(P, "encoder.conv_pre"), padding=3)
    for i in range(n):
        ch = c * 2 ** (i + 1)
        x = lrelu(x)
        x = F.conv1d(x, wconv(P, f"encoder.ups.{i}"), bias(P, f"encoder.ups.{i}"),
                     stride=strides[i], padding=(kernels[i] - strides[i]) // 2)
        xs = None
        for j in range(nk):
            r = resblock(P, f"encoder.resblocks.{i * nk + j}", x, rk[j], rd[j])
            xs = r if xs is None else xs + r
            xs = F.group_norm(xs, ch // CFG["group_ch"], P[f"encoder.normalize.{i * nk + j}.weight"],
                              P[f"encoder.normalize.{i * nk + j}.bias"], 1e-6)
        x = xs / nk
        if i == len(strides) // 2 - 1:
            mid = x
    return x, mid


def global_enc(P, x):
    pre = "encoder.GlobalTokenEncoder."
    for k in (0, 2, 4):
        x = lrelu(F.conv1d(x, P[f"{pre}conv.{k}.weight"], None, padding=1))
    x = x.mean(dim=2)
    x = lrelu(F.linear(x, P[pre + "fn.0.weight"], P[pre + "fn.0.bias"]))
    rm, rv = P[pre + "fn.2.running_mean"], P[pre + "fn.2.running_var"]
    return F.batch_norm(x, rm, rv, P[pre + "fn.2.weight"], P[pre + "fn.2.bias"], True, 0.1, 1e-5)


def encoder(P, y, yy):
    n = len(CFG["rates"])
    x, mid = enc_stages(P, y, n)
    g = global_enc(P, mid)
    x = F.leaky_relu(x)  # slope 0.01
    c = F.conv1d(x, P["encoder.conv_post.weight"], P["encoder.conv_post.bias"], padding=1)
    _, mid2 = enc_stages(P, yy, n // 2)
    g2 = global_enc(P, mid2).detach()
    return c, g, g2


# ---- quantizer ----
def quant_params(P):
    P.new("quantizer.quantizer_modules.0.embedding.weight", [CFG["n_codes"], LAT], scale=1.0)
    gd = CFG["global_dim"] // CFG["n_global"]
    for j in range(CFG["n_global"]):
        P.new(f"quantizer.quantizer_modules_globaltokens.{j}.embedding.weight", [CFG["n_codes"], gd],
              scale=1.0)


def vq(x, emb):
    d = (x * x).sum(1, keepdim=True) + (emb * emb).sum(1) - 2 * x @ emb.T
    idx = d.argmin(1)
    return emb[idx], idx


def quantizer(P, c, g):
    x = c.transpose(1, 2).reshape(-1, LAT)
    zq, idx = vq(x, P["quantizer.quantizer_modules.0.embedding.weight"])
    xin = c.transpose(1, 2)
    zq = zq.reshape(xin.shape)
    loss = torch.mean((zq - xin.detach()) ** 2) + 0.25 * torch.mean((zq.detach() - xin) ** 2)
    q = (xin + (zq - xin).detach()).transpose(1, 2)
    parts = torch.split(g, CFG["global_dim"] // CFG["n_global"], dim=-1)
    gz, gidx = [], []
    for j, part in enumerate(parts):
        z, i = vq(part, P[f"quantizer.quantizer_modules_globaltokens.{j}.embedding.weight"])
        gz.append(z)
        gidx.append(i)
    gz = torch.cat(gz, -1)
    loss = loss + torch.mean((gz - g.detach()) ** 2) + 0.25 * torch.mean((gz.detach() - g) ** 2)
    gq = g + (gz - g).detach()
    return q, loss, idx.reshape(c.shape[0], -1), gq, torch.stack(gidx, -1)


# ---- generator ----
def gen_params(P):
    gc, nk = CFG["gen_ch"], len(CFG["res_kernels"])
    P.wn_conv("generator.conv_pre", [gc, LAT, 7])
    for i, k in enumerate(CFG["kernels"]):
        P.wn_conv(f"generator.ups.{i}", [gc // 2 ** i, gc // 2 ** (i + 1), k], transpose=True)
        for j in range(nk):
            resblock_params(P, f"generator.resblocks.{i * nk + j}", gc // 2 ** (i + 1),
                            CFG["res_kernels"][j], CFG["res_dilations"][j])
    P.wn_conv("generator.conv_post", [1, gc // 2 ** len(CFG["rates"]), 7])


def generator(P, q, gq):
    gc, nk = CFG["gen_ch"], len(CFG["res_kernels"])
    x = F.conv1d(q, wconv(P, "generator.conv_pre"), bias(P, "generator.conv_pre"), padding=3)
    for i, (u, k) in enumerate(zip(CFG["rates"], CFG["kernels"])):
        x = lrelu(x)
        x = F.conv_transpose1d(x, wconv(P, f"generator.ups.{i}"), bias(P, f"generator.ups.{i}"),
                               stride=u, padding=(k - u) // 2)
        xs = None
        for j in range(nk):
            r = resblock(P, f"generator.resblocks.{i * nk + j}", x, CFG["res_kernels"][j],
                         CFG["res_dilations"][j])
            xs = r if xs is None else xs + r
        x = xs / nk
        if x.shape[1] == gq.shape[1]:
            x = x + gq.unsqueeze(-1)
    x = lrelu(x)
    x = F.conv1d(x, wconv(P, "generator.conv_post"), bias(P, "generator.conv_post"), padding=3)
    return torch.tanh(x)


# ---- discriminators ----
def mpd_params(P, name):
    ch = [1] + CFG["mpd_ch"]
    for i in range(5):
        P.wn_conv(f"{name}.convs.{i}", [ch[i + 1], ch[i], 5, 1])
    P.wn_conv(f"{name}.conv_post", [1, ch[5], 3, 1])


def mpd(P, name, x, period):
    fmap = []
    b, c, t = x.shape
    if t % period:
        x = F.pad(x, (0, period - t % period), "reflect")
        t = x.shape[-1]
    x = x.view(b, c, t // period, period)
    for i in range(5):
        x = F.conv2d(x, wconv(P, f"{name}.convs.{i}"), bias(P, f"{name}.convs.{i}"),
                     stride=(3 if i < 4 else 1, 1), padding=(2, 0))
        x = lrelu(x)
        fmap.append(x)
    x = F.conv2d(x, wconv(P, f"{name}.conv_post"), bias(P, f"{name}.conv_post"), padding=(1, 0))
    fmap.append(x)
    return x.flatten(1, -1), fmap


RECORD_SN = True  # the module cases record the power iteration's u and v
MSD_K = [15, 41, 41, 41, 41, 41, 5]
MSD_S = [1, 2, 2, 4, 4, 1, 1]


def msd_params(P, name, spectral):
    ch = [1] + CFG["msd_ch"]
    shapes = [[ch[i + 1], ch[i] // CFG["msd_groups"][i], MSD_K[i]] for i in range(7)]
    shapes.append([1, ch[7], 3])
    names = [f"{name}.convs.{i}" for i in range(7)] + [f"{name}.conv_post"]
    for nm, sh in zip(names, shapes):
        if spectral:
            P.new(nm + ".weight_orig", sh)
            P.new(nm + ".bias", [sh[0]], scale=0.125)
            u = torch.tensor(hu(nm + ".u", sh[0]), dtype=D)
            P.new(nm + ".weight_u", [sh[0]], value=u / u.norm(), grad=False)
        else:
            P.wn_conv(nm, sh)


def spectral_weight(P, nm):
    """torch.nn.utils.spectral_norm in training mode: one power iteration (no gradient), then
    W / (u . W v) with the gradient through W only; u and v are updated in place."""
    w = P[nm + ".weight_orig"]
    wm = w.flatten(1)
    with torch.no_grad():
        u = P[nm + ".weight_u"]
        v = F.normalize(wm.t() @ u, dim=0, eps=1e-12)
        u2 = F.normalize(wm @ v, dim=0, eps=1e-12)
        u.copy_(u2)
        if RECORD_SN:
            out["post." + nm + ".weight_u"] = u2.clone()
            out["post." + nm + ".weight_v"] = v.clone()
    sigma = torch.dot(u2, wm @ v)
    return w / sigma


def msd(P, name, x, spectral):
    fmap = []
    names = [f"{name}.convs.{i}" for i in range(7)]
    for i, nm in enumerate(names):
        w = spectral_weight(P, nm) if spectral else wconv(P, nm)
        x = lrelu(F.conv1d(x, w, P[nm + ".bias"], stride=MSD_S[i], padding=(MSD_K[i] - 1) // 2,
                           groups=CFG["msd_groups"][i]))
        fmap.append(x)
    nm = f"{name}.conv_post"
    w = spectral_weight(P, nm) if spectral else wconv(P, nm)
    x = F.conv1d(x, w, P[nm + ".bias"], padding=1)
    fmap.append(x)
    return x.flatten(1, -1), fmap


def stftd_params(P, name):
    f = CFG["stft_filters"]
    P.plain_conv(f"{name}.convs.0.conv", [f, 2, 3, 9])
    for i in range(len(CFG["stft_dilations"])):
        P.wn_conv(f"{name}.convs.{i + 1}.conv", [f, f, 3, 9])
    P.wn_conv(f"{name}.convs.{len(CFG['stft_dilations']) + 1}.conv", [f, f, 3, 3])
    P.wn_conv(f"{name}.conv_post.conv", [1, f, 3, 3])


def stftd(P, name, x, n_fft, hop):
    spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop, win_length=n_fft,
                                             window_fn=torch.hann_window, normalized=True,
                                             center=False, pad_mode=None, power=None,
                                             wkwargs={"dtype": D})
    z = spec(x)  # [B, 1, F, T] complex
    z = torch.cat([z.real, z.imag], dim=1).permute(0, 1, 3, 2)  # b c w t -> b c t w
    fmap = []
    z = F.conv2d(z, P[f"{name}.convs.0.conv.weight"], P[f"{name}.convs.0.conv.bias"], padding=(1, 4))
    z = lrelu(z, 0.2)
    fmap.append(z)
    for i, d in enumerate(CFG["stft_dilations"]):
        nm = f"{name}.convs.{i + 1}.conv"
        z = lrelu(F.conv2d(z, wconv(P, nm), bias(P, nm), stride=(1, 2), dilation=(d, 1),
                           padding=(d, 4)), 0.2)
        fmap.append(z)
    nm = f"{name}.convs.{len(CFG['stft_dilations']) + 1}.conv"
    z = lrelu(F.conv2d(z, wconv(P, nm), bias(P, nm), padding=(1, 1)), 0.2)
    fmap.append(z)
    z = F.conv2d(z, wconv(P, f"{name}.conv_post.conv"), bias(P, f"{name}.conv_post.conv"),
                 padding=(1, 1))
    return z, fmap


# ---- mel (librosa.filters.mel: slaney mel scale and slaney area normalisation) ----
def hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    mel = f / (200.0 / 3)
    logstep = math.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / logstep, mel)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    logstep = math.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(logstep * (m - 15.0)), m * (200.0 / 3))


def mel_filterbank(sr, n_fft, n_mels, fmin=0.0, fmax=None):
    fmax = sr / 2 if fmax is None else fmax
    fft = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    w = np.maximum(0, np.minimum(lower, upper))
    w *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return w.astype(np.float32)  # librosa returns float32


_fb = {}


def log_mel(y, n_fft, hop):
    """TiCodec's mel_spectrogram: reflect pad (n_fft - hop) / 2, |STFT| (hann, center False)
    with 1e-9 inside the sqrt, the filterbank, log(clamp(., 1e-5))."""
    if n_fft not in _fb:
        _fb[n_fft] = torch.from_numpy(mel_filterbank(24000, n_fft, 80)).to(D)
    p = (n_fft - hop) // 2
    y = F.pad(y.unsqueeze(1), (p, p), mode="reflect").squeeze(1)
    s = torch.stft(y, n_fft, hop_length=hop, win_length=n_fft,
                   window=torch.hann_window(n_fft, dtype=D), center=False, normalized=False,
                   onesided=True, return_complex=True)
    s = torch.sqrt(s.real ** 2 + s.imag ** 2 + 1e-9)
    return torch.log(torch.clamp(_fb[n_fft] @ s, min=1e-5))


# ---- losses (TiCodec's models.py) ----
def feature_loss(fr, fg):
    loss = 0
    for dr, dg in zip(fr, fg):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r - g))
    return loss * 2


def disc_loss(dr, dg):
    return sum(torch.mean((1 - r) ** 2) + torch.mean(g ** 2) for r, g in zip(dr, dg))


def gen_loss(dg):
    return sum(torch.mean((1 - g) ** 2) for g in dg)


def x_in(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).float().to(D)


def W(name, shape):
    """The fixed weights of a test's sum(out * w): hu("w." + name), not stored."""
    return torch.tensor(hu("w." + name, int(np.prod(shape))), dtype=D).reshape(shape)


# ======== 1. mel filterbank and log-mel ========
fb256 = mel_filterbank(24000, 256, 80)
fb1024 = mel_filterbank(24000, 1024, 80)
ta = torchaudio.functional.melscale_fbanks(513, 0.0, 12000.0, 80, 24000, norm="slaney",
                                           mel_scale="slaney").T.numpy()
assert np.abs(ta - fb1024).max() < 1e-6, "filterbank differs from torchaudio's"
out["mel.fb256"] = torch.from_numpy(fb256)
out["mel.fb1024.rowsum"] = torch.from_numpy(fb1024.astype(np.float64).sum(1))
out["mel.fb1024.first"] = torch.tensor([int(np.nonzero(r)[0][0]) for r in fb1024], dtype=torch.int32)
out["mel.fb1024.last"] = torch.tensor([int(np.nonzero(r)[0][-1]) for r in fb1024], dtype=torch.int32)

y = (x_in(2, 1200) * 0.3).requires_grad_(True)
out["mel.x"] = y.detach()
tot = 0
for n_fft, hop in ((1024, 240), (256, 60)):
    m = log_mel(y, n_fft, hop)
    w = W(f"mel.{n_fft}", m.shape)
    out[f"mel.{n_fft}.out"] = m.detach()
    tot = tot + (m * w).sum()
tot.backward()
out["mel.grad.x"] = y.grad

# ======== 2. modules: forward and gradients of sum(out * w) ========
P = Params()
enc_params(P)
quant_params(P)
gen_params(P)
B, L = 3, 480
yw = (x_in(B, 1, L) * 0.5).requires_grad_(True)
yy = (x_in(B, 1, L) * 0.5).requires_grad_(True)
out["enc.y"], out["enc.yy"] = yw.detach(), yy.detach()
rm0 = P["encoder.GlobalTokenEncoder.fn.2.running_mean"].detach().clone()
rv0 = P["encoder.GlobalTokenEncoder.fn.2.running_var"].detach().clone()
c, g, g2 = encoder(P, yw, yy)
out["enc.c"], out["enc.g"], out["enc.g2"] = c.detach(), g.detach(), g2
out["enc.running_mean"] = P["encoder.GlobalTokenEncoder.fn.2.running_mean"].detach().clone()
out["enc.running_var"] = P["encoder.GlobalTokenEncoder.fn.2.running_var"].detach().clone()
wc, wg = W("enc.c", c.shape), W("enc.g", g.shape)
((c * wc).sum() + (g * wg).sum()).backward()
out["enc.grad.y"] = yw.grad
P.grads("encoder.")
P.zero()

# quantizer on the encoder output (scaled so rows land near different codes)
cq = (c.detach() * 1.0).requires_grad_(True)
gqi = g.detach().clone().requires_grad_(True)
q, lq, idx, gq, gidx = quantizer(P, cq, gqi)
wq, wgq = W("quant.q", q.shape), W("quant.gq", gq.shape)
out["quant.q"], out["quant.idx"], out["quant.gq"], out["quant.gidx"] = q.detach(), idx.int(), gq.detach(), gidx.int()
out["quant.loss"] = lq.detach().reshape(1)
((q * wq).sum() + (gq * wgq).sum() + 3.0 * lq).backward()
out["quant.grad.c"], out["quant.grad.g"] = cq.grad, gqi.grad
P.grads("quantizer.")
P.zero()

qg = q.detach().clone().requires_grad_(True)
gg = gq.detach().clone().requires_grad_(True)
yh = generator(P, qg, gg)
wy = W("gen", yh.shape)
out["gen.out"] = yh.detach()
(yh * wy).sum().backward()
out["gen.grad.q"], out["gen.grad.g"] = qg.grad, gg.grad
P.grads("generator.")
P.zero()

# discriminators on a short waveform
DP = Params()
mpd_params(DP, "mpd.discriminators.1")
msd_params(DP, "msd.discriminators.0", True)
msd_params(DP, "msd.discriminators.1", False)
stftd_params(DP, "mstftd.discriminators.0")
xd = (x_in(2, 1, 250) * 0.5)
for case, fn in (("mpd", lambda x: mpd(DP, "mpd.discriminators.1", x, 3)),
                 ("msd0", lambda x: msd(DP, "msd.discriminators.0", x, True)),
                 ("msd1", lambda x: msd(DP, "msd.discriminators.1", x, False)),
                 ("stftd", lambda x: stftd(DP, "mstftd.discriminators.0", x, 64, 16))):
    for k, t in DP.p.items():  # spectral norm's u evolves: every case starts from the stored one
        if k.endswith("weight_u"):
            with torch.no_grad():
                t.copy_(out["V." + k])
    x = xd.clone().requires_grad_(True)
    logit, fmap = fn(x)
    loss = 0
    wl = W(f"{case}.logit", logit.shape)
    out[f"{case}.logit"] = logit.detach()
    loss = (logit * wl).sum()
    for i, f in enumerate(fmap):
        wf = W(f"{case}.fmap{i}", f.shape)
        out[f"{case}.fmap{i}"] = f.detach()
        loss = loss + (f * wf).sum()
    loss.backward()
    out[f"{case}.grad.x"] = x.grad
    prefix = {"mpd": "mpd.", "msd0": "msd.discriminators.0.", "msd1": "msd.discriminators.1.",
              "stftd": "mstftd."}[case]
    DP.grads(prefix, case + ".")
    DP.zero()
out["xd"] = xd

RECORD_SN = False

# ======== 3. one training step of the small codec: every loss term and the gradients ========
# MPD periods 2 and 3, MSD 3 scales (the first spectral-normed), MS-STFT scales 64/16 and 32/8.
SP = Params()
enc_params(SP)
quant_params(SP)
gen_params(SP)
SD = Params()
PERIODS, STFTS = [2, 3], [(64, 16), (32, 8)]
for k in range(len(PERIODS)):
    mpd_params(SD, f"mpd.discriminators.{k}")
for k in range(3):
    msd_params(SD, f"msd.discriminators.{k}", k == 0)
for k in range(len(STFTS)):
    stftd_params(SD, f"mstftd.discriminators.{k}")


def pool(x):  # AvgPool1d(4, 2, padding=2), padding counted
    return F.avg_pool1d(x, 4, 2, padding=2)


def run_mpd(y, yh):
    r = [mpd(SD, f"mpd.discriminators.{k}", y, p) for k, p in enumerate(PERIODS)]
    g = [mpd(SD, f"mpd.discriminators.{k}", yh, p) for k, p in enumerate(PERIODS)]
    return [a[0] for a in r], [a[0] for a in g], [a[1] for a in r], [a[1] for a in g]


def run_msd(y, yh):
    rs, gs, fr, fg = [], [], [], []
    for k in range(3):
        if k:
            y, yh = pool(y), pool(yh)
        a = msd(SD, f"msd.discriminators.{k}", y, k == 0)
        b = msd(SD, f"msd.discriminators.{k}", yh, k == 0)
        rs.append(a[0]); fr.append(a[1]); gs.append(b[0]); fg.append(b[1])
    return rs, gs, fr, fg


def run_stftd(x):
    res = [stftd(SD, f"mstftd.discriminators.{k}", x, n, h) for k, (n, h) in enumerate(STFTS)]
    return [a[0] for a in res], [a[1] for a in res]


# 0.6, not 0.5: at 0.5 a generator pre-activation sat 7e-9 from a LeakyReLU kink (terms of
# 1e-2), so which slope the f32 C code took, and the encoder's gradients, hung on round-off
ys = x_in(2, 1, 480) * 0.6
yys = x_in(2, 1, 480) * 0.5
out["step.y"], out["step.yy"] = ys, yys
c, g, g2 = encoder(SP, ys, yys)
cons = 1 - F.cosine_similarity(g, g2, dim=1).mean()
q, lq, idx, gq, gidx = quantizer(SP, c, g)
yh = generator(SP, q, gq)
out["step.idx"], out["step.gidx"], out["step.yh"] = idx.int(), gidx.int(), yh.detach()
mel_r = [log_mel(ys.squeeze(1), n, h) for n, h in ((1024, 240), (512, 120), (256, 60))]
mel_g = [log_mel(yh.squeeze(1), n, h) for n, h in ((1024, 240), (512, 120), (256, 60))]
# discriminator phase
ydr, ydg, _, _ = run_mpd(ys, yh.detach())
d_f = disc_loss(ydr, ydg)
ydr, ydg, _, _ = run_msd(ys, yh.detach())
d_s = disc_loss(ydr, ydg)
r_, _ = run_stftd(ys)
g_, _ = run_stftd(yh.detach())
d_stft = disc_loss(r_, g_)
d_all = d_f + d_s + d_stft
d_all.backward()
for k, v in (("d_mpd", d_f), ("d_msd", d_s), ("d_stft", d_stft), ("d_all", d_all)):
    out["step." + k] = v.detach().reshape(1)
SD.grads("", "step.D.")
SD.zero()
SP.zero()
for k, t in SD.p.items():
    if k.endswith("weight_u"):
        out["step.mid." + k] = t.detach().clone()
# generator phase, from the same parameters: no optimizer runs in between here, so both phases'
# gradients are checked at one point
mel = F.l1_loss(mel_r[0], mel_g[0]) * 45 + F.l1_loss(mel_r[1], mel_g[1]) + F.l1_loss(mel_r[2], mel_g[2])
_, ydg, fr, fg = run_mpd(ys, yh)
fm_f, g_f = feature_loss(fr, fg), gen_loss(ydg)
_, ydg, fr, fg = run_msd(ys, yh)
fm_s, g_s = feature_loss(fr, fg), gen_loss(ydg)
_, fr = run_stftd(ys)
lg, fg = run_stftd(yh)
fm_stft, g_stft = feature_loss(fr, fg), gen_loss(lg)
g_all = g_s + g_f + g_stft + fm_s + fm_f + fm_stft + mel + lq * 10 + cons * 5
g_all.backward()
for k, v in (("g_mpd", g_f), ("g_msd", g_s), ("g_stft", g_stft), ("fm_mpd", fm_f),
             ("fm_msd", fm_s), ("fm_stft", fm_stft), ("mel", mel), ("q", lq), ("cons", cons),
             ("g_all", g_all)):
    out["step." + k] = v.detach().reshape(1)
SP.grads("", "step.G.")
out["step.running_mean"] = SP["encoder.GlobalTokenEncoder.fn.2.running_mean"].detach().clone()
out["step.running_var"] = SP["encoder.GlobalTokenEncoder.fn.2.running_var"].detach().clone()
for k, t in SD.p.items():
    if k.endswith("weight_u"):
        out["step.post." + k] = t.detach().clone()

fixdir = os.path.join(os.path.dirname(__file__), "..", "fixtures", "codec")
os.makedirs(fixdir, exist_ok=True)
path = os.path.join(fixdir, "codec.txt")
write_fixture(path, out, comment=__doc__.split("\n")[0] + "\nWritten by tests/reference/gen_codec_fixtures.py")
print(f"wrote {path}: {len(out)} tensors")
