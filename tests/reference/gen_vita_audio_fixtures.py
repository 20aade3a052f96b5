"""Reference for tests/test_vita_audio.c: a tiny VITA model with both media, in PyTorch float64:
transformers' Qwen2 as the LLM, the InternViT tower + mlp2x_gelu adapter of gen_vit_fixtures.py,
the audio encoder + CNNSubsampling adapter (with 2 prompt embeddings) of gen_audio_enc_fixtures.py,
and the modality head Linear(hidden -> 3) with class-weighted cross-entropy (DESIGN.md §4, §7).

Batch: row 0 holds an image tile (1 position + "\\n") and an audio clip (23 fbank frames -> 5
positions), answered with the speech marker (class 0); row 1 holds a shorter clip (15 frames ->
4 positions) answered with the "do not answer" marker (class 1), and right padding. Each clip's
adapter rows replace the embeddings at its span; labels there are ignored. Loss = LM CE mean over
the counted labels + weighted CE of the head at each clip's last position (weights [1, 5, 1]).
Written: parameters under the release names, inputs, logits, both losses, and the gradient of the
loss for every trainable parameter. Run: python3 tests/reference/gen_vita_audio_fixtures.py
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
import gen_audio_enc_fixtures as A  # noqa: E402
import gen_vit_fixtures as V  # noqa: E402
from fixture_io import write_fixture  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fixtures", "audio", "vita_audio.txt")
VOCAB, HID, SEP, STATES = 64, 16, 7, [60, 61, 62]
VCFG = dict(image_size=28, patch_size=14, hidden_size=16, intermediate_size=32,
            num_hidden_layers=1, num_attention_heads=2, layer_norm_eps=1e-6, llm_hidden=HID)
CONFIG = {
    "model_type": "vita-Qwen2", "vocab_size": VOCAB, "hidden_size": HID, "intermediate_size": 32,
    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
    "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "mm_projector_type": "mlp2x_gelu",
    "mm_hidden_size": 64, "image_newline_token_id": SEP,
    "vision_config": {k: VCFG[k] for k in ("image_size", "patch_size", "hidden_size",
                                           "intermediate_size", "num_hidden_layers",
                                           "num_attention_heads", "layer_norm_eps")},
    "audio_config": {"n_mels": 20, "hidden_size": 16, "num_attention_heads": 2,
                     "intermediate_size": 24, "num_hidden_layers": 2, "chunk_mode": "full",
                     "dropout": 0.0, "audio_prompt_num": 2},
    "modality_head": {"num_classes": 3, "class_weights": [1.0, 5.0, 1.0],
                      "state_token_ids": STATES},
}
T, FRAMES = 24, [23, 15]


def main():
    torch.manual_seed(5)
    torch.set_default_dtype(torch.float64)
    qcfg = Qwen2Config(vocab_size=VOCAB, hidden_size=HID, intermediate_size=32,
                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                       rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=False,
                       attn_implementation="eager")
    llm = Qwen2ForCausalLM(qcfg).double()
    tower = V.Tower(VCFG).double()
    proj = nn.Sequential(nn.Linear(64, HID), nn.GELU(), nn.Linear(HID, HID)).double()
    enc = A.Encoder().double()  # gen_audio_enc_fixtures' sizes: 20 mels, hidden 16, 2 layers
    ad = A.Adapter(16, HID, 2).double()
    head = nn.Linear(HID, 3).double()
    with torch.no_grad():  # parameters away from their defaults, so each one matters
        for p in list(tower.parameters()) + list(proj.parameters()) + list(ad.parameters()):
            p.add_(0.2 * torch.randn_like(p))
        for p in llm.parameters():
            p.add_(0.05 * torch.randn_like(p))
        head.weight.mul_(10.0)
    params = {}
    for k, v in llm.named_parameters():
        params[k] = v
    for k, v in tower.named_parameters():
        params[f"model.vision_tower.vision_tower.{k}"] = v
    params["model.mm_projector.0.weight"], params["model.mm_projector.0.bias"] = proj[0].weight, proj[0].bias
    params["model.mm_projector.2.weight"], params["model.mm_projector.2.bias"] = proj[2].weight, proj[2].bias
    for k, v in enc.params().items():
        if ".ctc." not in k:
            params[k] = v
    for k, v in ad.named_parameters():
        params[f"model.audio_encoder.adpter.{k}" if "prompt" not in k else
               "model.audio_encoder.prompt_embeddings.weight"] = v
    params["model.predict_head.weight"], params["model.predict_head.bias"] = head.weight, head.bias

    # the batch: token ids, spans, labels
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(8, 58, (2, T), generator=g)
    lengths = [T, 17]
    img_span = (0, 2, 1)  # one 28px tile -> (2/2)^2 = 1 position, then "\n"
    tokens[0, 3] = SEP
    a_pos = [5, 4]  # one prompt-extended clip per row: 2 prompts + ceil(enc/2) rows
    n_pos = [2 + (((f - 1) // 2 - 1) // 2 + 1) // 2 for f in FRAMES]
    spans = [(0, a_pos[0], n_pos[0]), (1, a_pos[1], n_pos[1])]
    marker = [(0, 12, STATES[0]), (1, 10, STATES[1])]
    for r, t, m in marker:
        tokens[r, t] = m
    tokens[1, lengths[1]:] = 0
    for r, s, c in [img_span] + spans:
        tokens[r, s:s + c] = 0
    labels = torch.full((2, T), -100)
    for r, t, _ in marker:
        labels[r, t:lengths[r]] = tokens[r, t:lengths[r]]
    label_tokens = int((labels[:, 1:] != -100).sum())

    px = torch.randn(1, 3, 28, 28, generator=g)
    fb = torch.randn(2, max(FRAMES), 20, generator=g) * 3 + 1
    fb[1, FRAMES[1]:] = 0.0
    flen = torch.tensor(FRAMES)

    # forward
    emb = llm.model.embed_tokens(tokens)
    vis = proj(V.features(tower(px)))  # [1, 1, HID]
    h, hl = enc(fb, flen)
    au, al = ad(h, hl)
    rows = []
    for r in range(2):
        parts, t = [], 0
        todo = sorted([(img_span[1], img_span[2], vis[0]) if r == img_span[0] else None,
                       (spans[r][1], spans[r][2], au[r, :spans[r][2]])],
                      key=lambda x: -1 if x is None else x[0])
        for item in todo:
            if item is None:
                continue
            s, c, val = item
            parts += [emb[r, t:s], val]
            t = s + c
        parts.append(emb[r, t:])
        rows.append(torch.cat(parts, 0))
    x = torch.stack(rows)
    mask = torch.zeros(2, T, dtype=torch.long)
    for r in range(2):
        mask[r, :lengths[r]] = 1
    out = llm.model(inputs_embeds=x, attention_mask=mask)
    hidden = out.last_hidden_state
    logits = llm.lm_head(hidden)
    lm = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1),
                         ignore_index=-100, reduction="sum")
    last = torch.stack([hidden[r, s + c - 1] for r, s, c in spans])
    cls = torch.tensor([0, 1])
    mod = F.cross_entropy(head(last), cls, weight=torch.tensor([1.0, 5.0, 1.0]))
    loss = lm / label_tokens + mod
    loss.backward()

    tensors = {}
    for k, v in params.items():
        tensors[f"param.{k}"] = v
    tensors["tokens"] = tokens.int()
    tensors["labels"] = labels.int()
    tensors["lengths"] = torch.tensor(lengths).int()
    tensors["img_spans"] = torch.tensor([img_span]).int()
    tensors["pixels"] = px
    tensors["fbank"] = fb
    tensors["fbank_lengths"] = flen.int()
    tensors["audio_spans"] = torch.tensor(spans).int()
    tensors["logits"] = torch.cat([logits[r, :lengths[r]] for r in range(2)], 0)
    tensors["lm_sum"] = lm.reshape(1)
    tensors["modality"] = mod.reshape(1)
    tensors["label_tokens"] = torch.tensor([label_tokens]).int()
    for k, v in params.items():
        tensors[f"grad.{k}"] = torch.zeros_like(v) if v.grad is None else v.grad
    cmt = "tiny VITA model with an image and two audio clips; gen_vita_audio_fixtures.py\n"
    cmt += "config " + json.dumps(CONFIG)
    write_fixture(OUT, tensors, cmt)
    with open(os.path.join(os.path.dirname(OUT), "vita_audio.json"), "w") as f:
        json.dump(CONFIG, f, indent=1)
        f.write("\n")
    print(f"lm {lm.item():.6f} over {label_tokens}, modality {mod.item():.6f}")


if __name__ == "__main__":
    main()
