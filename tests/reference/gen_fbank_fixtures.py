"""Reference fbank features for tests/test_fbank.c, from torchaudio.compliance.kaldi.fbank.

Writes tests/fixtures/audio/: synthetic WAVs (numpy, fixed seed), a short espeak-ng clip, and
fbank.txt with torchaudio's features for each case. Real speech is Debian's alsa-utils recording
/usr/share/sounds/alsa/Front_Center.wav (48 kHz, read in place, not copied: see setup.sh); its
16 kHz case is resampled with python-soxr (the same libsoxr, HQ), as data/audio.c does.

Run: python3 tests/reference/gen_fbank_fixtures.py   (torch, torchaudio, soxr, espeak-ng)
torchaudio's compliance.kaldi is pure Python: torchaudio 2.11.1 imports over torch 2.15.
"""
import os
import subprocess
import sys
import wave

import numpy as np
import soxr
import torch
import torchaudio.compliance.kaldi as kaldi

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "audio")
REAL = "/usr/share/sounds/alsa/Front_Center.wav"


def write_wav(path, x, rate):
    """x: float array [n] or [n, ch] in [-1, 1); stored as int16 (x * 32768, clipped)."""
    a = np.clip(np.round(np.asarray(x) * 32768.0), -32768, 32767).astype("<i2")
    ch = 1 if a.ndim == 1 else a.shape[1]
    with wave.open(path, "wb") as w:
        w.setnchannels(ch)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(a.tobytes())


def read_wav(path):
    """-> float32 [ch, n] in [-1, 1) (int16 / 32768, as libsndfile reads), rate."""
    with wave.open(path, "rb") as w:
        ch, rate, n = w.getnchannels(), w.getframerate(), w.getnframes()
        assert w.getsampwidth() == 2
        a = np.frombuffer(w.readframes(n), dtype="<i2").reshape(n, ch)
    return (a.T.astype(np.float32) / 32768.0), rate


