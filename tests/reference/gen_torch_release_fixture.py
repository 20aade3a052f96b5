"""Writes tests/fixtures/torch_release/ for tests/test_release_torch.c from our release export of
a tiny seeded speech decoder and codec (bf16 safetensors):

  st/vita_tts_ckpt/{decoder,codec}/   the export as we write it (config.json, model.json,
                                      model.safetensors)
  pt/vita_tts_ckpt/decoder/           the public release's form: model.json as
                                      [idim, odim, {args}] with LLM2TTSCodecAR's argument names
                                      only (none of ours: the importer maps them), final.pt =
                                      torch.save({"model": state dict, "optimizer",
                                      "epoch", "step"}): the state dict is found under "model"
  pt/vita_tts_ckpt/codec/             model.json = TiCodec's hyper-parameters (our keys without
                                      model_type), final.pt = torch.save({"generator": {...},
                                      "quantizer": {...}, "encoder": {...}, "optim_g": {...},
                                      "steps"} and a BatchNorm num_batches_tracked):
                                      the optimizer's tensors and the counter are skipped

The tensors are the export's, unchanged (bf16), so both forms must import to identical weights.
CI does not run this script (it needs torch):
    build/tests/test_release_torch --write /tmp/trel
    python3 tests/reference/gen_torch_release_fixture.py /tmp/trel/rel
"""
import collections
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch_release")
# the arguments LLM2TTSCodecAR reads (VITA-1.5's vita/model/vita_tts/decoder), nothing of ours
PUBLIC_TTS_ARGS = ["idim", "odim", "transformer_attention_dim", "transformer_linear_units",
                   "transformer_num_blocks", "transformer_attention_heads", "encoder_output_dim",
                   "encoder_criterion"]


def main(rel):
    src = os.path.join(rel, "vita_tts_ckpt")
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    for part in ("decoder", "codec"):
        d = os.path.join(OUT, "st", "vita_tts_ckpt", part)
        os.makedirs(d)
        for f in ("config.json", "model.json", "model.safetensors"):
            shutil.copy(os.path.join(src, part, f), d)
    # the decoder
    d = os.path.join(OUT, "pt", "vita_tts_ckpt", "decoder")
    os.makedirs(d)
    idim, odim, args = json.load(open(os.path.join(src, "decoder", "model.json")))
    pub = {k: args[k] for k in PUBLIC_TTS_ARGS}
    pub.update({"encoder_pre_norm_type": "ln", "encoder_drop_rate": 0.0,
                "encoder_upsample_rate": 1, "kv_cache_prefix_finetune": 0,
                "transformer_dropout_rate": 0.1})
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump([idim, odim, pub], f, indent=1)
    sd = load_file(os.path.join(src, "decoder", "model.safetensors"))
    model = collections.OrderedDict(sorted(sd.items()))
    first = next(iter(model.values()))
    optim = {"state": {0: {"exp_avg": torch.zeros(4, dtype=first.dtype), "step": torch.tensor(1200.0)}},
             "param_groups": [{"lr": 1e-4, "params": [0]}]}
    torch.save({"model": model, "optimizer": optim, "epoch": 3, "step": 1200},
               os.path.join(d, "final.pt"))
    # the codec
    d = os.path.join(OUT, "pt", "vita_tts_ckpt", "codec")
    os.makedirs(d)
    h = json.load(open(os.path.join(src, "codec", "model.json")))
    h.pop("model_type", None)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(h, f, indent=1)
    sd = load_file(os.path.join(src, "codec", "model.safetensors"))
    parts = {p: collections.OrderedDict() for p in ("generator", "quantizer", "encoder")}
    for k in sorted(sd):
        p, rest = k.split(".", 1)
        parts[p][rest] = sd[k]
    first = next(iter(parts["generator"].values()))
    parts["optim_g"] = {"state": {0: {"exp_avg": torch.zeros(4, dtype=first.dtype)}}, "param_groups": []}
    parts["steps"] = 1200
    # TiCodec's BatchNorm1d counts its steps; our codec keeps no such counter
    parts["encoder"]["bn.num_batches_tracked"] = torch.tensor(1200)
    torch.save(parts, os.path.join(d, "final.pt"))
    for root, _, files in sorted(os.walk(OUT)):
        for f in sorted(files):
            print(os.path.relpath(os.path.join(root, f), OUT), os.path.getsize(os.path.join(root, f)))


if __name__ == "__main__":
    main(sys.argv[1])
