"""PyTorch counterpart of bench/bench_codec.c: a TiCodec-shaped codec (encoder with GroupNorm on
the running sums and the global branch, quantizer, HiFi-GAN generator) and its discriminators
(MPD, MSD with spectral norm on the first scale, MS-STFT), built from the same ticodec
model.json, trained with TiCodec's two phases and Adam(0.5, 0.9), then inference on 10 s.
Prints: RESULT impl=torch steps_per_s=... step_ms=... rtf=... d_ms=... g_ms=... cpu_step_ms=... cpu_rtf=...
Usage: python3 bench/bench_codec_torch.py [model.json] [batch] [steps] [warmup]
(torch.set_num_threads from OMP_NUM_THREADS)."""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import weight_norm

cfg = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "configs/tiny/codec.json"))
B = int(sys.argv[2]) if len(sys.argv) > 2 else 4
STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
WARM = int(sys.argv[4]) if len(sys.argv) > 4 else 1
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
g = lambda k, d: cfg.get(k, d)
RATES, KERNELS = g("upsample_rates", [8, 5, 5, 3]), g("upsample_kernel_sizes", [16, 11, 11, 5])
RK, RD = g("resblock_kernel_sizes", [3, 7, 11]), g("resblock_dilation_sizes", [[1, 3, 5]] * 3)
EC, GC, GRP = g("encoder_channels", 32), g("upsample_initial_channel", 512), g("group_channels", 16)
GFC, NC, NG = g("global_feature_conv", [128, 64, 128, 3, 1]), g("n_codes", 1024), g("global_code_num", 8)
SEG, SR = g("segment_size", 24000), g("sampling_rate", 24000)
LAT = EC * 2 ** len(RATES)


