#!/usr/bin/env python3
"""Writes the image fixtures under tests/fixtures/image/ from Pillow and transformers, the
libraries the public VITA loader runs (PIL's Image.resize, whose default filter is BICUBIC, in
dynamic_preprocess; transformers' CLIPImageProcessor with InternViT-300M-448px's settings per
tile). Run from the repo root: python3 tests/reference/gen_image_fixtures.py
Needs pillow < 13, numpy, transformers (Pillow 13 runs the vertical pass first when the height
shrinks more than twice as much as the width; every earlier Pillow, the ones the public code ran
on, always runs the horizontal pass first, and that is what we match); the photographs come from matplotlib's sample data
(grace_hopper.jpg) and, when present, the Rust embedded book (f3.jpg), else a second crop.

photo_baseline.jpg   a real photograph, baseline JPEG (copied as is)
photo_progressive.jpg a real photograph re-encoded as progressive JPEG
photo_a.png, photo_b.png  crops of the photographs as Pillow decodes them (lossless sources)
synth_*.png/.bmp/.gif, cmyk.jpg, bomb.png  small synthetic images of every kind
resize_*.png         Pillow's bicubic of the sources to odd sizes (lossless references)
image_ref.txt        decoded pixels, JPEG decodes on a grid, tiling grids, tile samples
"""
import os
import shutil
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "image")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def find_photos():
    import matplotlib

    grace = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    f3 = None
    for base in [os.path.expanduser("~/.rustup/toolchains")]:
        for root, _, files in os.walk(base):
            if "f3.jpg" in files and root.endswith(os.path.join("embedded-book", "assets")):
                f3 = os.path.join(root, "f3.jpg")
                break
        if f3:
            break
    return grace, f3


