#!/usr/bin/env python3
"""tests/data/make_images.py OUT_DIR — a tiny ImageFolder dataset, half PNG, half JPEG.

OUT_DIR/train/<class>/NNN.(png|jpg) and OUT_DIR/test/...: classes 'hstripes', 'vstripes' and
'dots', 20x20 RGB images (the test resizes them to the model's 16x16) with random colours,
phases and noise. Also OUT_DIR/truncated/dots/cut.jpg (half a JPEG) and
OUT_DIR/notpng/dots/fake.png (text), and OUT_DIR/huge{png,jpg}/dots/big.* (headers
claiming 60000 x 50000 pixels).
"""
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

out = sys.argv[1]
rng = np.random.default_rng(77)
classes = ["dots", "hstripes", "vstripes"]


def image(kind):
    y, x = np.mgrid[0:20, 0:20]
    phase = rng.integers(0, 4)
    if kind == "hstripes":
        m = ((y + phase) // 2) % 2
    elif kind == "vstripes":
        m = ((x + phase) // 2) % 2
    else:
        m = (((y + phase) % 5 < 2) & ((x + phase) % 5 < 2)).astype(int)
    colour = rng.integers(120, 256, size=3)
    img = m[..., None] * colour[None, None, :] + rng.normal(0, 12, size=(20, 20, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


for split, n in (("train", 60), ("test", 20)):
    for c in classes:
        os.makedirs(f"{out}/{split}/{c}", exist_ok=True)
        for i in range(n):
            img = image(c)
            if i % 2:
                img.save(f"{out}/{split}/{c}/{i:03d}.jpg", quality=95)
            else:
                img.save(f"{out}/{split}/{c}/{i:03d}.png")

os.makedirs(f"{out}/truncated/dots", exist_ok=True)
data = open(f"{out}/train/dots/001.jpg", "rb").read()
open(f"{out}/truncated/dots/cut.jpg", "wb").write(data[: len(data) // 2])
os.makedirs(f"{out}/notpng/dots", exist_ok=True)
open(f"{out}/notpng/dots/fake.png", "wb").write(b"this is not a png")

# headers that claim 60000 x 50000 pixels (9 GB as RGB): a PNG of its signature, IHDR and an
# empty IDAT, a small JPEG whose SOF0 frame header is patched
os.makedirs(f"{out}/hugepng/dots", exist_ok=True)


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 50000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b""))
open(f"{out}/hugepng/dots/big.png", "wb").write(png)
os.makedirs(f"{out}/hugejpg/dots", exist_ok=True)
jpg = bytearray(open(f"{out}/train/dots/001.jpg", "rb").read())
sof = jpg.index(b"\xff\xc0")
jpg[sof + 5 : sof + 9] = struct.pack(">HH", 50000, 60000)  # height, width
open(f"{out}/hugejpg/dots/big.jpg", "wb").write(bytes(jpg))
