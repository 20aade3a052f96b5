"""Reference for the speech decoder (model/tts.c): a tiny LLM2TTSCodecAR-style decoder built
from HF transformers' LLaMA layers, with the semantics of Freeze-Omni's models/decoder/decoder.py
(read for semantics, written here from scratch):

- conditioning: rows of a frozen LLM input-embedding table for the text tokens, each row of
  llm_hidden reshaped into llm_hidden / hidden vectors (token i's part j is vector k*i + j)
- NAR layers (`layers_pre_nn`): bidirectional over the conditioning, keys masked past each
  sample's length, RoPE positions 0..Tx-1 (Tx: the batch's longest conditioning)
- AR layers (`layers`): the sequence [BOS, NAR output (padded to Tx)] + [SOS, y (padded)];
  conditioning rows see the valid conditioning, codec rows see the valid conditioning and the
  codec rows up to themselves; positions 0..(1 + Tx + Ty) straight through the padding
- final RMSNorm (`norm`), head `out_fnn` Linear(hidden -> vocab + 4) with bias
- targets y then EOS, PAD (vocab + 3) everywhere else; cross-entropy summed, PAD ignored

The masks are the dense boolean masks of the original (padding in the middle of the sequence);
the C code repacks each sample so a prefix mask does the same, which this fixture checks.

Writes tests/fixtures/tts_tiny/{model.safetensors (decoder weights under the VITA-1.5 names),
llm_embed.safetensors (model.embed_tokens.weight), reference.safetensors (inputs, loss, codec
logits, every gradient)}. Run: python3 tests/reference/gen_tts_fixtures.py"""
import json
import os

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (LlamaDecoderLayer, LlamaRMSNorm,
                                                      LlamaRotaryEmbedding)

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "fixtures", "tts_tiny")
os.makedirs(out, exist_ok=True)

# tiny config: the same shape of model as the full one (vocab 1024 + 4 specials)
CODEC_VOCAB = 1024
BOS, SOS, EOS, PAD = CODEC_VOCAB, CODEC_VOCAB + 1, CODEC_VOCAB + 2, CODEC_VOCAB + 3
HIDDEN, HEADS, FFN, N_NAR, N_AR = 32, 4, 48, 2, 2
LLM_VOCAB, LLM_HIDDEN = 40, 64  # two decoder vectors per text token

torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=CODEC_VOCAB + 4, hidden_size=HIDDEN, intermediate_size=FFN,
                  num_hidden_layers=N_AR, num_attention_heads=HEADS, num_key_value_heads=HEADS,
                  max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0,
                  attention_bias=False, mlp_bias=False, attn_implementation="eager",
                  torch_dtype="float32")


class Decoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(CODEC_VOCAB + 4, HIDDEN, padding_idx=PAD)
        self.layers_pre_nn = torch.nn.ModuleList(LlamaDecoderLayer(cfg, i) for i in range(N_NAR))
        self.layers = torch.nn.ModuleList(LlamaDecoderLayer(cfg, i) for i in range(N_AR))
        self.norm = LlamaRMSNorm(HIDDEN, eps=cfg.rms_norm_eps)
        self.out_fnn = torch.nn.Linear(HIDDEN, CODEC_VOCAB + 4)
        self.rope = LlamaRotaryEmbedding(config=cfg)

    def run(self, layers, x, allowed):
        """allowed: bool [B, T, T]; positions 0..T-1 shared by the batch."""
        pos = torch.arange(x.shape[1]).unsqueeze(0)
        pe = self.rope(x, pos)
        mask = (~allowed).unsqueeze(1) * torch.finfo(x.dtype).min
        for layer in layers:
            x = layer(x, attention_mask=mask, position_ids=pos, position_embeddings=pe)
        return x

    def forward(self, cond, cond_lens, y, y_lens):
        b, tx, _ = cond.shape
        ty = y.shape[1]
        allowed = torch.zeros(b, tx, tx, dtype=torch.bool)
        for i in range(b):
            allowed[i, :, :cond_lens[i]] = True  # queries past the length are never read
        h = self.run(self.layers_pre_nn, cond, allowed)
        h = torch.cat([self.embedding(torch.full((b, 1), BOS)), h], 1)
        tc, cl = h.shape[1], cond_lens + 1
        x = torch.cat([torch.full((b, 1), SOS), y], 1)
        t = tc + ty + 1
        allowed = torch.zeros(b, t, t, dtype=torch.bool)
        for i in range(b):
            n = int(y_lens[i]) + 1
            allowed[i, :cl[i], :cl[i]] = True
            allowed[i, tc:tc + n, :cl[i]] = True
            allowed[i, tc:tc + n, tc:tc + n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
        hid = self.run(self.layers, torch.cat([h, self.embedding(x)], 1), allowed)
        logits = self.out_fnn(self.norm(hid))[:, tc:]
        target = torch.cat([y, torch.full((b, 1), PAD)], 1)
        target[torch.arange(b), y_lens] = EOS
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target,
                                                 ignore_index=PAD, reduction="sum")
        return loss, logits, target


model = Decoder().float()
with torch.no_grad():  # non-trivial norms and bias so that their gradients are checked
    for name, p in model.named_parameters():
        if name.endswith("bias") or "norm" in name:
            p.add_(0.1 * torch.randn_like(p))
llm_embed = 0.5 * torch.randn(LLM_VOCAB, LLM_HIDDEN)

g = torch.Generator().manual_seed(1)
text_lens = torch.tensor([5, 2, 4])
codec_lens = torch.tensor([7, 11, 3])
b, tt, ty = len(text_lens), int(text_lens.max()), int(codec_lens.max())
text = torch.randint(0, LLM_VOCAB, (b, tt), generator=g)
codec = torch.randint(0, CODEC_VOCAB, (b, ty), generator=g)
for i in range(b):
    text[i, text_lens[i]:] = 0  # padding: any id, never read
    codec[i, codec_lens[i]:] = PAD
k = LLM_HIDDEN // HIDDEN
cond = llm_embed[text].reshape(b, tt * k, HIDDEN)
loss, logits, target = model(cond, text_lens * k, codec.clone(), codec_lens)
loss.backward()

weights = {name: p.detach().contiguous() for name, p in model.named_parameters()}
save_file(weights, os.path.join(out, "model.safetensors"))
save_file({"model.embed_tokens.weight": llm_embed.contiguous()},
          os.path.join(out, "llm_embed.safetensors"))
ref = {"text": text.to(torch.int32), "text_lens": text_lens.to(torch.int32),
       "codec": codec.to(torch.int32), "codec_lens": codec_lens.to(torch.int32),
       "target": target.to(torch.int32), "loss": loss.detach().reshape(1),
       "logits": logits.detach().contiguous()}
for name, p in model.named_parameters():
    ref["grad." + name] = p.grad.detach().contiguous()
save_file(ref, os.path.join(out, "reference.safetensors"), metadata={"torch": torch.__version__})
config = {"model_type": "tts_decoder", "hidden_size": HIDDEN, "num_attention_heads": HEADS,
          "intermediate_size": FFN, "nar_layers": N_NAR, "ar_layers": N_AR,
          "codec_vocab": CODEC_VOCAB, "llm_vocab_size": LLM_VOCAB, "llm_hidden_size": LLM_HIDDEN,
          "rope_theta": 10000.0, "rms_norm_eps": 1e-6, "initializer_range": 0.02}
with open(os.path.join(out, "config.json"), "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
print("wrote", out, "loss", loss.item(), "targets", int((target != PAD).sum()))
