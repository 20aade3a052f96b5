#!/usr/bin/env python3
"""Writes the small test videos under tests/fixtures/video/ with the ffmpeg CLI (Debian ffmpeg).
Run from the repo root: python3 tests/reference/gen_video_fixtures.py. Needs numpy, ffmpeg.

Every frame is one flat colour that encodes its number (R = 10 + 7 k mod 230, G = 250 - 3 k
mod 230, B = 60 + (k // 10) * 20), so a test can tell which frame it got from the pixels alone.

c2s_10fps.mp4   2 s at 10 fps, H.264 with B-frames (fewer than 4 one-second frames)
c7s_10fps.mp4   7 s at 10 fps, MPEG-4 part 2
c20s_5fps.avi   20 s at 5 fps, MJPEG in AVI (more than 16 frames)
c3s_30fps.mkv   3 s at 30 fps, H.264 in Matroska (the 3 fps stride rounds 30 / 3 = 10)
audio_only.m4a  a container without a video stream
truncated.mp4   the first 40% of c7s_10fps.mp4 encoded with its index at the end (no moov)
frames/         8 PNG frames, the folder form of a video
"""
import os
import subprocess

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "video")
W, H = 64, 48


def colour(k):
    return np.array([10 + (7 * k) % 230, 250 - (3 * k) % 230, 60 + (k // 10) * 20 % 190],
                    dtype=np.uint8)


def frames(n):
    return b"".join(np.broadcast_to(colour(k), (H, W, 3)).tobytes() for k in range(n))


def encode(name, seconds, fps, args):
    n = int(seconds * fps)
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{W}x{H}", "-r", str(fps), "-i", "-"] + args + [os.path.join(OUT, name)]
    subprocess.run(cmd, input=frames(n), check=True)


def main():
    os.makedirs(os.path.join(OUT, "frames"), exist_ok=True)
    x264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "2", "-g", "12", "-crf", "10"]
    encode("c2s_10fps.mp4", 2, 10, x264)
    encode("c7s_10fps.mp4", 7, 10, ["-c:v", "mpeg4", "-q:v", "2"])
    encode("c20s_5fps.avi", 20, 5, ["-c:v", "mjpeg", "-q:v", "2"])
    encode("c3s_30fps.mkv", 3, 30, x264)
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.5", "-c:a", "aac",
                    os.path.join(OUT, "audio_only.m4a")], check=True)
    data = open(os.path.join(OUT, "c7s_10fps.mp4"), "rb").read()
    open(os.path.join(OUT, "truncated.mp4"), "wb").write(data[: len(data) * 2 // 5])
    for k in range(8):
        raw = np.broadcast_to(colour(k), (H, W, 3)).tobytes()
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt",
                        "rgb24", "-s", f"{W}x{H}", "-i", "-",
                        os.path.join(OUT, "frames", f"f{k:03d}.png")], input=raw, check=True)


if __name__ == "__main__":
    main()
