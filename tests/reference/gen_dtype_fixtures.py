"""f32 -> bf16 / f16 conversions of edge values (zeros, ties, overflow, subnormals, Inf)
as PyTorch rounds them (round to nearest even). Writes tests/fixtures/dtype/conversions.txt."""
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from fixture_io import write_fixture  # noqa: E402

vals = [0.0, -0.0, 1.0, -2.5, 3.14159265, 0.1, 7.0e-6,
        65504.0, 65519.99, 65520.0, 1e38, 3.4e38, float("inf"), float("-inf"),
        1.00390625, 1.01171875, 1.0009765625, 1.00048828125, 1.00146484375, -1.00146484375,
        1e-8, 5.96e-8, 2.98e-8, 2.9802322e-08, 2.9802326e-08, 6.1e-5, 6.097555e-05,
        1e-40, -1e-45, 1.1754943e-38, 3.0517578e-05, 4.5776367e-05]
f = torch.tensor(vals, dtype=torch.float32)
bits = [struct.unpack("<I", struct.pack("<f", v))[0] for v in f.tolist()]
# store 32-bit patterns split in 16-bit halves so they fit the i32 fixture format exactly
write_fixture(os.path.join(os.path.dirname(__file__), "..", "fixtures", "dtype", "conversions.txt"), {
    "f32_hi": np.array([b >> 16 for b in bits], dtype=np.int64),
    "f32_lo": np.array([b & 0xffff for b in bits], dtype=np.int64),
    "bf16": f.to(torch.bfloat16).view(torch.int16).to(torch.int64) & 0xffff,
    "f16": f.to(torch.float16).view(torch.int16).to(torch.int64) & 0xffff,
}, comment=f"torch {torch.__version__}: f32 bit patterns (hi, lo halves) and their bf16 / f16 bits")
