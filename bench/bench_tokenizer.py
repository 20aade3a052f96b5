#!/usr/bin/env python3
"""HF tokenizers encode throughput, single-threaded, on a text file encoded line by line.

Normally run by bench_tokenizer (the C binary), which generates the text, times our encoder
and calls:  python3 bench/bench_tokenizer.py --hf-only TOKENIZER_DIR TEXT_FILE
which prints "hf_mb_s <MB/s>". Without --hf-only it builds nothing and just reports HF.
Needs: pip install tokenizers.
"""
import os
import sys
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"


def main():
    args = [a for a in sys.argv[1:] if a != "--hf-only"]
    if len(args) != 2:
        print(__doc__)
        return 2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args[0], "tokenizer.json"))
    with open(args[1], "rb") as f:
        data = f.read()
    text = data.decode("utf-8")
    lines = text.split("\n")
    t0 = time.perf_counter()
    n = 0
    for line in lines:  # one call per line, like the C benchmark: no batch threading
        n += len(tok.encode(line, add_special_tokens=False).ids)
    sec = time.perf_counter() - t0
    print(f"HF tokens: {n}")
    print(f"hf_mb_s {len(data) / 1e6 / sec:.3f}")
    # ~64 KB chunks cut at line ends (fewer Python calls), same cut as the C benchmark
    chunks, start = [], 0
    while start < len(data):
        end = data.find(b"\n", start + 65536)
        end = len(data) if end < 0 else end + 1
        chunks.append(data[start:end].decode("utf-8"))
        start = end
    tok = Tokenizer.from_file(os.path.join(args[0], "tokenizer.json"))  # cold cache again
    t0 = time.perf_counter()
    for c in chunks:
        tok.encode(c, add_special_tokens=False)
    sec = time.perf_counter() - t0
    print(f"hf_chunk_mb_s {len(data) / 1e6 / sec:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
