"""Writes the torch.save checkpoints read by tests/test_torch_pt.c into tests/fixtures/torch_pt/,
with torch itself, and beside each the values the C reader must give, saved with safetensors
from the same tensors (floats as f32, integers as i64, under the names the reader gives):

  state.pt    {"model": state dict, "epoch", "lr", "name", "opt": [tensor], "none"}: f32, bf16,
              f16 and int64 tensors, a Parameter, a transposed (non-contiguous) view, an offset
              slice, two views of one shared storage, a 0-d tensor, and a Conv1d under
              torch.nn.utils.weight_norm (weight_g / weight_v) and one under
              torch.nn.utils.parametrizations.weight_norm (read as weight_g / weight_v too)
  state.safetensors   what torch_pt_write_safetensors must write for state.pt ("model." dropped)
  codec.pt    {"generator": {...}, "quantizer": {...}, "encoder": {...}}: TiCodec's layout
  codec.safetensors   its tensors as generator.*, quantizer.*, encoder.*
  legacy.pt   the pre-1.6 format (_use_new_zipfile_serialization=False): refused
  evil.pt     a zip archive whose pickle calls os.system on load: refused, nothing run

It also writes the fuzz seeds tests/fuzz/corpus/torch_pt/seed-* (data.pkl of state.pt and
codec.pt and a few hand-made pickles; tests/fuzz/torch_pt_fuzz_one.h wraps each in an archive).
CI does not run this script:
    python3 tests/reference/gen_torch_pt_fixtures.py
"""
import collections
import io
import os
import pickle
import zipfile

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "torch_pt")
CORPUS = os.path.join(HERE, "..", "fuzz", "corpus", "torch_pt")


def ramp(n, scale, off=0.0):
    return (torch.arange(n, dtype=torch.float64) * scale + off).float()


def expected(sd):
    """What the C reader gives: contiguous f32 for floats, i64 for integers."""
    out = {}
    for k, v in sd.items():
        v = v.detach()
        out[k] = (v.float() if v.is_floating_point() else v.long()).contiguous().clone()
    return out


def state_dict():
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    sd["lin.weight"] = torch.nn.Parameter(ramp(6, 0.25, -0.5).reshape(2, 3))
    sd["lin.bias"] = ramp(2, 1.5)
    sd["emb.weight"] = ramp(12, 0.125, -1).reshape(4, 3).to(torch.bfloat16)
    sd["half"] = ramp(5, 0.5, -1).to(torch.float16)
    sd["steps"] = torch.tensor([3, -2, 1 << 40], dtype=torch.int64)
    sd["count"] = torch.tensor(7, dtype=torch.int64)  # 0-d, like num_batches_tracked
    base = ramp(12, 1.0).reshape(3, 4)
    sd["view_t"] = base.t()  # non-contiguous: stride (1, 4)
    sd["slice"] = base[1:3, 1:]  # offset 5, stride (4, 1)
    shared = ramp(10, -0.75, 2)
    sd["shared_a"] = shared[:6].view(2, 3)
    sd["shared_b"] = shared[4:]  # the same storage, offset 4
    conv = torch.nn.utils.weight_norm(torch.nn.Conv1d(2, 3, 3))
    for k, v in conv.state_dict().items():
        sd["wn." + k] = v
    pconv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(2, 2, 1))
    for k, v in pconv.state_dict().items():
        sd["pwn." + k] = v
    return sd


def renamed(sd):
    out = {}
    for k, v in sd.items():
        k = k.replace(".parametrizations.weight.original0", ".weight_g")
        k = k.replace(".parametrizations.weight.original1", ".weight_v")
        out[k] = v
    return out


def codec():
    torch.manual_seed(1)
    gen = torch.nn.Module()
    gen.conv_pre = torch.nn.utils.weight_norm(torch.nn.Conv1d(4, 4, 3))
    gen.ups = torch.nn.ModuleList([torch.nn.utils.weight_norm(torch.nn.ConvTranspose1d(4, 2, 4, 2))])
    q = torch.nn.Module()
    q.codebook = torch.nn.Embedding(8, 4)
    enc = torch.nn.Module()
    enc.conv_post = torch.nn.Conv1d(4, 4, 1)
    enc.bn = torch.nn.BatchNorm1d(4)
    return {"generator": gen.state_dict(), "quantizer": q.state_dict(), "encoder": enc.state_dict()}


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def pkl_of(path):
    with zipfile.ZipFile(path) as z:
        name = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        return z.read(name)


def main():
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(CORPUS, exist_ok=True)
    sd = state_dict()
    torch.save({"model": sd, "epoch": 7, "lr": 1e-3, "name": "fixture", "none": None,
                "opt": [torch.ones(2)], "flags": (True, False)}, os.path.join(OUT, "state.pt"))
    save_file(expected(renamed(sd)), os.path.join(OUT, "state.safetensors"))
    c = codec()
    torch.save(c, os.path.join(OUT, "codec.pt"))
    flat = {f"{part}.{k}": v for part, d in c.items() for k, v in d.items()}
    save_file(expected(flat), os.path.join(OUT, "codec.safetensors"))
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "legacy.pt"),
               _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(os.path.join(OUT, "evil.pt"), "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
        z.writestr("evil/byteorder", "little")
        z.writestr("evil/version", "3\n")
    # fuzz seeds: pickles, wrapped by the harness into an archive with storages 0..3
    seeds = {
        "seed-state": pkl_of(os.path.join(OUT, "state.pt")),
        "seed-codec": pkl_of(os.path.join(OUT, "codec.pt")),
        "seed-evil": pickle.dumps({"w": Evil()}, protocol=2),
        "seed-plain": pickle.dumps({"a": 1, "b": [1.5, "x", None], "c": {"d": (1, 2)}}, protocol=2),
    }
    buf = io.BytesIO()
    torch.save({"a": torch.ones(2, 2), "b": torch.zeros(3, dtype=torch.int64)}, buf)
    seeds["seed-small"] = pkl_of(io.BytesIO(buf.getvalue()))
    for name, data in seeds.items():
        with open(os.path.join(CORPUS, name), "wb") as f:
            f.write(data)
    for n in sorted(os.listdir(OUT)):
        print(n, os.path.getsize(os.path.join(OUT, n)))


if __name__ == "__main__":
    main()
