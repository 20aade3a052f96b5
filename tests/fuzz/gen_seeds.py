"""Seed corpora for the libFuzzer harnesses in tests/fuzz (small valid and near-valid inputs
for each parser). Run from the repo root: python3 tests/fuzz/gen_seeds.py. The fuzzers add
what they find to the same directories; these seeds only give them a start."""
import hashlib
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(kind, data, name=None):
    """Writes one seed; a named one keeps its name (unit tests read it by name)."""
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(ROOT, kind)
    os.makedirs(d, exist_ok=True)
    name = "seed-" + (name or hashlib.sha1(data).hexdigest()[:16])
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def byte_chars():
    out, n = [], 0
    for b in range(256):
        keep = 33 <= b <= 126 or 161 <= b <= 172 or 174 <= b <= 255
        out.append(chr(b) if keep else chr(256 + n))
        if not keep:
            n += 1
    return out


def tokenizer(merges=(), added=(), extra_vocab=None, regex=None, seq=False):
    bc = byte_chars()
    vocab = {c: i for i, c in enumerate(bc)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    if extra_vocab:
        vocab.update(extra_vocab)
    split = {"type": "Split", "pattern": {"Regex": regex or r"\s?\w+|\s+|[^\s\w]+"},
             "behavior": "Isolated", "invert": False}
    pre = {"type": "Sequence", "pretokenizers": [split, {"type": "ByteLevel"}]} if seq else split
    return json.dumps({
        "model": {"type": "BPE", "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": pre,
        "added_tokens": [{"id": i, "content": c, "special": s} for i, c, s in added],
    })


def tokenizer_seeds():
    g = "\u0120"  # byte-level space
    m = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), (g, "w"), ("o", "r"), (g + "w", "or")]
    put("tokenizer", tokenizer())
    put("tokenizer", tokenizer(m))
    put("tokenizer", tokenizer(m, [(300, "<|im_end|>", True), (301, "<|x|>", False)], seq=True))
    put("tokenizer", tokenizer(m, [(256 + len(m), "<s>", True)]))
    put("tokenizer", tokenizer(m, regex="(?i:'s|'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+"))
    bad = json.loads(tokenizer(m, [(300, "<|a|>", True)]))
    bad["model"]["vocab"]["zz"] = 2 ** 31
    put("tokenizer", json.dumps(bad))
    bad["model"]["vocab"]["zz"] = -1
    put("tokenizer", json.dumps(bad))
    bad = json.loads(tokenizer(m, [(4294967296, "<|a|>", True)]))
    put("tokenizer", json.dumps(bad))
    put("tokenizer", tokenizer(m)[:300])


def copy(kind, path):
    with open(path, "rb") as f:
        put(kind, f.read())


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")


def jsonl_seeds():
    for name in ("good.json", "bad_array.json", "mixed.jsonl"):
        copy("jsonl", os.path.join(FIXTURES, "data", name))
    good = {"id": "a", "set": "demo", "image": ["x.jpg"], "inserted_id": 1, "end_tag": False,
            "conversations": [{"from": "human", "value": "<image>hi"},
                              {"from": "gpt", "value": "yo"}]}
    line = json.dumps(good)
    put("jsonl", line + "\n" + "\0" * 8 + "\n" + line + "\n")
    put("jsonl", "\ufeff[" + line + "," + line[:-3] + "," + line + "]")
    put("jsonl", "[" + line + " x, " + line + "]")
    put("jsonl", b"\xef\xbb[" + line.encode() + b"]")
    put("jsonl", b"{\"id\": \"\xff\xfe\", \"conversations\": []}\n" + line.encode())
    copy("jsonl", os.path.join(FIXTURES, "tts", "speech.jsonl"))  # stage 3.2 speech lines
    speech = json.dumps({"id": "s", "set": "demo", "text": "hi", "codec": [0, 1023, 7]})
    put("jsonl", speech + "\n" + speech.replace("1023", "1024") + "\n" + speech[:-4] + "\n")
    put("jsonl", "[" + speech + "," + line + "]")


