#!/usr/bin/env python3
"""Golden outputs of Pillow's bilinear resize, for the Swift data pipeline's resize test.

Run from the repository root:

    /tmp/torchenv/bin/python Scripts/golden/make_resize_golden.py [--out DIR]

Needs Pillow (``pip install pillow``); Pillow is only a tool for making this file, never a
dependency of the Swift package. Writes ``<out>/resize_golden.bin`` (default out:
``Tests/DatasetTests/Fixtures``) and a human-readable ``resize_golden.json`` beside it.

What is compared: ``Image.resize((W, H), Image.BILINEAR)`` on an RGB image, exactly what
torchvision's ``Resize`` does to a PIL image in the official U-GAT-IT pipeline (spec B.1).
Inputs are made here from integer formulas (smooth gradients, a hard edge and a pseudo-random
pattern), so they are deterministic; they are stored in the file too, so the Swift test does not
need to re-create them.

Pass order: Pillow <= 12 always resamples horizontally first; Pillow 13 (python-pillow/Pillow#9549)
goes vertical first when (in_h - out_h) > 2 * (in_w - out_w) and out_h < in_h. The cases
8x200 -> 7x158, 200x6 -> 286x5 and 9x40 -> 8x12 take the vertical-first branch, so this file
needs Pillow >= 13; the others give the same bytes with any Pillow since 4.0.

Cases are thin strips where an image would be large: a resize is separable, so a 256x6 -> 286x7
strip exercises exactly the 256 -> 286 horizontal weights of a full 256x256 -> 286x286 resize.

File layout (little-endian): magic ``PILRSZ01`` (8 bytes), u32 case count, then per case:
u32 in_w, in_h, out_w, out_h, in_w*in_h*3 input bytes (RGB, row-major), out_w*out_h*3 output bytes.
Re-running gives a byte-identical file.
"""

import argparse
import json
import os
import struct

import PIL
from PIL import Image

# (in_w, in_h, out_w, out_h)
CASES = [
    (37, 23, 17, 29),    # shrink x, enlarge y, odd sizes
    (24, 18, 36, 27),    # enlarge 1.5x
    (64, 8, 96, 12),     # 64 -> 96 enlarge
    (256, 6, 286, 7),    # U-GAT-IT train resize 256 -> 286 (x axis)
    (6, 256, 7, 286),    # ... and the y axis
    (200, 8, 158, 7),    # shrink 200 -> 158
    (8, 200, 7, 158),
    (200, 6, 286, 5),    # UTKFace 200 -> 286
    (120, 9, 7, 3),      # strong shrink: wide kernels
    (30, 20, 30, 7),     # vertical pass only
    (30, 20, 11, 20),    # horizontal pass only
    (9, 40, 8, 12),      # Pillow 13: vertical pass first ((40-12) > 2*(9-8))
]


def make_input(w, h, salt):
    """RGB bytes: gradients in R and G, a hard vertical edge in B, and an LCG pattern mixed in."""
    out = bytearray()
    state = 12345 + salt
    for y in range(h):
        for x in range(w):
            state = (state * 1103515245 + 12345) & 0x7FFFFFFF
            noise = (state >> 16) & 255
            r = (x * 255) // max(w - 1, 1)
            g = (y * 255) // max(h - 1, 1)
            b = 230 if x * 3 < w else 20
            if (x // 3 + y // 2) % 4 == 0:  # pseudo-random speckles on a sparse grid
                r, g, b = noise, 255 - noise, (noise * 7) & 255
            out += bytes((r, g, b))
    return bytes(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/DatasetTests/Fixtures")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    blob = bytearray(b"PILRSZ01" + struct.pack("<I", len(CASES)))
    manifest = {"pillow_version": PIL.__version__, "filter": "BILINEAR", "cases": []}
    for i, (iw, ih, ow, oh) in enumerate(CASES):
        src = make_input(iw, ih, salt=i)
        img = Image.frombytes("RGB", (iw, ih), src)
        dst = img.resize((ow, oh), Image.BILINEAR).tobytes()
        assert len(dst) == ow * oh * 3
        blob += struct.pack("<4I", iw, ih, ow, oh) + src + dst
        manifest["cases"].append({"in": [iw, ih], "out": [ow, oh]})
    path = os.path.join(args.out, "resize_golden.bin")
    with open(path, "wb") as f:
        f.write(blob)
    with open(os.path.join(args.out, "resize_golden.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {path}: {len(CASES)} cases, {len(blob)} bytes, Pillow {PIL.__version__}")


if __name__ == "__main__":
    main()
