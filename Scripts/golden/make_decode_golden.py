#!/usr/bin/env python3
"""Golden decodes: small PNG and JPEG files and what Pillow turns them into, for the Swift
data pipeline's decoder test (the official U-GAT-IT reads images with ``Image.open(f).convert('RGB')``).

Run from the repository root:

    /tmp/torchenv/bin/python Scripts/golden/make_decode_golden.py [--out DIR]

Needs Pillow and numpy; neither is a dependency of the Swift package. Writes into
``<out>`` (default ``Tests/DatasetTests/Fixtures/decode``): ``<case>.png`` / ``<case>.jpg``,
``<case>.rgb`` (Pillow's RGB bytes, row-major) and ``decode.json`` (case list, sizes, versions).

PNG cases are assembled chunk by chunk here (zlib + CRC), independently of libpng, covering every
colour type and bit depth Pillow reads, tRNS, and Adam7 interlacing; two more are saved by Pillow
(adaptive row filters). 16-bit *grey* is left out on purpose: Pillow opens it as I;16 and clips to
255 when converting, while the Swift decoder keeps the high byte (see PNGCodec). JPEG cases are
saved by Pillow: 4:2:0, grey, Adobe CMYK, progressive 4:2:2, and EXIF orientations 3, 6 and 8,
whose expected output is ``ImageOps.exif_transpose`` (the Swift decoder applies the orientation).
Re-running gives identical files with the same Pillow build.
"""

import argparse
import io
import json
import os
import struct
import zlib

import numpy as np
import PIL
from PIL import Image, ImageOps, features

W, H = 13, 7
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """One row of integer samples in PNG packing (MSB first below 8 bits, big-endian at 16)."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(s)) for s in samples)
    if depth == 8:
        return bytes(int(s) for s in samples)
    per = 8 // depth
    out = bytearray()
    for i in range(0, len(samples), per):
        b = 0
        for j in range(per):
            s = int(samples[i + j]) if i + j < len(samples) else 0
            b |= s << (8 - depth * (j + 1))
        out.append(b)
    return bytes(out)


def png(samples, ctype, depth, plte=None, trns=None, interlace=False):
    """samples: array [H, W, channels] of ints."""
    h, w, _ = samples.shape
    raw = bytearray()
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        if x0 >= w or y0 >= h:
            continue
        for y in range(y0, h, dy):
            raw += b"\x00" + pack_row(samples[y, x0::dx].reshape(-1), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 1 if interlace else 0)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    if plte is not None:
        out += chunk(b"PLTE", bytes(plte))
    if trns is not None:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b"")


def pattern(maxval, channels, salt):
    y, x = np.mgrid[0:H, 0:W]
    chans = [(x * 37 + y * 11 + c * 101 + salt) * 2654435761 % (maxval + 1) for c in range(channels)]
    return np.stack(chans, -1).astype(np.int64)


def png_cases():
    rng_pal = [((i * 53) % 256, (i * 97 + 13) % 256, (i * 151 + 7) % 256) for i in range(256)]
    pal = [v for rgb in rng_pal for v in rgb]
    yield "png_gray1", png(pattern(1, 1, 1), 0, 1)
    yield "png_gray2", png(pattern(3, 1, 2), 0, 2)
    yield "png_gray4", png(pattern(15, 1, 3), 0, 4)
    yield "png_gray8", png(pattern(255, 1, 4), 0, 8)
    yield "png_gray8_trns", png(pattern(255, 1, 5), 0, 8, trns=b"\x00\x10")
    yield "png_gray_alpha8", png(pattern(255, 2, 6), 4, 8)
    yield "png_gray_alpha16", png(pattern(65535, 2, 7), 4, 16)
    yield "png_rgb8", png(pattern(255, 3, 8), 2, 8)
    yield "png_rgb16", png(pattern(65535, 3, 9), 2, 16)
    yield "png_rgba8", png(pattern(255, 4, 10), 6, 8)
    yield "png_rgba16", png(pattern(65535, 4, 11), 6, 16)
    yield "png_palette1", png(pattern(1, 1, 12), 3, 1, plte=pal[:6])
    yield "png_palette4", png(pattern(15, 1, 13), 3, 4, plte=pal[:48])
    yield "png_palette8_trns", png(pattern(255, 1, 14), 3, 8, plte=pal, trns=bytes(range(0, 256, 3)))
    yield "png_rgb8_interlaced", png(pattern(255, 3, 15), 2, 8, interlace=True)
    yield "png_palette4_interlaced", png(pattern(15, 1, 16), 3, 4, plte=pal[:48], interlace=True)
    yield "png_gray2_interlaced", png(pattern(3, 1, 17), 0, 2, interlace=True)
    # Pillow's own encoder: adaptive row filters (Sub, Up, Average, Paeth).
    img = Image.fromarray(pattern(255, 3, 18).astype(np.uint8), "RGB")
    buf = io.BytesIO(); img.save(buf, "PNG", optimize=True)
    yield "png_pillow_rgb", buf.getvalue()
    buf = io.BytesIO(); img.quantize(colors=16).save(buf, "PNG")
    yield "png_pillow_palette", buf.getvalue()


def jpeg_cases():
    y, x = np.mgrid[0:17, 0:21]
    rgb = np.stack([(x * 7) % 256, (y * 9) % 256, (x * y * 3) % 256], -1).astype(np.uint8)
    cmyk = np.concatenate([rgb, ((x + y) * 4 % 256)[..., None].astype(np.uint8)], -1)

    def save(im, **kw):
        buf = io.BytesIO(); im.save(buf, "JPEG", **kw); return buf.getvalue()

    yield "jpg_rgb420", save(Image.fromarray(rgb), quality=85)
    yield "jpg_gray", save(Image.fromarray(rgb[..., 0]), quality=85)
    yield "jpg_cmyk_adobe", save(Image.fromarray(cmyk, "CMYK"), quality=85)
    yield "jpg_progressive422", save(Image.fromarray(rgb), quality=70, progressive=True, subsampling=1)
    for o in (3, 6, 8):
        ex = Image.Exif(); ex[0x0112] = o
        yield f"jpg_exif_orientation{o}", save(Image.fromarray(rgb), quality=90, exif=ex.tobytes())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="Tests/DatasetTests/Fixtures/decode")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    manifest = {"pillow_version": PIL.__version__, "libjpeg_turbo": features.version("libjpeg_turbo"),
                "cases": []}
    total = 0
    for name, data in list(png_cases()) + list(jpeg_cases()):
        ext = "png" if name.startswith("png") else "jpg"
        im = Image.open(io.BytesIO(data))
        im = ImageOps.exif_transpose(im).convert("RGB")
        rgb = im.tobytes()
        for fname, blob in ((f"{name}.{ext}", data), (f"{name}.rgb", rgb)):
            with open(os.path.join(args.out, fname), "wb") as f:
                f.write(blob)
            total += len(blob)
        manifest["cases"].append({"name": name, "file": f"{name}.{ext}", "width": im.width, "height": im.height})
    with open(os.path.join(args.out, "decode.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(manifest['cases'])} cases, {total} bytes, to {args.out}")


if __name__ == "__main__":
    main()