def yaml_seeds():
    for d in ("configs/data", "configs/tiny", "configs/models", "tests/fixtures/data"):
        full = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", d)
        for name in sorted(os.listdir(full)) if os.path.isdir(full) else []:
            if name.endswith((".yaml", ".yml")):
                copy("yaml", os.path.join(full, name))
    put("yaml", "seed: 3\nverify: true\npack: false\nmax_len: 64\ndatasets:\n"
                "  - {name: a, shards: [a/*.h5, b.h5], ratio: 0.5}\n  - name: b\n    shards: b\n")
    put("yaml", "a: &x {k: 1}\nb: *x\nc: [1, 2, {d: e}]\nlr: 1e400\nlr: 2\n")
    put("yaml", "[" * 70 + "]" * 70)


def shard_input(n_tokens=5, steps=(2, 3), version=4, bad_crc=False, attr_flags=None,
                ds_flags=None, kind=0, pos=0):
    """Bytes that tests/fuzz/shard_fuzz_one.h turns into a shard: per attribute a flag byte
    and 32 value bytes, per dataset a flag byte, a length byte and the contents (i64 offsets
    as steps from 0)."""
    import struct
    import zlib
    toks = struct.pack("<%di" % n_tokens, *range(10, 10 + n_tokens))
    labels = struct.pack("<%di" % n_tokens, *([-100] + list(range(11, 10 + n_tokens))))
    offs = [0]
    for st in steps:
        offs.append(offs[-1] + st)
    n = len(steps)
    i64 = lambda v: struct.pack("<%dq" % len(v), *v)
    ids = b"ab"[:n].ljust(n, b"c")
    media = [(i64([0] + [1] * n), struct.pack("<i", kind), i64([pos]), struct.pack("<i", 0),
              i64([0, 3]), b"x.j", i64([0] * (n + 1)), b"", i64([0, 0]), b"",
              i64([0] * (n + 1)), i64([0]), b"", i64([0]), b"")]  # no codec, tiles, audio
    datasets = [toks, labels, i64(offs), i64(list(range(n + 1))), ids] + list(media[0])
    crc = zlib.crc32(b"".join(datasets)) ^ (1 if bad_crc else 0)
    out = b""
    vals = [(0, version, 4), (1, n, 8), (1, n_tokens, 8), (3, crc, 4), (0, 0, 4), (0, 0, 4),
            (0, 0, 4)]
    for k, (flag, v, w) in enumerate(vals):
        f = attr_flags[k] if attr_flags and k < len(attr_flags) and attr_flags[k] is not None \
            else flag
        out += bytes([f]) + v.to_bytes(w, "little", signed=v < 0).ljust(32, b"\0")
    kinds = [4, 4, 8, 8, 1, 8, 4, 8, 4, 8, 1, 8, 4, 8, 1, 8, 8, 2, 8, 2]
    for k, d in enumerate(datasets):
        f = ds_flags[k] if ds_flags and k < len(ds_flags) and ds_flags[k] is not None else 0
        cnt = len(d) // kinds[k]
        out += bytes([f, cnt])
        if kinds[k] == 8 and f == 0:  # offsets as steps from 0
            vals = struct.unpack("<%dq" % cnt, d)
            out += bytes(vals[i] - vals[i - 1] for i in range(1, cnt))
        else:
            out += d
    return out


def shard_seeds():
    put("shard", shard_input(), "good")
    put("shard", shard_input(n_tokens=9, steps=(4, 5)), "good2")
    put("shard", shard_input(bad_crc=True), "bad_crc")
    put("shard", shard_input(version=3), "version3")
    put("shard", shard_input(version=5), "version5")
    put("shard", shard_input(attr_flags=[None, 0x19, None, None]), "n_samples_array")
    put("shard", shard_input(attr_flags=[0x05, None, None, None]), "version_string")
    put("shard", shard_input(ds_flags=[0x20] + [None] * 10), "tokens_not_stored")
    put("shard", shard_input(kind=7), "media_kind_7")
    put("shard", shard_input(pos=2, ds_flags=[None] * 7 + [0x8] + [None] * 3), "media_pos_2")
    bad = bytearray(shard_input())
    bad[33 + 1: 33 + 9] = (2 ** 63 - 1).to_bytes(8, "little")  # n_samples INT64_MAX
    put("shard", bytes(bad), "n_samples_max")