def synth_rgb(w, h, seed):
    """Gradients, hard edges and noise: every filter tap matters, values touch 0 and 255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.int32)
    g = ((x + y) % 7 * 40).astype(np.int32)
    b = np.where((x // 4 + y // 3) % 2 == 0, 250, 5)
    img = np.stack([r, g, b], -1) + rng.integers(-20, 21, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def png_chunk(t, data):
    return struct.pack(">I", len(data)) + t + data + struct.pack(">I", zlib.crc32(t + data))


def bomb_png(w, h):
    """A valid 1-bit PNG of w x h zeros: a few KB that would decode to w*h RGB pixels."""
    raw = b"".join(b"\x00" + bytes((w + 7) // 8) for _ in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def clip_processor():
    try:  # transformers 5: the PIL backend by name (the one older versions always used)
        from transformers import CLIPImageProcessorPil as CLIPImageProcessor
    except ImportError:
        from transformers import CLIPImageProcessor

    # InternViT-300M-448px's preprocessor_config.json
    return CLIPImageProcessor(size={"shortest_edge": 448}, crop_size={"height": 448, "width": 448},
                              resample=3, do_center_crop=True, do_normalize=True,
                              image_mean=list(MEAN), image_std=list(STD), do_convert_rgb=True)


def find_closest_aspect_ratio(aspect_ratio, target_ratios, width, height, image_size):
    """As the public loader (VITA data_utils / InternVL)."""
    best_ratio_diff = float("inf")
    best_ratio = (1, 1)
    area = width * height
    for ratio in target_ratios:
        target_aspect_ratio = ratio[0] / ratio[1]
        ratio_diff = abs(aspect_ratio - target_aspect_ratio)
        if ratio_diff < best_ratio_diff:
            best_ratio_diff = ratio_diff
            best_ratio = ratio
        elif ratio_diff == best_ratio_diff:
            if area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
                best_ratio = ratio
    return best_ratio


def target_ratios(min_num, max_num):
    s = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1)
            for j in range(1, n + 1) if min_num <= i * j <= max_num)
    return sorted(s, key=lambda x: x[0] * x[1])


def dynamic_preprocess(image, min_num=1, max_num=12, image_size=448, use_thumbnail=True):
    w, h = image.size
    ratio = find_closest_aspect_ratio(w / h, target_ratios(min_num, max_num), w, h, image_size)
    tw, th = image_size * ratio[0], image_size * ratio[1]
    blocks = ratio[0] * ratio[1]
    resized = image.resize((tw, th))
    out = []
    for i in range(blocks):
        box = ((i % (tw // image_size)) * image_size, (i // (tw // image_size)) * image_size,
               ((i % (tw // image_size)) + 1) * image_size,
               ((i // (tw // image_size)) + 1) * image_size)
        out.append(resized.crop(box))
    if use_thumbnail and len(out) != 1:
        out.append(image.resize((image_size, image_size)))
    return out, ratio


def expand2square(img, bg):
    w, h = img.size
    if w == h:
        return img
    if w > h:
        res = Image.new(img.mode, (w, w), bg)
        res.paste(img, (0, (w - h) // 2))
        return res
    res = Image.new(img.mode, (h, h), bg)
    res.paste(img, ((h - w) // 2, 0))
    return res


def grid_cases():
    """(w, h, max_tiles) -> (cols, rows), over sizes that hit ties and the area rule."""
    rng = np.random.default_rng(7)
    cases = []
    sizes = [(448, 448), (447, 447), (449, 449), (633, 633), (634, 634), (1, 1), (1, 5000),
             (5000, 1), (896, 448), (448, 896), (1344, 448), (1000, 700), (700, 1000),
             (1920, 1080), (1080, 1920), (640, 480), (3000, 2000), (5, 4), (640, 512)]
    for mx in range(1, 13):
        # the equal-ratio ties: area on both sides of 0.5 * 448^2 * i * j for (k, k)
        for k in range(1, 4):
            a = 0.5 * 448 * 448 * k * k
            s = int(np.sqrt(a))
            sizes += [(s, s), (s + 1, s + 1)]
    for _ in range(200):
        sizes.append((int(rng.integers(1, 4000)), int(rng.integers(1, 4000))))
    for w, h in sizes:
        for mx in (1, 6, 12):
            c, r = find_closest_aspect_ratio(w / h, target_ratios(1, mx), w, h, 448)
            cases.append((w, h, mx, c, r))
    return np.array(cases, dtype=np.int64)


def check_tie_order():
    """Grids of equal product come out of a Python set in hash order; the C code takes them by
    column count. Show that the order never changes a choice: ties between different ratios
    happen only at midpoints, and there some other grid is always closer."""
    for mx in range(1, 13):
        tr = target_ratios(1, mx)
        rev = sorted(tr, key=lambda x: (x[0] * x[1], -x[0]))
        fwd = sorted(tr, key=lambda x: (x[0] * x[1], x[0]))
        for a in tr:
            for b in tr:
                w, h = a[0] * b[1] + b[0] * a[1], 2 * a[1] * b[1]  # aspect = midpoint
                for scale in (1, 50, 300):
                    args = (w / h, None, w * scale, h * scale, 448)
                    r1 = find_closest_aspect_ratio(args[0], fwd, *args[2:])
                    r2 = find_closest_aspect_ratio(args[0], rev, *args[2:])
                    r0 = find_closest_aspect_ratio(args[0], tr, *args[2:])
                    assert r0 == r1 == r2, (mx, a, b, r0, r1, r2)


def tile_samples(tiles, rng, n=500):
    """tiles: [N, 3, 448, 448] f32 -> sums per tile and channel, and n sampled values."""
    t = np.stack(tiles).astype(np.float64)
    idx = np.stack([rng.integers(0, d, n) for d in t.shape], -1)
    vals = t[tuple(idx.T)]
    return t.sum(axis=(2, 3)), idx, vals


def check_pass_order():
    """Pillow rounds to 8 bits between its two passes, so their order shows in the output."""
    rng = np.random.default_rng(5)
    src = Image.fromarray(rng.integers(0, 256, (200, 240, 3)).astype(np.uint8))
    full = np.asarray(src.resize((301, 131), Image.Resampling.BICUBIC))
    h_first = np.asarray(src.resize((301, 200), Image.Resampling.BICUBIC).resize(
        (301, 131), Image.Resampling.BICUBIC))
    if not (full == h_first).all():
        sys.exit(f"Pillow {Image.__version__} does not run the horizontal pass first: "
                 'pip install "pillow<13"')


def main():
    os.makedirs(OUT, exist_ok=True)
    check_pass_order()
    check_tie_order()
    grace, f3 = find_photos()
    rng = np.random.default_rng(1234)
    ref = {}

    # photographs: the baseline JPEG as is; a progressive re-encode of the second photo
    shutil.copy(grace, os.path.join(OUT, "photo_baseline.jpg"))
    src_b = Image.open(f3).convert("RGB") if f3 else Image.open(grace).convert("RGB")
    box_b = (200, 100, 520, 340) if f3 else (0, 300, 320, 540)
    src_b.crop(box_b).save(os.path.join(OUT, "photo_progressive.jpg"), quality=88,
                           progressive=True)
    for name in ("photo_baseline.jpg", "photo_progressive.jpg"):
        a = np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB"))
        key = name.split(".")[0]
        ref[f"{key}_size"] = np.array([a.shape[1], a.shape[0]])
        ref[f"{key}_grid"] = a[::8, ::8].astype(np.int32)  # every 8th row and column

    # lossless crops as Pillow decodes them: the resize and tiling sources
    pa = Image.open(grace).convert("RGB").crop((96, 110, 336, 320))  # 240 x 210
    pb = src_b.crop((box_b[0] + 10, box_b[1] + 5, box_b[0] + 250, box_b[1] + 205))  # 240 x 200
    pa.save(os.path.join(OUT, "photo_a.png"), optimize=True)
    pb.save(os.path.join(OUT, "photo_b.png"), optimize=True)

    # synthetic images of every kind the decoder takes
    s = synth_rgb(29, 19, 1)
    Image.fromarray(s).save(os.path.join(OUT, "synth_rgb.png"))
    Image.fromarray(s).save(os.path.join(OUT, "synth.bmp"))
    g = s[..., 1]
    Image.fromarray(g, "L").save(os.path.join(OUT, "synth_gray.png"))
    Image.fromarray(np.dstack([g, s[..., 2]]), "LA").save(os.path.join(OUT, "synth_la.png"))
    Image.fromarray(np.dstack([s, s[..., :1]]), "RGBA").save(os.path.join(OUT, "synth_rgba.png"))
    Image.fromarray(s).quantize(colors=37, dither=Image.Dither.NONE).save(
        os.path.join(OUT, "synth_pal.png"))
    # 16-bit RGB PNG, written by hand (Pillow cannot write it); decoders keep the high byte
    s16 = (s.astype(np.uint16) * 257 + rng.integers(0, 257, s.shape)).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in s16)
    with open(os.path.join(OUT, "synth_rgb16.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 29, 19, 16, 2,
                                                                      0, 0, 0)) +
                png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))
    ref["synth_rgb16_high"] = (s16 >> 8).astype(np.int32)  # what an 8-bit decode keeps
    frames = [Image.fromarray(s).quantize(colors=64, dither=Image.Dither.NONE),
              Image.fromarray(255 - s).quantize(colors=64, dither=Image.Dither.NONE)]
    frames[0].save(os.path.join(OUT, "synth.gif"), save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    Image.fromarray(s).convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=90)
    with open(os.path.join(OUT, "bomb.png"), "wb") as f:
        f.write(bomb_png(10000, 10000))  # 100 M pixels > Pillow's 89.5 M limit
    for name in ("synth_rgb.png", "synth.bmp", "synth_gray.png", "synth_la.png", "synth_rgba.png",
                 "synth_pal.png", "synth_rgb16.png", "synth.gif"):
        key = name.replace(".", "_")
        ref[key] = np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB")).astype(np.int32)

    # Pillow bicubic to odd sizes: down, up, mixed, one axis only, down to one pixel
    cases = [("photo_a.png", 97, 83), ("photo_a.png", 163, 251), ("photo_b.png", 61, 203),
             ("photo_b.png", 240, 77), ("photo_b.png", 301, 131), ("synth_rgb.png", 100, 100),
             ("synth_rgb.png", 29, 7), ("synth_rgb.png", 5, 19), ("synth_rgb.png", 1, 1),
             ("synth_rgb.png", 150, 140)]
    sizes = []
    for i, (name, w, h) in enumerate(cases):
        im = Image.open(os.path.join(OUT, name)).convert("RGB")
        im.resize((w, h), Image.Resampling.BICUBIC).save(os.path.join(OUT, f"resize_{i}.png"),
                                                         optimize=True)
        sizes.append((w, h))
    ref["resize_sizes"] = np.array(sizes)

    # dynamic tiling: grid choices, then tiles through the CLIP processor
    ref["grids"] = grid_cases()
    proc = clip_processor()
    bg = tuple(int(x * 255) for x in MEAN)
    tiling = [("photo_a.png", 12, False), ("photo_b.png", 12, True), ("photo_b.png", 3, False),
              ("synth_rgb.png", 12, False)]
    for i, (name, mx, pad) in enumerate(tiling):
        im = Image.open(os.path.join(OUT, name)).convert("RGB")
        if pad:
            im = expand2square(im, bg)
        tiles, ratio = dynamic_preprocess(im, 1, mx, 448, True)
        px = [proc.preprocess(t, return_tensors="np")["pixel_values"][0] for t in tiles]
        sums, idx, vals = tile_samples(px, rng)
        ref[f"tiling{i}_grid"] = np.array([ratio[0], ratio[1], len(tiles)])
        ref[f"tiling{i}_sums"] = sums
        ref[f"tiling{i}_idx"] = idx
        ref[f"tiling{i}_vals"] = vals
    # one video frame: shortest edge to 448, centre crop (no tiling)
    for i, name in enumerate(("photo_b.png", "synth_rgb.png")):
        im = Image.open(os.path.join(OUT, name)).convert("RGB")
        px = [proc.preprocess(im, return_tensors="np")["pixel_values"][0]]
        sums, idx, vals = tile_samples(px, rng)
        ref[f"frame{i}_sums"] = sums
        ref[f"frame{i}_idx"] = idx
        ref[f"frame{i}_vals"] = vals

    write_fixture(os.path.join(OUT, "image_ref.txt"), ref,
                  "Pillow / transformers references for tests/test_image*.c; "
                  "written by tests/reference/gen_image_fixtures.py")


if __name__ == "__main__":
    main()
