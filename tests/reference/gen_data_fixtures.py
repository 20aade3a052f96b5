#!/usr/bin/env python3
"""Writes the small sample-JSON fixtures under tests/fixtures/data/ (good and bad samples,
data configs, empty media files). Run from the repo root; needs only the standard library.

good.json     a JSON array of 6 valid samples (text, image, audio, video, inserted_id, end_tag)
mixed.jsonl   JSON lines: 3 valid samples and one of each bad kind, ids say which
bad_array.json a JSON array with a malformed element and a non-UTF-8 element between good ones
data.yaml     the data config (set "demo" -> media/, small max_len)
bad_key.yaml  a data config with an unknown key
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "data")


def conv(*turns):
    return [{"from": f, "value": v} for f, v in turns]


def main():
    os.makedirs(os.path.join(OUT, "media", "img"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "media", "wav"), exist_ok=True)
    for name in ["img/cat.jpg", "img/dog.jpg", "wav/q1.wav", "wav/q2.wav", "clip.mp4"]:
        open(os.path.join(OUT, "media", name), "w").close()

    good = [
        {"id": "text-1", "set": "demo",
         "conversations": conv(("human", "What is 2+2?"), ("gpt", "4."))},
        {"id": "image-1", "set": "demo", "image": "img/cat.jpg",
         "conversations": conv(("human", "<image>\nDescribe it."), ("gpt", "A cat."))},
        {"id": "audio-1", "set": "demo", "audio": ["wav/q1.wav", "wav/q2.wav"],
         "conversations": conv(("human", "<audio>"), ("gpt", "Hello."),
                               ("human", "<audio>"), ("gpt", "Bye."))},
        {"id": "video-1", "set": "demo", "video": "clip.mp4",
         "conversations": conv(("human", "<video> What happens?"), ("gpt", "Nothing."))},
        {"id": 5, "set": "demo", "image": ["img/cat.jpg", "img/dog.jpg"], "inserted_id": 2,
         "conversations": conv(("human", "<image><image> Compare."), ("gpt", "Both pets."),
                               ("human", "noise"), ("gpt", ""))},
        {"id": "noend-1", "set": "demo", "end_tag": False,
         "conversations": conv(("human", "你好"), ("gpt", "你好！"))},
    ]
    with open(os.path.join(OUT, "good.json"), "w", encoding="utf-8") as f:
        json.dump(good, f, ensure_ascii=False, indent=1)

    lines = [
        json.dumps(good[0], ensure_ascii=False).encode(),
        b'{"id": "bad-json", "conversations": [ {"from": "human", "value": "x"} ',
        json.dumps({"id": "bad-role", "conversations": conv(("human", "hi"), ("robot", "x"))}).encode(),
        json.dumps({"id": "bad-media", "set": "demo", "image": "img/none.jpg",
                    "conversations": conv(("human", "<image>"), ("gpt", "x"))}).encode(),
        json.dumps({"id": "bad-count", "set": "demo", "image": "img/cat.jpg",
                    "conversations": conv(("human", "<image><image>"), ("gpt", "x"))}).encode(),
        b'{"id": "bad-utf8", "conversations": [{"from": "human", "value": "caf\xe9"}, '
        b'{"from": "gpt", "value": "ok"}]}',
        json.dumps({"id": "bad-long", "conversations": conv(
            ("human", "tell me a story"), ("gpt", " ".join(["word"] * 600)))}).encode(),
        json.dumps({"id": "bad-field", "conversations": "not a list"}).encode(),
        json.dumps({"id": "bad-set", "set": "nope",
                    "conversations": conv(("human", "hi"), ("gpt", "x"))}).encode(),
        json.dumps({"id": "bad-order", "conversations": conv(("gpt", "hi"), ("human", "x"))}).encode(),
        b"",
        json.dumps(good[1], ensure_ascii=False).encode(),
        json.dumps(good[2], ensure_ascii=False).encode(),
    ]
    with open(os.path.join(OUT, "mixed.jsonl"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n")

    arr = (b"[\n" + json.dumps(good[0]).encode() + b",\n"
           + b'{"id": "broken", "conversations": [{"from": "human" "value": "x"}]},\n'
           + b'{"id": "latin1", "conversations": [{"from": "human", "value": "na\xefve"}, '
           + b'{"from": "gpt", "value": "ok"}]},\n'
           + json.dumps(good[3]).encode() + b"\n]\n")
    with open(os.path.join(OUT, "bad_array.json"), "wb") as f:
        f.write(arr)

    with open(os.path.join(OUT, "data.yaml"), "w") as f:
        f.write("# data config for tests: set demo's media are under media/ (beside this file)\n"
                "max_len: 400\nshard_samples: 4\ncheck_media: true\n"
                "system_prompts:\n  language: You are a helpful assistant.\n"
                "sets:\n  demo:\n    folder: media\n")
    with open(os.path.join(OUT, "bad_key.yaml"), "w") as f:
        f.write("max_len: 400\nsets:\n  demo:\n    folder: media\n    image_dir: media\n")


if __name__ == "__main__":
    main()
