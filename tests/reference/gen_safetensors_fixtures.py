"""Writes the safetensors reference files read by tests/test_safetensors.c, using the
`safetensors` Python package (numpy; torch for bf16), into tests/fixtures/safetensors/:

  f32, bf16, f16, i32, i64 .safetensors   one file per dtype, values from the formulas below
  mixed.safetensors                        every dtype in one file (Python's tensor order)
  sharded/                                 a 2-shard set + model.safetensors.index.json, split
                                           and indexed as transformers' save_pretrained does
  ours_given_order.safetensors             a file our C writer produced (tensors in the order
                                           given, unaligned): read back here with the Python
                                           library and checked. To refresh it, run
                                           VT_ST_KEEP=1 build/tests/test_safetensors and copy
                                           ours_given_order.safetensors from the directory it
                                           prints

The C test recomputes the same formulas, so keep both in step. CI does not run this script:
    python3 tests/reference/gen_safetensors_fixtures.py
"""
import json
import os

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as np_save_file
from safetensors.torch import save_file as torch_save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "safetensors")
META = {"format": "pt"}

# bit patterns: +inf, -inf, -0, smallest subnormal, 1.0, quiet NaN
BF16_SPECIAL = [0x7F80, 0xFF80, 0x8000, 0x0001, 0x3F80, 0x7FC0]
F16_SPECIAL = [0x7C00, 0xFC00, 0x8000, 0x0001, 0x3C00, 0x7E00]


def ramp(shape, offset, step, dtype):
    """(i - offset) * step for i in range(numel), exact in every float dtype used."""
    n = int(np.prod(shape)) if len(shape) else 1
    return ((np.arange(n, dtype=np.float64) - offset) * step).reshape(shape).astype(dtype)


def tensors_f32():
    return {
        "a": ramp((2, 3), 5, 0.25, np.float32),
        "b": (np.arange(4, dtype=np.float64) * 0.1).astype(np.float32),  # rounded to f32
        "scalar": np.array(3.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def tensors_bf16():
    w = torch.from_numpy(ramp((3, 4), 6, 0.125, np.float32)).to(torch.bfloat16)
    special = torch.tensor(np.array(BF16_SPECIAL, dtype=np.uint16).view(np.int16)).view(
        torch.bfloat16)
    return {"w": w, "special": special}


def tensors_f16():
    return {
        "h": ramp((2, 2, 2), 4, 0.5, np.float16),
        "special": np.array(F16_SPECIAL, dtype=np.uint16).view(np.float16),
    }


def tensors_i32():
    return {"ids": np.array([-(2**31), -1, 0, 1, 2**31 - 1], dtype=np.int32)}


def tensors_i64():
    pos = (np.arange(6, dtype=np.int64) * 10**12 - 3).reshape(2, 3)
    return {"pos": pos, "small": np.array([-7, 0, 7], dtype=np.int64)}


def tensors_mixed():
    """Every dtype, names chosen so that Python's (dtype, name) order differs from insertion."""
    return {
        "z.f16": torch.from_numpy(ramp((3,), 1, 0.5, np.float16)),
        "y.bf16": torch.from_numpy(ramp((2, 3), 2, 0.25, np.float32)).to(torch.bfloat16),
        "x.i32": torch.tensor([1, -2, 3], dtype=torch.int32),
        "w.f32": torch.from_numpy(ramp((2, 2), 1, 1.5, np.float32)),
        "v.i64": torch.tensor([5, -6], dtype=torch.int64),
        "a.f32": torch.from_numpy(ramp((1,), 0, 1.0, np.float32)),
    }


def tensors_sharded():
    """A tiny Qwen2-like state dict in bf16 (sizes in bytes: 64, 32, 32, 16, 64)."""
    names = [("model.embed_tokens.weight", (8, 4)), ("model.layers.0.mlp.up_proj.weight", (4, 4)),
             ("model.layers.0.mlp.down_proj.weight", (4, 4)), ("model.norm.weight", (8,)),
             ("lm_head.weight", (8, 4))]
    out = {}
    for k, (name, shape) in enumerate(names):
        out[name] = torch.from_numpy(ramp(shape, 3 * k, 0.125, np.float32)).to(torch.bfloat16)
    return out


def split_like_hf(state, max_bytes):
    """huggingface_hub's greedy split: a tensor over the limit gets its own shard."""
    shards, cur, cur_size = [], {}, 0
    for k, t in state.items():
        size = t.numel() * t.element_size()
        if size > max_bytes:
            shards.append({k: t})
            continue
        if cur_size + size > max_bytes:
            shards.append(cur)
            cur, cur_size = {}, 0
        cur[k] = t
        cur_size += size
    if cur:
        shards.append(cur)
    return shards


def write_sharded(state, out_dir, max_bytes):
    os.makedirs(out_dir, exist_ok=True)
    shards = split_like_hf(state, max_bytes)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        torch_save_file(shard, os.path.join(out_dir, fname), metadata=META)
        for k, t in shard.items():
            weight_map[k] = fname
            total += t.numel() * t.element_size()
    n_params = sum(t.numel() for t in state.values())
    index = {"metadata": {"total_parameters": n_params, "total_size": total},
             "weight_map": weight_map}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return len(shards)


def verify_ours():
    """The file tests/test_safetensors.c writes with st_write (tensors in the order given)."""
    path = os.path.join(OUT, "ours_given_order.safetensors")
    if not os.path.exists(path):
        print("no ours_given_order.safetensors to verify")
        return
    want = {"q.f16": torch.from_numpy(ramp((3,), 1, 0.5, np.float16)),
            "p.f32": torch.from_numpy(ramp((2, 2), 1, 1.5, np.float32)),
            "o.bf16": torch.from_numpy(ramp((2, 3), 2, 0.25, np.float32)).to(torch.bfloat16),
            "n.i64": torch.tensor([5, -6], dtype=torch.int64)}
    with safe_open(path, framework="pt") as f:
        assert list(f.keys()) == sorted(want), list(f.keys())
        assert f.metadata() == {"writer": "vita-train"}, f.metadata()
        for k, t in want.items():
            got = f.get_tensor(k)
            assert got.dtype == t.dtype and torch.equal(got, t), (k, got, t)
    print("ours_given_order.safetensors: read back by safetensors", end=" ")
    print("(the Python library accepts our writer's output)")


def main():
    os.makedirs(OUT, exist_ok=True)
    np_save_file(tensors_f32(), os.path.join(OUT, "f32.safetensors"), metadata=META)
    torch_save_file(tensors_bf16(), os.path.join(OUT, "bf16.safetensors"), metadata=META)
    np_save_file(tensors_f16(), os.path.join(OUT, "f16.safetensors"), metadata=META)
    np_save_file(tensors_i32(), os.path.join(OUT, "i32.safetensors"), metadata=META)
    np_save_file(tensors_i64(), os.path.join(OUT, "i64.safetensors"), metadata=META)
    torch_save_file(tensors_mixed(), os.path.join(OUT, "mixed.safetensors"), metadata=META)
    n = write_sharded(tensors_sharded(), os.path.join(OUT, "sharded"), max_bytes=120)
    assert n == 2, n
    verify_ours()
    print("wrote", OUT)


if __name__ == "__main__":
    main()
