#!/usr/bin/env python3
"""Load-back check of `vita export` in HF transformers (not run in CI: needs torch).

Loads an export with AutoModelForCausalLM.from_pretrained(EXPORT, torch_dtype=float32), checks
that no weight is missing or unexpected, and compares its logits on the fixture batch with the
logits vita-train computed from the same weights (the tiny Qwen2 fixture rounded to bf16).

  # both files from the C test (it exports the fixture and dumps its logits):
  python3 tests/reference/check_export_loads.py --test-bin build/tests/test_hf_io
  # or an export and a logits file made earlier (safetensors with input_ids and logits):
  VT_HF_IO_KEEP=/tmp/keep build/tests/test_hf_io
  python3 tests/reference/check_export_loads.py /tmp/keep/export /tmp/keep/logits.safetensors
"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
import transformers
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", nargs="?", help="directory written by vita export")
    ap.add_argument("logits", nargs="?", help="safetensors with input_ids and our logits")
    ap.add_argument("--test-bin", default=os.environ.get("VT_TEST_HF_IO"),
                    help="tests/test_hf_io binary: run it to make the export and the logits")
    args = ap.parse_args()

    tmp = None
    if args.export is None:
        if not args.test_bin:
            ap.error("give EXPORT LOGITS, or --test-bin PATH (or VT_TEST_HF_IO)")
        tmp = tempfile.TemporaryDirectory()
        env = dict(os.environ, VT_HF_IO_KEEP=tmp.name)
        env.setdefault("VT_FIXTURES", os.path.join(ROOT, "tests", "fixtures"))
        env.setdefault("VT_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
        subprocess.run([args.test_bin], env=env, check=True)
        args.export = os.path.join(tmp.name, "export")
        args.logits = os.path.join(tmp.name, "logits.safetensors")
    elif args.logits is None:
        ap.error("give the logits file too")

    print("transformers", transformers.__version__, "torch", torch.__version__)
    print("export:", args.export, sorted(os.listdir(args.export)))
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        args.export, torch_dtype=torch.float32, output_loading_info=True)
    model.eval()
    problems = {k: v for k, v in info.items() if v}  # missing, unexpected, mismatched, errors
    if problems:
        print("FAIL: loading reported", problems)
        return 1

    ours = load_file(args.logits)
    ids = ours["input_ids"].long()
    with torch.no_grad():
        hf = model(input_ids=ids).logits
    want = ours["logits"]
    if hf.shape != want.shape:
        print(f"FAIL: HF logits {tuple(hf.shape)}, ours {tuple(want.shape)}")
        return 1
    diff = (hf - want).abs().max().item()
    scale = want.abs().max().item()
    # f32 forward through a few layers, as in test_qwen2_parity.c: 256 ulps of the largest value
    tol = 256 * 1.1920929e-7 * scale
    print(f"max |HF(export) - ours(bf16 weights)| = {diff:.3e}  (max |logit| {scale:.3f}, "
          f"tolerance {tol:.3e})")
    ref_path = os.path.join(ROOT, "tests", "fixtures", "qwen2_tiny", "reference.safetensors")
    if os.path.exists(ref_path):
        ref = load_file(ref_path)
        if torch.equal(ref["input_ids"].long(), ids):
            print(f"(for scale: max |HF(export) - HF f32 original| = "
                  f"{(hf - ref['logits']).abs().max().item():.3e}, the bf16 rounding)")
    if os.path.exists(os.path.join(args.export, "tokenizer.json")):
        tok = transformers.AutoTokenizer.from_pretrained(args.export)
        print("tokenizer loads:", type(tok).__name__, "vocab", len(tok),
              "'hello world' ->", tok("hello world")["input_ids"])
    if diff > tol:
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