def fbank(x, dtype=torch.float64, **kw):
    """x: float32 [n] in [-1, 1); the encoder's scaling (x 32768) then Kaldi fbank.

    The reference runs in float64: in float32 torchaudio's own FFT rounding (about 1e-7 of a
    frame's peak) moves the log of a band 100 dB below the peak by up to 5e-3 (pure tones after
    pre-emphasis), more than the 1e-3 the C code must meet. Real speech is also kept in f32."""
    opts = dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0,
                energy_floor=0.0, sample_frequency=16000.0)
    opts.update(kw)
    w = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(dtype) * 32768.0
    return kaldi.fbank(w, **opts)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261201)
    t = np.arange(16000) / 16000.0
    # chirp 100 -> 7000 Hz, a harmonic, noise, an amplitude envelope
    chirp = 0.4 * np.sin(2 * np.pi * (100 * t + 0.5 * 6900 * t * t))
    chirp += 0.1 * np.sin(2 * np.pi * 3 * (100 * t + 0.5 * 6900 * t * t))
    chirp = chirp * (0.3 + 0.7 * np.abs(np.sin(2 * np.pi * 1.5 * t))) + 0.01 * rng.standard_normal(
        16000)
    write_wav(os.path.join(OUT, "chirp16k.wav"), chirp, 16000)
    # digital silence, then noise of a few LSB: the log floor and tiny energies
    quiet = np.zeros(4000)
    quiet[2000:] = rng.integers(-3, 4, 2000) / 32768.0
    write_wav(os.path.join(OUT, "quiet16k.wav"), quiet, 16000)
    # stereo: channel 0 a tone pair, channel 1 noise (channel 0 vs downmix)
    t2 = np.arange(8000) / 16000.0
    st = np.stack([0.3 * np.sin(2 * np.pi * 440 * t2) + 0.2 * np.sin(2 * np.pi * 2500 * t2),
                   0.2 * rng.standard_normal(8000)], axis=1)
    write_wav(os.path.join(OUT, "stereo16k.wav"), st, 16000)
    # 8 kHz tone sweep (another rate and FFT size)
    t8 = np.arange(4000) / 8000.0
    write_wav(os.path.join(OUT, "tone8k.wav"),
              0.5 * np.sin(2 * np.pi * (200 * t8 + 0.5 * 3000 * t8 * t8)), 8000)
    # synthetic speech (espeak-ng 1.51, 22050 Hz)
    esp = os.path.join(OUT, "espeak_hello.wav")
    if not os.path.exists(esp):
        subprocess.run(["espeak-ng", "-w", esp, "hello world"], check=True)

    cases = {}
    x, _ = read_wav(os.path.join(OUT, "chirp16k.wav"))
    cases["chirp_default"] = fbank(x[0])
    cases["chirp_nosnip"] = fbank(x[0], snip_edges=False)
    cases["chirp_variant"] = fbank(x[0], num_mel_bins=40, window_type="hamming",
                                   round_to_power_of_two=False, use_power=False, preemphasis_coefficient=0.5,
                                   remove_dc_offset=False, low_freq=64.0, high_freq=-400.0)
    cases["chirp_logoff"] = fbank(x[0], use_log_fbank=False, window_type="blackman",
                                  frame_length=20.0, frame_shift=12.5)
    cases["chirp_hanning"] = fbank(x[0], window_type="hanning", num_mel_bins=64)
    cases["chirp_rect"] = fbank(x[0], window_type="rectangular", num_mel_bins=23)
    q, _ = read_wav(os.path.join(OUT, "quiet16k.wav"))
    cases["quiet_default"] = fbank(q[0])
    s, _ = read_wav(os.path.join(OUT, "stereo16k.wav"))
    cases["stereo_ch0"] = fbank(s[0])
    cases["stereo_mix"] = fbank(s.mean(axis=0))
    x8, _ = read_wav(os.path.join(OUT, "tone8k.wav"))
    cases["tone8k"] = fbank(x8[0], sample_frequency=8000.0, num_mel_bins=40)

    e, er = read_wav(esp)
    e16 = soxr.resample(e[0], er, 16000, quality="HQ").astype(np.float32)
    cases["espeak_16k"] = fbank(e16)
    real, rr = read_wav(REAL)
    assert rr == 48000
    cases["real48k"] = fbank(real[0], sample_frequency=48000.0)
    r16 = soxr.resample(real[0], rr, 16000, quality="HQ").astype(np.float32)
    cases["real_16k"] = fbank(r16)
    cases["real48k_f32"] = fbank(real[0], dtype=torch.float32, sample_frequency=48000.0)
    cases["real_16k_f32"] = fbank(r16, dtype=torch.float32)
    cases["espeak_16k_f32"] = fbank(e16, dtype=torch.float32)

    # dither: mean over frames of torchaudio's features of digital silence with dither 1
    torch.manual_seed(0)
    z = torch.zeros(1, 16000 * 20)
    dz = kaldi.fbank(z, num_mel_bins=80, dither=1.0, energy_floor=0.0)
    tensors = {}
    for k, v in cases.items():
        tensors[k] = v
    tensors["dither_silence_mean"] = dz.mean(0)
    tensors["espeak_16k_len"] = np.array([len(e16)], dtype=np.int32)
    tensors["espeak_16k_wave"] = e16[4000:4200] * 32768.0
    tensors["real_16k_len"] = np.array([len(r16)], dtype=np.int32)
    tensors["real_16k_wave"] = r16[8000:8200] * 32768.0
    # CMVN as WeNet's load_cmvn computes it from stats over chirp_default
    f = cases["chirp_default"].double().numpy()
    mean_stat, var_stat, n = f.sum(0), (f * f).sum(0), f.shape[0]
    mean = mean_stat / n
    var = np.maximum(var_stat / n - mean * mean, 1e-20)
    tensors["cmvn_mean"] = mean
    tensors["cmvn_istd"] = 1.0 / np.sqrt(var)
    write_fixture(os.path.join(OUT, "fbank.txt"), tensors,
                  "torchaudio.compliance.kaldi.fbank references; gen_fbank_fixtures.py")


if __name__ == "__main__":
    main()
