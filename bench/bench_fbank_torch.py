"""torchaudio.compliance.kaldi.fbank throughput on the same clips as bench_fbank.c (float32,
the VITA options). Usage: bench_fbank_torch.py [CLIP_SECONDS=10] [CLIPS=30] [REPS=3]."""
import os
import sys
import time
import wave

import numpy as np
import soxr
import torch
import torchaudio.compliance.kaldi as kaldi

clip_s = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
clips = int(sys.argv[2]) if len(sys.argv) > 2 else 30
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
src = os.environ.get("BENCH_WAV", "/usr/share/sounds/alsa/Front_Center.wav")
with wave.open(src, "rb") as w:
    rate = w.getframerate()
    a = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
a = soxr.resample(a, rate, 16000, quality="HQ").astype(np.float32)
n = int(clip_s * 16000)
x = torch.from_numpy(np.resize(a, n) * 32768.0)[None]
kw = dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, dither=0.0, energy_floor=0.0,
          sample_frequency=16000.0)
with torch.inference_mode():
    kaldi.fbank(x, **kw)
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(clips):
            kaldi.fbank(x, **kw)
        best = min(best, time.perf_counter() - t0)
print(f"torchaudio fbank: {clips} clips x {clip_s:.1f} s, {torch.get_num_threads()} threads: "
      f"{best:.4f} s -> {clip_s * clips / best:.0f} s of audio per s")
