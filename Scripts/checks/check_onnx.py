#!/usr/bin/env python3
"""Checks an ONNX generator written by `face2webtoon export --format onnx` with the real `onnx` and `onnxruntime`.

- `onnx.checker.check_model` accepts the file (full check, shape inference included), opset >= 17;
- the metadata records the preprocessing (image size, input range);
- onnxruntime's output for every image of IMAGES (PNG/JPEG, name order) equals the PNG that `face2webtoon translate`
  wrote for it into TRANSLATED (same stem, .png) within --max-diff 8-bit levels per channel. The image is prepared as
  the metadata says: RGB, resized to S x S with Pillow's bilinear filter (which translate's resize reproduces), then
  (v / 255 - 0.5) / 0.5 in float32; the output is clamp(round((y + 1) * 127.5), 0, 255).
- with the cam_heatmap output, its shape is [N, 1, S/4, S/4];
- with --reference FILE (safetensors of float32 `<stem>.translation` [1, 3, S, S] and `<stem>.cam_heatmap`, the Swift
  generator's outputs for the same images): both outputs within --rtol of it, relative to the largest magnitude of
  each tensor. 8-bit images hide small errors (a biased variance in ILN moves few pixels by a level); floats do not.
Prints `check_onnx: ok images=N max_diff=D ...` or exits 1 naming the first difference.

    python Scripts/checks/check_onnx.py MODEL.onnx --images DIR --translated DIR [--max-diff 1] [--reference F --rtol R]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import onnx
import onnxruntime
from PIL import Image, ImageOps


def fail(msg):
    print(f"check_onnx: FAIL {msg}")
    sys.exit(1)


def read_safetensors(path):
    """The float32 tensors of a safetensors file (header length, JSON header, raw little-endian data)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            fail(f"{path}: {name} is {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--images", required=True)
    ap.add_argument("--translated", required=True)
    ap.add_argument("--max-diff", type=int, default=1)
    ap.add_argument("--reference", help="safetensors of the Swift generator's float outputs")
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args()
    reference = read_safetensors(a.reference) if a.reference else None
    worst_rel = 0.0

    onnx.checker.check_model(a.model, full_check=True)
    m = onnx.load(a.model)
    opset = max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 17:
        fail(f"opset {opset} < 17")
    meta = {p.key: p.value for p in m.metadata_props}
    for key in ("face2webtoon.image_size", "face2webtoon.input_range", "face2webtoon.preprocessing"):
        if key not in meta:
            fail(f"metadata lacks {key}: {sorted(meta)}")
    s = int(meta["face2webtoon.image_size"])
    if meta["face2webtoon.input_range"] != "[-1, 1]":
        fail(f"input range {meta['face2webtoon.input_range']}")

    sess = onnxruntime.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in sess.get_outputs()]
    if outputs[0] != "translation":
        fail(f"outputs {outputs}")
    names = sorted(f for f in os.listdir(a.images) if f.lower().endswith((".png", ".jpg", ".jpeg")))
    if not names:
        fail(f"no images in {a.images}")
    worst = 0
    for name in names:
        img = ImageOps.exif_transpose(Image.open(os.path.join(a.images, name))).convert("RGB")  # as translate
        if img.size != (s, s):
            img = img.resize((s, s), Image.BILINEAR)
        v = np.asarray(img, dtype=np.float32)
        x = ((v / np.float32(255) - np.float32(0.5)) / np.float32(0.5)).transpose(2, 0, 1)[None]
        res = sess.run(None, {"image": np.ascontiguousarray(x, dtype=np.float32)})
        y = res[0][0].transpose(1, 2, 0)
        if y.shape != (s, s, 3):
            fail(f"{name}: translation shape {res[0].shape}")
        if len(res) > 1 and res[1].shape != (1, 1, s // 4, s // 4):
            fail(f"{name}: cam_heatmap shape {res[1].shape}")
        if reference is not None:
            stem = os.path.splitext(name)[0]
            for i, out in enumerate(outputs):
                key = f"{stem}.{out}"
                if key not in reference:
                    fail(f"--reference lacks {key}")
                ref_t = reference[key]
                if ref_t.shape != res[i].shape:
                    fail(f"{key}: shape {res[i].shape}, reference {ref_t.shape}")
                rel = float(np.abs(res[i] - ref_t).max() / max(float(np.abs(ref_t).max()), 1e-30))
                worst_rel = max(worst_rel, rel)
                if rel > a.rtol:
                    fail(f"{key}: onnxruntime differs from the Swift generator by {rel:.3g} relative (max {a.rtol})")
        ours = np.clip(np.floor((y.astype(np.float64) + 1) * 127.5 + 0.5), 0, 255).astype(np.int32)
        ref_path = os.path.join(a.translated, os.path.splitext(name)[0] + ".png")
        if not os.path.exists(ref_path):
            fail(f"no translate output {ref_path}")
        ref = np.asarray(Image.open(ref_path).convert("RGB"), dtype=np.int32)
        d = int(np.abs(ours - ref).max())
        worst = max(worst, d)
        if d > a.max_diff:
            fail(f"{name}: onnxruntime differs from translate by {d} levels (max {a.max_diff})")
    print(
        f"check_onnx: ok images={len(names)} max_diff={worst} opset={opset} outputs={','.join(outputs)}"
        + (f" max_rel_diff={worst_rel:.3g}" if reference is not None else "")
    )


if __name__ == "__main__":
    main()
