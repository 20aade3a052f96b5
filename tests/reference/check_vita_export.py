#!/usr/bin/env python3
"""PyTorch loading check of a VITA-1.5 release export (not run in CI: needs torch).

Builds a VITA model in PyTorch from the public semantics, with the release's module tree so that
its state_dict has the release's names: Qwen2 from transformers (model.embed_tokens,
model.layers.N, model.norm, lm_head), the InternViT tower of gen_vit_fixtures.py under
model.vision_tower.vision_tower, mlp2x_gelu as model.mm_projector.{0,2}, the WeNet-style audio
encoder of gen_audio_enc_fixtures.py rebuilt as the release's whaleEncoder tree
(model.audio_encoder.encoder.{global_cmvn, enc.0.core.{conv.0, conv.2, out.0},
enc.1.{embed.0, embed.1, encoders.N, after_norm}}) and CNNSubsampling as
model.audio_encoder.adpter.{conv1d2, bn2, project}. It loads the export's shards with
load_state_dict(strict=True) (no missing or unexpected key), runs the sample of
sample.safetensors (one row: text, an image tile's span, text, an audio clip's span, text; the
tile's adapter outputs and the clip's replace the input embeddings there, as the public
prepare_inputs_labels_for_multimodal splices them) in float64, and compares the logits, vision
tokens and audio tokens with the ones our C side wrote. It also checks that the side
directories the release's loader opens exist (mm_vision_tower with config.json and
preprocessor_config.json, mm_audio_encoder with train.yaml and global_cmvn).

  python3 tests/reference/check_vita_export.py [tests/fixtures/vita_release]
  python3 tests/reference/check_vita_export.py runs/demo/release   # any export: loading only
  (the fixture is written by: build/tests/test_release_vita --write DIR)
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers
import yaml
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_audio_enc_fixtures as A  # noqa: E402
import gen_vit_fixtures as VIT  # noqa: E402


class Seq(nn.Module):
    """A container whose children are named "0", "1", ... (the release's nn.Sequential slots)."""

    def __init__(self, **mods):
        super().__init__()
        for k, m in mods.items():
            self.add_module(k.lstrip("_"), m)


class WhaleEncoder(nn.Module):
    def __init__(self, ac):
        super().__init__()
        A.N_MELS, A.HID = ac["n_mels"], ac["hidden_size"]
        A.HEADS, A.FFN_DIM = ac["num_attention_heads"], ac["intermediate_size"]
        hid, fo = A.HID, ((A.N_MELS - 1) // 2 - 1) // 2
        self.eps = ac["norm_eps"]
        self.global_cmvn = nn.Module()
        self.global_cmvn.register_buffer("mean", torch.zeros(A.N_MELS))
        self.global_cmvn.register_buffer("istd", torch.ones(A.N_MELS))
        core = nn.Module()
        core.conv = nn.Sequential(nn.Conv2d(1, hid, 3, 2), nn.ReLU(), nn.Conv2d(hid, hid, 3, 2),
                                  nn.ReLU())
        core.out = nn.Sequential(nn.Linear(hid * fo, hid))
        sub = nn.Module()
        sub.core = core
        tr = nn.Module()
        tr.embed = nn.Sequential(nn.Linear(hid, hid), nn.LayerNorm(hid, eps=self.eps))
        tr.encoders = nn.ModuleList([A.Block() for _ in range(ac["num_hidden_layers"])])
        tr.after_norm = nn.LayerNorm(hid, eps=self.eps)
        self.enc = nn.ModuleList([sub, tr])
        self.hid = hid

    def forward(self, x, lengths):
        b, t, _ = x.shape
        valid = torch.arange(t)[None] < lengths[:, None]
        x = (x - self.global_cmvn.mean) * self.global_cmvn.istd * valid[..., None]
        core, tr = self.enc[0].core, self.enc[1]
        x = core.conv(x[:, None])
        b, c, t2, f = x.shape
        x = core.out(x.transpose(1, 2).reshape(b, t2, c * f))
        mask = valid[:, None, :][:, :, 2::2][:, :, 2::2]
        x = torch.relu(tr.embed(x)) * math.sqrt(self.hid)
        pe = A.sinusoids(t2, self.hid).to(x.dtype)
        full = mask.expand(b, t2, t2)
        for blk in tr.encoders:
            x = blk(x, pe, full)
        return tr.after_norm(x), mask.squeeze(1).sum(1)


class CNNSubsampling(nn.Module):
    def __init__(self, enc, llm, kernel=5):
        super().__init__()
        self.conv1d2 = nn.Conv1d(enc, 2 * enc, kernel, 2, 0)
        self.bn2 = nn.LayerNorm(2 * enc, eps=1e-3)
        self.project = nn.Linear(2 * enc, llm)

    def forward(self, h, lengths):
        valid = torch.arange(h.shape[1])[None] < lengths[:, None]
        x = F.pad((h * valid[..., None]).transpose(1, 2), (0, 4))
        x = self.conv1d2(x).transpose(1, 2)
        return self.project(F.gelu(self.bn2(x)))


class VitaRef(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        q = {k: v for k, v in cfg.items() if k not in ("vision_config", "audio_config",
                                                         "architectures", "model_type")}
        qc = transformers.Qwen2Config(**q)
        qc._attn_implementation = "eager"
        lm = transformers.Qwen2ForCausalLM(qc)
        self.model = lm.model
        self.tied = bool(cfg.get("tie_word_embeddings", False))  # HF writes no lm_head then
        if not self.tied:
            self.lm_head = lm.lm_head
        vc = dict(cfg["vision_config"])
        vc["layer_norm_eps"] = vc.get("layer_norm_eps", 1e-6)
        self.model.vision_tower = nn.Module()
        self.model.vision_tower.vision_tower = VIT.Tower(vc)
        llm = cfg["hidden_size"]
        self.model.mm_projector = nn.Sequential(nn.Linear(cfg["mm_hidden_size"], llm), nn.GELU(),
                                                nn.Linear(llm, llm))
        self.model.audio_encoder = nn.Module()
        self.model.audio_encoder.encoder = WhaleEncoder(cfg["audio_config"])
        self.model.audio_encoder.adpter = CNNSubsampling(cfg["audio_config"]["hidden_size"], llm)

    def vision_tokens(self, px):
        return self.model.mm_projector(VIT.features(self.model.vision_tower.vision_tower(px)))

    def audio_tokens(self, fbank):
        lengths = torch.tensor([fbank.shape[1]] * fbank.shape[0])
        h, hl = self.model.audio_encoder.encoder(fbank, lengths)
        return self.model.audio_encoder.adpter(h, hl)

    def logits(self, tokens, spans):
        """spans: [(row, start, rows [n, hidden])]: those positions take the given embeddings."""
        emb = self.model.embed_tokens(tokens).clone()
        for row, start, x in spans:
            emb[row, start:start + x.shape[0]] = x
        h = self.model(inputs_embeds=emb).last_hidden_state
        return F.linear(h, self.model.embed_tokens.weight) if self.tied else self.lm_head(h)


def load_shards(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    sd = {}
    for f in files:
        sd.update(load_file(os.path.join(d, f)))
    return sd


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "fixtures", "vita_release")
    cfg = json.load(open(os.path.join(d, "config.json")))
    assert cfg["model_type"] == "vita-Qwen2" and cfg["architectures"] == ["VITAQwen2ForCausalLM"]
    assert cfg["mm_projector_type"] == "mlp2x_gelu"
    fails = 0
    for key, files in (("mm_vision_tower", ("config.json", "preprocessor_config.json")),
                       ("mm_audio_encoder", ("train.yaml", "global_cmvn"))):
        side = cfg[key] if os.path.isabs(cfg[key]) else os.path.join(d, cfg[key])
        for f in files:
            if not os.path.exists(os.path.join(side, f)):
                print(f"FAIL: {key} {side} lacks {f}")
                fails += 1
    ty = yaml.safe_load(open(os.path.join(d, cfg["mm_audio_encoder"], "train.yaml")))
    tcfg = ty["encoder_conf"]["para_conf"]["transformer"]
    assert tcfg["transformer-num-blocks"] == cfg["audio_config"]["num_hidden_layers"]
    torch.manual_seed(0)
    model = VitaRef(cfg).double().eval()
    sd = {k: v.double() for k, v in load_shards(d).items()}
    res = model.load_state_dict(sd, strict=True)  # raises on any missing or unexpected key
    print(f"loaded {len(sd)} tensors with strict=True: missing {res.missing_keys}, "
          f"unexpected {res.unexpected_keys}")
    if not os.path.exists(os.path.join(d, "sample.safetensors")):  # an export of a real run
        print("no sample.safetensors: loading checked only")
        return 1 if fails else 0
    s = load_file(os.path.join(d, "sample.safetensors"))
    with torch.no_grad():
        vis = model.vision_tokens(s["pixel_values"].double())
        aud = model.audio_tokens(s["fbank"].double())
        ir, ar = s["image_span"][0].tolist(), s["audio_span"][0].tolist()
        logits = model.logits(s["tokens"].long(), [(ir[0], ir[1], vis[0]), (ar[0], ar[1], aud[0])])
    for name, ref in (("vision_tokens", vis), ("audio_tokens", aud), ("logits", logits)):
        ours = s[name].double()
        d_max = (ours - ref).abs().max().item()
        scale = ref.abs().max().item()
        ok = d_max <= 1e-4 * max(scale, 1.0)
        fails += not ok
        print(f"{'ok' if ok else 'FAIL'} {name} {tuple(ref.shape)}: max |C - torch| {d_max:.3g} "
              f"(scale {scale:.3g})")
    print("torch", torch.__version__, "transformers", transformers.__version__)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