def manifest_seeds():
    head = "vita-train checkpoint v1\n"
    put("manifest", head + "step 12\nfile config.json 120 0a1b2c3d\nfile model.safetensors "
        "4096 deadbeef\nfile trainer.json 88 00000001\n")
    put("manifest", head + "step 0\nfile a 0 00000000")
    put("manifest", head + "step 9223372036854775807\nfile x 18446744073709551615 ffffffff\n")
    put("manifest", head + "step -1\nfile a -1 0\n")
    put("manifest", head + "step 1\nfile a 1 00000000\nfile a 1 00000000\n")
    put("manifest", head + "step 1\nfile ../../etc/passwd 1 00000000\n")


def cli_seeds():
    for args in (["--steps", "12", "--lr=1e-4", "--out", "run", "a.json"],
                 ["--resume", "--max-len", "-5"], ["--steps", "99999999999999999999"],
                 ["--lr", "inf"], ["--", "--steps", "x"], ["--help"], ["--out"], ["-x"]):
        put("cli", "\0".join(args))


def fixture(*parts):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "fixtures", *parts), "rb") as f:
        return f.read()


def media_seeds():
    """First byte: 0 image, 1 audio, 2 video (media_fuzz_one.h); small real files after it."""
    for name in ("synth_gray.png", "synth.bmp", "synth.gif", "cmyk.jpg", "bomb.png"):
        put("media", b"\x00" + fixture("image", name), "image-" + name)
    for name in ("tone8k.wav", "quiet16k.wav"):
        put("media", b"\x01" + fixture("audio", name), "audio-" + name)
    for name in ("c2s_10fps.mp4", "c3s_30fps.mkv", "audio_only.m4a"):
        put("media", b"\x02" + fixture("video", name), "video-" + name)


def config_seeds():
    """First byte: even a stage YAML, odd a model config.json (config_fuzz_one.h)."""
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    for name in ("1.1.yaml", "3.2-tiny.yaml", "ticodec-3.1.yaml"):
        with open(os.path.join(root, "configs", "stages", name), "rb") as f:
            put("config", b"\x00" + f.read(), "stage-" + name)
    put("config", b"\x00stage: s\nmodel: {config: c}\ndata: {mixture: m, max_len: 8}\n"
        b"train: {steps: 1, batch_size: 2}\noutput: {dir: o}\n", "stage-minimal")
    for name in ("qwen2_tiny", "vit_tiny", "tts_tiny"):
        put("config", b"\x01" + fixture(name, "config.json"), "model-" + name)
    with open(os.path.join(root, "configs", "tiny", "codec.json"), "rb") as f:
        put("config", b"\x01" + f.read(), "model-codec")


def trainer_state_seeds():
    """First byte: bit 0 two phases (disc, gen) else one (main), the rest the manifest's step."""
    def state(step, phases, total=100, rng=None, cursor=None, **extra):
        o = {"format": "vita-train trainer state v2", "stage": "s", "model": "m", "step": step,
             "total_steps": total, "tokens_seen": 10 * step, "skipped_samples": 0,
             "phases": [{"name": n, "optim_t": step, "optim_skipped": 0} for n in phases],
             "rng": rng or ["0123456789abcdef", "0000000000000001", "fedcba9876543210",
                            "00000000000000ff"],
             "data_cursor": cursor or "mix-cursor v1 seed=1 epoch=0 pos=%d rank=0 world=1" % step}
        o.update(extra)
        return json.dumps(o, indent=1).encode()
    put("trainer_state", bytes([12 << 1]) + state(12, ["main"]), "main-step-12")
    put("trainer_state", bytes([(5 << 1) | 1]) + state(5, ["disc", "gen"]), "two-phases")
    put("trainer_state", bytes([12 << 1]) + state(99, ["main"]), "step-not-manifest")
    put("trainer_state", bytes([3 << 1]) + state(3, ["main"], rng=["0" * 16] * 4), "zero-rng")
    put("trainer_state", bytes([3 << 1]) + state(3, ["main"], cursor="mix-cursor v1 seed=1 epoch=-1 pos=0 rank=0 world=1"), "bad-cursor")
    put("trainer_state", bytes([7 << 1]) + state(7, ["main"], total=5), "past-total")


if __name__ == "__main__":
    cli_seeds()
    manifest_seeds()
    shard_seeds()
    tokenizer_seeds()
    jsonl_seeds()
    yaml_seeds()
    media_seeds()
    config_seeds()
    trainer_state_seeds()
