"""A small randomly initialised Qwen2 saved by HF transformers, with reference logits, loss
and every parameter's gradient on a fixed batch (labels with -100 holes), for the parity test
of model/qwen2.c. Writes tests/fixtures/qwen2_tiny/{config.json, model.safetensors,
reference.safetensors}. Run: python3 tests/reference/gen_qwen2_fixtures.py"""
import os

import torch
from safetensors.torch import save_file
from transformers import Qwen2Config, Qwen2ForCausalLM

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "..", "fixtures", "qwen2_tiny")
os.makedirs(out, exist_ok=True)

torch.manual_seed(0)
cfg = Qwen2Config(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
                  attn_implementation="eager", torch_dtype="float32")
model = Qwen2ForCausalLM(cfg).float()
with torch.no_grad():  # make biases and norms non-trivial so their gradients are checked
    for name, p in model.named_parameters():
        if name.endswith("bias") or "norm" in name:
            p.add_(0.1 * torch.randn_like(p))
model.save_pretrained(out, safe_serialization=True)

ids = torch.randint(0, cfg.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
labels = ids.clone()
labels[0, :3] = -100
labels[1, 7:9] = -100
res = model(input_ids=ids, labels=labels)
res.loss.backward()
ref = {"input_ids": ids.to(torch.int32), "labels": labels.to(torch.int32),
       "logits": res.logits.detach().contiguous(), "loss": res.loss.detach().reshape(1)}
for name, p in model.named_parameters():
    ref["grad." + name] = p.grad.detach().contiguous()
save_file(ref, os.path.join(out, "reference.safetensors"), metadata={"torch": torch.__version__})
print("wrote", out, "loss", res.loss.item())