class Res(nn.Module):
    def __init__(self, ch, k, dil):
        super().__init__()
        self.c1 = nn.ModuleList([weight_norm(nn.Conv1d(ch, ch, k, dilation=d, padding=(k - 1) * d // 2)) for d in dil])
        self.c2 = nn.ModuleList([weight_norm(nn.Conv1d(ch, ch, k, padding=(k - 1) // 2)) for _ in dil])

    def forward(self, x):
        for a, b in zip(self.c1, self.c2):
            x = x + b(F.leaky_relu(a(F.leaky_relu(x, 0.1)), 0.1))
        return x


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = weight_norm(nn.Conv1d(1, EC, 7, padding=3))
        s, k = RATES[::-1], KERNELS[::-1]
        self.ups = nn.ModuleList([weight_norm(nn.Conv1d(EC * 2 ** i, EC * 2 ** (i + 1), k[i], s[i], (k[i] - s[i]) // 2)) for i in range(len(s))])
        self.res = nn.ModuleList([Res(EC * 2 ** (i + 1), RK[::-1][j], RD[::-1][j]) for i in range(len(s)) for j in range(len(RK))])
        self.norm = nn.ModuleList([nn.GroupNorm(EC * 2 ** (i + 1) // GRP, EC * 2 ** (i + 1), eps=1e-6) for i in range(len(s)) for j in range(len(RK))])
        self.post = nn.Conv1d(LAT, LAT, 3, padding=1)
        gi = EC * 2 ** (len(s) // 2)
        self.gconv = nn.Sequential(nn.Conv1d(gi, GFC[1], 3, padding=1, bias=False), nn.LeakyReLU(0.1),
                                   nn.Conv1d(GFC[1], GFC[1], 3, padding=1, bias=False), nn.LeakyReLU(0.1),
                                   nn.Conv1d(GFC[1], GFC[2], 3, padding=1, bias=False), nn.LeakyReLU(0.1))
        self.gfn = nn.Sequential(nn.Linear(GFC[2], GFC[2]), nn.LeakyReLU(0.1), nn.BatchNorm1d(GFC[2]))

    def stages(self, x, n):
        x, nk, mid = self.pre(x), len(RK), None
        for i in range(n):
            x = self.ups[i](F.leaky_relu(x, 0.1))
            xs = None
            for j in range(nk):
                r = self.res[i * nk + j](x)
                xs = self.norm[i * nk + j](r if xs is None else xs + r)
            x = xs / nk
            if i == len(RATES) // 2 - 1:
                mid = x
        return x, mid

    def glob(self, m):
        return self.gfn(self.gconv(m).mean(2))

    def forward(self, y, yy):
        x, mid = self.stages(y, len(RATES))
        _, mid2 = self.stages(yy, len(RATES) // 2)
        return self.post(F.leaky_relu(x)), self.glob(mid), self.glob(mid2).detach()


def vq(x, emb):
    d = (x * x).sum(1, keepdim=True) + (emb * emb).sum(1) - 2 * x @ emb.T
    zq = emb[d.argmin(1)]
    return x + (zq - x).detach(), torch.mean((zq - x.detach()) ** 2) + 0.25 * torch.mean((zq.detach() - x) ** 2)


class Quant(nn.Module):
    def __init__(self):
        super().__init__()
        self.cb = nn.Parameter(torch.rand(NC, LAT) * 2 / NC - 1 / NC)
        self.gcb = nn.ParameterList([nn.Parameter(torch.rand(NC, GFC[2] // NG) * 2 / NC - 1 / NC) for _ in range(NG)])

    def forward(self, c, gv):
        x = c.transpose(1, 2)
        q, l1 = vq(x.reshape(-1, LAT), self.cb)
        parts = [vq(p, e) for p, e in zip(torch.split(gv, GFC[2] // NG, -1), self.gcb)]
        return q.reshape(x.shape).transpose(1, 2), torch.cat([p[0] for p in parts], -1), l1 + sum(p[1] for p in parts) / NG


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.pre = weight_norm(nn.Conv1d(LAT, GC, 7, padding=3))
        self.ups = nn.ModuleList([weight_norm(nn.ConvTranspose1d(GC // 2 ** i, GC // 2 ** (i + 1), k, u, (k - u) // 2)) for i, (u, k) in enumerate(zip(RATES, KERNELS))])
        self.res = nn.ModuleList([Res(GC // 2 ** (i + 1), RK[j], RD[j]) for i in range(len(RATES)) for j in range(len(RK))])
        self.post = weight_norm(nn.Conv1d(GC // 2 ** len(RATES), 1, 7, padding=3))

    def forward(self, q, gq):
        x, nk = self.pre(q), len(RK)
        for i in range(len(RATES)):
            x = self.ups[i](F.leaky_relu(x, 0.1))
            x = sum(self.res[i * nk + j](x) for j in range(nk)) / nk
            if x.shape[1] == gq.shape[1]:
                x = x + gq.unsqueeze(-1)
        return torch.tanh(self.post(F.leaky_relu(x, 0.1)))


class DiscP(nn.Module):
    def __init__(self, p, ch):
        super().__init__()
        self.p, c = p, [1] + ch
        self.convs = nn.ModuleList([weight_norm(nn.Conv2d(c[i], c[i + 1], (5, 1), (3 if i < 4 else 1, 1), (2, 0))) for i in range(5)])
        self.post = weight_norm(nn.Conv2d(c[5], 1, (3, 1), 1, (1, 0)))

    def forward(self, x):
        b, c, t = x.shape
        if t % self.p:
            x = F.pad(x, (0, self.p - t % self.p), "reflect")
        x, fm = x.view(b, c, -1, self.p), []
        for l in self.convs:
            x = F.leaky_relu(l(x), 0.1)
            fm.append(x)
        x = self.post(x)
        return x.flatten(1), fm + [x]


class DiscS(nn.Module):
    def __init__(self, ch, grp, sn):
        super().__init__()
        nf = spectral_norm if sn else weight_norm
        c, K, S = [1] + ch, [15, 41, 41, 41, 41, 41, 5], [1, 2, 2, 4, 4, 1, 1]
        self.convs = nn.ModuleList([nf(nn.Conv1d(c[i], c[i + 1], K[i], S[i], groups=grp[i], padding=(K[i] - 1) // 2)) for i in range(7)])
        self.post = nf(nn.Conv1d(c[7], 1, 3, padding=1))

    def forward(self, x):
        fm = []
        for l in self.convs:
            x = F.leaky_relu(l(x), 0.1)
            fm.append(x)
        x = self.post(x)
        return x.flatten(1), fm + [x]


class DiscSTFT(nn.Module):
    def __init__(self, f, n_fft, hop):
        super().__init__()
        self.spec = torchaudio.transforms.Spectrogram(n_fft=n_fft, hop_length=hop, win_length=n_fft, window_fn=torch.hann_window, normalized=True, center=False, pad_mode=None, power=None)
        self.convs = nn.ModuleList([nn.Conv2d(2, f, (3, 9), padding=(1, 4))] + [weight_norm(nn.Conv2d(f, f, (3, 9), (1, 2), dilation=(d, 1), padding=(d, 4))) for d in (1, 2, 4)] + [weight_norm(nn.Conv2d(f, f, 3, padding=1))])
        self.post = weight_norm(nn.Conv2d(f, 1, 3, padding=1))

    def forward(self, x):
        z = self.spec(x)
        z, fm = torch.cat([z.real, z.imag], 1).permute(0, 1, 3, 2), []
        for l in self.convs:
            z = F.leaky_relu(l(z), 0.2)
            fm.append(z)
        return self.post(z), fm


fbs = {}


def mel(y, n_fft, hop):
    if n_fft not in fbs:
        fbs[n_fft] = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, SR / 2, g("num_mels", 80), SR, norm="slaney", mel_scale="slaney").T
    p = (n_fft - hop) // 2
    y = F.pad(y.unsqueeze(1), (p, p), mode="reflect").squeeze(1)
    s = torch.stft(y, n_fft, hop, n_fft, torch.hann_window(n_fft), center=False, return_complex=True)
    return torch.log(torch.clamp(fbs[n_fft] @ torch.sqrt(s.real ** 2 + s.imag ** 2 + 1e-9), min=1e-5))


enc, qnt, gen = Encoder(), Quant(), Generator()
mpd = nn.ModuleList([DiscP(p, g("mpd_channels", [32, 128, 512, 1024, 1024])) for p in g("mpd_periods", [2, 3, 5, 7, 11])])
msd = nn.ModuleList([DiscS(g("msd_channels", [128, 128, 256, 512, 1024, 1024, 1024]), g("msd_groups", [1, 4, 16, 16, 16, 16, 1]), k == 0) for k in range(g("msd_scales", 3))])
stftd = nn.ModuleList([DiscSTFT(g("stft_filters", 32), n, h) for n, h in zip(g("stft_n_ffts", [1024, 2048, 512, 256, 128]), g("stft_hops", [256, 512, 128, 64, 32]))])
gp = list(enc.parameters()) + list(qnt.parameters()) + list(gen.parameters())
dp = list(mpd.parameters()) + list(msd.parameters()) + list(stftd.parameters())
opt_g, opt_d = torch.optim.Adam(gp, 2e-4, betas=(0.5, 0.9)), torch.optim.Adam(dp, 2e-4, betas=(0.5, 0.9))
MELS = list(zip(g("mel_n_ffts", [1024, 512, 256]), g("mel_hops", [240, 120, 60])))
MW = g("mel_weights", [45.0, 1.0, 1.0])


def run_d(y, yh):
    out = [(d(y), d(yh)) for d in mpd]
    ys, yhs = y, yh
    for k, d in enumerate(msd):
        if k:
            ys, yhs = F.avg_pool1d(ys, 4, 2, 2), F.avg_pool1d(yhs, 4, 2, 2)
        out.append((d(ys), d(yhs)))
    return out + [(d(y), d(yh)) for d in stftd]


t = torch.arange(SEG) / SR
y = torch.stack([0.3 * torch.sin(2 * torch.pi * 150 * (1 + 0.25 * i) * t) + 0.1 * torch.sin(2 * torch.pi * 450 * (1 + 0.25 * i) * t) for i in range(B)]).unsqueeze(1)
times = [0.0, 0.0]
for s in range(WARM + STEPS):
    if s == WARM:
        t0, c0 = time.perf_counter(), time.process_time()
    ta = time.perf_counter()
    c, gv, g2 = enc(y, y)
    q, gq, lq = qnt(c, gv)
    yh = gen(q, gq)
    opt_d.zero_grad()
    ld = sum(torch.mean((1 - r[0]) ** 2) + torch.mean(f[0] ** 2) for r, f in run_d(y, yh.detach()))
    ld.backward()
    opt_d.step()
    tb = time.perf_counter()
    opt_g.zero_grad()
    lm = sum(w * F.l1_loss(mel(y.squeeze(1), n, h), mel(yh.squeeze(1), n, h)) for w, (n, h) in zip(MW, MELS))
    lg = 0
    for r, f in run_d(y, yh):
        lg = lg + torch.mean((1 - f[0]) ** 2) + 2 * sum(torch.mean(torch.abs(a.detach() - b)) for a, b in zip(r[1], f[1]))
    cons = 1 - F.cosine_similarity(gv, g2, dim=1).mean()
    (lg + lm + 10 * lq + 5 * cons).backward()
    opt_g.step()
    if s >= WARM:
        times[0] += tb - ta
        times[1] += time.perf_counter() - tb
train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
hop = int(torch.prod(torch.tensor(RATES)))
n = SR * 10 // hop * hop
a = (0.3 * torch.sin(2 * torch.pi * 150 * torch.arange(n) / SR)).reshape(1, 1, n)
enc.eval(), qnt.eval(), gen.eval()
ti = ci = float("inf")
with torch.no_grad():
    for r in range(4):  # a warm-up run, then the best of three (as bench_codec.c)
        t1, c1 = time.perf_counter(), time.process_time()
        x, mid = enc.stages(a, len(RATES))
        c = enc.post(F.leaky_relu(x))
        q, gq, _ = qnt(c, enc.glob(mid))
        gen(q, gq)
        if r > 0:
            ti, ci = min(ti, time.perf_counter() - t1), min(ci, time.process_time() - c1)
print(f"RESULT impl=torch steps_per_s={STEPS / train_s:.3f} step_ms={1e3 * train_s / STEPS:.1f} "
      f"rtf={ti / 10:.4f} d_ms={1e3 * times[0] / STEPS:.1f} g_ms={1e3 * times[1] / STEPS:.1f} "
      f"cpu_step_ms={1e3 * train_cpu / STEPS:.1f} cpu_rtf={ci / 10:.4f}")
